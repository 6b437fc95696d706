// host/worker/protocol.ts — the frames between the main thread and a database's worker (engine-v2 step 3).
//
// Owns: the request, reply and event shapes, the one codec both sides use (errors as typed values rebuilt as the
// same classes; byte arrays copied tight so that nothing shared by reference crosses), and the durability tracker
// (commit promises become sequence numbers in the worker and promises again on the main thread).
// May call: host/errors.ts and the other modules whose error classes cross (recovery, update, sql, sats, durability).
//
// Transport: postMessage for now. Every frame is a plain object: `{id, op, …}` for a request, `{id, ok, value |
// error}` for its reply, `{ev, …}` for an event. Both sides post arrays of frames (everything one event-loop turn
// produced) in the order they produced them, so each side sees the other's frames in order. Nothing is shared
// by reference, so a ring of binary frames (engine-v2 step 4) can replace the transport without changing a side.

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
import type { Caller, DatabaseMetricsSnapshot } from '../database.js';
import type { LogRecord } from '../module-log.js';
import type { QuerySetUpdate, ServerMessage } from '../../subscription/messages.js';

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
  | { op: 'serveHttp'; method: string; path: string; uri: string; headers: [string, string][]; body: Uint8Array }
  | { op: 'planUpdate'; program: string }
  | { op: 'update'; program: string; breakClients: boolean; publisher: bigint | undefined }
  | { op: 'metrics' }
  | { op: 'commitEvents'; on: boolean }
  | { op: 'subAdd'; connectionId: bigint; identity: bigint; isOwner: boolean; shared: boolean }
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
 * The reply to `callOrdered`, sent the moment the call ran (right after its commit's events, before anything that
 * follows it): its result and the durability sequence its reply waits for.
 */
export interface OrderedCallValue { result: unknown; seq: number }

/** A subscription answer: the message and the durability sequence of the last commit it saw (0: durable). */
export interface AnswerValue { message: ServerMessage; seq: number }

export type Event =
  | { ev: 'log'; record: LogRecord }
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
