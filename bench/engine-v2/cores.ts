// bench/engine-v2/cores.ts — two databases on two cores, and one runaway database beside a healthy one.
//   throughput   one worker, then two workers at once, each running today's real Database (keynote fixture) in a
//                reducer loop for `seconds`: transfers per wall second (summed), the process's CPU time per wall
//                second (the target: ≥ 1.6 of 2 cores; no load generator here, the loop is in the workers),
//                its CPU per transfer (stays flat if two databases do not slow each other down), and how many cores
//                the whole machine was busy (other processes included: on a shared machine they cap what we get).
//   isolation    worker A runs the runaway fixture's `spin` reducer again and again (each stopped by its CPU limit),
//                worker B serves keynote transfers over postMessage, one in flight; the main thread measures its own
//                event-loop delay (the `/v1/ping` stand-in: a ping is answered when the loop gets to it) and B's call
//                latency. The same runaway on the main thread (today's design) is shown for comparison.
//
// Run: node --import tsx bench/engine-v2/cores.ts [runs=3] [seconds=3]
// Owns: its workers. May call: bench/engine-v2/{common,keynote-db}.ts, src/host/database.ts, test/host/bundle.ts.

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, workerData, type Worker } from 'node:worker_threads';
import { median, percentile, printTable, processCpuUs, sleep, startTsWorker } from './common.js';

const spinLimitMs = 1_000;
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };

type Role = { role: 'loop'; seed: number } | { role: 'spin' } | { role: 'serve' };

// ------------------------------------------------------------------------------------------------ worker side ----

async function workerMain(init: Role): Promise<void> {
  const port = parentPort!;
  if (init.role === 'spin') {
    const { Database } = await import('../../src/host/database.js');
    const { fixtureBundle } = await import('../../test/host/bundle.js');
    const db = await Database.create({ identity: 0x77n, ownerIdentity: 2n, limits: { reducerTimeoutMs: spinLimitMs } },
      await fixtureBundle('runaway'));
    let stop = false;
    const go = new Promise<void>((resolve) => port.on('message', (m) => { if (m === 'go') resolve(); else if (m === 'stop') stop = true; }));
    port.postMessage('ready');
    await go;
    let spins = 0;
    while (!stop) {
      db.callReducerNow('spin', new Uint8Array(0), caller);
      spins++;
      await new Promise((r) => setImmediate(r));      // let 'stop' in between two runaways
    }
    port.postMessage({ spins });
    await db.close();
    return;
  }
  const { openKeynote } = await import('./keynote-db.js');
  const k = await openKeynote({ accounts: 100_000, seed: init.role === 'loop' ? init.seed : 0 });
  k.runTransfers(10_000);
  if (init.role === 'serve') {
    port.on('message', (m: { id: number; args: Uint8Array }) => {
      const r = k.db.callReducerNow('transfer', m.args, caller);
      port.postMessage({ id: m.id, ok: r?.result.status === 'committed' });
    });
    port.postMessage('ready');
    return;
  }
  port.postMessage('ready');
  port.on('message', (m: { untilMs: number }) => {
    // Transfers in batches of 1,000 until the shared deadline (wall clock, same for every worker).
    let transfers = 0;
    while (Date.now() < m.untilMs) { k.runTransfers(1_000); transfers += 1_000; }
    port.postMessage({ transfers });
  });
}

// -------------------------------------------------------------------------------------------------- main side ----

function next<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => { worker.off('message', onMessage); reject(err); };
    const onMessage = (m: T) => { worker.off('error', onError); resolve(m); };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

/** Busy and total jiffies of the whole machine (/proc/stat): how much CPU other processes left us. */
function machineJiffies(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + fields[4];
  const total = fields.reduce((s, x) => s + x, 0);
  return { busy: total - idle, total };
}

interface Throughput { tps: number; coresUsed: number; cpuUsPerTransfer: number; machineBusyCores: number }

async function throughput(workers: Worker[], seconds: number): Promise<Throughput> {
  const untilMs = Date.now() + 200 + seconds * 1000;
  const cpu0 = processCpuUs();
  const m0 = machineJiffies();
  const t0 = performance.now();
  const replies = workers.map((w) => next<{ transfers: number }>(w));
  for (const w of workers) w.postMessage({ untilMs });
  const counts = await Promise.all(replies);
  const wallS = (performance.now() - t0) / 1000;
  const cpuUs = processCpuUs() - cpu0;
  const m1 = machineJiffies();
  const transfers = counts.reduce((s, c) => s + c.transfers, 0);
  return {
    tps: transfers / wallS, coresUsed: cpuUs / 1e6 / wallS, cpuUsPerTransfer: cpuUs / transfers,
    machineBusyCores: (cpus().length * (m1.busy - m0.busy)) / (m1.total - m0.total),
  };
}

