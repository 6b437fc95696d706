// host/worker/protocol.ts — the frames between the main thread and a database's worker (engine-v2 step 3).
//
// Owns: the request, reply and event shapes, the one codec both sides use (errors as typed values rebuilt as the
// same classes; byte arrays copied tight so that nothing shared by reference crosses), and the durability tracker
// (commit promises become sequence numbers in the worker and promises again on the main thread).
// May call: host/errors.ts and the other modules whose error classes cross (recovery, update, sql, sats, durability),
// limits, subscription/messages.ts, subscription/port.ts, subscription/v1-json.ts and subscription/wire-frame.ts (types).
//
// Transport: postMessage on one MessagePort per database (a thread serves several: `WorkerAttach`). Each side posts
// one `Batch` per event-loop turn: everything the turn produced, in the order it produced it, so each side sees the
// other's frames in order. The hot frames are binary records in one ArrayBuffer (transferred, not cloned): a WebSocket
// client's reducer call (`callOrdered`) and its result. Every other frame is a plain object — `{id, op, …}` a request,
// `{id, ok, value | error}` its reply, `{ev, …}` an event — placed in the record stream by an OBJECT record. A call
// names its caller (identity, connection id, JWT payload: hundreds of bytes) and its reducer by a number the stream
// defined earlier (`CallerTable`, `NameTable`), so they cross once per connection, not once per call. Nothing is
// shared by reference, so a ring of binary frames (engine-v2 step 4) can replace the transport without changing a side.

import assert from 'node:assert';
import type { MessagePort } from 'node:worker_threads';
import {
  BadArgumentsError, ConnectionRejectedError, DatabaseClosedError, NoSuchReducerError, PublishError, ReducerNotCallableError,
} from '../errors.js';
import { DatabaseFailedError } from '../recovery.js';
import { UpdateRejectedError } from '../update.js';
import { SqlError } from '../../sql/errors.js';
import { SatsError } from '../../sats/types.js';
import { MigrationError } from '../../datastore/migrate.js';
import { CommitLogCorruptError, CommitLogError } from '../../durability/segment.js';
import { CommitLogFailedError } from '../../durability/commitlog.js';
import { PersistenceError } from '../persistence.js';
import { SubscriptionQueryError } from '../../subscription/manager.js';
import { workerCallersInternedMax, workerReducerNamesInternedMax } from '../../limits.js';
import type { Caller, DatabaseMetricsSnapshot, ReducerCallResult } from '../database.js';
import type { QuerySetUpdate, ServerMessage } from '../../subscription/messages.js';
import type { AnswersFor } from '../../subscription/port.js';
import type { JsonAnswer } from '../../subscription/v1-json.js';
import type { FramedAnswer } from '../../subscription/wire-frame.js';

/**
 * Main → a worker thread's parentPort: serve one more database; its requests, replies and events go over `port` (the
 * other end of a MessageChannel the main side keeps), in the frames below.
 */
export interface WorkerAttach { port: MessagePort }
/** A worker thread's parentPort → main: a line for the server's log that belongs to no one database of the thread. */
export interface WorkerThreadReport { report: string }

/** Which database a worker opens, and how (the `open` request). */
export interface WorkerStart {
  mode: 'create' | 'open';
  identity: bigint;
  ownerIdentity: bigint;
  dir: string;
  durability: 'fsync' | 'none';
}

