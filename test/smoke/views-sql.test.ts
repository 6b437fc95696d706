// Upstream smoketests views.rs, the flows read by SQL: st_view tables, publishes refused for a name clash or a
// non-product return type, views queried over HTTP SQL, materialization (a view re-runs only when what it read
// changed), query-builder views with filters and semijoins, a view's function called from a reducer. Rewritten over
// test/fixtures/modules/smoke-views-* and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, type TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

async function assertSql(db: string, query: string, expected: string): Promise<void> {
  const r = await st.sql(db, query);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(trimTable(r.stdout), trimTable(expected), query);
}
async function sqlOk(db: string, query: string): Promise<void> {
  const r = await st.sql(db, query);
  assert.equal(r.code, 0, r.stderr);
}
const countLogs = async (db: string, text: string) => (await st.logMessages(db)).filter((m) => m.includes(text)).length;

test('st_view and st_view_column describe the view', async () => {
  const id = await st.publish('smoke-views-basic');
  await assertSql(id, 'SELECT * FROM st_view', ` view_id | view_name | table_id      | is_public | is_anonymous
---------+-----------+---------------+-----------+--------------
 4096    | "player"  | (some = 4097) | true      | false`);
  await assertSql(id, 'SELECT * FROM st_view_column', ` view_id | col_pos | col_name | col_type
---------+---------+----------+----------
 4096    | 0       | "id"     | 0x0d
 4096    | 1       | "level"  | 0x0d`);
});

test('publish fails for a view named as a table, and for a view of a non-product type', async () => {
  for (const fixture of ['smoke-views-bad-name', 'smoke-views-bad-return']) {
    const r = await st.cli(['publish', '--server', server.url, '-p', path.join(fixturesDir, fixture), '--yes=all']);
    assert.notEqual(r.code, 0, `${fixture}: ${r.stdout}`);
  }
});

test('views over HTTP SQL: a row, none, and a list', async () => {
  const id = await st.publish('smoke-views-sql');
  await sqlOk(id, 'INSERT INTO player_state (id, level) VALUES (42, 7)');
  await assertSql(id, 'SELECT * FROM player', ' id | level\n----+-------\n 42 | 7');
  await assertSql(id, 'SELECT * FROM player_none', ' id | level\n----+-------');
  await assertSql(id, 'SELECT * FROM player_vec', ' id | level\n----+-------\n 42 | 7\n 7  | 3');
});

test('a view is materialized: re-run only when a row it read changes', async () => {
  const id = await st.publish('smoke-views-sql');
  const called = 'player view called';
  await assertSql(id, 'SELECT * FROM player', ' id | level\n----+-------');
  assert.equal(await countLogs(id, called), 1);
  await sqlOk(id, 'INSERT INTO player_state (id, level) VALUES (42, 7);');
  await assertSql(id, 'SELECT * FROM player', ' id | level\n----+-------\n 42 | 7');
  assert.equal(await countLogs(id, called), 2);
  await assertSql(id, 'SELECT * FROM player', ' id | level\n----+-------\n 42 | 7');
  assert.equal(await countLogs(id, called), 2);
  await sqlOk(id, 'INSERT INTO player_state (id, level) VALUES (22, 8);');
  await assertSql(id, 'SELECT * FROM player', ' id | level\n----+-------\n 42 | 7');
  assert.equal(await countLogs(id, called), 2);
  // The view re-runs in the commit that changed the row it read, before anyone reads it again.
  await sqlOk(id, 'UPDATE player_state SET level = 9 WHERE id = 42;');
  assert.equal(await countLogs(id, called), 3);
  await sqlOk(id, 'UPDATE player_state SET level = 7 WHERE id = 42;');
});

test('a view read through a two-column index is materialized the same way', async () => {
  const id = await st.publish('smoke-views-sql');
  const called = 'player_info called';
  const header = ' id | age | level\n----+-----+-------';
  await assertSql(id, 'SELECT * FROM player_info_multi_index', header);
  assert.equal(await countLogs(id, called), 1);
  await sqlOk(id, 'INSERT INTO player_info (id, age, level) VALUES (1, 25, 7);');
  await assertSql(id, 'SELECT * FROM player_info_multi_index', `${header}\n 1  | 25  | 7`);
  assert.equal(await countLogs(id, called), 2);
  await sqlOk(id, 'INSERT INTO player_info (id, age, level) VALUES (2, 25, 8);');
  assert.equal(await countLogs(id, called), 2);
  await sqlOk(id, 'UPDATE player_info SET age = 26 WHERE id = 1;');
  assert.equal(await countLogs(id, called), 3);
  await assertSql(id, 'SELECT * FROM player_info_multi_index', header);
});

test('anonymous views follow the rows reducers add', async () => {
  const id = await st.publish('smoke-views-sql');
  assert.equal((await st.call(id, 'add_player_level', '0', '1')).code, 0);
  assert.equal((await st.call(id, 'add_player_level', '1', '2')).code, 0);
  await assertSql(id, 'SELECT * FROM my_player_and_level', ' id | level\n----+-------\n 0  | 1');
  await assertSql(id, 'SELECT * FROM player_and_level', ' id | level\n----+-------\n 1  | 2');
  assert.equal((await st.call(id, 'add_player_level', '2', '2')).code, 0);
  await assertSql(id, 'SELECT * FROM player_and_level', ' id | level\n----+-------\n 1  | 2\n 2  | 2');
  await assertSql(id, 'SELECT * FROM player_and_level WHERE id = 2', ' id | level\n----+-------\n 2  | 2');
});

test("a reducer called by another identity stores what a view's function returns", async () => {
  const id = await st.publish('smoke-views-callable');
  await st.newIdentity();
  assert.equal((await st.call(id, 'baz')).code, 0);
  await assertSql(id, 'SELECT * FROM items', ' value\n-------\n 7');
});

test('query-builder views: a filter, right and left semijoins, ranges', async () => {
  const id = await st.publish('smoke-views-query');
  await assertSql(id, 'SELECT * FROM online_users', ` identity | name    | online
----------+---------+--------
 1        | "Alice" | true`);
  await assertSql(id, 'SELECT * FROM online_users_age', ` identity | name    | age
----------+---------+-----
 1        | "Alice" | 30`);
  await assertSql(id, 'SELECT * FROM users_whos_age_is_known', ` identity | name    | online
----------+---------+--------
 1        | "Alice" | true
 2        | "BOB"   | false`);
  await assertSql(id, 'SELECT * FROM offline_user_20_years_old', ` identity | name  | online
----------+-------+--------
 2        | "BOB" | false`);
  await assertSql(id, 'SELECT * FROM users_who_are_above_20_and_below_30', ` identity | name | age
----------+------+-----`);
  await assertSql(id, 'SELECT * FROM users_who_are_above_eq_20_and_below_eq_30', ` identity | name    | age
----------+---------+-----
 1        | "Alice" | 30
 2        | "BOB"   | 20`);
});
