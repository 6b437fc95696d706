// `npm run bench`: the keynote transfer workload, side by side — our server vs Node+PostgreSQL vs Node+SQLite.
// Starts each system (pinned to the SUT cores when taskset exists; this process is pinned to the others), re-seeds
// before every (system, α), runs the closed loop, checks the balance invariant, then writes
// bench/keynote/results/<stamp>.json, prints a table and renders charts (SVG, PNG when a converter is installed).
// Owns the results directory. May call: ./systems, ./postgres, ./procs, ./workload, ./chart.
//
// Flags (defaults in parentheses): --duration 10 --warmup 2 (seconds) --accounts 100000 --alphas 0,1.5
// --clients 64 --inflight 1 (baselines' calls in flight per client) --ours-inflight 40 --systems ours,pg,sqlite
// (also: sqlite-normal, the relaxed-durability variant)
// --pg-variants serializable,function --pg-pools 8,32,64 --pairs 1000000 --initial-balance 1000000000 --no-pin
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { tpsBarsSvg, linesSvg, writeChart } from './chart.js';
import { findPgBin, installHint, startPostgres } from './postgres.js';
import { defaultPinning, pinSelf, type Pinning } from './procs.js';
import { freePort, repoRoot } from './ours.js';
import { measure, startOursSystem, startPgApp, startSqlite, type CellOptions, type CellResult, type SystemUnderTest } from './systems.js';
import { makePairs } from './workload.js';

const resultsDir = path.join(repoRoot, 'bench', 'keynote', 'results');

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
const oursInFlight = positiveNumber('ours-inflight', flags['ours-inflight']);
const pairCount = positiveNumber('pairs', flags.pairs);

