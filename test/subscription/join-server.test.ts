// Join subscriptions filed by a constant (manager.ts TableQueries, sql/subscription-plan.ts JoinEdge), end to end: the
// official SDK against a real Database + WebSocket server running the view-b fixture (item, and tag with an index on
// item_id). Each client sees exactly its own constant's rows as reducers insert, update and delete on both tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callerOf, ownerIdentity, type FeatureServer, within } from '../features-b/helpers.js';
import { eventually, serverWithTwoClients, subscribe, type Client } from '../features-b/sdk.js';

let srv: FeatureServer;
let a: Client;
let b: Client;
serverWithTwoClients((s) => ({ srv, a, b } = s));

const labels = (c: Client) => [...c.conn.db.item.iter()].map((r: { label: string }) => r.label).sort();
const tagNames = (c: Client) => [...c.conn.db.tag.iter()].map((r: { name: string }) => r.name).sort();
const same = (x: string[], y: string[]) => JSON.stringify(x) === JSON.stringify(y);

async function idOf(label: string): Promise<bigint> {
  const rows = (await srv.db.sql(`SELECT id FROM item WHERE label = '${label}'`, callerOf(ownerIdentity)))[0]!.rows;
  assert.equal(rows.length, 1, label);
  return rows[0]![0] as bigint;
}

test('join subscriptions with a constant on either table follow inserts, updates and deletes on both', async () => {
  // a: items tagged red (constant on tag, reached from item through tag.item_id's index), and the tags of items labelled
  // lamp (constant on item, reached from tag through item.id's index); b: items tagged blue.
  await subscribe(a, [
    "SELECT i.* FROM item i JOIN tag t ON i.id = t.item_id WHERE t.name = 'red'",
    "SELECT t.* FROM tag t JOIN item i ON t.item_id = i.id WHERE i.label = 'lamp'",
  ]);
  await subscribe(b, ["SELECT i.* FROM item i JOIN tag t ON i.id = t.item_id WHERE t.name = 'blue'"]);
  await within(a.conn.reducers.addItem({ label: 'lamp' }), 'addItem lamp');
  await within(a.conn.reducers.addItem({ label: 'desk' }), 'addItem desk');
  const lamp = await idOf('lamp');
  const desk = await idOf('desk');
  await within(b.conn.reducers.tagItem({ itemId: lamp, name: 'red' }), 'tag lamp red');
  await within(b.conn.reducers.tagItem({ itemId: desk, name: 'blue' }), 'tag desk blue');
  await within(b.conn.reducers.tagItem({ itemId: lamp, name: 'blue' }), 'tag lamp blue');
  await eventually(() => same(labels(a), ['lamp']) && same(tagNames(a), ['blue', 'red']), 'a: lamp, its two tags');
  await eventually(() => same(labels(b), ['desk', 'lamp']), 'b: both blue items');

  // An update of item moves the lamp out of a's second query and renames it in both clients' first.
  await within(a.conn.reducers.renameItem({ id: lamp, label: 'lampshade' }), 'rename lamp');
  await eventually(() => same(tagNames(a), []) && same(labels(a), ['lampshade']), 'a: the tags leave, the item is renamed');
  await eventually(() => same(labels(b), ['desk', 'lampshade']), 'b: the item is renamed');
  // A new item labelled lamp, tagged green: a's second query gets the tag through the item's value.
  await within(a.conn.reducers.addItem({ label: 'lamp' }), 'addItem lamp again');
  await within(b.conn.reducers.tagItem({ itemId: await idOf('lamp'), name: 'green' }), 'tag new lamp green');
  await eventually(() => same(tagNames(a), ['green']), 'a: the new lamp\'s tag');
  // Deleting an item removes it from b's result; a's is untouched.
  await within(a.conn.reducers.removeItem({ id: desk }), 'remove desk');
  await eventually(() => same(labels(b), ['lampshade']), 'b: the desk is gone');
  assert.deepEqual(labels(a), ['lampshade']);
});
