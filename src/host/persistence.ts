// host/persistence.ts — what one database writes to its commit log and snapshots, and how it is rebuilt from them.
//
// Owns: the meaning of commit-log payloads and snapshot payloads of a database directory (`<dbDir>/clog/`,
// `<dbDir>/snapshots/`), sequence reservations, the snapshot/prune policy, and recovery (newest valid snapshot whose
// offset ≤ the durable offset, then replay of the log tail).
// May call: durability/commitlog, durability/snapshot, datastore/store, datastore/schema, datastore/table, datastore/types,
// sats/bsatn, sats/moduledef.
//
// Commit payloads. Byte 0 = kind (low 4 bits) | flags (high 4 bits), then the body:
//   1 Program  the module program text (string), module definition bytes (bytes, `__describe_module__` output),
//              owner identity (u256), database identity (u256), timestamp (i64 µs). Written at create and update.
//   2 Tx       varint tableCount, then per table (ascending ids):
//                zigzag(tableId − base)   base = firstUserTableId for the first table, then previous id + 1
//                varint rowWidth          0 = rows vary in length (each row is prefixed by its varint length)
//                varint shape             pairs·16 + min(extraDeletes, 3)·4 + min(extraInserts, 3);
//                                         a field that reads 3 is followed by the full count as a varint
//                pairs × (inserted row, diff)  the paired deleted row is the inserted row with bytes
//                                         [skip, skip+n) replaced: varint(skip·16 + min(n, 15)) [varint(n − 15)] bytes
//                extraDeletes × row, extraInserts × row
//              flag 0x10: then varint count × (sequence name: string, reservation: zigzag varint).
//              flag 0x20: then one client change: u8 (1 connected, 0 disconnected), identity (u256), connection id
//              (u128). Logged with the transaction of the client_connected / client_disconnected reducer, so the set
//              of connected clients is exactly as durable as what those reducers wrote; after a crash the host runs
//              client_disconnected for every client still in the set (upstream's restart auto-disconnect).
//              flag 0x40: then the SQL system variables (upstream's st_var, e.g. `SET row_limit`) as they are after
//              this record: varint count × (name: string, value: u64). Logged by an otherwise empty Tx record.
//   3 Reset    all data is deleted and the database starts over with the program in the body (same body as
//              Program). One record, so a torn write cannot leave a reset database without a program.
// Pairs are the longest prefix where deletes[i] and inserts[i] have the same length: an update (the common case: a
// keynote transfer is 2 updates of 12-byte rows) costs its new row plus the few bytes that changed, and the order of
// inserts is kept. Varints are unsigned LEB128; zigzag maps signed to unsigned.
//
// Sequences are reserved in blocks, as upstream does (its `allocated` column): a Tx record carries a reservation
// R for a sequence only when the sequence has moved past the last one logged, and recovery resumes each sequence at
// R or later. Every value ever handed out is < R, so no id is reissued after a restart — including ids whose rows
// were deleted again, or were inserted and deleted in one transaction (those never appear in TxData). The cost is a
// gap of up to sequenceReservationValues after a restart (upstream: 1, 2, 3, restart, 4097); narrow sequences use
// smaller blocks (see reservationFor).
//
// Snapshot payload: u8 version, Program body, varint count × (name, zigzag reservation), bytes (Datastore snapshot),
// varint count × (identity u256, connection id u128) of connected clients, then (absent from snapshots written before
// system variables existed, which read as none) varint count × (name: string, value: u64) of system variables.
// A snapshot at offset X holds the state after record X, so recovery replays from X + 1, and the log before X can be
// pruned: the snapshot carries the program too.
//
// Program records whose definition differs from the current one (a module update) rebuild the datastore through
// `options.migrate` (default: carry every table's rows over by table id and name, which holds for updates that only
// add tables). The host must use the same function on the live path, or snapshot right after an update.

import assert from 'node:assert';
import path from 'node:path';
import { CommitLog, type CommitLogStats, type DurabilityMode } from '../durability/commitlog.js';
import { listSnapshots, readNewestValidSnapshot, writeSnapshot, type Snapshot } from '../durability/snapshot.js';
import { Datastore } from '../datastore/store.js';
import { buildDatabaseSchema, firstUserTableId } from '../datastore/schema.js';
import { bytesEqual, type SequenceState } from '../datastore/table.js';
import type { DatabaseSchema, TableChanges, TableSchema, TxData } from '../datastore/types.js';
import { BsatnReader, BsatnWriter } from '../sats/bsatn.js';
import { decodeRawModuleDef } from '../sats/moduledef.js';

/** Take a snapshot after this many commits since the last one (upstream: every 1,000,000 transactions). */
export const snapshotEveryCommits = 1_000_000;
/** … or after this many log bytes since the last one, whichever comes first. */
export const snapshotEveryLogBytes = 256 * 1024 * 1024;
/**
 * A graceful close snapshots when at least this many bytes of transactions follow the newest snapshot in the log
 * (program records do not count: they replay at no cost), so the next start restores rows instead of replaying their
 * records (measured: restarting with 1M rows written by one 12 MB record took 2.1 s of CPU by replay; restoring a
 * 1M-row snapshot takes ~0.6 s).
 */
export const snapshotOnCloseMinLogBytes = 1024 * 1024;
/** Values a sequence reservation covers beyond the current next value (upstream SEQUENCE_ALLOCATION_STEP). */
export const sequenceReservationValues = 4096n;
/** A reservation block is at most this fraction of the sequence's range (values lost per restart stay small). */
const reservationRangeDivisor = 256n;
/** Initial capacity of the reused transaction encoder; it grows as needed and is kept. */
const txWriterInitialBytes = 4096;
const snapshotPayloadVersion = 2;

const enum RecordKind { Program = 1, Tx = 2, Reset = 3 }
const kindMask = 0x0f;
const flagSequences = 0x10;
const flagClient = 0x20;
const flagVars = 0x40;
const shapeExtraEscape = 3;
const diffLengthEscape = 15;

export interface ProgramInfo {
  /** The module's JavaScript program text. */
  programText: string;
  /** `__describe_module__` output: BSATN RawModuleDef (V10). */
  moduleDef: Uint8Array;
  ownerIdentity: bigint;
  databaseIdentity: bigint;
  timestampMicros: bigint;
}

