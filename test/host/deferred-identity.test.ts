// Host: deferred updates through an Identity primary key (datastore key.ts integerColumnTag: a product of one integer
// is an integer key, so MutTx.infallibleUpdate holds for it) against immediate writes (SPACETIME_IMMEDIATE_WRITES=1):
// the same outcomes, TxData and states after every call, failures included, and fewer crossings when deferred.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller, type ReducerCallResult } from '../../src/host/database.js';
import { createOnPath, sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };

const moduleSource = `
import { Identity } from 'spacetimedb';
import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({
  players: table({ name: 'players' }, { who: t.identity().primaryKey(), score: t.i64(), name: t.string(), seen: t.option(t.timestamp()) }),
});
export default spacetimedb;
const whoOf = (k) => new Identity((0xc200n << 240n) | BigInt(k) * 0x10001n);
export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let k = 0; k < n; k++) ctx.db.players.insert({ who: whoOf(k), score: 0n, name: 'p' + k, seen: undefined });
});
// Two players: found, updated (the second row changes length), found again from the cache.
export const play = spacetimedb.reducer({ a: t.u32(), b: t.u32(), name: t.string() }, (ctx, { a, b, name }) => {
  const byWho = ctx.db.players.who;
  const x = byWho.find(whoOf(a)), y = byWho.find(whoOf(b));
  if (x === null || y === null) throw new SenderError('no player');
  byWho.update({ ...x, score: x.score + 1n, seen: ctx.timestamp });
  byWho.update({ ...y, score: y.score - 1n, name });
  if (byWho.find(whoOf(b)).name !== name) throw new Error('update not seen');
});
export const play_then_fail = spacetimedb.reducer({ a: t.u32() }, (ctx, { a }) => {
  const x = ctx.db.players.who.find(whoOf(a));
  ctx.db.players.who.update({ ...x, score: 1000n });
  throw new SenderError('after an update');
});
export const update_missing = spacetimedb.reducer({ a: t.u32() }, (ctx, { a }) => {
  ctx.db.players.who.update({ who: whoOf(a), score: 1n, name: 'ghost', seen: undefined });
});
`;

const calls: [string, unknown[]][] = [
  ['seed', [6]],
  ['play', [0, 1, 'one']], ['play', [1, 2, 'a longer name ✓']], ['play', [2, 1, 'x']],
  ['play_then_fail', [1]],
  ['play', [1, 0, 'after the failure']],
  ['update_missing', [77]],
  ['play', [3, 4, 'four']], ['play', [4, 3, 'three']],
];

function summary(r: ReducerCallResult): unknown {
  if (r.status !== 'committed') return { status: r.status, message: r.message.split('\n')[0] };
  return { status: r.status, ts: r.timestampMicros, tables: r.txData.tables.map((t) => ({ t: t.tableName, ins: t.inserts, del: t.deletes })) };
}

test('updates through an Identity primary key are deferred, with the same outcomes, TxData and states', async () => {
  const program = await sourceBundle(moduleSource, 'identity-pk.ts');
  const root = mkdtempSync(join(tmpdir(), 'stdb-identity-'));
  let now = 1_700_000_000_000_000n;
  const clock = { nowMicros: () => now };
  const open = (name: string, immediate: boolean): Promise<Database> => createOnPath({ identity: 0xc200bbn,
    ownerIdentity: 0xabn, dataDir: join(root, name), clock, limits: { reducerTimeoutMs: 300 }, report: () => {} },
  program, immediate);
  const deferred = await open('deferred', false);
  const immediate = await open('immediate', true);
  try {
    let playsDeferred = 0, playsImmediate = 0;
    for (const [i, [name, args]] of calls.entries()) {
      now += 1000n;
      const before = [deferred.syscallCrossings(), immediate.syscallCrossings()];
      const a = summary(await deferred.callReducerJson(name, args, alice));
      const b = summary(await immediate.callReducerJson(name, args, alice));
      assert.deepEqual(a, b, `call ${i} (${name}): outcome and TxData`);
      assert.deepEqual(deferred.datastore.exportSnapshot(), immediate.datastore.exportSnapshot(), `call ${i} (${name}): state`);
      if (name === 'play') {
        playsDeferred += deferred.syscallCrossings() - before[0];
        playsImmediate += immediate.syscallCrossings() - before[1];
      }
    }
    // Immediate: every find and update of a play crosses; deferred: the updates wait for the call's end.
    assert.ok(playsDeferred < playsImmediate, `deferred plays crossed ${playsDeferred} times, immediate ${playsImmediate}`);
  } finally {
    await deferred.close();
    await immediate.close();
    rmSync(root, { recursive: true, force: true });
  }
});
