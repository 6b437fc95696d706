// Helpers for the developer-workflow tests: a project made by `spacetime init` whose node_modules link the repo's
// installed packages (spacetimedb, undici, esbuild) instead of installing from the registry.
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir, repoRoot } from '../harness.js';

const linkedPackages = ['spacetimedb', 'undici', 'esbuild'];

/** Links the packages a template needs into `<projectDir>/node_modules`. */
export function linkProjectDependencies(projectDir: string): void {
  const modules = path.join(projectDir, 'node_modules');
  mkdirSync(path.join(modules, '.bin'), { recursive: true });
  for (const name of linkedPackages) symlinkSync(path.join(repoRoot, 'node_modules', name), path.join(modules, name), 'dir');
  symlinkSync(path.join(repoRoot, 'node_modules', 'esbuild', 'bin', 'esbuild'), path.join(modules, '.bin', 'esbuild'));
}

// Run the CLI from source when dist/ does not have these commands yet (the harness reads this variable).
// dist/ counts as stale when any src/cli source is newer than dist/cli/main.js.
function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtimeMs(p) : statSync(p).mtimeMs);
  }
  return newest;
}
const builtMain = path.join(repoRoot, 'dist', 'cli', 'main.js');
if (!existsSync(builtMain) || statSync(builtMain).mtimeMs < newestMtimeMs(path.join(repoRoot, 'src', 'cli'))) {
  process.env.SPACETIME_CLI_FROM_SOURCE = '1';
}

/** The argv that runs the CLI (for long-running children such as `spacetime dev`). */
export function cliArgv(): string[] {
  return process.env.SPACETIME_CLI_FROM_SOURCE === '1'
    ? ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')]
    : [path.join(repoRoot, 'bin', 'spacetime.js')];
}

/**
 * A temp working directory for CLI runs. When the CLI runs from source, `--import tsx` resolves from the child's
 * cwd, so the directory gets a node_modules/tsx link.
 */
export function makeWorkDir(prefix = 'stdb-work-'): string {
  const dir = makeTempDir(prefix);
  mkdirSync(path.join(dir, 'node_modules'));
  symlinkSync(path.join(repoRoot, 'node_modules', 'tsx'), path.join(dir, 'node_modules', 'tsx'), 'dir');
  return dir;
}
