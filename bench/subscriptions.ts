// `npm run bench:subscriptions` — subscription fan-out latency and initial-snapshot time of our real server.
//
// 1. Fan-out: for each N in --subscribers, a fresh database; N raw WebSocket clients (v3 BSATN, compression=None,
//    spread over child processes) subscribe to `SELECT * FROM msg`; one writer calls the `send` reducer open-loop
//    at --rate tx/s (timer driven, at most --max-outstanding calls in flight; calls due while at the cap are shed
//    and counted) with the row carrying its send time on CLOCK_MONOTONIC. Each subscriber records receive time −
//    send time. Reported: p50/p99/max, delivered messages/s, writer call round trip, server and client CPU.
// 2. Snapshot: a database filled with --snapshot-rows rows; a fresh client times Subscribe → SubscribeApplied
//    received, decoded (message) and its rows decoded to values, plus the frame's bytes.
// Results go to bench/results/subscriptions-<date>.json; see docs/bench-subscriptions.md.
// Owns: the server process, the worker processes and temp dirs (all stopped/removed on exit).
// May call: ./subscriptions/*, ./keynote/procs.ts (stopChild), src/subscription/messages.ts, src/sats/bsatn.ts, node built-ins, git (read-only).
import assert from 'node:assert/strict';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BsatnReader, BsatnWriter } from './../src/sats/bsatn.js';
import { connectWire, Histogram, monoMicros, procCpuMicros, type WireClient } from './subscriptions/common.js';
import { stopChild } from './keynote/procs.js';
import { distIsStale, repoRoot, startServer, type BenchServer } from './subscriptions/server.js';
import type { FromWorker, ToWorker } from './subscriptions/subscriber-worker.js';

const workerPath = path.join(repoRoot, 'bench', 'subscriptions', 'subscriber-worker.ts');
const query = 'SELECT * FROM msg';
/** Writer timer period; each tick sends every call that has come due since the last one. */
const writerTickMs = 1;
/** After the window closes: how long to wait for in-flight calls and deliveries before counting losses. */
const drainMaxMs = 15_000;
const drainPollMs = 250;
/** Worker setup (connect + subscribe) may take this long for 1000 clients on a small machine. */
const workerReadyTimeoutMs = 120_000;
const workerExitGraceMs = 3_000;

