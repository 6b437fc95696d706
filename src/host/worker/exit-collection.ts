// host/worker/exit-collection.ts — before the process exits, every database worker collects its garbage, so that
// ending the worker threads cannot abort the process.
//
// Owns: both halves of that one exchange: the main thread's ask-and-wait (in the process 'exit' event) and each
// worker's answer (a full collection, then a count on a shared Int32Array).
// May call: node:worker_threads (BroadcastChannel), host/worker/idle-gc.ts (the collection), limits.ts.
//
// Why: when the process exits (naturally or by process.exit), Node ends every worker thread and frees its heap.
// isolated-vm 5.0.4 releases its per-thread environment in an environment cleanup hook, and a collection V8 runs after
// that (finishing an incremental marking while the thread's heap is freed) calls the weak callbacks of dead ivm handles
// (a disposed module's Isolate, Context and References, the locals of a module load, a procedure's argument copies),
// which look that environment up and abort the whole process: exit code 134, "Assertion `environment != nullptr'
// failed" (1 in ~25 runs of test/server/http.test.ts, after all its subtests passed). A thread with no dead ivm
// handle left has nothing for that collection to call back. So the main thread asks each worker, from the 'exit' event,
// to collect now, and waits (a bounded time: a worker busy in a long call answers late or never) for their answers.
// Nothing runs in a worker after it answered but what was already queued there, and that is cut short by the exit.
// The main thread's own isolates (the single-thread engine) are covered by host/runtime.ts's exit guard instead.

import { BroadcastChannel, type Worker } from 'node:worker_threads';
import { collectGarbage } from './idle-gc.js';
import { workerExitCollectionWaitMs } from '../../limits.js';

const channelName = 'spacetime:worker-exit-collection';

/** Worker threads started and not yet ended (main thread). */
const liveWorkers = new Set<Worker>();
let exitHookInstalled = false;

/** Main thread: `worker` will be asked to collect before the process exits (until it ends by itself). */
export function collectBeforeProcessExit(worker: Worker): void {
  liveWorkers.add(worker);
  worker.once('exit', () => liveWorkers.delete(worker));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', askWorkersToCollect);
}

function askWorkersToCollect(): void {
  const workers = liveWorkers.size;
  if (workers === 0) return;
  const answered = new Int32Array(new SharedArrayBuffer(4));
  const channel = new BroadcastChannel(channelName);
  channel.postMessage(answered);
  channel.close();
  const deadline = performance.now() + workerExitCollectionWaitMs;
  for (let seen = Atomics.load(answered, 0); seen < workers; seen = Atomics.load(answered, 0)) {
    const leftMs = deadline - performance.now();
    if (leftMs <= 0 || Atomics.wait(answered, 0, seen, leftMs) === 'timed-out') return;
  }
}

/** Worker thread: answers the main thread's ask (see the header). Does not keep the thread alive. */
export function answerExitCollection(): void {
  const channel = new BroadcastChannel(channelName);
  channel.unref();
  channel.onmessage = (event: unknown) => {
    const answered = (event as { data: Int32Array }).data;
    const answer = (): void => { Atomics.add(answered, 0, 1); Atomics.notify(answered, 0); };
    collectGarbage().then(answer, answer);
  };
}
