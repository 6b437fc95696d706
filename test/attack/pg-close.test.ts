// A pgwire client's close while its query waits (session 12 attack probe, left; fixed in session 13,
// server/pgwire/session.ts). The session paused its socket while a query was in flight, so a client that sent a query
// and closed was noticed only when the answer's write failed: its query ran anyway, behind
// `sqlRequestsInFlightPerDatabaseMax` and ahead of later ones. Now the socket is read on (up to `pgInputAheadBytesMax`)
// and the close is seen at once: a waiting query of a closed client is not run.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { buildFixture, cleanupTempDirs, freePort, startTestServer, within, type TestServer } from '../harness.js';

const clients = 40;
let server: TestServer;
let pgPort: number;
let token: string; // a client's, not the owner's: the owner's queries go first
const sockets: Socket[] = [];
// `<>` terms over 20,000 rows: ~0.5 s of the database's thread per query here.
const slow = 'SELECT * FROM blob WHERE ' + Array.from({ length: 1_500 }, (_, i) => `data <> 'y${i}'`).join(' AND ');

before(async () => {
  pgPort = await freePort();
  server = await startTestServer({ args: ['--pg-port', String(pgPort)] });
  const mint = async () => ((await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string }).token;
  const owner = await mint();
  const put = await fetch(`${server.url}/v1/database/victim`, {
    method: 'PUT', headers: { authorization: `Bearer ${owner}` }, body: (await buildFixture('hostile-outbound')).code,
  });
  assert.equal(put.status, 200, await put.text());
  for (let first = 0; first < 20_000; first += 10_000) {
    const fill = await fetch(`${server.url}/v1/database/victim/call/fill`, {
      method: 'POST', headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' }, body: JSON.stringify([first, 10_000, 1]),
    });
    assert.equal(fill.status, 200, await fill.text());
  }
  token = await mint();
});
after(async () => {
  for (const s of sockets) s.destroy();
  await server.stop();
  cleanupTempDirs();
});

function pgMessage(type: string, body: string): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeUInt32BE(Buffer.byteLength(body) + 4, 1);
  return Buffer.concat([head, Buffer.from(body)]);
}

/** A pg connection authenticated as `token`, once the server said ReadyForQuery. */
async function authenticated(): Promise<Socket> {
  const socket = connect(pgPort, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const parameters = Buffer.from('user\0x\0database\0victim\0\0');
  const startup = Buffer.alloc(8);
  startup.writeUInt32BE(8 + parameters.length, 0);
  startup.writeUInt32BE(196608, 4);
  let received = Buffer.alloc(0);
  const ready = new Promise<void>((resolve) => {
    const onData = (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (received.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) { // ReadyForQuery
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.write(Buffer.concat([startup, parameters, pgMessage('p', `${token}\0`)]));
  await within(ready, 'ReadyForQuery', 10_000);
  return socket;
}

test("a pg client's close is seen while its query waits: the query is not run", async (t) => {
  const connections: Socket[] = [];
  for (let i = 0; i < clients; i++) connections.push(await authenticated());
  // Each sends its slow query, then, as psql does when it quits, Terminate and the end of its stream; nothing is
  // written to them until their answers. (Terminate is what the paused socket left unread: a stream's end alone is
  // still seen through a paused socket whose buffer is empty.)
  for (const socket of connections) socket.write(pgMessage('Q', `${slow}\0`));
  await new Promise((r) => setTimeout(r, 100));
  for (const socket of connections) socket.end(pgMessage('X', ''));
  await new Promise((r) => setTimeout(r, 200));
  // The same client's next query (same address and identity: it waits behind theirs).
  const started = Date.now();
  const answer = await fetch(`${server.url}/v1/database/victim/sql`, {
    method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'SELECT id FROM blob WHERE id = 0', signal: AbortSignal.timeout(40_000),
  });
  const tookMs = Date.now() - started;
  t.diagnostic(`the /sql behind ${clients} closed pg clients' queries: ${tookMs} ms`);
  assert.equal(answer.status, 200, await answer.text());
  // Before: all 40 ran (~0.5 s each, 4 at a time: ~10-20 s). After: the few handed to the database before the closes.
  assert.ok(tookMs < 6_000, `${tookMs} ms`);
});
