// test/durability/commitlog.test.ts — append, group commit, rotation, replay, recovery, corruption, fail-stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog, CommitLogCorruptError, CommitLogFailedError } from '../../src/durability/commitlog.js';
import { encodeRecord, encodeSegmentHeader, segmentFileName, segmentHeaderBytes, recordOverheadBytes } from '../../src/durability/segment.js';
import { copyDir, payloadFor, segmentFiles, tempDir } from './helpers.js';

function appendRange(log: CommitLog, from: number, to: number): void {
  for (let i = from; i < to; i++) assert.equal(log.append(payloadFor(i)), BigInt(i));
}

function assertReplay(log: CommitLog, from: number, to: number): void {
  let expected = from;
  for (const rec of log.replay(BigInt(from))) {
    assert.equal(rec.offset, BigInt(expected));
    assert.deepEqual(rec.payload, payloadFor(expected), `payload of ${expected}`);
    expected++;
  }
  assert.equal(expected, to, 'replay ended early or late');
}

test('append/replay round trip across segment rotation, then reopen and continue', async () => {
  const dir = tempDir('roundtrip');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 600 });
  assert.equal(log.durableOffset, -1n);
  appendRange(log, 0, 150);
  await log.flush();
  assert.equal(log.durableOffset, 149n);
  assert.ok(log.stats.rotations >= 5, `rotations ${log.stats.rotations}`);
  assert.equal(segmentFiles(dir).length, log.stats.rotations + 1);
  for (const f of segmentFiles(dir).slice(0, -1)) assert.ok(fs.statSync(f).size <= 600, `${f} over the limit`);
  assertReplay(log, 0, 150);
  assertReplay(log, 77, 150);
  await log.close();
  assert.throws(() => log.append(payloadFor(0)), CommitLogFailedError);

  const reopened = CommitLog.open(dir, { segmentSizeMaxBytes: 600 });
  assert.equal(reopened.recovery.truncated, undefined);
  assert.equal(reopened.nextOffset, 150n);
  assert.equal(reopened.durableOffset, 149n);
  assert.equal(reopened.verify(), 150);
  appendRange(reopened, 150, 200);
  await reopened.close();
  const third = CommitLog.open(dir, { segmentSizeMaxBytes: 600 });
  assertReplay(third, 0, 200);
  await third.close();
});

test('a record larger than a segment gets a segment of its own', async () => {
  const dir = tempDir('big');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 200 });
  log.append(payloadFor(0, 10));
  log.append(payloadFor(1, 1000));
  log.append(payloadFor(2, 10));
  await log.close();
  const files = segmentFiles(dir);
  assert.deepEqual(files.map((f) => path.basename(f)), [0n, 1n, 2n].map(segmentFileName));
  const reopened = CommitLog.open(dir, { segmentSizeMaxBytes: 200 });
  const lengths = [...reopened.replay()].map((r) => r.payload.length);
  assert.deepEqual(lengths, [10, 1000, 10]);
  await reopened.close();
});

test('torn tail cut at every byte of the last record recovers exactly the good prefix', async () => {
  for (const segmentSizeMaxBytes of [1 << 20, 150]) { // one segment; last record alone in its segment
    const dir = tempDir('torn-src');
    const log = CommitLog.open(dir, { segmentSizeMaxBytes });
    appendRange(log, 0, 6);
    await log.close();
    const lastFile = segmentFiles(dir).at(-1)!;
    const full = fs.readFileSync(lastFile);
    const lastLen = recordOverheadBytes + payloadFor(5).length;
    const lastStart = full.length - lastLen;
    const work = tempDir('torn-work');
    for (let cut = lastStart; cut < full.length; cut++) {
      copyDir(dir, work);
      const target = path.join(work, path.basename(lastFile));
      fs.truncateSync(target, cut);
      const reports: string[] = [];
      const reopened = CommitLog.open(work, { segmentSizeMaxBytes, report: (m) => reports.push(m) });
      assert.equal(reopened.nextOffset, 5n, `cut at ${cut}`);
      assert.equal(reopened.durableOffset, 4n);
      assert.equal(reopened.recovery.truncated !== undefined, cut > lastStart, `cut at ${cut}`);
      assert.equal(reports.length, cut > lastStart ? 1 : 0);
      assert.equal(fs.statSync(target).size, lastStart);
      assert.equal(reopened.append(payloadFor(5)), 5n);
      await reopened.close();
      const again = CommitLog.open(work, { segmentSizeMaxBytes });
      assertReplay(again, 0, 6);
      assert.equal(again.recovery.truncated, undefined);
      await again.close();
    }
  }
});

