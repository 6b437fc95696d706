// datastore/table.ts — the state of one table: rows, indexes, sequences, and the helpers that keep them in step.
//
// Owns: TableState (its row store — rows by row id, off the JS heap, see rowstore.ts — the index stores, the row set
// for tables without a unique index, sequence state) and the per-table compiled codecs (row validation, index keys,
// column locator). Rows given to this file are copied into the row store; stored rows are read through
// `rows.locate`/`view` (transient) or `rows.copy`. Transactions, undo and TxData live in store.ts; this file only
// holds the structure store.ts records a transaction's writes in (TouchLog, one per table).
// May call: datastore/key, datastore/indexes, datastore/rowstore, datastore/types, sats/codec, sats/bsatn, sats/types.

import assert from 'node:assert';
import { isUtf8 } from 'node:buffer';
import { BsatnReader } from '../sats/bsatn.js';
import { compileCodec, resolveType, type Codec } from '../sats/codec.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import {
  compileColumnLocator, compileIndexKey, fixedWidth, integerColumnTag, staticOffsets, type IndexKey, type IndexKeyCodec,
} from './key.js';
import { createIndexStore, type IndexStore, type RowKeys } from './indexes.js';
import { createRowStore, RowSet, type RowStore } from './rowstore.js';
import {
  DatastoreError, errno, rowLayoutCode, updateGuardBytes, type InfallibleInsert, type InfallibleUpdate, type IndexSchema,
  type SequenceSchema, type TableSchema, type UpdateGuard,
} from './types.js';

/** One index of a table: its key functions, its store, and codecs to validate module key buffers. */
export interface IndexState {
  readonly schema: IndexSchema;
  readonly key: IndexKeyCodec;
  readonly store: IndexStore;
  /** Codecs of the index columns, in key order (validation of module buffers, error messages). */
  readonly columnCodecs: Codec[];
  /** Total byte width of a point key when every index column is a plain number type (then length is validation). */
  readonly pointWidthBytes: number | undefined;
  /** Set when an update through this index cannot fail once its row exists (MutTx.infallibleUpdate). */
  infallibleUpdate: InfallibleUpdate | undefined;
  /** Position of this index in TableState.indexes. */
  position: number;
  /**
   * Positions in TableState.uniqueIndexes of the unique indexes on other columns than this one: the only ones an
   * update through this index can conflict with (an index on the same columns finds the updated row itself).
   */
  otherUniquePositions: number[];
}

/** A sequence's mutable state. `next` is the next value to hand out; it never moves backwards. */
export interface SequenceState {
  readonly schema: SequenceSchema;
  readonly widthBytes: number;
  readonly signed: boolean;
  /** Bounds of the sequence intersected with the column type's range. */
  readonly lo: bigint;
  readonly hi: bigint;
  next: bigint;
}

const numberTags = new Set(['I8', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'I128', 'U128', 'I256', 'U256',
  'F32', 'F64']);

export function integerRange(tag: string): { lo: bigint; hi: bigint; widthBytes: number; signed: boolean } | undefined {
  const m = /^([IU])(8|16|32|64|128|256)$/.exec(tag);
  if (m === null) return undefined;
  const bits = BigInt(m[2]);
  const signed = m[1] === 'I';
  return signed
    ? { lo: -(1n << (bits - 1n)), hi: (1n << (bits - 1n)) - 1n, widthBytes: Number(bits) / 8, signed }
    : { lo: 0n, hi: (1n << bits) - 1n, widthBytes: Number(bits) / 8, signed };
}

export class TableState {
  readonly schema: TableSchema;
  /** Row id → BSATN row; scans go in row-id order. Replaced only by `adoptStore` (migration). */
  rows: RowStore;
  readonly indexes: IndexState[];
  /** The unique indexes (primary key first when there is one): constraint checks and row identity. */
  readonly uniqueIndexes: IndexState[];
  /** Position in `indexes` of each entry of `uniqueIndexes`. */
  readonly uniquePositions: number[];
  /** The stored rows by their bytes, only for tables without a unique index (set semantics, delete by value). */
  byBytes: RowSet | undefined;
  readonly sequences: SequenceState[];
  readonly rowCodec: Codec;
  /** The row layout (rowLayout) when every column has one. */
  private readonly layout: Uint8Array | undefined;
  /** MutTx.infallibleInsert of this table (user tables only; store.ts checks the table id). */
  readonly infallibleInsert: InfallibleInsert | undefined;
  /** MutTx.rowCacheIndex of this table: its first index with an infallibleUpdate. */
  readonly rowCacheIndex: IndexState | undefined;
  /** Byte width of every row when all columns are plain numbers (any bytes are valid: length is the validation). */
  private readonly rowNumericWidthBytes: number | undefined;
  /** Start offset of each column; filled by `locate`. Static offsets are used when known. */
  private readonly offsets: (number | undefined)[];
  private readonly locate: (row: Uint8Array, starts: number[]) => void;
  private readonly starts: number[];
  private readonly columnCodecs: Codec[];
  /** Resolved type tag of each column. */
  private readonly columnTypeTags: string[];
  /**
   * key.ts integerColumnTag of each column: integers and products of one integer (Identity, ConnectionId). One
   * encoding per value, so an index on one of them may read its keys from the rows and identify rows by key bytes.
   */
  private readonly integerTags: (string | undefined)[];
  /** The rows the open transaction wrote (store.ts Transaction fills it; one log per table, reused). */
  readonly touched = new TouchLog();
  /** Scratch keys of the row being written, one per index (avoids computing a key twice). */
  readonly scratchKeys: IndexKey[];
  /** Scratch keys of a stored row (replaceRow reads them before the bytes change). */
  private readonly storedKeys: IndexKey[];

