// `spacetime dev` (cli-and-publish.md §1 dev, upstream dev.rs): with no project it creates one (--template, or a
// question in a terminal); picks or creates the database (the positional, --database, a question, or -y for a
// random name) and remembers it in spacetime.local.json; then build → generate → publish every configured database,
// keeps .env.local on the first database, streams each database's module log, starts the client's dev command with
// the same database in its environment, and repeats on every change to the module or the config (300 ms debounce;
// .gitignore honoured). Build and publish errors are printed and the watch goes on; Ctrl-C stops everything. A Rust
// or C# module or template is refused before anything is created or asked (this server runs TypeScript modules only).
// Without a terminal (CI, pipes) nothing waits on a question: the error names the flag that answers it.
// Owns: the dev loop, its messages, the log streams and the client child process.
// May call: cli/build, cli/generate, cli/publish, cli/project-config, cli/auth, cli/util, cli/init (index, templates,
// prompt, gitignore), cli/logformat, node:fs, node:child_process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { authToken } from './auth.js';
import { bundleModule, ensureTypeScriptModule } from './build.js';
import type { CliConfig } from './config.js';
import { CliError, ExitWithCode, formatError } from './errors.js';
import { describeProgram } from './generate/extract.js';
import { defaultOutDirTypeScript, runGenerate } from './generate/command.js';
import { IgnoreMatcher } from './init/gitignore.js';
import { init, randomDatabaseName, serverUrlOrDefault } from './init/index.js';
import { ask, canPrompt, choose, confirm } from './init/prompt.js';
import { builtinTemplates, clientEnvVars, findTemplate, languageNames, upsertClientEnvFile } from './init/templates.js';
import { formatLogRecord, type LogRecord } from './logformat.js';
import { loadProjectConfig, projectConfigFileName, selectTargets, type GenerateEntry, type ProjectConfig,
  type ProjectTarget } from './project-config.js';
import { publish, type DeleteDataMode, type YesScope } from './publish.js';
import { httpRequest, identityFromToken, validateDatabaseName } from './util.js';

/** Upstream waits this long after the last file event before rebuilding. */
export const devDebounceMs = 300;
const clientStopGraceMs = 2_000;
/** A log stream that ends or fails is reopened after this long (upstream waits 10 s). */
const logReconnectDelayMs = 2_000;
/** Lines of history each log stream starts with (upstream's `num_lines=10`). */
const logHistoryLines = 10;
const localConfigFileName = 'spacetime.local.json';

export interface DevOptions {
  database?: string;
  /** The hidden, deprecated `--database` flag (upstream keeps it for old scripts). */
  databaseFlag?: string;
  projectPath?: string;
  modulePath?: string;
  bindingsPath?: string;
  server?: string;
  yes: boolean;
  deleteData: DeleteDataMode;
  template?: string;
  run?: string;
  serverOnly: boolean;
  env: string;
  noConfig: boolean;
  skipPublish: boolean;
  skipGenerate: boolean;
  /** Name → identity on a server (main.ts's resolver, shared with every other command). */
  resolveDatabase(serverUrl: string, nameOrIdentity: string): Promise<string>;
}