export type Request = { id: number } & (
  | ({ op: 'open'; program: string } & WorkerStart)
  | { op: 'callReducer'; name: string; args: Uint8Array; caller: Caller }
  | { op: 'callOrdered'; name: string; args: Uint8Array; caller: Caller }
  | { op: 'callReducerJson'; name: string; argsJson: unknown; caller: Caller }
  | { op: 'callProcedure'; name: string; args: Uint8Array; caller: Caller }
  | { op: 'callProcedureJson'; name: string; argsJson: unknown; caller: Caller }
  | { op: 'clientConnected' | 'clientDisconnected'; caller: Caller }
  | { op: 'sql'; query: string; caller: Caller; isOwner: boolean | undefined }
  /** `sql` answered as POST /sql's JSON body, rendered in the worker (sql/json.ts). */
  | { op: 'sqlJson'; query: string; caller: Caller; isOwner: boolean | undefined }
  /** `sql` answered as PostgreSQL backend messages, rendered in the worker (sql/pg-messages.ts). */
  | { op: 'sqlPg'; query: string; caller: Caller; isOwner: boolean | undefined }
  | { op: 'serveHttp'; method: string; path: string; uri: string; headers: [string, string][]; body: Uint8Array }
  | { op: 'planUpdate'; program: string }
  | { op: 'update'; program: string; breakClients: boolean; publisher: bigint | undefined }
  | { op: 'metrics' }
  | { op: 'commitEvents'; on: boolean }
  /** `client`: the number this client's binary events carry (main side: free again once subRemove is answered). */
  /** `answersFor`: how the client's answers may come, encoded or rendered (subscription/port.ts). */
  | { op: 'subAdd'; connectionId: bigint; client: number; identity: bigint; isOwner: boolean; shared: boolean;
      answersFor: AnswersFor | undefined }
  | { op: 'subRemove'; connectionId: bigint }
  | { op: 'subscribe'; connectionId: bigint; requestId: number; querySetId: number; queries: string[] }
  | { op: 'unsubscribe'; connectionId: bigint; requestId: number; querySetId: number; sendDroppedRows: boolean }
  | { op: 'oneOff'; connectionId: bigint; requestId: number; query: string }
  | { op: 'close' }
);

/** `offset`: the database's durable commit-log offset when the reply was sent (the server reads it synchronously). */
export type Reply = { id: number; offset?: bigint } & ({ ok: true; value: unknown } | { ok: false; error: ErrorValue });

/** What the main thread caches of a database (its synchronous getters); sent at open and after an update. */
export interface DatabaseState {
  defBytes: Uint8Array;
  loggedProgramText: string | undefined;
  httpBodyMaxBytes: number;
}

/** A database's metrics snapshot and the number of live subscription queries in its worker. */
export type WorkerMetrics = DatabaseMetricsSnapshot & { subscriptionQueries: number };


/**
 * A subscription answer: the message (or its encoding for a binary-protocol client, or its rows rendered for a v1 JSON
 * one) and the durability sequence of the last commit it saw (0: durable).
 */
export interface AnswerValue { message: ServerMessage | FramedAnswer | JsonAnswer; seq: number }

export type Event =
  /** Module log records, as the NDJSON lines the worker wrote to module.log (newline-terminated, in order). */
  | { ev: 'logs'; lines: string }
  | { ev: 'report'; line: string }
  | { ev: 'durable'; seq: number; offset: bigint | undefined }
  | { ev: 'durableFailed'; seq: number; error: ErrorValue }
  | { ev: 'failure'; error: ErrorValue }
  | { ev: 'moduleChanged'; breaksClients: boolean }
  | { ev: 'tx'; connectionId: bigint; querySets: QuerySetUpdate[]; isCaller: boolean; seq: number }
  | { ev: 'shared'; connectionId: bigint; frame: Uint8Array; seq: number }
  | { ev: 'qsFailed'; connectionId: bigint; querySetId: number; error: string }
  | { ev: 'clientFail'; connectionId: bigint; code: number; reason: string }
  | { ev: 'commit'; caller: { identity: bigint; connectionId: bigint }; reducer: { id: number; name: string } | undefined;
    timestampMicros: bigint; durationMicros: number };

export type Frame = Reply | Event;

// ---- errors --------------------------------------------------------------------------------------------------------

export interface ErrorValue { name: string; message: string; props: Record<string, unknown>; cause?: ErrorValue }

