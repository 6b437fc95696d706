// limits.ts — the named limits that bound what one client, one query or one module can consume, gathered in one
// place so their relations can be asserted (TigerBeetle's constants.zig, SQLite's sqliteLimit.h).
//
// Owns: limits added by the hardening work (issue 11) and the assertions that tie them together. Older limits still
// live beside the code that enforces them (grep `MaxBytes`, `TimeoutMs`); move one here when it gains a relation to
// another. Every value has its unit in its name. docs/reliability.md lists each limit with the test that proves it.
// May call: nothing (every layer may import this file).

/** Throws when a relation between two limits does not hold: a programmer error, caught at import time. */
export function assertLimit(condition: boolean, relation: string): void {
  if (!condition) throw new Error(`limits.ts: broken relation: ${relation}`);
}

// ---- Module calls and the server's thread (issue 11 items 4–6) ------------------------------------------------------
// Every database's reducers, views, lifecycle hooks and scheduled reducers run on the server's one thread (isolated-vm
// applySync; engine v2 moves each database off it). These bound how long one call may hold that thread, how the HTTP
// server survives such a hold, and how one database shares the thread with the others.

/**
 * Reads a non-negative integer limit from the environment (server-wide overrides, e.g. `SPACETIME_REDUCER_TIMEOUT_MS`
 * in tests); `fallback` when unset. A malformed value is an operating error at start-up, named.
 */
export function limitFromEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got \`${text}\``);
  return n;
}

/**
 * Time one reducer, view or lifecycle-hook call may take, in wall time from its start: time the host spends in the
 * call's syscalls counts (host/syscalls.ts checks it at every syscall; isolated-vm's own timeout counts only time inside
 * the isolate). Upstream has no such budget; an endless loop must not hang us. 0 disables it.
 */
export const reducerTimeoutMsDefault = 10_000;
/** The reducer limit this server runs with: `SPACETIME_REDUCER_TIMEOUT_MS`, else the default. */
export function reducerTimeoutMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_REDUCER_TIMEOUT_MS', reducerTimeoutMsDefault, env);
}
/** Each of a module's top-level evaluation, hook lookup and describe; also paid again when a trap re-creates the isolate. */
export const moduleEvaluateTimeoutMs = 10_000;

/**
 * Longest the server's thread can be held by one module call: the call's limit, then re-creating the isolate after a
 * trap (the module is evaluated again). Infinity when the reducer limit is disabled (0).
 */
export function threadHoldMsMax(reducerTimeoutMs: number): number {
  return reducerTimeoutMs === 0 ? Infinity : reducerTimeoutMs + moduleEvaluateTimeoutMs;
}

/**
 * Idle time a keep-alive HTTP connection is kept once the thread is free (Node's default). A client may reuse the
 * connection until then; the server closes it afterwards.
 */
export const httpKeepAliveIdleMs = 5_000;
/**
 * Node closes an idle keep-alive socket from a timer, and after the thread was held, timers run before sockets are
 * read: a request a client wrote meanwhile on a connection idle for longer than this timeout would be reset
 * (ECONNRESET), never answered. So the timeout covers the longest hold plus the idle time. 0 (never close idle
 * connections) when holds are unbounded.
 */
export function httpKeepAliveTimeoutMs(reducerTimeoutMs: number): number {
  const hold = threadHoldMsMax(reducerTimeoutMs);
  return hold === Infinity ? 0 : hold + httpKeepAliveIdleMs;
}
/** Time a client has to send a request's headers; Node wants it above the keep-alive timeout. */
export function httpHeadersTimeoutMs(reducerTimeoutMs: number): number {
  return Math.max(httpHeadersTimeoutMsMin, httpKeepAliveTimeoutMs(reducerTimeoutMs) + 1_000);
}
/** Node's own default headers timeout, kept as the floor. */
export const httpHeadersTimeoutMsMin = 60_000;
assertLimit(httpKeepAliveTimeoutMs(reducerTimeoutMsDefault) > threadHoldMsMax(reducerTimeoutMsDefault),
  'an idle keep-alive connection outlives the longest hold of the server thread');
