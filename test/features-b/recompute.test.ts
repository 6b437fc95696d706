// Views are recomputed only when a commit touches their read set (host/views.ts CallerPlan), sender views are never
// shared across senders, and view results come back as multiset deltas. Drives a real Database directly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Database } from '../../src/host/database.js';
import { compileWithSql } from '../../src/subscription/manager.js';
import type { TxData } from '../../src/datastore/types.js';
import { bundleFixture, callerOf, ownerIdentity } from './helpers.js';

let db: Database;
before(async () => { db = await Database.create({ identity: 0xc200beefn, ownerIdentity }, await bundleFixture()); });
after(async () => { await db.close(); });

const alice = 0xc200aaaan;
const bob = 0xc200bbbbn;

async function commit(reducer: string, args: unknown[], who: bigint): Promise<TxData> {
  const r = await db.callReducerJson(reducer, args, callerOf(who));
  assert.equal(r.status, 'committed', reducer);
  return (r as { txData: TxData }).txData;
}

test('a sender view re-runs only when a commit touches what it read; deltas are per sender', async () => {
  const compile = db.wrapCompile(compileWithSql);
  const forAlice = compile('SELECT * FROM my_items', db.datastore, { sender: alice, isOwner: false });
  const forBob = compile('SELECT * FROM my_items', db.datastore, { sender: bob, isOwner: false });
  assert.equal(forAlice.usesSender, true, 'sender views are per caller, never shared');
  assert.deepEqual(forAlice.evaluate(db.datastore), []);
  assert.deepEqual(forBob.evaluate(db.datastore), []);

  const tx1 = await commit('addItem', ['one'], alice);
  const d1 = forAlice.delta(db.datastore, tx1);
  assert.equal(d1.inserts.length, 1);
  assert.equal(d1.deletes.length, 0);
  assert.deepEqual(forBob.delta(db.datastore, tx1), { inserts: [], deletes: [] }, 'Bob does not see Alice\'s item');

  // A commit that touches only `tag` (not in the view's read set) does not enter the isolate at all.
  const tx2 = await commit('tagItem', [1, 'red'], bob);
  const crossings = db.syscallCrossings();
  assert.deepEqual(forAlice.delta(db.datastore, tx2), { inserts: [], deletes: [] });
  assert.equal(db.syscallCrossings(), crossings, 'the view was not re-run');

  // An update becomes a delete + insert pair in the same delta (the SDK turns it into an update by primary key).
  const tx3 = await commit('renameItem', [1, 'uno'], alice);
  const d3 = forAlice.delta(db.datastore, tx3);
  assert.ok(db.syscallCrossings() > crossings, 'the view re-ran');
  assert.equal(d3.inserts.length, 1);
  assert.equal(d3.deletes.length, 1);
  assert.deepEqual(d3.deletes[0], d1.inserts[0]);
});