/** One database dev publishes: where its module is and which server it lives on. */
interface DevTarget {
  database: string;
  moduleDir: string;
  server?: string;
  breakClients: boolean;
  generate: GenerateEntry[];
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function showError(error: unknown): void {
  if (error instanceof ExitWithCode) return; // tsc / esbuild already printed their diagnostics
  process.stderr.write(formatError(error) + '\n');
}

function readJsonObject(file: string): Record<string, unknown> {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> : {};
}

function writeJsonObject(file: string, value: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}

/** `npm run dev` (or the lockfile's package manager) when package.json has a `dev` script (upstream's detection). */
export function detectClientCommand(projectDir: string): string | undefined {
  const file = path.join(projectDir, 'package.json');
  if (!existsSync(file)) return undefined;
  let scripts: unknown;
  try {
    scripts = (JSON.parse(readFileSync(file, 'utf8')) as { scripts?: unknown }).scripts;
  } catch {
    return undefined;
  }
  if (scripts === null || typeof scripts !== 'object' || !('dev' in scripts)) return undefined;
  if (existsSync(path.join(projectDir, 'pnpm-lock.yaml'))) return 'pnpm run dev';
  if (existsSync(path.join(projectDir, 'yarn.lock'))) return 'yarn dev';
  if (existsSync(path.join(projectDir, 'bun.lockb')) || existsSync(path.join(projectDir, 'bun.lock'))) return 'bun run dev';
  return 'npm run dev';
}

/** With no project here: create one from a template (the flag, or a question in a terminal). Returns its directory. */
async function createProject(config: CliConfig, opts: DevOptions, cwd: string, interactive: boolean): Promise<string> {
  say(`No SpacetimeDB project found in ${cwd}.`);
  let template = opts.template;
  if (template === undefined) {
    if (!interactive) {
      throw new CliError('No SpacetimeDB project here, and no terminal to ask which template to create it from: pass ' +
        '--template <id> (`spacetime init --template` lists them), or run `spacetime dev` inside a project.');
    }
    if (!(await confirm('Would you like to initialize a new project?'))) throw new CliError('Not in a SpacetimeDB project directory');
    const runnable = builtinTemplates.filter((t) => t.language === 'typescript');
    template = runnable[await choose('Template:', runnable.map((t) => `${t.id} - ${t.description}`))].id;
  } else if (findTemplate(template) === undefined) {
    throw new CliError(`Unknown template: ${template}. Run \`spacetime init --template\` to list them.`);
  }
  const language = findTemplate(template)!.language;
  if (language !== 'typescript') {
    throw new CliError(`Template ${template} is a ${languageNames[language]} project: this server runs TypeScript modules only, so ` +
      `\`spacetime dev\` cannot run it. \`spacetime init --template ${template}\` creates it for upstream SpacetimeDB's tools.`);
  }
  const database = opts.database ?? opts.databaseFlag;
  const name = database ?? (interactive ? await ask('Project name', 'my-spacetime-app') : 'my-spacetime-app');
  const created = await init(config, {
    name, template, local: (opts.server ?? config.data.default_server) === 'local', nonInteractive: true,
    serverOnly: false, cwd, database, skipNextSteps: true,
  });
  if (created === undefined) throw new CliError('Project initialization did not create a project');
  await installDependencies(created.projectPath, interactive);
  const rel = path.relative(cwd, created.projectPath);
  say();
  say('Tip: To interact with your database, open a new terminal and run:');
  say(`  cd ./${rel}`);
  say('  npm install        # once, for the client');
  say('  spacetime call add Alice');
  say('  spacetime sql "SELECT * FROM person"');
  say('  spacetime logs');
  return created.projectPath;
}

/**
 * A new project cannot build until its packages are installed (the module imports `spacetimedb/server`), so dev
 * installs them with npm, as upstream's init does with the package manager it asks for. One install at the project
 * root serves the module too (resolution walks up from spacetimedb/). A failure is reported and dev goes on: the
 * watch rebuilds once the user has installed.
 */
async function installDependencies(projectDir: string, interactive: boolean): Promise<void> {
  if (interactive && !(await confirm('Install dependencies with npm now?'))) {
    say(`Please install dependencies manually in ${projectDir} (npm install).`);
    return;
  }
  say('Installing dependencies with npm...');
  const run = spawnSync('npm', ['install', '--no-fund', '--no-audit', '--loglevel=error'], { cwd: projectDir, stdio: 'inherit' });
  if (run.status === 0) say('Dependencies installed successfully!');
  else {
    process.stderr.write(`Installation failed (${run.error?.message ?? `exit code ${run.status}`}).\n`);
    say(`Please run 'npm install' manually in ${projectDir}.`);
  }
}

/** The databases the server's identity owns, by name (for the "existing database" choice). */
async function ownedDatabaseNames(config: CliConfig, serverUrl: string): Promise<string[]> {
  const token = await authToken(config, serverUrl, { yes: true });
  const identity = token === undefined ? undefined : identityFromToken(token);
  if (identity === undefined) return [];
  const res = await httpRequest('GET', `${serverUrl}/v1/identity/${identity}/databases`, { token });
  if (res.status !== 200) return [];
  const names: string[] = [];
  for (const id of (JSON.parse(res.text) as { identities?: string[] }).identities ?? []) {
    const named = await httpRequest('GET', `${serverUrl}/v1/database/${id}/names`, { token });
    const list = named.status === 200 ? (JSON.parse(named.text) as { names?: string[] }).names ?? [] : [];
    names.push(list[0] ?? id);
  }
  return names;
}

/** No database from the CLI or the config: ask in a terminal, take -y as "a new random name", else refuse. */
async function selectDatabase(config: CliConfig, opts: DevOptions, projectDir: string, serverUrl: string,
  interactive: boolean): Promise<string> {
  const random = randomDatabaseName(path.basename(projectDir));
  if (opts.yes) return random;
  if (!interactive) {
    throw new CliError('No database selected, and no terminal to ask: pass one (`spacetime dev <database>`), or -y to ' +
      `create one with a random name, or set \`database\` in ${localConfigFileName}.`);
  }
  say();
  say('Found existing SpacetimeDB project.');
  say('Now we need to select a database to publish to.');
  const existing = await choose('Database selection:', ['Create new database with random name', 'Select from existing databases']);
  if (existing === 0) return random;
  const names = await ownedDatabaseNames(config, serverUrl);
  if (names.length === 0) {
    say('No existing databases found.');
    return random;
  }
  return names[await choose('Select database:', names)];
}

/** Writes `database` into spacetime.local.json unless it names one (and spacetime.json if there is none). */
function rememberDatabase(projectDir: string, database: string, server: string | undefined, moduleDir: string): void {
  const main = path.join(projectDir, projectConfigFileName);
  if (!existsSync(main)) {
    writeJsonObject(main, { server: server ?? 'local', 'module-path': `./${path.relative(projectDir, moduleDir) || '.'}` });
    say(`✓ Created ${main}`);
  }
  const local = path.join(projectDir, localConfigFileName);
  const current = readJsonObject(local);
  if (typeof current.database === 'string') return;
  writeJsonObject(local, { ...current, database });
  say(`✓ Created ${local}`);
}

/** The configured targets with a database, or the CLI's database with the default module. */
function devTargets(project: ProjectConfig | undefined, database: string | undefined, opts: DevOptions,
  defaultModuleDir: string): DevTarget[] {
  const fromConfig = selectTargets(project, database).filter((t): t is ProjectTarget & { database: string } => t.database !== undefined);
  const targets: DevTarget[] = fromConfig.map((t) => ({
    database: t.database, server: opts.server ?? t.server, breakClients: t.breakClients === true,
    moduleDir: opts.modulePath !== undefined ? path.resolve(opts.modulePath) : t.modulePath ?? defaultModuleDir,
    generate: t.generate ?? [],
  }));
  if (targets.length === 0 && database !== undefined) {
    targets.push({ database, server: opts.server, breakClients: false, generate: [],
      moduleDir: opts.modulePath !== undefined ? path.resolve(opts.modulePath) : defaultModuleDir });
  }
  return targets;
}

/** The module directory when the config names none: `--module-path`, the config's, or `<project>/spacetimedb`. */
function defaultModuleDirFor(project: ProjectConfig | undefined, projectDir: string, opts: DevOptions): string {
  if (opts.modulePath !== undefined) return path.resolve(opts.modulePath);
  return project?.targets[0]?.modulePath ?? path.join(projectDir, 'spacetimedb');
}

export async function dev(config: CliConfig, opts: DevOptions): Promise<void> {
  const interactive = !opts.yes && canPrompt();
  if (opts.databaseFlag !== undefined) {
    say('Warning: --database flag is deprecated. Use positional argument instead: spacetime dev <database>');
  }
  const cliDatabase = opts.database ?? opts.databaseFlag;
  if (cliDatabase !== undefined && !/[*?]/.test(cliDatabase)) validateDatabaseName(cliDatabase, false);
  let projectDir = path.resolve(opts.projectPath ?? '.');
  let project = loadProjectConfig({ cwd: projectDir, env: opts.env, noConfig: opts.noConfig });
  if (project !== undefined) projectDir = project.dir;
  if (project === undefined && !existsSync(defaultModuleDirFor(undefined, projectDir, opts))) {
    projectDir = await createProject(config, opts, projectDir, interactive);
    project = loadProjectConfig({ cwd: projectDir, env: opts.env, noConfig: opts.noConfig });
  } else if (opts.template !== undefined) {
    say('Warning: --template option is ignored because a SpacetimeDB project already exists.');
  }
  ensureTypeScriptModule(defaultModuleDirFor(project, projectDir, opts));

  let targets = devTargets(project, cliDatabase, opts, defaultModuleDirFor(project, projectDir, opts));
  if (targets.length === 0 && !opts.skipPublish) {
    const server = opts.server ?? project?.targets[0]?.server;
    const database = await selectDatabase(config, opts, projectDir, serverUrlOrDefault(config, server), interactive);
    say(`Selected database: ${database}`);
    say(`Tip: Use \`spacetime dev ${database}\` to skip this question next time`);
    if (!opts.noConfig) {
      rememberDatabase(projectDir, database, server, defaultModuleDirFor(project, projectDir, opts));
      project = loadProjectConfig({ cwd: projectDir, env: opts.env, noConfig: opts.noConfig });
    }
    targets = devTargets(project, database, opts, defaultModuleDirFor(project, projectDir, opts));
  }
  for (const target of targets) ensureTypeScriptModule(target.moduleDir);
  await confirmMainConfigTargets(project, targets, opts.yes, interactive);

  const clientCommand = chooseClientCommand(project, projectDir, opts);
  const session = new DevSession(config, opts, projectDir, project, targets, clientCommand);
  await session.run();
}

/**
 * spacetime.json is checked in and usually names production databases; spacetime.local.json is personal. Publishing
 * to the former in dev mode needs a yes: in a terminal a question, otherwise --yes.
 */
async function confirmMainConfigTargets(project: ProjectConfig | undefined, targets: DevTarget[], yes: boolean,
  interactive: boolean): Promise<void> {
  if (project === undefined || yes) return;
  const fromMain = new Set(project.targets.filter((t) => t.sourceConfig === projectConfigFileName).map((t) => t.database));
  const risky = targets.filter((t) => fromMain.has(t.database)).map((t) => t.database);
  if (risky.length === 0) return;
  const warning = `Database(s) \`${risky.join(', ')}\` are defined in spacetime.json (usually reserved for production databases).`;
  if (!interactive) {
    throw new CliError(`${warning} Pass --yes to publish to them in dev mode, or name your dev database in ${localConfigFileName}.`);
  }
  process.stderr.write(`Warning: ${warning}\n`);
  if (!(await confirm('Do you want to proceed with publishing in dev mode?'))) throw new CliError('Aborted.');
}

/** `--run`, else dev.run from spacetime.json, else package.json's dev script (saved to spacetime.json, as upstream). */
function chooseClientCommand(project: ProjectConfig | undefined, projectDir: string, opts: DevOptions): string | undefined {
  if (opts.serverOnly) return undefined;
  if (opts.run !== undefined) return opts.run;
  if (project?.devRun !== undefined) return project.devRun;
  const detected = detectClientCommand(projectDir);
  if (detected === undefined || opts.noConfig) return detected;
  const file = path.join(projectDir, projectConfigFileName);
  if (existsSync(file)) {
    writeJsonObject(file, { ...readJsonObject(file), dev: { run: detected } });
    say(`✓ Detected client command and saved to ${file}`);
  }
  return detected;
}

/** The running dev loop: one per `spacetime dev`. */
class DevSession {
  private readonly logStreams = new Map<string, AbortController>();
  private readonly watchers: TreeWatcher[] = [];
  private configWatcher: FSWatcher | undefined;
  private client: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private configChanged = false;
  private stopped = false;

