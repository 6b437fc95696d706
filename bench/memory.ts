// bench/memory.ts — what rows cost in memory and GC, and what the row count does to call latency (issue 12 item 5):
// today's paged row store (datastore/rowstore.ts) against the store before it (the commit before rowstore.ts was
// added, run from a `git archive` of its src/), side by side in one run.
//
// Owns: nothing but this measurement. Each cell runs in its own child process (`--expose-gc`): it opens the real
// `Database` in process with a real module (keynote: test/fixtures/modules/keynote, `accounts { id u32 primary key +
// hash index, balance i64 }`; app: bench/engine-v2/modules/general, `accounts { id u32 pk, owner string, balance i64,
// updated timestamp }`; indexed: bench/engine-v2/modules/indexed, `message { id u64 pk autoInc, sender Identity btree
// (10 rows per sender), topic string btree (1,000 topics), handle string unique, text string, sent timestamp }`),
// loads N rows with `Datastore.loadRows` (fast; the same rows a seeding reducer would write), and reports after a full
// GC: RSS, V8 heap and ArrayBuffer bytes per row (against the empty database), forced full GC ms (median of 3), load
// CPU ms, then p50/p99 wall µs of `calls` reducer calls (callReducerNow, one at a time, after a warm-up: keynote and
// app `transfer` between random accounts, indexed `edit` of a random message) and the GC pauses seen during them.
// May call: src/host/database.ts (of this tree or of the archived one), src/sats/bsatn.ts (BsatnWriter: rows and
// arguments), test/host/bundle.ts,
// bench/engine-v2/keynote-db.ts (module bundling), node:child_process, git (archive of the "before" tree).
//
// Run: npm run bench:memory -- [--rows 100000,1000000,10000000] [--big 50000000] [--shapes keynote,app,indexed]
//      [--calls 20000] [--stores before,after]
//      (--big: extra keynote row counts for the new store only; default shapes: keynote,app)

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { BsatnWriter } from '../src/sats/bsatn.js';
import { fixtureBundle } from '../test/host/bundle.js';
import { benchModuleBundle } from './engine-v2/keynote-db.js';

type Shape = 'keynote' | 'app' | 'indexed';
type Store = 'before' | 'after';
interface Cell { store: Store; shape: Shape; rows: number }
interface CellResult extends Cell {
  rssBytesPerRow: number; heapBytesPerRow: number; arrayBufferBytesPerRow: number; fullGcMs: number; loadCpuMs: number;
  callP50Micros: number; callP99Micros: number; callCpuMicros: number;
  gcPauses: { count: number; maxMs: number; totalMs: number }; failed: number;
}

const repoRoot = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const beforeRoot = '/tmp/stdb-bench-memory-before';
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };
const warmupCalls = 5000;
const loadChunkBytes = 64 * 1024;
const indexedTopics = 1000;
const indexedMessagesPerSender = 10;

/** The commit before the paged row store: its parent. */
function beforeCommit(): string {
  const added = execFileSync('git', ['log', '--diff-filter=A', '--format=%H', '-1', '--', 'src/datastore/rowstore.ts'],
    { cwd: repoRoot, encoding: 'utf8' }).trim();
  if (added === '') throw new Error('no commit adds src/datastore/rowstore.ts');
  return execFileSync('git', ['rev-parse', `${added}^`], { cwd: repoRoot, encoding: 'utf8' }).trim();
}