/** A client connecting or disconnecting, logged with the lifecycle reducer's transaction. */
export interface ClientChange {
  connected: boolean;
  identity: bigint;
  connectionId: bigint;
}

export interface RecoveredState {
  program: ProgramInfo;
  datastore: Datastore;
  /** Clients connected when the log ends (connection id → identity): they were connected at the crash. */
  connectedClients: Map<bigint, bigint>;
  /** SQL system variables as last logged (`SET row_limit`). */
  vars: Map<string, bigint>;
  /** Offset of the last record applied (the snapshot's offset when the log tail is empty). */
  lastOffset: bigint;
}

/** Rebuilds the datastore for a new module definition during replay (must match what the host does live). */
export type MigrateFn = (old: Datastore, newSchema: DatabaseSchema, newProgram: ProgramInfo) => Datastore;

export interface PersistenceOptions {
  durability: DurabilityMode;
  snapshotEveryCommits?: number;
  snapshotEveryLogBytes?: number;
  /** Delete log segments older than the oldest kept snapshot after each snapshot (default true). */
  pruneAfterSnapshot?: boolean;
  migrate?: MigrateFn;
  /** Notable recovery and snapshot events, one human-readable line each. */
  report?: (message: string) => void;
  segmentSizeMaxBytes?: number;
  /** Test-only: make the n-th log write or sync fail (CommitLogOptions.faultInjection). */
  faultInjection?: { failWriteNumber?: number; failSyncNumber?: number };
  /** Test-only: a smaller log record limit (CommitLogOptions.recordPayloadMaxBytes). */
  recordPayloadMaxBytes?: number;
}

/** A commit-log or snapshot payload that cannot be understood; says which record or file. */
export class PersistenceError extends Error {
  override name = 'PersistenceError';
}

interface SequenceInfo { name: string; increment: bigint; min: bigint; max: bigint }

export class DatabasePersistence {
  private readonly writer = new BsatnWriter(txWriterInitialBytes);
  private readonly report: (message: string) => void;
  private readonly everyCommits: number;
  private readonly everyBytes: number;
  private readonly prune: boolean;
  /** Last logged reservation per sequence name. */
  private readonly reserved: Map<string, bigint>;
  /** Connected clients as logged: connection id → identity. */
  private readonly connected: Map<bigint, bigint>;
  private program: ProgramInfo | undefined;
  private seqSchema: DatabaseSchema | undefined;
  private seqInfo: SequenceInfo[] = [];
  private readonly seqPending: [string, bigint][] = [];
  /** SQL system variables as logged, and a new set waiting for the next recordTx (setVars). */
  private vars: Map<string, bigint>;
  private varsPending: Map<string, bigint> | undefined;
  private commitsAtSnapshot = 0;
  private bytesAtSnapshot = 0;
  /** Transaction payload bytes logged (or replayed at open) after the newest snapshot: what a restart would replay. */
  private txBytesOwed = 0;
  private snapshotting: Promise<void> | undefined;

  private constructor(
    private readonly log: CommitLog,
    private readonly snapshotDir: string,
    options: PersistenceOptions,
    program: ProgramInfo | undefined,
    reserved: Map<string, bigint>,
    connected: Map<bigint, bigint>,
    vars: Map<string, bigint>,
  ) {
    this.report = options.report ?? (() => {});
    this.everyCommits = options.snapshotEveryCommits ?? snapshotEveryCommits;
    this.everyBytes = options.snapshotEveryLogBytes ?? snapshotEveryLogBytes;
    this.prune = options.pruneAfterSnapshot ?? true;
    this.program = program;
    this.reserved = reserved;
    this.connected = connected;
    this.vars = vars;
  }

  /**
   * Opens (creating if needed) the database directory and rebuilds its state. `recovered` is undefined for a database
   * that has no Program record yet. Log corruption (CommitLogCorruptError) propagates with its file and offset.
   */
  static async open(dbDir: string, options: PersistenceOptions): Promise<{ persistence: DatabasePersistence; recovered: RecoveredState | undefined }> {
    const report = options.report ?? (() => {});
    const log = CommitLog.openDeferred(path.join(dbDir, 'clog'), {
      durability: options.durability, report, segmentSizeMaxBytes: options.segmentSizeMaxBytes, faultInjection: options.faultInjection,
      recordPayloadMaxBytes: options.recordPayloadMaxBytes,
    });
    const snapshotDir = path.join(dbDir, 'snapshots');
    try {
      const r = recover(log, snapshotDir, options.migrate ?? carryRowsOver, report);
      const p = new DatabasePersistence(log, snapshotDir, options, r.recovered?.program, r.reserved, new Map(r.connected), new Map(r.vars));
      // The log stats count from this open: what was replayed after the snapshot is owed to the next one too.
      p.commitsAtSnapshot = -r.tailRecords;
      p.bytesAtSnapshot = -r.tailBytes;
      p.txBytesOwed = r.tailTxBytes;
      return { persistence: p, recovered: r.recovered };
    } catch (e) {
      await log.close().catch(() => {});
      throw e;
    }
  }

  /** The program of the last Program/Reset record (recovered or recorded). */
  get currentProgram(): ProgramInfo | undefined { return this.program; }
  get stats(): Readonly<CommitLogStats> { return this.log.stats; }
  get durableOffset(): bigint { return this.log.durableOffset; }
  /** Offset of the last record appended, -1n when the log is empty. */
  get lastOffset(): bigint { return this.log.nextOffset - 1n; }

  /** Logs a new program (database creation, module update). Returns its offset. */
  recordProgram(program: ProgramInfo): bigint {
    return this.appendProgram(RecordKind.Program, program);
  }

  /** Logs that all data was deleted and the database restarts with `program`. Returns the offset. */
  recordReset(program: ProgramInfo): bigint {
    this.reserved.clear();
    this.connected.clear();
    this.vars = new Map();
    this.varsPending = undefined;
    this.seqSchema = undefined;
    return this.appendProgram(RecordKind.Reset, program);
  }

