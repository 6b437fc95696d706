// bench/engine-v2/rowstore.ts — a prototype row store with rows off the JS heap: BSATN rows in fixed-size pages
// (ArrayBuffers), unique integer indexes holding row ids (not rows), and an undo log / TxData arena per transaction.
//
//   FixedRowStore   rows of one width (the keynote account: u32 id + i64 balance = 12 bytes) in pages of 2^16 rows;
//                   row id = page << 16 | slot; freed slots go on an Int32Array stack.
//   VarRowStore     rows of any width, each stored as u32 length + BSATN in 1 MiB pages (bump allocation; freed space
//                   goes to per-size-class free lists, 8-byte classes); row id → location in a Uint32Array
//                   (page << 20 | offset), so a page is self-describing (a snapshot can copy pages as they are).
//   U32UniqueIndex  open addressing (linear probing) over an Int32Array of row id + 1 (0 = empty, -1 = deleted); the
//                   key is read from the row itself, so an entry is 4 bytes and the index stays ≤ 75 % full.
//   RowTx           one transaction: update/insert/delete record the old bytes in an undo arena and the new/old rows
//                   in a TxData arena (what the commit log and subscriptions consume); rollback replays the undo.
//
// No per-row JS object exists anywhere: V8's heap holds a few hundred page objects whatever the row count, so GC work
// does not grow with the data. Measured by bench/engine-v2/rowstore-bench.ts.
// Owns: nothing outside itself. May call: nothing (plain JS, so in-isolate.ts can run it inside an isolate).

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/**
 * Copies n bytes. Rows are short: a byte loop beats `set(subarray(...))`, which allocates a view per copy (measured:
 * that garbage alone caused ~300 young-generation GCs per 1.5 s of keynote transfers).
 */
export function copyBytes(dst: Uint8Array, dstOffset: number, src: Uint8Array, srcOffset: number, n: number): void {
  if (n > 64) { dst.set(src.subarray(srcOffset, srcOffset + n), dstOffset); return; }
  for (let i = 0; i < n; i++) dst[dstOffset + i] = src[srcOffset + i];
}

const rowsPerPageLog2 = 16;
const rowsPerPage = 1 << rowsPerPageLog2;
const slotMask = rowsPerPage - 1;

/** Rows of one fixed width. */
export class FixedRowStore {
  readonly pages: Uint8Array[] = [];
  readonly views: DataView[] = [];
  private freeSlots = new Int32Array(1024);
  private freeCount = 0;
  private highWater = 0;
  live = 0;

  constructor(readonly rowBytes: number) {}

  /** A fresh or reused row id (its bytes are whatever was there: the caller writes them). */
  allocate(): number {
    this.live++;
    if (this.freeCount > 0) return this.freeSlots[--this.freeCount];
    const id = this.highWater++;
    if ((id & slotMask) === 0) {
      const page = new Uint8Array(this.rowBytes * rowsPerPage);
      this.pages.push(page);
      this.views.push(new DataView(page.buffer));
    }
    return id;
  }

  release(id: number): void {
    if (this.freeCount === this.freeSlots.length) {
      const grown = new Int32Array(this.freeSlots.length * 2);
      grown.set(this.freeSlots);
      this.freeSlots = grown;
    }
    this.freeSlots[this.freeCount++] = id;
    this.live--;
  }

  offsetOf(id: number): number {
    return (id & slotMask) * this.rowBytes;
  }

  write(id: number, src: Uint8Array, srcOffset: number): void {
    copyBytes(this.pages[id >>> rowsPerPageLog2], (id & slotMask) * this.rowBytes, src, srcOffset, this.rowBytes);
  }

  /** Copies the row into `dst` at `dstOffset` (the exchange buffer, an undo arena, a TxData arena). */
  read(id: number, dst: Uint8Array, dstOffset: number): void {
    copyBytes(dst, dstOffset, this.pages[id >>> rowsPerPageLog2], (id & slotMask) * this.rowBytes, this.rowBytes);
  }

  u32At(id: number, fieldOffset: number): number {
    return this.views[id >>> rowsPerPageLog2].getUint32((id & slotMask) * this.rowBytes + fieldOffset, true);
  }

  /** Bytes this store holds in ArrayBuffers (pages + free list). */
  get bytes(): number {
    return this.pages.length * this.rowBytes * rowsPerPage + this.freeSlots.byteLength;
  }
}

const varPageBytesLog2 = 20;
const varPageBytes = 1 << varPageBytesLog2;
const varOffsetMask = varPageBytes - 1;
const sizeClassBytes = 8;

/** Rows of any width: u32 length + BSATN, 8-byte aligned, in 1 MiB pages. */
export class VarRowStore {
  readonly pages: Uint8Array[] = [];
  readonly views: DataView[] = [];
  /** Row id → page << 20 | offset of its length prefix. */
  private locations = new Uint32Array(1024);
  private freeIds: number[] = [];
  private nextId = 0;
  private bump = varPageBytes;                        // forces a page on first use
  /** Freed spans by size class (span bytes / 8): locations to reuse. Small-integer arrays stay off V8's object graph. */
  private readonly freeSpans = new Map<number, number[]>();
  live = 0;

