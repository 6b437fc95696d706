// bench/engine-v2/in-isolate.ts — what a transfer costs when the datastore sits inside the isolate beside the module,
// and queued calls enter together: one applySync (with the `timeout` every call carries) per batch of 1 / 10 / 100
// calls, no syscall crossings. Side by side, in one run, on this thread:
//   today           the real Database (official library + shims + host datastore) — keynote and the general workload
//                   (bench/engine-v2/modules/general: string owner, timestamp, audit insert with autoInc)
//   in isolate      bench/engine-v2/isolate-engine.ts (prototype row store + the same transfers as plain JS) inside an
//                   isolated-vm isolate, requests/replies/TxData in SharedArrayBuffers shared with the host
//   in Node         the same engine without an isolate (what the isolate itself costs)
// The in-isolate figures leave out the official library's own per-call work (deserialising arguments, building
// `ctx`, encoding rows), so they bound the datastore + boundary part of a call, not a whole reducer.
//
// Run: node --import tsx bench/engine-v2/in-isolate.ts [runs=3]
// Owns: nothing. May call: isolated-vm, esbuild, bench/engine-v2/{common,keynote-db,isolate-engine}.ts.

import { build } from 'esbuild';
import ivm from 'isolated-vm';
import { median, printTable, threadCpuNs } from './common.js';
import { createEngine, type Engine } from './isolate-engine.js';
import { openKeynote } from './keynote-db.js';

const accounts = 100_000;
const callsPerRun = 100_000;
const batchSizes = [1, 10, 100];
const callBytes = 16;

type Kind = 'keynote' | 'general';
type RunBatch = (kind: Kind, count: number) => number;

function fillRequests(requests: DataView, count: number, next: () => number): void {
  for (let i = 0; i < count; i++) {
    const from = next() % accounts;
    let to = next() % accounts;
    if (to === from) to = (from + 1) % accounts;
    requests.setUint32(i * callBytes, from, true);
    requests.setUint32(i * callBytes + 4, to, true);
    requests.setBigInt64(i * callBytes + 8, 1n, true);
  }
}

/** CPU-µs per call of `calls` calls in batches of `batch`, the host filling each batch's requests as a server would. */
function measure(run: RunBatch, kind: Kind, requests: DataView, replies: Uint8Array, batch: number): number {
  let a = 12345;
  const next = () => (a = (Math.imul(a, 1103515245) + 12345) >>> 0);
  const c0 = threadCpuNs();
  for (let done = 0; done < callsPerRun; done += batch) {
    fillRequests(requests, batch, next);
    run(kind, batch);
    for (let i = 0; i < batch; i++) if (replies[i] !== 0) throw new Error(`call failed in ${kind}`);
  }
  return (threadCpuNs() - c0) / callsPerRun / 1000;
}

async function inIsolate(requestsSab: SharedArrayBuffer, repliesSab: SharedArrayBuffer): Promise<{ run: RunBatch; dispose(): void }> {
  const bundled = await build({
    entryPoints: [new URL('./isolate-engine.ts', import.meta.url).pathname], bundle: true, format: 'iife', globalName: 'engineLib',
    platform: 'neutral', write: false, logLevel: 'silent', target: 'es2022',
  });
  const isolate = new ivm.Isolate({ memoryLimit: 512 });
  const context = isolate.createContextSync();
  context.evalSync(bundled.outputFiles[0].text);
  const setup = context.evalSync(`(function (rq, rp, n) {
    const engine = engineLib.createEngine();
    engine.seed(n);
    const requests = new Uint8Array(rq), replies = new Uint8Array(rp);
    return function (kind, count) {
      return kind === 'keynote' ? engine.runKeynote(requests, replies, count) : engine.runGeneral(requests, replies, count);
    };
  })`, { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
  const runRef = setup.applySync(undefined, [new ivm.ExternalCopy(requestsSab).copyInto(), new ivm.ExternalCopy(repliesSab).copyInto(), accounts],
    { result: { reference: true } }) as unknown as ivm.Reference<RunBatch>;
  const options = { timeout: 10_000 };
  return {
    run: (kind, count) => runRef.applySync(undefined, [kind, count], options),
    dispose: () => isolate.dispose(),
  };
}

function inNode(requestsSab: SharedArrayBuffer, repliesSab: SharedArrayBuffer): RunBatch {
  const engine: Engine = createEngine();
  engine.seed(accounts);
  const requests = new Uint8Array(requestsSab), replies = new Uint8Array(repliesSab);
  return (kind, count) => (kind === 'keynote' ? engine.runKeynote(requests, replies, count) : engine.runGeneral(requests, replies, count));
}

async function today(kind: Kind, runs: number): Promise<number> {
  const db = await openKeynote({ accounts, module: kind });
  db.runTransfers(10_000);
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(db.runTransfers(50_000).threadCpuNs / 50_000 / 1000);
  await db.db.close();
  return median(samples);
}

const runs = Number(process.argv[2] ?? 3);
const requestsSab = new SharedArrayBuffer(callBytes * 128);
const repliesSab = new SharedArrayBuffer(128);
const requests = new DataView(requestsSab);
const replies = new Uint8Array(repliesSab);
const isolateEngine = await inIsolate(requestsSab, repliesSab);
const nodeEngine = inNode(requestsSab, repliesSab);
const rows: (string | number)[][] = [];
for (const kind of ['keynote', 'general'] as Kind[]) {
  rows.push([kind, 'today (Database, official library)', '1', await today(kind, runs)]);
  for (const [where, run] of [['in isolate', isolateEngine.run], ['in Node', nodeEngine]] as [string, RunBatch][]) {
    for (const batch of batchSizes) {
      measure(run, kind, requests, replies, batch);            // warm-up
      const samples: number[] = [];
      for (let r = 0; r < runs; r++) samples.push(measure(run, kind, requests, replies, batch));
      rows.push([kind, where, String(batch), median(samples)]);
    }
  }
}
isolateEngine.dispose();
console.log(`transfer CPU-µs per call (this thread), ${accounts} accounts, median of ${runs} runs of ${callsPerRun} calls ` +
  '(today: 50,000 calls)');
printTable(['workload', 'where the datastore is', 'calls per isolate entry', 'CPU-µs per call'], rows);
