// bench/cores.ts — `npm run bench:cores`: do two busy databases use two cores? (issue 12: "with two busy databases the
// server process uses ≥ 1.6 of this machine's 2 cores (its own CPU time per wall second; the load generator counted
// apart), and their summed TPS is ≥ 1.5× one database's").
//
// One real server (bin/spacetime.js start, durable by default) per mode — `--database-threads worker` (every database
// in its own worker thread) and `main` (every database on the server's thread, for contrast) — with the keynote
// fixture published twice (`keynote-a`, `keynote-b`) and seeded. Each busy database gets its own load generator: a
// child process of this script (`--generator`) that drives it over the SDK's WebSocket protocol with the keynote
// harness's client (bench/keynote/ours.ts connectOurs, workload.ts runClosedLoop: C clients × K calls in flight).
// Phase `one`: only keynote-a is busy; phase `two`: both are. Nothing is pinned: the server may use every core.
// Over each phase's measured window the parent reads, from /proc: the server process's own CPU time per wall second
// (all its threads), each load generator's apart, and the machine's busy cores (/proc/stat), so a reader sees what
// other load took. TPS per database comes from its generator. After each mode the balance invariant is checked.
// Results: a table on stdout and bench/results/cores-<UTC stamp>.json.
//
// Flags (defaults in parentheses): --duration 10 --warmup 2 (seconds per phase) --accounts 100000 --alpha 0
// --clients 64 --inflight 40 (per load generator, as the keynote drives ours) --modes worker,main
// --durability fsync|none (fsync) --client raw|sdk-wire (raw: bench/raw-load.ts, a generator that costs ~1 CPU-µs per
// transfer, so the server can have the cores; sdk-wire: bench/keynote/ours.ts's client over the `ws` library, as
// `npm run bench` drives ours, ~8 CPU-µs per transfer)
// Owns: the server and the generator processes it starts. May call: bench/keynote/{ours,procs,workload}.ts,
// ./raw-load.ts, ../usage.ts, node built-ins.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkOurs, connectOurs, repoRoot, seedOurs, startOursServer, type OursDatabase, type OursDatabaseThreads,
  type OursServer } from './keynote/ours.js';
import { installInterruptCleanup, machineBusyMicros, runPendingStops, stopChild, stopOnExit, treeCpuMicros } from './keynote/procs.js';
import { assertInvariant, makePairs, runClosedLoop, zipfSeed, type LoadResult } from './keynote/workload.js';
import { runRawLoad } from './raw-load.js';
import { exitWithUsageOnHelp } from './usage.js';

const initialBalance = 1_000_000_000n;
const pairCount = 1_000_000;
/** How long a load generator may take to start (tsx) and connect its clients. */
const generatorReadyTimeoutMs = 60_000;
const databaseNames = ['keynote-a', 'keynote-b'];
const thisFile = fileURLToPath(import.meta.url);

exitWithUsageOnHelp(import.meta.url);
const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    accounts: { type: 'string', default: '100000' },
    alpha: { type: 'string', default: '0' },
    clients: { type: 'string', default: '64' },
    inflight: { type: 'string', default: '40' },
    modes: { type: 'string', default: 'worker,main' },
    durability: { type: 'string', default: 'fsync' },
    client: { type: 'string', default: 'raw' },
    // Generator mode (the parent passes these to its children).
    generator: { type: 'boolean', default: false },
    url: { type: 'string' },
    db: { type: 'string' },
    'pair-seed': { type: 'string' },
  },
});

function positiveNumber(name: string, text: string | undefined): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return v;
}

const durationSeconds = positiveNumber('duration', flags.duration);
const warmupSeconds = Number(flags.warmup);
const accounts = positiveNumber('accounts', flags.accounts);
const alpha = Number(flags.alpha);
const clients = positiveNumber('clients', flags.clients);
const inFlightPerClient = positiveNumber('inflight', flags.inflight);

/**
 * Child mode: connect, say `ready`, wait for `go` on stdin, run the closed loop, print the LoadResult as one JSON line.
 * Only `url` of the server is used: the WebSocket needs no token.
 */