  constructor(schema: TableSchema, typespace: Typespace) {
    this.schema = schema;
    const colTypes = schema.columns.map((c) => c.type);
    this.rowCodec = compileCodec({ tag: 'Product', value: schema.rowType }, typespace);
    this.columnCodecs = colTypes.map((t) => compileCodec(t, typespace));
    this.columnTypeTags = colTypes.map((t) => resolveType(t, typespace).tag);
    this.integerTags = colTypes.map((t) => integerColumnTag(t, typespace));
    this.offsets = staticOffsets(colTypes, typespace);
    this.rowNumericWidthBytes = this.columnTypeTags.every((tag) => numberTags.has(tag))
      ? colTypes.reduce((n, t) => n + fixedWidth(t, typespace)!, 0) : undefined;
    this.locate = compileColumnLocator(colTypes, typespace);
    this.starts = new Array<number>(colTypes.length).fill(0);
    const widths = colTypes.map((t) => fixedWidth(t, typespace));
    this.rows = createRowStore(widths.every((w) => w !== undefined) ? widths.reduce((a, b) => a! + b!, 0) : undefined);
    this.indexes = schema.indexes.map((ix) => {
      const widths = ix.columns.map((c) =>
        numberTags.has(this.columnTypeTags[c]) || this.integerTags[c] !== undefined ? fixedWidth(colTypes[c], typespace) : undefined);
      const key = compileIndexKey(colTypes, ix.columns, typespace);
      return {
        schema: ix,
        key,
        store: createIndexStore(ix, this.rowKeys(key)),
        columnCodecs: ix.columns.map((c) => this.columnCodecs[c]),
        pointWidthBytes: widths.every((w) => w !== undefined) ? widths.reduce((a, b) => a! + b!, 0) : undefined,
        infallibleUpdate: undefined,
        position: 0,
        otherUniquePositions: [],
      };
    });
    const pk = schema.primaryKey;
    this.uniqueIndexes = this.indexes.filter((ix) => ix.schema.unique).sort((a, b) =>
      Number(isPk(b.schema, pk)) - Number(isPk(a.schema, pk)));
    this.uniquePositions = this.uniqueIndexes.map((ix) => this.indexes.indexOf(ix));
    this.byBytes = this.uniqueIndexes.length === 0 ? new RowSet(this.rows) : undefined;
    this.sequences = schema.sequences.map((seq) => {
      const t = resolveType(colTypes[seq.column], typespace);
      const range = integerRange(t.tag);
      assert(range !== undefined, `sequence ${seq.name} on a non-integer column`);
      const lo = seq.min > range.lo ? seq.min : range.lo;
      const hi = seq.max < range.hi ? seq.max : range.hi;
      return { schema: seq, widthBytes: range.widthBytes, signed: range.signed, lo, hi, next: seq.start };
    });
    this.scratchKeys = new Array<IndexKey>(this.indexes.length).fill('');
    this.storedKeys = new Array<IndexKey>(this.indexes.length).fill('');
    const rowShape = rowLayout(colTypes, typespace), layout = rowShape?.layout;
    this.layout = layout;
    this.indexes.forEach((ix, i) => {
      ix.position = i;
      ix.otherUniquePositions = this.uniqueIndexes.flatMap((u, k) => (sameColumns(u.schema.columns, ix.schema.columns) ? [] : [k]));
      ix.infallibleUpdate = this.infallibleUpdateShape(ix, rowShape, colTypes, typespace);
    });
    this.infallibleInsert = this.infallibleInsertShape(layout);
    this.rowCacheIndex = this.indexes.find((ix) => ix.infallibleUpdate !== undefined);
  }

