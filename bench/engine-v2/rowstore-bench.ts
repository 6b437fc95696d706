// bench/engine-v2/rowstore-bench.ts — rows off the JS heap (rowstore.ts) against today's datastore (src/datastore):
// memory per row, insert / point-lookup / keynote-transfer cost, and GC behaviour, at 1M and 10M rows.
// Each (store, rows) cell runs in its own child process (`--expose-gc`, so RSS starts clean and readings follow a
// full GC):
//   slab-fixed  the keynote account (u32 id + i64 balance, 12 bytes) in FixedRowStore + U32UniqueIndex
//   slab-var    an app-shaped account (u32 id, string owner "owner-<id>", i64 balance, timestamp updated; 36–40
//               bytes of BSATN) in VarRowStore + U32UniqueIndex
//   today       the keynote account in src/datastore (Datastore + its primary-key index), as bench/datastore.ts
// Per cell: RSS / V8 heap / ArrayBuffer bytes per row after a full GC (minus the empty store's); CPU time of this
// thread (other load on the machine distorts it less than wall time) of an insert, a point lookup and a keynote transfer (2 lookups + 2 updates + commit, the transaction's undo and TxData included),
// the duration of a forced full GC, and the GC pauses V8 reports during 1.5 s of transfers that also allocate the
// garbage a server makes per call (a 64-byte reply buffer and a small result object).
//
// Run: node --import tsx bench/engine-v2/rowstore-bench.ts [--rows 1000000,10000000] [--stores slab-fixed,slab-var,today]
// (today at 10M needs ~3 GB of heap and a few minutes; it is left out by default, pass --stores to include it.)
// Owns: its child processes. May call: bench/engine-v2/rowstore.ts, src/datastore (today's store), src/sats/codec.

import { spawnSync } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { fmt, median, printTable, threadCpuNs } from './common.js';
import { copyBytes, FixedRowStore, RowTx, U32UniqueIndex, VarRowStore } from './rowstore.js';

type StoreKind = 'slab-fixed' | 'slab-var' | 'today';
interface Cell {
  store: StoreKind; rows: number; rssPerRow: number; heapPerRow: number; arrayBufferPerRow: number; insertNs: number;
  lookupNs: number; transferUs: number; fullGcMs: number; gcPauses: number; gcPauseMsMax: number; gcPauseMsTotal: number;
  workloadTransfers: number;
}

const lookupsMeasured = 1_000_000;
const transfersMeasured = 500_000;
const gcWorkloadMs = 1_500;

/** The operations every store kind offers the measurements. */
interface Subject {
  insert(id: number): void;
  lookup(id: number): void;
  transfer(from: number, to: number): void;
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => { a = (Math.imul(a, 1103515245) + 12345) >>> 0; return a; };
}

function gcNow(): void {
  (globalThis as { gc?: () => void }).gc!();
}

// A shared 64-byte "exchange buffer": keys in, rows out, as the isolate shim uses one.
const exchange = new Uint8Array(256);
const xv = new DataView(exchange.buffer);

function slabFixed(): Subject {
  const store = new FixedRowStore(12);
  const pk = new U32UniqueIndex(store, 0);
  const tx = new RowTx(store, pk, 0);
  return {
    insert(id) {
      xv.setUint32(0, id, true); xv.setBigInt64(4, 1_000_000n, true);
      if (!tx.insert(exchange, 0)) throw new Error('duplicate');
      tx.commit();
    },
    lookup(id) {
      const row = pk.find(id);
      if (row >= 0) store.read(row, exchange, 16);
    },
    transfer(from, to) {
      const a = pk.find(from); store.read(a, exchange, 0);
      const b = pk.find(to); store.read(b, exchange, 16);
      xv.setBigInt64(4, xv.getBigInt64(4, true) - 1n, true);
      xv.setBigInt64(20, xv.getBigInt64(20, true) + 1n, true);
      tx.update(exchange, 0);
      tx.update(exchange, 16);
      tx.commit();
    },
  };
}

