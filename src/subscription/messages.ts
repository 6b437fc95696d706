// subscription/messages.ts — BSATN codecs for the WebSocket "v2 schema" messages (used by both v2 and v3 framing).
//
// Owns: the TS shapes of ClientMessage / ServerMessage (client-protocol.md §3), their strict decoders and their
// encoders, and BsatnRowList packing (always RowOffsets, never FixedSize(0), so Rust consumers split rows exactly).
// Hand-written over BsatnReader/BsatnWriter: no per-value type dispatch, and pre-encoded pieces (a query's
// TableUpdate, reused for every subscriber) are spliced in with writeRaw.
// Errors: bad client input throws ProtocolError naming the field and the byte offset.
// May call: sats/bsatn.ts, sats/types.ts, limits.ts (querySetQueriesMax, checked before a Subscribe's strings are read).

import { BsatnReader, BsatnWriter } from '../sats/bsatn.js';
import { SatsError } from '../sats/types.js';
import { querySetQueriesMax } from '../limits.js';

/** Error for a malformed client message. The WebSocket session closes with 1011 and this text. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Client → server

export type ClientMessage =
  | { tag: 'Subscribe'; requestId: number; querySetId: number; queryStrings: string[] }
  | { tag: 'Unsubscribe'; requestId: number; querySetId: number; sendDroppedRows: boolean }
  | { tag: 'OneOffQuery'; requestId: number; queryString: string }
  | { tag: 'CallReducer'; requestId: number; reducer: string; args: Uint8Array }
  | { tag: 'CallProcedure'; requestId: number; procedure: string; args: Uint8Array };

const clientMessageTags = ['Subscribe', 'Unsubscribe', 'OneOffQuery', 'CallReducer', 'CallProcedure'] as const;

/**
 * Decodes one client frame. v2: exactly one message. v3: one or more messages back to back.
 * `args` byte arrays are subarrays of `frame` (no copy); the caller must not reuse the frame buffer.
 */
export function decodeClientFrame(frame: Uint8Array, version: 2 | 3): ClientMessage[] {
  const out: ClientMessage[] = [];
  decodeClientFrameInto(frame, version, out);
  return out;
}

/**
 * `decodeClientFrame`, appending to `out` (the session's inbound queue: no array per frame). On any error nothing
 * is appended. A CallReducer whose reducer name was seen before is decoded without a reader (callCached). `out` may
 * hold at most `queuedMax` messages: a v3 frame of 3M ten-byte Unsubscribes held the server's thread 1.8 s while every
 * one was decoded, before the queue's bound refused them all.
 */
export function decodeClientFrameInto(frame: Uint8Array, version: 2 | 3, out: ClientMessage[], queuedMax = Infinity): void {
  if (frame.length === 0) throw new ProtocolError('empty client frame: expected at least one ClientMessage');
  const first = out.length;
  try {
    let r: BsatnReader | undefined;
    let pos = 0;
    do {
      if (out.length > queuedMax) throw new ProtocolError(`too many requests: more than ${queuedMax} queued messages`);
      const fast = callCached(frame, pos);
      if (fast !== undefined) {
        out.push(fast);
        pos = fast.args.byteOffset - frame.byteOffset + fast.args.length;
        continue;
      }
      r ??= new BsatnReader(frame);
      r.offset = pos;
      out.push(readClientMessage(r));
      pos = r.offset;
    } while (version === 3 && pos < frame.length);
    if (pos < frame.length) {
      throw new ProtocolError(`trailing bytes after ClientMessage: ${frame.length - pos} bytes left over (at byte ${pos})`);
    }
  } catch (e) {
    out.length = first;
    throw e;
  }
}

/** Reducer names decoded so far, with their UTF-8 bytes: a client calls the same few reducers again and again. */
const reducerNames: { bytes: Uint8Array; name: string }[] = [];
const reducerNamesMax = 32;
const reducerNameCachedMaxBytes = 64;
let reducerNamesNext = 0;

function rememberReducerName(bytes: Uint8Array, name: string): void {
  if (bytes.length > reducerNameCachedMaxBytes || reducerNames.some((e) => e.name === name)) return;
  const entry = { bytes: new Uint8Array(bytes), name }; // a copy: `bytes` is a view of the client's frame
  if (reducerNames.length < reducerNamesMax) reducerNames.push(entry);
  else reducerNames[reducerNamesNext++ % reducerNamesMax] = entry;
}

