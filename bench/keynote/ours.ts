// System A: our server (`spacetime start`) with a workload's module published (keynote: the keynote fixture;
// general: bench/engine-v2/modules/general), driven over the SDK's WebSocket wire protocol (v2.bsatn, binary frames,
// compression=None) with hand-encoded CallReducer messages — the same bytes the official SDK sends, without its
// client cache, so the client stays lean. Both modules take the same `transfer(from u32, to u32, amount i64)`.
// Owns: the server child process, its temp data dir, the WebSocket clients. May call: ws, node built-ins,
// src/cli/build.js (to bundle a module), ./procs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { stopChild, stopOnExit, waitForPing } from './procs.js';
import type { BalanceCheck, TransferClient, WorkloadName } from './workload.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const moduleDirs: Record<WorkloadName, string> = {
  keynote: path.join(repoRoot, 'test', 'fixtures', 'modules', 'keynote'),
  general: path.join(repoRoot, 'bench', 'engine-v2', 'modules', 'general'),
};
const serverReadyTimeoutMs = 30_000;
const connectTimeoutMs = 15_000;

const clientMsgCallReducer = 3;
const serverMsgInitialConnection = 0;
const serverMsgReducerResult = 6;
const outcomeOk = 0;
const outcomeOkEmpty = 1;
const outcomeErr = 2;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** argv (after `node`) that runs our CLI: the built dist/ when present, else the sources through tsx. */
function cliArgv(): string[] {
  if (existsSync(path.join(repoRoot, 'dist', 'cli', 'main.js'))) return [path.join(repoRoot, 'bin', 'spacetime.js')];
  return ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')];
}

async function bundleModule(workload: WorkloadName): Promise<string> {
  const build = (await import('../../src/cli/build.js')) as {
    bundleModule(dir: string, opts: object): Promise<{ bundlePath: string; code: string }>;
  };
  const { code } = await build.bundleModule(moduleDirs[workload], {});
  return code;
}

