// bench/core.ts — in-process transfer cost through the real isolate boundary: the keynote transfer and the "general"
// one (issue 12 item 4: the transfer as apps write it) side by side.
//
// Owns: nothing but this measurement. For each workload it publishes the module into an in-memory Database, seeds
// `accountsCount` accounts, then runs `transfers` transfers between uniform random pairs (mulberry32, fixed seed, pairs
// precomputed before the timer) and reports CPU-µs and crossings per transfer. Workloads alternate (keynote, general,
// keynote, …) `runs` times so both see the same machine load; the summary gives medians and general ÷ keynote.
//   keynote: test/fixtures/modules/keynote (u32 id + i64 balance; two finds, two updates).
//   general: bench/engine-v2/modules/general (accounts with a string owner and a timestamp; the same finds and updates
//            plus one audit row with an autoInc id).
// May call: host/database.ts, test/host/bundle.ts, bench/engine-v2/keynote-db.ts (esbuild, `spacetime build`'s
// options) and bench/keynote/workload.ts (mulberry32).
//
// Run: node --import tsx bench/core.ts [transfers per run, default 30000] [runs, default 3]
//      BENCH_ONLY=keynote|general runs one workload; BENCH_ACCOUNTS=N accounts (default 100,000);
//      BENCH_WARMUP=N transfers before the runs (default 5,000; 300,000
//      reach the steady state, where the module's row cache holds what the transfers read); BENCH_TIMEOUT_MS=0 runs without the per-call CPU limit;
//      BENCH_WINDOWS=1 prints each run's span in µs on the clock of V8's profile timestamps (to cut seeding and warm-up
//      out of a --cpu-prof profile: bench/engine-v2/profile-split.ts); BENCH_ALLOC_SITES=N prints the N host-realm
//      functions that allocated the most bytes per transfer over the measured runs (V8's sampling heap profiler, the
//      collected objects included: what feeds the scavenges; the isolate's own heap is not seen).

import { Session } from 'node:inspector/promises';
import { Database } from '../src/host/database.js';
import { fixtureBundle } from '../test/host/bundle.js';
import { benchModuleBundle } from './engine-v2/keynote-db.js';
import { mulberry32 } from './keynote/workload.js';

type Kind = 'keynote' | 'general';
/** Accounts per workload (BENCH_ACCOUNTS): 100k fit the module's row cache; 1M do not. */
const accountsCount = Number(process.env.BENCH_ACCOUNTS ?? 100_000);
const initialBalance = 1_000_000_000;
const transfersDefault = 30_000;
const runsDefault = 3;
/** Calls kept in flight on the database's FIFO queue (the queue serializes them; this only hides promise latency). */
const inFlightMax = 64;
const rngSeed = 0x12345678;
/** Transfers before the measured runs (BENCH_WARMUP): 5,000 warm the JIT; the row cache fills over the runs. */
const warmupTransfersDefault = 5000;
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };

/** BSATN args of `n` transfers: from u32, to u32, amount i64 = 1. */
function transferArgs(n: number): Uint8Array[] {
  const rand = mulberry32(rngSeed);
  const args: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const from = Math.floor(rand() * accountsCount);
    let to = Math.floor(rand() * accountsCount);
    while (to === from) to = Math.floor(rand() * accountsCount);
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, from, true); v.setUint32(4, to, true); v.setBigInt64(8, 1n, true);
    args[i] = b;
  }
  return args;
}

interface RunResult { cpuMicrosPerTransfer: number; crossingsPerTransfer: number; wallMicrosPerTransfer: number; failed: number }

async function openWorkload(kind: Kind, reducerTimeoutMs: number | undefined): Promise<Database> {
  const program = kind === 'keynote' ? await fixtureBundle('keynote') : await benchModuleBundle('general');
  const db = await Database.create({ identity: kind === 'keynote' ? 1n : 5n, ownerIdentity: 2n, limits: { reducerTimeoutMs } }, program);
  const seeded = await db.callReducerJson('seed', [accountsCount, initialBalance], caller);
  if (seeded.status !== 'committed') throw new Error(`${kind} seed failed: ${JSON.stringify(seeded)}`);
  return db;
}

async function measure(db: Database, args: Uint8Array[], from: number, count: number): Promise<RunResult> {
  const windowStart = process.hrtime.bigint() / 1000n;
  const crossingsBefore = db.syscallCrossings();
  const batchesBefore = db.counters.callBatches, batchedBefore = db.counters.batchedCalls;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = from, failed = 0;
  const end = from + count;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const r = await db.callReducer('transfer', args[next++], caller);
      if (r.status !== 'committed') failed++;
    }
  };
  await Promise.all(Array.from({ length: inFlightMax }, worker));
  const wallMs = performance.now() - started;
  // CPU time of this process (both realms run on this thread; the tsx loader thread is idle by now). On a shared,
  // busy machine wall time is inflated by other processes; CPU time per transfer is the steadier figure.
  const cpu = process.cpuUsage(cpuBefore);
  // Entries into the isolate: one per batch, one per call that ran alone (docs/engine-v2.md §6c).
  const batched = db.counters.batchedCalls - batchedBefore;
  const entries = db.counters.callBatches - batchesBefore + (count - batched);
  const crossings = db.syscallCrossings() - crossingsBefore + entries;
  if (process.env.BENCH_WINDOWS === '1') console.log(`  window ${windowStart} ${process.hrtime.bigint() / 1000n}`);
  return {
    cpuMicrosPerTransfer: (cpu.user + cpu.system) / count, crossingsPerTransfer: crossings / count,
    wallMicrosPerTransfer: 1000 * wallMs / count, failed,
  };
}

