// datastore/store.ts — the in-memory database: committed state, the single mutable transaction, snapshots, replay.
//
// Owns: `Datastore` (a ReadView of committed state; `beginMutTx()`; `exportSnapshot`/`fromSnapshot`; `applyTxData`;
// recovery's `applyNetEffect`; the loads outside a transaction: `loadRows`, migration's bulk load in two steps
// `bulkLoadRows` + `finishBulkLoad`, `adoptRows`)
// and the MutTx implementation: writes go straight into the table state, and a per-table touched log (table.ts
// TouchLog: row id → a copy of the row before the tx and the copy last written, null when none) yields the net TxData
// on commit and is the whole undo log: rollback removes the touched rows and puts the copies back under their row ids
// (the rows under ids the tx handed out itself go at once: rollbackTable).
// Rules: one writer at a time; rows are copied on the way in (callers reuse their buffers) into the tables' row
// stores (rowstore.ts: pages, no JS object per row), and every row that leaves — scan results, WriteResult.row, TxData
// — is a copy the caller may keep for ever, never mutated afterwards (several may be views of one buffer: use
// byteOffset/length, never `.buffer` alone). Scans return arrays (snapshots), so writes during iteration are safe.
// Reads on the Datastore while a tx is open see the tx's uncommitted writes (the host serializes calls, so this does
// not happen).
// System tables (system.ts) are registered read-only: they resolve by name and id and scan like user tables, but
// are not in `schema().tables`, snapshots or TxData.
// Sequences never move backwards, not even on rollback: a value handed out once is never handed out again. A
// sequence lease (MutTx.leaseSequence, for the host's deferred inserts) moves a sequence past values nobody has seen
// yet; ending it moves the sequence back to the first value its holder did not hand out, never further.
// A `version` counts every change of the rows (each write, commit, rollback, load outside a transaction), so the
// host can tell that nothing but a transaction's own commit happened since its checkpoint (MutTx.follows).
// May call: datastore/table, datastore/key, datastore/rowstore, datastore/system, datastore/schema (id constants), datastore/types,
// sats/bsatn, sats/codec, sats/types, limits.ts (the write charges of MutTx.writeBytes).

import assert from 'node:assert';
import { BsatnReader, BsatnWriter } from '../sats/bsatn.js';
import { compileCodec } from '../sats/codec.js';
import { firstUserTableId } from './schema.js';
import { txWriteRowOverheadBytes, txWriteTableOverheadBytes } from '../limits.js';
import { systemTableRows, systemTableSchemas } from './system.js';
import type { Cursor, IndexKey } from './key.js';
import {
  bytesEqual, isZero, readInt, rowIdentity, sameColumns, TableState, writeInt, type IndexState, type SequenceState,
} from './table.js';
import type { IndexStore } from './indexes.js';
import { copyOut } from './rowstore.js';
import {
  DatastoreError, errno, type DatabaseSchema, type IndexId, type IndexSchema, type InfallibleInsert, type InfallibleUpdate, type MutTx,
  type RangeScanArgs,
  type ReadView, type SequenceLease, type StoredRowTest, type TableChanges, type TableId, type TableSchema, type TxData, type WriteResult,
} from './types.js';

const emptyBytes = new Uint8Array(0);
const snapshotMagic = 'stdb-ts-snapshot';
const snapshotVersion = 1;
/** Below this many rows per side, net-effect cancellation compares pairs directly instead of hashing. */
const cancelPairwiseMaxRows = 8;

/** A bulk load in progress (Datastore.bulkLoadRows): its rows' ids, and the sequences' positions before it. */
interface BulkLoad {
  readonly idsStart: number;
  count: number;
  readonly sequences: bigint[];
}

/** Everything a database holds; shared by the Datastore (committed view) and its transaction. */
class State {
  readonly tables: TableState[] = [];
  readonly tableById = new Map<TableId, TableState>();
  readonly tableByName = new Map<string, TableState>();
  readonly indexById = new Map<IndexId, { table: TableState; index: IndexState }>();
  readonly indexByName = new Map<string, { table: TableState; index: IndexState }>();
  /** Bumped by every row write, commit, rollback and load outside a transaction (MutTx.checkpoint / follows). */
  version = 0;

  /** User tables (snapshots, TxData); system tables are registered too but derived from the schema. */
  readonly userTables: TableState[] = [];

  constructor(readonly schema: DatabaseSchema) {
    for (const ts of schema.tables) this.userTables.push(this.addTable(ts));
    for (const ts of systemTableSchemas()) {
      const t = this.addTable(ts);
      const codec = compileCodec({ tag: 'Product', value: ts.rowType }, schema.typespace);
      for (const v of systemTableRows(ts.tableId, schema)) {
        const row = codec.encode(v);
        t.addRow(row, t.computeKeys(row));
      }
    }
  }

  /** Registers a table (also used later by migrations to add tables). */
  addTable(ts: TableSchema): TableState {
    assert(!this.tableById.has(ts.tableId), `duplicate table id ${ts.tableId}`);
    const t = new TableState(ts, this.schema.typespace);
    this.tables.push(t);
    this.tables.sort((a, b) => a.schema.tableId - b.schema.tableId);
    this.tableById.set(ts.tableId, t);
    for (const name of [ts.name, ...ts.aliases]) if (!this.tableByName.has(name)) this.tableByName.set(name, t);
    for (const index of t.indexes) {
      assert(!this.indexById.has(index.schema.indexId), `duplicate index id ${index.schema.indexId}`);
      this.indexById.set(index.schema.indexId, { table: t, index });
      for (const name of [index.schema.name, ...index.schema.aliases]) {
        if (!this.indexByName.has(name)) this.indexByName.set(name, { table: t, index });
      }
    }
    return t;
  }

  table(tableId: TableId): TableState {
    const t = this.tableById.get(tableId);
    if (t === undefined) throw new DatastoreError(errno.noSuchTable, `no table with id ${tableId}`);
    return t;
  }

