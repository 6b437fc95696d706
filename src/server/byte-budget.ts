// server/byte-budget.ts — a server-wide bound on bytes held for clients, shared by many holders (connections,
// requests): past it the largest holders are evicted until the rest fits, so one client holding many megabytes goes
// first and the small requests and messages of everyone else go on (a budget may choose otherwise: `victim`).
// server/inbound-budget.ts bounds bytes received
// and not yet handled, server/outbound-budget.ts bytes answered and not yet taken by their clients.
//
// Owns: the running total and the holders' shares. May call: nothing.

import assert from 'node:assert/strict';

/** One connection's (or request's) share of a budget. */
export interface BudgetHolder {
  /** Bytes charged to this holder now; only ByteBudget.charge changes it. */
  heldBytes: number;
  /** Drops the held bytes (closes the request or connection, telling the client why if it can); charges 0 after. */
  evict(reason: string): void;
}

export class ByteBudget<H extends BudgetHolder = BudgetHolder> {
  private totalBytes = 0;
  protected readonly holders = new Set<H>();

  /** `reason`: what an evicted holder is told, given the total held, the limit and its own share. */
  constructor(
    readonly maxBytes: number,
    private readonly reason: (totalBytes: number, maxBytes: number, largestBytes: number) => string,
  ) {}

  get heldBytes(): number { return this.totalBytes; }

  /**
   * Sets `holder`'s share to `bytes`. Over the bound, evicts the largest holders until the total fits. A holder stays
   * known until `release` (a connection's charge goes up and down with every message: no set churn per message).
   */
  charge(holder: H, bytes: number): void {
    assert.ok(bytes >= 0, 'a holder holds a non-negative number of bytes');
    if (bytes === holder.heldBytes) return;
    this.totalBytes += bytes - holder.heldBytes;
    holder.heldBytes = bytes;
    if (bytes > 0) this.holders.add(holder);
    while (this.totalBytes > this.maxBytes) this.evictLargest();
  }

  /** The holder's request or connection is gone: its share is 0 and it is forgotten. */
  release(holder: H): void {
    this.charge(holder, 0);
    this.holders.delete(holder);
  }

  /** The holder evicted next: the largest. */
  protected victim(): H | undefined {
    let largest: H | undefined;
    for (const h of this.holders) if (largest === undefined || h.heldBytes > largest.heldBytes) largest = h;
    return largest;
  }

  private evictLargest(): void {
    const victim = this.victim();
    assert.ok(victim !== undefined, 'bytes over the budget belong to some holder');
    const reason = this.reason(this.totalBytes, this.maxBytes, victim.heldBytes);
    this.release(victim);
    victim.evict(reason);
  }
}