/** The classes the server tells apart (instanceof: routes map them to HTTP codes); anything else arrives as Error. */
const errorClasses: Record<string, new (...args: never[]) => Error> = {
  PublishError, NoSuchReducerError, ReducerNotCallableError, BadArgumentsError, ConnectionRejectedError, DatabaseClosedError,
  DatabaseFailedError, UpdateRejectedError, SqlError, SatsError, MigrationError, CommitLogError, CommitLogCorruptError,
  CommitLogFailedError, PersistenceError, SubscriptionQueryError,
};

export function encodeError(err: unknown): ErrorValue {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), props: {} };
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) {
    if (k === 'cause' || k === 'name' || typeof v === 'function') continue;
    props[k] = v;
  }
  const out: ErrorValue = { name: err.name, message: err.message, props };
  if (err.cause instanceof Error) out.cause = encodeError(err.cause);
  return out;
}

/** The same class (by name) with the same message and fields; its constructor does not run (messages are final). */
export function decodeError(value: ErrorValue): Error {
  const cls = errorClasses[value.name];
  const err = Object.create((cls ?? Error).prototype) as Error;
  Object.defineProperty(err, 'message', { value: value.message, writable: true, configurable: true });
  Object.defineProperty(err, 'name', { value: value.name, writable: true, configurable: true });
  Object.defineProperty(err, 'stack', { value: `${value.name}: ${value.message}\n    (in the database's worker thread)`, writable: true, configurable: true });
  Object.assign(err, value.props);
  if (value.cause !== undefined) Object.defineProperty(err, 'cause', { value: decodeError(value.cause), writable: true, configurable: true });
  return err;
}

// ---- bytes ---------------------------------------------------------------------------------------------------------

/**
 * `value` with every byte array that views part of a larger buffer replaced by a tight copy: structured clone copies
 * a view's whole ArrayBuffer (a row cut from a 64 KiB page would cross as 64 KiB). Plain data only.
 */
export function tight<T>(value: T): T {
  return tightValue(value, 0) as T;
}

function tightValue(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object' || depth > 64) return v;
  if (v instanceof Uint8Array) return v.byteLength === v.buffer.byteLength && v.byteOffset === 0 ? v : Uint8Array.prototype.slice.call(v);
  if (ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const t = tightValue(v[i], depth + 1);
      if (t !== v[i]) (out ??= v.slice())[i] = t;
    }
    return out ?? v;
  }
  if (v instanceof Map) {
    const out = new Map();
    for (const [k, x] of v) out.set(k, tightValue(x, depth + 1));
    return out;
  }
  if (v instanceof Error) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = tightValue(x, depth + 1);
  return out;
}

// ---- durability ----------------------------------------------------------------------------------------------------

/**
 * Worker side: one sequence number per durability promise, in the order they are first seen (commits of one group
 * commit share one). A promise seen later stands for a point of the log at or after those seen before, so they are
 * reached in sequence order, which is what DurableTracker relies on.
 */
export class DurableSequencer {
  private readonly seqs = new WeakMap<Promise<unknown>, number>();
  private next = 1;
  constructor(private readonly settled: (seq: number, error: unknown | undefined) => void) {}

  /** 0 for nothing to wait for. */
  seqOf(durable: Promise<unknown> | undefined): number {
    if (durable === undefined) return 0;
    const known = this.seqs.get(durable);
    if (known !== undefined) return known;
    const seq = this.next++;
    this.seqs.set(durable, seq);
    durable.then(() => this.settled(seq, undefined), (e: unknown) => this.settled(seq, e ?? new Error('durability failed')));
    return seq;
  }
}

/** Main side: the promise a sequence number stands for. Durability is reached in sequence order. */
export class DurableTracker {
  private reachedSeq = 0;
  private readonly waiting = new Map<number, { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }>();
  private readonly failed = new Map<number, unknown>();

