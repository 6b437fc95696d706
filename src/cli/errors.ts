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
    // anyhow numbers the causes when there is more than one.
    text += '\n\nCaused by:';
    error.causes.forEach((cause, i) => (text += error.causes.length > 1 ? `\n    ${i}: ${cause}` : `\n    ${cause}`));
  }
  return text;
}

/** Any failure as the CLI prints it: a CliError with its causes, anything else as `Error: <message>`. */
export function formatError(error: unknown): string {
  if (error instanceof CliError) return formatCliError(error);
  return `Error: ${error instanceof Error ? error.message : String(error)}`;
}
