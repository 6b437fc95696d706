// bench/server-profile/run.ts — where our server spends its CPU on a transfer workload over WebSocket.
//
// Owns: nothing but this measurement. Starts `spacetime start` FROM SOURCE (tsx, so the profile reflects src/ as it is
// now, not a stale dist/; with --dist the tree's build, as `npm run bench` runs it), publishes + seeds the workload's
// module (keynote: test/fixtures/modules/keynote, general: bench/engine-v2/modules/general, bundled here), drives it
// with the keynote bench's WebSocket clients (v2.bsatn, hand-encoded CallReducer), prints transfers/s, server CPU-µs per transfer in all and per thread (main, the busiest
// other thread = the database's worker in worker mode, the rest), then stops the server. With --prof every thread is
// sampled through the inspector (thread-profiler.ts) during the measured window and each busy one is summarized.
// May call: bench/keynote/ours.ts (seed, connect), bench/keynote/procs.ts (CPU time), src/cli/build.ts (bundling),
// bench/server-profile/summarize.ts and thread-profiler.ts, node built-ins.
//
// Run: node --import tsx bench/server-profile/run.ts [--workload keynote|general] [--duration 8] [--clients 64]
//   [--inflight 40] [--prof] [--pin] [--src <tree>/src] [--dist] [--database-threads worker|main] [--durability fsync|none]
//   (--prof writes bench/server-profile/out/<thread>.cpuprofile; open one in Chrome DevTools or read the summary)

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectOurs, freePort, repoRoot, seedOurs, type OursDatabase } from '../keynote/ours.js';
import { contextSwitches, pinSelf, stopChild, threadCpuNanos, treeCpuMicros } from '../keynote/procs.js';
import type { WorkloadName } from '../keynote/workload.js';
import { bundleModule } from '../../src/cli/build.js';
import { formatStages } from './stages.js';
import { summarizeProfile } from './summarize.js';
import { inspectorUrlIn, ThreadProfiler } from './thread-profiler.js';

