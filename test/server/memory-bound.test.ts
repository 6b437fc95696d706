// The server's memory bounds on a real server. At the server's bound (limits.ts "Server memory", host/memory-guard.ts),
// transactions that add rows, new subscriptions, new databases and module updates are refused with the bound named,
// while deletes, same-size updates, reads and /v1/ping go on, in worker and in main mode; a real load crosses the bound
// live and is then refused; a module heap grown past `moduleHeapShedMinBytes` is given back. One connection holds at
// most `clientQueriesMax` subscribed queries. And SQL DML keeps the transaction write limit (it bypassed
// txWriteBytesMax before).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, startTestServer, until, type TestServer } from '../harness.js';

after(() => cleanupTempDirs());

const overMemory = /out of memory: it uses \d+ MiB, at or over its bound of (\d+) MiB \(limit serverMemoryShareMax, SPACETIME_SERVER_MEMORY_MAX_MIB\)/;

async function identity(server: TestServer): Promise<Record<string, string>> {
  const { token } = await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json() as { token: string };
  return { authorization: `Bearer ${token}` };
}

async function put(server: TestServer, auth: Record<string, string>, name: string, program: string): Promise<Response> {
  return fetch(`${server.url}/v1/database/${name}`, { method: 'PUT', headers: auth, body: program });
}

async function load(server: TestServer, auth: Record<string, string>, name: string, first: number, count: number): Promise<Response> {
  return fetch(`${server.url}/v1/database/${name}/call/load`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify([first, count]),
  });
}

async function sql(server: TestServer, auth: Record<string, string>, name: string, query: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${server.url}/v1/database/${name}/sql`, { method: 'POST', headers: auth, body: query });
  return { status: r.status, body: await r.text() };
}

async function rowCount(server: TestServer, auth: Record<string, string>, name: string): Promise<number> {
  const r = await sql(server, auth, name, 'SELECT COUNT(*) AS c FROM row');
  assert.equal(r.status, 200, r.body);
  return Number((JSON.parse(r.body) as [{ rows: [[number]] }])[0].rows[0][0]);
}

/** The answer to one v1.json SubscribeMulti of `queries` on a new connection (SubscribeMultiApplied or SubscriptionError). */
async function subscribeJson(server: TestServer, name: string, querySets: string[][]): Promise<string[]> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/${name}/subscribe`, ['v1.json.spacetimedb']);
  const answers: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const text = data.toString();
      if (text.startsWith('{"IdentityToken"')) return;
      answers.push(text);
      if (answers.length === querySets.length) resolve();
    });
    ws.once('close', (code: number) => reject(new Error(`closed with ${code} after ${answers.length} answers`)));
  });
  await new Promise((resolve) => ws.once('open', resolve));
  querySets.forEach((queries, i) => ws.send(JSON.stringify({ SubscribeMulti: { query_strings: queries, request_id: i + 1, query_id: { id: i + 1 } } })));
  try {
    await done;
  } finally {
    ws.terminate();
  }
  return answers;
}

function residentMib(server: TestServer): number {
  const status = readFileSync(`/proc/${server.pid()}/status`, 'utf8');
  return Math.ceil(Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024);
}

for (const threads of ['worker', 'main'] as const) {
  test(`at the memory bound (${threads} mode): rows, databases and updates are refused, the rest goes on`, async () => {
    const program = (await buildFixture('bulk-rows')).code;
    const tagged = (await buildFixture('bulk-rows-tagged')).code;
    const env = { SPACETIME_DATABASE_THREADS: threads };
    const first = await startTestServer({ env });
    const auth = await identity(first);
    let r = await put(first, auth, 'mem', program);
    assert.equal(r.status, 200, await r.text());
    r = await load(first, auth, 'mem', 0, 1000);
    assert.equal(r.status, 200, await r.text());
    await first.stop();

    // The same data with a bound the server is over from its start: its databases open and serve.
    const server = await startTestServer({ dataDir: first.dataDir, env: { ...env, SPACETIME_SERVER_MEMORY_MAX_MIB: '1' } });
    try {
      assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
      r = await load(server, auth, 'mem', 1000, 10);
      assert.equal(r.status, 530);
      const refusal = await r.text();
      assert.match(refusal, overMemory);
      assert.match(refusal, /a transaction that adds rows \(this one: \d+ bytes\) is rolled back/);
      assert.equal(await rowCount(server, auth, 'mem'), 1000);

      const insert = await sql(server, auth, 'mem', "INSERT INTO row (id, label, n) VALUES (5000, 'x', 1)");
      assert.notEqual(insert.status, 200);
      assert.match(insert.body, overMemory);
      const sameSize = await sql(server, auth, 'mem', 'UPDATE row SET n = 9 WHERE id < 10');
      assert.equal(sameSize.status, 200, sameSize.body);
      const deleted = await sql(server, auth, 'mem', 'DELETE FROM row WHERE id < 500');
      assert.equal(deleted.status, 200, deleted.body);
      assert.equal(await rowCount(server, auth, 'mem'), 500);

      const [subscribed] = await subscribeJson(server, 'mem', [['SELECT * FROM row']]);
      assert.match(subscribed, /^\{"SubscriptionError"/);
      assert.match(subscribed, /a new subscription is refused until memory is freed/);

      r = await put(server, auth, 'mem-new', program);
      assert.equal(r.status, 503);
      assert.match(await r.text(), /a new database is refused until memory is freed/);
      r = await put(server, auth, 'mem', tagged);
      assert.equal(r.status, 503);
      assert.match(await r.text(), /a module update .* is refused until memory is freed/);
      assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
    } finally {
      await server.stop();
    }
  });
}

test('a load that crosses the memory bound is refused from then on; the server keeps serving', async () => {
  const program = (await buildFixture('bulk-rows')).code;
  // The bound is set at start; the server learns its resident set only after it starts, so it runs twice.
  const probe = await startTestServer();
  const auth = await identity(probe);
  assert.equal((await put(probe, auth, 'grow', program)).status, 200);
  assert.equal((await load(probe, auth, 'grow', 0, 10)).status, 200);
  const startedMib = residentMib(probe);
  await probe.stop();
  const boundMib = startedMib + 64;
  const server = await startTestServer({ dataDir: probe.dataDir, env: { SPACETIME_SERVER_MEMORY_MAX_MIB: String(boundMib) } });
  try {
    const batch = 50_000;
    let refusedAt: number | undefined;
    for (let call = 0; call < 80 && refusedAt === undefined; call++) {
      const r = await load(server, auth, 'grow', 10 + call * batch, batch);
      const body = await r.text();
      if (r.status === 200) continue;
      assert.equal(r.status, 530, body);
      assert.equal(overMemory.exec(body)?.[1], String(boundMib), body);
      refusedAt = call;
    }
    assert.notEqual(refusedAt, undefined, `80 loads of ${batch} rows stayed under ${boundMib} MiB`);
    assert.ok(residentMib(server) >= boundMib - 16, 'refused near the bound, not long before it');
    assert.equal(await rowCount(server, auth, 'grow'), 10 + refusedAt! * batch);
    assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
  } finally {
    await server.stop();
  }
});

async function call(server: TestServer, auth: Record<string, string>, name: string, reducer: string, args: unknown[]): Promise<Response> {
  return fetch(`${server.url}/v1/database/${name}/call/${reducer}`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(args),
  });
}

