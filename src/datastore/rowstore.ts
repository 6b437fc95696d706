// datastore/rowstore.ts — one table's rows off the JS heap: BSATN rows in large ArrayBuffer pages, addressed by row id
// through typed arrays, with no JS object per row (issue 12 item 5; measured design in docs/engine-v2.md §5).
//
// Owns: row ids (dense, per table, reused), the pages and free space of one table, and the open-addressing hash tables
// over row ids that unique integer indexes (indexes.ts) and set semantics (RowSet) use.
//   FixedRowStore  every row has one byte width (tables without strings, arrays or sums of unequal payloads): row id k
//                  is slot k of page k >> rowsPerPageLog2. Per row: its bytes and one state byte.
//   VarRowStore    rows of any width, each as u32 length + BSATN, 8-byte aligned, in rowStorePageBytes pages; row id →
//                  location (page, offset) in a Uint32Array. Freed spans go to exact-size free lists and are reused at
//                  once; a row larger than a page gets a page of its own.
// Lifetimes: nothing outside this file holds page bytes. `view` is transient (valid until the next write to this
// store; the datastore uses it to compute keys and compare rows); every row that leaves the datastore is a `copy`, so
// TxData, undo entries and scan results never see bytes change under them, and freed space can be reused at once.
// Copies are carved from shared slabs (`copyOut`), never written after they are handed out.
// Row ids are reused only after `releasePending` (called when the transaction that freed them ends): within a
// transaction a row id keeps its meaning (the per-table touched map, undo), and rollback puts a deleted row back under
// its own id; the lowest free id goes first. A rollback drops the ids the transaction handed out fresh at once
// (`truncate`), so the next fresh id is the one it would have been. Scans visit row ids in ascending order: insertion
// order until ids are reused, then reused ids in their places.
// May call: limits.ts.

import assert from 'node:assert';
import { rowStorePageBytes, rowStorePagesPerTableMax } from '../limits.js';

const idFree = 0, idLive = 1, idPending = 2;
const initialIds = 64;

/**
 * Copies n bytes. Rows are short: a byte loop beats `set(subarray(...))`, which allocates a view per copy (the
 * prototype measured ~300 extra young-generation GCs per 1.5 s of keynote transfers from that garbage alone).
 */
function copyBytes(dst: Uint8Array, dstStart: number, src: Uint8Array, srcStart: number, n: number): void {
  if (n > 64) { dst.set(src.subarray(srcStart, srcStart + n), dstStart); return; }
  for (let i = 0; i < n; i++) dst[dstStart + i] = src[srcStart + i];
}

/** Rows up to this size are copied out into shared slabs; a larger row gets its own buffer. */
const slabRowMaxBytes = 1024;
const slabBytes = 16 * 1024;
let slab = new Uint8Array(slabBytes);
let slabUsed = 0;
/** `slab`'s buffer (slab starts at its byte 0). */
let slabBuffer = slab.buffer;

/**
 * A copy of `length` bytes of `src` from `srcStart` that nobody writes again: a view carved from a shared slab (one
 * small object per copy instead of a buffer and a view, which measured ~50 % more young-generation GCs per keynote
 * transfer). Trade-off: a slab stays alive while any copy in it does.
 */
export function copyOut(src: Uint8Array, srcStart: number, length: number): Uint8Array {
  if (length > slabRowMaxBytes) return src.slice(srcStart, srcStart + length);
  if (slabUsed + length > slabBytes) { slab = new Uint8Array(slabBytes); slabBuffer = slab.buffer; slabUsed = 0; }
  const at = slabUsed;
  copyBytes(slab, at, src, srcStart, length);
  slabUsed = at + length;
  // A view made directly: `subarray` looks up the species constructor first (Node 20: ~35 against ~18 ns a view).
  return new Uint8Array(slabBuffer, at, length);
}

/** A growable stack of int32s in a typed array (free ids, pending ids): no JS value per entry. */
class IntStack {
  items = new Int32Array(16);
  count = 0;
  push(v: number): void {
    if (this.count === this.items.length) {
      const grown = new Int32Array(this.items.length * 2);
      grown.set(this.items);
      this.items = grown;
    }
    this.items[this.count++] = v;
  }
  pop(): number { return this.items[--this.count]; }
}

