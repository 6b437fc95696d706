// bench/engine-v2/common.ts — shared helpers of the engine-v2 prototypes: per-thread CPU time, TypeScript workers,
// percentiles, and "median of several short runs" reporting.
//
// Owns: nothing but these helpers. May call: node built-ins, tsx (registered inside each worker).
//
// Why per-thread CPU: the targets split the cost of a call between the server's main thread and the
// database's thread. process.cpuUsage() is process-wide, so the figures come from /proc/thread-self/schedstat
// (Linux: nanoseconds this thread ran on a CPU), read at the start and end of a measured section on each side.

import { readFileSync } from 'node:fs';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/** Nanoseconds the calling thread has run on a CPU (Linux schedstat; exact, not tick-sampled). */
export function threadCpuNs(): number {
  const text = readFileSync('/proc/thread-self/schedstat', 'latin1');
  return Number(text.slice(0, text.indexOf(' ')));
}

/** Microseconds of CPU the whole process has used (all threads, user + system). */
export function processCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * Starts a worker running a TypeScript file. Node 20 does not hand tsx's loader hooks to a worker's entry module,
 * so the worker's entry is a tiny eval'd script that registers tsx, then imports the file.
 */
export function startTsWorker(file: string | URL, workerData?: unknown, resourceLimits?: ResourceLimits): Worker {
  const href = typeof file === 'string' ? new URL(file, 'file://').href : file.href;
  // Resolved here, so the worker finds tsx whatever the process's working directory.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(href)}); })`;
  return new Worker(boot, { eval: true, workerData, resourceLimits });
}

/** The p-th percentile (0..100) of an unsorted sample (sorts a copy). */
export function percentile(sample: readonly number[], p: number): number {
  if (sample.length === 0) return NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function median(sample: readonly number[]): number {
  return percentile(sample, 50);
}

/** Rounds for printing: 3 significant figures is plenty for figures this noisy. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 100) return Math.round(n).toLocaleString('en-US');
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toFixed(3);
}

/** Prints a markdown table (the doc quotes these as they come out). */
export function printTable(header: string[], rows: (string | number)[][]): void {
  const cell = (v: string | number) => (typeof v === 'number' ? fmt(v) : v);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`| ${header.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${r.map(cell).join(' | ')} |`);
}

/** Runs `measure` `runs` times and returns the median of each numeric field (the machine is shared and noisy). */
export async function medianOf<T extends Record<string, number>>(runs: number, measure: () => Promise<T> | T): Promise<T> {
  const samples: T[] = [];
  for (let i = 0; i < runs; i++) samples.push(await measure());
  const out: Record<string, number> = {};
  for (const key of Object.keys(samples[0])) out[key] = median(samples.map((s) => s[key]));
  return out as T;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
