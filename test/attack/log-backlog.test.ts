// A large module-log backlog (`spacetime logs -n <huge>`) is sent without holding the server's thread (session 10
// attack probes). Before: with a reader as fast as the server, each batch's 'drain' came from the socket's uncork on
// the next tick, so the send looped in ticks and microtasks and never returned to the event loop: a 218 MB backlog held
// the thread 1.6 s (/v1/ping max 2.2 s), and any identity may publish a database, fill its log and read it.
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, test } from 'node:test';
import { buildFixture, cleanupTempDirs, startTestServer, type TestServer } from '../harness.js';

let server: TestServer;
let token: string;
before(async () => {
  server = await startTestServer();
  ({ token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string });
  const put = await fetch(`${server.url}/v1/database/flood`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: (await buildFixture('log-flood')).code,
  });
  assert.equal(put.status, 200, await put.text());
});
after(async () => { await server.stop(); cleanupTempDirs(); });

function ping(): Promise<void> {
  return new Promise((resolve, reject) => {
    get(`${server.url}/v1/ping`, { agent: false }, (res) => { res.resume(); res.on('end', () => resolve()); }).on('error', reject);
  });
}

test('a ping is answered while a 100 MB log backlog streams to a fast reader, not after it', async () => {
  for (let i = 0; i < 25; i++) { // 4 MiB each (logBytesPerCallMax)
    const r = await fetch(`${server.url}/v1/database/flood/call/flood`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '[4000, 1100]',
    });
    assert.equal(r.status, 200, await r.text());
  }
  const { receivedAtPing, total } = await new Promise<{ receivedAtPing: number; total: number }>((resolve, reject) => {
    let received = 0;
    let receivedAtPing = -1;
    const req = get(`${server.url}/v1/database/flood/logs?num_lines=1000000000000`, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.once('data', () => { void ping().then(() => { receivedAtPing = received; }, reject); });
      res.on('data', (chunk: Buffer) => { received += chunk.length; });
      res.on('end', () => setTimeout(() => resolve({ receivedAtPing: receivedAtPing < 0 ? received : receivedAtPing, total: received }), 50));
    });
    req.on('error', reject);
  });
  assert.ok(total > 90e6, `the backlog was ${total} bytes`);
  // Measured: the ping answered after 1-5 % of the backlog; before, after ~100 %.
  assert.ok(receivedAtPing < total / 2, `the ping was answered after ${receivedAtPing} of ${total} bytes`);
});
