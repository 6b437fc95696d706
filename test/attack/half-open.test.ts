// Half-open connections per remote address (limits.ts "Half-open connections", server/half-open.ts) on a real server
// process with its PostgreSQL port. Before it, slowloris HTTP connections (headers never finished) filling the
// connection bound refused everyone until Node's headers timeout (60 s), and 256 idle pgwire sockets refused every
// PostgreSQL client until the startup timeout (10 s); an attacker could repeat both at will.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, freePort, startTestServer, until, type TestServer } from '../harness.js';

const connectionsMax = 40;
const halfOpenPerAddressMax = 8;
const pgConnectionsMax = 256; // limits.ts pgConnectionsMax
const evictableAfterMs = 2_000; // limits.ts connectionHalfOpenEvictableAfterMs
let server: TestServer;
let pgPort: number;
const sockets: Socket[] = [];

before(async () => {
  pgPort = await freePort();
  server = await startTestServer({
    env: { SPACETIME_CONNECTIONS_MAX: String(connectionsMax), SPACETIME_CONNECTIONS_HALF_OPEN_PER_ADDRESS_MAX: String(halfOpenPerAddressMax) },
    args: ['--pg-port', String(pgPort)],
  });
});
after(async () => {
  for (const socket of sockets) socket.destroy();
  await server.stop();
  cleanupTempDirs();
});

/** One request on a connection of its own, closed after the answer. */
function ping(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}/v1/ping`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A raw socket that collects what the server sends it. */
async function openRaw(port: number, first?: string | Buffer): Promise<{ socket: Socket; received: () => Buffer }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (first !== undefined) socket.write(first);
  return { socket, received: () => Buffer.concat(chunks) };
}

test('slowloris connections filling the bound from one address give way to a newcomer once they are 2 s old', async () => {
  const slow = await Promise.all(Array.from({ length: connectionsMax }, () => openRaw(server.port, 'GET /v1/ping HTTP/1.1\r\nHost: x\r\n')));
  // Young half-open connections are never displaced: a burst of clients handshaking is not an attack.
  assert.equal((await ping()).status, 503);
  await new Promise((r) => setTimeout(r, evictableAfterMs + 300));
  const served = await ping();
  assert.equal(served.status, 200, served.body); // before: 503 until Node's headers timeout (60 s) ended them
  // Newcomers that stay open (keep-alive) each take a place: the first may be the harness's own idle keep-alive
  // connection (the oldest half-open one of this address), the next are the slow ones.
  const stay = await Promise.all([0, 1, 2].map(() => openRaw(server.port, 'GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n')));
  await until('the newcomers answered', () => stay.every((s) => s.received().length > 0), 10_000, 20);
  for (const s of stay) assert.match(s.received().toString(), /^HTTP\/1.1 200 /);
  const displaced = slow.map((s) => s.received().toString()).filter((text) => text.includes('the oldest, is closed'));
  assert.ok(displaced.length > 0, 'no slow connection was displaced');
  assert.match(displaced[0]!, new RegExp(`^HTTP/1.1 503 [^]*connections without a complete request, over its share of a full server ` +
    `\\(connectionsHalfOpenPerAddressMax = ${halfOpenPerAddressMax},`));
  for (const s of stay) s.socket.destroy();
  for (const s of slow) s.socket.destroy();
});

/** A StartupMessage (protocol 3.0) for user `postgres` and `database`. */
function startupMessage(database: string): Buffer {
  const body = Buffer.from(`user\0postgres\0database\0${database}\0\0`);
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + body.length, 0);
  header.writeInt32BE(196608, 4);
  return Buffer.concat([header, body]);
}

test('idle unauthenticated pgwire sockets filling pgConnectionsMax give way to a client once they are 2 s old', async () => {
  const idle = await Promise.all(Array.from({ length: pgConnectionsMax }, () => openRaw(pgPort)));
  await new Promise((r) => setTimeout(r, evictableAfterMs + 300));
  const client = await openRaw(pgPort, startupMessage('anything'));
  await until('the startup answer', () => client.received().length > 0, 10_000, 20);
  const answer = client.received();
  // AuthenticationCleartextPassword ('R', length 8, code 3); before: ErrorResponse 53300 "too many clients already".
  assert.equal(answer[0], 'R'.charCodeAt(0), answer.toString());
  assert.equal(answer.readInt32BE(5), 3);
  const displaced = idle.map((s) => s.received().toString()).filter((text) => text.length > 0);
  assert.ok(displaced.some((text) => text.includes('53300') && text.includes('pgConnectionsUnauthenticatedPerAddressMax = 64')), displaced.join('\n'));
  for (const s of idle) s.socket.destroy();
  client.socket.destroy();
});
