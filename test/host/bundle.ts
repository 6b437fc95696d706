// test/host/bundle.ts — bundles a fixture module with esbuild the way `spacetime build` does (entry src/index.ts,
// ESM, platform browser, `spacetime:sys*` external, inline source map), cached per process; bundles a module given as
// source text the same way; and opens a database on the deferred (cached) or the immediate call path
// (SPACETIME_IMMEDIATE_WRITES=1: every scan and write crosses), for tests that hold one against the other, with what
// they compare (a call's outcome and TxData, a commit log's bytes, bursts of calls run batched against one at a time);
// and the raw-iterator helpers those tests' module sources share.
// Test helper for test/host/*.
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller, type DatabaseOptions, type ReducerCallResult } from '../../src/host/database.js';

const repoRoot = new URL('../../', import.meta.url).pathname;

const fixturesDir = new URL('../fixtures/modules/', import.meta.url).pathname;
const cache = new Map<string, Promise<string>>();

export function fixtureBundle(name: string): Promise<string> {
  let p = cache.get(name);
  if (p === undefined) {
    p = build({
      entryPoints: ['./src/index.ts'], absWorkingDir: join(fixturesDir, name), sourcemap: 'inline',
      bundle: true, format: 'esm', platform: 'browser', write: false, external: ['spacetime:sys*'],
      define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'silent', target: 'esnext',
    }).then((r) => r.outputFiles[0].text);
    cache.set(name, p);
  }
  return p;
}

/** A module written in the test as TypeScript source (imports resolved from the repository root). */
export async function sourceBundle(source: string, sourcefile: string): Promise<string> {
  const r = await build({
    stdin: { contents: source, resolveDir: repoRoot, loader: 'ts', sourcefile },
    bundle: true, format: 'esm', platform: 'browser', write: false, external: ['spacetime:sys*'],
    define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'silent', target: 'esnext',
  });
  return r.outputFiles[0].text;
}

/** What two call paths must agree on for a call: its status and message's first line, or its timestamp and TxData. */
export function callSummary(r: ReducerCallResult): unknown {
  if (r.status !== 'committed') return { status: r.status, message: r.message.split('\n')[0] };
  return { status: r.status, ts: r.timestampMicros, tables: r.txData.tables.map((t) => ({ t: t.tableName, ins: t.inserts, del: t.deletes })) };
}

/** A reducer call of a burst: name, JSON arguments and, when not the burst's default, the caller. */
export type BurstCall = [string, unknown[], Caller?];

/**
 * Opens `program` twice on the deferred path, runs each burst one call at a time on one and all at once on the other
 * (they queue together and enter the module in batches), and asserts the same outcomes, TxData and state after each
 * burst and, at the end, byte-identical commit logs. For the last `boundedBursts`, also that the batched database
 * crossed at most twice per batch, twice per failed call (it ends with a crossing and empties the row cache) and once
 * per eight calls: what read-ahead and the row cache leave of a call's crossings. The clock moves 1 s per burst.
 */
export async function compareBursts(program: string, owner: Caller, bursts: BurstCall[][], caller: Caller,
  boundedBursts: number): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'stdb-bursts-'));
  let now = 1_700_000_000_000_000n;
  const clock = { nowMicros: () => now };
  const open = (name: string): Promise<Database> => createOnPath({ identity: 0xc600aan, ownerIdentity: owner.identity,
    dataDir: join(root, name), clock, limits: { reducerTimeoutMs: 1000 }, report: () => {} }, program, false);
  const oneByOne = await open('one-by-one');
  const batched = await open('batched');
  try {
    for (const [b, burst] of bursts.entries()) {
      now += 1_000_000n;
      const reference: unknown[] = [];
      for (const [name, args, by] of burst) reference.push(callSummary(await oneByOne.callReducerJson(name, args, by ?? caller)));
      const crossingsBefore = batched.syscallCrossings(), batchesBefore = batched.counters.callBatches;
      const results = await Promise.all(burst.map(([name, args, by]) => batched.callReducerJson(name, args, by ?? caller)));
      assert.deepEqual(results.map(callSummary), reference, `burst ${b}: outcomes and TxData`);
      assert.deepEqual(batched.datastore.exportSnapshot(), oneByOne.datastore.exportSnapshot(), `burst ${b}: state`);
      if (b < bursts.length - boundedBursts) continue;
      const crossed = batched.syscallCrossings() - crossingsBefore, batches = batched.counters.callBatches - batchesBefore;
      const failed = results.filter((r) => r.status !== 'committed').length;
      assert.ok(batches >= 1, `burst ${b} ran in batches`);
      assert.ok(crossed <= 2 * batches + 2 * failed + burst.length / 8, `burst ${b}: ${crossed} crossings in ${batches} batches, ${failed} failed`);
    }
  } finally {
    await oneByOne.close();
    await batched.close();
  }
  const reference = commitLogBytes(join(root, 'one-by-one'));
  assert.ok(reference.length > 0);
  assert.ok(commitLogBytes(join(root, 'batched')).equals(reference), 'byte-identical commit log');
  rmSync(root, { recursive: true, force: true });
}

/** The commit log of the database in `dir`, its segments in order. */
export function commitLogBytes(dir: string): Buffer {
  const clog = join(dir, 'clog');
  return Buffer.concat(readdirSync(clog).filter((f) => f.endsWith('.stdb.log')).sort().map((f) => readFileSync(join(clog, f))));
}

/** Database.create on the immediate path when `immediate` (the env var is read at creation only). */
export async function createOnPath(options: DatabaseOptions, program: string, immediate: boolean): Promise<Database> {
  if (immediate) process.env.SPACETIME_IMMEDIATE_WRITES = '1';
  try {
    return await Database.create(options, program);
  } finally {
    delete process.env.SPACETIME_IMMEDIATE_WRITES;
  }
}

/**
 * Module source (JavaScript, spliced into a test module's text) for raw `spacetime:sys` point scans of an
 * `accounts { id u32, balance i64, owner string }` table: `open(indexId, id)` starts a scan, `drain(iter)` gives every
 * row it still holds as "id:balance:owner", one advance at a time. The module imports
 * datastore_index_scan_point_bsatn and row_iter_bsatn_advance.
 */
export const accountScanSource = `
const out = new ArrayBuffer(4096);
function open(ix, id) {
  const key = new ArrayBuffer(4);
  new DataView(key).setUint32(0, id, true);
  return datastore_index_scan_point_bsatn(ix, key, 4);
}
function drain(iter) {
  const rows = [];
  for (;;) {
    const n = row_iter_bsatn_advance(iter, out);
    const len = Math.abs(n);
    const v = new DataView(out, 0, len);
    for (let p = 0; p < len;) {
      const ownerLen = v.getUint32(p + 12, true);
      rows.push(v.getUint32(p, true) + ':' + v.getBigInt64(p + 4, true) + ':' +
        new TextDecoder().decode(new Uint8Array(out, p + 16, ownerLen)));
      p += 16 + ownerLen;
    }
    if (n <= 0) return rows;
  }
}
`;
