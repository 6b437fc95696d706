// server/websocket/json-session.ts — one client WebSocket connection speaking upstream's legacy `v1.json.spacetimedb`
// text protocol (hand-written JSON clients, and the upstream CLI's fallback when v3 is refused). docs/websocket.md.
//
// Owns: v1 JSON client message parsing (SATS-JSON of upstream's v1 ClientMessage: Subscribe, SubscribeSingle,
// SubscribeMulti, Unsubscribe, UnsubscribeMulti, OneOffQuery, CallReducer, CallProcedure), the v1 JSON server
// messages (IdentityToken, InitialSubscription, SubscribeApplied, SubscribeMultiApplied, UnsubscribeApplied,
// UnsubscribeMultiApplied, SubscriptionError, TransactionUpdate, OneOffQueryResponse, ProcedureResult) around rows
// rendered by subscription/v1-json.ts (a query answer's where it was decided: in its database's worker), and this
// connection's lifecycle.
// Does not own: the handshake (attach.ts), query sets and deltas (subscription/manager.ts — v1 is a translation of
// its v2 results), durability batching (fanout.ts).
// May call: subscription/manager.ts, subscription/port.ts, subscription/messages.ts, subscription/v1-json.ts,
// server/websocket/fanout.ts, server/websocket/session.ts (shared limits and types), server/websocket/inbound-meter.ts
// (what its queue holds of the inbound budget), server/websocket/query-gate.ts (its address's queries in flight),
// sats/json.ts, ws.
//
// v1 is served at low volume (legacy clients): messages are translated per client, with no shared frames. Ordering
// is the v2 session's: every message takes a slot when its content is decided (a TransactionUpdate at commit time),
// slots go out strictly from the head, and with confirmed reads a slot waits for its commit to be durable.
// Upstream's v1 sends every subscriber the full reducer event of a commit (caller, reducer name, args, timestamp):
// the subscription manager tells a sink only the changed rows, so this session also listens to the database's
// commits and completes the TransactionUpdate slots the manager opened in the same synchronous commit turn.
// Bounds, as the v2 session and /sql: a connection's queued query messages run for at most queryMessagesSliceMs before
// other clients get a turn, and the rows of one query answer (OneOffQuery, subscribe) are rendered as JSON only up to
// sqlResultValuesMax values — past that the answer is the limit error (a refused subscription is dropped again).

import assert from 'node:assert/strict';
import type { WebSocket, RawData } from 'ws';
import type { ReadView } from '../../datastore/types.js';
import { queriesInFlightPerConnectionMax, queryMessagesSliceMs } from '../../limits.js';
import { bytesToHex, parseJson, stringifyJson, valueFromJson } from '../../sats/json.js';
import type { AlgebraicType, ProductTypeElement, Typespace, Value } from '../../sats/types.js';
import type { ClientHandle, ClientSink } from '../../subscription/manager.js';
import type { PortAnswer, SubscriptionPort } from '../../subscription/port.js';
import type { QuerySetUpdate, ServerMessage } from '../../subscription/messages.js';
import {
  JsonRows, RowText, jsonAnswer, renderedTableUpdate, stringifyJsonWithRows, type JsonAnswer, type RenderedTable, type V1TableUpdate,
} from '../../subscription/v1-json.js';
import { queueFlush, releaseWhenDurable, type DurableSlot, type FlushTarget } from './fanout.js';
import type { InboundMeter } from './inbound-meter.js';
import { GatePlaces, type QueryGate } from './query-gate.js';
import {
  admitClient, afterPendingIo, closeCodes, closeGraceMs, idleTimeoutMs, inboundQueueMaxMessages, outboundQueueMaxBytes, pingIntervalMs,
  releaseClient, type Caller, type SessionDatabase, type SessionLimits,
} from './session.js';

export const subprotocolV1Json = 'v1.json.spacetimedb';
/** The query set that holds a legacy `Subscribe` (replace-all) subscription; refused as a client query_id. */
export const legacyQuerySetId = 0xffff_ffff;

