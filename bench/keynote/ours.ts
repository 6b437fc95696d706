// System A: our server (`spacetime start`) with the keynote module published, driven over the SDK's WebSocket wire
// protocol (v2.bsatn, binary frames, compression=None) with hand-encoded CallReducer messages — the same bytes the
// official SDK sends, without its client cache, so the client stays lean.
// Owns: the server child process, its temp data dir, the WebSocket clients. May call: ws, node built-ins,
// src/cli/build.js (to bundle the fixture module), ./procs.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { stopChild, stopOnExit, waitForPing } from './procs.js';
import type { BalanceCheck, TransferClient } from './workload.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const keynoteModuleDir = path.join(repoRoot, 'test', 'fixtures', 'modules', 'keynote');
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

async function bundleKeynote(): Promise<Uint8Array> {
  const build = (await import('../../src/cli/build.js')) as {
    bundleModule(dir: string, opts: object): Promise<{ bundlePath: string; code: string }>;
  };
  const { code } = await build.bundleModule(keynoteModuleDir, {});
  return Buffer.from(code, 'utf8');
}

export interface OursServer {
  url: string;
  dbName: string;
  pid: number;
  token: string;
  stop(): Promise<void>;
}

/** How `spacetime start --durability` acknowledges: `fsync` (default, on disk) or `none` (OS has it). */
export type OursDurability = 'fsync' | 'none';

/**
 * Starts our server pinned by `prefix` (e.g. taskset) with the given `--durability`, publishes the keynote module
 * as `keynote`. The returned `stop` also runs if the harness is interrupted.
 */
export async function startOurs(prefix: string[], durability: OursDurability = 'fsync'): Promise<OursServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'keynote-ours-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const argv = [...prefix, process.execPath, ...cliArgv(), '--config-path', path.join(dataDir, 'cli.toml'), 'start',
    '--listen-addr', `127.0.0.1:${port}`, '--data-dir', path.join(dataDir, 'data'), '--durability', durability];
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
    const res = await fetch(`${url}/v1/database/keynote?host_type=Js`, {
      method: 'PUT', headers: { authorization: `Bearer ${identity.token}` }, body: await bundleKeynote(),
    });
    if (!res.ok) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
    return { url, dbName: 'keynote', pid: child.pid!, token: identity.token, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function seedOurs(server: OursServer, n: number, initialBalance: bigint): Promise<void> {
  const res = await fetch(`${server.url}/v1/database/${server.dbName}/call/seed`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: `{"n":${n},"initialBalance":${initialBalance}}`,
  });
  if (!res.ok) throw new Error(`seed answered ${res.status}: ${await res.text()}`);
}

/** Balance totals via `/sql`, or via a WebSocket subscription while this build's host has no SQL. */
export async function checkOurs(server: OursServer): Promise<BalanceCheck> {
  try {
    return await checkOursSql(server);
  } catch (err) {
    if (!/SQL is not available/.test(String(err))) throw err;
    return checkOursSubscribe(server);
  }
}

async function checkOursSql(server: OursServer): Promise<BalanceCheck> {
  const res = await fetch(`${server.url}/v1/database/${server.dbName}/sql`, {
    method: 'POST', headers: { authorization: `Bearer ${server.token}` }, body: 'SELECT * FROM accounts',
  });
  if (!res.ok) throw new Error(`sql answered ${res.status}: ${await res.text()}`);
  // Parse i64 balances losslessly: quote every number before JSON.parse would round it.
  const text = (await res.text()).replace(/([\[,])(-?\d+)(?=[,\]])/g, '$1"$2"');
  const [result] = JSON.parse(text) as [{ rows: [string, string][] }];
  let total = 0n;
  let min: bigint | undefined;
  for (const [, balance] of result.rows) {
    const b = BigInt(balance);
    total += b;
    if (min === undefined || b < min) min = b;
  }
  return { accounts: result.rows.length, total, min: min ?? 0n };
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
export async function connectOurs(server: OursServer): Promise<TransferClient> {
  const wsUrl = `${server.url.replace('http://', 'ws://')}/v1/database/${server.dbName}/subscribe?compression=None`;
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

const serverMsgSubscribeApplied = 1;
const serverMsgSubscriptionError = 3;
const accountRowBytes = 12; // id u32 + balance i64

/** Subscribes to every account row on a fresh connection and totals the rows of SubscribeApplied. */
async function checkOursSubscribe(server: OursServer): Promise<BalanceCheck> {
  const wsUrl = `${server.url.replace('http://', 'ws://')}/v1/database/${server.dbName}/subscribe?compression=None`;
  const ws = new WebSocket(wsUrl, ['v2.bsatn.spacetimedb'], { perMessageDeflate: false });
  try {
    const query = Buffer.from('SELECT * FROM accounts', 'utf8');
    const msg = Buffer.alloc(1 + 4 + 4 + 4 + 4 + query.length);
    msg.writeUInt8(0, 0); // Subscribe
    msg.writeUInt32LE(0, 1); // request_id
    msg.writeUInt32LE(0, 5); // query_set_id
    msg.writeUInt32LE(1, 9); // one query
    msg.writeUInt32LE(query.length, 13);
    query.copy(msg, 17);
    const applied = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SubscribeApplied within timeout')), connectTimeoutMs);
      ws.on('error', reject);
      ws.on('message', (data: Buffer) => {
        if (data[1] === serverMsgInitialConnection) ws.send(msg, { binary: true });
        else if (data[1] === serverMsgSubscribeApplied) {
          clearTimeout(timer);
          resolve(data);
        } else if (data[1] === serverMsgSubscriptionError) reject(new Error('subscription error'));
      });
    });
    return totalAccountRows(applied);
  } finally {
    ws.terminate();
  }
}

/** Walks SubscribeApplied{request_id, query_set_id, QueryRows} and totals every `accounts` row. */
function totalAccountRows(frame: Buffer): BalanceCheck {
  let at = 2 + 4 + 4;
  const tables = frame.readUInt32LE(at);
  at += 4;
  let accounts = 0;
  let total = 0n;
  let min: bigint | undefined;
  for (let t = 0; t < tables; t++) {
    const nameLen = frame.readUInt32LE(at);
    at += 4 + nameLen;
    const hint = frame[at++];
    if (hint === 0) at += 2;
    else at += 4 + frame.readUInt32LE(at) * 8;
    const dataLen = frame.readUInt32LE(at);
    at += 4;
    assert.equal(dataLen % accountRowBytes, 0, 'accounts rows are 12 bytes each');
    for (let row = at; row < at + dataLen; row += accountRowBytes) {
      const balance = frame.readBigInt64LE(row + 4);
      total += balance;
      if (min === undefined || balance < min) min = balance;
      accounts++;
    }
    at += dataLen;
  }
  return { accounts, total, min: min ?? 0n };
}
