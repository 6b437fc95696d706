// src/dashboard/metrics.tsx — reads GET /v1/metrics (Prometheus text format) and turns successive scrapes into the
// four series the dashboard charts for one database: reducer calls/s, p99 reducer latency, commit-log bytes and
// module memory. A server without the route (404) or without a metric yields no series; the page says so.
// Owns: the text-format parser and the series arithmetic. May call: api.tsx.

import { request, type Session } from './api.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition format 0.0.4 (comments skipped; no timestamps needed). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

export interface Scrape {
  atMs: number;
  samples: Sample[];
}

export type ScrapeResult = { ok: true; scrape: Scrape } | { ok: false; reason: string };

export async function scrapeMetrics(session: Session): Promise<ScrapeResult> {
  try {
    const res = await request(session, 'GET', '/v1/metrics');
    return { ok: true, scrape: { atMs: Date.now(), samples: parsePrometheus(await res.text()) } };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

function sum(scrape: Scrape, name: string, database: string, extra?: (s: Sample) => boolean): number | undefined {
  let total: number | undefined;
  for (const s of scrape.samples) {
    if (s.name !== name || s.labels.database_identity !== database || (extra !== undefined && !extra(s))) continue;
    total = (total ?? 0) + s.value;
  }
  return total;
}

/** The first of `names` present for the database (metric names differ between servers; upstream's first). */
function firstPresent(scrape: Scrape, names: string[], database: string): number | undefined {
  for (const name of names) {
    const value = sum(scrape, name, database);
    if (value !== undefined) return value;
  }
  return undefined;
}

/** p99 of the observations between two scrapes of a histogram, as the upper bound of the bucket holding it. */
function p99Between(before: Scrape, after: Scrape, name: string, database: string): number | undefined {
  const buckets = new Map<number, number>();
  const collect = (scrape: Scrape, sign: number) => {
    for (const s of scrape.samples) {
      if (s.name !== `${name}_bucket` || s.labels.database_identity !== database) continue;
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + sign * s.value);
    }
  };
  collect(after, 1);
  collect(before, -1);
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? 0;
  if (total <= 0) return undefined;
  for (const le of bounds) if ((buckets.get(le) ?? 0) >= 0.99 * total) return le === Infinity ? bounds[bounds.length - 2] : le;
  return undefined;
}

export interface Point {
  atMs: number;
  callsPerSecond?: number;
  p99Ms?: number;
  commitLogBytes?: number;
  memoryBytes?: number;
}

export const metricNames = {
  calls: 'spacetime_reducer_calls_total',
  duration: 'spacetime_reducer_duration_seconds',
  commitLog: ['spacetime_commitlog_size_bytes', 'spacetime_commitlog_bytes_written_total'],
  memory: ['spacetime_worker_v8_used_heap_size_bytes', 'spacetime_module_heap_bytes'],
};

/** One chart point from two successive scrapes (rates need both). */
export function pointBetween(before: Scrape | undefined, after: Scrape, database: string): Point {
  const point: Point = { atMs: after.atMs };
  point.commitLogBytes = firstPresent(after, metricNames.commitLog, database);
  point.memoryBytes = firstPresent(after, metricNames.memory, database);
  if (before === undefined) return point;
  const seconds = (after.atMs - before.atMs) / 1000;
  const callsBefore = sum(before, metricNames.calls, database);
  const callsAfter = sum(after, metricNames.calls, database);
  if (callsBefore !== undefined && callsAfter !== undefined && seconds > 0) point.callsPerSecond = Math.max(0, callsAfter - callsBefore) / seconds;
  const p99 = p99Between(before, after, metricNames.duration, database);
  if (p99 !== undefined) point.p99Ms = p99 * 1000;
  else if (point.callsPerSecond !== undefined) point.p99Ms = 0;
  return point;
}