interface Failure { system: string; error: string }
const cells: CellResult[] = [];
const failures: Failure[] = [];
const notes: string[] = [];

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
async function runSystem(label: string, start: () => Promise<SystemUnderTest>, inFlightPerClient: number): Promise<void> {
  let sut: SystemUnderTest | undefined;
  try {
    sut = await start();
    for (const alpha of alphas) {
      process.stdout.write(`  ${sut.id} α=${alpha} … `);
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

async function runPostgres(serverCpus: string | undefined): Promise<void> {
  const bin = findPgBin();
  if (bin === undefined) {
    console.log(installHint);
    notes.push(installHint);
    return;
  }
  const version = execFileSync(path.join(bin, 'postgres'), ['--version']).toString().trim();
  notes.push(`PostgreSQL: ${version}, fsync=on, synchronous_commit=on, otherwise default config`);
  const cluster = await startPostgres(bin, await freePort(), serverCpus);
  // An interrupted run must not leave a postmaster behind.
  const onSignal = () => void cluster.stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const variant of list(flags['pg-variants'])) {
      if (variant !== 'serializable' && variant !== 'function') throw new Error(`unknown --pg-variants entry ${variant}`);
      for (const pool of list(flags['pg-pools']).map(Number)) {
        await runSystem(`pg-${variant}-pool${pool}`, () => startPgApp(cluster, variant, pool, serverCpus), baselineInFlight);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cluster.stop();
  }
}

/** The best cell (highest TPS) of a family at α, e.g. the best pool size of a PG variant. */
function best(family: string, alpha: number): CellResult | undefined {
  return cells.filter((c) => c.family === family && c.alpha === alpha).sort((a, b) => b.tps - a.tps)[0];
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

const columnWidths = [26, 5, 8, 9, 7, 9, 9, 15, 11, 14, 9];

function printTables(): void {
  console.log('\nAll runs');
  console.log(['system', 'α', 'C×K', 'TPS', '±sd', 'p50 ms', 'p99 ms', 'srv CPU-µs/tx', 'srv cores', 'client cores', 'rejected']
    .map((h, i) => pad(h, columnWidths[i])).join(''));
  for (const c of cells) {
    console.log([c.system, String(c.alpha), `${c.clients}×${c.inFlightPerClient}`, Math.round(c.tps).toString(),
      Math.round(c.tpsStddev).toString(), c.p50Ms.toFixed(1), c.p99Ms.toFixed(1),
      c.serverCpuMicrosPerTx === null ? '-' : c.serverCpuMicrosPerTx.toFixed(0),
      c.serverCores === null ? '-' : c.serverCores.toFixed(2), c.clientCpuShare.toFixed(2), String(c.rejected)]
      .map((v, i) => pad(v, columnWidths[i])).join(''));
  }
  const families = [...new Set(cells.map((c) => c.family))];
  const ours = (alpha: number) => best('ours', alpha);
  console.log('\nBest per system (PG: best pool size); ratio = ours / system; retention = TPS(α last) / TPS(α first)');
  for (const f of families) {
    const parts = alphas.map((a) => {
      const c = best(f, a);
      if (c === undefined) return `α=${a}: -`;
      const o = ours(a);
      const ratio = o !== undefined && f !== 'ours' && c.tps > 0 ? `  ours/this ${(o.tps / c.tps).toFixed(1)}×` : '';
      return `α=${a}: ${Math.round(c.tps)} TPS (${c.system}) p50 ${c.p50Ms.toFixed(1)} p99 ${c.p99Ms.toFixed(1)}${ratio}`;
    });
    const first = best(f, alphas[0]);
    const last = best(f, alphas[alphas.length - 1]);
    const retention = first !== undefined && last !== undefined && first.tps > 0 ? (last.tps / first.tps).toFixed(2) : '-';
    console.log(`  ${pad(f, 18)} ${parts.join(' | ')} | retention ${retention}`);
  }
  for (const f of failures) console.log(`  FAILED ${f.system}: ${f.error.split('\n')[0]}`);
}

function renderCharts(stamp: string): string[] {
  const families = [...new Set(cells.map((c) => c.family))];
  const files = writeChart(path.join(resultsDir, `${stamp}-tps`),
    tpsBarsSvg('Keynote transfer: TPS per system (best configuration)', families, alphas, (f, a) => best(f, a)?.tps));
  for (const alpha of alphas) {
    const shown = families.map((f) => best(f, alpha)).filter((c): c is CellResult => c !== undefined);
    files.push(...writeChart(path.join(resultsDir, `${stamp}-p99-alpha${alpha}`), linesSvg(`p99 latency over time, α = ${alpha}`,
      'p99 ms', shown.map((c) => ({ name: c.system, points: c.series.map((p) => [p.tSec, p.p99Ms] as [number, number]) })))));
    files.push(...writeChart(path.join(resultsDir, `${stamp}-tps-alpha${alpha}`), linesSvg(`TPS per second, α = ${alpha}`,
      'transfers / s', shown.map((c) => ({ name: c.system, points: c.series.map((p) => [p.tSec, p.tps] as [number, number]) })))));
  }
  return files;
}

async function main(): Promise<void> {
  const pinning = flags['no-pin'] ? undefined : defaultPinning();
  const machine = machineFacts(pinning); // before pinning: availableParallelism follows this process's affinity
  if (pinning !== undefined) pinSelf(pinning.clientCpus);
  console.log(`keynote bench: ${machine.nproc} cores (${machine.cpuModel}), ${base.durationSeconds}s + ${base.warmupSeconds}s ` +
    `warm-up per cell, ${accounts} accounts, α ∈ {${alphas.join(', ')}}, clients ${base.clients} × ${baselineInFlight} ` +
    `(ours × ${oursInFlight})` + (pinning ? `, SUT on CPU ${pinning.serverCpus}, load generator on CPU ${pinning.clientCpus}` : ', unpinned'));
  const serverCpus = pinning?.serverCpus;
  if (systems.has('ours')) await runSystem('ours', () => startOursSystem(serverCpus), oursInFlight);
  if (systems.has('pg')) await runPostgres(serverCpus);
  if (systems.has('sqlite')) await runSystem('sqlite', () => startSqlite(serverCpus), baselineInFlight);
  if (systems.has('sqlite-normal')) {
    notes.push('sqlite-normal is the relaxed-durability variant (synchronous=NORMAL): not comparable to the headline rows');
    await runSystem('sqlite-normal', () => startSqlite(serverCpus, 'NORMAL'), baselineInFlight);
  }
  printTables();
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const jsonPath = path.join(resultsDir, `${stamp}.json`);
  writeFileSync(jsonPath, JSON.stringify({
    date: new Date().toISOString(), machine, notes,
    options: { ...base, initialBalance: base.initialBalance.toString(), alphas, baselineInFlight, oursInFlight, pairCount },
    cells, failures,
  }, null, 2) + '\n');
  const charts = renderCharts(stamp);
  console.log(`\nresults: ${path.relative(process.cwd(), jsonPath)}`);
  console.log(`charts: ${charts.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
  if (!charts.some((f) => f.endsWith('.png'))) console.log('(no SVG→PNG converter installed: apt-get install librsvg2-bin for PNGs)');
  process.exitCode = failures.length > 0 ? 1 : 0;
}

await main();
