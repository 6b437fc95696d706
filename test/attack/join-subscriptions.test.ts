// Thousands of distinct join subscriptions from one anonymous client on someone else's database (session 11 attack
// probes, docs/reliability.md). The chat module's `message.sender` has no index; `… JOIN user ON message.sender =
// user.identity WHERE message.text = 'k<i>'` is accepted (user.identity is indexed), and every HTTP call changes a
// user row (connect and disconnect). Before, such a query could not be filed under its constant from the user side:
// each was asked about every user change and scanned the message table in its own delta, so 8,192 of them made one
// chat message take 55 s to commit, for every client of the database. The user side now reaches the constants through
// one scan shared by every query of that shape (sql/subscription-plan.ts edgeFrom).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, startTestServer, until, within, type TestServer } from '../harness.js';

let server: TestServer;
let token: string;
const queries = 4096; // querySetQueriesMax

before(async () => {
  server = await startTestServer();
  token = ((await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string }).token;
  const put = await fetch(`${server.url}/v1/database/chat`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: (await buildFixture('chat')).code });
  assert.equal(put.status, 200, await put.text());
});
after(async () => { await server.stop(); cleanupTempDirs(); });

function send(text: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}/v1/database/chat/call/sendMessage`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify([text]), signal,
  });
}

function subscribeMessage(strings: string[]): Buffer {
  const parts = strings.map((q) => {
    const text = Buffer.from(q);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(text.length);
    return Buffer.concat([length, text]);
  });
  const head = Buffer.alloc(13);
  head[0] = 0; // Subscribe
  head.writeUInt32LE(1, 1); // request id
  head.writeUInt32LE(1, 5); // query set id
  head.writeUInt32LE(strings.length, 9);
  return Buffer.concat([head, ...parts]);
}

test('4,096 join subscriptions whose join column is unindexed on their constant\'s side do not stall the database\'s commits', async () => {
  // A table to scan: 400 messages.
  for (let i = 0; i < 400; i += 50) {
    const sent = await Promise.all(Array.from({ length: 50 }, (_, k) => send(`filler ${i + k}`)));
    for (const r of sent) assert.equal(r.status, 200);
  }
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/chat/subscribe?compression=None`, ['v2.bsatn.spacetimedb']);
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(d));
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'the attacker connected', 10_000);
  after(() => ws.terminate());
  ws.send(subscribeMessage(Array.from({ length: queries }, (_, i) =>
    `SELECT message.* FROM message JOIN user ON message.sender = user.identity WHERE message.text = 'k${i}'`)));
  // Frames: a compression byte (0: none), then the server message's tag: 1 SubscribeApplied, 3 SubscriptionError.
  await until('the subscription answered', () => frames.some((f) => f[1] === 1 || f[1] === 3), 15_000, 20);
  assert.ok(frames.some((f) => f[1] === 1), `SubscribeApplied: ${frames.map((f) => f.subarray(0, 200).toString('latin1')).join(' | ')}`);
  frames.length = 0;
  // Each call commits three times (connect, the call, disconnect), each changing the caller's user row. Before: ~2 s
  // per commit here (4,096 deltas, each scanning 400 messages); now a few milliseconds.
  const deadline = AbortSignal.timeout(10_000); // before: the first call alone took ~13 s
  for (let i = 0; i < 10; i++) {
    const r = await send(i === 7 ? 'k7' : `legit ${i}`, deadline).catch((e: Error) => assert.fail(`call ${i} of 10 within 10 s: ${e.message}`));
    assert.equal(r.status, 200);
  }
  // The attacker's query for 'k7' still sees its row: a TransactionUpdate carrying the message.
  await until('the k7 update', () => frames.some((f) => f.includes(Buffer.from('k7'))), 5_000, 20);
  ws.close();
});