test('a bit flip anywhere in the complete last record is damage, not a torn tail (issue 11 item 10); a zero-filled tail is torn', async () => {
  const dir = tempDir('lastcrc');
  const log = CommitLog.open(dir);
  appendRange(log, 0, 4);
  await log.close();
  const file = segmentFiles(dir)[0]!;
  const bytes = fs.readFileSync(file);
  const work = tempDir('lastcrc-work');
  const lastStart = bytes.length - recordOverheadBytes - payloadFor(3).length;
  for (let pos = lastStart; pos < bytes.length; pos++) {
    for (const bit of [pos % 8, 7]) { // a low bit and the top bit: the length field's high bits point far past the end
      copyDir(dir, work);
      const damaged = Buffer.from(bytes);
      damaged[pos]! ^= 1 << bit;
      const target = path.join(work, path.basename(file));
      fs.writeFileSync(target, damaged);
      assert.throws(() => CommitLog.open(work), (e: unknown) => e instanceof CommitLogCorruptError && e.file === target &&
        e.bytePosition === lastStart && e.commitOffset === 3n && e.message.includes(`byte ${lastStart}`), `flip of bit ${bit} at ${pos}`);
      assert.equal(fs.readFileSync(target).equals(damaged), true, 'a refused open changes nothing');
    }
  }
  // The same damage followed by a record that starts and breaks off (a later write torn by a crash) is still damage.
  copyDir(dir, work);
  const damaged = Buffer.from(bytes);
  damaged[lastStart + 30]! ^= 1;
  const next = Buffer.alloc(recordOverheadBytes + 8);
  encodeRecord(next, 0, 4n, 0n, new Uint8Array(8));
  fs.writeFileSync(path.join(work, path.basename(file)), Buffer.concat([damaged, next.subarray(0, 30)]));
  assert.throws(() => CommitLog.open(work), CommitLogCorruptError);

  copyDir(dir, work);
  fs.appendFileSync(path.join(work, path.basename(file)), Buffer.alloc(4096));
  const reopened = CommitLog.open(work);
  assert.equal(reopened.nextOffset, 4n);
  assert.equal(reopened.recovery.truncated!.bytesRemoved, 4096);
  await reopened.close();
  for (const zeros of [recordOverheadBytes, recordOverheadBytes + 1]) { // zeros exactly a header+trailer long, too
    copyDir(dir, work);
    fs.appendFileSync(path.join(work, path.basename(file)), Buffer.alloc(zeros));
    const again = CommitLog.open(work);
    assert.equal(again.nextOffset, 4n, `${zeros} zero bytes`);
    await again.close();
  }
});

