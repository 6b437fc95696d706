// host/syscalls.ts — the host side of the module syscalls (host-abi §3), behind one isolated-vm callback.
//
// Owns: the exchange buffer (a SharedArrayBuffer the isolate shims also see), the per-call state the syscalls act on
// (the open MutTx, pending scan iterators, console timers) and the translation of datastore results/errors into the
// numeric wire of isolate-src.ts (result ≥ 0, or -errno with the message in the exchange buffer); the host half of
// the module's row cache and deferred updates (isolate-src.ts): which point-scan results may be cached, whether the
// cache survives into the next reducer call, and applying queued updates and inserts in order; the sequence leases of
// deferred autoInc inserts (the lease buffer, granting, ending at each call's end, resuming); the host side of batched
// entry (the call-end buffer: committing, through `CallBatch`, the calls of a batch that ended without a crossing
// before serving any crossing, op.callEnd, cutting a batch whose lazily ended call failed to commit); the host-side
// deadline check of every syscall (`callDeadlineMs`: time spent in syscalls counts toward a call's limit); the per-call
// bound of module log bytes (logBytesPerCallMax).
// May call: datastore/types (MutTx, DatastoreError, errno), sats/types (SatsError), host/isolate-src (op codes),
// host/errors (messageOf), limits.

import assert from 'node:assert';
import ivm from 'isolated-vm';
import { DatastoreError, errno, type InfallibleUpdate, type MutTx, type RangeScanArgs } from '../datastore/types.js';
import { SatsError } from '../sats/types.js';
import { messageOf } from './errors.js';
import { logBytesPerCallMax } from '../limits.js';
import {
  batchAbortCode, batchHeaderBytes, callEndFlag, callEnds, callOutcome, chunkFlag, chunkHeaderBytes, crossingArgs,
  deleteRecordMarker, growCode, insertRecordMarker, keepRowCacheFlag, lease, leaseSlotsMax, op, readAheadAbsent,
  noCachedTable, readAheadKeysMax, reducerCallHeaderBytes, tableWrittenWord, updateRecordHeaderBytes, updatedRowOffer,
} from './isolate-src.js';

/** Initial exchange buffer size. Inputs and single rows larger than this grow it (never shrinks). */
export const exchangeInitialBytes = 1 << 20;
/** Upper bound on the exchange buffer: a row or argument list larger than this is refused. */
export const exchangeMaxBytes = 256 << 20;


export const logLevel = { error: 0, warn: 1, info: 2, debug: 3, trace: 4, panic: 101 } as const;

/** What the syscalls need from the database around them. */
export interface SyscallEnv {
  /** The database identity (`identity()`). */
  identity: bigint;
  /**
   * console_log: `frame` is "file:line" of the module code that logged, or ''. Returns the bytes the record took in the
   * log (counted toward logBytesPerCallMax); a log that keeps nothing may return nothing (then the message's length
   * counts).
   */
  log(level: number, message: string, frame: string): number | void;
  /** JWT payload JSON a connection authenticated with, if any (`get_jwt_payload`). */
  jwtPayload(connectionId: bigint): string | undefined;
  /** volatile_nonatomic_schedule_immediate: run `reducer` with `args` after the current call. */
  scheduleImmediate(reducer: string, args: Uint8Array): void;
  /** Procedures and handlers (host/procedures.ts, host/http-egress.ts, host/scheduler.ts); absent = unsupported. */
  features?: FeatureSyscalls;
}

/** The syscalls of procedures / handlers and the schedule-row check, implemented outside this file. */
export interface FeatureSyscalls {
  /** Anonymous transaction of `withTx`: start returns its timestamp (µs). Throws SyscallError (17 / 18). */
  startTx(otherTxOpen: boolean): { tx: MutTx; timestampMicros: bigint };
  commitTx(): void;
  abortTx(): void;
  /**
   * Starts an outbound HTTP request: throws SyscallError at once when none is allowed; the promise rejects with a
   * SyscallError (errno 21) when the request fails.
   */
  httpRequest(request: Uint8Array, body: Uint8Array): Promise<{ response: Uint8Array; body: Uint8Array }>;
  /**
   * Called before a row is written to `tableId` in `tx`: refuses a schedule row whose delay is too long (errno 13), or
   * a new one (`inserting`) beyond the database's schedule rows limit (errno 1).
   */
  checkScheduleRow(tableId: number, row: Uint8Array, tx: MutTx, inserting: boolean): void;
}

interface PendingIter { rows: Uint8Array[]; next: number }

/**
 * Values of a table's sequence leased to the module's shim at a time (deferred autoInc inserts): each grant checks
 * this many keys, and the insert after the last one crosses for the next grant.
 */
const leaseValuesPerGrant = 16;

/** A sequence lease held for the module (slot `at` of the lease buffer); `start` moves to the cursor at each call's end. */
/** `applied`: inserts under this lease the host applied since it was granted or resumed (a cut batch ends it there). */
interface HostLease { tableId: number; at: number; start: bigint; increment: bigint; count: number; active: boolean; applied: number }

/** What a batch of reducer calls (ModuleRuntime.callReducers) ends through: its owner commits and rolls back. */
export interface CallBatch {
  /** Begins the transaction of the batch's next call and sets `tx` (the host asks when that call first needs it). */
  begin(): void;
  /** Why the transaction in progress may not commit now (Database.commitRefusal), if it may not. */
  refusal(): string | undefined;
  /**
   * The call in progress ended with `outcome`: commit (ok) or roll back, and clear `tx`. `group` calls end together
   * (the lazily ended ones read at once), for the duration each is given.
   */
  end(outcome: CallEnd, group: number): void;
  /** True when no further call of the batch may start now (e.g. immediate calls were queued: they run first). */
  mustStop(): boolean;
}
/** How a call of a batch ended, as SyscallHost saw it (error messages as the module reported them). */
export type CallEnd =
  | { kind: 'ok' }
  | { kind: 'senderError'; message: string }
  | { kind: 'error'; message: string }
  | { kind: 'trap'; message: string };
