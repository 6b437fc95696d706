// Issue 13 items 4 and 5 through a real server process, the real CLI and real WebSockets:
// - views are materialized: a view runs again only after a commit that touched a table it read; a sender view's
//   results are kept per sender (the view-count fixture logs one line per call, counted in the module log);
// - upstream's system tables answer SQL with upstream's columns (st_table … st_view, st_client, st_var), and
//   st_connection_credentials is the owner's alone;
// - `SET row_limit` is the owner's, survives kill -9, and refuses non-owners' queries and subscriptions whose estimate
//   exceeds it with upstream's message, while the owner is exempt;
// - a v1.json session bounds a query answer's JSON values (sqlResultValuesMax), as /sql does.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { sqlResultValuesMax } from '../../src/limits.js';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { RawClient } from '../ws/helpers.js';

let server: TestServer;
let configPath: string;
const db = 'viewcount';

before(async () => {
  server = await startTestServer();
  configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/view-count', '-y', db], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

/** POST /sql with `token` (anonymous without). */
async function sqlHttp(query: string, token?: string): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(`${server.url}/v1/database/${db}/sql`, { method: 'POST', headers, body: query });
  return { status: res.status, body: await res.text() };
}

async function rowsOf(query: string, token?: string): Promise<unknown[][]> {
  const r = await sqlHttp(query, token);
  assert.equal(r.status, 200, `${query}: ${r.body}`);
  return (JSON.parse(r.body) as { rows: unknown[][] }[])[0]!.rows;
}

async function call(reducer: string, args: unknown[], token?: string): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server.url}/v1/database/${db}/call/${reducer}`, { method: 'POST', headers, body: JSON.stringify(args) });
  assert.equal(res.status, 200, await res.text());
}

async function newIdentity(): Promise<{ identity: string; token: string }> {
  const res = await fetch(`${server.url}/v1/identity`, { method: 'POST' });
  assert.equal(res.status, 200);
  return await res.json() as { identity: string; token: string };
}

/** How many times the module log says `marker` (the views log one line per call). */
async function calls(marker: string): Promise<number> {
  const logs = await runCli(['logs', '-s', server.url, db, '--format', 'json'], { configPath });
  assert.equal(logs.code, 0, logs.stderr);
  return logs.stdout.split('\n').filter((l) => l.includes(marker)).length;
}

test('an anonymous view runs once until a table it read changes; a write elsewhere does not rerun it', async () => {
  const alice = await newIdentity();
  await call('add_item', ['a1'], alice.token);
  const before = await calls('view all_items called');
  assert.equal((await rowsOf('SELECT * FROM all_items')).length, 1);
  assert.equal((await rowsOf('SELECT * FROM all_items')).length, 1);
  assert.equal((await rowsOf('SELECT * FROM all_items', alice.token)).length, 1);
  assert.equal(await calls('view all_items called'), before + 1, 'three queries, one call');

  await call('add_other', []);                      // `other` is not in the view's read set
  assert.equal((await rowsOf('SELECT * FROM all_items')).length, 1);
  assert.equal(await calls('view all_items called'), before + 1, 'a write to another table keeps the result');

  await call('add_item', ['a2'], alice.token);      // `item` is
  assert.equal((await rowsOf('SELECT * FROM all_items')).length, 2);
  assert.equal((await rowsOf('SELECT * FROM all_items')).length, 2);
  assert.equal(await calls('view all_items called'), before + 2, 'rerun once after the write, then kept again');

  // A subscription reads the same cache: subscribing after the query above calls nothing.
  const client = await RawClient.open(`${server.url.replace(/^http/, 'ws')}/v1/database/${db}/subscribe?compression=None`);
  try {
    assert.equal((await client.next()).tag, 'InitialConnection');
    client.send({ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM all_items'] });
    assert.equal((await client.next()).tag, 'SubscribeApplied');
  } finally {
    client.ws.close();
  }
  assert.equal(await calls('view all_items called'), before + 2, 'the subscription used the kept result');
});

test('a sender view keeps one result per sender: each identity calls it once, and sees only its rows', async () => {
  const bob = await newIdentity();
  const carol = await newIdentity();
  await call('add_item', ['b1'], bob.token);
  await call('add_item', ['c1'], carol.token);
  await call('add_item', ['c2'], carol.token);
  const markerOf = (hex: string) => `view my_items called for ${hex}`;
  const bobBefore = await calls(markerOf(bob.identity));
  const carolBefore = await calls(markerOf(carol.identity));
  for (let i = 0; i < 3; i++) {
    assert.deepEqual((await rowsOf('SELECT label FROM my_items', bob.token)).map((r) => r[0]), ['b1']);
    assert.deepEqual((await rowsOf('SELECT label FROM my_items', carol.token)).map((r) => r[0]).sort(), ['c1', 'c2']);
  }
  assert.equal(await calls(markerOf(bob.identity)), bobBefore + 1);
  assert.equal(await calls(markerOf(carol.identity)), carolBefore + 1);
});

test('system tables answer with upstream\'s columns; st_connection_credentials is the owner\'s', async () => {
  const names = (await rowsOf('SELECT table_name FROM st_table')).map((r) => r[0]);
  for (const n of ['st_table', 'st_column', 'st_sequence', 'st_index', 'st_constraint', 'st_module', 'st_client', 'st_var',
    'st_scheduled', 'st_row_level_security', 'st_connection_credentials', 'st_view', 'st_view_param', 'st_view_column',
    'st_view_sub', 'st_view_arg', 'st_event_table', 'st_table_accessor', 'st_index_accessor', 'st_column_accessor',
    'item', 'other', 'note', 'hidden', 'job']) {
    assert.ok(names.includes(n), `st_table lists ${n}: ${names.join(', ')}`);
  }
  const table = await sqlHttp('SELECT * FROM st_table WHERE table_name = \'hidden\'');
  assert.equal(table.status, 200, table.body);
  const parsed = JSON.parse(table.body) as { schema: { elements: { name: { some: string } }[] }; rows: unknown[][] }[];
  assert.deepEqual(parsed[0]!.schema.elements.map((e) => e.name.some),
    ['table_id', 'table_name', 'table_type', 'table_access', 'table_primary_key']);
  assert.deepEqual(parsed[0]!.rows[0]!.slice(1, 4), ['hidden', 'user', 'private']);

  const itemId = (await rowsOf('SELECT table_id FROM st_table WHERE table_name = \'item\''))[0]![0];
  assert.deepEqual((await rowsOf(`SELECT col_name FROM st_column WHERE table_id = ${String(itemId)}`)).map((r) => r[0]), ['id', 'owner', 'label']);
  assert.deepEqual((await rowsOf('SELECT reducer_name FROM st_scheduled')).map((r) => r[0]), ['run_job']);
  assert.deepEqual((await rowsOf('SELECT sql FROM st_row_level_security')).map((r) => r[0]), ['SELECT * FROM note WHERE owner = :sender']);
  assert.deepEqual((await rowsOf('SELECT view_name, is_anonymous FROM st_view')).sort(), [['all_items', true], ['my_items', false]]);
  assert.equal((await rowsOf('SELECT * FROM st_module')).length, 1);

  // A connected WebSocket client is in st_client; its row goes when it leaves.
  const dave = await newIdentity();
  const client = await RawClient.open(`${server.url.replace(/^http/, 'ws')}/v1/database/${db}/subscribe?compression=None`,
    undefined, { authorization: `Bearer ${dave.token}` });
  try {
    assert.equal((await client.next()).tag, 'InitialConnection');
    const clients = await rowsOf('SELECT identity FROM st_client');
    assert.ok(clients.some((r) => BigInt(r[0] as string) === BigInt(`0x${dave.identity}`)), JSON.stringify(clients));
    const owners = await runCli(['sql', '-s', server.url, db, 'SELECT connection_id FROM st_connection_credentials'], { configPath });
    assert.equal(owners.code, 0, owners.stderr);
  } finally {
    client.ws.close();
    await client.closed;
  }
  const guest = await sqlHttp('SELECT * FROM st_connection_credentials');
  assert.equal(guest.status, 400, guest.body);
  assert.match(guest.body, /st_connection_credentials/);
});

test('SET row_limit: the owner\'s, survives kill -9, refuses non-owners\' queries and subscriptions over it', async () => {
  const erin = await newIdentity();
  const refused = await sqlHttp('SET row_limit = 1', erin.token);
  assert.equal(refused.status, 400, refused.body);
  assert.match(refused.body, /is not authorized to run SQL DML statements/);

  const items = (await rowsOf('SELECT * FROM item')).length;
  assert.ok(items >= 3, `${items} items`);
  const set = await runCli(['sql', '-s', server.url, db, 'SET row_limit = 2'], { configPath });
  assert.equal(set.code, 0, set.stderr);

  await server.kill('SIGKILL');
  await server.restart();

  const shown = await runCli(['sql', '-s', server.url, db, 'SHOW row_limit', '--format', 'json'], { configPath });
  assert.equal(shown.code, 0, shown.stderr);
  // st_var's value is upstream's StVarValue sum: U64 is its variant 8.
  assert.deepEqual((JSON.parse(shown.stdout) as { rows: unknown[][] }[])[0]!.rows, [[[8, 2]]]);
  assert.deepEqual(await rowsOf('SELECT name FROM st_var'), [['row_limit']]);

  const over = await sqlHttp('SELECT * FROM item', erin.token);
  assert.equal(over.status, 400, over.body);
  assert.match(over.body, new RegExp(`Estimated cardinality \\(${items} rows\\) exceeds limit \\(2 rows\\)`));
  assert.equal((await rowsOf('SELECT * FROM item WHERE id = 1', erin.token)).length, 1, 'a point lookup fits');
  const owner = await runCli(['sql', '-s', server.url, db, 'SELECT * FROM item', '--format', 'json'], { configPath });
  assert.equal(owner.code, 0, `the owner is exempt: ${owner.stderr}`);

  const client = await RawClient.open(`${server.url.replace(/^http/, 'ws')}/v1/database/${db}/subscribe?compression=None`,
    undefined, { authorization: `Bearer ${erin.token}` });
  try {
    assert.equal((await client.next()).tag, 'InitialConnection');
    client.send({ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM item'] });
    const sub = await client.next();
    assert.equal(sub.tag, 'SubscriptionError');
    assert.match((sub as { error: string }).error, /Estimated cardinality \(\d+ rows\) exceeds limit \(2 rows\)/);
    client.send({ tag: 'Subscribe', requestId: 2, querySetId: 2, queryStrings: ['SELECT * FROM item WHERE id = 1'] });
    assert.equal((await client.next()).tag, 'SubscribeApplied');
  } finally {
    client.ws.close();
  }
});

// v1.json sessions (json-session.ts) with the same bounds as the v2 session and /sql.
const jsonDb = 'viewcount-json';

async function jsonClient(): Promise<{ ws: WebSocket; next: (name: string) => Promise<Record<string, unknown>> }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/${jsonDb}/subscribe`, ['v1.json.spacetimedb']);
  const messages: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => { messages.push(JSON.parse(data.toString()) as Record<string, unknown>); for (const w of waiters.splice(0)) w(); });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const next = async (name: string) => {
    for (;;) {
      const i = messages.findIndex((m) => name in m);
      if (i >= 0) return messages.splice(i, 1)[0]![name] as Record<string, unknown>;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  await next('IdentityToken');
  return { ws, next };
}

test('v1.json: a query answer over sqlResultValuesMax values is the limit error, not a huge JSON reply', async () => {
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/view-count', '-y', jsonDb], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
  const len = 100_000;
  const rows = Math.ceil(sqlResultValuesMax / len) + 1;
  const res = await fetch(`${server.url}/v1/database/${jsonDb}/call/fill_wide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([rows, len]) });
  assert.equal(res.status, 200, await res.text());
  const c = await jsonClient();
  try {
    c.ws.send(JSON.stringify({ OneOffQuery: { message_id: '01', query_string: 'SELECT * FROM wide' } }));
    const answer = await c.next('OneOffQueryResponse');
    assert.deepEqual(answer.error, { some: `SQL query exceeded the limit of ${sqlResultValuesMax} values of results (sqlResultValuesMax)` });
    assert.deepEqual(answer.tables, []);
    c.ws.send(JSON.stringify({ SubscribeSingle: { request_id: 2, query_id: { id: 5 }, query: 'SELECT * FROM wide' } }));
    const refused = await c.next('SubscriptionError');
    assert.match(String(refused.error), /sqlResultValuesMax/);
    c.ws.send(JSON.stringify({ OneOffQuery: { message_id: '02', query_string: 'SELECT * FROM wide WHERE id = 1' } }));
    assert.deepEqual((await c.next('OneOffQueryResponse')).error, { none: [] });
  } finally {
    c.ws.close();
  }
});
