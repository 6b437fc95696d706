// End-to-end tests of issue 6 part A against a real server process, the real CLI and the official SDK: scheduled
// reducers (interval, one-shot, cancel, always failing, restart), procedures (CLI call, SDK call, withTx commit and
// rollback, outbound HTTP allowed / refused, a runaway loop) and module HTTP routes (GET/POST, 404/405/413/500).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  cleanupTempDirs, generateBindings, runCli, scrapeIdentity, startTestServer, tempConfigPath, type TestServer,
} from '../harness.js';

const dbName = 'feat-a';
/** Server limits for these tests (read by the server process from its environment). */
const testEnv = {
  SPACETIME_ALLOW_PRIVATE_HTTP: '1',
  SPACETIME_PROCEDURE_TIMEOUT_MS: '1500',
  SPACETIME_HTTP_HANDLER_BODY_MAX_BYTES: '1024',
};

let server: TestServer;          // allows private addresses (the local HTTP server below)
let strict: TestServer;          // default policy: private addresses refused
const configPaths = new Map<TestServer, string>();   // one CLI identity per server (tokens are per server)
let dbIdentity: string;
let local: http.Server;
let localUrl: string;
// The feat-a client bindings, generated at test time by our `spacetime generate` (loosely typed: they exist only then).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let bindings: any;

async function cli(srv: TestServer, args: string[]) {
  let configPath = configPaths.get(srv);
  if (configPath === undefined) { configPath = tempConfigPath(); configPaths.set(srv, configPath); }
  return runCli([args[0], '-s', srv.url, ...args.slice(1)], { configPath });
}

/** The CLI's token for `srv` (the database owner), read from its cli.toml. */
function ownerToken(srv: TestServer): string {
  const m = /spacetimedb_token\s*=\s*"([^"]+)"/.exec(readFileSync(configPaths.get(srv)!, 'utf8'));
  assert.ok(m !== null, 'the CLI saved a token');
  return m[1];
}

/** SQL over HTTP as the owner (polling through the CLI would cost a process per probe). */
async function sqlRows(srv: TestServer, query: string): Promise<unknown[][]> {
  const res = await fetch(`${srv.url}/v1/database/${dbName}/sql`, {
    method: 'POST', body: query, headers: { authorization: `Bearer ${ownerToken(srv)}` },
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { rows: unknown[][] }[])[0].rows;
}

/** A reducer call over HTTP (fast, for timing-sensitive steps). */
async function callHttp(srv: TestServer, fn: string, args: unknown[]): Promise<number> {
  const res = await fetch(`${srv.url}/v1/database/${dbName}/call/${fn}`, {
    method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json' },
  });
  await res.text();
  return res.status;
}

async function logs(srv: TestServer): Promise<string> {
  const res = await cli(srv, ['logs', dbName, '-n', '1000']);
  assert.equal(res.code, 0, res.stderr);
  return res.stdout;
}

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v, (_k, x) => typeof x === 'bigint' ? String(x) : x)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function publish(srv: TestServer): Promise<string> {
  const pub = await cli(srv, ['publish', '-p', 'test/fixtures/modules/feat-a', '-y', dbName]);
  assert.equal(pub.code, 0, pub.stderr);
  return scrapeIdentity(pub.stdout);
}

before(async () => {
  local = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`got ${req.method} ${req.url} ${body} ${String(req.headers['x-test'])}`);
    });
  });
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  localUrl = `http://127.0.0.1:${(local.address() as { port: number }).port}`;
  strict = await startTestServer();
  // Inherited by the server processes started from now on (including `server.restart()`), not by `strict`.
  Object.assign(process.env, testEnv);
  server = await startTestServer();
  dbIdentity = await publish(server);
  bindings = await (await generateBindings('feat-a')).load();
});

after(async () => {
  await server?.stop();
  await strict?.stop();
  local?.close();
  cleanupTempDirs();
});

