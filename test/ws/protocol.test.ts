// WebSocket protocol tests with a raw `ws` client against a real host Database (basic fixture module):
// handshake, identity and tokens, subscriptions and reducer results, compression, confirmed reads, bad input.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Database } from '../../src/host/database.js';
import { compileWithSql, subscriptionsFor } from '../../src/subscription/manager.js';
import type { ServerMessage } from '../../src/subscription/messages.js';
import { RawClient, startTestServer, stringArgs, type TestServer } from './helpers.js';

let srv: TestServer;
// Compression as clients ask (the server's default sends every frame uncompressed: attach.ts FrameCompression).
before(async () => { srv = await startTestServer({ frameCompression: 'requested' }); });
after(async () => { await srv.close(); });

const subscribeUrl = () => `${srv.wsUrl}/v1/database/chat/subscribe`;
type Msg<T extends ServerMessage['tag']> = Extract<ServerMessage, { tag: T }>;
async function expectMsg<T extends ServerMessage['tag']>(c: RawClient, tag: T): Promise<Msg<T>> {
  const m = await c.next();
  assert.equal(m.tag, tag, `expected ${tag}, got ${JSON.stringify(m, (_k, v) => typeof v === 'bigint' ? String(v) : v)}`);
  return m as Msg<T>;
}
const decodeName = (row: Uint8Array) => Buffer.from(row.subarray(4)).toString('utf8');

test('anonymous connection: InitialConnection first, and the token reconnects as the same identity', async () => {
  const a = await RawClient.open(`${subscribeUrl()}?compression=None`);
  const init = await expectMsg(a, 'InitialConnection');
  assert.ok(init.token.length > 20);
  assert.notEqual(init.connectionId, 0n);
  assert.equal(a.ws.protocol, 'v3.bsatn.spacetimedb');
  a.ws.close();
  const b = await RawClient.open(`${subscribeUrl()}?token=${init.token}`);
  assert.equal((await expectMsg(b, 'InitialConnection')).identity, init.identity);
  const c = await RawClient.open(subscribeUrl(), undefined, { Authorization: `Bearer ${init.token}` });
  const cInit = await expectMsg(c, 'InitialConnection');
  assert.equal(cInit.identity, init.identity);
  assert.notEqual(cInit.connectionId, init.connectionId);
  b.ws.close();
  c.ws.close();
});

test('handshake refusals are plain HTTP responses', async () => {
  await assert.rejects(RawClient.open(subscribeUrl(), ['v1.bsatn.spacetimedb']), { status: 400, body: 'no valid protocol selected' });
  await assert.rejects(RawClient.open(`${srv.wsUrl}/v1/database/nope/subscribe`), { status: 404, body: '`nope` not found' });
  await assert.rejects(RawClient.open(`${subscribeUrl()}?token=abc`), { status: 400 });
  await assert.rejects(RawClient.open(`${subscribeUrl()}?compression=Zstd`), { status: 400 });
  await assert.rejects(RawClient.open(`${subscribeUrl()}?connection_id=${'0'.repeat(32)}`), { status: 400 });
});

test('two clients: live inserts; the caller gets ReducerResult with its own update; unsubscribe returns rows', async () => {
  const a = await RawClient.open(`${subscribeUrl()}?compression=None`);
  const b = await RawClient.open(`${subscribeUrl()}?compression=None`);
  await expectMsg(a, 'InitialConnection');
  await expectMsg(b, 'InitialConnection');
  a.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM person'] });
  b.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM person'] });
  const base = (await expectMsg(a, 'SubscribeApplied')).rows[0].rows.length;
  await expectMsg(b, 'SubscribeApplied');

  a.send({ tag: 'CallReducer', requestId: 2, reducer: 'add', args: stringArgs('Ada') });
  const rr = await expectMsg(a, 'ReducerResult');
  assert.equal(rr.requestId, 2);
  assert.equal(rr.outcome.tag, 'Ok');
  const own = rr.outcome.tag === 'Ok' ? rr.outcome.transactionUpdate : [];
  assert.equal(own.length, 1);
  const tu = await expectMsg(b, 'TransactionUpdate');
  const t = tu.querySets[0].tables[0] as { tableName: string; rows: { tag: string; inserts?: Uint8Array[] }[] };
  assert.equal(t.tableName, 'person');
  assert.deepEqual(t.rows[0].inserts!.map(decodeName), ['Ada']);
  assert.ok(await a.nothingFor(50), 'the caller gets no separate TransactionUpdate');

  b.send({ tag: 'Unsubscribe', requestId: 3, querySetId: 0, sendDroppedRows: true });
  const ua = await expectMsg(b, 'UnsubscribeApplied');
  assert.equal(ua.rows?.[0].rows.length, base + 1);
  a.send({ tag: 'CallReducer', requestId: 4, reducer: 'add', args: stringArgs('Bo') });
  await expectMsg(a, 'ReducerResult');
  assert.ok(await b.nothingFor(50), 'no updates after unsubscribing');
  a.ws.close();
  b.ws.close();
});

