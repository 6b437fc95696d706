// The bulk load of a table (store.ts bulkLoadRows + finishBulkLoad, the migration's row copy): the same table as
// loadRows of the same rows, index by index (unique and not, btree and hash: points, ranges, deletes and updates after
// it), set semantics, sequences, the same unique violation, and nothing left behind by a load that throws. Then
// migrateDatastore over it: rewritten tables answer as before, an added unique constraint over duplicates is refused
// with the same text, sequences go on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCodec } from '../../src/sats/codec.js';
import type { RawModuleDefV10, RawTableDefV10 } from '../../src/sats/moduledef.js';
import type { AlgebraicType, Value } from '../../src/sats/types.js';
import { Datastore } from '../../src/datastore/store.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { migrateDatastore, migrationChunkRows, MigrationError } from '../../src/datastore/migrate.js';
import type { DatabaseSchema, TableSchema } from '../../src/datastore/types.js';
import { autoInc, btree, hash, product, rng, T, table, unique } from './fixtures.js';

// items: unique btree pk with a sequence, a non-unique btree, a non-unique hash.
// codes: two unique indexes (hash, btree). bag: no unique index (set semantics), a btree and a hash.
const itemsType = product([['id', T.u64], ['grp', T.u32], ['name', T.str]]);
const codesType = product([['code', T.u32], ['label', T.str]]);
const bagType = product([['a', T.i32], ['b', T.str]]);
const extra = (t: AlgebraicType, fields: [string, AlgebraicType][]) =>
  product([...(t as { value: { elements: { name: string; algebraicType: AlgebraicType }[] } }).value.elements
    .map((e): [string, AlgebraicType] => [e.name, e.algebraicType]), ...fields]);

function defOf(types: AlgebraicType[], tables: RawTableDefV10[]): RawModuleDefV10 {
  return { sections: [{ tag: 'Typespace', value: { types } }, { tag: 'Tables', value: tables }] };
}
const itemsDef = (ref: number, more: Partial<RawTableDefV10> = {}) => table('items', ref,
  { primaryKey: [0], indexes: [btree(0), btree(1), hash(2)], constraints: [unique(0)], sequences: [autoInc(0)], ...more });
const codesDef = (ref: number, more: Partial<RawTableDefV10> = {}) => table('codes', ref,
  { indexes: [hash(0), btree(1)], constraints: [unique(0), unique(1)], ...more });
const bagDef = (ref: number, more: Partial<RawTableDefV10> = {}) => table('bag', ref, { indexes: [btree(0), hash(1)], ...more });

const schema = buildDatabaseSchema(defOf([itemsType, codesType, bagType], [itemsDef(0), codesDef(1), bagDef(2)]));

const byName = (s: DatabaseSchema, n: string) => s.tables.find((t) => t.name === n)!;
const codec = (s: DatabaseSchema, t: TableSchema) => compileCodec({ tag: 'Product', value: t.rowType }, s.typespace);
const enc = (s: DatabaseSchema, t: TableSchema, v: Value[]) => codec(s, t).encode(v);
const val = (t: AlgebraicType, v: Value) => compileCodec(t, schema.typespace).encode(v);
const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const hex = (rows: Uint8Array[]) => rows.map((r) => Buffer.from(r).toString('hex'));
const unbounded = Uint8Array.of(2);
const included = (t: AlgebraicType, v: Value) => cat(Uint8Array.of(0), val(t, v));
const excluded = (t: AlgebraicType, v: Value) => cat(Uint8Array.of(1), val(t, v));

const items = byName(schema, 'items'), codes = byName(schema, 'codes'), bag = byName(schema, 'bag');

/** Rows for every table, with repeats: identical rows in each table, shared group / name / `a` values. */
function rowsOf(s: DatabaseSchema, n: number, seed: number): Map<string, Uint8Array[]> {
  const r = rng(seed), it = byName(s, 'items'), co = byName(s, 'codes'), ba = byName(s, 'bag');
  const out = new Map<string, Uint8Array[]>([['items', []], ['codes', []], ['bag', []]]);
  for (let i = 0; i < n; i++) {
    const id = 1 + Math.floor(r() * n * 4);
    out.get('items')!.push(enc(s, it, [BigInt(id), id % 7, `n${id % 13}`]));
    out.get('codes')!.push(enc(s, co, [id, `label-${id}`]));
    out.get('bag')!.push(enc(s, ba, [(id % 50) - 25, `b${id % 3}`]));
  }
  return out;
}

/** Loads `rows` (table name → rows) with loadRows, or in bulk in chunks of `chunk` rows. */
function load(rows: Map<string, Uint8Array[]>, bulk: boolean, chunk = 97): Datastore {
  const ds = new Datastore(schema);
  for (const [name, list] of rows) {
    const id = byName(schema, name).tableId;
    if (!bulk) { ds.loadRows(id, list, true); continue; }
    for (let at = 0; at < list.length; at += chunk) ds.bulkLoadRows(id, list.slice(at, at + chunk), true);
    ds.finishBulkLoad(id);
  }
  return ds;
}

