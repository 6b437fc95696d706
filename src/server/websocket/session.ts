// server/websocket/session.ts — one client WebSocket connection speaking the v2/v3 BSATN protocol.
//
// Owns: the connection lifecycle (client_connected → InitialConnection → messages in order → on close drop
// subscriptions and client_disconnected), the ordered outbound queue (slots filled at commit time, held until
// durable when reads are confirmed; a caller's ReducerResult always until its commit is durable), server framing
// (compression tag byte, gzip/brotli above 1 KiB, v3 coalescing up to 512 KiB, small WebSocket frames written to the
// socket by us — see writeMessages), backpressure (bounded writes that wait for the socket to drain; large messages
// as WebSocket fragments), keepalive (ping every 15 s, idle close after 30 s) and the per-connection limits.
// Does not own: the upgrade/route/auth handshake (attach.ts), message codecs and subscriptions (subscription/).
// May call: subscription/messages.ts, subscription/manager.ts, subscription/port.ts, subscription/wire-frame.ts (the
// compression envelope), server/websocket/fanout.ts (durability waits and flush passes shared by all sessions),
// server/websocket/inbound-meter.ts (what its queue and its calls in a worker hold of the inbound budget),
// server/websocket/query-gate.ts (its address's queries in flight),
// sats/bsatn.ts, limits.ts, metrics/counters.ts (message counts), ws.
//
// Ordering: every outbound message takes a slot in one FIFO at the moment its content is decided (a
// TransactionUpdate or the caller's ReducerResult at commit time, a SubscribeApplied when its snapshot is taken),
// and frames go out strictly from the head. A slot that waits (durability, the reducer's final result) holds
// back everything after it, which is exactly upstream's head-of-line rule.
//
// Backpressure: a flush hands the socket at most `outboundSocketBufferedBytesMax` and then waits for it to drain (or,
// when the flush pass's `outboundSocketWriteBytesPerTurnMax` ran out first, for the next pass, fanout.ts); a
// wire message above `outboundFragmentBytes` goes out as fragments of one WebSocket message (the client still sees one
// message), so a 70 MiB SubscribeApplied streams to a fast reader instead of landing in the socket's buffer at once.
// A client is too slow when nothing of what its socket holds is read for `outboundStallTimeoutMs`, or when
// what waits for it beyond its largest single message exceeds `outboundQueueMaxBytes` (it reads, but slower than its
// updates arrive). Either closes it with 1008; the server's memory for one client is bounded by the two.

import assert from 'node:assert/strict';
import type { WebSocket, RawData } from 'ws';
import { BsatnWriter } from '../../sats/bsatn.js';
import type { ClientHandle, ClientSink } from '../../subscription/manager.js';
import { binaryAnswer, type PortAnswer, type PortSource, type SubscriptionPort } from '../../subscription/port.js';
import {
  compressionTag, compressionThresholdBytes, frame, type Compression, type FramedAnswer,
} from '../../subscription/wire-frame.js';
import {
  decodeClientFrameInto, writeServerMessage, type ClientMessage, type QuerySetUpdate, type ServerMessage,
} from '../../subscription/messages.js';
import { webSocketCounters } from '../../metrics/counters.js';
import { onFlushPassEnd, queueFlush, releaseWhenDurable, type DurableSlot, type FlushTarget } from './fanout.js';
import type { InboundMeter } from './inbound-meter.js';
import { GatePlaces, type QueryGate } from './query-gate.js';
import {
  outboundFragmentBytes, outboundQueueMaxBytes, outboundSocketBufferedBytesMax, outboundStallTimeoutMs, queryMessagesSliceMs,
  queriesInFlightPerConnectionMax, workerCallsInFlightPerConnectionMax,
} from '../../limits.js';

export { outboundQueueMaxBytes };

/** v3: queued messages are coalesced into one frame until the body would exceed this. */
export const frameCoalesceMaxBytes = 512 * 1024;
/** Largest inbound WebSocket message (ws closes with 1009 above it). */
export const inboundMessageMaxBytes = 32 * 1024 * 1024;
/** Client messages waiting to be processed before the connection is closed with 1013. */
export const inboundQueueMaxMessages = 16384;
export const pingIntervalMs = 15_000;
export const idleTimeoutMs = 30_000;
/** After sending a close frame, how long to wait for the client's before dropping the socket. */
export const closeGraceMs = 250;
/** WebSocket close reasons are limited to 123 bytes of UTF-8. */
const closeReasonMaxBytes = 123;

export const closeCodes = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
} as const;

/** The per-connection limits that tests (and operators) may lower; defaults are the constants above. */
export interface SessionLimits {
  outboundQueueMaxBytes: number;
  outboundStallTimeoutMs: number;
  pingIntervalMs: number;
  idleTimeoutMs: number;
}
const defaultLimits: SessionLimits = { outboundQueueMaxBytes, outboundStallTimeoutMs, pingIntervalMs, idleTimeoutMs };

export type { Compression } from '../../subscription/wire-frame.js';

export interface Caller { identity: bigint; connectionId: bigint; jwtPayload: string | undefined }

export type ReducerCallResult =
  | { status: 'committed'; timestampMicros: bigint; durationMicros?: number }
  | { status: 'failed'; message: string }
  | { status: 'internal'; message: string };

export type ProcedureCallResult =
  | { status: 'returned'; value: Uint8Array; timestampMicros: bigint; durationMicros: bigint }
  | { status: 'internal'; message: string };

/**
 * What a session needs from a database (server/host-api.ts HostedDatabase satisfies it). Subscriptions go through
 * the port attach.ts gets for it (subscription/port.ts): the database's own, or one over an in-thread manager fed by
 * its commits (then it is a subscription/manager.ts CommitSource too).
 */