const callEndOk: CallEnd = { kind: 'ok' };
/** One call of a batch as writeReducerBatch reads it. */
export interface BatchCallArgs { id: number; sender: bigint; connId: bigint; args: Uint8Array }

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export class SyscallHost {
  /** The transaction syscalls act on; set by the caller around each module call. */
  tx: MutTx | undefined = undefined;
  sab: SharedArrayBuffer;
  private x: Uint8Array;
  private xv: DataView;
  private readonly iters = new Map<number, PendingIter>();
  private syscallDepth = 0;
  private readonly timers = new Map<number, { name: string; startNs: bigint }>();
  private nextTimerId = 1;
  /**
   * The last procedure_http_request: started by op.httpRequest, awaited by the isolate through `httpWait` (its thread
   * blocks, this one does not), handed over by op.httpResult.
   */
  private httpPending: Promise<{ response: Uint8Array; body: Uint8Array }> | undefined;
  private httpReply: { response: Uint8Array; body: Uint8Array } | undefined;
  private httpError: unknown;
  /** What the shim awaits with applySyncPromise after op.httpRequest (only while the isolate runs on its own thread). */
  readonly httpWait: ivm.Reference<() => Promise<void>>;
  /** Set when the exchange buffer was replaced by the host; the next call into the isolate hands it over. */
  pendingNewExchange = false;
  private lastSender: bigint | undefined;
  private lastConn: bigint | undefined;
  /** The transaction of the last reducer call: when the next one follows it, the module keeps its row cache. */
  private lastReducerTx: MutTx | undefined;
  /** The lease buffer (isolate-src.ts `lease`), shared with every isolate of this host. */
  private readonly leaseSab = new SharedArrayBuffer(lease.bufferBytes);
  private readonly lv = new DataView(this.leaseSab);
  /** Leases by slot; between calls they are ended (the sequence is exact) and resumed by a call that follows. */
  private readonly leases: HostLease[] = [];
  /** The op and arguments of a numbers-only crossing (isolate-src.ts `crossingArgs`), shared with every isolate of this host. */
  private readonly argsSab = new SharedArrayBuffer(crossingArgs.slots * Float64Array.BYTES_PER_ELEMENT);
  private readonly args = new Float64Array(this.argsSab);
  /** The call-end buffer (isolate-src.ts `callEnds`), shared with every isolate of this host. */
  private readonly endsSab = new SharedArrayBuffer(callEnds.bufferBytes);
  private readonly ev = new DataView(this.endsSab);
  private readonly e8 = new Uint8Array(this.endsSab);
  /** The batch being run (ModuleRuntime.callReducers), if any. */
  batch: CallBatch | undefined = undefined;
  /**
   * Set when a call the batch ended lazily failed to commit: the calls that ran after it saw a state that did not
   * hold. Every crossing then answers batchAbortCode, and the batch's owner runs those calls again.
   */
  batchAborted = false;
  /**
   * Set when what the shim left in a shared buffer cannot be (a queued record past its buffer's end, more call ends
   * than calls, more leased values used than granted): the module's own code reached the shim's writes (it may replace
   * DataView.prototype methods, which the shim calls). Nothing of it is applied; the isolate is stopped at once, so the
   * module cannot catch it, and the call in progress (or the first one not ended) fails as a trap with this message
   * (ModuleRuntime). Cleared when the next call or batch is written.
   */
  moduleFault: string | undefined = undefined;
  /** Calls of the batch being run that have not ended yet (the call-end buffer cannot hold more). */
  private callsUnended = 0;
  /** True while a reducer call runs: only those defer inserts. */
  private inReducerCall = false;
  /**
   * Off: every write crosses and nothing is cached or leased (the immediate path the deferred one must equal;
   * test/host/deferred-equivalence). From SPACETIME_IMMEDIATE_WRITES=1 at construction.
   */
  private readonly deferWrites = process.env.SPACETIME_IMMEDIATE_WRITES !== '1';
  /** Ids of the row layouts sent to the shim (MutTx.infallibleUpdate layouts live as long as their table). */
  private readonly layoutIds = new Map<Uint8Array, number>();
  /** Syscall crossings since creation (for the benchmark). */
  crossings = 0;
  /**
   * Set when a deferred update failed (the datastore broke MutTx.infallibleUpdate's promise): the call must fail
   * whatever the module did afterwards. Cleared by writeReducerCall.
   */
  deferredFailure: string | undefined = undefined;
  /**
   * performance.now() past which the call in progress must stop (Infinity: no limit, or no call). isolated-vm's
   * timeout (wall time with our patch) is held while a syscall runs and fires a thread hop after it returns; the
   * syscall entry checks this so a loop over syscalls stops at its next syscall. Set and cleared by ModuleRuntime.
   */
  callDeadlineMs = Infinity;
  /** Set when a syscall found the deadline passed and stopped the call; cleared with the deadline by ModuleRuntime. */
  deadlineHit = false;
  /**
   * Ends the running call for good (ModuleRuntime disposes the isolate: V8 terminates execution, which no `try/catch`
   * in the module can swallow). Called from inside a syscall, so the call's applySync throws when the syscall returns.
   */
  stopCall: () => void = () => {};
  /** Module log bytes written by the call in progress; past logBytesPerCallMax the rest is dropped. Reset by endCall. */
  private logBytesThisCall = 0;
  readonly callback: ivm.Callback;

  constructor(private readonly env: SyscallEnv) {
    this.sab = new SharedArrayBuffer(exchangeInitialBytes);
    this.x = new Uint8Array(this.sab);
    this.xv = new DataView(this.sab);
    const holder: { host: SyscallHost | undefined } = { host: this };
    ({ callback: this.callback, httpWait: this.httpWait } = SyscallHost.entries(holder));
    this.detach = () => { holder.host = undefined; };
  }

  /**
   * Ends this host's life (ModuleRuntime.dispose). isolated-vm holds the function of an ivm.Callback or ivm.Reference
   * in a global handle for as long as the Callback or Reference lives, and those live in this host: a host its own
   * entries referenced was never collected, nor what it reaches — a closed database (its env), the datastore before
   * an update (its last transaction): 66 MiB per closed or migrated 1M-row table, for the life of the process or the
   * worker. The entries reach the host through a holder that this clears.
   */
  readonly detach: () => void;

  /** Built here, not in the constructor, so that the entries' closures do not share a context that holds `this`. */
  private static entries(holder: { host: SyscallHost | undefined }): {
    callback: ivm.Callback; httpWait: ivm.Reference<() => Promise<void>>;
  } {
    return {
      // No arguments: a numbers-only crossing, its op and arguments in the shared buffer (crossingArgs).
      callback: new ivm.Callback((opc?: number, a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown) =>
        opc === undefined ? holder.host!.dispatchShared() : holder.host!.dispatch(opc, a, b, c, d, e, f)),
      httpWait: new ivm.Reference(async () => { await holder.host?.awaitHttp(); }),
    };
  }

  private async awaitHttp(): Promise<void> {
    const pending = this.httpPending;
    this.httpPending = undefined;
    if (pending === undefined) return;
    try {
      this.httpReply = await pending;
    } catch (err) {
      this.httpError = err;
    }
  }

  /**
   * Puts on a new isolate's global what the bootstrap takes over and deletes (isolate-src.ts "Syscall shims"): the
   * callback, the HTTP wait, and the shared buffers (exchange, leases, call ends, crossing arguments), shared, not copied.
   */
  handOver(global: ivm.Reference<Record<string | number | symbol, unknown>>): void {
    global.setSync('__stdbH', this.callback);
    global.setSync('__stdbW', this.httpWait);
    global.setSync('__stdbX', this.exchangeTransfer());
    global.setSync('__stdbL', new ivm.ExternalCopy(this.leaseSab).copyInto());
    global.setSync('__stdbE', new ivm.ExternalCopy(this.endsSab).copyInto());
    global.setSync('__stdbA', new ivm.ExternalCopy(this.argsSab).copyInto());
  }

  /** The exchange buffer as handed to an isolate (shared, not copied). */
  exchangeTransfer(): ivm.Copy<SharedArrayBuffer> {
    return new ivm.ExternalCopy(this.sab).copyInto();
  }

  /** Writes the reducer-call header and arguments into the exchange buffer (layout read by the dispatcher). */
  writeReducerCall(id: number, sender: bigint, connId: bigint, timestamp: bigint, args: Uint8Array): void {
    const need = reducerCallHeaderBytes + args.length;
    if (need > this.x.length) { this.grow(need); this.pendingNewExchange = true; }
    this.writeCallAt(0, id, sender, connId, timestamp, args, this.startCalls());
  }

  /**
   * Writes `count` calls from `calls[from]` as one batch (isolate-src.ts `batchHeaderBytes`), all with `timestamp`;
   * `tx` is the first call's transaction. No call starts once `sliceMs` has passed since the entry.
   */
  writeReducerBatch(calls: readonly BatchCallArgs[], from: number, count: number, timestamp: bigint, sliceMs: number): void {
    let bytes = 0;
    for (let i = from; i < from + count; i++) bytes += reducerCallHeaderBytes + calls[i].args.length;
    if (batchHeaderBytes + bytes > this.x.length) { this.grow(batchHeaderBytes + bytes); this.pendingNewExchange = true; }
    let flags = this.startCalls();
    let at = batchHeaderBytes;
    for (let i = from; i < from + count; i++) {
      const c = calls[i];
      this.writeCallAt(at, c.id, c.sender, c.connId, timestamp, c.args, flags);
      at += reducerCallHeaderBytes + c.args.length;
      flags = 0;                                     // the shim keeps its cache across a batch unless told otherwise
    }
    this.xv.setUint32(0, count, true);
    this.xv.setUint32(4, sliceMs, true);
    this.xv.setUint32(8, bytes, true);
    this.ev.setUint32(0, callEnds.headerBytes, true);
    this.batchAborted = false;
    this.callsUnended = count;
  }

  /**
   * After a batch that ran fewer calls than were written: the next header carries its sender and connection id again
   * (the shim's "same as the previous call" is the last call it ran, not the last one written).
   */
  forgetLastCaller(): void {
    this.lastSender = undefined;
    this.lastConn = undefined;
  }

  /** What starts a reducer entry: its leases resumed if it follows the last call; the header's keepRowCacheFlag. */
  private startCalls(): number {
    const tx = this.tx, last = this.lastReducerTx;
    const follows = tx !== undefined && last !== undefined && tx.follows !== undefined && tx.follows(last);
    this.lastReducerTx = tx;
    if (this.leases.length > 0) this.resumeLeases(follows);
    this.inReducerCall = this.deferWrites;
    this.deferredFailure = undefined;
    this.moduleFault = undefined;
    return follows ? keepRowCacheFlag : 0;
  }

  /** One call's header and arguments at x[at] (layout read by the dispatcher's runCall). */
  private writeCallAt(at: number, id: number, sender: bigint, connId: bigint, timestamp: bigint, args: Uint8Array, flags: number): void {
    const xv = this.xv;
    if (sender === this.lastSender) flags |= 1; else { writeBig(xv, at + 8, sender, 4); this.lastSender = sender; }
    if (connId === this.lastConn) flags |= 2; else { writeBig(xv, at + 40, connId, 2); this.lastConn = connId; }
    xv.setUint32(at, id, true);
    xv.setUint32(at + 4, flags, true);
    xv.setBigInt64(at + 56, timestamp, true);
    xv.setUint32(at + 64, args.length, true);
    this.x.set(args, at + reducerCallHeaderBytes);
  }

  /**
   * After a call that returned callOutcome.okDeferred: applies the updates it queued (u32 length @0, records @4).
   * Returns why the call must fail, if it must.
   */
  applyHandedUpdates(): string | undefined {
    this.applyUpdates(4, 4 + this.xv.getUint32(0, true));
    return this.moduleFault ?? this.deferredFailure;
  }

  /**
   * Applies queued update records in x[at, end) (or in `bytes`), in order; the first failure is kept in deferredFailure.
   * The bounds are the shim's words: records that do not fit the buffer, or a kind the host never offered, are a
   * module fault.
   */
  private applyUpdates(at: number, end: number, bytes = this.x, view = this.xv): void {
    if (end > bytes.length) { this.fault(`queued writes claim ${end - at} bytes, past their buffer`); return; }
    while (at < end && this.deferredFailure === undefined && this.moduleFault === undefined) {
      if (end - at < updateRecordHeaderBytes || view.getUint32(at + 8, true) > end - at - updateRecordHeaderBytes) {
        this.fault('a queued write runs past the end of its buffer');
        return;
      }
      const tableId = view.getUint32(at, true), indexId = view.getUint32(at + 4, true), len = view.getUint32(at + 8, true);
      at += updateRecordHeaderBytes;
      if (!this.deferrable(tableId, indexId)) {
        this.fault(`a queued write of table ${tableId} through index ${indexId}, which the host never lets the module queue`);
        return;
      }
      try {
        // No checkScheduleRow: MutTx.infallibleUpdate / infallibleInsert exclude schedule tables (deferrable).
        const tx = this.txOrThrow(), row = new Uint8Array(bytes.buffer, bytes.byteOffset + at, len); // not subarray: see copyOut
        if (tableId === deleteRecordMarker) {
          // The shim held the row in its cache: the delete finds it.
          const deleted = tx.deleteByIndexPoint(indexId, row);
          assert(deleted === 1, `a deferred delete through index ${indexId} deleted ${deleted} rows`);
        } else {
          const insert = indexId === insertRecordMarker;
          const n = (insert ? tx.insert(tableId, row) : tx.update(tableId, indexId, row)).generated.length;
          assert(n === 0, 'a deferred write generated values');
          if (insert) this.countLeased(tableId);
        }
      } catch (err) {
        const what = tableId === deleteRecordMarker ? `delete through index ${indexId}` : `write of table ${tableId}`;
        this.deferredFailure = `a deferred ${what} failed: ${messageOf(err)}`;
      }
      at += len;
    }
  }

  /**
   * Whether the shim may queue a record of this kind, as the host offered it: an insert into a table with an
   * infallibleInsert shape (so not a schedule, event or system table, whose writes the host must check), an update or
   * a delete through an index with an infallibleUpdate shape (an update of that index's own table).
   */
  private deferrable(tableId: number, indexId: number): boolean {
    const tx = this.tx;
    if (tx === undefined) return true;              // txOrThrow says why
    if (indexId === insertRecordMarker) return tx.infallibleInsert?.(tableId) !== undefined;
    const u = tx.infallibleUpdate?.(indexId);
    return u !== undefined && (tableId === deleteRecordMarker || u.tableId === tableId);
  }

  /**
   * The updates the shim queued, `bytes` of records at x[at..) (op.applyUpdates; after the input of an insert, update
   * or delete that crossed: isolate-src.ts stageWrite), applied before the op; a failure fails the op (and the call).
   */
  private applyStagedQueue(at: number, bytes: number): void {
    if (!(bytes > 0)) return;
    this.applyUpdates(at, at + bytes);
    const failure = this.moduleFault ?? this.deferredFailure;
    if (failure !== undefined) throw new DatastoreError(errno.hostCallFailure, failure);
  }

  /** A leased insert into `tableId` was applied (HostLease.applied). */
  private countLeased(tableId: number): void {
    for (const l of this.leases) if (l.tableId === tableId) { l.applied++; return; }
  }

  /**
   * Commits the calls of the batch that ended lazily since the last look (their records in the call-end buffer), in
   * order. False when one failed to commit: the batch is cut short (cutBatch).
   */
  settleBatch(): boolean {
    if (this.moduleFault !== undefined) return false;
    const ev = this.ev, end = ev.getUint32(0, true);
    if (end === callEnds.headerBytes) return true;
    ev.setUint32(0, callEnds.headerBytes, true);   // first: a fault below must not commit these calls twice
    const batch = this.batch!;
    let group = 0, at: number = callEnds.headerBytes;
    // The shim's words, checked before anything commits: records that end where the buffer's end word says, one per
    // call at most.
    for (; end <= callEnds.bufferBytes && at <= end - 4; at += 4 + ev.getUint32(at, true)) group++;
    if (end > callEnds.bufferBytes || at !== end || group > this.callsUnended) {
      this.fault(`the call-end buffer holds ${group} ends in ${end} bytes for ${this.callsUnended} calls not ended`);
      return false;
    }
    for (let at: number = callEnds.headerBytes; at < end;) {
      const n = ev.getUint32(at, true);
      at += 4;
      if (this.tx === undefined) this.beginBatchCall(batch);
      const tx = this.tx!;
      this.applyUpdates(at, at + n, this.e8, ev);
      at += n;
      if (this.moduleFault !== undefined) return false;
      const failure = this.deferredFailure;
      this.endCallState();
      this.callsUnended--;
      const refused = failure === undefined ? batch.refusal() : undefined;
      if (failure !== undefined || refused !== undefined) {
        // The calls after this one ran on its writes: put the leases back to the first value no applied insert took
        // (this call's own are used up, as when a single call fails), and drop their ends.
        // (Never more than the lease held, but for a module that forged its shim's counts.)
        for (const l of this.leases) if (l.active) this.endLease(l, Math.min(l.applied, l.count));
        batch.end(failure !== undefined ? { kind: 'error', message: failure } : { kind: 'senderError', message: refused! }, group);
        return this.cutBatch();
      }
      tx.checkpoint?.();                           // what the module's row cache holds is the tx's state now
      this.lastReducerTx = tx;
      // The leases carry over from call to call of the group (nothing else writes between them) and end with its last.
      if (at >= end) this.endLeases();
      batch.end(callEndOk, group);
    }
    return true;
  }

  /**
   * op.callEnd: the call in progress ended with `code` (its report or queue in X as a single call leaves them);
   * `more`: the shim starts the batch's next call unless told to stop, so its transaction begins now and takes up the
   * leases this call ended (its first insert may need one before anything crosses).
   */
  private endCallInBatch(code: number, more: boolean): number {
    const batch = this.batch;
    if (batch === undefined) throw new DatastoreError(errno.hostCallFailure, 'a call end outside a batch');
    if (this.callsUnended === 0) { this.fault('a call ended after every call of its batch had'); return callEndFlag.stop; }
    const tx = this.tx!;                           // dispatch began it
    let outcome: CallEnd;
    if (code === callOutcome.ok || code === callOutcome.okDeferred) {
      const failure = code === callOutcome.okDeferred ? this.applyHandedUpdates() : this.deferredFailure;
      if (this.moduleFault !== undefined) return callEndFlag.stop;   // the isolate is stopping: the trap ends this call
      const refused = failure === undefined ? batch.refusal() : undefined;
      outcome = failure !== undefined ? { kind: 'error', message: failure }
        : refused !== undefined ? { kind: 'senderError', message: refused } : callEndOk;
    } else {
      const message = this.readReport();
      outcome = code === callOutcome.senderError ? { kind: 'senderError', message } : { kind: 'error', message };
    }
    this.endCallState();
    if (outcome.kind === 'ok') { tx.checkpoint?.(); this.lastReducerTx = tx; }
    this.endLeases();
    this.callsUnended--;
    batch.end(outcome, 1);
    // A call rolled back leaves its writes in the module's row cache.
    let flags = outcome.kind === 'ok' ? 0 : callEndFlag.clearRowCache;
    if (batch.mustStop()) flags |= callEndFlag.stop;
    else if (more) this.beginBatchCall(batch);
    return flags;
  }

  /**
   * Begins the transaction of the batch's next call. Leases ended with the call before are resumed when this call
   * follows it, as at the start of a single call (startCalls).
   */
  private beginBatchCall(batch: CallBatch): void {
    batch.begin();
    const tx = this.tx!, last = this.lastReducerTx;
    if (this.leases.length === 0) return;
    for (const l of this.leases) if (l.active) return;
    this.resumeLeases(last !== undefined && tx.follows !== undefined && tx.follows(last));
  }

  /** Ends the active leases in the transaction of the call ending now (the sequence is exact between calls). */
  private endLeases(): void {
    for (const l of this.leases) if (l.active) this.endLease(l);
  }

  /** What ends with each call of a batch (its iterators, its log allowance, a failed deferred write). */
  private endCallState(): void {
    this.deferredFailure = undefined;
    this.logBytesThisCall = 0;
    if (this.iters.size > 0) this.iters.clear();
  }

  /**
   * A call ended lazily failed to commit, so the calls after it ran on a state that does not hold: their ends are
   * dropped, every later crossing fails, and the next call starts with an empty row cache (its owner runs them again).
   */
  private cutBatch(): false {
    this.batchAborted = true;
    this.ev.setUint32(0, callEnds.headerBytes, true);
    this.lastReducerTx = undefined;
    return false;
  }

  /**
   * The shim's shared words cannot be (moduleFault): nothing more of the call or batch is applied, the batch is cut,
   * and the isolate is stopped (stopCall) so that the module cannot go on past it.
   */
  private fault(why: string): void {
    if (this.moduleFault !== undefined) return;
    this.moduleFault = `the module corrupted the shim's shared buffers: ${why}`;
    this.cutBatch();
    this.stopCall();
  }

  private update(tableId: number, indexId: number, row: Uint8Array): number {
    const tx = this.txOrThrow();
    if (this.leases.length > 0) this.revokeLease(tableId);
    this.env.features?.checkScheduleRow(tableId, row, tx, false);
    return this.writeBack(tx.update(tableId, indexId, row).generated);
  }

  /**
   * True while a syscall runs: a call into the isolate now is nested (e.g. a view refreshed by the commit of a
   * procedure's `withTx`), so the outer call's pending iterators must survive it (`aside`).
   */
  get inSyscall(): boolean { return this.syscallDepth > 0; }

  /** Runs `fn` with the outer call's pending iterators set aside and restored afterwards. */
  aside<T>(fn: () => T): T {
    const saved = new Map(this.iters);
    try {
      return fn();
    } finally {
      this.iters.clear();
      for (const [k, v] of saved) this.iters.set(k, v);
    }
  }

  /** Writes a view call (layout read by the dispatcher's callView in isolate-src.ts); views take no arguments. */
  writeViewCall(anonymous: boolean, id: number, sender: bigint): void {
    this.xv.setUint32(0, anonymous ? 1 : 0, true);
    this.xv.setUint32(4, id, true);
    writeBig(this.xv, 8, sender, 4);
  }

  /** A copy of the byte result the dispatcher left in the exchange buffer (u32 length + bytes at offset 0). */
  readResultBytes(): Uint8Array {
    const len = this.xv.getUint32(0, true);
    return this.x.slice(4, 4 + len);
  }

  /** Forget the sender/connection cache (the isolate was replaced, so its copy is gone too). */
  resetCallCache(): void {
    this.lastSender = undefined;
    this.lastConn = undefined;
    this.lastReducerTx = undefined;
    this.dropLeases();
  }

  /**
   * At the start of a reducer call: a call that follows the previous one takes up its leases' unused values again
   * (nothing wrote since, so no row holds them); any other drops them (their sequences are already exact).
   */
  private resumeLeases(follows: boolean): void {
    const tx = this.tx;
    if (!follows || !this.deferWrites || tx?.resumeSequenceLease === undefined) { this.dropLeases(); return; }
    const lv = this.lv;
    for (const l of this.leases) {
      if (l.count > 0 && tx.resumeSequenceLease(l.tableId, l.start, l.count)) {
        l.active = true;
        l.applied = 0;
        lv.setUint32(l.at + 4, 1, true); lv.setUint32(l.at + 8, 0, true); lv.setUint32(l.at + 12, l.count, true);
        lv.setFloat64(l.at + 16, Number(l.start), true);
      } else {
        lv.setUint32(l.at + 4, 0, true); lv.setUint32(l.at + 12, 0, true);
      }
    }
  }

  /** Ends the active leases (a trapped call's isolate is replaced inside the call) and forgets them all. */
  private dropLeases(): void {
    if (this.leases.length === 0) return;
    this.endLeases();
    this.leases.length = 0;
    this.lv.setUint32(0, 0, true);
  }

  /**
   * Ends the active lease `l`: the sequence goes back to its first value the shim did not use, exactly where it would
   * be had every insert crossed. The lease keeps the unused values for resumeLeases.
   */
  private endLease(l: HostLease, used = this.lv.getUint32(l.at + 8, true)): void {
    const lv = this.lv;
    if (used > l.count) {
      this.fault(`${used} leased values of table ${l.tableId} used, of ${l.count}`);
      used = Math.min(l.applied, l.count);
    }
    lv.setUint32(l.at + 4, 0, true);
    l.active = false;
    l.start += BigInt(used) * l.increment;
    l.count -= used;
    this.tx?.endSequenceLease?.(l.tableId, l.start);
  }

  /** Before a crossing write into `tableId` (it may generate from the sequence itself): ends and forgets its lease. */
  private revokeLease(tableId: number): void {
    const i = this.leases.findIndex((l) => l.tableId === tableId);
    if (i < 0) return;
    const l = this.leases[i];
    if (l.active) this.endLease(l);
    l.count = 0;
  }

  /** After a crossing insert into `tableId` that generated a value: lease the next ones to the shim, if it may. */
  private grantLease(tx: MutTx, tableId: number): void {
    const shape = tx.infallibleInsert?.(tableId);
    if (shape === undefined || tx.leaseSequence === undefined) return;
    const layout = shape.layout;
    if (layout !== undefined && lease.layoutAt + layout.length > lease.slotBytes) return;
    let l = this.leases.find((x) => x.tableId === tableId);
    if (l === undefined) {
      if (this.leases.length >= leaseSlotsMax) return;
      l = { tableId, at: lease.headerBytes + this.leases.length * lease.slotBytes, start: 0n, increment: 0n, count: 0, active: false, applied: 0 };
      this.leases.push(l);
    }
    if (l.active) this.endLease(l);
    const got = tx.leaseSequence(tableId, leaseValuesPerGrant);
    const lv = this.lv, at = l.at;
    if (got === undefined) { l.count = 0; return; }
    l.start = got.start; l.increment = got.increment; l.count = got.count; l.active = true; l.applied = 0;
    lv.setUint32(at, tableId, true); lv.setUint32(at + 4, 1, true); lv.setUint32(at + 8, 0, true);
    lv.setUint32(at + 12, got.count, true);
    lv.setFloat64(at + 16, Number(got.start), true); lv.setFloat64(at + 24, Number(got.increment), true);
    lv.setUint32(at + 32, shape.sequenceOffset, true); lv.setUint32(at + 36, shape.sequenceWidthBytes, true);
    lv.setUint32(at + 40, shape.rowWidthBytes, true);
    if (layout !== undefined) {
      lv.setUint32(at + 44, this.layoutId(layout), true); lv.setUint32(at + 48, layout.length, true);
      new Uint8Array(this.leaseSab, at + lease.layoutAt, layout.length).set(layout);
    }
    lv.setUint32(0, this.leases.length, true);
  }

  private layoutId(layout: Uint8Array): number {
    let id = this.layoutIds.get(layout);
    if (id === undefined) { id = this.layoutIds.size + 1; this.layoutIds.set(layout, id); }
    return id;
  }

  /** The UTF-8 text the dispatcher reported (u32 length + bytes at offset 0). */
  readReport(): string {
    const len = this.xv.getUint32(0, true);
    return textDecoder.decode(this.x.subarray(4, 4 + len));
  }

  /** Forgets everything a call left behind (iterators the module did not drain). */
  endCall(): void {
    if (this.inReducerCall) {
      this.inReducerCall = false;
      this.endLeases();
    }
    this.callDeadlineMs = Infinity;
    this.logBytesThisCall = 0;
    if (this.iters.size > 0) this.iters.clear();
  }

  /**
   * A module's log record, within the call's logBytesPerCallMax: the record that crosses it is still written, then one
   * Warn line says the rest is dropped, and the call goes on (dropping costs a comparison, not a write).
   */
  private log(level: number, message: string, frame: string): void {
    if (this.logBytesThisCall > logBytesPerCallMax) return;
    const wrote = this.env.log(level, message, frame);
    this.logBytesThisCall += typeof wrote === 'number' ? wrote : message.length;
    if (this.logBytesThisCall <= logBytesPerCallMax) return;
    this.env.log(logLevel.warn, `this call wrote more than ${logBytesPerCallMax} bytes of log (logBytesPerCallMax): ` +
      'the rest of its log is dropped', '');
  }

  /** A warning of the host's own on the module log (not counted toward a call's log bytes): runtime.ts's heap shed. */
  warn(message: string): void {
    this.env.log(logLevel.warn, message, '');
  }

  private grow(minBytes: number): void {
    if (minBytes > exchangeMaxBytes) throw new DatastoreError(errno.hostCallFailure, `buffer of ${minBytes} bytes exceeds the ${exchangeMaxBytes}-byte limit`);
    let size = this.x.length * 2;
    while (size < minBytes) size *= 2;
    const sab = new SharedArrayBuffer(size);
    const x = new Uint8Array(sab);
    x.set(this.x);
    this.sab = sab; this.x = x; this.xv = new DataView(sab);
  }

  /** A numbers-only crossing: op and arguments read from the shared buffer before anything else runs. */
  private dispatchShared(): unknown {
    const x = this.args;
    return this.dispatch(x[0], x[1], x[2], x[3], x[4], x[5], x[6]);
  }

  private dispatch(opc: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown): unknown {
    this.crossings++;
    // Checked before any work, so a stopped call never leaves a half-done syscall behind (~30 ns per syscall).
    if (performance.now() > this.callDeadlineMs) return this.stopOverDeadline();
    if (opc === 0) { this.grow(a as number); return this.exchangeTransfer(); }
    const batch = this.batch;
    if (batch !== undefined) {
      // The calls that ended lazily commit before anything of the call in progress is served.
      if (this.batchAborted || !this.settleBatch()) return batchAbortCode;
      if (this.tx === undefined) {
        if (this.callsUnended === 0) { this.fault('a call ran after every call of its batch had ended'); return batchAbortCode; }
        this.beginBatchCall(batch);
      }
    }
    this.syscallDepth++;
    try {
      return this.run(opc, a, b, c, d, e, f);
    } catch (err) {
      if (err instanceof NeedsGrow) { this.xv.setUint32(0, err.bytes, true); return growCode; }
      if (err instanceof SyscallError || err instanceof DatastoreError) return this.error(err.code, err.message);
      if (err instanceof SatsError) return this.error(errno.bsatnDecodeError, err.message);
      return this.error(errno.hostCallFailure, messageOf(err));
    } finally {
      this.syscallDepth--;
    }
  }

  private stopOverDeadline(): number {
    this.deadlineHit = true;
    this.callDeadlineMs = Infinity;
    this.stopCall();
    // Never seen by the module: its execution is terminating. Answer as a failed syscall in case it is not.
    return this.error(errno.hostCallFailure, 'the call exceeded its time limit');
  }

  private error(code: number, message: string): number {
    let bytes = textEncoder.encode(message);
    if (bytes.length + 4 > this.x.length) bytes = bytes.subarray(0, this.x.length - 4);
    this.xv.setUint32(0, bytes.length, true);
    this.x.set(bytes, 4);
    return -code;
  }

  /** commit / abort of `withTx`; once the anonymous tx is taken (even if committing it fails) no tx is open. */
  private endAnonTx(commit: boolean): number {
    const f = this.features();
    try {
      if (commit) f.commitTx(); else f.abortTx();
    } catch (err) {
      if (!(err instanceof SyscallError && err.code === transactionNotAnonymous)) this.tx = undefined;
      throw err;
    }
    this.tx = undefined;
    return 0;
  }

  private features(): FeatureSyscalls {
    const f = this.env.features;
    if (f === undefined) throw new DatastoreError(errno.hostCallFailure, 'procedures are not supported by this host');
    return f;
  }

  private txOrThrow(): MutTx {
    const tx = this.tx;
    if (tx === undefined) throw new DatastoreError(errno.notInTransaction, 'not in a transaction');
    return tx;
  }

  private run(opc: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown): number {
    switch (opc) {
      case op.tableId: {
        const t = this.txOrThrow().tableByName(a as string);
        if (t === undefined) throw new DatastoreError(errno.noSuchTable, `no such table: ${a as string}`);
        return t.tableId;
      }
      case op.indexId: {
        const i = this.txOrThrow().indexByName(a as string);
        if (i === undefined) throw new DatastoreError(errno.noSuchIndex, `no such index: ${a as string}`);
        return i.index.indexId;
      }
      case op.rowCount: return this.txOrThrow().rowCount(a as number);
      case op.tableScan: {
        const tx = this.txOrThrow(), rows = tx.scan(b as number);
        return this.openIter(a as number, rows, undefined, this.cacheVia(tx, { tableId: b as number }, rows));
      }
      case op.indexScanPoint: {
        // Views, not copies: the datastore copies what it keeps (datastore/store.ts rules) and reads keys at once.
        const tx = this.txOrThrow();
        const rows = tx.scanIndexPoint(b as number, this.x.subarray(0, c as number));
        // One row found through an index whose updates cannot fail: the shim may defer updating it.
        const updatable = rows.length === 1 && this.deferWrites && tx.infallibleUpdate !== undefined
          ? updatableFor(tx.infallibleUpdate(b as number), rows[0]) : undefined;
        return this.openIter(a as number, rows, updatable,
          updatable === undefined ? this.cacheVia(tx, { indexId: b as number }, rows) : undefined);
      }
      case op.indexScanRange: {
        const tx = this.txOrThrow();
        const rows = tx.scanIndexRange(b as number, this.rangeArgs(c as number, d as number, e as number, f as number));
        return this.openIter(a as number, rows, undefined, this.cacheVia(tx, { indexId: b as number }, rows));
      }
      case op.iterNextChunk: {
        const it = this.iters.get(a as number);
        if (it === undefined) throw new DatastoreError(errno.noSuchIter, `no such iterator: ${a as number}`);
        return this.writeChunk(a as number, it);
      }
      case op.iterClose: this.iters.delete(a as number); return 0;
      case op.insert: {
        const tx = this.txOrThrow();
        this.applyStagedQueue(b as number, c as number);
        const row = this.x.subarray(0, b as number);
        this.env.features?.checkScheduleRow(a as number, row, tx, true);
        if (this.leases.length > 0) this.revokeLease(a as number);
        const generated = tx.insert(a as number, row).generated;
        // Leases follow an insert that generated a value, or one into a table with nothing to generate (no sequence).
        if (this.inReducerCall && (generated.length > 0 || tx.infallibleInsert?.(a as number)?.sequenceWidthBytes === 0)) {
          this.grantLease(tx, a as number);
        }
        return this.writeBack(generated);
      }
      case op.update: {
        this.applyStagedQueue(c as number, d as number);
        const row = this.x.subarray(0, c as number), n = this.update(a as number, b as number, row);
        if (n === 0) this.offerUpdatedRow(b as number, row);
        return n;
      }
      case op.callEnd: return this.endCallInBatch(a as number, b === 1);
      case op.readAhead: return this.readAhead(a as number, b as number);
      case op.applyUpdates: this.applyStagedQueue(0, a as number); return 0;
      case op.deletePoint: {
        this.applyStagedQueue(b as number, c as number);
        return this.tellTableWritten(a as number, this.txOrThrow().deleteByIndexPoint(a as number, this.x.subarray(0, b as number)));
      }
      case op.deleteRange: {
        this.applyStagedQueue((b as number) + (d as number) + (e as number), f as number);
        return this.tellTableWritten(a as number,
          this.txOrThrow().deleteByIndexRange(a as number, this.rangeArgs(b as number, c as number, d as number, e as number)));
      }
      case op.deleteEq: return this.txOrThrow().deleteByRows(a as number, decodeRowList(this.x.subarray(0, b as number)));
      case op.clear: return this.txOrThrow().clear(a as number);
      case op.consoleLog: this.log(a as number, String(b), String(c ?? '')); return 0;
      case op.timerStart: {
        const id = this.nextTimerId++;
        this.timers.set(id, { name: String(a), startNs: process.hrtime.bigint() });
        return id;
      }
      case op.timerEnd: {
        const t = this.timers.get(a as number);
        if (t === undefined) throw new SyscallError(noSuchConsoleTimer, `no such console timer: ${a as number}`);
        this.timers.delete(a as number);
        const ms = Number(process.hrtime.bigint() - t.startNs) / 1e6;
        this.log(logLevel.info, `Timing span "${t.name}": ${ms.toFixed(3)}ms`, '');
        return 0;
      }
      case op.identity: writeBig(this.xv, 0, this.env.identity, 4); return 0;
      case op.jwtPayload: {
        this.txOrThrow();
        const payload = this.env.jwtPayload(readBig(this.xv, 0, 2));
        const bytes = payload === undefined ? new Uint8Array(0) : textEncoder.encode(payload);
        if (bytes.length > this.x.length) throw new NeedsGrow(bytes.length);
        this.x.set(bytes, 0);
        return bytes.length;
      }
      case op.scheduleImmediate: this.env.scheduleImmediate(String(a), this.x.slice(0, b as number)); return 0;
      case op.procStartTx: {
        const started = this.features().startTx(this.tx !== undefined);
        this.tx = started.tx;
        this.xv.setBigUint64(0, started.timestampMicros, true);
        return 0;
      }
      case op.procCommitTx: return this.endAnonTx(true);
      case op.procAbortTx: return this.endAnonTx(false);
      case op.httpRequest: {
        if (this.tx !== undefined) throw new SyscallError(wouldBlockTransaction, 'cannot make HTTP requests inside a transaction');
        const req = this.x.slice(0, a as number);
        const body = this.x.slice(a as number, (a as number) + (b as number));
        this.httpReply = undefined;
        this.httpError = undefined;
        this.httpPending = this.features().httpRequest(req, body);
        this.httpPending.catch(() => {});              // awaited by awaitHttp; never an unhandled rejection
        return 0;
      }
      case op.httpResult: {
        if (this.httpError !== undefined) {
          const err = this.httpError;
          this.httpError = undefined;
          throw err;
        }
        const reply = this.httpReply;
        if (reply === undefined) throw new SyscallError(1, 'no HTTP reply pending');
        const need = 8 + reply.response.length + reply.body.length;
        if (need > this.x.length) throw new NeedsGrow(need);
        this.xv.setUint32(0, reply.response.length, true);
        this.xv.setUint32(4, reply.body.length, true);
        this.x.set(reply.response, 8);
        this.x.set(reply.body, 8 + reply.response.length);
        this.httpReply = undefined;
        return 0;
      }
      default: assert.fail(`unknown syscall op ${opc}`);
    }
  }

  private rangeArgs(prefixLen: number, prefixElems: number, rstartLen: number, rendLen: number): RangeScanArgs {
    const x = this.x;
    const prefix = x.slice(0, prefixLen);
    const rangeStart = x.slice(prefixLen, prefixLen + rstartLen);
    const rangeEnd = rendLen === 0 ? rangeStart : x.slice(prefixLen + rstartLen, prefixLen + rstartLen + rendLen);
    return { prefix, prefixElems, rangeStart, rangeEnd };
  }

  private writeBack(generated: Uint8Array): number {
    if (generated.length > 0) this.x.set(generated, 0);
    return generated.length;
  }

  /**
   * The index a reducer call's scan of `rows` may be cached under by the shim (MutTx.rowCacheIndex), when its rows may
   * be: every one's key is not 0 where the key has a sequence (updatableFor).
   */
  private cacheVia(tx: MutTx, of: { tableId: number } | { indexId: number }, rows: Uint8Array[]):
    { indexId: number; shape: InfallibleUpdate } | undefined {
    if (!this.deferWrites || !this.inReducerCall || rows.length === 0 || tx.rowCacheIndex === undefined) return undefined;
    const via = tx.rowCacheIndex(of);
    if (via === undefined || shapeWord(via.shape) === undefined) return undefined;
    if (via.shape.keyNonZero) for (const row of rows) if (updatableFor(via.shape, row) === undefined) return undefined;
    return via;
  }

  private openIter(id: number, rows: Uint8Array[], updatable?: InfallibleUpdate,
    via?: { indexId: number; shape: InfallibleUpdate }): number {
    const next = this.writeRows(rows, 0);
    if (next < rows.length) this.iters.set(id, { rows, next });
    else if (via !== undefined) this.writeCacheVia(via);
    else if (updatable !== undefined && shapeWord(updatable) !== undefined) {
      // Header words 2..4 (isolate-src.ts): flags (with the layout id in bits 8..), tableId, keyOffset | rowWidth << 16.
      const xv = this.xv;
      let flags = updatableFlags(updatable);
      const layout = updatable.layout;
      if (updatable.rowWidthBytes === 0) {
        if (layout === undefined) return 0;
        // The layout follows the row (one row: header, one length word, its bytes); the shim reads it once per id.
        const at = chunkHeaderBytes + 4 + rows[0].length;
        if (at + 4 + layout.length > this.x.length) return 0;
        flags |= this.layoutId(layout) << 8;
        xv.setUint32(at, layout.length, true);
        this.x.set(layout, at + 4);
      }
      xv.setUint32(8, flags, true);
      xv.setUint32(12, updatable.tableId, true);
      xv.setUint32(16, shapeWord(updatable)!, true);
    }
    return 0;
  }

  /**
   * After a delete through `indexId`: X[0] names the table whose rows it deleted, when the shim may cache rows of it
   * (its rowCacheIndex), so the shim drops only those (isolate-src.ts readDeleting, tableWrittenWord). Returns `n`.
   */
  private tellTableWritten(indexId: number, n: number): number {
    const tx = this.txOrThrow(), xv = this.xv;
    if (tx.rowCacheIndex === undefined) { xv.setUint32(0, 0, true); return n; }
    xv.setUint32(0, tableWrittenWord, true);
    xv.setUint32(4, tx.rowCacheIndex({ indexId })?.shape.tableId ?? noCachedTable, true);
    return n;
  }

  /**
   * After an update through `indexId` that crossed and generated nothing (`row`, a view of X, is the row now stored):
   * X[0] says whether the shim may cache it (isolate-src.ts updatedRowOffer, cacheUpdatedRow), as it caches a row a
   * point scan found: when the index's updates cannot fail (MutTx.infallibleUpdate) and the row's key is not 0 where
   * the key has a sequence. The row's bytes in X are not needed any more.
   */
  private offerUpdatedRow(indexId: number, row: Uint8Array): void {
    const tx = this.txOrThrow(), xv = this.xv;
    const u = this.deferWrites && this.inReducerCall && tx.infallibleUpdate !== undefined
      ? updatableFor(tx.infallibleUpdate(indexId), row) : undefined;
    const layoutId = u === undefined ? undefined : this.writeShapeAt(8, u);
    if (layoutId === undefined) { xv.setUint32(0, 0, true); return; }
    xv.setUint32(4, layoutId << 8, true);
    xv.setUint32(0, updatedRowOffer, true);
  }

  /**
   * The shape the shim caches rows of `shape`'s index by, at x[at..): u32 tableId, keyOffset | rowWidth << 16, key
   * width (0: a string), layout length, then for rows of any length the layout's codes (isolate-src.ts shapeAt).
   * Returns the layout's id (0 for fixed-width rows), or undefined when the shape has no word or does not fit.
   */
  private writeShapeAt(at: number, shape: InfallibleUpdate): number | undefined {
    const xv = this.xv, word = shapeWord(shape), layout = shape.rowWidthBytes === 0 ? shape.layout : undefined;
    if (word === undefined || (shape.rowWidthBytes === 0 && layout === undefined)) return undefined;
    if (at + 16 + (layout?.length ?? 0) > this.x.length) return undefined;
    xv.setUint32(at, shape.tableId, true);
    xv.setUint32(at + 4, word, true);
    xv.setUint32(at + 8, shape.keyWidthBytes, true);
    xv.setUint32(at + 12, layout?.length ?? 0, true);
    if (layout === undefined) return 0;
    this.x.set(layout, at + 16);
    return this.layoutId(layout);
  }

  /**
   * After the rows of a one-chunk scan answer (isolate-src.ts noteRecentScan): the index the shim may cache them under,
   * u32 indexId, tableId, keyOffset | rowWidth << 16, key width (0: a string), and for rows of any length the layout
   * (u32 length + codes; its id in the flags' bits 8..). Nothing when it does not fit.
   */
  private writeCacheVia({ indexId, shape }: { indexId: number; shape: InfallibleUpdate }): void {
    const xv = this.xv, at = chunkHeaderBytes + 4 * xv.getUint32(0, true) + xv.getUint32(4, true);
    if (at + 4 > this.x.length) return;
    const layoutId = this.writeShapeAt(at + 4, shape);
    if (layoutId === undefined) return;
    xv.setUint32(at, indexId, true);
    xv.setUint32(8, chunkFlag.cacheVia | layoutId << 8, true);
  }

  /**
   * op.readAhead (isolate-src.ts "Read-ahead"): `count` point scans asked at a batch's start, x[4, end) holding for each
   * u32 indexId, u32 key length and the key. Answers in X from 4 on, one per key in order, as many as fit (their number
   * at 0): u32 row length, or readAheadAbsent when the scan finds no row the shim may cache (the same test as a point
   * scan's `updatable`; a key that is no key of the index counts as none: the shim's patterns are guesses); then u32
   * chunk flags (layout id in bits 8..), u32 tableId, u32 keyOffset | rowWidth << 16, the row, and for rows of any
   * length the layout (u32 length + codes). Reads only, in the transaction of the call about to run (the batch's first,
   * or the one after a call that failed).
   */
  private readAhead(count: number, end: number): number {
    const tx = this.txOrThrow(), x = this.x, xv = this.xv;
    if (count > readAheadKeysMax || end > x.length) throw new DatastoreError(errno.hostCallFailure, 'a read-ahead over its bounds');
    const asked = x.slice(4, end), av = new DataView(asked.buffer);
    let r = 0, at = 4, answered = 0;
    for (; answered < count; answered++) {
      const indexId = av.getUint32(r, true), keyLen = av.getUint32(r + 4, true);
      const key = asked.subarray(r + 8, r + 8 + keyLen);
      r += 8 + keyLen;
      let row: Uint8Array | undefined, u: InfallibleUpdate | undefined;
      if (this.deferWrites && tx.infallibleUpdate !== undefined) {
        try {
          const rows = tx.scanIndexPoint(indexId, key);
          if (rows.length === 1) { row = rows[0]; u = updatableFor(tx.infallibleUpdate(indexId), row); }
        } catch (err) {
          if (!(err instanceof DatastoreError || err instanceof SatsError)) throw err;
        }
      }
      const layout = u?.rowWidthBytes === 0 ? u.layout : undefined;
      const cacheable = row !== undefined && u !== undefined && (u.rowWidthBytes !== 0 || layout !== undefined) &&
        shapeWord(u) !== undefined;
      const need = 4 + (cacheable ? 12 + row!.length + (layout === undefined ? 0 : 4 + layout.length) : 0);
      if (at + need > x.length) break;
      if (!cacheable) { xv.setUint32(at, readAheadAbsent, true); at += 4; continue; }
      xv.setUint32(at, row!.length, true);
      xv.setUint32(at + 4, updatableFlags(u!) | (layout === undefined ? 0 : this.layoutId(layout) << 8), true);
      xv.setUint32(at + 8, u!.tableId, true);
      xv.setUint32(at + 12, shapeWord(u!)!, true);
      x.set(row!, at + 16);
      at += 16 + row!.length;
      if (layout !== undefined) { xv.setUint32(at, layout.length, true); x.set(layout, at + 4); at += 4 + layout.length; }
    }
    xv.setUint32(0, answered, true);
    return 0;
  }

  /** Continues a scan whose rows did not fit in one chunk. */
  private writeChunk(id: number, it: PendingIter): number {
    it.next = this.writeRows(it.rows, it.next);
    if (it.next === it.rows.length) this.iters.delete(id);
    return 0;
  }

  /** Writes as many whole rows from `start` as fit (chunk format in isolate-src.ts); returns the next row index. */
  private writeRows(rows: Uint8Array[], start: number): number {
    const x = this.x, xv = this.xv, cap = x.length;
    let count = 0, dataBytes = 0;
    let i = start;
    for (; i < rows.length; i++) {
      const len = rows[i].length;
      if (chunkHeaderBytes + 4 * (count + 1) + dataBytes + len > cap) break;
      count++; dataBytes += len;
    }
    if (count === 0 && i < rows.length) throw new NeedsGrow(chunkHeaderBytes + 4 + rows[i].length);
    let lenAt = chunkHeaderBytes, dataAt = chunkHeaderBytes + 4 * count;
    for (let k = start; k < i; k++) {
      const row = rows[k];
      xv.setUint32(lenAt, row.length, true); lenAt += 4;
      x.set(row, dataAt); dataAt += row.length;
    }
    const more = i < rows.length;
    xv.setUint32(0, count, true);
    xv.setUint32(4, dataBytes, true);
    xv.setUint32(8, more ? chunkFlag.more : 0, true);
    return i;
  }
}