/** Bytes sampled every 256 B of allocation, kept whether or not the object was collected since. */
async function startAllocSampling(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
  } as object);
  return session;
}

interface AllocNode { callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; selfSize: number; children: AllocNode[] }

async function printAllocSites(session: Session, top: number, transfers: number): Promise<void> {
  const { profile } = await session.post('HeapProfiler.stopSampling') as unknown as { profile: { head: AllocNode } };
  session.disconnect();
  const bySite = new Map<string, number>();
  const name = (f: AllocNode['callFrame']): string =>
    `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
  // A builtin (no url: subarray, slice, fromCharCode) is named with its caller.
  const walk = (n: AllocNode, parent: string): void => {
    const own = name(n.callFrame), site = n.callFrame.url === '' ? `${own} in ${parent}` : own;
    bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
    for (const c of n.children) walk(c, own);
  };
  walk(profile.head, '');
  const total = [...bySite.values()].reduce((a, b) => a + b, 0);
  console.log(`  host-realm allocation: ${(total / transfers).toFixed(0)} B per transfer (sampled), top sites:`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`    ${(bytes / transfers).toFixed(1).padStart(7)} B  ${site}`);
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function main(): Promise<void> {
  const transfers = Number(process.argv[2] ?? transfersDefault);
  const runs = Number(process.argv[3] ?? runsDefault);
  const reducerTimeoutMs = process.env.BENCH_TIMEOUT_MS === undefined ? undefined : Number(process.env.BENCH_TIMEOUT_MS);
  const kinds: Kind[] = process.env.BENCH_ONLY === 'keynote' || process.env.BENCH_ONLY === 'general'
    ? [process.env.BENCH_ONLY] : ['keynote', 'general'];
  const warmupTransfers = Number(process.env.BENCH_WARMUP ?? warmupTransfersDefault);
  const args = transferArgs(warmupTransfers + transfers * runs);
  const dbs = new Map<Kind, Database>();
  for (const kind of kinds) {
    const db = await openWorkload(kind, reducerTimeoutMs);
    await measure(db, args, 0, warmupTransfers); // warm up the JIT on both sides
    dbs.set(kind, db);
  }
  console.log(`bench:core in-process: ${accountsCount} accounts, ${runs} runs × ${transfers} transfers per workload ` +
    `(reducer timeout ${reducerTimeoutMs ?? 'default'})`);
  const results = new Map<Kind, RunResult[]>(kinds.map((k) => [k, []]));
  const allocSites = Number(process.env.BENCH_ALLOC_SITES ?? 0);
  const profiler = allocSites > 0 ? await startAllocSampling() : undefined;
  for (let r = 0; r < runs; r++) {
    for (const kind of kinds) {
      const res = await measure(dbs.get(kind)!, args, warmupTransfers + r * transfers, transfers);
      results.get(kind)!.push(res);
      console.log(`  run ${r + 1} ${kind.padEnd(7)}: ${res.cpuMicrosPerTransfer.toFixed(2)} CPU-µs/transfer, ` +
        `${res.wallMicrosPerTransfer.toFixed(2)} wall-µs, ${res.crossingsPerTransfer.toFixed(2)} crossings/transfer, failed ${res.failed}`);
    }
  }
  if (profiler !== undefined) await printAllocSites(profiler, allocSites, transfers * runs * kinds.length);
  console.log('median:');
  const med = new Map<Kind, number>();
  for (const kind of kinds) {
    const rs = results.get(kind)!;
    const cpu = median(rs.map((x) => x.cpuMicrosPerTransfer));
    med.set(kind, cpu);
    console.log(`  ${kind.padEnd(7)}: ${cpu.toFixed(2)} CPU-µs/transfer (${Math.round(1e6 / cpu).toLocaleString('en-US')} per CPU-second), ` +
      `${median(rs.map((x) => x.crossingsPerTransfer)).toFixed(2)} crossings/transfer, ` +
      `failed ${rs.reduce((n, x) => n + x.failed, 0)}`);
  }
  if (med.has('keynote') && med.has('general')) {
    console.log(`  general ÷ keynote: ${(med.get('general')! / med.get('keynote')!).toFixed(2)}× CPU per transfer (target ≤ 1.3×)`);
  }
  for (const db of dbs.values()) await db.close();
}

await main();
