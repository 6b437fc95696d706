// A bit flip inside the last record of an acknowledged transaction (issue 11 item 10), through the real server and
// CLI: the damaged database refuses to open with its file and byte in the 503 and in the start-up log (it used to be
// cut away silently as a torn tail), every other database keeps serving, `spacetime debug log` shows the damage, and
// `spacetime debug log --truncate-at-damage` (the operator's explicit choice) drops exactly that transaction.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildFixture, cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
let token: string;
let bundle: string;
after(async () => { await server?.stop(); cleanupTempDirs(); });
before(async () => {
  bundle = (await buildFixture('big-tx')).code;
  server = await startTestServer();
  ({ token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string });
});

const auth = () => ({ authorization: `Bearer ${token}` });

async function publish(name: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/database/${name}`, { method: 'PUT', headers: auth(), body: bundle });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { Success: { database_identity: string } }).Success.database_identity;
}

function insert(name: string, first: number, count: number): Promise<Response> {
  return fetch(`${server.url}/v1/database/${name}/call/insert_many`, {
    method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify([first, count, 50]),
  });
}

async function ids(name: string): Promise<number[]> {
  const res = await fetch(`${server.url}/v1/database/${name}/sql`, { method: 'POST', headers: auth(), body: 'SELECT id FROM blob' });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { rows: number[][] }[])[0]!.rows.map((r) => r[0]!).sort((a, b) => a - b);
}

test('a flipped bit in the last acknowledged record is reported loudly, not dropped; the operator can cut it explicitly', async () => {
  const damagedId = await publish('damaged');
  await publish('healthy');
  for (const name of ['damaged', 'healthy']) {
    for (let i = 0; i < 3; i++) assert.equal((await insert(name, i * 10, 2)).status, 200);
  }
  await server.kill('SIGKILL');

  const dbDir = path.join(server.dataDir, 'databases', damagedId);
  const clog = path.join(dbDir, 'clog');
  const segment = path.join(clog, readdirSync(clog).filter((n) => n.endsWith('.stdb.log')).sort().at(-1)!);
  const bytes = readFileSync(segment);
  // Inside the last record's payload, before its 4-byte checksum. Every HTTP call logs three records (client
  // connected, the reducer's transaction, client disconnected), so the last one is an acknowledged disconnect.
  const flipAt = bytes.length - 10;
  bytes[flipAt]! ^= 0x10;
  writeFileSync(segment, bytes);

  await server.restart();
  const res = await fetch(`${server.url}/v1/database/damaged/sql`, { method: 'POST', headers: auth(), body: 'SELECT id FROM blob' });
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.match(text, /commit log corrupt: record checksum mismatch .*commit offset/);
  assert.ok(text.includes(segment) && /byte \d+/.test(text), text);
  assert.match(server.output(), /failed to open database .*commit log corrupt.*spacetime debug log/);
  assert.deepEqual(await ids('healthy'), [0, 1, 10, 11, 20, 21], 'the other database serves');
  await server.stop();

  const configPath = tempConfigPath();
  const described = await runCli(['debug', 'log', dbDir, '--records'], { configPath });
  assert.equal(described.code, 0, described.stderr);
  assert.match(described.stdout, /CORRUPT: commit log corrupt: record checksum mismatch/);
  const valid = [...described.stdout.matchAll(/^ {2}offset (\d+) /gm)].map((m) => Number(m[1]));
  const damagedOffset = valid.length; // every record before the damaged last one is listed
  const cut = await runCli(['debug', 'log', dbDir, '--truncate-at-damage'], { configPath });
  assert.equal(cut.code, 0, cut.stderr);
  assert.match(cut.stdout, /truncated \d{20}\.stdb\.log at byte \d+/);
  assert.match(cut.stdout, new RegExp(`commit offsets from ${damagedOffset} on are gone`));
  assert.doesNotMatch(cut.stdout, /CORRUPT/);

  await server.restart();
  assert.deepEqual(await ids('damaged'), [0, 1, 10, 11, 20, 21], 'only the damaged last record (no rows) was dropped');
  assert.equal((await insert('damaged', 100, 1)).status, 200, 'and it serves again');
});
