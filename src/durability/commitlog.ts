// durability/commitlog.ts — the append-only commit log: offsets, group commit, segment rotation, recovery, replay.
//
// Owns: the files `<dir>/<20-digit first offset>.stdb.log` (format and recovery rule in segment.ts) and the durable
// offset. Payloads are opaque bytes; the host decides what a commit means. One CommitLog per directory at a time (a `lock`
// file holding the owner's pid enforces it across processes).
// May call: node:fs, durability/segment.ts, durability/fsync.ts, metrics/counters.ts (fsync latency for GET /v1/metrics).
//
// Write path. `append` is synchronous: it assigns the next offset and encodes the record into a pending buffer.
// A single flusher (started with setImmediate so that everything appended in the same event-loop turn lands in
// one batch) swaps the pending buffer out and issues ONE write and ONE fdatasync for the whole batch, then
// publishes the new durable offset and resolves `waitDurable` promises. Appends made while a batch is being synced
// form the next batch: that is group commit. All I/O is async (node:fs callbacks on a raw fd — measured about as
// fast as FileHandle promises and cheaper to wrap), so the event loop keeps running during fsync.
//
// Failure is fail-stop: a failed write or fsync means nobody knows what reached the disk (fsyncgate), and an append
// over the record size limit means the caller's memory is ahead of the log, so the log enters a failed state — the
// error is thrown by every later `append` and rejects every waiter for an offset not yet durable (the pending batch
// is never written). It never retries an fsync and never reports a commit durable that was not synced. Recovery is a
// restart: reopening rescans the tail.
//
// Opening: `open` scans the last segment (torn-tail rule, segment.ts) before anything else. `openDeferred` leaves
// that scan to `recoverViews`, which replays and finds the torn tail in the same pass (recovery reads each record
// once); until it has run to its end the log refuses appends and replays.
//
// Rotation: a record that would take a segment with at least one record past `segmentSizeMaxBytes` starts a new
// segment (so a single record may exceed the limit, but a segment never holds less than one). The old segment is
// fdatasync'ed before the new one exists — also with durability 'none' — so every segment but the last is always
// complete, which is what lets recovery treat damage outside the last segment as corruption. A new segment's header
// is written to a temp file, synced, renamed into place, and the directory is synced.
//
// Durability 'none' (the documented relaxed mode): `waitDurable` resolves once the batch is written to the OS; a
// power loss can lose those commits (a process crash cannot). `close()` always syncs.

import assert from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import {
  CommitLogCorruptError,
  CommitLogError,
  encodeRecord,
  encodeSegmentHeader,
  listSegments,
  recordOverheadBytes,
  recordPayloadMaxBytes,
  segmentFileName,
  segmentHeaderBytes,
  SegmentScanner,
  type ScanOptions,
  type ScanOutcome,
  type SegmentFile,
} from './segment.js';
import { fsyncDirAsync, fsyncDirSync } from './fsync.js';
import { fsyncSecondsBuckets, HistogramCounts } from '../metrics/counters.js';

export { CommitLogCorruptError, CommitLogError } from './segment.js';

/** Default segment size; upstream uses 1 GiB, we prefer smaller segments so pruning after a snapshot frees space sooner. */
export const segmentSizeMaxBytesDefault = 256 * 1024 * 1024;
/** Initial capacity of the pending-append buffer; it doubles as needed. */
const pendingBufferInitialBytes = 64 * 1024;
/** A pending buffer that grew past this is dropped after its batch instead of being kept as the spare. */
const pendingBufferKeepMaxBytes = 16 * 1024 * 1024;
const tempFileSuffix = '.tmp';
/** Advisory lock: holds the owning process id; a lock whose process is gone is stale and taken over. */
const lockFileName = 'lock';

export type DurabilityMode = 'fsync' | 'none';

