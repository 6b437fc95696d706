// Host: the module log — ring buffer, NDJSON file, reload after restart, followers; record, file and read bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appendFileSync, closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { levelName, ModuleLog, removeModuleLog } from '../../src/host/module-log.js';
import { logLineBytesMax, logRecordMessageBytesMax, logRingBytesMax, logRingRecordsMax, logRotatedFilesMax } from '../../src/limits.js';

test('records go to the ring, the NDJSON file and followers; a reopened log sees old records', () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-log-'));
  try {
    const file = join(dir, 'db', 'module.log');
    const log = new ModuleLog(file);
    const followed: string[] = [];
    const off = log.follow((r) => followed.push(r.message));
    log.write('Info', 'one');
    log.write('Panic', 'two', { filename: 'src/index.ts', lineNumber: 3 });
    off();
    log.write('Warn', 'three');
    assert.deepEqual(followed, ['one', 'two']);
    assert.deepEqual(log.tail(2).map((r) => r.message), ['two', 'three']);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.level, l.message]), [['Info', 'one'], ['Panic', 'two'], ['Warn', 'three']]);
    assert.equal(lines[1].lineNumber, 3);
    assert.deepEqual(new ModuleLog(file).tail().map((r) => r.message), ['one', 'two', 'three']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the ring keeps only the newest records', () => {
  const log = new ModuleLog(undefined);
  for (let i = 0; i < logRingRecordsMax + 5; i++) log.write('Debug', String(i));
  const all = log.tail();
  assert.equal(all.length, logRingRecordsMax);
  assert.equal(all[0].message, '5');
  assert.equal(all.at(-1)!.message, String(logRingRecordsMax + 4));
});

test('console_log level numbers map to names; unknown ones are Debug', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 101, 77].map(levelName), ['Error', 'Warn', 'Info', 'Debug', 'Trace', 'Panic', 'Debug']);
});

// ---- Bounds: record size, rotation, bounded reads (issue 11 item 7, issue 15 item 5) ----------------------------------

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'host-log-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const messages = (records: Iterable<{ message: string }>) => [...records].map((r) => r.message);

test('a long message is cut to logRecordMessageBytesMax UTF-8 bytes at a character boundary, with a marker', () => {
  const log = new ModuleLog(undefined);
  const long = 'é'.repeat(logRecordMessageBytesMax);                  // 2 bytes each: twice the bound
  log.write('Info', long);
  const kept = log.tail(1)[0].message;
  const [head, marker] = kept.split('… ');
  assert.equal(Buffer.byteLength(head), logRecordMessageBytesMax);
  assert.equal(head, 'é'.repeat(logRecordMessageBytesMax / 2));
  assert.equal(marker, `[message cut: ${2 * logRecordMessageBytesMax} bytes, logRecordMessageBytesMax is ${logRecordMessageBytesMax}]`);
  log.write('Info', 'x'.repeat(logRecordMessageBytesMax));           // exactly at the bound: kept whole
  assert.equal(log.tail(1)[0].message.length, logRecordMessageBytesMax);
});

test('module.log rotates at its size bound, the oldest file is dropped, and read(n) spans the files in order', () => {
  withDir((dir) => {
    const file = join(dir, 'module.log');
    const bounds = { fileBytesMax: 512 * 1024, rotatedFilesMax: 2 };
    const log = new ModuleLog(file, bounds);
    const payload = 'p'.repeat(1000);
    const total = 2500;                                               // ~2.5 MB: five files' worth, three kept
    for (let i = 0; i < total; i++) log.write('Info', `${i} ${payload}`);
    const sizes = ['module.log', 'module.log.1', 'module.log.2'].map((f) => statSync(join(dir, f)).size);
    assert.ok(!existsSync(join(dir, 'module.log.3')), 'only rotatedFilesMax rotations are kept');
    for (const size of sizes) assert.ok(size <= bounds.fileBytesMax, `a file of ${size} bytes`);
    const index = (m: string) => Number(m.split(' ')[0]);
    assert.deepEqual(messages(log.read(5)).map(index), [2495, 2496, 2497, 2498, 2499]);
    const all = messages(log.read()).map(index);
    assert.equal(all.at(-1), total - 1);
    assert.deepEqual(all, all.map((_, i) => all[0] + i), 'every kept record, oldest first, none twice');
    assert.ok(all.length > 1000 && all[0] > 0, `kept ${all.length} records from ${all[0]}`);
    const spanning = messages(log.read(all.length - 10)).map(index);
    assert.deepEqual(spanning, all.slice(10));
    assert.deepEqual(messages(log.read(0)), []);
    // A reopened log sees the newest records and keeps appending to the same set.
    const reopened = new ModuleLog(file, bounds);
    assert.deepEqual(messages(reopened.tail(1)).map(index), [total - 1]);
    reopened.write('Info', 'after reopen');
    assert.deepEqual(messages(reopened.read(2)), [`${total - 1} ${payload}`, 'after reopen']);
  });
});

test('a cursor reads the files as they were when it was made, even across a rotation', () => {
  withDir((dir) => {
    const file = join(dir, 'module.log');
    const log = new ModuleLog(file, { fileBytesMax: 512 * 1024, rotatedFilesMax: 1 });
    for (let i = 0; i < 3; i++) log.write('Info', `before ${i}`);
    const cursor = log.read(2);
    for (let i = 0; i < 1000; i++) log.write('Info', `after ${i} ${'q'.repeat(1000)}`);   // rotates past the cursor
    assert.ok(existsSync(join(dir, 'module.log.1')));
    assert.deepEqual(messages(cursor), ['before 1', 'before 2']);
  });
});

