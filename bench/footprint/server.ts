// Real-process plumbing for bench/footprint.ts: spawning `node bin/spacetime.js start` (the built dist/) on its own
// loopback port and data dir, timing it until `/v1/ping` answers, stopping it gracefully or with SIGKILL, reading its
// RSS from /proc, and asking its V8 (through the Node inspector, when started with `inspect`) for
// `process.memoryUsage()` after a full GC of its main thread, and each worker thread's without one — so the server
// itself needs no metrics endpoint and no source change.
// Also the real CLI (`spacetime …` with a per-run cli.toml), timed.
// Owns: the child processes it spawns and the inspector sockets it opens. May call: node built-ins, ws,
// bench/keynote/ours.ts (repoRoot), bench/keynote/procs.ts (CPU time of a process tree).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { repoRoot } from '../keynote/ours.js';
import { treeCpuMicros } from '../keynote/procs.js';

const cliPath = path.join(repoRoot, 'bin', 'spacetime.js');
/** How long a server may take to answer /v1/ping (a 1M-transaction replay must fit). */
const serverReadyTimeoutMs = 120_000;
/** Readiness poll interval: small, because cold start itself is being measured. */
const readyPollMs = 5;
/** A graceful stop that takes longer than this is escalated to SIGKILL (and reported as such). */
const stopGraceMs = 30_000;
/** A CLI command that runs longer than this is killed. */
const cliTimeoutMs = 120_000;
const inspectorCallTimeoutMs = 60_000;

/** Every server child still running, so an interrupted run can take them down (killAllServers). */
const liveServers = new Set<ChildProcess>();

/** SIGKILLs every server this process started that is still running (for Ctrl-C; normal paths stop their own). */
export function killAllServers(): void {
  for (const child of liveServers) child.kill('SIGKILL');
  liveServers.clear();
}