describe('scheduled reducers', () => {
  test('an interval schedule ticks with the database identity as sender; deleting the row cancels it', async () => {
    assert.equal(await callHttp(server, 'start_ticker', ['every100', 100]), 200);
    const rows = await eventually(() => sqlRows(server, "SELECT * FROM tick_log WHERE label = 'every100'"), (r) => r.length >= 3, '3 ticks');
    for (const r of rows) assert.equal(String(r[2]).replace(/^0x/, ''), dbIdentity);
    assert.equal(await callHttp(server, 'stop_tickers', []), 200);
    await sleep(150);
    const stopped = (await sqlRows(server, "SELECT * FROM tick_log WHERE label = 'every100'")).length;
    await sleep(400);
    assert.equal((await sqlRows(server, "SELECT * FROM tick_log WHERE label = 'every100'")).length, stopped, 'no ticks after cancel');
  });

  test('a one-shot schedule fires once and its row is deleted; a cancelled or rolled-back one never fires', async () => {
    assert.equal(await callHttp(server, 'schedule_once', ['soon', 100]), 200);
    assert.equal(await callHttp(server, 'schedule_once', ['cancelled', 600]), 200);
    assert.equal(await callHttp(server, 'cancel_once', ['cancelled']), 200);
    assert.equal(await callHttp(server, 'schedule_then_fail', []), 530);
    await eventually(() => sqlRows(server, "SELECT * FROM once_log WHERE note = 'soon'"), (r) => r.length === 1, 'one-shot fired');
    await eventually(() => sqlRows(server, 'SELECT * FROM one_shot'), (r) => r.length === 0, 'one-shot row deleted');
    await sleep(800);
    assert.equal((await sqlRows(server, "SELECT * FROM once_log WHERE note = 'soon'")).length, 1, 'fired exactly once');
    assert.equal((await sqlRows(server, "SELECT * FROM once_log WHERE note = 'cancelled'")).length, 0);
    assert.equal((await sqlRows(server, "SELECT * FROM once_log WHERE note = 'rolled back'")).length, 0);
  });

  test('a delay of 2^36-1 ms or more is refused (ScheduleAtDelayTooLong)', async () => {
    const res = await cli(server, ['call', dbName, 'schedule_too_far']);
    assert.notEqual(res.code, 0);
    assert.match(await logs(server), /ScheduleAt delay .* exceeds/);
  });

  test('a scheduled reducer that always fails is logged and keeps being scheduled', async () => {
    assert.equal((await cli(server, ['call', dbName, 'start_failing', '100'])).code, 0);
    await eventually(() => logs(server), (text) => (text.match(/failing tick/g) ?? []).length >= 3, '3 failing ticks', 8000);
    assert.match(await logs(server), /scheduled failure on purpose/);
    assert.equal((await cli(server, ['call', dbName, 'stop_failing'])).code, 0);
  });

  test('a scheduled procedure runs on its interval (its withTx commits are visible)', async () => {
    assert.equal(await callHttp(server, 'start_proc_ticker', [100]), 200);
    const rows = await eventually(() => sqlRows(server, "SELECT * FROM tick_log WHERE label = 'proc 1'"), (r) => r.length >= 3, '3 procedure ticks');
    for (const r of rows) assert.equal(String(r[2]).replace(/^0x/, ''), dbIdentity);
    assert.equal(await callHttp(server, 'stop_proc_tickers', []), 200);
  });

  test('an interval schedule survives a restart', async () => {
    assert.equal((await cli(server, ['call', dbName, 'start_ticker', 'persist', '150'])).code, 0);
    await eventually(() => sqlRows(server, "SELECT * FROM tick_log WHERE label = 'persist'"), (r) => r.length >= 1, 'first tick');
    await server.restart();
    const before = (await sqlRows(server, "SELECT * FROM tick_log WHERE label = 'persist'")).length;
    await eventually(() => sqlRows(server, "SELECT * FROM tick_log WHERE label = 'persist'"), (r) => r.length >= before + 2, 'ticks after restart');
    assert.equal((await cli(server, ['call', dbName, 'stop_tickers'])).code, 0);
  });
});

