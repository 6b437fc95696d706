// Host: a write that crosses after a scan (isolate-src.ts stageWrite, noteRecentScan). A one-chunk scan's rows stay in
// the exchange buffer for a later find to take (rows from scans); an insert that crosses rewrites that buffer, so the
// scan must be forgotten first. Here the inserted row's bytes are made to look like the scan's length words and rows
// (other balances): a find after the insert must still give the stored row, as on the path where every write crosses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Caller } from '../../src/host/database.js';
import { callSummary, createOnPath, sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const moduleSource = `
import { schema, table, t } from 'spacetimedb/server';
const spacetimedb = schema({
  items: table({ name: 'items' }, { id: t.u32().primaryKey(), owner: t.u32().index('btree'), qty: t.u32() }),
  tags: table({ name: 'tags' }, { name: t.string().primaryKey(), n: t.u32() }),
});
export default spacetimedb;
export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) ctx.db.items.insert({ id, owner: id % 2, qty: 0 });
});
// A scan of more rows than are searched one key at a time, an insert that crosses (a unique key), then finds.
export const probe = spacetimedb.reducer({ owner: t.u32(), tag: t.string() }, (ctx, { owner, tag }) => {
  const rows = [...ctx.db.items.owner.filter(owner)];
  ctx.db.tags.insert({ name: tag, n: rows.length });
  for (const r of rows.slice(0, 5)) {
    const f = ctx.db.items.id.find(r.id);
    if (f === null || f.qty !== r.qty) throw new Error('item ' + r.id + ' found as ' + JSON.stringify(f));
    ctx.db.items.id.update({ ...f, qty: f.qty + 1 });
  }
});
`;

test('a find after a scan and an insert that crossed gives the stored row', async () => {
  const program = await sourceBundle(moduleSource, 'scan-then-write.ts');
  const root = mkdtempSync(join(tmpdir(), 'stdb-scan-then-write-'));
  // The tag's bytes land in the exchange buffer from byte 4: 50 length words of 12 from byte 20, then 50 rows of
  // (id 2j, owner 0, qty 99) where the scan's rows were.
  const count = 50, x = new Uint8Array(20 + 16 * count);
  for (let j = 0; j < count; j++) x[20 + 4 * j] = 12;
  for (let j = 0; j < count; j++) { x[20 + 4 * count + 12 * j] = 2 * j; x[20 + 4 * count + 12 * j + 8] = 99; }
  const tag = String.fromCharCode(...x.subarray(4));
  const results = [];
  for (const immediate of [false, true]) {
    const db = await createOnPath({ identity: 0xc700aan, ownerIdentity: alice.identity, dataDir: join(root, String(immediate)),
      clock: { nowMicros: () => 1_700_000_000_000_000n }, report: () => {} }, program, immediate);
    try {
      assert.equal((await db.callReducerJson('seed', [2 * count], alice)).status, 'committed');
      results.push(callSummary(await db.callReducerJson('probe', [0, tag], alice)));
    } finally {
      await db.close();
    }
  }
  assert.equal((results[1] as { status: string }).status, 'committed');
  assert.deepEqual(results[0], results[1]);
  rmSync(root, { recursive: true, force: true });
});
