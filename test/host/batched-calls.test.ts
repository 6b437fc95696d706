// Host: queued reducer calls entering the isolate together (Database.enqueueCall → runQueuedCalls →
// ModuleRuntime.callReducers; docs/engine-v2.md §6c). Bursts of calls issued at once must give exactly what the same
// calls give one at a time: outcomes, TxData, the state after each burst, sequence values (leases carried across
// calls, values burned by failures), the commit log byte for byte, and the module log's records. Calls that end
// lazily (no crossing), calls that end with a crossing (deletes, immediate writes), failures, panics, a trap in the
// middle of a batch and bursts longer than callBatchCallsMax are all in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller, type ReducerCallResult } from '../../src/host/database.js';
import { callBatchCallsMax } from '../../src/limits.js';
import { attachMemorySample } from '../../src/host/memory-guard.js';
import { callSummary, commitLogBytes, createOnPath, sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const bob: Caller = { identity: 0x3333n, connectionId: 0x44n, jwtPayload: undefined };
const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };

const moduleSource = `
import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({
  accounts: table({ name: 'accounts' }, {
    id: t.u32().primaryKey(), owner: t.string(), balance: t.i64(), updated: t.timestamp(), nick: t.option(t.string()),
  }),
  audit: table({ name: 'audit' }, {
    id: t.u64().primaryKey().autoInc(), from: t.u32(), to: t.u32(), amount: t.i64(), at: t.timestamp(), memo: t.string(),
    by: t.identity(),
  }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) {
    ctx.db.accounts.insert({ id, owner: 'owner-' + id, balance: 1000n, updated: ctx.timestamp, nick: id % 2 ? 'n' + id : undefined });
  }
});
function move(ctx, from, to, amount, memo) {
  const byId = ctx.db.accounts.id;
  const a = byId.find(from), b = byId.find(to);
  if (a === null || b === null) throw new SenderError('account_missing');
  if (a.balance < amount) throw new SenderError('insufficient_funds');
  byId.update({ ...a, balance: a.balance - amount, updated: ctx.timestamp });
  byId.update({ ...b, balance: b.balance + amount, updated: ctx.timestamp });
  return ctx.db.audit.insert({ id: 0n, from, to, amount, at: ctx.timestamp, memo, by: ctx.sender }).id;
}
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  move(ctx, from, to, amount, 'transfer');
});
export const logged = spacetimedb.reducer({ from: t.u32(), to: t.u32() }, (ctx, { from, to }) => {
  const id = move(ctx, from, to, 1n, 'logged');
  console.info('logged transfer ' + id + ' by ' + ctx.sender.toHexString().slice(-4));
});
export const panic = spacetimedb.reducer({ from: t.u32() }, (ctx, { from }) => {
  move(ctx, from, 0, 1n, 'panic');
  throw new Error('panic after a move');
});
// Past one lease (16 values): inserts cross for new grants mid-call.
export const burst = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let i = 0; i < n; i++) move(ctx, i % 5, (i + 1) % 5, 1n, 'burst ' + i);
});
export const fail_after = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let i = 0; i < n; i++) move(ctx, 1, 2, 1n, 'doomed');
  throw new SenderError('failing after ' + n + ' inserts');
});
export const explicit = spacetimedb.reducer({ id: t.u64() }, (ctx, { id }) => {
  ctx.db.audit.insert({ id, from: 0, to: 0, amount: 0n, at: ctx.timestamp, memo: 'explicit', by: ctx.sender });
  try { move(ctx, 3, 4, 1n, 'after explicit'); } catch (e) { console.info('caught ' + (e && e.name)); }
});
export const rename = spacetimedb.reducer({ id: t.u32(), owner: t.string() }, (ctx, { id, owner }) => {
  const r = ctx.db.accounts.id.find(id);
  ctx.db.accounts.id.update({ ...r, owner, nick: owner.length % 2 ? owner : undefined });
  move(ctx, id, (id + 1) % 5, 1n, owner);
});
export const drop = spacetimedb.reducer({ id: t.u64() }, (ctx, { id }) => {
  ctx.db.audit.id.delete(id);
  move(ctx, 2, 3, 1n, 'after drop');
});
// An audit row first (from a lease), then an account nobody read yet: the read crosses after the insert.
export const late_read = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  ctx.db.audit.insert({ id: 0n, from: id, to: id, amount: 0n, at: ctx.timestamp, memo: 'late read', by: ctx.sender });
  const a = ctx.db.accounts.id.find(id);
  ctx.db.accounts.id.update({ ...a, balance: a.balance + 1n });
});
export const spin = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let i = 0; i < n; i++) move(ctx, 0, 1, 1n, 'spin');
  for (;;) {}
});
`;

