// server/metrics.ts — GET /v1/metrics (Prometheus text format) and GET /v1/health, as upstream serves them.
//
// Owns: the one metrics registry of the server (prom-client), every metric's name, help and labels, and the two
// routes. Nothing is counted here: hot paths bump plain numbers (metrics/counters.ts, each Database's `counters`,
// each commit log's `stats`), and the registry reads them, and each live database's row counts and module heap, only
// when it is scraped (prom-client `collect` callbacks), so a scrape costs O(databases × (reducers + tables)) and a
// reducer call nothing extra.
// May call: prom-client, server/databases.ts (the live databases), server/http.ts (Router), metrics/counters.ts,
// auth/identity.ts (hex labels), subscription/manager.ts (existingSubscriptions: clients and queries, without
// creating a manager), node:fs.
//
// Names follow upstream's where upstream has the same number (spacetime_worker_connected_clients,
// spacetime_worker_v8_used_heap_size_bytes, label database_identity); ours are spacetime_* beside them.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { identityToHex } from '../auth/identity.js';
import { databaseWorkerThreads, type HistogramCounts, webSocketCounters } from '../metrics/counters.js';
import { existingSubscriptions } from '../subscription/manager.js';
import type { DatabaseRegistry } from './databases.js';
import type { HostedDatabase } from './host-api.js';
import type { Handler, Router } from './http.js';

/** What /v1/health reports as package_name (upstream: the crate's name). */
const packageName = 'spacetimedb-standalone';

/** One live database as the registry sees it at scrape time. */
interface Scraped {
  labels: { database_identity: string };
  db: HostedDatabase;
  dir: string;
}

/** Adds GET /v1/metrics (when `enabled`) and GET /v1/health (always; plus /health for container health checks). */
export function addMetricsRoutes(router: Router, databases: DatabaseRegistry, options: { enabled: boolean; version: string }): void {
  const health: Handler = async (ctx) => {
    ctx.sendJson(200, { package_name: packageName, version: options.version, nodes: [0], schedulable: true });
  };
  router.add('GET', '/v1/health', health);
  router.add('GET', '/health', health);
  if (!options.enabled) return;
  const registry = createMetricsRegistry(databases);
  router.add('GET', '/v1/metrics', async (ctx) => {
    // Databases in worker threads send their current figures first (host/worker/proxy.ts); in-thread ones are read live.
    await Promise.all([...databases.liveEntries()].map(([, db]) => db.refreshMetrics?.()));
    ctx.sendText(200, await registry.metrics(), registry.contentType);
  });
}

