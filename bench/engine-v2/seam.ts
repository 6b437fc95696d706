// bench/engine-v2/seam.ts — the message seam between the server's main thread and a database's worker: what does a
// reducer call's request/reply cost, per transport, at 1 / 10 / 100 calls in flight?
//   post      one postMessage per request and per reply (small objects, structured clone, args copied)
//   batch     requests encoded into one ArrayBuffer per batch and transferred (not copied); one reply message per
//             batch. Closed loop: every reply batch lets the main thread send the next batch, so batch ≈ in flight.
//   sab       two single-producer/single-consumer rings of fixed 64-byte slots in SharedArrayBuffers; the worker
//             blocks in Atomics.wait when its ring is empty, the main thread in Atomics.waitAsync; a side notifies only
//             when the other one said it is about to sleep.
// Handlers on the worker: `echo` (the seam alone: reads the args, replies) and `keynote` (today's real Database:
// isolate + datastore, one transfer per call; see keynote-db.ts).
// Figures per call: wall µs (1 / throughput), latency p50/p99 µs (send → reply seen), CPU-µs of the main thread, and
// CPU-µs of the worker thread (schedstat, exact). Median of `runs` runs per cell.
//
// Run: node --import tsx bench/engine-v2/seam.ts [runs=3] [--handler echo|keynote|both] [--transports post,batch,sab]
//      [--spin-us N]   (adds a `sab` row set where the worker polls its empty ring N µs before it sleeps)
// Owns: its workers. May call: bench/engine-v2/{common,keynote-db}.ts.

import { isMainThread, parentPort, workerData, type Worker } from 'node:worker_threads';
import { median, percentile, printTable, startTsWorker, threadCpuNs } from './common.js';

type Transport = 'post' | 'batch' | 'sab';
type Handler = 'echo' | 'keynote';
const inFlightLevels = [1, 10, 100];
const callsPerRun: Record<Handler, number> = { echo: 60_000, keynote: 20_000 };
const argsBytes = 16;                                  // the keynote transfer: u32 from, u32 to, i64 amount

// SAB ring layout: control Int32Array [published, consumed, consumerSleeping] per ring; 64-byte slots.
const slotBytes = 64;
const ringSlots = 1024;
const published = 0, consumed = 1, sleeping = 2;
const stopId = 0xffffffff;

interface Ring { ctrl: Int32Array; slots: Uint8Array; view: DataView }
function makeRing(): { ctrl: SharedArrayBuffer; data: SharedArrayBuffer } {
  return { ctrl: new SharedArrayBuffer(16), data: new SharedArrayBuffer(slotBytes * ringSlots) };
}
function openRing(r: { ctrl: SharedArrayBuffer; data: SharedArrayBuffer }): Ring {
  return { ctrl: new Int32Array(r.ctrl), slots: new Uint8Array(r.data), view: new DataView(r.data) };
}
/** Producer side: the slot to fill next (the caller writes it, then calls publish). */
function slotOffset(ring: Ring, n: number): number {
  return (n % ringSlots) * slotBytes;
}
function publish(ring: Ring, count: number): void {
  Atomics.store(ring.ctrl, published, count);
  if (Atomics.load(ring.ctrl, sleeping) === 1) Atomics.notify(ring.ctrl, published, 1);
}

// ------------------------------------------------------------------------------------------------ worker side ----

interface WorkerInit {
  handler: Handler; transport: Transport; requests?: { ctrl: SharedArrayBuffer; data: SharedArrayBuffer };
  replies?: { ctrl: SharedArrayBuffer; data: SharedArrayBuffer };
  /** sab only: how long the worker polls its empty ring before it sleeps (0: sleep at once). */
  spinMicros: number;
}