type Call = [string, unknown[], Caller?];
const transfers = (n: number, seed: number): Call[] =>
  Array.from({ length: n }, (_, i): Call => ['transfer', [(seed + i) % 5, (seed + 2 * i + 1) % 5 === (seed + i) % 5 ? (seed + i + 1) % 5 : (seed + 2 * i + 1) % 5, 1 + (i % 3)], i % 2 ? bob : alice]);
/** Each burst's calls are made at once (batched) or one after another (the reference). */
const bursts: Call[][] = [
  [['seed', [5]]],
  [...transfers(6, 0), ['transfer', [0, 1, 999_999]], ['logged', [1, 2]], ['logged', [2, 3], bob], ['panic', [3]], ...transfers(3, 1)],
  [['burst', [40]], ...transfers(4, 2), ['burst', [3]], ...transfers(2, 3)],
  [['fail_after', [3]], ...transfers(2, 4), ['explicit', [80]], ['transfer', [3, 4, 1]], ['explicit', [1]]],
  [['rename', [2, 'a much longer owner name ✓']], ...transfers(2, 0), ['rename', [2, 'x']], ['rename', [3, 'é']], ...transfers(2, 1)],
  [['drop', [5]], ...transfers(3, 2), ['drop', [6]], ['drop', [999]], ...transfers(2, 3)],
  [...transfers(3, 4), ['spin', [2]], ...transfers(3, 0)],
  transfers(3 * callBatchCallsMax + 5, 1),
];


const logText = (db: Database): string[] => db.logs.tail(1000).map((r) => `${r.level} ${r.message.split('\n')[0]}`);

test('calls made at once run in batches and give what the same calls give one at a time', { timeout: 60_000 }, async () => {
  const program = await sourceBundle(moduleSource, 'batched.ts');
  const root = mkdtempSync(join(tmpdir(), 'stdb-batched-'));
  let now = 1_700_000_000_000_000n;
  const clock = { nowMicros: () => now };
  const open = (name: string, immediate: boolean): Promise<Database> => createOnPath({ identity: 0xc200aan,
    ownerIdentity: owner.identity, dataDir: join(root, name), clock, limits: { reducerTimeoutMs: 300 }, report: () => {} },
  program, immediate);
  const oneByOne = await open('one-by-one', false);
  const batched = await open('batched', false);
  const batchedImmediate = await open('batched-immediate', true);    // every write crosses: every call ends with one
  try {
    for (const [b, burst] of bursts.entries()) {
      now += 1_000_000n;                          // the clock stands still within a burst: a batch has one timestamp
      const reference: unknown[] = [];
      const referenceCrossings = oneByOne.syscallCrossings();
      for (const [name, args, caller] of burst) reference.push(callSummary(await oneByOne.callReducerJson(name, args, caller ?? alice)));
      const crossedOneByOne = oneByOne.syscallCrossings() - referenceCrossings;
      for (const db of [batched, batchedImmediate]) {
        const batchesBefore = db.counters.callBatches, crossingsBefore = db.syscallCrossings();
        const results = await Promise.all(burst.map(([name, args, caller]) => db.callReducerJson(name, args, caller ?? alice)));
        assert.deepEqual(results.map(callSummary), reference, `burst ${b}: outcomes and TxData`);
        assert.deepEqual(db.datastore.exportSnapshot(), oneByOne.datastore.exportSnapshot(), `burst ${b}: state`);
        if (burst.length > 1) assert.ok(db.counters.callBatches > batchesBefore, `burst ${b} ran in batches`);
        if (db === batched && b === bursts.length - 1) {
          // Transfers with warm caches: the batch crosses only where single calls do (a new lease every 16 audit rows),
          // its calls end without crossing, and its leases carry over from call to call (else every insert crosses).
          const crossed = db.syscallCrossings() - crossingsBefore;
          assert.ok(crossed <= crossedOneByOne, `crossings of ${burst.length} transfers: ${crossed} batched, ${crossedOneByOne} one by one`);
        }
      }
    }
    assert.equal(oneByOne.counters.callBatches, 0, 'calls made one at a time do not batch');
    assert.ok(batched.counters.callBatches < bursts.reduce((n, b) => n + b.length, 0) / 4, `few entries: ${batched.counters.callBatches}`);
    for (const db of [batched, batchedImmediate]) assert.deepEqual(logText(db), logText(oneByOne), 'module log');
    assert.ok(logText(oneByOne).some((l) => l.includes('logged transfer')) && logText(oneByOne).some((l) => l.includes('was stopped')));
  } finally {
    await oneByOne.close();
    await batched.close();
    await batchedImmediate.close();
  }
  const reference = commitLogBytes(join(root, 'one-by-one'));
  assert.ok(reference.length > 0);
  assert.ok(commitLogBytes(join(root, 'batched')).equals(reference), 'byte-identical commit log (batched)');
  assert.ok(commitLogBytes(join(root, 'batched-immediate')).equals(reference), 'byte-identical commit log (batched, immediate writes)');
  rmSync(root, { recursive: true, force: true });
});

