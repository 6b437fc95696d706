// Hostile WebSocket messages on a real server process (session 9 attack probes, docs/reliability.md): a Subscribe
// declaring millions of query strings, and one-off queries sent in a loop over the legacy v1.json protocol. Each held
// the server's thread or memory before its fix; the other probes of the table found nothing and are not repeated here.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, onServerMainThread, startTestServer, within, type TestServer } from '../harness.js';
import { floodQueries, openGreeted } from './flood.js';

let server: TestServer;

before(async () => {
  server = await startTestServer();
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const put = await fetch(`${server.url}/v1/database/target`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: (await buildFixture('basic')).code,
  });
  assert.equal(put.status, 200, await put.text());
});
after(async () => { await server.stop(); cleanupTempDirs(); });

function openSocket(protocol: string): Promise<WebSocket> {
  return openGreeted(`${server.url.replace('http', 'ws')}/v1/database/target/subscribe`, protocol);
}

test('a Subscribe declaring millions of query strings is refused while decoding, naming querySetQueriesMax', async () => {
  const ws = await openSocket('v2.bsatn.spacetimedb');
  const count = 7_000_000; // empty strings: 4 bytes each, 28 MB in all
  const message = Buffer.alloc(13 + count * 4);
  message[0] = 0; // Subscribe
  message.writeUInt32LE(1, 1);
  message.writeUInt32LE(1, 5);
  message.writeUInt32LE(count, 9);
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  ws.send(message);
  // Before: decoded into a 7M-element array, copied to the database's worker (1.2 s of the server's thread), then
  // answered with a SubscriptionError.
  const [code, reason] = await within(closed, 'the connection closed', 10_000);
  assert.equal(code, 1011);
  assert.match(reason, /7000000 query strings, over querySetQueriesMax = 4096/);
  assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
});

test('a v3 frame of millions of messages is refused once the queue bound is passed, not decoded whole', async () => {
  const ws = await openSocket('v3.bsatn.spacetimedb');
  const unsubscribe = Buffer.from([1, 1, 0, 0, 0, 99, 0, 0, 0, 0]); // Unsubscribe request 1 of query set 99
  const count = 3_000_000;
  const frame = Buffer.alloc(count * unsubscribe.length);
  for (let i = 0; i < count; i++) unsubscribe.copy(frame, i * unsubscribe.length);
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
  // Before: all 3M decoded (1.8 s of the server's thread, +290 MiB), then the queue bound closed the connection.
  const { value: [code, reason], cpuMs } = await onServerMainThread(server, async () => {
    ws.send(frame);
    return within(closed, 'the connection closed', 10_000);
  });
  assert.equal(code, 1011);
  assert.equal(reason, 'too many requests: more than 16384 queued messages');
  assert.ok(cpuMs < 800, `the server's thread spent ${Math.round(cpuMs)} ms on the frame`);
});

test('v1.json one-off queries sent in a loop wait for answers: memory stays bounded, every query is answered', async () => {
  const ws = await openSocket('v1.json.spacetimedb');
  await floodQueries(ws, JSON.stringify({ OneOffQuery: { message_id: '01', query_string: 'SELECT * FROM person' } }), server.pid()!, 200);
  ws.close();
});