  /** A table that a transaction may write: user tables only. */
  writableTable(tableId: TableId): TableState {
    const t = this.table(tableId);
    if (tableId < firstUserTableId) {
      throw new DatastoreError(errno.hostCallFailure, `system table '${t.schema.name}' is read-only`);
    }
    return t;
  }

  /** An index of a user table (for writes). */
  writableIndex(indexId: IndexId): { table: TableState; index: IndexState } {
    const ix = this.index(indexId);
    this.writableTable(ix.table.schema.tableId);
    return ix;
  }

  index(indexId: IndexId): { table: TableState; index: IndexState } {
    const ix = this.indexById.get(indexId);
    if (ix === undefined) throw new DatastoreError(errno.noSuchIndex, `no index with id ${indexId}`);
    return ix;
  }
}

const scratchCursor: Cursor = { pos: 0 };

/** Key of a module point buffer (BSATN of all index columns), validated. */
/** Leased sequence values stay exact JS numbers (the module's shim computes them as numbers). */
const leaseValueMax = BigInt(Number.MAX_SAFE_INTEGER);
/** Inserts a "lease" of a table with no sequence allows (leaseSequence): as many as a u32 count holds, about. */
const plainInsertLeaseCount = 0x40000000;
/** leaseSequence's key buffer (one per sequence width in a row, reused). */
let leaseKey = new Uint8Array(0);

function pointKey(table: TableState, index: IndexState, key: Uint8Array): IndexKey {
  const n = index.schema.columns.length;
  if (index.pointWidthBytes !== undefined) {
    if (key.length !== index.pointWidthBytes) {
      throw new DatastoreError(errno.bsatnDecodeError, `index '${index.schema.name}' point key has ${key.length} ` +
        `bytes, expected ${index.pointWidthBytes}`);
    }
  } else {
    validateColumns(table, index, key, 0, n, `point key of index '${index.schema.name}'`);
  }
  scratchCursor.pos = 0;
  return index.key.ofColumns(key, scratchCursor, n);
}

/** Validates `count` index columns from `start` that must fill `bytes` exactly. */
function validateColumns(
  table: TableState, index: IndexState, bytes: Uint8Array, start: number, count: number, what: string,
): void {
  try {
    const r = new BsatnReader(bytes);
    for (let i = start; i < start + count; i++) index.columnCodecs[i].skip(r);
    r.expectEnd(what);
  } catch (e) {
    throw new DatastoreError(errno.bsatnDecodeError, `invalid ${what} (table '${table.schema.name}'): ` +
      `${(e as Error).message}`);
  }
}

/** The half-open key interval [lo, hi) selected by a range scan (see key.ts on prefix-freedom). */
function rangeKeys(table: TableState, index: IndexState, range: RangeScanArgs): [IndexKey, IndexKey] {
  const ixs = index.schema;
  if (ixs.algorithm === 'hash') {
    throw new DatastoreError(errno.wrongIndexAlgorithm, `index '${ixs.name}' is a hash index: no range scans`);
  }
  const n = range.prefixElems;
  if (n >= ixs.columns.length) {
    throw new DatastoreError(errno.bsatnDecodeError, `range scan on index '${ixs.name}' with ${n} prefix columns ` +
      `(the index has ${ixs.columns.length})`);
  }
  let prefix: string | undefined;
  if (n > 0) {
    validateColumns(table, index, range.prefix, 0, n, `range prefix of index '${ixs.name}'`);
    scratchCursor.pos = 0;
    prefix = index.key.ofColumns(range.prefix, scratchCursor, n) as string; // numeric keys have one column
  }
  const lo = boundKey(table, index, range.rangeStart, n, prefix, true);
  const hi = boundKey(table, index, range.rangeEnd.length === 0 ? range.rangeStart : range.rangeEnd, n, prefix, false);
  return [lo, hi];
}

function boundKey(
  table: TableState, index: IndexState, bound: Uint8Array, col: number, prefix: string | undefined, isStart: boolean,
): IndexKey {
  const key = index.key;
  const what = `range ${isStart ? 'start' : 'end'} bound of index '${index.schema.name}'`;
  if (bound.length === 0) throw new DatastoreError(errno.bsatnDecodeError, `empty ${what}`);
  const tag = bound[0];
  if (tag === 2) {
    if (bound.length !== 1) throw new DatastoreError(errno.bsatnDecodeError, `trailing bytes after unbounded ${what}`);
    if (prefix === undefined) return isStart ? key.lowest : key.highest;
    return isStart ? prefix : key.after(prefix);
  }
  if (tag !== 0 && tag !== 1) throw new DatastoreError(errno.bsatnDecodeError, `bad tag ${tag} in ${what}`);
  const value = bound.subarray(1);
  validateColumns(table, index, value, col, 1, what);
  scratchCursor.pos = 0;
  const part = key.ofColumn(col, value, scratchCursor);
  const k = prefix === undefined ? part : prefix + (part as string);
  const included = tag === 0;
  // Start: Included → from k; Excluded → past every key starting with k. End (exclusive): the mirror image.
  if (isStart) return included ? k : key.after(k);
  return included ? key.after(k) : k;
}

/** Read access over a State; the Datastore and its transaction share this. */
abstract class Reader implements ReadView {
  protected constructor(protected readonly state: State) {}
  protected abstract check(): void;
  private readonly ids: number[] = [];

