// Hot swap under load with the OFFICIAL client SDK (DbConnection over undici's WebSocket): a compatible update while
// a client is subscribed and calling a reducer in a loop loses no call, misses no update and keeps the connection;
// a breaking update then closes every client with 1001 and runs the NEW module's client_disconnected once each.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, generateBindings, until, within } from '../harness.js';
import { bundleFixture, RawClient, startTestServer, type TestServer } from '../ws/helpers.js';

let srv: TestServer;
// migrate-v1's client bindings (every migrate-* variant keeps `note` and `addNote`), generated at test time by our
// `spacetime generate`; typed loosely because they exist only then.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let bindings: any;
before(async () => {
  srv = await startTestServer({ module: 'migrate-v1' });
  bindings = await (await generateBindings('migrate-v1')).load();
});
after(async () => { await srv.close(); cleanupTempDirs(); });


// eslint-disable-next-line @typescript-eslint/no-explicit-any
function connect(onClose: (err?: Error) => void): Promise<any> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return within(new Promise<any>((resolve, reject) => {
    bindings.DbConnection.builder()
      .withUri(srv.url)
      .withDatabaseName('chat')
      .withCompression('gzip')
      .onConnect((conn: unknown) => resolve(conn))
      .onConnectError((_ctx: unknown, err: Error) => reject(err))
      .onDisconnect((_ctx: unknown, err?: Error) => onClose(err))
      .build();
  }), 'connect');
}

test('compatible hot swap during a reducer loop: no call lost, no update missed, connection kept; then a breaking one closes it', async () => {
  let closed = false;
  let closedResolve!: () => void;
  const closedPromise = new Promise<void>((resolve) => { closedResolve = resolve; });
  const conn = await connect(() => { closed = true; closedResolve(); });
  await within(new Promise<void>((resolve, reject) => {
    conn.subscriptionBuilder().onApplied(() => resolve()).onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription error')))
      .subscribe(['SELECT * FROM note']);
  }), 'subscribe');
  const seen = new Set<string>();
  conn.db.note.onInsert((_ctx: unknown, row: { text: string }) => { seen.add(row.text); });

  const callCount = 120;
  const calls: Promise<unknown>[] = [];
  let swap: Promise<unknown> | undefined;
  for (let i = 0; i < callCount; i++) {
    calls.push(conn.reducers.addNote({ text: `note-${i}` }));
    if (i === 40) swap = srv.db.update(await bundleFixture('migrate-compatible'), { breakClients: false });
    if (i % 10 === 0) await new Promise((r) => setImmediate(r)); // let the swap interleave with the loop
  }
  const result = await within(swap!, 'hot swap') as { plan: { breaksClients: boolean } };
  assert.equal(result.plan.breaksClients, false);
  await within(Promise.all(calls), 'every reducer call');
  await until('every update', () => seen.size >= callCount);
  assert.equal(seen.size, callCount);
  assert.equal(closed, false);
  assert.ok(conn.isActive);
  // Calls made after the swap run on the new module and still stream.
  await within(conn.reducers.addNote({ text: 'after-swap' }), 'call after the swap');
  await until('update after the swap', () => seen.has('after-swap'));
  const texts = (await srv.db.sql('SELECT * FROM note', { identity: 1n, connectionId: 0n, jwtPayload: undefined }, { isOwner: true }))[0].rows;
  assert.equal(texts.length, callCount + 1);

  // A raw client too, to see the close code and reason.
  const raw = await RawClient.open(`${srv.wsUrl}/v1/database/chat/subscribe`);
  await raw.next(); // InitialConnection
  const rawClosed = new Promise<{ code: number; reason: string }>((resolve) =>
    raw.ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
  await srv.db.update(await bundleFixture('migrate-compatible-add-column'), { breakClients: true });
  await within(closedPromise, 'SDK client closed by the breaking update');
  const { code, reason } = await within(rawClosed, 'raw client closed');
  assert.equal(code, 1001);
  assert.match(reason, /module was updated with breaking changes/);
  await new Promise((r) => setTimeout(r, 100));
  const log = srv.db.logs.tail().map((r) => r.message);
  assert.ok(log.includes('Disconnecting all users'));
  // The new module's disconnect hook ran once per client (SDK + raw), the old one never.
  assert.equal(log.filter((m) => m === 'disconnect hook compatible-add-column').length, 2);
  assert.equal(log.filter((m) => m === 'disconnect hook v1' || m === 'disconnect hook compatible').length, 0);
});
