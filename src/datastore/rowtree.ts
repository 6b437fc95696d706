// datastore/rowtree.ts — an ordered index of row ids off the JS heap: the entries of a non-unique btree index, and the
// range order of a unique integer index (indexes.ts), ordered by (key read from the entry's row, row id).
//
// Owns: RowIdTree. No key is stored per entry: a comparison reads the entry's row (`TreeKeys.keyOf`), so an entry costs
// its 4-byte row id over the chunk fill (~6 B, at most 16), whatever the key; a JS btree of key strings held ~60 B of
// V8 heap per entry and made every full GC walk them (docs/performance.md "Stalls and secondary indexes off the heap").
// Layout: chunks of up to `chunkEntriesMax` row ids in (key, id) order, and a fence per chunk but the first: a copy of
// the key and id of its first entry when the chunk was made. Chunk i holds the entries e with fence(i) <= e <
// fence(i + 1); fence(0) is below everything. A search finds its chunk by binary search over the fences, then its place
// by binary search in the chunk, reading log2(chunkEntriesMax) rows.
// Fences are copies so that routing never reads a row whose bytes may be changing: the datastore replaces a row's bytes
// before it moves the row's index entries (table.ts replaceRow), so `remove` recognises the entry it removes by its
// row id, whatever key that row holds by then. Every other entry's row holds the key it is filed under.
// Storage: a fixed number of typed arrays however many entries, so a full GC does not walk more objects as the tree
// grows (an Int32Array and a fence key per chunk made full GC 25 ms at 10M rows, 107 ms at 50M; docs/performance.md
// "Index-tree chunks off the heap"). A chunk lives in a slot: `chunkEntriesMax` ids of a page (page 0 doubles from one
// slot up to `pageSlots`, later pages are that size), with its count and fence in per-slot arrays; `slotAt` lists the
// slots in key order, so a split or merge moves one Int32Array of slot numbers. A dropped chunk's slot goes to a free
// list and is reused; once 3/4 of the slots are free, the chunks move to new pages that fit them. Number fences are a
// Float64Array; string fences (key.ts: one char per byte) are bytes in one arena, compared char by char, which is
// compacted when it fills.
// May call: datastore/key (types), node:assert.

import assert from 'node:assert';
import type { IndexKey } from './key.js';

/**
 * Row ids per chunk. A search reads log2 of it rows in the chunk (9); a split inserts a slot number into an array of
 * size / (chunkEntriesMax / 2) entries (at 10M rows ~40k: a ~10 µs move every ~256 adds).
 */
const chunkEntriesLog2 = 9;
const chunkEntriesMax = 1 << chunkEntriesLog2;
/** Neighbours that hold this many entries together or fewer become one chunk (so every pair holds more: fill ≥ 1/4). */
const chunkMergeEntriesMax = chunkEntriesMax / 2;
/** A bulk load fills chunks this far, leaving room for adds before the first splits. */
const chunkLoadEntries = (chunkEntriesMax * 3) / 4;
/**
 * Chunk slots per page: 2 MiB of row ids, ~350k entries at the fill adds leave. Pages, not one growing array, so that
 * no add copies more than one page (one doubling array would copy ~300 MB at 50M rows); page 0 doubles up to this,
 * so that the many small indexes of a database cost ~2 KiB each, not a page.
 */
const pageSlotsLog2 = 10;
const pageSlots = 1 << pageSlotsLog2;
const pageSlotMask = pageSlots - 1;
/** The string fence arena's first size; later it doubles the live fence bytes when it fills. */
const fenceBytesInitial = 256;

/** The keys of stored rows, read from the rows. */
export interface TreeKeys {
  keyOf(rowId: number): IndexKey;
  /** keyOf(rowId) === key, without building the key where the codec can. */
  is(rowId: number, key: IndexKey): boolean;
}

export class RowIdTree {
  /** Slot s's row ids: pages[s >> pageSlotsLog2] from (s & pageSlotMask) << chunkEntriesLog2, countOf[s] of them. */
  private pages!: Int32Array[];
  /** Slots the pages hold, and slots handed out so far (free ones included). */
  private slotCapacity!: number;
  private slotsUsed!: number;
  private freeSlots!: Int32Array;
  private freeSlotCount!: number;
  /** Per slot: entries, and the fence (id, and number key or string key bytes) of the chunk in it. */
  private countOf!: Int32Array;
  private fenceIdOf!: Int32Array;
  private fenceNumberOf!: Float64Array;
  private fenceStartOf!: Int32Array;
  private fenceLengthOf!: Int32Array;
  /** String fence bytes: [0, fenceBytesUsed) written, fenceBytesLive of them belong to a live chunk. */
  private fenceBytes!: Uint8Array;
  private fenceBytesUsed!: number;
  private fenceBytesLive!: number;
  /** Chunk c (0 <= c < chunkCount, in key order) is in slot slotAt[c]. Chunk 0 is slot 0, for the tree's life. */
  private slotAt!: Int32Array;
  private chunkCount!: number;
  size = 0;

