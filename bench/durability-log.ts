// bench/durability-log.ts — commit log throughput and commit latency under group commit.
//
// Runs N concurrent appenders, each in a closed loop: append a 16-byte payload, await waitDurable, repeat. Reports
// commits/s, p50/p99 latency from append to durable, fsyncs/s, mean batch size and on-disk bytes per commit.
// Run: node --import tsx bench/durability-log.ts [secondsPerCase]
// May call: src/durability.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLog, type DurabilityMode } from '../src/durability/commitlog.js';

const payloadBytes = 16;
const secondsPerCase = Number(process.argv[2] ?? 2);
const cases: { appenders: number; durability: DurabilityMode }[] = [
  { appenders: 1, durability: 'fsync' },
  { appenders: 8, durability: 'fsync' },
  { appenders: 64, durability: 'fsync' },
  { appenders: 256, durability: 'fsync' },
  { appenders: 64, durability: 'none' },
];

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function runCase(appenders: number, durability: DurabilityMode): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stdb-bench-log-'));
  const log = CommitLog.open(dir, { durability });
  const payload = new Uint8Array(payloadBytes).fill(7);
  const latenciesMs: number[] = [];
  const deadline = performance.now() + secondsPerCase * 1000;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await log.waitDurable(log.append(payload));
        latenciesMs.push(performance.now() - t0);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const s = log.stats;
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const sorted = Float64Array.from(latenciesMs).sort();
  const commits = latenciesMs.length;
  return [
    `${durability.padEnd(5)} appenders ${String(appenders).padStart(3)}:`,
    `${Math.round(commits / elapsedS).toLocaleString('en-US').padStart(9)} commits/s`,
    `p50 ${percentile(sorted, 0.5).toFixed(3)} ms`,
    `p99 ${percentile(sorted, 0.99).toFixed(3)} ms`,
    `${Math.round(s.syncs / elapsedS)} fsyncs/s`,
    `batch ${(s.appends / s.batches).toFixed(1)}`,
    `cpu ${((cpu.user + cpu.system) / commits).toFixed(2)} µs/commit`,
    `${(s.bytesAppended / s.appends).toFixed(0)} B/commit`,
  ].join('  ');
}

console.log(`commit log bench: ${payloadBytes}-byte payloads, ${secondsPerCase} s per case, Node ${process.version}, dir ${os.tmpdir()}`);
for (const c of cases) console.log(await runCase(c.appenders, c.durability));