async function throughputSuite(runs: number, seconds: number): Promise<void> {
  const workers = [startTsWorker(import.meta.url, { role: 'loop', seed: 1 }), startTsWorker(import.meta.url, { role: 'loop', seed: 2 })];
  await Promise.all(workers.map((w) => next(w)));
  const one: Throughput[] = [];
  const two: Throughput[] = [];
  for (let r = 0; r < runs; r++) {
    one.push(await throughput([workers[0]], seconds));
    two.push(await throughput(workers, seconds));
  }
  await Promise.all(workers.map((w) => w.terminate()));
  const m = (xs: Throughput[], k: keyof Throughput) => median(xs.map((x) => x[k]));
  console.log(`\ntwo databases on two cores: keynote reducer loop in each worker, ${seconds} s per run, median of ${runs} runs`);
  console.log('(the whole machine\'s busy cores include this process; when they reach the core count, other load caps ours)');
  printTable(['databases', 'transfers/s (sum)', 'vs one database', 'process CPU-s per wall-s', 'process CPU-µs per transfer',
    'machine busy cores (of ' + cpus().length + ')'], [
    ['1 worker', m(one, 'tps'), '1.00', m(one, 'coresUsed'), m(one, 'cpuUsPerTransfer'), m(one, 'machineBusyCores')],
    ['2 workers', m(two, 'tps'), (m(two, 'tps') / m(one, 'tps')).toFixed(2), m(two, 'coresUsed'), m(two, 'cpuUsPerTransfer'), m(two, 'machineBusyCores')],
  ]);
}

/** Event-loop delay (ms) while `during` runs: p50/p99/max of the main thread's responsiveness. */
async function loopDelay<T>(during: () => Promise<T>): Promise<{ result: T; p50Ms: number; p99Ms: number; maxMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const result = await during();
  h.disable();
  return { result, p50Ms: h.percentile(50) / 1e6, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
}

async function isolationSuite(seconds: number): Promise<void> {
  const spin = startTsWorker(import.meta.url, { role: 'spin' });
  const serve = startTsWorker(import.meta.url, { role: 'serve' });
  await Promise.all([next(spin), next(serve)]);
  const args = new Uint8Array(16);
  new DataView(args.buffer).setUint32(4, 1, true);
  new DataView(args.buffer).setBigInt64(8, 1n, true);
  const callLatencies = async (ms: number): Promise<number[]> => {
    const out: number[] = [];
    const until = performance.now() + ms;
    for (let id = 0; performance.now() < until; id++) {
      const t0 = performance.now();
      serve.postMessage({ id, args });
      await next(serve);
      out.push(performance.now() - t0);
      await sleep(1);                                 // a steady trickle of calls, not a flood
    }
    return out;
  };
  const quiet = await loopDelay(() => callLatencies(seconds * 1000));
  spin.postMessage('go');
  const spinDone = next<{ spins: number }>(spin);
  const noisy = await loopDelay(() => callLatencies(seconds * 1000));
  spin.postMessage('stop');
  const { spins } = await spinDone;
  await Promise.all([spin.terminate(), serve.terminate()]);
  // Today's design for comparison: the runaway on the main thread itself (one call, stopped by its limit).
  const { Database } = await import('../../src/host/database.js');
  const { fixtureBundle } = await import('../../test/host/bundle.js');
  const db = await Database.create({ identity: 0x78n, ownerIdentity: 2n, limits: { reducerTimeoutMs: spinLimitMs } }, await fixtureBundle('runaway'));
  const sameThread = await loopDelay(async () => { await sleep(20); db.callReducerNow('spin', new Uint8Array(0), caller); await sleep(20); });
  await db.close();
  console.log(`\nisolation: a runaway reducer (CPU limit ${spinLimitMs} ms, ${spins} runaways in ${seconds} s) beside a healthy database`);
  printTable(['situation', 'main loop delay p50 ms', 'p99 ms', 'max ms', 'other db call p50 ms', 'p99 ms', 'calls'], [
    ['quiet (no runaway)', quiet.p50Ms, quiet.p99Ms, quiet.maxMs, percentile(quiet.result, 50), percentile(quiet.result, 99), String(quiet.result.length)],
    ['runaway in its own worker', noisy.p50Ms, noisy.p99Ms, noisy.maxMs, percentile(noisy.result, 50), percentile(noisy.result, 99), String(noisy.result.length)],
    ['runaway on the main thread (today)', sameThread.p50Ms, sameThread.p99Ms, sameThread.maxMs, '—', '—', '—'],
  ]);
}

if (!isMainThread) {
  await workerMain(workerData as Role);
} else {
  const runs = Number(process.argv[2] ?? 3);
  const seconds = Number(process.argv[3] ?? 3);
  await throughputSuite(runs, seconds);
  await isolationSuite(seconds);
}