  /**
   * Logs a committed transaction; call right after the in-memory commit, with the datastore it was committed to
   * (for sequence state). Synchronous; wait for durability with waitDurable. Returns the offset, or the previous
   * offset when there was nothing to log (no row changes, no new reservation).
   */
  recordTx(txData: TxData, datastore: Datastore, timestampMicros?: bigint, client?: ClientChange): bigint {
    this.collectReservations(datastore);
    const vars = this.varsPending;
    if (txData.tables.length === 0 && this.seqPending.length === 0 && client === undefined && vars === undefined) return this.lastOffset;
    const w = this.writer;
    w.reset();
    encodeTx(w, txData, this.seqPending, client, vars);
    const payload = w.written();
    const offset = this.log.append(payload, timestampMicros);
    this.txBytesOwed += payload.length;
    for (const [name, r] of this.seqPending) this.reserved.set(name, r);
    this.seqPending.length = 0;
    if (client !== undefined) applyClientChange(this.connected, client);
    if (vars !== undefined) { this.vars = vars; this.varsPending = undefined; }
    return offset;
  }

  /** The SQL system variables to log with the next recordTx (the whole set; an empty transaction carries it too). */
  setVars(vars: ReadonlyMap<string, bigint>): void {
    this.varsPending = new Map(vars);
  }

  waitDurable(offset: bigint): Promise<void> {
    return this.log.waitDurable(offset);
  }

  /**
   * Starts a background snapshot when the policy says so (commits or log bytes since the last one). Call between
   * transactions with the datastore all recorded records were applied to. Returns whether one was started.
   */
  maybeSnapshot(datastore: Datastore): boolean {
    if (this.snapshotting !== undefined || this.program === undefined || this.log.nextOffset === 0n) return false;
    const s = this.log.stats;
    if (s.appends - this.commitsAtSnapshot < this.everyCommits && s.bytesAppended - this.bytesAtSnapshot < this.everyBytes) return false;
    void this.snapshotNow(datastore);
    return true;
  }

  /**
   * Captures the state now (synchronously) and writes it once the log is durable up to it; then prunes the log.
   * Failures are reported, not thrown: the log alone still rebuilds everything. While a snapshot is in progress this
   * returns that snapshot's promise instead of starting another.
   */
  snapshotNow(datastore: Datastore): Promise<void> {
    if (this.snapshotting !== undefined) return this.snapshotting;
    assert(this.program !== undefined, 'snapshot before any program was recorded');
    const offset = this.lastOffset;
    assert(offset >= 0n, 'snapshot of an empty log');
    this.commitsAtSnapshot = this.log.stats.appends;
    this.bytesAtSnapshot = this.log.stats.bytesAppended;
    this.txBytesOwed = 0;
    const payload = encodeSnapshotPayload(this.program, this.reserved, datastore.exportSnapshot(), this.connected, this.vars);
    const run = async () => {
      try {
        await this.log.waitDurable(offset); // a snapshot ahead of the durable log would be retired on restart
        await writeSnapshot(this.snapshotDir, offset, payload);
        if (this.prune) {
          const kept = listSnapshots(this.snapshotDir);
          const oldest = kept[kept.length - 1];
          // Keep the log back to the oldest kept snapshot, so a damaged newest snapshot is not fatal.
          if (oldest !== undefined) this.log.prune(oldest.offset);
        }
      } catch (e) {
        this.report(`snapshot at offset ${offset} failed: ${(e as Error).message}`);
      } finally {
        this.snapshotting = undefined;
      }
    };
    this.snapshotting = run();
    return this.snapshotting;
  }

  /**
   * Waits for a snapshot in progress, then flushes, syncs and closes the log. Given the datastore (a graceful close of
   * a healthy database), first snapshots it when snapshotOnCloseMinLogBytes of transactions follow the newest snapshot.
   */
  async close(datastore?: Datastore): Promise<void> {
    if (this.snapshotting !== undefined) await this.snapshotting;
    if (datastore !== undefined && this.program !== undefined && this.txBytesOwed >= snapshotOnCloseMinLogBytes) {
      await this.snapshotNow(datastore);
    }
    await this.log.close();
  }

  private appendProgram(kind: RecordKind, program: ProgramInfo): bigint {
    const w = new BsatnWriter(program.programText.length + program.moduleDef.length + 128);
    w.writeU8(kind);
    writeProgram(w, program);
    const offset = this.log.append(w.written(), program.timestampMicros);
    this.program = program;
    return offset;
  }

  /** Fills seqPending with the sequences that moved past their last logged reservation. */
  private collectReservations(datastore: Datastore): void {
    const schema = datastore.schema();
    if (schema !== this.seqSchema) {
      this.seqSchema = schema;
      this.seqInfo = schema.tables.flatMap((t) => t.sequences.map((s) => ({ name: s.name, increment: s.increment, min: s.min, max: s.max })));
    }
    if (this.seqInfo.length === 0) return;
    const state = datastore.sequenceState();
    for (const s of this.seqInfo) {
      const next = state.get(s.name);
      if (next === undefined) assert.fail(`sequence ${s.name} has no state`);
      const r = this.reserved.get(s.name);
      const up = s.increment > 0n;
      if (r !== undefined && (up ? next <= r : next >= r)) continue;
      this.seqPending.push([s.name, reservationFor(next, s)]);
    }
  }
}

/**
 * The bound to log: ≥ next (every handed-out value lies before it), a block ahead, kept inside the sequence range.
 * Narrow sequences get smaller blocks (1/256 of their range; none for 8-bit ones), so restarts cannot exhaust them.
 */
function reservationFor(next: bigint, s: SequenceInfo): bigint {
  const rangeBlock = (s.max - s.min) / reservationRangeDivisor;
  const block = rangeBlock < sequenceReservationValues ? rangeBlock : sequenceReservationValues;
  const ahead = next + block * s.increment;
  if (s.increment > 0n) return ahead > s.max ? (next > s.max ? next : s.max) : ahead;
  return ahead < s.min ? (next < s.min ? next : s.min) : ahead;
}

// ---- recovery ----

/** A record as the commit log's scanner exposes it during replay (durability/segment.ts SegmentScanner). */
interface ScannedView { readonly buf: Uint8Array; readonly payloadStart: number; readonly payloadEnd: number; readonly offset: number }

interface Replayed {
  recovered: RecoveredState | undefined; reserved: Map<string, bigint>; connected: Map<bigint, bigint>; vars: Map<string, bigint>;
  /** Records, their bytes and the transactions' payload bytes replayed after the snapshot: owed to the next one. */
  tailRecords: number; tailBytes: number; tailTxBytes: number;
}

function applyClientChange(connected: Map<bigint, bigint>, c: ClientChange): void {
  if (c.connected) connected.set(c.connectionId, c.identity);
  else connected.delete(c.connectionId);
}

