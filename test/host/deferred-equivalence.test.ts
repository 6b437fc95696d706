// Host: the deferred write path (isolate-src.ts row cache, deferred updates of rows with strings, options, bools,
// bytes and timestamps, autoInc inserts served from sequence leases) against the immediate one
// (SPACETIME_IMMEDIATE_WRITES=1: every write crosses). The same calls on two databases with the same clock must give
// the same outcomes, the same TxData, the same state after every call, rollbacks and traps included (the datastore's
// snapshot holds rows and sequence positions), and byte-identical commit logs; the deferred one must cross less.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller } from '../../src/host/database.js';
import { callSummary, commitLogBytes, createOnPath, sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };

const moduleSource = `
import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({
  accounts: table({ name: 'accounts' }, {
    id: t.u32().primaryKey(), owner: t.string(), balance: t.i64(), updated: t.timestamp(),
    nick: t.option(t.string()), frozen: t.bool(), tag: t.byteArray(), level: t.option(t.u16()),
  }),
  audit: table({ name: 'audit' }, {
    id: t.u64().primaryKey().autoInc(), from: t.u32(), to: t.u32(), amount: t.i64(), at: t.timestamp(), memo: t.string(),
  }),
  // A string primary key: rows found by it are cached, updated and deleted without crossing.
  users: table({ name: 'users' }, { name: t.string().primaryKey(), score: t.u32(), bio: t.option(t.string()) }),
  // No primary key, no sequence: inserts are queued (set semantics: an identical row is no change).
  notes: table({ name: 'notes', indexes: [{ accessor: 'notes_who', algorithm: 'btree', columns: ['who'] }] }, {
    who: t.u32(), text: t.string(), at: t.timestamp(),
  }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) {
    ctx.db.accounts.insert({ id, owner: 'owner-' + id, balance: 1000n, updated: ctx.timestamp,
      nick: id % 2 ? 'n' + id : undefined, frozen: false, tag: new Uint8Array([id]), level: id % 3 ? id : undefined });
  }
});
function move(ctx, from, to, amount, memo) {
  const byId = ctx.db.accounts.id;
  const a = byId.find(from), b = byId.find(to);
  if (a === null || b === null) throw new SenderError('account_missing');
  if (a.balance < amount) throw new SenderError('insufficient_funds');
  byId.update({ ...a, balance: a.balance - amount, updated: ctx.timestamp });
  byId.update({ ...b, balance: b.balance + amount, updated: ctx.timestamp });
  const row = ctx.db.audit.insert({ id: 0n, from, to, amount, at: ctx.timestamp, memo });
  return row.id;
}
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  move(ctx, from, to, amount, 'transfer');
});
// Many audit rows in one call: past one lease, so inserts cross for new grants mid-call.
export const burst = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  let last = 0n;
  for (let i = 0; i < n; i++) {
    const id = move(ctx, i % 5, (i + 1) % 5, 1n, 'burst ' + i);
    if (id <= last) throw new Error('ids not increasing');
    last = id;
  }
});
// Values used by a failing call are burned on both paths.
export const fail_after = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let i = 0; i < n; i++) move(ctx, 1, 2, 1n, 'doomed');
  throw new SenderError('failing after ' + n + ' inserts');
});
// An explicit id inside the leased range: the lease ends first, so the next generated id collides as it would.
export const explicit = spacetimedb.reducer({ id: t.u64() }, (ctx, { id }) => {
  ctx.db.audit.insert({ id, from: 0, to: 0, amount: 0n, at: ctx.timestamp, memo: 'explicit' });
  try { move(ctx, 3, 4, 1n, 'after explicit'); } catch (e) { console.info('caught ' + (e && e.name)); }
});
// Rows that change length (string and option columns), unicode included.
export const rename = spacetimedb.reducer({ id: t.u32(), owner: t.string() }, (ctx, { id, owner }) => {
  const r = ctx.db.accounts.id.find(id);
  ctx.db.accounts.id.update({ ...r, owner, nick: owner.length % 2 ? owner : undefined, level: undefined, tag: new Uint8Array(owner.length) });
  move(ctx, id, (id + 1) % 5, 1n, owner);
});
// Deletes of rows the shim holds (queued, not crossed): the row is gone for a later find in the same call, a second
// delete finds nothing, and the row comes back with an insert; a move through a deleted row fails and rolls back.
export const reopen = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const byId = ctx.db.accounts.id, r = byId.find(id);
  if (!byId.delete(id)) throw new Error('delete of a found row deleted nothing');
  if (byId.find(id) !== null) throw new Error('a deleted row was found');
  if (byId.delete(id)) throw new Error('a second delete deleted a row');
  byId.insert({ ...r, owner: 'reopened ' + id, balance: r.balance + 1n });
  move(ctx, id, (id + 1) % 5, 1n, 'after reopen');
});
export const drop_then_move = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  ctx.db.accounts.id.find(id);
  ctx.db.accounts.id.delete(id);
  move(ctx, id, (id + 1) % 5, 1n, 'from a dropped account');
});
export const drop_all_but = spacetimedb.reducer({ keep: t.u32() }, (ctx, { keep }) => {
  for (let id = 0; id < 5; id++) if (id !== keep && ctx.db.accounts.id.find(id) !== null) ctx.db.accounts.id.delete(id);
  console.info('left ' + ctx.db.accounts.count());
});
export const users_seed = spacetimedb.reducer((ctx) => {
  for (const name of ['', 'ann', 'bob', 'zoë', 'a much longer name than the others ✓']) ctx.db.users.insert({ name, score: 0, bio: undefined });
});
export const bump = spacetimedb.reducer({ name: t.string(), by: t.u32() }, (ctx, { name, by }) => {
  const u = ctx.db.users.name.find(name);
  if (u === null) throw new SenderError('no user ' + name);
  ctx.db.users.name.update({ ...u, score: u.score + by, bio: by % 2 ? 'odd ' + name : undefined });
  const again = ctx.db.users.name.find(name);
  if (again.score !== u.score + by) throw new Error('the update was not seen');
});
export const rename_user = spacetimedb.reducer({ name: t.string(), to: t.string() }, (ctx, { name, to }) => {
  const u = ctx.db.users.name.find(name);
  if (u === null) throw new SenderError('no user ' + name);
  ctx.db.users.name.delete(name);
  if (ctx.db.users.name.find(name) !== null) throw new Error('a deleted user was found');
  ctx.db.users.insert({ ...u, name: to });
});
// Inserts into a table with nothing to generate and no unique constraint: queued, an identical row twice, then read
// back through its index (the read sees them) and counted.
export const note = spacetimedb.reducer({ who: t.u32(), text: t.string() }, (ctx, { who, text }) => {
  for (let i = 0; i < 20; i++) ctx.db.notes.insert({ who, text: text + (i % 7), at: ctx.timestamp });
  const mine = [...ctx.db.notes.notes_who.filter(who)].length;
  ctx.db.notes.insert({ who: who + 1, text, at: ctx.timestamp });
  console.info('notes ' + mine + ' of ' + ctx.db.notes.count());
});
export const note_then_fail = spacetimedb.reducer({ who: t.u32() }, (ctx, { who }) => {
  ctx.db.notes.insert({ who, text: 'doomed', at: ctx.timestamp });
  throw new SenderError('no notes today');
});
// Inserts, then runs past its time limit (a trap): the values it used are burned on both paths.
export const spin = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let i = 0; i < n; i++) move(ctx, 0, 1, 1n, 'spin');
  for (;;) {}
});
`;