function prepareBefore(commit: string): string {
  const dir = `${beforeRoot}-${commit.slice(0, 12)}`;
  if (!existsSync(`${dir}/package-lock.json`)) { // the last file extracted (older runs extracted no lockfile)
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${commit} src package.json package-lock.json | tar -x -C ${dir}`],
      { cwd: repoRoot });
  }
  linkDependencies(dir);
  return dir;
}

/**
 * The before tree's node_modules: links to this tree's packages, plus the ones this tree has dropped since
 * (sorted-btree, dropped by fff3965), installed once with npm at the before tree's locked version.
 */
function linkDependencies(dir: string): void {
  const modules = `${dir}/node_modules`;
  const exists = (path: string): boolean => lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  if (lstatSync(modules, { throwIfNoEntry: false })?.isSymbolicLink()) unlinkSync(modules); // older runs linked it whole
  mkdirSync(modules, { recursive: true });
  for (const name of readdirSync(`${repoRoot}/node_modules`)) {
    if (!exists(`${modules}/${name}`)) symlinkSync(`${repoRoot}/node_modules/${name}`, `${modules}/${name}`);
  }
  const json = (file: string): unknown => JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
  const wanted = Object.keys((json('package.json') as { dependencies: Record<string, string> }).dependencies);
  const missing = wanted.filter((name) => !existsSync(`${modules}/${name}`));
  if (missing.length === 0) return;
  if (missing.some((name) => name.includes('/'))) throw new Error(`scoped packages missing: ${missing.join(', ')}`);
  const lock = json('package-lock.json') as { packages: Record<string, { version: string }> };
  execFileSync('npm', ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', `${dir}/dropped`,
    ...missing.map((name) => `${name}@${lock.packages[`node_modules/${name}`].version}`)], { stdio: 'inherit' });
  for (const name of missing) symlinkSync(`${dir}/dropped/node_modules/${name}`, `${modules}/${name}`);
}

/** A random-looking 32-byte Identity, the same for the same `seed`. */
function writeIdentity(w: BsatnWriter, seed: number): void {
  let x = (seed + 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < 8; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; w.writeU32(x >>> 0); }
}

/**
 * Per shape: the module, the loaded table, row `id` of `rows`, and the reducer timed with its arguments (`rand` gives
 * uniform row numbers). keynote and app transfer between two accounts; indexed edits a message found by its handle.
 */
const shapes: Record<Shape, {
  program(): Promise<string>; table: string; reducer: string;
  row(w: BsatnWriter, id: number, rows: number, nowMicros: bigint): void;
  args(w: BsatnWriter, rand: () => number, rows: number): void;
}> = {
  keynote: {
    program: () => fixtureBundle('keynote'), table: 'accounts', reducer: 'transfer',
    row: (w, id) => { w.writeU32(id); w.writeU64(1_000_000_000n); },
    args: transferArgs,
  },
  app: {
    program: () => benchModuleBundle('general'), table: 'accounts', reducer: 'transfer',
    row: (w, id, _rows, now) => { w.writeU32(id); w.writeString(`owner-${id}`); w.writeU64(1_000_000_000n); w.writeU64(now); },
    args: transferArgs,
  },
  indexed: {
    program: () => benchModuleBundle('indexed'), table: 'message', reducer: 'edit',
    row: (w, id, rows, now) => {
      w.writeU64(BigInt(id + 1));
      writeIdentity(w, id % Math.max(1, Math.floor(rows / indexedMessagesPerSender)));
      w.writeString(`topic-${id % indexedTopics}`);
      w.writeString(`user-${id}`);
      w.writeString(`message ${id} as first posted`);
      w.writeU64(now);
    },
    args: (w, rand) => {
      const id = rand();
      w.writeString(`user-${id}`); w.writeString(`topic-${rand() % indexedTopics}`); w.writeString(`message ${id} edited`);
    },
  },
};

function transferArgs(w: BsatnWriter, rand: () => number, rows: number): void {
  const from = rand();
  let to = rand();
  if (to === from) to = (from + 1) % rows;
  w.writeU32(from); w.writeU32(to); w.writeU64(1n);
}

/** Rows of `shape` with ids 0..n-1, as views of 64 KiB chunks (as the old store's slabs held them). */
function* rowsOf(shape: Shape, n: number): Generator<Uint8Array> {
  const w = new BsatnWriter();
  let chunk = new Uint8Array(loadChunkBytes), at = 0;
  const nowMicros = BigInt(Date.now()) * 1000n;
  for (let id = 0; id < n; id++) {
    w.reset();
    shapes[shape].row(w, id, n, nowMicros);
    const row = w.written();
    if (at + row.length > chunk.length) { chunk = new Uint8Array(loadChunkBytes); at = 0; }
    chunk.set(row, at);
    const start = at;
    at += row.length;
    yield chunk.subarray(start, at);
  }
}

function memory(): { rss: number; heap: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, arrayBuffers: m.arrayBuffers };
}

function settle(): void { for (let i = 0; i < 3; i++) globalThis.gc!(); }

const quantile = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function runCell(cell: Cell, calls: number, root: string): Promise<CellResult> {
  const { Database } = await import(pathToFileURL(`${root}/src/host/database.ts`).href) as typeof import('../src/host/database.js');
  const shape = shapes[cell.shape];
  const db = await Database.create({ identity: 1n, ownerIdentity: 2n }, await shape.program());
  const tableId = db.schema.tables.find((t) => t.name === shape.table)!.tableId;
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
  const rand = (): number => { a = (Math.imul(a, 1103515245) + 12345) >>> 0; return a % cell.rows; };
  const w = new BsatnWriter();
  const args = Array.from({ length: 1 << 14 }, () => { w.reset(); shape.args(w, rand, cell.rows); return w.finish(); });
  let failed = 0;
  let firstError = '';
  const call = (i: number): void => {
    const r = db.callReducerNow(shape.reducer, args[i & (args.length - 1)], caller);
    if (r === undefined || r.result.status !== 'committed') { failed++; firstError ||= JSON.stringify(r?.result); }
  };
  for (let i = 0; i < warmupCalls; i++) call(i);
  const pauses: number[] = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) pauses.push(e.duration); });
  observer.observe({ entryTypes: ['gc'] });
  const latencies = new Float64Array(calls);
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    call(warmupCalls + i);
    latencies[i] = (performance.now() - t) * 1000;
  }
  const cpu = process.cpuUsage(cpuStart);
  await new Promise((r) => setTimeout(r, 50)); // let the observer deliver
  observer.disconnect();
  latencies.sort();
  await db.close();
  if (failed > 0) console.error(`${failed} calls failed, the first: ${firstError}`);
  return {
    ...cell,
    rssBytesPerRow: (loaded.rss - empty.rss) / cell.rows,
    heapBytesPerRow: (loaded.heap - empty.heap) / cell.rows,
    arrayBufferBytesPerRow: (loaded.arrayBuffers - empty.arrayBuffers) / cell.rows,
    fullGcMs: gcMs[1], loadCpuMs: (load.user + load.system) / 1000,
    callP50Micros: quantile(latencies, 0.5), callP99Micros: quantile(latencies, 0.99),
    callCpuMicros: (cpu.user + cpu.system) / calls,
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
    const [store, shape, rows, calls, root] = process.argv.slice(3);
    const result = await runCell({ store: store as Store, shape: shape as Shape, rows: Number(rows) }, Number(calls), root);
    console.log(JSON.stringify(result));
    return;
  }
  const rowCounts = option('rows', '100000,1000000,10000000').split(',').map(Number);
  const big = option('big', '50000000').split(',').filter((s) => s !== '').map(Number);
  const shapes = option('shapes', 'keynote,app').split(',') as Shape[];
  const stores = option('stores', 'before,after').split(',') as Store[];
  const calls = Number(option('calls', '20000'));
  const before = beforeCommit();
  const beforeDir = stores.includes('before') ? prepareBefore(before) : '';
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  console.log(`bench:memory — after: HEAD ${head} (working tree), before: ${before.slice(0, 12)}; ${calls} calls per cell`);
  const cells: Cell[] = [];
  for (const shape of shapes) {
    for (const rows of rowCounts) for (const store of stores) cells.push({ store, shape, rows });
    if (shape === 'keynote') for (const rows of big) cells.push({ store: 'after', shape, rows });
  }
  console.log('| store | shape | rows | RSS B/row | V8 heap B/row | ArrayBuffer B/row | full GC ms | load CPU ms | ' +
    'call p50 µs | p99 µs | CPU-µs/call | GC pauses during calls (count / max ms / total ms) |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const cell of cells) {
    const root = cell.store === 'before' ? beforeDir : repoRoot;
    const child = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=20000', '--import', 'tsx',
      new URL(import.meta.url).pathname, '--cell', cell.store, cell.shape, String(cell.rows), String(calls), root],
    { cwd: repoRoot, encoding: 'utf8', maxBuffer: 1 << 24 });
    process.stderr.write(child.stderr);
    const line = child.stdout.trim().split('\n').pop() ?? '';
    if (child.status !== 0 || !line.startsWith('{')) {
      console.log(`| ${cell.store} | ${cell.shape} | ${cell.rows.toLocaleString('en-US')} | failed: ${(child.stderr || child.stdout).trim().split('\n').slice(-3).join(' / ')} |`);
      continue;
    }
    const r = JSON.parse(line) as CellResult;
    console.log(`| ${r.store} | ${r.shape} | ${r.rows.toLocaleString('en-US')} | ${f1(r.rssBytesPerRow)} | ${f1(r.heapBytesPerRow)} | ` +
      `${f1(r.arrayBufferBytesPerRow)} | ${f1(r.fullGcMs)} | ${Math.round(r.loadCpuMs).toLocaleString('en-US')} | ` +
      `${f1(r.callP50Micros)} | ${f1(r.callP99Micros)} | ${f1(r.callCpuMicros)} | ` +
      `${r.gcPauses.count} / ${f1(r.gcPauses.maxMs)} / ${f1(r.gcPauses.totalMs)} |${r.failed > 0 ? ` ${r.failed} failed` : ''}`);
  }
}

await main();