test('at the memory bound a module heap over moduleHeapShedMinBytes is given back before its next call', async () => {
  const program = (await buildFixture('hostile-input')).code;
  const probe = await startTestServer();
  const auth = await identity(probe);
  assert.equal((await put(probe, auth, 'heap', program)).status, 200);
  assert.equal((await call(probe, auth, 'heap', 'add', ['warm'])).status, 200);
  const startedMib = residentMib(probe);
  await probe.stop();
  const boundMib = startedMib + 120;
  const server = await startTestServer({ dataDir: probe.dataDir, env: { SPACETIME_SERVER_MEMORY_MAX_MIB: String(boundMib) } });
  try {
    let r = await call(server, auth, 'heap', 'hoard', [200]); // module-global arrays: the call commits, the heap stays
    assert.equal(r.status, 200, await r.text());
    await until('the resident set to reach the bound', () => residentMib(server) >= boundMib, 10_000, 50);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the main thread's sample follows every 100 ms
    r = await call(server, auth, 'heap', 'hoarded', []);
    assert.equal(r.status, 200, await r.text());
    const logText = await (await fetch(`${server.url}/v1/database/heap/logs?num_lines=20`, { headers: auth })).text();
    assert.match(logText, /the module's instance was replaced to free its \d+ MiB heap: the server is at its memory bound/);
    assert.match(logText, /kept: 0/);
    await until('the resident set to drop below the bound', () => residentMib(server) < boundMib - 32, 10_000, 50);
    await new Promise((resolve) => setTimeout(resolve, 300));
    r = await call(server, auth, 'heap', 'add', ['after']);
    assert.equal(r.status, 200, await r.text());
  } finally {
    await server.stop();
  }
});

test('SQL DML over txWriteBytesMax is refused and rolled back', async () => {
  const program = (await buildFixture('bulk-rows')).code;
  const server = await startTestServer({ env: { SPACETIME_TX_WRITE_BYTES_MAX: '200000' } });
  try {
    const auth = await identity(server);
    assert.equal((await put(server, auth, 'dml', program)).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await load(server, auth, 'dml', i * 1000, 1000)).status, 200);
    const update = await sql(server, auth, 'dml', 'UPDATE row SET n = 7');
    assert.notEqual(update.status, 200);
    assert.match(update.body, /too large to commit: it writes \d+ bytes of rows .*over the limit txWriteBytesMax = 200000 bytes; it was rolled back/);
    const changed = await sql(server, auth, 'dml', 'SELECT COUNT(*) AS c FROM row WHERE n = 7');
    assert.equal(changed.status, 200, changed.body);
    assert.equal(Number((JSON.parse(changed.body) as [{ rows: [[number]] }])[0].rows[0][0]), 0);
  } finally {
    await server.stop();
  }
});

test('one connection holds at most clientQueriesMax subscribed queries; past it a Subscribe gets an error naming it', async () => {
  const program = (await buildFixture('bulk-rows')).code;
  const server = await startTestServer();
  try {
    const auth = await identity(server);
    assert.equal((await put(server, auth, 'subs', program)).status, 200);
    // Distinct literals: identical queries would be shared. 4 sets of 4,096 fill the limit (16,384).
    const full = Array.from({ length: 4 }, (_, set) => Array.from({ length: 4096 }, (_, i) => `SELECT * FROM row WHERE id = ${set * 4096 + i}`));
    const answers = await subscribeJson(server, 'subs', [...full, ['SELECT * FROM row WHERE id = 99999']]);
    for (const answer of answers.slice(0, 4)) assert.match(answer, /^\{"SubscribeMultiApplied"/);
    assert.match(answers[4], /^\{"SubscriptionError"/);
    assert.match(answers[4], /Too many queries subscribed on this connection: 16384 and 1 more \(limit clientQueriesMax = 16384\)/);
  } finally {
    await server.stop();
  }
});
