// Issue 12 item 2, the last two paths: a big query answer through the PostgreSQL wire protocol (Debian's real `psql`)
// or the legacy `v1.json.spacetimedb` WebSocket protocol must not hold the server's main thread in worker mode. Their
// 200k-row answers are rendered on the database's thread (sql/pg-messages.ts, subscription/v1-json.ts); the main
// thread only writes the bytes (pgwire) or splices them into a few fields of the message (v1 JSON). Asserted on the
// main thread's CPU time, as test/host/isolation-big-answers.test.ts does for /sql and the binary protocol.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { cleanupTempDirs, freePort, onServerMainThread, publishBulkRows, startTestServer, type TestServer } from '../harness.js';

const rows = 200_000;
/**
 * The main thread's CPU allowed per answer of `rows` rows. When the rows crossed from the worker and the main thread
 * decoded and rendered them: pgwire 531–605 ms, v1 JSON 548–638 ms; now 7–20 ms (writing ~6–10 MB to a socket).
 */
const mainThreadCpuPerAnswerMsMax = 120;

let server: TestServer;
let pgPort: number;
let token: string;

const onMainThread = <T>(fn: () => Promise<T>) => onServerMainThread(server, fn);

before(async () => {
  pgPort = await freePort();
  server = await startTestServer({ env: { SPACETIME_DATABASE_THREADS: 'worker' }, args: ['--pg-port', String(pgPort)] });
  token = await publishBulkRows(server, 'big', rows);
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

/** Debian's psql: unaligned, tuples only, `|` between fields. */
function psql(sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('psql', [`host=127.0.0.1 port=${pgPort} user=postgres dbname=big`, '-X', '-A', '-t', '-F', '|', '-c', sql], {
    env: { ...process.env, PGPASSWORD: token, PGCONNECT_TIMEOUT: '10' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

test('psql SELECT of 200k rows: rendered off the main thread', async () => {
  const { value: out, cpuMs } = await onMainThread(() => psql('SELECT * FROM row'));
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trimEnd().split('\n');
  assert.equal(lines.length, rows);
  assert.ok(lines.includes('7|row-7-of-a-bulk-load|21'), lines[7]);
  assert.ok(cpuMs < mainThreadCpuPerAnswerMsMax, `main thread CPU ${cpuMs.toFixed(0)} ms for one pgwire answer`);
});

/** A v1.json client: each text message as it came. */
async function jsonClient(): Promise<{ ws: WebSocket; next: () => Promise<string> }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/big/subscribe`, ['v1.json.spacetimedb'],
    { headers: { authorization: `Bearer ${token}` }, maxPayload: 0 });
  const got: string[] = [];
  let wake = (): void => {};
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false);
    got.push(data.toString());
    wake();
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const next = async (): Promise<string> => {
    while (got.length === 0) await new Promise<void>((r) => (wake = r));
    return got.shift()!;
  };
  return { ws, next };
}

test('v1.json SubscribeSingle, Subscribe and OneOffQuery of 200k rows: rendered off the main thread', async () => {
  const c = await jsonClient();
  try {
    assert.ok('IdentityToken' in JSON.parse(await c.next()));
    const asks = [
      { SubscribeSingle: { query: 'SELECT * FROM row', request_id: 1, query_id: { id: 1 } } },
      { Subscribe: { query_strings: ['SELECT * FROM row'], request_id: 2 } },
      { OneOffQuery: { message_id: '07', query_string: 'SELECT * FROM row' } },
    ];
    for (const ask of asks) {
      const { value: text, cpuMs } = await onMainThread(async () => {
        c.ws.send(JSON.stringify(ask));
        return c.next();
      });
      const m = JSON.parse(text) as Record<string, any>;
      const [name] = Object.keys(m);
      const texts: string[] = name === 'SubscribeApplied' ? m[name].rows.table_rows.updates[0].inserts
        : name === 'InitialSubscription' ? m[name].database_update.tables[0].updates[0].inserts
          : name === 'OneOffQueryResponse' ? m[name].tables[0].rows : [];
      assert.equal(texts.length, rows, `${Object.keys(ask)[0]}: ${text.slice(0, 300)}`);
      assert.ok(texts.includes('[7,"row-7-of-a-bulk-load",21]'));
      assert.ok(cpuMs < mainThreadCpuPerAnswerMsMax, `main thread CPU ${cpuMs.toFixed(0)} ms for one ${name}`);
    }
  } finally {
    c.ws.close();
  }
});