/**
 * Every answer of every index of the three tables, and the scans and sequences, as one comparable value. `anyOrder`
 * sorts each answer: the row ids of rows a bulk load dropped (copies) are free, and an insert may take one, which moves
 * its row in scans and among rows of an equal key (row-id order), not in or out of any answer.
 */
function answers(ds: Datastore, s: DatabaseSchema = schema, n = 400, anyOrder = false): unknown {
  const hex = (rows: Uint8Array[]) => { const h = rows.map((r) => Buffer.from(r).toString('hex')); return anyOrder ? h.sort() : h; };
  const it = byName(s, 'items'), co = byName(s, 'codes'), ba = byName(s, 'bag');
  const [itPk, itGrp, itName] = it.indexes.map((x) => x.indexId);
  const [coCode, coLabel] = co.indexes.map((x) => x.indexId);
  const [baA, baB] = ba.indexes.map((x) => x.indexId);
  const out: Record<string, unknown> = { seq: [...ds.sequenceState()], counts: [it, co, ba].map((t) => ds.rowCount(t.tableId)) };
  for (const t of [it, co, ba]) out[`scan ${t.name}`] = hex(ds.scan(t.tableId));
  const range = (ix: number, lo: Uint8Array, hi: Uint8Array) =>
    hex(ds.scanIndexRange(ix, { prefix: new Uint8Array(0), prefixElems: 0, rangeStart: lo, rangeEnd: hi }));
  const points: string[][] = [];
  for (let k = 0; k < n * 4 + 2; k += 3) {
    points.push(hex(ds.scanIndexPoint(itPk, val(T.u64, BigInt(k)))), hex(ds.scanIndexPoint(coCode, val(T.u32, k))),
      hex(ds.scanIndexPoint(coLabel, val(T.str, `label-${k}`))));
  }
  for (let g = 0; g < 8; g++) points.push(hex(ds.scanIndexPoint(itGrp, val(T.u32, g))));
  for (let m = 0; m < 14; m++) points.push(hex(ds.scanIndexPoint(itName, val(T.str, `n${m}`))));
  for (let a = -26; a < 26; a += 5) points.push(hex(ds.scanIndexPoint(baA, val(T.i32, a))));
  for (let b = 0; b < 4; b++) points.push(hex(ds.scanIndexPoint(baB, val(T.str, `b${b}`))));
  out.points = points;
  out.ranges = [
    range(itPk, unbounded, unbounded), range(itPk, included(T.u64, 10n), excluded(T.u64, BigInt(n))),
    range(itGrp, included(T.u32, 2), included(T.u32, 5)), range(coLabel, included(T.str, 'label-1'), excluded(T.str, 'label-5')),
    range(baA, excluded(T.i32, -10), included(T.i32, 10)), range(baA, unbounded, unbounded),
  ];
  return out;
}

/** The rows of table `t` in byte order (the same whatever row ids they took). */
function sortedScan(ds: Datastore, t: TableSchema): Uint8Array[] {
  return ds.scan(t.tableId).sort((a, b) => Buffer.compare(a, b));
}

/** The same writes on `ds`: inserts (generated ids), deletes by point and range, updates through the primary key. */
function churn(ds: Datastore, s: DatabaseSchema = schema, n = 400): void {
  const it = byName(s, 'items'), co = byName(s, 'codes'), ba = byName(s, 'bag');
  const tail = (t: TableSchema) => t.columns.length > 3 || (t !== it && t.columns.length > 2) ? [7] : [];
  const tx = ds.beginMutTx();
  for (let i = 0; i < 20; i++) tx.insert(it.tableId, enc(s, it, [0n, i % 7, `new${i}`, ...tail(it)]));
  for (let k = 1; k < n * 4; k += 11) tx.deleteByIndexPoint(it.indexes[0].indexId, val(T.u64, BigInt(k)));
  tx.deleteByIndexRange(it.indexes[1].indexId, { prefix: new Uint8Array(0), prefixElems: 0, rangeStart: included(T.u32, 3),
    rangeEnd: excluded(T.u32, 4) });
  tx.deleteByIndexPoint(it.indexes[2].indexId, val(T.str, 'n5'));
  for (const row of sortedScan(ds, it).slice(0, 30)) {
    const v = codec(s, it).decode(row) as Value[];
    tx.update(it.tableId, it.indexes[0].indexId, enc(s, it, [v[0], 6, `moved-${String(v[0])}`, ...tail(it)]));
  }
  for (let k = 2; k < n * 4; k += 13) tx.deleteByIndexPoint(co.indexes[1].indexId, val(T.str, `label-${k}`));
  for (const row of sortedScan(ds, co).slice(0, 20)) {
    const v = codec(s, co).decode(row) as Value[];
    tx.update(co.tableId, co.indexes[0].indexId, enc(s, co, [v[0], `relabelled-${String(v[0])}`, ...tail(co)]));
  }
  tx.deleteByIndexRange(ba.indexes[0].indexId, { prefix: new Uint8Array(0), prefixElems: 0, rangeStart: unbounded,
    rangeEnd: excluded(T.i32, -20) });
  tx.insert(ba.tableId, enc(s, ba, [1000, 'x', ...tail(ba)]));
  tx.commit();
}