/** Above any commit offset: lets a snapshot be chosen before the log's end is known. */
const offsetUnbounded = (1n << 64n) - 1n;

/**
 * Rebuilds the state from the newest valid snapshot and the log after it. `log` comes from openDeferred: the replay
 * also scans the last segment for the torn tail (one pass), so the log's durable end is known only afterwards. The
 * snapshot is therefore chosen first; if the log turns out to end before it (its commits were lost with the log tail),
 * it is retired and the state is rebuilt from an older one with an ordinary replay.
 */
function recover(log: CommitLog, snapshotDir: string, migrate: MigrateFn, report: (m: string) => void): Replayed {
  const snap = readNewestValidSnapshot(snapshotDir, offsetUnbounded, report);
  const first = replayFrom(snap, (from) => log.recoverViews(from), log.dir, snapshotDir, migrate);
  if (snap === undefined || snap.offset <= log.durableOffset) return first;
  const older = readNewestValidSnapshot(snapshotDir, log.durableOffset, report);
  return replayFrom(older, (from) => log.replayViews(from), log.dir, snapshotDir, migrate);
}

function replayFrom(snap: Snapshot | undefined, views: (fromOffset: bigint) => Iterable<ScannedView>, logDir: string,
  snapshotDir: string, migrate: MigrateFn): Replayed {
  let program: ProgramInfo | undefined;
  let datastore: Datastore | undefined;
  let lastOffset = -1n;
  const reserved = new Map<string, bigint>();
  const connected = new Map<bigint, bigint>();
  let vars = new Map<string, bigint>();
  if (snap !== undefined) {
    const where = `snapshot ${snap.offset} in ${snapshotDir}`;
    const decoded = decodeOrFail(where, () => decodeSnapshotPayload(snap.payload));
    program = decoded.program;
    datastore = Datastore.fromSnapshot(schemaOf(program, where), decoded.datastoreBytes);
    for (const [k, v] of decoded.reserved) reserved.set(k, v);
    for (const [id, conn] of decoded.connected) connected.set(conn, id);
    vars = new Map(decoded.vars);
    lastOffset = snap.offset;
  }
  const batch = new ReplayBatch(logDir);
  let replayedTo = -1; // a number on the hot path: no BigInt per record
  const seqs: [string, bigint][] = [];
  const clients: ClientChange[] = [];
  const varSets: Map<string, bigint>[] = [];
  let tailRecords = 0;
  let tailBytes = 0;
  let tailTxBytes = 0;
  for (const rec of views(lastOffset + 1n)) {
    const buf = rec.buf;
    tailRecords++;
    tailBytes += rec.payloadEnd - rec.payloadStart;
    const kind = buf[rec.payloadStart]! & kindMask;
    if (kind === RecordKind.Tx) {
      tailTxBytes += rec.payloadEnd - rec.payloadStart;
      if (datastore === undefined) throw new PersistenceError(`commit log record ${rec.offset} in ${logDir}: a transaction before any program record`);
      const ds = datastore;
      batch.begin(rec.offset);
      try {
        walkTx(buf, rec.payloadStart, rec.payloadEnd, ds.schema(), batch, seqs, clients, varSets);
      } catch (e) {
        // Always name the record: the decoder's own errors only know positions inside the payload.
        throw new PersistenceError(`commit log record ${rec.offset} in ${logDir}: ${(e as Error).message}`, { cause: e });
      }
      if (batch.full) batch.flush(ds);
      if (seqs.length > 0) { for (const [k, v] of seqs) reserved.set(k, v); seqs.length = 0; }
      if (clients.length > 0) { for (const c of clients) applyClientChange(connected, c); clients.length = 0; }
      if (varSets.length > 0) { vars = varSets[varSets.length - 1]!; varSets.length = 0; }
    } else if (kind === RecordKind.Program || kind === RecordKind.Reset) {
      const where = `commit log record ${rec.offset} in ${logDir}`;
      if (datastore !== undefined) batch.flush(datastore);
      // A plain Uint8Array (not a Buffer) view: the program's bytes are sliced from it.
      const payload = new Uint8Array(buf.buffer, buf.byteOffset + rec.payloadStart, rec.payloadEnd - rec.payloadStart);
      const next = decodeOrFail(where, () => decodeProgramRecord(payload));
      const schema = schemaOf(next, where);
      if (kind === RecordKind.Reset || datastore === undefined || program === undefined) {
        datastore = new Datastore(schema);
        reserved.clear();
        if (kind === RecordKind.Reset) { connected.clear(); vars = new Map(); }
      } else if (!bytesEqual(program.moduleDef, next.moduleDef)) {
        datastore = migrate(datastore, schema, next);
      }
      program = next;
    } else {
      throw new PersistenceError(`commit log record ${rec.offset} in ${logDir}: unknown record kind ${kind}`);
    }
    replayedTo = rec.offset;
  }
  if (replayedTo >= 0) lastOffset = BigInt(replayedTo);
  if (datastore !== undefined) batch.flush(datastore);
  if (datastore === undefined || program === undefined) return { recovered: undefined, reserved, connected, vars, tailRecords, tailBytes, tailTxBytes };
  advanceSequences(datastore, reserved);
  return { recovered: { program, datastore, lastOffset, connectedClients: new Map(connected), vars: new Map(vars) }, reserved, connected, vars, tailRecords, tailBytes, tailTxBytes };
}

/**
 * Replay applies transactions in batches: the net effect of many consecutive transactions (a row inserted by one and
 * deleted by a later one cancels) is applied to the datastore at once. Tables are sets and every logged transaction
 * was valid, so the final state is the same as applying them one by one, at a fraction of the cost (a keynote
 * workload rewrites the same rows over and over). Sequences are unaffected: recovery moves them to their logged
 * reservations, which lie beyond every value handed out. A batch ends at a Program/Reset record (the schema may
 * change), after replayBatchRowsMax pending rows, or once its row bytes reach replayBatchArenaMaxBytes.
 *
 * Records are decoded in place from the scan buffer (walkTx) straight into per-table RowCounts: no object per
 * record or per row; only the batch's net rows become Uint8Array views, at flush.
 */
const replayBatchRowsMax = 1 << 18;
const replayBatchArenaMaxBytes = 64 * 1024 * 1024;

