// test/attack/flood.ts — one client sending a query in a loop, shared by the attack tests of both protocols: what the
// server's RSS peaked at while it did, and whether every query was answered; a server with one database published; a
// v2 OneOffQuery message.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { buildFixture, startTestServer, within, type TestServer } from '../harness.js';

/** A server with `fixture` published as database `name` by a fresh identity: the server and that owner's token. */
export async function serverWithDatabase(fixture: string, name: string): Promise<{ server: TestServer; token: string }> {
  const server = await startTestServer();
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const put = await fetch(`${server.url}/v1/database/${name}`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: (await buildFixture(fixture)).code,
  });
  assert.equal(put.status, 200, await put.text());
  return { server, token };
}

/** The resident memory of process `pid`, in MiB. */
export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/**
 * A WebSocket to `url` once its first message (InitialConnection, or v1.json's IdentityToken) has arrived. Waiting for
 * `open` alone loses that message to a listener attached after the await when it came with the upgrade response (ws
 * delivers it on process.nextTick, before promise continuations): 10 of 300 connections under a busy core.
 */
export async function openGreeted(url: string, protocol: string): Promise<WebSocket> {
  const ws = new WebSocket(url, [protocol]);
  await within(new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject); }), `the first message of ${url}`, 10_000);
  return ws;
}

/**
 * Sends `query` on `ws` (from openGreeted) 500 at a time for 3 s, waits up to 20 s for every answer, and asserts the
 * server (`pid`) grew by less than `growthMiBMax` meanwhile.
 */
export async function floodQueries(ws: WebSocket, query: string | Buffer, pid: number, growthMiBMax: number): Promise<void> {
  let answers = 0;
  ws.on('message', () => answers++);
  const rssBefore = rssMiB(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, rssMiB(pid)); }, 50);
  let sent = 0;
  const sendingUntil = Date.now() + 3_000;
  while (Date.now() < sendingUntil) {
    for (let i = 0; i < 500; i++) ws.send(query);
    sent += 500;
    await new Promise((r) => setTimeout(r, 5));
  }
  const deadline = Date.now() + 20_000;
  while (answers < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  clearInterval(sampler);
  assert.equal(answers, sent, 'every query answered');
  assert.ok(rssPeak - rssBefore < growthMiBMax, `the server grew by ${Math.round(rssPeak - rssBefore)} MiB for ${sent} queries`);
}

/** A v2 OneOffQuery message. */
export function oneOff(requestId: number, query: string): Buffer {
  const text = Buffer.from(query);
  const m = Buffer.alloc(9 + text.length);
  m[0] = 2; // OneOffQuery
  m.writeUInt32LE(requestId, 1);
  m.writeUInt32LE(text.length, 5);
  text.copy(m, 9);
  return m;
}
