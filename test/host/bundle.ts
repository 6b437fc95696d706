// test/host/bundle.ts — bundles a fixture module with esbuild the way `spacetime build` does (entry src/index.ts,
// ESM, platform browser, `spacetime:sys*` external, inline source map), cached per process; bundles a module given as
// source text the same way; and opens a database on the deferred (cached) or the immediate call path
// (SPACETIME_IMMEDIATE_WRITES=1: every scan and write crosses), for tests that hold one against the other, with what
// they compare (a call's outcome and TxData, a commit log's bytes); and the raw-iterator helpers those tests' module
// sources share.
// Test helper for test/host/*.
import { build } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Database, type DatabaseOptions, type ReducerCallResult } from '../../src/host/database.js';

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
