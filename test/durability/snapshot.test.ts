// test/durability/snapshot.test.ts — atomic snapshot files, retention, fallback past corrupt or too-new snapshots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { listSnapshots, readNewestValidSnapshot, snapshotFileName, snapshotHeaderBytes, snapshotsKeepCount, writeSnapshot } from '../../src/durability/snapshot.js';
import { payloadFor, tempDir } from './helpers.js';

test('write, list and read back; only the newest snapshotsKeepCount are kept', async () => {
  const dir = path.join(tempDir('snap'), 'snapshots');
  assert.deepEqual(listSnapshots(dir), []);
  assert.equal(readNewestValidSnapshot(dir, 1000n), undefined);
  for (const offset of [10n, 20n, 30n, 40n]) await writeSnapshot(dir, offset, payloadFor(offset, 5000));
  const listed = listSnapshots(dir);
  assert.equal(listed.length, snapshotsKeepCount);
  assert.deepEqual(listed.map((s) => s.offset), [40n, 30n].slice(0, snapshotsKeepCount));
  assert.deepEqual(fs.readdirSync(dir).sort(), listed.map((s) => path.basename(s.path)).sort(), 'no temp files left');
  const snap = readNewestValidSnapshot(dir, 1000n);
  assert.equal(snap?.offset, 40n);
  assert.deepEqual(snap?.payload, payloadFor(40n, 5000));
  const empty = await writeSnapshot(dir, 50n, new Uint8Array(0)).then(() => readNewestValidSnapshot(dir, 50n));
  assert.equal(empty?.payload.length, 0);
});

test('a corrupt newest snapshot falls back to the previous valid one and is retired', async () => {
  for (const damage of ['flip-payload', 'flip-header', 'truncate', 'empty'] as const) {
    const dir = tempDir(`snapbad-${damage}`);
    await writeSnapshot(dir, 5n, payloadFor(5n, 300));
    await writeSnapshot(dir, 9n, payloadFor(9n, 300));
    const newest = path.join(dir, snapshotFileName(9n));
    const bytes = fs.readFileSync(newest);
    if (damage === 'flip-payload') bytes[snapshotHeaderBytes + 100]! ^= 1;
    if (damage === 'flip-header') bytes[17]! ^= 1;
    fs.writeFileSync(newest, damage === 'truncate' ? bytes.subarray(0, bytes.length - 1) : damage === 'empty' ? Buffer.alloc(0) : bytes);
    const reports: string[] = [];
    const snap = readNewestValidSnapshot(dir, 100n, (m) => reports.push(m));
    assert.equal(snap?.offset, 5n, damage);
    assert.deepEqual(snap?.payload, payloadFor(5n, 300));
    assert.equal(reports.length, 1);
    assert.ok(reports[0]!.includes(newest), reports[0]);
    assert.ok(fs.existsSync(newest + '.invalid'));
    assert.deepEqual(listSnapshots(dir).map((s) => s.offset), [5n]);
  }
});

test('every single-bit flip of a snapshot file is detected', async () => {
  const dir = tempDir('snapflip');
  await writeSnapshot(dir, 3n, payloadFor(3n, 64));
  const file = path.join(dir, snapshotFileName(3n));
  const original = fs.readFileSync(file);
  for (let pos = 0; pos < original.length; pos++) {
    const bytes = Buffer.from(original);
    bytes[pos]! ^= 1 << (pos % 8);
    fs.writeFileSync(file, bytes);
    assert.equal(readNewestValidSnapshot(dir, 100n), undefined, `flip at ${pos}`);
    fs.renameSync(file + '.invalid', file);
  }
});

test('snapshots ahead of the durable log are retired, never used', async () => {
  const dir = tempDir('snapahead');
  await writeSnapshot(dir, 100n, payloadFor(100n));
  await writeSnapshot(dir, 200n, payloadFor(200n));
  const reports: string[] = [];
  assert.equal(readNewestValidSnapshot(dir, 150n, (m) => reports.push(m))?.offset, 100n);
  assert.match(reports[0]!, /ahead of the durable log/);
  assert.equal(readNewestValidSnapshot(dir, 1000n)?.offset, 100n, 'stays retired');
});