  /**
   * MutTx.infallibleInsert. A table with no sequence and no unique index qualifies with a row layout, not a schedule
   * or event table (the first branch). Otherwise, why each condition: a row layout (the caller validates the row),
   * one sequence on a static,
   * integer column of ≤ 8 bytes with a positive increment (the caller writes the leased value there; leaseSequence
   * keeps values below 2^53 so they are exact JS numbers), every unique index on exactly that column and at least one
   * (leaseSequence checked that no row holds a leased value, and the table has no set semantics to apply), not a
   * schedule table (the host checks schedule rows on write), not an event table.
   */
  private infallibleInsertShape(layout: Uint8Array | undefined): InfallibleInsert | undefined {
    const s = this.schema;
    if (layout === undefined || s.schedule !== undefined || s.isEvent) return undefined;
    if (this.sequences.length === 0 && this.uniqueIndexes.length === 0) {
      // Nothing to generate and no constraint to break: only set semantics, which the insert applies when it is made.
      return { tableId: s.tableId, rowWidthBytes: this.rowNumericWidthBytes ?? 0,
        ...(this.rowNumericWidthBytes === undefined ? { layout } : {}), sequenceOffset: 0, sequenceWidthBytes: 0 };
    }
    if (this.sequences.length !== 1) return undefined;
    const seq = this.sequences[0], col = seq.schema.column;
    if (seq.widthBytes > 8 || seq.schema.increment <= 0n) return undefined;
    if (this.uniqueIndexes.length === 0 || !this.uniqueIndexes.every((u) => sameColumns(u.schema.columns, [col]))) return undefined;
    const sequenceOffset = this.offsets[col];
    if (sequenceOffset === undefined) return undefined;
    return { tableId: s.tableId, rowWidthBytes: this.rowNumericWidthBytes ?? 0,
      ...(this.rowNumericWidthBytes === undefined ? { layout } : {}), sequenceOffset, sequenceWidthBytes: seq.widthBytes };
  }

  /**
   * MutTx.infallibleUpdate for `ix`. Why each condition: rows whose every column has a row layout (see `rowLayout`:
   * then validateRow accepts exactly the rows the layout accepts, which the caller checks), not a schedule table (the
   * host checks schedule rows on write), not an event table, and `ix` on the column of the table's first unique index
   * (the primary key's when there is one; at most one cacheable column per table, so indexes that share a cached row
   * share its key): the new row keeps the found row's key, so that index sees no conflict. Every other unique index
   * and every sequence but the key's becomes a guard (a column the update must keep: then no other unique index sees a
   * conflict, non-unique indexes never refuse a row, and a sequence column that is not 0 generates nothing), which needs
   * a fixed width or a length word (strings, bytes). A sequence on the key itself: `keyNonZero` (a row whose key is
   * not 0 generates nothing, so it cannot overflow). The key's offset must be static, and the key an integer, a product
   * of one (Identity, ConnectionId) or a string: equal keys have equal bytes (not so for floats: -0 and +0), so callers
   * may identify rows by key bytes.
   */
  private infallibleUpdateShape(ix: IndexState, rowShape: ReturnType<typeof rowLayout>, colTypes: AlgebraicType[],
    typespace: Typespace): InfallibleUpdate | undefined {
    const s = this.schema;
    if (!ix.schema.unique || ix.schema.columns.length !== 1) return undefined;
    const col = ix.schema.columns[0], stringKey = this.columnTypeTags[col] === 'String';
    if (ix.pointWidthBytes === undefined && !stringKey) return undefined;
    if (rowShape === undefined || s.schedule !== undefined || s.isEvent) return undefined;
    if (!sameColumns(this.uniqueIndexes[0].schema.columns, ix.schema.columns)) return undefined;
    const keyOffset = this.offsets[col];
    if (keyOffset === undefined || (this.integerTags[col] === undefined && !stringKey)) return undefined;
    const keyWidthBytes = stringKey ? 0 : ix.pointWidthBytes!;
    const keyNonZero = this.sequences.some((q) => q.schema.column === col);
    const sequenceColumns = new Set(this.sequences.map((q) => q.schema.column));
    const guarded = new Set([...this.uniqueIndexes.flatMap((u) => u.schema.columns), ...sequenceColumns]);
    guarded.delete(col);
    const guards: UpdateGuard[] = [];
    for (const g of [...guarded].sort((a, b) => a - b)) {
      const start = rowShape.starts[g], type = resolveType(colTypes[g], typespace);
      const code = variableCode(type, typespace);
      const widthBytes = anyBytesWidth(type, typespace) ?? (code === rowLayoutCode.string || code === rowLayoutCode.bytes ? 0 : undefined);
      if (start === undefined || widthBytes === undefined || start.item > 0xffff || widthBytes > 0xffff) return undefined;
      guards.push({ item: start.item, offset: start.offset, widthBytes, nonZero: sequenceColumns.has(g) });
    }
    if (guards.length === 0 && this.rowNumericWidthBytes !== undefined) {
      return { tableId: s.tableId, rowWidthBytes: this.rowNumericWidthBytes, keyOffset, keyWidthBytes, keyNonZero, guards };
    }
    if (guards.length > 0xff) return undefined;
    return { tableId: s.tableId, rowWidthBytes: 0, keyOffset, keyWidthBytes, keyNonZero, guards,
      layout: guards.length === 0 ? rowShape.layout : guardedLayout(guards, rowShape.layout) };
  }

  /** Throws errno 3 unless `row` is exactly one valid BSATN row of this table. */
  validateRow(row: Uint8Array): void {
    if (this.rowNumericWidthBytes !== undefined) {
      if (row.length === this.rowNumericWidthBytes) return;
      throw new DatastoreError(errno.bsatnDecodeError, `invalid row for table '${this.schema.name}': ` +
        `${row.length} bytes, expected ${this.rowNumericWidthBytes}`);
    }
    // Rows with a layout are checked by walking it (no reader, no decoded strings); a row it refuses goes through
    // the codec below for the error message.
    if (this.layout !== undefined && layoutAccepts(this.layout, row)) return;
    try {
      const r = new BsatnReader(row);
      this.rowCodec.skip(r);
      r.expectEnd('row');
    } catch (e) {
      throw new DatastoreError(errno.bsatnDecodeError,
        `invalid row for table '${this.schema.name}': ${(e as Error).message}`);
    }
  }

