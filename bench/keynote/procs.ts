// Process plumbing for the keynote harness: spawning a system's server pinned to the SUT cores and waiting for its
// `{"listening": port}` line, pinning the load generator, reading CPU time of a process tree from /proc, and the
// registry of things to stop when the harness is interrupted (Ctrl-C, SIGTERM) or dies of an uncaught exception,
// and the machine's busy CPU time from /proc/stat (whether other load shared the cores during a run); per-thread CPU
// time and context switches of a process (bench/server-profile, bench/worker-seam.ts).
// Owns the child processes it spawns (stop them with `stopChild`) and that registry. May call: node built-ins,
// `taskset`, `getconf`, ../install (hasCommand).
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { hasCommand, type Requirement } from '../install.js';

export { hasCommand };

/** How long a server may take to print its listening line. */
const serverReadyTimeoutMs = 60_000;
/** How long a stopped child gets after SIGTERM before SIGKILL. */
const stopGraceMs = 5_000;

/** taskset, for ../install.ts: Debian's util-linux. Without it the systems and the load generator share every core. */
export const tasksetRequirement: Requirement = {
  key: 'taskset',
  name: 'taskset (CPU pinning)',
  packages: ['util-linux'],
  without: 'running unpinned',
  present: () => hasCommand('taskset'),
};

/** CPU lists for the system under test and the load generator, or undefined when pinning is not possible. */
export interface Pinning {
  serverCpus: string;
  clientCpus: string;
}

/** Splits the cores in two halves (server gets the lower half) when taskset exists and there are ≥ 2 cores. */
export function defaultPinning(): Pinning | undefined {
  const cores = os.availableParallelism();
  if (cores < 2 || !hasCommand('taskset')) return undefined;
  const half = Math.floor(cores / 2);
  const range = (a: number, b: number) => (a === b ? `${a}` : `${a}-${b}`);
  return { serverCpus: range(0, half - 1), clientCpus: range(half, cores - 1) };
}

/** Pins every thread of this process (the load generator) to `cpus`. */
export function pinSelf(cpus: string): void {
  execFileSync('taskset', ['-a', '-cp', cpus, String(process.pid)], { stdio: 'ignore' });
}

/** argv prefix that runs a command on the given CPUs (empty when not pinning). */
export function pinPrefix(cpus: string | undefined): string[] {
  return cpus === undefined ? [] : ['taskset', '-c', cpus];
}

export interface ServerChild {
  child: ChildProcess;
  port: number;
  output(): string;
  /** stopChild, at most once; also run if the harness is interrupted. */
  stop(): Promise<void>;
}

/** Stops still to run when the harness is interrupted; each removes itself once it has run. */
const pendingStops = new Set<() => Promise<void>>();
/** How long interrupt cleanup waits for all stops (pg_ctl's own fast-stop wait is 60 s) before exiting anyway. */
const interruptCleanupMaxMs = 70_000;

/**
 * Registers `stop` to run if the harness is interrupted or crashes, and returns a wrapper that runs it at most once
 * (later calls share the first call's promise) and unregisters it. Call the wrapper on the normal path.
 */
export function stopOnExit(stop: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = (): Promise<void> => {
    if (done === undefined) {
      pendingStops.delete(once);
      done = stop();
    }
    return done;
  };
  pendingStops.add(once);
  return once;
}

/** Runs every registered stop that has not run yet; never throws. */
export async function runPendingStops(): Promise<void> {
  await Promise.allSettled([...pendingStops].map((stop) => stop()));
}

/**
 * On SIGINT/SIGTERM/SIGHUP or an uncaught exception: stop every registered system (the PostgreSQL postmaster is in
 * its own session, so Ctrl-C does not reach it), then exit. A second Ctrl-C exits at once.
 */
export function installInterruptCleanup(): void {
  const bail = (why: string, code: number) => {
    console.log(`\n${why}: stopping the systems under test …`);
    const timer = setTimeout(() => process.exit(code), interruptCleanupMaxMs);
    void runPendingStops().finally(() => {
      clearTimeout(timer);
      process.exit(code);
    });
  };
  const signals: [NodeJS.Signals, number][] = [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]];
  for (const [signal, code] of signals) process.once(signal, () => bail(signal, code));
  process.once('uncaughtException', (err) => {
    console.error(err);
    bail('uncaught exception', 1);
  });
  process.once('unhandledRejection', (err) => {
    console.error(err);
    bail('unhandled rejection', 1);
  });
}

/** Spawns `argv` and resolves once it prints `{"listening": <port>}` on a line of stdout. */
export async function spawnServer(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<ServerChild> {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const stop = stopOnExit(() => stopChild(child));
  let log = '';
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} not listening after ${serverReadyTimeoutMs} ms:\n${log}`)),
      serverReadyTimeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /\{"listening":(\d+)\}/.exec(log);
      if (m !== null) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited with ${code} before listening:\n${log}`));
    });
  });
  try {
    return { child, port: await ready, output: () => log, stop };
  } catch (err) {
    await stop(); // a server that never got ready (timeout) may still be running
    throw err;
  }
}

/**
 * Polls `url`/v1/ping every 100 ms until it answers 200; throws (with the child's output) when `child` exits first or
 * `timeoutMs` passes. `label` names the server in those errors.
 */
export async function waitForPing(url: string, child: ChildProcess, output: () => string, timeoutMs: number,
  label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${label} exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/v1/ping`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${label} not ready after ${timeoutMs} ms:\n${output()}`);
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(timer);
}

let clockTicksPerSecond: number | undefined;

function ticksPerSecond(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

interface ProcStat {
  ppid: number;
  ticks: number; // utime + stime
  childTicks: number; // cutime + cstime (children already reaped)
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between readdir and read
  }
  // Field 2 (comm) may contain spaces; everything after the last ')' is space-separated from field 3 on.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
}

/**
 * CPU time in µs used so far by the given processes and all their live descendants, plus the descendants the roots
 * have already reaped. Returns undefined when /proc is not available.
 */
export function treeCpuMicros(roots: number[]): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (st !== undefined) stats.set(pid, st);
  }
  const children = new Map<number, number[]>();
  for (const [pid, st] of stats) {
    const list = children.get(st.ppid);
    if (list === undefined) children.set(st.ppid, [pid]);
    else list.push(pid);
  }
  let ticks = 0;
  const seen = new Set<number>();
  const stack = [...roots];
  for (const root of roots) ticks += stats.get(root)?.childTicks ?? 0;
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    ticks += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  assert.ok(ticks >= 0);
  return (ticks * 1e6) / ticksPerSecond();
}

/**
 * CPU time in µs the whole machine has spent busy (every core, every process: /proc/stat's first line minus idle
 * and iowait) since boot; undefined without /proc. Two readings apart by a wall interval give the busy cores.
 */
export function machineBusyMicros(): number | undefined {
  if (!existsSync('/proc/stat')) return undefined;
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // cpu user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  assert.ok(line.startsWith('cpu ') && f.length === 8 && f.every(Number.isFinite), `unexpected /proc/stat line: ${line}`);
  const busyTicks = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  return (busyTicks * 1e6) / ticksPerSecond();
}

/** CPU ns each live thread of `pid` has run so far (/proc/<pid>/task/<tid>/schedstat), by thread id. */
export function threadCpuNanos(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch { /* the thread ended */ }
  }
  return out;
}

/** Context switches (voluntary + involuntary) of every thread of `pid` so far: each a wake-up or a preemption. */
export function contextSwitches(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      n += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(text)?.[1] ?? 0) + Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(text)?.[1] ?? 0);
    } catch { /* the thread ended */ }
  }
  return n;
}
