// CLI error types. Owns how a failure becomes stderr text and an exit code (cli-and-publish.md §0):
//   CliError      → `Error: <message>` (+ `Caused by:` lines), exit 1
//   UsageError    → `error: <message>` + usage hint, exit 2 (clap-style argument errors)
//   ExitWithCode  → nothing more printed (diagnostics were already shown), exit <code>
// May call: nothing.

export class CliError extends Error {
  readonly causes: string[];
  constructor(message: string, causes: string[] = []) {
    super(message);
    this.name = 'CliError';
    this.causes = causes;
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export class ExitWithCode extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit with code ${code}`);
    this.name = 'ExitWithCode';
    this.code = code;
  }
}

/** The text anyhow's Debug format prints for an error and its causes. */
export function formatCliError(error: CliError): string {
  let text = `Error: ${error.message}`;
  if (error.causes.length > 0) {
    // anyhow numbers the causes when there is more than one, and indents a cause's further lines under its first.
    const numbered = error.causes.length > 1;
    text += '\n\nCaused by:';
    error.causes.forEach((cause, i) => {
      const lines = cause.split('\n');
      text += numbered ? `\n${String(i).padStart(5)}: ` : '\n    ';
      text += lines.join(numbered ? '\n       ' : '\n    ');
    });
  }
  return text;
}

/** Any failure as the CLI prints it: a CliError with its causes, anything else as `Error: <message>`. */
export function formatError(error: unknown): string {
  if (error instanceof CliError) return formatCliError(error);
  return `Error: ${error instanceof Error ? error.message : String(error)}`;
}
