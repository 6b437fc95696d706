// One identity's databases (session 10 attack probe, left; fixed in session 13, limits.ts `databasesPerIdentityMax`):
// nothing bounded them below the server's `databasesMax`, so one client (one anonymous token) could take every place and
// every other client's publish was refused. Now its publish past the per-identity bound is refused with 403 naming the
// limit, while others publish, its updates go on, and deleting one of its databases makes room.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildFixture, cleanupTempDirs, startTestServer, type TestServer } from '../harness.js';

let server: TestServer;
let program: string;
before(async () => {
  server = await startTestServer({ env: { SPACETIME_DATABASES_PER_IDENTITY_MAX: '2' } });
  program = (await buildFixture('basic')).code;
});
after(async () => { await server.stop(); cleanupTempDirs(); });

async function mint(): Promise<string> {
  return ((await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string }).token;
}

function publish(token: string, name?: string): Promise<Response> {
  return fetch(`${server.url}/v1/database${name === undefined ? '' : `/${name}`}`, {
    method: name === undefined ? 'POST' : 'PUT', headers: { authorization: `Bearer ${token}` }, body: program,
  });
}

test('a publish past databasesPerIdentityMax is refused with 403 naming it; others publish, delete makes room', async () => {
  const greedy = await mint();
  for (const name of ['greedy-a', 'greedy-b']) {
    const r = await publish(greedy, name);
    assert.equal(r.status, 200, await r.text());
  }
  // Before: created (the server's bound of 1,024 was the only one).
  const refused = await publish(greedy, 'greedy-c');
  const text = await refused.text();
  assert.equal(refused.status, 403, text);
  assert.match(text, /owns 2 databases on this server, the limit for one identity \(databasesPerIdentityMax = 2, set by SPACETIME_DATABASES_PER_IDENTITY_MAX\)/);
  const unnamed = await publish(greedy);
  assert.equal(unnamed.status, 403, 'an unnamed publish counts the same');
  await unnamed.text();

  // Another identity still publishes; the greedy one still updates its own.
  const other = await publish(await mint(), 'other-a');
  assert.equal(other.status, 200, await other.text());
  const update = await publish(greedy, 'greedy-a');
  assert.equal(update.status, 200, await update.text());

  const del = await fetch(`${server.url}/v1/database/greedy-b`, { method: 'DELETE', headers: { authorization: `Bearer ${greedy}` } });
  assert.equal(del.status, 200, await del.text());
  const again = await publish(greedy, 'greedy-c');
  assert.equal(again.status, 200, await again.text());
});