  private span(length: number): number {
    return (4 + length + sizeClassBytes - 1) & ~(sizeClassBytes - 1);
  }

  private place(spanBytes: number): number {
    assert(spanBytes <= varPageBytes, 'a row larger than a page needs a large-object page (not in this prototype)');
    const reuse = this.freeSpans.get(spanBytes);
    if (reuse !== undefined && reuse.length > 0) return reuse.pop()!;
    if (this.bump + spanBytes > varPageBytes) {
      const page = new Uint8Array(varPageBytes);
      this.pages.push(page);
      this.views.push(new DataView(page.buffer));
      this.bump = 0;
    }
    const location = ((this.pages.length - 1) << varPageBytesLog2) | this.bump;
    this.bump += spanBytes;
    return location >>> 0;
  }

  private unplace(location: number): void {
    const spanBytes = this.span(this.views[location >>> varPageBytesLog2].getUint32(location & varOffsetMask, true));
    let list = this.freeSpans.get(spanBytes);
    if (list === undefined) this.freeSpans.set(spanBytes, (list = []));
    list.push(location);
  }

  insert(src: Uint8Array, srcOffset: number, length: number): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
    if (id >= this.locations.length) {
      const grown = new Uint32Array(this.locations.length * 2);
      grown.set(this.locations);
      this.locations = grown;
    }
    const location = this.place(this.span(length));
    this.locations[id] = location;
    const at = location & varOffsetMask;
    const page = location >>> varPageBytesLog2;
    this.views[page].setUint32(at, length, true);
    copyBytes(this.pages[page], at + 4, src, srcOffset, length);
    this.live++;
    return id;
  }

  /** Replaces the row's bytes; in place when the new bytes fit the same size class. */
  replace(id: number, src: Uint8Array, srcOffset: number, length: number): void {
    let location = this.locations[id];
    if (this.span(this.lengthOf(id)) !== this.span(length)) {
      this.unplace(location);
      location = this.locations[id] = this.place(this.span(length));
    }
    const at = location & varOffsetMask;
    const page = location >>> varPageBytesLog2;
    this.views[page].setUint32(at, length, true);
    copyBytes(this.pages[page], at + 4, src, srcOffset, length);
  }

  remove(id: number): void {
    this.unplace(this.locations[id]);
    this.freeIds.push(id);
    this.live--;
  }

  lengthOf(id: number): number {
    const location = this.locations[id];
    return this.views[location >>> varPageBytesLog2].getUint32(location & varOffsetMask, true);
  }

  /** Copies the row's BSATN into `dst` at `dstOffset`; returns its length. */
  read(id: number, dst: Uint8Array, dstOffset: number): number {
    const location = this.locations[id];
    const at = location & varOffsetMask;
    const page = location >>> varPageBytesLog2;
    const length = this.views[page].getUint32(at, true);
    copyBytes(dst, dstOffset, this.pages[page], at + 4, length);
    return length;
  }

  u32At(id: number, fieldOffset: number): number {
    const location = this.locations[id];
    return this.views[location >>> varPageBytesLog2].getUint32((location & varOffsetMask) + 4 + fieldOffset, true);
  }

  get bytes(): number {
    return this.pages.length * varPageBytes + this.locations.byteLength;
  }
}

interface U32KeyedStore { u32At(id: number, fieldOffset: number): number }

const emptySlot = 0;
const deletedSlot = -1;
const loadFactorMax = 0.75;

/** A unique index on a u32 column: entries are row ids; the key is read from the row. */
export class U32UniqueIndex {
  private slots: Int32Array;
  private mask: number;
  private shift: number;
  private used = 0;                                   // live + deleted slots (probing stops only at empty ones)
  size = 0;

  constructor(private readonly store: U32KeyedStore, private readonly keyOffset: number, capacityLog2 = 10) {
    this.slots = new Int32Array(1 << capacityLog2);
    this.mask = (1 << capacityLog2) - 1;
    this.shift = 32 - capacityLog2;
  }

  private home(key: number): number {
    return Math.imul(key, 0x9e3779b1) >>> this.shift;  // Fibonacci hashing: the top bits spread sequential keys
  }

  /** The row id holding `key`, or -1. */
  find(key: number): number {
    const slots = this.slots;
    for (let i = this.home(key); ; i = (i + 1) & this.mask) {
      const s = slots[i];
      if (s === emptySlot) return -1;
      if (s !== deletedSlot && this.store.u32At(s - 1, this.keyOffset) === key) return s - 1;
    }
  }

  /** Adds `id` under its row's key; false (nothing added) if the key is taken. */
  insert(id: number): boolean {
    const key = this.store.u32At(id, this.keyOffset);
    if (this.find(key) !== -1) return false;
    if (this.used + 1 > this.slots.length * loadFactorMax) {
      // Full of live entries: double. Mostly deleted slots: rebuild at the same size.
      this.rehash(this.size + 1 > (this.slots.length * loadFactorMax) / 2 ? 1 : 0);
    }
    const slots = this.slots;
    let i = this.home(key);
    while (slots[i] > 0) i = (i + 1) & this.mask;
    if (slots[i] === emptySlot) this.used++;
    slots[i] = id + 1;
    this.size++;
    return true;
  }

