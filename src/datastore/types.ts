// datastore/types.ts — the contract between the datastore and the layers above it (host, sql, subscription).
//
// Owns: the resolved schema of a database (tables, columns, indexes, constraints, sequences) and the shapes of
// transactions and their effects. The implementation lives in the other datastore/ files.
// May call: sats/types.
//
// Rows are BSATN `Uint8Array`s of the table's row product (columns in schema order). Tables and indexes are named
// by numeric ids that are stable for the life of a schema (the host hands them to modules).

import type { AlgebraicType, ProductType, Typespace } from '../sats/types.js';

export type TableId = number;
export type IndexId = number;

export type IndexAlgorithm = 'btree' | 'hash' | 'direct';

export interface ColumnSchema {
  /** Canonical (case-converted) column name, used by SQL and clients. */
  name: string;
  /** Source name from the module (the field name in `table({...})`), also accepted by SQL. */
  sourceName: string;
  /** Fully resolved: contains no `Ref` at the top level (nested Refs are resolved through `typespace`). */
  type: AlgebraicType;
}

export interface IndexSchema {
  indexId: IndexId;
  /** Canonical generated name: `{table}_{cols}_idx_{algo}`. */
  name: string;
  /** Other names that resolve to this index (the module's source name, e.g. `person_name_idx_btree`). */
  aliases: string[];
  algorithm: IndexAlgorithm;
  /** Column positions, in key order. */
  columns: number[];
  /** True when a unique constraint (or the primary key) covers exactly these columns. */
  unique: boolean;
}

export interface SequenceSchema {
  name: string;
  column: number;
  start: bigint;
  increment: bigint;
  min: bigint;
  max: bigint;
}

export interface ScheduleSchema {
  /** Canonical name of the reducer or procedure to call. */
  functionName: string;
  /** Column holding the ScheduleAt value. */
  scheduleAtColumn: number;
  /** Column holding the u64 scheduled id (the primary key). */
  idColumn: number;
}

export interface TableSchema {
  tableId: TableId;
  /** Canonical name (what clients and SQL see). */
  name: string;
  /** Other names that resolve to this table (the module's accessor/source name). */
  aliases: string[];
  /** Row type: a Product whose elements are the columns. */
  rowType: ProductType;
  columns: ColumnSchema[];
  primaryKey: number | undefined;
  indexes: IndexSchema[];
  /** Column sets that must be unique; each is backed by a unique index with the same columns. */
  uniqueConstraints: { name: string; columns: number[] }[];
  sequences: SequenceSchema[];
  access: 'public' | 'private';
  /** Event table: rows are broadcast on commit but never kept. */
  isEvent: boolean;
  schedule: ScheduleSchema | undefined;
  /** Default values for columns (BSATN of the column type), used by migrations that add columns. */
  defaultValues: Map<number, Uint8Array>;
}

export interface DatabaseSchema {
  typespace: Typespace;
  tables: TableSchema[];
}

/** One table's net effect in a committed transaction. A row both inserted and deleted in one tx appears in neither. */
export interface TableChanges {
  tableId: TableId;
  tableName: string;
  inserts: Uint8Array[];
  deletes: Uint8Array[];
}

/** The effect of one committed transaction, in table-id order. Consumed by durability and subscriptions. */
export interface TxData {
  tables: TableChanges[];
}

/** Arguments of a range scan, already split out of the module's buffer (see host-abi §3.4 "Range scans"). */
export interface RangeScanArgs {
  /** BSATN of the first `prefixElems` index columns, concatenated. */
  prefix: Uint8Array;
  prefixElems: number;
  /** BSATN `Bound` (u8 tag 0 Included / 1 Excluded / 2 Unbounded, then the value) of column `prefixElems`. */
  rangeStart: Uint8Array;
  rangeEnd: Uint8Array;
}

/** Result of an insert or update: the stored row and the write-back bytes of generated (auto_inc) values. */
export interface WriteResult {
  row: Uint8Array;
  /** BSATN of the generated column values in column order; empty when nothing was generated. */
  generated: Uint8Array;
}

