// Host: updates deferred inside the isolate (isolate-src.ts "Deferred updates"). A reducer's update of a row it just
// found through a unique index whose updates cannot fail is queued instead of crossing; everything the module can
// observe must stay as without deferral: reads see earlier writes, errors surface where they happened, failed calls
// roll back, and rows known to exist are forgotten by anything that could remove them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, type Caller } from '../../src/host/database.js';
import { sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const opts = { identity: 0xc200aan, ownerIdentity: 0xabn };

// acct: deferrable (plain numbers, one unique column). named: a string column. pair: two unique column sets.
const moduleSource = `
import { schema, table, t, SenderError } from 'spacetimedb/server';
import { table_id_from_name, index_id_from_name, datastore_update_bsatn } from 'spacetime:sys@2.0';
const spacetimedb = schema({
  acct: table({ name: 'acct' }, { id: t.u32().primaryKey(), balance: t.i64() }),
  named: table({ name: 'named' }, { id: t.u32().primaryKey(), name: t.string() }),
  pair: table({ name: 'pair' }, { id: t.u32().primaryKey(), code: t.u32().unique() }),
  note: table({ name: 'note' }, { text: t.string() }),
});
export default spacetimedb;
const failText = (e) => (e && e.name ? e.name : 'Error') + ': ' + (e && e.message);

export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) {
    ctx.db.acct.insert({ id, balance: 100n });
    ctx.db.named.insert({ id, name: 'n' + id });
    ctx.db.pair.insert({ id, code: 1000 + id });
  }
});
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  const byId = ctx.db.acct.id;
  const a = byId.find(from), b = byId.find(to);
  if (a === null || b === null) throw new SenderError('account_missing');
  byId.update({ id: from, balance: a.balance - amount });
  byId.update({ id: to, balance: b.balance + amount });
});
// Reads after a queued update see it (the scan flushes the queue first).
export const bump_twice = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const byId = ctx.db.acct.id;
  const r = byId.find(id);
  byId.update({ id, balance: r.balance + 1n });
  const again = byId.find(id);
  if (again.balance !== r.balance + 1n) throw new SenderError('stale read ' + again.balance);
  byId.update({ id, balance: again.balance + 1n });
  let total = 0n;
  for (const row of ctx.db.acct.iter()) total += row.balance;
  console.info('total ' + total);
});
// A delete between the find and the update: the update must fail right there, catchably.
export const find_delete_update = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const byId = ctx.db.acct.id;
  byId.find(id);
  byId.delete(id);
  try { byId.update({ id, balance: 7n }); } catch (e) { throw new SenderError('caught ' + failText(e)); }
  throw new SenderError('update of a deleted row succeeded');
});
export const delete_acct = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => { ctx.db.acct.id.delete(id); });
// Updates a row this call never found (it finds another one first).
export const update_unfound = spacetimedb.reducer({ found: t.u32(), id: t.u32() }, (ctx, { found, id }) => {
  ctx.db.acct.id.find(found);
  try { ctx.db.acct.id.update({ id, balance: 7n }); } catch (e) { throw new SenderError('caught ' + failText(e)); }
});
// Queued updates, then a module error: everything rolls back.
export const update_then_throw = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const r = ctx.db.acct.id.find(id);
  ctx.db.acct.id.update({ id, balance: r.balance + 50n });
  throw new Error('boom after update');
});
// Many updates of a few found rows: the queue overflows its cap and is flushed mid-call.
export const hammer = spacetimedb.reducer({ rows: t.u32(), times: t.u32() }, (ctx, { rows, times }) => {
  const byId = ctx.db.acct.id;
  const found = [];
  for (let id = 0; id < rows; id++) found.push(byId.find(id));
  for (let k = 1; k <= times; k++) for (const r of found) byId.update({ id: r.id, balance: r.balance + BigInt(k) });
  ctx.db.note.insert({ text: 'hammered' });
});
// Not deferrable: a unique violation through the second unique column still surfaces at the update.
export const pair_conflict = spacetimedb.reducer({ id: t.u32(), code: t.u32() }, (ctx, { id, code }) => {
  ctx.db.pair.id.find(id);
  try { ctx.db.pair.id.update({ id, code }); } catch (e) { throw new SenderError('caught ' + failText(e)); }
});
// The raw syscall with a row whose string is not UTF-8, after a find cached the row: the shim must not queue it.
export const raw_bad_update = spacetimedb.reducer({ id: t.u32(), index: t.string() }, (ctx, { id, index }) => {
  const tid = table_id_from_name('named'), iid = index_id_from_name(index);
  ctx.db.named.id.find(id);
  const b = new Uint8Array(10), v = new DataView(b.buffer);
  v.setUint32(0, id, true); v.setUint32(4, 2, true); b[8] = 0xff; b[9] = 0xfe;
  try { datastore_update_bsatn(tid, iid, b.buffer, 10); } catch (e) { throw new SenderError('caught ' + failText(e)); }
  throw new SenderError('an invalid row was accepted');
});
// A log between a find and its update: logging touches no rows, so the update is still deferred.
export const log_between = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const r = ctx.db.acct.id.find(id);
  console.info('found ' + r.balance);
  ctx.db.acct.id.update({ id, balance: r.balance + 1n });
});
export const rename = spacetimedb.reducer({ id: t.u32(), name: t.string() }, (ctx, { id, name }) => {
  const r = ctx.db.named.id.find(id);
  ctx.db.named.id.update({ ...r, name });
});
`;

let bundle: Promise<string> | undefined;
function moduleBundle(): Promise<string> {
  return bundle ??= sourceBundle(moduleSource, 'deferred.ts');
}

async function withDb(fn: (db: Database) => Promise<void>): Promise<void> {
  const db = await Database.create(opts, await moduleBundle());
  try {
    assert.equal((await db.callReducerJson('seed', [20], alice)).status, 'committed');
    await fn(db);
  } finally {
    await db.close();
  }
}

/** Balance of account `id` in committed state (the row is u32 id, i64 balance). */
function balance(db: Database, id: number): bigint | undefined {
  const t = db.datastore.tableByName('acct')!;
  for (const row of db.datastore.scan(t.tableId)) {
    const v = new DataView(row.buffer, row.byteOffset, row.byteLength);
    if (v.getUint32(0, true) === id) return v.getBigInt64(4, true);
  }
  return undefined;
}

function lastMessage(db: Database): string {
  return db.logs.tail(1)[0].message;
}

test('a transfer crosses only for its two finds, and commits the same TxData', async () => {
  await withDb(async (db) => {
    const before = db.syscallCrossings();
    const r = await db.callReducerJson('transfer', [3, 4, 30], alice);
    assert.equal(r.status, 'committed');
    assert.equal(db.syscallCrossings() - before, 2, 'two point scans; both updates deferred');
    assert.equal(balance(db, 3), 70n);
    assert.equal(balance(db, 4), 130n);
    const ch = r.status === 'committed' ? r.txData.tables : [];
    assert.equal(ch.length, 1);
    assert.equal(ch[0].tableName, 'acct');
    assert.equal(ch[0].inserts.length, 2);
    assert.equal(ch[0].deletes.length, 2);
  });
});

test('reads after a deferred update see it; scans flush the queue', async () => {
  await withDb(async (db) => {
    const r = await db.callReducerJson('bump_twice', [5], alice);
    assert.equal(r.status, 'committed', r.status === 'committed' ? '' : r.message);
    assert.equal(balance(db, 5), 102n);
    assert.equal(lastMessage(db), `total ${20 * 100 + 2}`);
  });
});

test('an update after a delete of the found row fails at the update, as without deferral', async () => {
  await withDb(async (db) => {
    const r = await db.callReducerJson('find_delete_update', [6], alice);
    assert.equal(r.status, 'failed');
    assert.match(r.status === 'failed' ? r.message : '', /^caught NoSuchRow: /);
    assert.equal(balance(db, 6), 100n, 'rolled back');
  });
});

test('what one call found is forgotten by the next call', async () => {
  await withDb(async (db) => {
    assert.equal((await db.callReducerJson('transfer', [7, 8, 1], alice)).status, 'committed');
    assert.equal((await db.callReducerJson('delete_acct', [7], alice)).status, 'committed');
    const r = await db.callReducerJson('update_unfound', [9, 7], alice);
    assert.equal(r.status, 'failed', 'row 7 is gone: the update must fail, not be queued');
    assert.match(r.status === 'failed' ? r.message : '', /^caught NoSuchRow: /);
    assert.equal(balance(db, 7), undefined);
  });
});

test('a module error after queued updates rolls them back', async () => {
  await withDb(async (db) => {
    const r = await db.callReducerJson('update_then_throw', [10], alice);
    assert.equal(r.status, 'internal');
    assert.equal(balance(db, 10), 100n);
    assert.equal((await db.callReducerJson('transfer', [10, 11, 5], alice)).status, 'committed');
    assert.equal(balance(db, 10), 95n);
  });
});

test('a queue past its cap is flushed mid-call and every update lands in order', async () => {
  await withDb(async (db) => {
    const times = 400; // 16 rows × 400 updates × 24 bytes ≈ 150 KB: more than one queue's worth
    const before = db.syscallCrossings();
    const r = await db.callReducerJson('hammer', [16, times], alice);
    assert.equal(r.status, 'committed', r.status === 'committed' ? '' : r.message);
    const crossings = db.syscallCrossings() - before;
    assert.ok(crossings < 16 + 16 * times / 10, `updates were queued (${crossings} crossings)`);
    for (let id = 0; id < 16; id++) assert.equal(balance(db, id), 100n + BigInt(times));
    assert.equal(balance(db, 16), 100n);
  });
});

test('updates that can fail still cross and fail where they happen', async () => {
  await withDb(async (db) => {
    const before = db.syscallCrossings();
    const r = await db.callReducerJson('pair_conflict', [1, 1002], alice);
    assert.equal(r.status, 'failed');
    assert.match(r.status === 'failed' ? r.message : '', /^caught UniqueAlreadyExists: /);
    assert.equal(db.syscallCrossings() - before, 2, 'find + update');
    const before2 = db.syscallCrossings();
    assert.equal((await db.callReducerJson('rename', [2, 'renamed'], alice)).status, 'committed');
    assert.equal(db.syscallCrossings() - before2, 1, 'rows with a string column are deferred too (the find crosses)');
  });
});

test('a row the shim cannot vouch for crosses and fails where it happens (invalid UTF-8 in a string column)', async () => {
  await withDb(async (db) => {
    const index = db.datastore.schema().tables.find((t) => t.name === 'named')!.indexes[0].name;
    const r = await db.callReducerJson('raw_bad_update', [3, index], alice);
    assert.equal(r.status, 'failed', r.status === 'internal' ? r.message : '');
    assert.match(r.status === 'failed' ? r.message : '', /^caught \w+: invalid row for table 'named'/);
    const ok = await db.callReducerJson('rename', [3, 'still fine'], alice);
    assert.equal(ok.status, 'committed');
  });
});

test('rows found or written by the previous committed call are served without a crossing', async () => {
  await withDb(async (db) => {
    assert.equal((await db.callReducerJson('transfer', [12, 13, 1], alice)).status, 'committed');
    const before = db.syscallCrossings();
    assert.equal((await db.callReducerJson('transfer', [13, 12, 3], alice)).status, 'committed');
    assert.equal(db.syscallCrossings() - before, 0, 'both rows come from the row cache');
    assert.equal(balance(db, 12), 102n);
    assert.equal(balance(db, 13), 98n);
  });
});

test('a write by anyone else between calls empties the row cache', async () => {
  await withDb(async (db) => {
    assert.equal((await db.callReducerJson('transfer', [14, 15, 1], alice)).status, 'committed');
    const owner: Caller = { identity: opts.ownerIdentity, connectionId: 0n, jwtPayload: undefined };
    await db.sql('UPDATE acct SET balance = 500 WHERE id = 14', owner);
    const before = db.syscallCrossings();
    assert.equal((await db.callReducerJson('transfer', [14, 15, 1], alice)).status, 'committed');
    assert.equal(db.syscallCrossings() - before, 2, 'both rows read again');
    assert.equal(balance(db, 14), 499n);
    assert.equal(balance(db, 15), 102n);
  });
});

test('a failed call empties the row cache (its writes were rolled back)', async () => {
  await withDb(async (db) => {
    assert.equal((await db.callReducerJson('transfer', [16, 17, 1], alice)).status, 'committed');
    assert.equal((await db.callReducerJson('update_then_throw', [16], alice)).status, 'internal');
    assert.equal((await db.callReducerJson('transfer', [16, 17, 1], alice)).status, 'committed');
    assert.equal(balance(db, 16), 98n, 'not 148: the failed call\'s update is gone from the cache too');
  });
});

test('a console.log between a find and an update keeps the row cache and the queue', async () => {
  await withDb(async (db) => {
    const before = db.syscallCrossings();
    assert.equal((await db.callReducerJson('log_between', [18], alice)).status, 'committed');
    assert.equal(db.syscallCrossings() - before, 2, 'the find and the log; the update is deferred');
    assert.equal(balance(db, 18), 101n);
    const rec = db.logs.tail(1)[0];
    assert.equal(rec.message, 'found 100');
    assert.equal(rec.filename, 'spacetimedb_module', 'the call site is still located (no source map here)');
    assert.ok((rec.lineNumber ?? 0) > 1);
  });
});
