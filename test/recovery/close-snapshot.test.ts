// Recovery: a graceful close snapshots when at least snapshotOnCloseMinLogBytes of log follow the newest snapshot
// (host/persistence.ts), so the next open restores instead of replaying; a small log is not snapshotted; a log
// replayed at open still counts toward that threshold; the reopened state is the same either way.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listSnapshots } from '../../src/durability/snapshot.js';
import { Database, type Caller } from '../../src/host/database.js';
import { snapshotOnCloseMinLogBytes } from '../../src/host/persistence.js';
import { fixtureBundle } from '../host/bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const quiet = { identity: 0xc200bbn, ownerIdentity: 0xabn, report: () => {} };
const memoBytes = 64 * 1024;

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'close-snap-'));
  try { await f(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** Transfers whose memos add up to about `bytes` of log. */
async function transfers(db: Database, bytes: number, tag: string): Promise<void> {
  for (let i = 0; i * memoBytes < bytes; i++) {
    const r = await db.callReducerJson('transfer', [1, 2, 1, `${tag}${i}:${'x'.repeat(memoBytes)}`], alice);
    assert.equal(r.status, 'committed');
  }
}

function logRows(db: Database): number {
  return db.datastore.rowCount(db.datastore.tableByName('transfer_log')!.tableId);
}

test('a graceful close snapshots a large log tail and not a small one; a replayed tail counts too', () => withDir(async (dir) => {
  const program = await fixtureBundle('recovery-bank');
  const snapshots = () => listSnapshots(join(dir, 'snapshots')).map((s) => s.offset);

  const small = await Database.create({ ...quiet, dataDir: dir }, program);
  await transfers(small, snapshotOnCloseMinLogBytes / 4, 'a');
  await small.close();
  assert.deepEqual(snapshots(), [], 'a quarter of the threshold: no snapshot');

  // Reopen (replays the small tail), add the rest: together over the threshold.
  const second = await Database.open({ ...quiet, dataDir: dir }, '');
  const rowsBefore = logRows(second);
  await transfers(second, snapshotOnCloseMinLogBytes * 0.9, 'b');
  const rows = logRows(second);
  assert.ok(rows > rowsBefore);
  await second.close();
  const taken = snapshots();
  assert.equal(taken.length, 1, 'replayed tail + new records passed the threshold');

  const third = await Database.open({ ...quiet, dataDir: dir }, '');
  try {
    assert.equal(logRows(third), rows, 'the snapshot holds every row');
    const r = await third.callReducerJson('transfer', [2, 1, 1, 'after'], alice);
    assert.equal(r.status, 'committed');
  } finally {
    await third.close();
  }
  assert.deepEqual(snapshots(), taken, 'one small call after the snapshot: no new one');
}));
