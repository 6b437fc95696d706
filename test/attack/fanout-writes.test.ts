// The fan-out of big updates and the front door (session 12 attack probe, left; fixed in session 13,
// server/websocket/fanout.ts `outboundSocketWriteBytesPerTurnMax`). 200 v2 subscribers of `blob` never read while the
// owner inserts 1 MB rows: each flush pass wrote every subscriber's 1 MB update into its socket in one turn of the main
// thread (200 MB of copies into the kernel's buffers, until they are full), so /v1/ping waited 620-690 ms behind a
// pass. Now a pass writes at most that many bytes and leaves the rest of its sessions, in order, to the next turn.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { cleanupTempDirs, until, within, type TestServer } from '../harness.js';
import { rssMiB, serverWithDatabase } from './flood.js';

const rowBytes = 1_000_000;
const nonReaders = 200;
const readers = 3;
const insertMs = 6_000;
let server: TestServer;
let token: string;
const sockets: WebSocket[] = [];

before(async () => {
  ({ server, token } = await serverWithDatabase('hostile-outbound', 'blobs'));
});
after(async () => {
  for (const ws of sockets) ws.terminate();
  await server.stop();
  cleanupTempDirs();
});

/** A v2 Subscribe of one query. */
function subscribe(query: string): Buffer {
  const text = Buffer.from(query);
  const m = Buffer.alloc(17 + text.length);
  m[0] = 0; // Subscribe
  m.writeUInt32LE(1, 1); // request id
  m.writeUInt32LE(1, 5); // query set id
  m.writeUInt32LE(1, 9); // one query
  m.writeUInt32LE(text.length, 13);
  text.copy(m, 17);
  return m;
}

/** A subscriber of `blob`, connected and applied: the ids of the rows its updates carried, in arrival order. */
async function subscriber(read: boolean): Promise<number[]> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/blobs/subscribe?compression=None`, ['v2.bsatn.spacetimedb']);
  sockets.push(ws);
  ws.on('error', () => {});
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'connected', 20_000);
  const ids: number[] = [];
  let applied = false;
  const marker = Buffer.alloc(4);
  marker.writeUInt32LE(rowBytes);
  ws.on('message', (d: Buffer) => {
    if (d[1] === 1) applied = true; // SubscribeApplied (byte 0 is the compression tag: none)
    // A row's BSATN: its u32 id, then its string's u32 length (1,000,000) and bytes.
    for (let at = d.indexOf(marker); at >= 4; at = d.indexOf(marker, at + rowBytes)) ids.push(d.readUInt32LE(at - 4));
  });
  ws.send(subscribe('SELECT * FROM blob'));
  await until('the subscription applied', () => applied, 30_000);
  if (!read) (ws as unknown as { _socket: Socket })._socket.pause();
  return ids;
}

/** Pings `url`/v1/ping every 10 ms from another process until it is sent a line: the latencies in ms. */
function pinger(url: string): { stop(): Promise<number[]> } {
  const script = `const l=[];let on=true;process.stdin.on('data',()=>{on=false});(async()=>{while(on){const t=performance.now();` +
    `await fetch('${url}/v1/ping');l.push(performance.now()-t);await new Promise(r=>setTimeout(r,10))}` +
    `process.stdout.write(JSON.stringify(l))})()`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    stop: async () => {
      child.stdin.end('stop\n');
      await exited;
      return JSON.parse(out) as number[];
    },
  };
}

test('200 subscribers that never read 1 MB updates hold /v1/ping for less than 250 ms; readers get every update in order', async (t) => {
  const reading: number[][] = [];
  for (let i = 0; i < readers; i++) reading.push(await subscriber(true));
  for (let i = 0; i < nonReaders; i++) await subscriber(false);
  const ping = pinger(server.url);
  const rssBefore = rssMiB(server.pid()!);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, rssMiB(server.pid()!)); }, 100);
  await new Promise((r) => setTimeout(r, 300));
  let inserted = 0;
  let callMaxMs = 0;
  const until = Date.now() + insertMs;
  while (Date.now() < until) {
    const started = Date.now();
    const r = await fetch(`${server.url}/v1/database/blobs/call/fill`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify([inserted, 1, rowBytes]),
    });
    assert.equal(r.status, 200, await r.text());
    callMaxMs = Math.max(callMaxMs, Date.now() - started);
    inserted++;
  }
  const latencies = (await ping.stop()).sort((a, b) => a - b);
  clearInterval(sampler);
  const p99 = latencies[Math.floor(latencies.length * 0.99)];
  const max = latencies[latencies.length - 1];
  t.diagnostic(`${inserted} rows inserted (call max ${callMaxMs} ms); ${latencies.length} pings: p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms; RSS +${Math.round(rssPeak - rssBefore)} MiB peak`);
  const expected = Array.from({ length: inserted }, (_, i) => i);
  const deadline = Date.now() + 30_000;
  while (reading.some((ids) => ids.length < inserted) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.diagnostic(`readers received ${reading.map((ids) => ids.length).join(', ')} of ${inserted} rows`);
  for (const ids of reading) assert.deepEqual(ids, expected, 'a reading subscriber receives every row, in commit order');
  // Before: max 620-690 ms (a pass wrote 200 MB into sockets in one turn). A generous bound: the machine is loaded.
  assert.ok(max < 250, `/v1/ping took up to ${max.toFixed(0)} ms (p99 ${p99.toFixed(0)} ms) during the fan-out`);
});