  promiseFor(seq: number): Promise<void> | undefined {
    if (seq === 0 || seq <= this.reachedSeq && !this.failed.has(seq)) return undefined;
    const error = this.failed.get(seq);
    if (error !== undefined) return Promise.reject(error);
    let w = this.waiting.get(seq);
    if (w === undefined) {
      let resolve!: () => void, reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => {});
      w = { promise, resolve, reject };
      this.waiting.set(seq, w);
    }
    return w.promise;
  }

  reached(seq: number): void {
    if (seq > this.reachedSeq) this.reachedSeq = seq;
    for (const [s, w] of this.waiting) {
      if (s <= seq && !this.failed.has(s)) { w.resolve(); this.waiting.delete(s); }
    }
  }

  fail(seq: number, error: unknown): void {
    this.failed.set(seq, error);
    if (this.failed.size > 1024) this.failed.delete(this.failed.keys().next().value as number);
    const w = this.waiting.get(seq);
    this.waiting.delete(seq);
    w?.reject(error);
  }

  /** The worker is gone: nothing it announced will become durable. */
  failAll(error: unknown): void {
    for (const [s, w] of this.waiting) { w.reject(error); this.waiting.delete(s); }
  }
}

// ---- the binary records --------------------------------------------------------------------------------------------

/**
 * What one side posts per event-loop turn: the record stream (null when the turn produced no binary record; then the
 * object frames follow one another) and the object frames in the order the stream's OBJECT records place them. A
 * frame structured clone refused is replaced by its substitute or null (replaceUncloneable), so the count holds.
 */
export type Batch<F> = [bytes: ArrayBuffer | null, ...frames: (F | null)[]];

// A stream is a u32 (its length in bytes) followed by records, each a u8 kind and its fields (little endian).
/** The next object frame of the batch. */
const recordObject = 1;
/** `callOrdered`: id f64, caller number u32, reducer name number u32 (nameInline: the name follows), args (bytes). */
const recordCall = 2;
/** Defines (or redefines) a caller number: u32, identity u256, connection id u128, JWT payload (u32 length + 1, 0: none). */
const recordCaller = 3;
/** The caller number is free (its connection ended). */
const recordCallerForget = 4;
/** Defines a reducer name number: u32, the name. */
const recordName = 5;
/**
 * `callOrdered`'s reply, sent the moment the call ran (right after its commit's events, before anything that follows
 * it): id f64, the durability sequence its reply waits for f64, the durable offset (u8 1 + u64, or u8 0), status u8
 * (resultStatuses), then committed: timestamp i64 and duration f64 (µs); failed or internal: the message.
 */
const recordResult = 6;
/**
 * A commit of a client's own call that changed none of the rows it subscribes to (every WebSocket call of a client
 * without a matching subscription): the `tx` event with no query sets, as client number u32 and seq f64.
 */
const recordCallerTx = 7;
const nameInline = 0xffff_ffff;
/**
 * Byte arrays at least this large in object frames go by transfer, not copy. Smaller ones may sit in Node's shared
 * Buffer pool (4 KiB slices of one 8 KiB ArrayBuffer), which must not be transferred; and copying them costs less.
 */
const transferableBytesMin = 64 * 1024;
/**
 * Bounds of a new stream's first buffer (it grows by doubling): a turn with one huge call must not make every later
 * turn allocate (and zero) that much.
 */
const streamCapacityBytesMin = 256;
const streamCapacityBytesMax = 64 * 1024;
/** A received stream larger than this (a turn of huge records) is not kept for reuse (Batcher.recycle). */
const streamRecycledBytesMax = 2 * streamCapacityBytesMax;
const resultStatuses = ['committed', 'failed', 'internal'] as const;

/** A `callOrdered` result as it crosses: the commit's TxData stays in the worker. */
export type CallResult =
  | Omit<Extract<ReducerCallResult, { status: 'committed' }>, 'txData'>
  | Exclude<ReducerCallResult, { status: 'committed' }>;

class RecordWriter {
  private bytes!: Buffer;
  private view!: DataView;
  private pos = 4;

  /** `reuse`: a buffer nobody else holds (see Batcher.recycle), written over instead of a new one when large enough. */
  constructor(capacityBytes: number, reuse: ArrayBuffer | undefined) { this.allocate(capacityBytes, reuse); }