const moduleBundle = (): Promise<string> => sourceBundle(moduleSource, 'equivalence.ts');

type Call = [string, unknown[]] | ['sql', string];
const calls: Call[] = [
  ['seed', [5]],
  ['transfer', [0, 1, 10]], ['transfer', [1, 0, 3]], ['transfer', [2, 3, 7]],
  ['burst', [40]],
  ['transfer', [3, 4, 1]],
  ['fail_after', [3]],
  ['transfer', [4, 0, 2]],
  ['explicit', [49]],     // 3 + 40 + 1 ids used, 3 burned by fail_after, 1 more: 49 is the next
  ['transfer', [0, 2, 1]],
  ['sql', 'UPDATE accounts SET balance = 5000 WHERE id = 4'],
  ['transfer', [4, 1, 100]],
  ['rename', [2, 'a much longer owner name ✓']], ['rename', [2, 'x']], ['rename', [3, 'é']],
  ['transfer', [2, 3, 1]],
  ['spin', [2]],
  ['transfer', [1, 2, 1]], ['transfer', [2, 1, 1]],
  ['transfer', [0, 1, 999_999]],
  ['transfer', [1, 2, 1]], ['reopen', [2]], ['transfer', [2, 3, 1]], ['reopen', [3]],
  ['transfer', [3, 4, 1]], ['drop_then_move', [4]], ['transfer', [4, 0, 1]],
  ['drop_all_but', [1]],
  ['note', [1, 'a']], ['note', [1, 'a']], ['note_then_fail', [1]], ['note', [2, 'é']],
  ['users_seed', []], ['bump', ['ann', 1]], ['bump', ['ann', 2]], ['bump', ['', 3]], ['bump', ['zoë', 1]],
  ['bump', ['nobody', 1]], ['bump', ['a much longer name than the others ✓', 5]], ['rename_user', ['bob', 'robert']],
  ['bump', ['robert', 1]], ['bump', ['bob', 1]], ['rename_user', ['zoë', 'zo']], ['bump', ['zo', 2]],
];