  /** validateRow of the row at `bytes[start, start + length)`, with no view made of a valid one (snapshot restore). */
  validateRowAt(bytes: Uint8Array, start: number, length: number): void {
    const width = this.rowNumericWidthBytes;
    if (width !== undefined ? length === width : this.layout !== undefined && layoutAccepts(this.layout, bytes, start, start + length)) return;
    this.validateRow(bytes.subarray(start, start + length));
  }

  /** Start offset of column `col` in a valid row. */
  columnOffset(row: Uint8Array, col: number): number {
    const at = this.offsets[col];
    if (at !== undefined) return at;
    this.locate(row, this.starts);
    return this.starts[col];
  }

  /** Fills scratchKeys with the key of `row` for every index. */
  computeKeys(row: Uint8Array): IndexKey[] {
    const keys = this.scratchKeys;
    for (let i = 0; i < this.indexes.length; i++) keys[i] = this.indexes[i].key.ofRow(row);
    return keys;
  }

  /** Key of stored row `rowId` under `key`, read from its page. */
  private storedKey(key: IndexKeyCodec, rowId: number): IndexKey {
    this.rows.locate(rowId);
    return key.ofRowAt(this.rows.page, this.rows.start);
  }

  /** The keys under `key` of stored rows, read from their pages (this.rows: adoptStore may replace it). */
  private rowKeys(key: IndexKeyCodec): RowKeys {
    return {
      keyOf: (id) => this.storedKey(key, id),
      hashOf: (id) => { const rows = this.rows; rows.locate(id); return key.hashAt(rows.page, rows.start); },
      is: (id, k) => { const rows = this.rows; rows.locate(id); return key.equalsAt(rows.page, rows.start, k); },
    };
  }

  /** Fills storedKeys with the keys of stored row `rowId`. */
  private computeStoredKeys(rowId: number): IndexKey[] {
    const keys = this.storedKeys, rows = this.rows;
    rows.locate(rowId);
    for (let i = 0; i < this.indexes.length; i++) keys[i] = this.indexes[i].key.ofRowAt(rows.page, rows.start);
    return keys;
  }

  /**
   * Snapshot restore into this empty table: indexes the stored rows `idsStart` .. `idsStart + count - 1` at once
   * (IndexStore.addIds). Returns how many rows repeat a unique key, or, in a table without one, another row: each such
   * row makes the snapshot bad.
   */
  indexRange(idsStart: number, count: number): number {
    return this.addIdsTo(this.indexes, consecutiveIds(idsStart, count));
  }

  /** IndexStore.addIds of `ids` into each of `indexes` and into the row set (when the table has one); the clashes. */
  private addIdsTo(indexes: readonly IndexState[], ids: Int32Array): number {
    let clashes = 0;
    for (let i = 0; i < indexes.length; i++) clashes += indexes[i].store.addIds(ids);
    if (this.byBytes !== undefined) clashes += this.byBytes.addIds(ids);
    return clashes;
  }

  /**
   * Bulk load (store.ts bulkLoadRows): adds stored row `rowId` to the non-unique indexes only, as it comes; the unique
   * indexes and the row set wait for indexBulkLoaded. A non-unique index is a tree: built at the end in one sort it
   * would be one step of ~0.5 s at 1M string keys, which calls to a migrating database would wait for, where an add per
   * row spreads its cost over the load's chunks.
   */
  addToNonUniqueIndexes(rowId: number): void {
    for (let i = 0; i < this.indexes.length; i++) {
      const ix = this.indexes[i];
      if (!ix.schema.unique) ix.store.add(this.storedKey(ix.key, rowId), rowId);
    }
  }

  /**
   * Bulk load (store.ts finishBulkLoad): adds the stored rows `idsStart` .. `idsStart + count - 1`, already in the
   * non-unique indexes (addToNonUniqueIndexes), to the unique indexes and the row set, each in one bulk load
   * (IndexStore.addIds: home slots in order, no grows), ending as adding them one at a time in row-id order would
   * (identicalOrConflict, then addRow): a row byte-equal to an earlier one is removed (set semantics), and the first
   * row, in row-id order, that repeats an earlier row's key in a unique index throws that index's violation (the first
   * such index in uniqueIndexes order), with the indexes partly built: the caller empties the table.
   */
  indexBulkLoaded(idsStart: number, count: number): void {
    const ids = consecutiveIds(idsStart, count);
    if (this.addIdsTo(this.uniqueIndexes, ids) > 0) this.dropRepeatedRows(ids);
  }