export interface SessionDatabase extends PortSource {
  readonly identity: bigint;
  readonly ownerIdentity: bigint;
  callReducer(name: string, args: Uint8Array, caller: Caller): Promise<ReducerCallResult>;
  /**
   * Optional promise-free form (host/database.ts `callReducerNow`): runs the call at once and returns its result
   * with what its reply must wait for, or undefined when the call cannot run now; throws what callReducer rejects.
   */
  callReducerNow?(name: string, args: Uint8Array, caller: Caller):
    { result: ReducerCallResult; durable: Promise<unknown> | undefined } | undefined;
  /** A database in a worker (host/worker/proxy.ts): `call.ran` as soon as the call ran there (callReducerOrdered). */
  callReducerOrdered?(name: string, args: Uint8Array, caller: Caller,
    call: { ran(result: ReducerCallResult, durable: Promise<unknown> | undefined): void }): void;
  callProcedure?(name: string, args: Uint8Array, caller: Caller): Promise<ProcedureCallResult>;
  clientConnected(caller: Caller): Promise<void>;
  clientDisconnected(caller: Caller): Promise<void>;
}

export interface SessionOptions {
  caller: Caller;
  /** Token sent back in InitialConnection (the one received, or the freshly minted one). */
  token: string;
  version: 2 | 3;
  compression: Compression;
  /** Hold results until their transaction is durable. */
  confirmedReads: boolean;
  limits?: Partial<SessionLimits>;
  /** For logs and tests. */
  onError?: (error: unknown) => void;
  /** This connection's share of the server's inbound budget (attach.ts); none in tests that build sessions alone. */
  inbound?: InboundMeter;
  /** Called whenever what waits for this client changed: charges the server's outbound bound (attach.ts). */
  outbound?: () => void;
  /** The gate of this connection's address at its database (query-gate.ts); none for the owner's and in tests. */
  queryGate?: () => QueryGate;
}

/**
 * One outbound message position. `framed` is set when the content is known: byte 0 is reserved for the frame's
 * compression tag (0 here) and the message follows, so a lone uncompressed message is sent without copying; an answer
 * that arrived as a wire frame (`wireFrames`) holds its real tag and is sent as it is.
 * `ready` once it may be sent. Framed bytes may be shared between sessions (manager's sharedTransaction): never
 * mutate them.
 */
interface Slot extends DurableSlot { framed: Uint8Array | undefined }

/** A reducer call waiting for its commit (to place its result) and then its final outcome. */
interface InflightReducer { requestId: number; slot: Slot | undefined; querySets: QuerySetUpdate[] }

/**
 * A call handed to the database's worker (Session.callReducerOrdered): its InflightReducer and what the worker's
 * answer needs, in one object whose `ran` the proxy calls (no closure per call).
 */
class OrderedReducer implements InflightReducer {
  slot: Slot | undefined = undefined;
  querySets: QuerySetUpdate[] = noQuerySets;
  constructor(readonly requestId: number, private readonly session: Session, readonly inboundBytes: number) {}
  ran(result: ReducerCallResult, durable: Promise<unknown> | undefined): void { this.session.orderedRan(this, result, durable); }
}

const writerInitialBytes = 64 * 1024;
/** Messages above this size keep the writer's buffer instead of being copied out of it (snapshots: megabytes). */
const writerHandOffMinBytes = 1024 * 1024;
let sharedWriter = new BsatnWriter(writerInitialBytes);

/** Shared, never mutated: a reducer's reply with no return value and no subscribed changes allocates neither. */
const noQuerySets: QuerySetUpdate[] = [];
const noBytes = new Uint8Array(0);

/**
 * Answers that arrived as final wire messages (FramedAnswer.wire: compressed where they were decided): sent alone
 * and as they are. Keyed by the bytes, which a Slot holds.
 */
const wireFrames = new WeakSet<Uint8Array>();

/** The message with a placeholder compression tag byte in front (see Slot). */
function encode(msg: ServerMessage): Uint8Array {
  sharedWriter.reset();
  sharedWriter.writeU8(compressionTag.None);
  writeServerMessage(sharedWriter, msg);
  if (sharedWriter.lengthBytes < writerHandOffMinBytes) {
    // Copied into a Buffer: below 4 KiB a slice of Node's shared pool, not an ArrayBuffer of its own (finish()'s slice
    // made one per reply: ~200 B of the main thread's ~1.9 KB of garbage per keynote transfer).
    const written = sharedWriter.written();
    const out = Buffer.allocUnsafe(written.length);
    out.set(written);
    return out;
  }
  // Hand the big buffer over (the view stays valid because the writer is never touched again) and start afresh.
  const out = sharedWriter.written();
  sharedWriter = new BsatnWriter(writerInitialBytes);
  return out;
}

/** The caller's ReducerResult (framed, see Slot). A refusal carries the time it was answered. */
function encodeReducerResult(requestId: number, result: ReducerCallResult, querySets: QuerySetUpdate[]): Uint8Array {
  if (result.status === 'committed') {
    return encode({
      tag: 'ReducerResult', requestId, timestampMicros: result.timestampMicros,
      outcome: { tag: 'Ok', retValue: noBytes, transactionUpdate: querySets },
    });
  }
  const timestampMicros = BigInt(Date.now()) * 1000n;
  const outcome = result.status === 'failed'
    ? { tag: 'Err' as const, message: result.message }
    : { tag: 'InternalError' as const, message: result.message };
  return encode({ tag: 'ReducerResult', requestId, timestampMicros, outcome });
}

