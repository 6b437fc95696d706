// Host: the shims' row iterators (isolate-src.ts) against the immediate path (SPACETIME_IMMEDIATE_WRITES=1: nothing
// cached, every scan crosses). A row served from the row cache is read straight from the cache's arena; an iterator
// still holding such a row must keep the row as it was when the scan opened, whatever the call writes afterwards (an
// in-place update of that row, the cache restarting under a crossing). Several iterators open at once, advanced and
// closed out of order, must each give their own rows. The module drives the raw `spacetime:sys` functions, as the
// library would with iterators it does not drain at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, type Caller } from '../../src/host/database.js';
import { accountScanSource, createOnPath, sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };

const moduleSource = `
import { schema, table, t } from 'spacetimedb/server';
import {
  index_id_from_name, table_id_from_name, datastore_index_scan_point_bsatn, datastore_table_scan_bsatn,
  row_iter_bsatn_advance, row_iter_bsatn_close,
} from 'spacetime:sys@2.0';
const spacetimedb = schema({
  accounts: table({ name: 'accounts' }, { id: t.u32().primaryKey(), balance: t.i64(), owner: t.string() }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) ctx.db.accounts.insert({ id, balance: 100n * BigInt(id), owner: 'owner-' + id });
});
// The index id is looked up before the finds: a lookup crosses, and a crossing empties the row cache.
const primaryKey = () => index_id_from_name('accounts_id_idx_btree');
${accountScanSource}
// A found row is cached; a second scan of it is served from the cache; the row is then updated in place (same length)
// and with a new length before the held iterator is read.
export const held = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const ix = primaryKey(), byId = ctx.db.accounts.id;
  const row = byId.find(id);
  const iter = open(ix, id);
  byId.update({ ...row, balance: row.balance + 1n });
  byId.update({ ...row, balance: row.balance + 2n, owner: row.owner + '-longer' });
  console.info('held ' + drain(iter).join(','));
});
// The cache restarts (a table scan crosses) and refills from the arena's start while an iterator holds a cached row.
export const restart = spacetimedb.reducer({ id: t.u32(), other: t.u32() }, (ctx, { id, other }) => {
  const ix = primaryKey(), byId = ctx.db.accounts.id;
  byId.find(id);
  const iter = open(ix, id);
  const scan = datastore_table_scan_bsatn(table_id_from_name('accounts'));
  row_iter_bsatn_close(scan);
  const o = byId.find(other);
  byId.update({ ...o, balance: o.balance + 5n, owner: 'x' });
  console.info('restart ' + drain(iter).join(','));
});
// Several iterators at once: cached and fresh point scans and a table scan, read and closed out of order.
export const interleave = spacetimedb.reducer({ ids: t.array(t.u32()) }, (ctx, { ids }) => {
  const ix = primaryKey(), byId = ctx.db.accounts.id;
  for (const id of ids.slice(0, 2)) byId.find(id);
  const iters = ids.map((id) => open(ix, id));
  const scan = datastore_table_scan_bsatn(table_id_from_name('accounts'));
  const seen = [];
  for (let i = iters.length - 1; i >= 1; i -= 2) seen.push(drain(iters[i]).join('|'));
  row_iter_bsatn_close(iters[0]);
  const r = byId.find(ids[1]);
  byId.update({ ...r, balance: r.balance - 7n });
  for (let i = iters.length - 2; i >= 1; i -= 2) seen.push(drain(iters[i]).join('|'));
  seen.push(String(drain(scan).length));
  console.info('interleave ' + seen.join(' / '));
});
`;

const moduleBundle = (): Promise<string> => sourceBundle(moduleSource, 'iterators.ts');

function open(program: string, immediate: boolean): Promise<Database> {
  return createOnPath({ identity: immediate ? 0xc200b2n : 0xc200b1n, ownerIdentity: owner.identity,
      report: () => {} }, program, immediate);
}

const calls: [string, unknown[]][] = [
  ['seed', [8]],
  ['held', [3]], ['held', [3]],                       // the second call finds the row in the cache the first left
  ['restart', [2, 5]], ['restart', [5, 2]],
  ['interleave', [[1, 2, 3, 4, 6]]], ['interleave', [[2, 1, 7, 0, 3, 5]]],
  ['held', [6]],
];

test('iterators over cached rows keep the rows of their scan, and open iterators stay apart', async () => {
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
    const lines = (db: Database): string[] => db.logs.tail(100).map((r) => r.message).filter((m) => /^(held|restart|interleave) /.test(m));
    assert.deepEqual(lines(deferred), lines(immediate));
    assert.deepEqual(lines(deferred).slice(0, 2), ['held 3:300:owner-3', 'held 3:302:owner-3-longer'],
      'the held iterator gives the row as the scan found it');
    assert.ok(deferred.syscallCrossings() < immediate.syscallCrossings(), 'the deferred path served rows from its cache');
  } finally {
    await deferred.close();
    await immediate.close();
  }
});