  schema(): DatabaseSchema { this.check(); return this.state.schema; }
  table(tableId: TableId): TableSchema { this.check(); return this.state.table(tableId).schema; }
  tableByName(name: string): TableSchema | undefined { this.check(); return this.state.tableByName.get(name)?.schema; }
  indexByName(name: string): { table: TableSchema; index: IndexSchema } | undefined {
    this.check();
    const ix = this.state.indexByName.get(name);
    return ix === undefined ? undefined : { table: ix.table.schema, index: ix.index.schema };
  }
  rowCount(tableId: TableId): number { this.check(); return this.state.table(tableId).rows.size; }
  scan(tableId: TableId): Uint8Array[] {
    this.check();
    return this.state.table(tableId).rows.copyAll();
  }
  /**
   * Every row of a table as one buffer of (u32 length, bytes) in row-id order: a copy without an object per row, for
   * a migration's snapshot (1M rows as `scan` copies were ~120 MB of JS heap, collected in long parallel pauses).
   */
  scanPacked(tableId: TableId): Uint8Array {
    this.check();
    const rows = this.state.table(tableId).rows;
    const out = new Uint8Array(rows.encodedLength());
    rows.writeAll(out, 0);
    return out;
  }
  scanIndexPoint(indexId: IndexId, key: Uint8Array): Uint8Array[] {
    this.check();
    const { table, index } = this.state.index(indexId);
    return this.rowsOf(table, this.pointIds(table, index, key));
  }
  scanIndexRange(indexId: IndexId, range: RangeScanArgs): Uint8Array[] {
    this.check();
    const { table, index } = this.state.index(indexId);
    return this.rowsOf(table, this.rangeIds(table, index, range));
  }

  /** Row ids matching a point key; the returned array is scratch, valid until the next call. */
  protected pointIds(table: TableState, index: IndexState, key: Uint8Array): number[] {
    const ids = this.ids;
    ids.length = 0;
    index.store.point(pointKey(table, index, key), ids);
    return ids;
  }
  protected rangeIds(table: TableState, index: IndexState, range: RangeScanArgs): number[] {
    const [lo, hi] = rangeKeys(table, index, range);
    const ids = this.ids;
    ids.length = 0;
    index.store.range(lo, hi, ids);
    return ids;
  }
  private rowsOf(table: TableState, ids: number[]): Uint8Array[] {
    return table.rows.copyMany(ids, ids.length);
  }
}

/** A StoredRowTest that keeps every row (scanChunk: scanChunkWhere without a WHERE). */
const keepEveryRow: StoredRowTest = () => true;

/** An in-memory database. Between transactions it is a ReadView of committed state. */
export class Datastore extends Reader {
  private tx: Transaction | undefined;
  /** Tables between bulkLoadRows and finishBulkLoad. */
  private readonly bulkLoads = new Map<TableState, BulkLoad>();

  constructor(schema: DatabaseSchema) {
    super(new State(schema));
  }

  protected check(): void {}

  /** Starts the single writer. Asserts no other transaction is open. */
  beginMutTx(): MutTx {
    assert(this.tx === undefined, 'a mutable transaction is already open');
    assert(this.bulkLoads.size === 0, 'a transaction while a bulk load is not finished (finishBulkLoad)');
    const tx = new Transaction(this.state, () => { this.tx = undefined; });
    this.tx = tx;
    return tx;
  }

  get inTransaction(): boolean { return this.tx !== undefined; }

  /** ReadView.scanChunk, by row id: committed state only (a transaction's own writes would move rows between pieces). */
  scanChunk(tableId: TableId, from: number, maxRows: number): { rows: Uint8Array[]; next: number } {
    return this.scanChunkWhere(tableId, from, maxRows, keepEveryRow);
  }

  /** ReadView.scanChunkWhere: scanChunk, copying only the rows `keep` accepts. */
  scanChunkWhere(tableId: TableId, from: number, maxRows: number, keep: StoredRowTest): { rows: Uint8Array[]; next: number; visited: number } {
    const rows: Uint8Array[] = [], visits = { count: 0 };
    const next = this.state.table(tableId).rows.copyFromWhere(from, maxRows, keep, rows, visits);
    return { rows, next, visited: visits.count };
  }

