// The server's bound on open connections (limits.ts "Connections", server/http.ts limitConnections) on a real server:
// past it, a WebSocket upgrade and a plain HTTP request get 503 naming the limit, the connections already open keep
// working, and a closed one makes room. Without it, ~20k idle WebSockets (this machine's open-file limit) left the
// server unable to open any file, and its memory sampler's /proc read threw EMFILE from a timer, which ended it.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, startTestServer, within, type TestServer } from '../harness.js';

const connectionsMax = 12;
let server: TestServer;
const silentTimeoutMs = 1_500;
before(async () => {
  server = await startTestServer({
    env: { SPACETIME_CONNECTIONS_MAX: String(connectionsMax), SPACETIME_CONNECTION_SILENT_TIMEOUT_MS: String(silentTimeoutMs) },
  });
});
after(async () => { await server.stop(); cleanupTempDirs(); });

/** One request on a connection of its own (fetch would pool it), closed after the answer. */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function openSocket(): Promise<WebSocket | Error> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/conns/subscribe`, ['v2.bsatn.spacetimedb']);
    ws.once('open', () => resolve(ws));
    ws.once('error', (error) => resolve(error));
  });
}

test('past SPACETIME_CONNECTIONS_MAX a connection gets 503 naming the limit; open ones go on; a close makes room', async () => {
  const program = (await buildFixture('basic')).code;
  const put = await new Promise<number>((resolve, reject) => {
    const req = request(`${server.url}/v1/database/conns`, { method: 'PUT', agent: false, headers: { connection: 'close' } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); });
    req.on('error', reject);
    req.end(program);
  });
  assert.equal(put, 200);

  // Up to the limit: the harness's start-up pings may still hold a pooled connection or two.
  const sockets: WebSocket[] = [];
  let refusedSocket: WebSocket | Error | undefined;
  while (refusedSocket === undefined && sockets.length <= connectionsMax) {
    const ws = await openSocket();
    if (ws instanceof WebSocket) sockets.push(ws);
    else refusedSocket = ws;
  }
  assert.ok(refusedSocket instanceof Error, `${sockets.length} WebSockets open, none refused`);
  assert.ok(sockets.length >= connectionsMax - 2, `refused at ${sockets.length} WebSockets`);
  assert.match(refusedSocket.message, /Unexpected server response: 503/);
  const refused = await get('/v1/ping');
  assert.equal(refused.status, 503);
  assert.match(refused.body, new RegExp(`This server holds ${connectionsMax} connections, its limit \\(connectionsMax, set by SPACETIME_CONNECTIONS_MAX\\)`));

  // The open connections are served: each still answers a ping frame.
  await Promise.all(sockets.map((ws) => new Promise<void>((resolve) => { ws.once('pong', () => resolve()); ws.ping(); })));

  const closed = sockets.splice(0, 2);
  await Promise.all(closed.map((ws) => new Promise<void>((resolve) => { ws.once('close', () => resolve()); ws.close(); })));
  let ping = await get('/v1/ping');
  for (let tries = 0; ping.status !== 200 && tries < 50; tries++) { // the server sees the close a moment later
    await new Promise((r) => setTimeout(r, 20));
    ping = await get('/v1/ping');
  }
  assert.equal(ping.status, 200);
  for (const ws of sockets) ws.terminate();
});

test('connections that never send are closed after SPACETIME_CONNECTION_SILENT_TIMEOUT_MS, so they cannot hold the bound', async () => {
  // Node's headers timeout starts at the first byte: before, these sockets stayed open (50 for 100 s, measured) and the
  // server answered every other client 503 for as long as they did.
  const silent: Socket[] = [];
  // When each closed, listened for from the start: a socket refused at the bound (one of a previous test may still be
  // counted on a loaded machine) closes at once, before the ping below has answered.
  const closedAt: Promise<number>[] = [];
  for (let i = 0; i < connectionsMax; i++) {
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume(); // a socket refused at the bound reads its 503 and closes
    silent.push(socket);
    closedAt.push(new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now()))));
  }
  await Promise.all(silent.map((s) => new Promise<void>((resolve) => {
    if (s.readyState === 'open' || s.destroyed) resolve(); else s.once('connect', () => resolve());
  })));
  const refused = await get('/v1/ping');
  assert.equal(refused.status, 503);
  const pinged = Date.now();
  const closed = (await within(Promise.all(closedAt), 'the silent connections closed', silentTimeoutMs + 5_000))
    .map((at) => Math.max(0, at - pinged));
  assert.ok(Math.max(...closed) < silentTimeoutMs + 2_000, `closed after ${Math.max(...closed)} ms`);
  let ping = await get('/v1/ping');
  for (let tries = 0; ping.status !== 200 && tries < 50; tries++) {
    await new Promise((r) => setTimeout(r, 20));
    ping = await get('/v1/ping');
  }
  assert.equal(ping.status, 200);
});