test('a bit flipped anywhere in a non-last record is detected, naming file, byte and offset', async () => {
  for (const segmentSizeMaxBytes of [1 << 20, 400]) {
    const dir = tempDir('flip-src');
    const log = CommitLog.open(dir, { segmentSizeMaxBytes });
    appendRange(log, 0, 12);
    await log.close();
    // Map every record to (file, start, end) by walking the files with the known payload sizes.
    const records: { file: string; start: number; end: number; offset: number }[] = [];
    let offset = 0;
    for (const file of segmentFiles(dir)) {
      let pos = segmentHeaderBytes;
      const size = fs.statSync(file).size;
      while (pos < size) {
        const end = pos + recordOverheadBytes + payloadFor(offset).length;
        records.push({ file, start: pos, end, offset });
        pos = end;
        offset++;
      }
    }
    assert.equal(records.length, 12);
    const work = tempDir('flip-work');
    copyDir(dir, work);
    let checked = 0;
    for (const rec of records.slice(0, -1)) {
      const name = path.basename(rec.file);
      const target = path.join(work, name);
      const original = fs.readFileSync(target);
      for (let pos = rec.start; pos < rec.end; pos++) {
        const bytes = Buffer.from(original);
        bytes[pos]! ^= 1 << (pos % 8);
        fs.writeFileSync(target, bytes);
        let err: unknown;
        try {
          const reopened = CommitLog.open(work, { segmentSizeMaxBytes });
          try {
            reopened.verify();
          } finally {
            await reopened.close();
          }
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof CommitLogCorruptError, `flip at ${name}:${pos} not detected (${String(err)})`);
        assert.equal(err.file, target);
        assert.equal(err.bytePosition, rec.start, `flip at ${name}:${pos}`);
        assert.ok(err.message.includes(target) && err.message.includes(`byte ${rec.start}`), err.message);
        if (!(pos - rec.start < 20)) assert.equal(err.commitOffset, BigInt(rec.offset)); // header damage may hide it
        checked++;
      }
      fs.writeFileSync(target, original);
    }
    assert.ok(checked > 500);
  }
});

test('damaged segment headers, wrong first offsets and newer versions are refused', async () => {
  const dir = tempDir('header-src');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 300 });
  appendRange(log, 0, 20);
  await log.close();
  const files = segmentFiles(dir);
  assert.ok(files.length >= 3);
  const work = tempDir('header-work');
  for (const file of [files[0]!, files.at(-1)!]) {
    for (let pos = 0; pos < segmentHeaderBytes; pos++) {
      copyDir(dir, work);
      const target = path.join(work, path.basename(file));
      const bytes = fs.readFileSync(target);
      bytes[pos]! ^= 0x04;
      fs.writeFileSync(target, bytes);
      assert.throws(() => CommitLog.open(work), (e: unknown) => e instanceof CommitLogCorruptError && e.file === target, `${file}:${pos}`);
    }
  }
  // A segment renamed so that its name disagrees with its header.
  copyDir(dir, work);
  const last = path.join(work, path.basename(files.at(-1)!));
  fs.renameSync(last, path.join(work, segmentFileName(999n)));
  assert.throws(() => CommitLog.open(work), /file name says 999/);
  // A well-formed header of a newer format version.
  copyDir(dir, work);
  const newer = encodeSegmentHeader(0n);
  newer.writeUInt32LE(2, 8);
  const { crc32c } = await import('../../src/durability/crc32c.js');
  newer.writeUInt32LE(crc32c(newer, 0, 0, 24), 24);
  const first = path.join(work, path.basename(files[0]!));
  const bytes = fs.readFileSync(first);
  newer.copy(bytes, 0);
  fs.writeFileSync(first, bytes);
  assert.throws(() => CommitLog.open(work), /unsupported segment format version 2/);
});

test('offset gaps inside a segment and between segments are detected', async () => {
  const dir = tempDir('gap');
  const write = (name: string, first: bigint, offsets: bigint[]) => {
    const buf = Buffer.alloc(4096);
    encodeSegmentHeader(first).copy(buf, 0);
    let pos = segmentHeaderBytes;
    for (const o of offsets) pos += encodeRecord(buf, pos, o, 0n, payloadFor(o));
    fs.writeFileSync(path.join(dir, name), buf.subarray(0, pos));
  };
  write(segmentFileName(0n), 0n, [0n, 1n, 3n, 4n]);
  assert.throws(() => CommitLog.open(dir), (e: unknown) => e instanceof CommitLogCorruptError && /expected commit offset 2, found 3/.test(e.message) && e.commitOffset === 3n);

  fs.rmSync(dir, { recursive: true });
  fs.mkdirSync(dir);
  write(segmentFileName(0n), 0n, [0n, 1n, 2n]);
  write(segmentFileName(5n), 5n, [5n, 6n]);
  const log = CommitLog.open(dir); // only the last segment is scanned at open
  assert.throws(() => log.verify(), /offset gap between segments: expected first offset 3, found 5/);
  await log.close();
});