test('a bulk load answers every index as loadRows of the same rows, before and after writes; identical rows are one', () => {
  const n = 400, rows = rowsOf(schema, n, 14);
  // identical rows: repeats in every table, one across a chunk boundary
  for (const list of rows.values()) { list.push(list[3], list[200], list[399]); list.splice(97, 0, list[96]); }
  const byRow = load(rows, false), bulk = load(rows, true);
  assert.ok(byRow.rowCount(items.tableId) < rows.get('items')!.length, 'the rows hold repeats');
  assert.deepEqual(answers(bulk), answers(byRow));
  churn(byRow);
  churn(bulk);
  assert.deepEqual(answers(bulk, schema, n, true), answers(byRow, schema, n, true));
});

test('a bulk load moves sequences past the loaded values; an insert after it takes the next one', () => {
  const ds = new Datastore(schema);
  ds.bulkLoadRows(items.tableId, [enc(schema, items, [41n, 1, 'a']), enc(schema, items, [9n, 1, 'b'])], true);
  assert.equal(ds.sequenceState().get(items.sequences[0].name), 42n);
  ds.finishBulkLoad(items.tableId);
  const tx = ds.beginMutTx();
  const r = tx.insert(items.tableId, enc(schema, items, [0n, 2, 'c']));
  tx.commit();
  assert.deepEqual(codec(schema, items).decode(r.row), [42n, 2, 'c']);
});

test('a unique key repeated by another row: the same violation as loadRows, and the table left as before the load', () => {
  for (const [clash, chunk] of [['code', 5], ['label', 5], ['code', 1000], ['label', 1]] as const) {
    const list: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) list.push(enc(schema, codes, [i, `l${i}`]));
    list.push(list[7]);                                    // identical: not a clash
    list.push(clash === 'code' ? enc(schema, codes, [12, 'other']) : enc(schema, codes, [99, 'l30']));
    list.push(enc(schema, codes, [5, 'l6']));              // later and worse: not the one named
    const rows = new Map([['codes', list]]);
    let expected = '';
    assert.throws(() => load(rows, false), (e: Error) => { expected = e.message; return true; });
    assert.match(expected, /Unique constraint violation/);
    const ds = new Datastore(schema);
    for (let at = 0; at < list.length; at += chunk) ds.bulkLoadRows(codes.tableId, list.slice(at, at + chunk), true);
    assert.throws(() => ds.finishBulkLoad(codes.tableId), (e: Error) => e.message === expected);
    assert.equal(ds.rowCount(codes.tableId), 0);
    assert.deepEqual(ds.scanIndexPoint(codes.indexes[0].indexId, val(T.u32, 1)), []);
    // the table takes a load again, and a transaction
    ds.bulkLoadRows(codes.tableId, list.slice(0, 40), true);
    ds.finishBulkLoad(codes.tableId);
    assert.equal(ds.scanIndexPoint(codes.indexes[1].indexId, val(T.str, 'l30')).length, 1);
    ds.beginMutTx().rollback();
  }
});

test('a bulk load that throws on a bad row leaves the table empty and its sequence where it was', () => {
  const ds = new Datastore(schema);
  const good = [enc(schema, items, [5n, 1, 'a']), enc(schema, items, [6n, 1, 'b'])];
  ds.bulkLoadRows(items.tableId, good, true);
  assert.throws(() => ds.bulkLoadRows(items.tableId, [enc(schema, items, [90n, 1, 'c']), Uint8Array.of(1, 2)], true));
  assert.equal(ds.rowCount(items.tableId), 0);
  assert.equal(ds.sequenceState().get(items.sequences[0].name), 1n);
  ds.finishBulkLoad(items.tableId);  // nothing loaded: nothing to do
  ds.bulkLoadRows(items.tableId, good, true);
  ds.finishBulkLoad(items.tableId);
  assert.equal(ds.scanIndexPoint(items.indexes[0].indexId, val(T.u64, 6n)).length, 1);
});

