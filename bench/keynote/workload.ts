// Transfer workloads: the parts every system shares. The two workloads (`keynote`: accounts {id, balance}, two finds
// and two updates; `general`: the same transfer as apps write it, accounts {id, owner string, balance, updated
// timestamp} and one audit row {id autoInc, from, to, amount, at} per transfer), deterministic Zipf account pairs, a
// latency histogram, the closed-loop driver that runs C clients × K in-flight calls against one system for a
// warm-up plus a measured window and returns TPS, p50/p99 and a per-second series, and the invariant check.
// Owns no processes and no sockets: a system is reached only through the `TransferClient` it hands in.
// May call: node built-ins only.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';

/** Which transaction every system runs (see the header); both take the same (from, to, amount) arguments. */
export type WorkloadName = 'keynote' | 'general';
export const workloadNames: readonly WorkloadName[] = ['keynote', 'general'];

/** The keynote's fixed PRNG seed, so every system sees the same pair sequence. */
export const zipfSeed = 0x12345678;
/** Redraws of `to` when it equals `from` before falling back to the next account. */
const redrawsMax = 32;
/** Calls still outstanding this long after the window closes are abandoned (they count as not completed). */
const drainTimeoutMs = 15_000;

/** mulberry32: a tiny 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^alpha (alpha <= 0: uniform), by binary search over the exact CDF. */
export function zipfSampler(n: number, alpha: number, random: () => number): () => number {
  assert.ok(Number.isInteger(n) && n >= 2, 'zipf needs at least 2 ranks');
  if (alpha <= 0) return () => Math.floor(random() * n);
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / Math.pow(k + 1, alpha);
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) cdf[k] /= sum;
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** `count` (from, to) pairs with from ≠ to, interleaved [from0, to0, from1, to1, …]. Same inputs → same pairs. */
export function makePairs(accounts: number, alpha: number, count: number, seed = zipfSeed): Uint32Array {
  const draw = zipfSampler(accounts, alpha, mulberry32(seed));
  const pairs = new Uint32Array(count * 2);
  for (let i = 0; i < count; i++) {
    const from = draw();
    let to = draw();
    for (let r = 0; to === from && r < redrawsMax; r++) to = draw();
    if (to === from) to = (from + 1) % accounts;
    pairs[2 * i] = from;
    pairs[2 * i + 1] = to;
  }
  return pairs;
}

/**
 * Log-linear latency histogram over whole microseconds (HDR-style: 128 sub-buckets per power of two above 256 µs,
 * so a reported quantile is within 0.8% of the true value). Values are clamped to 2^31-1 µs.
 */
export class LatencyHistogram {
  static readonly bucketCount = 3200;
  readonly counts = new Uint32Array(LatencyHistogram.bucketCount);
  total = 0;

  record(micros: number): void {
    const v = Math.min(Math.max(Math.round(micros), 0), 0x7fffffff);
    this.counts[bucketOf(v)]++;
    this.total++;
  }

  add(other: LatencyHistogram): void {
    for (let i = 0; i < other.counts.length; i++) this.counts[i] += other.counts[i];
    this.total += other.total;
  }

