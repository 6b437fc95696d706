// bench/engine-v2/official-in-isolate.ts — the whole call, measured: the REAL official-library module (keynote fixture,
// and the general workload of bench/engine-v2/modules/general) running over a datastore inside its isolate
// (isolate-sys.ts: the shims' `__stdbH` answered in the isolate, the prototype row store, per-call transactions with
// undo and TxData), queued calls entering together — one `applySync` with `{timeout}` per batch, no other crossing.
// Side by side in one run with today's Database (host datastore, syscalls cross). CPU-µs per call of this thread.
//
// The isolate is set up as host/runtime.ts does it (bootstrap, `spacetime:sys@2.x` modules, evaluation, hooks), except
// that `__stdbH` is an in-isolate function installed before the bootstrap captures it.
//
// Run: node --import tsx bench/engine-v2/official-in-isolate.ts [runs=3]
// Owns: nothing. May call: isolated-vm, esbuild, src/host/{isolate-src,program,reducers}.ts, src/sats/moduledef.ts,
// bench/engine-v2/{common,keynote-db,isolate-sys}.ts, test/host/bundle.ts.

import { build } from 'esbuild';
import ivm from 'isolated-vm';
import { bootstrapSource, callOutcome, chunkHeaderBytes, evaluatedMarkerSource, op, sysModuleSource } from '../../src/host/isolate-src.js';
import { prepareProgram } from '../../src/host/program.js';
import { ReducerCatalog } from '../../src/host/reducers.js';
import { decodeRawModuleDef } from '../../src/sats/moduledef.js';
import { fixtureBundle } from '../../test/host/bundle.js';
import { median, printTable, threadCpuNs } from './common.js';
import type { HostConfig, TableConfig } from './isolate-sys.js';
import { benchModuleBundle, openKeynote } from './keynote-db.js';

type Kind = 'keynote' | 'general';
const accounts = 100_000;
const callsPerRun = 60_000;
const batchSizes = [1, 10, 100];
const argsBytes = 16;
const batchMax = 128;

const tablesOf: Record<Kind, Omit<TableConfig, 'tableId'>[]> = {
  keynote: [{ name: 'accounts', fixedWidthBytes: 12, autoInc: false }],
  general: [{ name: 'accounts', fixedWidthBytes: 0, autoInc: false }, { name: 'audit', fixedWidthBytes: 32, autoInc: true }],
};

interface Loaded {
  runBatch(reducerId: number, count: number): number; transferId: number; seedId: number; dispose(): void;
  tableRows(name: string): number;
}

