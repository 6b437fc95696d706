// server/inbound-budget.ts — the server-wide bound on bytes clients have sent that the server holds before handling
// them: HTTP request bodies being read (server/http.ts) and WebSocket messages received in part or queued
// (server/websocket/). Each connection is bounded on its own (a body by its route's limit, a message by ws's
// maxPayload, a queue by pausing the socket), but not the sum: 20 connections each sending 60 MiB of a publish body,
// or 30 MiB of one WebSocket frame, and never finishing, grew the server by 600 MiB, and the connections limit allows
// 10,000 of them (hundreds of GiB). The memory guard (host/memory-guard.ts) refuses new rows and databases, not bytes
// arriving on sockets, so nothing stopped the kernel's OOM killer.
//
// Past the bound the largest holders are evicted until the rest fits (server/byte-budget.ts): one slow upload of many
// megabytes goes first, and the small requests and messages of everyone else go on. An evicted holder is told why (a
// 503, a close code).
//
// Owns: the inbound limit's reason text. May call: server/byte-budget.ts, limits.

import { inboundBytesHeldMaxConfigured } from '../limits.js';
import { ByteBudget, type BudgetHolder } from './byte-budget.js';

/** One connection's (or request's) share of the budget. */
export type InboundHolder = BudgetHolder;

export class InboundBudget extends ByteBudget {
  constructor(maxBytes = inboundBytesHeldMaxConfigured()) {
    // A WebSocket close reason keeps 123 bytes: the limit's name comes first.
    super(maxBytes, (total, max, largest) => `inboundBytesHeldMax: the server holds ${total} bytes received and not ` +
      `yet handled, over its limit of ${max}; this connection held the most (${largest}): try again later`);
  }
}
