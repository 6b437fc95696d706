// server/websocket/query-gate.ts — the subscription requests (Subscribe, Unsubscribe, OneOffQuery) that the WebSocket
// connections of one remote address have handed to one database and that are not answered yet, bounded by
// `queriesInFlightPerAddressMax`; the next one of that address waits here, in arrival order, for an answer.
//
// Why: a database's worker takes the requests it holds back one connection at a time (host/worker/backlog.ts), so 200
// anonymous connections of one host, each with a slow one-off query, held 200 turns ahead of every other client's
// request (session 12 attack probe). Bounding what one address has handed to a database bounds its turns there. The
// database owner's connections are not gated (their requests go first anyway).
// Owns: the per-(database, address) count and its waiters, and a connection's places (GatePlaces). Does not own: what
// a session does while it waits (session.ts and json-session.ts hold its message and stop reading their queue).
// May call: limits.ts.

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

/**
 * One connection's places at its address's gate: one per query handed to the database and not yet answered, plus one
 * granted while its next query waited (that query uses it). All go back when it closes.
 */
export class GatePlaces {
  private held = 0;
  private granted = false;
  /** The gate its places were taken from (it stays in the map while any are held), and the one it waits at. */
  private gate: QueryGate | undefined;
  private waitingAt: QueryGate | undefined;
  private waiter: (() => void) | undefined;

  constructor(private readonly gateOf: () => QueryGate) {}

  /** Takes a place for the next query; false: `wait` for one. */
  take(): boolean {
    if (this.granted) {
      this.granted = false;
      return true;
    }
    const gate = this.gateOf();
    if (!gate.tryTake()) return false;
    this.gate = gate;
    this.held++;
    return true;
  }

  /** Resolves once the gate handed this connection a place (in arrival order among its address's connections). */
  wait(): Promise<void> {
    const gate = this.gateOf();
    return new Promise<void>((resolve) => {
      const granted = (): void => {
        this.waiter = undefined;
        this.gate = gate;
        this.held++;
        this.granted = true;
        resolve();
      };
      this.waiter = granted;
      this.waitingAt = gate;
      gate.wait(granted);
    });
  }

  /** A query was answered: its place goes to the next waiting query of the address. */
  answered(): void {
    if (this.held <= (this.granted ? 1 : 0)) return;
    this.held--;
    this.gate!.give();
  }

  /** The connection closed: its places go back and its wait is withdrawn. */
  release(): void {
    if (this.waiter !== undefined) this.waitingAt?.cancel(this.waiter);
    this.waiter = undefined;
    this.granted = false;
    while (this.held > 0) {
      this.held--;
      this.gate!.give();
    }
  }
}