/** host/errors.ts ConnectionRejectedError's name: client_connected refused the client (compared by name, not imported). */
const connectionRejectedErrorName = 'ConnectionRejectedError';

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class Session implements ClientSink, FlushTarget {
  private readonly outbound: Slot[] = [];
  /** Bytes waiting for this client and not yet handed to the socket: queued slots, wire backlog, stream remainder. */
  private outboundBytes = 0;
  /** The largest single message among those waiting since nothing last waited (exempt from the queue limit). */
  private outboundLargestBytes = 0;
  /** Wire messages framed in a flush that wait behind a stream (they are sent before any slot). */
  private readonly wireBacklog: Uint8Array[] = [];
  /** The wire message going out as fragments, and how much of it is written. */
  private stream: { data: Uint8Array; offsetBytes: number } | undefined;
  /** What this flush may still write of its pass's bytes (fanout.ts), for a stream's fragments. */
  private turnBytesLeft = 0;
  /** Set while flushes wait for the socket's 'drain' (it holds `outboundSocketBufferedBytesMax`). */
  private drainWait = false;
  private drainListening = false;
  /** Bytes handed to the socket so far, WebSocket frame headers included (see stallCheck). */
  private handedBytes = 0;
  /** Armed while the socket holds unsent bytes: how much the kernel had taken when it was armed. */
  private stallCheck: { timer: NodeJS.Timeout; takenBytes: number } | undefined;
  /** Owned by fanout.ts: true while this session is on the next flush pass. */
  flushQueued = false;
  private readonly inbound: ClientMessage[] = [];
  private processing = false;
  private inflight: InflightReducer | undefined;
  /** Calls sent to the database's worker and not yet run there, oldest first (callReducerOrdered). */
  private readonly ordered: OrderedReducer[] = [];
  /** Resumes the inbound loop once fewer than workerCallsInFlightPerConnectionMax calls wait in the worker. */
  private orderedRoom: (() => void) | undefined;
  private handle: ClientHandle | undefined;
  private closed = false;
  private connected = false;
  private lastReceivedMs = Date.now();
  private awaitingPong = false;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly limits: SessionLimits;

  constructor(
    private readonly ws: WebSocket,
    private readonly db: SessionDatabase,
    private readonly subscriptions: SubscriptionPort,
    private readonly options: SessionOptions,
  ) {
    this.limits = { ...defaultLimits, ...options.limits };
    this.gatePlaces = options.queryGate === undefined ? undefined : new GatePlaces(options.queryGate);
  }

  /** Subscribe, Unsubscribe and OneOffQuery messages handed to the subscriptions port and not yet answered. */
  private queriesInFlight = 0;
  /** Resumes processInbound once a query was answered, when it waited at `queriesInFlightPerConnectionMax`. */
  private queryRoom: (() => void) | undefined;

  /** Its places at its address's query gate (query-gate.ts); none for the owner's connections and in tests. */
  private readonly gatePlaces: GatePlaces | undefined;

  /** A subscription answer takes its slot when it is decided (synchronously in-thread; on the worker's reply). */
  private readonly answered: PortAnswer = (msg, durable) => {
    this.queriesInFlight--;
    this.gatePlaces?.answered();
    const room = this.queryRoom;
    if (room !== undefined) {
      this.queryRoom = undefined;
      room();
    }
    if (!this.closed) this.pushConfirmed(binaryAnswer(msg), durable);
  };

  get connectionId(): bigint { return this.options.caller.connectionId; }

  /**
   * Starts the session: listeners first (the SDK sends before it sees InitialConnection), then client_connected.
   * Whatever goes wrong while serving this connection closes it (1011) and is logged; it never reaches the process.
   */
  start(): void {
    const ws = this.ws;
    ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(data, isBinary);
      } catch (e) {
        this.failInternal(e);
      }
    });
    ws.on('pong', () => { this.lastReceivedMs = Date.now(); this.awaitingPong = false; });
    ws.on('close', () => this.closeContained());
    ws.on('error', (e) => this.options.onError?.(e));
    this.connect().catch((e: unknown) => this.failInternal(e));
  }

  private async connect(): Promise<void> {
    const admitted = await admitClient(this.db, this.options.caller, this.ws, this.options.onError,
      () => { this.closed = true; }, (e) => this.failInternal(e));
    if (!admitted) return;
    if (this.closed) {
      await this.runDisconnected();
      return;
    }
    this.connected = true;
    const { caller, token } = this.options;
    this.push(encode({ tag: 'InitialConnection', identity: caller.identity, connectionId: caller.connectionId, token }));
    this.handle = this.subscriptions.addClient(
      { identity: caller.identity, connectionId: caller.connectionId, isOwner: caller.identity === this.db.ownerIdentity },
      this, this.options.compression,
    );
    this.pingTimer = setInterval(() => this.keepalive(), this.limits.pingIntervalMs);
    this.pingTimer.unref();
    this.processInbound();
  }

  // ---- inbound

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    this.lastReceivedMs = Date.now();
    if (!isBinary) {
      this.fail(closeCodes.internalError, 'text frames are not supported by the v2/v3 binary protocol');
      return;
    }
    const frame = toBytes(data);
    try {
      const queuedBefore = this.inbound.length;
      decodeClientFrameInto(frame, this.options.version, this.inbound, inboundQueueMaxMessages); // all, or none
      webSocketCounters.messagesIn += this.inbound.length - queuedBefore; webSocketCounters.bytesIn += frame.length;
      if (this.options.inbound !== undefined) {
        let bytes = 0;
        for (let i = queuedBefore; i < this.inbound.length; i++) bytes += clientMessageBytes(this.inbound[i]!);
        this.options.inbound.queued(bytes, this.inbound.length - queuedBefore);
      }
    } catch (e) {
      this.fail(closeCodes.internalError, errorText(e));
      return;
    }
    if (this.inbound.length > inboundQueueMaxMessages) {
      this.fail(closeCodes.tryAgainLater, `too many requests: more than ${inboundQueueMaxMessages} queued messages`);
      return;
    }
    if (this.connected) this.processInbound();
  }

  /**
   * Processes queued client messages one at a time, in arrival order. A pipelined call (or a subscription message)
   * finishes synchronously: no promise, no microtask hop; a message that must be waited for suspends the loop
   * (`processing` stays set) until resumeAfter picks it up again.
   */
  private processInbound(): void {
    if (this.processing) return;
    this.processing = true;
    let sliceStartMs = -1;
    try {
      while (!this.closed && this.inbound.length > 0) {
        const m = this.inbound[0]!;
        if (isQueryMessage(m) && this.gatePlaces?.take() === false) { // its address has queriesInFlightPerAddressMax here
          void this.resumeAfter(this.gatePlaces.wait());
          return;
        }
        this.inbound.shift();
        if (sliceStartMs < 0 && m.tag !== 'CallReducer') sliceStartMs = performance.now();
        const wait = this.handleMessage(m);
        // A call sent to its database's worker is held there until it ran (callReducerOrdered releases it).
        if (m.tag !== 'CallReducer' || this.db.callReducerOrdered === undefined) this.options.inbound?.handled(clientMessageBytes(m));
        if (wait !== undefined) {
          void this.resumeAfter(wait);
          return;
        }
        // Queries run synchronously, each within the SQL budget; a frame of them must not hold the thread for all.
        if (sliceStartMs >= 0 && this.inbound.length > 0 && performance.now() - sliceStartMs > queryMessagesSliceMs) {
          void this.resumeAfter(afterPendingIo());
          return;
        }
      }
    } catch (e) {
      this.failInternal(e);
    }
    this.processing = false;
  }

  private async resumeAfter(wait: Promise<void>): Promise<void> {
    try {
      await wait;
    } catch (e) {
      this.failInternal(e);
    }
    this.processing = false;
    if (!this.closed) this.processInbound();
  }

  /** A bug on our side while serving this client: log it and close with 1011. Also called by fanout.ts. */
  failInternal(e: unknown): void {
    this.options.onError?.(e);
    this.fail(closeCodes.internalError, `internal error: ${errorText(e)}`);
  }

  private handleMessage(m: ClientMessage): Promise<void> | undefined {
    const subs = this.subscriptions;
    const handle = this.handle!;
    switch (m.tag) {
      case 'Subscribe':
        this.queriesInFlight++;
        subs.subscribe(handle, m.requestId, m.querySetId, m.queryStrings, this.answered);
        return this.roomForQueries();
      case 'Unsubscribe':
        this.queriesInFlight++;
        subs.unsubscribe(handle, m.requestId, m.querySetId, m.sendDroppedRows, this.answered);
        return this.roomForQueries();
      case 'OneOffQuery':
        this.queriesInFlight++;
        subs.oneOffQuery(handle, m.requestId, m.queryString, this.answered);
        return this.roomForQueries();
      case 'CallReducer':
        return this.callReducer(m.requestId, m.reducer, m.args);
      case 'CallProcedure':
        return this.callProcedure(m.requestId, m.procedure, m.args);
    }
  }

  /**
   * A database in a worker answers queries later: past `queriesInFlightPerConnectionMax` the next message waits for an
   * answer (and the socket for the queue to shrink), so a client sending queries in a loop cannot pile them up in the
   * worker's queue (160,000 one-off queries in 4 s grew the server by 700 MiB, none answered meanwhile).
   */
  private roomForQueries(): Promise<void> | undefined {
    if (this.queriesInFlight < queriesInFlightPerConnectionMax) return undefined;
    return new Promise<void>((resolve) => { this.queryRoom = resolve; });
  }

  /**
   * Starts a reducer call. The database runs it synchronously and its reply waits for durability; the reply's slot
   * is taken at commit time (transaction() below) or, for a call that committed nothing, when it returns, so the
   * next message starts at once and one connection's pipelined calls share a group commit instead of paying one
   * fsync each. With `callReducerNow` the reply is encoded at once and released by fanout.ts's one reaction per
   * group commit: no promise, closure or retained result per call. A call the database could not run at once
   * (another call running) takes the promise path and is awaited before the next message, as before.
   */
  private callReducer(requestId: number, name: string, args: Uint8Array): Promise<void> | undefined {
    if (this.db.callReducerOrdered !== undefined) return this.callReducerOrdered(requestId, name, args);
    assert.equal(this.inflight, undefined, 'one reducer call at a time per connection');
    const inflight: InflightReducer = { requestId, slot: undefined, querySets: noQuerySets };
    this.inflight = inflight;
    const db = this.db;
    if (db.callReducerNow !== undefined) {
      let now: { result: ReducerCallResult; durable: Promise<unknown> | undefined } | undefined;
      try {
        now = db.callReducerNow(name, args, this.options.caller);
      } catch (e) {
        now = { result: { status: 'internal', message: errorText(e) }, durable: undefined };
      }
      if (now !== undefined) {
        this.inflight = undefined;
        this.replyGuarded(inflight, now.result, now.durable);
        return undefined;
      }
    }
    let pending: Promise<ReducerCallResult>;
    try {
      pending = db.callReducer(name, args, this.options.caller);
    } catch (e) {
      pending = Promise.reject(e);
    }
    // Never rejects: replyGuarded turns its own failure into a closed connection. The promise settles only once
    // the call's commits are durable, so the reply is ready when it settles.
    const finished = pending.then(
      (result) => this.replyGuarded(inflight, result, undefined),
      (e) => this.replyGuarded(inflight, { status: 'internal', message: errorText(e) }, undefined));
    if (inflight.slot !== undefined) {
      this.inflight = undefined;
      return undefined;
    }
    return this.awaitUnpipelined(finished);
  }

  /**
   * A call to a database in a worker (host/worker/): sent without waiting for the previous reply, so one connection's
   * calls still share group commits. The worker runs this connection's calls in order and answers each the moment it
   * ran, right after the events of its commit: so the head of `ordered` is the call whose commit transaction() sees,
   * and its reply fills the slot that commit reserved, exactly as callReducerNow's does in-thread. At most
   * workerCallsInFlightPerConnectionMax wait in the worker; the next message waits for room.
   */
  private callReducerOrdered(requestId: number, name: string, args: Uint8Array): Promise<void> | undefined {
    const call = new OrderedReducer(requestId, this, callBytes(name, args));
    this.ordered.push(call);
    this.db.callReducerOrdered!(name, args, this.options.caller, call);
    if (this.ordered.length < workerCallsInFlightPerConnectionMax) return undefined;
    return new Promise<void>((resolve) => { this.orderedRoom = resolve; });
  }

  /** OrderedReducer.ran: the worker ran the call (they run in order, so it is almost always the oldest). */
  orderedRan(call: OrderedReducer, result: ReducerCallResult, durable: Promise<unknown> | undefined): void {
    this.options.inbound?.handled(call.inboundBytes);
    const at = this.ordered.indexOf(call);
    if (at === 0) this.ordered.shift();
    else if (at > 0) this.ordered.splice(at, 1);
    this.replyGuarded(call, result, durable);
    const room = this.orderedRoom;
    if (room !== undefined && this.ordered.length < workerCallsInFlightPerConnectionMax) {
      this.orderedRoom = undefined;
      room();
    }
  }

  /** A call that did not commit synchronously: the next message waits for its reply (see callReducer). */
  private async awaitUnpipelined(finished: Promise<void>): Promise<void> {
    try {
      await finished;
    } finally {
      this.inflight = undefined;
    }
  }

  private replyGuarded(inflight: InflightReducer, result: ReducerCallResult, durable: Promise<unknown> | undefined): void {
    try {
      this.reply(inflight, result, durable);
    } catch (e) {
      this.failInternal(e);
    }
  }

  /**
   * Puts the call's ReducerResult into its slot (the one its commit reserved, else a new one at the tail) and
   * releases it once `durable` resolves. The caller's reply always waits for its commit, whatever confirmedReads.
   */
  private reply(inflight: InflightReducer, result: ReducerCallResult, durable: Promise<unknown> | undefined): void {
    if (this.closed) return;
    const msg = encodeReducerResult(inflight.requestId, result, inflight.querySets);
    let slot = inflight.slot;
    if (slot === undefined) {
      slot = { framed: msg, ready: false, owner: this };
      this.outbound.push(slot);
    } else {
      slot.framed = msg;
    }
    this.queued(msg.length);
    releaseWhenDurable(slot, durable);
    // Not a committed reply, yet a commit made for this caller while it ran (an immediate reducer it scheduled)
    // took the slot: its changes still go out, after the reply.
    if (result.status !== 'committed' && inflight.querySets.length > 0) {
      this.queueFramed(encode({ tag: 'TransactionUpdate', querySets: inflight.querySets }), durable);
    }
    this.checkOutboundLimit();
  }

  private async callProcedure(requestId: number, name: string, args: Uint8Array): Promise<void> {
    let result: ProcedureCallResult;
    if (this.db.callProcedure === undefined) {
      result = { status: 'internal', message: `no such procedure: ${name}` };
    } else {
      try {
        result = await this.db.callProcedure(name, args, this.options.caller);
      } catch (e) {
        result = { status: 'internal', message: errorText(e) };
      }
    }
    if (this.closed) return;
    this.push(encode(result.status === 'returned'
      ? { tag: 'ProcedureResult', status: { tag: 'Returned', value: result.value }, timestampMicros: result.timestampMicros, durationMicros: result.durationMicros, requestId }
      : { tag: 'ProcedureResult', status: { tag: 'InternalError', message: result.message }, timestampMicros: 0n, durationMicros: 0n, requestId }));
  }

  // ---- ClientSink (called synchronously by the subscription manager at commit time)

  transaction(querySets: QuerySetUpdate[], isCaller: boolean, durable: Promise<unknown> | undefined): void {
    if (this.closed) return;
    const inflight = this.ordered.length > 0 ? this.ordered[0] : this.inflight;
    if (isCaller && inflight !== undefined && inflight.slot === undefined) {
      // Reserve the caller's ReducerResult position now; its bytes come when callReducer returns.
      inflight.querySets = querySets;
      const slot: Slot = { framed: undefined, ready: false, owner: this };
      inflight.slot = slot;
      this.outbound.push(slot);
      return; // released by reply(), which knows the durability the reply waits for
    }
    if (querySets.length === 0) return;
    this.pushConfirmed({ tag: 'TransactionUpdate', querySets }, durable);
  }

  sharedTransaction(frame: Buffer, durable: Promise<unknown> | undefined): void {
    if (this.closed) return;
    this.queueFramed(frame, durable);
  }

  querySetFailed(querySetId: number, error: string): void {
    if (this.closed) return;
    this.push(encode({ tag: 'SubscriptionError', requestId: undefined, querySetId, error }));
  }

  // ---- outbound

  private push(framed: Uint8Array): void {
    this.outbound.push({ framed, ready: true, owner: this });
    this.queued(framed.length);
    this.checkOutboundLimit();
    this.scheduleFlush();
  }

  /** Queues a message derived from committed state; with confirmed reads it waits for `durable`. */
  private pushConfirmed(msg: ServerMessage | FramedAnswer, durable: Promise<unknown> | undefined): void {
    if (!('bytes' in msg)) {
      this.queueFramed(encode(msg), durable);
      return;
    }
    if (msg.wire) wireFrames.add(msg.bytes);
    this.queueFramed(msg.bytes, durable);
  }

  private queueFramed(framed: Uint8Array, durable: Promise<unknown> | undefined): void {
    const slot: Slot = { framed, ready: false, owner: this };
    this.outbound.push(slot);
    this.queued(framed.length);
    this.checkOutboundLimit();
    this.whenDurable(slot, durable);
  }

  private whenDurable(slot: Slot, durable: Promise<unknown> | undefined): void {
    // fanout.ts: one promise reaction per commit for every session, one flush pass per turn for all of them.
    releaseWhenDurable(slot, this.options.confirmedReads ? durable : undefined);
  }

  private scheduleFlush(): void {
    if (!this.closed) queueFlush(this);
  }

  /** fanout.ts: the commit a held message waited for could not be made durable. */
  durabilityFailed(error: unknown): void {
    if (this.closed) return;
    this.options.onError?.(error);
    this.fail(closeCodes.internalError, `transaction could not be made durable: ${errorText(error)}`);
  }

  /** Counts `bytes` more waiting for this client. */
  private queued(bytes: number): void {
    this.outboundBytes += bytes;
    if (bytes > this.outboundLargestBytes) this.outboundLargestBytes = bytes;
  }

  /**
   * Sends what is ready from the head of the queue (v3: coalesced into frames ≤ 512 KiB), as much as the socket may
   * take now (`outboundSocketBufferedBytesMax`) and this turn's pass allows (`budgetBytes`, fanout.ts); the rest waits
   * for the socket to drain, or for the next pass when the socket had room. Returns the bytes handed to the socket.
   */
  flush(budgetBytes: number): number {
    if (this.closed || this.drainWait) return 0;
    const handedBefore = this.handedBytes;
    this.turnBytesLeft = budgetBytes;
    if (!this.sendBacklog()) {
      this.armStallCheck();
      return this.handedBytes - handedBefore;
    }
    const q = this.outbound;
    let budget = Math.min(outboundSocketBufferedBytesMax - this.ws.bufferedAmount, budgetBytes);
    let n = 0;
    while (budget > 0 && n < q.length && q[n].ready && q[n].framed !== undefined) budget -= q[n++].framed!.length;
    if (n > 0) {
      const ready: Uint8Array[] = new Array(n);
      for (let i = 0; i < n; i++) ready[i] = q[i].framed!;
      q.splice(0, n);
      // Corked, so whatever ws itself writes meanwhile (a large message) joins the same writev.
      const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
      socket?.cork();
      try {
        this.sendReady(ready);
      } finally {
        socket?.uncork();
      }
    }
    if (this.outboundBytes === 0) this.outboundLargestBytes = 0;
    const buffered = this.ws.bufferedAmount;
    if (this.stream !== undefined || (q.length > 0 && q[0].ready && q[0].framed !== undefined)) this.awaitRoom();
    if (buffered > 0) this.armStallCheck();
    this.checkOutboundLimit();
    return this.handedBytes - handedBefore;
  }

  /**
   * Stopped with more to send: waits for the socket to drain when it holds its budget, else (this turn's bytes were
   * spent, or the kernel took all of a full budget) goes on in the next flush pass.
   */
  private awaitRoom(): void {
    if (this.ws.bufferedAmount >= outboundSocketBufferedBytesMax) this.awaitDrain();
    else this.scheduleFlush();
  }

  /** Continues the stream, then the wire backlog; true when both are done (the queue may go next). */
  private sendBacklog(): boolean {
    if (this.stream !== undefined && !this.sendFragments()) {
      this.awaitRoom();
      return false;
    }
    if (this.wireBacklog.length === 0) return true;
    const backlog = this.wireBacklog.splice(0);
    for (const m of backlog) this.outboundBytes -= m.length;
    this.writeMessages(backlog, 0);
    if (this.stream === undefined) return true;
    this.awaitRoom();
    return false;
  }

  private sendReady(ready: Uint8Array[]): void {
    const compression = this.options.compression;
    const wire = wireScratch;
    let i = 0;
    while (i < ready.length) {
      let end = i + 1;
      let bodyBytes = ready[i].length - 1;
      if (this.options.version === 3 && !wireFrames.has(ready[i])) {
        while (end < ready.length && bodyBytes + ready[end].length - 1 <= frameCoalesceMaxBytes && !wireFrames.has(ready[end])) {
          bodyBytes += ready[end++].length - 1;
        }
      }
      this.outboundBytes -= bodyBytes + (end - i);
      webSocketCounters.messagesOut += end - i; webSocketCounters.bytesOut += bodyBytes;
      wire.push(frameOf(ready, i, end, compression));
      i = end;
    }
    try {
      this.writeMessages(wire, 0);
    } finally {
      wire.length = 0;
    }
  }

  /**
   * Sends `msgs[start..]`, each as one binary WebSocket message. Small ones are framed here, all into one buffer and
   * one socket write: through ws.send every message cost an options object, a Buffer view, a header Buffer, a
   * two-element array and two buffered socket writes (~0.6 KB of garbage per keynote reply). The bytes are exactly
   * ws's (server frames: FIN, opcode 2, unmasked, no RSV bits — permessage-deflate is off in attach.ts). Writing beside
   * ws is safe only while its sender is idle and the socket open (directSocket); otherwise, and for large messages
   * (no copy), ws.send. A message above `outboundFragmentBytes` starts a stream; what follows it waits in the backlog
   * if the stream cannot finish now.
   */
  private writeMessages(msgs: Uint8Array[], start: number): void {
    let i = start;
    while (i < msgs.length) {
      const socket = directSocket(this.ws);
      const m = msgs[i];
      if (m.length > outboundFragmentBytes) {
        i++;
        this.stream = { data: m, offsetBytes: 0 };
        this.outboundBytes += m.length;
        if (!this.sendFragments()) {
          for (; i < msgs.length; i++) {
            this.wireBacklog.push(msgs[i]);
            this.outboundBytes += msgs[i].length;
          }
          return;
        }
        continue;
      }
      if (socket === undefined || m.length > directFrameMaxBytes) {
        this.ws.send(m, sendOptions);
        this.handedBytes += wsFrameBytes(m.length);
        i++;
        continue;
      }
      let end = i;
      let total = 0;
      for (; end < msgs.length && msgs[end].length <= directFrameMaxBytes; end++) total += wsFrameBytes(msgs[end].length);
      socket.write(encodeWsFrames(msgs, i, end, total));
      this.handedBytes += total;
      i = end;
    }
  }

  /** Writes fragments of the stream while the socket has room and the turn bytes; true once its last one is written. */
  private sendFragments(): boolean {
    const stream = this.stream!;
    const data = stream.data;
    while (this.ws.bufferedAmount < outboundSocketBufferedBytesMax && this.turnBytesLeft > 0) {
      const from = stream.offsetBytes;
      const to = Math.min(from + outboundFragmentBytes, data.length);
      const fin = to === data.length;
      this.ws.send(data.subarray(from, to), fin ? sendOptions : fragmentOptions);
      this.handedBytes += wsFrameBytes(to - from);
      this.turnBytesLeft -= to - from;
      stream.offsetBytes = to;
      this.outboundBytes -= to - from;
      if (fin) {
        this.stream = undefined;
        return true;
      }
    }
    return false;
  }

  /** Stops writing until the socket drains (its 'drain' event, or a stall check that finds it below the budget). */
  private awaitDrain(): void {
    if (this.drainWait || this.closed) return;
    this.drainWait = true;
    if (!this.drainListening) {
      this.drainListening = true;
      (this.ws as unknown as { _socket?: { on(e: 'drain', f: () => void): void } })._socket?.on('drain', () => this.drained());
    }
  }

  private drained(): void {
    if (!this.drainWait) return;
    this.drainWait = false;
    queueFlush(this);
  }

  /**
   * Judges the client by what it reads over time: while the socket holds unsent bytes, every stall timeout the kernel
   * must have taken some of them (handed − still buffered grew); otherwise the client has read nothing for that long.
   */
  private armStallCheck(): void {
    if (this.stallCheck !== undefined || this.closed) return;
    const timeoutMs = this.limits.outboundStallTimeoutMs;
    const timer = setTimeout(() => {
      const check = this.stallCheck!;
      this.stallCheck = undefined;
      if (this.closed) return;
      const buffered = this.ws.bufferedAmount;
      if (buffered === 0) return;
      const takenBytes = this.handedBytes - buffered;
      if (takenBytes <= check.takenBytes) {
        this.fail(closeCodes.policyViolation, `client too slow: none of ${buffered} unsent bytes read for ${timeoutMs} ms`);
        return;
      }
      if (buffered < outboundSocketBufferedBytesMax) this.drained();
      this.armStallCheck();
    }, timeoutMs);
    timer.unref();
    this.stallCheck = { timer, takenBytes: this.handedBytes - this.ws.bufferedAmount };
  }

  /** A client that reads slower than its messages arrive must not make us buffer without bound. */
  private checkOutboundLimit(): void {
    const max = this.limits.outboundQueueMaxBytes;
    if (this.outboundBytes - this.outboundLargestBytes > max) {
      this.fail(closeCodes.policyViolation, `client too slow: more than ${max} bytes of unread messages`);
      return;
    }
    this.options.outbound?.();
  }

  /** Bytes queued for this client or in its socket's buffer: its share of the server's outbound bound. */
  outboundPendingBytes(): number {
    return this.closed ? 0 : this.outboundBytes + this.ws.bufferedAmount;
  }

  // ---- keepalive and closing

  private keepalive(): void {
    if (this.closed) return;
    const idleMs = this.limits.idleTimeoutMs;
    if (Date.now() - this.lastReceivedMs > idleMs) {
      this.fail(closeCodes.goingAway, `idle timeout: nothing received for ${idleMs} ms`);
      return;
    }
    if (this.awaitingPong) return;
    this.awaitingPong = true;
    this.ws.ping();
  }

  /** Closes with a code and reason; drops the socket if the client does not answer within the grace period. */
  fail(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.outbound.length = 0;
    this.inbound.length = 0;
    this.wireBacklog.length = 0;
    this.stream = undefined;
    this.outboundBytes = 0;
    this.ws.close(code, truncateReason(reason));
    setTimeout(() => this.ws.terminate(), closeGraceMs).unref();
    this.closeContained();
  }

  private disconnectedRun = false;

  /** onClose, with its failure logged instead of becoming an unhandled rejection. */
  private closeContained(): void {
    this.onClose().catch((e: unknown) => this.options.onError?.(e));
  }

  private async onClose(): Promise<void> {
    this.closed = true;
    this.gatePlaces?.release();
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.stallCheck !== undefined) clearTimeout(this.stallCheck.timer);
    this.stallCheck = undefined;
    if (!this.connected) return;
    await this.runDisconnected();
  }

  private async runDisconnected(): Promise<void> {
    if (this.disconnectedRun) return;
    this.disconnectedRun = true;
    await releaseClient(this.subscriptions, this.handle, this.db, this.options.caller, this.options.onError);
  }
}

