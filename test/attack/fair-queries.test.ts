// One connection's pipelined queries and everybody else (session 12 attack probe; host/worker/backlog.ts). A database's
// worker ran the requests it held back in arrival order, whoever sent them: 4 one-off queries of ~5 s each pipelined by
// one anonymous v2 connection held the owner's /sql 19.9 s. Now each connection's requests wait in their own lane and
// lanes are taken in turn: another client waits for at most the query running and one more.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, type TestServer } from '../harness.js';
import { oneOff, openGreeted, serverWithDatabase } from './flood.js';

let server: TestServer;
let token: string;

before(async () => {
  ({ server, token } = await serverWithDatabase('hostile-outbound', 'victim'));
  for (let first = 0; first < 30_000; first += 10_000) {
    const fill = await fetch(`${server.url}/v1/database/victim/call/fill`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify([first, 10_000, 1]),
    });
    assert.equal(fill.status, 200, await fill.text());
  }
});
after(async () => { await server.stop(); cleanupTempDirs(); });


test("another client's /sql is answered after at most two of a connection's pipelined slow queries", async (t) => {
  // 2,500 `<>` terms over 30,000 rows: ~1 s of the database's thread per query, within every limit.
  const slow = 'SELECT * FROM blob WHERE ' + Array.from({ length: 2_500 }, (_, i) => `data <> 'y${i}'`).join(' AND ');
  const ws = await openGreeted(`${server.url.replace('http', 'ws')}/v1/database/victim/subscribe?compression=None`, 'v2.bsatn.spacetimedb');
  let answers = 0;
  ws.on('message', () => answers++);
  const queries = 8;
  for (let i = 0; i < queries; i++) ws.send(oneOff(i + 1, slow));
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  const owner = await fetch(`${server.url}/v1/database/victim/sql`, {
    method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'SELECT id FROM blob WHERE id = 0',
  });
  const before = answers;
  t.diagnostic(`the owner's /sql after ${Date.now() - started} ms, ${before} of ${queries} slow queries answered before it`);
  ws.terminate();
  assert.equal(owner.status, 200, await owner.text());
  // Before: after all 8 (arrival order). After: the one running when it came, and at most one more.
  assert.ok(before <= 2, `${before} of the connection's ${queries} queries ran before the owner's /sql`);
});