  constructor(
    private readonly config: CliConfig,
    private readonly opts: DevOptions,
    private readonly projectDir: string,
    private project: ProjectConfig | undefined,
    private targets: DevTarget[],
    private readonly clientCommand: string | undefined,
  ) {}

  private get hasClient(): boolean {
    return !this.opts.serverOnly && existsSync(path.join(this.projectDir, 'package.json'));
  }

  private serverUrlFor(target: DevTarget): string {
    return serverUrlOrDefault(this.config, target.server);
  }

  async run(): Promise<void> {
    say();
    say('Starting development mode...');
    const names = this.targets.map((t) => t.database);
    if (names.length === 1) say(`Database: ${names[0]}`);
    else if (names.length > 1) say(`Databases: ${names.join(', ')}`);
    for (const dir of this.moduleDirs()) say(`Watching for changes in ${dir}`);
    if (this.clientCommand !== undefined) say(`Client command: ${this.clientCommand}`);
    say('Press Ctrl+C to stop');
    say();
    // Watching starts before the first build so no edit made during it is lost.
    this.watch();
    this.running = true;
    await this.cycle();
    this.running = false;
    if (this.again) void this.rebuild();
    this.startClient();
    await this.untilStopped();
  }

  private moduleDirs(): string[] {
    const dirs = this.targets.map((t) => t.moduleDir);
    if (dirs.length === 0) dirs.push(defaultModuleDirFor(this.project, this.projectDir, this.opts));
    return [...new Set(dirs)];
  }