class ReplayBatch implements TxVisitor {
  private readonly tables = new Map<number, RowCounts>();
  private current: RowCounts | undefined;
  private pendingRows = 0;
  private arenaBytes = 0;
  private firstOffset = -1;
  private lastOffset = -1;

  constructor(private readonly dir: string) {}

  get full(): boolean { return this.pendingRows >= replayBatchRowsMax || this.arenaBytes >= replayBatchArenaMaxBytes; }

  /** Starts the record at `offset`; its rows follow through the TxVisitor calls of walkTx. */
  begin(offset: number): void {
    if (this.firstOffset < 0) this.firstOffset = offset;
    this.lastOffset = offset;
  }

  table(tableId: number): void {
    let t = this.tables.get(tableId);
    if (t === undefined) this.tables.set(tableId, (t = new RowCounts()));
    this.current = t;
  }

  row(insert: boolean, bytes: Uint8Array, start: number, length: number): void {
    const t = this.current!;
    const arenaBefore = t.arenaLength;
    const liveBefore = t.live;
    const net = t.count(bytes, start, length, insert ? 1 : -1);
    this.arenaBytes += t.arenaLength - arenaBefore;
    this.pendingRows += t.live - liveBefore;
    if (net > 1 || net < -1) throw new PersistenceError(`a row is ${net > 0 ? 'inserted' : 'deleted'} twice (record ${this.lastOffset})`);
  }

  flush(ds: Datastore): void {
    if (this.tables.size === 0) return;
    const byId = tablesById(ds.schema());
    const tables: TableChanges[] = [];
    for (const tableId of [...this.tables.keys()].sort((a, b) => a - b)) {
      const inserts: Uint8Array[] = [];
      const deletes: Uint8Array[] = [];
      this.tables.get(tableId)!.collect(inserts, deletes);
      if (inserts.length + deletes.length > 0) tables.push({ tableId, tableName: byId.get(tableId)!.name, inserts, deletes });
    }
    const where = `commit log records ${this.firstOffset}..${this.lastOffset} in ${this.dir}`;
    this.tables.clear();
    this.current = undefined;
    this.pendingRows = 0;
    this.arenaBytes = 0;
    this.firstOffset = -1;
    decodeOrFail(where, () => ds.applyNetEffect({ tables }));
  }
}

/** Multiplicative hash of `bytes[at, at+n)`, four bytes per step (rows are hashed ~4 times per replayed update). */
function rowHash(bytes: Uint8Array, at: number, n: number): number {
  let h = n ^ 0x811c9dc5;
  const end4 = at + (n & ~3);
  let i = at;
  for (; i < end4; i += 4) {
    h = Math.imul(h ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)), 0x9e3779b1);
    h ^= h >>> 15;
  }
  for (; i < at + n; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return h ^ (h >>> 13);
}

const rowCountsInitialEntries = 1024;
const rowCountsInitialArenaBytes = 64 * 1024;
const noEntry = -1;

/**
 * A multiset of rows of one table (net count per distinct row), without an object per row: row bytes are appended to
 * one arena; entries are columns of typed arrays, chained from a power-of-two bucket array by rowHash. An entry
 * whose count returns to 0 is unlinked and its slot reused, with its arena bytes when the next row fits (an update
 * workload then keeps the arena at its live size, in cache); otherwise the arena grows and the batch is bounded.
 */
class RowCounts {
  arenaLength = 0;
  live = 0;
  private arena = new Uint8Array(rowCountsInitialArenaBytes);
  private buckets = new Int32Array(rowCountsInitialEntries * 2).fill(noEntry);
  private next = new Int32Array(rowCountsInitialEntries);
  private start = new Int32Array(rowCountsInitialEntries);
  private length = new Int32Array(rowCountsInitialEntries);
  private hash = new Int32Array(rowCountsInitialEntries);
  private net = new Int32Array(rowCountsInitialEntries);
  /** Arena bytes reserved at `start` (a reused slot keeps its bytes for a row that fits). */
  private room = new Int32Array(rowCountsInitialEntries);
  private used = 0; // slots ever used (high-water mark)
  private free = noEntry; // free slots, chained through `next`

  /** Adds `delta` to the count of the row `bytes[at, at+n)`; returns its new count. */
  count(bytes: Uint8Array, at: number, n: number, delta: number): number {
    const h = rowHash(bytes, at, n);
    const b = h & (this.buckets.length - 1);
    let prev = noEntry;
    for (let e = this.buckets[b]!; e !== noEntry; prev = e, e = this.next[e]!) {
      if (this.hash[e] !== h || this.length[e] !== n || !this.sameBytes(e, bytes, at)) continue;
      const net = this.net[e]! + delta;
      this.net[e] = net;
      if (net !== 0) return net;
      if (prev === noEntry) this.buckets[b] = this.next[e]!;
      else this.next[prev] = this.next[e]!;
      this.next[e] = this.free;
      this.free = e;
      this.live--;
      return 0;
    }
    const e = this.newEntry();
    if (this.room[e]! >= n) this.store(this.start[e]!, bytes, at, n); // a freed slot's bytes: the arena stays small
    else { this.start[e] = this.append(bytes, at, n); this.room[e] = n; }
    this.length[e] = n;
    this.hash[e] = h;
    this.net[e] = delta;
    const nb = h & (this.buckets.length - 1); // newEntry may have grown the buckets
    this.next[e] = this.buckets[nb]!;
    this.buckets[nb] = e;
    return delta;
  }

  /** Appends views of the rows with a positive count to `inserts`, negative to `deletes`, in slot order. */
  collect(inserts: Uint8Array[], deletes: Uint8Array[]): void {
    for (let e = 0; e < this.used; e++) {
      const net = this.net[e]!;
      if (net === 0) continue;
      const row = this.arena.subarray(this.start[e]!, this.start[e]! + this.length[e]!);
      (net > 0 ? inserts : deletes).push(row);
    }
  }

  private sameBytes(e: number, bytes: Uint8Array, at: number): boolean {
    const a = this.arena;
    const s = this.start[e]!;
    const n = this.length[e]!;
    for (let i = 0; i < n; i++) if (a[s + i] !== bytes[at + i]) return false;
    return true;
  }

  private append(bytes: Uint8Array, at: number, n: number): number {
    const s = this.arenaLength;
    if (s + n > this.arena.length) {
      let cap = this.arena.length * 2;
      while (cap < s + n) cap *= 2;
      const bigger = new Uint8Array(cap);
      bigger.set(this.arena.subarray(0, s));
      this.arena = bigger;
    }
    this.store(s, bytes, at, n);
    this.arenaLength = s + n;
    return s;
  }