  /** Sequence state: the next value of each sequence, by sequence name. */
  sequenceState(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const t of this.state.userTables) for (const s of t.sequences) out.set(s.schema.name, s.next);
    return out;
  }

  /**
   * All committed rows of every user table plus sequence state. Format (BSATN): magic string, u32 version, u32 table
   * count, then per table: u32 id, string name, u32 row count, rows as byte arrays, u32 sequence count, per sequence
   * u16 column and the next value as a decimal string.
   */
  exportSnapshot(): Uint8Array {
    assert(this.tx === undefined, 'snapshot while a transaction is open');
    // Headers through a BsatnWriter; each table's rows straight from its pages into the output (no object per row).
    const parts: (Uint8Array | TableState)[] = [];
    const w = new BsatnWriter(1 << 12);
    w.writeString(snapshotMagic);
    w.writeU32(snapshotVersion);
    w.writeU32(this.state.userTables.length);
    for (const t of this.state.userTables) {
      w.writeU32(t.schema.tableId);
      w.writeString(t.schema.name);
      w.writeU32(t.rows.size);
      parts.push(w.finish(), t);
      w.reset();
      w.writeU32(t.sequences.length);
      for (const s of t.sequences) { w.writeU16(s.schema.column); w.writeString(s.next.toString()); }
    }
    parts.push(w.finish());
    let total = 0;
    for (const p of parts) total += p instanceof TableState ? p.rows.encodedLength() : p.length;
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      if (p instanceof TableState) { at = p.rows.writeAll(out, at); continue; }
      out.set(p, at);
      at += p.length;
    }
    assert(at === total, 'snapshot length');
    return out;
  }

  /** Rebuilds a datastore from `exportSnapshot` bytes. Tables are matched by id and must have the same name. */
  static fromSnapshot(schema: DatabaseSchema, bytes: Uint8Array): Datastore {
    const ds = new Datastore(schema);
    const r = new BsatnReader(bytes);
    const fail = (msg: string): never => { throw new DatastoreError(errno.bsatnDecodeError, `bad snapshot: ${msg}`); };
    if (r.readString() !== snapshotMagic) fail('wrong magic');
    const version = r.readU32();
    if (version !== snapshotVersion) fail(`unsupported version ${version}`);
    const tableCount = r.readU32();
    for (let i = 0; i < tableCount; i++) {
      const tableId = r.readU32();
      const name = r.readString();
      const t = ds.state.tableById.get(tableId) ?? fail(`table ${tableId} (${name}) is not in the schema`);
      if (t.schema.name !== name) fail(`table ${tableId} is '${name}' in the snapshot, '${t.schema.name}' in the schema`);
      const rowCount = r.readU32();
      r.offset = ds.restoreRows(t, bytes, r.offset, rowCount);
      const seqCount = r.readU32();
      for (let j = 0; j < seqCount; j++) {
        const column = r.readU16();
        const next = BigInt(r.readString());
        const s = t.sequences.find((q) => q.schema.column === column) ?? fail(`no sequence on column ${column}`);
        s.next = next;
      }
    }
    r.expectEnd('snapshot');
    return ds;
  }

  /**
   * Loads rows into a table of a datastore nobody uses yet, without a transaction, indexing each as it comes (tests,
   * bench/memory.ts; a migration loads in bulk: bulkLoadRows). No undo: a failure leaves the table half-loaded.
   * Rows are copied into the table's pages; `validate` re-checks their encoding. Identical rows collapse (set
   * semantics); a duplicate key of a unique index throws the usual unique violation. Sequences move past every loaded
   * value.
   */
  loadRows(tableId: TableId, rows: Iterable<Uint8Array>, validate: boolean): void {
    assert(this.tx === undefined, 'loadRows while a transaction is open');
    this.state.version++;
    const t = this.state.writableTable(tableId);
    assert(!this.bulkLoads.has(t), 'loadRows into a table whose bulk load is not finished');
    for (const row of rows) {
      if (validate) t.validateRow(row);
      const keys = t.computeKeys(row);
      if (t.identicalOrConflict(row, keys) !== undefined) continue;
      t.addRow(row, keys);
      for (const s of t.sequences) advancePast(s, t, row);
    }
  }

  /**
   * Bulk load into an empty table, step one of two (migration: migrate.ts buildMigration, one call per chunk of rows).
   * Stores copies of `rows` as loadRows does (each validated when `validate`, sequences moved past every value) and adds
   * them to the non-unique indexes, but not yet to the unique indexes or the row set (tables without a unique index):
   * finishBulkLoad then builds those over all the loaded rows at once (TableState.indexBulkLoaded → IndexStore.addIds,
   * as snapshot restore does; a hash grown one row at a time re-reads every row's key at each grow, ~half of a 1M-row
   * migration's time). Until then the table's unique indexes miss its rows: no transaction may begin, and the table may
   * not be read or loaded otherwise. A throw from either step ends the load with the table empty and its sequences
   * where they were when it began, as if it had never started.
   */
  bulkLoadRows(tableId: TableId, rows: Iterable<Uint8Array>, validate: boolean): void {
    assert(this.tx === undefined, 'bulkLoadRows while a transaction is open');
    this.state.version++;
    const t = this.state.writableTable(tableId);
    let load = this.bulkLoads.get(t);
    if (load === undefined) {
      assert(t.rows.size === 0, 'bulkLoadRows into a table that has rows');
      load = { idsStart: t.rows.idsEnd, count: 0, sequences: t.sequences.map((s) => s.next) };
      this.bulkLoads.set(t, load);
    }
    const seqs = t.sequences;
    try {
      for (const row of rows) {
        if (validate) t.validateRow(row);
        const id = t.rows.insert(row, 0, row.length);
        assert(id === load.idsStart + load.count, 'a bulk load takes fresh row ids in order');
        load.count++;
        t.addToNonUniqueIndexes(id);
        for (let s = 0; s < seqs.length; s++) advancePast(seqs[s], t, row);
      }
    } catch (e) {
      this.abandonLoad(t, load);
      throw e;
    }
  }

  /**
   * Bulk load, step two: builds the unique indexes and the row set of table `tableId` over the rows bulkLoadRows stored
   * (nothing to do when it stored none), ending as loadRows of the same rows would: a row byte-equal to an earlier one
   * is dropped (set semantics), and a row with an earlier row's unique key throws loadRows' unique violation (same row,
   * same constraint). One step of ~0.1-0.2 s per unique index at 1M rows.
   */
  finishBulkLoad(tableId: TableId): void {
    assert(this.tx === undefined, 'finishBulkLoad while a transaction is open');
    const t = this.state.writableTable(tableId), load = this.bulkLoads.get(t);
    if (load === undefined) return;
    this.state.version++;
    try {
      t.indexBulkLoaded(load.idsStart, load.count);
    } catch (e) {
      this.abandonLoad(t, load);
      throw e;
    }
    this.bulkLoads.delete(t);
  }

  /** A bulk load that threw: the table empty again, its sequences back where they were. */
  private abandonLoad(t: TableState, load: BulkLoad): void {
    this.bulkLoads.delete(t);
    t.clearAll();
    t.sequences.forEach((s, i) => { s.next = load.sequences[i]; });
  }

  /**
   * Migration: takes over the committed rows of table `fromTableId` of `from` (a datastore about to be replaced, and
   * not written again) as table `tableId` of this fresh one. When the rows keep their width class (rowstore.ts), the
   * row store is shared, not copied, and so is every index store whose index has the same algorithm, columns and
   * uniqueness and covers none of `retypedColumns` (whose key codec may differ): it reads its keys through the new
   * table from then on (IndexStore.readKeysFrom); other indexes are built over the rows in bulk. Otherwise the rows are
   * copied. Added unique indexes must have been checked.
   */
  adoptRows(tableId: TableId, from: Datastore, fromTableId: TableId, retypedColumns: ReadonlySet<number>): void {
    assert(this.tx === undefined && from.tx === undefined, 'adoptRows while a transaction is open');
    this.state.version++;
    const t = this.state.writableTable(tableId);
    const o = from.state.table(fromTableId);
    assert(t.rows.size === 0, 'adoptRows into a table that has rows');
    if (o.rows.widthBytes !== t.rows.widthBytes) {
      for (let id = o.rows.nextLive(0); id >= 0; id = o.rows.nextLive(id + 1)) {
        const row = o.rows.view(id);
        t.addRow(row, t.computeKeys(row));
      }
      return;
    }
    const shared = t.indexes.map((ix): IndexStore | undefined => {
      if (ix.schema.columns.some((c) => retypedColumns.has(c))) return undefined;
      return o.indexes.find((x) => x.schema.algorithm === ix.schema.algorithm &&
        x.schema.unique === ix.schema.unique && sameColumns(x.schema.columns, ix.schema.columns))?.store;
    });
    t.adoptStore(o.rows, shared);
  }

  /** Migration: a sequence keeps its position across a module update (it never moves backwards). */
  setSequenceNext(tableId: TableId, column: number, next: bigint): void {
    const s = this.state.table(tableId).sequences.find((q) => q.schema.column === column);
    assert(s !== undefined, `no sequence on column ${column} of table ${tableId}`);
    const inc = s.schema.increment;
    if (inc > 0n ? next > s.next : next < s.next) s.next = next;
  }

  /**
   * Replays a committed transaction (recovery from the commit log): deletes, then inserts, as given.
   * Sequences move past any value seen in inserted rows, so they never reissue a logged value.
   */
  applyTxData(txData: TxData): void {
    const tx = this.beginMutTx() as Transaction;
    try {
      for (const ch of txData.tables) {
        const t = this.state.table(ch.tableId);
        if (ch.deletes.length > 0) {
          const n = tx.deleteByRows(ch.tableId, ch.deletes);
          if (n !== ch.deletes.length) {
            throw new DatastoreError(errno.noSuchRow, `replay: ${ch.deletes.length - n} deleted rows of table ` +
              `'${t.schema.name}' are missing`);
          }
        }
        for (const row of ch.inserts) {
          tx.insertRaw(t, row);
          for (const s of t.sequences) advancePast(s, t, row);
        }
      }
      tx.commit();
    } catch (e) {
      if (this.tx === tx) tx.rollback();
      throw e;
    }
  }

  /**
   * Recovery: applies the net effect of a batch of committed transactions (deletes, then inserts) straight to the
   * tables, without a transaction, undo log or TxData. Same checks as applyTxData (rows valid, deleted rows present,
   * unique constraints), but a failure leaves the datastore half-applied: the caller must discard it (recovery does).
   * Inserted rows are copied into this datastore's slabs, so the caller may reuse their memory afterwards.
   */
  applyNetEffect(txData: TxData): void {
    assert(this.tx === undefined, 'applyNetEffect while a transaction is open');
    this.state.version++;
    for (const ch of txData.tables) {
      const t = this.state.writableTable(ch.tableId);
      let missing = 0;
      for (const row of ch.deletes) {
        t.validateRow(row);
        const id = t.findIdentical(row);
        if (id === undefined) missing++;
        else t.removeRow(id);
      }
      if (missing > 0) {
        throw new DatastoreError(errno.noSuchRow, `replay: ${missing} deleted rows of table '${t.schema.name}' are missing`);
      }
      t.rows.releasePending();
      this.insertCommitted(t, ch.inserts);
    }
  }

  /**
   * Snapshot restore into an empty table: `count` rows encoded as BSATN byte arrays from `at` of `bytes`, copied into
   * the table's pages (no object kept per row); returns the offset after them. A row equal to a stored one, or with a
   * stored unique key, makes the snapshot bad. Sequences: the snapshot's state follows the rows.
   */
  private restoreRows(t: TableState, bytes: Uint8Array, at: number, count: number): number {
    assert(t.rows.size === 0, 'restore into a table that has rows');
    const fail = (what: string): never => {
      throw new DatastoreError(errno.bsatnDecodeError, `bad snapshot: table '${t.schema.name}' has ${what} (${count} rows)`);
    };
    // Rows first, each into the next fresh row id; then every index over all of them at once (table.ts indexRange).
    const idsStart = t.rows.idsEnd;
    for (let i = 0; i < count; i++) {
      if (at + 4 > bytes.length) fail(`a row length past the end at offset ${at}`);
      const length = (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
      if (length > bytes.length - at - 4) fail(`a row of ${length} bytes past the end at offset ${at}`);
      t.validateRowAt(bytes, at + 4, length);
      const id = t.rows.insert(bytes, at + 4, length);
      assert(id === idsStart + i, 'a restore into an empty table takes fresh row ids in order');
      at += 4 + length;
    }
    const duplicates = t.indexRange(idsStart, count);
    if (duplicates > 0) fail(`${duplicates} duplicate ${t.byBytes !== undefined ? 'rows' : 'keys'}`);
    return at;
  }

  /**
   * Stores copies of rows that were valid when committed (replay): validates each, keeps set semantics, checks unique
   * indexes, moves sequences past every value. No undo: a failure leaves the table half-loaded.
   */
  private insertCommitted(t: TableState, rows: readonly Uint8Array[]): void {
    const seqs = t.sequences;
    for (let i = 0; i < rows.length; i++) {
      const input = rows[i]!;
      t.validateRow(input);
      const keys = t.computeKeys(input);
      if (t.identicalOrConflict(input, keys) !== undefined) continue;
      t.addRow(input, keys);
      for (let s = 0; s < seqs.length; s++) advancePast(seqs[s], t, input);
    }
  }
}