/**
 * client_connected for a new session (session.ts and json-session.ts). A rejection by the module drops the socket
 * without a message, as upstream's (logged, `markClosed` first); any other failure is not the module's decision (e.g.
 * the database's log failed) and goes to `failInternal`, which says why in the close. Resolves whether the client is in.
 */
export async function admitClient(
  db: Pick<SessionDatabase, 'clientConnected'>, caller: Caller, ws: WebSocket, onError: ((e: unknown) => void) | undefined,
  markClosed: () => void, failInternal: (e: unknown) => void,
): Promise<boolean> {
  try {
    await db.clientConnected(caller);
    return true;
  } catch (e) {
    if (e instanceof Error && e.name === connectionRejectedErrorName) {
      onError?.(e);
      markClosed();
      ws.terminate();
    } else {
      failInternal(e);
    }
    return false;
  }
}

/** A connected client leaves (session.ts and json-session.ts): its subscriptions go, then client_disconnected runs (a failure is logged). */
export async function releaseClient(
  subscriptions: SubscriptionPort, handle: ClientHandle | undefined, db: Pick<SessionDatabase, 'clientDisconnected'>,
  caller: Caller, onError: ((e: unknown) => void) | undefined,
): Promise<void> {
  if (handle !== undefined) subscriptions.removeClient(handle);
  try {
    await db.clientDisconnected(caller);
  } catch (e) {
    onError?.(e);
  }
}

