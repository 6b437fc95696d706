// Rollback in bulk (store.ts rollbackTable): a transaction that added more rows under row ids of its own than its
// table keeps is undone by dropping those ids at once (RowStore.truncate) and building the indexes anew, instead of
// removing each row from every index. Property: over six table shapes (fixed and variable rows; unique integer, string
// and btree indexes; non-unique hash and btree; set semantics; an autoInc key), a rolled-back transaction mixing
// fresh inserts, inserts into ids freed earlier, updates that move rows, deletes and clears leaves the state exactly
// as it found it (scan order, row counts, every index), and a twin datastore that never ran it then agrees with it
// after the same later work: the same rows under the same row ids (snapshots byte for byte).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Datastore } from '../../src/datastore/store.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { DatastoreError, type MutTx, type ReadView } from '../../src/datastore/types.js';
import { compileCodec } from '../../src/sats/codec.js';
import type { RawModuleDefV10 } from '../../src/sats/moduledef.js';
import type { Value } from '../../src/sats/types.js';
import { autoInc, btree, hash, product, T, table, unique } from './fixtures.js';

const moduleDef: RawModuleDefV10 = {
  sections: [
    { tag: 'Typespace', value: { types: [
      product([['id', T.u32], ['v', T.u8]]),
      product([['id', T.u64], ['name', T.str]]),
      product([['a', T.i32], ['b', T.str]]),
      product([['x', T.u32], ['y', T.u8]]),
      product([['name', T.str], ['n', T.u32]]),
      product([['id', T.u32], ['label', T.str]]),
    ] } },
    { tag: 'Tables', value: [
      table('fixed', 0, { primaryKey: [0], indexes: [btree(0), btree(1)], constraints: [unique(0)] }),
      table('named', 1, { primaryKey: [0], indexes: [btree(0), btree(1)], constraints: [unique(0)] }),
      table('tags', 2, { indexes: [hash(0)] }),
      table('pairs', 3, {}),
      table('byname', 4, { primaryKey: [0], indexes: [hash(0), hash(1)], constraints: [unique(0)] }),
      table('item', 5, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)], sequences: [autoInc(0)] }),
    ] },
  ],
};
const schema = buildDatabaseSchema(moduleDef);
const tables = ['fixed', 'named', 'tags', 'pairs', 'byname', 'item'].map((n) => schema.tables.find((t) => t.name === n)!);
const codecs = tables.map((t) => compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace));
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

/** Snapshots of `a` and its twin `b`, whose sequences are moved to `a`'s (a rollback never moves them back). */
function snapshots(a: Datastore, b: Datastore): [Uint8Array, Uint8Array] {
  const seq = tables[5].sequences[0];
  b.setSequenceNext(tables[5].tableId, seq.column, a.sequenceState().get(seq.name)!);
  return [a.exportSnapshot(), b.exportSnapshot()];
}

/** A write: table, key (0 in `item`: generated), a payload number and string length (variable rows move when it changes). */
interface Write { k: 'ins' | 'upd' | 'del' | 'clear'; t: number; key: number; v: number; len: number }

function rowValue(w: Write): Value[] {
  const s = 's'.repeat(w.len);
  switch (w.t) {
    case 0: return [w.key, w.v & 255];
    case 1: return [BigInt(w.key), s];
    case 2: return [w.key % 7, s];
    case 3: return [w.key, w.v & 255];
    case 4: return [`k${w.key}`, w.v];
    default: return [w.key, s];
  }
}

/** Applies a write; refusals (unique violations, updates of absent rows) are part of the workload. */
function apply(tx: MutTx, w: Write): void {
  const t = tables[w.t], row = codecs[w.t].encode(rowValue(w));
  try {
    if (w.k === 'ins') tx.insert(t.tableId, row);
    else if (w.k === 'upd' && t.primaryKey !== undefined) tx.update(t.tableId, t.indexes[0].indexId, row);
    else if (w.k === 'clear') tx.clear(t.tableId);
    else tx.deleteByRows(t.tableId, [row]);
  } catch (e) {
    if (!(e instanceof DatastoreError)) throw e;
  }
}

/**
 * Everything a reader can see: each table's rows in scan (row-id) order, its row count, and for every index the rows
 * found through it by each stored row's key (sorted for hash indexes, whose order among equal keys is not promised).
 */