function advancePast(s: SequenceState, t: TableState, row: Uint8Array): void {
  const v = readInt(row, t.columnOffset(row, s.schema.column), s.widthBytes, s.signed);
  const inc = s.schema.increment;
  if (inc > 0n ? v >= s.next : v <= s.next) s.next = v + inc;
}

class Transaction extends Reader implements MutTx {
  private done = false;
  /** The state's version when this tx began, at its checkpoint, and after its commit (undefined: not yet). */
  private readonly startVersion: number;
  private checkpointVersion: number | undefined = undefined;
  private committedVersion: number | undefined = undefined;
  /** The tables this tx wrote, by table id (TxData's order); each keeps its rows' before and after in `t.touched`. */
  private readonly touched: TableState[] = [];
  private readonly ids2: number[] = [];
  /** MutTx.writeBytes: what this tx wrote, with the log framing charges (limits.ts). */
  private writeBytesValue = 0;
  /** MutTx.grownBytes: row bytes this tx added, less those it removed. */
  private grownBytesValue = 0;

  constructor(state: State, private readonly onFinish: () => void) {
    super(state);
    this.startVersion = state.version;
  }

  get writeBytes(): number {
    return this.writeBytesValue;
  }

  get grownBytes(): number {
    return this.grownBytesValue;
  }