/**
 * Datastore error codes are the module ABI's errno values (host-abi §3.3), so the host can pass them through.
 */
export const errno = {
  hostCallFailure: 1,
  notInTransaction: 2,
  bsatnDecodeError: 3,
  noSuchTable: 4,
  noSuchIndex: 5,
  noSuchIter: 6,
  wrongIndexAlgorithm: 10,
  uniqueAlreadyExists: 12,
  scheduleAtDelayTooLong: 13,
  indexNotUnique: 14,
  noSuchRow: 15,
  autoIncOverflow: 16,
} as const;
export type Errno = (typeof errno)[keyof typeof errno];

/** An operating error caused by the caller's input (a module, a SQL statement): typed, with what and where. */
export class DatastoreError extends Error {
  constructor(readonly code: Errno, message: string) {
    super(message);
    this.name = 'DatastoreError';
  }
}

/**
 * A test of one stored row, on its bytes `bytes[start, start + length)` in place (scanChunkWhere). It must not write
 * to the datastore, and must not keep `bytes`: they are the table's own page.
 */
export type StoredRowTest = (bytes: Uint8Array, start: number, length: number) => boolean;

/** Read access to committed state, or to a transaction's view of it. Results are snapshots (arrays), never live. */
export interface ReadView {
  schema(): DatabaseSchema;
  table(tableId: TableId): TableSchema;
  /** Resolves canonical names and aliases; undefined when unknown. */
  tableByName(name: string): TableSchema | undefined;
  indexByName(name: string): { table: TableSchema; index: IndexSchema } | undefined;
  rowCount(tableId: TableId): number;
  /** All rows in insertion order. */
  scan(tableId: TableId): Uint8Array[];
  /**
   * Up to `maxRows` rows of the table from position `from` on, in `scan`'s order, and the position to go on from (-1
   * after the last): a scan in pieces, for a reader that may stop early (LIMIT, a budget) and must not hold a copy of
   * every row at once (sql/planner.ts). Positions hold only while nothing writes. Optional: without it, `scan`.
   */
  scanChunk?(tableId: TableId, from: number, maxRows: number): { rows: Uint8Array[]; next: number };
  /**
   * scanChunk that copies only the rows `keep` accepts, testing each on its stored bytes first (a full scan's WHERE:
   * a row it rejects costs no copy and no object). Visits up to `maxRows` rows; `visited` says how many. Optional.
   */
  scanChunkWhere?(tableId: TableId, from: number, maxRows: number, keep: StoredRowTest): { rows: Uint8Array[]; next: number; visited: number };
  /** `key` = BSATN of all index columns, concatenated. */
  scanIndexPoint(indexId: IndexId, key: Uint8Array): Uint8Array[];
  scanIndexRange(indexId: IndexId, range: RangeScanArgs): Uint8Array[];
}

/**
 * The shape of an update that cannot fail (see `MutTx.infallibleUpdate`): the row's key (the index's single column)
 * is the bytes `keyOffset .. keyOffset + keyWidthBytes` of the row (`keyWidthBytes` 0: a string, its u32 length and
 * UTF-8 bytes from `keyOffset`; equal strings have equal bytes), and the row is exactly `rowWidthBytes` long (rows of
 * plain numbers) or, when `rowWidthBytes` is 0, a row `layout` accepts (a list of `rowLayoutCode` items, one per run of
 * columns, in column order).
 */
export interface InfallibleUpdate {
  tableId: TableId;
  rowWidthBytes: number;
  keyOffset: number;
  keyWidthBytes: number;
  /**
   * The key column has a sequence (an autoInc primary key): the promise holds only for a row whose key is not 0 (a 0
   * would be generated anew, as an insert's). A caller defers only such rows.
   */
  keyNonZero: boolean;
  /**
   * Columns an update must leave as they are for the promise to hold, when the table has unique constraints on other
   * columns than the key, or sequences on them: an update that keeps their bytes (and whose sequence columns are not
   * 0) breaks no unique constraint and generates nothing. Empty when there are none. Shapes with guards have
   * `rowWidthBytes` 0 and carry the guards at the head of `layout` (rowLayoutCode.guards), so the shim learns them with
   * the layout.
   */
  guards: readonly UpdateGuard[];
  layout?: Uint8Array;
}

