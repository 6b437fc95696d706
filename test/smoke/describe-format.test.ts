// Upstream smoketests fail_initial_publish.rs, describe.rs and sql::test_sql_format, rewritten over
// test/fixtures/modules/smoke-rls-*, smoke-basic and smoke-sql-format and driven through the real CLI and one server:
// a failed first publish leaves nothing, `describe --json` of a module, reducer and table, and psql rendering of
// every column type, exact.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, type TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

const publishTo = (fixture: string, db: string) =>
  st.cli(['publish', '--server', server.url, '-p', path.join(fixturesDir, fixture), '--yes=all', db]);
const describe = (...args: string[]) => st.cli(['describe', '--server', server.url, '--json', ...args]);

test('fail_initial_publish: nothing is left by a failed first publish; a failed update keeps the old module', async () => {
  const name = `fail-initial-publish-${process.pid}`;
  const fixedQuery = `"sql": "SELECT * FROM person WHERE name = 'me'"`;
  assert.notEqual((await publishTo('smoke-rls-broken', name)).code, 0);
  const missing = await describe(name);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /No such database/);
  assert.equal((await publishTo('smoke-rls-fixed', name)).code, 0);
  assert.ok((await describe(name)).stdout.includes(fixedQuery));
  assert.notEqual((await publishTo('smoke-rls-broken', name)).code, 0);
  const kept = await describe(name);
  assert.equal(kept.code, 0, kept.stderr);
  assert.ok(kept.stdout.includes(fixedQuery));
});

test('describe --json: the module, one reducer, one table; unknown names and entity types refused', async () => {
  const id = await st.publish('smoke-basic');
  const whole = await describe(id);
  assert.equal(whole.code, 0, whole.stderr);
  assert.equal(whole.stderr, 'WARNING: This command is UNSTABLE and subject to breaking changes.\n\n');
  assert.ok(Array.isArray((JSON.parse(whole.stdout) as { sections: unknown[] }).sections));
  const reducer = await describe(id, 'reducer', 'say_hello');
  assert.equal(reducer.code, 0, reducer.stderr);
  assert.equal((JSON.parse(reducer.stdout) as { source_name: string }).source_name, 'say_hello');
  const table = await describe(id, 'table', 'person');
  assert.equal(table.code, 0, table.stderr);
  assert.deepEqual((JSON.parse(table.stdout) as { primary_key: number[] }).primary_key, [0]);
  assert.match((await describe(id, 'table', 'nope')).stderr, /Error: no such table\n$/);
  assert.match((await describe(id, 'view', 'x')).stderr, /Error: Invalid entity_type 'view'. Expected one of: reducer, table.\n$/);
});

const formats: [string, string][] = [
  ['t_ints', ` i_8 | i_16  | i_32   | i_64     | i_128         | i_256
-----+-------+--------+----------+---------------+---------------
 -25 | -3224 | -23443 | -2344353 | -234434897853 | -234434897853`],
  ['t_ints_tuple', ` tuple
---------------------------------------------------------------------------------------------------------
 (i_8 = -25, i_16 = -3224, i_32 = -23443, i_64 = -2344353, i_128 = -234434897853, i_256 = -234434897853)`],
  ['t_uints', ` u_8 | u_16 | u_32  | u_64     | u_128         | u_256
-----+------+-------+----------+---------------+---------------
 105 | 1050 | 83892 | 48937498 | 4378528978889 | 4378528978889`],
  ['t_uints_tuple', ` tuple
-------------------------------------------------------------------------------------------------------
 (u_8 = 105, u_16 = 1050, u_32 = 83892, u_64 = 48937498, u_128 = 4378528978889, u_256 = 4378528978889)`],
  ['t_others', ` bool | f_32      | f_64               | str                   | bytes            | identity                                                           | connection_id                      | timestamp                 | duration  | uuid
------+-----------+--------------------+-----------------------+------------------+--------------------------------------------------------------------+------------------------------------+---------------------------+-----------+----------------------------------------
 true | 594806.56 | -3454353.345389043 | "This is spacetimedb" | 0x01020304050607 | 0x0000000000000000000000000000000000000000000000000000000000000001 | 0x00000000000000000000000000000000 | 1970-01-01T00:00:00+00:00 | +0.000000 | "00000000-0000-0000-0000-000000000000"`],
  ['t_others_tuple', ` tuple
${'-'.repeat(354)}
 (bool = true, f_32 = 594806.56, f_64 = -3454353.345389043, str = "This is spacetimedb", bytes = 0x01020304050607, identity = 0x0000000000000000000000000000000000000000000000000000000000000001, connection_id = 0x00000000000000000000000000000000, timestamp = 1970-01-01T00:00:00+00:00, duration = +0.000000, uuid = "00000000-0000-0000-0000-000000000000")`],
  ['t_enums', ` bool_opt      | bool_result  | action
---------------+--------------+---------------
 (some = true) | (ok = false) | (active = ())`],
  ['t_enums_tuple', ` tuple
--------------------------------------------------------------------------------
 (bool_opt = (some = true), bool_result = (ok = false), action = (active = ()))`],
];

test('sql_format: psql rendering of every column type, as columns and inside a product', async () => {
  const id = await st.publish('smoke-sql-format');
  assert.equal((await st.call(id, 'test')).code, 0);
  for (const [tableName, expected] of formats) {
    const r = await st.sql(id, `SELECT * FROM ${tableName}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(trimTable(r.stdout), trimTable(expected), tableName);
  }
});