export function assertBuilt(): void {
  if (!existsSync(path.join(repoRoot, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (this bench runs the real server from dist/)');
  }
}

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  readonly dataDir: string;
  /** Milliseconds from spawn until /v1/ping answered 200. */
  readonly readyMs: number;
  /** CPU ms (user + system) the server process had used when /v1/ping first answered; NaN without /proc. */
  readonly readyCpuMs: number;
  /** performance.now() at spawn. */
  readonly spawnedAt: number;
  output(): string;
  /** Present when started with `inspect: true`. */
  readonly inspector: Inspector | undefined;
  /** SIGTERM and wait; resolves to the milliseconds until exit (SIGKILL after stopGraceMs). */
  stop(): Promise<{ ms: number; forced: boolean }>;
  /** SIGKILL and wait for the exit. */
  kill9(): Promise<void>;
}

export interface StartOptions {
  dataDir: string;
  port: number;
  configPath: string;
  /** Start node with `--inspect=127.0.0.1:0` and connect to it (for heap figures). */
  inspect?: boolean;
}

/** Spawns the real server and resolves once /v1/ping answers (the server opens every database before listening). */
export async function startServer(opts: StartOptions): Promise<ServerProcess> {
  const url = `http://127.0.0.1:${opts.port}`;
  const nodeFlags = opts.inspect === true ? ['--inspect=127.0.0.1:0'] : [];
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeFlags, cliPath, '--config-path', opts.configPath, 'start',
    '--listen-addr', `127.0.0.1:${opts.port}`, '--data-dir', opts.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  assert.ok(child.pid !== undefined, 'spawn gave no pid');
  liveServers.add(child);
  child.once('exit', () => liveServers.delete(child));
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitForPing(url, child, () => log);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const readyMs = performance.now() - spawnedAt;
  const readyCpuMs = cpuMs(child.pid);
  let inspector: Inspector | undefined;
  if (opts.inspect === true) {
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(log);
    if (m === null) throw new Error(`no inspector URL in the server output:\n${log}`);
    inspector = await Inspector.connect(m[1]!);
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    url, pid: child.pid, dataDir: opts.dataDir, readyMs, readyCpuMs, spawnedAt, inspector,
    output: () => log,
    stop: async () => {
      inspector?.close();
      const t0 = performance.now();
      child.kill('SIGTERM');
      let forced = false;
      const timer = setTimeout(() => {
        forced = true;
        child.kill('SIGKILL');
      }, stopGraceMs);
      await exited;
      clearTimeout(timer);
      return { ms: performance.now() - t0, forced };
    },
    kill9: async () => {
      inspector?.close();
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function waitForPing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = performance.now() + serverReadyTimeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before it was ready:\n${output()}`);
    try {
      if ((await fetch(`${url}/v1/ping`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(readyPollMs);
  }
  throw new Error(`server at ${url} not ready after ${serverReadyTimeoutMs} ms:\n${output()}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resident set size of `pid` in bytes (VmRSS), its anonymous part (RssAnon: heaps, malloc), and its peak (VmHWM). */
export function procRss(pid: number): { rss: number; anon: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]) * 1024;
  };
  return { rss: field('VmRSS'), anon: field('RssAnon'), peak: field('VmHWM') };
}

/** CPU ms (user + system) used so far by `pid` and its children; NaN without /proc. */
export function cpuMs(pid: number): number {
  return (treeCpuMicros([pid]) ?? NaN) / 1000;
}

/** Total size in bytes of the regular files under `dir` (0 when it does not exist). */
export function dirBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

/** A minimal Chrome DevTools Protocol client for the server's main V8 isolate. */
export class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  /** Listeners of protocol events (messages without an id), while a call that needs them runs. */
  private readonly eventListeners = new Set<(method: string, params: Record<string, unknown>) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString()) as {
        id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown>;
      };
      if (msg.id === undefined) {
        for (const listener of this.eventListeners) listener(msg.method ?? '', msg.params ?? {});
        return;
      }
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p.reject(new Error(`inspector: ${msg.error.message}`));
      else p.resolve(msg.result);
    });
    ws.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('inspector socket closed'));
      this.pending.clear();
    });
  }

  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Inspector(ws);
  }

  private call(method: string, params: object = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inspector ${method} timed out`)), inspectorCallTimeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** A full, major GC of the server's main isolate (module isolates are not collected by this). */
  async collectGarbage(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
  }

  async memoryUsage(): Promise<MemoryUsage> {
    const r = (await this.call('Runtime.evaluate', {
      expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true,
    })) as { result: { value: string } };
    return JSON.parse(r.result.value) as MemoryUsage;
  }

  /**
   * `process.memoryUsage()` of every worker thread (database workers, idle spares), through the NodeWorker domain,
   * after a full GC of each when `gc` (the session is no request to a database worker: it does not delay the
   * worker's idle GC). Heap and external figures are each thread's own isolate's; rss is the process's.
   */
  async workerMemoryUsages(gc: boolean): Promise<MemoryUsage[]> {
    const sessions: string[] = [];
    const replies = new Map<string, (message: string) => void>();
    const listener = (method: string, params: Record<string, unknown>): void => {
      if (method === 'NodeWorker.attachedToWorker') sessions.push(params.sessionId as string);
      else if (method === 'NodeWorker.receivedMessageFromWorker') {
        const message = params.message as string;
        replies.get(`${params.sessionId as string}:${(JSON.parse(message) as { id: number }).id}`)?.(message);
      }
    };
    this.eventListeners.add(listener);
    try {
      // The workers that exist are attached (one event each) before this call answers.
      await this.call('NodeWorker.enable', { waitForDebuggerOnStart: false });
      const callWorker = async (sessionId: string, id: number, method: string, params: object = {}): Promise<unknown> => {
        const reply = new Promise<string>((resolve) => replies.set(`${sessionId}:${id}`, resolve));
        await this.call('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) });
        return (JSON.parse(await reply) as { result: unknown }).result;
      };
      return await Promise.all(sessions.map(async (sessionId) => {
        if (gc) await callWorker(sessionId, 1, 'HeapProfiler.collectGarbage');
        const answer = await callWorker(sessionId, 2, 'Runtime.evaluate', {
          expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true,
        }) as { result: { value: string } };
        return JSON.parse(answer.result.value) as MemoryUsage;
      }));
    } finally {
      this.eventListeners.delete(listener);
      await this.call('NodeWorker.disable');
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the real CLI (`node bin/spacetime.js --config-path <configPath> …`) and times it from spawn to exit. */
export async function runCli(args: readonly string[], configPath: string): Promise<CliRun> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [cliPath, '--config-path', configPath, ...args], {
    cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), cliTimeoutMs);
  const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

/** runCli that throws (with the CLI's output) unless the command exited 0. */
export async function runCliOk(args: readonly string[], configPath: string): Promise<CliRun> {
  const r = await runCli(args, configPath);
  if (r.code !== 0) throw new Error(`spacetime ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}