function u32At(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/**
 * The hot message (a well-formed CallReducer of a known reducer) without a reader, a string decode or an error
 * text per message; undefined for anything else, which readClientMessage then decodes (and rejects) as always.
 */
function callCached(frame: Uint8Array, pos: number): Extract<ClientMessage, { tag: 'CallReducer' }> | undefined {
  const len = frame.length;
  // tag u8 | request_id u32 | flags u8 | name: u32 length + bytes | args: u32 length + bytes
  if (frame[pos] !== 3 || pos + 10 > len || frame[pos + 5] !== 0) return undefined;
  const nameLen = u32At(frame, pos + 6);
  const nameAt = pos + 10;
  if (nameLen > reducerNameCachedMaxBytes || nameAt + nameLen + 4 > len) return undefined;
  const argsLen = u32At(frame, nameAt + nameLen);
  const argsAt = nameAt + nameLen + 4;
  if (argsLen > len - argsAt) return undefined;
  let reducer: string | undefined;
  for (let i = 0; i < reducerNames.length && reducer === undefined; i++) {
    const e = reducerNames[i];
    if (e.bytes.length !== nameLen) continue;
    let same = true;
    for (let k = 0; k < nameLen && same; k++) same = e.bytes[k] === frame[nameAt + k];
    if (same) reducer = e.name;
  }
  if (reducer === undefined) return undefined;
  return { tag: 'CallReducer', requestId: u32At(frame, pos + 1), reducer, args: frame.subarray(argsAt, argsAt + argsLen) };
}

function readClientMessage(r: BsatnReader): ClientMessage {
  const start = r.offset;
  let name: (typeof clientMessageTags)[number] | undefined;
  // Built only for an error: a template string per message showed up in profiles.
  const what = () => name === undefined ? 'ClientMessage tag' : `ClientMessage::${name} starting at byte ${start}`;
  try {
    const tag = r.readU8();
    name = clientMessageTags[tag];
    if (name === undefined) {
      throw new ProtocolError(`unknown ClientMessage tag ${tag} (expected 0..4) at byte ${start}`);
    }
    switch (name) {
      case 'Subscribe': {
        const requestId = r.readU32();
        const querySetId = r.readU32();
        const count = r.readU32();
        // Each string needs ≥4 bytes; reject absurd counts before allocating.
        if (count * 4 > r.remainingBytes) {
          throw new ProtocolError(`${what()}: query_strings count ${count} exceeds the remaining input`);
        }
        // The subscription manager would refuse it anyway, but only after this array was built and, for a database in
        // a worker, copied to its thread: 7M empty strings (28 MB) held the server's thread for 1.3 s.
        if (count > querySetQueriesMax) {
          throw new ProtocolError(`${what()}: ${count} query strings, over querySetQueriesMax = ${querySetQueriesMax}`);
        }
        const queryStrings: string[] = new Array(count);
        for (let i = 0; i < count; i++) queryStrings[i] = r.readString();
        return { tag: name, requestId, querySetId, queryStrings };
      }
      case 'Unsubscribe': {
        const requestId = r.readU32();
        const querySetId = r.readU32();
        const flagsAt = r.offset;
        const flags = r.readU8();
        if (flags > 1) {
          throw new ProtocolError(`${what()}: unknown UnsubscribeFlags tag ${flags} at byte ${flagsAt}`);
        }
        return { tag: name, requestId, querySetId, sendDroppedRows: flags === 1 };
      }
      case 'OneOffQuery': {
        const requestId = r.readU32();
        return { tag: name, requestId, queryString: r.readString() };
      }
      case 'CallReducer':
      case 'CallProcedure': {
        const requestId = r.readU32();
        const flagsAt = r.offset;
        const flags = r.readU8();
        if (flags !== 0) throw new ProtocolError(`${what()}: flags must be 0, got ${flags} at byte ${flagsAt}`);
        const nameAt = r.offset + 4;
        const fn = r.readString();
        const nameEnd = r.offset;
        const args = r.readBytes();
        if (name === 'CallProcedure') return { tag: name, requestId, procedure: fn, args };
        rememberReducerName(r.bytes.subarray(nameAt, nameEnd), fn);
        return { tag: name, requestId, reducer: fn, args };
      }
    }
  } catch (e) {
    if (e instanceof SatsError) throw new ProtocolError(`malformed ${what()}: ${e.message}`);
    throw e;
  }
}

/** Encodes client messages (used by tests and by our own clients). v3 frames may hold several. */
export function encodeClientMessage(w: BsatnWriter, m: ClientMessage): void {
  switch (m.tag) {
    case 'Subscribe':
      w.writeU8(0); w.writeU32(m.requestId); w.writeU32(m.querySetId);
      w.writeU32(m.queryStrings.length);
      for (const q of m.queryStrings) w.writeString(q);
      return;
    case 'Unsubscribe':
      w.writeU8(1); w.writeU32(m.requestId); w.writeU32(m.querySetId); w.writeU8(m.sendDroppedRows ? 1 : 0);
      return;
    case 'OneOffQuery':
      w.writeU8(2); w.writeU32(m.requestId); w.writeString(m.queryString);
      return;
    case 'CallReducer':
      w.writeU8(3); w.writeU32(m.requestId); w.writeU8(0); w.writeString(m.reducer); w.writeBytes(m.args);
      return;
    case 'CallProcedure':
      w.writeU8(4); w.writeU32(m.requestId); w.writeU8(0); w.writeString(m.procedure); w.writeBytes(m.args);
      return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Server → client

/** One table's rows: a SingleTableRows of a QueryRows. */
export interface SingleTableRows { table: string; rows: Uint8Array[] }

export type TableUpdateRows =
  | { tag: 'PersistentTable'; inserts: Uint8Array[]; deletes: Uint8Array[] }
  | { tag: 'EventTable'; events: Uint8Array[] };

export interface TableUpdate { tableName: string; rows: TableUpdateRows[] }

/** A TableUpdate already in BSATN (encoded once per query delta, spliced into every subscriber's message). */
export interface EncodedTableUpdate {
  encoded: Uint8Array;
  /** transactionUpdateFrame's results by query set id (built on first use; lives as long as this commit's update). */
  frames?: Map<number, Buffer>;
}

export interface QuerySetUpdate { querySetId: number; tables: (TableUpdate | EncodedTableUpdate)[] }

export type ReducerOutcome =
  | { tag: 'Ok'; retValue: Uint8Array; transactionUpdate: QuerySetUpdate[] }
  | { tag: 'OkEmpty' }
  /** The module's error text; encoded as a BSATN string inside Bytes (the SDK reads it with readString). */
  | { tag: 'Err'; message: string }
  | { tag: 'InternalError'; message: string };

export type ProcedureStatus =
  | { tag: 'Returned'; value: Uint8Array }
  | { tag: 'InternalError'; message: string };

export type ServerMessage =
  | { tag: 'InitialConnection'; identity: bigint; connectionId: bigint; token: string }
  | { tag: 'SubscribeApplied'; requestId: number; querySetId: number; rows: SingleTableRows[] }
  | { tag: 'UnsubscribeApplied'; requestId: number; querySetId: number; rows: SingleTableRows[] | undefined }
  | { tag: 'SubscriptionError'; requestId: number | undefined; querySetId: number; error: string }
  | { tag: 'TransactionUpdate'; querySets: QuerySetUpdate[] }
  | { tag: 'OneOffQueryResult'; requestId: number; result: { ok: true; rows: SingleTableRows[] } | { ok: false; error: string } }
  | { tag: 'ReducerResult'; requestId: number; timestampMicros: bigint; outcome: ReducerOutcome }
  | { tag: 'ProcedureResult'; status: ProcedureStatus; timestampMicros: bigint; durationMicros: bigint; requestId: number };

const serverMessageTags = [
  'InitialConnection', 'SubscribeApplied', 'UnsubscribeApplied', 'SubscriptionError', 'TransactionUpdate',
  'OneOffQueryResult', 'ReducerResult', 'ProcedureResult',
] as const;
const transactionUpdateTag = serverMessageTags.indexOf('TransactionUpdate');

/** BsatnRowList: RowOffsets(start of each row) + the rows concatenated. */
export function writeRowList(w: BsatnWriter, rows: Uint8Array[]): void {
  w.writeU8(1); // RowSizeHint::RowOffsets
  w.writeU32(rows.length);
  let offset = 0;
  for (const row of rows) {
    // u64 little-endian as two u32 halves: no BigInt per row (a 100k-row snapshot made 100k of them). Offsets
    // stay far below 2^32 because messages are limited in size.
    w.writeU32(offset);
    w.writeU32(0);
    offset += row.length;
  }
  w.writeU32(offset);
  for (const row of rows) w.writeRaw(row);
}

function writeQueryRows(w: BsatnWriter, tables: SingleTableRows[]): void {
  w.writeU32(tables.length);
  for (const t of tables) {
    w.writeString(t.table);
    writeRowList(w, t.rows);
  }
}

export function writeTableUpdate(w: BsatnWriter, t: TableUpdate | EncodedTableUpdate): void {
  if ('encoded' in t) {
    w.writeRaw(t.encoded);
    return;
  }
  w.writeString(t.tableName);
  w.writeU32(t.rows.length);
  for (const r of t.rows) {
    if (r.tag === 'PersistentTable') {
      w.writeU8(0);
      writeRowList(w, r.inserts);
      writeRowList(w, r.deletes);
    } else {
      w.writeU8(1);
      writeRowList(w, r.events);
    }
  }
}

/** A single-fragment TableUpdate encoded once, for splicing into many messages. */
export function encodeTableUpdate(tableName: string, rows: TableUpdateRows): EncodedTableUpdate {
  const w = new BsatnWriter(64);
  writeTableUpdate(w, { tableName, rows: [rows] });
  return { encoded: w.finish() };
}

/** Bytes of a frame's compression tag (server frames start with it; see server/websocket/session.ts). */
export const frameTagBytes = 1;
/** Offset of the query set id in a transactionUpdateFrame: tag byte, message tag, u32 query set count. */
const frameQuerySetIdOffsetBytes = frameTagBytes + 1 + 4;

/**
 * A whole server frame `[compression tag 0][TransactionUpdate with one query set holding one table update]`, the
 * message almost every subscriber gets. Subscribers of one query differ only in the query set id, so the frame is
 * built once per (update, query set id) and the same Buffer is sent to all of them (the usual SDK client numbers its
 * first query set identically, so one commit typically builds one frame for all). Callers must not mutate it.
 */
export function transactionUpdateFrame(update: EncodedTableUpdate, querySetId: number): Buffer {
  const frames = (update.frames ??= new Map());
  let frame = frames.get(querySetId);
  if (frame !== undefined) return frame;
  frame = encodeTransactionUpdateFrame([update], querySetId);
  frames.set(querySetId, frame);
  return frame;
}

/**
 * Like transactionUpdateFrame for one query set holding several table updates (in this order); not cached here
 * (the subscription manager caches it per commit by the list's identity).
 */
export function encodeTransactionUpdateFrame(updates: readonly EncodedTableUpdate[], querySetId: number): Buffer {
  let bytes = frameQuerySetIdOffsetBytes + 8;
  for (const u of updates) bytes += u.encoded.length;
  const frame = Buffer.allocUnsafe(bytes);
  frame[0] = 0; // compression tag None; the session rewrites the frame when it compresses
  frame[1] = transactionUpdateTag;
  frame.writeUInt32LE(1, 2); // one query set
  frame.writeUInt32LE(querySetId, frameQuerySetIdOffsetBytes);
  frame.writeUInt32LE(updates.length, frameQuerySetIdOffsetBytes + 4); // its table updates
  let at = frameQuerySetIdOffsetBytes + 8;
  for (const u of updates) { frame.set(u.encoded, at); at += u.encoded.length; }
  return frame;
}

function writeQuerySetUpdates(w: BsatnWriter, sets: QuerySetUpdate[]): void {
  w.writeU32(sets.length);
  for (const s of sets) {
    w.writeU32(s.querySetId);
    w.writeU32(s.tables.length);
    for (const t of s.tables) writeTableUpdate(w, t);
  }
}

export function writeServerMessage(w: BsatnWriter, m: ServerMessage): void {
  switch (m.tag) {
    case 'InitialConnection':
      w.writeU8(0); w.writeU256(m.identity); w.writeU128(m.connectionId); w.writeString(m.token);
      return;
    case 'SubscribeApplied':
      w.writeU8(1); w.writeU32(m.requestId); w.writeU32(m.querySetId); writeQueryRows(w, m.rows);
      return;
    case 'UnsubscribeApplied':
      w.writeU8(2); w.writeU32(m.requestId); w.writeU32(m.querySetId);
      if (m.rows === undefined) w.writeU8(1);
      else { w.writeU8(0); writeQueryRows(w, m.rows); }
      return;
    case 'SubscriptionError':
      w.writeU8(3);
      if (m.requestId === undefined) w.writeU8(1);
      else { w.writeU8(0); w.writeU32(m.requestId); }
      w.writeU32(m.querySetId); w.writeString(m.error);
      return;
    case 'TransactionUpdate':
      w.writeU8(4); writeQuerySetUpdates(w, m.querySets);
      return;
    case 'OneOffQueryResult':
      w.writeU8(5); w.writeU32(m.requestId);
      if (m.result.ok) { w.writeU8(0); writeQueryRows(w, m.result.rows); }
      else { w.writeU8(1); w.writeString(m.result.error); }
      return;
    case 'ReducerResult':
      w.writeU8(6); w.writeU32(m.requestId); w.writeI64(m.timestampMicros);
      writeReducerOutcome(w, m.outcome);
      return;
    case 'ProcedureResult':
      w.writeU8(7);
      if (m.status.tag === 'Returned') { w.writeU8(0); w.writeBytes(m.status.value); }
      else { w.writeU8(1); w.writeString(m.status.message); }
      w.writeI64(m.timestampMicros); w.writeI64(m.durationMicros); w.writeU32(m.requestId);
      return;
  }
}

function writeReducerOutcome(w: BsatnWriter, o: ReducerOutcome): void {
  switch (o.tag) {
    case 'Ok':
      w.writeU8(0); w.writeBytes(o.retValue); writeQuerySetUpdates(w, o.transactionUpdate);
      return;
    case 'OkEmpty':
      w.writeU8(1);
      return;
    case 'Err': {
      // Bytes whose content is itself a BSATN string: u32 outer length, u32 inner length, UTF-8.
      w.writeU8(2);
      const inner = new BsatnWriter(o.message.length + 8);
      inner.writeString(o.message);
      w.writeBytes(inner.written());
      return;
    }
    case 'InternalError':
      w.writeU8(3); w.writeString(o.message);
      return;
  }
}

export function encodeServerMessage(m: ServerMessage): Uint8Array {
  const w = new BsatnWriter(256);
  writeServerMessage(w, m);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------------------------
// Server message decoding (tests, our own tools). Strict: exact RowOffsets, no trailing bytes.

/** Decodes all ServerMessages in one (decompressed, untagged) frame body. */
export function decodeServerMessages(body: Uint8Array): ServerMessage[] {
  if (body.length === 0) throw new ProtocolError('empty server frame body');
  const r = new BsatnReader(body);
  const out: ServerMessage[] = [];
  while (r.remainingBytes > 0) out.push(readServerMessage(r));
  return out;
}

function readServerMessage(r: BsatnReader): ServerMessage {
  const start = r.offset;
  const tag = r.readU8();
  const name = serverMessageTags[tag];
  if (name === undefined) throw new ProtocolError(`unknown ServerMessage tag ${tag} at byte ${start}`);
  switch (name) {
    case 'InitialConnection':
      return { tag: name, identity: r.readU256(), connectionId: r.readU128(), token: r.readString() };
    case 'SubscribeApplied':
      return { tag: name, requestId: r.readU32(), querySetId: r.readU32(), rows: readQueryRows(r) };
    case 'UnsubscribeApplied': {
      const requestId = r.readU32();
      const querySetId = r.readU32();
      const rows = readOption(r, () => readQueryRows(r));
      return { tag: name, requestId, querySetId, rows };
    }
    case 'SubscriptionError': {
      const requestId = readOption(r, () => r.readU32());
      return { tag: name, requestId, querySetId: r.readU32(), error: r.readString() };
    }
    case 'TransactionUpdate':
      return { tag: name, querySets: readQuerySetUpdates(r) };
    case 'OneOffQueryResult': {
      const requestId = r.readU32();
      const at = r.offset;
      const t = r.readU8();
      if (t === 0) return { tag: name, requestId, result: { ok: true, rows: readQueryRows(r) } };
      if (t === 1) return { tag: name, requestId, result: { ok: false, error: r.readString() } };
      throw new ProtocolError(`bad Result tag ${t} at byte ${at}`);
    }
    case 'ReducerResult': {
      const requestId = r.readU32();
      const timestampMicros = r.readI64();
      const at = r.offset;
      const t = r.readU8();
      let outcome: ReducerOutcome;
      if (t === 0) outcome = { tag: 'Ok', retValue: r.readBytes(), transactionUpdate: readQuerySetUpdates(r) };
      else if (t === 1) outcome = { tag: 'OkEmpty' };
      else if (t === 2) {
        const inner = new BsatnReader(r.readBytes());
        outcome = { tag: 'Err', message: inner.readString() };
        inner.expectEnd('ReducerOutcome::Err string');
      } else if (t === 3) outcome = { tag: 'InternalError', message: r.readString() };
      else throw new ProtocolError(`bad ReducerOutcome tag ${t} at byte ${at}`);
      return { tag: name, requestId, timestampMicros, outcome };
    }
    case 'ProcedureResult': {
      const at = r.offset;
      const t = r.readU8();
      let status: ProcedureStatus;
      if (t === 0) status = { tag: 'Returned', value: r.readBytes() };
      else if (t === 1) status = { tag: 'InternalError', message: r.readString() };
      else throw new ProtocolError(`bad ProcedureStatus tag ${t} at byte ${at}`);
      return { tag: name, status, timestampMicros: r.readI64(), durationMicros: r.readI64(), requestId: r.readU32() };
    }
  }
}

function readOption<T>(r: BsatnReader, read: () => T): T | undefined {
  const at = r.offset;
  const t = r.readU8();
  if (t === 0) return read();
  if (t === 1) return undefined;
  throw new ProtocolError(`bad Option tag ${t} at byte ${at}`);
}

function readRowList(r: BsatnReader): Uint8Array[] {
  const at = r.offset;
  const hint = r.readU8();
  let offsets: number[] | undefined;
  let fixed = 0;
  if (hint === 0) {
    fixed = r.readU16();
    if (fixed === 0) throw new ProtocolError(`RowSizeHint::FixedSize(0) at byte ${at}`);
  } else if (hint === 1) {
    const n = r.readU32();
    offsets = new Array(n);
    for (let i = 0; i < n; i++) offsets[i] = Number(r.readU64());
  } else {
    throw new ProtocolError(`bad RowSizeHint tag ${hint} at byte ${at}`);
  }
  const data = r.readBytes();
  const rows: Uint8Array[] = [];
  if (offsets === undefined) {
    if (data.length % fixed !== 0) throw new ProtocolError(`rows_data length ${data.length} not a multiple of ${fixed}`);
    for (let o = 0; o < data.length; o += fixed) rows.push(data.subarray(o, o + fixed));
    return rows;
  }
  if (offsets.length === 0 && data.length !== 0) {
    throw new ProtocolError(`BsatnRowList at byte ${at}: no row offsets but ${data.length} bytes of rows`);
  }
  for (let i = 0; i < offsets.length; i++) {
    const s = offsets[i];
    const e = i + 1 < offsets.length ? offsets[i + 1] : data.length;
    if (s > e || e > data.length || (i === 0 && s !== 0)) {
      throw new ProtocolError(`BsatnRowList at byte ${at}: bad row offset ${s} (row ${i})`);
    }
    rows.push(data.subarray(s, e));
  }
  return rows;
}

function readQueryRows(r: BsatnReader): SingleTableRows[] {
  const n = r.readU32();
  const out: SingleTableRows[] = [];
  for (let i = 0; i < n; i++) out.push({ table: r.readString(), rows: readRowList(r) });
  return out;
}

function readQuerySetUpdates(r: BsatnReader): QuerySetUpdate[] {
  const n = r.readU32();
  const sets: QuerySetUpdate[] = [];
  for (let i = 0; i < n; i++) {
    const querySetId = r.readU32();
    const tn = r.readU32();
    const tables: TableUpdate[] = [];
    for (let j = 0; j < tn; j++) {
      const tableName = r.readString();
      const rn = r.readU32();
      const rows: TableUpdateRows[] = [];
      for (let k = 0; k < rn; k++) {
        const at = r.offset;
        const t = r.readU8();
        if (t === 0) rows.push({ tag: 'PersistentTable', inserts: readRowList(r), deletes: readRowList(r) });
        else if (t === 1) rows.push({ tag: 'EventTable', events: readRowList(r) });
        else throw new ProtocolError(`bad TableUpdateRows tag ${t} at byte ${at}`);
      }
      tables.push({ tableName, rows });
    }
    sets.push({ querySetId, tables });
  }
  return sets;
}
