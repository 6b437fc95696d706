// datastore/indexes.ts — the in-memory index structures of one table.
//
// Owns: mapping index keys (strings or numbers from key.ts) to row ids. Every index keeps row ids only and reads keys
// from the rows (RowKeys, table.ts), so an entry costs bytes in typed arrays, not a key string on the JS heap:
//   unique (any columns, any algorithm): an open-addressing hash of row ids over the row store (rowstore.ts RowIdHash,
//     5-14 bytes an entry), plus, for btree indexes, a tree of row ids for ranges built on the first range scan;
//   non-unique (any columns, any algorithm): a tree of row ids (rowtree.ts RowIdTree) in (key, row id) order, so equal
//     keys keep row-id order; a hash index uses it for points only (store.ts refuses its range scans).
// Direct indexes are btrees here. Rows themselves live in rowstore.ts; this file only knows row ids.
// May call: datastore/key, datastore/rowstore, datastore/rowtree.

import assert from 'node:assert';
import type { IndexSchema } from './types.js';
import { hashIndexKey, type IndexKey } from './key.js';
import { RowIdHash } from './rowstore.js';
import { RowIdTree } from './rowtree.js';

/** A key → row id structure. Keys of one index come from one IndexKeyCodec. */
export interface IndexStore {
  readonly schema: IndexSchema;
  add(key: IndexKey, rowId: number): void;
  remove(key: IndexKey, rowId: number): void;
  /** Distinct keys (unique indexes only): restore checks it against the row count. */
  readonly keyCount: number;
  /** The row id under `key` in a unique index; undefined when none (unique indexes only). */
  find(key: IndexKey): number | undefined;
  /** Row ids under `key`, appended to `out`. */
  point(key: IndexKey, out: number[]): void;
  /** Row ids with lo <= key < hi, in key order, appended to `out` (btree only). */
  range(lo: IndexKey, hi: IndexKey, out: number[]): void;
  clear(): void;
  /**
   * Rollback: removes the entries of every row id from `idsStart` on (`count` of them) at once, when this store can
   * and that costs less than removing each; false, and nothing done, when not (the caller removes them one by one).
   */
  removeIdsFrom(idsStart: number, count: number): boolean;
  /**
   * Adds the stored rows `ids` (ascending) to this empty index at once, cheaper than an add each (a snapshot restore;
   * a reindex after rows changed in bulk). A unique index leaves out a row whose key an earlier one has, and returns
   * how many it left out.
   */
  addIds(ids: Int32Array): number;
  /**
   * Migration: this store now serves another table that took over the same row store (store.ts adoptRows) and reads
   * its keys through `rowKeys`, the same keys for the same rows.
   */
  readKeysFrom(rowKeys: RowKeys): void;
}

/** The keys of stored rows by row id, read from the rows (table.ts). */
export interface RowKeys {
  keyOf(rowId: number): IndexKey;
  /** hashIndexKey(keyOf(rowId)) and keyOf(rowId) === key, without building the key where the codec can. */
  hashOf(rowId: number): number;
  is(rowId: number, key: IndexKey): boolean;
}

/** Row ids by the key read from their rows. */
class KeyHash extends RowIdHash<IndexKey> {
  constructor(public keys: RowKeys) { super(); }
  protected hashOfId(id: number): number { return this.keys.hashOf(id); }
  protected matches(id: number, key: IndexKey): boolean { return this.keys.is(id, key); }
  protected sameKey(a: number, b: number): boolean { return this.keys.is(a, this.keys.keyOf(b)); }
}

/**
 * A unique index: the hash of row ids for points, and for btree indexes a tree of row ids for ranges built on the first
 * range scan. Many unique btree indexes (primary keys) never see a range scan, and a bulk load (snapshot restore,
 * replay) then fills one structure. Keys have one encoding per value (key.ts), so equal keys are equal IndexKeys.
 */
class UniqueRowIdHash implements IndexStore {
  private tree: RowIdTree | undefined;
  private readonly hash: KeyHash;
  /**
   * At least every stored key (undefined: none was added since the last clear); removals leave it. A key above it is
   * absent without a probe: increasing keys (autoInc ids, their unique checks and sequence leases) probe nothing, where
   * each probe of a large table is a cache miss or two.
   */
  private bound: IndexKey | undefined;
  constructor(readonly schema: IndexSchema, private keys: RowKeys) {
    this.hash = new KeyHash(keys);
  }
  readKeysFrom(rowKeys: RowKeys): void {
    this.keys = this.hash.keys = rowKeys;
    if (this.tree !== undefined) this.tree.keys = rowKeys;
  }
  get keyCount(): number { return this.hash.size; }
  /** The row must be stored already (growing the hash reads every row's key). */
  add(key: IndexKey, rowId: number): void {
    this.tree?.add(key, rowId);
    this.hash.add(hashIndexKey(key), rowId);
    if (this.bound === undefined || key > this.bound) this.bound = key;
  }
  remove(key: IndexKey, rowId: number): void {
    assert(this.hash.remove(hashIndexKey(key), rowId), 'removing a row id the index does not hold');
    if (this.tree !== undefined) assert(this.tree.remove(key, rowId), 'the range tree did not hold the row id');
  }
  find(key: IndexKey): number | undefined {
    if (this.bound === undefined || key > this.bound) return undefined;
    const id = this.hash.find(hashIndexKey(key), key);
    return id < 0 ? undefined : id;
  }
  point(key: IndexKey, out: number[]): void { const id = this.find(key); if (id !== undefined) out.push(id); }
  range(lo: IndexKey, hi: IndexKey, out: number[]): void {
    assert(this.schema.algorithm !== 'hash', 'range scan on a hash index');
    this.ordered().range(lo, hi, out);
  }
  clear(): void { this.tree = undefined; this.hash.clear(); this.bound = undefined; }
  addIds(ids: Int32Array): number {
    assert(this.tree === undefined && this.bound === undefined, 'addIds fills an empty index');
    const clashes = this.hash.addIds(ids);
    let bound: IndexKey | undefined;
    for (let i = 0; i < ids.length; i++) {
      const key = this.keys.keyOf(ids[i]);
      if (bound === undefined || key > bound) bound = key;
    }
    this.bound = bound;
    return clashes;
  }
  /** When the hash takes a pass, so does the range tree (both or neither). `bound` stays an upper bound. */
  removeIdsFrom(idsStart: number, count: number): boolean {
    if (!this.hash.removeIdsFrom(idsStart, count)) return false;
    this.tree?.dropIdsFrom(idsStart, count);
    return true;
  }

