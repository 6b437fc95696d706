// host/worker/idle-gc.ts — a database worker that goes idle after allocating a lot gives its garbage back.
//
// Owns: the idle check of one worker thread (a timer re-armed while requests of any of its databases arrive) and its
// full collections.
// May call: node:v8 (heap figures), node:inspector (the collection), limits.ts.
//
// V8 collects when allocation asks it to, so a heap that stops allocating keeps its garbage: a worker that ran a
// 1M-row seed and then waits holds that transaction's garbage in RSS until the next request makes V8 collect.
// So when no request came for a whole `workerIdleGcAfterMs` and the heap (V8 heap committed plus external memory)
// grew by more than `workerIdleGcHeapGrowthBytes` since the last collection, the thread collects, and once more an
// idle period later (see `check`). A worker that keeps getting requests never collects here: V8 does, as it allocates.
//
// The collection is the inspector's HeapProfiler.collectGarbage, through an in-process session of this thread (no
// process flag, nothing exposed to modules): it is V8's LowMemoryNotification, which also shrinks the young
// generation and releases freed pages. `gc()` from `--expose-gc` (set at run time) freed the same objects but kept
// ~35 MiB more committed (a worker dropping 260 MiB of objects: RSS 109 against 72 MiB), and the flag is
// process-wide, so an isolate created meanwhile would see `gc`.
// The module's isolate (isolated-vm) is not collected: its rows go through the host, so a 1M-row seed left its heap at
// 5.1 MiB committed (1.5 MiB more than before); isolated-vm has no collection call to make either.

import inspector from 'node:inspector';
import v8 from 'node:v8';
import { workerIdleGcAfterMsConfigured, workerIdleGcHeapGrowthBytes } from '../../limits.js';

/** V8 heap committed plus external memory (ArrayBuffers) of this thread: what garbage keeps resident. */
function heapBytes(): number {
  const h = v8.getHeapStatistics();
  return h.total_heap_size + h.external_memory;
}

/** One full collection of this thread's heap; resolves when it is done. */
export async function collectGarbage(): Promise<void> {
  const session = new inspector.Session();
  session.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      session.post('HeapProfiler.collectGarbage', (err) => (err === null ? resolve() : reject(err)));
    });
  } finally {
    // Not from inside the post callback: a disconnect there never returns (Node 20.20, the thread hangs).
    session.disconnect();
  }
}

/**
 * Collects this thread's garbage once it has been idle (see the header); the function returned is to be called when
 * a batch of requests arrives, for any database of the thread. A collection that fails (a Node built without the
 * inspector) is reported once on `report`, and none is tried again.
 */
export function collectWhenIdle(report: (line: string) => void): () => void {
  const idleAfterMs = workerIdleGcAfterMsConfigured();
  if (idleAfterMs === 0) return () => {};
  let heapBytesAfterCollection = heapBytes();
  let requested = false;
  let lookAgain = false;
  let failed = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => { timer ??= setTimeout(check, idleAfterMs).unref(); };

  async function check(): Promise<void> {
    timer = undefined;
    if (failed) return;
    if (requested) {
      requested = false;
      arm();
      return;
    }
    if (!lookAgain && heapBytes() - heapBytesAfterCollection <= workerIdleGcHeapGrowthBytes) return;
    try {
      await collectGarbage();
    } catch (err) {
      failed = true;
      report(`database worker: idle garbage collection failed: ${(err as Error).message}`);
      return;
    }
    heapBytesAfterCollection = heapBytes();
    // Idle means no request came, not that nothing was running: a large commit's fsync (its reply waits for it) may
    // still hold the transaction's garbage. Nothing shows when that ends (unreachable objects change no heap figure),
    // so after a collection for growth the thread collects once more an idle period later.
    lookAgain = !lookAgain;
    if (lookAgain) arm();
  }

  // Per batch of requests only a flag (and a timer when the worker was idle): nothing measurable per call.
  return () => {
    requested = true;
    arm();
  };
}
