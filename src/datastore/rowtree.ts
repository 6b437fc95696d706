// datastore/rowtree.ts — an ordered index of row ids off the JS heap: the entries of a non-unique btree index, and the
// range order of a unique integer index (indexes.ts), ordered by (key read from the entry's row, row id).
//
// Owns: RowIdTree. No key is stored per entry: a comparison reads the entry's row (`TreeKeys.keyOf`), so an entry costs
// its 4-byte row id over the chunk fill (~6 B, at most 16), whatever the key; a JS btree of key strings held ~60 B of
// V8 heap per entry and made every full GC walk them (docs/performance.md "Stalls and secondary indexes off the heap").
// Layout: chunks of up to `chunkEntriesMax` row ids (Int32Array) in (key, id) order, and a fence per chunk but the
// first: a copy of the key and id of its first entry when the chunk was made. Chunk i holds the entries e with
// fence(i) <= e < fence(i + 1); fence(0) is below everything. A search finds its chunk by binary search over the
// fences, then its place by binary search in the chunk, reading log2(chunkEntriesMax) rows.
// Fences are copies so that routing never reads a row whose bytes may be changing: the datastore replaces a row's bytes
// before it moves the row's index entries (table.ts replaceRow), so `remove` recognises the entry it removes by its
// row id, whatever key that row holds by then. Every other entry's row holds the key it is filed under.
// May call: datastore/key (types), node:assert.

import assert from 'node:assert';
import type { IndexKey } from './key.js';

/**
 * Row ids per chunk. A search reads log2 of it rows in the chunk (9); a split inserts a fence into arrays of
 * size / (chunkEntriesMax / 2) entries (at 10M rows ~40k: a ~20 µs move every ~256 adds).
 */
const chunkEntriesMax = 512;
/** Neighbours that hold this many entries together or fewer become one chunk (so every pair holds more: fill ≥ 1/4). */
const chunkMergeEntriesMax = chunkEntriesMax / 2;
/** A bulk load fills chunks this far, leaving room for adds before the first splits. */
const chunkLoadEntries = (chunkEntriesMax * 3) / 4;

/** The keys of stored rows, read from the rows. */
export interface TreeKeys {
  keyOf(rowId: number): IndexKey;
  /** keyOf(rowId) === key, without building the key where the codec can. */
  is(rowId: number, key: IndexKey): boolean;
}

export class RowIdTree {
  private chunks: Int32Array[] = [new Int32Array(chunkEntriesMax)];
  private counts: number[] = [0];
  /** fenceKeys[i - 1], fenceIds[i - 1]: the fence of chunk i (i >= 1). */
  private fenceKeys: IndexKey[] = [];
  private fenceIds: number[] = [];
  size = 0;

  /** Replaced when the index moves to another table over the same rows (a migration, indexes.ts readKeysFrom). */
  constructor(public keys: TreeKeys) {}

  /** Files row `rowId` under `key`, which its stored row holds. */
  add(key: IndexKey, rowId: number): void {
    const c = this.chunkOf(key, rowId), ids = this.chunks[c], n = this.counts[c];
    const p = this.lowerBound(c, key, rowId);
    ids.copyWithin(p + 1, p, n);
    ids[p] = rowId;
    this.counts[c] = n + 1;
    this.size++;
    if (n + 1 === chunkEntriesMax) this.split(c);
  }

  /** Removes row `rowId` filed under `key` (its row may hold another key by now); false when it is not there. */
  remove(key: IndexKey, rowId: number): boolean {
    const c = this.chunkOf(key, rowId), ids = this.chunks[c], n = this.counts[c];
    const p = this.lowerBound(c, key, rowId);
    if (p >= n || ids[p] !== rowId) return false;
    ids.copyWithin(p, p + 1, n);
    this.counts[c] = n - 1;
    this.size--;
    if (n - 1 <= chunkMergeEntriesMax / 2) this.mergeAround(c);
    return true;
  }

  /** Row ids with lo <= key < hi, in (key, id) order, appended to `out`. */
  range(lo: IndexKey, hi: IndexKey, out: number[]): void {
    if (!(lo < hi)) return;
    const keys = this.keys;
    for (let c = this.chunkOf(lo, -1), p = this.lowerBound(c, lo, -1); c < this.chunks.length; c++, p = 0) {
      const ids = this.chunks[c], n = this.counts[c];
      for (; p < n; p++) {
        const id = ids[p];
        if (!(keys.keyOf(id) < hi)) return;
        out.push(id);
      }
    }
  }

  /** Row ids under `key`, in id order, appended to `out`. */
  point(key: IndexKey, out: number[]): void {
    const keys = this.keys;
    for (let c = this.chunkOf(key, -1), p = this.lowerBound(c, key, -1); c < this.chunks.length; c++, p = 0) {
      const ids = this.chunks[c], n = this.counts[c];
      for (; p < n; p++) {
        const id = ids[p];
        if (!keys.is(id, key)) return;
        out.push(id);
      }
    }
  }

  /** Calls `f` with every row id in (key, id) order. */
  forEach(f: (rowId: number) => void): void {
    for (let c = 0; c < this.chunks.length; c++) {
      const ids = this.chunks[c], n = this.counts[c];
      for (let p = 0; p < n; p++) f(ids[p]);
    }
  }