interface Options {
  subscribers: number[];
  seconds: number;
  warmupSeconds: number;
  rate: number;
  maxOutstanding: number;
  payloadBytes: number;
  clientsPerWorker: number;
  snapshotRows: number;
  snapshotBatch: number;
  snapshotRuns: number;
  confirmed: boolean;
  fanout: boolean;
  snapshot: boolean;
  build: boolean;
  server: 'dist' | 'src';
  /** Directory for a V8 CPU profile of the server (--cpu-prof), or undefined. */
  serverProfileDir: string | undefined;
  out: string | undefined;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      subscribers: { type: 'string', default: '1,10,100,1000' },
      seconds: { type: 'string', default: '10' },
      'warmup-seconds': { type: 'string', default: '2' },
      rate: { type: 'string', default: '1000' },
      'max-outstanding': { type: 'string', default: '100' },
      'payload-bytes': { type: 'string', default: '32' },
      'clients-per-worker': { type: 'string', default: '250' },
      'snapshot-rows': { type: 'string', default: '100000' },
      'snapshot-batch': { type: 'string', default: '10000' },
      'snapshot-runs': { type: 'string', default: '5' },
      confirmed: { type: 'string', default: 'true' },
      'skip-fanout': { type: 'boolean', default: false },
      'skip-snapshot': { type: 'boolean', default: false },
      build: { type: 'boolean', default: false },
      server: { type: 'string', default: 'dist' },
      'server-prof': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(readFileSync(path.join(repoRoot, 'docs', 'bench-subscriptions.md'), 'utf8'));
    process.exit(0);
  }
  const num = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number ≥ ${min}, got \`${v}\``);
    return n;
  };
  if (values.confirmed !== 'true' && values.confirmed !== 'false') {
    throw new Error(`--confirmed: expected true or false, got \`${values.confirmed}\``);
  }
  if (values.server !== 'dist' && values.server !== 'src') {
    throw new Error(`--server: expected dist or src, got \`${values.server}\``);
  }
  return {
    subscribers: values.subscribers.split(',').map((s) => num('subscribers', s.trim(), 1)),
    seconds: num('seconds', values.seconds, 0.1),
    warmupSeconds: num('warmup-seconds', values['warmup-seconds'], 0),
    rate: num('rate', values.rate, 1),
    maxOutstanding: num('max-outstanding', values['max-outstanding'], 1),
    payloadBytes: num('payload-bytes', values['payload-bytes'], 0),
    clientsPerWorker: num('clients-per-worker', values['clients-per-worker'], 1),
    snapshotRows: num('snapshot-rows', values['snapshot-rows'], 1),
    snapshotBatch: num('snapshot-batch', values['snapshot-batch'], 1),
    snapshotRuns: num('snapshot-runs', values['snapshot-runs'], 1),
    confirmed: values.confirmed === 'true',
    fanout: !values['skip-fanout'],
    snapshot: !values['skip-snapshot'],
    build: values.build,
    server: values.server,
    serverProfileDir: values['server-prof'] === undefined ? undefined : path.resolve(values['server-prof']),
    out: values.out,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Workers

class Worker {
  readonly child: ChildProcess;
  private waiters: ((m: FromWorker) => void)[] = [];
  exitError: Error | undefined;
  constructor() {
    this.child = fork(workerPath, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: FromWorker) => {
      const w = this.waiters.shift();
      if (w !== undefined) w(m);
    });
    this.child.on('exit', (code) => {
      this.exitError = new Error(`subscriber worker exited with ${code}`);
      for (const w of this.waiters.splice(0)) w({ type: 'error', message: this.exitError.message });
    });
  }
  send(m: ToWorker): void {
    this.child.send(m);
  }
  async request(m: ToWorker, timeoutMs: number): Promise<FromWorker> {
    const reply = new Promise<FromWorker>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker gave no reply to ${m.type} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    this.send(m);
    const r = await reply;
    if (r.type === 'error') throw new Error(`subscriber worker: ${r.message}`);
    return r;
  }
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.send({ type: 'close' });
    const timer = setTimeout(() => void stopChild(this.child), workerExitGraceMs);
    await exited;
    clearTimeout(timer);
  }
}

type Report = Extract<FromWorker, { type: 'report' }>;

async function reportAll(workers: Worker[]): Promise<Report[]> {
  return (await Promise.all(workers.map((w) => w.request({ type: 'report' }, 30_000)))) as Report[];
}

// ---------------------------------------------------------------------------------------------------------------
// Writer: open loop, timer driven, bounded in-flight calls.

interface WriterStats {
  offered: number;
  sent: number;
  shed: number;
  /** Calls whose send time lies in the measurement window (each should reach every subscriber). */
  sentInWindow: number;
  failed: number;
  rtt: Histogram;
}

function encodeSendArgs(sentMicros: number, payload: string): Uint8Array {
  const w = new BsatnWriter(64);
  w.writeI64(BigInt(sentMicros));
  w.writeString(payload);
  return w.finish();
}

