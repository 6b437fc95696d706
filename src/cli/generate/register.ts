// cli/generate/register.ts — the `spacetime generate` command's flags, as upstream's CLI declares them.
//
// Owns: argument parsing for `generate`; the work is `generateFromCli` in command.ts.
// May call: cli/generate/command.ts, cli/errors.ts, commander. spacetime.json is read by generateFromCli.
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { generateFromCli } from './command.js';

export function registerGenerateCommand(program: Command): void {
  program.command('generate').description('Generate client files for a spacetime module.')
    .argument('[database]', 'Database name or glob pattern to filter which databases to generate for')
    .option('-l, --lang <LANG>', 'The language to generate')
    .option('-o, --out-dir <DIR>', 'The system path (absolute or relative) to the generate output directory')
    .option('-p, --module-path <DIR>', 'The system path (absolute or relative) to the module project')
    .option('-b, --bin-path <PATH>', 'The system path (absolute or relative) to the compiled wasm binary we should inspect')
    .option('-j, --js-path <PATH>', 'The system path (absolute or relative) to the bundled javascript file we should inspect')
    .option('--include-private', 'Include private tables and functions in generated code (types are always included).')
    // `-y` reaches us as `--yes=all` (main.ts normalizes argv for every command).
    .option('-y, --yes <scope>', 'Run non-interactively wherever possible')
    .option('--no-config', 'Ignore spacetime.json configuration')
    .option('--env <ENV>', 'Environment name for config file layering (e.g., dev, staging)')
    .action(async (database: string | undefined, o: Record<string, unknown>) => {
      const sources = [o.modulePath, o.binPath, o.jsPath].filter((x) => x !== undefined);
      if (sources.length > 1) throw new UsageError("the argument '--module-path <DIR>' cannot be used with '--js-path <PATH>'");
      await generateFromCli({
        lang: o.lang as string | undefined,
        outDir: o.outDir as string | undefined,
        modulePath: o.modulePath as string | undefined,
        jsPath: o.jsPath as string | undefined,
        binPath: o.binPath as string | undefined,
        includePrivate: o.includePrivate === true ? true : undefined,
        yes: o.yes !== undefined,
        database, noConfig: o.config === false, env: o.env as string | undefined,
      });
    });
}
