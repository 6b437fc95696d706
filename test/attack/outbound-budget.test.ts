// Answers written and not yet read (limits.ts "Bytes answered and not yet read", server/outbound-budget.ts) on real
// server processes. Before it, an anonymous client could ask a short query with a large answer on many connections and
// never read: Node kept each answer for as long as the socket stayed open (40 HTTP sockets asking `SELECT *` of a 40 MB
// table held +1.7 GiB; 20 pgwire sockets +740 MiB; 20 v1.json WebSockets +2.2 GiB), and a few hundred such sockets
// would have held the server at its memory bound, where every database refuses new rows.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, freePort, startTestServer, type TestServer } from '../harness.js';

const rowBytes = 1_000_000;
const rows = 8; // an answer of ~8 MB
const boundBytes = 24 * 1024 * 1024;
const stallMs = 1_500;
let bounded: TestServer; // a small outbound bound, no stall rule
let stalling: TestServer; // the default bound, a short stall rule
let pgPort: number;
const sockets: Socket[] = [];

async function publishBig(server: TestServer): Promise<void> {
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const put = await fetch(`${server.url}/v1/database/big`, { method: 'PUT', headers: auth, body: (await buildFixture('hostile-outbound')).code });
  assert.equal(put.status, 200, await put.text());
  const fill = await fetch(`${server.url}/v1/database/big/call/fill`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify([0, rows, rowBytes]),
  });
  assert.equal(fill.status, 200, await fill.text());
}

before(async () => {
  pgPort = await freePort();
  [bounded, stalling] = await Promise.all([
    startTestServer({
      env: { SPACETIME_OUTBOUND_BYTES_HELD_MAX: String(boundBytes), SPACETIME_OUTBOUND_STALL_TIMEOUT_MS: '0' },
      args: ['--pg-port', String(pgPort)],
    }),
    startTestServer({ env: { SPACETIME_OUTBOUND_STALL_TIMEOUT_MS: String(stallMs) } }),
  ]);
  await Promise.all([publishBig(bounded), publishBig(stalling)]);
});
after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all([bounded?.stop(), stalling?.stop()]);
  cleanupTempDirs();
});

/** A socket that sends `request` and reads nothing until `drain()`, which reads until the server ends it (or 2.5 s). */
async function nonReader(port: number, request: Buffer | string): Promise<{ drain(): Promise<{ bytes: number; ended: boolean }> }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(request);
  socket.pause();
  return {
    drain: () => new Promise((resolve) => {
      let bytes = 0;
      const timer = setTimeout(() => resolve({ bytes, ended: false }), 2_500);
      socket.on('data', (d: Buffer) => (bytes += d.length));
      socket.once('close', () => {
        clearTimeout(timer);
        resolve({ bytes, ended: true });
      });
      socket.resume();
    }),
  };
}

const sqlRequest = 'POST /v1/database/big/sql HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\n\r\nSELECT * FROM blob';

function pgMessage(type: string, body: string): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeUInt32BE(Buffer.byteLength(body) + 4, 1);
  return Buffer.concat([head, Buffer.from(body)]);
}

async function pgRequest(server: TestServer): Promise<Buffer> {
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const parameters = Buffer.from('user\0x\0database\0big\0\0');
  const startup = Buffer.alloc(8);
  startup.writeUInt32BE(8 + parameters.length, 0);
  startup.writeUInt32BE(196608, 4);
  return Buffer.concat([startup, parameters, pgMessage('p', `${token}\0`), pgMessage('Q', 'SELECT * FROM blob\0')]);
}

test('answers nobody reads past outboundBytesHeldMax: the connections holding the most are cut, readers are answered', async () => {
  const pg = await pgRequest(bounded);
  const waiting = [];
  for (let i = 0; i < 8; i++) waiting.push(await nonReader(bounded.port, sqlRequest));
  for (let i = 0; i < 4; i++) waiting.push(await nonReader(pgPort, pg));
  // A client that reads gets its whole answer meanwhile, once the others have been seen reading nothing for a while
  // (the bound cuts first those that read nothing for longest); the database answers in order, so every earlier
  // answer has been written by then.
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  const answer = await fetch(`${bounded.url}/v1/database/big/sql`, { method: 'POST', body: 'SELECT * FROM blob' });
  assert.equal(answer.status, 200);
  assert.ok((await answer.text()).length > rows * rowBytes);
  const drained = await Promise.all(waiting.map((w) => w.drain()));
  const whole = drained.filter((d) => d.bytes > rows * rowBytes).length;
  const cut = drained.filter((d) => d.ended && d.bytes < rows * rowBytes).length;
  // Before: all 12 answered whole (~100 MB held). Each holds what its kernel did not take (~4-6 MB of 8 MB here).
  assert.ok(cut >= 4, `${cut} of 12 non-reading connections cut (${whole} answered whole): ${JSON.stringify(drained)}`);
  assert.ok(whole >= 1, 'answers within the bound are kept');
  assert.equal((await fetch(`${bounded.url}/v1/ping`)).status, 200);
});

test('a client that reads none of its answer for outboundStallTimeoutMs is cut: HTTP, and v1.json, which had no stall rule', async () => {
  const http = await nonReader(stalling.port, sqlRequest);
  const ws = new WebSocket(`${stalling.url.replace('http', 'ws')}/v1/database/big/subscribe`, ['v1.json.spacetimedb']);
  let messages = 0;
  ws.on('message', () => messages++);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(JSON.stringify({ OneOffQuery: { message_id: '01', query_string: 'SELECT * FROM blob' } }));
  const socket = (ws as unknown as { _socket: Socket })._socket;
  socket.pause();
  // The stall timeout, plus a sweep (1 s), plus time to render the answers on a loaded machine.
  await new Promise((resolve) => setTimeout(resolve, stallMs + 4_000));
  socket.resume();
  const httpDrained = await http.drain();
  // Before: the HTTP answer arrived whole after any pause; the v1.json one too (its idle timeout is 30 s).
  assert.ok(httpDrained.ended && httpDrained.bytes < rows * rowBytes, `HTTP: ${JSON.stringify(httpDrained)}`);
  const code = await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve('open'), 5_000))]);
  assert.notEqual(code, 'open', 'the v1.json connection was closed');
  assert.ok(messages <= 1, `${messages} messages reached the stalled v1.json client (its IdentityToken at most)`);
  assert.equal((await fetch(`${stalling.url}/v1/ping`)).status, 200);
});