async function runGenerator(): Promise<void> {
  if (flags.client === 'raw') return runRawGenerator();
  const db = { server: { url: flags.url! } as OursServer, dbName: flags.db!, workload: 'keynote' } satisfies OursDatabase;
  const pairs = makePairs(accounts, alpha, pairCount, Number(flags['pair-seed']));
  const open = await Promise.all(Array.from({ length: clients }, () => connectOurs(db)));
  process.stdout.write('{"ready":true}\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const result = await runClosedLoop(open, { inFlightPerClient, warmupSeconds, durationSeconds, pairs });
  await Promise.all(open.map((c) => c.close()));
  process.stdout.write(JSON.stringify({ result }) + '\n');
  lines.close();
}

/** runGenerator with bench/raw-load.ts's client: raw sockets, one write per socket per turn, replies not decoded. */
async function runRawGenerator(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  const result = await runRawLoad({
    url: flags.url!, dbName: flags.db!, connections: clients, inFlightPerConnection: inFlightPerClient,
    warmupSeconds, durationSeconds, pairs: makePairs(accounts, alpha, pairCount, Number(flags['pair-seed'])),
    connected: async () => {
      process.stdout.write('{"ready":true}\n');
      await new Promise<void>((resolve) => lines.once('line', () => resolve()));
    },
  });
  process.stdout.write(JSON.stringify({ result }) + '\n');
  lines.close();
}

interface Generator {
  child: ChildProcess;
  dbName: string;
  /** Resolves with the child's LoadResult once it has run. */
  result: Promise<LoadResult>;
  stop(): Promise<void>;
}

/** Starts a load generator for one database and waits until its clients are connected. */
async function startGenerator(server: OursServer, dbName: string, index: number): Promise<Generator> {
  const argv = [process.execPath, '--import', import.meta.resolve('tsx'), thisFile, '--generator', '--url', server.url,
    '--db', dbName, '--pair-seed', String(zipfSeed + index), '--accounts', String(accounts), '--alpha', String(alpha),
    '--clients', String(clients), '--inflight', String(inFlightPerClient), '--warmup', String(warmupSeconds),
    '--duration', String(durationSeconds), '--client', flags.client!];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const stop = stopOnExit(() => stopChild(child));
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const ready = deferred<void>();
  const result = deferred<LoadResult>();
  result.promise.catch(() => {}); // a failure before `ready` is reported through ready
  const fail = (err: Error) => {
    ready.reject(err);
    result.reject(err);
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    log += line + '\n';
    const msg = JSON.parse(line) as { ready?: boolean; result?: LoadResult };
    if (msg.ready) ready.resolve();
    if (msg.result !== undefined) result.resolve(msg.result);
  });
  child.once('exit', (code) => fail(new Error(`load generator for ${dbName} exited with ${code}:\n${log}`)));
  const timer = setTimeout(() => fail(new Error(`load generator for ${dbName} not ready in ${generatorReadyTimeoutMs} ms:\n${log}`)),
    generatorReadyTimeoutMs);
  try {
    await ready.promise;
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { child, dbName, result: result.promise, stop };
}

/** A promise with its settle functions; settling twice is a no-op, as for any promise. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

interface PhaseResult {
  mode: OursDatabaseThreads;
  phase: 'one' | 'two';
  databases: { name: string; tps: number; p50Ms: number; p99Ms: number; errors: number; generatorCores: number | null }[];
  tpsSum: number;
  serverCores: number | null;
  /** The server's CPU time over the window per transfer of every database: flat from one to two when nothing is shared. */
  serverCpuMicrosPerTx: number | null;
  generatorCoresSum: number | null;
  machineBusyCores: number | null;
  /** Busy cores that were neither the server nor our load generators: the other load on the machine. */
  otherCores: number | null;
  loadAverage1m: number;
}

const rate = (a: number | undefined, b: number | undefined, wallMicros: number) =>
  a === undefined || b === undefined ? null : (b - a) / wallMicros;

/** Runs one phase: a generator per busy database, all started together; CPU sampled over the measured window. */
async function runPhase(server: OursServer, mode: OursDatabaseThreads, busy: string[]): Promise<PhaseResult> {
  const generators: Generator[] = [];
  try {
    for (const [i, name] of busy.entries()) generators.push(await startGenerator(server, name, i));
    const sample = () => ({
      atMicros: performance.now() * 1000, server: treeCpuMicros([server.pid]), machine: machineBusyMicros(),
    });
    for (const g of generators) g.child.stdin!.write('go\n');
    await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
    const before = sample();
    await new Promise((r) => setTimeout(r, durationSeconds * 1000));
    const after = sample();
    const results = await Promise.all(generators.map((g) => g.result));
    const wallMicros = after.atMicros - before.atMicros;
    // Each generator's own CPU over its window (process.cpuUsage): /proc's tree sums went negative when a child of
    // the generator (tsx's esbuild service) exited inside the window.
    const generatorCores: (number | null)[] = results.map((r) => r.clientCpuShare);
    const serverCores = rate(before.server, after.server, wallMicros);
    const machineBusyCores = rate(before.machine, after.machine, wallMicros);
    const generatorCoresSum = generatorCores.some((c) => c === null) ? null : generatorCores.reduce<number>((s, c) => s + c!, 0);
    return {
      mode, phase: busy.length === 1 ? 'one' : 'two',
      databases: results.map((r, i) => ({
        name: busy[i], tps: r.tps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors, generatorCores: generatorCores[i],
      })),
      tpsSum: results.reduce((s, r) => s + r.tps, 0),
      serverCores, generatorCoresSum, machineBusyCores,
      serverCpuMicrosPerTx: serverCores === null || results.every((r) => r.tps === 0) ? null
        : (serverCores * 1e6) / results.reduce((s, r) => s + r.tps, 0),
      otherCores: machineBusyCores === null || serverCores === null || generatorCoresSum === null ? null
        : machineBusyCores - serverCores - generatorCoresSum,
      loadAverage1m: os.loadavg()[0],
    };
  } finally {
    await Promise.all(generators.map((g) => g.stop()));
  }
}

