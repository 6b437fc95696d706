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

// ---- WebSocket sessions and tokens (issue 11 items 1, 11, 12) -------------------------------------------------------
// server/websocket/session.ts writes each client's messages in bounded pieces as its socket drains, and judges a client
// slow by what it fails to read over time, not by the size of one message; auth/tokens.ts checks every token's `exp`.

/**
 * Seconds after `exp` a token is still accepted: none. Upstream allows 60 (jsonwebtoken's default), which let a token
 * 20 s past `exp` mint a fresh websocket token; tokens are short-lived exactly so that expiry means something.
 */
export const tokenExpiryLeewaySeconds = 0;