/** What the v1 JSON session needs beyond the v2 one: JSON argument calls (host/database.ts `Database` has them). */
export interface JsonSessionDatabase extends SessionDatabase {
  /** Row types of the tables named in updates (the schema of the committed state). */
  readonly datastore: Pick<ReadView, 'schema' | 'tableByName'>;
  /** Every commit, after the subscription manager delivered it (completes the slots transaction() opened). */
  onCommit(listener: (event: never) => void): () => void;
  callReducerJson?(name: string, argsJson: unknown, caller: Caller): Promise<{ status: string; message?: string; timestampMicros?: bigint; durationMicros?: number }>;
  callProcedureJson?(name: string, argsJson: unknown, caller: Caller):
    Promise<{ status: 'returned'; json: unknown; durationMicros: bigint } | { status: 'internal'; message: string }>;
  reducerByName?(name: string): { id: number; name: string } | undefined;
}

/** The parts of a commit event the v1 TransactionUpdate reports (host/database.ts CommitEvent has them). */
interface CommitEventInfo {
  caller?: { identity?: bigint; connectionId?: bigint };
  reducer?: { id: number; name: string };
  timestampMicros?: bigint;
  durationMicros?: number;
}

export interface JsonSessionOptions {
  caller: Caller;
  token: string;
  confirmedReads: boolean;
  limits?: Partial<SessionLimits>;
  onError?: (error: unknown) => void;
  /** This connection's share of the server's inbound budget (attach.ts). */
  inbound?: InboundMeter;
  /** Called whenever what waits for this client changed: charges the server's outbound bound (attach.ts). */
  outbound?: () => void;
  /** The gate of this connection's address at its database (query-gate.ts); none for the owner's and in tests. */
  queryGate?: () => QueryGate;
}

// ---------------------------------------------------------------------------------------------------------------
// Client messages: upstream's v1 ClientMessage as a SATS type, parsed with the one SATS-JSON reader (sats/json.ts),
// so objects or arrays, {"Variant": …} or [tag, …] are accepted exactly as upstream's serde bridge accepts them.

