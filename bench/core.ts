// bench/core.ts — in-process keynote transfer throughput through the real isolate boundary.
//
// Owns: nothing but this measurement. Publishes the keynote fixture into an in-memory Database, seeds
// `accountsCount` accounts, then runs `transfersCount` transfers between uniform random pairs (mulberry32, fixed
// seed, pairs precomputed before the timer) and reports transfers/s and µs per syscall crossing.
// May call: host/database.ts.
//
// Run: node --import tsx bench/core.ts [transfers]

import { readFileSync, existsSync } from 'node:fs';
import { Database } from '../src/host/database.js';

const accountsCount = 100_000;
const initialBalance = 1_000_000_000n;
const transfersDefault = 200_000;
/** Calls kept in flight on the database's FIFO queue (the queue serializes them; this only hides promise latency). */
const inFlightMax = 64;
const rngSeed = 0x12345678;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bundlePath(): string {
  for (const p of ['test/fixtures/modules/keynote/dist/bundle.js', 'test/fixtures/modules/host-keynote/dist/bundle.js']) {
    if (existsSync(p)) return p;
  }
  throw new Error('keynote fixture bundle not found (build test/fixtures/modules/keynote first)');
}

async function main(): Promise<void> {
  const transfers = Number(process.argv[2] ?? transfersDefault);
  // BENCH_TIMEOUT_MS=0 runs without the per-call CPU limit (see runtime.ts reducerTimeoutMsDefault for its cost).
  const reducerTimeoutMs = process.env.BENCH_TIMEOUT_MS === undefined ? undefined : Number(process.env.BENCH_TIMEOUT_MS);
  const db = await Database.create({ identity: 1n, ownerIdentity: 2n, limits: { reducerTimeoutMs } },
    readFileSync(bundlePath(), 'utf8'));
  const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };
  const seeded = await db.callReducerJson('seed', [accountsCount, Number(initialBalance)], caller);
  if (seeded.status !== 'committed') throw new Error(`seed failed: ${JSON.stringify(seeded)}`);

  // Precompute BSATN args: from u32, to u32, amount i64 = 1.
  const rand = mulberry32(rngSeed);
  const args: Uint8Array[] = new Array(transfers);
  for (let i = 0; i < transfers; i++) {
    const from = Math.floor(rand() * accountsCount);
    let to = Math.floor(rand() * accountsCount);
    while (to === from) to = Math.floor(rand() * accountsCount);
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, from, true); v.setUint32(4, to, true); v.setBigInt64(8, 1n, true);
    args[i] = b;
  }

  // Warm up the JIT on both sides.
  for (let i = 0; i < Math.min(5000, transfers); i++) await db.callReducer('transfer', args[i], caller);

  const crossingsBefore = db.syscallCrossings();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0, failed = 0;
  const worker = async (): Promise<void> => {
    while (next < transfers) {
      const r = await db.callReducer('transfer', args[next++], caller);
      if (r.status !== 'committed') failed++;
    }
  };
  await Promise.all(Array.from({ length: inFlightMax }, worker));
  const elapsedMs = performance.now() - started;
  // CPU time of this process (both realms run on this thread; the tsx loader thread is idle by now). On a shared,
  // busy machine wall time is inflated by other processes; CPU time per transfer is the steadier figure.
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMicros = cpu.user + cpu.system;
  const crossings = db.syscallCrossings() - crossingsBefore + transfers; // + one applySync per call
  const tps = transfers / (elapsedMs / 1000);
  console.log(`keynote in-process: ${accountsCount} accounts, ${transfers} transfers in ${elapsedMs.toFixed(0)} ms ` +
    `(reducer timeout ${reducerTimeoutMs ?? 'default'})`);
  console.log(`  ${Math.round(tps).toLocaleString('en-US')} transfers/s, ${(1000 * elapsedMs / transfers).toFixed(2)} µs/transfer`);
  console.log(`  ${(cpuMicros / transfers).toFixed(2)} CPU-µs/transfer (${Math.round(transfers / (cpuMicros / 1e6)).toLocaleString('en-US')} transfers per CPU-second)`);
  console.log(`  ${(crossings / transfers).toFixed(2)} crossings/transfer, ${(1000 * elapsedMs / crossings).toFixed(2)} µs per crossing (all work included)`);
  console.log(`  failed: ${failed}`);
  await db.close();
}

await main();
