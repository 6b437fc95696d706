// The server-wide bound on databases (limits.ts `databasesMaxDefault`, SPACETIME_DATABASES_MAX) through the real CLI:
// a publish that would create one more is refused with a message naming the limit, updates of existing databases and
// other clients' calls go on, and deleting a database makes room again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
before(async () => { server = await startTestServer({ env: { SPACETIME_DATABASES_MAX: '2' } }); });
after(async () => { await server.stop(); cleanupTempDirs(); });

test('a publish past SPACETIME_DATABASES_MAX is refused with the limit named; delete makes room', async () => {
  const configPath = tempConfigPath();
  const s = ['-s', server.url];
  const publish = (name: string) => runCli(['publish', ...s, '-p', 'test/fixtures/modules/basic', '--yes', name], { configPath });
  for (const name of ['limit-a', 'limit-b']) {
    const r = await publish(name);
    assert.equal(r.code, 0, r.stderr);
  }
  const refused = await publish('limit-c');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /This server holds 2 databases, its limit \(2, set by SPACETIME_DATABASES_MAX\)/);

  // Unnamed publishes (POST /v1/database) and restores count the same.
  const { token } = await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json() as { token: string };
  const unnamed = await fetch(`${server.url}/v1/database`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'x' });
  assert.equal(unnamed.status, 403);

  // An update of an existing database is not a new one; the others keep serving.
  const update = await publish('limit-a');
  assert.equal(update.code, 0, update.stderr);
  const call = await runCli(['call', ...s, 'limit-b', 'add', '"Ann"'], { configPath });
  assert.equal(call.code, 0, call.stderr);

  const del = await runCli(['delete', ...s, '--yes', 'limit-a'], { configPath });
  assert.equal(del.code, 0, del.stderr);
  const again = await publish('limit-c');
  assert.equal(again.code, 0, again.stderr);
});