/** errno 7 (host-abi §3.3); not a datastore error, so it is not in datastore's `errno`. */
const noSuchConsoleTimer = 7;

/** errno 17 (host-abi §3.3): HTTP inside a transaction. */
const wouldBlockTransaction = 17;
/** errno 18: commit / abort without `procedure_start_mut_tx`. */
const transactionNotAnonymous = 18;

/** A syscall failure with an errno that is not a datastore one. */
export class SyscallError { constructor(readonly code: number, readonly message: string) {} }

/** Thrown inside a syscall when an output does not fit the exchange buffer; the shim grows it and retries. */
class NeedsGrow { constructor(readonly bytes: number) {} }

/** delete_all_by_eq's buffer: BSATN Vec<Row>. Rows are delimited by the table's codec, which the datastore owns. */
function decodeRowList(bytes: Uint8Array): Uint8Array[] {
  // The library always sends exactly one row (count 1), so the row is the rest of the buffer.
  if (bytes.length < 4) throw new SatsError('truncated row list', 0);
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (count === 0) return [];
  if (count !== 1) throw new DatastoreError(errno.hostCallFailure, `delete_all_by_eq with ${count} rows is not supported (the library sends 1)`);
  return [bytes.slice(4)];
}

function writeBig(view: DataView, at: number, value: bigint, words: number): void {
  let v = BigInt.asUintN(64 * words, value);
  for (let i = 0; i < words; i++) { view.setBigUint64(at + 8 * i, BigInt.asUintN(64, v), true); v >>= 64n; }
}

