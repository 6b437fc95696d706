// Oversized transactions (issue 11 item 8): a transaction too large for one commit-log record used to be committed
// in memory and acknowledged, while the failed append never reached the disk. Now it is refused before the in-memory
// commit (limits.ts txWriteBytesMax: the reducer fails and rolls back with an error naming the limit, procedures'
// withTx too), and should anything still fail to append, every waiter fails — nothing unwritten is acknowledged.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller } from '../../src/host/database.js';
import { DatabaseFailedError } from '../../src/host/recovery.js';
import { fixtureBundle } from '../host/bundle.js';
import { buildFixture, cleanupTempDirs, startTestServer } from '../harness.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const quiet = { identity: 0xc200aan, ownerIdentity: 0xabn, report: () => {} };
const dirs: string[] = [];
const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'oversized-tx-')); dirs.push(d); return d; };
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); cleanupTempDirs(); });

function blobCount(db: Database): number {
  return db.datastore.rowCount(db.datastore.tableByName('blob')!.tableId);
}

test('a transaction over txWriteBytesMax fails before its commit, from a reducer and from withTx; nothing of it survives', async () => {
  const dir = tempDir();
  const limit = 64 * 1024;
  const db = await Database.create({ ...quiet, dataDir: dir, txWriteBytesMax: limit }, await fixtureBundle('big-tx'));
  const big = await db.callReducerJson('insert_many', [0, 100, 1000], alice); // ~100 KB of rows
  assert.equal(big.status, 'failed');
  assert.match((big as { message: string }).message, /too large.*txWriteBytesMax = 65536 bytes/);
  assert.equal(blobCount(db), 0, 'rolled back');
  const small = await db.callReducerJson('insert_many', [0, 10, 1000], alice);
  assert.equal(small.status, 'committed');
  const proc = await db.callProcedureJson('insert_many_proc', [1000, 100, 1000], alice);
  assert.equal(proc.status, 'internal');
  assert.equal(blobCount(db), 10, 'the procedure transaction rolled back');
  assert.ok(db.logs.tail(20).some((r) => /txWriteBytesMax/.test(r.message)), 'the module log says why');
  const fine = await db.callProcedureJson('insert_many_proc', [2000, 5, 1000], alice);
  assert.equal(fine.status, 'returned');
  await db.close();
  const reopened = await Database.open({ ...quiet, dataDir: dir }, 'unused');
  try {
    assert.equal(blobCount(reopened), 15);
  } finally {
    await reopened.close();
  }
});

test('a commit whose log append fails is never acknowledged: that call and every later one fail (failed append fails every waiter)', async () => {
  const dir = tempDir();
  // The relation txWriteBytesMax < record limit deliberately broken (test-only record limit), to reach the backstop.
  // The Program record (the ~1 MB bundle) must fit; a 2 MB transaction must not.
  const program = await fixtureBundle('big-tx');
  const options = { ...quiet, dataDir: dir, txWriteBytesMax: 8 * 1024 * 1024, recordPayloadMaxBytes: Buffer.byteLength(program) + 32 * 1024 };
  const db = await Database.create(options, program);
  assert.equal((await db.callReducerJson('insert_many', [0, 2, 100], alice)).status, 'committed');
  // Committed in memory, refused by the log. Before the fix this resolved as 'committed' and was never written.
  await assert.rejects(db.callReducerJson('insert_many', [100, 2000, 1000], alice), DatabaseFailedError);
  await assert.rejects(db.callReducerJson('insert_many', [5000, 1, 10], alice), DatabaseFailedError);
  await db.close().catch(() => {});
  const reopened = await Database.open({ ...quiet, dataDir: dir }, 'unused');
  try {
    assert.equal(blobCount(reopened), 2, 'what was acknowledged is there, nothing else');
  } finally {
    await reopened.close();
  }
});

test('through the real server: the oversized call answers with the limit, the server keeps serving, kill -9 loses nothing', async () => {
  const previous = process.env.SPACETIME_TX_WRITE_BYTES_MAX;
  process.env.SPACETIME_TX_WRITE_BYTES_MAX = String(64 * 1024); // inherited by the server process
  let server;
  try {
    server = await startTestServer();
  } finally {
    if (previous === undefined) delete process.env.SPACETIME_TX_WRITE_BYTES_MAX;
    else process.env.SPACETIME_TX_WRITE_BYTES_MAX = previous;
  }
  try {
    const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    const headers = { authorization: `Bearer ${token}` };
    const published = await fetch(`${server.url}/v1/database/bigtx`, { method: 'PUT', headers, body: (await buildFixture('big-tx')).code });
    assert.equal(published.status, 200, await published.text());
    const call = (args: unknown[]) => fetch(`${server!.url}/v1/database/bigtx/call/insert_many`, {
      method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(args),
    });
    const count = async () => {
      const res = await fetch(`${server!.url}/v1/database/bigtx/sql`, { method: 'POST', headers, body: 'SELECT * FROM blob' });
      assert.equal(res.status, 200);
      return ((await res.json()) as { rows: unknown[] }[])[0]!.rows.length;
    };
    const big = await call([0, 100, 1000]);
    assert.equal(big.status, 530);
    assert.match(await big.text(), /txWriteBytesMax = 65536 bytes/);
    const small = await call([0, 10, 1000]);
    assert.equal(small.status, 200, await small.text());
    assert.equal(await count(), 10);
    await server.kill('SIGKILL');
    await server.restart();
    assert.equal(await count(), 10, 'after kill -9: exactly what was acknowledged');
    assert.equal((await call([10, 5, 1000])).status, 200, 'still serving');
  } finally {
    await server.stop();
  }
});