  private store(to: number, bytes: Uint8Array, at: number, n: number): void {
    const a = this.arena;
    for (let i = 0; i < n; i++) a[to + i] = bytes[at + i]!; // rows are short: no subarray + set
  }

  private newEntry(): number {
    this.live++;
    if (this.free !== noEntry) {
      const e = this.free;
      this.free = this.next[e]!;
      return e;
    }
    if (this.used === this.next.length) this.grow();
    return this.used++;
  }

  /** Doubles the entry columns and the buckets (load factor ≤ 1/2), rehashing the live entries. */
  private grow(): void {
    const cap = this.next.length * 2;
    const widen = (a: Int32Array): Int32Array<ArrayBuffer> => { const w = new Int32Array(cap); w.set(a); return w; };
    this.next = widen(this.next);
    this.start = widen(this.start);
    this.length = widen(this.length);
    this.hash = widen(this.hash);
    this.net = widen(this.net);
    this.room = widen(this.room);
    this.buckets = new Int32Array(cap * 2).fill(noEntry);
    const mask = this.buckets.length - 1;
    for (let e = 0; e < this.used; e++) {
      if (this.net[e] === 0) continue; // a free slot: stays chained on the free list
      const b = this.hash[e]! & mask;
      this.next[e] = this.buckets[b]!;
      this.buckets[b] = e;
    }
  }
}

function schemaOf(program: ProgramInfo, where: string): DatabaseSchema {
  return decodeOrFail(where, () => buildDatabaseSchema(decodeRawModuleDef(program.moduleDef)));
}

/** Default MigrateFn: every table of the new schema keeps the rows of the table with the same id and name. */
function carryRowsOver(old: Datastore, newSchema: DatabaseSchema): Datastore {
  return Datastore.fromSnapshot(newSchema, old.exportSnapshot());
}

/**
 * Moves each named sequence to at least its reservation. The Datastore has no public setter yet (the datastore
 * owner is asked for `advanceSequences(Map<name, next>)`); until then this reaches its table state.
 */
function advanceSequences(ds: Datastore, reserved: ReadonlyMap<string, bigint>): void {
  const api = ds as unknown as { advanceSequences?: (m: ReadonlyMap<string, bigint>) => void };
  if (typeof api.advanceSequences === 'function') { api.advanceSequences(reserved); return; }
  const tables = (ds as unknown as { state: { tables: { sequences: SequenceState[] }[] } }).state.tables;
  for (const t of tables) {
    for (const s of t.sequences) {
      const r = reserved.get(s.schema.name);
      if (r === undefined) continue;
      if (s.schema.increment > 0n ? r > s.next : r < s.next) s.next = r;
    }
  }
}

function decodeOrFail<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PersistenceError) throw e;
    throw new PersistenceError(`${where}: ${(e as Error).message}`, { cause: e });
  }
}

// ---- encoding ----

function writeProgram(w: BsatnWriter, p: ProgramInfo): void {
  w.writeString(p.programText);
  w.writeBytes(p.moduleDef);
  w.writeU256(p.ownerIdentity);
  w.writeU256(p.databaseIdentity);
  w.writeI64(p.timestampMicros);
}

function readProgram(r: BsatnReader): ProgramInfo {
  return {
    programText: r.readString(),
    moduleDef: r.readBytes().slice(),
    ownerIdentity: r.readU256(),
    databaseIdentity: r.readU256(),
    timestampMicros: r.readI64(),
  };
}

function decodeProgramRecord(payload: Uint8Array): ProgramInfo {
  const r = new BsatnReader(payload, 1);
  const p = readProgram(r);
  r.expectEnd('program record');
  return p;
}

/** Encodes a Tx payload (kind byte included) into `w`. */
export function encodeTx(w: BsatnWriter, txData: TxData, seqs: readonly [string, bigint][], client?: ClientChange,
  vars?: ReadonlyMap<string, bigint>): void {
  w.writeU8(RecordKind.Tx | (seqs.length > 0 ? flagSequences : 0) | (client !== undefined ? flagClient : 0) |
    (vars !== undefined ? flagVars : 0));
  writeVarint(w, txData.tables.length);
  let base = firstUserTableId;
  for (const t of txData.tables) {
    writeVarint(w, zigzag(t.tableId - base));
    base = t.tableId + 1;
    writeTableChanges(w, t);
  }
  if (seqs.length > 0) {
    writeVarint(w, seqs.length);
    for (const [name, value] of seqs) { w.writeString(name); writeBigVarint(w, value); }
  }
  if (client !== undefined) {
    w.writeU8(client.connected ? 1 : 0);
    w.writeU256(client.identity);
    w.writeU128(client.connectionId);
  }
  if (vars !== undefined) writeVars(w, vars);
}

function writeVars(w: BsatnWriter, vars: ReadonlyMap<string, bigint>): void {
  writeVarint(w, vars.size);
  for (const [name, value] of vars) { w.writeString(name); w.writeU64(value); }
}

function readVars(r: BsatnReader): Map<string, bigint> {
  const vars = new Map<string, bigint>();
  const n = readVarint(r);
  for (let i = 0; i < n; i++) vars.set(r.readString(), r.readU64());
  return vars;
}

function writeTableChanges(w: BsatnWriter, t: TableChanges): void {
  const { inserts, deletes } = t;
  let pairs = 0;
  while (pairs < inserts.length && pairs < deletes.length && inserts[pairs]!.length === deletes[pairs]!.length) pairs++;
  const width = commonWidth(inserts, deletes);
  writeVarint(w, width);
  const extraDeletes = deletes.length - pairs;
  const extraInserts = inserts.length - pairs;
  writeVarint(w, pairs * 16 + Math.min(extraDeletes, shapeExtraEscape) * 4 + Math.min(extraInserts, shapeExtraEscape));
  if (extraDeletes >= shapeExtraEscape) writeVarint(w, extraDeletes);
  if (extraInserts >= shapeExtraEscape) writeVarint(w, extraInserts);
  for (let i = 0; i < pairs; i++) {
    const ins = inserts[i]!;
    const del = deletes[i]!;
    writeRow(w, ins, width);
    let skip = 0;
    while (skip < ins.length && ins[skip] === del[skip]) skip++;
    let end = ins.length;
    while (end > skip && ins[end - 1] === del[end - 1]) end--;
    const n = end - skip;
    writeVarint(w, skip * 16 + Math.min(n, diffLengthEscape));
    if (n >= diffLengthEscape) writeVarint(w, n - diffLengthEscape);
    w.writeRaw(del.subarray(skip, end));
  }
  for (let i = pairs; i < deletes.length; i++) writeRow(w, deletes[i]!, width);
  for (let i = pairs; i < inserts.length; i++) writeRow(w, inserts[i]!, width);
}

