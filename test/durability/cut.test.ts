// test/durability/cut.test.ts — cutting a failed log back to its durable offset before it is reopened (durability/cut.ts,
// used when a database resumes after a commit log failure, server/databases.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommitLog } from '../../src/durability/commitlog.js';
import { cutLogAfter } from '../../src/durability/cut.js';
import { payloadFor, segmentFiles, tempDir } from './helpers.js';

async function offsets(dir: string): Promise<bigint[]> {
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 600 });
  try {
    return [...log.replay(0n)].map((r) => r.offset);
  } finally {
    await log.close();
  }
}

test('a batch whose fsync failed is written but not durable: the cut removes it, so a reopen does not serve it', async () => {
  const dir = tempDir('cut-fsync');
  const log = CommitLog.open(dir, { faultInjection: { failSyncNumber: 3 } });
  for (let i = 0; i < 2; i++) { log.append(payloadFor(i)); await log.flush(); }
  assert.equal(log.durableOffset, 1n);
  log.append(payloadFor(2));
  log.append(payloadFor(3));
  await assert.rejects(log.flush(), /fdatasync/);
  const durable = log.durableOffset;
  await log.close().catch(() => {});
  assert.equal(durable, 1n);
  // Without the cut, the reopened log would serve offsets 2 and 3: bytes the OS took but never confirmed on disk.
  const lines = cutLogAfter(dir, durable);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /truncated .* after offset 1/);
  assert.deepEqual(await offsets(dir), [0n, 1n]);
  assert.deepEqual(cutLogAfter(dir, durable), [], 'cutting again changes nothing');
});

test('the cut removes later segments and truncates the one holding the kept offset', async () => {
  const dir = tempDir('cut-segments');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 600 });
  for (let i = 0; i < 60; i++) log.append(payloadFor(i));
  await log.close();
  const before = segmentFiles(dir).length;
  assert.ok(before >= 4, `${before} segments`);
  const lines = cutLogAfter(dir, 20n);
  assert.ok(lines.some((l) => l.startsWith('removed')), lines.join('\n'));
  assert.deepEqual(await offsets(dir), Array.from({ length: 21 }, (_, i) => BigInt(i)));
  const reopened = CommitLog.open(dir, { segmentSizeMaxBytes: 600 });
  assert.equal(reopened.nextOffset, 21n);
  assert.equal(reopened.append(payloadFor(21)), 21n);
  await reopened.close();
  assert.deepEqual(cutLogAfter(dir, 100n), [], 'a log ending before the offset is left alone');
});
