// server/half-open.ts — connections that have not finished their handshake, by remote address, so that one address
// cannot keep every place of a connection bound with sockets that never finish (slowloris, idle PostgreSQL startups).
//
// Owns: the per-address sets of half-open connections and the choice of the one to close when a bound is full.
// May call: nothing.
//
// Nothing is refused for being half-open: a burst of clients from one address (the tests open thousands of WebSockets
// from 127.0.0.1 at once) handshakes within milliseconds and never notices. Only when the server's bound is full does
// a newcomer take the place of the oldest half-open connection of the address holding the most, and only if that
// address holds more than its share and that connection has been half-open for a while.

export class HalfOpenConnections<T> {
  /** Per address: connection → when it became half-open (ms); a Map keeps insertion order, so the first is the oldest. */
  private readonly byAddress = new Map<string, Map<T, number>>();
  private readonly addressOf = new Map<T, string>();

  constructor(private readonly perAddressMax: number, private readonly evictableAfterMs: number) {}

  /** `connection` (not yet here) is half-open from now. */
  add(connection: T, address: string, nowMs = Date.now()): void {
    if (this.addressOf.has(connection)) return;
    let set = this.byAddress.get(address);
    if (set === undefined) this.byAddress.set(address, (set = new Map()));
    set.set(connection, nowMs);
    this.addressOf.set(connection, address);
  }

  /** `connection` finished its handshake or closed. */
  delete(connection: T): void {
    const address = this.addressOf.get(connection);
    if (address === undefined) return;
    this.addressOf.delete(connection);
    const set = this.byAddress.get(address)!;
    set.delete(connection);
    if (set.size === 0) this.byAddress.delete(address);
  }

  count(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /**
   * For a bound that is full: the oldest half-open connection of the address holding the most, if that address holds
   * more than `perAddressMax` and the connection has been half-open for at least `evictableAfterMs`; else undefined
   * (the newcomer is refused as before). The caller closes it and calls `delete`.
   */
  victim(nowMs = Date.now()): { connection: T; address: string; count: number } | undefined {
    let heaviest: string | undefined;
    let heaviestCount = this.perAddressMax;
    for (const [address, set] of this.byAddress) {
      if (set.size > heaviestCount) { heaviest = address; heaviestCount = set.size; }
    }
    if (heaviest === undefined) return undefined;
    const [connection, sinceMs] = this.byAddress.get(heaviest)!.entries().next().value as [T, number];
    return nowMs - sinceMs >= this.evictableAfterMs ? { connection, address: heaviest, count: heaviestCount } : undefined;
  }
}