/**
 * Free row ids, lowest first (a binary min-heap in an Int32Array). Lowest first makes reuse independent of the order
 * ids were freed in: after a rollback, the next inserts get the ids they would have got had the transaction never run
 * (fresh ids above the old high-water mark come back in ascending order, after every older free id), so two histories
 * that differ only by rolled-back work store the same rows under the same ids (test/host/deferred-equivalence).
 */
class IdHeap extends IntStack {
  override push(v: number): void {
    super.push(v);
    const h = this.items;
    let i = this.count - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= v) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = v;
  }

  override pop(): number {
    const h = this.items;
    const top = h[0];
    const last = h[--this.count];
    const n = this.count;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && h[child + 1] < h[child]) child++;
      if (h[child] >= last) break;
      h[i] = h[child];
      i = child;
    }
    if (n > 0) h[i] = last;
    return top;
  }
}

/** What every row store shares: the row-id space (state per id, free and pending ids) and reading rows out. */
export abstract class RowStore {
  /** After `locate(id)`: the page holding the row, the offset of its first byte, and its length. */
  page: Uint8Array = new Uint8Array(0);
  start = 0;
  length = 0;
  /** Live rows. */
  size = 0;
  protected state = new Uint8Array(initialIds);
  /** One past the highest row id ever handed out. */
  protected highWater = 0;
  private readonly freeIds = new IdHeap();
  private readonly pendingIds = new IntStack();

  /** Byte width of every row, or undefined (rows of any width). */
  abstract readonly widthBytes: number | undefined;
  abstract locate(id: number): void;
  /** Stores a copy of `length` bytes of `src` from `srcStart` under a fresh or reused row id. */
  abstract insert(src: Uint8Array, srcStart: number, length: number): number;
  /** Stores a row under `id`, a row id this transaction removed (rollback). */
  abstract insertAt(id: number, src: Uint8Array, srcStart: number, length: number): void;
  /** Replaces the bytes of live row `id`. */
  abstract replace(id: number, src: Uint8Array, srcStart: number, length: number): void;
  /** Frees row `id`; its id becomes reusable at the next `releasePending`. */
  abstract remove(id: number): void;
  /** Drops every row and all space (event tables after commit, clearAll). */
  abstract clear(): void;
  /**
   * Gives back the space of the rows under ids [idsStart, idsEnd), `dropped` of them live, which `truncate` is about to
   * drop (their ids are still live: the rows can be found).
   */
  protected abstract dropSpace(idsStart: number, idsEnd: number, dropped: number): void;

  /**
   * One past the highest row id handed out so far. Every id from here on that a transaction takes is fresh: it held
   * no row before the transaction (store.ts marks a table's first write in a transaction with it, see `truncate`).
   */
  get idsEnd(): number { return this.highWater; }

  /**
   * Rollback in bulk: drops every row id from `idsStart` on — all handed out by the transaction rolling back, which
   * took `idsStart` from `idsEnd` at its first write — with their rows, in one pass over a state byte each. The next
   * fresh id is `idsStart` again, after every older free id, as had the transaction never run. Ids below `idsStart` are
   * untouched (a free id it reused is the caller's to remove), and so are the indexes (the caller's too).
   */
  truncate(idsStart: number): void {
    const state = this.state, end = this.highWater;
    assert(idsStart <= end, 'truncating row ids that were never handed out');
    let dropped = 0;
    for (let id = idsStart; id < end; id++) dropped += state[id] === idLive ? 1 : 0;
    this.dropSpace(idsStart, end, dropped);
    // Ids freed in the transaction stay in pendingIds; releasePending skips them once they are free.
    state.fill(idFree, idsStart, end);
    this.size -= dropped;
    this.highWater = idsStart;
  }

  has(id: number): boolean {
    return id >= 0 && id < this.highWater && this.state[id] === idLive;
  }

  /** The first live row id ≥ `from`, or -1. Scans: `for (let id = s.nextLive(0); id >= 0; id = s.nextLive(id + 1))`. */
  nextLive(from: number): number {
    const state = this.state, end = this.highWater;
    for (let i = from; i < end; i++) if (state[i] === idLive) return i;
    return -1;
  }

  /** A copy of row `id`: what leaves the datastore. */
  copy(id: number): Uint8Array {
    this.locate(id);
    return copyOut(this.page, this.start, this.length);
  }

  /** A transient view of row `id` (see the header: valid until this store is next written). */
  view(id: number): Uint8Array {
    this.locate(id);
    return this.page.subarray(this.start, this.start + this.length);
  }