  private allocate(capacityBytes: number, reuse: ArrayBuffer | undefined): void {
    const buffer = reuse !== undefined && reuse.byteLength >= capacityBytes ? reuse : new ArrayBuffer(capacityBytes);
    this.bytes = Buffer.from(buffer);
    this.view = new DataView(buffer);
  }

  private room(n: number): void {
    if (this.pos + n <= this.bytes.length) return;
    const written = this.bytes.subarray(0, this.pos);
    this.allocate(Math.max(this.bytes.length * 2, this.pos + n), undefined);
    this.bytes.set(written);
  }

  u8(v: number): void { this.room(1); this.view.setUint8(this.pos, v); this.pos += 1; }
  u32(v: number): void { this.room(4); this.view.setUint32(this.pos, v, true); this.pos += 4; }
  f64(v: number): void { this.room(8); this.view.setFloat64(this.pos, v, true); this.pos += 8; }
  u64(v: bigint): void { this.room(8); this.view.setBigUint64(this.pos, v, true); this.pos += 8; }
  /** An unsigned integer of `words` × 64 bits. */
  uint(v: bigint, words: number): void {
    assert(v >= 0n && v === BigInt.asUintN(64 * words, v), `${v} does not fit ${64 * words} bits`);
    for (let i = 0; i < words; i++) this.u64(BigInt.asUintN(64, v >> BigInt(64 * i)));
  }
  string(s: string): void {
    this.room(4 + s.length * 3);
    const n = this.bytes.write(s, this.pos + 4, 'utf8');
    this.view.setUint32(this.pos, n, true);
    this.pos += 4 + n;
  }
  byteArray(b: Uint8Array): void {
    this.room(4 + b.byteLength);
    this.view.setUint32(this.pos, b.byteLength, true);
    this.bytes.set(b, this.pos + 4);
    this.pos += 4 + b.byteLength;
  }
  /** The stream; the writer is done with it. */
  finish(): ArrayBuffer {
    this.view.setUint32(0, this.pos, true);
    return this.bytes.buffer as ArrayBuffer;
  }
  get lengthBytes(): number { return this.pos; }
}

class RecordReader {
  private readonly view: DataView;
  private readonly bytes: Buffer;
  pos = 4;
  readonly end: number;

  constructor(private readonly buffer: ArrayBuffer) {
    this.view = new DataView(buffer);
    this.bytes = Buffer.from(buffer);
    this.end = this.view.getUint32(0, true);
    assert(this.end >= 4 && this.end <= buffer.byteLength, 'a record stream says its own length');
  }