test('no transaction, and no loadRows into the table, between the two steps of a bulk load', () => {
  const ds = new Datastore(schema);
  ds.bulkLoadRows(bag.tableId, [enc(schema, bag, [1, 'x'])], true);
  assert.throws(() => ds.beginMutTx(), /bulk load/);
  assert.throws(() => ds.loadRows(bag.tableId, [enc(schema, bag, [2, 'y'])], true), /bulk load/);
  ds.finishBulkLoad(bag.tableId);
  ds.beginMutTx().rollback();
});

// migrateDatastore: every table gains a defaulted column (each row rewritten and loaded in bulk).
const u32 = (v: number) => val(T.u32, v);
const addExtra = { defaultValues: [{ colId: 3, value: u32(7) }] };
const addExtra2 = { defaultValues: [{ colId: 2, value: u32(7) }] };
const migrated = (codesMore: Partial<RawTableDefV10> = {}) => buildDatabaseSchema(defOf(
  [extra(itemsType, [['extra', T.u32]]), extra(codesType, [['extra', T.u32]]), extra(bagType, [['extra', T.u32]])],
  [itemsDef(0, addExtra), codesDef(1, { ...addExtra2, ...codesMore }), bagDef(2, addExtra2)]));

/** The rows of `rows` with the added column's default, loaded by loadRows into a datastore of `s`. */
function reference(s: DatabaseSchema, rows: Map<string, Uint8Array[]>, old: Datastore): Datastore {
  const ds = new Datastore(s);
  for (const [name, list] of rows) ds.loadRows(byName(s, name).tableId, list.map((r) => cat(r, u32(7))), true);
  for (const [seq, next] of old.sequenceState()) {
    const t = s.tables.find((x) => x.sequences.some((q) => q.name === seq))!;
    ds.setSequenceNext(t.tableId, t.sequences[0].column, next);
  }
  return ds;
}

test('a migration that rewrites every row answers every index as before, takes writes, and goes on with its sequence', () => {
  const n = Math.ceil(migrationChunkRows * 1.5), rows = rowsOf(schema, n, 7);
  const old = load(rows, false);
  const tx = old.beginMutTx();
  tx.insert(items.tableId, enc(schema, items, [0n, 1, 'generated']));  // the sequence past every row's id
  tx.commit();
  rows.get('items')!.push(old.scanIndexPoint(items.indexes[2].indexId, val(T.str, 'generated'))[0]);
  const s = migrated(), next = migrateDatastore(old, s), ref = reference(s, rows, old);
  assert.deepEqual(answers(next, s, n), answers(ref, s, n));
  churn(next, s, n);
  churn(ref, s, n);
  assert.deepEqual(answers(next, s, n), answers(ref, s, n));
  const it = byName(s, 'items'), last = BigInt(n * 4 + 2);
  const w = next.beginMutTx();
  const r = w.insert(it.tableId, enc(s, it, [0n, 0, 'after', 7]));
  w.commit();
  const id = (codec(s, it).decode(r.row) as Value[])[0] as bigint;
  assert.ok(id > last, `the sequence went on past the old rows (${id})`);
  assert.equal(next.scanIndexPoint(it.indexes[0].indexId, val(T.u64, id)).length, 1);
});

test('a migration adding a unique constraint over duplicates is refused with the text it always had', () => {
  // bag gains unique(a): rows share `a` values. Through checkAddedUniques (the duplicate groups) as before.
  const rows = rowsOf(schema, 300, 3), old = load(rows, false);
  const s = buildDatabaseSchema(defOf(
    [extra(itemsType, [['extra', T.u32]]), extra(codesType, [['extra', T.u32]]), extra(bagType, [['extra', T.u32]])],
    [itemsDef(0, addExtra), codesDef(1, addExtra2), bagDef(2, { ...addExtra2, constraints: [unique(0)] })]));
  assert.throws(() => migrateDatastore(old, s), (e: unknown) => e instanceof MigrationError &&
    /^Cannot add unique constraint bag_a_key on table `bag` \[a\]: \d+ duplicate group\(s\) found\.$/.test(e.message));
  // codes gains unique(extra), the added column: every row has its default, so the copy itself finds the clash
  // (checkAddedUniques checks old columns only) and names it as loadRows did.
  const withExtra = migrated({ indexes: [hash(0), btree(1), btree(2)], constraints: [unique(0), unique(1), unique(2)] });
  let expected = '';
  assert.throws(() => reference(withExtra, new Map([['codes', rows.get('codes')!]]), new Datastore(schema)),
    (e: Error) => { expected = e.message; return true; });
  assert.throws(() => migrateDatastore(old, withExtra), (e: unknown) => e instanceof MigrationError &&
    e.message === `Cannot migrate table \`codes\`: ${expected}`);
  assert.match(expected, /^Unique constraint violation 'codes_extra_key' in table 'codes'/);
});
