// The server's bound on bytes received and not yet handled (limits.ts "Bytes received and not yet handled",
// server/inbound-budget.ts) on a real server process. Before it, each connection was bounded on its own but not the
// sum: WebSocket frames or publish bodies sent in part and never finished, and calls pipelined behind a busy reducer,
// grew the server by their size (20 × 30 MiB frames: +540 MiB; 100 × 30 MiB calls behind `spin`: +2.3 GiB), and the
// connections bound admits 10,000 such connections.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, startTestServer, within, type TestServer } from '../harness.js';
import { floodQueries, openGreeted, rssMiB } from './flood.js';

const mib = 1024 * 1024;
const budgetBytes = 64 * mib;
let server: TestServer;
let ownerToken: string;

before(async () => {
  server = await startTestServer({ env: { SPACETIME_INBOUND_BYTES_HELD_MAX: String(budgetBytes), SPACETIME_REDUCER_TIMEOUT_MS: '3000' } });
  ({ token: ownerToken } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string });
  const put = await fetch(`${server.url}/v1/database/hog`, {
    method: 'PUT', headers: { authorization: `Bearer ${ownerToken}` }, body: (await buildFixture('cpu-hog')).code,
  });
  assert.equal(put.status, 200, await put.text());
});
after(async () => { await server.stop(); cleanupTempDirs(); });

function openSocket(): Promise<WebSocket> {
  return openGreeted(`${server.url.replace('http', 'ws')}/v1/database/hog/subscribe`, 'v2.bsatn.spacetimedb');
}

/** A masked binary frame header (mask key 0, so the payload goes as it is) declaring `length` payload bytes. */
function frameHeader(length: number): Buffer {
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
}

/** A v2 CallReducer message. */
function callReducer(requestId: number, reducer: string, args: Buffer): Buffer {
  const name = Buffer.from(reducer);
  const head = Buffer.alloc(10);
  head[0] = 3;
  head.writeUInt32LE(requestId, 1);
  head.writeUInt32LE(name.length, 6);
  const argsLength = Buffer.alloc(4);
  argsLength.writeUInt32LE(args.length);
  return Buffer.concat([head, name, argsLength, args]);
}

/**
 * Resolves once `bytes` are handed to the kernel, or once the socket closes: the server may close the very connection
 * that is writing (the largest holder), and then 'drain' never comes.
 */
function write(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed || socket.write(bytes)) { resolve(); return; }
    const done = (): void => { socket.off('drain', done); socket.off('close', done); resolve(); };
    socket.once('drain', done);
    socket.once('close', done);
  });
}

async function pingMs(): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${server.url}/v1/ping`);
  assert.equal(res.status, 200);
  return performance.now() - started;
}

test('WebSocket frames never finished: past the budget the largest holder is closed with 1013 naming the limit; others go on', async () => {
  const frameBytes = 30 * mib;
  const holders: { ws: WebSocket; closed: Promise<[number, string]> }[] = [];
  for (let i = 0; i < 3; i++) {
    const ws = await openSocket();
    const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code, reason) => resolve([code, reason.toString()])));
    ws.on('error', () => {});
    const socket = Reflect.get(ws, '_socket') as Socket;
    await write(socket, frameHeader(frameBytes));
    await write(socket, Buffer.alloc(frameBytes - 1));
    holders.push({ ws, closed });
  }
  // 90 MiB of unfinished frames against 64: the first two fit, the third crosses, and one of them is closed.
  const [code, reason] = await within(Promise.race(holders.map((h) => h.closed)), 'a holder closed', 15_000);
  assert.equal(code, 1013);
  assert.match(reason, /^inboundBytesHeldMax: the server holds \d+ bytes received and not yet handled, over its limit of 67108864/);

  const other = await openSocket();
  let messages = 0;
  const answered = new Promise<void>((resolve) => other.on('message', () => { if (++messages === 1) resolve(); })); // the result
  other.send(callReducer(1, 'nope', Buffer.alloc(0)));
  await within(answered, 'a newcomer\'s call answered', 15_000);
  assert.ok(await pingMs() < 2_000);
  other.close();
  for (const h of holders) h.ws.terminate();
});

test('a publish body never finished is answered 503 naming the limit when the budget fills', async () => {
  const bodyBytes = 15 * mib; // under programBytesMax (16 MiB): five of them pass the 64 MiB budget
  const uploads = [0, 1, 2, 3, 4].map((i) => {
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    let response = '';
    const answered = new Promise<string>((resolve) => {
      socket.on('data', (d: Buffer) => (response += d.toString()));
      socket.on('close', () => resolve(response));
    });
    socket.write(`PUT /v1/database/evil${i} HTTP/1.1\r\nHost: x\r\nContent-Length: ${bodyBytes}\r\n\r\n`);
    void write(socket, Buffer.alloc(bodyBytes - 1, 0x20));
    return { socket, answered };
  });
  const first = await within(Promise.race(uploads.map((u) => u.answered)), 'an upload answered', 15_000);
  assert.match(first, /^HTTP\/1\.1 503 /);
  assert.match(first, /inboundBytesHeldMax: the server holds \d+ bytes received and not yet handled, over its limit of 67108864/);
  assert.ok(await pingMs() < 2_000);
  for (const u of uploads) u.socket.destroy();
});

test('calls pipelined behind a busy reducer are read at its pace: memory stays bounded, every call is answered', async () => {
  const ws = await openSocket();
  let answers = 0;
  ws.on('message', () => answers++);
  const socket = Reflect.get(ws, '_socket') as Socket;
  const rssBefore = rssMiB(server.pid()!);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, rssMiB(server.pid()!)); }, 50);
  ws.send(callReducer(1, 'spin', Buffer.alloc(0))); // holds the database's thread for its 3 s limit
  const calls = 40;
  const body = callReducer(2, 'spin', Buffer.alloc(8 * mib)); // bad arguments: refused once the thread is free
  const frame = Buffer.concat([frameHeader(body.length), body]);
  for (let i = 0; i < calls; i++) await write(socket, frame);
  const deadline = Date.now() + 20_000;
  while (answers < calls + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  clearInterval(sampler);
  assert.equal(answers, calls + 1, 'the spin and every pipelined call answered');
  // 320 MiB of calls: before, all of them were read and held at once (measured +330 MiB here).
  assert.ok(rssPeak - rssBefore < 160, `the server grew by ${Math.round(rssPeak - rssBefore)} MiB`);
  ws.close();
});

test('one-off queries sent in a loop wait for answers: memory stays bounded, every query is answered', async () => {
  const ws = await openSocket();
  const queryString = Buffer.from('SELECT * FROM item');
  const query = Buffer.alloc(9 + queryString.length);
  query[0] = 2; // OneOffQuery
  query.writeUInt32LE(1, 1);
  query.writeUInt32LE(queryString.length, 5);
  queryString.copy(query, 9);
  // Before queriesInFlightPerConnectionMax: 160,000 queries in 4 s grew the server by 700 MiB, none answered meanwhile.
  await floodQueries(ws, query, server.pid()!, 200);
  ws.close();
});