  /** Copies of rows `ids[0..count)`. */
  copyMany(ids: ArrayLike<number>, count: number): Uint8Array[] {
    const out = new Array<Uint8Array>(count);
    for (let i = 0; i < count; i++) out[i] = this.copy(ids[i]);
    return out;
  }

  /**
   * Copies of the rows `keep` accepts (each tested on its bytes in place first) among up to `maxRows` live rows from row
   * id `from` on, appended to `out`; the live rows visited in `visits.count`. Returns the row id to go on from, or -1.
   */
  copyFromWhere(from: number, maxRows: number, keep: (bytes: Uint8Array, start: number, length: number) => boolean,
    out: Uint8Array[], visits: { count: number }): number {
    let id = this.nextLive(from), n = 0;
    for (; id >= 0 && n < maxRows; n++, id = this.nextLive(id + 1)) {
      this.locate(id);
      const page = this.page, start = this.start, length = this.length;
      if (keep(page, start, length)) out.push(copyOut(page, start, length));
    }
    visits.count = n;
    return id;
  }

  /** Copies of every live row in row-id order (as copyMany). */
  copyAll(): Uint8Array[] {
    const ids = new Int32Array(this.size);
    let n = 0;
    for (let id = this.nextLive(0); id >= 0; id = this.nextLive(id + 1)) ids[n++] = id;
    return this.copyMany(ids, n);
  }

  /** Bytes `writeAll` writes: a u32 length and the bytes of every live row. */
  encodedLength(): number {
    if (this.widthBytes !== undefined) return this.size * (4 + this.widthBytes);
    let n = 0;
    for (let id = this.nextLive(0); id >= 0; id = this.nextLive(id + 1)) { this.locate(id); n += 4 + this.length; }
    return n;
  }

  /** Writes every live row in row-id order as a BSATN byte array (u32 length, bytes) into `dst` from `at`; returns the end. */
  writeAll(dst: Uint8Array, at: number): number {
    for (let id = this.nextLive(0); id >= 0; id = this.nextLive(id + 1)) {
      this.locate(id);
      const n = this.length;
      dst[at] = n & 0xff; dst[at + 1] = (n >>> 8) & 0xff; dst[at + 2] = (n >>> 16) & 0xff; dst[at + 3] = n >>> 24;
      copyBytes(dst, at + 4, this.page, this.start, n);
      at += 4 + n;
    }
    return at;
  }

  /** Whether row `id` holds exactly `length` bytes of `src` from `srcStart`. */
  equals(id: number, src: Uint8Array, srcStart: number, length: number): boolean {
    this.locate(id);
    if (this.length !== length) return false;
    const page = this.page, start = this.start;
    for (let i = 0; i < length; i++) if (page[start + i] !== src[srcStart + i]) return false;
    return true;
  }

  /** Makes the ids freed since the last call reusable, except those a rollback brought back. */
  releasePending(): void {
    const pending = this.pendingIds;
    for (let i = 0; i < pending.count; i++) {
      const id = pending.items[i];
      if (this.state[id] !== idPending) continue;
      this.state[id] = idFree;
      this.freeIds.push(id);
    }
    pending.count = 0;
  }

  protected takeId(): number {
    let id: number;
    if (this.freeIds.count > 0) {
      id = this.freeIds.pop();
    } else {
      id = this.highWater++;
      if (id >= this.state.length) this.growIds(Math.max(this.state.length * 2, id + 1));
    }
    assert(this.state[id] === idFree, 'row id handed out twice');
    this.state[id] = idLive;
    this.size++;
    return id;
  }

  protected dropId(id: number): void {
    assert(this.state[id] === idLive, 'removing a row that is not live');
    this.state[id] = idPending;
    this.pendingIds.push(id);
    this.size--;
  }

  protected reviveId(id: number): void {
    assert(id < this.highWater && this.state[id] === idPending, 'restoring a row id that was not removed in this transaction');
    this.state[id] = idLive;
    this.size++;
  }

  protected growIds(capacity: number): void {
    const grown = new Uint8Array(capacity);
    grown.set(this.state);
    this.state = grown;
  }

  protected resetIds(): void {
    this.state = new Uint8Array(initialIds);
    this.highWater = 0;
    this.size = 0;
    this.freeIds.count = 0;
    this.pendingIds.count = 0;
  }

}

