// test/durability/inspect.test.ts — describeLog reports segments, records and damage without repairing anything;
// truncateAtDamage is the operator's explicit cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog, CommitLogCorruptError } from '../../src/durability/commitlog.js';
import { describeLog, truncateAtDamage } from '../../src/durability/inspect.js';
import { segmentHeaderBytes } from '../../src/durability/segment.js';
import { payloadFor, segmentFiles, tempDir } from './helpers.js';

test('describeLog lists segments, ranges and records, and reports corruption in place', async () => {
  const dir = tempDir('inspect');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 300 });
  for (let i = 0; i < 12; i++) log.append(payloadFor(i));
  await log.close();
  const text = describeLog(dir, { records: true });
  const files = segmentFiles(dir);
  assert.equal(text.split('\n').filter((l) => l.startsWith('segment ')).length, files.length);
  assert.match(text, /total: \d+ segments, 12 records, offsets 0\.\.11/);
  assert.equal(text.split('\n').filter((l) => /^ {2}offset \d+ {2}byte \d+ {2}length \d+ {2}crc 0x[0-9a-f]{8}/.test(l)).length, 12);
  assert.doesNotMatch(describeLog(dir), /^ {2}offset/m);

  const bytes = fs.readFileSync(files[0]!);
  bytes[40]! ^= 0xff;
  fs.writeFileSync(files[0]!, bytes);
  fs.appendFileSync(files.at(-1)!, Buffer.from([1, 2, 3]));
  const damaged = describeLog(dir);
  assert.match(damaged, /CORRUPT: commit log corrupt: record header checksum mismatch/);
  assert.match(damaged, /torn tail at byte \d+ .*open will truncate it/);
  assert.match(damaged, /gap: previous segment ends before offset 0/);
  assert.equal(fs.readFileSync(files[0]!).equals(bytes), true, 'inspection changes nothing');
  assert.match(describeLog(tempDir('inspect-empty')), /no segments/);
});

test('truncateAtDamage cuts at the first damaged record and removes later segments; a clean log is left alone', async () => {
  const dir = tempDir('truncate');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 300 });
  for (let i = 0; i < 12; i++) log.append(payloadFor(i));
  await log.close();
  assert.match(truncateAtDamage(dir), /no damage found/);
  const files = segmentFiles(dir);
  assert.ok(files.length >= 3);
  const target = files[1]!;
  const bytes = fs.readFileSync(target);
  bytes[segmentHeaderBytes + 30]! ^= 0x01; // the first record of the second segment
  fs.writeFileSync(target, bytes);
  const damaged = CommitLog.open(dir); // records of older segments are checked when read
  assert.throws(() => damaged.verify(), CommitLogCorruptError);
  await damaged.close();
  const firstLost = Number(path.basename(target).slice(0, 20));
  const report = truncateAtDamage(dir);
  assert.match(report, new RegExp(`truncated ${path.basename(target)} at byte ${segmentHeaderBytes}`));
  assert.match(report, new RegExp(`commit offsets from ${firstLost} on are gone`));
  assert.deepEqual(segmentFiles(dir), files.slice(0, 2));
  const reopened = CommitLog.open(dir);
  assert.equal(reopened.nextOffset, BigInt(firstLost));
  assert.equal(reopened.verify(), firstLost);
  await reopened.close();

  const held = CommitLog.open(dir); // a live holder (this process): refused
  assert.throws(() => truncateAtDamage(dir), /in use by process/);
  await held.close();
});