export interface CommitLogOptions {
  durability?: DurabilityMode; // default 'fsync'
  segmentSizeMaxBytes?: number; // default segmentSizeMaxBytesDefault
  /** Called with a human-readable line for notable recovery events (a truncated torn tail, removed temp files). */
  report?: (message: string) => void;
  /**
   * Test-only fault injection: the n-th (1-based, counted as in `stats`) write or data sync fails with an EIO error
   * instead of reaching the OS. Everything else uses the real file system.
   */
  faultInjection?: { failWriteNumber?: number; failSyncNumber?: number };
  /** Test-only: refuse appends above this many payload bytes (≤ recordPayloadMaxBytes, the default). */
  recordPayloadMaxBytes?: number;
}

export interface CommitLogStats {
  appends: number;
  batches: number;
  writes: number; // write syscalls for record data
  syncs: number; // fdatasync calls on segment data (batches and rotations)
  bytesAppended: number; // record bytes including framing
  rotations: number;
  /** Latency of each fdatasync on segment data (GET /v1/metrics). */
  syncSeconds: HistogramCounts;
}

export interface LogRecord {
  offset: bigint;
  timestampMicros: bigint;
  payload: Uint8Array;
}

/** What open() found at the tail of the log. */
export interface RecoveryInfo {
  /** The torn tail that was cut away, if any. */
  truncated: { file: string; bytePosition: number; bytesRemoved: number; reason: string } | undefined;
}

interface Waiter {
  offset: bigint;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** One waiter shared by every offset still in `pending` (they all become durable with the same batch). */
interface BatchWaiter extends Waiter {
  promise: Promise<void>;
}

interface Rotation {
  atByte: number; // position in the pending buffer where the new segment's records start
  firstOffset: bigint;
}

/** The log has failed (I/O error) or was closed; carries the original cause. */
export class CommitLogFailedError extends CommitLogError {
  override name = 'CommitLogFailedError';
}

export class CommitLog {
  readonly dir: string;
  readonly durability: DurabilityMode;
  readonly segmentSizeMaxBytes: number;
  readonly stats: CommitLogStats = {
    appends: 0, batches: 0, writes: 0, syncs: 0, bytesAppended: 0, rotations: 0, syncSeconds: new HistogramCounts(fsyncSecondsBuckets),
  };

  private segments: SegmentFile[];
  /** Until the last segment has been scanned (openDeferred → recoverViews), nothing else may be done with the log. */
  private tailPending = true;
  private recoveryInfo: RecoveryInfo = { truncated: undefined };
  private fd = -1; // the last (active) segment, open for writing
  private filePosBytes = 0; // bytes of the active segment written and completed
  private nextOffsetValue = 0n;
  private writtenOffset = -1n; // last offset whose bytes are completely written to the OS
  private durable = -1n;

  private pending: Buffer = Buffer.allocUnsafe(pendingBufferInitialBytes);
  private spare: Buffer | undefined = Buffer.allocUnsafe(pendingBufferInitialBytes);
  private pendingLen = 0;
  private pendingRotations: Rotation[] = [];
  private logicalSegmentBytes = 0; // size the active segment will have once pending bytes are written
  private logicalSegmentRecords = 0;

  private waiters: Waiter[] = [];
  /** The waiter for the batch now accumulating in `pending`; cleared when flushLoop takes that batch. */
  private batchWaiter: BatchWaiter | undefined;
  /** The last offset flushLoop took out of `pending` (-1 before any). */
  private takenOffset = -1n;
  private flushScheduled = false;
  private flushing = false;
  private idleWaiters: (() => void)[] = [];
  private failure: CommitLogFailedError | undefined;
  private closed = false;
  private readonly faults: { failWriteNumber?: number; failSyncNumber?: number };
  private readonly payloadMaxBytes: number;

  private constructor(
    dir: string,
    options: CommitLogOptions,
    segments: SegmentFile[],
    private readonly lockPath: string,
    private readonly report: (message: string) => void,
  ) {
    this.dir = dir;
    this.durability = options.durability ?? 'fsync';
    this.segmentSizeMaxBytes = options.segmentSizeMaxBytes ?? segmentSizeMaxBytesDefault;
    assert(this.segmentSizeMaxBytes > segmentHeaderBytes, 'segmentSizeMaxBytes must exceed the segment header size');
    this.faults = options.faultInjection ?? {};
    this.payloadMaxBytes = options.recordPayloadMaxBytes ?? recordPayloadMaxBytes;
    assert(this.payloadMaxBytes <= recordPayloadMaxBytes, 'recordPayloadMaxBytes above the format limit');
    this.segments = segments;
  }