/** Pre-built options object: binary, never permessage-deflate (the protocol compresses with its own tag). */
const sendOptions = { binary: true, compress: false } as const;
/** The same for every fragment of a streamed message but its last (ws sends the first as binary, the rest as continuation). */
const fragmentOptions = { binary: true, compress: false, fin: false } as const;

/** Messages up to this size are framed by Session.writeMessages itself (copied); larger ones go through ws.send. */
export const directFrameMaxBytes = 16 * 1024;
/** Session.sendReady's list of wire messages, reused (flushes never nest). */
const wireScratch: Uint8Array[] = [];

interface WsInternals {
  readyState: number;
  _socket?: { write(chunk: Uint8Array): boolean };
  _sender?: { _state: number; _queue: unknown[] };
}
const wsOpen = 1;
const wsSenderIdle = 0;

/** The socket under `ws` when frames may be written to it directly: open, and ws's sender has nothing queued. */
function directSocket(ws: WebSocket): { write(chunk: Uint8Array): boolean } | undefined {
  const w = ws as unknown as WsInternals;
  const sender = w._sender;
  if (w.readyState !== wsOpen || sender === undefined || sender._state !== wsSenderIdle || sender._queue.length > 0) {
    return undefined;
  }
  return w._socket;
}

/** Bytes of a server-to-client WebSocket frame (RFC 6455 §5.2, unmasked) carrying `payloadBytes`. */
function wsFrameBytes(payloadBytes: number): number {
  return payloadBytes + (payloadBytes < 126 ? 2 : payloadBytes < 65536 ? 4 : 10);
}