async function workerMain(init: WorkerInit): Promise<void> {
  let handle: (args: Uint8Array) => number;
  if (init.handler === 'keynote') {
    const { openKeynote, keynoteCaller } = await import('./keynote-db.js');
    const k = await openKeynote({ accounts: 100_000 });
    k.runTransfers(10_000);                            // warm the JIT on both sides of the isolate boundary
    handle = (args) => {
      const r = k.db.callReducerNow('transfer', args, keynoteCaller);
      return r !== undefined && r.result.status === 'committed' ? 0 : 1;
    };
  } else {
    handle = (args) => (args.length === argsBytes ? 0 : 1);
  }
  const port = parentPort!;
  if (init.transport === 'post') {
    port.on('message', (m: { id: number; reducer: string; args: Uint8Array } | 'cpu') => {
      if (m === 'cpu') { port.postMessage({ cpuNs: threadCpuNs() }); return; }
      port.postMessage({ id: m.id, status: handle(m.args) });
    });
  } else if (init.transport === 'batch') {
    port.on('message', (m: ArrayBuffer | 'cpu') => {
      if (m === 'cpu') { port.postMessage({ cpuNs: threadCpuNs() }); return; }
      // Batch: u32 count, then per call u32 id + 16 bytes of args. Reply: u32 count, then u32 id + u32 status.
      const v = new DataView(m);
      const count = v.getUint32(0, true);
      const bytes = new Uint8Array(m);
      const reply = new ArrayBuffer(4 + count * 8);
      const rv = new DataView(reply);
      rv.setUint32(0, count, true);
      for (let i = 0, at = 4; i < count; i++, at += 4 + argsBytes) {
        rv.setUint32(4 + i * 8, v.getUint32(at, true), true);
        rv.setUint32(8 + i * 8, handle(bytes.subarray(at + 4, at + 4 + argsBytes)), true);
      }
      port.postMessage(reply, [reply]);
    });
  } else {
    const requests = openRing(init.requests!);
    const replies = openRing(init.replies!);
    port.on('message', (m: 'serve') => {
      if (m !== 'serve') return;
      const cpu0 = threadCpuNs();
      let n = Atomics.load(requests.ctrl, consumed);
      let out = Atomics.load(replies.ctrl, published);
      for (;;) {
        let avail = Atomics.load(requests.ctrl, published);
        if (avail === n && init.spinMicros > 0) {
          // Poll a little first: a request that arrives meanwhile costs no futex sleep and wake on either side.
          const until = performance.now() + init.spinMicros / 1000;
          while (avail === n && performance.now() < until) avail = Atomics.load(requests.ctrl, published);
        }
        if (avail === n) {
          // Say we are about to sleep, re-check, then sleep until the producer publishes past n.
          Atomics.store(requests.ctrl, sleeping, 1);
          avail = Atomics.load(requests.ctrl, published);
          if (avail === n) Atomics.wait(requests.ctrl, published, n);
          Atomics.store(requests.ctrl, sleeping, 0);
          continue;
        }
        let stop = false;
        for (; n < avail; n++) {
          const at = slotOffset(requests, n);
          const id = requests.view.getUint32(at, true);
          if (id === stopId) { stop = true; n++; break; }
          const status = handle(requests.slots.subarray(at + 4, at + 4 + argsBytes));
          const rat = slotOffset(replies, out);
          replies.view.setUint32(rat, id, true);
          replies.view.setUint32(rat + 4, status, true);
          out++;
        }
        Atomics.store(requests.ctrl, consumed, n);
        publish(replies, out);                         // one publish (and at most one notify) per drained burst
        if (stop) break;
      }
      port.postMessage({ cpuNs: threadCpuNs() - cpu0 });
    });
  }
  port.postMessage('ready');
}

// -------------------------------------------------------------------------------------------------- main side ----

interface Cell { wallUs: number; p50Us: number; p99Us: number; mainCpuUs: number; workerCpuUs: number }

function once<T>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => { worker.off('message', onMessage); reject(err); };
    const onMessage = (m: T) => { worker.off('error', onError); resolve(m); };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

const sampleArgs = new Uint8Array(argsBytes);

