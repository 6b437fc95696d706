// Upstream smoketests views.rs, the flows that update a module with views: a view's body changed, a view added before
// a subscribed one, a view's read set switched, views dropped and added, a view's primary key added (disconnects
// clients), a view that throws refusing the update until a fixed module comes. Rewritten over
// test/fixtures/modules/smoke-views-* and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, type TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

/** upstream's publish().current_database().run(): the same database, `--yes=all`. */
const republish = (fixture: string, db: string, extra: string[] = []) =>
  st.cli(['publish', '--server', server.url, '-p', path.join(fixturesDir, fixture), '--yes=all', ...extra, db]);

async function assertSql(db: string, query: string, expected: string): Promise<void> {
  const r = await st.sql(db, query);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(trimTable(r.stdout), trimTable(expected), query);
}
const noPlayer = ' id | level\n----+-------';
const player = (id: number, level: number) => `${noPlayer}\n ${id}  | ${level}`;

test('an updated view body shows the new result', async () => {
  const id = await st.publish('smoke-views-am');
  for (const q of ['INSERT INTO player_state (id, level) VALUES (1, 1);', 'INSERT INTO player_state (id, level) VALUES (2, 2);']) {
    assert.equal((await st.sql(id, q)).code, 0);
  }
  await assertSql(id, 'SELECT * FROM player', player(1, 1));
  const r = await republish('smoke-views-am-updated', id);
  assert.equal(r.code, 0, r.stderr);
  await assertSql(id, 'SELECT * FROM player', player(2, 2));
});

test('a subscribed view keeps flowing when the update adds a view ahead of it', async () => {
  const id = await st.publish('smoke-views-am-stable');
  assert.equal((await st.call(id, 'seed')).code, 0);
  const sub = await st.subscribeBackground(id, ['SELECT * FROM z_counter'], { n: 1 });
  const r = await republish('smoke-views-am-stable-updated', id);
  assert.equal(r.code, 0, r.stderr);
  const bump = await st.call(id, 'bump_counter');
  assert.equal(bump.code, 0, bump.stderr);
  assert.deepEqual(await sub.collect(), [{ z_counter: { deletes: [{ id: 0, value: 0 }], inserts: [{ id: 0, value: 1 }] } }]);
});

test("an update re-evaluates a view; the view's old read set no longer re-runs it", async () => {
  const id = await st.publish('smoke-views-am-read-set');
  assert.equal((await st.call(id, 'seed')).code, 0);
  const sub = await st.subscribeBackground(id, ['SELECT * FROM switched'], { n: 2 });
  const r = await republish('smoke-views-am-read-set-updated', id);
  assert.equal(r.code, 0, r.stderr);
  const switched = async () => (await st.logMessages(id)).filter((m) => m.includes('Calling or updating view `switched`')).length;
  const afterPublish = await switched();
  assert.ok(afterPublish > 0, 'the updated view was evaluated during publish');
  assert.equal((await st.call(id, 'touch_old')).code, 0);
  assert.equal(await switched(), afterPublish);
  void sub;
});

test('a view dropped by an update, and added by one', async () => {
  const a = await st.publish('smoke-views-am');
  const drop = await republish('smoke-views-drop', a);
  assert.equal(drop.code, 0, drop.stderr);
  const b = await st.publish('smoke-views-drop');
  const add = await republish('smoke-views-am', b);
  assert.equal(add.code, 0, add.stderr);
});

test("a view's primary key added with --break-clients disconnects its subscribers", async () => {
  const id = await st.publish('smoke-views-pk');
  const sub = await st.subscribeBackground(id, ['select * from player'], {});
  const r = await republish('smoke-views-pk-updated', id, ['--break-clients']);
  assert.equal(r.code, 0, r.stderr);
  await sub.collect();
  const logs = await st.logMessages(id);
  assert.ok(logs.some((l) => l.includes('Disconnecting all users')), logs.join('\n'));
  assert.ok(logs.some((l) => l.includes('VIEW PRIMARY KEY UPDATE: client disconnected')), logs.join('\n'));
});

test('an update whose view throws is refused; the fixed one is taken', async () => {
  const id = await st.publish('smoke-views-am');
  assert.equal((await st.sql(id, 'INSERT INTO player_state (id, level) VALUES (1, 1);')).code, 0);
  await assertSql(id, 'SELECT * FROM player', player(1, 1));
  assert.notEqual((await republish('smoke-views-trapped', id)).code, 0);
  await assertSql(id, 'SELECT * FROM player', player(1, 1));
  const r = await republish('smoke-views-am-updated', id);
  assert.equal(r.code, 0, r.stderr);
  await assertSql(id, 'SELECT * FROM player', noPlayer);
});
