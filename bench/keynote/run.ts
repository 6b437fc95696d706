// `npm run bench`: transfer workloads, side by side — our server vs Node+PostgreSQL vs Node+SQLite. Two workloads
// (--workload, default both, one table each): `keynote` (accounts {id, balance}) and `general`, the same transfer as
// apps write it (accounts with a string owner and an updated timestamp, one audit row with an autoInc id per
// transfer; every system runs the same transaction and the invariant check also counts the audit rows).
// One command: installs what is missing (PostgreSQL, rsvg-convert, taskset; Debian packages via ../install.ts, unless
// --no-install), starts each system (pinned to the SUT cores when taskset exists; this process is pinned to the
// others), re-seeds before every (system, workload, α), runs the closed loop, checks the balance invariant, stops the system
// (also on Ctrl-C or a crash), then writes bench/keynote/results/<stamp>.json, prints a table and renders charts
// (SVG, PNG when a converter is installed). Relaxed-durability variants (acknowledged before fsync) are measured too
// (unless --durable-only) and always reported apart: their own table section, chart style and ratios (relaxed vs
// relaxed), `relaxed: true` on their cells in the JSON.
// Owns the results directory. May call: ./systems, ./postgres, ./procs, ./workload, ./chart, ../install.
//
// Flags (defaults in parentheses): --duration 10 --warmup 2 (seconds) --accounts 100000 --alphas 0,1.5
// --clients 64 --inflight 1 (baselines' calls in flight per client) --ours-inflight 40 --systems ours,pg,sqlite
// --durable-only (skip the relaxed variant of each selected system; --relaxed states the default; the variants can
// also be named in --systems: ours-durability-none, pg-serializable-async, sqlite-normal)
// --pg-variants serializable,function --pg-pools 8,32,64 --pairs 1000000 --initial-balance 1000000000 --no-pin
// --no-install (never apt-get: skip what is missing, as before) --workload keynote|general|both
// --database-threads worker|main (ours: `spacetime start --database-threads`; worker is the server's default)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureInstalled, type Requirement } from '../install.js';
import { exitWithUsageOnHelp } from '../usage.js';
import { pngRequirement, tpsBarsSvg, linesSvg, writeChart, type ChartEntry } from './chart.js';
import { findPgBin, pgRequirement, startPostgres } from './postgres.js';
import { defaultPinning, installInterruptCleanup, pinSelf, runPendingStops, tasksetRequirement, type Pinning } from './procs.js';
import { freePort, repoRoot, type OursDatabaseThreads } from './ours.js';
import { measure, startOursSystem, startPgApp, startSqlite, type CellOptions, type CellResult, type SystemUnderTest } from './systems.js';
import { makePairs, workloadNames, type WorkloadName } from './workload.js';

const resultsDir = path.join(repoRoot, 'bench', 'keynote', 'results');
const startedAtMs = Date.now();

/**
 * The relaxed-durability variants: each acknowledges a transfer before it is on disk, so a crash can lose the last
 * acknowledged ones. `of` is the --systems entry whose --relaxed twin it is; `hueKey` the durable family it is
 * charted beside; `note` goes into the results.
 */
const relaxedVariants = [
  { id: 'ours-durability-none', of: 'ours', hueKey: 'ours',
    note: 'ours-durability-none: `spacetime start --durability none` (a commit is acknowledged once the OS has it, before fsync)' },
  { id: 'pg-serializable-async', of: 'pg', hueKey: 'pg-serializable',
    note: 'pg-serializable-async: the serializable app with synchronous_commit=off on its sessions (acknowledged before the WAL flush), at the best durable pool size per α' },
  { id: 'sqlite-normal', of: 'sqlite', hueKey: 'sqlite',
    note: 'sqlite-normal: WAL with synchronous=NORMAL (acknowledged before the WAL fsync)' },
] as const;
type RelaxedId = (typeof relaxedVariants)[number]['id'];

exitWithUsageOnHelp(import.meta.url);
const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    accounts: { type: 'string', default: '100000' },
    alphas: { type: 'string', default: '0,1.5' },
    clients: { type: 'string', default: '64' },
    inflight: { type: 'string', default: '1' },
    'ours-inflight': { type: 'string', default: '40' },
    systems: { type: 'string', default: 'ours,pg,sqlite' },
    'pg-variants': { type: 'string', default: 'serializable,function' },
    'pg-pools': { type: 'string', default: '8,32,64' },
    pairs: { type: 'string', default: '1000000' },
    'initial-balance': { type: 'string', default: '1000000000' },
    'no-pin': { type: 'boolean', default: false },
    relaxed: { type: 'boolean', default: false },
    'durable-only': { type: 'boolean', default: false },
    'no-install': { type: 'boolean', default: false },
    workload: { type: 'string', default: 'both' },
    'database-threads': { type: 'string', default: 'worker' },
  },
});