  /** Replaced when the index moves to another table over the same rows (a migration, indexes.ts readKeysFrom). */
  constructor(public keys: TreeKeys) { this.clear(); }

  /** Files row `rowId` under `key`, which its stored row holds. */
  add(key: IndexKey, rowId: number): void {
    const c = this.chunkOf(key, rowId), slot = this.slotAt[c], n = this.countOf[slot];
    const ids = this.pages[slot >> pageSlotsLog2], base = (slot & pageSlotMask) << chunkEntriesLog2;
    const p = this.lowerBound(ids, base, n, key, rowId);
    ids.copyWithin(base + p + 1, base + p, base + n);
    ids[base + p] = rowId;
    this.countOf[slot] = n + 1;
    this.size++;
    if (n + 1 === chunkEntriesMax) this.split(c);
  }

  /** Removes row `rowId` filed under `key` (its row may hold another key by now); false when it is not there. */
  remove(key: IndexKey, rowId: number): boolean {
    const c = this.chunkOf(key, rowId), slot = this.slotAt[c], n = this.countOf[slot];
    const ids = this.pages[slot >> pageSlotsLog2], base = (slot & pageSlotMask) << chunkEntriesLog2;
    const p = this.lowerBound(ids, base, n, key, rowId);
    if (p >= n || ids[base + p] !== rowId) return false;
    ids.copyWithin(base + p, base + p + 1, base + n);
    this.countOf[slot] = n - 1;
    this.size--;
    if (n - 1 <= chunkMergeEntriesMax / 2) this.mergeAround(c);
    return true;
  }

  /** Row ids with lo <= key < hi, in (key, id) order, appended to `out`. */
  range(lo: IndexKey, hi: IndexKey, out: number[]): void {
    if (!(lo < hi)) return;
    const keys = this.keys;
    let c = this.chunkOf(lo, -1), slot = this.slotAt[c];
    let ids = this.pages[slot >> pageSlotsLog2], base = (slot & pageSlotMask) << chunkEntriesLog2;
    for (let p = this.lowerBound(ids, base, this.countOf[slot], lo, -1); ;) {
      for (const end = base + this.countOf[slot]; base + p < end; p++) {
        const id = ids[base + p];
        if (!(keys.keyOf(id) < hi)) return;
        out.push(id);
      }
      if (++c === this.chunkCount) return;
      slot = this.slotAt[c];
      ids = this.pages[slot >> pageSlotsLog2];
      base = (slot & pageSlotMask) << chunkEntriesLog2;
      p = 0;
    }
  }

  /** Row ids under `key`, in id order, appended to `out`. */
  point(key: IndexKey, out: number[]): void {
    const keys = this.keys;
    let c = this.chunkOf(key, -1), slot = this.slotAt[c];
    let ids = this.pages[slot >> pageSlotsLog2], base = (slot & pageSlotMask) << chunkEntriesLog2;
    for (let p = this.lowerBound(ids, base, this.countOf[slot], key, -1); ;) {
      for (const end = base + this.countOf[slot]; base + p < end; p++) {
        const id = ids[base + p];
        if (!keys.is(id, key)) return;
        out.push(id);
      }
      if (++c === this.chunkCount) return;
      slot = this.slotAt[c];
      ids = this.pages[slot >> pageSlotsLog2];
      base = (slot & pageSlotMask) << chunkEntriesLog2;
      p = 0;
    }
  }

  /** Calls `f` with every row id in (key, id) order. */
  forEach(f: (rowId: number) => void): void {
    for (let c = 0; c < this.chunkCount; c++) {
      const slot = this.slotAt[c], ids = this.pages[slot >> pageSlotsLog2];
      const base = (slot & pageSlotMask) << chunkEntriesLog2, end = base + this.countOf[slot];
      for (let at = base; at < end; at++) f(ids[at]);
    }
  }

