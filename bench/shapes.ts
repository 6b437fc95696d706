// bench/shapes.ts — reducers over other table shapes than the keynote's (issue 12 item 4: "every reducer is fast,
// whatever its tables look like"), in process through the real isolate and the real datastore, as bench/core.ts.
//
// Owns: nothing but this measurement. It publishes bench/shapes/module into an in-memory Database, seeds each of its
// tables (100k rows; the scheduled table fewer, see `reminderRows`), publishes the keynote fixture beside it as the
// yardstick, then runs each shape's reducer `calls` times per run with arguments precomputed before the timer
// (mulberry32, fixed seed). Shapes alternate within each run (keynote, u32Pk, stringPk, …) so all see the same machine
// load; it prints CPU-µs and crossings per call, and the medians with the ratio to the keynote transfer. The keynote
// transfer is two finds and two updates; the one-row shapes are one find and one update, so `u32Pk` (the same on a u32
// primary key) is the like-for-like baseline of those.
// May call: host/database.ts, sats/bsatn.ts (argument encoding), limits.ts, test/host/bundle.ts and
// bench/engine-v2/keynote-db.ts (esbuild with `spacetime build`'s options), bench/keynote/workload.ts (mulberry32).
//
// Run: npm run bench:shapes [-- calls per run, default 10000] [runs, default 3]
//      BENCH_ONLY=stringPk,churn runs those shapes (and the keynote); BENCH_TIMEOUT_MS=0 drops the per-call CPU limit.

import { loadavg } from 'node:os';
import { Database } from '../src/host/database.js';
import { BsatnWriter } from '../src/sats/bsatn.js';
import { scheduleRowsPerDatabaseMax } from '../src/limits.js';
import { fixtureBundle } from '../test/host/bundle.js';
import { benchModuleBundle } from './engine-v2/keynote-db.js';
import { mulberry32 } from './keynote/workload.js';

const rowsPerTable = 100_000;
const callsDefault = 10_000;
const runsDefault = 3;
const warmupCalls = 2000;
/** Calls kept in flight on the database's FIFO queue (as bench/core.ts: it only hides promise latency). */
const inFlightMax = 64;
const seedChunkRows = 20_000;
const rngSeed = 0x5eed5eed;
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };
// The module's key derivations (bench/shapes/module/src/index.ts).
const itemOwners = 10_000;
const cellsWidth = 317;
const eventsStep = 10n;
const whoOf = (k: number): bigint => (0xc200n << 240n) | (BigInt(k) * 0x10001n);
const nameOf = (k: number): string => `user-${k}@example.com`;

const w = new BsatnWriter(256);
function encode(write: (w: BsatnWriter) => void): Uint8Array { w.reset(); write(w); return w.finish(); }

interface Shape {
  name: string;
  /** What the reducer does, for the table. */
  what: string;
  reducer: string;
  /** The tables `seed` fills (rowsPerTable rows each; the scheduled table fewer). */
  table?: string | string[];
  /** Arguments of call `i` (0-based over the whole process: warm-up, then the runs), `rand` in [0, 1). */
  args(i: number, rand: () => number): Uint8Array;
}

const pick = (rand: () => number, n: number): number => Math.floor(rand() * n);

