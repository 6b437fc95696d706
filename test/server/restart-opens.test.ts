// Restart (issue 12, "restart waits"): a restarted server answers at once and opens each database in the background
// (server/databases.ts "Opening at start"). A real server holds a big database (1M rows: its open replays for over a
// second), a small one and one whose commit log is damaged; it is killed with SIGKILL and restarted. While the big one
// still opens, /v1/ping and the small database answer; a call, an SQL query, a WebSocket connect and a rename of the big
// one wait and then succeed, with every row; the damaged one gets today's 503 with its why. A server whose wait limit
// is shorter than the big open answers 503 naming the database, that it is still opening, and the limit. A shutdown
// while it opens ends cleanly.
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { cleanupTempDirs, publishBulkRows, startTestServer, type TestServer } from '../harness.js';

const bigRows = 1_000_000;
const smallRows = 10;

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.stop();
  cleanupTempDirs();
});

async function sql(server: TestServer, db: string, token: string, query: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}/v1/database/${db}/sql`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: query });
  return { status: res.status, text: await res.text() };
}

async function rowCount(server: TestServer, db: string, token: string): Promise<number> {
  const { status, text } = await sql(server, db, token, 'SELECT COUNT(*) AS n FROM row');
  assert.equal(status, 200, `${db}: ${text}\n${server.output().slice(-2000)}`);
  return Number((JSON.parse(text) as { rows: number[][] }[])[0]!.rows[0]![0]);
}

function load(server: TestServer, db: string, token: string, first: number, count: number): Promise<Response> {
  return fetch(`${server.url}/v1/database/${db}/call/load`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify([first, count]),
  });
}

/** The number of databases open (served) now, from GET /v1/metrics `spacetime_databases`. */
async function databasesOpen(server: TestServer): Promise<number> {
  const text = await (await fetch(`${server.url}/v1/metrics`)).text();
  const line = /^spacetime_databases (\d+)$/m.exec(text);
  assert.ok(line !== null, 'spacetime_databases is reported');
  return Number(line[1]);
}

/** The WebSocket upgrade's outcome: 'open', or the HTTP status and body it was refused with. */
function connect(server: TestServer, db: string, token: string): Promise<{ opened: true } | { status: number; body: string }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/${db}/subscribe`, 'v2.bsatn.spacetimedb', {
    headers: { authorization: `Bearer ${token}` },
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close();
      resolve({ opened: true });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

/** Flips one byte in the middle of the database's first log segment: a checksum mismatch mid-log. */
function damageLog(dataDir: string, identityHex: string): void {
  const clog = path.join(dataDir, 'databases', identityHex, 'clog');
  const segment = path.join(clog, readdirSync(clog).filter((f) => f.endsWith('.stdb.log')).sort()[0]!);
  const at = Math.floor(statSync(segment).size / 2);
  const fd = openSync(segment, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  byte[0] = byte[0]! ^ 0x40;
  writeSync(fd, byte, 0, 1, at);
  closeSync(fd);
}

async function identityOf(server: TestServer, db: string): Promise<string> {
  return (await fetch(`${server.url}/v1/database/${db}/identity`)).text();
}

test('after kill -9 the server answers at once; the big database opens in the background and requests to it wait', async () => {
  const server = await startTestServer();
  servers.push(server);
  const bigToken = await publishBulkRows(server, 'big', bigRows);
  const smallToken = await publishBulkRows(server, 'small', smallRows);
  const damagedToken = await publishBulkRows(server, 'damaged', 1000);
  const bigHex = await identityOf(server, 'big');
  const damagedHex = await identityOf(server, 'damaged');
  await server.kill('SIGKILL');
  damageLog(server.dataDir, damagedHex);

  await server.restart(); // returns at the first /v1/ping answer
  let bigAnswered = false;
  const bigCall = load(server, 'big', bigToken, bigRows, 1).then((res) => {
    bigAnswered = true;
    return res;
  });
  const bigConnect = connect(server, 'big', bigToken);
  // A control operation on the opening database waits for its open, then runs in the registry's queue.
  let renamed = false;
  const bigRename = fetch(`${server.url}/v1/database/big/names`, {
    method: 'PUT', headers: { authorization: `Bearer ${bigToken}` }, body: JSON.stringify(['big', 'big-renamed']),
  }).then((res) => {
    renamed = true;
    return res;
  });

  assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
  assert.equal(await rowCount(server, 'small', smallToken), smallRows);
  assert.equal((await load(server, 'small', smallToken, smallRows, 1)).status, 200);
  assert.equal(await rowCount(server, 'small', smallToken), smallRows + 1);
  assert.equal(await databasesOpen(server), 1, 'only the small database is open: the big one is still opening');
  assert.equal(bigAnswered, false, 'the small database answered while the call to the big one waited');
  assert.equal(renamed, false, 'the rename of the big database waits for its open');

  const damaged = await sql(server, 'damaged', damagedToken, 'SELECT COUNT(*) AS n FROM row');
  assert.equal(damaged.status, 503, damaged.text);
  assert.match(damaged.text, new RegExp(`Database ${damagedHex} is not running: commit log corrupt`));
  const damagedConnect = await connect(server, 'damaged', damagedToken);
  assert.ok('status' in damagedConnect && damagedConnect.status === 503 && /commit log corrupt/.test(damagedConnect.body),
    JSON.stringify(damagedConnect));

  const called = await bigCall;
  assert.equal(called.status, 200, await called.text());
  assert.deepEqual(await bigConnect, { opened: true });
  assert.equal((await bigRename).status, 200);
  assert.equal(await rowCount(server, 'big-renamed', bigToken), bigRows + 1, 'every row is there');
  assert.equal(await databasesOpen(server), 2);

  // A wait limit shorter than the big open: the request is answered 503 in time, and the open goes on.
  await server.kill('SIGKILL');
  const impatient = await startTestServer({ dataDir: server.dataDir, env: { SPACETIME_DATABASE_OPEN_WAIT_MS: '100' } });
  servers.push(impatient);
  const late = await sql(impatient, 'big', bigToken, 'SELECT COUNT(*) AS n FROM row');
  assert.equal(late.status, 503, late.text);
  assert.match(late.text, new RegExp(`Database ${bigHex} is still opening .* waited 100 ms, the server's limit \\(SPACETIME_DATABASE_OPEN_WAIT_MS\\)`));
  let answer = late;
  while (answer.status === 503 && /still opening/.test(answer.text)) answer = await sql(impatient, 'big', bigToken, 'SELECT COUNT(*) AS n FROM row');
  assert.equal(answer.status, 200, answer.text);
  assert.match(answer.text, new RegExp(`\\[\\[${bigRows + 1}\\]\\]`));

  // Shutdown while the big database opens: no new open starts, the one under way ends, the process exits cleanly.
  await impatient.kill('SIGKILL');
  const stopped = await startTestServer({ dataDir: server.dataDir });
  servers.push(stopped);
  const waiting = sql(stopped, 'big', bigToken, 'SELECT COUNT(*) AS n FROM row').catch((error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the request reaches the server and waits
  await stopped.stop();
  assert.equal(stopped.pid(), undefined, 'the server exited');
  await waiting;
  assert.doesNotMatch(stopped.output(), /fatal|internal error|unhandled/i);
});
