// End-to-end test harness: a real server process (`spacetime start`) on a free loopback port with a temp data dir,
// the real CLI with a per-test cli.toml, fixture modules built by our `spacetime build`, and client bindings generated
// at test time by our `spacetime generate` (generateBindings).
// Runs bin/spacetime.js (the built dist/, which `npm test` builds first). Set SPACETIME_CLI_FROM_SOURCE=1 to run
// src/cli/main.ts through tsx instead while dist/ is not built.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleModule } from '../src/cli/build.js';
import { generateFromCli } from '../src/cli/generate/command.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures', 'modules');
const serverReadyTimeoutMs = 20_000;
const serverPollIntervalMs = 50;
/** How long a server may take to exit after SIGTERM (closing its databases, a snapshot among them) before it is killed. */
const serverExitTimeoutMsDefault = 30_000;
const cliTimeoutMs = 60_000;

const tempDirs: string[] = [];
/** Generated-bindings dirs live in the repository (so `spacetimedb` resolves); removed by cleanupTempDirs() too. */
const generatedRoot = path.join(repoRoot, 'test', '.generated');

/** A fresh temp dir, removed by cleanupTempDirs() (call it from an `after` hook). */
export function makeTempDir(prefix = 'stdb-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The argv prefix that runs the CLI. */
function cliCommand(): string[] {
  if (process.env.SPACETIME_CLI_FROM_SOURCE === '1') {
    return ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')];
  }
  return [path.join(repoRoot, 'bin', 'spacetime.js')];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  url: string;
  port: number;
  dataDir: string;
  /** The server's stdout and stderr so far. */
  output(): string;
  /** The running server process's pid (undefined once it has exited): for RSS checks in test/faults. */
  pid(): number | undefined;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Servers a test file started die with it: on its exit, and when the test runner ends it with SIGTERM (a file past
 * --test-timeout), so that a hung file leaves no server behind to slow the rest of the suite.
 */
const liveServers = new Set<ChildProcess>();
let killsServersOnExit = false;
function outlivedBy(child: ChildProcess): void {
  if (!killsServersOnExit) {
    killsServersOnExit = true;
    process.on('exit', () => { for (const c of liveServers) c.kill('SIGKILL'); });
    process.once('SIGTERM', () => process.exit(143));
  }
  liveServers.add(child);
  child.once('exit', () => liveServers.delete(child));
}

async function waitForPing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + serverReadyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready:\n${output()}`);
    try {
      const res = await fetch(`${url}/v1/ping`);
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, serverPollIntervalMs));
  }
  throw new Error(`server at ${url} not ready after ${serverReadyTimeoutMs} ms:\n${output()}`);
}

/**
 * Starts `spacetime start` on a free port with a temp data dir (`env` added to the server's, `args` to its options) and
 * waits until /v1/ping answers. `exitTimeoutMs`: how long stop() waits after SIGTERM before it kills the server and fails.
 */
export async function startTestServer(
  opts: { dataDir?: string; env?: NodeJS.ProcessEnv; args?: string[]; exitTimeoutMs?: number } = {},
): Promise<TestServer> {
  const exitTimeoutMs = opts.exitTimeoutMs ?? serverExitTimeoutMsDefault;
  const dataDir = opts.dataDir ?? makeTempDir('stdb-data-');
  const configPath = path.join(makeTempDir('stdb-srvcfg-'), 'cli.toml');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  let log = '';
  const launch = async (): Promise<void> => {
    child = spawn(process.execPath, [...cliCommand(), '--config-path', configPath, 'start', '--listen-addr',
      `127.0.0.1:${port}`, '--data-dir', dataDir, ...(opts.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    outlivedBy(child);
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await waitForPing(url, child, () => log);
  };
  // A server that does not exit after SIGTERM fails the test that stops it, naming it, instead of hanging the suite.
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    if (signal === 'SIGKILL') { await exited; return; }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), exitTimeoutMs); });
    const outcome = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (outcome !== 'late') return;
    child.kill('SIGKILL');
    await exited;
    throw new Error(`the server did not exit within ${exitTimeoutMs} ms of ${signal} (killed); its output ends:\n${log.slice(-4000)}`);
  };
  await launch();
  return {
    url, port, dataDir,
    output: () => log,
    pid: () => (child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    kill,
    restart: async () => {
      await kill('SIGTERM');
      await launch();
    },
    stop: () => kill('SIGTERM'),
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * CPU ms the server process's main thread has used (/proc/<pid>/task/<pid>/schedstat): what a request costs the front
 * door, which a loaded machine does not inflate the way it inflates latencies.
 */
export function serverMainThreadCpuMs(server: TestServer): number {
  const pid = server.pid();
  if (pid === undefined) throw new Error('the server is not running');
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** `fn`'s result and the server main thread's CPU ms while it ran. */
export async function onServerMainThread<T>(server: TestServer, fn: () => Promise<T>): Promise<{ value: T; cpuMs: number }> {
  const before = serverMainThreadCpuMs(server);
  const value = await fn();
  return { value, cpuMs: serverMainThreadCpuMs(server) - before };
}

/** Runs the real CLI with `--config-path <configPath>`; `input` is fed to stdin (stdin is closed either way). */
export async function runCli(
  args: readonly string[],
  opts: { configPath: string; input?: string; cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<CliResult> {
  const child = spawn(process.execPath, [...cliCommand(), '--config-path', opts.configPath, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), cliTimeoutMs);
  const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A per-test cli.toml path (not created: the first CLI run writes the defaults). */
export function tempConfigPath(): string {
  return path.join(makeTempDir('stdb-cli-'), 'cli.toml');
}

/** Builds test/fixtures/modules/<name> with our bundler; returns the bundle path and text. */
export async function buildFixture(name: string): Promise<{ bundlePath: string; code: string }> {
  return bundleModule(path.join(fixturesDir, name), {});
}

/**
 * Mints an identity, publishes test/fixtures/modules/bulk-rows as `name` and loads `rows` rows into it through its
 * `load` reducer, 100,000 per call (a big table for isolation tests and benches); returns the owner's token.
 */
export async function publishBulkRows(server: { url: string }, name: string, rows: number): Promise<string> {
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const published = await fetch(`${server.url}/v1/database/${name}`, { method: 'PUT', headers: auth, body: (await buildFixture('bulk-rows')).code });
  if (published.status !== 200) throw new Error(`publish ${name}: ${published.status} ${await published.text()}`);
  const batchRows = 100_000;
  for (let first = 0; first < rows; first += batchRows) {
    const r = await fetch(`${server.url}/v1/database/${name}/call/load`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify([first, Math.min(batchRows, rows - first)]),
    });
    if (r.status !== 200) throw new Error(`load ${name} at ${first}: ${r.status} ${await r.text()}`);
  }
  return token;
}

export interface GeneratedBindings {
  /** The directory holding the generated `index.ts`. */
  dir: string;
  /** Imports the generated `index.ts`; typed loosely because the code exists only at test time. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  load(): Promise<any>;
}

/**
 * Generates TypeScript client bindings with our own `spacetime generate` (in-process, no spacetime.json) for
 * test/fixtures/modules/<fixture> or an already bundled `{ jsPath }`, into test/.generated/<name>-<pid>, so tests
 * exercise the real generator instead of a checked-in copy. The directory is removed by cleanupTempDirs().
 */
export async function generateBindings(fixture: string | { jsPath: string }): Promise<GeneratedBindings> {
  const name = typeof fixture === 'string' ? fixture : path.basename(fixture.jsPath).replace(/\.[^.]*$/, '');
  const dir = path.join(generatedRoot, `${name}-${process.pid}-${tempDirs.length}`);
  tempDirs.push(dir);
  const source = typeof fixture === 'string' ? { modulePath: path.join(fixturesDir, fixture) } : { jsPath: fixture.jsPath };
  await generateFromCli({ lang: 'typescript', outDir: dir, ...source, yes: true, noConfig: true, cwd: repoRoot, print: () => {} });
  return { dir, load: () => import(pathToFileURL(path.join(dir, 'index.ts')).href) };
}

/** The database identity printed by `publish` (`… identity: <hex>`). */
export function scrapeIdentity(publishStdout: string): string {
  const match = /identity: ([0-9a-fA-F]+)/.exec(publishStdout);
  if (match === null) throw new Error(`no identity in publish output:\n${publishStdout}`);
  return match[1];
}

/**
 * Polls `ok` every `intervalMs` until it holds; throws naming `what` after `ms`. The polling stops either way: a loop
 * left polling after its test failed kept the file alive until the runner's timeout.
 */
export async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000, intervalMs = 10): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** `promise`, or a rejection naming `what` after `ms` (the timer does not keep the process alive). */
export function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref()),
  ]);
}
