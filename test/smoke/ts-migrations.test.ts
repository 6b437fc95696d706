// Upstream smoketests column_defaults.rs (TypeScript) and standalone/typescript_index_source_name.rs: a row written
// before an update takes each new column's default; optional and indexed columns added across a server restart; a
// table's accessor renamed while its index stays. Rewritten over test/fixtures/modules/smoke-defaults* and
// smoke-ts-users* and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, type TestServer } from '../harness.js';
import { smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

const publishTo = (fixture: string, db: string, extra: string[] = []) =>
  st.cli(['publish', '--server', server.url, '-p', path.join(fixturesDir, fixture), '--yes=all', ...extra, db]);
async function callOk(db: string, fn: string, ...args: string[]): Promise<void> {
  const r = await st.call(db, fn, ...args);
  assert.equal(r.code, 0, r.stderr);
}

test('column defaults: an existing row reads every new column as its default', async () => {
  const db = `column-defaults-column-defaults-ts-${process.pid}`;
  await st.publish('smoke-defaults', db);
  assert.equal((await st.sql(db, 'INSERT INTO defaults_test_table (id) VALUES (1)')).code, 0);
  const r = await publishTo('smoke-defaults-updated', db, ['--break-clients']);
  assert.equal(r.code, 0, r.stderr);
  const expected: [string, string][] = [
    ['bool_value', 'true'], ['u8_value', '8'], ['i8_value', '-8'], ['u16_value', '16'], ['i16_value', '-16'],
    ['u32_value', '32'], ['i32_value', '-32'], ['u64_value', '64'], ['i64_value', '-64'], ['f32_positive_value', '32.5'],
    ['f32_negative_value', '-32.5'], ['f64_positive_value', '64.25'], ['f64_negative_value', '-64.25'],
    ['string_value', '"default string"'],
  ];
  for (const [column, value] of expected) {
    const out = await st.sql(db, `SELECT ${column} FROM defaults_test_table WHERE id = 1`);
    assert.equal(out.stdout.trimEnd().split('\n').at(-1)!.trim(), value, column);
  }
});

test('optional and indexed columns added after a restart; their indexes answer', async () => {
  const id = await st.publish('smoke-ts-users', `typescript-add-optional-columns-${process.pid}`);
  await callOk(id, 'insert_user', 'Alice', 'alice@example.com');
  await server.restart();
  const r = await publishTo('smoke-ts-users-columns', id);
  assert.equal(r.code, 0, r.stderr);
  await callOk(id, 'find_user_by_email', 'alice@example.com');
  await callOk(id, 'find_users_by_active_status', 'false');
  const logs = await st.logMessages(id);
  assert.ok(logs.includes('matched 1') && logs.includes('matched active users 1'), logs.join('\n'));
});

test("a table's accessor renamed: the update goes through and the index still answers", async () => {
  const id = await st.publish('smoke-ts-users', `typescript-change-source-name-${process.pid}`);
  await callOk(id, 'insert_user', 'Alice', 'alice@example.com');
  const r = await publishTo('smoke-ts-users-renamed', id);
  assert.equal(r.code, 0, r.stderr);
  await callOk(id, 'find_user_by_email', 'alice@example.com');
  assert.ok((await st.logMessages(id)).includes('matched 1'));
});
