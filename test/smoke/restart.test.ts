// Upstream smoketests standalone/restart.rs (data and SQL after a restart, clients gone after a restart), rewritten
// over test/fixtures/modules/smoke-restart and driven through the real CLI and one real server restarted by SIGTERM.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

test('restart_module and restart_sql: rows written before a restart are read and greeted after it', async () => {
  const id = await st.publish('smoke-restart');
  for (const name of ['Robert', 'Julie', 'Samantha']) assert.equal((await st.call(id, 'add', name)).code, 0);
  assert.match((await st.sql(id, "SELECT * FROM person WHERE name = 'Samantha'", ['--confirmed', 'true'])).stdout, /Samantha/);
  await server.restart();
  assert.equal(trimTable((await st.sql(id, 'SELECT name FROM person WHERE id = 3')).stdout), 'name\n------------\n "Samantha"');
  assert.equal((await st.call(id, 'add', 'Anna')).code, 0);
  assert.equal((await st.call(id, 'say_hello')).code, 0);
  const logs = await st.logMessages(id, 100);
  for (const name of ['Robert', 'Julie', 'Samantha', 'Anna', 'World']) assert.ok(logs.includes(`Hello, ${name}!`), name);
});

test('restart_auto_disconnect: clients connected before a restart are disconnected by it', async () => {
  const id = await st.publish('smoke-restart');
  await st.subscribeBackground(id, ['SELECT * FROM connected_client'], { n: 2 });
  await st.subscribeBackground(id, ['SELECT * FROM connected_client'], { n: 2 });
  assert.equal((await st.call(id, 'print_num_connected')).code, 0);
  assert.ok((await st.logMessages(id, 10)).includes('CONNECTED CLIENTS: 3'));
  await server.restart();
  assert.equal((await st.call(id, 'print_num_connected')).code, 0);
  const logs = await st.logMessages(id, 10);
  assert.equal(logs.at(-1), 'CONNECTED CLIENTS: 1', logs.join('\n'));
});
