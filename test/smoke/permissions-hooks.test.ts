// Upstream smoketests permissions.rs, connect_disconnect_from_cli.rs, sql_connect_hook.rs, client_connection_errors.rs,
// rewritten over our own fixture modules
// (test/fixtures/modules/smoke-*) and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

test('permissions: private tables, lifecycle reducers, calls, describe, logs, publish, delete and names of others', async () => {
  const id = await st.publish('smoke-permissions', 'smoke-perm');
  assert.equal(trimTable((await st.sql(id, 'SELECT * FROM secret')).stdout), ' answer\n--------\n 42'.trim());
  for (const kind of ['init', 'client_connected', 'client_disconnected']) assert.equal((await st.call(id, `lifecycle_${kind}`)).code, 1, kind);
  await st.newIdentity();
  assert.equal((await st.sql(id, 'SELECT * FROM secret')).code, 1);
  assert.equal((await st.subscribe(id, ['SELECT * FROM secret'])).code, 1);
  for (const [query, thing] of [['SELECT * FROM common_knowledge', 'godmorgon'], ['SELECT * FROM *', 'howdy']]) {
    const sub = await st.subscribeBackground(id, [query], { n: 1 });
    assert.equal((await st.call(id, 'do_thing', thing)).code, 0);
    assert.deepEqual(await sub.collect(), [{ common_knowledge: { deletes: [], inserts: [{ thing }] } }], query);
  }
  assert.equal((await st.cli(['call', '--anonymous', '--server', server.url, '--', id, 'do_thing', 'anon'])).code, 0);
  assert.equal((await st.cli(['describe', '--anonymous', '--server', server.url, '--json', id])).code, 0);
  assert.equal((await st.cli(['logs', '--server', server.url, id, '-n', '10000'])).code, 1);
  for (const clear of [['--delete-data'], []]) {
    assert.equal((await st.cli(['publish', id, '--server', server.url, '--module-path', 'test/fixtures/modules/smoke-permissions', ...clear, '--yes'])).code, 1);
  }
  assert.equal((await st.cli(['delete', '--server', server.url, id, '--yes'])).code, 1);
  const token = /spacetimedb_token = "([^"]+)"/.exec(readFileSync(st.configPath, 'utf8'))![1];
  const names = await fetch(`${server.url}/v1/database/smoke-perm/names`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '["post", "gres"]' });
  assert.notEqual(names.status, 200);
});

test('connect/disconnect: a CLI call and SQL (also a failing query) run both hooks; SQL returns data', async () => {
  const id = await st.publish('smoke-hooks');
  assert.equal((await st.call(id, 'say_hello')).code, 0);
  const afterCall = await st.logMessages(id, 10);
  for (const text of ['_connect called', 'disconnect called', 'Hello, World!']) assert.ok(afterCall.some((m) => m.includes(text)), text);
  assert.equal(trimTable((await st.sql(id, 'SELECT * FROM person')).stdout), ' name\n---------\n "Alice"'.trim());
  const connects = (logs: string[]) => [logs.filter((m) => m.includes('sql_connect_hook: client_connected')).length,
    logs.filter((m) => m.includes('sql_connect_hook: client_disconnected')).length];
  const before = connects(await st.logMessages(id));
  assert.equal((await st.sql(id, 'SELECT * FROM nonexistent_table')).code, 1);
  assert.deepEqual(connects(await st.logMessages(id)), [before[0] + 1, before[1] + 1]);
});

test('client_connection_errors: a refusing client_connected blocks subscribe and SQL; a throwing disconnect still removes st_client', async () => {
  const reject = await st.publish('smoke-reject');
  assert.notEqual((await st.subscribe(reject, ['SELECT * FROM all_u_8_s'])).code, 0);
  assert.notEqual((await st.sql(reject, 'SELECT * FROM all_u_8_s')).code, 0);
  const logs = await st.logMessages(reject);
  assert.ok(logs.some((m) => m.includes('Rejecting connection from client')), logs.join('\n'));
  assert.ok(!logs.some((m) => m.includes('This should never be called')));

  const panics = await st.publish('smoke-disconnect-throws');
  assert.equal((await st.subscribe(panics, ['SELECT * FROM all_u_8_s'])).code, 0);
  assert.ok((await st.logMessages(panics)).some((m) => m.includes('This should be called, but the `st_client` row should still be deleted')));
  const clients = await st.sql(panics, 'SELECT * FROM st_client');
  assert.equal(clients.code, 0, clients.stderr);
  // Only the SQL request's own connection remains.
  assert.equal(clients.stdout.split('\n').slice(2).filter((l) => l.trim() !== '').length, 1, clients.stdout);
});
