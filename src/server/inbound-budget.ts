// server/inbound-budget.ts — the server-wide bound on bytes clients have sent that the server holds before handling
// them: HTTP request bodies being read (server/http.ts) and WebSocket messages received in part or queued
// (server/websocket/). Each connection is bounded on its own (a body by its route's limit, a message by ws's
// maxPayload, a queue by pausing the socket), but not the sum: 20 connections each sending 60 MiB of a publish body,
// or 30 MiB of one WebSocket frame, and never finishing, grew the server by 600 MiB, and the connections limit allows
// 10,000 of them (hundreds of GiB). The memory guard (host/memory-guard.ts) refuses new rows and databases, not bytes
// arriving on sockets, so nothing stopped the kernel's OOM killer.
//
// Past the bound the largest holders are evicted until the rest fits: one slow upload of many megabytes goes first,
// and the small requests and messages of everyone else go on. An evicted holder is told why (a 503, a close code).
//
// Owns: the running total and the holders' shares. May call: limits.

import assert from 'node:assert/strict';
import { inboundBytesHeldMaxConfigured } from '../limits.js';

/** One connection's (or request's) share of the budget. */
export interface InboundHolder {
  /** Bytes charged to this holder now; only InboundBudget.charge changes it. */
  heldBytes: number;
  /** Drops the held bytes (closes the request or connection, telling the client why) and charges 0 afterwards. */
  evict(reason: string): void;
}

export class InboundBudget {
  private totalBytes = 0;
  private readonly holders = new Set<InboundHolder>();

  constructor(readonly maxBytes = inboundBytesHeldMaxConfigured()) {}

  get heldBytes(): number { return this.totalBytes; }

  /**
   * Sets `holder`'s share to `bytes`. Over the bound, evicts the largest holders until the total fits. A holder stays
   * known until `release` (a connection's charge goes up and down with every message: no set churn per message).
   */
  charge(holder: InboundHolder, bytes: number): void {
    assert.ok(bytes >= 0, 'a holder holds a non-negative number of bytes');
    if (bytes === holder.heldBytes) return;
    this.totalBytes += bytes - holder.heldBytes;
    holder.heldBytes = bytes;
    if (bytes > 0) this.holders.add(holder);
    while (this.totalBytes > this.maxBytes) this.evictLargest();
  }

  /** The holder's request or connection is gone: its share is 0 and it is forgotten. */
  release(holder: InboundHolder): void {
    this.charge(holder, 0);
    this.holders.delete(holder);
  }

  private evictLargest(): void {
    let largest: InboundHolder | undefined;
    for (const h of this.holders) if (largest === undefined || h.heldBytes > largest.heldBytes) largest = h;
    assert.ok(largest !== undefined, 'bytes over the budget belong to some holder');
    // A WebSocket close reason keeps 123 bytes: the limit's name comes first.
    const reason = `inboundBytesHeldMax: the server holds ${this.totalBytes} bytes received and not yet handled, over its ` +
      `limit of ${this.maxBytes}; this connection held the most (${largest.heldBytes}): try again later`;
    this.release(largest);
    largest.evict(reason);
  }
}
