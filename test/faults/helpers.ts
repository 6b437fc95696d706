// Shared pieces of the fault suite (test/faults/*.test.ts): the fast/long scale switch, the fast-check seed, a real
// server with the recovery-bank module published, RSS of the server process, and a well-behaved client's round trip
// (ping, subscribe, call a reducer over WebSocket) used as the health check after every batch of bad input.
//
// FAULTS_LONG=1 (set by `npm run test:faults`) scales counts and rounds up; FAULTS_SEED=<n> replays one fast-check run
// (a failing run prints its seed and path).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { buildFixture, startTestServer, within, type TestServer } from '../harness.js';
import { RawClient } from '../ws/helpers.js';

export const long = process.env.FAULTS_LONG === '1';

/** `fast` in `npm test`, `longValue` under FAULTS_LONG=1. */
export function scaled(fast: number, longValue: number): number {
  return long ? longValue : fast;
}

/** Fixed in the fast variant (CI sees the same cases every run), fresh in the long one unless FAULTS_SEED is set. */
export const seed = process.env.FAULTS_SEED !== undefined
  ? Number(process.env.FAULTS_SEED)
  : long ? (Date.now() ^ (process.pid << 8)) | 0 : 0x11fa17;

export const accounts = 10;
export const initialBalance = 1000n;
export const bankProtocols = ['v3.bsatn.spacetimedb', 'v2.bsatn.spacetimedb'];

export interface Bank {
  server: TestServer;
  token: string;
  identity: string;
  bundle: string;
  auth: { authorization: string };
  wsUrl: (db?: string) => string;
}

/** A real server (optionally on `dataDir`) with recovery-bank published as `db`, and an owner token. */
export async function startBank(opts: { dataDir?: string; db?: string } = {}): Promise<Bank> {
  const bundle = (await buildFixture('recovery-bank')).code;
  const server = await startTestServer({ dataDir: opts.dataDir });
  const res = await fetch(`${server.url}/v1/identity`, { method: 'POST' });
  const { token, identity } = (await res.json()) as { token: string; identity: string };
  const auth = { authorization: `Bearer ${token}` };
  const bank: Bank = {
    server, token, identity, bundle, auth,
    wsUrl: (db = 'bank') => `${server.url.replace('http', 'ws')}/v1/database/${db}/subscribe`,
  };
  await publish(bank, opts.db ?? 'bank');
  return bank;
}

export async function publish(bank: Bank, name: string): Promise<void> {
  const res = await fetch(`${bank.server.url}/v1/database/${name}`, { method: 'PUT', headers: bank.auth, body: bank.bundle });
  assert.equal(res.status, 200, await res.text());
}

/** Rows of one SELECT through HTTP /sql as the owner. */
export async function sqlRows(bank: Bank, query: string, db = 'bank'): Promise<unknown[][]> {
  const res = await fetch(`${bank.server.url}/v1/database/${db}/sql`, { method: 'POST', headers: bank.auth, body: query });
  const text = await res.text();
  assert.equal(res.status, 200, `${query}: ${text}\n${bank.server.output().slice(-2000)}`);
  return (JSON.parse(text) as { rows: unknown[][] }[])[0]!.rows;
}

/** BSATN of recovery-bank's `transfer(from: u32, to: u32, amount: i64, nonce: string)` arguments. */
export function transferArgs(from: number, to: number, amount: bigint, nonce: string): Uint8Array {
  const w = new BsatnWriter();
  w.writeU32(from); w.writeU32(to); w.writeI64(amount); w.writeString(nonce);
  return w.finish();
}

/** Resident set size of a process from /proc (Linux), in bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m !== null, `no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

let healthNonce = 0;

/**
 * The health check after a batch of bad input: /v1/ping answers 200, and a fresh, well-behaved WebSocket client
 * subscribes to `accounts`, calls `transfer` and sees both its ReducerResult (Ok) and the TransactionUpdate.
 */
export async function assertHealthy(bank: Bank, what: string): Promise<void> {
  const out = () => bank.server.output().slice(-3000);
  assert.ok(bank.server.pid() !== undefined, `${what}: the server process died\n${out()}`);
  const ping = await within(fetch(`${bank.server.url}/v1/ping`), `${what}: ping`);
  assert.equal(ping.status, 200, `${what}: ping`);
  const c = await within(RawClient.open(bank.wsUrl(), bankProtocols, bank.auth), `${what}: connect`);
  try {
    assert.equal((await c.next()).tag, 'InitialConnection', what);
    c.send({ tag: 'Subscribe', requestId: 1, querySetId: 7, queryStrings: ['SELECT * FROM accounts'] });
    const applied = await c.next();
    assert.equal(applied.tag, 'SubscribeApplied', `${what}: ${JSON.stringify(applied, (_k, v) => typeof v === 'bigint' ? String(v) : v)}`);
    const nonce = `health-${process.pid}-${healthNonce++}`;
    c.send({ tag: 'CallReducer', requestId: 2, reducer: 'transfer', args: transferArgs(1, 2, 1n, nonce) });
    const seen = new Set<string>();
    while (!(seen.has('ReducerResult') && seen.has('TransactionUpdate'))) {
      const m = await c.next();
      seen.add(m.tag);
      if (m.tag === 'ReducerResult') assert.equal(m.outcome.tag, 'Ok', `${what}: ${JSON.stringify(m.outcome)}`);
      // v2 puts the caller's own update inside the ReducerResult.
      if (m.tag === 'ReducerResult' && m.outcome.tag === 'Ok' && m.outcome.transactionUpdate.length > 0) seen.add('TransactionUpdate');
    }
  } finally {
    c.ws.close();
  }
}
