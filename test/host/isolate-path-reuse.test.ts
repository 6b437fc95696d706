// Host: what the shims (isolate-src.ts) reuse from one scan or update to the next, against the immediate path
// (SPACETIME_IMMEDIATE_WRITES=1: nothing cached, every scan and update crosses). Iterator objects a reducer call
// dropped are reused by its next scans: an id already drained must stay unknown while a new iterator holds the reused
// object. The row cache remembers the entry a scan found or stored last, so that the update of a found row skips a
// second lookup: that entry must follow the row when an update moves it in the cache's arena (a longer row), and must
// not answer for another row, nor after a crossing emptied the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, type Caller } from '../../src/host/database.js';
import { accountScanSource, createOnPath, sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };

const moduleSource = `
import { schema, table, t } from 'spacetimedb/server';
import {
  index_id_from_name, datastore_index_scan_point_bsatn, row_iter_bsatn_advance, row_iter_bsatn_close,
} from 'spacetime:sys@2.0';
const spacetimedb = schema({
  accounts: table({ name: 'accounts' }, {
    id: t.u32().primaryKey(), balance: t.i64(), owner: t.string(),
  }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) ctx.db.accounts.insert({ id, balance: 100n * BigInt(id), owner: 'owner-' + id });
});
${accountScanSource}
const show = (r) => r === undefined ? '-' : r.id + ':' + r.balance + ':' + r.owner;
// Drained iterators' objects are reused by the next scans; their ids must not reach them.
export const reuse = spacetimedb.reducer({ a: t.u32(), b: t.u32() }, (ctx, { a, b }) => {
  const ix = index_id_from_name('accounts_id_idx_btree'), byId = ctx.db.accounts.id;
  byId.find(a); byId.find(b);
  const first = open(ix, a);
  const seen = [drain(first).join('|')];
  const second = open(ix, b), third = open(ix, a);
  for (const stale of [first, second - 1000]) {
    try { row_iter_bsatn_advance(stale, out); seen.push('advanced ' + stale); } catch (e) { seen.push('stale'); }
  }
  try { row_iter_bsatn_close(first); seen.push('closed'); } catch (e) { seen.push('close: ' + e.message); }
  seen.push(drain(third).join('|'), drain(second).join('|'));
  console.info('reuse ' + seen.join(' / '));
});
// Updates of found rows that move them in the arena (longer, then as long as before), interleaved with finds and
// updates of another row, and a crossing that empties the cache between a find and its update.
export const moves = spacetimedb.reducer({ a: t.u32(), b: t.u32() }, (ctx, { a, b }) => {
  const byId = ctx.db.accounts.id;
  const seen = [];
  let ra = byId.find(a);
  byId.update({ ...ra, balance: ra.balance + 1n, owner: ra.owner + '-longer' });
  byId.update({ ...ra, balance: ra.balance + 2n, owner: ra.owner });
  seen.push(show(byId.find(a)));
  const rb = byId.find(b);
  byId.update({ ...ra, balance: ra.balance + 3n });
  seen.push(show(byId.find(a)), show(byId.find(b)));
  byId.update({ ...rb, balance: rb.balance + 4n, owner: 'b' });
  seen.push(show(byId.find(b)));
  byId.update({ ...rb, balance: rb.balance + 5n, owner: rb.owner + '-again' });
  byId.update({ ...ra, balance: ra.balance + 7n, owner: 'a' });
  seen.push(show(byId.find(b)), show(byId.find(a)));
  ra = byId.find(a);
  byId.delete(1000);                            // a crossing that may remove rows: the cache starts over
  byId.update({ ...ra, balance: ra.balance + 6n });
  seen.push(show(byId.find(a)));
  console.info('moves ' + seen.join(' / '));
});
`;

const moduleBundle = (): Promise<string> => sourceBundle(moduleSource, 'reuse.ts');

function open(program: string, immediate: boolean): Promise<Database> {
  return createOnPath({ identity: immediate ? 0xc300b2n : 0xc300b1n, ownerIdentity: owner.identity,
      report: () => {} }, program, immediate);
}

const calls: [string, unknown[]][] = [
  ['seed', [8]],
  ['reuse', [1, 2]], ['reuse', [2, 1]],
  ['moves', [3, 4]], ['moves', [3, 4]], ['moves', [5, 3]],
  ['reuse', [4, 5]],
];

test('reused iterators and the last row-cache entry give what the immediate path gives', async () => {
  const program = await moduleBundle();
  const deferred = await open(program, false);
  const immediate = await open(program, true);
  try {
    for (const [name, args] of calls) {
      const a = await deferred.callReducerJson(name, args, alice), b = await immediate.callReducerJson(name, args, alice);
      assert.equal(a.status, 'committed', `${name}: ${a.status === 'committed' ? '' : a.message}`);
      assert.equal(b.status, 'committed', `${name}: ${b.status === 'committed' ? '' : b.message}`);
      assert.deepEqual(deferred.datastore.exportSnapshot(), immediate.datastore.exportSnapshot(), `${name}: state`);
    }
    const lines = (db: Database): string[] => db.logs.tail(100).map((r) => r.message).filter((m) => /^(reuse|moves) /.test(m));
    assert.deepEqual(lines(deferred), lines(immediate));
    assert.equal(lines(deferred)[0], 'reuse 1:100:owner-1 / stale / stale / close: no such iterator: 3 / 1:100:owner-1 / 2:200:owner-2');
    assert.ok(deferred.syscallCrossings() < immediate.syscallCrossings(), 'the deferred path served rows from its cache');
  } finally {
    await deferred.close();
    await immediate.close();
  }
});