  checkpoint(): void {
    this.check();
    this.checkpointVersion = this.state.version;
  }

  follows(previous: MutTx): boolean {
    if (!(previous instanceof Transaction) || previous.state !== this.state) return false;
    const at = previous.checkpointVersion, committed = previous.committedVersion;
    // Nothing between the checkpoint and the commit (which bumps once), nothing between the commit and this tx.
    return at !== undefined && committed === at + 1 && this.startVersion === committed;
  }

  protected check(): void {
    if (this.done) throw new DatastoreError(errno.notInTransaction, 'the transaction is already finished');
  }

  insert(tableId: TableId, input: Uint8Array): WriteResult {
    this.check();
    const t = this.state.writableTable(tableId);
    t.validateRow(input);
    // Our own copy: generated values are written into it, and it is the WriteResult's row (an identical stored row
    // has the same bytes).
    const row = copyOut(input, 0, input.length);
    const generated = this.generate(t, row);
    this.insertChecked(t, row);
    return { row, generated };
  }

  /** Inserts a valid row without sequences (replay). */
  insertRaw(t: TableState, input: Uint8Array): void {
    t.validateRow(input);
    this.insertChecked(t, copyOut(input, 0, input.length));
  }

  /**
   * Applies set semantics and unique constraints, then stores `row` (a copy nobody writes: it becomes the TxData's
   * insert) unless an identical row is stored.
   */
  private insertChecked(t: TableState, row: Uint8Array): void {
    const keys = t.computeKeys(row);
    if (t.identicalOrConflict(row, keys) !== undefined) return;
    const idsEnd = t.rows.idsEnd;
    const rowId = t.addRow(row, keys);
    // A fresh row id is never in the log: ids this tx freed are not reused before it ends.
    this.logTable(t, idsEnd);
    t.touched.add(rowId, null, row);
    this.writeBytesValue += row.length + txWriteRowOverheadBytes;
    this.grownBytesValue += row.length + txWriteRowOverheadBytes;
  }

  update(tableId: TableId, indexId: IndexId, input: Uint8Array): WriteResult {
    this.check();
    const t = this.state.writableTable(tableId);
    const { table: it, index } = this.state.index(indexId);
    if (it !== t) {
      throw new DatastoreError(errno.noSuchIndex, `index ${indexId} ('${index.schema.name}') is not an index of ` +
        `table '${t.schema.name}'`);
    }
    if (!index.schema.unique) {
      throw new DatastoreError(errno.indexNotUnique, `update through index '${index.schema.name}' of table ` +
        `'${t.schema.name}', which is not unique`);
    }
    t.validateRow(input);
    const row = copyOut(input, 0, input.length); // as insert: generated values go here, and it is the WriteResult's row
    const generated = this.generate(t, row);
    // One key per index of the new row, shared by the lookup, the unique checks and replaceRow.
    const keys = t.computeKeys(row);
    const rowId = index.store.find(keys[index.position]);
    if (rowId === undefined) {
      throw new DatastoreError(errno.noSuchRow, `update of table '${t.schema.name}': no row with ` +
        `${index.schema.columns.map((c) => t.schema.columns[c].name).join(', ')} = ${t.describeKey(index, row)}`);
    }
    if (t.rows.equals(rowId, row, 0, row.length)) return { row, generated };
    const others = index.otherUniquePositions;
    for (let i = 0; i < others.length; i++) {
      const u = others[i], ux = t.uniqueIndexes[u];
      const other = ux.store.find(keys[t.uniquePositions[u]]);
      if (other !== undefined && other !== rowId) throw t.uniqueViolation(ux, row);
    }
    this.touch(t, rowId, row);
    this.writeBytesValue += t.rows.length + row.length + 2 * txWriteRowOverheadBytes; // touch located the old row
    this.grownBytesValue += row.length - t.rows.length;
    t.replaceRow(rowId, row, keys);
    return { row, generated };
  }

  infallibleUpdate(indexId: IndexId): InfallibleUpdate | undefined {
    const ix = this.state.indexById.get(indexId);
    // System tables are read-only: an update of theirs always fails.
    if (ix === undefined || ix.table.schema.tableId < firstUserTableId) return undefined;
    return ix.index.infallibleUpdate;
  }

  rowCacheIndex(of: { tableId: TableId } | { indexId: IndexId }): { indexId: IndexId; shape: InfallibleUpdate } | undefined {
    const t = 'tableId' in of ? this.state.tableById.get(of.tableId) : this.state.indexById.get(of.indexId)?.table;
    const ix = t === undefined || t.schema.tableId < firstUserTableId ? undefined : t.rowCacheIndex;
    return ix === undefined ? undefined : { indexId: ix.schema.indexId, shape: ix.infallibleUpdate! };
  }