  /** One build per module directory, then generate (the client's bindings), then publish every target. */
  private async cycle(): Promise<boolean> {
    try {
      if (this.configChanged) this.reloadConfig();
      const programs = new Map<string, { bundlePath: string; code: string }>();
      say('Building...');
      for (const dir of this.moduleDirs()) programs.set(dir, await bundleModule(dir));
      say('Build complete!');
      const first = this.targets[0];
      if (first !== undefined && this.hasClient && upsertClientEnvFile(this.projectDir, first.database, this.serverUrlFor(first))) {
        say(`Updated .env.local with database name ${first.database}`);
      }
      if (this.opts.skipGenerate) say('Skipping generate step (--skip-generate).');
      else if (!this.opts.serverOnly) await this.generate(programs);
      if (this.opts.skipPublish) {
        say('Skipping publish step (--skip-publish).');
        return true;
      }
      say('Publishing...');
      for (const target of this.targets) {
        if (this.targets.length > 1) say(`Publishing to ${target.database}...`);
        const yes = new Set<YesScope>(this.opts.yes ? ['all'] : ['migrate', 'break-clients']);
        await publish(this.config, { database: target.database, server: target.server, deleteData: this.opts.deleteData,
          breakClients: target.breakClients, yes, jsPath: programs.get(target.moduleDir)!.bundlePath, anonymous: false });
        this.streamLogs(target);
      }
      say('Published successfully!');
      say('---');
      return true;
    } catch (error) {
      showError(error);
      say('Waiting for next change...');
      return false;
    }
  }

