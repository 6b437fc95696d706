// Per-connection limits with lowered values: idle close when the client stops answering pings, keepalive for a
// client that answers, and disconnection of a client that never reads instead of unbounded buffering.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, startTestServer, stringArgs, type TestServer } from './helpers.js';

const outboundCapBytes = 1024 * 1024;
let srv: TestServer;
before(async () => {
  srv = await startTestServer({ limits: { pingIntervalMs: 40, idleTimeoutMs: 200, outboundQueueMaxBytes: outboundCapBytes } });
});
after(async () => { await srv.close(); });

const url = () => `${srv.wsUrl}/v1/database/chat/subscribe?compression=None`;

test('a client that answers pings stays connected; one that does not is closed as idle', async () => {
  const alive = await RawClient.open(url());
  const silent = await RawClient.open(url(), undefined, {}, { autoPong: false });
  await alive.next();
  await silent.next();
  const closed = await silent.closed;
  assert.equal(closed.code, 1001);
  assert.match(closed.reason, /idle timeout/);
  assert.equal(alive.ws.readyState, alive.ws.OPEN);
  alive.ws.close();
});

test('a subscriber that never reads is disconnected once its unread bytes pass the cap', async () => {
  const reader = await RawClient.open(url());
  await reader.next();
  reader.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM person'] });
  await reader.next();
  // Stop reading from the socket: the kernel buffers fill, then ws.bufferedAmount grows on the server.
  (reader.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const big = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 2000 && srv.attached.sessions.size > 0; i++) {
    const r = await srv.db.callReducer('add', stringArgs(`${i}${big}`), { identity: 1n, connectionId: 1n, jwtPayload: undefined });
    assert.equal(r.status, 'committed');
    if (i % 50 === 49) await new Promise((res) => setTimeout(res, 5));
  }
  assert.equal(srv.attached.sessions.size, 0, 'the slow session was dropped');
});