  u8(): number { return this.view.getUint8(this.pos++); }
  u32(): number { const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  f64(): number { const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64(): bigint { const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  uint(words: number): bigint {
    let v = 0n;
    for (let i = 0; i < words; i++) v |= this.u64() << BigInt(64 * i);
    return v;
  }
  string(): string {
    const n = this.u32();
    this.pos += n;
    return this.bytes.toString('utf8', this.pos - n, this.pos);
  }
  /** A view into the stream's buffer (the batch was transferred: nobody else holds it). */
  byteArray(): Uint8Array {
    const n = this.u32();
    this.pos += n;
    return new Uint8Array(this.buffer, this.pos - n, n);
  }
}

/** One side's frames of one turn: the object frames, and the record stream once a binary record was written. */
class Batcher<F> {
  private frames: Batch<F> = [null];
  /** Buffers of large byte arrays in object frames (object's `bytes`), transferred with the batch. */
  private transfers: ArrayBuffer[] = [];
  protected writer: RecordWriter | undefined;
  /** The last stream's size: the next one starts that large, so a steady load does not grow a buffer each turn. */
  private capacityBytes = streamCapacityBytesMin;
  /** A stream buffer the other side sent and this side has read, written over by the next stream (recycle). */
  private spare: ArrayBuffer | undefined;

  get empty(): boolean { return this.frames.length === 1 && this.writer === undefined; }

  /**
   * `bytes`: a large byte array the frame holds, whose buffer is transferred instead of copied (a /sql body or an
   * encoded answer of megabytes; see transferableBytesMin). The sender must not touch it afterwards.
   */
  object(frame: F, bytes?: Uint8Array): void {
    this.frames.push(frame);
    this.writer?.u8(recordObject);
    if (bytes !== undefined && bytes.byteLength >= transferableBytesMin && bytes.buffer.byteLength < 2 * bytes.byteLength &&
      !this.transfers.includes(bytes.buffer as ArrayBuffer)) this.transfers.push(bytes.buffer as ArrayBuffer);
  }

  /** The stream, started on the first binary record: the object frames before it get their OBJECT records. */
  protected records(): RecordWriter {
    if (this.writer !== undefined) return this.writer;
    const w = this.writer = new RecordWriter(this.capacityBytes, this.spare);
    this.spare = undefined;
    for (let i = 1; i < this.frames.length; i++) w.u8(recordObject);
    return w;
  }

  /**
   * `buffer` (a record stream the other side transferred here) was read and no view of it is kept: the next stream is
   * written into it instead of a new ArrayBuffer (main side: the worker's reply streams carry the requests back, so
   * the main thread allocates no stream per turn; each was up to 64 KiB, zeroed, 67–104 ms of the main thread's
   * samples per 10 s of general transfers in server-profile, ~20 ms after).
   */
  recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength >= streamCapacityBytesMin && buffer.byteLength <= streamRecycledBytesMax) this.spare = buffer;
  }

  /** The batch to post, and what postMessage transfers; the batcher starts the next one. */
  take(): { batch: Batch<F>; transfer: ArrayBuffer[] } {
    const batch = this.frames;
    this.frames = [null];
    const transfer = this.transfers;
    if (transfer.length > 0) this.transfers = [];
    if (this.writer === undefined) return { batch, transfer };
    this.capacityBytes = Math.min(Math.max(streamCapacityBytesMin, this.writer.lengthBytes), streamCapacityBytesMax);
    const bytes = batch[0] = this.writer.finish();
    this.writer = undefined;
    transfer.push(bytes);
    return { batch, transfer };
  }
}

/**
 * Replaces each object frame that structured clone refuses by `substitute(frame, error)` (null: left out), after
 * postMessage refused the whole batch; then the batch can be posted, every other frame in its place.
 */
export function replaceUncloneable<F>(batch: Batch<F>, substitute: (frame: F, error: Error) => F | null): void {
  for (let i = 1; i < batch.length; i++) {
    const frame = batch[i] as F | null;
    if (frame === null) continue;
    try {
      structuredClone(frame);
    } catch (err) {
      batch[i] = substitute(frame, err as Error);
    }
  }
}

interface CallerEntry { number: number; identity: bigint; connectionId: bigint; jwtPayload: string | undefined }

/**
 * Main side: the number each caller has in the stream, by connection id. A caller is defined once per connection
 * (again when its identity or JWT payload changes) and its number freed when the connection ends. The table holds at
 * most `workerCallersInternedMax` callers; past that, numbers are reused in turn (a reused caller is defined again).
 */
class CallerTable {
  /** The session passes the same Caller object with every call: found without hashing a bigint. */
  private readonly byObject = new WeakMap<Caller, CallerEntry>();
  private readonly byConnection = new Map<bigint, CallerEntry>();
  private readonly byNumber: (CallerEntry | undefined)[] = [];
  private readonly freeNumbers: number[] = [];
  private nextReused = 0;

  numberOf(caller: Caller, w: () => RecordWriter): number {
    const e = this.byObject.get(caller);
    if (e !== undefined && e.number >= 0 && same(e, caller)) return e.number;
    return this.define(caller, w);
  }

  private define(caller: Caller, w: () => RecordWriter): number {
    let e = this.byConnection.get(caller.connectionId);
    if (e === undefined) {
      e = { number: this.free(), identity: caller.identity, connectionId: caller.connectionId, jwtPayload: caller.jwtPayload };
      this.byConnection.set(caller.connectionId, e);
      this.byNumber[e.number] = e;
      writeCaller(w(), e);
    } else if (!same(e, caller)) {
      e.identity = caller.identity;
      e.jwtPayload = caller.jwtPayload;
      writeCaller(w(), e);
    }
    this.byObject.set(caller, e);
    return e.number;
  }