  clear(): void {
    this.chunks = [new Int32Array(chunkEntriesMax)];
    this.counts = [0];
    this.fenceKeys = [];
    this.fenceIds = [];
    this.size = 0;
  }

  /**
   * Fills this empty tree with `rowIds`, already in (key, id) order (a bulk load: a restore, or the first range scan
   * of a unique integer index), `chunkLoadEntries` to a chunk.
   */
  load(rowIds: Int32Array): void {
    assert(this.size === 0, 'load fills an empty tree');
    const chunks: Int32Array[] = [], counts: number[] = [], fenceKeys: IndexKey[] = [], fenceIds: number[] = [];
    for (let at = 0; at < rowIds.length || chunks.length === 0; at += chunkLoadEntries) {
      const part = rowIds.subarray(at, Math.min(rowIds.length, at + chunkLoadEntries));
      const ids = new Int32Array(chunkEntriesMax);
      ids.set(part);
      if (chunks.length > 0) { fenceKeys.push(this.keys.keyOf(part[0])); fenceIds.push(part[0]); }
      chunks.push(ids);
      counts.push(part.length);
    }
    this.chunks = chunks;
    this.counts = counts;
    this.fenceKeys = fenceKeys;
    this.fenceIds = fenceIds;
    this.size = rowIds.length;
  }

  /**
   * Drops every entry whose row id is `idsStart` or more, `count` of them, in one pass over the chunks, when that costs
   * less than removing each (a rollback of many fresh rows); false, and nothing done, when not.
   */
  removeIdsFrom(idsStart: number, count: number): boolean {
    if (count * chunkEntriesMax < this.size) return false;
    this.dropIdsFrom(idsStart, count);
    return true;
  }

  /** removeIdsFrom's pass, whatever it costs (a unique index's hash decided to take one). */
  dropIdsFrom(idsStart: number, count: number): void {
    let removed = 0;
    for (let c = 0; c < this.chunks.length; c++) {
      const ids = this.chunks[c], n = this.counts[c];
      let kept = 0;
      for (let p = 0; p < n; p++) if (ids[p] < idsStart) ids[kept++] = ids[p];
      removed += n - kept;
      this.counts[c] = kept;
    }
    assert(removed === count, 'the tree held another number of rows from the id given');
    this.size -= removed;
    for (let c = this.chunks.length - 1; c > 0; c--) if (this.counts[c] === 0) this.drop(c);
  }

  /** The chunk that holds (or would hold) entry (key, rowId): the last whose fence is not above it. */
  private chunkOf(key: IndexKey, rowId: number): number {
    const fenceKeys = this.fenceKeys, fenceIds = this.fenceIds;
    let lo = 0, hi = fenceKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, fk = fenceKeys[mid];
      if (fk < key || (fk === key && fenceIds[mid] <= rowId)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first position in chunk `c` whose entry is not below (key, rowId); entry `rowId` itself counts as equal. */
  private lowerBound(c: number, key: IndexKey, rowId: number): number {
    const ids = this.chunks[c], keys = this.keys;
    let lo = 0, hi = this.counts[c];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, id = ids[mid];
      if (id === rowId) return mid;
      const k = keys.keyOf(id);
      if (k < key || (k === key && id < rowId)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Splits full chunk `c` in two halves; the upper half gets a fence (its first entry's row holds its key). */
  private split(c: number): void {
    const ids = this.chunks[c], half = chunkEntriesMax >>> 1;
    const upper = new Int32Array(chunkEntriesMax);
    upper.set(ids.subarray(half, chunkEntriesMax));
    this.counts[c] = half;
    this.chunks.splice(c + 1, 0, upper);
    this.counts.splice(c + 1, 0, chunkEntriesMax - half);
    this.fenceKeys.splice(c, 0, this.keys.keyOf(upper[0]));
    this.fenceIds.splice(c, 0, upper[0]);
  }

  /** Chunk `c` got small: joins it with a neighbour when the two fit in `chunkMergeEntriesMax`. */
  private mergeAround(c: number): void {
    const counts = this.counts;
    if (c + 1 < counts.length && counts[c] + counts[c + 1] <= chunkMergeEntriesMax) this.merge(c);
    else if (c > 0 && counts[c - 1] + counts[c] <= chunkMergeEntriesMax) this.merge(c - 1);
  }

  /** Moves chunk `c + 1`'s entries to the end of chunk `c` and drops chunk `c + 1`. */
  private merge(c: number): void {
    const n = this.counts[c];
    this.chunks[c].set(this.chunks[c + 1].subarray(0, this.counts[c + 1]), n);
    this.counts[c] = n + this.counts[c + 1];
    this.drop(c + 1);
  }

  /** Drops chunk `c` (c >= 1) and its fence: chunk c - 1's range extends over it. */
  private drop(c: number): void {
    this.chunks.splice(c, 1);
    this.counts.splice(c, 1);
    this.fenceKeys.splice(c - 1, 1);
    this.fenceIds.splice(c - 1, 1);
  }
}