test('a sender view that reads its rows by index key re-runs only for commits that change a row under its keys', async () => {
  const carol = 0xc200ccccn, dave = 0xc200ddddn;
  const compile = db.wrapCompile(compileWithSql);
  const forCarol = compile('SELECT * FROM my_items', db.datastore, { sender: carol, isOwner: false });
  const forDave = compile('SELECT * FROM my_items', db.datastore, { sender: dave, isOwner: false });
  const total = compile('SELECT * FROM item_total', db.datastore, { sender: carol, isOwner: false });
  forCarol.evaluate(db.datastore);
  forDave.evaluate(db.datastore);
  total.evaluate(db.datastore);
  await commit('addItem', ['carol-1'], carol);
  const tx = await commit('addItem', ['dave-1'], dave);
  forCarol.delta(db.datastore, await commit('addItem', ['carol-2'], carol)); // Carol's view is current again

  // my_items filters item by owner (an index point read): Dave's item does not touch Carol's key. item_total counts
  // every item (a whole-table read): it re-runs for anyone's item. The commit re-runs both (views.ts commitApplied).
  const evaluations = db.views.evaluations;
  const daveItem = await commit('addItem', ['dave-2'], dave);
  assert.equal(db.views.evaluations, evaluations + 2, 'Dave\'s view and the count re-ran, Carol\'s view did not');
  const crossings = db.syscallCrossings();
  assert.deepEqual(forCarol.delta(db.datastore, daveItem), { inserts: [], deletes: [] });
  assert.equal(forDave.delta(db.datastore, tx).inserts.length + forDave.delta(db.datastore, daveItem).inserts.length, 2);
  assert.equal(total.delta(db.datastore, daveItem).inserts.length, 1);
  assert.equal(db.syscallCrossings(), crossings, 'the deltas used the results the commit computed');
  // Carol's own item, renamed and removed, reaches her view.
  const renamed = await commit('renameItem', [await idOf('carol-1'), 'carol-uno'], carol);
  const d = forCarol.delta(db.datastore, renamed);
  assert.equal(d.inserts.length, 1);
  assert.equal(d.deletes.length, 1);
  assert.equal(forCarol.delta(db.datastore, await commit('removeItem', [await idOf('carol-2')], carol)).deletes.length, 1);
});

/** The id of the item labelled `label` (owner's SQL). */
async function idOf(label: string): Promise<number> {
  const [r] = await db.sql(`SELECT id FROM item WHERE label = '${label}'`, callerOf(ownerIdentity), { isOwner: true });
  return Number((r as { rows: unknown[][] }).rows[0]![0]);
}

test('an anonymous view is shared (not per sender); plain tables keep the shared fast path', async () => {
  const compile = db.wrapCompile(compileWithSql);
  const anon = compile('SELECT * FROM item_total', db.datastore, { sender: alice, isOwner: false });
  assert.equal(anon.usesSender, false);
  const plain = compile('SELECT * FROM item', db.datastore, { sender: alice, isOwner: false });
  assert.equal(plain.isJoin, false, 'a table without views or RLS compiles to the ordinary plan');
  const rls = compile('SELECT * FROM secret', db.datastore, { sender: alice, isOwner: false });
  assert.equal(rls.usesSender, true, 'RLS plans are per caller');
  const owner = compile('SELECT * FROM secret', db.datastore, { sender: ownerIdentity, isOwner: true });
  assert.equal(owner.usesSender, false, 'the owner bypasses RLS');
});

test('views are visible to SQL by name, with WHERE; writing to a view is refused', async () => {
  const r = await db.sql("SELECT label FROM my_items WHERE label = 'uno'", callerOf(alice));
  assert.deepEqual(r[0]!.rows, [['uno']]);
  const none = await db.sql('SELECT * FROM my_items', callerOf(bob));
  assert.equal(none[0]!.rows.length, 0);
  await assert.rejects(db.sql("DELETE FROM my_items WHERE label = 'uno'", callerOf(ownerIdentity)));
  // A view's primary key (ViewPrimaryKeys) is indexed: point lookups and joins between views use it.
  const byId = await db.sql('SELECT label FROM my_items WHERE id = 1', callerOf(alice));
  assert.deepEqual(byId[0]!.rows, [['uno']]);
  const q = 'SELECT a.* FROM my_items a JOIN my_tagged_items b ON a.id = b.id';
  const joined = await db.sql(q, callerOf(alice));
  assert.deepEqual(joined[0]!.rows.map((r) => r[2]), ['uno']);
  const plan = db.wrapCompile(compileWithSql)(q, db.datastore, { sender: alice, isOwner: false });
  assert.equal(plan.evaluate(db.datastore).length, 1, 'a join of two views is subscribable (indexed view PKs)');
});

test('a view named like a table fails the publish', async () => {
  const code = (await bundleFixture()).replace(`name: "item_total"`, `name: "item"`);
  assert.ok(code.includes(`name: "item"`));
  await assert.rejects(Database.create({ identity: 0xc2009998n, ownerIdentity }, code), /already used by a table/);
});