/**
 * A column InfallibleUpdate.guards names: it starts at `offset` in layout item `item` (items counted as the layout is
 * walked: a run of fixed-width columns, or one other column) and is `widthBytes` wide (0: u32 length + bytes).
 */
export interface UpdateGuard {
  item: number;
  offset: number;
  widthBytes: number;
  /** A sequence's column: 0 would be generated anew. */
  nonZero: boolean;
}

/**
 * Items of InfallibleUpdate.layout. fixed, w lo, w hi: w bytes, any value (numbers and products of numbers, e.g.
 * timestamps, identities). string: u32 length + valid UTF-8 (WHATWG fatal decoding). bytes: u32 length + any bytes.
 * bool: one byte, 0 or 1. option, item: tag 0 then the item, or tag 1 alone.
 *
 * guards (first byte only, InfallibleUpdate.guards): u8 count, then per guard u16 item, u16 offset, u16 width, u8
 * nonZero, all before the first item. A table's own layout never has it.
 */
export const rowLayoutCode = { fixed: 0, string: 0x80, bytes: 0x81, bool: 0x82, option: 0x83, guards: 0xff } as const;
/** Bytes per guard after rowLayoutCode.guards and its count. */
export const updateGuardBytes = 7;

/**
 * The shape of an insert that cannot fail (see `MutTx.infallibleInsert`) once its sequence column holds a value the
 * transaction leased (`MutTx.leaseSequence`): the row is `rowWidthBytes` long or, when that is 0, a row `layout`
 * accepts (as InfallibleUpdate), and its sequence column is the `sequenceWidthBytes` little-endian bytes at
 * `sequenceOffset`.
 */
export interface InfallibleInsert {
  tableId: TableId;
  rowWidthBytes: number;
  layout?: Uint8Array;
  sequenceOffset: number;
  sequenceWidthBytes: number;
}

/** Values `start`, `start + increment`, … (`count` of them) of a table's sequence, reserved for one holder. */
export interface SequenceLease { start: bigint; increment: bigint; count: number }

