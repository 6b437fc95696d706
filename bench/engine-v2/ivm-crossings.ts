// bench/engine-v2/ivm-crossings.ts — does isolated-vm cost the same inside a worker thread as on the main thread?
// Measures, on each side, with the same code: an applySync into the isolate (numbers only; without and with the
// `timeout` option every reducer call carries), a callback from the isolate into the host (numbers only; inside an
// untimed and a timed call), and the real keynote transfer through today's Database (CPU-µs of the calling thread).
//
// Run: node --import tsx bench/engine-v2/ivm-crossings.ts [runs=5]
// Prints the median of `runs` runs per side (the machine is shared; single runs are noisy).
// Owns: nothing. May call: isolated-vm, bench/engine-v2/{common,keynote-db}.ts.

import ivm from 'isolated-vm';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { median, printTable, processCpuUs, startTsWorker, threadCpuNs } from './common.js';
import { openKeynote, type KeynoteDb } from './keynote-db.js';

/** ENGINE_V2_QUICK=1 shrinks the counts 10× (used to repeat the whole script many times, looking for crashes). */
const scale = process.env.ENGINE_V2_QUICK ? 0.1 : 1;
const crossingsPerRun = 200_000 * scale;
const transfersPerRun = 50_000 * scale;

function trace(line: string): void {
  if (process.env.ENGINE_V2_TRACE) process.stderr.write(`[${isMainThread ? 'main' : 'worker'}] ${line}\n`);
}

interface Figures {
  applySyncNs: number; applySyncTimeoutNs: number; callbackNs: number; callbackTimedNs: number; transferCpuUs: number;
  /** The whole process's CPU per transfer (the other side idles meanwhile): catches work on isolated-vm's own threads. */
  transferProcessCpuUs: number;
}

/** CPU-ns per operation of `n` repetitions of `body` on this thread. */
function perOp(n: number, body: () => void): number {
  const t0 = threadCpuNs();
  body();
  return (threadCpuNs() - t0) / n;
}

function transferFigures(keynote: KeynoteDb): Pick<Figures, 'transferCpuUs' | 'transferProcessCpuUs'> {
  const process0 = processCpuUs();
  const r = keynote.runTransfers(transfersPerRun);
  return { transferCpuUs: r.threadCpuNs / transfersPerRun / 1000, transferProcessCpuUs: (processCpuUs() - process0) / transfersPerRun };
}

async function measure(runs: number): Promise<Figures> {
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  const context = isolate.createContextSync();
  await context.global.set('hostAdd', new ivm.Callback((a: number, b: number) => a + b));
  const add = context.evalSync('(function (a, b) { return a + b; })', { reference: true }) as ivm.Reference<(a: number, b: number) => number>;
  const loop = context.evalSync('(function (n) { let s = 0; for (let i = 0; i < n; i++) s += hostAdd(i, 1); return s; })',
    { reference: true }) as ivm.Reference<(n: number) => number>;
  const noTimeout = {};
  const timeout = { timeout: 10_000 };
  trace('isolate ready');
  const keynote = await openKeynote({ accounts: 100_000 });
  trace('keynote open');
  keynote.runTransfers(10_000);                       // JIT warm-up on both sides of the boundary
  const samples: Figures[] = [];
  for (let r = 0; r < runs; r++) {
    const n = crossingsPerRun;
    samples.push({
      applySyncNs: perOp(n, () => { for (let i = 0; i < n; i++) add.applySync(undefined, [i, 1], noTimeout); }),
      applySyncTimeoutNs: perOp(n, () => { for (let i = 0; i < n; i++) add.applySync(undefined, [i, 1], timeout); }),
      callbackNs: perOp(n, () => loop.applySync(undefined, [n], noTimeout)),
      callbackTimedNs: perOp(n, () => loop.applySync(undefined, [n], timeout)),
      ...transferFigures(keynote),
    });
  }
  trace('measured');
  await keynote.db.close();
  trace('db closed');
  isolate.dispose();
  trace('isolate disposed');
  const out = {} as Figures;
  for (const k of Object.keys(samples[0]) as (keyof Figures)[]) out[k] = median(samples.map((s) => s[k]));
  return out;
}

if (isMainThread) {
  const runs = Number(process.argv[2] ?? 5);
  const onMain = await measure(runs);
  const worker = startTsWorker(import.meta.url, { runs });
  const inWorker = await new Promise<Figures>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  trace('worker reported');
  await worker.terminate();
  trace('worker terminated');
  console.log(`isolated-vm crossings, median of ${runs} runs (CPU-ns of the calling thread per operation; keynote: CPU-µs per transfer)`);
  printTable(['operation', 'main thread', 'worker thread', 'worker / main'], [
    ['applySync into the isolate, numbers only, ns', onMain.applySyncNs, inWorker.applySyncNs, inWorker.applySyncNs / onMain.applySyncNs],
    ['applySync with {timeout}, ns', onMain.applySyncTimeoutNs, inWorker.applySyncTimeoutNs, inWorker.applySyncTimeoutNs / onMain.applySyncTimeoutNs],
    ['callback isolate → host (untimed call), ns', onMain.callbackNs, inWorker.callbackNs, inWorker.callbackNs / onMain.callbackNs],
    ['callback isolate → host (call with {timeout}), ns', onMain.callbackTimedNs, inWorker.callbackTimedNs, inWorker.callbackTimedNs / onMain.callbackTimedNs],
    ['keynote transfer through Database, CPU-µs of the thread', onMain.transferCpuUs, inWorker.transferCpuUs, inWorker.transferCpuUs / onMain.transferCpuUs],
    ['keynote transfer, CPU-µs of the process', onMain.transferProcessCpuUs, inWorker.transferProcessCpuUs, inWorker.transferProcessCpuUs / onMain.transferProcessCpuUs],
  ]);
} else {
  parentPort!.postMessage(await measure((workerData as { runs: number }).runs));
  trace('posted');
}