  remove(key: number): number {
    const slots = this.slots;
    for (let i = this.home(key); ; i = (i + 1) & this.mask) {
      const s = slots[i];
      if (s === emptySlot) return -1;
      if (s !== deletedSlot && this.store.u32At(s - 1, this.keyOffset) === key) {
        slots[i] = deletedSlot;
        this.size--;
        return s - 1;
      }
    }
  }

  /** Rebuilds the table, `grow` times twice as large (0: same size, dropping deleted slots). */
  private rehash(grow: number): void {
    const old = this.slots;
    const log2 = 32 - this.shift + grow;
    this.slots = new Int32Array(1 << log2);
    this.mask = (1 << log2) - 1;
    this.shift = 32 - log2;
    this.used = 0;
    for (let j = 0; j < old.length; j++) {
      const s = old[j];
      if (s <= 0) continue;
      let i = this.home(this.store.u32At(s - 1, this.keyOffset));
      while (this.slots[i] !== emptySlot) i = (i + 1) & this.mask;
      this.slots[i] = s;
      this.used++;
    }
  }

  get bytes(): number {
    return this.slots.byteLength;
  }
}

/** A growable byte arena (undo log, TxData): reset per transaction, never shrinks. */
export class Arena {
  bytes = new Uint8Array(1 << 12);
  view = new DataView(this.bytes.buffer);
  length = 0;

  reserve(n: number): number {
    const at = this.length;
    if (at + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, at + n));
      grown.set(this.bytes.subarray(0, at));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = at + n;
    return at;
  }
}

const opUpdate = 1, opInsert = 2, opDelete = 3;

/**
 * One transaction over a fixed-width table with a unique u32 key. Undo records: op u8, row id u32, old row bytes.
 * TxData: op u8 + row bytes for each deleted (old) and inserted (new) row, in order — the bytes a commit log record
 * and the subscription evaluator would take as they are.
 */
export class RowTx {
  readonly undo = new Arena();
  readonly txData = new Arena();

  constructor(private readonly store: FixedRowStore, private readonly pk: U32UniqueIndex, private readonly keyOffset: number) {}

  /** Replaces the row with the same key as `row` (at `offset` of `src`); false if there is none. */
  update(src: Uint8Array, offset: number): boolean {
    const store = this.store;
    const key = src[offset + this.keyOffset] | (src[offset + this.keyOffset + 1] << 8) |
      (src[offset + this.keyOffset + 2] << 16) | (src[offset + this.keyOffset + 3] << 24);
    const id = this.pk.find(key >>> 0);
    if (id === -1) return false;
    const w = store.rowBytes;
    const u = this.undo.reserve(5 + w);
    this.undo.bytes[u] = opUpdate;
    this.undo.view.setUint32(u + 1, id, true);
    store.read(id, this.undo.bytes, u + 5);
    const t = this.txData.reserve(2 + 2 * w);
    this.txData.bytes[t] = opDelete;
    copyBytes(this.txData.bytes, t + 1, this.undo.bytes, u + 5, w);
    this.txData.bytes[t + 1 + w] = opInsert;
    copyBytes(this.txData.bytes, t + 2 + w, src, offset, w);
    store.write(id, src, offset);
    return true;
  }

  /** Inserts a row; false if its key is taken (nothing changes). */
  insert(src: Uint8Array, offset: number): boolean {
    const store = this.store;
    const id = store.allocate();
    store.write(id, src, offset);
    if (!this.pk.insert(id)) { store.release(id); return false; }
    const u = this.undo.reserve(5);
    this.undo.bytes[u] = opInsert;
    this.undo.view.setUint32(u + 1, id, true);
    const t = this.txData.reserve(1 + store.rowBytes);
    this.txData.bytes[t] = opInsert;
    copyBytes(this.txData.bytes, t + 1, src, offset, store.rowBytes);
    return true;
  }

  /** Ends the transaction; returns the length of its TxData (txData.bytes[0..length), valid until the next one). */
  commit(): number {
    const length = this.txData.length;
    this.undo.length = 0;
    this.txData.length = 0;
    return length;
  }

  rollback(): void {
    const store = this.store;
    const w = store.rowBytes;
    // Walk the undo records backwards: collect their starts first (records have two sizes).
    const starts: number[] = [];
    for (let at = 0; at < this.undo.length; at += this.undo.bytes[at] === opUpdate ? 5 + w : 5) starts.push(at);
    for (let k = starts.length - 1; k >= 0; k--) {
      const at = starts[k];
      const id = this.undo.view.getUint32(at + 1, true);
      if (this.undo.bytes[at] === opUpdate) store.write(id, this.undo.bytes, at + 5);
      else { this.pk.remove(store.u32At(id, this.keyOffset)); store.release(id); }
    }
    this.undo.length = 0;
    this.txData.length = 0;
  }
}
