// Views end to end (issue 6 part B): the official SDK subscribes to sender views from two identities (each sees only
// its own rows, live), to an anonymous view, to a query-builder (RawSql) view with a join; a view that throws or
// loops forever is reported to its subscriber and the database keeps serving. Real Database + WebSocket server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callerOf, type FeatureServer, within } from './helpers.js';
import { connect, eventually, serverWithTwoClients, subscribe, type Client } from './sdk.js';

let srv: FeatureServer;
let a: Client;
let b: Client;
serverWithTwoClients((s) => ({ srv, a, b } = s), { reducerTimeoutMs: 300 });

const labels = (rows: Iterable<{ label: string }>) => [...rows].map((r) => r.label).sort();

test('sender view: two identities see different rows, updated live', async () => {
  await subscribe(a, ['SELECT * FROM my_items']);
  await subscribe(b, ['SELECT * FROM my_items']);
  let bSawAnInsert = false;
  b.conn.db.myItems.onInsert(() => { bSawAnInsert = true; });

  await within(a.conn.reducers.addItem({ label: 'apple' }), 'addItem a');
  await eventually(() => a.conn.db.myItems.count() === 1n, 'A sees its item');
  await within(b.conn.reducers.addItem({ label: 'banana' }), 'addItem b');
  await eventually(() => b.conn.db.myItems.count() === 1n, 'B sees its item');
  assert.deepEqual(labels(a.conn.db.myItems.iter()), ['apple']);
  assert.deepEqual(labels(b.conn.db.myItems.iter()), ['banana']);
  assert.ok(bSawAnInsert);

  const mine = [...a.conn.db.myItems.iter()][0]!;
  assert.equal(mine.owner.toHexString(), a.identityHex);
  await within(a.conn.reducers.renameItem({ id: mine.id, label: 'apricot' }), 'rename');
  await eventually(() => labels(a.conn.db.myItems.iter())[0] === 'apricot', 'A sees the rename');
  assert.equal(a.conn.db.myItems.count(), 1n);
  assert.deepEqual(labels(b.conn.db.myItems.iter()), ['banana']);

  await within(a.conn.reducers.removeItem({ id: mine.id }), 'remove');
  await eventually(() => a.conn.db.myItems.count() === 0n, 'A sees the delete');
  assert.equal(b.conn.db.myItems.count(), 1n);
});

test('anonymous view: one result for everyone, recomputed when its table changes', async () => {
  await subscribe(a, ['SELECT * FROM item_total']);
  const before = [...a.conn.db.itemTotal.iter()][0]!.n;
  await within(b.conn.reducers.addItem({ label: 'cherry' }), 'addItem');
  await eventually(() => [...a.conn.db.itemTotal.iter()][0]?.n === before + 1n, 'A sees the new total');
  assert.equal(a.conn.db.itemTotal.count(), 1n);
});

test('query-builder view: RawSql with a join, per sender', async () => {
  await subscribe(a, ['SELECT * FROM my_tagged_items']);
  assert.equal(a.conn.db.myTaggedItems.count(), 0n);
  await within(a.conn.reducers.addItem({ label: 'damson' }), 'addItem');
  await eventually(() => [...a.conn.db.myItems.iter()].some((r) => r.label === 'damson'), 'item');
  const item = [...a.conn.db.myItems.iter()].find((r) => r.label === 'damson')!;
  assert.equal(a.conn.db.myTaggedItems.count(), 0n, 'not tagged yet');
  await within(a.conn.reducers.tagItem({ itemId: item.id, name: 'purple' }), 'tag');
  await eventually(() => a.conn.db.myTaggedItems.count() === 1n, 'the tagged item appears');
  assert.equal([...a.conn.db.myTaggedItems.iter()][0]!.label, 'damson');
  // B tags its own item: A's view does not change, and B's own view (one-off) has it.
  const bItem = [...b.conn.db.myItems.iter()][0]!;
  await within(b.conn.reducers.tagItem({ itemId: bItem.id, name: 'yellow' }), 'tag b');
  const rows = await srv.db.sql('SELECT * FROM my_tagged_items', callerOf(BigInt('0x' + b.identityHex)));
  assert.deepEqual(rows[0]!.rows.map((r) => r[2]), ['banana']);
  assert.equal(a.conn.db.myTaggedItems.count(), 1n);
});

test('a view that throws, then one that loops forever: reported to the subscriber, the database keeps serving', async () => {
  // The SDK treats a SubscriptionError on an applied subscription as fatal and disconnects: use throwaway clients.
  const c = await connect(srv.url);
  await subscribe(c, ['SELECT * FROM fragile']);
  assert.ok(c.conn.db.fragile.count() > 0n);
  await within(b.conn.reducers.setMode({ value: 'throw' }), 'setMode throw');
  await eventually(() => !c.conn.isActive, 'the subscriber got the SubscriptionError (SDK disconnects)');
  assert.ok(srv.db.logs.tail(20).some((r) => /view fragile failed: .*told to throw/.test(r.message)), 'module log');
  await assert.rejects(subscribe(b, ['SELECT * FROM fragile']), /fragile view was told to throw/);

  await within(b.conn.reducers.setMode({ value: '' }), 'setMode ok');
  const d = await connect(srv.url);
  await subscribe(d, ['SELECT * FROM fragile']);
  await within(b.conn.reducers.setMode({ value: 'loop' }), 'setMode loop');
  await eventually(() => !d.conn.isActive, 'the subscriber of the looping view got the SubscriptionError');
  assert.ok(srv.db.logs.tail(20).some((r) => /view fragile failed: .*CPU time limit/.test(r.message)), 'module log');

  // Still serving: reducers commit and other views update.
  await within(a.conn.reducers.addItem({ label: 'elderberry' }), 'addItem after failures');
  await eventually(() => labels(a.conn.db.myItems.iter()).includes('elderberry'), 'my_items still live');
  const rows = await srv.db.sql('SELECT * FROM item', callerOf(1n));
  assert.ok(rows[0]!.rows.length >= 3);
});

test('a procedure\'s withTx commit refreshes sender views while the procedure runs (nested view call)', async () => {
  const caller = { identity: BigInt('0x' + a.identityHex), connectionId: 0x5151n, jwtPayload: undefined };
  const r = await srv.db.callProcedureJson('add_item_via_procedure', ['fig'], caller);
  assert.equal(r.status, 'returned', JSON.stringify(r, (_k, v) => typeof v === 'bigint' ? String(v) : v));
  await eventually(() => labels(a.conn.db.myItems.iter()).includes('fig'), 'A sees the procedure\'s item');
  assert.ok(!labels(b.conn.db.myItems.iter()).includes('fig'));
});