/** The length every row shares, or 0 when they differ (or a row is empty, which 0 cannot express). */
function commonWidth(a: Uint8Array[], b: Uint8Array[]): number {
  const first = a.length > 0 ? a[0]! : b.length > 0 ? b[0]! : undefined;
  if (first === undefined || first.length === 0) return 0;
  const n = first.length;
  return allOfLength(a, n) && allOfLength(b, n) ? n : 0;
}

/**
 * One loop for inserts and deletes alike, so it has type feedback as soon as either kind was seen. With a loop per
 * array, V8 (Node 20) optimized the function while the deletes' loop had never run (the seed commits insert only) and
 * then deoptimized that same code on most later commits (~1,000 times in 300k keynote transfers in some runs).
 */
function allOfLength(rows: Uint8Array[], n: number): boolean {
  for (let i = 0; i < rows.length; i++) if (rows[i]!.length !== n) return false;
  return true;
}

function writeRow(w: BsatnWriter, row: Uint8Array, width: number): void {
  if (width === 0) writeVarint(w, row.length);
  w.writeRaw(row);
}

/** Receives the rows of a Tx record from walkTx: per table, every deleted row, then every inserted row. */
interface TxVisitor {
  table(tableId: number, tableName: string): void;
  /** The row is `bytes[start, start + length)`, valid only during the call. */
  row(insert: boolean, bytes: Uint8Array, start: number, length: number): void;
}

/** Builds TxData from walkTx's calls; rows are copies. */
class TxDataBuilder implements TxVisitor {
  readonly tables: TableChanges[] = [];
  private current: TableChanges | undefined;
  table(tableId: number, tableName: string): void {
    this.current = { tableId, tableName, inserts: [], deletes: [] };
    this.tables.push(this.current);
  }
  row(insert: boolean, bytes: Uint8Array, start: number, length: number): void {
    const c = this.current!;
    (insert ? c.inserts : c.deletes).push(bytes.slice(start, start + length));
  }
}

/**
 * Decodes a Tx payload into TxData; sequence reservations are pushed onto `seqs`, a client change onto `clients`.
 * Table names come from `schema`. Rows are copies.
 */
export function decodeTx(payload: Uint8Array, schema: DatabaseSchema, seqs: [string, bigint][], clients?: ClientChange[],
  varSets?: Map<string, bigint>[]): TxData {
  const b = new TxDataBuilder();
  walkTx(payload, 0, payload.length, schema, b, seqs, clients, varSets);
  return { tables: b.tables };
}

/**
 * The one Tx decoder: walks the record `bytes[start, end)` in place and hands each table's deleted rows, then its
 * inserted rows, to `visitor` (deletes first, as the transaction applied them). A paired deleted row is rebuilt from
 * its inserted row and diff in a scratch buffer. Throws PersistenceError on any malformed byte.
 */
function walkTx(bytes: Uint8Array, start: number, end: number, schema: DatabaseSchema, visitor: TxVisitor,
  seqs: [string, bigint][], clients?: ClientChange[], varSets?: Map<string, bigint>[]): void {
  const c = txCursor;
  c.bytes = bytes;
  c.offset = start;
  c.end = end;
  const head = c.readU8();
  const tableCount = readVarint(c);
  const byId = tablesById(schema);
  let base = firstUserTableId;
  for (let i = 0; i < tableCount; i++) {
    const tableId = base + unzigzag(readVarint(c));
    base = tableId + 1;
    const ts = byId.get(tableId);
    if (ts === undefined) throw new PersistenceError(`table id ${tableId} is not in the schema`);
    visitor.table(tableId, ts.name);
    walkTableChanges(c, visitor);
  }
  if ((head & (flagSequences | flagClient | flagVars)) === 0) {
    if (c.offset !== end) throw new PersistenceError(`transaction record: trailing bytes at offset ${c.offset - start}`);
    return;
  }
  // The rare tail (sequences, client change) uses a BsatnReader from where the cursor stopped.
  const r = new BsatnReader(bytes.subarray(start, end), c.offset - start);
  if ((head & flagSequences) !== 0) {
    const n = readVarint(r);
    for (let i = 0; i < n; i++) seqs.push([r.readString(), readBigVarint(r)]);
  }
  if ((head & flagClient) !== 0) {
    const tag = r.readU8();
    if (tag > 1) throw new PersistenceError(`client change tag ${tag} at offset ${r.offset - 1}`);
    const change = { connected: tag === 1, identity: r.readU256(), connectionId: r.readU128() };
    clients?.push(change);
  }
  if ((head & flagVars) !== 0) {
    const vars = readVars(r);
    varSets?.push(vars);
  }
  r.expectEnd('transaction record');
}

const tablesByIdCache = new WeakMap<DatabaseSchema, Map<number, TableSchema>>();

function tablesById(schema: DatabaseSchema): Map<number, TableSchema> {
  let m = tablesByIdCache.get(schema);
  if (m === undefined) {
    m = new Map(schema.tables.map((t) => [t.tableId, t]));
    tablesByIdCache.set(schema, m);
  }
  return m;
}

/** The part of a reader that varints need. */
interface ByteSource { readonly offset: number; readU8(): number }

/** A bare cursor over `bytes[offset, end)`: a BsatnReader (and its DataView) per record was a measurable cost. */
class Cursor implements ByteSource {
  bytes: Uint8Array = new Uint8Array(0);
  offset = 0;
  end = 0;
  readU8(): number {
    if (this.offset >= this.end) throw new PersistenceError(`1 byte needed at offset ${this.offset}, 0 left`);
    return this.bytes[this.offset++]!;
  }
  /** Skips `n` bytes; returns where they start. */
  take(n: number): number {
    if (n > this.end - this.offset) throw new PersistenceError(`${n} bytes needed at offset ${this.offset}, ${this.end - this.offset} left`);
    const at = this.offset;
    this.offset += n;
    return at;
  }
}

