// Upstream smoketests standalone/pg_wire.rs: psql's aligned output for integers, nested products and enums, a
// long-lived pg client connection, and the failures (empty query, invalid token, unsupported SQL, `$1`). Rewritten
// over test/fixtures/modules/smoke-pg-wire; a real server started with --pg-port, the real CLI, Debian's real psql
// run as upstream's harness runs it (`-h -p -U postgres -d --quiet -c`, PGPASSWORD = the CLI's token), and the pg client.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { cleanupTempDirs, freePort, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { smoke, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
let pgPort: number;
let token: string;

before(async () => {
  pgPort = await freePort();
  server = await startTestServer({ args: ['--pg-port', String(pgPort)] });
  st = smoke(server, tempConfigPath());
  await st.newIdentity();
  token = /token \(don't share this!\) is (\S+)/.exec((await st.cli(['login', 'show', '--token'])).stdout)![1]!;
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

/** upstream's Smoketest::psql_with_token: stdout trimmed on success, stderr trimmed as the error otherwise. */
function psql(database: string, sql: string, password = token): { ok: boolean; out: string } {
  const r = spawnSync('psql', ['-h', '127.0.0.1', '-p', String(pgPort), '-U', 'postgres', '-d', database, '--quiet', '-c', sql], {
    env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' }, encoding: 'utf8', timeout: 20_000,
  });
  if (r.stderr !== '' && r.status !== 0) return { ok: false, out: r.stderr.trim() };
  return { ok: true, out: r.stdout.trim() };
}
function assertPsql(database: string, sql: string, expected: string): void {
  const r = psql(database, sql);
  assert.ok(r.ok, r.out);
  assert.equal(trimTable(r.out), trimTable(expected), sql);
}
async function publishClear(name: string): Promise<void> {
  await st.publish('smoke-pg-wire', name, ['--delete-data']);
}

test('psql: integers, nested products and enums as upstream prints them', async () => {
  const db = 'pgwire-sql-format';
  await publishClear(db);
  assert.equal((await st.call(db, 'test')).code, 0);
  assertPsql(db, 'SELECT * FROM t_ints', `i_8 | i_16  |  i_32  |   i_64   |     i_128     |     i_256
-----+-------+--------+----------+---------------+---------------
 -25 | -3224 | -23443 | -2344353 | -234434897853 | -234434897853
(1 row)`);
  assertPsql(db, 'SELECT * FROM t_ints_tuple', `tuple
---------------------------------------------------------------------------------------------------------------
 {"i_8": -25, "i_16": -3224, "i_32": -23443, "i_64": -2344353, "i_128": -234434897853, "i_256": -234434897853}
(1 row)`);
  assertPsql(db, 'SELECT * FROM t_uints', `u_8 | u_16 | u_32  |   u_64   |     u_128     |     u_256
-----+------+-------+----------+---------------+---------------
 105 | 1050 | 83892 | 48937498 | 4378528978889 | 4378528978889
(1 row)`);
  assertPsql(db, 'SELECT * FROM t_uints_tuple', `tuple
-------------------------------------------------------------------------------------------------------------
 {"u_8": 105, "u_16": 1050, "u_32": 83892, "u_64": 48937498, "u_128": 4378528978889, "u_256": 4378528978889}
(1 row)`);
  assertPsql(db, 'SELECT * FROM t_simple_enum', `id |  action
----+----------
  1 | inactive
  2 | active
(2 rows)`);
  assertPsql(db, 'SELECT * FROM t_enum', `id |     color
----+---------------
  1 | {"gray": 128}
(1 row)`);
});

test('a pg client connection: a row by accessor names, then ten queries on the same connection', async () => {
  const db = 'pgwire-sql-conn';
  await publishClear(db);
  assert.equal((await st.call(db, 'test')).code, 0);
  const client = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: token, database: db });
  await client.connect();
  try {
    const rows = (await client.query({ text: 'select * from t_uints where u8 = 105 and u16 = 1050', rowMode: 'array' })).rows as unknown[][];
    assert.deepEqual(rows[0]!.map(String), ['105', '1050', '83892', '48937498', '4378528978889', '4378528978889']);
    for (let i = 0; i < 10; i++) {
      const count = (await client.query({ text: 'select count(*) as t from t_uints', rowMode: 'array' })).rows as unknown[][];
      assert.equal(String(count[0]![0]), '1');
    }
  } finally {
    await client.end();
  }
});

test('failures: empty query, invalid token, unsupported SQL and parameters', async () => {
  const db = 'pgwire-failure';
  await publishClear(db);
  assert.deepEqual(psql(db, ''), { ok: true, out: '' });
  const bad = psql(db, 'SELECT * FROM t_uints', 'invalid_token');
  assert.ok(!bad.ok && bad.out.includes('Invalid token'), bad.out);
  // Upstream's parser texts (sql-parser SqlUnsupported): were `expected FROM, found a` and `unexpected character $`.
  const unsupported = {
    "SELECT CASE a WHEN 1 THEN 'one' ELSE 'other' END FROM t_uints": "Unsupported projection expression: CASE a WHEN 1 THEN 'one' ELSE 'other' END",
    'SELECT * FROM t_uints where u8 = $1': 'Unsupported literal expression: $1',
  };
  for (const [sql, text] of Object.entries(unsupported)) {
    const r = psql(db, sql);
    assert.ok(!r.ok && /unsupported/i.test(r.out), `${sql}: ${r.out}`);
    assert.ok(r.out.includes(text), r.out);
  }
});

test('select items: an alias with or without AS; an expression refused with upstream\'s text', async () => {
  const db = 'pgwire-sql-format';
  assertPsql(db, 'SELECT u8 AS a, u16 b FROM t_uints', ` a  |  b
-----+------
 105 | 1050
(1 row)`);
  const r = psql(db, 'SELECT u8 + 1 AS c, u16 FROM t_uints');
  assert.ok(!r.ok && r.out.includes('Unsupported projection expression: u8 + 1'), r.out);
});