/** A started server; `publish` puts a workload's module under a database name (replacing its data when `clear`). */
export interface OursServer {
  url: string;
  pid: number;
  token: string;
  publish(dbName: string, workload: WorkloadName, clear: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** A database on our server that runs one workload. */
export interface OursDatabase {
  server: OursServer;
  dbName: string;
  workload: WorkloadName;
}

/** How `spacetime start --durability` acknowledges: `fsync` (default, on disk) or `none` (OS has it). */
export type OursDurability = 'fsync' | 'none';
/** `spacetime start --database-threads`: every database on the server's thread, or each in a worker thread. */
export type OursDatabaseThreads = 'main' | 'worker';

/**
 * Starts our server pinned by `prefix` (e.g. taskset) with the given `--durability` and `--database-threads`. The
 * returned `stop` also runs if the harness is interrupted.
 */
export async function startOursServer(
  prefix: string[], durability: OursDurability, databaseThreads: OursDatabaseThreads,
): Promise<OursServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keynote-ours-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const argv = [...prefix, process.execPath, ...cliArgv(), '--config-path', path.join(dataDir, 'cli.toml'), 'start',
    '--listen-addr', `127.0.0.1:${port}`, '--data-dir', path.join(dataDir, 'data'), '--durability', durability,
    '--database-threads', databaseThreads];
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = stopOnExit(async () => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  });
  try {
    await waitForPing(url, child, () => log, serverReadyTimeoutMs, 'our server');
    const identity = (await (await fetch(`${url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    const bundles = new Map<WorkloadName, string>();
    const publish = async (dbName: string, workload: WorkloadName, clear: boolean): Promise<void> => {
      let body = bundles.get(workload);
      if (body === undefined) bundles.set(workload, (body = await bundleModule(workload)));
      const res = await fetch(`${url}/v1/database/${dbName}?host_type=Js${clear ? '&clear=true' : ''}`, {
        method: 'PUT', headers: { authorization: `Bearer ${identity.token}` }, body,
      });
      if (!res.ok) throw new Error(`publish ${dbName} answered ${res.status}: ${await res.text()}`);
    };
    return { url, pid: child.pid!, token: identity.token, publish, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Empties the database and seeds `n` accounts. The keynote's seed reducer deletes the old accounts itself; the
 * general module's does not (and its audit table grows with every transfer), so it is republished with `clear`
 * first: a fresh database, its autoInc sequence and audit table empty.
 */
export async function seedOurs(db: OursDatabase, n: number, initialBalance: bigint): Promise<void> {
  if (db.workload === 'general') await db.server.publish(db.dbName, db.workload, true);
  const res = await fetch(`${db.server.url}/v1/database/${db.dbName}/call/seed`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${db.server.token}` },
    body: `{"n":${n},"initialBalance":${initialBalance}}`,
  });
  if (!res.ok) throw new Error(`seed answered ${res.status}: ${await res.text()}`);
}

/** Runs one query through `/sql`; rows come back with every integer as a string (i64 sums stay exact). */
async function sqlRows(db: OursDatabase, query: string): Promise<string[][]> {
  const res = await fetch(`${db.server.url}/v1/database/${db.dbName}/sql`, {
    method: 'POST', headers: { authorization: `Bearer ${db.server.token}` }, body: query,
  });
  if (!res.ok) throw new Error(`sql answered ${res.status}: ${await res.text()}`);
  // Quote every bare integer before JSON.parse could round it.
  const text = (await res.text()).replace(/([\[,])(-?\d+)(?=[,\]])/g, '$1"$2"');
  const [result] = JSON.parse(text) as [{ rows: string[][] }];
  return result.rows;
}

/** Balance totals and, for the general workload, the audit row count, via `/sql`. */
export async function checkOurs(db: OursDatabase): Promise<BalanceCheck> {
  const rows = await sqlRows(db, 'SELECT id, balance FROM accounts');
  let total = 0n;
  let min: bigint | undefined;
  for (const [, balance] of rows) {
    const b = BigInt(balance);
    total += b;
    if (min === undefined || b < min) min = b;
  }
  const auditRows = db.workload === 'general' ? Number((await sqlRows(db, 'SELECT COUNT(*) AS n FROM audit'))[0][0]) : undefined;
  return { accounts: rows.length, total, min: min ?? 0n, auditRows };
}

/** Encodes CallReducer{request_id, flags 0, "transfer", args {from u32, to u32, amount i64}} into `buf`. */
function encodeTransfer(buf: Buffer, requestId: number, from: number, to: number, amount: number): void {
  buf.writeUInt32LE(requestId, 1);
  buf.writeUInt32LE(from, transferArgsOffset);
  buf.writeUInt32LE(to, transferArgsOffset + 4);
  buf.writeBigInt64LE(BigInt(amount), transferArgsOffset + 8);
}

const reducerName = Buffer.from('transfer', 'utf8');
const transferArgsBytes = 16;
/** tag u8 | request_id u32 | flags u8 | name (u32 len + bytes) | args (u32 len + bytes) */
const transferHeaderBytes = 1 + 4 + 1 + 4 + reducerName.length + 4;
const transferArgsOffset = transferHeaderBytes;

function transferTemplate(): Buffer {
  const buf = Buffer.alloc(transferHeaderBytes + transferArgsBytes);
  buf.writeUInt8(clientMsgCallReducer, 0);
  buf.writeUInt8(0, 5);
  buf.writeUInt32LE(reducerName.length, 6);
  reducerName.copy(buf, 10);
  buf.writeUInt32LE(transferArgsBytes, 10 + reducerName.length);
  return buf;
}

/** One WebSocket connection with any number of calls in flight, matched to replies by request_id. */
export async function connectOurs(db: OursDatabase): Promise<TransferClient> {
  const wsUrl = `${db.server.url.replace('http://', 'ws://')}/v1/database/${db.dbName}/subscribe?compression=None`;
  const ws = new WebSocket(wsUrl, ['v2.bsatn.spacetimedb'], { perMessageDeflate: false });
  const pending = new Map<number, { resolve: (ok: boolean) => void; reject: (e: Error) => void }>();
  let nextRequestId = 0;
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no InitialConnection within timeout')), connectTimeoutMs);
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
      failAll(e);
    });
    ws.on('close', (code, reason) => failAll(new Error(`socket closed ${code} ${reason.toString()}`)));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      assert.ok(isBinary, 'server sent a text frame');
      if (data[0] !== 0) throw new Error(`compressed frame (tag ${data[0]}) despite compression=None`);
      const tag = data[1];
      if (tag === serverMsgInitialConnection) {
        clearTimeout(timer);
        resolve();
      } else if (tag === serverMsgReducerResult) {
        const requestId = data.readUInt32LE(2);
        const outcome = data[14];
        const p = pending.get(requestId);
        if (p === undefined) return;
        pending.delete(requestId);
        if (outcome === outcomeOk || outcome === outcomeOkEmpty) p.resolve(true);
        else if (outcome === outcomeErr) p.resolve(false);
        else p.reject(new Error(`transfer internal error: ${data.subarray(19).toString('utf8')}`));
      }
    });
  });
  return {
    transfer: (from, to, amount) => new Promise<boolean>((resolve, reject) => {
      const requestId = nextRequestId++ >>> 0;
      const buf = transferTemplate();
      encodeTransfer(buf, requestId, from, to, amount);
      pending.set(requestId, { resolve, reject });
      ws.send(buf, { binary: true });
    }),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = new Promise<void>((r) => ws.once('close', () => r()));
      ws.close(1000);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
      ws.terminate();
    },
  };
}
