// bench/engine-v2/ab-trees.ts — before/after of the reducer call path of two source trees in ONE process, for a machine
// too loaded for separate runs to compare (on the shared 2-core box, two runs of the same tree differed by 20 %).
// Both trees' Database are loaded (two module graphs, one isolated-vm), each seeds its own database, and transfers
// alternate between them in short chunks (the order flips every chunk); each side sums the thread CPU of its own
// chunks (/proc/thread-self/schedstat), so load drift hits both alike. The same tree twice (A/A) shows the spread.
//
// Owns: nothing but this measurement. May call: the two trees' host/database.ts, test/host/bundle.ts and
// bench/engine-v2/keynote-db.ts (loaded by path), bench/engine-v2/common.ts, bench/keynote/workload.ts (mulberry32).
//
// Run (from a tree whose node_modules resolve both): node --import tsx bench/engine-v2/ab-trees.ts <treeA> <treeB>
//      [chunks=40] [calls per chunk=2000] [keynote|general|stringPk|identityPk|autoIncPk|btreeFilter|btreeRead]. BENCH_BATCHED=1: 64 calls in flight through callReducer
//      (batched entry) instead of callReducerNow one by one; BENCH_ACCOUNTS=N accounts (default 100,000). A tree is a directory holding src/, test/ and bench/, e.g.
//      `git archive <commit> | tar -x -C dir` with node_modules linked in.

import type { Database } from '../../src/host/database.js';
import { threadCpuNs } from './common.js';
import { mulberry32 } from '../keynote/workload.js';

/** Accounts per database (BENCH_ACCOUNTS; default 100,000, which fit the module's row cache). */
const accountsCount = Number(process.env.BENCH_ACCOUNTS ?? 100_000);
const warmupCalls = 10_000;
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };

/**
 * Transfers between uniform random accounts (mulberry32, fixed seed: the same sequence for both trees). An LCG taken
 * modulo the account count, used before, left most of 1M accounts untouched.
 */
function transferArgs(n: number): Uint8Array[] {
  const next = mulberry32(0x9e3779b9);
  const rand = (): number => Math.floor(next() * accountsCount);
  return Array.from({ length: n }, () => {
    const from = rand();
    let to = rand();
    if (to === from) to = (from + 1) % accountsCount;
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, from, true); v.setUint32(4, to, true); v.setBigInt64(8, 1n, true);
    return b;
  });
}

/**
 * The keynote transfer (two finds, two updates) over accounts keyed by other column types: `stringPk` by a string
 * (`user-<id>@example.com`, 18-24 bytes), `identityPk` by an Identity, `autoIncPk` by a u64 autoInc key; `btreeFilter` is not a transfer: see its source. Same arguments as the keynote's.
 */
const keyedModules: Record<string, string> = {
  stringPk: keyedModule('name: t.string()', (id) => `'user-' + ${id} + '@example.com'`),
  identityPk: keyedModule('name: t.identity()', (id) => `new Identity(0xc2000000n * BigInt(${id} + 1))`),
  autoIncPk: keyedModule('name: t.u64().autoInc()', (id) => `BigInt(${id}) + 1n`),
  // bench:shapes' btreeFilter as a transfer: ~10 items per owner through a non-unique btree, one updated by its key.
  btreeFilter: `
import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({ items: table({ name: 'items' }, { id: t.u32().primaryKey(), owner: t.u32().index('btree'), qty: t.u32() }) });
export default spacetimedb;
export const seed = spacetimedb.reducer({ n: t.u32(), initialBalance: t.i64() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) ctx.db.items.insert({ id, owner: id % Math.max(1, Math.floor(n / 10)), qty: id });
});
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from }) => {
  let least = null;
  for (const r of ctx.db.items.owner.filter(from % 10000)) if (least === null || r.qty < least.qty) least = r;
  if (least === null) throw new SenderError('no items');
  ctx.db.items.id.update({ ...least, qty: least.qty + 1 });
});`,
};
// The same items only read (what a scan costs when nothing it returned is written).
keyedModules.btreeRead = keyedModules.btreeFilter.replace('ctx.db.items.id.update({ ...least, qty: least.qty + 1 });',
  "if (least.qty < 0) throw new SenderError('negative');");