test('a call that ended lazily and is refused at commit cuts its batch: the calls after it run again', { timeout: 60_000 }, async () => {
  const program = await sourceBundle(moduleSource, 'batched.ts');
  let now = 1_700_000_000_000_000n;
  const clock = { nowMicros: () => now };
  // The server's memory sample (host/memory-guard.ts: resident MiB, bound MiB): past the bound, a commit that adds rows
  // is refused. A commit listener reaches the bound after `commitsBeforeBound` commits of the burst.
  const sample = new Int32Array(new SharedArrayBuffer(8));
  attachMemorySample(sample.buffer as SharedArrayBuffer);
  const commitsBeforeBound = 5;
  const open = async (): Promise<{ db: Database; arm(): void }> => {
    const db = await Database.create({ identity: 0xc300aan, ownerIdentity: owner.identity, clock, limits: { reducerTimeoutMs: 300 } }, program);
    let commits = -1;
    db.onCommit(() => { if (commits >= 0 && ++commits === commitsBeforeBound) { sample[0] = 2; sample[1] = 1; } });
    return { db, arm: () => { commits = 0; } };
  };
  const reference = await open(), batched = await open();
  // 200 accounts, the first 5 read before the burst. The burst's first calls end lazily; the 7th takes a leased value,
  // then reads an account not read yet, so it crosses, and the host reads the first six ends there: the 5th commit
  // reaches the bound, the 6th call is refused, and the batch is cut at that crossing: the 7th call's leased value goes
  // back, and it and the later ones run again (and are refused too, but for `drop`, which adds nothing).
  const seed: Call[] = [['seed', [200]]];
  const burst: Call[] = [...transfers(6, 0), ['late_read', [150]], ['drop', [3]], ...transfers(6, 2), ['transfer', [120, 121, 1]]];
  try {
    for (const { db } of [reference, batched]) for (const [name, args] of seed) assert.equal((await db.callReducerJson(name, args, alice)).status, 'committed');
    // Warm the batched one's row cache, so that the burst's calls end without crossing.
    assert.ok((await Promise.all(transfers(10, 3).map(([n, a]) => batched.db.callReducerJson(n, a, alice)))).every((r) => r.status === 'committed'));
    for (const [name, args] of transfers(10, 3)) assert.equal((await reference.db.callReducerJson(name, args, alice)).status, 'committed');
    assert.deepEqual(batched.db.datastore.exportSnapshot(), reference.db.datastore.exportSnapshot(), 'state before the burst');
    now += 1_000_000n;
    reference.arm();
    const expected: unknown[] = [];
    for (const [name, args, caller] of burst) expected.push(callSummary(await reference.db.callReducerJson(name, args, caller ?? alice)));
    sample[0] = 0; sample[1] = 0;
    batched.arm();
    const batchesBefore = batched.db.counters.callBatches;
    const results = await Promise.all(burst.map(([name, args, caller]) => batched.db.callReducerJson(name, args, caller ?? alice)));
    sample[0] = 0; sample[1] = 0;
    assert.ok(batched.db.counters.callBatches > batchesBefore, 'the burst ran in a batch');
    assert.deepEqual(results.map(callSummary), expected, 'outcomes and TxData');
    assert.equal(expected.filter((r) => (r as ReducerCallResult).status === 'committed').length, commitsBeforeBound);
    assert.match(JSON.stringify(expected[commitsBeforeBound]), /out of memory/);
    assert.deepEqual(batched.db.datastore.exportSnapshot(), reference.db.datastore.exportSnapshot(), 'state and sequences');
  } finally {
    attachMemorySample(new SharedArrayBuffer(8));
    await reference.db.close();
    await batched.db.close();
  }
});