function slabVar(): Subject {
  const store = new VarRowStore();
  const pk = new U32UniqueIndex(store, 0);
  const encoder = new TextEncoder();
  // id u32 | owner: u32 length + UTF-8 | balance i64 | updated i64 (timestamp µs)
  const encode = (id: number, balance: bigint, at: number): number => {
    xv.setUint32(at, id, true);
    const n = encoder.encodeInto(`owner-${id}`, exchange.subarray(at + 8)).written;
    xv.setUint32(at + 4, n, true);
    xv.setBigInt64(at + 8 + n, balance, true);
    xv.setBigInt64(at + 16 + n, 1_700_000_000_000_000n, true);
    return 24 + n;
  };
  const undo = new Uint8Array(256);
  const txData = new Uint8Array(512);
  return {
    insert(id) {
      const length = encode(id, 1_000_000n, 0);
      const row = store.insert(exchange, 0, length);
      if (!pk.insert(row)) throw new Error('duplicate');
    },
    lookup(id) {
      const row = pk.find(id);
      if (row >= 0) store.read(row, exchange, 0);
    },
    transfer(from, to) {
      // The same work as the fixed store's RowTx, written out: old bytes to an undo buffer, new bytes in place.
      const a = pk.find(from); const la = store.read(a, exchange, 0);
      const b = pk.find(to); const lb = store.read(b, exchange, 64);
      copyBytes(undo, 0, exchange, 0, la); copyBytes(undo, 64, exchange, 64, lb);
      const oa = la - 16, ob = 64 + lb - 16;
      xv.setBigInt64(oa, xv.getBigInt64(oa, true) - 1n, true); xv.setBigInt64(oa + 8, 1_700_000_000_000_001n, true);
      xv.setBigInt64(ob, xv.getBigInt64(ob, true) + 1n, true); xv.setBigInt64(ob + 8, 1_700_000_000_000_001n, true);
      store.replace(a, exchange, 0, la);
      store.replace(b, exchange, 64, lb);
      copyBytes(txData, 0, undo, 0, la); copyBytes(txData, 64, exchange, 0, la);
      copyBytes(txData, 128, undo, 64, lb); copyBytes(txData, 192, exchange, 64, lb);
    },
  };
}

async function today(): Promise<Subject> {
  const { Datastore } = await import('../../src/datastore/store.js');
  const { buildDatabaseSchema } = await import('../../src/datastore/schema.js');
  const schema = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [{ tag: 'Product', value: { elements: [
      { name: 'id', algebraicType: { tag: 'U32' } }, { name: 'balance', algebraicType: { tag: 'I64' } }] } }] } },
    { tag: 'Tables', value: [{
      sourceName: 'accounts', productTypeRef: 0, primaryKey: [0],
      indexes: [{ sourceName: undefined, accessorName: 'id', algorithm: { tag: 'BTree', value: [0] } }],
      constraints: [{ sourceName: undefined, data: { tag: 'Unique', value: { columns: [0] } } }],
      sequences: [], tableType: { tag: 'User' }, tableAccess: { tag: 'Public' }, defaultValues: [], isEvent: false,
    }] },
  ] } as never);
  const t = schema.tables[0];
  const pk = t.indexes[0].indexId;
  const ds = new Datastore(schema);
  const key = exchange.subarray(0, 4);
  const row = exchange.subarray(0, 12);
  // One open transaction serves bulk inserts (committed every 10k rows) and lookups; a transfer commits it first.
  let open: ReturnType<typeof ds.beginMutTx> | undefined;
  let pendingInserts = 0;
  const current = () => (open ??= ds.beginMutTx());
  return {
    insert(id) {
      xv.setUint32(0, id, true); xv.setBigInt64(4, 1_000_000n, true);
      current().insert(t.tableId, row.slice());
      if (++pendingInserts === 10_000) { open!.commit(); open = undefined; pendingInserts = 0; }
    },
    lookup(id) {
      xv.setUint32(0, id, true);
      const found = current().scanIndexPoint(pk, key);
      if (found.length > 0) exchange.set(found[0], 16);
    },
    transfer(from, to) {
      if (open !== undefined) { open.commit(); open = undefined; pendingInserts = 0; }
      const tx = ds.beginMutTx();
      xv.setUint32(0, from, true); exchange.set(tx.scanIndexPoint(pk, key)[0], 0);
      const balA = xv.getBigInt64(4, true);
      xv.setUint32(0, to, true); exchange.set(tx.scanIndexPoint(pk, key)[0], 0);
      const balB = xv.getBigInt64(4, true);
      xv.setUint32(0, from, true); xv.setBigInt64(4, balA - 1n, true); tx.update(t.tableId, pk, row);
      xv.setUint32(0, to, true); xv.setBigInt64(4, balB + 1n, true); tx.update(t.tableId, pk, row);
      tx.commit();
    },
  };
}

