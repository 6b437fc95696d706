// bench/engine-v2/node-realm-call.ts — the reducer call path with the isolate boundary taken away, so that V8's
// `--cpu-prof` can see inside it: the same bootstrap shims (host/isolate-src.ts) and the same module bundle (the
// official library + the module's code) are evaluated in a this process's own realm (node:vm's runInThisContext and SourceTextModule), and `__stdbH` is a plain
// function into the REAL SyscallHost of a real, seeded Database (its datastore, its leases, its row-cache flags).
// Each call is what Database.runReducer + ModuleRuntime.callReducer do around the isolate (beginMutTx, writeReducerCall,
// the dispatcher's callReducer, endCall, applyHandedUpdates, checkpoint, commit) minus the commit log, the metrics and
// the announce; bench/core.ts measures the whole path.
//
// Why: isolated-vm 5.0.4's CPU profiler hangs on this workload (docs/engine-v2.md §6), so the library's share of a
// call was known only as a remainder. Node's realm runs on the same V8 (Node 20's 11.3) as the isolates.
//
// Owns: nothing but this measurement. May call: host/database.ts, host/program.ts, host/isolate-src.ts,
// host/syscalls.ts (its private dispatch, through a cast: the callback isolated-vm would call), test/host/bundle.ts,
// bench/engine-v2/{common,keynote-db}.ts.
//
// Run: node --experimental-vm-modules --import tsx bench/engine-v2/node-realm-call.ts [calls=100000] [runs=3]
//      add --cpu-prof --cpu-prof-dir=DIR and summarize with bench/server-profile/summarize.ts (files:
//      spacetimedb_bootstrap = our shims and polyfills, spacetimedb_module = the official library and module code).
//      BENCH_ONLY=keynote|general runs one workload. BENCH_ALLOC=1 instead samples the bytes each Node-realm call
//      allocates (V8's sampling heap profiler, counting objects GCs already collected), by part and by site: unlike CPU
//      time on a shared machine, this does not move with the load.

import { Session } from 'node:inspector/promises';
import vm from 'node:vm';
import { Database } from '../../src/host/database.js';
import { prepareProgram } from '../../src/host/program.js';
import { bootstrapSource, callOutcome, evaluatedMarkerSource, sysModuleSource } from '../../src/host/isolate-src.js';
import type { SyscallHost } from '../../src/host/syscalls.js';
import { fixtureBundle } from '../../test/host/bundle.js';
import { median, processCpuUs } from './common.js';
import { benchModuleBundle } from './keynote-db.js';
import { category } from './profile-split.js';

type Kind = 'keynote' | 'general';
/** Accounts (BENCH_ACCOUNTS; default 100,000, which fit the module's row cache). */
const accountsCount = Number(process.env.BENCH_ACCOUNTS ?? 100_000);
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };
const warmupCalls = 20_000;
const allocSamplingIntervalBytes = 256;
const allocTopSites = 25;

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }

/** Bytes allocated per call by `run`, by part of the call path and by allocating site (with its caller). */
async function allocationReport(kind: Kind, run: () => void, calls: number): Promise<void> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: allocSamplingIntervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
  });
  run();
  const { profile } = await session.post('HeapProfiler.stopSampling') as unknown as { profile: { head: HeapNode } };
  session.disconnect();
  const byPart = new Map<string, number>(), bySite = new Map<string, number>();
  let total = 0;
  // A builtin (no url: subarray, Map.prototype.delete, …) allocates for the part that called it.
  const walk = (n: HeapNode, parent: string, parentPart: string): void => {
    const here = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/src\//, 'src/')}:${n.callFrame.lineNumber + 1}`;
    const part = n.callFrame.url === '' ? parentPart : category(n.callFrame);
    if (n.selfSize > 0) {
      total += n.selfSize;
      byPart.set(part, (byPart.get(part) ?? 0) + n.selfSize);
      bySite.set(`${here}  <- ${parent}`, (bySite.get(`${here}  <- ${parent}`) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here, part);
  };
  walk(profile.head, '', 'driver: bench loop, promises, other');
  const perCall = (bytes: number): string => `${(bytes / calls).toFixed(0).padStart(6)} B`;
  console.log(`${kind}: ${perCall(total)} allocated per call in the Node realm (sampled every ${allocSamplingIntervalBytes} B, ${calls} calls)`);
  for (const [part, bytes] of [...byPart].sort((a, b) => b[1] - a[1])) console.log(`  ${perCall(bytes)}  ${part}`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, allocTopSites)) console.log(`    ${perCall(bytes)}  ${site}`);
}