  /** Empties the tree and gives its pages back: one slot, chunk 0, empty. */
  clear(): void {
    this.pages = [new Int32Array(chunkEntriesMax)];
    this.slotCapacity = 1;
    this.slotsUsed = 1;
    this.freeSlots = new Int32Array(1);
    this.freeSlotCount = 0;
    this.countOf = new Int32Array(1);
    this.fenceIdOf = new Int32Array(1);
    this.fenceNumberOf = new Float64Array(1);
    this.fenceStartOf = new Int32Array(1);
    this.fenceLengthOf = new Int32Array(1);
    this.fenceBytes = new Uint8Array(0);
    this.fenceBytesUsed = 0;
    this.fenceBytesLive = 0;
    this.slotAt = new Int32Array(1);
    this.chunkCount = 1;
    this.size = 0;
  }

  /**
   * Fills this empty tree with `rowIds`, already in (key, id) order (a bulk load: a restore, or the first range scan
   * of a unique integer index), `chunkLoadEntries` to a chunk.
   */
  load(rowIds: Int32Array): void {
    assert(this.size === 0, 'load fills an empty tree');
    this.clear();
    for (let at = 0, c = 0; at < rowIds.length; at += chunkLoadEntries, c++) {
      const end = Math.min(rowIds.length, at + chunkLoadEntries);
      const slot = c === 0 ? 0 : this.allocSlot();
      this.pages[slot >> pageSlotsLog2].set(rowIds.subarray(at, end), (slot & pageSlotMask) << chunkEntriesLog2);
      this.countOf[slot] = end - at;
      if (c > 0) {
        this.setFence(slot, rowIds[at]);
        this.slotAt[c] = slot;
        this.chunkCount = c + 1;
      }
    }
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

  /** removeIdsFrom's pass, whatever it costs (a unique index's hash decided to take one). Emptied chunks but 0 go. */
  dropIdsFrom(idsStart: number, count: number): void {
    let removed = 0, chunksKept = 0;
    for (let c = 0; c < this.chunkCount; c++) {
      const slot = this.slotAt[c], ids = this.pages[slot >> pageSlotsLog2];
      const base = (slot & pageSlotMask) << chunkEntriesLog2, end = base + this.countOf[slot];
      let kept = base;
      for (let at = base; at < end; at++) if (ids[at] < idsStart) ids[kept++] = ids[at];
      removed += end - kept;
      this.countOf[slot] = kept - base;
      if (kept === base && c > 0) this.freeSlot(slot);
      else this.slotAt[chunksKept++] = slot;
    }
    assert(removed === count, 'the tree held another number of rows from the id given');
    this.size -= removed;
    this.chunkCount = chunksKept;
    this.shrinkWhenSparse();
  }

  /** The chunk that holds (or would hold) entry (key, rowId): the last whose fence is not above it. */
  private chunkOf(key: IndexKey, rowId: number): number {
    return typeof key === 'number' ? this.chunkOfNumber(key, rowId) : this.chunkOfString(key, rowId);
  }

  private chunkOfNumber(key: number, rowId: number): number {
    const slotAt = this.slotAt, fenceNumberOf = this.fenceNumberOf, fenceIdOf = this.fenceIdOf;
    let lo = 1, hi = this.chunkCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, slot = slotAt[mid], fk = fenceNumberOf[slot];
      if (fk < key || (fk === key && fenceIdOf[slot] <= rowId)) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /**
   * chunkOf over string fences. The fences between two others share at least the chars those two share with the key,
   * so each comparison starts past the shorter of the common prefixes found at the two bounds: keys of one index often
   * share a long prefix (a tag, `topic-`), which a char-by-char comparison would walk at every step.
   */
  private chunkOfString(key: string, rowId: number): number {
    const slotAt = this.slotAt, bytes = this.fenceBytes, fenceIdOf = this.fenceIdOf;
    const fenceStartOf = this.fenceStartOf, fenceLengthOf = this.fenceLengthOf, keyLength = key.length;
    let lo = 1, hi = this.chunkCount, sharedLo = 0, sharedHi = 0;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, slot = slotAt[mid], start = fenceStartOf[slot], length = fenceLengthOf[slot];
      const n = keyLength < length ? keyLength : length;
      let shared = sharedLo < sharedHi ? sharedLo : sharedHi;
      while (shared < n && key.charCodeAt(shared) === bytes[start + shared]) shared++;
      const order = shared < n ? key.charCodeAt(shared) - bytes[start + shared] : keyLength - length;
      if (order > 0 || (order === 0 && fenceIdOf[slot] <= rowId)) { lo = mid + 1; sharedLo = shared; }
      else { hi = mid; sharedHi = shared; }
    }
    return lo - 1;
  }

  /**
   * The first position among the `n` entries at `ids[base]` whose entry is not below (key, rowId); entry `rowId` itself
   * counts as equal.
   */
  private lowerBound(ids: Int32Array, base: number, n: number, key: IndexKey, rowId: number): number {
    const keys = this.keys;
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1, id = ids[base + mid];
      if (id === rowId) return mid;
      const k = keys.keyOf(id);
      if (k < key || (k === key && id < rowId)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Splits full chunk `c` in two halves; the upper half gets a fence (its first entry's row holds its key). */
  private split(c: number): void {
    const upper = this.allocSlot(), lower = this.slotAt[c], half = chunkEntriesMax >>> 1;
    const from = ((lower & pageSlotMask) << chunkEntriesLog2) + half;
    const upperIds = this.pages[upper >> pageSlotsLog2], upperBase = (upper & pageSlotMask) << chunkEntriesLog2;
    upperIds.set(this.pages[lower >> pageSlotsLog2].subarray(from, from + chunkEntriesMax - half), upperBase);
    this.countOf[lower] = half;
    this.countOf[upper] = chunkEntriesMax - half;
    this.setFence(upper, upperIds[upperBase]);
    this.slotAt.copyWithin(c + 2, c + 1, this.chunkCount);
    this.slotAt[c + 1] = upper;
    this.chunkCount++;
  }

  /** Chunk `c` got small: joins it with a neighbour when the two fit in `chunkMergeEntriesMax`. */
  private mergeAround(c: number): void {
    const slotAt = this.slotAt, countOf = this.countOf, count = countOf[slotAt[c]];
    if (c + 1 < this.chunkCount && count + countOf[slotAt[c + 1]] <= chunkMergeEntriesMax) this.merge(c);
    else if (c > 0 && countOf[slotAt[c - 1]] + count <= chunkMergeEntriesMax) this.merge(c - 1);
  }

  /** Moves chunk `c + 1`'s entries to the end of chunk `c` and drops chunk `c + 1`: chunk c's range extends over it. */
  private merge(c: number): void {
    const into = this.slotAt[c], from = this.slotAt[c + 1], n = this.countOf[into], m = this.countOf[from];
    const fromBase = (from & pageSlotMask) << chunkEntriesLog2;
    this.pages[into >> pageSlotsLog2].set(this.pages[from >> pageSlotsLog2].subarray(fromBase, fromBase + m),
      ((into & pageSlotMask) << chunkEntriesLog2) + n);
    this.countOf[into] = n + m;
    this.slotAt.copyWithin(c + 1, c + 2, this.chunkCount);
    this.chunkCount--;
    this.freeSlot(from);
    this.shrinkWhenSparse();
  }

  /** A slot for a new chunk: a free one, else the next, growing the pages when they are full. */
  private allocSlot(): number {
    if (this.freeSlotCount > 0) return this.freeSlots[--this.freeSlotCount];
    if (this.slotsUsed === this.slotCapacity) this.growSlots();
    return this.slotsUsed++;
  }

  private freeSlot(slot: number): void {
    this.fenceBytesLive -= this.fenceLengthOf[slot];
    this.fenceLengthOf[slot] = 0;
    this.countOf[slot] = 0;
    this.freeSlots[this.freeSlotCount++] = slot;
  }

  /** Page 0 doubles up to `pageSlots` slots, then each growth adds a page; the per-slot arrays follow. */
  private growSlots(): void {
    const capacity = this.slotCapacity;
    let next: number;
    if (capacity < pageSlots) {
      next = capacity * 2;
      const page = new Int32Array(next << chunkEntriesLog2);
      page.set(this.pages[0]);
      this.pages[0] = page;
    } else {
      next = capacity + pageSlots;
      this.pages.push(new Int32Array(pageSlots << chunkEntriesLog2));
    }
    const perSlot = Math.max(next, capacity * 2);
    if (perSlot > this.countOf.length) {
      this.freeSlots = grownInt32s(this.freeSlots, perSlot);
      this.countOf = grownInt32s(this.countOf, perSlot);
      this.fenceIdOf = grownInt32s(this.fenceIdOf, perSlot);
      this.fenceStartOf = grownInt32s(this.fenceStartOf, perSlot);
      this.fenceLengthOf = grownInt32s(this.fenceLengthOf, perSlot);
      this.slotAt = grownInt32s(this.slotAt, perSlot);
      const fenceNumberOf = new Float64Array(perSlot);
      fenceNumberOf.set(this.fenceNumberOf);
      this.fenceNumberOf = fenceNumberOf;
    }
    this.slotCapacity = next;
  }

  /**
   * Gives pages back once most slots are free (deletes emptied a large tree): the chunks move to slots
   * 0 .. chunkCount - 1 of new pages, in key order, with their counts and fences; no key is read. A tree of one page or
   * less keeps its slots, and it takes 3/4 of the slots freed again for another move, so moves cost O(1) per removal.
   */
  private shrinkWhenSparse(): void {
    const chunks = this.chunkCount;
    if (this.slotsUsed <= pageSlots || chunks * 4 > this.slotsUsed) return;
    let capacity = 1;
    while (capacity < chunks) capacity *= 2;
    if (capacity > pageSlots) capacity = Math.ceil(chunks / pageSlots) * pageSlots;
    const pages: Int32Array[] = [];
    for (let left = capacity; left > 0; left -= pageSlots) {
      pages.push(new Int32Array(Math.min(left, pageSlots) << chunkEntriesLog2));
    }
    const countOf = new Int32Array(capacity), fenceIdOf = new Int32Array(capacity);
    const fenceNumberOf = new Float64Array(capacity), fenceStartOf = new Int32Array(capacity);
    const fenceLengthOf = new Int32Array(capacity), slotAt = new Int32Array(capacity);
    for (let c = 0; c < chunks; c++) {
      const slot = this.slotAt[c], n = this.countOf[slot], base = (slot & pageSlotMask) << chunkEntriesLog2;
      const to = (c & pageSlotMask) << chunkEntriesLog2;
      pages[c >> pageSlotsLog2].set(this.pages[slot >> pageSlotsLog2].subarray(base, base + n), to);
      countOf[c] = n;
      fenceIdOf[c] = this.fenceIdOf[slot];
      fenceNumberOf[c] = this.fenceNumberOf[slot];
      fenceStartOf[c] = this.fenceStartOf[slot];
      fenceLengthOf[c] = this.fenceLengthOf[slot];
      slotAt[c] = c;
    }
    this.pages = pages;
    this.slotCapacity = capacity;
    this.slotsUsed = chunks;
    this.freeSlots = new Int32Array(capacity);
    this.freeSlotCount = 0;
    this.countOf = countOf;
    this.fenceIdOf = fenceIdOf;
    this.fenceNumberOf = fenceNumberOf;
    this.fenceStartOf = fenceStartOf;
    this.fenceLengthOf = fenceLengthOf;
    this.slotAt = slotAt;
  }

  /** Makes `rowId`'s entry, whose row holds its key, the fence of the chunk in `slot` (before it joins slotAt). */
  private setFence(slot: number, rowId: number): void {
    const key = this.keys.keyOf(rowId);
    this.fenceIdOf[slot] = rowId;
    if (typeof key === 'number') { this.fenceNumberOf[slot] = key; return; }
    const length = key.length;
    if (this.fenceBytesUsed + length > this.fenceBytes.length) this.compactFenceBytes(length);
    const bytes = this.fenceBytes, start = this.fenceBytesUsed;
    let chars = 0;
    for (let i = 0; i < length; i++) { const char = key.charCodeAt(i); chars |= char; bytes[start + i] = char; }
    assert(chars < 256, 'a stored key has one byte per char');
    this.fenceStartOf[slot] = start;
    this.fenceLengthOf[slot] = length;
    this.fenceBytesUsed = start + length;
    this.fenceBytesLive += length;
  }

  /** Copies the live chunks' fence bytes into a new arena with room for twice them and `extra` more bytes. */
  private compactFenceBytes(extra: number): void {
    const old = this.fenceBytes, bytes = new Uint8Array(Math.max(fenceBytesInitial, 2 * (this.fenceBytesLive + extra)));
    let used = 0;
    for (let c = 1; c < this.chunkCount; c++) {
      const slot = this.slotAt[c], start = this.fenceStartOf[slot], length = this.fenceLengthOf[slot];
      bytes.set(old.subarray(start, start + length), used);
      this.fenceStartOf[slot] = used;
      used += length;
    }
    assert(used === this.fenceBytesLive, 'the live fence bytes are the fences of the chunks in slotAt');
    this.fenceBytes = bytes;
    this.fenceBytesUsed = used;
  }
}

/** `a` in a new array of `length` entries. */
function grownInt32s(a: Int32Array, length: number): Int32Array {
  const grown = new Int32Array(length);
  grown.set(a);
  return grown;
}