test('group commit: concurrent appenders share writes and fsyncs', async () => {
  const dir = tempDir('group');
  const log = CommitLog.open(dir);
  const appenders = 64;
  const perAppender = 20;
  await Promise.all(
    Array.from({ length: appenders }, async (_, a) => {
      for (let k = 0; k < perAppender; k++) {
        const offset = log.append(payloadFor(a * 1000 + k));
        await log.waitDurable(offset);
        assert.ok(log.durableOffset >= offset);
      }
    }),
  );
  const total = appenders * perAppender;
  assert.equal(log.stats.appends, total);
  assert.equal(log.durableOffset, BigInt(total - 1));
  assert.equal(log.stats.writes, log.stats.batches, 'one write per batch');
  assert.equal(log.stats.syncs, log.stats.batches, 'one fsync per batch');
  assert.ok(log.stats.syncs <= total / 10, `syncs ${log.stats.syncs} for ${total} appends`);
  await log.close();
});

test('waiters in any order resolve; waiting for a never-appended offset is a programming error', async () => {
  const log = CommitLog.open(tempDir('waiters'));
  appendRange(log, 0, 10);
  const order: number[] = [];
  await Promise.all([7, 2, 9, 0, 5].map((o) => log.waitDurable(BigInt(o)).then(() => order.push(o))));
  assert.equal(order.length, 5);
  assert.throws(() => log.waitDurable(10n), /never appended/);
  await log.close();
});

test('a failed fsync fails the log: waiters reject, later appends throw, nothing more becomes durable', async () => {
  const dir = tempDir('failsync');
  const log = CommitLog.open(dir, { faultInjection: { failSyncNumber: 2 } });
  await log.waitDurable(log.append(payloadFor(0)));
  assert.equal(log.durableOffset, 0n);
  const offsets = [1, 2, 3].map((i) => log.append(payloadFor(i)));
  const results = await Promise.allSettled(offsets.map((o) => log.waitDurable(o)));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof CommitLogFailedError && /EIO/.test(r.reason.message));
  }
  assert.equal(log.durableOffset, 0n);
  assert.ok(log.failed);
  assert.throws(() => log.append(payloadFor(4)), (e) => e === log.failed);
  await assert.rejects(log.waitDurable(3n), (e) => e === log.failed);
  await log.waitDurable(0n); // was durable before the failure: still true
  await assert.rejects(log.close(), CommitLogFailedError);
  // Restart recovers from disk: offset 0 at least, offsets consecutive.
  const reopened = CommitLog.open(dir);
  assert.ok(reopened.nextOffset >= 1n);
  assertReplay(reopened, 0, Number(reopened.nextOffset));
  await reopened.close();
});

test('a failed write fails the log the same way', async () => {
  const log = CommitLog.open(tempDir('failwrite'), { faultInjection: { failWriteNumber: 1 } });
  const o = log.append(payloadFor(0));
  await assert.rejects(log.waitDurable(o), CommitLogFailedError);
  assert.equal(log.durableOffset, -1n);
  assert.throws(() => log.append(payloadFor(1)), CommitLogFailedError);
  await assert.rejects(log.close());
});

test("durability 'none' acknowledges after the write and still persists on close", async () => {
  const dir = tempDir('none');
  const log = CommitLog.open(dir, { durability: 'none' });
  appendRange(log, 0, 50);
  await log.flush();
  assert.equal(log.durableOffset, 49n);
  assert.equal(log.stats.syncs, 0);
  await log.close();
  const reopened = CommitLog.open(dir);
  assertReplay(reopened, 0, 50);
  await reopened.close();
});