function shapes(): Shape[] {
  return [
    { name: 'keynote', what: 'keynote transfer: 2 finds + 2 updates, u32 pk', reducer: 'transfer', args: (_i, rand) => {
      const from = pick(rand, rowsPerTable);
      let to = pick(rand, rowsPerTable);
      while (to === from) to = pick(rand, rowsPerTable);
      return encode((w) => { w.writeU32(from); w.writeU32(to); w.writeI64(1n); });
    } },
    { name: 'u32Pk', what: 'find by u32 pk + update (i64)', reducer: 'u32Pk', table: 'counters',
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, rowsPerTable)); w.writeI64(1n); }) },
    { name: 'stringPk', what: 'find by string pk + update', reducer: 'stringPk', table: 'named',
      args: (_i, rand) => encode((w) => { w.writeString(nameOf(pick(rand, rowsPerTable))); w.writeI64(1n); }) },
    { name: 'identityPk', what: 'find by Identity pk + update', reducer: 'identityPk', table: 'players',
      args: (_i, rand) => encode((w) => { w.writeU256(whoOf(pick(rand, rowsPerTable))); w.writeI64(1n); }) },
    { name: 'findCountUpdate', what: 'find by u32 pk, count() the table, update', reducer: 'findCountUpdate', table: 'counters',
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, rowsPerTable)); w.writeI64(1n); }) },
    // Seeded ids are 1..rowsPerTable.
    { name: 'autoIncUpdate', what: 'find by u64 autoInc pk + update (f32)', reducer: 'autoIncUpdate', table: 'entities',
      args: (_i, rand) => encode((w) => { w.writeU64(BigInt(1 + pick(rand, rowsPerTable))); w.writeF32(0.5); }) },
    { name: 'btreeFilter', what: 'filter non-unique u32 btree (10 rows), update 1 by pk', reducer: 'btreeFilter', table: 'items',
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, itemOwners)); }) },
    { name: 'rangeScan', what: 'range scan of 20 rows, u64 btree, read only', reducer: 'rangeScan', table: 'events',
      args: (_i, rand) => encode((w) => { w.writeU64(BigInt(pick(rand, rowsPerTable - 20)) * eventsStep); }) },
    { name: 'twoColumn', what: '(u32, u32) btree point (1 row), update by pk', reducer: 'twoColumn', table: 'cells', args: (_i, rand) => {
      const k = pick(rand, rowsPerTable);
      return encode((w) => { w.writeU32(Math.floor(k / cellsWidth)); w.writeU32(k % cellsWidth); w.writeI64(1n); });
    } },
    // Seeded ids are 1..rowsPerTable and the queue is FIFO: call i deletes id i + 1.
    { name: 'churn', what: 'delete by u64 pk + insert (autoInc, string)', reducer: 'churn', table: 'queue',
      args: (i) => encode((w) => { w.writeU64(BigInt(i + 1)); w.writeString(`job from call ${i}`); }) },
    { name: 'optionUpdate', what: 'find by u32 pk + update Option<string>', reducer: 'optionUpdate', table: 'profiles', args: (i, rand) => {
      const id = pick(rand, rowsPerTable);
      return encode((w) => {
        w.writeU32(id);
        if (i % 2 === 0) { w.writeU8(0); w.writeString(`nick ${i}`); } else w.writeU8(1);
      });
    } },
    { name: 'insertNoPk', what: 'insert into a table without pk or index', reducer: 'insertNoPk', table: 'logs',
      args: (i) => encode((w) => { w.writeU8(i % 5); w.writeString(`log line ${i}`); }) },
    { name: 'wideUpdate', what: 'find by u32 pk + update, 20-column row', reducer: 'wideUpdate', table: 'wide',
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, rowsPerTable)); w.writeI64(1n); }) },
    { name: 'scheduleInsert', what: 'insert into a scheduled table (autoInc)', reducer: 'scheduleInsert', table: 'reminders',
      args: (i) => encode((w) => { w.writeString(`remind ${i}`); }) },
    { name: 'blindUpdate', what: 'find + update by u32 pk, then update by pk a row of another table never read', reducer: 'blindUpdate',
      table: ['counters', 'profiles'],
      args: (i, rand) => encode((w) => { w.writeU32(pick(rand, rowsPerTable)); w.writeU32(pick(rand, rowsPerTable)); w.writeString(`nick ${i}`); }) },
    { name: 'twoUnique', what: 'find by u32 pk + update, a second unique (string) column unchanged', reducer: 'twoUnique', table: 'users',
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, rowsPerTable)); w.writeI64(1n); }) },
    { name: 'seqUnique', what: 'find by Identity pk + update, a unique autoInc column unchanged', reducer: 'seqUnique', table: 'pilots',
      args: (_i, rand) => encode((w) => { w.writeU256(whoOf(pick(rand, rowsPerTable))); w.writeF32(0.5); }) },
    // Keys past the seeded ones, a new one per call.
    { name: 'signup', what: 'insert under a new Identity pk', reducer: 'signup', table: 'signups',
      args: (i) => encode((w) => { w.writeU256(whoOf(rowsPerTable + i)); w.writeString(nameOf(rowsPerTable + i)); }) },
    { name: 'accept', what: 'find + update by u32 pk, delete through a non-unique index, autoInc insert', reducer: 'accept',
      table: ['counters', 'invites'],
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, rowsPerTable)); w.writeU32(pick(rand, itemOwners)); w.writeU32(pick(rand, itemOwners)); }) },
    { name: 'twoScans', what: 'filter non-unique btree (10 rows) + range scan (20 rows), update 1 by pk', reducer: 'twoScans',
      table: ['items', 'events'],
      args: (_i, rand) => encode((w) => { w.writeU32(pick(rand, itemOwners)); w.writeU64(BigInt(pick(rand, rowsPerTable - 20)) * eventsStep); }) },
  ];
}

interface RunResult { cpuMicrosPerCall: number; crossingsPerCall: number; failed: number; firstError: string | undefined }

