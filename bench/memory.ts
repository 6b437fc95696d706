// bench/memory.ts — what rows cost in memory and GC, and what the row count does to call latency (issue 12 item 5):
// today's paged row store (datastore/rowstore.ts) against the store before it (the commit before rowstore.ts was
// added, run from a `git archive` of its src/), side by side in one run.
//
// Owns: nothing but this measurement. Each cell runs in its own child process (`--expose-gc`): it opens the real
// `Database` in process with a real module (keynote: test/fixtures/modules/keynote, `accounts { id u32 primary key +
// hash index, balance i64 }`; app: bench/engine-v2/modules/general, `accounts { id u32 pk, owner string, balance i64,
// updated timestamp }`), loads N rows with `Datastore.loadRows` (fast; the same rows a seeding reducer would write),
// and reports after a full GC: RSS, V8 heap and ArrayBuffer bytes per row (against the empty database), forced full
// GC ms (median of 3), load CPU ms, then p50/p99 wall µs of `transfers` keynote transfers (callReducerNow, one at a
// time, after a warm-up) and the GC pauses seen during them.
// May call: src/host/database.ts (of this tree or of the archived one), test/host/bundle.ts,
// bench/engine-v2/keynote-db.ts (module bundling), node:child_process, git (archive of the "before" tree).
//
// Run: npm run bench:memory -- [--rows 100000,1000000,10000000] [--big 50000000] [--shapes keynote,app]
//      [--transfers 20000] [--stores before,after]
//      (--big: extra row counts for the new store only)

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { fixtureBundle } from '../test/host/bundle.js';
import { benchModuleBundle } from './engine-v2/keynote-db.js';

type Shape = 'keynote' | 'app';
type Store = 'before' | 'after';
interface Cell { store: Store; shape: Shape; rows: number }
interface CellResult extends Cell {
  rssBytesPerRow: number; heapBytesPerRow: number; arrayBufferBytesPerRow: number; fullGcMs: number; loadCpuMs: number;
  transferP50Micros: number; transferP99Micros: number; transferCpuMicros: number;
  gcPauses: { count: number; maxMs: number; totalMs: number }; failed: number;
}

const repoRoot = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const beforeRoot = '/tmp/stdb-bench-memory-before';
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };
const warmupTransfers = 5000;
const loadChunkBytes = 64 * 1024;

/** The commit before the paged row store: its parent. */
function beforeCommit(): string {
  const added = execFileSync('git', ['log', '--diff-filter=A', '--format=%H', '-1', '--', 'src/datastore/rowstore.ts'],
    { cwd: repoRoot, encoding: 'utf8' }).trim();
  if (added === '') throw new Error('no commit adds src/datastore/rowstore.ts');
  return execFileSync('git', ['rev-parse', `${added}^`], { cwd: repoRoot, encoding: 'utf8' }).trim();
}

function prepareBefore(commit: string): string {
  const dir = `${beforeRoot}-${commit.slice(0, 12)}`;
  if (existsSync(`${dir}/src/host/database.ts`)) return dir;
  mkdirSync(dir, { recursive: true });
  execFileSync('sh', ['-c', `git archive ${commit} src package.json | tar -x -C ${dir}`], { cwd: repoRoot });
  symlinkSync(`${repoRoot}/node_modules`, `${dir}/node_modules`);
  return dir;
}

/** Rows of `shape` with ids 0..n-1, as views of 64 KiB chunks (as the old store's slabs held them). */
function* rowsOf(shape: Shape, n: number): Generator<Uint8Array> {
  let chunk = new Uint8Array(loadChunkBytes), view = new DataView(chunk.buffer), at = 0;
  const nowMicros = BigInt(Date.now()) * 1000n;
  for (let id = 0; id < n; id++) {
    const owner = shape === 'app' ? Buffer.from(`owner-${id}`) : undefined;
    const length = shape === 'keynote' ? 12 : 4 + 4 + owner!.length + 8 + 8;
    if (at + length > chunk.length) { chunk = new Uint8Array(loadChunkBytes); view = new DataView(chunk.buffer); at = 0; }
    const start = at;
    view.setUint32(at, id, true); at += 4;
    if (owner !== undefined) { view.setUint32(at, owner.length, true); chunk.set(owner, at + 4); at += 4 + owner.length; }
    view.setBigInt64(at, 1_000_000_000n, true); at += 8;
    if (shape === 'app') { view.setBigInt64(at, nowMicros, true); at += 8; }
    yield chunk.subarray(start, at);
  }
}