  /** What open found at the tail of the log (complete once the log is open, see openDeferred). */
  get recovery(): RecoveryInfo {
    return this.recoveryInfo;
  }

  /**
   * Opens (creating if needed) the log in `dir`. Checks every segment header and fully scans the last segment: a torn
   * tail is truncated away (reported through options.report and `recovery`); corruption throws CommitLogCorruptError.
   * Records of older segments are checked by replay()/verify(), which read them anyway.
   */
  static open(dir: string, options: CommitLogOptions = {}): CommitLog {
    const log = CommitLog.openDeferred(dir, options);
    try {
      const last = log.segments[log.segments.length - 1]!;
      const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: last.firstOffset, torn: undefined };
      scanToEnd(last, { allowTornTail: true }, outcome);
      log.adoptTail(outcome);
    } catch (e) {
      log.abandon();
      throw e;
    }
    return log;
  }

  /**
   * Opens the log like open(), but leaves the scan of the last segment to the caller's `recoverViews`, which replays
   * the records and finds the torn tail in one pass (open() followed by replay would read the last segment twice).
   * Until recoverViews has run to its end the log accepts nothing else but close().
   */
  static openDeferred(dir: string, options: CommitLogOptions = {}): CommitLog {
    fs.mkdirSync(dir, { recursive: true });
    const lockPath = acquireLock(dir);
    try {
      return new CommitLog(dir, options, CommitLog.prepareSegments(dir, options.report ?? (() => {})), lockPath, options.report ?? (() => {}));
    } catch (e) {
      fs.rmSync(lockPath, { force: true });
      throw e;
    }
  }

