// bench/footprint.ts — what the server costs outside the transfer loop, measured on REAL server processes
// (`node bin/spacetime.js start` from dist/, own temp data dir, free loopback port) and the real CLI:
//   memory    server RSS and V8 heap per row with 100k / 1M keynote accounts (after a settle period and a full GC,
//             read through the Node inspector; in worker mode the database worker's own idle GC, waited for),
//             seed duration, commit-log bytes per row
//   startup   cold start (spawn → /v1/ping, empty data dir), and graceful restart with N rows (→ first SQL answer)
//   publish   `spacetime publish` wall time: build included, prebuilt bundle (--js-path), republish unchanged,
//             republish with a compatible change (an added reducer), and the last two again over N rows
//   recovery  100k accounts, T transfers over the WebSocket protocol, SIGKILL right after the last ack, restart:
//             time to ping / first SQL / first accepted transfer / balance invariant, and every acked transfer kept
// Prints markdown tables and writes bench/results/footprint-<UTC stamp>.json. See docs/bench-footprint.md.
//
// Run: npm run build && node --import tsx bench/footprint.ts [--only memory,startup,publish,recovery]
//      [--rows 100000,1000000] [--transfers 100000,990000] [--help]
// Owns: its temp dirs and the server processes it starts (through bench/footprint/server.ts).
// May call: bench/footprint/server.ts, bench/keynote/ours.ts (seed, WebSocket transfer client, balance check),
// bench/keynote/workload.ts (deterministic pairs), src/cli/build.js (bundling), src/limits.js (the idle-GC delay),
// src/server/main.js (which thread mode the server starts in), node built-ins.
// The server runs in the mode SPACETIME_DATABASE_THREADS (inherited) gives it: worker (default) or main.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { bundleModule } from '../src/cli/build.js';
import { workerIdleGcAfterMsConfigured } from '../src/limits.js';
import { databaseThreadsFromEnv, type DatabaseThreads } from '../src/server/main.js';
import { checkOurs, connectOurs, freePort, repoRoot, seedOurs, type OursDatabase } from './keynote/ours.js';
import { makePairs, type TransferClient } from './keynote/workload.js';
import {
  assertBuilt, cpuMs, dirBytes, killAllServers, procRss, runCli, runCliOk, sleep, startServer, type MemoryUsage, type ServerProcess,
} from './footprint/server.js';

const usage = `Usage: node --import tsx bench/footprint.ts [options]   (run \`npm run build\` first)

  --only <list>        suites to run, comma-separated: memory,startup,publish,recovery (default: all)
  --rows <list>        account counts for memory / restart / hot-swap publish (default: 100000,1000000)
  --transfers <list>   transfers committed before the SIGKILL in the recovery suite (default: 100000,990000;
                       990k is the worst case: the server snapshots every 1,000,000 commits)
  --cold-starts <n>    cold starts to take the median of (default: 5)
  --out <file>         where to write the JSON (default: bench/results/footprint-<UTC stamp>.json)
  -h, --help           this text
`;

const suiteNames = ['memory', 'startup', 'publish', 'recovery'] as const;
type Suite = (typeof suiteNames)[number];

const keynoteDir = path.join(repoRoot, 'test', 'fixtures', 'modules', 'keynote');
/** The keynote fixture plus one reducer: a compatible change for the hot-swap publish. */
const keynotePlusDir = path.join(repoRoot, 'bench', 'footprint', 'module');
const recoveryAccounts = 100_000;
const initialBalance = 1_000_000_000n;
/** Wait after seeding before the GC and the "settled" reading, so deferred work (log flush, sweeping) is done. */
const settleMs = 2_000;
/** A second reading this long after the first shows whether memory keeps moving. */
const settleRecheckMs = 2_000;
const databaseThreads: DatabaseThreads = databaseThreadsFromEnv();
/**
 * The settle wait before a "settled" reading. A database worker collects its own garbage once idle: 1-2 idle periods
 * after its last request (host/worker/idle-gc.ts), so worker mode waits for that, plus a second for the collection.
 * No forced GC reaches a worker, so this is also what a user's idle server holds. Main mode keeps `settleMs`.
 */
const workerIdleGcAfterMs = databaseThreads === 'worker' ? workerIdleGcAfterMsConfigured() : 0;
const idleSettleMs = workerIdleGcAfterMs > 0 ? Math.max(settleMs, 2 * workerIdleGcAfterMs + 1_000) : settleMs;
/** WebSocket connections × calls in flight per connection for the recovery load. */
const loadConnections = 8;
const loadInFlightPerConnection = 128;
const sqlPollMs = 5;
const sqlReadyTimeoutMs = 120_000;

interface Options {
  suites: Set<Suite>;
  rows: number[];
  transfers: number[];
  coldStarts: number;
  out: string;
}