  /**
   * indexBulkLoaded's rows that a unique index or the row set left out (a later row with an earlier one's key: addIds
   * keeps the first): the byte-equal ones are removed from the non-unique indexes and the row store, any other throws as
   * identicalOrConflict would. The removed rows' ids are free: a later insert may take one (loadRows never handed them
   * out), which moves that row in scans (row-id order), not in or out of any answer.
   */
  private dropRepeatedRows(ids: Int32Array): void {
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (this.heldByEveryUniqueIndex(id)) continue;
      for (let i = 0; i < this.indexes.length; i++) {
        const ix = this.indexes[i];
        if (!ix.schema.unique) ix.store.remove(this.storedKey(ix.key, id), id);
      }
      this.rows.remove(id);
    }
    this.rows.releasePending();
  }

  /** Whether the row set or every unique index holds stored row `id`; false for a copy of a held row; throws otherwise. */
  private heldByEveryUniqueIndex(id: number): boolean {
    if (this.byBytes !== undefined) return this.byBytes.findRow(this.rows.view(id)) === id;
    for (let i = 0; i < this.uniqueIndexes.length; i++) {
      const ix = this.uniqueIndexes[i];
      const holder = ix.store.find(this.storedKey(ix.key, id));
      if (holder === id) continue;
      assert(holder !== undefined, 'a bulk-loaded row missing from a unique index with no row of its key');
      // An identical row has the first index's key of the row held, and is left out of every unique index.
      const row = this.rows.view(id);
      if (i === 0 && this.rows.equals(holder, row, 0, row.length)) return false;
      throw this.uniqueViolation(ix, this.rows.copy(id));
    }
    return true;
  }

  /** Stores a copy of `row` with keys already in `keys` (one per index); returns its row id. */
  addRow(row: Uint8Array, keys: IndexKey[]): number {
    const rowId = this.rows.insert(row, 0, row.length);
    this.indexRow(rowId, keys);
    return rowId;
  }

  /** Stores a copy of `row` under `rowId`, which the open transaction removed (rollback). */
  restoreRow(rowId: number, row: Uint8Array): void {
    this.rows.insertAt(rowId, row, 0, row.length);
    this.indexRow(rowId, this.computeKeys(row));
  }

  private indexRow(rowId: number, keys: IndexKey[]): void {
    for (let i = 0; i < this.indexes.length; i++) this.indexes[i].store.add(keys[i], rowId);
    this.byBytes?.addId(rowId);
  }

  removeRow(rowId: number): void {
    const keys = this.computeStoredKeys(rowId);
    for (let i = 0; i < this.indexes.length; i++) this.indexes[i].store.remove(keys[i], rowId);
    this.byBytes?.removeId(rowId);
    this.rows.remove(rowId);
  }

  /**
   * Takes the rows under ids from `idsStart` on (`count` of them, all in the touched log: the open transaction's own,
   * store.ts rollbackTable) out of every index and the row set; their bytes stay (RowStore.truncate drops them). Each
   * store drops them at once where it can and that pays (IndexStore.removeIdsFrom), else one key and removal each.
   */
  unindexFrom(idsStart: number, count: number): void {
    const log = this.touched, ids = log.ids, after = log.after;
    for (let i = 0; i < this.indexes.length; i++) {
      const ix = this.indexes[i];
      if (ix.store.removeIdsFrom(idsStart, count)) continue;
      for (let k = 0; k < log.count; k++) {
        const id = ids[k];
        if (id >= idsStart && after[k] !== null) ix.store.remove(this.storedKey(ix.key, id), id);
      }
    }
    const set = this.byBytes;
    if (set === undefined || set.removeIdsFrom(idsStart, count)) return;
    for (let k = 0; k < log.count; k++) if (ids[k] >= idsStart && after[k] !== null) set.removeId(ids[k]);
  }

  /**
   * Puts `row` back under live row `rowId` (rollback of an update) when it has the stored row's key in every index, so
   * that no index entry moves; false, and nothing done, when a key differs.
   */
  restoreInPlace(rowId: number, row: Uint8Array): boolean {
    const storedKeys = this.computeStoredKeys(rowId), keys = this.computeKeys(row);
    for (let i = 0; i < this.indexes.length; i++) if (storedKeys[i] !== keys[i]) return false;
    this.byBytes?.removeId(rowId);
    this.rows.replace(rowId, row, 0, row.length);
    this.byBytes?.addId(rowId);
    return true;
  }

  /**
   * Replaces the row under `rowId` keeping its id; only index entries whose key changed move. `newKeys` are the keys
   * of `newRow` (one per index) when the caller already computed them.
   */
  replaceRow(rowId: number, newRow: Uint8Array, newKeys: IndexKey[] = this.computeKeys(newRow)): void {
    const oldKeys = this.computeStoredKeys(rowId);
    this.byBytes?.removeId(rowId);
    this.rows.replace(rowId, newRow, 0, newRow.length);
    // After the bytes: an index that grows while adding re-reads every row's key, this one's included.
    for (let i = 0; i < this.indexes.length; i++) {
      const ix = this.indexes[i];
      const oldKey = oldKeys[i], newKey = newKeys[i];
      if (oldKey !== newKey) { ix.store.remove(oldKey, rowId); ix.store.add(newKey, rowId); }
    }
    this.byBytes?.addId(rowId);
  }

  /**
   * Set semantics and unique constraints for a row about to be added, `keys` its computeKeys: the id of a stored
   * row byte-equal to it (nothing to add), undefined when it may be added; throws the unique violation otherwise.
   */
  identicalOrConflict(row: Uint8Array, keys: IndexKey[]): number | undefined {
    if (this.byBytes !== undefined) return this.byBytes.findRow(row);
    for (let i = 0; i < this.uniqueIndexes.length; i++) {
      const ix = this.uniqueIndexes[i];
      const existing = ix.store.find(keys[this.uniquePositions[i]]);
      if (existing === undefined) continue;
      // An identical row matches on every unique index, so checking the first one decides set semantics.
      if (i === 0 && this.rows.equals(existing, row, 0, row.length)) return existing;
      throw this.uniqueViolation(ix, row);
    }
    return undefined;
  }

  /** The id of a stored row byte-equal to `row` (valid BSATN), or undefined. */
  findIdentical(row: Uint8Array): number | undefined {
    if (this.byBytes !== undefined) return this.byBytes.findRow(row);
    const id = this.uniqueIndexes[0].store.find(this.uniqueIndexes[0].key.ofRow(row));
    if (id === undefined) return undefined;
    return this.rows.equals(id, row, 0, row.length) ? id : undefined;
  }

  clearAll(): void {
    this.rows.clear();
    for (const ix of this.indexes) ix.store.clear();
    this.byBytes?.clear();
  }

  /**
   * Migration: takes over `rows` (another table's store, with rows valid here and of this table's width) as this
   * table's, and builds every index over it except those in `shared` (position → the old table's store of the same
   * index, which from now on reads its keys through this table).
   */
  adoptStore(rows: RowStore, shared: (IndexStore | undefined)[]): void {
    assert(this.rows.size === 0 && rows.widthBytes === this.rows.widthBytes, 'adopting rows of another shape');
    this.rows = rows;
    if (this.byBytes !== undefined) this.byBytes = new RowSet(rows);
    for (let i = 0; i < this.indexes.length; i++) {
      const store = shared[i];
      if (store === undefined) continue;
      store.readKeysFrom(this.rowKeys(this.indexes[i].key));
      (this.indexes[i] as { store: IndexStore }).store = store;
    }
    this.reindex(shared.map((s) => s !== undefined));
  }

  /**
   * Builds the indexes (but those whose position `kept` marks) and the row set anew over the stored rows, after the
   * rows changed in bulk (adoptStore; store.ts's rollback in bulk), each in one bulk load (IndexStore.addIds).
   */
  reindex(kept: readonly boolean[] = []): void {
    const rows = this.rows, liveIds = new Int32Array(rows.size);
    let at = 0;
    for (let id = rows.nextLive(0); id >= 0; id = rows.nextLive(id + 1)) liveIds[at++] = id;
    for (let i = 0; i < this.indexes.length; i++) {
      if (kept[i] === true) continue;
      const store = this.indexes[i].store;
      store.clear();
      assert(store.addIds(liveIds) === 0, 'stored rows repeat a unique key');
    }
    const set = this.byBytes;
    if (set === undefined) return;
    set.clear();
    assert(set.addIds(liveIds) === 0, 'stored rows repeat a row');
  }

  /** Human-readable value of index columns of `row`, for error messages. */
  describeKey(ix: IndexState, row: Uint8Array): string {
    const parts = ix.schema.columns.map((col) => {
      const r = new BsatnReader(row, this.columnOffset(row, col));
      return formatValue(this.columnCodecs[col].read(r));
    });
    return parts.length === 1 ? parts[0] : `(${parts.join(', ')})`;
  }

  /** Upstream's wording: `Unique constraint violation '<c>' in table '<t>': column(s): '["a"]' value: <v>`. */
  uniqueViolation(ix: IndexState, row: Uint8Array): DatastoreError {
    const constraint = this.schema.uniqueConstraints.find((u) => sameColumns(u.columns, ix.schema.columns));
    const cols = JSON.stringify(ix.schema.columns.map((c) => this.schema.columns[c].name));
    return new DatastoreError(errno.uniqueAlreadyExists,
      `Unique constraint violation '${constraint?.name ?? ix.schema.name}' in table '${this.schema.name}': ` +
      `column(s): '${cols}' value: ${this.describeKey(ix, row)}`);
  }
}

