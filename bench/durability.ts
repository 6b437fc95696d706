// bench/durability.ts — durability end to end: commit latency and throughput of keynote transfers through a real
// Database with durable acks versus `durability: 'none'` (same run), disk bytes per transfer, recovery time per
// 1M replayed transactions, and snapshot time for 1M rows.
//
// Run: npm run bench:durability [-- --scale 0.1] [--callers 256] [--only load|recovery|snapshot[,…]]
//      (scale shrinks the 1M-sized parts; --only runs the named parts, e.g. `--only recovery,snapshot` skips the
//      3 s load phases)
// May call: src/host (Database, persistence), src/datastore, esbuild (to bundle the keynote fixture).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { Database, type Caller } from '../src/host/database.js';
import { DatabasePersistence } from '../src/host/persistence.js';
import { Datastore } from '../src/datastore/store.js';
import type { DurabilityMode } from '../src/durability/commitlog.js';
import { exitWithUsageOnHelp } from './usage.js';

exitWithUsageOnHelp(import.meta.url);

const scaleArg = process.argv.indexOf('--scale');
const scale = scaleArg >= 0 ? Number(process.argv[scaleArg + 1]) : 1;
const loadSeconds = 3;
const callersArg = process.argv.indexOf('--callers');
const concurrentCallers = callersArg >= 0 ? Number(process.argv[callersArg + 1]) : 256;
const onlyArg = process.argv.indexOf('--only');
const parts = new Set(onlyArg >= 0 ? process.argv[onlyArg + 1]!.split(',') : ['load', 'recovery', 'snapshot']);
const accountCount = 10_000;
const replayTransactions = Math.round(1_000_000 * scale);
const snapshotRows = Math.round(1_000_000 * scale);
const caller: Caller = { identity: 0x1234n, connectionId: 0n, jwtPayload: undefined };
const fixture = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../test/fixtures/modules/keynote');

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `stdb-bench-dur-${label}-`));
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