/** Rows of one width: row id k is slot k & mask of page k >> rowsPerPageLog2. */
class FixedRowStore extends RowStore {
  private pages: Uint8Array[] = [];
  private readonly rowsPerPageLog2: number;
  private readonly slotMask: number;

  constructor(readonly widthBytes: number) {
    super();
    let log2 = 0;
    while (log2 < fixedRowsPerPageLog2Max && Math.max(widthBytes, 1) * 2 ** (log2 + 1) <= rowStorePageBytes) log2++;
    this.rowsPerPageLog2 = log2;
    this.slotMask = (1 << log2) - 1;
  }

  locate(id: number): void {
    this.page = this.pages[id >>> this.rowsPerPageLog2];
    this.start = (id & this.slotMask) * this.widthBytes;
    this.length = this.widthBytes;
  }

  insert(src: Uint8Array, srcStart: number, length: number): number {
    assert(length === this.widthBytes, 'a row of the wrong width for a fixed-width table');
    const id = this.takeId();
    const p = id >>> this.rowsPerPageLog2;
    while (this.pages.length <= p) this.pages.push(new Uint8Array(this.widthBytes << this.rowsPerPageLog2));
    copyBytes(this.pages[p], (id & this.slotMask) * this.widthBytes, src, srcStart, length);
    return id;
  }

  insertAt(id: number, src: Uint8Array, srcStart: number, length: number): void {
    this.reviveId(id);
    this.replace(id, src, srcStart, length);
  }

  replace(id: number, src: Uint8Array, srcStart: number, length: number): void {
    assert(length === this.widthBytes, 'a row of the wrong width for a fixed-width table');
    copyBytes(this.pages[id >>> this.rowsPerPageLog2], (id & this.slotMask) * this.widthBytes, src, srcStart, length);
  }

  remove(id: number): void {
    this.dropId(id);
  }

  clear(): void {
    this.pages = [];
    this.resetIds();
  }

  /** Slots hold no state: pages past the one holding id `idsStart - 1` go. */
  protected dropSpace(idsStart: number): void {
    const pagesKept = (idsStart + this.slotMask) >>> this.rowsPerPageLog2;
    if (this.pages.length > pagesKept) this.pages.length = pagesKept;
  }
}

/** 2^16 rows per page at most: narrow rows (a u8) need no bigger pages than that to keep the page count small. */
const fixedRowsPerPageLog2Max = 16;

const spanAlignBytes = 8;
/** A location is page << locationOffsetBits | offset / 8. */
const locationOffsetBits = Math.log2(rowStorePageBytes / spanAlignBytes);

/** Rows of any width: u32 length + BSATN, 8-byte aligned, in pages; row id → location in a Uint32Array. */
class VarRowStore extends RowStore {
  readonly widthBytes = undefined;
  private pages: Uint8Array[] = [];
  private locations = new Uint32Array(initialIds);
  /** Where the next span goes in the last shared page (a full page forces a new one). */
  private bump = rowStorePageBytes;
  private bumpPage = -1;
  /** Freed spans of shared pages by span bytes: locations to reuse (small-integer arrays: no object per entry). */
  private freeSpans = new Map<number, number[]>();
  /** Indexes in `pages` of large-row pages that were freed. */
  private freePages: number[] = [];

  locate(id: number): void {
    const location = this.locations[id];
    const page = this.pages[location >>> locationOffsetBits];
    const at = (location & locationOffsetMask) * spanAlignBytes;
    this.page = page;
    this.start = at + 4;
    this.length = lengthAt(page, at);
  }

  insert(src: Uint8Array, srcStart: number, length: number): number {
    const id = this.takeId();
    this.place(id, src, srcStart, length);
    return id;
  }

  insertAt(id: number, src: Uint8Array, srcStart: number, length: number): void {
    this.reviveId(id);
    this.place(id, src, srcStart, length);
  }

  replace(id: number, src: Uint8Array, srcStart: number, length: number): void {
    this.locate(id);
    if (spanOf(this.length) === spanOf(length) && spanOf(length) <= rowStorePageBytes) {
      this.write(this.page, this.start - 4, src, srcStart, length);
      return;
    }
    this.unplace(id);
    this.place(id, src, srcStart, length);
  }

  remove(id: number): void {
    this.unplace(id);
    this.dropId(id);
  }

