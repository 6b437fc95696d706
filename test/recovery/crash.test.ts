// Recovery (end to end): a real server process is SIGKILLed while several HTTP clients call `transfer`, then restarted
// (fixed seed, several rounds). Every acknowledged transfer must be there, nothing partial, the total balance
// unchanged, auto_inc ids never reissued; plus restarts with several databases (deleted, reset), a corrupt log in
// one database, and client_disconnected for WebSocket clients connected at the crash.
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

const clients = 4;
const rounds = 3;
const accounts = 10;
const initialBalance = 1000;
const seed = 0x5eed;

let server: TestServer;
let configPath: string;
let token: string;
let tokenIdentity: string;
let bundle: string;

/** mulberry32: a small deterministic PRNG (fixed seed → the same kill moments and transfers every run). */
function prng(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cli = (args: string[]) => runCli(args, { configPath });

const auth = () => ({ authorization: `Bearer ${token}` });

async function sqlRows(db: string, query: string): Promise<unknown[][]> {
  const res = await fetch(`${server.url}/v1/database/${db}/sql`, { method: 'POST', headers: auth(), body: query });
  const text = await res.text();
  assert.equal(res.status, 200, `${text}\n${server.output()}`);
  return (JSON.parse(text) as { rows: unknown[][] }[])[0]!.rows;
}

async function call(db: string, reducer: string, args: unknown[]): Promise<Response> {
  return fetch(`${server.url}/v1/database/${db}/call/${reducer}`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(args),
  });
}

/** Publishes the recovery-bank module as our token's identity (raw HTTP: the owner is the identity we query as). */
async function publish(name: string, clear = false): Promise<string> {
  const res = await fetch(`${server.url}/v1/database/${name}${clear ? '?clear=true' : ''}`, { method: 'PUT', headers: auth(), body: bundle });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { Success: { database_identity: string } }).Success.database_identity;
}