async function runPost(worker: Worker, calls: number, inFlight: number): Promise<Omit<Cell, 'workerCpuUs'> & { workerCpuNs: number }> {
  worker.postMessage('cpu');
  const w0 = (await once<{ cpuNs: number }>(worker)).cpuNs;
  const sentAt = new Float64Array(calls);
  const latencies: number[] = [];
  let sent = 0, done = 0;
  const cpu0 = threadCpuNs();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const send = () => { sentAt[sent] = performance.now(); worker.postMessage({ id: sent, reducer: 'transfer', args: sampleArgs }); sent++; };
    const onReply = (m: { id: number; status: number }) => {
      latencies.push(performance.now() - sentAt[m.id]);
      done++;
      if (sent < calls) send();
      else if (done === calls) { worker.off('message', onReply); resolve(); }
    };
    worker.on('message', onReply);
    for (let i = 0; i < inFlight; i++) send();
  });
  const wallMs = performance.now() - t0;
  const mainCpuNs = threadCpuNs() - cpu0;
  worker.postMessage('cpu');
  const w1 = (await once<{ cpuNs: number }>(worker)).cpuNs;
  return summary(calls, wallMs, mainCpuNs, latencies, w1 - w0);
}

async function runBatch(worker: Worker, calls: number, inFlight: number): Promise<Omit<Cell, 'workerCpuUs'> & { workerCpuNs: number }> {
  worker.postMessage('cpu');
  const w0 = (await once<{ cpuNs: number }>(worker)).cpuNs;
  const sentAt = new Float64Array(calls);
  const latencies: number[] = [];
  let sent = 0, done = 0;
  const cpu0 = threadCpuNs();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const sendBatch = (count: number) => {
      const buf = new ArrayBuffer(4 + count * (4 + argsBytes));
      const v = new DataView(buf);
      const bytes = new Uint8Array(buf);
      v.setUint32(0, count, true);
      const now = performance.now();
      for (let i = 0, at = 4; i < count; i++, at += 4 + argsBytes) {
        sentAt[sent] = now;
        v.setUint32(at, sent++, true);
        bytes.set(sampleArgs, at + 4);
      }
      worker.postMessage(buf, [buf]);
    };
    const onReply = (m: ArrayBuffer) => {
      const v = new DataView(m);
      const count = v.getUint32(0, true);
      const now = performance.now();
      for (let i = 0; i < count; i++) latencies.push(now - sentAt[v.getUint32(4 + i * 8, true)]);
      done += count;
      const next = Math.min(count, calls - sent);
      if (next > 0) sendBatch(next);
      else if (done === calls) { worker.off('message', onReply); resolve(); }
    };
    worker.on('message', onReply);
    sendBatch(inFlight);
  });
  const wallMs = performance.now() - t0;
  const mainCpuNs = threadCpuNs() - cpu0;
  worker.postMessage('cpu');
  const w1 = (await once<{ cpuNs: number }>(worker)).cpuNs;
  return summary(calls, wallMs, mainCpuNs, latencies, w1 - w0);
}

async function runSab(worker: Worker, requests: Ring, replies: Ring, calls: number, inFlight: number): Promise<Omit<Cell, 'workerCpuUs'> & { workerCpuNs: number }> {
  const workerDone = once<{ cpuNs: number }>(worker);
  worker.postMessage('serve');
  const sentAt = new Float64Array(calls);
  const latencies: number[] = [];
  let reqOut = Atomics.load(requests.ctrl, published);
  let repIn = Atomics.load(replies.ctrl, consumed);
  let sent = 0, done = 0;
  const write = (id: number) => {
    const at = slotOffset(requests, reqOut++);
    requests.view.setUint32(at, id, true);
    requests.slots.set(sampleArgs, at + 4);
  };
  const cpu0 = threadCpuNs();
  const t0 = performance.now();
  for (let i = 0; i < inFlight; i++) { sentAt[sent] = performance.now(); write(sent++); }
  publish(requests, reqOut);
  while (done < calls) {
    let avail = Atomics.load(replies.ctrl, published);
    if (avail === repIn) {
      Atomics.store(replies.ctrl, sleeping, 1);
      avail = Atomics.load(replies.ctrl, published);
      if (avail === repIn) {
        const w = Atomics.waitAsync(replies.ctrl, published, repIn);
        if (w.async) await w.value;
      }
      Atomics.store(replies.ctrl, sleeping, 0);
      continue;
    }
    const now = performance.now();
    for (; repIn < avail; repIn++) {
      latencies.push(now - sentAt[replies.view.getUint32(slotOffset(replies, repIn), true)]);
      done++;
      if (sent < calls) { sentAt[sent] = now; write(sent++); }
    }
    Atomics.store(replies.ctrl, consumed, repIn);
    publish(requests, reqOut);
  }
  const wallMs = performance.now() - t0;
  const mainCpuNs = threadCpuNs() - cpu0;
  write(stopId);
  publish(requests, reqOut);
  const w = await workerDone;
  return summary(calls, wallMs, mainCpuNs, latencies, w.cpuNs);
}