  /**
   * The range tree, built from the hash on the first range scan: a stall of the call that asks, so the keys are put in
   * order as typed arrays (numeric keys by radix sort) and the tree is loaded in bulk (a JS btree of [key, id] tuples
   * took 1.3 s at 1M rows, docs/performance.md "Stalls and secondary indexes off the heap").
   */
  private ordered(): RowIdTree {
    if (this.tree !== undefined) return this.tree;
    const ids = new Int32Array(this.hash.size), keys: IndexKey[] = new Array<IndexKey>(ids.length);
    let at = 0;
    this.hash.forEachId((id) => { ids[at] = id; keys[at++] = this.keys.keyOf(id); });
    const tree = new RowIdTree(this.keys);
    tree.load(sortedRowIds(ids, keys));
    this.tree = tree;
    return tree;
  }
}

/**
 * `ids` in (key, id) order, `keys[i]` the key of `ids[i]` (one index's keys: all numbers or all strings). Numeric keys
 * sort stably: ids that share a key must come in ascending order.
 */
function sortedRowIds(ids: Int32Array, keys: IndexKey[]): Int32Array {
  const count = ids.length;
  let order: Int32Array;
  if (typeof keys[0] === 'number') {
    order = orderByIntegerKeys(keys as number[]);
  } else {
    order = new Int32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    order.sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : ids[a] - ids[b]));
  }
  const sorted = new Int32Array(count);
  for (let i = 0; i < count; i++) sorted[i] = ids[order[i]];
  return sorted;
}

/**
 * Positions 0 .. n-1 of `keys` (integers spanning less than 2^32: one index's u8 ... u32 or i8 ... i32 values) in
 * ascending key order: an LSD radix sort, four passes of 8 bits, carrying each key's digits with its position.
 */
function orderByIntegerKeys(keys: readonly number[]): Int32Array {
  const n = keys.length;
  let min = Infinity;
  for (let i = 0; i < n; i++) if (keys[i] < min) min = keys[i];
  let digits = new Uint32Array(n), order = new Int32Array(n);
  for (let i = 0; i < n; i++) { digits[i] = keys[i] - min; order[i] = i; }
  let nextDigits = new Uint32Array(n), nextOrder = new Int32Array(n);
  const starts = new Int32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    starts.fill(0);
    for (let i = 0; i < n; i++) starts[(digits[i] >>> shift) & 255]++;
    for (let b = 0, sum = 0; b < 256; b++) { const c = starts[b]; starts[b] = sum; sum += c; }
    for (let i = 0; i < n; i++) {
      const to = starts[(digits[i] >>> shift) & 255]++;
      nextDigits[to] = digits[i];
      nextOrder[to] = order[i];
    }
    [digits, nextDigits] = [nextDigits, digits];
    [order, nextOrder] = [nextOrder, order];
  }
  return order;
}

/** A non-unique index: a tree of row ids in (key, row id) order, keys read from the rows (rowtree.ts). */
class MultiRowTree implements IndexStore {
  private readonly tree: RowIdTree;
  constructor(readonly schema: IndexSchema, private keys: RowKeys) { this.tree = new RowIdTree(keys); }
  readKeysFrom(rowKeys: RowKeys): void { this.keys = this.tree.keys = rowKeys; }
  get keyCount(): number { return assert.fail('keyCount of a non-unique index'); }
  /** The row must be stored already (the tree compares keys read from the rows). */
  add(key: IndexKey, rowId: number): void { this.tree.add(key, rowId); }
  remove(key: IndexKey, rowId: number): void { assert(this.tree.remove(key, rowId), 'removing a row id the index does not hold'); }
  find(): number | undefined { assert.fail('find on a non-unique index'); }
  point(key: IndexKey, out: number[]): void { this.tree.point(key, out); }
  range(lo: IndexKey, hi: IndexKey, out: number[]): void { this.tree.range(lo, hi, out); }
  clear(): void { this.tree.clear(); }
  removeIdsFrom(idsStart: number, count: number): boolean { return this.tree.removeIdsFrom(idsStart, count); }
  addIds(ids: Int32Array): number {
    const keys: IndexKey[] = new Array<IndexKey>(ids.length);
    for (let i = 0; i < ids.length; i++) keys[i] = this.keys.keyOf(ids[i]);
    this.tree.load(sortedRowIds(ids, keys));
    return 0;
  }
}

/** The store of an index over the rows whose keys `rowKeys` reads. */
export function createIndexStore(schema: IndexSchema, rowKeys: RowKeys): IndexStore {
  return schema.unique ? new UniqueRowIdHash(schema, rowKeys) : new MultiRowTree(schema, rowKeys);
}