  clear(): void {
    this.pages = [];
    this.locations = new Uint32Array(initialIds);
    this.bump = rowStorePageBytes;
    this.bumpPage = -1;
    this.freeSpans = new Map();
    this.freePages = [];
    this.resetIds();
  }

  /**
   * A dropped row may sit anywhere (in a span freed by an earlier transaction), so either each dropped row's span goes
   * to the free lists, or, when fewer rows stay than go, the rows that stay move to new pages (ids unchanged) and the
   * old pages go back to the heap: the cheaper of the two.
   */
  protected dropSpace(idsStart: number, idsEnd: number, dropped: number): void {
    if (this.size - dropped >= dropped) {
      for (let id = this.nextLive(idsStart); id >= 0; id = this.nextLive(id + 1)) this.unplace(id);
      return;
    }
    const pages = this.pages, locations = this.locations;
    this.pages = [];
    this.locations = new Uint32Array(this.state.length);
    this.bump = rowStorePageBytes;
    this.bumpPage = -1;
    this.freeSpans = new Map();
    this.freePages = [];
    for (let id = this.nextLive(0); id >= 0 && id < idsStart; id = this.nextLive(id + 1)) {
      const location = locations[id];
      const page = pages[location >>> locationOffsetBits], at = (location & locationOffsetMask) * spanAlignBytes;
      this.place(id, page, at + 4, lengthAt(page, at));
    }
  }

  protected override growIds(capacity: number): void {
    super.growIds(capacity);
    const grown = new Uint32Array(capacity);
    grown.set(this.locations);
    this.locations = grown;
  }

  private write(page: Uint8Array, at: number, src: Uint8Array, srcStart: number, length: number): void {
    page[at] = length & 0xff; page[at + 1] = (length >>> 8) & 0xff;
    page[at + 2] = (length >>> 16) & 0xff; page[at + 3] = length >>> 24;
    copyBytes(page, at + 4, src, srcStart, length);
  }

  /** Finds space for a row (a freed span of its size, the shared page's free end, a new page) and writes it. */
  private place(id: number, src: Uint8Array, srcStart: number, length: number): void {
    const span = spanOf(length);
    let location: number;
    if (span > rowStorePageBytes) {
      const page = new Uint8Array(span);
      location = this.pageIndex(page) << locationOffsetBits;
    } else {
      const reuse = this.freeSpans.get(span);
      if (reuse !== undefined && reuse.length > 0) {
        location = reuse.pop()!;
      } else {
        if (this.bump + span > rowStorePageBytes) {
          this.bumpPage = this.pageIndex(new Uint8Array(rowStorePageBytes));
          this.bump = 0;
        }
        location = ((this.bumpPage << locationOffsetBits) | (this.bump / spanAlignBytes)) >>> 0;
        this.bump += span;
      }
    }
    this.locations[id] = location;
    this.write(this.pages[location >>> locationOffsetBits], (location & locationOffsetMask) * spanAlignBytes, src, srcStart, length);
  }

  /** Gives the space of row `id` back: its span to the free list of its size, or its large page. */
  private unplace(id: number): void {
    this.locate(id);
    const span = spanOf(this.length);
    const location = this.locations[id];
    if (span > rowStorePageBytes) {
      const p = location >>> locationOffsetBits;
      this.pages[p] = emptyPage;
      this.freePages.push(p);
      return;
    }
    let list = this.freeSpans.get(span);
    if (list === undefined) this.freeSpans.set(span, (list = []));
    list.push(location);
  }

  private pageIndex(page: Uint8Array): number {
    if (this.freePages.length > 0) {
      const p = this.freePages.pop()!;
      this.pages[p] = page;
      return p;
    }
    assert(this.pages.length < rowStorePagesPerTableMax, `a table holds more than ${rowStorePagesPerTableMax} pages`);
    this.pages.push(page);
    return this.pages.length - 1;
  }
}

const locationOffsetMask = (1 << locationOffsetBits) - 1;
const emptyPage = new Uint8Array(0);

/** The u32 length in front of the row whose span starts at `at`. */
function lengthAt(page: Uint8Array, at: number): number {
  return (page[at] | (page[at + 1] << 8) | (page[at + 2] << 16) | (page[at + 3] << 24)) >>> 0;
}

function spanOf(length: number): number {
  return (4 + length + spanAlignBytes - 1) & ~(spanAlignBytes - 1);
}

export function createRowStore(widthBytes: number | undefined): RowStore {
  return widthBytes === undefined ? new VarRowStore() : new FixedRowStore(widthBytes);
}