async function keynoteBundle(): Promise<string> {
  const r = await build({
    entryPoints: ['./src/index.ts'], absWorkingDir: fixture, bundle: true, format: 'esm', platform: 'browser',
    write: false, external: ['spacetime:sys*'], define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

interface LoadResult { txPerSecond: number; p50Ms: number; p99Ms: number; bytesPerTransfer: number; transfers: number }

/** Closed-loop load: `concurrentCallers` callers, each awaiting its reply (durable ack) before the next call. */
async function load(program: string, durability: DurabilityMode): Promise<LoadResult> {
  const dir = tempDir(durability);
  const db = await Database.create({ identity: 0xc200n, ownerIdentity: 0x1234n, dataDir: dir, durability, report: () => {} }, program);
  try {
    const seeded = await db.callReducerJson('seed', [accountCount, 1_000_000_000], caller);
    if (seeded.status !== 'committed') throw new Error(`seed: ${JSON.stringify(seeded)}`);
    const clogBefore = dirBytes(path.join(dir, 'clog'));
    const latencies: number[] = [];
    let seq = 0;
    const deadline = performance.now() + loadSeconds * 1000;
    const started = performance.now();
    await Promise.all(Array.from({ length: concurrentCallers }, async () => {
      const args = new Uint8Array(16);
      const view = new DataView(args.buffer);
      while (performance.now() < deadline) {
        const i = seq++;
        const from = (i * 7919) % accountCount;
        view.setUint32(0, from, true);
        view.setUint32(4, (from + 1 + (i % (accountCount - 1))) % accountCount, true);
        view.setBigInt64(8, 1n, true);
        const t0 = performance.now();
        const r = await db.callReducer('transfer', args, caller);
        latencies.push(performance.now() - t0);
        if (r.status !== 'committed') throw new Error(`transfer: ${JSON.stringify(r)}`);
      }
    }));
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const bytes = dirBytes(path.join(dir, 'clog')) - clogBefore;
    return { txPerSecond: latencies.length / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99),
      bytesPerTransfer: bytes / latencies.length, transfers: latencies.length };
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Writes `n` keynote transfers through persistence (no isolate: this measures the log, not the module). */
async function writeTransfers(dir: string, db: Database, n: number): Promise<void> {
  const { persistence } = await DatabasePersistence.open(dir, { durability: 'none' });
  const schema = db.schema;
  persistence.recordProgram({ programText: 'bench', moduleDef: db.moduleDefBytes(), ownerIdentity: 1n, databaseIdentity: 2n, timestampMicros: 0n });
  const ds = new Datastore(schema);
  const table = schema.tables.find((t) => t.name === 'accounts')!;
  const pk = table.indexes.find((i) => i.unique)!.indexId;
  const row = (id: number, balance: bigint) => {
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    v.setUint32(0, id, true);
    v.setBigInt64(4, balance, true);
    return b;
  };
  const balances = new Array<bigint>(accountCount).fill(1_000_000n);
  let tx = ds.beginMutTx();
  for (let i = 0; i < accountCount; i++) tx.insert(table.tableId, row(i, balances[i]!));
  persistence.recordTx(tx.commit(), ds);
  for (let i = 0; i < n; i++) {
    const from = (i * 7919) % accountCount;
    const to = (from + 1 + (i % (accountCount - 1))) % accountCount;
    balances[from]! -= 1n;
    balances[to]! += 1n;
    tx = ds.beginMutTx();
    tx.update(table.tableId, pk, row(from, balances[from]!));
    tx.update(table.tableId, pk, row(to, balances[to]!));
    persistence.recordTx(tx.commit(), ds);
    if (i % 65_536 === 0) await persistence.waitDurable(persistence.lastOffset);
  }
  await persistence.close();
}

async function recovery(db: Database): Promise<{ secondsPer1M: number; cpuSecondsPer1M: number; n: number }> {
  const dir = tempDir('replay');
  try {
    await writeTransfers(dir, db, replayTransactions);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const { persistence, recovered } = await DatabasePersistence.open(dir, { durability: 'none' });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (recovered === undefined || recovered.lastOffset !== BigInt(replayTransactions + 1)) throw new Error('replay incomplete');
    await persistence.close();
    return { secondsPer1M: (seconds * 1_000_000) / replayTransactions, cpuSecondsPer1M: (cpuSeconds * 1_000_000) / replayTransactions, n: replayTransactions };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function snapshot(db: Database): Promise<{ writeSeconds: number; restoreSeconds: number; bytes: number }> {
  const dir = tempDir('snap');
  try {
    const { persistence } = await DatabasePersistence.open(dir, { durability: 'fsync' });
    persistence.recordProgram({ programText: 'bench', moduleDef: db.moduleDefBytes(), ownerIdentity: 1n, databaseIdentity: 2n, timestampMicros: 0n });
    const ds = new Datastore(db.schema);
    const table = db.schema.tables.find((t) => t.name === 'accounts')!;
    const tx = ds.beginMutTx();
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    for (let i = 0; i < snapshotRows; i++) {
      v.setUint32(0, i, true);
      v.setBigInt64(4, 1000n, true);
      tx.insert(table.tableId, b.slice());
    }
    persistence.recordTx(tx.commit(), ds);
    const t0 = performance.now();
    await persistence.snapshotNow(ds);
    const writeSeconds = (performance.now() - t0) / 1000;
    await persistence.close();
    const bytes = dirBytes(path.join(dir, 'snapshots'));
    const t1 = performance.now();
    const reopened = await DatabasePersistence.open(dir, { durability: 'fsync' });
    const restoreSeconds = (performance.now() - t1) / 1000;
    await reopened.persistence.close();
    return { writeSeconds, restoreSeconds, bytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const program = await keynoteBundle();
  if (parts.has('load')) {
    console.log(`durability bench: ${concurrentCallers} concurrent callers, ${loadSeconds} s per mode, keynote transfer via Database.callReducer`);
    const none = await load(program, 'none');
    const fsync = await load(program, 'fsync');
    for (const [mode, r] of [['none', none], ['fsync', fsync]] as const) {
      console.log(`  ${mode.padEnd(5)}  ${r.txPerSecond.toFixed(0).padStart(7)} tx/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  ` +
        `${r.bytesPerTransfer.toFixed(1)} disk bytes/transfer  (${r.transfers} transfers)`);
    }
    const ratio = fsync.txPerSecond / none.txPerSecond;
    console.log(`  durable / non-durable throughput: ${(ratio * 100).toFixed(1)}% (target ≥ 80%)`);
    console.log(`  disk bytes per transfer: ${fsync.bytesPerTransfer.toFixed(1)} (target ≤ 64)`);
  }
  const scratchDir = tempDir('schema');
  const db = await Database.create({ identity: 0xc200n, ownerIdentity: 0x1234n, dataDir: scratchDir, durability: 'none', report: () => {} }, program);
  try {
    if (parts.has('recovery')) {
      const rec = await recovery(db);
      console.log(`  recovery: ${rec.secondsPer1M.toFixed(2)} s (CPU ${rec.cpuSecondsPer1M.toFixed(2)} s) per 1M transactions replayed (${rec.n} replayed; target ≤ 2 s)`);
    }
    if (parts.has('snapshot')) {
      const snap = await snapshot(db);
      console.log(`  snapshot of ${snapshotRows} rows: write ${snap.writeSeconds.toFixed(2)} s, restore ${snap.restoreSeconds.toFixed(2)} s, ${(snap.bytes / 1e6).toFixed(1)} MB`);
    }
  } finally {
    await db.close();
    fs.rmSync(scratchDir, { recursive: true, force: true });
  }
}

await main();