async function childMain(kind: StoreKind, rows: number): Promise<Cell> {
  gcNow();
  const subject = kind === 'slab-fixed' ? slabFixed() : kind === 'slab-var' ? slabVar() : await today();
  // Warm the JIT on a few rows beyond the measured key range, then measure the baseline.
  gcNow(); gcNow();
  const before = process.memoryUsage();
  const t0 = threadCpuNs();
  for (let id = 0; id < rows; id++) subject.insert(id);
  const insertNs = (threadCpuNs() - t0) / rows;
  subject.transfer(0, 1);                             // today's: commits the last bulk transaction
  gcNow(); gcNow();
  const after = process.memoryUsage();
  const fullGcMs: number[] = [];
  for (let i = 0; i < 3; i++) { const g0 = performance.now(); gcNow(); fullGcMs.push(performance.now() - g0); }

  const next = rng(7);
  const l0 = threadCpuNs();
  for (let i = 0; i < lookupsMeasured; i++) subject.lookup(next() % rows);
  const lookupNs = (threadCpuNs() - l0) / lookupsMeasured;
  const x0 = threadCpuNs();
  for (let i = 0; i < transfersMeasured; i++) subject.transfer(next() % rows, next() % rows);
  const transferUs = (threadCpuNs() - x0) / transfersMeasured / 1000;

  // GC pauses under a server-like load: transfers plus the garbage each call makes around the store.
  const pauses: number[] = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) pauses.push(e.duration); });
  observer.observe({ entryTypes: ['gc'] });
  const until = performance.now() + gcWorkloadMs;
  let workloadTransfers = 0;
  let sink: unknown;
  while (performance.now() < until) {
    for (let i = 0; i < 1000; i++) {
      subject.transfer(next() % rows, next() % rows);
      sink = { reply: new Uint8Array(64), status: 'committed', n: i };
    }
    workloadTransfers += 1000;
  }
  await new Promise((r) => setTimeout(r, 50));       // let the observer deliver the last entries
  observer.disconnect();
  void sink;
  return {
    store: kind, rows,
    rssPerRow: (after.rss - before.rss) / rows,
    heapPerRow: (after.heapUsed - before.heapUsed) / rows,
    arrayBufferPerRow: (after.arrayBuffers - before.arrayBuffers) / rows,
    insertNs, lookupNs, transferUs, fullGcMs: median(fullGcMs),
    gcPauses: pauses.length, gcPauseMsMax: Math.max(0, ...pauses), gcPauseMsTotal: pauses.reduce((s, p) => s + p, 0),
    workloadTransfers,
  };
}

function runCell(kind: StoreKind, rows: number): Cell {
  const heapMib = kind === 'today' ? Math.max(4096, Math.ceil((rows * 400) / 2 ** 20)) : 2048;
  const r = spawnSync(process.execPath, ['--expose-gc', `--max-old-space-size=${heapMib}`, '--import', 'tsx',
    new URL(import.meta.url).pathname, '--child', kind, String(rows)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`child ${kind} ${rows} failed (${r.status} ${r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Cell;
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
}

if (process.argv[2] === '--child') {
  console.log(JSON.stringify(await childMain(process.argv[3] as StoreKind, Number(process.argv[4]))));
} else {
  const rowsList = option('--rows', '1000000,10000000').split(',').map(Number);
  const stores = option('--stores', 'slab-fixed,slab-var,today').split(',') as StoreKind[];
  const cells: Cell[] = [];
  for (const rows of rowsList) {
    for (const store of stores) {
      if (store === 'today' && rows > 3_000_000 && !process.argv.includes('--stores')) continue;
      const t0 = Date.now();
      cells.push(runCell(store, rows));
      process.stderr.write(`${store} ${rows}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    }
  }
  console.log(`row stores: one child process per cell; RSS/heap/ArrayBuffer bytes per row after a full GC; ` +
    `${lookupsMeasured} lookups, ${transfersMeasured} transfers; GC pauses during ${gcWorkloadMs} ms of transfers + garbage`);
  printTable(['store', 'rows', 'RSS B/row', 'heap B/row', 'ArrayBuffer B/row', 'insert ns/row', 'lookup ns', 'transfer µs',
    'full GC ms', 'GC pauses', 'pause max ms', 'pause total ms', 'transfers in workload'],
  cells.map((c) => [c.store, c.rows.toLocaleString('en-US'), c.rssPerRow, c.heapPerRow, c.arrayBufferPerRow, c.insertNs, c.lookupNs,
    c.transferUs, c.fullGcMs, String(c.gcPauses), c.gcPauseMsMax, c.gcPauseMsTotal, fmt(c.workloadTransfers)]));
}