test('deferred and immediate writes give the same outcomes, TxData, states and commit log', async () => {
  const program = await moduleBundle();
  const root = mkdtempSync(join(tmpdir(), 'stdb-equiv-'));
  let now = 1_700_000_000_000_000n;
  const clock = { nowMicros: () => now };
  const open = (name: string, immediate: boolean): Promise<Database> => createOnPath({ identity: 0xc200aan,
    ownerIdentity: owner.identity, dataDir: join(root, name), clock, limits: { reducerTimeoutMs: 300 }, report: () => {} },
  program, immediate);
  const deferred = await open('deferred', false);
  const immediate = await open('immediate', true);
  try {
    for (const [i, [name, arg]] of calls.entries()) {
      now += 1000n;
      const run = async (db: Database): Promise<unknown> => {
        if (name === 'sql') { await db.sql(arg as string, owner); return 'sql'; }
        return callSummary(await db.callReducerJson(name, arg as unknown[], alice));
      };
      const before = [deferred.syscallCrossings(), immediate.syscallCrossings()];
      const a = await run(deferred), b = await run(immediate);
      assert.deepEqual(a, b, `call ${i} (${name}): outcome and TxData`);
      assert.deepEqual(deferred.datastore.exportSnapshot(), immediate.datastore.exportSnapshot(), `call ${i} (${name}): state`);
      if ((name === 'transfer' || name === 'reopen' || name === 'note' || (name === 'bump' && (a as { status: string }).status === 'committed')) && i > 2) {
        assert.ok(deferred.syscallCrossings() - before[0] < immediate.syscallCrossings() - before[1], `call ${i}: fewer crossings`);
      }
    }
    const log = (db: Database) => db.logs.tail(100).map((r) => r.message).filter((m) => m.startsWith('caught'));
    assert.deepEqual(log(deferred), log(immediate));
    assert.deepEqual(log(deferred), ['caught UniqueAlreadyExists'], 'the explicit id was the next one to generate');
    const left = (db: Database) => db.logs.tail(100).map((r) => r.message).filter((m) => m.startsWith('left') || m.startsWith('notes'));
    assert.deepEqual(left(deferred), left(immediate));
    assert.deepEqual(left(deferred), ['left 1', 'notes 7 of 8', 'notes 14 of 16', 'notes 9 of 24']);
  } finally {
    await deferred.close();
    await immediate.close();
  }
  const a = commitLogBytes(join(root, 'deferred')), b = commitLogBytes(join(root, 'immediate'));
  assert.ok(a.length > 0);
  assert.ok(a.equals(b), 'byte-identical commit logs');
  rmSync(root, { recursive: true, force: true });
});
