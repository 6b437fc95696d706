// datastore/indexes.ts — the in-memory index structures of one table.
//
// Owns: mapping index keys (strings from key.ts) to row ids. Four shapes:
//   unique hash (Map key → rowId), multi hash (Map key → rowId | Set<rowId>),
//   unique btree (Map key → rowId, plus a BTree for ranges built on the first range scan),
//   multi btree (BTree key+rowIdSuffix → rowId, so equal keys keep row-id order).
// Direct indexes are btrees here. Rows themselves live in store.ts; this file only knows row ids.
// May call: datastore/key, sorted-btree.

import assert from 'node:assert';
import btreeModule from 'sorted-btree';
import type { IndexSchema } from './types.js';
import { keyPrefixEnd, type IndexKey } from './key.js';

/** The part of sorted-btree's BTree used here. */
interface SortedTree<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): boolean;
  delete(key: K): boolean;
  clear(): void;
  forRange(low: K, high: K, includeHigh: boolean, onFound: (k: K, v: V) => void): number;
}
// sorted-btree is CommonJS with `exports.default`; under Node ESM the default import is the exports object.
const BTree = ((btreeModule as unknown as { default?: unknown }).default ?? btreeModule) as
  new <K, V>(entries: undefined, compare: (a: K, b: K) => number) => SortedTree<K, V>;

const compareKeys = (a: IndexKey, b: IndexKey): number => (a < b ? -1 : a > b ? 1 : 0);

/** Row ids are below 2^48 (one row id per insert; far beyond any in-memory table's lifetime). */
const rowIdSuffixChars = 6;

function rowIdSuffix(rowId: number): string {
  let s = '';
  for (let shift = (rowIdSuffixChars - 1) * 8; shift >= 0; shift -= 8) {
    s += String.fromCharCode(Math.floor(rowId / 2 ** shift) % 256);
  }
  return s;
}

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
}

class UniqueHash implements IndexStore {
  private readonly map = new Map<IndexKey, number>();
  constructor(readonly schema: IndexSchema) {}
  get keyCount(): number { return this.map.size; }
  add(key: IndexKey, rowId: number): void { this.map.set(key, rowId); }
  remove(key: IndexKey, rowId: number): void {
    assert(this.map.get(key) === rowId, 'removing a row id the index does not hold');
    this.map.delete(key);
  }
  find(key: IndexKey): number | undefined { return this.map.get(key); }
  point(key: IndexKey, out: number[]): void { const id = this.map.get(key); if (id !== undefined) out.push(id); }
  range(): void { assert.fail('range scan on a hash index'); }
  clear(): void { this.map.clear(); }
}

class MultiHash implements IndexStore {
  private readonly map = new Map<IndexKey, number | Set<number>>();
  constructor(readonly schema: IndexSchema) {}
  get keyCount(): number { return assert.fail('keyCount of a non-unique index'); }
  add(key: IndexKey, rowId: number): void {
    const cur = this.map.get(key);
    if (cur === undefined) this.map.set(key, rowId);
    else if (typeof cur === 'number') this.map.set(key, new Set([cur, rowId]));
    else cur.add(rowId);
  }
  remove(key: IndexKey, rowId: number): void {
    const cur = this.map.get(key);
    if (cur === rowId) { this.map.delete(key); return; }
    assert(typeof cur === 'object' && cur.delete(rowId), 'removing a row id the index does not hold');
    if (cur.size === 0) this.map.delete(key);
  }
  find(): number | undefined { assert.fail('find on a non-unique index'); }
  point(key: IndexKey, out: number[]): void {
    const cur = this.map.get(key);
    if (cur === undefined) return;
    if (typeof cur === 'number') out.push(cur);
    else for (const id of cur) out.push(id);
  }
  range(): void { assert.fail('range scan on a hash index'); }
  clear(): void { this.map.clear(); }
}

/**
 * A Map for point lookups (the hot path: find and update by primary key) plus a btree for ranges, built on the first
 * range scan and maintained from then on. Many unique btree indexes (primary keys) never see a range scan; for them
 * a bulk load (snapshot restore, replay) costs one Map insertion per row instead of two structures.
 */
class UniqueBTree implements IndexStore {
  private tree: SortedTree<IndexKey, number> | undefined;
  private readonly map = new Map<IndexKey, number>();
  constructor(readonly schema: IndexSchema) {}
  get keyCount(): number { return this.map.size; }
  add(key: IndexKey, rowId: number): void { this.tree?.set(key, rowId); this.map.set(key, rowId); }
  remove(key: IndexKey, rowId: number): void {
    assert(this.map.get(key) === rowId, 'removing a row id the index does not hold');
    this.tree?.delete(key);
    this.map.delete(key);
  }
  find(key: IndexKey): number | undefined { return this.map.get(key); }
  point(key: IndexKey, out: number[]): void { const id = this.map.get(key); if (id !== undefined) out.push(id); }
  range(lo: IndexKey, hi: IndexKey, out: number[]): void {
    if (lo >= hi) return;
    this.ordered().forRange(lo, hi, false, (_k, id) => { out.push(id); });
  }
  clear(): void { this.tree = undefined; this.map.clear(); }

  private ordered(): SortedTree<IndexKey, number> {
    if (this.tree !== undefined) return this.tree;
    const keys = [...this.map.keys()].sort(compareKeys);
    const tree = new BTree<IndexKey, number>(undefined, compareKeys);
    for (const k of keys) tree.set(k, this.map.get(k)!); // ascending: each set appends at the right edge
    this.tree = tree;
    return tree;
  }
}

class MultiBTree implements IndexStore {
  private readonly tree = new BTree<string, number>(undefined, compareKeys);
  constructor(readonly schema: IndexSchema) {}
  get keyCount(): number { return assert.fail('keyCount of a non-unique index'); }
  add(key: IndexKey, rowId: number): void { this.tree.set((key as string) + rowIdSuffix(rowId), rowId); }
  remove(key: IndexKey, rowId: number): void {
    assert(this.tree.delete((key as string) + rowIdSuffix(rowId)), 'removing a row id the index does not hold');
  }
  find(): number | undefined { assert.fail('find on a non-unique index'); }
  point(key: IndexKey, out: number[]): void { this.range(key, (key as string) + keyPrefixEnd, out); }
  range(lo: IndexKey, hi: IndexKey, out: number[]): void {
    if (lo >= hi) return;
    this.tree.forRange(lo as string, hi as string, false, (_k, id) => { out.push(id); });
  }
  clear(): void { this.tree.clear(); }
}

/** Multi-column-ordered btrees append a row-id suffix to string keys, so they cannot use numeric keys. */
export function indexAllowsNumericKeys(schema: IndexSchema): boolean {
  return schema.unique || schema.algorithm === 'hash';
}

export function createIndexStore(schema: IndexSchema): IndexStore {
  const hash = schema.algorithm === 'hash';
  if (schema.unique) return hash ? new UniqueHash(schema) : new UniqueBTree(schema);
  return hash ? new MultiHash(schema) : new MultiBTree(schema);
}
