// Recovery (in process): a Database with a directory logs every commit and `Database.open` rebuilds it — rows,
// sequences (no id reissued), connected clients (client_disconnected runs), resets — without running init again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller } from '../../src/host/database.js';
import { fixtureBundle } from '../host/bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const bob: Caller = { identity: 0x3333n, connectionId: 0x44n, jwtPayload: undefined };
const quiet = { identity: 0xc200aan, ownerIdentity: 0xabn, report: () => {} };

function withDir(f: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'recovery-db-'));
    try { await f(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

function total(db: Database): bigint {
  const t = db.datastore.tableByName('accounts')!;
  let sum = 0n;
  for (const row of db.datastore.scan(t.tableId)) sum += new DataView(row.buffer, row.byteOffset).getBigInt64(4, true);
  return sum;
}

function logIds(db: Database): bigint[] {
  const t = db.datastore.tableByName('transfer_log')!;
  return [...db.datastore.scan(t.tableId)].map((row) => new DataView(row.buffer, row.byteOffset).getBigUint64(0, true)).sort((a, b) => (a < b ? -1 : 1));
}

test('reopen restores rows and sequences, skips init, disconnects clients connected at the crash', withDir(async (dir) => {
  const program = await fixtureBundle('recovery-bank');
  const db = await Database.create({ ...quiet, dataDir: dir }, program);
  await db.clientConnected(alice);
  await db.clientConnected(bob);
  await db.clientDisconnected(bob);
  for (let i = 0; i < 50; i++) {
    const r = await db.callReducerJson('transfer', [i % 10, (i + 1) % 10, 7, `n${i}`], alice);
    assert.equal(r.status, 'committed');
  }
  assert.equal((await db.callReducerJson('burn_id', ['burned'], alice)).status, 'committed');
  const idsBefore = logIds(db);
  assert.equal(idsBefore.length, 50);
  await db.close(); // alice never disconnected: as if the server had crashed

  const reopened = await Database.open({ ...quiet, dataDir: dir }, 'unused: the logged program is used');
  try {
    assert.equal(total(reopened), 10_000n, 'init did not run again and every transfer is there');
    assert.deepEqual(logIds(reopened), idsBefore);
    const events = reopened.datastore.tableByName('client_events')!;
    assert.equal(reopened.datastore.rowCount(events.tableId), 4, 'alice connect, bob connect+disconnect, alice disconnect at open');
    const r = await reopened.callReducerJson('transfer', [1, 2, 1, 'after'], alice);
    assert.equal(r.status, 'committed');
    const fresh = logIds(reopened).filter((id) => !idsBefore.includes(id));
    assert.equal(fresh.length, 1);
    assert.ok(fresh[0]! > idsBefore.at(-1)! + 1n, `id ${fresh[0]} reissues a value handed out before the restart`);
  } finally {
    await reopened.close();
  }
  // A clean second reopen: alice is no longer connected, so nothing more runs.
  const again = await Database.open({ ...quiet, dataDir: dir }, '');
  try {
    assert.equal(again.datastore.rowCount(again.datastore.tableByName('client_events')!.tableId), 4);
    assert.equal(logIds(again).length, 51);
  } finally {
    await again.close();
  }
}));

test('create over an existing directory logs a reset: reopen shows only the new database', withDir(async (dir) => {
  const program = await fixtureBundle('recovery-bank');
  const db = await Database.create({ ...quiet, dataDir: dir }, program);
  await db.callReducerJson('transfer', [0, 1, 500, 'x'], alice);
  await db.close();
  const reset = await Database.create({ ...quiet, dataDir: dir }, program);
  assert.equal(logIds(reset).length, 0);
  await reset.close();
  const reopened = await Database.open({ ...quiet, dataDir: dir }, '');
  try {
    assert.equal(logIds(reopened).length, 0);
    assert.equal(total(reopened), 10_000n);
    assert.equal(reopened.datastore.rowCount(reopened.datastore.tableByName('accounts')!.tableId), 10);
  } finally {
    await reopened.close();
  }
}));

test('snapshots during commits: reopen from snapshot + tail gives the same state', withDir(async (dir) => {
  const program = await fixtureBundle('recovery-bank');
  const db = await Database.create({ ...quiet, dataDir: dir, snapshotEveryCommits: 20 }, program);
  for (let i = 0; i < 95; i++) await db.callReducerJson('transfer', [i % 10, (i + 3) % 10, i, `s${i}`], alice);
  const ids = logIds(db);
  await db.close();
  const reopened = await Database.open({ ...quiet, dataDir: dir, snapshotEveryCommits: 20 }, '');
  try {
    assert.deepEqual(logIds(reopened), ids);
    assert.equal(total(reopened), 10_000n);
  } finally {
    await reopened.close();
  }
  const { readdirSync } = await import('node:fs');
  assert.ok(readdirSync(join(dir, 'snapshots')).some((f) => f.endsWith('.snapshot')), 'a snapshot was written');
}));

test('a failed fsync is never acknowledged and stops the database; a reopen serves again', withDir(async (dir) => {
  const program = await fixtureBundle('recovery-bank');
  // Sync 1 is the creating batch (program + init); sync 2 is the first transfer; sync 3 fails.
  const db = await Database.create({ ...quiet, dataDir: dir, faultInjection: { failSyncNumber: 3 } }, program);
  assert.equal((await db.callReducerJson('transfer', [0, 1, 5, 'ok'], alice)).status, 'committed');
  await assert.rejects(db.callReducerJson('transfer', [0, 1, 5, 'lost'], alice), /stopped accepting writes.*EIO|stopped accepting writes/);
  await assert.rejects(db.callReducerJson('transfer', [0, 1, 5, 'refused'], alice), (err: Error) => err.name === 'DatabaseFailedError');
  await assert.rejects(db.sql('SELECT * FROM accounts', alice), (err: Error) => err.name === 'DatabaseFailedError');
  await db.close().catch(() => {});
  const reopened = await Database.open({ ...quiet, dataDir: dir }, '');
  try {
    const t = reopened.datastore.tableByName('transfer_log')!;
    const nonces = reopened.datastore.scan(t.tableId).map((row) => new TextDecoder().decode(row.subarray(12, 12 + row[8]!)));
    assert.ok(nonces.includes('ok'), `acknowledged transfer present: ${nonces}`);
    assert.ok(!nonces.includes('refused'));
    assert.equal(total(reopened), 10_000n);
    assert.equal((await reopened.callReducerJson('transfer', [0, 1, 5, 'again'], alice)).status, 'committed');
  } finally {
    await reopened.close();
  }
}));

test('a module update is logged: reopen loads the updated program and keeps the rows', withDir(async (dir) => {
  const program = await fixtureBundle('recovery-bank');
  const db = await Database.create({ ...quiet, dataDir: dir }, program);
  await db.callReducerJson('transfer', [0, 1, 5, 'before'], alice);
  const v2 = `${program}\n// v2\n`;
  await db.update(v2, { breakClients: false });
  await db.callReducerJson('transfer', [0, 1, 5, 'after'], alice);
  await db.close();
  const { DatabasePersistence } = await import('../../src/host/persistence.js');
  const p = await DatabasePersistence.open(dir, { durability: 'none' });
  assert.equal(p.recovered?.program.programText, v2);
  await p.persistence.close();
  const reopened = await Database.open({ ...quiet, dataDir: dir }, '');
  try {
    assert.equal(logIds(reopened).length, 2);
    assert.equal(total(reopened), 10_000n);
  } finally {
    await reopened.close();
  }
}));
