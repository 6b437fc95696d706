// Upstream smoketests call.rs, logs_level_filter.rs, sql.rs (accessor and canonical names), and new_user_flow.rs, each flow rewritten over our own fixture modules (test/fixtures/modules/smoke-*) and driven
// through the real CLI and one real server, with upstream's exact expected texts and exit codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

const unstable = 'WARNING: This command is UNSTABLE and subject to breaking changes.\n\n';

test('new_user_flow: new identity, unnamed publish, call, logs, SELECT', async () => {
  const id = await st.publish('smoke-hooks');
  assert.equal((await st.call(id, 'say_hello')).code, 0);
  assert.ok((await st.logMessages(id, 2)).some((m) => m.includes('Hello, World!')));
  assert.equal((await st.call(id, 'add', 'Tyler')).code, 0);
  assert.equal((await st.call(id, 'say_hello')).code, 0);
  const sql = await st.sql(id, "SELECT * FROM person WHERE name = 'Tyler'");
  assert.equal(trimTable(sql.stdout), ' name\n---------\n "Tyler"'.trim());
});

test('call: a reducer prints nothing, a procedure prints its value; the error texts', async () => {
  const id = await st.publish('smoke-call');
  const reducer = await st.call(id, 'say_hello');
  assert.equal(reducer.code, 0);
  assert.equal(reducer.stdout.trim(), '');
  assert.equal((await st.call(id, 'return_person')).stdout.trim(), '["World"]');
  const head = (name: string) => `${unstable}Error: No such reducer OR procedure \`${name}\` for database \`${id}\` resolving to identity \`${id}\`.\n\n`;
  for (const name of ['non_existent_reducer', 'non_existent_procedure']) {
    const r = await st.call(id, name);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.trim().startsWith(`${head(name)}Here are some existing reducers:\n- say_hello\n\nHere are some existing procedures:\n- return_person`), r.stderr);
  }
  const hell = await st.call(id, 'say_hell');
  assert.ok(hell.stderr.trim().startsWith(`${head('say_hell')}A reducer with a similar name exists: \`say_hello\``), hell.stderr);
  const perso = await st.call(id, 'return_perso');
  assert.ok(perso.stderr.trim().startsWith(`${head('return_perso')}A procedure with a similar name exists: \`return_person\``), perso.stderr);

  const empty = await st.publish('smoke-call-empty');
  const none = await st.call(empty, 'non_existent');
  assert.ok(none.stderr.trim().startsWith(`${unstable}Error: No such reducer OR procedure \`non_existent\` for database \`${empty}\` resolving to identity \`${empty}\`.\n\nThe database has no reducers.\n\nThe database has no procedures.`), none.stderr);

  const many = await st.publish('smoke-call-many');
  const list = (kind: string) => Array.from({ length: 10 }, (_, i) => `- say_${kind}_${i}\n`).join('') + `... (1 ${kind} not shown)`;
  const r = await st.call(many, 'non_existent');
  assert.ok(r.stderr.trim().startsWith(`${unstable}Error: No such reducer OR procedure \`non_existent\` for database \`${many}\` resolving to identity \`${many}\`.\n\nHere are some existing reducers:\n${list('reducer')}\n\nHere are some existing procedures:\n${list('procedure')}`), r.stderr);
});

test('call: an identity argument in any of its four encodings', async () => {
  const id = await st.publish('smoke-call-identity');
  const tuple = `["0x${id}"]`;
  for (const arg of [id, `0x${id}`, tuple, `{"__identity__": "0x${id}"}`]) {
    const r = await st.call(id, 'return_my_identity', arg);
    assert.equal(r.stdout.trim(), tuple, r.stderr);
    assert.equal((await st.call(id, 'say_my_identity', arg)).code, 0);
  }
  assert.equal((await st.logMessages(id)).filter((m) => m.includes(`Hello, ${id}!`)).length, 4);
});

test('logs: every level without --level, the minimum with --level, one level with --level-exact', async () => {
  const id = await st.publish('smoke-logs');
  assert.equal((await st.call(id, 'log_all_levels')).code, 0);
  const all = ['msg-trace', 'msg-debug', 'msg-info', 'msg-warn', 'msg-error'];
  const seen = async (extra: string[]) => (await st.logMessages(id, 100, extra)).filter((m) => all.includes(m));
  assert.deepEqual(await seen([]), all);
  assert.deepEqual(await seen(['--level', 'warn']), ['msg-warn', 'msg-error']);
  assert.deepEqual(await seen(['--level', 'error']), ['msg-error']);
  assert.deepEqual(await seen(['--level', 'info', '--level-exact']), ['msg-info']);
  assert.deepEqual(await seen(['--level', 'debug', '--level-exact']), ['msg-debug']);
});

test('sql: accessor and canonical names for tables, views and columns; DML target names', async () => {
  const id = await st.publish('smoke-sql-names');
  const expectSql = async (query: string, expected: string) => {
    const r = await st.sql(id, query);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(trimTable(r.stdout), expected.trim(), query);
  };
  const row = ' id | accessor_value_1\n----+------------------\n 1  | 7';
  for (const name of ['accessor_table', 'canonical_table', 'accessor_filtered', 'canonical_filtered']) await expectSql(`SELECT * FROM ${name}`, row);
  await expectSql('SELECT accessor_value_1 FROM accessor_table', ' accessor_value_1\n------------------\n 7');
  await expectSql('SELECT accessor_value1 FROM accessor_table', ' accessor_value1\n-----------------\n 7');
  for (const bad of ['UPDATE accessor_table SET accessor_value_1 = 8 WHERE canonical_table.id = 1',
    'UPDATE canonical_table SET accessor_value_1 = 8 WHERE accessor_table.id = 1']) assert.equal((await st.sql(id, bad)).code, 1, bad);
  const value = (n: number) => ` accessor_value_1\n------------------\n ${n}`;
  assert.equal((await st.sql(id, 'UPDATE accessor_table SET accessor_value_1 = 8 WHERE id = 1')).code, 0);
  await expectSql('SELECT accessor_value_1 FROM canonical_table WHERE id = 1', value(8));
  assert.equal((await st.sql(id, 'UPDATE accessor_table SET accessor_value_1 = 9 WHERE accessor_table.id = 1')).code, 0);
  await expectSql('SELECT accessor_value_1 FROM accessor_table WHERE id = 1', value(9));
  assert.equal((await st.sql(id, 'UPDATE canonical_table SET accessor_value_1 = 10 WHERE canonical_table.id = 1')).code, 0);
  await expectSql('SELECT accessor_value_1 FROM accessor_table WHERE id = 1', value(10));
  assert.equal((await st.sql(id, 'DELETE FROM accessor_table WHERE id = 1')).code, 0);
  await expectSql('SELECT * FROM canonical_table', ' id | accessor_value_1\n----+------------------');
});
