// Indexes hold row ids, not keys on the JS heap (datastore/indexes.ts, rowtree.ts): 200,000 rows of a table with a
// string primary key, a u32 and a string non-unique btree and a unique u64 grow the V8 heap of the database's thread by
// a few bytes per row. Before, each index kept a key string per row in a Map or a sorted-btree: ~60-77 B per row per
// index (docs/performance.md "Stalls and secondary indexes off the heap"), ~250 B per row here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Database, type Caller } from '../../src/host/database.js';
import { fixtureBundle } from './bundle.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const owner: Caller = { identity: 0xabn, connectionId: 0x1n, jwtPayload: undefined };
const rows = 200_000;
/** Bytes of V8 heap a row may add: its index entries are typed-array slots, chunk objects are one per ~500 rows. */
const heapBytesPerRowMax = 24;

function heapUsed(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

test('200,000 rows with four indexes (string pk, u32 and string btrees, unique u64) add a few bytes of V8 heap each', async (t) => {
  const db = await Database.create({ identity: 0xc2001dn, ownerIdentity: owner.identity, report: () => {} },
    await fixtureBundle('indexed-rows'));
  try {
    const warm = await db.callReducerJson('seed', [0, 1000], owner);
    assert.equal(warm.status, 'committed');
    const before = heapUsed();
    for (let from = 1000; from < 1000 + rows; from += 20_000) {
      const r = await db.callReducerJson('seed', [from, 20_000], owner);
      assert.equal(r.status, 'committed', r.status === 'committed' ? '' : r.message);
    }
    const perRow = (heapUsed() - before) / rows;
    const [byTeam] = await db.sql('SELECT * FROM member WHERE team = 7', owner, { isOwner: true });
    assert.equal(byTeam.rows.length, (1000 + rows) / 1000, 'the u32 btree finds every row of its key');
    const [byCity] = await db.sql("SELECT * FROM member WHERE city = 'city-5'", owner, { isOwner: true });
    assert.ok(byCity.rows.length > 600, 'the string btree finds the rows of its key');
    t.diagnostic(`V8 heap: ${perRow.toFixed(1)} B per row`);
    assert.ok(perRow < heapBytesPerRowMax, `the V8 heap grew ${perRow.toFixed(1)} B per row`);
  } finally {
    await db.close();
  }
});