function summary(calls: number, wallMs: number, mainCpuNs: number, latencies: number[], workerCpuNs: number) {
  return {
    wallUs: (wallMs * 1000) / calls, p50Us: percentile(latencies, 50) * 1000, p99Us: percentile(latencies, 99) * 1000,
    mainCpuUs: mainCpuNs / calls / 1000, workerCpuNs,
  };
}

async function measureTransport(transport: Transport, handler: Handler, runs: number, spinMicros = 0): Promise<Map<number, Cell>> {
  const rings = transport === 'sab' ? { requests: makeRing(), replies: makeRing() } : undefined;
  const worker = startTsWorker(import.meta.url, { handler, transport, ...rings, spinMicros } satisfies WorkerInit);
  await once(worker);
  const requests = rings && openRing(rings.requests);
  const replies = rings && openRing(rings.replies);
  const calls = callsPerRun[handler];
  const out = new Map<number, Cell>();
  for (const inFlight of inFlightLevels) {
    const samples: Cell[] = [];
    for (let r = 0; r < runs + 1; r++) {
      const s = transport === 'post' ? await runPost(worker, calls, inFlight)
        : transport === 'batch' ? await runBatch(worker, calls, inFlight)
          : await runSab(worker, requests!, replies!, calls, inFlight);
      if (r > 0) samples.push({ ...s, workerCpuUs: s.workerCpuNs / calls / 1000 });   // run 0 warms up
    }
    const cell = {} as Cell;
    for (const k of Object.keys(samples[0]) as (keyof Cell)[]) cell[k] = median(samples.map((s) => s[k]));
    out.set(inFlight, cell);
  }
  await worker.terminate();
  return out;
}

if (!isMainThread) {
  await workerMain(workerData as WorkerInit);
} else {
  const runs = Number(process.argv[2] ?? 3);
  const handlerArg = process.argv.includes('--handler') ? process.argv[process.argv.indexOf('--handler') + 1] : 'both';
  const handlers: Handler[] = handlerArg === 'both' ? ['echo', 'keynote'] : [handlerArg as Handler];
  const spinMicrosOption = process.argv.includes('--spin-us') ? Number(process.argv[process.argv.indexOf('--spin-us') + 1]) : 0;
  const transports = (process.argv.includes('--transports') ? process.argv[process.argv.indexOf('--transports') + 1] : 'post,batch,sab').split(',') as Transport[];
  for (const handler of handlers) {
    const rows: (string | number)[][] = [];
    for (const transport of transports) {
      const cells = await measureTransport(transport, handler, runs);
      for (const [inFlight, c] of cells) rows.push([transport, String(inFlight), c.wallUs, c.p50Us, c.p99Us, c.mainCpuUs, c.workerCpuUs]);
    }
    if (spinMicrosOption > 0) {
      const cells = await measureTransport('sab', handler, runs, spinMicrosOption);
      for (const [inFlight, c] of cells) rows.push([`sab, worker polls ${spinMicrosOption} µs before sleeping`, String(inFlight), c.wallUs, c.p50Us, c.p99Us, c.mainCpuUs, c.workerCpuUs]);
    }
    console.log(`\nseam, handler '${handler}', ${callsPerRun[handler]} calls per run, median of ${runs} runs (after one warm-up run)`);
    printTable(['transport', 'in flight', 'wall µs/call', 'latency p50 µs', 'latency p99 µs', 'main CPU-µs/call', 'worker CPU-µs/call'], rows);
  }
}