assertLimit(httpHeadersTimeoutMs(reducerTimeoutMsDefault) > httpKeepAliveTimeoutMs(reducerTimeoutMsDefault),
  'the headers timeout exceeds the keep-alive timeout');

// ---- WebSocket sessions and tokens (issue 11 items 1, 11, 12) -------------------------------------------------------
// server/websocket/session.ts writes each client's messages in bounded pieces as its socket drains, and judges a client
// slow by what it fails to read over time, not by the size of one message; auth/tokens.ts checks every token's `exp`.

/**
 * Seconds after `exp` a token is still accepted: none. Upstream allows 60 (jsonwebtoken's default), which let a token
 * 20 s past `exp` mint a fresh websocket token; tokens are short-lived exactly so that expiry means something.
 */
export const tokenExpiryLeewaySeconds = 0;

// ---- Durability (issue 11 items 8–10) ---------------------------------------------------------------------------
// Every commit is one commit-log record (durability/segment.ts); a record's payload is bounded so that a damaged length
// field cannot make recovery read gigabytes. Whatever must be logged is therefore bounded BEFORE it is committed in
// memory: a transaction by the bytes it writes (checked before its commit, host/database.ts), a program by its text and
// module definition (checked when it is loaded, host/update.ts). Before these, a transaction larger than a record was
// committed in memory, acknowledged, and never written.

/** Payload bytes of one commit-log record: a larger length in a record header is corruption, a larger append refused. */
export const logRecordPayloadMaxBytes = 256 * 1024 * 1024;
/**
 * What the datastore charges a transaction per row it writes, on top of the row's bytes: the record's framing of one
 * row (a varint length, an update's diff header) is at most 15 bytes (host/persistence.ts), so the charge bounds it.
 */
export const txWriteRowOverheadBytes = 16;
/** … and per table it touches (the table's id, row width and shape varints: at most 25 bytes). */
export const txWriteTableOverheadBytes = 32;
/**
 * Bytes one transaction may write: every inserted row, both sides of an update and every deleted row, each with
 * `txWriteRowOverheadBytes`, plus `txWriteTableOverheadBytes` per table. A reducer over it fails and rolls back with an
 * error naming this limit. 128 MiB: the whole transaction is held in memory about three times over (rows, undo log,
 * the encoded record) before it is on disk. `SPACETIME_TX_WRITE_BYTES_MAX` overrides it (tests), up to the relation.
 */
export const txWriteBytesMaxDefault = 128 * 1024 * 1024;
/**
 * Room in a transaction record for what is not rows: the kind byte, table count, the sequence reservations the
 * transaction moved (name + value each) and a client change (49 bytes). A schema's sequence names stay far below it.
 */
export const txRecordOverheadMaxBytes = 1024 * 1024;
/** The transaction limit this server runs with. */
export function txWriteBytesMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  const n = limitFromEnv('SPACETIME_TX_WRITE_BYTES_MAX', txWriteBytesMaxDefault, env);
  assertLimit(n + txRecordOverheadMaxBytes <= logRecordPayloadMaxBytes, 'SPACETIME_TX_WRITE_BYTES_MAX: the largest transaction fits one log record');
  return n;
}
/**
 * Program text plus module definition of one module (its Program record in the log; the HTTP body limit for a
 * program, `moduleBodyMaxBytes` in server/http.ts, is 64 MiB of text). A larger module is refused when it is loaded.
 */
export const programRecordMaxBytes = 192 * 1024 * 1024;
/** Room in a Program record for its other fields (identities, timestamp, length prefixes). */
export const programRecordOverheadMaxBytes = 1024;
assertLimit(txWriteBytesMaxDefault + txRecordOverheadMaxBytes <= logRecordPayloadMaxBytes,
  'the largest transaction fits one log record');
assertLimit(programRecordMaxBytes + programRecordOverheadMaxBytes <= logRecordPayloadMaxBytes,
  'the largest program fits one log record');
assertLimit(64 * 1024 * 1024 < programRecordMaxBytes, 'a program as large as the HTTP body limit (64 MiB) leaves room for its definition');
