// host/worker/priority.ts — optionally, the server's main thread ahead of its other threads for the CPU.
//
// Owns: SPACETIME_BACKGROUND_NICE (`backgroundNiceConfigured`: off by default) and, when it is set, the nice value of
// every thread of the process but the main one: each database worker and the program-hash thread lower themselves
// where they start, and the main thread lowers the threads it did not start (V8's platform threads, libuv's pool,
// isolated-vm's) each time a worker thread comes online. Child processes (the esbuild service a worker starts)
// inherit the nice of the thread that spawned them.
// May call: node:os, node:fs.
//
// Why (BENCHMARKS "Why /v1/ping slows", session 11): the main thread answers every client, a few short runs per
// request. While one database migrates or seeds 1M rows on a 2-core machine, one core is that database's worker and
// the other is shared by V8's platform threads (GC of the worker's heap), the esbuild service lowering the new
// program, the other databases' workers and the clients; at equal nice the main thread queues behind them after each
// wake-up (perf sched: during its waits > 2 ms the cores ran V8's platform threads and the busy worker). At nice 10
// the kernel gives the main thread ~9x their weight and it runs soon after it wakes: its waits > 5 ms fell 2-3x and
// /v1/ping answers over 10 ms halved on a loaded machine (load 3-10; at 2.5-5 pings gained nothing and the other
// database's calls, whose worker and fsyncs are behind too, got slower). It is off by default because it costs
// throughput: the main thread then also preempts the database worker at each incoming frame, so frames are read and
// handled in smaller batches (keynote over WebSocket with the server on one core: 0.11-0.16 -> 0.32-0.40 reads and
// 15.9-19.1 -> 20.5-23.3 server CPU-us per transfer), and a process group's CPU share on a core shrinks with its
// threads' nice, so bulk work slows when other processes want the cores. A thread can only raise its own nice without
// privileges (lowering it again needs CAP_SYS_NICE), so the background threads are lowered for good, not per phase,
// and the main thread is not raised.
// Linux only: elsewhere setpriority(pid) names a process, not a thread, and nothing is changed.

import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Nice value of every thread but the main one unless SPACETIME_BACKGROUND_NICE says otherwise: 0, unchanged. */
export const backgroundNiceDefault = 0;

/** SPACETIME_BACKGROUND_NICE as an integer 0..19, or the default; anything else is refused with what is accepted. */
export function backgroundNiceConfigured(value = process.env.SPACETIME_BACKGROUND_NICE): number {
  if (value === undefined || value === '') return backgroundNiceDefault;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 19) {
    throw new Error(`SPACETIME_BACKGROUND_NICE is \`${value}\`: expected an integer from 0 (same priority as the ` +
      `server's main thread) to 19 (the lowest)`);
  }
  return n;
}

const linux = process.platform === 'linux';

/**
 * Lowers the calling thread to SPACETIME_BACKGROUND_NICE (never raises it). A refusal is not an error: the thread runs
 * as it was. A malformed value lowers nothing here: the server refused it at start (workerHost).
 */
export function lowerThisThread(): void {
  if (!linux) return;
  try {
    const nice = backgroundNiceConfigured();
    if (nice > 0 && getPriority(0) < nice) setPriority(0, nice); // pid 0: the calling thread on Linux
  } catch { /* not permitted here (a seccomp profile), or a malformed value: the thread keeps its priority */ }
}

/**
 * From the main thread: lowers every other thread of the process to `nice` (those already lower stay). Returns how
 * many it lowered. Threads that end meanwhile are skipped.
 */
export function lowerOtherThreads(nice = backgroundNiceConfigured()): number {
  if (!linux || nice === 0) return 0;
  const main = process.pid;
  let lowered = 0;
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const entry of tids) {
    const tid = Number(entry);
    if (tid === main || !Number.isInteger(tid)) continue;
    try {
      if (getPriority(tid) < nice) {
        setPriority(tid, nice);
        lowered++;
      }
    } catch { /* the thread ended, or not permitted */ }
  }
  return lowered;
}