  /** Removes leftover temp files, creates the first segment if there is none, checks every segment header. */
  private static prepareSegments(dir: string, report: (message: string) => void): SegmentFile[] {
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith(tempFileSuffix)) {
        fs.unlinkSync(path.join(dir, name)); // an unfinished segment creation: never renamed, so never referenced
        report(`commit log: removed leftover temp file ${name}`);
      }
    }
    let segments = listSegments(dir);
    if (segments.length === 0) {
      createSegmentFileSync(dir, 0n);
      segments = listSegments(dir);
    }
    // Headers of all segments (cheap), strictly increasing first offsets by construction of the sorted listing.
    for (const seg of segments.slice(0, -1)) checkHeaderOnly(seg);
    return segments;
  }

  /** Completes opening once the last segment was scanned: cuts a torn tail, syncs, and takes the segment for writing. */
  private adoptTail(outcome: ScanOutcome): void {
    assert(this.tailPending, 'the tail of the log was already scanned');
    const last = this.segments[this.segments.length - 1]!;
    const fd = fs.openSync(last.path, 'r+');
    let truncated: RecoveryInfo['truncated'];
    try {
      const size = fs.fstatSync(fd).size;
      if (outcome.validEndBytes < size) {
        truncated = {
          file: last.path,
          bytePosition: outcome.validEndBytes,
          bytesRemoved: size - outcome.validEndBytes,
          reason: outcome.torn?.reason ?? 'trailing bytes',
        };
        fs.ftruncateSync(fd, outcome.validEndBytes);
        this.report(
          `commit log: truncated torn tail of ${last.path} at byte ${truncated.bytePosition} ` +
            `(${truncated.bytesRemoved} bytes, ${truncated.reason}); next commit offset ${outcome.nextOffset}`,
        );
      }
      // What a crashed process left in the page cache is not durable yet: make it so before calling it durable.
      fs.fdatasyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    const sizeBytes = outcome.validEndBytes;
    const next = outcome.nextOffset;
    this.fd = fd;
    this.filePosBytes = sizeBytes;
    this.nextOffsetValue = next;
    this.writtenOffset = next - 1n;
    this.durable = next - 1n;
    this.logicalSegmentBytes = sizeBytes;
    this.logicalSegmentRecords = sizeBytes > segmentHeaderBytes ? 1 : 0;
    this.recoveryInfo = { truncated };
    this.tailPending = false;
  }

  /** Releases the lock of a log whose opening failed. */
  private abandon(): void {
    this.closed = true;
    if (this.fd >= 0) fs.closeSync(this.fd);
    fs.rmSync(this.lockPath, { force: true });
  }

  /** Offset the next append will get. */
  get nextOffset(): bigint {
    return this.nextOffsetValue;
  }

  /** Oldest offset still in the log (after pruning it may be > 0). */
  get firstOffset(): bigint {
    return this.segments[0]!.firstOffset;
  }

  /** Highest offset known durable (fsynced; with durability 'none': written), or -1n when none. */
  get durableOffset(): bigint {
    return this.durable;
  }

  /** Bytes appended but not yet handed to the OS: a caller may apply backpressure on it (the log does not). */
  get pendingBytes(): number {
    return this.pendingLen;
  }

  /** The error that put the log into the failed state, if any. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /**
   * Appends one commit; returns its offset. Throws if the log has failed or is closed. A payload over the record
   * limit fails the log like an I/O error (every waiter rejects, every later append throws): the caller has already
   * committed it in memory, so memory is ahead of disk. Callers bound what they log before committing (limits.ts).
   */
  append(payload: Uint8Array, timestampMicros: bigint = BigInt(Date.now()) * 1000n): bigint {
    if (this.failure) throw this.failure;
    if (this.closed) throw new CommitLogFailedError('commit log is closed');
    assert(!this.tailPending, 'append before the tail of the log was recovered (openDeferred without recoverViews)');
    if (payload.length > this.payloadMaxBytes) {
      const err = new CommitLogFailedError(`commit payload of ${payload.length} bytes exceeds the record limit of ${this.payloadMaxBytes} bytes ` +
        `(logRecordPayloadMaxBytes); nothing after offset ${this.nextOffsetValue - 1n} is written`);
      this.fail(err);
      throw err;
    }
    const offset = this.nextOffsetValue;
    const total = recordOverheadBytes + payload.length;
    if (this.logicalSegmentRecords > 0 && this.logicalSegmentBytes + total > this.segmentSizeMaxBytes) {
      this.pendingRotations.push({ atByte: this.pendingLen, firstOffset: offset });
      this.logicalSegmentBytes = segmentHeaderBytes;
      this.logicalSegmentRecords = 0;
    }
    this.reservePending(total);
    const written = encodeRecord(this.pending, this.pendingLen, offset, timestampMicros, payload);
    assert(written === total);
    this.pendingLen += total;
    this.logicalSegmentBytes += total;
    this.logicalSegmentRecords++;
    this.nextOffsetValue = offset + 1n;
    this.stats.appends++;
    this.stats.bytesAppended += total;
    this.scheduleFlush();
    return offset;
  }

  /** Resolves once `offset` is durable; rejects if the log fails first. */
  waitDurable(offset: bigint): Promise<void> {
    // Not assert(cond, `…`): the message (two BigInt-to-string conversions) would be built on every call.
    if (offset >= this.nextOffsetValue) {
      assert.fail(`waitDurable(${offset}) for an offset never appended (next is ${this.nextOffsetValue})`);
    }
    if (offset <= this.durable) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (offset > this.takenOffset) return this.waitPendingBatch(offset);
    return new Promise((resolve, reject) => {
      const w: Waiter = { offset, resolve, reject };
      const ws = this.waiters;
      if (ws.length === 0 || ws[ws.length - 1]!.offset <= offset) {
        ws.push(w); // the common case: callers wait in append order
      } else {
        let lo = 0;
        let hi = ws.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (ws[mid]!.offset <= offset) lo = mid + 1;
          else hi = mid;
        }
        ws.splice(lo, 0, w);
      }
    });
  }

  /**
   * Offsets not yet taken by flushLoop all become durable with the next batch, so they share one promise: a group
   * commit of N calls costs one waiter, not N (the hot path waits for its own commit twice per call).
   */
  private waitPendingBatch(offset: bigint): Promise<void> {
    let w = this.batchWaiter;
    if (w === undefined) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      w = { offset, resolve, reject, promise };
      this.batchWaiter = w;
      this.waiters.push(w); // offsets in pending exceed every offset of a taken batch: stays sorted
    } else if (offset > w.offset) {
      w.offset = offset; // still the last waiter (any later one for a taken batch sorts before it)
    }
    return w.promise;
  }

  /** Resolves when everything appended so far is durable (or written, for 'none'). */
  flush(): Promise<void> {
    return this.nextOffsetValue === 0n ? Promise.resolve() : this.waitDurable(this.nextOffsetValue - 1n);
  }

  /**
   * Records with offset ≥ fromOffset, in order, checked (CRC, continuity across segments). Streams one segment at a
   * time. Covers records written when the call was made. Throws CommitLogCorruptError on corruption, and a
   * CommitLogError when fromOffset precedes the oldest retained segment (the caller needs a snapshot).
   * Each record's payload is a copy the caller may keep; replayViews is the allocation-free form.
   */
  *replay(fromOffset = 0n): Generator<LogRecord> {
    for (const sc of this.replayViews(fromOffset)) {
      yield { offset: BigInt(sc.offset), timestampMicros: sc.timestampMicros(), payload: new Uint8Array(sc.buf.subarray(sc.payloadStart, sc.payloadEnd)) };
    }
  }

  /**
   * Like replay, but yields the scanner itself positioned on each record: the payload is `buf[payloadStart,
   * payloadEnd)` and `offset` a number, valid only until the iteration continues. For recovery, which reads each
   * payload once and keeps nothing of it.
   */
  *replayViews(fromOffset = 0n): Generator<SegmentScanner> {
    assert(!this.tailPending, 'replay before the tail of the log was recovered (openDeferred without recoverViews)');
    yield* this.scanFrom(fromOffset, false);
  }

  /**
   * For a log from openDeferred: like replayViews, but scans the last segment to its end with the torn-tail rule,
   * and once the iteration is complete cuts the torn tail and opens the log for appends (as open() does). Records of
   * the last segment before fromOffset are still scanned (checked), just not yielded. Iterate it to the end.
   */
  *recoverViews(fromOffset = 0n): Generator<SegmentScanner> {
    assert(this.tailPending, 'recoverViews on a log whose tail was already recovered');
    const outcome = yield* this.scanFrom(fromOffset, true);
    this.adoptTail(outcome);
  }

  /** The segment walk shared by replayViews and recoverViews; returns the last segment's scan outcome. */
  private *scanFrom(fromOffset: bigint, recoverTail: boolean): Generator<SegmentScanner, ScanOutcome> {
    if (fromOffset < this.firstOffset) {
      throw new CommitLogError(`replay from offset ${fromOffset}: the log starts at ${this.firstOffset} (older segments were pruned)`);
    }
    const segments = this.segments.slice();
    const activeSizeBytes = this.filePosBytes;
    const lastOffset = this.writtenOffset;
    let startIndex = 0;
    for (let i = 0; i < segments.length; i++) if (segments[i]!.firstOffset <= fromOffset) startIndex = i;
    const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: 0n, torn: undefined };
    const from = Number(fromOffset);
    let expected: bigint | undefined;
    for (let i = startIndex; i < segments.length; i++) {
      const seg = segments[i]!;
      if (expected !== undefined && seg.firstOffset !== expected) {
        throw new CommitLogCorruptError(seg.path, 0, seg.firstOffset, `offset gap between segments: expected first offset ${expected}, found ${seg.firstOffset}`);
      }
      const isLast = i === segments.length - 1;
      const options: ScanOptions = !isLast ? { allowTornTail: false }
        : recoverTail ? { allowTornTail: true } : { allowTornTail: false, sizeBytes: activeSizeBytes, stopAfterOffset: lastOffset };
      const sc = new SegmentScanner(seg, options, outcome);
      try {
        while (sc.next()) if (sc.offset >= from) yield sc;
      } finally {
        sc.close();
      }
      expected = outcome.nextOffset;
    }
    return outcome;
  }

  /** Checks every record of every segment; returns the number of records. */
  verify(): number {
    let n = 0;
    for (const _ of this.replay(this.firstOffset)) n++;
    return n;
  }

  /**
   * Deletes whole segments whose records all precede `beforeOffset` (typically the offset of a durable snapshot).
   * The active segment is never deleted. Returns the number of segments removed.
   */
  prune(beforeOffset: bigint): number {
    let n = 0;
    while (this.segments.length > 1 && this.segments[1]!.firstOffset <= beforeOffset) {
      fs.unlinkSync(this.segments[0]!.path);
      this.segments.shift();
      n++;
    }
    if (n > 0) fsyncDirSync(this.dir);
    return n;
  }

  /** Flushes and syncs everything appended, then closes. Rethrows the failure if the log had failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.whenIdle();
    try {
      if (this.failure) throw this.failure;
      if (this.fd >= 0) await fdatasyncAsync(this.fd);
    } finally {
      if (this.fd >= 0) fs.closeSync(this.fd);
      fs.rmSync(this.lockPath, { force: true });
      this.failAll(new CommitLogFailedError('commit log is closed'));
    }
  }

  private whenIdle(): Promise<void> {
    if (!this.flushing && !this.flushScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private reservePending(bytes: number): void {
    const need = this.pendingLen + bytes;
    if (need <= this.pending.length) return;
    let cap = this.pending.length * 2;
    while (cap < need) cap *= 2;
    const bigger = Buffer.allocUnsafe(cap);
    this.pending.copy(bigger, 0, 0, this.pendingLen);
    this.pending = bigger;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pendingLen > 0 && !this.failure) {
        const buf = this.pending;
        const len = this.pendingLen;
        const rotations = this.pendingRotations;
        const lastOffset = this.nextOffsetValue - 1n;
        this.takenOffset = lastOffset;
        const batchWaiter = this.batchWaiter;
        if (batchWaiter !== undefined) batchWaiter.offset = lastOffset;
        this.batchWaiter = undefined;
        this.pending = this.spare ?? Buffer.allocUnsafe(pendingBufferInitialBytes);
        this.spare = undefined;
        this.pendingLen = 0;
        this.pendingRotations = [];
        await this.writeBatch(buf, len, rotations, lastOffset);
        if (buf.length <= pendingBufferKeepMaxBytes) this.spare = buf;
      }
    } catch (e) {
      const err = e as Error;
      this.fail(new CommitLogFailedError(`commit log write failed: ${err.message}`, { cause: err }));
    } finally {
      this.flushing = false;
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of idle) f();
    }
  }

  private async writeBatch(buf: Buffer, len: number, rotations: Rotation[], lastOffset: bigint): Promise<void> {
    this.stats.batches++;
    let from = 0;
    for (const rot of rotations) {
      await this.writeAll(buf, from, rot.atByte);
      await this.rotateTo(rot.firstOffset);
      from = rot.atByte;
    }
    await this.writeAll(buf, from, len);
    this.writtenOffset = lastOffset;
    if (this.durability === 'fsync') await this.syncData();
    this.advanceDurable(lastOffset);
  }

  private async writeAll(buf: Buffer, from: number, to: number): Promise<void> {
    while (from < to) {
      this.stats.writes++;
      if (this.stats.writes === this.faults.failWriteNumber) throw injectedFault('write');
      const n = await writeAsync(this.fd, buf, from, to - from, this.filePosBytes);
      from += n;
      this.filePosBytes += n;
    }
  }

  private async syncData(): Promise<void> {
    this.stats.syncs++;
    if (this.stats.syncs === this.faults.failSyncNumber) throw injectedFault('fdatasync');
    const startedMs = performance.now();
    await fdatasyncAsync(this.fd);
    this.stats.syncSeconds.observe((performance.now() - startedMs) / 1000);
  }

  /** Completes the active segment (synced) and makes a new empty one at `firstOffset` the active segment. */
  private async rotateTo(firstOffset: bigint): Promise<void> {
    await this.syncData();
    const name = segmentFileName(firstOffset);
    const finalPath = path.join(this.dir, name);
    const tmpPath = finalPath + tempFileSuffix;
    const fd = await openAsync(tmpPath, 'w+');
    try {
      const header = encodeSegmentHeader(firstOffset);
      await writeAsync(fd, header, 0, header.length, 0);
      await fdatasyncAsync(fd);
      await renameAsync(tmpPath, finalPath);
      await fsyncDirAsync(this.dir);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    fs.closeSync(this.fd);
    this.fd = fd; // the renamed file keeps its inode; no need to reopen
    this.filePosBytes = segmentHeaderBytes;
    this.segments.push({ firstOffset, path: finalPath });
    this.stats.rotations++;
  }

  private advanceDurable(offset: bigint): void {
    this.durable = offset;
    const ws = this.waiters;
    let i = 0;
    while (i < ws.length && ws[i]!.offset <= offset) ws[i++]!.resolve();
    if (i > 0) ws.splice(0, i);
  }

  private fail(err: CommitLogFailedError): void {
    this.failure = err;
    this.failAll(err);
  }

  private failAll(err: Error): void {
    const ws = this.waiters;
    this.waiters = [];
    this.batchWaiter = undefined;
    for (const w of ws) w.reject(err);
  }
}