test('prune deletes only whole segments below the offset; replay before the start is refused', async () => {
  const dir = tempDir('prune');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 400 });
  appendRange(log, 0, 60);
  await log.flush();
  const before = segmentFiles(dir).map((f) => BigInt(path.basename(f).slice(0, 20)));
  assert.ok(before.length >= 4);
  const cut = before[2]! + 1n; // inside the third segment: the first two are entirely below
  assert.equal(log.prune(cut), 2);
  assert.equal(log.firstOffset, before[2]);
  assertReplay(log, Number(before[2]), 60);
  assert.throws(() => [...log.replay(0n)], /pruned/);
  const remaining = segmentFiles(dir).length;
  assert.equal(log.prune(10_000n), remaining - 1); // never the active segment
  assert.equal(segmentFiles(dir).length, 1);
  appendRange(log, 60, 70);
  await log.close();
  const reopened = CommitLog.open(dir, { segmentSizeMaxBytes: 400 });
  assert.equal(reopened.nextOffset, 70n);
  assertReplay(reopened, Number(reopened.firstOffset), 70);
  await reopened.close();
});

test('leftover temp files are removed; an empty last segment (crash after rotation) is resumed', async () => {
  const dir = tempDir('leftover');
  const log = CommitLog.open(dir, { segmentSizeMaxBytes: 300 });
  appendRange(log, 0, 10);
  await log.close();
  const last = segmentFiles(dir).at(-1)!;
  const first = BigInt(path.basename(last).slice(0, 20));
  fs.truncateSync(last, segmentHeaderBytes);
  fs.writeFileSync(path.join(dir, segmentFileName(first + 100n) + '.tmp'), 'partial');
  const reports: string[] = [];
  const reopened = CommitLog.open(dir, { segmentSizeMaxBytes: 300, report: (m) => reports.push(m) });
  assert.equal(reopened.nextOffset, first);
  assert.ok(reports.some((r) => /temp file/.test(r)));
  assert.equal(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp')).length, 0);
  appendRange(reopened, Number(first), Number(first) + 5);
  await reopened.close();
  const again = CommitLog.open(dir, { segmentSizeMaxBytes: 300 });
  assertReplay(again, 0, Number(first) + 5);
  await again.close();
});

test('the log directory is locked while open; a lock left by a dead process is taken over', async () => {
  const dir = tempDir('lock');
  const log = CommitLog.open(dir);
  assert.throws(() => CommitLog.open(dir), /in use by process \d+/);
  await log.close();
  const { spawnSync } = await import('node:child_process');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  fs.writeFileSync(path.join(dir, 'lock'), dead.stdout + '\n');
  const reopened = CommitLog.open(dir);
  assert.equal(fs.readFileSync(path.join(dir, 'lock'), 'utf8').trim(), String(process.pid));
  await reopened.close();
  assert.equal(fs.existsSync(path.join(dir, 'lock')), false);
});

test('an append over the record limit fails the log: every waiter rejects, later appends throw, nothing of it is written', async () => {
  const dir = tempDir('oversized');
  const log = CommitLog.open(dir, { recordPayloadMaxBytes: 1000 });
  appendRange(log, 0, 2);
  await log.flush();
  const pending = log.append(payloadFor(2)); // in the batch not yet written
  const waiting = log.waitDurable(pending);
  assert.throws(() => log.append(new Uint8Array(1001)), (e: unknown) => e instanceof CommitLogFailedError && /exceeds the record limit of 1000 bytes/.test(e.message));
  await assert.rejects(waiting, CommitLogFailedError);
  assert.throws(() => log.append(payloadFor(3)), CommitLogFailedError);
  await assert.rejects(log.close(), CommitLogFailedError);
  const reopened = CommitLog.open(dir);
  assert.equal(reopened.nextOffset, 2n, 'the batch after the failure was never written');
  assertReplay(reopened, 0, 2);
  await reopened.close();
});