  private async generate(programs: Map<string, { code: string }>): Promise<void> {
    say('Generating module bindings...');
    const done = new Set<string>();
    const moduleDirs = this.moduleDirs();
    for (const moduleDir of moduleDirs) {
      // The generate entries of the target publishing this module, or (nothing to publish: --skip-publish, no database
      // yet) of the project's first target: bindings do not depend on a database.
      const target = this.targets.find((t) => t.moduleDir === moduleDir);
      const generateEntries = target?.generate ?? this.project?.targets[0]?.generate ?? [];
      const configured = generateEntries.filter((g) => g.modulePath === undefined || path.resolve(g.modulePath) === moduleDir);
      // --module-bindings-path replaces the configured entries; with neither, the first module gets the default.
      const entries: GenerateEntry[] = this.opts.bindingsPath !== undefined ? [{ outDir: path.resolve(this.projectDir, this.opts.bindingsPath) }]
        : configured.length > 0 ? configured : moduleDir === moduleDirs[0] ? [{}] : [];
      if (entries.length === 0) continue;
      const moduleDefBytes = await describeProgram(programs.get(moduleDir)!.code);
      for (const entry of entries) {
        const outDir = entry.outDir !== undefined ? path.resolve(this.projectDir, entry.outDir) : path.join(this.projectDir, defaultOutDirTypeScript);
        if (done.has(outDir)) continue;
        done.add(outDir);
        await runGenerate({ lang: entry.language ?? 'typescript', moduleDefBytes, yes: true, outDir,
          includePrivate: entry.includePrivate, modulePath: path.relative(this.projectDir, moduleDir) || '.' });
      }
    }
  }