function memory(): { rss: number; heap: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

function settle(): void { for (let i = 0; i < 3; i++) globalThis.gc!(); }

const quantile = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function runCell(cell: Cell, transfers: number, root: string): Promise<CellResult> {
  const { Database } = await import(pathToFileURL(`${root}/src/host/database.ts`).href) as typeof import('../src/host/database.js');
  const program = cell.shape === 'keynote' ? await fixtureBundle('keynote') : await benchModuleBundle('general');
  const db = await Database.create({ identity: 1n, ownerIdentity: 2n }, program);
  const tableId = db.schema.tables.find((t) => t.name === 'accounts')!.tableId;
  settle();
  const empty = memory();
  const loadStart = process.cpuUsage();
  db.datastore.loadRows(tableId, rowsOf(cell.shape, cell.rows), false);
  const load = process.cpuUsage(loadStart);
  settle();
  const loaded = memory();
  const gcMs: number[] = [];
  for (let i = 0; i < 3; i++) { const t = performance.now(); globalThis.gc!(); gcMs.push(performance.now() - t); }
  gcMs.sort((a, b) => a - b);

  let a = 0x9e3779b9;
  const args = Array.from({ length: 1 << 14 }, () => {
    const rand = (): number => { a = (Math.imul(a, 1103515245) + 12345) >>> 0; return a % cell.rows; };
    const from = rand();
    let to = rand();
    if (to === from) to = (from + 1) % cell.rows;
    const b = new Uint8Array(16), v = new DataView(b.buffer);
    v.setUint32(0, from, true); v.setUint32(4, to, true); v.setBigInt64(8, 1n, true);
    return b;
  });
  let failed = 0;
  const call = (i: number): void => {
    const r = db.callReducerNow('transfer', args[i & (args.length - 1)], caller);
    if (r === undefined || r.result.status !== 'committed') failed++;
  };
  for (let i = 0; i < warmupTransfers; i++) call(i);
  const pauses: number[] = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) pauses.push(e.duration); });
  observer.observe({ entryTypes: ['gc'] });
  const latencies = new Float64Array(transfers);
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < transfers; i++) {
    const t = performance.now();
    call(warmupTransfers + i);
    latencies[i] = (performance.now() - t) * 1000;
  }
  const cpu = process.cpuUsage(cpuStart);
  await new Promise((r) => setTimeout(r, 50)); // let the observer deliver
  observer.disconnect();
  latencies.sort();
  await db.close();
  return {
    ...cell,
    rssBytesPerRow: (loaded.rss - empty.rss) / cell.rows,
    heapBytesPerRow: (loaded.heap - empty.heap) / cell.rows,
    arrayBufferBytesPerRow: (loaded.arrayBuffers - empty.arrayBuffers) / cell.rows,
    fullGcMs: gcMs[1], loadCpuMs: (load.user + load.system) / 1000,
    transferP50Micros: quantile(latencies, 0.5), transferP99Micros: quantile(latencies, 0.99),
    transferCpuMicros: (cpu.user + cpu.system) / transfers,
    gcPauses: { count: pauses.length, maxMs: Math.max(0, ...pauses), totalMs: pauses.reduce((s, x) => s + x, 0) },
    failed,
  };
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
}

const f1 = (x: number): string => x.toFixed(1);

async function main(): Promise<void> {
  if (process.argv[2] === '--cell') {
    const [store, shape, rows, transfers, root] = process.argv.slice(3);
    const result = await runCell({ store: store as Store, shape: shape as Shape, rows: Number(rows) }, Number(transfers), root);
    console.log(JSON.stringify(result));
    return;
  }
  const rowCounts = option('rows', '100000,1000000,10000000').split(',').map(Number);
  const big = option('big', '50000000').split(',').filter((s) => s !== '').map(Number);
  const shapes = option('shapes', 'keynote,app').split(',') as Shape[];
  const stores = option('stores', 'before,after').split(',') as Store[];
  const transfers = Number(option('transfers', '20000'));
  const before = beforeCommit();
  const beforeDir = stores.includes('before') ? prepareBefore(before) : '';
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  console.log(`bench:memory — after: HEAD ${head} (working tree), before: ${before.slice(0, 12)}; ${transfers} transfers per cell`);
  const cells: Cell[] = [];
  for (const shape of shapes) {
    for (const rows of rowCounts) for (const store of stores) cells.push({ store, shape, rows });
    if (shape === 'keynote') for (const rows of big) cells.push({ store: 'after', shape, rows });
  }
  console.log('| store | shape | rows | RSS B/row | V8 heap B/row | ArrayBuffer B/row | full GC ms | load CPU ms | ' +
    'transfer p50 µs | p99 µs | CPU-µs/transfer | GC pauses during transfers (count / max ms / total ms) |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const cell of cells) {
    const root = cell.store === 'before' ? beforeDir : repoRoot;
    const child = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=20000', '--import', 'tsx',
      new URL(import.meta.url).pathname, '--cell', cell.store, cell.shape, String(cell.rows), String(transfers), root],
    { cwd: repoRoot, encoding: 'utf8', maxBuffer: 1 << 24 });
    const line = child.stdout.trim().split('\n').pop() ?? '';
    if (child.status !== 0 || !line.startsWith('{')) {
      console.log(`| ${cell.store} | ${cell.shape} | ${cell.rows.toLocaleString('en-US')} | failed: ${(child.stderr || child.stdout).trim().split('\n').slice(-3).join(' / ')} |`);
      continue;
    }
    const r = JSON.parse(line) as CellResult;
    console.log(`| ${r.store} | ${r.shape} | ${r.rows.toLocaleString('en-US')} | ${f1(r.rssBytesPerRow)} | ${f1(r.heapBytesPerRow)} | ` +
      `${f1(r.arrayBufferBytesPerRow)} | ${f1(r.fullGcMs)} | ${Math.round(r.loadCpuMs).toLocaleString('en-US')} | ` +
      `${f1(r.transferP50Micros)} | ${f1(r.transferP99Micros)} | ${f1(r.transferCpuMicros)} | ` +
      `${r.gcPauses.count} / ${f1(r.gcPauses.maxMs)} / ${f1(r.gcPauses.totalMs)} |${r.failed > 0 ? ` ${r.failed} failed` : ''}`);
  }
}

await main();