const str: AlgebraicType = { tag: 'String' };
const u32: AlgebraicType = { tag: 'U32' };
const u8: AlgebraicType = { tag: 'U8' };
const product = (...fields: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Product', value: { elements: fields.map(([name, algebraicType]): ProductTypeElement => ({ name, algebraicType })) } });
const queryIdType = product(['id', u32]);
const clientMessageVariants: [string, AlgebraicType][] = [
  ['CallReducer', product(['reducer', str], ['args', str], ['request_id', u32], ['flags', u8])],
  ['Subscribe', product(['query_strings', { tag: 'Array', value: str }], ['request_id', u32])],
  ['OneOffQuery', product(['message_id', { tag: 'Array', value: u8 }], ['query_string', str])],
  ['SubscribeSingle', product(['query', str], ['request_id', u32], ['query_id', queryIdType])],
  ['SubscribeMulti', product(['query_strings', { tag: 'Array', value: str }], ['request_id', u32], ['query_id', queryIdType])],
  ['Unsubscribe', product(['request_id', u32], ['query_id', queryIdType])],
  ['UnsubscribeMulti', product(['request_id', u32], ['query_id', queryIdType])],
  ['CallProcedure', product(['procedure', str], ['args', str], ['request_id', u32], ['flags', u8])],
];
const clientMessageType: AlgebraicType = {
  tag: 'Sum', value: { variants: clientMessageVariants.map(([name, algebraicType]) => ({ name, algebraicType })) },
};
const noTypespace: Typespace = { types: [] };

type V1Call = { tag: 'CallReducer' | 'CallProcedure'; name: string; argsText: string; requestId: number; flags: number };
type V1ClientMessage =
  | V1Call
  | { tag: 'Subscribe'; queries: string[]; requestId: number }
  | { tag: 'SubscribeSingle' | 'SubscribeMulti'; queries: string[]; requestId: number; queryId: number }
  | { tag: 'Unsubscribe' | 'UnsubscribeMulti'; requestId: number; queryId: number }
  | { tag: 'OneOffQuery'; messageId: Uint8Array; query: string };

/** Parses one text frame; throws with what was wrong (the connection closes with it, as upstream's does). */
export function parseV1ClientMessage(text: string): V1ClientMessage {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`v1.json: the message is not JSON: ${(e as Error).message}`);
  }
  let value: { tag: number; value: Value };
  try {
    value = valueFromJson(clientMessageType, json, noTypespace) as { tag: number; value: Value };
  } catch (e) {
    throw new Error(`v1.json: not a ClientMessage: ${(e as Error).message}`);
  }
  const f = value.value as Value[];
  const tag = clientMessageVariants[value.tag][0];
  switch (tag) {
    case 'CallReducer': case 'CallProcedure':
      return { tag, name: f[0] as string, argsText: f[1] as string, requestId: f[2] as number, flags: f[3] as number };
    case 'Subscribe':
      return { tag, queries: f[0] as string[], requestId: f[1] as number };
    case 'OneOffQuery':
      return { tag, messageId: f[0] as Uint8Array, query: f[1] as string };
    case 'SubscribeSingle':
      return { tag, queries: [f[0] as string], requestId: f[1] as number, queryId: (f[2] as number[])[0] };
    case 'SubscribeMulti':
      return { tag, queries: f[0] as string[], requestId: f[1] as number, queryId: (f[2] as number[])[0] };
    default:
      return { tag: tag as 'Unsubscribe' | 'UnsubscribeMulti', requestId: f[0] as number, queryId: (f[1] as number[])[0] };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Server messages (serde shapes of upstream's v1 JsonFormat messages)

const identityJson = (identity: bigint) => ({ __identity__: `0x${identity.toString(16).padStart(64, '0')}` });
const connectionIdJson = (id: bigint) => ({ __connection_id__: id });
const durationJson = (micros: bigint | number) => ({ __time_duration_micros__: BigInt(Math.round(Number(micros))) });
const timestampJson = (micros: bigint) => ({ __timestamp_micros_since_unix_epoch__: micros });

/** `text`: the message, a string or (built around rendered rows) its UTF-8 bytes; undefined until completeCommit. */
interface Slot extends DurableSlot { text: string | Buffer | undefined }

/** A reducer call waiting for its result; its commit (if any) fills `slot`. */
interface InflightCall { name: string; argsText: string; requestId: number; flags: number; slot: Slot | undefined; committed: boolean }

/** Commit slots opened by the manager (transaction()) and completed by the commit listener in the same turn. */
interface OpenCommit { slot: Slot | undefined; querySets: QuerySetUpdate[]; isCaller: boolean }

const noSuccessNotifyFlag = 1;

export class JsonSession implements ClientSink, FlushTarget {
  flushQueued = false;
  private readonly outbound: Slot[] = [];
  private outboundBytes = 0;
  private readonly inbound: V1ClientMessage[] = [];
  /** The text length of each message in `inbound`: what it holds of the inbound budget until it is handled. */
  private readonly inboundBytes: number[] = [];
  private queriesInFlight = 0;
  private queryRoom: (() => void) | undefined;
  private processing = false;
  private handle: ClientHandle | undefined;
  private closed = false;
  private connected = false;
  private disconnectedRun = false;
  private inflight: InflightCall | undefined;
  private readonly open: OpenCommit[] = [];
  private stopListening: (() => void) | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private lastReceivedMs = Date.now();
  private awaitingPong = false;
  private readonly limits: SessionLimits;
  private readonly rowText: RowText;

  constructor(
    private readonly ws: WebSocket,
    private readonly db: JsonSessionDatabase,
    private readonly subscriptions: SubscriptionPort,
    private readonly options: JsonSessionOptions,
  ) {
    this.limits = { outboundQueueMaxBytes, outboundStallTimeoutMs: 0, pingIntervalMs, idleTimeoutMs, ...options.limits };
    this.rowText = new RowText(db.datastore);
    this.gatePlaces = options.queryGate === undefined ? undefined : new GatePlaces(options.queryGate);
  }

  /** Its places at its address's query gate (query-gate.ts): one per query message in flight. */
  private readonly gatePlaces: GatePlaces | undefined;
  /** Port requests made that hold a gate place (`tracked` with `gated`): a message that made none gives its back. */
  private gatedRequests = 0;

  get connectionId(): bigint { return this.options.caller.connectionId; }

  start(): void {
    this.ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(data, isBinary);
      } catch (e) {
        this.failInternal(e);
      }
    });
    this.ws.on('pong', () => { this.lastReceivedMs = Date.now(); this.awaitingPong = false; });
    this.ws.on('close', () => this.closeContained());
    this.ws.on('error', (e) => this.options.onError?.(e));
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
    this.push(stringifyJson({
      IdentityToken: { identity: identityJson(caller.identity), token, connection_id: connectionIdJson(caller.connectionId) },
    }));
    this.handle = this.subscriptions.addClient(
      { identity: caller.identity, connectionId: caller.connectionId, isOwner: caller.identity === this.db.ownerIdentity }, this, 'JsonV1');
    // After the manager's own listener (attach.ts created it first): transaction() has opened this commit's slots.
    this.stopListening = this.db.onCommit((event) => this.completeCommit(event as unknown as CommitEventInfo));
    this.pingTimer = setInterval(() => this.keepalive(), this.limits.pingIntervalMs);
    this.pingTimer.unref();
    void this.processInbound();
  }

  // ---- inbound

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    this.lastReceivedMs = Date.now();
    if (isBinary) {
      this.fail(closeCodes.internalError, 'binary frames are not supported by the v1.json.spacetimedb protocol');
      return;
    }
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8');
    let message: V1ClientMessage;
    try {
      message = parseV1ClientMessage(text);
    } catch (e) {
      this.fail(closeCodes.internalError, (e as Error).message);
      return;
    }
    this.inbound.push(message);
    this.inboundBytes.push(text.length);
    this.options.inbound?.queued(text.length, 1);
    if (this.inbound.length > inboundQueueMaxMessages) {
      this.fail(closeCodes.tryAgainLater, `too many requests: more than ${inboundQueueMaxMessages} queued messages`);
      return;
    }
    if (this.connected) void this.processInbound();
  }

  private async processInbound(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    let sliceStartMs = -1;
    try {
      while (!this.closed && this.inbound.length > 0) {
        const m = this.inbound.shift()!;
        const bytes = this.inboundBytes.shift()!;
        if (sliceStartMs < 0 && m.tag !== 'CallReducer' && m.tag !== 'CallProcedure') sliceStartMs = performance.now();
        const gated = this.gatePlaces !== undefined && m.tag !== 'CallReducer' && m.tag !== 'CallProcedure';
        if (gated && !this.gatePlaces!.take()) { // its address has queriesInFlightPerAddressMax in flight here
          await this.gatePlaces!.wait();
          this.gatePlaces!.take(); // the place granted
        }
        const requestsBefore = this.gatedRequests;
        await this.handleMessage(m);
        if (gated && this.gatedRequests === requestsBefore) this.gatePlaces!.answered(); // refused before the database
        this.options.inbound?.handled(bytes);
        // Queries run synchronously, each within the SQL budget; a run of them must not hold the thread for all.
        if (sliceStartMs >= 0 && this.inbound.length > 0 && performance.now() - sliceStartMs > queryMessagesSliceMs) {
          await afterPendingIo();
          sliceStartMs = -1;
        }
      }
    } catch (e) {
      this.failInternal(e);
    }
    this.processing = false;
  }

  private async handleMessage(m: V1ClientMessage): Promise<void> {
    const subs = this.subscriptions;
    const handle = this.handle!;
    switch (m.tag) {
      case 'Subscribe': {
        // Legacy replace-all: the previous legacy subscription goes, the new one replaces it.
        subs.unsubscribe(handle, m.requestId, legacyQuerySetId, false, this.tracked(ignoreAnswer, false));
        subs.subscribe(handle, m.requestId, legacyQuerySetId, m.queries, this.tracked((msg, durable) => this.answer(msg, durable, (tables) => ({
          InitialSubscription: {
            database_update: { tables: tables.map((t) => renderedTableUpdate(t)) }, request_id: m.requestId,
            total_host_execution_duration: durationJson(0),
          },
        }))));
        return this.roomForQueries();
      }
      case 'SubscribeSingle': case 'SubscribeMulti': {
        if (m.queryId === legacyQuerySetId) return this.refuse(m.requestId, m.queryId, `query_id ${m.queryId} is reserved`);
        const queryId = { id: m.queryId };
        subs.subscribe(handle, m.requestId, m.queryId, m.queries, this.tracked((msg, durable) => this.answer(msg, durable, (tables) => (m.tag === 'SubscribeSingle'
          ? { SubscribeApplied: { request_id: m.requestId, total_host_execution_duration_micros: 0n, query_id: queryId, rows: subscribeRows(tables) } }
          : { SubscribeMultiApplied: { request_id: m.requestId, total_host_execution_duration_micros: 0n, query_id: queryId, update: { tables: tables.map((t) => renderedTableUpdate(t)) } } }))));
        return this.roomForQueries();
      }
      case 'Unsubscribe': case 'UnsubscribeMulti': {
        if (m.queryId === legacyQuerySetId) return this.refuse(m.requestId, m.queryId, `query_id ${m.queryId} is reserved`);
        const queryId = { id: m.queryId };
        subs.unsubscribe(handle, m.requestId, m.queryId, true, this.tracked((msg, durable) => this.answer(msg, durable, (tables) => {
          return m.tag === 'Unsubscribe'
            ? { UnsubscribeApplied: { request_id: m.requestId, total_host_execution_duration_micros: 0n, query_id: queryId, rows: subscribeRows(tables, true) } }
            : { UnsubscribeMultiApplied: { request_id: m.requestId, total_host_execution_duration_micros: 0n, query_id: queryId, update: { tables: tables.map((t) => renderedTableUpdate(t, true)) } } };
        })));
        return this.roomForQueries();
      }
      case 'OneOffQuery': {
        subs.oneOffQuery(handle, 0, m.query, this.tracked((msg, durable) => this.oneOffAnswer(m.messageId, msg, durable)));
        return this.roomForQueries();
      }
      case 'CallReducer':
        return this.callReducer(m);
      case 'CallProcedure':
        return this.callProcedure(m);
    }
  }

  /**
   * `done`, counted among this connection's queries in flight until it is called (session.ts roomForQueries says why);
   * `gated`: it holds its message's place at the address's query gate until then (one such request per message).
   */
  private tracked(done: PortAnswer, gated = true): PortAnswer {
    this.queriesInFlight++;
    if (gated) this.gatedRequests++;
    return (msg, durable) => {
      this.queriesInFlight--;
      if (gated) this.gatePlaces?.answered();
      const room = this.queryRoom;
      if (room !== undefined) {
        this.queryRoom = undefined;
        room();
      }
      done(msg, durable);
    };
  }

  /** Waits for an answer when `queriesInFlightPerConnectionMax` queries are in flight. */
  private roomForQueries(): Promise<void> | undefined {
    if (this.queriesInFlight < queriesInFlightPerConnectionMax) return undefined;
    return new Promise<void>((resolve) => { this.queryRoom = resolve; });
  }

  private oneOffAnswer(messageId: Uint8Array, answer: Parameters<PortAnswer>[0], durable: Promise<unknown> | undefined): void {
    if (this.closed) return;
    const a = this.rendered(answer);
    const response = (error: string | undefined, tables: unknown[]) => ({
      OneOffQueryResponse: {
        message_id: bytesToHex(messageId), error: error === undefined ? { none: [] } : { some: error }, tables,
        total_host_execution_duration: durationJson(0),
      },
    });
    if (a.tag === 'JsonRows') {
      this.queue(stringifyJsonWithRows(response(undefined, a.tables.map((t) => ({ table_name: t.table, rows: new JsonRows(t) }))), a), durable);
      return;
    }
    const r = a as Extract<ServerMessage, { tag: 'OneOffQueryResult' }> | Extract<JsonAnswer, { tag: 'JsonRowsRefused' }>;
    const error = r.tag === 'JsonRowsRefused' ? r.error : r.result.ok ? undefined : r.result.error;
    this.queue(stringifyJson(response(error, [])), durable);
  }

  /** A v2 (un)subscription answer as its v1 message built by `ok` around its rendered rows, or the v1 SubscriptionError. */
  private answer(answer: Parameters<PortAnswer>[0], durable: Promise<unknown> | undefined, ok: (tables: RenderedTable[]) => unknown): void {
    if (this.closed) return;
    const a = this.rendered(answer);
    if (a.tag === 'SubscriptionError') {
      const legacy = a.querySetId === legacyQuerySetId;
      this.refuse(a.requestId, legacy ? undefined : a.querySetId, a.error);
      return;
    }
    if (a.tag === 'JsonRowsRefused') {
      // Too large to render: refused like a query over the limit, and a new subscription is dropped again.
      if (a.answers === 'SubscribeApplied') this.subscriptions.unsubscribe(this.handle!, a.requestId, a.querySetId, false, ignoreAnswer);
      this.refuse(a.requestId, a.querySetId === legacyQuerySetId ? undefined : a.querySetId, a.error);
      return;
    }
    assert(a.tag === 'JsonRows', `v1.json: ${a.tag} answers a subscription`);
    this.queue(stringifyJsonWithRows(ok(a.tables), a), durable);
  }

  /** Answers come rendered from a database in a worker (subAdd's 'JsonV1'); from the in-thread port, rendered here. */
  private rendered(answer: Parameters<PortAnswer>[0]): ServerMessage | JsonAnswer {
    assert('tag' in answer, 'an encoded binary-protocol answer for a JSON-protocol client');
    return jsonAnswer(answer, this.db.datastore);
  }

  private refuse(requestId: number | undefined, queryId: number | undefined, error: string): void {
    this.push(stringifyJson({
      SubscriptionError: {
        total_host_execution_duration_micros: 0n, request_id: requestId === undefined ? { none: [] } : { some: requestId },
        query_id: queryId === undefined ? { none: [] } : { some: queryId }, table_id: { none: [] }, error,
      },
    }));
  }

  private async callReducer(m: V1Call): Promise<void> {
    const call: InflightCall = { name: m.name, argsText: m.argsText, requestId: m.requestId, flags: m.flags, slot: undefined, committed: false };
    let result: { status: string; message?: string; timestampMicros?: bigint; durationMicros?: number };
    this.inflight = call;
    try {
      if (this.db.callReducerJson === undefined) throw new Error('this database takes no JSON reducer arguments');
      result = await this.db.callReducerJson(m.name, parseArgs(m.argsText), this.options.caller);
    } catch (e) {
      result = { status: 'internal', message: (e as Error).message };
    } finally {
      this.inflight = undefined;
    }
    if (this.closed || result.status === 'committed') return; // a commit's update was placed by completeCommit
    const info = this.db.reducerByName?.(m.name);
    this.push(stringifyJson(this.transactionUpdate(
      { Failed: result.message ?? 'reducer failed' }, { identity: this.options.caller.identity, connectionId: this.connectionId },
      { name: info?.name ?? m.name, id: info?.id ?? 0xffff_ffff, argsText: m.argsText, requestId: m.requestId },
      BigInt(Date.now()) * 1000n, 0)));
  }

  private async callProcedure(m: V1Call): Promise<void> {
    let status: unknown;
    let durationMicros = 0n;
    try {
      if (this.db.callProcedureJson === undefined) throw new Error('this database has no procedures');
      const r = await this.db.callProcedureJson(m.name, parseArgs(m.argsText), this.options.caller);
      if (r.status === 'returned') {
        status = { Returned: stringifyJson(r.json) };
        durationMicros = r.durationMicros;
      } else {
        status = { InternalError: r.message };
      }
    } catch (e) {
      status = { InternalError: (e as Error).message };
    }
    if (this.closed) return;
    this.push(stringifyJson({
      ProcedureResult: { status, timestamp: timestampJson(BigInt(Date.now()) * 1000n), total_host_execution_duration: durationJson(durationMicros), request_id: m.requestId },
    }));
  }

  private transactionUpdate(status: unknown, caller: { identity: bigint; connectionId: bigint },
    call: { name: string; id: number; argsText: string; requestId: number }, timestampMicros: bigint, durationMicros: number): unknown {
    return {
      TransactionUpdate: {
        status, timestamp: timestampJson(timestampMicros), caller_identity: identityJson(caller.identity),
        caller_connection_id: connectionIdJson(caller.connectionId),
        reducer_call: { reducer_name: call.name, reducer_id: call.id, args: call.argsText, request_id: call.requestId },
        energy_quanta_used: { quanta: 0n }, total_host_execution_duration: durationJson(durationMicros),
      },
    };
  }

  // ---- ClientSink (synchronously at commit time), then completeCommit from the database's commit listener

  transaction(querySets: QuerySetUpdate[], isCaller: boolean, durable: Promise<unknown> | undefined): void {
    if (this.closed) return;
    const call = this.inflight;
    const mine = isCaller && call !== undefined && call.slot === undefined;
    const silent = mine && querySets.length === 0 && (call.flags & noSuccessNotifyFlag) !== 0;
    if (!mine && querySets.length === 0) return;
    let slot: Slot | undefined;
    if (!silent) {
      slot = { text: undefined, ready: false, owner: this };
      this.outbound.push(slot);
      // The caller's reply always waits for its commit, whatever confirmedReads (as in session.ts).
      releaseWhenDurable(slot, mine || this.options.confirmedReads ? durable : undefined);
    }
    if (mine) call.committed = true;
    this.open.push({ slot, querySets, isCaller: mine });
    if (mine && call.slot === undefined && slot !== undefined) call.slot = slot;
  }

  private completeCommit(event: CommitEventInfo): void {
    if (this.open.length === 0) return;
    const commits = this.open.splice(0);
    for (const c of commits) {
      if (c.slot === undefined || this.closed) continue;
      const call = c.isCaller ? this.inflight : undefined;
      const reducer = event.reducer;
      const text = stringifyJson(this.transactionUpdate(
        { Committed: this.rowText.fromQuerySets(c.querySets) },
        { identity: event.caller?.identity ?? 0n, connectionId: event.caller?.connectionId ?? 0n },
        {
          name: reducer?.name ?? call?.name ?? '', id: reducer?.id ?? 0xffff_ffff,
          argsText: call?.argsText ?? '', requestId: call?.requestId ?? 0,
        },
        event.timestampMicros ?? BigInt(Date.now()) * 1000n, event.durationMicros ?? 0));
      c.slot.text = text;
      this.outboundBytes += text.length;
    }
    this.checkOutboundLimit();
    queueFlush(this);
  }

  querySetFailed(querySetId: number, error: string): void {
    if (this.closed) return;
    this.refuse(undefined, querySetId === legacyQuerySetId ? undefined : querySetId, error);
  }

  // ---- outbound

  private push(text: string): void {
    this.queue(text, undefined);
  }

  private queue(text: string | Buffer, durable: Promise<unknown> | undefined): void {
    if (this.closed) return;
    const slot: Slot = { text, ready: false, owner: this };
    this.outbound.push(slot);
    this.outboundBytes += text.length;
    this.checkOutboundLimit();
    releaseWhenDurable(slot, this.options.confirmedReads ? durable : undefined);
  }

  /** Sends what is ready from the head, about `budgetBytes` (this turn's pass, fanout.ts); the rest in the next pass. */
  flush(budgetBytes: number): number {
    const q = this.outbound;
    let n = 0;
    let sent = 0;
    while (!this.closed && n < q.length && q[n].ready && q[n].text !== undefined && sent < budgetBytes) {
      const text = q[n++].text!;
      this.outboundBytes -= text.length;
      sent += text.length;
      this.ws.send(text, { binary: false, compress: false });
    }
    q.splice(0, n);
    if (!this.closed && q.length > 0 && q[0].ready && q[0].text !== undefined) queueFlush(this);
    this.checkOutboundLimit();
    return sent;
  }

  durabilityFailed(error: unknown): void {
    if (this.closed) return;
    this.options.onError?.(error);
    this.fail(closeCodes.internalError, `transaction could not be made durable: ${(error as Error).message}`);
  }

  failInternal(e: unknown): void {
    this.options.onError?.(e);
    this.fail(closeCodes.internalError, `internal error: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** What waits for this client (queued and in the socket) is bounded like a v2 client's (session.ts). */
  private checkOutboundLimit(): void {
    const max = this.limits.outboundQueueMaxBytes;
    if (this.outboundBytes + this.ws.bufferedAmount > max) {
      this.fail(closeCodes.policyViolation, `client too slow: more than ${max} bytes of unread messages`);
      return;
    }
    this.options.outbound?.();
  }

  /** Bytes queued for this client or in its socket's buffer: its share of the server's outbound bound. */
  outboundPendingBytes(): number {
    return this.closed ? 0 : this.outboundBytes + this.ws.bufferedAmount;
  }

  private keepalive(): void {
    if (this.closed) return;
    if (Date.now() - this.lastReceivedMs > this.limits.idleTimeoutMs) {
      this.fail(closeCodes.goingAway, `idle timeout: nothing received for ${this.limits.idleTimeoutMs} ms`);
      return;
    }
    if (this.awaitingPong) return;
    this.awaitingPong = true;
    this.ws.ping();
  }

  fail(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.outbound.length = 0;
    this.inbound.length = 0;
    this.inboundBytes.length = 0;
    this.outboundBytes = 0;
    this.ws.close(code, Buffer.byteLength(reason) > 123 ? `${Buffer.from(reason).subarray(0, 100).toString()}…` : reason);
    setTimeout(() => this.ws.terminate(), closeGraceMs).unref();
    this.closeContained();
  }

  private closeContained(): void {
    this.onClose().catch((e: unknown) => this.options.onError?.(e));
  }

  private async onClose(): Promise<void> {
    this.closed = true;
    this.gatePlaces?.release();
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (!this.connected) return;
    await this.runDisconnected();
  }

  private async runDisconnected(): Promise<void> {
    if (this.disconnectedRun) return;
    this.disconnectedRun = true;
    this.stopListening?.();
    await releaseClient(this.subscriptions, this.handle, this.db, this.options.caller, this.options.onError);
  }
}

/** The legacy replace-all Subscribe drops the previous set silently. */
function ignoreAnswer(): void {}

/** Reducer arguments arrive as JSON text inside the message (upstream: "json-nested-in-string"). */
function parseArgs(text: string): unknown {
  if (text.trim() === '') return [];
  try {
    return parseJson(text); // keeps u64/i128/… literals beyond 2^53 exact
  } catch (e) {
    throw new Error(`v1.json: reducer arguments are not JSON: ${(e as Error).message}`);
  }
}

/** SubscribeRows of a single-query set (upstream's SubscribeSingle answer holds exactly one table). */
function subscribeRows(tables: RenderedTable[], asDeletes = false): unknown {
  const t = tables[0];
  if (t === undefined) throw new Error('v1.json: a single-query answer without its table');
  const update: V1TableUpdate = renderedTableUpdate(t, asDeletes);
  return { table_id: update.table_id, table_name: update.table_name, table_rows: update };
}
