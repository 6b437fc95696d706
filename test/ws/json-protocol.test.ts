// The legacy `v1.json.spacetimedb` WebSocket protocol (issue 13 item 11): a hand-written JSON client over `ws`
// against a real server and a published module — handshake, IdentityToken, Subscribe / SubscribeSingle /
// SubscribeMulti / Unsubscribe / OneOffQuery / CallReducer, and the server messages in upstream's serde shapes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, within, type TestServer } from '../harness.js';

after(cleanupTempDirs);

const protocol = 'v1.json.spacetimedb';

/** A JSON client: every text message parsed, waitable by variant name. */
class JsonClient {
  readonly messages: Record<string, any>[] = [];
  /** The raw text of every message (u128 numbers such as connection ids lose digits in JSON.parse). */
  readonly raw: string[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'v1.json sends text frames');
      this.raw.push(data.toString());
      this.messages.push(JSON.parse(data.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(url: string, query = ''): Promise<JsonClient> {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/database/jsonproto/subscribe${query}`, [protocol]);
    const client = new JsonClient(ws);
    await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'open');
    assert.equal(ws.protocol, protocol);
    return client;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The next message of variant `name` not yet taken. */
  async next(name: string): Promise<any> {
    return within((async () => {
      for (;;) {
        const i = this.messages.findIndex((m) => name in m);
        if (i >= 0) return this.messages.splice(i, 1)[0][name];
        if (this.closed !== undefined) throw new Error(`closed ${this.closed.code} ${this.closed.reason} while waiting for ${name}`);
        await new Promise<void>((r) => this.waiters.push(r));
      }
    })(), name);
  }

  async closedWith(): Promise<{ code: number; reason: string }> {
    while (this.closed === undefined) await new Promise<void>((r) => this.waiters.push(r));
    return this.closed;
  }
}

const rowsOf = (update: any): { inserts: unknown[]; deletes: unknown[] } => ({
  inserts: update.updates.flatMap((u: any) => u.inserts.map((r: string) => JSON.parse(r))),
  deletes: update.updates.flatMap((u: any) => u.deletes.map((r: string) => JSON.parse(r))),
});

describe('v1.json.spacetimedb', () => {
  let server: TestServer;
  const clients: JsonClient[] = [];
  before(async () => {
    server = await startTestServer();
    const configPath = tempConfigPath();
    const r = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/client-tracker', '--yes', 'jsonproto'], { configPath });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await server.stop();
  });
  const open = async (query = ''): Promise<JsonClient> => {
    const c = await JsonClient.open(server.url, query);
    clients.push(c);
    return c;
  };

  test('is chosen after v3 and v2, and starts with IdentityToken', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/jsonproto/subscribe`, [protocol, 'v2.bsatn.spacetimedb']);
    await within(new Promise((resolve) => ws.once('open', resolve)), 'open');
    assert.equal(ws.protocol, 'v2.bsatn.spacetimedb');
    ws.terminate();

    const c = await open();
    const token = await c.next('IdentityToken');
    assert.match(token.identity.__identity__, /^0xc200[0-9a-f]{60}$/);
    assert.equal(typeof token.token, 'string');
    assert.equal(typeof token.connection_id.__connection_id__, 'number');
  });

  test('Subscribe, CallReducer and TransactionUpdate to the caller and to another subscriber', async () => {
    const a = await open();
    const b = await open();
    const aToken = await a.next('IdentityToken');
    await b.next('IdentityToken');
    for (const c of [a, b]) c.send({ Subscribe: { query_strings: ['SELECT * FROM item'], request_id: 7 } });
    const initial = await a.next('InitialSubscription');
    assert.equal(initial.request_id, 7);
    assert.deepEqual(initial.database_update.tables.map((t: any) => t.table_name), ['item']);
    assert.equal(typeof initial.total_host_execution_duration.__time_duration_micros__, 'number');
    await b.next('InitialSubscription');

    // Arguments are JSON text inside the message, as upstream's v1 JSON protocol has them.
    const big = '-170141183460469231731687303715884105728';
    a.send({ CallReducer: { reducer: 'add_item', args: `[1, "one", ["x", "y"], ${big}, {"some": 5}]`, request_id: 42, flags: 0 } });
    const mine = await a.next('TransactionUpdate');
    assert.equal(mine.reducer_call.reducer_name, 'add_item');
    assert.equal(mine.reducer_call.request_id, 42);
    assert.equal(mine.caller_identity.__identity__, aToken.identity.__identity__);
    assert.equal(typeof mine.timestamp.__timestamp_micros_since_unix_epoch__, 'number');
    assert.deepEqual(mine.energy_quanta_used, { quanta: 0 });
    const [table] = mine.status.Committed.tables;
    assert.equal(table.table_name, 'item');
    assert.equal(table.num_rows, 1);
    assert.equal(typeof table.table_id, 'number');
    // Rows are the JSON text of the row: products as arrays, sums as [tag, payload], i128 exact.
    assert.equal(table.updates[0].inserts[0], `[1,"one",["x","y"],${big},[0,5]]`);

    const theirs = await b.next('TransactionUpdate');
    assert.equal(theirs.reducer_call.reducer_name, 'add_item');
    assert.equal(theirs.caller_identity.__identity__, aToken.identity.__identity__);
    assert.deepEqual(theirs.status.Committed.tables[0].updates[0].inserts, [`[1,"one",["x","y"],${big},[0,5]]`]);
  });

