// test/durability/inspect.test.ts — describeLog reports segments, records and damage without repairing anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CommitLog } from '../../src/durability/commitlog.js';
import { describeLog } from '../../src/durability/inspect.js';
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
