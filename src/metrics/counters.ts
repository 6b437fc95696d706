// metrics/counters.ts — the numbers hot paths bump for GET /v1/metrics: plain counters and fixed-bucket histograms.
//
// Owns: the counter objects (per database, per reducer, per commit log, the server-wide WebSocket message counts, and
// the databases of each database worker thread) and the bucket bounds. Nothing here knows Prometheus: server/metrics.ts reads these objects when it is scraped and
// turns them into its text format (prom-client), so a reducer call, a commit or a message costs a few plain number
// increments and no label lookup (bench:core before/after in docs/operations.md).
// May call: nothing (the bottom layer beside sats/: host/, durability/ and server/ import it).

/** Bucket bounds (seconds) of reducer call durations: a keynote call is ~10–20 µs, the reducer limit 10 s. */
export const reducerDurationSecondsBuckets: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Bucket bounds (seconds) of fdatasync latencies: an NVMe flush is ~50 µs–2 ms, a busy disk tens of ms and more. */
export const fsyncSecondsBuckets: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/**
 * A histogram as counts per bucket (not cumulative: the scrape accumulates), their sum and count. `observe` is a short
 * linear scan over a dozen bounds and three increments.
 */
export class HistogramCounts {
  /** counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last slot holds those above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** One reducer's calls: every call counts once in `calls` and `duration`; a failed one (any kind) in `errors` too. */
export class ReducerCounters {
  calls = 0;
  errors = 0;
  readonly durationSeconds = new HistogramCounts(reducerDurationSecondsBuckets);
}

/** What one database counts itself; host/database.ts owns one, server/metrics.ts reads it when scraped. */
export class DatabaseCounters {
  /** By the reducer's canonical name (lifecycle hooks and scheduled reducers included). */
  readonly reducers = new Map<string, ReducerCounters>();
  /** Committed transactions (reducer calls, lifecycle hooks, SQL DML). */
  transactions = 0;
  /** Entries into the module that ran queued client calls together (host/database.ts runReducerBatch). */
  callBatches = 0;
  /** Client calls those entries ended (their mean is the batch size). */
  batchedCalls = 0;

  /** Counts one reducer call that took `seconds` (the module's run, before the commit). */
  reducerCalled(name: string, seconds: number, failed: boolean): void {
    let counters = this.reducers.get(name);
    if (counters === undefined) {
      counters = new ReducerCounters();
      this.reducers.set(name, counters);
    }
    counters.calls++;
    if (failed) counters.errors++;
    counters.durationSeconds.observe(seconds);
  }
}

/** Server-wide WebSocket traffic (server/websocket/session.ts bumps these; binary protocol sessions). */
export const webSocketCounters = {
  /** Client messages decoded (a v3 frame may hold several). */
  messagesIn: 0,
  bytesIn: 0,
  /** Server messages handed to sockets (before framing and compression are counted: payload bytes). */
  messagesOut: 0,
  bytesOut: 0,
};

/** Databases each live database worker thread serves (0: an idle one), by thread id; host/worker/proxy.ts keeps it. */
export const databaseWorkerThreads = new Map<number, number>();