test('reducer failures: unknown reducer and bad arguments are InternalError; no one else hears of them', async () => {
  const a = await RawClient.open(`${subscribeUrl()}?compression=None`);
  await expectMsg(a, 'InitialConnection');
  a.send({ tag: 'CallReducer', requestId: 7, reducer: 'nope', args: new Uint8Array(0) });
  const r1 = await expectMsg(a, 'ReducerResult');
  assert.equal(r1.requestId, 7);
  assert.equal(r1.outcome.tag, 'InternalError');
  a.send({ tag: 'CallReducer', requestId: 8, reducer: 'add', args: new Uint8Array([1]) });
  const r2 = await expectMsg(a, 'ReducerResult');
  assert.equal(r2.outcome.tag, 'InternalError');
  a.ws.close();
});

test('bad SQL answers SubscriptionError with the request id, and the connection stays usable', async () => {
  const a = await RawClient.open(`${subscribeUrl()}?compression=None`);
  await expectMsg(a, 'InitialConnection');
  a.send({ tag: 'Subscribe', requestId: 11, querySetId: 4, queryStrings: ['SELEKT nothing'] });
  const e = await expectMsg(a, 'SubscriptionError');
  assert.equal(e.requestId, 11);
  assert.equal(e.querySetId, 4);
  a.send({ tag: 'Subscribe', requestId: 12, querySetId: 4, queryStrings: ['SELECT * FROM person'] });
  await expectMsg(a, 'SubscribeApplied');
  a.ws.close();
});

test('malformed frames close the connection with 1011 and the error text', async () => {
  const cases: [string, (c: RawClient) => void, RegExp][] = [
    ['unknown tag', (c) => c.ws.send(Buffer.from([9, 0, 0])), /unknown ClientMessage tag 9/],
    ['garbage', (c) => c.ws.send(Buffer.from([0, 1, 2])), /malformed ClientMessage::Subscribe/],
    ['text frame', (c) => c.ws.send('hello'), /text frames/],
    ['nonzero flags', (c) => c.ws.send(Buffer.from([3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])), /flags must be 0/],
    ['empty frame', (c) => c.ws.send(Buffer.alloc(0)), /empty client frame/],
  ];
  for (const [name, send, reason] of cases) {
    const c = await RawClient.open(`${subscribeUrl()}?compression=None`);
    await expectMsg(c, 'InitialConnection');
    send(c);
    const closed = await c.closed;
    assert.equal(closed.code, 1011, name);
    assert.match(closed.reason, reason, name);
  }
});

test('an oversized message closes with 1009', async () => {
  const c = await RawClient.open(subscribeUrl());
  await expectMsg(c, 'InitialConnection');
  c.ws.send(Buffer.alloc(32 * 1024 * 1024 + 1));
  assert.equal((await c.closed).code, 1009);
});

test('compression: bodies over 1 KiB use the requested algorithm, small ones are tag 0', async () => {
  for (let i = 0; i < 60; i++) {
    const r = await srv.db.callReducer('add', stringArgs(`person-${i}-${'x'.repeat(20)}`), { identity: 1n, connectionId: 1n, jwtPayload: undefined });
    assert.equal(r.status, 'committed');
  }
  for (const [compression, tag] of [['Gzip', 2], ['Brotli', 1], ['None', 0]] as const) {
    const c = await RawClient.open(`${subscribeUrl()}?compression=${compression}`);
    await expectMsg(c, 'InitialConnection');
    assert.equal(c.frames[0].tag, 0, 'a small InitialConnection is never compressed');
    c.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM person'] });
    const applied = await expectMsg(c, 'SubscribeApplied');
    assert.ok(applied.rows[0].rows.length >= 60);
    assert.equal(c.frames.at(-1)!.tag, tag, compression);
    c.ws.close();
  }
});

