// Host: the module log — ring buffer, NDJSON file, reload after restart, followers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { levelName, logRingRecordsMax, ModuleLog } from '../../src/host/module-log.js';

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
