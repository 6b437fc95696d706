// bench/engine-v2/keynote-db.ts — today's real engine (host/database.ts: isolate + datastore, in memory) running the
// keynote fixture (or the app-shaped `general` transfer of bench/engine-v2/modules/general), as the unit of work the
// engine-v2 prototypes move onto threads.
//
// Owns: nothing but this wrapper. May call: src/host/database.ts, test/host/bundle.ts (esbuild bundling of the
// fixture, the same options as `spacetime build`), esbuild (the same for modules under bench/engine-v2/modules),
// bench/engine-v2/common.ts.

import { build } from 'esbuild';
import { Database } from '../../src/host/database.js';
import { fixtureBundle } from '../../test/host/bundle.js';
import { threadCpuNs } from './common.js';

export const keynoteAccountsDefault = 100_000;
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };

export interface KeynoteDb {
  db: Database;
  /** BSATN arguments of one transfer between uniform random accounts (deterministic per `seed`). */
  transferArgs(i: number): Uint8Array;
  /** Runs `n` transfers synchronously (callReducerNow, the session's hot path); CPU of this thread and wall time. */
  runTransfers(n: number): { threadCpuNs: number; wallNs: number; failed: number };
  /** One transfer; throws if it did not commit. */
  transferOnce(i: number): void;
}

/** Bundles a module under bench/engine-v2/modules with test/host/bundle.ts's options (those of `spacetime build`). */
export async function benchModuleBundle(name: string): Promise<string> {
  const r = await build({
    entryPoints: ['./src/index.ts'], absWorkingDir: new URL(`./modules/${name}/`, import.meta.url).pathname, bundle: true,
    format: 'esm', platform: 'browser', write: false, external: ['spacetime:sys*'], sourcemap: 'inline',
    define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'silent', target: 'esnext',
  });
  return r.outputFiles[0].text;
}

export async function openKeynote(options: { accounts?: number; seed?: number; reducerTimeoutMs?: number; module?: 'keynote' | 'general' } = {}): Promise<KeynoteDb> {
  const accounts = options.accounts ?? keynoteAccountsDefault;
  const program = options.module === 'general' ? await benchModuleBundle('general') : await fixtureBundle('keynote');
  const db = await Database.create(
    { identity: 0x1000n + BigInt(options.seed ?? 0), ownerIdentity: 2n, limits: { reducerTimeoutMs: options.reducerTimeoutMs } }, program);
  const seeded = await db.callReducerJson('seed', [accounts, 1_000_000_000], caller);
  if (seeded.status !== 'committed') throw new Error(`seed failed: ${JSON.stringify(seeded)}`);
  // 64k precomputed argument buffers, reused round-robin: no allocation in the measured loop beyond the engine's own.
  const argsCount = 1 << 16;
  const args: Uint8Array[] = new Array(argsCount);
  let a = (options.seed ?? 0) + 0x9e3779b9 >>> 0;
  const rand = () => { a = (a * 1103515245 + 12345) >>> 0; return a % accounts; };
  for (let i = 0; i < argsCount; i++) {
    const from = rand();
    let to = rand();
    if (to === from) to = (from + 1) % accounts;
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, from, true); v.setUint32(4, to, true); v.setBigInt64(8, 1n, true);
    args[i] = b;
  }
  const transferArgs = (i: number) => args[i & (argsCount - 1)];
  const transferOnce = (i: number) => {
    const r = db.callReducerNow('transfer', transferArgs(i), caller);
    if (r === undefined || r.result.status !== 'committed') throw new Error(`transfer failed: ${JSON.stringify(r?.result)}`);
  };
  const runTransfers = (n: number) => {
    let failed = 0;
    const cpu0 = threadCpuNs();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = db.callReducerNow('transfer', transferArgs(i), caller);
      if (r === undefined || r.result.status !== 'committed') failed++;
    }
    return { threadCpuNs: threadCpuNs() - cpu0, wallNs: Number(process.hrtime.bigint() - t0), failed };
  };
  return { db, transferArgs, runTransfers, transferOnce };
}

export { caller as keynoteCaller };