  test('a failing reducer answers Failed with the module message; a bad call says why', async () => {
    const c = await open();
    await c.next('IdentityToken');
    c.send({ CallReducer: { reducer: 'fail_with', args: '["nope"]', request_id: 3, flags: 0 } });
    const failed = await c.next('TransactionUpdate');
    assert.deepEqual(failed.status, { Failed: 'nope' });
    assert.equal(failed.reducer_call.request_id, 3);
    c.send({ CallReducer: { reducer: 'no_such', args: '[]', request_id: 4, flags: 0 } });
    const missing = await c.next('TransactionUpdate');
    assert.match(missing.status.Failed, /no_such/);
  });

  test('SubscribeSingle, SubscribeMulti, Unsubscribe, OneOffQuery', async () => {
    const c = await open();
    await c.next('IdentityToken');
    c.send({ SubscribeSingle: { query: 'SELECT * FROM item', request_id: 1, query_id: { id: 10 } } });
    const single = await c.next('SubscribeApplied');
    assert.equal(single.query_id.id, 10);
    assert.equal(single.rows.table_name, 'item');
    assert.ok(rowsOf(single.rows.table_rows).inserts.length >= 1);

    c.send({ SubscribeMulti: { query_strings: ['SELECT * FROM gate', 'SELECT * FROM connected'], request_id: 2, query_id: { id: 11 } } });
    const multi = await c.next('SubscribeMultiApplied');
    assert.deepEqual(multi.update.tables.map((t: any) => t.table_name).sort(), ['connected', 'gate']);
    const connected = rowsOf(multi.update.tables.find((t: any) => t.table_name === 'connected')).inserts;
    assert.ok(connected.length >= 1, 'client_connected wrote this connection');

    c.send({ Unsubscribe: { request_id: 3, query_id: { id: 10 } } });
    const dropped = await c.next('UnsubscribeApplied');
    assert.equal(dropped.query_id.id, 10);
    assert.ok(rowsOf(dropped.rows.table_rows).deletes.length >= 1);

    c.send({ SubscribeSingle: { query: 'SELECT * FROM nowhere', request_id: 5, query_id: { id: 12 } } });
    const error = await c.next('SubscriptionError');
    assert.deepEqual(error.request_id, { some: 5 });
    assert.deepEqual(error.query_id, { some: 12 });
    assert.match(error.error, /nowhere/);

    c.send({ OneOffQuery: { message_id: 'beef', query_string: 'SELECT * FROM item' } });
    const answer = await c.next('OneOffQueryResponse');
    assert.equal(answer.message_id, 'beef');
    assert.deepEqual(answer.error, { none: [] });
    assert.equal(answer.tables[0].table_name, 'item');
    c.send({ OneOffQuery: { message_id: [1, 2], query_string: 'SELECT * FROM nowhere' } });
    const bad = await c.next('OneOffQueryResponse');
    assert.equal(bad.message_id, '0102');
    assert.match(bad.error.some, /nowhere/);
  });

  test('a malformed message closes the connection with what was wrong; the server keeps serving', async () => {
    const c = await open();
    await c.next('IdentityToken');
    c.send({ Subscribe: { query_strings: 'SELECT * FROM item', request_id: 1 } });
    const closed = await c.closedWith();
    assert.equal(closed.code, 1011);
    assert.match(closed.reason, /query_strings/);
    const d = await open();
    await d.next('IdentityToken');
  });

  test('closing a JSON client runs client_disconnected', async () => {
    const watcher = await open();
    await watcher.next('IdentityToken');
    const c = await open();
    await c.next('IdentityToken');
    const connectionId = /"__connection_id__":(\d+)/.exec(c.raw[0])![1];
    watcher.send({ SubscribeSingle: { query: 'SELECT * FROM connected', request_id: 1, query_id: { id: 1 } } });
    await watcher.next('SubscribeApplied');
    c.ws.close();
    const update = await watcher.next('TransactionUpdate');
    const { deletes } = rowsOf(update.status.Committed.tables[0]);
    assert.equal(deletes.length, 1);
    assert.match(update.status.Committed.tables[0].updates[0].deletes[0], new RegExp(`^\\[\\[${connectionId}\\],`));
  });
});