interface Dispatcher { callReducer(newX?: SharedArrayBuffer): number; loadHooks(ns: unknown): void }
/** The SyscallHost members isolated-vm reaches through its callback and transfers; private in TypeScript. */
interface HostInside { dispatch(...x: unknown[]): unknown; grow(n: number): void; leaseSab: SharedArrayBuffer }

function transferArgs(n: number): Uint8Array[] {
  let a = 0x9e3779b9;
  const rand = (): number => { a = (a * 1103515245 + 12345) >>> 0; return a % accountsCount; };
  return Array.from({ length: n }, () => {
    const from = rand();
    let to = rand();
    if (to === from) to = (from + 1) % accountsCount;
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, from, true); v.setUint32(4, to, true); v.setBigInt64(8, 1n, true);
    return b;
  });
}

async function load(kind: Kind): Promise<{ run(args: Uint8Array[]): number; runIsolated(args: Uint8Array[]): number; db: Database }> {
  const bundle = kind === 'keynote' ? await fixtureBundle('keynote') : await benchModuleBundle('general');
  const db = await Database.create({ identity: kind === 'keynote' ? 1n : 5n, ownerIdentity: 2n, limits: {} }, bundle);
  const seeded = await db.callReducerJson('seed', [accountsCount, 1_000_000_000], caller);
  if (seeded.status !== 'committed') throw new Error(`${kind} seed failed`);
  const host = (db as unknown as { host: SyscallHost }).host;
  const inside = host as unknown as HostInside;
  // This realm, not a vm.createContext one: a contextified global answers every global lookup through interceptors
  // (measured: 2-3x slower calls), which would bury the profile. The shims' globals land on Node's globalThis; the
  // throwing Math.random and Node's console (the library replaces it) are put back after evaluation.
  const G = globalThis as unknown as Record<string, unknown>;
  G.__stdbH = (opc: number, a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown): unknown => {
    if (opc === 0) { inside.grow(a as number); return host.sab; }
    return inside.dispatch(opc, a, b, c, d, e, f);
  };
  G.__stdbX = host.sab;
  G.__stdbL = inside.leaseSab;
  const random = Math.random, nodeConsole = console;
  const dispatcher = vm.runInThisContext(bootstrapSource, { filename: 'spacetimedb_bootstrap' }) as Dispatcher;
  const program = await prepareProgram(bundle);
  // vm.SourceTextModule needs --experimental-vm-modules; typed loosely so the file compiles without it.
  const SourceTextModule = (vm as unknown as { SourceTextModule: new (code: string, o: object) => VmModule }).SourceTextModule;
  interface VmModule { link(f: (s: string) => VmModule): Promise<void>; evaluate(): Promise<void>; namespace: unknown }
  const mod = new SourceTextModule(program.code + evaluatedMarkerSource, { identifier: 'spacetimedb_module' });
  await mod.link((specifier) => {
    const version = /^spacetime:sys@(\d+\.\d+)$/.exec(specifier)![1];
    return new SourceTextModule(sysModuleSource(version), { identifier: specifier });
  });
  await mod.evaluate();
  dispatcher.loadHooks(mod.namespace);
  Object.defineProperty(Math, 'random', { value: random, configurable: true, writable: true, enumerable: false });
  G.console = nodeConsole;                      // the library installs its own, which logs through the syscalls
  host.resetCallCache();
  host.pendingNewExchange = false;
  const reducerId = db.reducerByName('transfer')!.id;
  const datastore = db.datastore;
  let timestamp = 1_700_000_000_000_000n;
  function runCalls(args: Uint8Array[]): number {
    let failed = 0;
    for (const arg of args) {
      const tx = datastore.beginMutTx();
      host.tx = tx;
      host.writeReducerCall(reducerId, caller.identity, caller.connectionId, timestamp++, arg);
      const newX = host.pendingNewExchange ? host.sab : undefined;
      host.pendingNewExchange = false;
      const code = dispatcher.callReducer(newX);
      host.endCall();
      const ok = code === callOutcome.ok || (code === callOutcome.okDeferred && host.applyHandedUpdates() === undefined);
      host.tx = undefined;
      if (ok) { tx.checkpoint?.(); tx.commit(); } else {
        if (failed++ === 0) console.error(`first failed call: outcome ${code}: ${code === callOutcome.okDeferred ? host.deferredFailure : host.readReport()}`);
        tx.rollback();
      }
    }
    return failed;
  }
  // The same calls through the real isolate and Database (callReducerNow: the synchronous path, no promise per call).
  // The two shims share this SyscallHost, so each side starts with the row cache and leases forgotten.
  function runIsolated(args: Uint8Array[]): number {
    host.resetCallCache();
    let failed = 0;
    for (const arg of args) if (db.callReducerNow('transfer', arg, caller)?.result.status !== 'committed') failed++;
    host.resetCallCache();
    return failed;
  }
  return { run: runCalls, runIsolated, db };
}

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 100_000);
  const runs = Number(process.argv[3] ?? 3);
  const only = process.env.BENCH_ONLY;
  const kinds: Kind[] = only === 'keynote' || only === 'general' ? [only] : ['keynote', 'general'];
  const args = transferArgs(warmupCalls + calls * runs);
  const loaded = new Map<Kind, Awaited<ReturnType<typeof load>>>();
  for (const kind of kinds) {
    const l = await load(kind);
    const warmup = args.slice(0, warmupCalls);
    if (l.run(warmup) + l.runIsolated(warmup) > 0) throw new Error(`${kind} warm-up calls failed`);
    loaded.set(kind, l);
  }
  if (process.env.BENCH_ALLOC === '1') {
    for (const kind of kinds) {
      const slice = args.slice(warmupCalls, warmupCalls + calls);
      await allocationReport(kind, () => loaded.get(kind)!.run(slice), calls);
    }
    for (const l of loaded.values()) await l.db.close();
    return;
  }
  const results = new Map<Kind, number[]>(kinds.map((k) => [k, []]));
  const isolated = new Map<Kind, number[]>(kinds.map((k) => [k, []]));
  for (let r = 0; r < runs; r++) {
    for (const kind of kinds) {
      const slice = args.slice(warmupCalls + r * calls, warmupCalls + (r + 1) * calls);
      const l = loaded.get(kind)!;
      let cpu0 = processCpuUs();
      const failed = l.run(slice);
      const us = (processCpuUs() - cpu0) / calls;
      cpu0 = processCpuUs();
      const failedIsolated = l.runIsolated(slice);
      const usIsolated = (processCpuUs() - cpu0) / calls;
      results.get(kind)!.push(us);
      isolated.get(kind)!.push(usIsolated);
      console.log(`  run ${r + 1} ${kind.padEnd(7)}: ${us.toFixed(2)} CPU-µs/call in the Node realm, ` +
        `${usIsolated.toFixed(2)} through the isolate (callReducerNow); failed ${failed} / ${failedIsolated}`);
    }
  }
  for (const kind of kinds) {
    console.log(`median ${kind.padEnd(7)}: ${median(results.get(kind)!).toFixed(2)} CPU-µs/call in the Node realm, ` +
      `${median(isolated.get(kind)!).toFixed(2)} through the isolate`);
  }
  for (const l of loaded.values()) await l.db.close();
}

await main();