function keyedModule(column: string, keyOf: (id: string) => string): string {
  return `
import { schema, table, t, SenderError } from 'spacetimedb/server';
import { Identity } from 'spacetimedb';
const spacetimedb = schema({ accounts: table({ name: 'accounts' }, { ${column}.primaryKey(), balance: t.i64() }) });
export default spacetimedb;
export const seed = spacetimedb.reducer({ n: t.u32(), initialBalance: t.i64() }, (ctx, { n, initialBalance }) => {
  for (let id = 0; id < n; id++) ctx.db.accounts.insert({ name: ${keyOf('id')}, balance: initialBalance });
});
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  const byName = ctx.db.accounts.name;
  const a = byName.find(${keyOf('from')}), b = byName.find(${keyOf('to')});
  if (a === null || b === null) throw new SenderError('account_missing');
  byName.update({ ...a, balance: a.balance - amount });
  byName.update({ ...b, balance: b.balance + amount });
});`;
}

async function openTree(tree: string, kind: string): Promise<Database> {
  const { Database: TreeDatabase } = await import(`${tree}/src/host/database.ts`) as { Database: typeof Database };
  const bundles = await import(`${tree}/test/host/bundle.ts`);
  const bundle: string = kind === 'keynote' ? await bundles.fixtureBundle('keynote')
    : kind in keyedModules ? await bundles.sourceBundle(keyedModules[kind], `${kind}.ts`)
    : await (await import(`${tree}/bench/engine-v2/keynote-db.ts`)).benchModuleBundle('general');
  const db = await TreeDatabase.create({ identity: 7n, ownerIdentity: 2n, limits: {} }, bundle);
  const seeded = await db.callReducerJson('seed', [accountsCount, 1_000_000_000], caller);
  if (seeded.status !== 'committed') throw new Error(`${tree}: ${kind} seed failed`);
  return db;
}

/** Calls in flight with BENCH_BATCHED=1 (as bench/core.ts: queued calls enter the isolate together). */
const batchedInFlight = 64;

async function runChunk(db: Database, args: Uint8Array[], from: number, count: number): Promise<void> {
  if (process.env.BENCH_BATCHED !== '1') {
    for (let i = from; i < from + count; i++) {
      if (db.callReducerNow('transfer', args[i], caller)?.result.status !== 'committed') throw new Error('a transfer failed');
    }
    return;
  }
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < from + count) {
      if ((await db.callReducer('transfer', args[next++], caller)).status !== 'committed') throw new Error('a transfer failed');
    }
  };
  await Promise.all(Array.from({ length: batchedInFlight }, worker));
}

async function main(): Promise<void> {
  const [treeA, treeB, chunksArg, callsArg, only] = process.argv.slice(2);
  if (treeA === undefined || treeB === undefined) throw new Error('usage: ab-trees.ts <treeA> <treeB> [chunks] [calls] [kind]');
  const chunks = Number(chunksArg ?? 40), calls = Number(callsArg ?? 2000);
  const args = transferArgs(warmupCalls + chunks * calls);
  for (const kind of only === undefined ? ['keynote', 'general'] : [only]) {
    const dbs = [await openTree(treeA, kind), await openTree(treeB, kind)];
    for (const db of dbs) await runChunk(db, args, 0, warmupCalls);
    const sumNs = [0, 0], diffs: number[] = [];
    for (let c = 0; c < chunks; c++) {
      const from = warmupCalls + c * calls, ns = [0, 0];
      for (const side of c % 2 === 0 ? [0, 1] : [1, 0]) {
        const t0 = threadCpuNs();
        await runChunk(dbs[side], args, from, calls);
        ns[side] = threadCpuNs() - t0;
        sumNs[side] += ns[side];
      }
      diffs.push((ns[1] - ns[0]) / calls / 1000);
    }
    diffs.sort((x, y) => x - y);
    const us = sumNs.map((x) => x / chunks / calls / 1000);
    const at = (q: number): string => diffs[Math.floor(q * (diffs.length - 1))].toFixed(2);
    console.log(`${kind.padEnd(7)}: A ${us[0].toFixed(2)}, B ${us[1].toFixed(2)} CPU-µs per call (thread), B/A ${(us[1] / us[0]).toFixed(3)}; ` +
      `per chunk B-A median ${at(0.5)} µs (p25 ${at(0.25)}, p75 ${at(0.75)})`);
    for (const db of dbs) await db.close();
  }
}

await main();
