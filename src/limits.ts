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