/** The server's registry: process metrics (prom-client defaults) plus everything below, read from `databases`. */
export function createMetricsRegistry(databases: DatabaseRegistry): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const live = (): Scraped[] => [...databases.liveEntries()].map(([identity, db]) => ({
    labels: { database_identity: identityToHex(identity) }, db, dir: databases.databaseDir(identity),
  }));
  const registers = [registry];

  new Gauge({
    name: 'spacetime_databases', help: 'Databases open on this server', registers,
    collect() { this.set([...databases.liveEntries()].length); },
  });
  perDatabaseCounter(registers, live, 'spacetime_transactions_total', 'Committed transactions', (s) => s.counters.transactions);
  perDatabaseCounter(registers, live, 'spacetime_reducer_call_batches_total', 'Entries into the module that ran queued reducer calls together',
    (s) => s.counters.callBatches);
  perDatabaseCounter(registers, live, 'spacetime_reducer_calls_batched_total', 'Reducer calls run in those entries', (s) => s.counters.batchedCalls);
  perDatabaseCounter(registers, live, 'spacetime_module_syscall_crossings_total',
    'Calls from the module into the host after entry (what the row cache, read-ahead and queued writes leave)',
    (s) => s.moduleSyscallCrossings);
  perDatabaseCounter(registers, live, 'spacetime_commitlog_bytes_written_total', 'Commit-log record bytes written (framing included)',
    (s) => s.commitLog?.bytesAppended ?? 0);
  perDatabaseCounter(registers, live, 'spacetime_commitlog_fsyncs_total', 'fdatasync calls on commit-log segments', (s) => s.commitLog?.syncs ?? 0);
  new CountsHistogram({
    name: 'spacetime_commitlog_fsync_seconds', help: 'Latency of commit-log fdatasync calls', labelNames: ['database_identity'], registers,
    read: () => live().flatMap(({ labels, db }) => {
      const h = db.metricsSnapshot().commitLog?.syncSeconds;
      return h === undefined ? [] : [{ labels, counts: h }];
    }),
  });

  const reducerLabels = ['database_identity', 'reducer'] as const;
  const perReducer = () => live().flatMap(({ labels, db }) =>
    [...db.metricsSnapshot().counters.reducers].map(([reducer, counters]) => ({ labels: { ...labels, reducer }, counters })));
  new Counter({
    name: 'spacetime_reducer_calls_total', help: 'Reducer calls (lifecycle and scheduled included), failed ones too', labelNames: reducerLabels, registers,
    collect() { this.reset(); for (const r of perReducer()) this.inc(r.labels, r.counters.calls); },
  });
  new Counter({
    name: 'spacetime_reducer_errors_total', help: 'Reducer calls that failed (module error, panic, limit) and rolled back', labelNames: reducerLabels, registers,
    collect() { this.reset(); for (const r of perReducer()) this.inc(r.labels, r.counters.errors); },
  });
  new CountsHistogram({
    name: 'spacetime_reducer_duration_seconds', help: 'Time a reducer call ran in its module (before its commit)', labelNames: [...reducerLabels], registers,
    read: () => perReducer().map((r) => ({ labels: r.labels, counts: r.counters.durationSeconds })),
  });

  new Gauge({
    name: 'spacetime_worker_connected_clients', help: 'WebSocket clients connected to the database', labelNames: ['database_identity'], registers,
    collect() { this.reset(); for (const s of live()) this.set(s.labels, existingSubscriptions(s.db)?.clientCount ?? 0); },
  });
  new Gauge({
    name: 'spacetime_subscription_queries', help: 'Distinct live subscription queries of the database', labelNames: ['database_identity'], registers,
    collect() { this.reset(); for (const s of live()) this.set(s.labels, existingSubscriptions(s.db)?.queryCount ?? 0); },
  });
  new Gauge({
    name: 'spacetime_worker_v8_used_heap_size_bytes', help: 'V8 heap used by the database\'s module isolate', labelNames: ['database_identity'], registers,
    collect() {
      this.reset();
      for (const s of live()) {
        const bytes = s.db.metricsSnapshot().moduleHeapBytes;
        if (bytes !== undefined) this.set(s.labels, bytes);
      }
    },
  });
  new Gauge({
    name: 'spacetime_table_rows', help: 'Rows in each table', labelNames: ['database_identity', 'table'], registers,
    collect() {
      this.reset();
      for (const s of live()) for (const t of s.db.metricsSnapshot().tables) this.set({ ...s.labels, table: t.name }, t.rows);
    },
  });
  new Gauge({
    name: 'spacetime_snapshot_age_seconds', help: 'Age of the newest snapshot file (absent: none yet)', labelNames: ['database_identity'], registers,
    async collect() {
      this.reset();
      for (const s of live()) {
        const age = await snapshotAgeSeconds(join(s.dir, 'snapshots'));
        if (age !== undefined) this.set(s.labels, age);
      }
    },
  });

  new Gauge({
    name: 'spacetime_database_worker_threads', help: 'Database worker threads running (worker mode)', registers,
    collect() { this.set(databaseWorkerThreads.size); },
  });
  new Gauge({
    name: 'spacetime_database_worker_thread_databases', help: 'Databases each database worker thread serves', labelNames: ['thread'], registers,
    collect() { this.reset(); for (const [thread, n] of databaseWorkerThreads) this.set({ thread: String(thread) }, n); },
  });

  const ws: [string, string, () => number][] = [
    ['spacetime_websocket_messages_received_total', 'Client messages received over WebSocket (binary protocol)', () => webSocketCounters.messagesIn],
    ['spacetime_websocket_received_bytes_total', 'Bytes of client WebSocket frames received', () => webSocketCounters.bytesIn],
    ['spacetime_websocket_messages_sent_total', 'Server messages sent over WebSocket (binary protocol)', () => webSocketCounters.messagesOut],
    ['spacetime_websocket_sent_bytes_total', 'Payload bytes of server messages sent, before compression framing', () => webSocketCounters.bytesOut],
  ];
  for (const [name, help, read] of ws) {
    new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
  }
  return registry;
}

type Snapshot = ReturnType<HostedDatabase['metricsSnapshot']>;

function perDatabaseCounter(
  registers: Registry[], live: () => Scraped[], name: string, help: string, read: (s: Snapshot) => number,
): void {
  new Counter({
    name, help, labelNames: ['database_identity'], registers,
    collect() { this.reset(); for (const s of live()) this.inc(s.labels, read(s.db.metricsSnapshot())); },
  });
}

/**
 * A histogram whose buckets are counted elsewhere (metrics/counters.ts HistogramCounts) and read at scrape time:
 * prom-client's own Histogram would need a label lookup per observation on the hot path.
 */
class CountsHistogram extends Histogram<string> {
  private readonly read: () => { labels: Record<string, string>; counts: HistogramCounts }[];
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(config: { name: string; help: string; labelNames: string[]; registers: Registry[]; read: CountsHistogram['read'] }) {
    super({ name: config.name, help: config.help, labelNames: config.labelNames, registers: config.registers });
    this.read = config.read;
    this.metricName = config.name;
    this.metricHelp = config.help;
  }

  /**
   * prom-client's registry renders a histogram through this method (and `get` calls it too), so our counts replace
   * its own bucket map here; everything else (text format, escaping) stays prom-client's.
   */
  async getForPromString(): ReturnType<Histogram<string>['get']> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, counts } of this.read()) {
      let cumulative = 0;
      counts.bounds.forEach((bound, i) => {
        cumulative += counts.counts[i]!;
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${this.metricName}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: counts.count, metricName: `${this.metricName}_bucket` });
      values.push({ labels, value: counts.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels, value: counts.count, metricName: `${this.metricName}_count` });
    }
    // prom-client's typings declare `type` as a numeric enum; its registry writes the string it holds ('histogram').
    return { name: this.metricName, help: this.metricHelp, type: 'histogram' as never, values, aggregator: 'sum', collect: () => {} };
  }
}

/** Seconds since the newest `<offset>.snapshot` was written (names sort by offset: 20 digits), or undefined. */
async function snapshotAgeSeconds(dir: string): Promise<number | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^\d{20}\.snapshot$/.test(n)).sort();
  } catch {
    return undefined;
  }
  const newest = names[names.length - 1];
  if (newest === undefined) return undefined;
  try {
    return Math.max(0, (Date.now() - (await stat(join(dir, newest))).mtimeMs) / 1000);
  } catch {
    return undefined;
  }
}
