// bench/engine-v2/cpu-limit.ts — is a reducer's CPU limit kept to time? (issue 12, item 3) Runs inside a worker
// thread, as a v2 database would, with a limit of `limitMs`:
//   today, pure loop        the runaway fixture's `spin` through today's Database (isolated-vm `timeout` only)
//   today, syscall loop     `spinFind` (bench/engine-v2/modules/spin-syscalls: `find` in a loop) through today's Database
//   raw, callback loop      an isolate looping over a host callback worth ~2 µs, isolated-vm `timeout` only
//   raw, callback + deadline the same, and the host callback checks a wall-clock deadline and disposes the isolate
// For each: wall ms until the call returned, the calling thread's CPU ms, and the isolate's own CPU ms
// (isolated-vm counts only the latter against `timeout`, which is why syscall loops overrun).
//
// Run: node --import tsx bench/engine-v2/cpu-limit.ts [limitMs=1000]
// Owns: its worker. May call: isolated-vm, src/host/database.ts, test/host/bundle.ts, bench/engine-v2/{common,keynote-db}.ts.

import ivm from 'isolated-vm';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { printTable, startTsWorker, threadCpuNs } from './common.js';
import { benchModuleBundle } from './keynote-db.js';

interface Row { case: string; wallMs: number; threadCpuMs: number; isolateCpuMs: number; outcome: string }
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };

function timed(name: string, body: () => { outcome: string; isolateCpuMs: number }): Row {
  const c0 = threadCpuNs();
  const t0 = performance.now();
  const r = body();
  return { case: name, wallMs: performance.now() - t0, threadCpuMs: (threadCpuNs() - c0) / 1e6, ...r };
}

async function throughDatabase(name: string, program: string, reducer: string, limitMs: number): Promise<Row> {
  const { Database } = await import('../../src/host/database.js');
  const db = await Database.create({ identity: 0x99n, ownerIdentity: 2n, limits: { reducerTimeoutMs: limitMs } }, program);
  if (db.reducerByName('seed') !== undefined) db.callReducerNow('seed', new Uint8Array(0), caller);
  const row = timed(name, () => {
    const r = db.callReducerNow(reducer, new Uint8Array(0), caller)!;
    return { outcome: r.result.status === 'committed' ? 'committed' : r.result.message.slice(0, 70), isolateCpuMs: NaN };
  });
  await db.close();
  return row;
}

function rawCallbackLoop(limitMs: number, withDeadline: boolean): { outcome: string; isolateCpuMs: number } {
  const isolate = new ivm.Isolate({ memoryLimit: 64 });
  const context = isolate.createContextSync();
  let deadline = Infinity;
  const work = (): number => { let s = 0; for (let i = 0; i < 300; i++) s += Math.sqrt(i); return s; };  // ~1–2 µs
  context.global.setSync('host', new ivm.Callback(() => {
    // The check costs one clock read per syscall (~30 ns). Disposing from inside the callback ends the applySync at
    // once with "Isolate was disposed during execution"; the module cannot catch it.
    if (withDeadline && performance.now() > deadline) { isolate.dispose(); return 0; }
    return work();
  }));
  const loop = context.evalSync('(function () { for (;;) { try { host(); } catch (e) {} } })', { reference: true }) as ivm.Reference<() => void>;
  deadline = performance.now() + limitMs;
  let outcome = 'returned';
  try {
    loop.applySync(undefined, [], { timeout: limitMs });
  } catch (err) {
    outcome = String(err).replace(/^Error: /, '').slice(0, 60);
  }
  const isolateCpuMs = isolate.isDisposed ? NaN : Number(isolate.cpuTime) / 1e6;
  if (!isolate.isDisposed) isolate.dispose();
  return { outcome, isolateCpuMs };
}

async function workerMain(limitMs: number): Promise<Row[]> {
  const { fixtureBundle } = await import('../../test/host/bundle.js');
  const runaway = await fixtureBundle('runaway');
  const spinSyscalls = await benchModuleBundle('spin-syscalls');
  const rows: Row[] = [];
  rows.push(await throughDatabase('today: pure loop (runaway `spin`)', runaway, 'spin', limitMs));
  rows.push(await throughDatabase('today: syscall loop (`find` in a loop)', spinSyscalls, 'spinFind', limitMs));
  rows.push(timed('raw: callback loop, isolated-vm timeout only', () => rawCallbackLoop(limitMs, false)));
  rows.push(timed('raw: callback loop + deadline check in the callback', () => rawCallbackLoop(limitMs, true)));
  return rows;
}

if (!isMainThread) {
  parentPort!.postMessage(await workerMain((workerData as { limitMs: number }).limitMs));
} else {
  const limitMs = Number(process.argv[2] ?? 1000);
  const worker = startTsWorker(import.meta.url, { limitMs });
  const rows = await new Promise<Row[]>((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  await worker.terminate();
  console.log(`CPU limit ${limitMs} ms, each case in a worker thread (wall ms until the call returned; CPU ms of that thread)`);
  printTable(['case', 'stopped after, wall ms', '× limit', 'thread CPU ms', 'isolate CPU ms', 'outcome'],
    rows.map((r) => [r.case, r.wallMs, (r.wallMs / limitMs).toFixed(2), r.threadCpuMs, r.isolateCpuMs, r.outcome]));
}
