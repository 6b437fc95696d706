// `spacetime build` for TypeScript modules (cli-and-publish.md §1 build, host-abi.md §1).
// Owns: module directory resolution, the optional `tsc --noEmit` check, bundling ./src/index.ts into ./dist/bundle.js
// with esbuild, the post-bundle checks on `spacetime:sys@X.Y` imports and the default export, and the refusal of
// Rust / C# / C++ modules (this server hosts no wasm; `spacetime init` creates such projects for upstream's tools).
// May call: esbuild, node:child_process (tsc), node:fs, cli/errors.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { CliError, ExitWithCode } from './errors.js';

export const bundleEntryRelative = './src/index.ts';
export const bundleOutputRelative = 'dist/bundle.js';
const sysImportPattern = /^spacetime:sys@(\d+)\.(\d+)$/;
const hostMajorWithDefaultExport = 2;

export type ModuleLanguage = 'rust' | 'csharp' | 'javascript' | 'cpp';

/** Which toolchain a module directory uses, in upstream's detection order; undefined when none matches. */
export function detectModuleLanguage(dir: string): ModuleLanguage | undefined {
  if (existsSync(path.join(dir, 'Cargo.toml'))) return 'rust';
  if (readdirSync(dir).some((name) => name.endsWith('.csproj'))) return 'csharp';
  if (existsSync(path.join(dir, 'package.json'))) return 'javascript';
  if (existsSync(path.join(dir, 'CMakeLists.txt'))) return 'cpp';
  return undefined;
}

const languageNames: Record<Exclude<ModuleLanguage, 'javascript'>, string> = { rust: 'Rust', csharp: 'C#', cpp: 'C++' };

/**
 * Refuses a module this server cannot run, naming its language and the file that says so; every command that builds
 * (build, publish, generate, dev) comes through here before it does anything else with the module.
 */
export function ensureTypeScriptModule(dir: string): void {
  if (!isDirectory(dir)) return;
  const language = detectModuleLanguage(dir);
  if (language === undefined || language === 'javascript') return;
  const marker = language === 'rust' ? 'Cargo.toml'
    : language === 'cpp' ? 'CMakeLists.txt' : readdirSync(dir).find((name) => name.endsWith('.csproj'))!;
  const name = languageNames[language];
  throw new CliError(
    `${path.join(dir, marker)} makes ${dir} a ${name} module: this server runs TypeScript modules only (it hosts no ` +
      `wasm), so it cannot build, publish or run ${name} modules. Use upstream SpacetimeDB's CLI and server for this ` +
      'module, or create a TypeScript one with `spacetime init --lang typescript`.',
  );
}