test('v2: one message per frame; v3: messages in one client frame are all processed in order', async () => {
  const v3 = await RawClient.open(`${subscribeUrl()}?compression=None`);
  await expectMsg(v3, 'InitialConnection');
  v3.send(
    { tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM person'] },
    { tag: 'CallReducer', requestId: 2, reducer: 'add', args: stringArgs('v3') },
    { tag: 'Unsubscribe', requestId: 3, querySetId: 1, sendDroppedRows: false },
  );
  assert.equal((await expectMsg(v3, 'SubscribeApplied')).requestId, 1);
  assert.equal((await expectMsg(v3, 'ReducerResult')).requestId, 2);
  assert.equal((await expectMsg(v3, 'UnsubscribeApplied')).requestId, 3);
  v3.ws.close();

  const v2 = await RawClient.open(`${subscribeUrl()}?compression=None`, ['v2.bsatn.spacetimedb']);
  assert.equal(v2.ws.protocol, 'v2.bsatn.spacetimedb');
  await expectMsg(v2, 'InitialConnection');
  v2.send({ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
  v2.send({ tag: 'CallReducer', requestId: 2, reducer: 'add', args: stringArgs('v2') });
  await expectMsg(v2, 'SubscribeApplied');
  await expectMsg(v2, 'ReducerResult');
  assert.ok(v2.frames.every((f) => f.messages.length === 1));
  v2.ws.close();
});

test('disconnect drops the subscriptions', async () => {
  const mgr = subscriptionsFor(srv.db, compileWithSql);
  // Earlier tests' sockets close asynchronously: wait until they are gone.
  for (let i = 0; i < 100 && mgr.clientCount !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  const before = mgr.clientCount;
  assert.equal(before, 0);
  const c = await RawClient.open(subscribeUrl());
  await expectMsg(c, 'InitialConnection');
  c.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM person'] });
  await expectMsg(c, 'SubscribeApplied');
  assert.equal(mgr.clientCount, before + 1);
  c.ws.close();
  await c.closed;
  for (let i = 0; i < 50 && mgr.clientCount !== before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(mgr.clientCount, before);
});

test('client_connected rejection drops the socket without any message', async () => {
  const s = await startTestServer({
    db: (db) => Object.assign(Object.create(db) as Database, {
      clientConnected: () => Promise.reject(new Error('go away')),
    }),
  });
  try {
    const c = await RawClient.open(`${s.wsUrl}/v1/database/chat/subscribe`);
    const closed = await c.closed;
    assert.equal(c.frames.length, 0);
    assert.notEqual(closed.code, 1000);
  } finally {
    await s.close();
  }
});

test('confirmed reads hold updates until the commit is durable; unconfirmed clients get them at once', async () => {
  let release!: () => void;
  let gate = Promise.resolve();
  const s = await startTestServer({
    db: (db) => Object.assign(Object.create(db) as Database, {
      onCommit: (l: Parameters<Database['onCommit']>[0]) => db.onCommit((e) => l({ ...e, durable: gate } as typeof e)),
    }),
  });
  try {
    const url = `${s.wsUrl}/v1/database/chat/subscribe?compression=None`;
    const confirmed = await RawClient.open(url);
    const fast = await RawClient.open(`${url}&confirmed=false`);
    for (const c of [confirmed, fast]) {
      await expectMsg(c, 'InitialConnection');
      c.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM person'] });
      await expectMsg(c, 'SubscribeApplied');
    }
    gate = new Promise<void>((r) => { release = r; });
    await s.db.callReducer('add', stringArgs('slow'), { identity: 1n, connectionId: 1n, jwtPayload: undefined });
    await expectMsg(fast, 'TransactionUpdate');
    assert.ok(await confirmed.nothingFor(50), 'held until durable');
    release();
    await expectMsg(confirmed, 'TransactionUpdate');
    confirmed.ws.close();
    fast.ws.close();
  } finally {
    await s.close();
  }
});

test('SenderError reaches the caller as Err(string), a thrown Error as InternalError; subscribers hear nothing', async () => {
  const s = await startTestServer({ module: 'runaway' });
  try {
    const url = `${s.wsUrl}/v1/database/chat/subscribe?compression=None`;
    const caller = await RawClient.open(url);
    const watcher = await RawClient.open(url);
    await expectMsg(caller, 'InitialConnection');
    await expectMsg(watcher, 'InitialConnection');
    watcher.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM item'] });
    await expectMsg(watcher, 'SubscribeApplied');
    caller.send({ tag: 'CallReducer', requestId: 5, reducer: 'refuse', args: stringArgs('not today') });
    const err = await expectMsg(caller, 'ReducerResult');
    assert.deepEqual(err.outcome, { tag: 'Err', message: 'not today' });
    caller.send({ tag: 'CallReducer', requestId: 6, reducer: 'fail', args: new Uint8Array(0) });
    const internal = await expectMsg(caller, 'ReducerResult');
    assert.equal(internal.outcome.tag, 'InternalError');
    assert.ok(await watcher.nothingFor(50));
    caller.send({ tag: 'CallReducer', requestId: 7, reducer: 'add', args: stringArgs('ok') });
    assert.equal((await expectMsg(caller, 'ReducerResult')).outcome.tag, 'Ok');
    await expectMsg(watcher, 'TransactionUpdate');
    caller.ws.close();
    watcher.ws.close();
  } finally {
    await s.close();
  }
});