/** The single writer. Every method throws DatastoreError on bad input; the tx stays usable after such an error. */
export interface MutTx extends ReadView {
  /**
   * Whether `update(tableId, indexId, row)` through this index cannot throw, given that (1) `row` has the returned
   * shape (length or layout, key position) and (2) a row whose key bytes equal the new row's key bytes exists in this
   * tx. True only for user tables whose columns all have a row layout code (numbers, timestamps and other products of
   * numbers, strings, bytes, bools, options of these: checking the layout is the whole validation), without schedule
   * or event semantics, whose first unique constraint (the primary key's, when there is one) covers exactly this
   * index's single integer or string column (a sequence on it: for keys other than 0, `keyNonZero`), and whose other
   * unique constraints and sequences are on columns of fixed width, strings or bytes (`guards`: (3) the row keeps
   * their bytes, and its sequence columns are not 0): the update then
   * finds its row and replaces it without violating anything. Such keys also mean equal keys have equal bytes, so the
   * caller may identify rows by their key bytes. The host uses it to defer such updates
   * (host/syscalls.ts). Optional: views' read-only transactions do not have it.
   */
  infallibleUpdate?(indexId: IndexId): InfallibleUpdate | undefined;
  /**
   * The index of table `tableId`, or of the table index `indexId` belongs to, that has an `infallibleUpdate` (at most
   * one: every unique constraint of such a table is on that index's column, and indexes on the same column share it,
   * so the first is taken): the index under which rows a scan of the table returned may be cached and updated.
   */
  rowCacheIndex?(of: { tableId: TableId } | { indexId: IndexId }): { indexId: IndexId; shape: InfallibleUpdate } | undefined;
  /**
   * Whether `insert(tableId, row)` cannot throw, given that `row` has the returned shape and its sequence column holds
   * a leased value not used before. True only for user tables whose columns all have a row layout code, with exactly
   * one sequence, on an integer column of at most 8 bytes at a static offset, with a positive increment, whose every
   * unique constraint covers exactly that column, without schedule or event semantics. Also for such tables with no
   * sequence and no unique constraint (sequenceWidthBytes 0): their insert fails for nothing but a malformed row (an
   * identical row already there is no change, as ever); their "leases" reserve nothing. Optional, like the above.
   */
  infallibleInsert?(tableId: TableId): InfallibleInsert | undefined;
  /**
   * Reserves up to `count` next values of the table's one sequence (infallibleInsert's) that no row of the table holds
   * and that lie in the sequence's range and below 2^53: the sequence moves past them, so nothing else hands them out.
   * Undefined when no value qualifies (then an insert that generates fails or succeeds as usual). The holder must
   * end the lease with `endSequenceLease` before anything else may generate from this sequence.
   */
  leaseSequence?(tableId: TableId, count: number): SequenceLease | undefined;
  /**
   * Ends a lease: the sequence's next value becomes `next` (the first leased value not used), as if the used values
   * had been generated one by one and no others. `next` lies within the lease, so no handed-out value is reissued.
   */
  endSequenceLease?(tableId: TableId, next: bigint): void;
  /**
   * Takes up an ended lease's unused values again (`count` from `start`) in a transaction that `follows` the one that
   * ended it (the caller checks that): nothing wrote since, so no row holds them yet. False, and nothing changes, when
   * the sequence is no longer at `start`.
   */
  resumeSequenceLease?(tableId: TableId, start: bigint, count: number): boolean;
  /** Remembers the state now, for `follows`. Optional, like the above. */
  checkpoint?(): void;
  /**
   * True when `previous` (a transaction of the same datastore) reached its `checkpoint`, then committed with no write
   * in between, and nothing changed the datastore between that commit and the start of this transaction: what a
   * caller saw at the checkpoint is still so. The host uses it to keep the module's row cache from one reducer call
   * to the next (host/isolate-src.ts). Optional, like the above.
   */
  follows?(previous: MutTx): boolean;
  /**
   * Bytes this transaction has written, as its commit-log record will need them: every inserted row, both sides of
   * an update and every deleted row, each plus limits.ts `txWriteRowOverheadBytes`, plus `txWriteTableOverheadBytes`
   * per table touched — an upper bound of the record's row data, known before the commit (the host refuses to commit
   * over `txWriteBytesMax`). Optional, like the above.
   */
  readonly writeBytes?: number;
  /**
   * Row bytes this transaction added, less those it removed (inserted rows with `txWriteRowOverheadBytes` each,
   * updates' growth, deleted rows with the same overhead): positive when it adds to memory (the host refuses those
   * while the server is over its memory bound, host/memory-guard.ts). Optional, like the above.
   */
  readonly grownBytes?: number;
  insert(tableId: TableId, row: Uint8Array): WriteResult;
  /** Replace the row whose unique index `indexId` key equals the new row's key. */
  update(tableId: TableId, indexId: IndexId, row: Uint8Array): WriteResult;
  deleteByIndexPoint(indexId: IndexId, key: Uint8Array): number;
  deleteByIndexRange(indexId: IndexId, range: RangeScanArgs): number;
  /** Delete rows byte-equal to any of `rows`. */
  deleteByRows(tableId: TableId, rows: Uint8Array[]): number;
  clear(tableId: TableId): number;
  /** Make the changes visible and return their net effect. The tx is finished afterwards. */
  commit(): TxData;
  /** Undo every change. The tx is finished afterwards. */
  rollback(): void;
}
