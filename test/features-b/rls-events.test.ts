// Row-level security, event tables, table.clear() and the caller's JWT payload, end to end (issue 6 part B): the
// official SDK as client of a real Database + WebSocket server; `spacetime sql`'s path is Database.sql.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database } from '../../src/host/database.js';
import { PublishError } from '../../src/host/errors.js';
import { compileWithSql, subscriptionsFor } from '../../src/subscription/manager.js';
import { bundleFixture, callerOf, ownerIdentity, type FeatureServer, within } from './helpers.js';
import { eventually, serverWithTwoClients, subscribe, type Client } from './sdk.js';

let srv: FeatureServer;
let a: Client;
let b: Client;
serverWithTwoClients((s) => ({ srv, a, b } = s));

const idOf = (c: Client) => BigInt('0x' + c.identityHex);
const texts = (rows: Iterable<{ text: string }>) => [...rows].map((r) => r.text).sort();

test('RLS: a non-owner sees only its own rows in subscriptions, one-off queries and SQL; the owner sees all', async () => {
  await within(a.conn.reducers.addSecret({ text: 'a-secret' }), 'addSecret a');
  await within(b.conn.reducers.addSecret({ text: 'b-secret' }), 'addSecret b');
  await subscribe(a, ['SELECT * FROM secret']);
  assert.deepEqual(texts(a.conn.db.secret.iter()), ['a-secret']);

  // Live: B's new secret never reaches A; A's does.
  await within(b.conn.reducers.addSecret({ text: 'b-secret-2' }), 'addSecret b2');
  await within(a.conn.reducers.addSecret({ text: 'a-secret-2' }), 'addSecret a2');
  await eventually(() => a.conn.db.secret.count() === 2n, 'A sees its second secret');
  assert.deepEqual(texts(a.conn.db.secret.iter()), ['a-secret', 'a-secret-2']);

  // `spacetime sql` path: non-owners are filtered, with WHERE and COUNT too; the owner bypasses RLS.
  const sqlA = await srv.db.sql('SELECT text FROM secret', callerOf(idOf(a)));
  assert.deepEqual(sqlA[0]!.rows.map((r) => r[0]).sort(), ['a-secret', 'a-secret-2']);
  const sqlB = await srv.db.sql("SELECT * FROM secret WHERE text = 'a-secret'", callerOf(idOf(b)));
  assert.equal(sqlB[0]!.rows.length, 0);
  // Index access paths are filtered too (point lookup on the primary key; a join probing secret by index).
  const aIds = (await srv.db.sql('SELECT id FROM secret', callerOf(idOf(a))))[0]!.rows.map((r) => r[0]);
  for (const id of aIds) {
    assert.equal((await srv.db.sql(`SELECT * FROM secret WHERE id = ${id}`, callerOf(idOf(b))))[0]!.rows.length, 0);
    assert.equal((await srv.db.sql(`SELECT * FROM secret WHERE id = ${id}`, callerOf(idOf(a))))[0]!.rows.length, 1);
  }
  const joined = await srv.db.sql('SELECT s.* FROM secret s JOIN secret u ON s.id = u.id', callerOf(idOf(b)));
  assert.deepEqual(joined[0]!.rows.map((r) => r[2]).sort(), ['b-secret', 'b-secret-2']);
  const sqlOwner = await srv.db.sql('SELECT text FROM secret', callerOf(ownerIdentity));
  assert.equal(sqlOwner[0]!.rows.length, 4);
  // A whole table's COUNT(*) is answered from the row count the caller's view gives, not a scan: filtered too.
  const countOf = async (sql: string, caller: bigint) => (await srv.db.sql(sql, callerOf(caller)))[0]!.rows[0]![0];
  assert.equal(await countOf('SELECT COUNT(*) AS n FROM secret', idOf(b)), 2n);
  assert.equal(await countOf('SELECT COUNT(*) AS n FROM secret', ownerIdentity), 4n);
  assert.equal(await countOf('SELECT COUNT(*) AS n FROM my_items', idOf(b)), 0n);
  assert.equal((await srv.db.sql('SELECT COUNT(*) AS n FROM secret LIMIT 0', callerOf(idOf(b))))[0]!.rows.length, 0);

  // One-off queries (the WebSocket OneOffQuery path: the database's subscription manager).
  const mgr = subscriptionsFor(srv.db, compileWithSql);
  const handle = mgr.addClient({ identity: idOf(b), connectionId: 0xfeedn, isOwner: false },
    { transaction: () => {}, querySetFailed: () => {} });
  try {
    for (const [q, n] of [['SELECT * FROM secret', 2], ['SELECT * FROM my_items', 0], ['SELECT * FROM item_total', 1]] as const) {
      const m = mgr.oneOffQuery(handle, 1, q);
      assert.ok(m.tag === 'OneOffQueryResult' && m.result.ok, q);
      assert.equal(m.result.rows[0]!.rows.length, n, q);
    }
  } finally {
    mgr.removeClient(handle);
  }
});