function positiveList(text: string, flag: string): number[] {
  const list = text.split(',').map((s) => Number(s.trim()));
  for (const n of list) if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: '${text}' is not a list of positive integers`);
  return list;
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', short: 'h' },
      only: { type: 'string' },
      rows: { type: 'string', default: '100000,1000000' },
      transfers: { type: 'string', default: '100000,990000' },
      'cold-starts': { type: 'string', default: '5' },
      out: { type: 'string' },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(usage);
    return undefined;
  }
  const suites = new Set<Suite>();
  for (const s of (values.only ?? suiteNames.join(',')).split(',')) {
    if (!(suiteNames as readonly string[]).includes(s)) throw new Error(`--only: unknown suite '${s}' (known: ${suiteNames.join(', ')})`);
    suites.add(s as Suite);
  }
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const [coldStarts] = positiveList(values['cold-starts']!, '--cold-starts');
  return {
    suites, coldStarts: coldStarts!,
    rows: positiveList(values.rows!, '--rows'),
    transfers: positiveList(values.transfers!, '--transfers'),
    out: values.out ?? path.join(repoRoot, 'bench', 'results', `footprint-${stamp}.json`),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One server under test with its own data dir, server config and CLI config.

interface Sut {
  server: ServerProcess;
  dir: string;
  dataDir: string;
  port: number;
  serverConfig: string;
  cliConfig: string;
  token: string;
}

let tempRoot = '';

async function freshSut(label: string, inspect = false): Promise<Sut> {
  const dir = mkdtempSync(path.join(tempRoot, `${label}-`));
  const port = await freePort();
  const dataDir = path.join(dir, 'data');
  const serverConfig = path.join(dir, 'server-cli.toml');
  const server = await startServer({ dataDir, port, configPath: serverConfig, inspect });
  const sut: Sut = { server, dir, dataDir, port, serverConfig, cliConfig: path.join(dir, 'cli.toml'), token: '' };
  try {
    // Log the CLI in untimed, so no publish below pays for the implicit login.
    const res = await fetch(`${server.url}/v1/identity`, { method: 'POST' });
    if (!res.ok) throw new Error(`POST /v1/identity answered ${res.status}: ${await res.text()}`);
    sut.token = ((await res.json()) as { token: string }).token;
    await runCliOk(['login', '--token', sut.token], sut.cliConfig);
    return sut;
  } catch (err) {
    await dispose(sut);
    throw err;
  }
}

async function restart(sut: Sut, inspect = false): Promise<void> {
  sut.server = await startServer({ dataDir: sut.dataDir, port: sut.port, configPath: sut.serverConfig, inspect });
}

async function dispose(sut: Sut): Promise<void> {
  await sut.server.stop();
  rmSync(sut.dir, { recursive: true, force: true });
}

/** The keynote harness's view of a keynote database on this suite's server (published here with the real CLI). */
function oursView(sut: Sut, dbName: string): OursDatabase {
  const server = {
    url: sut.server.url, pid: sut.server.pid, token: sut.token,
    publish: async () => { throw new Error('footprint publishes with the CLI (publish())'); },
    stop: async () => {},
  };
  return { server, dbName, workload: 'keynote' };
}

async function publish(sut: Sut, dbName: string, source: string[]): Promise<number> {
  const r = await runCliOk(['publish', '-s', sut.server.url, ...source, '--yes', dbName], sut.cliConfig);
  if (!/(Created new|Updated) database/.test(r.stdout)) throw new Error(`publish printed no outcome:\n${r.stdout}`);
  return r.ms;
}

/** POST /sql; throws with the server's answer unless 200. */
async function sql(sut: Sut, dbName: string, query: string): Promise<unknown> {
  const res = await fetch(`${sut.server.url}/v1/database/${dbName}/sql`, {
    method: 'POST', headers: { authorization: `Bearer ${sut.token}` }, body: query,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`sql '${query}' answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function countAccounts(sut: Sut, dbName: string): Promise<number> {
  const [result] = (await sql(sut, dbName, 'SELECT COUNT(*) AS n FROM accounts')) as [{ rows: [[number]] }];
  return Number(result!.rows[0]![0]);
}

/**
 * Polls COUNT(*) until it answers; returns the count, the ms since the server was spawned and the CPU ms the server
 * process has used by then (on a shared machine the CPU figure is the one to compare).
 */
async function firstSql(sut: Sut, dbName: string): Promise<{ count: number; msSinceSpawn: number; cpuMs: number }> {
  const deadline = performance.now() + sqlReadyTimeoutMs;
  for (;;) {
    try {
      const count = await countAccounts(sut, dbName);
      const msSinceSpawn = performance.now() - sut.server.spawnedAt;
      return { count, msSinceSpawn, cpuMs: cpuMs(sut.server.pid) };
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await sleep(sqlPollMs);
    }
  }
}

async function callReducer(sut: Sut, dbName: string, name: string, body: string): Promise<void> {
  const res = await fetch(`${sut.server.url}/v1/database/${dbName}/call/${name}`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${sut.token}` }, body,
  });
  if (!res.ok) throw new Error(`call ${name} answered ${res.status}: ${await res.text()}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

// ---------------------------------------------------------------------------------------------------------------
// Bundles (built once, published with --js-path)

interface Bundles {
  keynote: string;
  keynotePlus: string;
}

async function writeBundles(): Promise<Bundles> {
  const keynote = path.join(tempRoot, 'keynote.js');
  const keynotePlus = path.join(tempRoot, 'keynote-plus.js');
  writeFileSync(keynote, (await bundleModule(keynoteDir, {})).code);
  writeFileSync(keynotePlus, (await bundleModule(keynotePlusDir, {})).code);
  return { keynote, keynotePlus };
}

// ---------------------------------------------------------------------------------------------------------------
// startup: cold starts

interface ColdStartResult {
  runsMs: number[];
  medianMs: number;
  /** Server CPU ms by the time /v1/ping answered, median. */
  medianCpuMs: number;
  emptyRssBytes: number;
  gracefulStopMs: number;
  nodeBaselineMs: number;
}

async function coldStarts(runs: number): Promise<ColdStartResult> {
  const runsMs: number[] = [];
  const cpus: number[] = [];
  const stops: number[] = [];
  let emptyRssBytes = 0;
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(path.join(tempRoot, 'cold-'));
    const server = await startServer({ dataDir: path.join(dir, 'data'), port: await freePort(), configPath: path.join(dir, 'cli.toml') });
    runsMs.push(server.readyMs);
    cpus.push(server.readyCpuMs);
    await sleep(500);
    emptyRssBytes = procRss(server.pid).rss;
    stops.push((await server.stop()).ms);
    rmSync(dir, { recursive: true, force: true });
  }
  // Reference: the bare cost of starting and exiting a Node process on this machine.
  const node: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    node.push(performance.now() - t0);
  }
  return { runsMs: runsMs.map((x) => round(x)), medianMs: round(median(runsMs)), medianCpuMs: round(median(cpus)), emptyRssBytes, gracefulStopMs: round(median(stops)), nodeBaselineMs: round(median(node)) };
}

// ---------------------------------------------------------------------------------------------------------------
// publish on an empty server

interface PublishResult {
  /** `spacetime --version`: the CLI process alone (Node start + loading the CLI), for scale. */
  cliVersionMs: number;
  buildOnlyMs: number;
  /** The server side alone: PUT /v1/database/<fresh name> with the prebuilt bundle, no CLI process. */
  httpPutFreshMs: number;
  freshWithBuildMs: number;
  freshPrebuiltMs: number;
  firstCallAfterPublishMs: number;
  republishUnchangedMs: number;
  republishCompatibleMs: number;
}

async function publishSuite(bundles: Bundles): Promise<PublishResult> {
  const sut = await freshSut('publish');
  try {
    const version = await runCliOk(['--version'], sut.cliConfig);
    const build = await runCliOk(['build', '-p', keynoteDir], sut.cliConfig);
    const tPut = performance.now();
    const put = await fetch(`${sut.server.url}/v1/database/fp-http?host_type=Js`, {
      method: 'PUT', headers: { authorization: `Bearer ${sut.token}` }, body: readFileSync(bundles.keynote),
    });
    if (!put.ok) throw new Error(`PUT answered ${put.status}: ${await put.text()}`);
    const httpPutFreshMs = performance.now() - tPut;
    const freshWithBuildMs = await publish(sut, 'fp-build', ['-p', keynoteDir]);
    const freshPrebuiltMs = await publish(sut, 'fp-pre', ['--js-path', bundles.keynote]);
    const t0 = performance.now();
    await callReducer(sut, 'fp-pre', 'seed', '{"n":10,"initialBalance":1}');
    const firstCallAfterPublishMs = performance.now() - t0;
    const republishUnchangedMs = await publish(sut, 'fp-pre', ['--js-path', bundles.keynote]);
    const republishCompatibleMs = await publish(sut, 'fp-pre', ['--js-path', bundles.keynotePlus]);
    await callReducer(sut, 'fp-pre', 'touch', '{"id":1}'); // the added reducer is live
    return {
      cliVersionMs: round(version.ms), buildOnlyMs: round(build.ms), httpPutFreshMs: round(httpPutFreshMs), freshWithBuildMs: round(freshWithBuildMs), freshPrebuiltMs: round(freshPrebuiltMs),
      firstCallAfterPublishMs: round(firstCallAfterPublishMs, 1), republishUnchangedMs: round(republishUnchangedMs),
      republishCompatibleMs: round(republishCompatibleMs),
    };
  } finally {
    await dispose(sut);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// memory per row, then (same database) restart and hot-swap publish with N rows present

interface MemoryReading extends MemoryUsage {
  /** VmRSS from /proc (the figure the kernel charges), next to Node's own rss. */
  procRss: number;
  /** RssAnon from /proc: heaps and malloc (the rest of RSS is mapped files: node, libraries). */
  procRssAnon: number;
  /** Worker threads (database workers and idle spares): their count and their V8 figures summed (not collected). */
  workers: number;
  workersHeapTotal: number;
  workersHeapUsed: number;
  workersExternal: number;
}

interface RowsResult {
  rows: number;
  seedMs: number;
  seedCpuMs: number;
  empty: MemoryReading;
  moduleLoaded: MemoryReading;
  seededBeforeGc: MemoryReading;
  seeded: MemoryReading;
  seededRecheck: MemoryReading;
  peakRssBytes: number;
  /** heapUsed and external: main thread plus every worker thread. */
  bytesPerRow: { rss: number; heapUsed: number; external: number; clogDisk: number };
  dataDirBytes: number;
  snapshots: number;
  restart?: {
    gracefulStopMs: number; pingMs: number; pingCpuMs: number; firstSqlMs: number; firstSqlCpuMs: number;
    /** Settled and after a full GC, like `seeded`. */
    after: MemoryReading; rssPerRowAfter: number; heapUsedPerRowAfter: number;
  };
  hotSwap?: { republishUnchangedMs: number; republishCompatibleMs: number };
}

/**
 * `gc`: a full GC of the main thread first. `workersGc`: of every worker thread too — for the readings before any
 * rows (their baseline is the live heap); the readings with rows leave workers to collect their own garbage, as a
 * user's idle server does.
 */
async function reading(server: ServerProcess, gc: boolean, workersGc = false): Promise<MemoryReading> {
  assert.ok(server.inspector !== undefined, 'memory readings need a server started with the inspector');
  if (gc) await server.inspector.collectGarbage();
  const m = await server.inspector.memoryUsage();
  const workers = await server.inspector.workerMemoryUsages(workersGc);
  const sum = (f: (w: MemoryUsage) => number): number => workers.reduce((total, w) => total + f(w), 0);
  const proc = procRss(server.pid);
  return {
    ...m, procRss: proc.rss, procRssAnon: proc.anon, workers: workers.length,
    workersHeapTotal: sum((w) => w.heapTotal), workersHeapUsed: sum((w) => w.heapUsed), workersExternal: sum((w) => w.external),
  };
}

/** V8 heap used and external bytes of all threads of a reading. */
const heapUsedAll = (r: MemoryReading): number => r.heapUsed + r.workersHeapUsed;
const externalAll = (r: MemoryReading): number => r.external + r.workersExternal;

/** The one database directory under `<dataDir>/databases/` (every suite publishes one database per server). */
function databaseDir(dataDir: string): string {
  const dbs = path.join(dataDir, 'databases');
  const entries = readdirSync(dbs);
  assert.equal(entries.length, 1, `expected one database in ${dbs}`);
  return path.join(dbs, entries[0]!);
}

/** Snapshot files of a database: how many, their bytes, and the newest one's offset (-1 when there is none). */
function snapshotsOf(dbDir: string): { count: number; bytes: number; newestOffset: number } {
  const dir = path.join(dbDir, 'snapshots');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d{20}\.snapshot$/.test(f)) : [];
  const offsets = files.map((f) => Number(f.slice(0, 20)));
  return { count: files.length, bytes: dirBytes(dir), newestOffset: offsets.length === 0 ? -1 : Math.max(...offsets) };
}

/** The last commit-log offset of a database, read by the real CLI (`spacetime debug log`, read-only). */
async function lastLogOffset(sut: Sut, dbDir: string): Promise<number> {
  const r = await runCliOk(['debug', 'log', dbDir], sut.cliConfig);
  const m = /^total: .* offsets (\d+)\.\.(\d+)/m.exec(r.stdout);
  if (m === null) throw new Error(`no offset range in \`spacetime debug log\` output:\n${r.stdout}`);
  return Number(m[2]);
}

async function rowsSuite(rows: number, bundles: Bundles, opts: Options): Promise<RowsResult> {
  const sut = await freshSut(`rows-${rows}`, true);
  try {
    await sleep(settleMs);
    const empty = await reading(sut.server, true, true);
    await publish(sut, 'fp-mem', ['--js-path', bundles.keynote]);
    await sleep(idleSettleMs);
    const moduleLoaded = await reading(sut.server, true, true);
    const dbDir = databaseDir(sut.dataDir);
    const diskBefore = dirBytes(path.join(dbDir, 'clog'));
    const t0 = performance.now();
    const cpu0 = cpuMs(sut.server.pid);
    await seedOurs(oursView(sut, 'fp-mem'), rows, initialBalance);
    const seedMs = performance.now() - t0;
    const seedCpuMs = cpuMs(sut.server.pid) - cpu0;
    const seededBeforeGc = await reading(sut.server, false);
    await sleep(idleSettleMs);
    const seeded = await reading(sut.server, true);
    await sleep(settleRecheckMs);
    const seededRecheck = await reading(sut.server, true);
    const peakRssBytes = procRss(sut.server.pid).peak;
    const diskAfter = dirBytes(path.join(dbDir, 'clog'));
    assert.equal(await countAccounts(sut, 'fp-mem'), rows, 'seed left a different row count');
    const result: RowsResult = {
      rows, seedMs: round(seedMs), seedCpuMs: round(seedCpuMs), empty, moduleLoaded, seededBeforeGc, seeded, seededRecheck, peakRssBytes,
      bytesPerRow: {
        rss: round((seeded.procRss - moduleLoaded.procRss) / rows, 1),
        heapUsed: round((heapUsedAll(seeded) - heapUsedAll(moduleLoaded)) / rows, 1),
        external: round((externalAll(seeded) - externalAll(moduleLoaded)) / rows, 1), // includes arrayBuffers
        clogDisk: round((diskAfter - diskBefore) / rows, 1),
      },
      dataDirBytes: dirBytes(sut.dataDir), snapshots: snapshotsOf(dbDir).count,
    };
    if (opts.suites.has('startup')) {
      const stop = await sut.server.stop();
      await restart(sut, true);
      const pingMs = sut.server.readyMs;
      const first = await firstSql(sut, 'fp-mem');
      assert.equal(first.count, rows, 'restart lost rows');
      await sleep(idleSettleMs);
      const after = await reading(sut.server, true);
      result.restart = {
        gracefulStopMs: round(stop.ms), pingMs: round(pingMs), pingCpuMs: round(sut.server.readyCpuMs), firstSqlMs: round(first.msSinceSpawn), firstSqlCpuMs: round(first.cpuMs),
        after, rssPerRowAfter: round((after.procRss - moduleLoaded.procRss) / rows, 1),
        heapUsedPerRowAfter: round((heapUsedAll(after) - heapUsedAll(moduleLoaded)) / rows, 1),
      };
    }
    if (opts.suites.has('publish')) {
      const republishUnchangedMs = await publish(sut, 'fp-mem', ['--js-path', bundles.keynote]);
      const republishCompatibleMs = await publish(sut, 'fp-mem', ['--js-path', bundles.keynotePlus]);
      assert.equal(await countAccounts(sut, 'fp-mem'), rows, 'hot swap lost rows');
      result.hotSwap = { republishUnchangedMs: round(republishUnchangedMs), republishCompatibleMs: round(republishCompatibleMs) };
    }
    return result;
  } finally {
    await dispose(sut);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// recovery after SIGKILL

interface RecoveryResult {
  transfers: number;
  loadTps: number;
  clogBytesPerTransfer: number;
  snapshotsAtKill: number;
  snapshotBytesAtKill: number;
  /** Commit-log records the restart had to replay on top of the newest snapshot (or from the start). */
  recordsAfterSnapshot: number;
  /** Records logged since the 0-transfer baseline crash (the transfers plus client connects). */
  recordsSinceBaseline: number;
  coldPingMs: number;
  pingMs: number;
  firstSqlMs: number;
  firstTransferMs: number;
  invariantMs: number;
  /** spawn → first SQL after a SIGKILL with only the seed in the log. */
  baselineFirstSqlMs: number;
  firstSqlCpuMs: number;
  baselineFirstSqlCpuMs: number;
  replayMsPer1M: number;
  replayCpuMsPer1M: number;
  accountsChecked: number;
  mismatches: number;
  serverNotes: string[];
}

/** Runs every transfer in `pairs` over `clients`, each keeping `inFlight` calls outstanding; marks the committed. */
async function driveTransfers(clients: TransferClient[], pairs: Uint32Array, inFlight: number): Promise<Uint8Array> {
  const n = pairs.length / 2;
  const committed = new Uint8Array(n);
  let next = 0;
  await Promise.all(clients.flatMap((client) => Array.from({ length: inFlight }, async () => {
    while (next < n) {
      const i = next++;
      if (await client.transfer(pairs[2 * i]!, pairs[2 * i + 1]!, 1)) committed[i] = 1;
    }
  })));
  return committed;
}

async function recoverySuite(transfers: number, bundles: Bundles): Promise<RecoveryResult> {
  const sut = await freshSut(`recovery-${transfers}`);
  try {
    const coldPingMs = sut.server.readyMs;
    await publish(sut, 'fp-rec', ['--js-path', bundles.keynote]);
    const view = oursView(sut, 'fp-rec');
    await seedOurs(view, recoveryAccounts, initialBalance);
    // Baseline: the same crash and restart with no transfers, so the difference below is the replay alone (the
    // restart also re-evaluates the module and replays the seed).
    await sut.server.kill9();
    await restart(sut);
    const baseline = await firstSql(sut, 'fp-rec');
    assert.equal(baseline.count, recoveryAccounts, 'recovery of the seed lost accounts');
    const dbDir = databaseDir(sut.dataDir);
    const baselineLastOffset = await lastLogOffset(sut, dbDir);
    const pairs = makePairs(recoveryAccounts, 0, transfers);
    const clients = await Promise.all(Array.from({ length: loadConnections }, () => connectOurs(view)));
    const clogDir = path.join(dbDir, 'clog');
    const diskBefore = dirBytes(clogDir);
    const t0 = performance.now();
    const committed = await driveTransfers(clients, pairs, loadInFlightPerConnection);
    const loadSeconds = (performance.now() - t0) / 1000;
    // Every call above was acknowledged (after fsync): kill now, before the server has any quiet time.
    await sut.server.kill9();
    await Promise.all(clients.map((c) => c.close()));
    const diskAfter = dirBytes(clogDir);
    const snapshots = snapshotsOf(dbDir);
    const lastOffset = await lastLogOffset(sut, dbDir);

    const expected = new Float64Array(recoveryAccounts).fill(Number(initialBalance));
    let acked = 0;
    for (let i = 0; i < transfers; i++) {
      if (committed[i] === 0) continue;
      acked++;
      expected[pairs[2 * i]!]! -= 1;
      expected[pairs[2 * i + 1]!]! += 1;
    }

    await restart(sut);
    const pingMs = sut.server.readyMs;
    const first = await firstSql(sut, 'fp-rec');
    assert.equal(first.count, recoveryAccounts, 'recovery lost accounts');
    await callReducer(sut, 'fp-rec', 'transfer', '{"from":0,"to":1,"amount":1}');
    const firstTransferMs = performance.now() - sut.server.spawnedAt;
    expected[0]! -= 1;
    expected[1]! += 1;
    const check = await checkOurs(view);
    const invariantMs = performance.now() - sut.server.spawnedAt;
    assert.equal(check.accounts, recoveryAccounts);
    assert.equal(check.total, BigInt(recoveryAccounts) * initialBalance, 'balance sum changed across the crash');
    assert.ok(check.min >= 0n, 'a balance went negative');
    const mismatches = await compareBalances(sut, expected);
    const notes = sut.server.output().split('\n')
      .filter((l) => !l.includes('data directory') && /recover|replay|snapshot|truncat|torn|invalid/i.test(l));
    return {
      transfers: acked, loadTps: round(acked / loadSeconds), clogBytesPerTransfer: snapshots.count > 0 ? NaN : round((diskAfter - diskBefore) / acked, 1), // pruning shrinks it
      snapshotsAtKill: snapshots.count, snapshotBytesAtKill: snapshots.bytes,
      recordsAfterSnapshot: lastOffset - snapshots.newestOffset, recordsSinceBaseline: lastOffset - baselineLastOffset, coldPingMs: round(coldPingMs), pingMs: round(pingMs), firstSqlMs: round(first.msSinceSpawn),
      firstTransferMs: round(firstTransferMs), invariantMs: round(invariantMs),
      baselineFirstSqlMs: round(baseline.msSinceSpawn), firstSqlCpuMs: round(first.cpuMs), baselineFirstSqlCpuMs: round(baseline.cpuMs),
      // Per 1M replayed only when no snapshot cut the replay short (then both restarts replay from offset 0).
      replayCpuMsPer1M: snapshots.count > 0 ? NaN : round(((first.cpuMs - baseline.cpuMs) * 1_000_000) / (lastOffset - baselineLastOffset)),
      replayMsPer1M: snapshots.count > 0 ? NaN : round(((first.msSinceSpawn - baseline.msSinceSpawn) * 1_000_000) / (lastOffset - baselineLastOffset)),
      accountsChecked: recoveryAccounts, mismatches, serverNotes: notes.slice(0, 10),
    };
  } finally {
    await dispose(sut);
  }
}

/** Every account's balance against the replay of the acknowledged transfers; returns how many differ. */
async function compareBalances(sut: Sut, expected: Float64Array): Promise<number> {
  const [result] = (await sql(sut, 'fp-rec', 'SELECT * FROM accounts')) as [{ rows: [number, number][] }];
  let mismatches = 0;
  for (const [id, balance] of result!.rows) if (expected[id] !== balance) mismatches++;
  return mismatches + Math.abs(expected.length - result!.rows.length);
}

// ---------------------------------------------------------------------------------------------------------------
// report

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function printTables(r: Report): void {
  const out: string[] = [];
  if (r.startup !== undefined) {
    out.push('', '| startup | ms |', '| --- | ---: |');
    out.push(`| cold start, empty data dir: spawn → /v1/ping, median of ${r.startup.runsMs.length} (${r.startup.runsMs.join(', ')}) | ${r.startup.medianMs} |`);
    out.push(`| cold start: server CPU ms used by then | ${r.startup.medianCpuMs} |`);
    out.push(`| reference: \`node -e 0\` spawn → exit | ${r.startup.nodeBaselineMs} |`);
    out.push(`| graceful stop (SIGTERM → exit), empty server | ${r.startup.gracefulStopMs} |`);
    for (const m of r.rows) {
      if (m.restart === undefined) continue;
      out.push(`| restart with ${m.rows.toLocaleString('en-US')} rows: graceful stop | ${m.restart.gracefulStopMs} |`);
      out.push(`| restart with ${m.rows.toLocaleString('en-US')} rows: spawn → /v1/ping / → first SQL COUNT(*) | ${m.restart.pingMs} / ${m.restart.firstSqlMs} |`);
      out.push(`| restart with ${m.rows.toLocaleString('en-US')} rows: server CPU ms by /v1/ping / by first SQL | ${m.restart.pingCpuMs} / ${m.restart.firstSqlCpuMs} |`);
    }
  }
  if (r.publish !== undefined) {
    const p = r.publish;
    out.push('', '| publish (wall time of the CLI process) | ms |', '| --- | ---: |');
    out.push(`| reference: \`spacetime --version\` (CLI process start and exit) | ${p.cliVersionMs} |`);
    out.push(`| \`spacetime build\` of the keynote module alone | ${p.buildOnlyMs} |`);
    out.push(`| server side alone: HTTP PUT of the prebuilt bundle to a fresh name | ${p.httpPutFreshMs} |`);
    out.push(`| publish to a fresh name, build included (\`-p\`) | ${p.freshWithBuildMs} |`);
    out.push(`| publish to a fresh name, prebuilt bundle (\`--js-path\`) | ${p.freshPrebuiltMs} |`);
    out.push(`| first reducer call after publish (HTTP) | ${p.firstCallAfterPublishMs} |`);
    out.push(`| republish, no change | ${p.republishUnchangedMs} |`);
    out.push(`| republish, compatible change (added reducer) | ${p.republishCompatibleMs} |`);
    for (const m of r.rows) {
      if (m.hotSwap === undefined) continue;
      out.push(`| republish with ${m.rows.toLocaleString('en-US')} rows: no change / compatible change | ${m.hotSwap.republishUnchangedMs} / ${m.hotSwap.republishCompatibleMs} |`);
    }
  }
  if (r.suites.includes('memory')) {
    const settled = r.databaseThreads === 'main' ? 'settled, full GC'
      : `settled ${idleSettleMs / 1000} s: ${workerIdleGcAfterMs > 0 ? 'the worker\'s own idle GC' : 'no worker GC (idle GC off)'}, the main thread's forced`;
    out.push('', `| memory (${r.databaseThreads} mode; after seeding, ${settled}) | ` + r.rows.map((m) => `${m.rows.toLocaleString('en-US')} rows`).join(' | ') + ' |',
      '| --- |' + r.rows.map(() => ' ---: |').join(''));
    const row = (label: string, f: (m: RowsResult) => string) => out.push(`| ${label} | ${r.rows.map(f).join(' | ')} |`);
    row('seed: one `seed` reducer call over HTTP, wall / server CPU', (m) => `${m.seedMs} / ${m.seedCpuMs} ms`);
    row('RSS: empty server / module published / seeded', (m) => `${mb(m.empty.procRss)} / ${mb(m.moduleLoaded.procRss)} / ${mb(m.seeded.procRss)}`);
    row('**RSS bytes per row**', (m) => `**${m.bytesPerRow.rss}**`);
    row('V8 heapUsed bytes per row (all threads)', (m) => `${m.bytesPerRow.heapUsed}`);
    row('V8 external (incl. ArrayBuffers) bytes per row (all threads)', (m) => `${m.bytesPerRow.external}`);
    row('seeded RSS: anonymous / of it V8 heaps committed (all threads) / V8 external', (m) =>
      `${mb(m.seeded.procRssAnon)} / ${mb(m.seeded.heapTotal + m.seeded.workersHeapTotal)} / ${mb(externalAll(m.seeded))}`);
    row('RSS right after seed (no GC) / peak RSS', (m) => `${mb(m.seededBeforeGc.procRss)} / ${mb(m.peakRssBytes)}`);
    row(`RSS ${settleRecheckMs / 1000} s later (second GC)`, (m) => mb(m.seededRecheck.procRss));
    row('commit-log bytes per row (disk)', (m) => `${m.bytesPerRow.clogDisk}`);
    row('snapshots on disk', (m) => `${m.snapshots}`);
    if (r.rows.some((m) => m.restart !== undefined)) {
      row('after a restart (recovered from disk): RSS / heapUsed bytes per row', (m) => `${m.restart?.rssPerRowAfter ?? '—'} / ${m.restart?.heapUsedPerRowAfter ?? '—'}`);
    }
  }
  if (r.recovery.length > 0) {
    out.push('', `| recovery after SIGKILL (${recoveryAccounts.toLocaleString('en-US')} accounts) | ` + r.recovery.map((x) => `${x.transfers.toLocaleString('en-US')} transfers`).join(' | ') + ' |',
      '| --- |' + r.recovery.map(() => ' ---: |').join(''));
    const row = (label: string, f: (x: RecoveryResult) => string) => out.push(`| ${label} | ${r.recovery.map(f).join(' | ')} |`);
    row('load before the kill (TPS, WebSocket, acked after fsync)', (x) => `${x.loadTps}`);
    row('commit-log bytes per transfer', (x) => Number.isNaN(x.clogBytesPerTransfer) ? '— (snapshot)' : `${x.clogBytesPerTransfer}`);
    row('snapshots on disk at the kill (bytes)', (x) => `${x.snapshotsAtKill} (${x.snapshotBytesAtKill})`);
    row('log records to replay after the newest snapshot', (x) => `${x.recordsAfterSnapshot}`);
    row('restart after SIGKILL, wall ms since spawn: /v1/ping', (x) => `${x.pingMs}`);
    row('… first SQL answer (same crash with only the seed logged)', (x) => `${x.firstSqlMs} (${x.baselineFirstSqlMs})`);
    row('… first accepted transfer', (x) => `${x.firstTransferMs}`);
    row('… balance sum invariant verified (full-table SQL)', (x) => `${x.invariantMs}`);
    row('server CPU ms by the first SQL answer (only the seed logged)', (x) => `${x.firstSqlCpuMs} (${x.baselineFirstSqlCpuMs})`);
    row('**replay: server CPU ms per 1M records** (first-SQL CPU − seed-only first-SQL CPU) ÷ records logged between', (x) => Number.isNaN(x.replayCpuMsPer1M) ? '— (snapshot)' : `**${x.replayCpuMsPer1M}**`);
    row('accounts whose balance ≠ replay of the acked transfers', (x) => `${x.mismatches} of ${x.accountsChecked}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

interface Report {
  date: string;
  databaseThreads: DatabaseThreads;
  commit: string;
  dirty: boolean;
  machine: { cpu: string; cores: number; node: string; totalMemBytes: number; loadavgStart: string; loadavgEnd: string };
  suites: Suite[];
  runSeconds: number;
  startup?: ColdStartResult;
  publish?: PublishResult;
  rows: RowsResult[];
  recovery: RecoveryResult[];
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return os.loadavg().map((x) => x.toFixed(2)).join(' ');
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const opts = parseOptions();
  if (opts === undefined) return;
  assertBuilt();
  const started = performance.now();
  const report: Report = {
    date: new Date().toISOString(), databaseThreads, commit: git(['rev-parse', '--short', 'HEAD']), dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism(), node: process.version, totalMemBytes: os.totalmem(), loadavgStart: loadavg(), loadavgEnd: '' },
    suites: suiteNames.filter((s) => opts.suites.has(s)), runSeconds: 0, rows: [], recovery: [],
  };
  tempRoot = mkdtempSync(path.join(os.tmpdir(), 'stdb-footprint-'));
  const interrupted = (): void => {
    killAllServers();
    rmSync(tempRoot, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const bundles = await writeBundles();
    const log = (s: string) => process.stderr.write(`[footprint ${((performance.now() - started) / 1000).toFixed(0)} s] ${s}\n`);
    if (opts.suites.has('startup')) {
      log('cold starts');
      report.startup = await coldStarts(opts.coldStarts);
    }
    if (opts.suites.has('publish')) {
      log('publish');
      report.publish = await publishSuite(bundles);
    }
    if (opts.suites.has('memory') || opts.suites.has('startup') || opts.suites.has('publish')) {
      for (const rows of opts.rows) {
        log(`${rows} rows: memory${opts.suites.has('startup') ? ', restart' : ''}${opts.suites.has('publish') ? ', hot swap' : ''}`);
        report.rows.push(await rowsSuite(rows, bundles, opts));
      }
    }
    if (opts.suites.has('recovery')) {
      for (const t of opts.transfers) {
        log(`recovery: ${t} transfers, then SIGKILL`);
        report.recovery.push(await recoverySuite(t, bundles));
      }
    }
  } finally {
    rmSync(tempRoot, { recursive: true, force: true });
  }
  report.runSeconds = round((performance.now() - started) / 1000, 1);
  report.machine.loadavgEnd = loadavg();
  printTables(report);
  process.stdout.write(`\n--database-threads ${report.databaseThreads}, ${report.machine.cores} × ${report.machine.cpu}, Node ${report.machine.node}, commit ${report.commit}${report.dirty ? ' (dirty)' : ''}, ` +
    `load average ${report.machine.loadavgStart} → ${report.machine.loadavgEnd}, ${report.runSeconds} s\n`);
  mkdirSync(path.dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`wrote ${path.relative(repoRoot, opts.out)}\n`);
}

await main();