const slotEmpty = 0, slotDeleted = -1;
/**
 * Slots a pass reads in the time of one probe that removes a row id: in a table past the caches a probe is a cache
 * miss or two (~100 ns; the rollback of 380k rows inserted into a 1M-row table took 70 ms with a probe per row, 26 ms
 * with a pass), a pass reads slots in order (~5 ns each: 10.8 ms for 2M slots). Below 1/16 of the slots a pass would
 * cost more (docs/performance.md "Insert-loop rollback").
 */
const probeSlotReads = 16;
/** Grow at 3/4 full (live + deleted slots): linear probing stays short. */
const hashLoadMax = 0.75;
/**
 * Slots of the table being replaced that each add moves into its successor. Growing all at once read every entry's
 * row in one syscall: 120 ms at 780k rows, 1-2 s at 10M, a stall no call limit could stop (an insert loop stopped at
 * 1.09-1.2x its limit). Spread over the adds that follow the grow, each add moves ~6 entries (~1 us in a large table).
 */
export const rehashSlotsPerAdd = 8;
// The successor must not fill before the old table is drained. It starts empty; a same-size rebuild (only deleted
// slots to drop) begins with at most hashLoadMax / 2 of the slots live, leaving hashLoadMax / 2 of them for adds,
// and draining takes slots / rehashSlotsPerAdd adds.
assert(1 / rehashSlotsPerAdd < hashLoadMax / 2, 'a hash could fill up while it still drains its old table');

/**
 * An open-addressing hash table (linear probing) of row ids: each slot is an Int32 (row id + 1; 0 empty, -1 deleted)
 * and a tag byte (8 more bits of the key's hash), and keys are not stored but read from the rows (`matches`,
 * `hashOfId`), so an entry costs 5-14 bytes whatever the key. The tag spares reading the row of a slot whose key
 * cannot match: each such read is a cache miss in a large table, and a probe for an absent key (every insert's unique
 * check) passes ~8 occupied slots at the highest load.
 * Growing is incremental: the full table becomes `old`, a new one takes the adds, and each add moves the next
 * `rehashSlotsPerAdd` old slots over (`drainSome`); an entry is in exactly one of the two, so a lookup that misses the
 * new table probes the old one, and a moved slot is marked deleted there.
 */
export abstract class RowIdHash<K> {
  private slots = new Int32Array(16);
  private tags = new Uint8Array(16);
  private mask = 15;
  /** Live + deleted slots of `slots` (a probe stops only at an empty one). */
  private used = 0;
  /** Live entries, in both tables. */
  size = 0;
  /** The table a grow replaced, until every entry has moved (undefined: none); slots before `drainAt` have moved. */
  private old: { slots: Int32Array; tags: Uint8Array; mask: number } | undefined;
  private drainAt = 0;

  /** Hash of the key of row `id` (growing). */
  protected abstract hashOfId(id: number): number;
  protected abstract matches(id: number, key: K): boolean;
  /** Whether stored rows `a` and `b` have the same key (addIds). */
  protected abstract sameKey(a: number, b: number): boolean;

  /** The row id whose key is `key` (hash `hash`), or -1. */
  find(hash: number, key: K): number {
    const m = mix(hash), id = this.findIn(this.slots, this.tags, this.mask, m, key);
    return id >= 0 || this.old === undefined ? id : this.findIn(this.old.slots, this.old.tags, this.old.mask, m, key);
  }

  /** `find` in one table (the current one, or the one a grow is draining), of mixed hash `m`. */
  private findIn(slots: Int32Array, tags: Uint8Array, mask: number, m: number, key: K): number {
    const tag = m >>> 24;
    for (let i = m & mask; ; i = (i + 1) & mask) {
      const s = slots[i];
      if (s === slotEmpty) return -1;
      if (s !== slotDeleted && tags[i] === tag && this.matches(s - 1, key)) return s - 1;
    }
  }

  /** Adds row `id`, whose key hashes to `hash`. The caller has checked uniqueness; the row must be stored already. */
  add(hash: number, id: number): void {
    if (this.old !== undefined) this.drainSome(rehashSlotsPerAdd);
    if (this.used + 1 > this.slots.length * hashLoadMax) this.grow();
    this.place(mix(hash), id + 1);
    this.size++;
  }