/** One buffer holding `msgs[start, end)` as final, unmasked binary frames; `total` is their wsFrameBytes sum. */
export function encodeWsFrames(msgs: Uint8Array[], start: number, end: number, total: number): Buffer {
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = start; i < end; i++) {
    const m = msgs[i];
    const len = m.length;
    out[at++] = 0x82; // FIN | opcode 2 (binary)
    if (len < 126) {
      out[at++] = len;
    } else if (len < 65536) {
      out[at++] = 126;
      out.writeUInt16BE(len, at);
      at += 2;
    } else {
      out[at++] = 127;
      out.writeUInt32BE(Math.floor(len / 4294967296), at);
      out.writeUInt32BE(len >>> 0, at + 4);
      at += 8;
    }
    out.set(m, at);
    at += len;
  }
  assert.equal(at, total, 'frame sizes');
  return out;
}

/**
 * The last multi-message frame built in this flush pass, by the identity of its framed messages and compression:
 * subscribers of the same query during one group commit have identical lists of shared frames, so the
 * concatenation (and compression) is done once per pass, not once per subscriber.
 */
let passCache: { parts: Uint8Array[]; compression: Compression; frame: Uint8Array } | undefined;
onFlushPassEnd(() => { passCache = undefined; });

/** One wire frame for `ready[start, end)` (each element framed, see Slot). */
function frameOf(ready: Uint8Array[], start: number, end: number, compression: Compression): Uint8Array {
  const first = ready[start];
  if (end - start === 1 && (compression === 'None' || first.length - 1 <= compressionThresholdBytes || wireFrames.has(first))) {
    return first; // byte 0 is the placeholder tag None (Slot), or the real one of a wire frame
  }
  const cached = passCache;
  if (cached !== undefined && cached.compression === compression && cached.parts.length === end - start) {
    let same = true;
    for (let k = 0; k < end - start && same; k++) same = cached.parts[k] === ready[start + k];
    if (same) return cached.frame;
  }
  const parts = ready.slice(start, end);
  let out: Uint8Array;
  if (end - start === 1) {
    out = frame(first.subarray(1), compression);
  } else {
    let bodyBytes = 0;
    for (const p of parts) bodyBytes += p.length - 1;
    const joined = Buffer.allocUnsafe(bodyBytes + 1);
    joined[0] = compressionTag.None;
    let at = 1;
    for (const p of parts) { joined.set(p.subarray(1), at); at += p.length - 1; }
    out = compression === 'None' || bodyBytes <= compressionThresholdBytes ? joined : frame(joined.subarray(1), compression);
  }
  passCache = { parts, compression, frame: out };
  return out;
}