test('reading skips torn, foreign and overlong lines and reads a bounded amount whatever is on disk', () => {
  withDir((dir) => {
    const file = join(dir, 'module.log');
    const record = (m: string) => JSON.stringify({ ts: 1, level: 'Info', message: m }) + '\n';
    writeFileSync(`${file}.1`, record('old 1') + record('old 2') + '{"torn": ');
    writeFileSync(file, 'not json\n' + 'z'.repeat(3 * logLineBytesMax) + '\n' + record('new 1') + '\n\n' + record('new 2') + '{"ts":1,"lev');
    const log = new ModuleLog(file);
    assert.deepEqual(messages(log.tail()), ['old 1', 'old 2', 'new 1', 'new 2']);
    assert.deepEqual(messages(log.read(2)), ['new 1', 'new 2']);
    assert.deepEqual(messages(log.read()), ['old 1', 'old 2', 'new 1', 'new 2']);
    // With no newline at all in the last (n + 1) lines' worth of bytes, reading stops there instead of scanning on.
    writeFileSync(file, record('lost') + 'y'.repeat(4 * logLineBytesMax));
    assert.deepEqual(messages(log.read(1)), []);
  });
});

test('a 1.5 GB module.log opens in bounded time and memory: rotated, trimmed to its newest bytes, tail in the ring', () => {
  withDir((dir) => {
    const file = join(dir, 'module.log');
    writeFileSync(`${file}.1`, JSON.stringify({ ts: 1, level: 'Info', message: 'older file' }) + '\n');
    const fd = openSync(file, 'w');
    ftruncateSync(fd, 1536 * 1024 * 1024);                           // sparse: no disk used, 1.5 GB of zero bytes
    closeSync(fd);
    appendFileSync(file, '\n' + [1, 2, 3].map((i) => JSON.stringify({ ts: i, level: 'Warn', message: `tail ${i}` }) + '\n').join(''));
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const log = new ModuleLog(file);
    const openMs = performance.now() - started;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    assert.ok(openMs < 2_000, `opened in ${openMs.toFixed(0)} ms`);
    assert.ok(rssGrowth < 64 * 1024 * 1024, `RSS grew ${rssGrowth} bytes`);
    assert.deepEqual(messages(log.tail()).slice(0, 4), ['older file', 'tail 1', 'tail 2', 'tail 3']);
    assert.match(log.tail(1)[0].message, /module\.log was 1610612\d+ bytes, over the 67108864-byte bound \(logFileBytesMax\)/);
    assert.ok(statSync(`${file}.1`).size <= logRingBytesMax, 'the oversized file keeps only its newest bytes');
    assert.equal(readFileSync(`${file}.2`, 'utf8'), JSON.stringify({ ts: 1, level: 'Info', message: 'older file' }) + '\n');
    assert.deepEqual(messages(log.read(4)), ['tail 1', 'tail 2', 'tail 3', log.tail(1)[0].message]);
  });
});

test('the ring is bounded in bytes as well as records', () => {
  const log = new ModuleLog(undefined);
  for (let i = 0; i < 200; i++) log.write('Info', `${i} ${'m'.repeat(60 * 1024)}`);
  const kept = log.tail();
  assert.ok(kept.length < 200 && kept.length * 60 * 1024 <= logRingBytesMax, `${kept.length} records kept`);
  assert.equal(kept.at(-1)!.message.split(' ')[0], '199');
});

test('removeModuleLog deletes module.log and every rotation', () => {
  withDir((dir) => {
    const file = join(dir, 'module.log');
    for (const f of [file, `${file}.1`, `${file}.${logRotatedFilesMax}`]) writeFileSync(f, '');
    removeModuleLog(file);
    assert.deepEqual(readdirSync(dir), []);
  });
});

test('mirrorLines: a mirror fed a writer\'s lines keeps the same ring; followers get every record in order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-modlog-mirror-'));
  try {
    const writer = new ModuleLog(join(dir, 'module.log'));
    let lines = '';
    const unfollow = writer.follow((_record, line) => { lines += line; });
    const n = logRingRecordsMax + 123;
    for (let i = 0; i < n; i++) writer.write(i % 3 === 0 ? 'Warn' : 'Info', `line ${i} "quoted"\tand tabbed`, { target: 'flood' });
    unfollow();

    const quietMirror = new ModuleLog(undefined);          // nobody follows: only the ring's tail is parsed
    quietMirror.mirrorLines(lines);
    assert.deepEqual(quietMirror.tail(), writer.tail());
    assert.equal(quietMirror.tail().length, logRingRecordsMax);

    const followed = new ModuleLog(undefined);
    const seen: string[] = [];
    followed.follow((record) => seen.push(record.message));
    for (const chunk of [lines.slice(0, lines.indexOf('\n', 1000) + 1), lines.slice(lines.indexOf('\n', 1000) + 1)]) followed.mirrorLines(chunk);
    assert.equal(seen.length, n);
    assert.equal(seen[0], 'line 0 "quoted"\tand tabbed');
    assert.equal(seen[n - 1], `line ${n - 1} "quoted"\tand tabbed`);
    assert.deepEqual(followed.tail(), writer.tail());

    const small = new ModuleLog(undefined);
    small.mirrorLines(lines.slice(0, lines.indexOf('\n') + 1));
    assert.deepEqual(small.tail().map((r) => r.message), ['line 0 "quoted"\tand tabbed']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
