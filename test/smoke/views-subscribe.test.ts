// Upstream smoketests views.rs, the subscription flows: a sender view per identity, rows added by a procedure's
// transaction, count views refreshed by inserts / replaces / deletes, one of two subscribers leaving, a query-builder
// view read by SQL. Rewritten over test/fixtures/modules/smoke-views-* and driven through the real CLI and one real
// server. (views-joins.test.ts has the joins of views.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

type Update = Record<string, { deletes: Record<string, unknown>[]; inserts: Record<string, unknown>[] }>;

/** upstream's project_fields: each update of `view` with its rows cut to `fields`. */
function project(events: unknown[], view: string, fields: string[]): unknown[] {
  const cut = (row: Record<string, unknown>) => Object.fromEntries(fields.filter((f) => f in row).map((f) => [f, row[f]]));
  return (events as Update[]).map((e) => ({ [view]: { deletes: e[view]!.deletes.map(cut), inserts: e[view]!.inserts.map(cut) } }));
}
async function callOk(db: string, fn: string, ...args: string[]): Promise<void> {
  const r = await st.call(db, fn, ...args);
  assert.equal(r.code, 0, r.stderr);
}

test("a sender view shows each subscriber only its own row", async () => {
  const id = await st.publish('smoke-views-subscribe');
  await callOk(id, 'insert_player', 'Alice');
  await st.newIdentity();
  const sub = await st.subscribeBackground(id, ['select * from my_player'], { n: 1 });
  await callOk(id, 'insert_player', 'Bob');
  assert.deepEqual(project(await sub.collect(), 'my_player', ['name']), [{ my_player: { deletes: [], inserts: [{ name: 'Bob' }] } }]);
});

test("a procedure's transaction updates a sender view's subscriber; a query-builder view reads by SQL", async () => {
  const id = await st.publish('smoke-views-subscribe');
  const sub = await st.subscribeBackground(id, ['select * from my_player'], { n: 1 });
  await callOk(id, 'insert_player_proc', 'Alice');
  assert.deepEqual(project(await sub.collect(), 'my_player', ['name']), [{ my_player: { deletes: [], inserts: [{ name: 'Alice' }] } }]);
  const r = await st.sql(id, 'SELECT name FROM online_players');
  assert.equal(trimTable(r.stdout), ' name\n---------\n "Alice"'.trim());
});

test('count views refresh on insert, replace and delete (sender and anonymous)', async () => {
  const id = await st.publish('smoke-views-count');
  for (const [view, key, value, updated] of [['sender_table_count', '1', '10', '11'], ['anon_table_count', '2', '20', '21']] as const) {
    const sub = await st.subscribeBackground(id, [`select * from ${view}`], { n: 2 });
    await callOk(id, 'insert_item', key, value);
    await callOk(id, 'replace_item', key, updated);
    await callOk(id, 'delete_item', key);
    assert.deepEqual(project(await sub.collect(), view, ['count']), [
      { [view]: { deletes: [{ count: 0 }], inserts: [{ count: 1 }] } },
      { [view]: { deletes: [{ count: 1 }], inserts: [{ count: 0 }] } },
    ], view);
  }
});

test('one of two subscribers leaving does not stop the other (sender view, then anonymous view)', async () => {
  const id = await st.publish('smoke-views-sql');
  const cases = [
    { view: 'player', seed: ['set_player_state', '42', '1'], first: ['set_player_state', '42', '2'], second: ['set_player_state', '42', '3'], row: { id: 42, level: 3 } },
    { view: 'player_and_level', seed: ['add_player_level', '0', '2'], first: ['add_player_level', '1', '2'], second: ['add_player_level', '2', '2'], row: { id: 2, level: 2 } },
  ];
  for (const c of cases) {
    await callOk(id, c.seed[0]!, ...c.seed.slice(1));
    const keep = await st.subscribeBackground(id, [`SELECT * FROM ${c.view}`], { n: 2 });
    const drop = await st.subscribeBackground(id, [`SELECT * FROM ${c.view}`], { n: 1 });
    await callOk(id, c.first[0]!, ...c.first.slice(1));
    await drop.collect();
    await callOk(id, c.second[0]!, ...c.second.slice(1));
    const events = (await keep.collect()) as Update[];
    assert.equal(events.length, 2, JSON.stringify(events));
    assert.ok(events[1]![c.view]!.inserts.some((r) => r.id === c.row.id && r.level === c.row.level), JSON.stringify(events));
  }
});