async function load(kind: Kind, requests: SharedArrayBuffer, replies: SharedArrayBuffer): Promise<Loaded> {
  const bundled = await build({
    entryPoints: [new URL('./isolate-sys.ts', import.meta.url).pathname], bundle: true, format: 'iife', globalName: 'v2host',
    platform: 'neutral', write: false, logLevel: 'silent', target: 'es2022',
  });
  const program = await prepareProgram(kind === 'keynote' ? await fixtureBundle('keynote') : await benchModuleBundle('general'));
  const isolate = new ivm.Isolate({ memoryLimit: 512 });
  const context = isolate.createContextSync();
  const exchange = new SharedArrayBuffer(1 << 16);
  const global = context.global;
  global.setSync('__stdbX', new ivm.ExternalCopy(exchange).copyInto());
  context.evalSync(bundled.outputFiles[0].text);
  const install = context.evalSync('(function (x) { globalThis.__v2 = v2host.install(x); })', { reference: true }) as ivm.Reference<(x: unknown) => void>;
  install.applySync(undefined, [new ivm.ExternalCopy(exchange).copyInto()]);
  const dispatch = context.evalSync(bootstrapSource, { reference: true, filename: 'spacetimedb_bootstrap' }) as ivm.Reference<Record<string, unknown>>;
  const describe = dispatch.getSync('describe', { reference: true }) as ivm.Reference<() => Uint8Array>;
  const loadHooks = dispatch.getSync('loadHooks', { reference: true }) as ivm.Reference<(ns: unknown) => void>;
  const mod = isolate.compileModuleSync(program.code + evaluatedMarkerSource, { filename: 'spacetimedb_module' });
  const sysModules = new Map<string, ivm.Module>();
  mod.instantiateSync(context, (specifier) => {
    const version = /^spacetime:sys@(\d+\.\d+)$/.exec(specifier)![1];
    let sys = sysModules.get(version);
    if (sys === undefined) sysModules.set(version, (sys = isolate.compileModuleSync(sysModuleSource(version), { filename: specifier })));
    return sys;
  });
  mod.evaluateSync({ timeout: 10_000 });
  loadHooks.applySync(undefined, [mod.namespace.derefInto()], { timeout: 10_000 });
  const defBytes = describe.applySync(undefined, [], { result: { copy: true } }) as Uint8Array;
  const catalog = new ReducerCatalog(decodeRawModuleDef(new Uint8Array(defBytes.buffer, defBytes.byteOffset, defBytes.byteLength)));
  const config: HostConfig = {
    tables: tablesOf[kind].map((t, i) => ({ ...t, tableId: 4096 + i })),
    op: { tableId: op.tableId, indexId: op.indexId, rowCount: op.rowCount, tableScan: op.tableScan, indexScanPoint: op.indexScanPoint,
      iterClose: op.iterClose, insert: op.insert, update: op.update, consoleLog: op.consoleLog },
    outcomeOk: [callOutcome.ok, callOutcome.okDeferred],
    chunkHeaderBytes,
  };
  const makeRunner = context.evalSync(`(function (config, dispatch, rq, rp) {
    __v2.configure(config);
    const requests = new Uint8Array(rq), replies = new Uint8Array(rp);
    return function (reducerId, count, timestamp) {
      return __v2.runBatch(dispatch, reducerId, requests, ${argsBytes}, replies, count, BigInt(timestamp));
    };
  })`, { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
  const runner = makeRunner.applySync(undefined, [new ivm.ExternalCopy(config).copyInto(), dispatch.derefInto(),
    new ivm.ExternalCopy(requests).copyInto(), new ivm.ExternalCopy(replies).copyInto()], { result: { reference: true } }) as unknown as
    ivm.Reference<(reducerId: number, count: number, timestamp: number) => number>;
  const options = { timeout: 10_000 };
  const tableRows = context.evalSync('(function (name) { return __v2.tableRows(name); })', { reference: true }) as ivm.Reference<(n: string) => number>;
  return {
    runBatch: (reducerId, count) => runner.applySync(undefined, [reducerId, count, Date.now() * 1000], options),
    tableRows: (name) => tableRows.applySync(undefined, [name]),
    transferId: catalog.get('transfer')!.id,
    seedId: catalog.get('seed')!.id,
    dispose: () => isolate.dispose(),
  };
}

/** TxData bytes of the last batch, as a sanity check that calls really wrote (keynote: 2 × old+new rows). */
let lastTxBytesPerCall = 0;

function measure(engine: Loaded, requests: DataView, replies: Uint8Array, batch: number): number {
  let a = 4242;
  const next = () => (a = (Math.imul(a, 1103515245) + 12345) >>> 0);
  const c0 = threadCpuNs();
  let txBytes = 0;
  for (let done = 0; done < callsPerRun; done += batch) {
    for (let i = 0; i < batch; i++) {
      const from = next() % accounts;
      let to = next() % accounts;
      if (to === from) to = (from + 1) % accounts;
      requests.setUint32(i * argsBytes, from, true); requests.setUint32(i * argsBytes + 4, to, true);
      requests.setBigInt64(i * argsBytes + 8, 1n, true);
    }
    txBytes = engine.runBatch(engine.transferId, batch);
    for (let i = 0; i < batch; i++) if (replies[i] !== 0) throw new Error('a transfer failed');
  }
  lastTxBytesPerCall = txBytes / batch;
  return (threadCpuNs() - c0) / callsPerRun / 1000;
}

async function today(kind: Kind, runs: number): Promise<number> {
  const db = await openKeynote({ accounts, module: kind });
  db.runTransfers(10_000);
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) samples.push(db.runTransfers(50_000).threadCpuNs / 50_000 / 1000);
  await db.db.close();
  return median(samples);
}

const runs = Number(process.argv[2] ?? 3);
const requestsSab = new SharedArrayBuffer(argsBytes * batchMax);
const repliesSab = new SharedArrayBuffer(batchMax);
const requests = new DataView(requestsSab);
const replies = new Uint8Array(repliesSab);
const rows: (string | number)[][] = [];
for (const kind of ['keynote', 'general'] as Kind[]) {
  const engine = await load(kind, requestsSab, repliesSab);
  requests.setUint32(0, accounts, true); requests.setBigInt64(4, 1_000_000_000n, true);
  engine.runBatch(engine.seedId, 1);
  if (replies[0] !== 0) throw new Error(`seed failed in ${kind}`);
  rows.push([kind, 'today: Database, host datastore, syscalls cross', '1', await today(kind, runs), '—']);
  let transfers = 0;
  for (const batch of batchSizes) {
    measure(engine, requests, replies, batch);                 // warm-up
    const samples: number[] = [];
    for (let r = 0; r < runs; r++) samples.push(measure(engine, requests, replies, batch));
    transfers += (runs + 1) * callsPerRun;
    rows.push([kind, 'official library + datastore inside the isolate', String(batch), median(samples), lastTxBytesPerCall]);
  }
  // Every committed general transfer inserted one audit row; every account is still there.
  if (engine.tableRows('accounts') !== accounts) throw new Error('accounts lost');
  if (kind === 'general' && engine.tableRows('audit') !== transfers) throw new Error(`audit has ${engine.tableRows('audit')} rows, expected ${transfers}`);
  engine.dispose();
}
console.log(`whole transfer through the official library, CPU-µs per call (this thread), ${accounts} accounts, ` +
  `median of ${runs} runs of ${callsPerRun} calls (today: 50,000)`);
printTable(['workload', 'engine', 'calls per isolate entry', 'CPU-µs per call', 'TxData bytes per call'], rows);
console.log('checked after each workload: every account still there; general: one audit row per committed transfer');
