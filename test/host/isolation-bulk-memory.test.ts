// Issue 12 item 2 (memory beside isolation): what a database held is freed when it is closed (a delete, a
// `--delete-data` republish, the scratch database that validates it) and, after an update, what the previous
// datastore held; a migration's snapshot of the rows it copies costs no JS object per row. isolated-vm kept the syscall host of every disposed module alive through its own callbacks, and
// with it the whole closed database or the pre-update datastore: 66 MiB per 1M-row table, for the life of the
// process (in worker mode, of the worker, which serves the next database). Measured in process on a real `Database`
// (real isolate, official-library module) as ArrayBuffer bytes after a full collection: the row pages are
// ArrayBuffers, so the figure is exact rather than an RSS reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Database, type Caller } from '../../src/host/database.js';
import { buildFixture } from '../harness.js';

const rows = 300_000;
const batchRows = 100_000;
const caller: Caller = { identity: 0xc200_0007n, connectionId: 0n, jwtPayload: undefined };

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function arrayBufferBytes(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

/** JS heap outside the young generation (what outlives a few collections). */
function oldHeapBytes(): number {
  return v8.getHeapSpaceStatistics().filter((s) => !s.space_name.startsWith('new_'))
    .reduce((sum, s) => sum + s.space_used_size, 0);
}

async function loaded(program: string): Promise<Database> {
  const db = await Database.create({ identity: 0xc200_0001n, ownerIdentity: caller.identity }, program);
  for (let first = 0; first < rows; first += batchRows) {
    const r = await db.callReducerJson('load', [first, batchRows], caller);
    assert.equal(r.status, 'committed', r.status === 'committed' ? '' : r.message);
  }
  return db;
}

test('a closed database and the datastore an update replaced are freed', async () => {
  const bulk = (await buildFixture('bulk-rows')).code;
  const tagged = (await buildFixture('bulk-rows-tagged')).code;
  const base = arrayBufferBytes();

  let db: Database | undefined = await loaded(bulk);
  const table = arrayBufferBytes() - base;
  assert.ok(table > 10 * 1024 * 1024, `${rows} rows take ${table} B of pages`);
  await db.close();
  db = undefined;
  const afterClose = arrayBufferBytes() - base;
  assert.ok(afterClose < table / 4, `after close ${afterClose} B of ${table} B are still held`);

  db = await loaded(bulk);
  const heapBase = (arrayBufferBytes(), oldHeapBytes());
  let heapPeak = heapBase;
  const sampler = setInterval(() => { heapPeak = Math.max(heapPeak, oldHeapBytes()); }, 5);
  await db.update(tagged, { breakClients: true, publisher: caller.identity });
  clearInterval(sampler);
  // The rows copied were snapshotted as one Uint8Array each, kept for the whole build (so promoted to the old
  // generation: 121 B per row here); packed, only a chunk's views live at a time and die young (10 B per row).
  const heapPerRow = (heapPeak - heapBase) / rows;
  assert.ok(heapPerRow < 50, `the migration's old-generation heap peaked at ${heapPerRow.toFixed(0)} B per row above what it was`);
  const afterUpdate = arrayBufferBytes() - base;
  // The migrated table is a little wider (a u32 per row); the replaced one must be gone.
  assert.ok(afterUpdate < table * 1.5, `after the update ${afterUpdate} B are held for one table of ${table} B`);
  await db.close();
});
