// Hostile modules published by a fresh anonymous identity on a real server process (session 9 attack probes,
// docs/reliability.md "Attack probes, session 9"): the probes that loop or allocate at load, nest types 20,000 deep or
// declare 5,000 tables were already refused or served; a module with megabyte names was accepted and held the main
// thread for seconds while its names' case was converted.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildFixture, cleanupTempDirs, startTestServer, type TestServer } from '../harness.js';

let server: TestServer;
before(async () => { server = await startTestServer(); });
after(async () => { await server.stop(); cleanupTempDirs(); });

test('a module with a name longer than moduleNameCharsMax is refused at publish with the limit named; the server goes on', async () => {
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const published = await fetch(`${server.url}/v1/database/long-names`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: (await buildFixture('hostile-names')).code,
  });
  const body = await published.text();
  assert.notEqual(published.status, 200, body);
  assert.match(body, /invalid module: the name `n{40}…` is 100000 characters long, over the limit moduleNameCharsMax = 1024/);
  assert.equal((await fetch(`${server.url}/v1/database/long-names/schema?version=9`)).status, 404);
  assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
});