const { values: flags } = parseArgs({
  options: {
    workload: { type: 'string', default: 'keynote' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    clients: { type: 'string', default: '64' },
    inflight: { type: 'string', default: '40' },
    accounts: { type: 'string', default: '100000' },
    prof: { type: 'boolean', default: false },
    /** Instead of CPU profiles: bytes allocated per transfer by allocation site, per thread (sampling heap profiler). */
    alloc: { type: 'boolean', default: false },
    top: { type: 'string', default: '45' },
    /** Pin the server to CPU 1 and this load generator to CPU 0 (as `npm run bench` does). */
    pin: { type: 'boolean', default: false },
    /** Run the server from another checkout's src/ (before/after comparisons); default: this repository's. */
    src: { type: 'string', default: '' },
    /** Run the tree's built dist/ (bin/spacetime.js) instead of its src/ through tsx (whose keepNames adds __name calls). */
    dist: { type: 'boolean', default: false },
    'database-threads': { type: 'string', default: 'worker' },
    durability: { type: 'string', default: 'fsync' },
  },
});
const workload = flags.workload as WorkloadName;
if (workload !== 'keynote' && workload !== 'general') throw new Error(`--workload: keynote or general, not ${workload}`);
const durationSeconds = Number(flags.duration);
const warmupSeconds = Number(flags.warmup);
const clientsCount = Number(flags.clients);
const inFlightPerClient = Number(flags.inflight);
const accountsCount = Number(flags.accounts);
const outDir = path.join(repoRoot, 'bench', 'server-profile', 'out');
const serverReadyTimeoutMs = 60_000;
const moduleDirs: Record<WorkloadName, string> = {
  keynote: path.join(repoRoot, 'test', 'fixtures', 'modules', 'keynote'),
  general: path.join(repoRoot, 'bench', 'engine-v2', 'modules', 'general'),
};

/** How the server's node starts: the tree's src/cli/main.ts through tsx, or (--dist) its bin/spacetime.js. */
function serverEntry(): string[] {
  const src = flags.src || path.join(repoRoot, 'src');
  if (flags.dist) return [path.join(src, '..', 'bin', 'spacetime.js')];
  return ['--import', 'tsx', path.join(src, 'cli', 'main.ts')];
}

interface Started { server: OursDatabase; pid: number; log: () => string; stop: () => Promise<void> }

async function startServer(): Promise<Started> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'server-profile-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const inspect = flags.prof || flags.alloc ? ['--inspect=127.0.0.1:0'] : [];
  if (flags.prof) { rmSync(outDir, { recursive: true, force: true }); mkdirSync(outDir, { recursive: true }); }
  const pin = flags.pin ? ['taskset', '-c', '1'] : [];
  if (flags.pin) pinSelf('0');
  const child = spawn(pin[0] ?? process.execPath, [...pin.slice(1), ...(pin.length > 0 ? [process.execPath] : []), ...inspect,
    ...serverEntry(),
    '--config-path', path.join(dataDir, 'cli.toml'), 'start', '--listen-addr', `127.0.0.1:${port}`,
    '--data-dir', path.join(dataDir, 'data'), '--database-threads', flags['database-threads']!,
    '--durability', flags.durability!], { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => { log += d.toString(); if (process.env.SP_ECHO) process.stderr.write(d); });
  const stop = async () => { await stopChild(child); rmSync(dataDir, { recursive: true, force: true }); };
  const deadline = Date.now() + serverReadyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${log}`);
    if (Date.now() > deadline) { await stop(); throw new Error(`server not ready: ${log}`); }
    try { if ((await fetch(`${url}/v1/ping`)).status === 200) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const identity = (await (await fetch(`${url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const publish = async (dbName: string, w: WorkloadName, clear: boolean): Promise<void> => {
    const { code } = await bundleModule(moduleDirs[w], {});
    const res = await fetch(`${url}/v1/database/${dbName}?host_type=Js${clear ? '&clear=true' : ''}`, {
      method: 'PUT', headers: { authorization: `Bearer ${identity.token}` }, body: code,
    });
    if (!res.ok) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
  };
  if (workload === 'keynote') await publish(workload, workload, false); // seedOurs republishes general itself
  const server = { url, pid: child.pid!, token: identity.token, publish, stop };
  return { server: { server, dbName: workload, workload }, pid: child.pid!, log: () => log, stop };
}

/** Read/write syscalls the process has made so far (/proc/<pid>/io; zeros when unavailable). */
function ioCounts(pid: number): { syscr: number; syscw: number } {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { syscr: Number(/syscr: (\d+)/.exec(text)?.[1] ?? 0), syscw: Number(/syscw: (\d+)/.exec(text)?.[1] ?? 0) };
  } catch {
    return { syscr: 0, syscw: 0 };
  }
}

/**
 * µs per transfer of the main thread (tid = pid), the busiest other thread (the database's worker in worker mode),
 * and every other thread together (libuv's pool: the commit log's writes and fdatasyncs; V8's platform threads:
 * concurrent GC; all threads are named "node", so they are not told apart).
 */
function perThread(pid: number, before: Map<number, number>, after: Map<number, number>, done: number): ThreadMicros {
  let busiest = 0, others = 0, main = 0;
  for (const [tid, ns] of after) {
    const d = ns - (before.get(tid) ?? 0);
    if (tid === pid) main = d;
    else if (d > busiest) { others += busiest; busiest = d; } else others += d;
  }
  return { main: main / 1000 / done, busiest: busiest / 1000 / done, rest: others / 1000 / done };
}

/** CPU-µs per transfer of the server's threads (perThread). */
interface ThreadMicros { main: number; busiest: number; rest: number }
let threadMicros: ThreadMicros = { main: 0, busiest: 0, rest: 0 };

/** Commit-log fdatasyncs and module entries so far, summed over databases (GET /v1/metrics; zeros if it fails). */
async function serverCounters(url: string): Promise<{ fsyncs: number; entries: number }> {
  try {
    const text = await (await fetch(`${url}/v1/metrics`)).text();
    const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))]
      .reduce((a, m) => a + Number(m[1]), 0);
    return { fsyncs: sum('spacetime_commitlog_fsyncs_total'), entries: sum('spacetime_reducer_call_batches_total') };
  } catch {
    return { fsyncs: 0, entries: 0 };
  }
}

interface Window { done: number; failed: number; elapsedS: number; latenciesMs: number[] }

/** Drives the transfers; `measure` runs between warm-up and the end of the measured window. */
async function drive(server: OursDatabase, measure: (count: () => number) => Promise<number>): Promise<Window> {
  const clients = await Promise.all(Array.from({ length: clientsCount }, () => connectOurs(server)));
  let seed = 0x12345678 >>> 0;
  const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
  let counting = false, committed = 0, failed = 0, running = true;
  const latenciesMs: number[] = [];
  const loop = async (c: (typeof clients)[number]) => {
    while (running) {
      const from = Math.floor(rand() * accountsCount);
      let to = Math.floor(rand() * accountsCount);
      if (to === from) to = (to + 1) % accountsCount;
      const t0 = performance.now();
      const ok = await c.transfer(from, to, 1);
      if (counting) {
        if (ok) committed++; else failed++;
        if ((committed & 15) === 0) latenciesMs.push(performance.now() - t0);
      }
    }
  };
  const loops = clients.flatMap((c) => Array.from({ length: inFlightPerClient }, () => loop(c)));
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  counting = true;
  const elapsedS = await measure(() => committed);
  counting = false;
  const done = committed;
  running = false;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.close()));
  return { done, failed, elapsedS, latenciesMs };
}