describe('procedures', () => {
  test('spacetime call prints a procedure\'s return value as JSON', async () => {
    const greet = await cli(server, ['call', dbName, 'greet', 'Bob']);
    assert.equal(greet.code, 0, greet.stderr);
    assert.equal(greet.stdout.trim(), '"Hello, Bob!"');
    const pair = await cli(server, ['call', dbName, 'pair', '3', '4']);
    assert.equal(pair.code, 0, pair.stderr);
    assert.deepEqual(JSON.parse(pair.stdout), [7, 12]);
    const boom = await cli(server, ['call', dbName, 'explode']);
    assert.notEqual(boom.code, 0);
    assert.match(boom.stderr, /procedure exploded/);
  });

  test('withTx commits (seen by an SDK subscriber) and rolls back on throw', async () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const conn = await new Promise<any>((resolve, reject) => {
      bindings.DbConnection.builder().withUri(server.url).withDatabaseName(dbName)
        .onConnect((c: unknown) => resolve(c)).onConnectError((_ctx: unknown, err: Error) => reject(err)).build();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        conn.subscriptionBuilder().onApplied(() => resolve()).onError((ctx: { event?: Error }) => reject(ctx.event))
          .subscribe(['SELECT * FROM item']);
      });
      const seen = new Promise<string>((resolve) => conn.db.item.onInsert((_ctx: unknown, row: { id: number; name: string }) => { if (row.id === 7) resolve(row.name); }));
      assert.equal(await conn.procedures.greet({ name: 'Ann' }), 'Hello, Ann!');
      const count = await conn.procedures.addItem({ id: 7, name: 'seven' });
      assert.equal(typeof count, 'bigint');
      assert.equal(await seen, 'seven');
      const rolled = await conn.procedures.addItemThenFail({ id: 8 });
      assert.match(rolled, /^rolled back: abort this transaction; count \d+$/);
      assert.equal((await sqlRows(server, 'SELECT * FROM item WHERE id = 8')).length, 0);
      await assert.rejects(conn.procedures.explode({}), /procedure exploded/);
    } finally {
      conn.disconnect();
    }
  });

  test('outbound HTTP reaches a local server when allowed; inside withTx it is WouldBlockTransaction', async () => {
    const res = await cli(server, ['call', dbName, 'fetch_text', `${localUrl}/hello?q=1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout), '200 got POST /hello?q=1 ping yes');
    const inTx = await cli(server, ['call', dbName, 'fetch_in_tx', `${localUrl}/`]);
    assert.equal(JSON.parse(inTx.stdout), 'WouldBlockTransaction');
  });

  test('outbound HTTP to a private address is refused by default (errors.HttpError in the module)', async () => {
    await publish(strict);
    for (const url of [`${localUrl}/x?secret=1`, 'http://10.1.2.3/', 'http://[::1]/', 'http://169.254.169.254/latest']) {
      const res = await cli(strict, ['call', dbName, 'fetch_text', url]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout), 'HttpError: refusing to connect to private or special-purpose addresses', url);
    }
  });

  test('a procedure that loops forever is stopped and the database keeps serving', async () => {
    const started = Date.now();
    const spin = await cli(server, ['call', dbName, 'spin']);
    assert.notEqual(spin.code, 0);
    assert.match(spin.stderr, /time limit/);
    assert.ok(Date.now() - started < 15_000);
    const greet = await cli(server, ['call', dbName, 'greet', 'again']);
    assert.equal(greet.stdout.trim(), '"Hello, again!"');
    assert.equal((await cli(server, ['call', dbName, 'schedule_once', 'after-spin', '10'])).code, 0);
    await eventually(() => sqlRows(server, "SELECT * FROM once_log WHERE note = 'after-spin'"), (r) => r.length === 1, 'schedule after spin');
  });
});

describe('module HTTP routes', () => {
  const route = (p: string) => `${server.url}/v1/database/${dbName}/route${p}`;

  test('GET and POST routes reach their handlers; withTx works in a handler', async () => {
    const get = await fetch(route('/hello?x=1'));
    assert.equal(get.status, 200);
    assert.equal(await get.text(), `hello from GET /v1/database/${dbName}/route/hello?x=1`);
    const post = await fetch(route('/echo'), { method: 'POST', body: 'payload', headers: { 'x-echo': 'hi' } });
    assert.equal(post.status, 201);
    assert.equal(post.headers.get('x-handled'), 'yes');
    const json = await post.json() as { body: string; header: string; count: number };
    assert.equal(json.body, 'payload');
    assert.equal(json.header, 'hi');
    assert.ok(json.count >= 1);
    assert.equal((await sqlRows(server, "SELECT * FROM item WHERE name = 'payload'")).length, 1);
  });

  test('unknown path or method 404 with upstream\'s body, oversized body 413, throwing handler 500 (logged)', async () => {
    for (const res of [await fetch(route('/nope')), await fetch(route('/hello'), { method: 'POST', body: 'x' }), await fetch(route('//'))]) {
      assert.equal(res.status, 404);
      assert.equal(await res.text(), 'Database has not registered a handler for this route');
    }
    const big = await fetch(route('/echo'), { method: 'POST', body: 'x'.repeat(4096) });
    assert.equal(big.status, 413);
    const broken = await fetch(route('/broken'));
    assert.equal(broken.status, 500);
    assert.match(await logs(server), /handler broke/);
    assert.equal((await fetch(route('/hello'))).status, 200, 'still serving');
  });

  test('paths match strictly: `…/route` is "", `…/route/` is "/"', async () => {
    assert.equal(await (await fetch(route(''))).text(), 'root bare');
    assert.equal(await (await fetch(route('/'))).text(), 'root slash');
    assert.equal(await (await fetch(route('?q=1'))).text(), 'root bare');
  });
});