test('RLS: invalid filter SQL fails the publish with a clear error', async () => {
  const code = (await bundleFixture()).replace(
    "SELECT * FROM secret WHERE owner = :sender", 'SELECT * FROM no_such_table WHERE owner = :sender');
  await assert.rejects(Database.create({ identity: 0xc2009999n, ownerIdentity }, code), (err: unknown) => {
    assert.ok(err instanceof PublishError);
    assert.match(err.message, /invalid row-level security filter `SELECT \* FROM no_such_table WHERE owner = :sender`/);
    assert.match(err.message, /no_such_table/);
    return true;
  });
});

test('event table: rows reach subscribers as inserts but are never stored', async () => {
  await subscribe(a, ['SELECT * FROM notice']);
  assert.equal(a.conn.db.notice.count(), 0n);
  const seen: string[] = [];
  a.conn.db.notice.onInsert((_ctx: unknown, row: { text: string }) => { seen.push(row.text); });
  await within(b.conn.reducers.shout({ text: 'hello' }), 'shout');
  await eventually(() => seen.length === 1, 'A got the event');
  assert.deepEqual(seen, ['hello']);
  const stored = await srv.db.sql('SELECT * FROM notice', callerOf(ownerIdentity));
  assert.equal(stored[0]!.rows.length, 0, 'SELECT shows nothing');
  assert.equal(srv.db.datastore.rowCount(srv.db.datastore.tableByName('notice')!.tableId), 0);
  // A fresh subscription's initial rows contain nothing.
  await subscribe(b, ['SELECT * FROM notice']);
  assert.equal(b.conn.db.notice.count(), 0n);
});

test('table.clear() (datastore_clear) deletes every row and subscribers see the deletes', async () => {
  await within(a.conn.reducers.addItem({ label: 'x' }), 'addItem');
  await within(b.conn.reducers.addItem({ label: 'y' }), 'addItem');
  await subscribe(b, ['SELECT * FROM item']);
  assert.ok(b.conn.db.item.count() >= 2n);
  await within(a.conn.reducers.clearItems({}), 'clearItems');
  await eventually(() => b.conn.db.item.count() === 0n, 'B sees every item deleted');
  const left = await srv.db.sql('SELECT * FROM item', callerOf(ownerIdentity));
  assert.equal(left[0]!.rows.length, 0);
  assert.ok(srv.db.logs.tail(10).some((r) => /cleared \d+ items/.test(r.message)));
});

test('ctx.senderAuth.jwt: the WebSocket caller\'s JWT payload reaches the reducer', async () => {
  await within(a.conn.reducers.recordJwt({}), 'recordJwt');
  const rows = await srv.db.sql('SELECT payload FROM jwt_seen', callerOf(ownerIdentity));
  assert.equal(rows[0]!.rows.length, 1);
  const payload = JSON.parse(rows[0]!.rows[0]![0] as string) as Record<string, unknown>;
  assert.equal(typeof payload.sub, 'string');
  assert.equal(typeof payload.iss, 'string');
  assert.equal(String(payload.hex_identity ?? a.identityHex), a.identityHex);
  // An internal caller (no JWT) sees none.
  await srv.db.callReducer('recordJwt', new Uint8Array(0), callerOf(7n));
  const again = await srv.db.sql('SELECT payload FROM jwt_seen', callerOf(ownerIdentity));
  assert.ok(again[0]!.rows.some((r) => r[0] === 'none'));
});