async function main(): Promise<void> {
  const { server, pid, log, stop } = await startServer();
  const profiles = new Map<string, string>();
  try {
    await seedOurs(server, accountsCount, 1_000_000_000n);
    const profiler = flags.prof || flags.alloc ? await ThreadProfiler.connect(inspectorUrlIn(log())!) : undefined;
    let allocations = new Map<string, Map<string, number>>();
    let counters = { fsyncs: 0, entries: 0, switches: 0 };
    let cpu = 0, io = { syscr: 0, syscw: 0 }, clientCpu = { user: 0, system: 0 };
    let threads: ((done: number) => ThreadMicros) | undefined;
    const w = await drive(server, async () => {
      if (flags.alloc) await profiler?.startAllocations(); else await profiler?.start();
      const cpuStart = treeCpuMicros([pid]) ?? 0;
      const ioStart = ioCounts(pid);
      const threadsStart = threadCpuNanos(pid);
      const switchesStart = contextSwitches(pid);
      const clientCpuStart = process.cpuUsage();
      const countersStart = await serverCounters(server.server.url);
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, durationSeconds * 1000));
      const elapsedS = (performance.now() - t0) / 1000;
      const countersEnd = await serverCounters(server.server.url);
      counters = { fsyncs: countersEnd.fsyncs - countersStart.fsyncs, entries: countersEnd.entries - countersStart.entries, switches: 0 };
      cpu = (treeCpuMicros([pid]) ?? 0) - cpuStart;
      const ioEnd = ioCounts(pid);
      io = { syscr: ioEnd.syscr - ioStart.syscr, syscw: ioEnd.syscw - ioStart.syscw };
      clientCpu = process.cpuUsage(clientCpuStart);
      const threadsEnd = threadCpuNanos(pid);
      counters.switches = contextSwitches(pid) - switchesStart;
      threads = (done: number) => perThread(pid, threadsStart, threadsEnd, done);
      if (profiler !== undefined && flags.alloc) allocations = await profiler.stopAllocations();
      else if (profiler !== undefined) for (const [name, text] of await profiler.stop()) profiles.set(name, text);
      return elapsedS;
    });
    profiler?.close();
    report(w, cpu, io, clientCpu, threads, counters);
    printAllocations(allocations, w.done);
  } finally {
    await stop();
  }
  for (const [name, text] of profiles) {
    writeFileSync(path.join(outDir, `${name}.cpuprofile`), text);
    const summary = summarizeProfile(text, Number(flags.top));
    if (/ 0\.[0-4]\d s busy/.test(summary.split('\n')[0]!)) continue; // an idle spare thread
    const perTransfer = name === 'main' ? threadMicros.main : threadMicros.busiest;
    console.log(`---- ${name} thread: stages (share of the thread's samples × its ${perTransfer.toFixed(1)} CPU-µs/transfer)`);
    console.log(formatStages(text, perTransfer));
    console.log(summary);
  }
}

/** Each thread's sampled bytes per transfer, its top allocation sites (threads under 64 B per transfer left out). */
function printAllocations(allocations: Map<string, Map<string, number>>, done: number): void {
  for (const [thread, bySite] of allocations) {
    const total = [...bySite.values()].reduce((a, b) => a + b, 0);
    if (total / done < 64) continue;
    console.log(`---- ${thread} thread: ${(total / done).toFixed(0)} bytes allocated per transfer (sampled), by site:`);
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(flags.top))) {
      console.log(`  ${(bytes / done).toFixed(0).padStart(6)} B  ${site}`);
    }
  }
}

function report(w: Window, cpu: number, io: { syscr: number; syscw: number }, clientCpu: { user: number; system: number },
  threads: ((done: number) => ThreadMicros) | undefined, counters: { fsyncs: number; entries: number; switches: number }): void {
  const { done, failed, elapsedS, latenciesMs } = w;
  console.log(`server over WebSocket (${workload}, ${flags['database-threads']} mode, durability ${flags.durability}): ` +
    `${clientsCount} clients × ${inFlightPerClient} in flight, ${durationSeconds}s${flags.prof ? ' (profiled)' : ''}; ` +
    `load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`  ${Math.round(done / elapsedS).toLocaleString('en-US')} transfers/s, failed ${failed}, ` +
    `server CPU ${(cpu / done).toFixed(1)} µs/transfer, ${(cpu / 1e6 / elapsedS).toFixed(2)} cores, ` +
    `${(io.syscw / done).toFixed(3)} write syscalls/transfer, ${(io.syscr / done).toFixed(3)} read syscalls/transfer; ` +
    `load generator ${((clientCpu.user + clientCpu.system) / 1e6 / elapsedS).toFixed(2)} cores`);
  if (threads !== undefined) {
    threadMicros = threads(done);
    const t = threadMicros;
    console.log(`  main thread ${t.main.toFixed(1)}, busiest other thread ${t.busiest.toFixed(1)}, the rest ${t.rest.toFixed(1)} CPU-µs/transfer`);
  }
  console.log(`  ${Math.round(counters.fsyncs / elapsedS)} commit-log fsyncs/s (${(done / counters.fsyncs).toFixed(1)} transfers each), ` +
    `${(done / counters.entries).toFixed(1)} transfers per module entry, ${(counters.switches / done).toFixed(3)} context switches per transfer`);
  latenciesMs.sort((a, b) => a - b);
  const pct = (q: number) => (latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))] ?? 0).toFixed(1);
  console.log(`  latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
}

await main();