  private free(): number {
    const number = this.freeNumbers.pop();
    if (number !== undefined) return number;
    if (this.byNumber.length < workerCallersInternedMax) return this.byNumber.length;
    const reused = this.nextReused;
    this.nextReused = (reused + 1) % workerCallersInternedMax;
    const old = this.byNumber[reused]!;
    this.byConnection.delete(old.connectionId);
    old.number = -1;
    return reused;
  }

  /** The caller's connection ended; its number, or -1 when it had none. */
  forget(connectionId: bigint): number {
    const e = this.byConnection.get(connectionId);
    if (e === undefined) return -1;
    const number = e.number;
    this.byConnection.delete(connectionId);
    this.byNumber[number] = undefined;
    this.freeNumbers.push(number);
    e.number = -1;
    return number;
  }
}

function same(e: CallerEntry, caller: Caller): boolean {
  return e.connectionId === caller.connectionId && e.identity === caller.identity && e.jwtPayload === caller.jwtPayload;
}

function writeCaller(w: RecordWriter, e: CallerEntry): void {
  w.u8(recordCaller);
  w.u32(e.number);
  w.uint(e.identity, 4);
  w.uint(e.connectionId, 2);
  if (e.jwtPayload === undefined) w.u32(0);
  else {
    w.u32(1);
    w.string(e.jwtPayload);
  }
}

/**
 * Main side: the requests of one turn. `callOrdered` is a binary record naming its caller and reducer by number;
 * `internable(name)` says whether a name may take a number (the module's own reducers: a client's made-up names are
 * sent as text, so the table cannot grow with them), up to `workerReducerNamesInternedMax` names.
 */
export class RequestBatcher extends Batcher<Request> {
  private readonly callers = new CallerTable();
  private readonly names = new Map<string, number>();
  private readonly writerFn = () => this.records();

  constructor(private readonly internable: (name: string) => boolean) { super(); }

  call(id: number, name: string, args: Uint8Array, caller: Caller): void {
    const callerNumber = this.callers.numberOf(caller, this.writerFn);
    const nameNumber = this.nameNumber(name);
    const w = this.records();
    w.u8(recordCall);
    w.f64(id);
    w.u32(callerNumber);
    w.u32(nameNumber);
    if (nameNumber === nameInline) w.string(name);
    w.byteArray(args);
  }

  private nameNumber(name: string): number {
    const known = this.names.get(name);
    if (known !== undefined) return known;
    if (this.names.size >= workerReducerNamesInternedMax || !this.internable(name)) return nameInline;
    const number = this.names.size;
    this.names.set(name, number);
    const w = this.records();
    w.u8(recordName);
    w.u32(number);
    w.string(name);
    return number;
  }

  /** The connection ended: its caller's number is free, here and in the worker (which drops its JWT payload). */
  forgetCaller(connectionId: bigint): void {
    const number = this.callers.forget(connectionId);
    if (number < 0) return;
    const w = this.records();
    w.u8(recordCallerForget);
    w.u32(number);
  }
}

/** Worker side: reads one database's batches (one reader per database: its callers and names are numbered apart). */
export class RequestReader {
  private readonly callers: (Caller | undefined)[] = [];
  private readonly names: string[] = [];

