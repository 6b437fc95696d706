// host/memory-guard.ts — the server's memory bound (limits.ts "Server memory"): the process's resident set, sampled on
// the main thread and shared with every database thread, and the refusals of work that adds memory while the sample
// is at or over the bound.
//
// Owns: the sample (a SharedArrayBuffer of two Int32 cells: resident MiB, bound MiB; 0 bound: none), its sampler (an
// unref'd timer on the main thread), the memory available to the process (its cgroup's limit, else the machine's) and
// the refusal message. Callers decide what adds memory: a transaction whose rows grew and a new subscription
// (host/database.ts), a new database or a module update (server/databases.ts); host/runtime.ts replaces large module
// heaps while the bound is reached.
// May call: limits.ts, node:os.
//
// Why a shared sample and not a read per commit: reading the resident set is a /proc read (~10 µs), as much as a
// whole keynote transfer; a database thread reads the sample with one Atomics.load. A process-wide value, because
// the resident set is the process's: every database thread and the main thread see the same one.

import { totalmem } from 'node:os';
import { serverMemoryMaxMibConfigured, serverMemorySampleMs } from '../limits.js';

const residentCell = 0;
const boundCell = 1;
let sample: Int32Array | undefined;
let sampler: NodeJS.Timeout | undefined;
let samplerUsers = 0;

/** Bytes this process may use: its cgroup's memory limit when it has one below the machine's memory, else the latter. */
export function availableMemoryBytes(): number {
  const machine = totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < machine ? constrained : machine;
}

/** The bound this server runs with, in MiB (0: none): the env override, else a share of `availableMemoryBytes`. */
export function configuredMemoryBoundMib(): number {
  return serverMemoryMaxMibConfigured(availableMemoryBytes());
}

/**
 * The last sample stays when the read fails: it opens /proc/self/stat, and a process out of file descriptors got
 * EMFILE here, thrown from a timer, which ended the server (found by opening 20k WebSockets).
 */
function takeSample(cells: Int32Array): void {
  let residentBytes: number;
  try {
    residentBytes = process.memoryUsage.rss();
  } catch {
    return;
  }
  Atomics.store(cells, residentCell, Math.ceil(residentBytes / 1048576));
}

/**
 * Main thread: samples the resident set every `serverMemorySampleMs` against `boundMib` (0: no bound) until every
 * caller stopped it; returns the stop function. The last bound set is the one in force (one server per process).
 */
export function startMemorySampler(boundMib: number): () => void {
  const cells = (sample ??= new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT)));
  Atomics.store(cells, boundCell, boundMib);
  takeSample(cells);
  sampler ??= setInterval(() => takeSample(cells), serverMemorySampleMs).unref();
  samplerUsers++;
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    if (--samplerUsers === 0 && sampler !== undefined) {
      clearInterval(sampler);
      sampler = undefined;
    }
  };
}

/** The sample's memory, to hand to a database thread (`attachMemorySample` there); undefined before a sampler ran. */
export function sharedMemorySample(): SharedArrayBuffer | undefined {
  return sample?.buffer as SharedArrayBuffer | undefined;
}

/** A database thread: reads the main thread's sample from now on. */
export function attachMemorySample(shared: SharedArrayBuffer | undefined): void {
  if (shared !== undefined) sample = new Int32Array(shared);
}

/** True while the process is at or over its memory bound (false with no bound or no sample): one Atomics.load each. */
export function memoryBoundReached(): boolean {
  if (sample === undefined) return false;
  const boundMib = Atomics.load(sample, boundCell);
  return boundMib !== 0 && Atomics.load(sample, residentCell) >= boundMib;
}

/**
 * Undefined while the process is under its memory bound (or has none, or no sample: a Database used in process); else
 * why `what` is refused, naming the bound.
 */
export function memoryRefusal(what: string): string | undefined {
  if (sample === undefined || !memoryBoundReached()) return undefined;
  const boundMib = Atomics.load(sample, boundCell);
  const residentMib = Atomics.load(sample, residentCell);
  return `the server is out of memory: it uses ${residentMib} MiB, at or over its bound of ${boundMib} MiB ` +
    `(limit serverMemoryShareMax, SPACETIME_SERVER_MEMORY_MAX_MIB); ${what} until memory is freed`;
}
