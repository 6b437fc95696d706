// bench/worker-seam.ts — what the seam between the server's main thread and a database's worker costs per reducer
// call (issue 12 item 2, docs/engine-v2.md §2), measured through a real server process.
//
// Owns: nothing but this measurement. For each mode (`--database-threads main`, then `worker`) it starts a real server
// (bin/spacetime.js → dist/, `--durability none` so that no fsync wait sets the pace), publishes the keynote fixture,
// seeds 1,000 accounts, and runs keynote transfers from one v2 WebSocket connection with 1, 10 and 100 calls in
// flight (closed loop: each ReducerResult sends the next call). It reads the server's threads' CPU time from
// /proc/<pid>/task/<tid>/schedstat before and after each run: the main thread (tid = pid), the database's worker
// (the busiest other thread in worker mode) and every other thread together (GC helpers, libuv, the spare worker).
// The load generator is this process, counted apart. It prints one table, the median of `runs` runs per cell.
// May call: src/subscription/messages.ts and src/sats/bsatn.ts (the wire codec), bench/keynote/procs.ts (threads'
// CPU time), node built-ins.
//
// Run: npm run bench:seam   (or: node --import tsx bench/worker-seam.ts [runs, default 3] [calls per run, default 20000]
//      [modes, default main,worker] [calls in flight, default 1,10,100])

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { threadCpuNanos } from './keynote/procs.js';
import { BsatnWriter } from '../src/sats/bsatn.js';
import { decodeServerMessages, encodeClientMessage } from '../src/subscription/messages.js';

const runs = Number(process.argv[2] ?? 3);
const callsPerRun = Number(process.argv[3] ?? 20_000);
const inFlightLevels = (process.argv[5] ?? '1,10,100').split(',').map(Number);
const modes = (process.argv[4] ?? 'main,worker').split(',') as ('main' | 'worker')[];
const accounts = 1000;
const root = new URL('..', import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Server { url: string; pid: number; child: ChildProcess; dir: string }

async function startServer(mode: 'main' | 'worker'): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-seam-'));
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'bin/spacetime.js'), 'start', '--data-dir', dir, '--listen-addr',
    `127.0.0.1:${port}`, '--durability', 'none', '--database-threads', mode], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v1/ping`)).ok) break;
    } catch { /* not listening yet */ }
    if (i > 600) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 20));
  }
  const cli = (...args: string[]) => execFileSync(process.execPath, [join(root, 'bin/spacetime.js'), '--config-path',
    join(dir, 'cli.toml'), ...args], { stdio: 'ignore' });
  cli('publish', '-s', url, '-p', join(root, 'test/fixtures/modules/keynote'), '-y', 'keynote');
  const seed = await fetch(`${url}/v1/database/keynote/call/seed`, {
    method: 'POST', body: JSON.stringify([accounts, 1e12]), headers: { 'content-type': 'application/json' },
  });
  if (!seed.ok) throw new Error(`seed: ${seed.status} ${await seed.text()}`);
  return { url, pid: child.pid!, child, dir };
}

function transferArgs(from: number, to: number): Uint8Array {
  const args = new Uint8Array(16);
  const v = new DataView(args.buffer);
  v.setUint32(0, from, true);
  v.setUint32(4, to, true);
  v.setBigInt64(8, 1n, true);
  return args;
}

/** Transfers from one v2 connection, `inFlight` at a time, `calls` in all; the server's thread CPU over the run. */
async function run(server: Server, inFlight: number, calls: number): Promise<{ wallMs: number; cpu: Map<number, number> }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/keynote/subscribe?compression=None`, ['v2.bsatn.spacetimedb']);
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const frames: Uint8Array[] = [];
  const w = new BsatnWriter(64);
  for (let i = 0; i < 256; i++) {
    w.reset();
    const from = (i * 7) % accounts;
    encodeClientMessage(w, { tag: 'CallReducer', requestId: i, reducer: 'transfer', args: transferArgs(from, (from + 1) % accounts) });
    frames.push(w.finish());
  }
  let sent = 0;
  let answered = 0;
  let failed = 0;
  const send = () => ws.send(frames[sent++ % frames.length]);
  const before = threadCpuNanos(server.pid);
  const started = performance.now();
  await new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => {
      for (const m of decodeServerMessages(new Uint8Array(data.buffer, data.byteOffset + 1, data.byteLength - 1))) {
        if (m.tag !== 'ReducerResult') continue;
        if (m.outcome.tag !== 'Ok' && m.outcome.tag !== 'OkEmpty') failed++;
        if (++answered === calls) resolve();
        else if (sent < calls) send();
      }
    });
    for (let i = 0; i < inFlight; i++) send();
  });
  const wallMs = performance.now() - started;
  const after = threadCpuNanos(server.pid);
  ws.close();
  if (failed > 0) throw new Error(`${failed} transfers failed`);
  const cpu = new Map<number, number>();
  for (const [tid, ns] of after) cpu.set(tid, ns - (before.get(tid) ?? 0));
  return { wallMs, cpu };
}

interface Cell { wallUs: number; mainUs: number; workerUs: number; otherUs: number }

function perCall(pid: number, mode: string, r: { wallMs: number; cpu: Map<number, number> }, calls: number): Cell {
  const main = r.cpu.get(pid) ?? 0;
  const others = [...r.cpu].filter(([tid]) => tid !== pid).map(([, ns]) => ns).sort((a, b) => b - a);
  const worker = mode === 'worker' ? others[0] ?? 0 : 0;
  const rest = others.reduce((a, b) => a + b, 0) - worker;
  const us = (ns: number) => ns / 1000 / calls;
  return { wallUs: (r.wallMs * 1000) / calls, mainUs: us(main), workerUs: us(worker), otherUs: us(rest) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const lines = [
    `| mode | in flight | wall µs/call | main thread CPU-µs/call | database worker CPU-µs/call | other threads CPU-µs/call |`,
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const mode of modes) {
    const server = await startServer(mode);
    try {
      await run(server, 10, 2000); // warm-up
      for (const inFlight of inFlightLevels) {
        const cells: Cell[] = [];
        for (let i = 0; i < runs; i++) cells.push(perCall(server.pid, mode, await run(server, inFlight, callsPerRun), callsPerRun));
        const m = (f: (c: Cell) => number) => median(cells.map(f)).toFixed(2);
        lines.push(`| ${mode} | ${inFlight} | ${m((c) => c.wallUs)} | ${m((c) => c.mainUs)} | ${mode === 'worker' ? m((c) => c.workerUs) : '—'} | ${m((c) => c.otherUs)} |`);
        process.stderr.write(`${lines.at(-1)}\n`);
      }
    } finally {
      server.child.kill('SIGTERM');
      await new Promise((resolve) => server.child.once('exit', resolve));
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