function observe(view: ReadView): unknown {
  return tables.map((t, i) => {
    const rows = view.scan(t.tableId);
    const values = rows.map((r) => codecs[i].decode(r) as Value[]);
    const byIndex = t.indexes.map((ix) => values.map((v) => {
      const key = Uint8Array.from(ix.columns.flatMap((c) => [...compileCodec(t.columns[c].type, schema.typespace).encode(v[c])]));
      const found = view.scanIndexPoint(ix.indexId, key).map(hex);
      return ix.algorithm === 'hash' ? found.sort() : found;
    }));
    return { rows: rows.map(hex), count: view.rowCount(t.tableId), byIndex };
  });
}

const writeArb = (keys: number, kinds: Write['k'][]): fc.Arbitrary<Write> => fc.record({
  k: fc.constantFrom(...kinds), t: fc.integer({ min: 0, max: tables.length - 1 }),
  key: fc.integer({ min: 1, max: keys }), v: fc.integer({ min: 0, max: 1000 }), len: fc.integer({ min: 0, max: 40 }),
});

/** Many inserts into one table under fresh keys: more rows of the tx's own than the table keeps (the bulk path). */
const floodArb = fc.record({ t: fc.integer({ min: 0, max: tables.length - 1 }), count: fc.integer({ min: 1, max: 300 }) });

test('a rolled-back transaction leaves no trace, whether undone row by row or in bulk', () => {
  fc.assert(fc.property(
    fc.array(fc.array(writeArb(40, ['ins', 'ins', 'upd', 'del']), { maxLength: 60 }), { maxLength: 4 }),
    fc.array(writeArb(60, ['ins', 'upd', 'del', 'del', 'clear']), { maxLength: 40 }),
    fc.array(floodArb, { maxLength: 3 }),
    fc.array(writeArb(80, ['ins', 'ins', 'upd', 'del']), { maxLength: 80 }),
    (committed, mixed, floods, later) => {
      const a = new Datastore(schema), b = new Datastore(schema);
      for (const batch of committed) {
        for (const ds of [a, b]) { const tx = ds.beginMutTx(); for (const w of batch) apply(tx, w); tx.commit(); }
      }
      const before = observe(a);
      const tx = a.beginMutTx();
      for (const [i, w] of mixed.entries()) {
        apply(tx, w);
        // Floods between the other writes: later writes then delete and update rows under the tx's own ids.
        for (const f of floods.filter((_, j) => j === i % 4)) {
          for (let n = 0; n < f.count; n++) apply(tx, { k: 'ins', t: f.t, key: f.t === 5 ? 0 : 1000 + n, v: n, len: n % 30 });
        }
      }
      for (const f of floods) for (let n = 0; n < f.count; n++) apply(tx, { k: 'ins', t: f.t, key: f.t === 5 ? 0 : 5000 + n, v: n, len: n % 9 });
      tx.rollback();
      assert.deepEqual(observe(a), before, 'the state the rolled-back transaction found');
      for (const ds of [a, b]) { const later1 = ds.beginMutTx(); for (const w of later) apply(later1, w); later1.commit(); }
      assert.deepEqual(observe(a), observe(b), 'the same later work gives the same state');
      assert.deepEqual(...snapshots(a, b), 'the same rows under the same row ids');
    }), { numRuns: 150 });
});

test('an insert loop rolled back in bulk: the table is as before, and its next rows take the ids they would have', () => {
  for (const pre of [0, 1, 500]) {
    const a = new Datastore(schema), b = new Datastore(schema);
    const item = tables[5];
    for (const ds of [a, b]) {
      const tx = ds.beginMutTx();
      for (let i = 1; i <= pre; i++) tx.insert(item.tableId, codecs[5].encode([0, `pre ${i}`]));
      for (let i = 1; i <= pre; i += 3) tx.deleteByRows(item.tableId, [codecs[5].encode([i, `pre ${i}`])]);
      tx.commit();
    }
    const before = observe(a);
    const tx = a.beginMutTx();
    for (let i = 0; i < 20_000; i++) tx.insert(item.tableId, codecs[5].encode([0, 'runaway']));
    tx.rollback();
    assert.deepEqual(observe(a), before, `${pre} rows before`);
    for (const ds of [a, b]) {
      const next = ds.beginMutTx();
      for (let i = 0; i < 50; i++) next.insert(item.tableId, codecs[5].encode([100_000 + i, 'after']));
      next.commit();
    }
    assert.deepEqual(...snapshots(a, b), `${pre} rows before: the same row ids after`);
  }
});
