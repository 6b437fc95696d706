// bench/server-profile/run.ts — where our server spends its CPU on the keynote transfer workload over WebSocket.
//
// Owns: nothing but this measurement. Starts `spacetime start` FROM SOURCE (tsx, so the profile reflects src/ as it is
// now, not a stale dist/), optionally under `--cpu-prof`, publishes + seeds the keynote fixture, drives it with the
// keynote bench's WebSocket clients (v2.bsatn, hand-encoded CallReducer), prints transfers/s and server CPU-µs per
// transfer, then stops the server (SIGINT, so V8 writes the profile) and prints the top self-time functions.
// May call: bench/keynote/ours.ts (seed, connect), bench/keynote/procs.ts (CPU time), node built-ins.
//
// Run: node --import tsx bench/server-profile/run.ts [--duration 8] [--clients 64] [--inflight 40] [--prof]
//   (--prof writes bench/server-profile/out/*.cpuprofile; open it in Chrome DevTools or read the printed summary)

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectOurs, freePort, repoRoot, seedOurs, type OursDatabase } from '../keynote/ours.js';
import { pinSelf, stopChild, treeCpuMicros } from '../keynote/procs.js';
import { summarizeProfile } from './summarize.js';

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    clients: { type: 'string', default: '64' },
    inflight: { type: 'string', default: '40' },
    accounts: { type: 'string', default: '100000' },
    prof: { type: 'boolean', default: false },
    top: { type: 'string', default: '45' },
    /** Pin the server to CPU 1 and this load generator to CPU 0 (as `npm run bench` does). */
    pin: { type: 'boolean', default: false },
    /** Run the server from another checkout's src/ (before/after comparisons); default: this repository's. */
    src: { type: 'string', default: '' },
  },
});
const durationSeconds = Number(flags.duration);
const warmupSeconds = Number(flags.warmup);
const clientsCount = Number(flags.clients);
const inFlightPerClient = Number(flags.inflight);
const accountsCount = Number(flags.accounts);
const outDir = path.join(repoRoot, 'bench', 'server-profile', 'out');
const serverReadyTimeoutMs = 60_000;

async function startServer(): Promise<{ server: OursDatabase; pid: number; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'server-profile-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const profArgs = flags.prof ? ['--cpu-prof', `--cpu-prof-dir=${outDir}`] : [];
  if (flags.prof) { rmSync(outDir, { recursive: true, force: true }); mkdirSync(outDir, { recursive: true }); }
  const pin = flags.pin ? ['taskset', '-c', '1'] : [];
  if (flags.pin) pinSelf('0');
  const child = spawn(pin[0] ?? process.execPath, [...pin.slice(1), ...(pin.length > 0 ? [process.execPath] : []), ...profArgs, '--import', 'tsx', path.join(flags.src || path.join(repoRoot, 'src'), 'cli', 'main.ts'),
    '--config-path', path.join(dataDir, 'cli.toml'), 'start', '--listen-addr', `127.0.0.1:${port}`,
    '--data-dir', path.join(dataDir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on("data", (d: Buffer) => { log += d.toString(); if (process.env.SP_ECHO) process.stderr.write(d); });
  const stop = async () => { await stopChild(child); rmSync(dataDir, { recursive: true, force: true }); };
  const deadline = Date.now() + serverReadyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${log}`);
    if (Date.now() > deadline) { await stop(); throw new Error(`server not ready: ${log}`); }
    try { if ((await fetch(`${url}/v1/ping`)).status === 200) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const identity = (await (await fetch(`${url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const bundle = readFileSync(path.join(repoRoot, 'test', 'fixtures', 'modules', 'keynote', 'dist', 'bundle.js'));
  const res = await fetch(`${url}/v1/database/keynote?host_type=Js`, {
    method: 'PUT', headers: { authorization: `Bearer ${identity.token}` }, body: bundle,
  });
  if (!res.ok) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
  const publish = (): Promise<void> => Promise.reject(new Error('server-profile publishes the keynote fixture only'));
  const server = { url, pid: child.pid!, token: identity.token, publish, stop };
  return { server: { server, dbName: 'keynote', workload: 'keynote' }, pid: child.pid!, stop };
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

async function main(): Promise<void> {
  const { server, pid, stop } = await startServer();
  try {
    await seedOurs(server, accountsCount, 1_000_000_000n);
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
    const cpuStart = treeCpuMicros([pid]) ?? 0;
    const ioStart = ioCounts(pid);
    const clientCpuStart = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, durationSeconds * 1000));
    const elapsedS = (performance.now() - t0) / 1000;
    const cpu = (treeCpuMicros([pid]) ?? 0) - cpuStart;
    const ioEnd = ioCounts(pid);
    const clientCpu = process.cpuUsage(clientCpuStart);
    counting = false;
    const done = committed;
    running = false;
    await Promise.all(loops);
    console.log(`server over WebSocket: ${clientsCount} clients × ${inFlightPerClient} in flight, ${durationSeconds}s` +
      `${flags.prof ? ' (under --cpu-prof)' : ''}`);
    console.log(`  ${Math.round(done / elapsedS).toLocaleString('en-US')} transfers/s, failed ${failed}, ` +
      `server CPU ${(cpu / done).toFixed(1)} µs/transfer, ${(cpu / 1e6 / elapsedS).toFixed(2)} cores, ` +
      `${((ioEnd.syscw - ioStart.syscw) / done).toFixed(3)} write syscalls/transfer, ` +
      `${((ioEnd.syscr - ioStart.syscr) / done).toFixed(3)} read syscalls/transfer; ` +
      `load generator ${((clientCpu.user + clientCpu.system) / 1e6 / elapsedS).toFixed(2)} cores`);
    latenciesMs.sort((a, b) => a - b);
    const pct = (q: number) => (latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))] ?? 0).toFixed(1);
    console.log(`  latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await stop();
  }
  if (flags.prof) {
    const file = readdirSync(outDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) { console.log('no profile written'); return; }
    console.log(summarizeProfile(readFileSync(path.join(outDir, file), 'utf8'), Number(flags.top)));
  }
}

await main();