/** Below this many entries a TouchLog finds a row id by scanning; above, through a Map. */
const touchScanMax = 16;
/** A log that held more entries than this gets fresh arrays when cleared (a big transaction's capacity is not kept). */
const touchKeepMax = 1024;

/**
 * Row id → the row before the open transaction and the row now (null: none), for the rows it wrote, in first-write
 * order; empty between transactions. Both rows are copies nobody writes: `before` is the undo record and a delete of
 * the TxData, `after` its insert (the copy the write already made for WriteResult.row, so the commit copies nothing).
 * Typed arrays and a scan instead of a Map: most transactions write a few rows, and a Map's clear() allocates a new
 * table every transaction.
 */
export class TouchLog {
  ids = new Int32Array(touchScanMax);
  before: (Uint8Array | null)[] = [];
  after: (Uint8Array | null)[] = [];
  count = 0;
  /** The table's RowStore.idsEnd at the transaction's first write to it: every row id from here on is the tx's own. */
  idsStart = 0;
  /**
   * Once there are more than touchScanMax entries: row id → position + 1, by `rowId - idsStart` for the tx's own ids
   * (in `ownPositions`: a bulk insert's ids follow each other, and a Map entry per row was a quarter of an insert's
   * datastore CPU), in `byId` for ids the table had before.
   */
  private byId: Map<number, number> | undefined;
  private ownPositions: Int32Array | undefined;