function positiveNumber(name: string, text: string | undefined): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(text)}`);
  return v;
}
const list = (text: string | undefined) => (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

const alphas = list(flags.alphas).map(Number);
const systems = new Set(list(flags.systems));
const accounts = positiveNumber('accounts', flags.accounts);
const base: Omit<CellOptions, 'inFlightPerClient'> = {
  accounts,
  initialBalance: BigInt(flags['initial-balance']!),
  clients: positiveNumber('clients', flags.clients),
  warmupSeconds: Number(flags.warmup),
  durationSeconds: positiveNumber('duration', flags.duration),
};
const baselineInFlight = positiveNumber('inflight', flags.inflight);
const pgPools = list(flags['pg-pools']).map((p) => positiveNumber('pg-pools', p));
const pgVariants = list(flags['pg-variants']).map((v) => {
  if (v !== 'serializable' && v !== 'function') throw new Error(`unknown --pg-variants entry ${v} (known: serializable, function)`);
  return v;
});
const oursInFlight = positiveNumber('ours-inflight', flags['ours-inflight']);
const pairCount = positiveNumber('pairs', flags.pairs);
const knownSystems = new Set<string>(['ours', 'pg', 'sqlite', ...relaxedVariants.map((v) => v.id)]);
for (const s of systems) if (!knownSystems.has(s)) throw new Error(`unknown --systems entry ${s} (known: ${[...knownSystems].join(', ')})`);

const workloads: readonly WorkloadName[] = flags.workload === 'both' ? workloadNames
  : workloadNames.filter((w) => w === flags.workload);
if (workloads.length === 0) throw new Error(`--workload must be keynote, general or both, got ${flags.workload}`);
const databaseThreads: OursDatabaseThreads = (() => {
  const mode = flags['database-threads'];
  if (mode !== 'worker' && mode !== 'main') throw new Error(`--database-threads must be worker or main, got ${mode}`);
  return mode;
})();

if (flags.relaxed && flags['durable-only']) throw new Error('--relaxed and --durable-only contradict each other');

/**
 * A relaxed variant runs when named in --systems, or when its durable system runs — by default (the whole default
 * run stays around 5 minutes), unless --durable-only. `--relaxed` states the default explicitly.
 */
function wants(id: RelaxedId): boolean {
  const v = relaxedVariants.find((r) => r.id === id)!;
  return systems.has(id) || (!flags['durable-only'] && systems.has(v.of));
}

/** Cells this run will measure (the synchronous_commit=off variant: one best pool per α). */
function plannedCells(): number {
  const pgRuns = !unavailable.has(pgRequirement.key);
  let perAlpha = 0;
  if (systems.has('ours')) perAlpha++;
  if (systems.has('pg') && pgRuns) perAlpha += pgVariants.length * pgPools.length;
  if (systems.has('sqlite')) perAlpha++;
  perAlpha += relaxedVariants.filter((v) => wants(v.id) && (v.of !== 'pg' || pgRuns)).length;
  return perAlpha * alphas.length * workloads.length;
}

interface Failure { system: string; error: string }
const cells: CellResult[] = [];
const failures: Failure[] = [];
const notes: string[] = [];
/** Requirement keys ensureRequirements could not satisfy: the run goes on without them. */
const unavailable = new Set<string>();

function machineFacts(pinning: Pinning | undefined) {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: os.availableParallelism(),
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
    pinning: pinning ?? null,
  };
}

const pairsByAlpha = new Map<number, Uint32Array>();
function pairsFor(alpha: number): Uint32Array {
  let pairs = pairsByAlpha.get(alpha);
  if (pairs === undefined) {
    pairs = makePairs(accounts, alpha, pairCount);
    pairsByAlpha.set(alpha, pairs);
  }
  return pairs;
}

/** Runs every α against one started system; a failure is recorded and the harness goes on to the next system. */
async function runSystem(
  label: string, start: () => Promise<SystemUnderTest>, inFlightPerClient: number, cellAlphas: number[] = alphas,
): Promise<void> {
  let sut: SystemUnderTest | undefined;
  try {
    sut = await start();
    for (const alpha of cellAlphas) {
      process.stdout.write(`  ${sut.workload} ${sut.id} α=${alpha} … `);
      const cell = await measure(sut, alpha, pairsFor(alpha), { ...base, inFlightPerClient });
      cells.push(cell);
      console.log(`${Math.round(cell.tps)} TPS, p50 ${cell.p50Ms.toFixed(1)} ms, p99 ${cell.p99Ms.toFixed(1)} ms` +
        (cell.errors > 0 ? `, ${cell.errors} errors (${cell.firstError})` : ''));
    }
  } catch (err) {
    const error = String((err as Error)?.stack ?? err).split('\n').slice(0, 6).join('\n');
    failures.push({ system: label, error });
    console.log(`\n  ${label} FAILED: ${error}`);
  } finally {
    await sut?.stop().catch(() => {});
  }
}

async function runPostgres(workload: WorkloadName, serverCpus: string | undefined): Promise<void> {
  const wantAsync = wants('pg-serializable-async');
  if (!systems.has('pg') && !wantAsync) return;
  const bin = findPgBin();
  if (bin === undefined || unavailable.has(pgRequirement.key)) return; // ensureRequirements already said why
  const version = execFileSync(path.join(bin, 'postgres'), ['--version']).toString().trim();
  const note = `PostgreSQL: ${version}, fsync=on, synchronous_commit=on, otherwise default config`;
  if (!notes.includes(note)) notes.push(note);
  let cluster;
  try {
    cluster = await startPostgres(bin, await freePort(), serverCpus);
  } catch (err) {
    const error = String((err as Error)?.stack ?? err).split('\n').slice(0, 6).join('\n');
    failures.push({ system: `${workload} pg`, error });
    console.log(`\n  PostgreSQL cluster FAILED to start: ${error}`);
    return;
  }
  try {
    if (systems.has('pg')) {
      for (const variant of pgVariants) {
        for (const pool of pgPools) {
          await runSystem(`${workload} pg-${variant}-pool${pool}`, () => startPgApp(workload, cluster, variant, pool, serverCpus),
            baselineInFlight);
        }
      }
    }
    if (wantAsync) {
      for (const [pool, poolAlphas] of asyncPoolPlan(workload)) {
        await runSystem(`${workload} pg-serializable-async-pool${pool}`,
          () => startPgApp(workload, cluster, 'serializable', pool, serverCpus, 'off'), baselineInFlight, poolAlphas);
      }
    }
  } finally {
    await cluster.stop();
  }
}

/**
 * Pool sizes for the synchronous_commit=off variant: per α the pool that was best for durable serializable (one cell
 * per α instead of a whole sweep); every --pg-pools entry for an α without a durable serializable result.
 */
function asyncPoolPlan(workload: WorkloadName): Map<number, number[]> {
  const plan = new Map<number, number[]>();
  const add = (pool: number, alpha: number) => plan.set(pool, [...(plan.get(pool) ?? []), alpha]);
  for (const alpha of alphas) {
    const durable = best(workload, 'pg-serializable', alpha);
    const pool = durable === undefined ? undefined : Number(/-pool(\d+)$/.exec(durable.system)?.[1]);
    if (pool !== undefined && Number.isInteger(pool)) add(pool, alpha);
    else for (const p of pgPools) add(p, alpha);
  }
  return plan;
}

/** The best cell (highest TPS) of a family at α in a workload, e.g. the best pool size of a PG variant. */
function best(workload: WorkloadName, family: string, alpha: number): CellResult | undefined {
  return cells.filter((c) => c.workload === workload && c.family === family && c.alpha === alpha).sort((a, b) => b.tps - a.tps)[0];
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

const columnWidths = [30, 5, 8, 9, 7, 9, 9, 15, 11, 14, 9];
const relaxedOurs = 'ours-durability-none';
const relaxedCaveat = 'acknowledged before fsync: a crash can lose the last acknowledged transfers; not comparable to the durable rows';

function printRuns(title: string, shown: CellResult[]): void {
  console.log(`\n${title}`);
  console.log(['system', 'α', 'C×K', 'TPS', '±sd', 'p50 ms', 'p99 ms', 'srv CPU-µs/tx', 'srv cores', 'client cores', 'rejected']
    .map((h, i) => pad(h, columnWidths[i])).join(''));
  for (const c of shown) {
    console.log([c.system, String(c.alpha), `${c.clients}×${c.inFlightPerClient}`, Math.round(c.tps).toString(),
      Math.round(c.tpsStddev).toString(), c.p50Ms.toFixed(1), c.p99Ms.toFixed(1),
      c.serverCpuMicrosPerTx === null ? '-' : c.serverCpuMicrosPerTx.toFixed(0),
      c.serverCores === null ? '-' : c.serverCores.toFixed(2), c.clientCpuShare.toFixed(2), String(c.rejected)]
      .map((v, i) => pad(v, columnWidths[i])).join(''));
  }
}

/** One line per family: best cell per α, ratio `ours ÷ this` against `oursFamily` (same durability class only). */
function printBest(workload: WorkloadName, title: string, families: string[], oursFamily: string): void {
  console.log(`\n${title}`);
  for (const f of families) {
    const parts = alphas.map((a) => {
      const c = best(workload, f, a);
      if (c === undefined) return `α=${a}: -`;
      const o = best(workload, oursFamily, a);
      const ratio = o !== undefined && f !== oursFamily && c.tps > 0 ? `  ours/this ${(o.tps / c.tps).toFixed(1)}×` : '';
      return `α=${a}: ${Math.round(c.tps)} TPS (${c.system}) p50 ${c.p50Ms.toFixed(1)} p99 ${c.p99Ms.toFixed(1)}${ratio}`;
    });
    const first = best(workload, f, alphas[0]);
    const last = best(workload, f, alphas[alphas.length - 1]);
    const retention = first !== undefined && last !== undefined && first.tps > 0 ? (last.tps / first.tps).toFixed(2) : '-';
    console.log(`  ${pad(f, 22)} ${parts.join(' | ')} | retention ${retention}`);
  }
}

function familiesOf(workload: WorkloadName, relaxed: boolean): string[] {
  return [...new Set(cells.filter((c) => c.workload === workload && c.relaxed === relaxed).map((c) => c.family))];
}

function printTables(workload: WorkloadName): void {
  const durable = cells.filter((c) => c.workload === workload && !c.relaxed);
  const relaxed = cells.filter((c) => c.workload === workload && c.relaxed);
  console.log(`\n=== workload: ${workload} ===`);
  printRuns('All runs', durable);
  if (relaxed.length > 0) printRuns(`Relaxed durability runs (${relaxedCaveat})`, relaxed);
  printBest(workload, 'Best per system (PG: best pool size); ratio = ours / system; retention = TPS(α last) / TPS(α first)',
    familiesOf(workload, false), 'ours');
  if (relaxed.length > 0) {
    printBest(workload, `Relaxed durability, best per system; ratio = ${relaxedOurs} / system (relaxed vs relaxed only)`,
      familiesOf(workload, true), relaxedOurs);
  }
}

/** The chart colour key of a family: a relaxed variant shares its durable counterpart's hue. */
function chartEntry(family: string, name = family): ChartEntry {
  const variant = relaxedVariants.find((v) => v.id === family);
  return { name, relaxed: variant !== undefined, hueKey: variant?.hueKey ?? family };
}

/** Charts of one workload, named `<stamp>-<workload>-…`. */
function renderCharts(stamp: string, workload: WorkloadName): string[] {
  const families = [...familiesOf(workload, false), ...familiesOf(workload, true)];
  if (families.length === 0) return [];
  const prefix = path.join(resultsDir, `${stamp}-${workload}`);
  const files = writeChart(`${prefix}-tps`,
    tpsBarsSvg(`${workload === 'keynote' ? 'Keynote' : 'General'} transfer: TPS per system (best configuration)`,
      families.map((f) => chartEntry(f)), alphas, (f, a) => best(workload, f, a)?.tps));
  for (const alpha of alphas) {
    const shown = families.map((f) => best(workload, f, alpha)).filter((c): c is CellResult => c !== undefined);
    const series = (y: (p: CellResult['series'][number]) => number) =>
      shown.map((c) => ({ ...chartEntry(c.family, c.system), points: c.series.map((p) => [p.tSec, y(p)] as [number, number]) }));
    files.push(...writeChart(`${prefix}-p99-alpha${alpha}`,
      linesSvg(`${workload}: p99 latency over time, α = ${alpha}`, 'p99 ms', series((p) => p.p99Ms))));
    files.push(...writeChart(`${prefix}-tps-alpha${alpha}`,
      linesSvg(`${workload}: TPS per second, α = ${alpha}`, 'transfers / s', series((p) => p.tps))));
  }
  return files;
}

/**
 * Installs (or reports) the tools this run needs before anything starts. A missing tool never stops the run:
 * without PostgreSQL its rows are skipped, without taskset the run is unpinned, without rsvg-convert charts are SVG.
 */
async function ensureRequirements(): Promise<void> {
  const needed: Requirement[] = [];
  if (!flags['no-pin'] && os.availableParallelism() >= 2) needed.push(tasksetRequirement);
  if (systems.has('pg') || wants('pg-serializable-async')) needed.push(pgRequirement);
  needed.push(pngRequirement);
  for (const req of needed) {
    const outcome = await ensureInstalled(req, { allowInstall: !flags['no-install'] });
    if (outcome.status === 'unavailable') {
      notes.push(outcome.reason);
      unavailable.add(req.key);
    }
    else if (outcome.status === 'installed') notes.push(`installed ${req.name} (apt-get install ${req.packages.join(' ')})`);
  }
}

/** Every selected system, one after another, on one workload. */
async function runWorkload(workload: WorkloadName, serverCpus: string | undefined): Promise<void> {
  console.log(`workload ${workload}:`);
  if (systems.has('ours')) {
    await runSystem(`${workload} ours`, () => startOursSystem(workload, serverCpus, databaseThreads), oursInFlight);
  }
  if (wants('ours-durability-none')) {
    await runSystem(`${workload} ours-durability-none`, () => startOursSystem(workload, serverCpus, databaseThreads, 'none'),
      oursInFlight);
  }
  await runPostgres(workload, serverCpus);
  if (systems.has('sqlite')) await runSystem(`${workload} sqlite`, () => startSqlite(workload, serverCpus), baselineInFlight);
  if (wants('sqlite-normal')) {
    await runSystem(`${workload} sqlite-normal`, () => startSqlite(workload, serverCpus, 'NORMAL'), baselineInFlight);
  }
}

async function main(): Promise<void> {
  await ensureRequirements();
  const pinning = flags['no-pin'] || unavailable.has(tasksetRequirement.key) ? undefined : defaultPinning();
  const machine = machineFacts(pinning); // before pinning: availableParallelism follows this process's affinity
  if (pinning !== undefined) pinSelf(pinning.clientCpus);
  console.log(`transfer bench (${workloads.join(', ')}): ${machine.nproc} cores (${machine.cpuModel}), ${base.durationSeconds}s + ${base.warmupSeconds}s ` +
    `warm-up per cell, ${accounts} accounts, α ∈ {${alphas.join(', ')}}, clients ${base.clients} × ${baselineInFlight} ` +
    `(ours × ${oursInFlight}, --database-threads ${databaseThreads})` + (pinning ? `, SUT on CPU ${pinning.serverCpus}, load generator on CPU ${pinning.clientCpus}` : ', unpinned'));
  const planned = plannedCells();
  console.log(`planned: ${planned} cells × ${base.warmupSeconds + base.durationSeconds} s ≈ ` +
    `${((planned * (base.warmupSeconds + base.durationSeconds)) / 60).toFixed(1)} min of load, plus ~2 s of setup per cell`);
  const serverCpus = pinning?.serverCpus;
  for (const workload of workloads) await runWorkload(workload, serverCpus);
  for (const v of relaxedVariants) if (cells.some((c) => c.family === v.id)) notes.push(`relaxed: ${v.note}`);
  for (const workload of workloads) printTables(workload);
  for (const f of failures) console.log(`  FAILED ${f.system}: ${f.error.split('\n')[0]}`);
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const jsonPath = path.join(resultsDir, `${stamp}.json`);
  const wallSeconds = Math.round((Date.now() - startedAtMs) / 1000);
  writeFileSync(jsonPath, JSON.stringify({
    date: new Date().toISOString(), machine, notes,
    options: { ...base, initialBalance: base.initialBalance.toString(), workloads, databaseThreads, alphas, baselineInFlight,
      oursInFlight, pairCount,
      relaxed: relaxedVariants.filter((v) => wants(v.id)).map((v) => v.id) },
    wallSeconds, cells, failures,
  }, null, 2) + '\n');
  const charts = workloads.flatMap((w) => renderCharts(stamp, w));
  console.log(`\nresults: ${path.relative(process.cwd(), jsonPath)}`);
  console.log(`charts: ${charts.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  if (!charts.some((f) => f.endsWith('.png'))) console.log('(no SVG→PNG converter installed: apt-get install librsvg2-bin for PNGs)');
  console.log(`wall time: ${wallSeconds} s (${cells.length} cells)`);
  process.exitCode = failures.length > 0 ? 1 : 0;
}

installInterruptCleanup();
try {
  await main();
} finally {
  await runPendingStops(); // normally empty: every system stops itself; this catches one a thrown error skipped
}