  /** Puts slot value `s` (row id + 1) of mixed hash `m` into `slots`, reusing a deleted slot on its way. */
  private place(m: number, s: number): void {
    const slots = this.slots, mask = this.mask;
    let i = m & mask;
    while (slots[i] > 0) i = (i + 1) & mask;
    if (slots[i] === slotEmpty) this.used++;
    slots[i] = s;
    this.tags[i] = m >>> 24;
  }

  /** Starts replacing the full table: twice as large, or as large when dropping its deleted slots leaves room enough. */
  private grow(): void {
    if (this.old !== undefined) this.drainSome(Infinity);    // not while draining (see rehashSlotsPerAdd), but stay right
    this.replaceTable(this.size + 1 > (this.slots.length * hashLoadMax) / 2 ? this.slots.length * 2 : this.slots.length);
  }

  /** An empty table of `length` slots (a power of two) takes over; the current one becomes `old`, to be drained. */
  private replaceTable(length: number): void {
    this.old = { slots: this.slots, tags: this.tags, mask: this.mask };
    this.drainAt = 0;
    this.slots = new Int32Array(length);
    this.tags = new Uint8Array(length);
    this.mask = length - 1;
    this.used = 0;
  }

  /** Moves the entries of the next `count` old slots into the new table; drops the old table once it is empty. */
  private drainSome(count: number): void {
    const old = this.old!.slots, end = Math.min(old.length, this.drainAt + count);
    for (let j = this.drainAt; j < end; j++) {
      const s = old[j];
      if (s <= 0) continue;
      this.place(mix(this.hashOfId(s - 1)), s);
      old[j] = slotDeleted;                          // a removal that finds it in the new table must not leave it here
    }
    this.drainAt = end;
    if (end === old.length) this.old = undefined;
  }

  /**
   * Adds the stored rows `ids` to this empty hash at once (a snapshot restore, a reindex), in the order of their home
   * slots: added one at a time, each is a cache miss at a random slot once the table is past the caches (~100-150 ns
   * at 10M rows), and in slot order the writes sweep the table. Linear probing finds an entry whatever order the
   * entries went in. A row whose key a row added before it has is left out; returns how many were.
   */
  addIds(ids: Int32Array): number {
    assert(this.used === 0 && this.old === undefined, 'addIds fills an empty hash');
    const count = ids.length;
    this.reserve(count);
    const mask = this.mask, slots = this.slots, tags = this.tags;
    const homes = new Uint32Array(count);
    for (let k = 0; k < count; k++) homes[k] = mix(this.hashOfId(ids[k]));
    const { order, sortedHomes } = orderByHomeSlot(homes, mask);
    let clashes = 0;
    for (let j = 0; j < count; j++) {
      const m = sortedHomes[j], tag = m >>> 24, id = ids[order[j]];
      let i = m & mask, clash = false;
      for (let s = slots[i]; s !== slotEmpty; i = (i + 1) & mask, s = slots[i]) {
        if (tags[i] === tag && this.sameKey(s - 1, id)) { clash = true; break; }
      }
      if (clash) { clashes++; continue; }
      slots[i] = id + 1;
      tags[i] = tag;
    }
    this.used = this.size = count - clashes;
    return clashes;
  }

  /** Removes row `id`, whose key hashes to `hash` (the row's bytes need not be there any more); false if absent. */
  remove(hash: number, id: number): boolean {
    const m = mix(hash);
    const removed = removeSlot(this.slots, this.mask, m, id + 1) || (this.old !== undefined && removeSlot(this.old.slots, this.old.mask, m, id + 1));
    if (removed) this.size--;
    return removed;
  }

  /**
   * Removes the entries of every row id from `idsStart` on, `count` of them, in one pass over the slots, when that
   * costs less than a probe each (rollback of a transaction's own rows, store.ts); false, and nothing done, when not.
   */
  removeIdsFrom(idsStart: number, count: number): boolean {
    const slotCount = this.slots.length + (this.old?.slots.length ?? 0);
    if (count * probeSlotReads < slotCount) return false;
    const removed = removeSlotsFrom(this.slots, idsStart + 1) + (this.old === undefined ? 0 : removeSlotsFrom(this.old.slots, idsStart + 1));
    assert(removed === count, 'the hash held another number of rows from the id given');
    this.size -= removed;
    return true;
  }