async function runWriter(
  client: WireClient, o: Options, startMicros: number, fromMicros: number, untilMicros: number,
): Promise<WriterStats> {
  const stats: WriterStats = { offered: 0, sent: 0, shed: 0, sentInWindow: 0, failed: 0, rtt: new Histogram() };
  const payload = 'p'.repeat(o.payloadBytes);
  const inFlight = new Map<number, number>();
  let nextRequestId = 1;
  let failure: string | undefined;
  client.onMessages = (ms, recvMicros) => {
    for (const m of ms) {
      if (m.tag !== 'ReducerResult') continue;
      const sent = inFlight.get(m.requestId);
      if (sent === undefined) continue;
      inFlight.delete(m.requestId);
      stats.rtt.record(recvMicros - sent);
      if (m.outcome.tag === 'Err' || m.outcome.tag === 'InternalError') {
        stats.failed++;
        failure ??= m.outcome.message;
      }
    }
  };
  await sleepUntil(startMicros);
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = monoMicros();
      const due = Math.floor(((Math.min(now, untilMicros) - startMicros) * o.rate) / 1e6);
      const batch = [];
      while (stats.offered < due) {
        stats.offered++;
        if (inFlight.size + batch.length >= o.maxOutstanding) {
          stats.shed++;
          continue;
        }
        const requestId = nextRequestId++;
        batch.push({ tag: 'CallReducer' as const, requestId, reducer: 'send', args: encodeSendArgs(now, payload) });
        inFlight.set(requestId, now);
      }
      if (batch.length > 0) {
        client.send(batch);
        stats.sent += batch.length;
        if (now >= fromMicros && now <= untilMicros) stats.sentInWindow += batch.length;
      }
      if (now >= untilMicros) {
        clearInterval(timer);
        resolve();
      }
    }, writerTickMs);
  });
  const drainDeadline = Date.now() + drainMaxMs;
  while (inFlight.size > 0 && Date.now() < drainDeadline) await sleepMs(10);
  if (inFlight.size > 0) throw new Error(`${inFlight.size} reducer calls unanswered ${drainMaxMs} ms after the window`);
  if (failure !== undefined) throw new Error(`send reducer failed ${stats.failed} times, first: ${failure}`);
  return stats;
}

// ---------------------------------------------------------------------------------------------------------------
// Fan-out run for one N

interface FanoutResult {
  subscribers: number;
  workers: number;
  windowSeconds: number;
  offeredTx: number;
  sentTx: number;
  shedTx: number;
  txPerSecond: number;
  deliveredMessages: number;
  expectedMessages: number;
  deliveredPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  writerRoundTripMs: { p50: number; p99: number; max: number };
  serverCpuPercent: number;
  /** Server CPU time in the window divided by transactions sent / messages delivered in it. */
  serverCpuMicrosPerTx: number;
  serverCpuMicrosPerMessage: number;
  clientsCpuPercent: number;
  writerCpuPercent: number;
  bytesReceived: number;
  /** Machine load around the run: 1-min load average before/after, and the CPU share a spin loop got before. */
  loadAvgBefore: number;
  loadAvgAfter: number;
  spinCpuShareBefore: number;
  disconnected: number;
  closeReasons: string[];
}