before(async () => {
  bundle = (await buildFixture('recovery-bank')).code;
  server = await startTestServer();
  configPath = tempConfigPath();
  const res = await fetch(`${server.url}/v1/identity`, { method: 'POST' });
  ({ token, identity: tokenIdentity } = (await res.json()) as { token: string; identity: string });
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('kill -9 under load: every acknowledged transfer survives, nothing partial, ids never reissued', async () => {
  await publish('bank');
  const random = prng(seed);
  const acked = new Set<string>();
  const attempted = new Map<string, { from: number; to: number; amount: number }>();
  let maxIdSeen = -1n;
  for (let round = 0; round < rounds; round++) {
    let stop = false;
    let seq = 0;
    const worker = async (c: number) => {
      while (!stop) {
        const from = Math.floor(random() * accounts);
        const to = (from + 1 + Math.floor(random() * (accounts - 1))) % accounts;
        const amount = 1 + Math.floor(random() * 50);
        const nonce = `r${round}c${c}n${seq++}`;
        attempted.set(nonce, { from, to, amount });
        try {
          const res = await call('bank', 'transfer', [from, to, amount, nonce]);
          await res.text();
          if (res.status === 200) acked.add(nonce);
        } catch {
          return; // the server died under us
        }
      }
    };
    const load = Promise.all(Array.from({ length: clients }, (_, c) => worker(c)));
    await new Promise((r) => setTimeout(r, 200 + Math.floor(random() * 400)));
    await server.kill('SIGKILL');
    stop = true;
    await load;
    await server.restart();

    const logRows = await sqlRows('bank', 'SELECT * FROM transfer_log');
    const present = new Map(logRows.map((r) => [String(r[1]), BigInt(String(r[0]))]));
    for (const nonce of acked) assert.ok(present.has(nonce), `round ${round}: acknowledged transfer ${nonce} was lost`);
    const balances = new Array<bigint>(accounts).fill(BigInt(initialBalance));
    for (const [nonce] of present) {
      const t = attempted.get(nonce);
      assert.ok(t !== undefined, `unknown transfer ${nonce}`);
      balances[t.from]! -= BigInt(t.amount);
      balances[t.to]! += BigInt(t.amount);
    }
    const accountRows = await sqlRows('bank', 'SELECT id, balance FROM accounts');
    assert.equal(accountRows.length, accounts);
    for (const [id, balance] of accountRows) {
      assert.equal(BigInt(String(balance)), balances[Number(id)], `round ${round}: account ${id} disagrees with the transfer log (a partial transaction?)`);
    }
    assert.equal(accountRows.reduce((sum, r) => sum + BigInt(String(r[1])), 0n), BigInt(accounts * initialBalance));
    const ids = [...present.values()];
    assert.equal(new Set(ids).size, ids.length);
    // Ids handed out after a restart are above everything handed out before it (upstream once reissued them).
    const probe = await call('bank', 'transfer', [0, 1, 1, `probe${round}`]);
    assert.equal(probe.status, 200, await probe.text());
    acked.add(`probe${round}`);
    attempted.set(`probe${round}`, { from: 0, to: 1, amount: 1 });
    const [probeRow] = await sqlRows('bank', `SELECT id FROM transfer_log WHERE nonce = 'probe${round}'`);
    const probeId = BigInt(String(probeRow![0]));
    for (const id of ids) maxIdSeen = id > maxIdSeen ? id : maxIdSeen;
    assert.ok(probeId > maxIdSeen, `round ${round}: id ${probeId} after restart is not above ${maxIdSeen}`);
    maxIdSeen = probeId;
    assert.ok(acked.size > round * 5, `round ${round}: the load made progress (${acked.size} acknowledged)`);
  }
});

test('restart with several databases: deleted stays deleted, reset keeps only new data, names and rows restored', async () => {
  await publish('keep');
  const resetIdentity = await publish('wipe');
  await publish('gone');
  for (const db of ['keep', 'wipe', 'gone']) assert.equal((await call(db, 'transfer', [1, 2, 10, `${db}-1`])).status, 200);
  assert.equal((await fetch(`${server.url}/v1/database/gone`, { method: 'DELETE', headers: auth() })).status, 200);
  assert.equal(await publish('wipe', true), resetIdentity);
  assert.equal((await call('wipe', 'transfer', [3, 4, 5, 'wipe-2'])).status, 200);
  await server.kill('SIGKILL');
  await server.restart();
  assert.deepEqual((await sqlRows('keep', 'SELECT nonce FROM transfer_log')).map((r) => r[0]), ['keep-1']);
  assert.deepEqual((await sqlRows('wipe', 'SELECT nonce FROM transfer_log')).map((r) => r[0]), ['wipe-2']);
  assert.deepEqual((await sqlRows('wipe', 'SELECT balance FROM accounts WHERE id = 1')).map((r) => Number(r[0])), [initialBalance]);
  assert.equal((await call('gone', 'transfer', [1, 2, 1, 'x'])).status, 404);
  const byIdentity = await call(resetIdentity, 'transfer', [5, 6, 1, 'by-identity']);
  assert.equal(byIdentity.status, 200);
});

test('client_disconnected runs on restart for WebSocket clients connected at the crash', async () => {
  await publish('lobby');
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/lobby/subscribe`, 'v2.bsatn.spacetimedb', {
    headers: { authorization: `Bearer ${token}` },
  });
  await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject); });
  // Only this client's events: the CLI's own SQL requests connect too.
  const mine = async () => (await sqlRows('lobby', 'SELECT * FROM client_events'))
    .filter((r) => JSON.stringify(r[0]).includes(tokenIdentity)).map((r) => r[1]);
  assert.deepEqual(await mine(), ['connect']);
  await server.kill('SIGKILL');
  ws.terminate();
  await server.restart();
  assert.deepEqual(await mine(), ['connect', 'disconnect']);
});

test('a corrupt commit log stops only that database, with the file and byte offset', async () => {
  const identity = await publish('broken');
  await publish('healthy');
  for (let i = 0; i < 5; i++) assert.equal((await call('broken', 'transfer', [1, 2, 1, `b${i}`])).status, 200);
  await server.stop();
  const clog = path.join(server.dataDir, 'databases', identity, 'clog');
  const segment = path.join(clog, readdirSync(clog).filter((f) => f.endsWith('.stdb.log')).sort()[0]!);
  // Flip one byte well inside the log (the program record is first and large): checksum mismatch mid-log.
  const at = Math.floor(statSync(segment).size / 2);
  const fd = openSync(segment, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0x40;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
  await server.restart();
  const res = await call('broken', 'transfer', [1, 2, 1, 'after']);
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.match(text, /commit log corrupt/);
  assert.ok(text.includes(segment), `the message names the file: ${text}`);
  assert.match(text, /byte \d+/);
  assert.match(server.output(), /failed to open database [0-9a-f]{64}: commit log corrupt/);
  assert.equal((await call('healthy', 'transfer', [1, 2, 1, 'ok'])).status, 200);
  assert.equal((await call('bank', 'transfer', [1, 2, 1, 'ok'])).status, 200);
  const debug = await cli(['debug', 'log', path.join(server.dataDir, 'databases', identity)]);
  assert.equal(debug.code, 0, debug.stderr);
  assert.match(debug.stdout, /segment 0+\.stdb\.log/);
});