  /** Calls `f` with every row id: in slot order, the old table's after the new one's while a grow drains. */
  forEachId(f: (id: number) => void): void {
    for (const slots of this.old === undefined ? [this.slots] : [this.slots, this.old.slots]) {
      for (let i = 0; i < slots.length; i++) if (slots[i] > 0) f(slots[i] - 1);
    }
  }

  clear(): void {
    this.slots = new Int32Array(16);
    this.tags = new Uint8Array(16);
    this.mask = 15;
    this.used = 0;
    this.size = 0;
    this.old = undefined;
  }

  /**
   * Room for `count` entries without growing: one table of the final size where growing by doubling would rehash
   * every entry again at each step, reading its row (a snapshot restore knows its row count: the rehashes were 30 %
   * of opening 10M rows). At once, not spread over later adds: its caller is loading the table.
   */
  reserve(count: number): void {
    if (this.old !== undefined) this.drainSome(Infinity);
    let length = this.slots.length;
    while (count > length * hashLoadMax) length *= 2;
    if (length === this.slots.length) return;
    this.replaceTable(length);
    this.drainSome(Infinity);
  }
}

/** Marks the slot holding `s` (row id + 1, home at mixed hash `m`) deleted; false if the table does not hold it. */
function removeSlot(slots: Int32Array, mask: number, m: number, s: number): boolean {
  for (let i = m & mask; ; i = (i + 1) & mask) {
    const at = slots[i];
    if (at === slotEmpty) return false;
    if (at === s) { slots[i] = slotDeleted; return true; }
  }
}

/** Marks deleted every slot holding a row id + 1 of `min` or more (one pass); returns how many it marked. */
function removeSlotsFrom(slots: Int32Array, min: number): number {
  let removed = 0;
  for (let i = 0; i < slots.length; i++) if (slots[i] >= min) { slots[i] = slotDeleted; removed++; }
  return removed;
}

/**
 * The indices of `homes` (mixed hashes) in the order of their home slots (`& mask`), by the top 16 bits of the slot
 * number (one counting sort), with the hashes in that order beside them: within one bucket the slots lie at most
 * 2^(bits - 16) apart, so a pass reading both in order writes the slot table as a sweep.
 */
function orderByHomeSlot(homes: Uint32Array, mask: number): { order: Int32Array; sortedHomes: Uint32Array } {
  const shift = Math.max(0, 32 - Math.clz32(mask) - 16);
  const starts = new Int32Array((mask >>> shift) + 2);
  for (let k = 0; k < homes.length; k++) starts[((homes[k] & mask) >>> shift) + 1]++;
  for (let b = 1; b < starts.length; b++) starts[b] += starts[b - 1];
  const order = new Int32Array(homes.length), sortedHomes = new Uint32Array(homes.length);
  for (let k = 0; k < homes.length; k++) {
    const m = homes[k], at = starts[(m & mask) >>> shift]++;
    order[at] = k;
    sortedHomes[at] = m;
  }
  return { order, sortedHomes };
}

/** Spreads a 32-bit hash so that sequential keys land in different slots of a power-of-two table (murmur3's fmix). */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a over `length` bytes of `b` from `start`. */
function hashBytes(b: Uint8Array, start: number, length: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/**
 * Set semantics for tables without a unique index: the stored rows by their bytes (a RowIdHash over the row store,
 * replacing a Map from a latin1 string of every row).
 */
export class RowSet extends RowIdHash<Uint8Array> {
  constructor(private readonly rows: RowStore) { super(); }

  protected hashOfId(id: number): number {
    this.rows.locate(id);
    return hashBytes(this.rows.page, this.rows.start, this.rows.length);
  }

  protected matches(id: number, row: Uint8Array): boolean {
    return this.rows.equals(id, row, 0, row.length);
  }

  protected sameKey(a: number, b: number): boolean {
    const rows = this.rows;
    rows.locate(b);
    return rows.equals(a, rows.page, rows.start, rows.length);
  }

  /** The id of a stored row byte-equal to `row`, or undefined. */
  findRow(row: Uint8Array): number | undefined {
    const id = this.find(hashBytes(row, 0, row.length), row);
    return id < 0 ? undefined : id;
  }

  /** Adds stored row `id`. */
  addId(id: number): void { this.add(this.hashOfId(id), id); }

  /** Removes stored row `id`; call before its bytes change. */
  removeId(id: number): void {
    assert(this.remove(this.hashOfId(id), id), 'removing a row the row set does not hold');
  }
}