const txCursor = new Cursor();
/** Where paired deleted rows are rebuilt; grows to the longest row seen. */
let scratchRow = new Uint8Array(256);

/** One table's section: two passes over the rows, deletes first, then inserts (see walkTx). */
function walkTableChanges(c: Cursor, visitor: TxVisitor): void {
  const width = readVarint(c);
  const shape = readVarint(c);
  const pairs = Math.floor(shape / 16);
  let extraDeletes = (shape >> 2) & 3;
  let extraInserts = shape & 3;
  if (extraDeletes === shapeExtraEscape) extraDeletes = readVarint(c);
  if (extraInserts === shapeExtraEscape) extraInserts = readVarint(c);
  const bytes = c.bytes;
  const sectionStart = c.offset;
  for (let i = 0; i < pairs; i++) {
    const insLength = width === 0 ? readVarint(c) : width;
    const ins = c.take(insLength);
    const d = readVarint(c);
    const skip = Math.floor(d / 16);
    let n = d & 15;
    if (n === diffLengthEscape) n += readVarint(c);
    if (skip + n > insLength) throw new PersistenceError(`row diff [${skip}, ${skip + n}) exceeds a row of ${insLength} bytes`);
    const diff = c.take(n);
    if (scratchRow.length < insLength) scratchRow = new Uint8Array(Math.max(insLength, scratchRow.length * 2));
    const del = scratchRow;
    for (let k = 0; k < insLength; k++) del[k] = bytes[ins + k]!;
    for (let k = 0; k < n; k++) del[skip + k] = bytes[diff + k]!;
    visitor.row(false, del, 0, insLength);
  }
  for (let i = 0; i < extraDeletes; i++) {
    const len = width === 0 ? readVarint(c) : width;
    visitor.row(false, bytes, c.take(len), len);
  }
  const sectionEnd = c.offset;
  c.offset = sectionStart;
  for (let i = 0; i < pairs; i++) {
    const insLength = width === 0 ? readVarint(c) : width;
    visitor.row(true, bytes, c.take(insLength), insLength);
    const d = readVarint(c);
    let n = d & 15;
    if (n === diffLengthEscape) n += readVarint(c);
    c.take(n);
  }
  c.offset = sectionEnd;
  for (let i = 0; i < extraInserts; i++) {
    const len = width === 0 ? readVarint(c) : width;
    visitor.row(true, bytes, c.take(len), len);
  }
}

function encodeSnapshotPayload(program: ProgramInfo, reserved: ReadonlyMap<string, bigint>, datastoreBytes: Uint8Array,
  connected: ReadonlyMap<bigint, bigint>, vars: ReadonlyMap<string, bigint>): Uint8Array {
  const w = new BsatnWriter(datastoreBytes.length + program.programText.length + program.moduleDef.length + 256);
  w.writeU8(snapshotPayloadVersion);
  writeProgram(w, program);
  writeVarint(w, reserved.size);
  for (const [name, value] of reserved) { w.writeString(name); writeBigVarint(w, value); }
  w.writeBytes(datastoreBytes);
  writeVarint(w, connected.size);
  for (const [conn, id] of connected) { w.writeU256(id); w.writeU128(conn); }
  writeVars(w, vars);
  return w.finish();
}

function decodeSnapshotPayload(payload: Uint8Array): {
  program: ProgramInfo; reserved: [string, bigint][]; datastoreBytes: Uint8Array; connected: [bigint, bigint][]; vars: Map<string, bigint>;
} {
  const r = new BsatnReader(payload);
  const version = r.readU8();
  if (version !== snapshotPayloadVersion) throw new PersistenceError(`unsupported snapshot payload version ${version}`);
  const program = readProgram(r);
  const reserved: [string, bigint][] = [];
  const n = readVarint(r);
  for (let i = 0; i < n; i++) reserved.push([r.readString(), readBigVarint(r)]);
  const datastoreBytes = r.readBytes();
  const connected: [bigint, bigint][] = [];
  const c = readVarint(r);
  for (let i = 0; i < c; i++) connected.push([r.readU256(), r.readU128()]);
  const vars = r.offset < payload.length ? readVars(r) : new Map<string, bigint>();
  r.expectEnd('snapshot payload');
  return { program, reserved, datastoreBytes, connected, vars };
}

// ---- varints ----

const varintMaxBytes = 5; // enough for any count or id below 2^35; larger means a corrupt record

function writeVarint(w: BsatnWriter, v: number): void {
  if (!(Number.isSafeInteger(v) && v >= 0)) assert.fail(`varint of ${v}`);   // no message built per call
  while (v >= 0x80) { w.writeU8((v % 0x80) | 0x80); v = Math.floor(v / 0x80); }
  w.writeU8(v);
}

function readVarint(r: ByteSource): number {
  let v = 0;
  let scale = 1;
  for (let i = 0; i < varintMaxBytes; i++) {
    const b = r.readU8();
    v += (b & 0x7f) * scale;
    if (b < 0x80) return v;
    scale *= 0x80;
  }
  throw new PersistenceError(`varint longer than ${varintMaxBytes} bytes at offset ${r.offset}`);
}

function zigzag(v: number): number { return v >= 0 ? v * 2 : -v * 2 - 1; }
function unzigzag(v: number): number { return v % 2 === 0 ? v / 2 : -(v + 1) / 2; }

function writeBigVarint(w: BsatnWriter, v: bigint): void {
  let u = v >= 0n ? v << 1n : ((-v) << 1n) - 1n;
  while (u >= 0x80n) { w.writeU8(Number(u & 0x7fn) | 0x80); u >>= 7n; }
  w.writeU8(Number(u));
}

const bigVarintMaxBytes = 38; // 257 bits (a zigzagged i256/u256) in 7-bit groups

function readBigVarint(r: BsatnReader): bigint {
  let u = 0n;
  let shift = 0n;
  for (let i = 0; i < bigVarintMaxBytes; i++) {
    const b = r.readU8();
    u |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return (u & 1n) === 0n ? u >> 1n : -((u + 1n) >> 1n);
    shift += 7n;
  }
  throw new PersistenceError(`integer varint longer than ${bigVarintMaxBytes} bytes at offset ${r.offset}`);
}