  /** The position of `rowId`, or -1. */
  indexOf(rowId: number): number {
    if (this.byId === undefined) {
      const ids = this.ids;
      for (let i = 0; i < this.count; i++) if (ids[i] === rowId) return i;
      return -1;
    }
    const own = rowId - this.idsStart, positions = this.ownPositions!;
    if (own >= 0) return own < positions.length ? positions[own] - 1 : -1;
    return this.byId.get(rowId) ?? -1;
  }

  /** Adds `rowId`, which is not in the log. */
  add(rowId: number, before: Uint8Array | null, after: Uint8Array | null): void {
    const i = this.count++;
    if (i === this.ids.length) {
      const grown = new Int32Array(i * 2);
      grown.set(this.ids);
      this.ids = grown;
    }
    this.ids[i] = rowId;
    this.before[i] = before;
    this.after[i] = after;
    if (this.byId !== undefined) this.position(rowId, i);
    else if (i === touchScanMax) {
      this.byId = new Map();
      this.ownPositions = new Int32Array(touchScanMax * 4);
      for (let k = 0; k <= i; k++) this.position(this.ids[k], k);
    }
  }

  private position(rowId: number, i: number): void {
    const own = rowId - this.idsStart;
    if (own < 0) { this.byId!.set(rowId, i); return; }
    let positions = this.ownPositions!;
    if (own >= positions.length) {
      let length = positions.length * 2;
      while (own >= length) length *= 2;
      const grown = new Int32Array(length);
      grown.set(positions);
      this.ownPositions = positions = grown;
    }
    positions[own] = i + 1;
  }

  clear(): void {
    if (this.count > touchKeepMax) {
      this.ids = new Int32Array(touchScanMax);
      this.before = [];
      this.after = [];
    } else {
      for (let i = 0; i < this.count; i++) { this.before[i] = null; this.after[i] = null; }
    }
    this.count = 0;
    this.byId = undefined;
    this.ownPositions = undefined;
  }
}

function isPk(ix: IndexSchema, pk: number | undefined): boolean {
  return pk !== undefined && ix.columns.length === 1 && ix.columns[0] === pk;
}

export function sameColumns(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const identityChunkBytes = 8192;

/** The row's bytes as a latin1 string (a Map key for byte identity). */
export function rowIdentity(row: Uint8Array): string {
  if (row.length <= identityChunkBytes) return String.fromCharCode.apply(null, row as unknown as number[]);
  let s = '';
  for (let i = 0; i < row.length; i += identityChunkBytes) {
    s += String.fromCharCode.apply(null, row.subarray(i, i + identityChunkBytes) as unknown as number[]);
  }
  return s;
}

export function formatValue(v: Value): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Uint8Array) return `0x${Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex')}`;
  if (Array.isArray(v)) return `(${v.map(formatValue).join(', ')})`;
  return `${v.tag}(${formatValue(v.value)})`;
}

/** Reads an integer of `widthBytes` little-endian bytes at `at`. */
export function readInt(b: Uint8Array, at: number, widthBytes: number, signed: boolean): bigint {
  let v = 0n;
  for (let i = widthBytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]);
  return signed ? BigInt.asIntN(widthBytes * 8, v) : v;
}

export function writeInt(b: Uint8Array, at: number, widthBytes: number, value: bigint): void {
  let v = BigInt.asUintN(widthBytes * 8, value);
  for (let i = 0; i < widthBytes; i++) { b[at + i] = Number(v & 0xffn); v >>= 8n; }
}

export function isZero(b: Uint8Array, at: number, widthBytes: number): boolean {
  for (let i = 0; i < widthBytes; i++) if (b[at + i] !== 0) return false;
  return true;
}

/**
 * The row layout of InfallibleUpdate (datastore/types.ts `rowLayoutCode`) for a row of `columnTypes`, or undefined when
 * some column has no layout code (arrays other than bytes, sums other than options, products holding anything but
 * numbers). Each code accepts exactly the bytes the column's codec skip accepts, so a row the layout accepts is a row
 * validateRow accepts. Adjacent fixed-width columns are merged into one item. Also where each column starts:
 * its item (counted as the shim's validRow walks them) and its offset in that item (undefined in a run of more than
 * 0xffff bytes, which takes several items).
 */