async function measure(db: Database, reducer: string, args: Uint8Array[], from: number, count: number): Promise<RunResult> {
  const crossingsBefore = db.syscallCrossings();
  const batchesBefore = db.counters.callBatches, batchedBefore = db.counters.batchedCalls;
  const cpuBefore = process.cpuUsage();
  let next = from, failed = 0, firstError: string | undefined;
  const end = from + count;
  const worker = async (): Promise<void> => {
    while (next < end) {
      const r = await db.callReducer(reducer, args[next++], caller);
      if (r.status !== 'committed') { failed++; firstError ??= r.message; }
    }
  };
  await Promise.all(Array.from({ length: inFlightMax }, worker));
  // Process CPU: both realms run on this thread (see bench/core.ts).
  const cpu = process.cpuUsage(cpuBefore);
  // Entries into the isolate: one per batch, one per call that ran alone (docs/engine-v2.md §6c).
  const batched = db.counters.batchedCalls - batchedBefore;
  const crossings = db.syscallCrossings() - crossingsBefore + db.counters.callBatches - batchesBefore + (count - batched);
  return { cpuMicrosPerCall: (cpu.user + cpu.system) / count, crossingsPerCall: crossings / count, failed, firstError };
}

/** Rows of the scheduled table: as many as fit under scheduleRowsPerDatabaseMax with every call's insert. */
function reminderRows(totalCalls: number): number {
  return Math.max(0, Math.min(rowsPerTable, scheduleRowsPerDatabaseMax - totalCalls - 1000));
}

async function seed(db: Database, table: string, rows: number): Promise<void> {
  for (let from = 0; from < rows; from += seedChunkRows) {
    const to = Math.min(rows, from + seedChunkRows);
    const r = await db.callReducerJson('seed', [table, from, to], caller);
    if (r.status !== 'committed') throw new Error(`seeding ${table} failed: ${JSON.stringify(r)}`);
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? callsDefault);
  const runs = Number(process.argv[3] ?? runsDefault);
  const reducerTimeoutMs = process.env.BENCH_TIMEOUT_MS === undefined ? undefined : Number(process.env.BENCH_TIMEOUT_MS);
  const only = process.env.BENCH_ONLY?.split(',');
  const chosen = shapes().filter((s) => s.name === 'keynote' || only === undefined || only.includes(s.name));
  const totalCalls = warmupCalls + calls * runs;

  const keynote = await Database.create({ identity: 1n, ownerIdentity: 2n, limits: { reducerTimeoutMs } }, await fixtureBundle('keynote'));
  const seeded = await keynote.callReducerJson('seed', [rowsPerTable, 1_000_000_000], caller);
  if (seeded.status !== 'committed') throw new Error(`keynote seed failed: ${JSON.stringify(seeded)}`);
  // benchModuleBundle bundles a module under bench/engine-v2/modules/; this one lives two folders up from there.
  const module = await Database.create({ identity: 6n, ownerIdentity: 2n, limits: { reducerTimeoutMs } },
    await benchModuleBundle('../../shapes/module'));
  // Shapes may share a table (counters, items): each is seeded once.
  for (const table of new Set(chosen.flatMap((s) => [s.table ?? []].flat()))) {
    await seed(module, table, table === 'reminders' ? reminderRows(totalCalls) : rowsPerTable);
  }

  const argsOf = new Map<string, Uint8Array[]>();
  for (const s of chosen) {
    const rand = mulberry32(rngSeed);
    argsOf.set(s.name, Array.from({ length: totalCalls }, (_, i) => s.args(i, rand)));
  }
  const dbOf = (s: Shape): Database => (s.name === 'keynote' ? keynote : module);
  for (const s of chosen) await measure(dbOf(s), s.reducer, argsOf.get(s.name)!, 0, warmupCalls); // JIT on both sides

  console.log(`bench:shapes in-process: ${rowsPerTable} rows per table, ${runs} runs × ${calls} calls per shape ` +
    `(reducer timeout ${reducerTimeoutMs ?? 'default'}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const results = new Map<string, RunResult[]>(chosen.map((s) => [s.name, []]));
  for (let r = 0; r < runs; r++) {
    for (const s of chosen) {
      const res = await measure(dbOf(s), s.reducer, argsOf.get(s.name)!, warmupCalls + r * calls, calls);
      results.get(s.name)!.push(res);
      console.log(`  run ${r + 1} ${s.name.padEnd(14)}: ${res.cpuMicrosPerCall.toFixed(2)} CPU-µs/call, ` +
        `${res.crossingsPerCall.toFixed(2)} crossings/call, failed ${res.failed}${res.firstError ? ` (${res.firstError})` : ''}`);
    }
  }
  const keynoteCpu = median(results.get('keynote')!.map((x) => x.cpuMicrosPerCall));
  console.log('\nmedians:\n');
  console.log('| shape | what | CPU-µs/call | crossings/call | × keynote | failed |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const s of chosen) {
    const rs = results.get(s.name)!;
    const cpu = median(rs.map((x) => x.cpuMicrosPerCall));
    console.log(`| ${s.name} | ${s.what} | ${cpu.toFixed(2)} | ${median(rs.map((x) => x.crossingsPerCall)).toFixed(2)} | ` +
      `${(cpu / keynoteCpu).toFixed(2)} | ${rs.reduce((n, x) => n + x.failed, 0)} |`);
  }
  console.log(`\nload average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  await module.close();
  await keynote.close();
}

await main();