  infallibleInsert(tableId: TableId): InfallibleInsert | undefined {
    if (tableId < firstUserTableId) return undefined;
    return this.state.tableById.get(tableId)?.infallibleInsert;
  }

  leaseSequence(tableId: TableId, count: number): SequenceLease | undefined {
    this.check();
    const t = this.state.writableTable(tableId);
    if (t.infallibleInsert === undefined) return undefined;
    // No sequence (infallibleInsert's other shape): nothing to reserve; the holder counts inserts only.
    if (t.sequences.length === 0) return { start: 0n, increment: 0n, count: plainInsertLeaseCount };
    const s = t.sequences[0], ix = t.uniqueIndexes[0], inc = s.schema.increment, w = s.widthBytes;
    const start = s.next;
    // The increment is positive (infallibleInsert's shape), so values only grow: every leased value is in
    // [start, last], and below 2^53, where number arithmetic is exact (no BigInt per value).
    if (start <= 0n || start < s.lo) return undefined;
    const last = Number(s.hi < leaseValueMax ? s.hi : leaseValueMax), step = Number(inc <= leaseValueMax ? inc : leaseValueMax);
    const key = leaseKey.length === w ? leaseKey : (leaseKey = new Uint8Array(w));
    let n = 0;
    for (let v = Number(start); n < count && v <= last; n++, v += step) {
      for (let i = 0, x = v; i < w; i++, x = Math.floor(x / 256)) key[i] = x % 256;
      if (ix.store.find(pointKey(t, ix, key)) !== undefined) break;
    }
    if (n === 0) return undefined;
    s.next = start + BigInt(n) * inc;
    return { start, increment: inc, count: n };
  }

  resumeSequenceLease(tableId: TableId, start: bigint, count: number): boolean {
    this.check();
    const t = this.state.table(tableId), s = t.sequences[0];
    if (s === undefined) return t.infallibleInsert !== undefined;   // a table with no sequence: nothing to take up
    if (s.next !== start) return false;
    s.next = start + BigInt(count) * s.schema.increment;
    return true;
  }

  endSequenceLease(tableId: TableId, next: bigint): void {
    const t = this.state.table(tableId), s = t.sequences[0];
    if (s === undefined && t.infallibleInsert !== undefined) return;   // a table with no sequence reserved nothing
    assert(s !== undefined && next <= s.next, `sequence lease of table ${tableId} ended past its end`);
    s.next = next;
  }

  deleteByIndexPoint(indexId: IndexId, key: Uint8Array): number {
    this.check();
    const { table, index } = this.state.writableIndex(indexId);
    return this.deleteIds(table, this.pointIds(table, index, key));
  }

  deleteByIndexRange(indexId: IndexId, range: RangeScanArgs): number {
    this.check();
    const { table, index } = this.state.writableIndex(indexId);
    return this.deleteIds(table, this.rangeIds(table, index, range));
  }

  deleteByRows(tableId: TableId, rows: Uint8Array[]): number {
    this.check();
    const t = this.state.writableTable(tableId);
    let n = 0;
    for (const row of rows) {
      t.validateRow(row);
      const id = t.findIdentical(row);
      if (id !== undefined) { this.deleteOne(t, id); n++; }
    }
    return n;
  }

  clear(tableId: TableId): number {
    this.check();
    const t = this.state.writableTable(tableId);
    const ids = this.ids2;
    ids.length = 0;
    for (let id = t.rows.nextLive(0); id >= 0; id = t.rows.nextLive(id + 1)) ids.push(id);
    return this.deleteIds(t, ids);
  }

  commit(): TxData {
    this.check();
    const tables: TableChanges[] = [];
    // The rows are the copies the writes made: nothing is copied here.
    const touched = this.touched;
    for (let i = 0; i < touched.length; i++) {
      const t = touched[i], log = t.touched, befores = log.before, afters = log.after;
      const deletes: Uint8Array[] = [], inserts: Uint8Array[] = [];
      let unpaired = 0;
      for (let k = 0; k < log.count; k++) {
        const was = befores[k], now = afters[k];
        if (was !== null && now !== null && bytesEqual(was, now)) continue;
        if (was !== null) deletes.push(was);
        if (now !== null) inserts.push(now);
        if (was === null || now === null) unpaired++;
      }
      // Rows only updated, through a table's one unique index, keep their distinct keys: no row's old bytes can be
      // another's new bytes (with two unique indexes, updates through each in turn can swap them).
      if (unpaired > 0 || t.uniqueIndexes.length > 1) cancelIdentical(inserts, deletes);
      if (t.schema.isEvent) t.clearAll(); // event rows are broadcast, never kept
      if (inserts.length + deletes.length > 0) {
        tables.push({ tableId: t.schema.tableId, tableName: t.schema.name, inserts, deletes });
      }
    }
    this.committedVersion = ++this.state.version;
    this.finish();
    return { tables };
  }

  rollback(): void {
    this.check();
    for (let i = 0; i < this.touched.length; i++) rollbackTable(this.touched[i]);
    this.state.version++;
    this.finish();
  }

  private finish(): void {
    this.done = true;
    for (let i = 0; i < this.touched.length; i++) {
      const t = this.touched[i];
      t.touched.clear();
      t.rows.releasePending();
    }
    this.touched.length = 0;
    this.onFinish();
  }

  /**
   * Before a write of stored row `rowId` that leaves `after` (null: a delete): logs it, on its first write in this tx
   * with a copy of it as it was. Leaves the row located (rows.length is its length).
   */
  private touch(t: TableState, rowId: number, after: Uint8Array | null): void {
    this.logTable(t, t.rows.idsEnd);
    const log = t.touched, k = log.indexOf(rowId);
    if (k < 0) log.add(rowId, t.rows.copy(rowId), after);
    else { log.after[k] = after; t.rows.locate(rowId); }
  }