/** Creates the lock file, taking over a stale one; throws CommitLogError while another live process holds it. */
function acquireLock(dir: string): string {
  const lockPath = path.join(dir, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      return lockPath;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(fs.readFileSync(lockPath, 'utf8').trim());
    if (Number.isSafeInteger(pid) && pid > 0 && processAlive(pid)) {
      throw new CommitLogError(`commit log ${dir} is in use by process ${pid} (lock file ${lockPath})`);
    }
    fs.rmSync(lockPath, { force: true }); // stale: left by a process that died (e.g. kill -9)
  }
  throw new CommitLogError(`commit log ${dir}: could not take the lock file ${lockPath}`);
}

/** The pid of a live process holding the log in `dir` (its lock file), or undefined: for tools that change a log. */
export function liveLockHolder(dir: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, lockFileName), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function injectedFault(op: string): Error {
  return Object.assign(new Error(`EIO: i/o error, ${op} (injected fault)`), { code: 'EIO' });
}

function checkHeaderOnly(seg: SegmentFile): void {
  const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: 0n, torn: undefined };
  // stopAfterOffset below the first offset: reads the header, no records.
  scanToEnd(seg, { allowTornTail: false, stopAfterOffset: seg.firstOffset - 1n }, outcome);
}

/** Validates records of `seg` (per `options`) without looking at them; the result is in `outcome`. */
function scanToEnd(seg: SegmentFile, options: ScanOptions, outcome: ScanOutcome): void {
  const sc = new SegmentScanner(seg, options, outcome);
  try {
    while (sc.next());
  } finally {
    sc.close();
  }
}

/** Creates an empty segment atomically (temp file, sync, rename, directory sync). */
function createSegmentFileSync(dir: string, firstOffset: bigint): void {
  const finalPath = path.join(dir, segmentFileName(firstOffset));
  const tmpPath = finalPath + tempFileSuffix;
  const fd = fs.openSync(tmpPath, 'w');
  try {
    fs.writeSync(fd, encodeSegmentHeader(firstOffset));
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmpPath, finalPath);
  fsyncDirSync(dir);
}

function writeAsync(fd: number, buf: Buffer, from: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.write(fd, buf, from, length, position, (e, n) => (e ? reject(e) : resolve(n))));
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
}

function openAsync(p: string, flags: string): Promise<number> {
  return new Promise((resolve, reject) => fs.open(p, flags, (e, fd) => (e ? reject(e) : resolve(fd))));
}

function renameAsync(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => fs.rename(from, to, (e) => (e ? reject(e) : resolve())));
}
