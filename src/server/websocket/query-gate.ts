// server/websocket/query-gate.ts — the subscription requests (Subscribe, Unsubscribe, OneOffQuery) that the WebSocket
// connections of one remote address have handed to one database and that are not answered yet, bounded by
// `queriesInFlightPerAddressMax`; the next one of that address waits here, in arrival order, for an answer.
//
// Why: a database's worker takes the requests it holds back one connection at a time (host/worker/backlog.ts), so 200
// anonymous connections of one host, each with a slow one-off query, held 200 turns ahead of every other client's
// request (session 12 attack probe). Bounding what one address has handed to a database bounds its turns there. The
// database owner's connections are not gated (their requests go first anyway).
// Owns: the per-(database, address) count and its waiters. Does not own: what a session does while it waits
// (session.ts holds its message and stops reading its queue). May call: limits.ts.

import { queriesInFlightPerAddressMax } from '../../limits.js';

export class QueryGate {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly key: string) {}

  /** Takes a place if there is one. */
  tryTake(): boolean {
    if (this.inFlight >= queriesInFlightPerAddressMax) return false;
    this.inFlight++;
    return true;
  }

  /** `granted` runs once a place is handed to it (in arrival order); `cancel` withdraws it. */
  wait(granted: () => void): void {
    this.waiting.push(granted);
  }

  cancel(granted: () => void): void {
    const at = this.waiting.indexOf(granted);
    if (at >= 0) this.waiting.splice(at, 1);
  }

  /** A place is given back (its request was answered, or its connection closed): the first waiter gets it. */
  give(): void {
    const next = this.waiting.shift();
    if (next !== undefined) {
      next();
      return;
    }
    this.inFlight--;
    if (this.inFlight === 0) gates.delete(this.key);
  }
}

const gates = new Map<string, QueryGate>();

/** The gate of the connections from `address` to database `database`. */
export function queryGateFor(database: bigint, address: string): QueryGate {
  const key = `${database.toString(16)}/${address}`;
  let gate = gates.get(key);
  if (gate === undefined) gates.set(key, (gate = new QueryGate(key)));
  return gate;
}