function readBig(view: DataView, at: number, words: number): bigint {
  let v = 0n;
  for (let i = words - 1; i >= 0; i--) v = (v << 64n) | view.getBigUint64(at + 8 * i, true);
  return v;
}

/**
 * `u` when an update of `row` (found through u's index) may be deferred: not when its key is 0 and the key has a
 * sequence (InfallibleUpdate.keyNonZero), since an update with a 0 key generates one. The shim caches only rows the
 * host calls updatable, and defers only updates of cached keys, so such a row's update always crosses. (Inserts
 * generate for a 0 key, so a stored row should never hold one: this keeps the promise if one does.)
 */
function updatableFor(u: InfallibleUpdate | undefined, row: Uint8Array): InfallibleUpdate | undefined {
  if (u === undefined || !u.keyNonZero) return u;
  for (let i = u.keyOffset, end = u.keyOffset + u.keyWidthBytes; i < end; i++) if (row[i] !== 0) return u;
  return undefined;
}

/**
 * An InfallibleUpdate's key offset and row width as the shim reads them, in one u32 (keyOffset | rowWidth << 16:
 * isolate-src.ts chunk header word 4); undefined when either does not fit 16 bits (then nothing is offered to cache).
 */
function shapeWord(u: InfallibleUpdate): number | undefined {
  return u.keyOffset <= 0xffff && u.rowWidthBytes <= 0xffff ? u.keyOffset + u.rowWidthBytes * 0x10000 : undefined;
}

/** Chunk flags of a row offered to the shim's cache (before its layout id): updatable, and whether its key is a string. */
function updatableFlags(u: InfallibleUpdate): number {
  return chunkFlag.updatable | (u.keyWidthBytes === 0 ? chunkFlag.stringKey : 0);
}