  /** Follows one database's module log (once per database), prefixed by its name when there are several. */
  private streamLogs(target: DevTarget): void {
    if (this.logStreams.has(target.database) || this.stopped) return;
    const abort = new AbortController();
    this.logStreams.set(target.database, abort);
    const prefix = this.targets.length > 1 ? `[${target.database}] ` : '';
    const serverUrl = this.serverUrlFor(target);
    const follow = async (): Promise<void> => {
      while (!abort.signal.aborted) {
        try {
          const token = await authToken(this.config, serverUrl, { yes: true });
          const identity = await this.opts.resolveDatabase(serverUrl, target.database);
          const url = `${serverUrl}/v1/database/${identity}/logs?num_lines=${logHistoryLines}&follow=true`;
          const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal });
          if (res.status >= 400 || res.body === null) throw new Error(`${res.status} ${await res.text()}`);
          await printLogLines(res.body as unknown as AsyncIterable<Uint8Array>, prefix);
        } catch (error) {
          if (abort.signal.aborted) return;
          process.stderr.write(`Error: Log streaming error for ${target.database}: ${(error as Error).message}\n`);
        }
        await new Promise((resolve) => setTimeout(resolve, logReconnectDelayMs).unref());
      }
    };
    void follow();
  }

  private reloadConfig(): void {
    this.configChanged = false;
    if (this.opts.noConfig) return;
    const project = loadProjectConfig({ cwd: this.projectDir, env: this.opts.env, noConfig: false });
    const targets = devTargets(project, this.opts.database ?? this.opts.databaseFlag, this.opts,
      defaultModuleDirFor(project, this.projectDir, this.opts));
    if (targets.length === 0) throw new CliError('The changed configuration names no database; keeping the previous one.');
    this.project = project;
    this.targets = targets;
    this.syncWatchers();
  }

  private watch(): void {
    this.syncWatchers();
    // The config files sit in the project directory, which is not watched recursively (it holds the client too).
    this.configWatcher = watch(this.projectDir, (_event, file) => {
      if (file === null || !/^spacetime(\..+)?\.json$/.test(String(file))) return;
      this.configChanged = true;
      this.schedule();
    });
  }

  private syncWatchers(): void {
    const dirs = this.moduleDirs();
    for (const w of this.watchers.splice(0)) w.close();
    const matcher = new IgnoreMatcher([this.projectDir, ...dirs]);
    for (const dir of dirs) this.watchers.push(new TreeWatcher(dir, matcher, () => this.schedule()));
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = undefined; void this.rebuild(); }, devDebounceMs);
  }

  private async rebuild(): Promise<void> {
    if (this.running) { this.again = true; return; }
    this.running = true;
    try {
      do {
        this.again = false;
        say();
        say('File change detected, rebuilding...');
        await this.cycle();
      } while (this.again && !this.stopped);
    } finally {
      this.running = false;
    }
  }

  /** The client gets the first database in its environment too, so it agrees with dev even before reading .env.local. */
  private startClient(): void {
    if (this.clientCommand === undefined) return;
    const first = this.targets[0];
    const env = { ...process.env, ...(first !== undefined ? clientEnvVars(first.database, this.serverUrlFor(first)) : {}) };
    say(`Starting client: ${this.clientCommand}`);
    const child = spawn(this.clientCommand, { cwd: this.projectDir, shell: true, stdio: 'inherit', env });
    this.client = child;
    child.on('exit', (code) => {
      if (this.client === child) this.client = undefined;
      if (!this.stopped) say(`Client process exited with code ${code ?? 'unknown'}. File watcher is still active.`);
    });
  }

  private untilStopped(): Promise<void> {
    return new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        this.stopped = true;
        for (const w of this.watchers) w.close();
        this.configWatcher?.close();
        if (this.timer !== undefined) clearTimeout(this.timer);
        for (const abort of this.logStreams.values()) abort.abort();
        say('Stopping development mode...');
        const child = this.client;
        if (child === undefined || child.exitCode !== null) { resolve(); return; }
        const force = setTimeout(() => child.kill('SIGKILL'), clientStopGraceMs);
        child.once('exit', () => { clearTimeout(force); resolve(); });
        child.kill('SIGTERM');
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  }
}

/** NDJSON log records → the `spacetime logs` text format, one line at a time. */
async function printLogLines(body: AsyncIterable<Uint8Array>, prefix: string): Promise<void> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim() === '') continue;
      try {
        process.stdout.write(prefix + formatLogRecord(JSON.parse(line) as LogRecord));
      } catch {
        process.stdout.write(`${prefix}${line}\n`);
      }
    }
  }
}

/**
 * Watches a directory tree with one non-recursive fs.watch per directory (set up synchronously, so no event is lost
 * at start, unlike Node 20's recursive mode on Linux); ignored directories are not entered and ignored files do not
 * trigger; new directories are picked up.
 */
class TreeWatcher {
  private readonly watchers = new Map<string, FSWatcher>();

  constructor(root: string, private readonly matcher: IgnoreMatcher, private readonly onChange: () => void) {
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
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory() && !this.matcher.ignores(full, true)) this.scan(full);
    }
  }

  private changed(dir: string, file: string): void {
    const full = path.join(dir, file);
    let isDir = false;
    try {
      isDir = statSync(full).isDirectory();
    } catch {
      const gone = this.watchers.get(full);
      if (gone !== undefined) { gone.close(); this.watchers.delete(full); }
    }
    if (this.matcher.ignores(full, isDir)) return;
    if (isDir) this.scan(full);
    this.onChange();
  }

  close(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