export function rowLayout(columnTypes: AlgebraicType[], ts: Typespace):
  { layout: Uint8Array; starts: ({ item: number; offset: number } | undefined)[] } | undefined {
  const out: number[] = [];
  const starts: ({ item: number; offset: number } | undefined)[] = [];
  let items = 0, fixedRun = 0, runStart = 0;
  const flush = (): void => {
    for (; fixedRun > 0xffff; fixedRun -= 0xffff, items++) out.push(rowLayoutCode.fixed, 0xff, 0xff);
    if (fixedRun > 0) { out.push(rowLayoutCode.fixed, fixedRun & 0xff, fixedRun >> 8); items++; }
    fixedRun = 0;
  };
  for (const c of columnTypes) {
    const t = resolveType(c, ts);
    const w = anyBytesWidth(t, ts);
    if (w !== undefined) {
      if (fixedRun === 0) runStart = starts.length;
      starts.push(fixedRun + w <= 0xffff ? { item: items, offset: fixedRun } : undefined);
      fixedRun += w;
      continue;
    }
    if (fixedRun > 0xffff) for (let k = runStart; k < starts.length; k++) starts[k] = undefined;
    flush();
    starts.push({ item: items, offset: 0 });
    items++;
    let inner = t;
    if (t.tag === 'Sum') {
      const v = t.value.variants;
      const none = v.length === 2 && v[1].name === 'none' ? resolveType(v[1].algebraicType, ts) : undefined;
      if (v[0]?.name !== 'some' || none?.tag !== 'Product' || none.value.elements.length !== 0) return undefined;
      inner = resolveType(v[0].algebraicType, ts);
      out.push(rowLayoutCode.option);
    }
    const code = variableCode(inner, ts);
    if (code !== undefined) { out.push(code); continue; }
    const iw = anyBytesWidth(inner, ts);
    if (iw === undefined || iw > 0xffff || t === inner) return undefined;
    out.push(rowLayoutCode.fixed, iw & 0xff, iw >> 8);
  }
  if (fixedRun > 0xffff) for (let k = runStart; k < starts.length; k++) starts[k] = undefined;
  flush();
  return { layout: Uint8Array.from(out), starts };
}

/** The row ids `start` .. `start + count - 1`, in order. */
function consecutiveIds(start: number, count: number): Int32Array {
  const ids = new Int32Array(count);
  for (let i = 0; i < count; i++) ids[i] = start + i;
  return ids;
}

/** `layout` with `guards` at its head (rowLayoutCode.guards: InfallibleUpdate.guards as the shim reads them). */
function guardedLayout(guards: readonly UpdateGuard[], layout: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + guards.length * updateGuardBytes + layout.length);
  out[0] = rowLayoutCode.guards;
  out[1] = guards.length;
  guards.forEach((g, i) => {
    const at = 2 + i * updateGuardBytes;
    for (const [k, v] of [g.item, g.offset, g.widthBytes].entries()) { out[at + 2 * k] = v & 0xff; out[at + 2 * k + 1] = v >> 8; }
    out[at + 6] = g.nonZero ? 1 : 0;
  });
  out.set(layout, 2 + guards.length * updateGuardBytes);
  return out;
}

/**
 * Whether `row` is exactly one row the layout accepts — what the row codec's skip accepts (the layout's promise).
 * The module's shim walks layouts the same way (host/isolate-src.ts validRow), in its own realm.
 */
export function layoutAccepts(layout: Uint8Array, row: Uint8Array, start = 0, end = row.length): boolean {
  const len = end;
  let p = start;
  for (let i = 0; i < layout.length;) {
    let k = layout[i++];
    if (k === rowLayoutCode.option) {
      if (p >= len) return false;
      const tag = row[p++];
      if (tag === 1) { i += layout[i] === rowLayoutCode.fixed ? 3 : 1; continue; }
      if (tag !== 0) return false;
      k = layout[i++];
    }
    if (k === rowLayoutCode.fixed) {
      p += layout[i] | (layout[i + 1] << 8);
      i += 2;
      if (p > len) return false;
    } else if (k === rowLayoutCode.bool) {
      if (p >= len || row[p] > 1) return false;
      p++;
    } else {
      if (p + 4 > len) return false;
      const n = (row[p] | (row[p + 1] << 8) | (row[p + 2] << 16)) + row[p + 3] * 0x1000000;
      p += 4;
      if (n > len - p) return false;
      if (k === rowLayoutCode.string && !isAscii(row, p, p + n) && !isUtf8(row.subarray(p, p + n))) return false;
      p += n;
    }
  }
  return p === len;
}

function isAscii(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] >= 0x80) return false;
  return true;
}

/** Byte width of a type any bytes of which are a valid value (numbers and products of them), else undefined. */
function anyBytesWidth(t: AlgebraicType, ts: Typespace): number | undefined {
  if (numberTags.has(t.tag)) return fixedWidth(t, ts);
  if (t.tag !== 'Product') return undefined;
  let sum = 0;
  for (const e of t.value.elements) {
    const w = anyBytesWidth(resolveType(e.algebraicType, ts), ts);
    if (w === undefined) return undefined;
    sum += w;
  }
  return sum;
}

function variableCode(t: AlgebraicType, ts: Typespace): number | undefined {
  if (t.tag === 'String') return rowLayoutCode.string;
  if (t.tag === 'Bool') return rowLayoutCode.bool;
  if (t.tag === 'Array' && resolveType(t.value, ts).tag === 'U8') return rowLayoutCode.bytes;
  return undefined;
}