/**
 * Resolves after the event loop has polled for I/O twice, so other clients' pending work is done first. Three
 * setImmediate hops: the first runs before the next poll (it is scheduled from an I/O callback); the second after
 * it, but before the replies that poll produced (fanout.ts flushes them in a later setImmediate); the third after
 * those replies and after a second poll (a new HTTP connection is accepted in one poll and read in the next).
 */
export function afterPendingIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(() => setImmediate(resolve))));
}

function isQueryMessage(m: ClientMessage): boolean {
  return m.tag === 'Subscribe' || m.tag === 'Unsubscribe' || m.tag === 'OneOffQuery';
}

/** What a decoded client message holds of the client's bytes, as the inbound budget counts it. */
function clientMessageBytes(m: ClientMessage): number {
  switch (m.tag) {
    case 'CallReducer': return callBytes(m.reducer, m.args);
    case 'CallProcedure': return callBytes(m.procedure, m.args);
    case 'OneOffQuery': return m.queryString.length;
    case 'Subscribe': {
      let bytes = 0;
      for (const q of m.queryStrings) bytes += q.length + 4;
      return bytes;
    }
    case 'Unsubscribe': return 0;
  }
}

function callBytes(name: string, args: Uint8Array): number {
  return name.length + args.length;
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

function truncateReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= closeReasonMaxBytes) return reason;
  // Cut on bytes, then drop a partial character the cut may have produced.
  return bytes.subarray(0, closeReasonMaxBytes - 3).toString('utf8').replace(/\uFFFD+$/, '') + '…';
}