  read(batch: Batch<Request>, onRequest: (request: Request) => void,
    onCall: (id: number, name: string, args: Uint8Array, caller: Caller) => void): void {
    readBatch(batch, onRequest, (kind, r) => {
      if (kind === recordCall) {
        const id = r.f64();
        const caller = this.callers[r.u32()];
        const nameNumber = r.u32();
        const name = nameNumber === nameInline ? r.string() : this.names[nameNumber];
        assert(caller !== undefined && name !== undefined, 'a call names a caller and a reducer defined before it');
        onCall(id, name, r.byteArray(), caller);
      } else if (kind === recordCaller) {
        const number = r.u32();
        // A new object: calls already read keep the caller they were made with.
        this.callers[number] = { identity: r.uint(4), connectionId: r.uint(2), jwtPayload: r.u32() === 0 ? undefined : r.string() };
      } else if (kind === recordCallerForget) {
        this.callers[r.u32()] = undefined;
      } else if (kind === recordName) {
        const number = r.u32();
        this.names[number] = r.string();
      } else {
        assert.fail(`unknown request record ${kind}`);
      }
    });
  }
}

/** Worker side: the frames of one turn; a `callOrdered` reply and a caller's empty `tx` are binary records. */
export class ReplyBatcher extends Batcher<Frame> {
  callerTx(client: number, seq: number): void {
    const w = this.records();
    w.u8(recordCallerTx);
    w.u32(client);
    w.f64(seq);
  }

  callResult(id: number, result: CallResult, seq: number, offset: bigint | undefined): void {
    const w = this.records();
    w.u8(recordResult);
    w.f64(id);
    w.f64(seq);
    if (offset === undefined) w.u8(0);
    else {
      w.u8(1);
      w.u64(offset);
    }
    if (result.status === 'committed') {
      w.u8(0);
      w.u64(BigInt.asUintN(64, result.timestampMicros));
      w.f64(result.durationMicros);
    } else {
      w.u8(result.status === 'failed' ? 1 : 2);
      w.string(result.message);
    }
  }
}

/** Main side: where the worker's frames go. */
export interface ReplyHandlers {
  frame(frame: Frame): void;
  /** A `callOrdered` reply. */
  result(id: number, result: CallResult, seq: number, offset: bigint | undefined): void;
  /** A `tx` event of the client numbered `client` (subAdd) for its own call, with no query sets. */
  callerTx(client: number, seq: number): void;
}

/**
 * Main side: the worker's frames of one batch, in order. Every value is copied out of the record stream (numbers,
 * strings), so `reuse` may write its next request stream over it afterwards (Batcher.recycle).
 */
export function readReplies(batch: Batch<Frame>, handlers: ReplyHandlers, reuse?: RequestBatcher): void {
  readBatch(batch, (frame) => handlers.frame(frame), (kind, r) => {
    if (kind === recordCallerTx) {
      const client = r.u32();
      handlers.callerTx(client, r.f64());
    } else if (kind === recordResult) {
      const id = r.f64();
      const seq = r.f64();
      const offset = r.u8() === 1 ? r.u64() : undefined;
      const status = resultStatuses[r.u8()];
      const result: CallResult = status === 'committed'
        ? { status, timestampMicros: BigInt.asIntN(64, r.u64()), durationMicros: r.f64() }
        : { status, message: r.string() };
      handlers.result(id, result, seq, offset);
    } else {
      assert.fail(`unknown reply record ${kind}`);
    }
  });
  if (batch[0] !== null) reuse?.recycle(batch[0]);
}

/**
 * Walks one batch in stream order: each object frame (an OBJECT record's place; null: replaced, skipped) to
 * `onObject`, every other record to `onRecord`, which reads its fields from `r`. Both sides read batches with it.
 */
function readBatch<F>(batch: Batch<F>, onObject: (frame: F) => void, onRecord: (kind: number, r: RecordReader) => void): void {
  const bytes = batch[0];
  let next = 1;
  if (bytes === null) {
    for (; next < batch.length; next++) if (batch[next] !== null) onObject(batch[next] as F);
    return;
  }
  const r = new RecordReader(bytes);
  while (r.pos < r.end) {
    const kind = r.u8();
    if (kind === recordObject) {
      const frame = batch[next++] as F | null;
      if (frame !== null) onObject(frame);
    } else {
      onRecord(kind, r);
    }
  }
  assert.equal(next, batch.length, 'every object frame of a batch has its place in the stream');
}