function isDirectory(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** ./spacetimedb when it holds a module, else the current directory when it does. */
function findDefaultModuleDir(cwd: string): string | undefined {
  return [path.join(cwd, 'spacetimedb'), cwd].find((dir) => isDirectory(dir) && detectModuleLanguage(dir) !== undefined);
}

/**
 * `publish` refuses a Rust / C# / C++ module before it logs in or asks anything: the directory resolveModuleDir would
 * pick, when there is one (a missing module is reported where it is today, at the build).
 */
export function refuseNonTypeScriptModule(modulePath: string | undefined, cwd: string = process.cwd()): void {
  const dir = modulePath !== undefined ? path.resolve(cwd, modulePath) : findDefaultModuleDir(cwd);
  if (dir !== undefined) ensureTypeScriptModule(dir);
}

/** `--module-path`, else ./spacetimedb when it holds a module, else the current directory when it does. */
export function resolveModuleDir(modulePath: string | undefined, cwd: string = process.cwd()): string {
  if (modulePath !== undefined) {
    const dir = path.resolve(cwd, modulePath);
    if (!existsSync(dir)) throw new CliError(`Fatal Error: path ${modulePath} does not exist.`);
    if (!statSync(dir).isDirectory()) throw new CliError(`Fatal Error: path ${modulePath} exists but is not a directory.`);
    return dir;
  }
  const found = findDefaultModuleDir(cwd);
  if (found !== undefined) return found;
  throw new CliError(
    'Could not find a SpacetimeDB module in spacetimedb/ or the current directory. ' +
      'Use --module-path to specify the module location.',
  );
}

/** Runs the module's own tsc when it has one; a failing type check ends the command with tsc's exit code. */
function typeCheck(moduleDir: string): void {
  const tscPath = path.join(moduleDir, 'node_modules', '.bin', process.platform === 'win32' ? 'tsc.cmd' : 'tsc');
  if (!existsSync(tscPath)) {
    process.stderr.write(
      'tsc not found in node_modules: skipping the type check. Add `typescript` as a dev-dependency of the module ' +
        'and install dependencies to type-check before bundling.\n',
    );
    return;
  }
  if (!existsSync(path.join(moduleDir, 'tsconfig.json'))) {
    // Without a project file tsc only prints its help text and fails; say what is missing instead (upstream fails).
    process.stderr.write(`no tsconfig.json in ${moduleDir}: skipping the type check (\`spacetime init\` writes one).\n`);
    return;
  }
  const result = spawnSync(tscPath, ['--noEmit'], { cwd: moduleDir, stdio: 'inherit' });
  if (result.error) throw new CliError('Failed to execute tsc', [String(result.error.message)]);
  if (result.status !== 0) {
    if (result.status !== null) throw new ExitWithCode(result.status);
    throw new CliError(`tsc exited with signal ${result.signal}`);
  }
}

/** Prints esbuild diagnostics the way a user can act on them; unresolved imports get an install hint. */
async function printDiagnostics(messages: esbuild.Message[], kind: 'error' | 'warning'): Promise<void> {
  if (messages.length === 0) return;
  const adjusted = messages.map((m) =>
    m.text.startsWith('Could not resolve')
      ? {
          ...m,
          text: `Module not found. ${m.text}`,
          notes: [...m.notes, { text: 'You may have forgotten to install dependencies with your package manager.' }],
        }
      : m,
  );
  const color = process.stderr.isTTY === true;
  const lines = await esbuild.formatMessages(adjusted, { kind, color });
  for (const line of lines) process.stderr.write(line);
}

/** The three checks upstream makes on the bundled chunk (host-abi.md §1 step 3). */
function checkBundle(imports: readonly string[], exports: readonly string[]): void {
  let major: number | undefined;
  for (const spec of imports) {
    const match = sysImportPattern.exec(spec);
    if (match === null) continue;
    const thisMajor = Number(match[1]);
    if (major === undefined) major = thisMajor;
    else if (major !== thisMajor) {
      throw new CliError('The module pulls in 2 different versions of the `spacetimedb/server` package');
    }
  }
  if (major === undefined) {
    throw new CliError(
      "Your module doesn't import the `spacetimedb/server` package at all - this is likely a mistake, as your " +
        'module will not be able to interface with the SpacetimeDB host.',
    );
  }
  if (major === hostMajorWithDefaultExport && !exports.includes('default')) {
    throw new CliError("It seems like you haven't exported your schema. You must `export default schema(...);`");
  }
}

/**
 * Type-checks (when possible) and bundles the module in `moduleDir` into dist/bundle.js.
 * Throws CliError for a failed check and ExitWithCode after printing bundler or tsc diagnostics.
 */
export async function bundleModule(
  moduleDir: string,
  options: { debug?: boolean } = {},
): Promise<{ bundlePath: string; code: string }> {
  const dir = path.resolve(moduleDir);
  ensureTypeScriptModule(dir);
  typeCheck(dir);
  const bundlePath = path.join(dir, bundleOutputRelative);
  const tsconfigPath = path.join(dir, 'tsconfig.json');
  let result: esbuild.BuildResult<{ metafile: true; write: false }>;
  try {
    result = await esbuild.build({
      absWorkingDir: dir,
      entryPoints: [bundleEntryRelative],
      outfile: bundlePath,
      bundle: true,
      write: false,                                  // written below, atomically
      metafile: true,
      format: 'esm',
      platform: 'browser',
      target: 'esnext',
      minify: false,
      sourcemap: 'inline',
      legalComments: 'none',
      external: ['spacetime:sys*'],
      conditions: ['production'],
      mainFields: ['module', 'main'],
      resolveExtensions: ['.ts', '.tsx', '.mjs', '.js', '.cjs', '.json'],
      tsconfig: existsSync(tsconfigPath) ? tsconfigPath : undefined,
      define: { 'process.env.NODE_ENV': JSON.stringify(options.debug === true ? 'development' : 'production') },
      logLevel: 'silent',
    });
  } catch (error) {
    const failure = error as esbuild.BuildFailure;
    if (Array.isArray(failure.errors)) {
      await printDiagnostics(failure.errors, 'error');
      await printDiagnostics(failure.warnings ?? [], 'warning');
      throw new ExitWithCode(1);
    }
    throw error;
  }
  await printDiagnostics(result.warnings, 'warning');
  const output = Object.entries(result.metafile.outputs).find(([file]) => path.resolve(dir, file) === bundlePath);
  if (output === undefined) throw new CliError(`bundler produced no ${bundleOutputRelative}`);
  const meta = output[1];
  checkBundle(
    meta.imports.filter((i) => i.external).map((i) => i.path),
    meta.exports,
  );
  const file = result.outputFiles.find((f) => f.path === bundlePath);
  if (file === undefined) throw new CliError(`bundler produced no ${bundleOutputRelative}`);
  // Two builds of one module at once (two `spacetime publish` in parallel) must not see each other's half-written file.
  mkdirSync(path.dirname(bundlePath), { recursive: true });
  const tmpPath = `${bundlePath}.${process.pid}.tmp`;
  writeFileSync(tmpPath, file.contents);
  renameSync(tmpPath, bundlePath);
  return { bundlePath, code: file.text };
}
