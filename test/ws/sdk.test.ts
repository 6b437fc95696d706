// End-to-end test with the OFFICIAL client SDK (spacetimedb 2.10.1 DbConnection over undici's WebSocket) against our
// WebSocket server and a real host Database running the basic fixture module: two clients see each other's inserts
// live, unsubscribe stops updates, a saved token reconnects as the same identity, gzip frames above 1 KiB decode.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { DbConnection } from './bindings/basic.js';
import { startTestServer, stringArgs, type TestServer } from './helpers.js';
import { within } from '../harness.js';

let srv: TestServer;
// Compression as clients ask (the server's default sends every frame uncompressed: attach.ts FrameCompression).
before(async () => { srv = await startTestServer({ frameCompression: 'requested' }); });
after(async () => { await srv.close(); });

interface Connected { conn: DbConnection; identityHex: string; token: string }


function connect(options: { token?: string; compression?: 'gzip' | 'none' | 'brotli' } = {}): Promise<Connected> {
  return within(new Promise<Connected>((resolve, reject) => {
    let b = DbConnection.builder()
      .withUri(srv.url)
      .withDatabaseName('chat')
      .withCompression(options.compression ?? 'gzip')
      .onConnect((conn, identity, token) => resolve({ conn, identityHex: identity.toHexString(), token }))
      .onConnectError((_ctx, err) => reject(err));
    if (options.token !== undefined) b = b.withToken(options.token);
    b.build();
  }), 'connect');
}

function subscribeAll(conn: DbConnection) {
  return within(new Promise<ReturnType<ReturnType<DbConnection['subscriptionBuilder']>['subscribe']>>((resolve, reject) => {
    const handle = conn.subscriptionBuilder()
      .onApplied(() => resolve(handle))
      .onError((ctx) => reject(ctx.event ?? new Error('subscription error')))
      .subscribe(['SELECT * FROM person']);
  }), 'subscribe');
}

test('two SDK clients see each other live; unsubscribe stops updates; a saved token keeps the identity', async () => {
  const a = await connect();
  const b = await connect();
  assert.notEqual(a.identityHex, b.identityHex);
  assert.match(a.identityHex, /^c200[0-9a-f]{60}$/);
  await subscribeAll(a.conn);
  const bSub = await subscribeAll(b.conn);

  const seenByB = new Promise<string>((resolve) => b.conn.db.person.onInsert((_ctx, row) => resolve(row.name)));
  const seenByA = new Promise<string>((resolve) => a.conn.db.person.onInsert((_ctx, row) => resolve(row.name)));
  await within(a.conn.reducers.add({ name: 'Ada' }), 'reducer call');
  assert.equal(await within(seenByB, 'B sees A\'s insert'), 'Ada');
  assert.equal(await within(seenByA, 'A sees its own insert'), 'Ada');
  assert.equal(b.conn.db.person.count(), a.conn.db.person.count());

  const seenByA2 = new Promise<string>((resolve) => a.conn.db.person.onInsert((_ctx, row) => { if (row.name === 'Bea') resolve(row.name); }));
  await within(b.conn.reducers.add({ name: 'Bea' }), 'reducer call from B');
  assert.equal(await within(seenByA2, 'A sees B\'s insert'), 'Bea');

  await within(new Promise<void>((resolve) => { bSub.unsubscribeThen(() => resolve()); }), 'unsubscribe');
  assert.equal(b.conn.db.person.count(), 0n, 'dropped rows were removed from B\'s cache');
  let bGotMore = false;
  b.conn.db.person.onInsert(() => { bGotMore = true; });
  await within(a.conn.reducers.add({ name: 'Cy' }), 'reducer call after unsubscribe');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(bGotMore, false);

  a.conn.disconnect();
  const again = await connect({ token: a.token });
  assert.equal(again.identityHex, a.identityHex);
  again.conn.disconnect();
  b.conn.disconnect();
});

test('gzip: a subscription snapshot above 1 KiB arrives compressed and decodes in the SDK', async () => {
  const names = Array.from({ length: 80 }, (_, i) => `gzip-person-${i}-${'z'.repeat(30)}`);
  for (const n of names) {
    const r = await srv.db.callReducer('add', stringArgs(n), { identity: 1n, connectionId: 1n, jwtPayload: undefined });
    assert.equal(r.status, 'committed');
  }
  const c = await connect({ compression: 'gzip' });
  await subscribeAll(c.conn);
  const have = new Set([...c.conn.db.person.iter()].map((r) => r.name));
  for (const n of names) assert.ok(have.has(n), n);
  c.conn.disconnect();
});

test('reducer errors reach the SDK as rejected promises', async () => {
  const c = await connect();
  await assert.rejects(within(c.conn.reducers.add({ name: 'x' }).then(() => c.conn.callReducer('nope', new Uint8Array(0))), 'bad reducer'));
  c.conn.disconnect();
});