  /**
   * Counts a write and, on the tx's first write to `t`, adds `t` to the touched tables in table-id order and marks
   * where the tx's own row ids start (`idsEnd`: the table's RowStore.idsEnd before that write).
   */
  private logTable(t: TableState, idsEnd: number): void {
    this.state.version++;
    if (t.touched.count > 0) return;
    t.touched.idsStart = idsEnd;
    this.writeBytesValue += txWriteTableOverheadBytes;
    // Insertion in place: a transaction touches a few tables, and Array.prototype.sort at commit allocated ~860 B
    // per general transfer (two tables).
    const ts = this.touched, id = t.schema.tableId;
    let i = ts.length;
    ts.push(t);
    for (; i > 0 && ts[i - 1].schema.tableId > id; i--) ts[i] = ts[i - 1];
    ts[i] = t;
  }

  private deleteIds(t: TableState, ids: number[]): number {
    // `ids` may be the scans' scratch array; deleteOne never scans, so it stays intact while we walk it.
    for (let i = 0; i < ids.length; i++) this.deleteOne(t, ids[i]);
    return ids.length;
  }

  private deleteOne(t: TableState, rowId: number): void {
    this.touch(t, rowId, null);
    this.writeBytesValue += t.rows.length + txWriteRowOverheadBytes; // touch located the row
    this.grownBytesValue -= t.rows.length + txWriteRowOverheadBytes;
    t.removeRow(rowId);
  }

  /** Fills zero-valued sequence columns of `row` in place; returns the BSATN of generated values, column order. */
  private generate(t: TableState, row: Uint8Array): Uint8Array {
    if (t.sequences.length === 0) return emptyBytes;
    let parts: Uint8Array[] | undefined;
    for (const s of t.sequences) {
      const at = t.columnOffset(row, s.schema.column);
      if (!isZero(row, at, s.widthBytes)) continue;
      const v = s.next;
      if (v < s.lo || v > s.hi) {
        throw new DatastoreError(errno.autoIncOverflow, `sequence '${s.schema.name}' of table '${t.schema.name}' ` +
          `is exhausted (next value ${v} is outside ${s.lo}..${s.hi})`);
      }
      s.next = v + s.schema.increment;
      writeInt(row, at, s.widthBytes, v);
      (parts ??= []).push(row.subarray(at, at + s.widthBytes));
    }
    if (parts === undefined) return emptyBytes;
    if (parts.length === 1) return parts[0].slice();
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
}

/**
 * Undoes the open transaction's writes to `t` (its TouchLog): every row it wrote goes, then every row it replaced or
 * deleted comes back under its row id (ids freed in a tx are not reused before it ends; untouched rows coexisted with
 * the restored ones, so nothing can conflict). The rows under the tx's own ids (from log.idsStart on: an insert loop's)
 * leave the row store at once (RowStore.truncate); when fewer rows stay than go, the indexes are built anew over the
 * rows that stay, else each index drops them (in one pass where it can: IndexStore.removeIdsFrom). One by one, a
 * removal from the row store and every index each, an insert loop stopped at its time limit (~400k rows in 1 s) waited
 * 80-170 ms more for its rollback, an update loop over 1M rows 70-250 ms (docs/performance.md "Insert-loop rollback").
 */
function rollbackTable(t: TableState): void {
  const log = t.touched, ids = log.ids, before = log.before, after = log.after, idsStart = log.idsStart, rows = t.rows;
  let own = 0, removed = 0, restored = 0;
  for (let k = 0; k < log.count; k++) {
    if (after[k] !== null) { removed++; if (ids[k] >= idsStart) own++; }
    if (before[k] !== null) restored++;
  }
  const reindex = own > rows.size - removed + restored;
  // Own rows leave the indexes first: a restored row may have the key an own row took after the tx deleted it.
  if (!reindex) t.unindexFrom(idsStart, own);
  // A row under an own id never had a `before`. An updated row whose keys the update kept goes back in place (no index
  // entry moves, so it cannot meet another row's key) and leaves the log; the others go, then come back.
  for (let k = 0; k < log.count; k++) {
    if (after[k] === null || ids[k] >= idsStart) continue;
    const was = before[k];
    if (reindex) rows.remove(ids[k]);
    else if (was !== null && t.restoreInPlace(ids[k], was)) before[k] = null;
    else t.removeRow(ids[k]);
  }
  for (let k = 0; k < log.count; k++) {
    const was = before[k];
    if (was === null) continue;
    if (reindex) rows.insertAt(ids[k], was, 0, was.length); else t.restoreRow(ids[k], was);
  }
  rows.truncate(idsStart);
  if (reindex) t.reindex();
}

/** Removes pairs of byte-identical rows present in both lists (a delete and re-insert of the same row is no change). */
function cancelIdentical(inserts: Uint8Array[], deletes: Uint8Array[]): void {
  if (inserts.length === 0 || deletes.length === 0) return;
  if (inserts.length <= cancelPairwiseMaxRows && deletes.length <= cancelPairwiseMaxRows) {
    for (let i = inserts.length - 1; i >= 0; i--) {
      let j = 0;
      while (j < deletes.length && !bytesEqual(deletes[j], inserts[i])) j++;
      if (j < deletes.length) { deletes.splice(j, 1); inserts.splice(i, 1); }
    }
    return;
  }
  const deleted = new Map<string, number[]>();
  deletes.forEach((d, i) => { const k = rowIdentity(d); const l = deleted.get(k); if (l) l.push(i); else deleted.set(k, [i]); });
  const dropDeletes = new Set<number>();
  let w = 0;
  for (const ins of inserts) {
    const l = deleted.get(rowIdentity(ins));
    if (l !== undefined && l.length > 0) { dropDeletes.add(l.pop()!); continue; }
    inserts[w++] = ins;
  }
  inserts.length = w;
  let k = 0;
  for (let i = 0; i < deletes.length; i++) if (!dropDeletes.has(i)) deletes[k++] = deletes[i];
  deletes.length = k;
}