/** One server in `mode`: publish and seed both databases, phase one, phase two, then check both invariants. */
async function runMode(mode: OursDatabaseThreads): Promise<PhaseResult[]> {
  const server = await startOursServer([], flags.durability === 'none' ? 'none' : 'fsync', mode);
  try {
    const dbs: OursDatabase[] = databaseNames.map((dbName) => ({ server, dbName, workload: 'keynote' }));
    for (const db of dbs) {
      await server.publish(db.dbName, db.workload, false);
      await seedOurs(db, accounts, initialBalance);
    }
    const phases: PhaseResult[] = [];
    for (const busy of [databaseNames.slice(0, 1), databaseNames]) {
      process.stdout.write(`  ${mode}: ${busy.join(' + ')} busy … `);
      const phase = await runPhase(server, mode, busy);
      phases.push(phase);
      console.log(`${phase.databases.map((d) => Math.round(d.tps)).join(' + ')} TPS, server ${phase.serverCores?.toFixed(2)} ` +
        `cores, generators ${phase.generatorCoresSum?.toFixed(2)}, machine busy ${phase.machineBusyCores?.toFixed(2)}`);
    }
    for (const db of dbs) {
      assertInvariant(await checkOurs(db), accounts, initialBalance, 'keynote', { rowsMin: 0, rowsMax: 0 });
    }
    return phases;
  } finally {
    await server.stop();
  }
}

const fixed = (v: number | null, digits = 2) => (v === null ? '-' : v.toFixed(digits));

function printTable(phases: PhaseResult[]): void {
  console.log('\nmode    busy  TPS per database        TPS sum  vs one  server cores  srv CPU-µs/tx  generator cores  machine busy  other  load avg');
  for (const p of phases) {
    const one = phases.find((q) => q.mode === p.mode && q.phase === 'one');
    const vsOne = one === undefined || one.tpsSum === 0 ? null : p.tpsSum / one.tpsSum;
    console.log([p.mode.padEnd(8), p.phase.padEnd(6), p.databases.map((d) => Math.round(d.tps)).join(' + ').padEnd(24),
      String(Math.round(p.tpsSum)).padEnd(9), fixed(vsOne).padEnd(8), fixed(p.serverCores).padEnd(14),
      fixed(p.serverCpuMicrosPerTx, 1).padEnd(15),
      p.databases.map((d) => fixed(d.generatorCores)).join(' + ').padEnd(17), fixed(p.machineBusyCores).padEnd(14),
      fixed(p.otherCores).padEnd(7), p.loadAverage1m.toFixed(1)].join(''));
  }
  const worker = phases.filter((p) => p.mode === 'worker');
  const two = worker.find((p) => p.phase === 'two');
  const one = worker.find((p) => p.phase === 'one');
  if (two !== undefined && one !== undefined) {
    console.log(`\ntargets (worker, two busy): server ${fixed(two.serverCores)} cores (≥ 1.6), summed TPS ` +
      `${fixed(two.tpsSum / one.tpsSum)}× one database's (≥ 1.5×); the machine had ${os.availableParallelism()} cores, ` +
      `${fixed(two.otherCores)} of them busy with other work`);
  }
}

async function main(): Promise<void> {
  const modes = flags.modes!.split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'worker' && m !== 'main') throw new Error(`--modes entries are worker or main, got ${m}`);
  if (flags.client !== 'raw' && flags.client !== 'sdk-wire') throw new Error(`--client is raw or sdk-wire, got ${flags.client}`);
  const startedAt = new Date();
  console.log(`cores bench: ${os.availableParallelism()} cores, ${durationSeconds}s + ${warmupSeconds}s warm-up per phase, ` +
    `${accounts} accounts, α=${alpha}, ${clients} × ${inFlightPerClient} per load generator (${flags.client} client), unpinned, ` +
    `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const phases: PhaseResult[] = [];
  for (const mode of modes as OursDatabaseThreads[]) phases.push(...(await runMode(mode)));
  printTable(phases);
  const resultsDir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const file = path.join(resultsDir, `cores-${stamp}.json`);
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  writeFileSync(file, JSON.stringify({
    date: startedAt.toISOString(), machine: { nproc: os.availableParallelism(), cpuModel, node: process.version },
    options: { durationSeconds, warmupSeconds, accounts, alpha, clients, inFlightPerClient, durability: flags.durability,
      client: flags.client },
    phases,
  }, null, 2) + '\n');
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}

if (flags.generator) {
  await runGenerator();
} else {
  installInterruptCleanup();
  try {
    await main();
  } finally {
    await runPendingStops();
  }
}