  /** The value (µs) at quantile q in [0, 1]; 0 when empty. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return bucketLow(i);
    }
    return bucketLow(this.counts.length - 1);
  }
}

function bucketOf(v: number): number {
  if (v < 256) return v;
  const e = 31 - Math.clz32(v) - 7;
  return (e << 7) + (v >>> e);
}

function bucketLow(index: number): number {
  if (index < 256) return index;
  const e = (index >> 7) - 1;
  return (index - (e << 7)) * 2 ** e;
}

/** One system's way of issuing a transfer. Resolves true when the transfer committed, false when it was rejected. */
export interface TransferClient {
  transfer(from: number, to: number, amount: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface LoadOptions {
  inFlightPerClient: number;
  warmupSeconds: number;
  durationSeconds: number;
  pairs: Uint32Array;
}

export interface SecondPoint {
  tSec: number;
  tps: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LoadResult {
  /** Transfers that committed inside the measured window. */
  committed: number;
  /** Transfers the system refused (insufficient funds, …) inside the window. */
  rejected: number;
  /** Transfers that committed over the whole run, warm-up and drain included: the audit rows it must have written. */
  committedTotal: number;
  /**
   * Calls whose outcome the load generator does not know: failed calls (a transport error may come after the commit)
   * and calls still outstanding when the drain gave up. Each may or may not have committed.
   */
  outcomeUnknown: number;
  /** Calls that failed (transport errors, PG retries exhausted), over the whole run including warm-up. */
  errors: number;
  tps: number;
  p50Ms: number;
  p99Ms: number;
  /** TPS standard deviation over the per-second series. */
  tpsStddev: number;
  series: SecondPoint[];
  /** The load generator's own CPU time over the measured window, per committed transfer. */
  clientCpuMicrosPerTx: number;
  /** Load generator CPU use as a share of one core over the window (above ~0.7 the client may be the limit). */
  clientCpuShare: number;
  firstError?: string;
}

/**
 * Runs the closed loop: every client keeps `inFlightPerClient` calls outstanding until the window ends.
 * Only calls that complete inside [warm-up end, window end] count. `onWindowStart` fires when measuring starts
 * (the harness samples server CPU there).
 */
export async function runClosedLoop(
  clients: TransferClient[],
  options: LoadOptions,
  onWindowStart: () => void = () => {},
): Promise<LoadResult> {
  assert.ok(clients.length > 0 && options.inFlightPerClient > 0 && options.durationSeconds > 0);
  assert.ok(options.warmupSeconds >= 0);
  const pairCount = options.pairs.length / 2;
  assert.ok(pairCount > 0);
  const windowSeconds = options.durationSeconds;
  const perSecond: LatencyHistogram[] = Array.from({ length: windowSeconds }, () => new LatencyHistogram());
  const state = { rejected: 0, errors: 0, committedTotal: 0, outstanding: 0, firstError: undefined as string | undefined };
  const t0 = performance.now();
  const windowStartMs = t0 + options.warmupSeconds * 1000;
  const windowEndMs = windowStartMs + windowSeconds * 1000;
  let stopping = false;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    onWindowStart();
  }, options.warmupSeconds * 1000);
  const stopTimer = setTimeout(() => (stopping = true), options.warmupSeconds * 1000 + windowSeconds * 1000);

  const loop = async (client: TransferClient, lane: number): Promise<void> => {
    // Each lane starts at its own offset in the shared pair list, as the keynote's workers do.
    let next = Math.floor((lane * pairCount) / (clients.length * options.inFlightPerClient));
    while (!stopping) {
      const i = next % pairCount;
      next++;
      const start = performance.now();
      let ok: boolean;
      state.outstanding++;
      try {
        ok = await client.transfer(options.pairs[2 * i], options.pairs[2 * i + 1], 1);
      } catch (err) {
        state.outstanding--;
        state.errors++;
        state.firstError ??= String((err as Error)?.message ?? err);
        if (stopping) return;
        await new Promise((r) => setTimeout(r, 10)); // do not spin on a dead connection
        continue;
      }
      state.outstanding--;
      if (ok) state.committedTotal++;
      const end = performance.now();
      if (end < windowStartMs || end > windowEndMs) continue;
      if (!ok) {
        state.rejected++;
        continue;
      }
      perSecond[Math.min(windowSeconds - 1, Math.floor((end - windowStartMs) / 1000))].record((end - start) * 1000);
    }
  };

  const lanes: Promise<void>[] = [];
  clients.forEach((client, c) => {
    for (let k = 0; k < options.inFlightPerClient; k++) lanes.push(loop(client, c * options.inFlightPerClient + k));
  });
  await new Promise((r) => setTimeout(r, options.warmupSeconds * 1000 + windowSeconds * 1000));
  const cpu = process.cpuUsage(cpuAtStart);
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(lanes), new Promise((r) => (drainTimer = setTimeout(r, drainTimeoutMs)))]);
  clearTimeout(drainTimer);
  clearTimeout(startTimer);
  clearTimeout(stopTimer);
  return summarize(perSecond, windowSeconds, state, cpu);
}

function summarize(
  perSecond: LatencyHistogram[],
  windowSeconds: number,
  state: { rejected: number; errors: number; committedTotal: number; outstanding: number; firstError?: string },
  cpu: NodeJS.CpuUsage,
): LoadResult {
  const all = new LatencyHistogram();
  for (const h of perSecond) all.add(h);
  const series = perSecond.map((h, tSec) => ({
    tSec, tps: h.total, p50Ms: h.quantile(0.5) / 1000, p99Ms: h.quantile(0.99) / 1000,
  }));
  const mean = all.total / windowSeconds;
  const variance = series.reduce((s, p) => s + (p.tps - mean) ** 2, 0) / series.length;
  const cpuMicros = cpu.user + cpu.system;
  return {
    committed: all.total,
    rejected: state.rejected,
    committedTotal: state.committedTotal,
    outcomeUnknown: state.errors + state.outstanding,
    errors: state.errors,
    tps: mean,
    p50Ms: all.quantile(0.5) / 1000,
    p99Ms: all.quantile(0.99) / 1000,
    tpsStddev: Math.sqrt(variance),
    series,
    clientCpuMicrosPerTx: all.total > 0 ? cpuMicros / all.total : 0,
    clientCpuShare: cpuMicros / (windowSeconds * 1e6),
    firstError: state.firstError,
  };
}

/** Totals read back from a system after a run; the transfer invariant is checked against the seed. */
export interface BalanceCheck {
  accounts: number;
  total: bigint;
  min: bigint;
  /** Rows of the general workload's audit table; undefined for the keynote (it has none). */
  auditRows?: number;
}

/** How many audit rows a run may have left: every committed transfer wrote one, a call of unknown outcome maybe. */
export interface AuditExpectation {
  rowsMin: number;
  rowsMax: number;
}

/**
 * Throws when the invariant does not hold: same row count, total unchanged, nobody negative and, for the general
 * workload, one audit row per committed transfer.
 */
export function assertInvariant(
  check: BalanceCheck, accounts: number, initialBalance: bigint, workload: WorkloadName, audit: AuditExpectation,
): void {
  if (check.accounts !== accounts) throw new Error(`invariant: ${check.accounts} accounts, expected ${accounts}`);
  const expected = BigInt(accounts) * initialBalance;
  if (check.total !== expected) throw new Error(`invariant: total balance ${check.total}, expected ${expected}`);
  if (check.min < 0n) throw new Error(`invariant: a balance went negative (${check.min})`);
  if (workload === 'keynote') return;
  const rows = check.auditRows;
  if (rows === undefined || !Number.isSafeInteger(rows) || rows < audit.rowsMin || rows > audit.rowsMax) {
    throw new Error(`invariant: ${rows} audit rows, expected ${audit.rowsMin}` +
      (audit.rowsMax > audit.rowsMin ? `..${audit.rowsMax}` : '') + ' (one per committed transfer)');
  }
}
