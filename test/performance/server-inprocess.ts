// test/performance/server-inprocess.ts — a measuring tool, not a test: the real server started IN THIS PROCESS from a
// given src/ tree (pinned to CPU 1), the keynote load from a child process (CPU 0, the keynote bench's v2 clients),
// reporting what stays put on a noisy shared machine: process CPU-µs per transfer, scavenges per 1,000 transfers,
// GC pause µs per transfer and, with `alloc`, bytes allocated per transfer by site (V8's sampling heap profiler,
// counting objects already collected). In process, so the heap profiler sees the server's heap and nothing else.
// Owns: nothing but this measurement. May call: <src>/server/main.ts, bench/keynote (connectOurs, pinSelf), node.
//
// Run: node --import tsx test/performance/server-inprocess.ts [cpu|alloc] [seconds] [src-dir] [top]
//   A/B: copy src/ to /tmp/before/src (with package.json + a node_modules symlink beside it), change the tree, then
//   alternate `… cpu 5 /tmp/before/src` and `… cpu 5 src` back to back.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connectOurs, repoRoot } from '../../bench/keynote/ours.js';
import { pinSelf } from '../../bench/keynote/procs.js';

const accountsCount = 100_000;
const clientsCount = 64;
const inFlightPerClient = 40;
const warmupSeconds = 2;
const samplingIntervalBytes = 512;

interface HeapNode { callFrame: { functionName: string; url: string }; selfSize: number; children: HeapNode[] }

/** Child mode: drive the server at `url`, print START after the warm-up and `END <transfers>` after `seconds`. */
async function load(url: string, token: string, seconds: number): Promise<void> {
  pinSelf('0');
  const server = { url, pid: 0, token, publish: async () => undefined, stop: async () => undefined };
  const keynote = { server, dbName: 'keynote', workload: 'keynote' } as const;
  const clients = await Promise.all(Array.from({ length: clientsCount }, () => connectOurs(keynote)));
  let seed = 0x12345678;
  const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
  let running = true;
  let committed = 0;
  const loop = async (c: (typeof clients)[number]) => {
    while (running) {
      const from = Math.floor(rand() * accountsCount);
      const to = (from + 1 + Math.floor(rand() * (accountsCount - 1))) % accountsCount;
      if (await c.transfer(from, to, 1)) committed++;
    }
  };
  const loops = clients.flatMap((c) => Array.from({ length: inFlightPerClient }, () => loop(c)));
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  const start = committed;
  console.log('START');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  console.log(`END ${committed - start}`);
  running = false;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.close()));
}

async function measure(mode: string, seconds: number, srcDir: string, top: number): Promise<void> {
  pinSelf('1');
  const { startServer } = (await import(path.join(path.resolve(srcDir), 'server', 'main.ts'))) as typeof import('../../src/server/main.js');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'server-inprocess-'));
  const srv = await startServer({ listenAddr: '127.0.0.1:0', dataDir, announce: false });
  try {
    const { token } = (await (await fetch(`${srv.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };
    const bundle = readFileSync(path.join(repoRoot, 'test', 'fixtures', 'modules', 'keynote', 'dist', 'bundle.js'));
    for (const res of [
      await fetch(`${srv.url}/v1/database/keynote?host_type=Js`, { method: 'PUT', headers: auth, body: bundle }),
      await fetch(`${srv.url}/v1/database/keynote/call/seed`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
        body: `{"n":${accountsCount},"initialBalance":1000000000}`,
      }),
    ]) if (!res.ok) throw new Error(`setup answered ${res.status}: ${await res.text()}`);

    let gcEvents = 0;
    let gcMs = 0;
    const gc = new PerformanceObserver((list) => { for (const e of list.getEntries()) { gcEvents++; gcMs += e.duration; } });
    gc.observe({ entryTypes: ['gc'] });
    const inspector = new Session();
    inspector.connect();
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'load', srv.url, token, String(seconds)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let cpu0 = process.cpuUsage();
    let t0 = 0;
    const transfers = await new Promise<number>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`load generator exited ${code}`)));
      child.stdout!.on('data', async (d: Buffer) => {
        out += d.toString();
        if (t0 === 0 && out.includes('START')) {
          t0 = performance.now();
          if (mode === 'alloc') {
            await inspector.post('HeapProfiler.startSampling', { samplingInterval: samplingIntervalBytes,
              includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
          }
          cpu0 = process.cpuUsage();
          gcEvents = 0;
          gcMs = 0;
        }
        const end = /END (\d+)/.exec(out);
        if (end !== null) resolve(Number(end[1]));
      });
    });
    const cpu = process.cpuUsage(cpu0);
    const elapsedS = (performance.now() - t0) / 1000;
    gc.disconnect();
    console.log(`${srcDir}: ${transfers} transfers, ${Math.round(transfers / elapsedS)}/s, ` +
      `CPU ${((cpu.user + cpu.system) / transfers).toFixed(1)} µs/transfer, ` +
      `${(gcEvents * 1000 / transfers).toFixed(2)} GCs/1k transfers, GC ${(gcMs * 1000 / transfers).toFixed(2)} µs/transfer` +
      `${mode === 'alloc' ? ' (under the heap profiler)' : ''}`);
    if (mode === 'alloc') {
      const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
      printAllocations(profile.head, transfers, top);
    }
    inspector.disconnect();
    await new Promise((r) => child.once('exit', r));
  } finally {
    await srv.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function printAllocations(head: HeapNode, transfers: number, top: number): void {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (n: HeapNode, parent: string): void => {
    const here = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}`;
    if (n.selfSize > 0) {
      const key = `${here}  <- ${parent}`;
      bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children) walk(c, here);
  };
  walk(head, '');
  console.log(`sampled ${(total / transfers).toFixed(0)} bytes allocated per transfer in the server's heap`);
  for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(bytes / transfers).toFixed(0).padStart(7)}  ${site}`);
  }
}

const [mode = 'cpu', a1, a2, a3] = process.argv.slice(2);
if (mode === 'load') await load(a1!, a2!, Number(a3));
else await measure(mode, Number(a1 ?? 5), a2 ?? path.join(repoRoot, 'src'), Number(a3 ?? 40));