async function runFanout(server: BenchServer, n: number, o: Options): Promise<FanoutResult> {
  const db = `fanout-${n}`;
  await server.publish(db);
  const loadAvgBefore = os.loadavg()[0];
  const spinCpuShareBefore = spinCpuShare();
  const workerCount = Math.ceil(n / o.clientsPerWorker);
  const workers = Array.from({ length: workerCount }, () => new Worker());
  try {
    const shares = workers.map((_, i) => Math.floor(n / workerCount) + (i < n % workerCount ? 1 : 0));
    const readies = await Promise.all(workers.map((w, i) => w.request(
      { type: 'connect', httpUrl: server.httpUrl, db, count: shares[i], confirmed: o.confirmed, query },
      workerReadyTimeoutMs)));
    for (const r of readies) assert.equal(r.type, 'ready');
    const writer = await connectWire(server.httpUrl, db, o.confirmed);
    try {
      const startMicros = monoMicros() + 200_000;
      const fromMicros = startMicros + o.warmupSeconds * 1e6;
      const untilMicros = fromMicros + o.seconds * 1e6;
      for (const w of workers) w.send({ type: 'window', fromMicros, untilMicros });

      // CPU readings at the window's edges.
      const pids = workers.map((w) => w.child.pid!);
      const cpuAt = () => ({
        server: procCpuMicros(server.pid),
        clients: pids.reduce((s, p) => s + procCpuMicros(p), 0),
        writer: process.cpuUsage().user + process.cpuUsage().system,
        wall: monoMicros(),
      });
      let cpuFrom: ReturnType<typeof cpuAt> | undefined;
      let cpuUntil: ReturnType<typeof cpuAt> | undefined;
      const t1 = setTimeout(() => (cpuFrom = cpuAt()), (fromMicros - monoMicros()) / 1000);
      const t2 = setTimeout(() => (cpuUntil = cpuAt()), (untilMicros - monoMicros()) / 1000);
      const stats = await runWriter(writer, o, startMicros, fromMicros, untilMicros);
      clearTimeout(t1);
      clearTimeout(t2);
      cpuUntil ??= cpuAt();
      cpuFrom ??= cpuUntil;

      let reports = await reportAll(workers);
      const drainDeadline = Date.now() + drainMaxMs;
      let last = -1;
      for (;;) {
        const rows = reports.reduce((s, r) => s + r.rowsInWindow, 0);
        if (rows === last || Date.now() > drainDeadline) break;
        last = rows;
        await sleepMs(drainPollMs);
        reports = await reportAll(workers);
      }
      const h = new Histogram();
      for (const r of reports) h.addPairs(r.pairs, r.maxMicros);
      const delivered = h.count;
      const wallS = (cpuUntil.wall - cpuFrom.wall) / 1e6 || o.seconds;
      const ms = (us: number) => Math.round(us / 10) / 100;
      return {
        subscribers: n,
        workers: workerCount,
        windowSeconds: o.seconds,
        offeredTx: stats.offered,
        sentTx: stats.sent,
        shedTx: stats.shed,
        txPerSecond: Math.round(stats.sent / (o.seconds + o.warmupSeconds)),
        deliveredMessages: delivered,
        expectedMessages: stats.sentInWindow * n,
        deliveredPerSecond: Math.round(delivered / o.seconds),
        latencyMs: {
          p50: ms(h.quantileMicros(0.5)), p90: ms(h.quantileMicros(0.9)), p99: ms(h.quantileMicros(0.99)),
          p999: ms(h.quantileMicros(0.999)), max: ms(h.maxMicros),
        },
        writerRoundTripMs: { p50: ms(stats.rtt.quantileMicros(0.5)), p99: ms(stats.rtt.quantileMicros(0.99)), max: ms(stats.rtt.maxMicros) },
        serverCpuPercent: Math.round(((cpuUntil.server - cpuFrom.server) / 1e6 / wallS) * 100),
        serverCpuMicrosPerTx: Math.round((cpuUntil.server - cpuFrom.server) / Math.max(1, stats.sentInWindow)),
        serverCpuMicrosPerMessage: Math.round(((cpuUntil.server - cpuFrom.server) / Math.max(1, delivered)) * 10) / 10,
        clientsCpuPercent: Math.round(((cpuUntil.clients - cpuFrom.clients) / 1e6 / wallS) * 100),
        writerCpuPercent: Math.round(((cpuUntil.writer - cpuFrom.writer) / 1e6 / wallS) * 100),
        bytesReceived: reports.reduce((s, r) => s + r.bytes, 0),
        loadAvgBefore, loadAvgAfter: os.loadavg()[0], spinCpuShareBefore,
        disconnected: reports.reduce((s, r) => s + r.closed, 0),
        closeReasons: reports.flatMap((r) => r.closeReasons).slice(0, 5),
      };
    } finally {
      writer.ws.terminate();
    }
  } finally {
    await Promise.all(workers.map((w) => w.close()));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Initial snapshot

interface SnapshotRun {
  receivedMs: number; decodedMs: number; rowsDecodedMs: number; frameBytes: number; rows: number;
  /** Server CPU time from Subscribe sent to SubscribeApplied received (the server's share of receivedMs). */
  serverCpuMs: number;
}
interface SnapshotResult {
  rows: number; fillSeconds: number; runs: SnapshotRun[]; medianReceivedMs: number; medianRowsDecodedMs: number;
  loadAvgBefore: number; spinCpuShareBefore: number;
}

async function runSnapshot(server: BenchServer, o: Options): Promise<SnapshotResult> {
  const db = 'snapshot';
  await server.publish(db);
  const payload = 'p'.repeat(o.payloadBytes);
  const fillStart = monoMicros();
  for (let left = o.snapshotRows; left > 0; left -= o.snapshotBatch) {
    await server.call(db, 'fill', JSON.stringify({ count: Math.min(left, o.snapshotBatch), payload }));
  }
  const fillSeconds = (monoMicros() - fillStart) / 1e6;
  const loadAvgBefore = os.loadavg()[0];
  const spinCpuShareBefore = spinCpuShare();
  const runs: SnapshotRun[] = [];
  for (let i = 0; i < o.snapshotRuns; i++) {
    const client = await connectWire(server.httpUrl, db, o.confirmed);
    try {
      const cpu0 = procCpuMicros(server.pid);
      const run = await new Promise<SnapshotRun>((resolve, reject) => {
        let t0 = 0;
        client.onMessages = (ms, recvMicros, frameBytes) => {
          const decodedMicros = monoMicros();
          for (const m of ms) {
            if (m.tag === 'SubscriptionError') reject(new Error(`SubscriptionError: ${m.error}`));
            if (m.tag !== 'SubscribeApplied') continue;
            // Decode every row to values, as the SDK does before filling its cache.
            let rows = 0;
            let checksum = 0;
            for (const t of m.rows) {
              for (const row of t.rows) {
                const r = new BsatnReader(row);
                const id = r.readU64();
                r.readI64();
                checksum += r.readString().length + Number(id & 1n);
                r.expectEnd('msg row');
                rows++;
              }
            }
            assert.ok(checksum >= 0);
            const rowsDecodedMicros = monoMicros();
            resolve({
              receivedMs: (recvMicros - t0) / 1000, decodedMs: (decodedMicros - t0) / 1000,
              rowsDecodedMs: (rowsDecodedMicros - t0) / 1000, frameBytes, rows,
              // The server is idle while this client decodes, so reading its CPU here adds nothing of the client's.
              serverCpuMs: (procCpuMicros(server.pid) - cpu0) / 1000,
            });
          }
        };
        t0 = monoMicros();
        client.send([{ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: [query] }]);
      });
      assert.equal(run.rows, o.snapshotRows, 'SubscribeApplied row count');
      runs.push(run);
    } finally {
      client.ws.terminate();
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    rows: o.snapshotRows, fillSeconds, runs, loadAvgBefore, spinCpuShareBefore,
    medianReceivedMs: median(runs.map((r) => r.receivedMs)),
    medianRowsDecodedMs: median(runs.map((r) => r.rowsDecodedMs)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function sleepUntil(micros: number): Promise<void> {
  const ms = (micros - monoMicros()) / 1000;
  if (ms > 0) await sleepMs(ms);
}

/** Spin-loop probe length: long enough to span a few scheduler slices. */
const spinProbeMs = 300;

/**
 * CPU time a busy loop of this process gets per wall time (1.0 on an idle core). On a shared machine it shows
 * how much of a core the benchmark could have had; far below 1 means the figures measure contention.
 */
function spinCpuShare(): number {
  const c0 = process.cpuUsage();
  const t0 = monoMicros();
  while (monoMicros() - t0 < spinProbeMs * 1000) {
    // spin
  }
  const c = process.cpuUsage(c0);
  return Math.round(((c.user + c.system) / (monoMicros() - t0)) * 100) / 100;
}

/** fdatasync calls timed by the disk probe. */
const fsyncProbeCount = 200;

/**
 * fdatasync latency (ms) of small appends in the temp dir the server's commit log lives in. With confirmed reads every
 * update waits for one, so its tail bounds the fan-out tail from below.
 */
function fsyncProbe(): { p50: number; p99: number; max: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-subscriptions-fsync-'));
  const fd = openSync(path.join(dir, 'probe'), 'w');
  const record = Buffer.alloc(128);
  const xs: number[] = [];
  try {
    for (let i = 0; i < fsyncProbeCount; i++) {
      const t0 = monoMicros();
      writeSync(fd, record);
      fdatasyncSync(fd);
      xs.push((monoMicros() - t0) / 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  xs.sort((a, b) => a - b);
  const at = (q: number) => Math.round(xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)] * 10) / 10;
  return { p50: at(0.5), p99: at(0.99), max: at(1) };
}

function machine() {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  } catch {
    // not a git checkout
  }
  return { nproc: os.availableParallelism(), cpuModel, node: process.version, commit, memGiB: Math.round(os.totalmem() / 2 ** 30) };
}

function printFanout(rs: FanoutResult[]): void {
  console.log('\nFan-out: commit-to-client latency (receive − send, ms)');
  console.table(rs.map((r) => ({
    N: r.subscribers, 'tx/s': r.txPerSecond, shed: r.shedTx, 'msgs/s': r.deliveredPerSecond,
    delivered: `${r.deliveredMessages}/${r.expectedMessages}`, p50: r.latencyMs.p50, p99: r.latencyMs.p99,
    max: r.latencyMs.max, 'call rtt p50': r.writerRoundTripMs.p50, 'call rtt p99': r.writerRoundTripMs.p99,
    'server cpu%': r.serverCpuPercent, 'srv µs/tx': r.serverCpuMicrosPerTx, 'srv µs/msg': r.serverCpuMicrosPerMessage,
    'clients cpu%': r.clientsCpuPercent, 'writer cpu%': r.writerCpuPercent,
    'disconn': r.disconnected, load: r.loadAvgBefore.toFixed(1), 'spin share': r.spinCpuShareBefore,
  })));
  const contended = rs.filter((r) => r.spinCpuShareBefore < 0.8 || r.loadAvgBefore > os.availableParallelism());
  if (contended.length > 0) {
    console.warn(`warning: the machine was busy (load average above ${os.availableParallelism()} or a spin loop got < 80 % ` +
      `of a core) for N = ${contended.map((r) => r.subscribers).join(', ')}; these figures measure contention too`);
  }
}

async function main(): Promise<void> {
  const o = parseOptions();
  if (o.build) execFileSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  else if (o.server === 'dist' && distIsStale()) console.warn('warning: src/ is newer than dist/ — run with --build (or `npm run build`) to measure the current sources');
  const m = machine();
  const fsyncMs = fsyncProbe();
  console.log(`bench:subscriptions on ${m.nproc} × ${m.cpuModel}, node ${m.node}, commit ${m.commit}; ` +
    `rate ${o.rate} tx/s, ${o.seconds} s (+${o.warmupSeconds} s warm-up) per N, confirmed=${o.confirmed}, server from ${o.server}`);
  console.log(`disk: fdatasync p50 ${fsyncMs.p50} ms, p99 ${fsyncMs.p99} ms, max ${fsyncMs.max} ms (${fsyncProbeCount} small appends)`);
  const profFlags = o.serverProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', o.serverProfileDir];
  const server = await startServer(o.server, profFlags);
  const stopOnSignal = () => {
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  const fanout: FanoutResult[] = [];
  let snapshot: SnapshotResult | undefined;
  try {
    if (o.fanout) {
      for (const n of o.subscribers) {
        process.stdout.write(`N=${n} … `);
        const r = await runFanout(server, n, o);
        fanout.push(r);
        console.log(`p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.deliveredPerSecond} msgs/s, server cpu ${r.serverCpuPercent}%`);
      }
      printFanout(fanout);
    }
    if (o.snapshot) {
      snapshot = await runSnapshot(server, o);
      console.log(`\nInitial snapshot: ${snapshot.rows} rows (filled in ${snapshot.fillSeconds.toFixed(1)} s)`);
      console.table(snapshot.runs.map((r) => ({
        'received ms': r.receivedMs.toFixed(1), 'decoded ms': r.decodedMs.toFixed(1),
        'rows decoded ms': r.rowsDecodedMs.toFixed(1), 'server cpu ms': r.serverCpuMs.toFixed(0), 'frame bytes': r.frameBytes,
      })));
      console.log(`median Subscribe → SubscribeApplied received ${snapshot.medianReceivedMs.toFixed(1)} ms, ` +
        `rows decoded ${snapshot.medianRowsDecodedMs.toFixed(1)} ms (target < 300 ms); load ${snapshot.loadAvgBefore.toFixed(1)}, ` +
        `spin share ${snapshot.spinCpuShareBefore}`);
    }
  } finally {
    await server.stop();
  }
  const date = new Date().toISOString();
  const out = o.out ?? path.join(repoRoot, 'bench', 'results', `subscriptions-${date.slice(0, 10)}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({
    date, machine: { ...m, fsyncMs }, server: o.server, distStale: o.server === 'dist' && distIsStale(),
    options: { ...o, out: undefined }, fanout, snapshot,
    targets: { p99MsAt100Subscribers: 20, snapshot100kRowsMs: 300 },
  }, null, 2) + '\n');
  console.log(`\nresults written to ${path.relative(repoRoot, out)}`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
