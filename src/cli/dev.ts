// `spacetime dev` (cli-and-publish.md §1 dev): build → generate → publish → client command, then watch the module
// directory and repeat on every change (debounced). Build and publish errors are printed and the watch goes on;
// Ctrl-C (SIGINT/SIGTERM) stops the watcher and the client.
// Owns: the dev loop, its messages and the client child process. May call: cli/build, cli/generate, cli/publish,
// cli/project-config, node:fs (watch), node:child_process.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { bundleModule, resolveModuleDir } from './build.js';
import type { CliConfig } from './config.js';
import { CliError, ExitWithCode, formatError } from './errors.js';
import { describeProgram } from './generate/extract.js';
import { defaultOutDirTypeScript, runGenerate } from './generate/command.js';
import { loadProjectConfig, selectTargets, type GenerateEntry } from './project-config.js';
import { publish, type DeleteDataMode, type YesScope } from './publish.js';

/** Upstream waits this long after the last file event before rebuilding. */
export const devDebounceMs = 300;
const clientStopGraceMs = 2_000;
/** Paths under the module directory whose changes never trigger a rebuild (outputs and dependencies). */
const ignoredDirs = ['node_modules', 'dist', '.git'];

export interface DevOptions {
  database?: string;
  projectPath?: string;
  modulePath?: string;
  bindingsPath?: string;
  server?: string;
  yes: boolean;
  deleteData: DeleteDataMode;
  run?: string;
  serverOnly: boolean;
  env: string;
  noConfig: boolean;
  skipPublish: boolean;
  skipGenerate: boolean;
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function showError(error: unknown): void {
  if (error instanceof ExitWithCode) return; // tsc / esbuild already printed their diagnostics
  process.stderr.write(formatError(error) + '\n');
}

export async function dev(config: CliConfig, opts: DevOptions): Promise<void> {
  const projectDir = path.resolve(opts.projectPath ?? '.');
  const project = loadProjectConfig({ cwd: projectDir, env: opts.env, noConfig: opts.noConfig });
  if (project !== undefined) say(`✓ Using configuration from ${project.files.map((f) => path.basename(f)).join(', ')}`);
  const target = selectTargets(project, opts.database)[0];
  const database = opts.database ?? target?.database;
  if (database === undefined && !opts.skipPublish) {
    throw new CliError('No database to publish to: pass a database name, or add `database` to spacetime.json (`spacetime init` creates one).');
  }
  const moduleDir = opts.modulePath !== undefined ? path.resolve(opts.modulePath)
    : target?.modulePath ?? resolveModuleDir(undefined, projectDir);
  // Every `generate` entry of the target for this module (spacetime.json), or one TypeScript entry; --bindings-path
  // replaces them with one.
  const configured = (target?.generate ?? []).filter((g) => g.modulePath === undefined || path.resolve(g.modulePath) === moduleDir);
  const bindings: GenerateEntry[] = opts.bindingsPath !== undefined ? [{ outDir: path.resolve(projectDir, opts.bindingsPath) }]
    : configured.length > 0 ? configured : [{}];
  const server = opts.server ?? target?.server;
  const clientCommand = opts.serverOnly ? undefined : opts.run ?? project?.devRun;
  const yes = new Set<YesScope>(opts.yes ? ['all'] : ['migrate', 'break-clients']);

  say();
  say('Starting development mode...');
  if (database !== undefined) say(`Database: ${database}`);
  say(`Watching for changes in ${moduleDir}`);
  if (clientCommand !== undefined) say(`Client command: ${clientCommand}`);
  say('Press Ctrl+C to stop');
  say();

  const cycle = async (): Promise<boolean> => {
    try {
      say('Building...');
      const { bundlePath, code } = await bundleModule(moduleDir);
      say('Build complete!');
      if (opts.skipGenerate) say('Skipping generate step (--skip-generate).');
      else if (!opts.serverOnly) {
        say('Generating module bindings...');
        const moduleDefBytes = await describeProgram(code);
        for (const entry of bindings) {
          await runGenerate({ lang: entry.language ?? 'typescript', moduleDefBytes, yes: true,
            outDir: entry.outDir !== undefined ? path.resolve(projectDir, entry.outDir) : path.join(projectDir, defaultOutDirTypeScript),
            includePrivate: entry.includePrivate, modulePath: path.relative(projectDir, moduleDir) || '.' });
        }
      }
      if (opts.skipPublish) say('Skipping publish step (--skip-publish).');
      else {
        say('Publishing...');
        await publish(config, { database, server, deleteData: opts.deleteData, breakClients: false, yes,
          jsPath: bundlePath, anonymous: false });
        say('Published successfully!');
        say('---');
      }
      return true;
    } catch (error) {
      showError(error);
      say('Waiting for next change...');
      return false;
    }
  };

  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let again = false;
  const rebuild = async (): Promise<void> => {
    if (running) { again = true; return; }
    running = true;
    try {
      do {
        again = false;
        say();
        say('File change detected, rebuilding...');
        await cycle();
      } while (again);
    } finally {
      running = false;
    }
  };
  // Watching starts before the first build so no edit is lost; the build's own output (dist/) is ignored.
  const watcher = new TreeWatcher(moduleDir, () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => { timer = undefined; void rebuild(); }, devDebounceMs);
  });

  running = true;
  await cycle();
  running = false;
  if (again) void rebuild();
  let client: ChildProcess | undefined;
  if (clientCommand !== undefined) {
    say(`Starting client: ${clientCommand}`);
    client = spawn(clientCommand, { cwd: projectDir, shell: true, stdio: 'inherit' });
    client.on('exit', (code) => { client = undefined; say(`Client exited${code === null ? '' : ` with code ${code}`}.`); });
  }

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      watcher.close();
      if (timer !== undefined) clearTimeout(timer);
      say('Stopping development mode...');
      if (client === undefined) { resolve(); return; }
      const child = client;
      const force = setTimeout(() => child.kill('SIGKILL'), clientStopGraceMs);
      child.once('exit', () => { clearTimeout(force); resolve(); });
      child.kill('SIGTERM');
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/**
 * Watches a directory tree with one non-recursive fs.watch per directory (set up synchronously, so no event is lost
 * at start, unlike Node 20's recursive mode on Linux), skipping `ignoredDirs`; new directories are picked up.
 */
class TreeWatcher {
  private readonly watchers = new Map<string, FSWatcher>();

  constructor(private readonly root: string, private readonly onChange: () => void) {
    this.scan(root);
  }

  private scan(dir: string): void {
    if (this.watchers.has(dir)) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
      this.watchers.set(dir, watch(dir, (_event, file) => this.changed(dir, file === null ? '' : String(file))));
    } catch {
      return; // removed meanwhile
    }
    for (const e of entries) if (e.isDirectory() && !ignoredDirs.includes(e.name)) this.scan(path.join(dir, e.name));
  }

  private changed(dir: string, file: string): void {
    if (ignoredDirs.includes(file)) return;
    const full = path.join(dir, file);
    try {
      if (statSync(full).isDirectory()) this.scan(full);
    } catch {
      const gone = this.watchers.get(full);
      if (gone !== undefined) { gone.close(); this.watchers.delete(full); }
    }
    this.onChange();
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
