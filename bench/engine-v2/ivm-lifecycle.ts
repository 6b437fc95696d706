// bench/engine-v2/ivm-lifecycle.ts — do module isolates inside worker threads survive every way a worker and a
// process can end? Each child process runs a few start/stop cycles; each cycle starts a worker that opens today's
// real Database (isolated-vm isolate + datastore) on the keynote fixture, calls reducers, and then ends one way:
//   close            db.close() (disposes the isolate), the worker's event loop empties, it exits naturally
//   terminate-idle   the server terminates the worker while its database (and isolate) is open and idle
//   terminate-busy   the server terminates the worker while a reducer spins inside applySync (runaway fixture)
//   dispose-exit     the worker disposes its isolate and calls process.exit(0) with the database still open
//   exit-open        the worker calls process.exit(0) with the database open (no dispose)
// and every child then ends with one worker still running (its database open): a natural process exit, or
// process.exit() from the main thread, alternately. Two more children call process.exit() while a worker spins inside
// a reducer (how long does the process take to go?). A child that dies by a signal, or whose exit code is not 0,
// is an abort. Prints per-mode counts, how long each mode took to end the worker, and any abort's last stderr lines.
//
// Run: node --import tsx bench/engine-v2/ivm-lifecycle.ts [children=10] [cyclesPerChild=5]
// Owns: its child processes. May call: bench/engine-v2/{common,keynote-db}.ts, src/host/database.ts, isolated-vm.

import { spawn } from 'node:child_process';
import { isMainThread, parentPort, workerData, type Worker } from 'node:worker_threads';
import { median, startTsWorker } from './common.js';

const modes = ['close', 'terminate-idle', 'terminate-busy', 'dispose-exit', 'exit-open'] as const;
type Mode = (typeof modes)[number];
const transfersPerCycle = 2_000;
/**
 * The busy worker's reducer limit. worker.terminate() cannot interrupt a thread that is inside applySync (it stops
 * the worker's own V8 isolate, not the module's), so terminate-busy cycles show how long terminate() takes then.
 */
const spinTimeoutMs = 3_000;

function trace(line: string): void {
  if (process.env.ENGINE_V2_TRACE) process.stderr.write(`[${process.pid}] ${line}\n`);
}

/** Worker body: open the database, run a little, report 'ready', then do what the mode says. */
async function workerMain(mode: Mode | 'left-running'): Promise<void> {
  const { openKeynote } = await import('./keynote-db.js');
  const { Database } = await import('../../src/host/database.js');
  const { fixtureBundle } = await import('../../test/host/bundle.js');
  const keynote = await openKeynote({ accounts: 10_000 });
  keynote.runTransfers(transfersPerCycle);
  if (mode === 'terminate-busy') {
    const runaway = await Database.create({ identity: 0x77n, ownerIdentity: 2n, limits: { reducerTimeoutMs: spinTimeoutMs } },
      await fixtureBundle('runaway'));
    parentPort!.postMessage('ready');
    runaway.callReducerNow('spin', new Uint8Array(0), { identity: 3n, connectionId: 4n, jwtPayload: undefined });
    parentPort!.postMessage('spin returned (unexpected)');
    return;
  }
  parentPort!.postMessage('ready');
  if (mode === 'close') { await keynote.db.close(); return; }
  if (mode === 'dispose-exit') {
    // Reach the runtime's isolate the way close() would, but leave the Database otherwise open.
    (keynote.db as unknown as { runtime?: { dispose(): void } }).runtime?.dispose();
    process.exit(0);
  }
  if (mode === 'exit-open') process.exit(0);
  // 'terminate-idle' and 'left-running': stay alive until terminated or the process ends.
  setInterval(() => keynote.transferOnce(0), 50);
}

function waitFor(worker: Worker, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    worker.once('message', (m) => (m === what ? resolve() : reject(new Error(`worker said ${String(m)}`))));
    worker.once('error', reject);
  });
}

function exited(worker: Worker): Promise<number> {
  return new Promise((resolve) => worker.once('exit', resolve));
}

/** Child process body for the busy-exit check: process.exit() while a worker is inside a spinning reducer. */
async function childExitBusy(): Promise<void> {
  const worker = startTsWorker(import.meta.url, { mode: 'terminate-busy' });
  await waitFor(worker, 'ready');
  await new Promise((r) => setTimeout(r, 100));
  console.log(`exiting ${Date.now()}`);
  process.exit(0);
}

/** Child process body: `cycles` cycles, then one worker left running while the process ends. */
async function childMain(first: number, cycles: number, endByExitCall: boolean): Promise<void> {
  for (let c = 0; c < cycles; c++) {
    const mode = modes[(first + c) % modes.length];
    trace(`cycle ${c} ${mode}: start`);
    const worker = startTsWorker(import.meta.url, { mode });
    const done = exited(worker);
    await waitFor(worker, 'ready');
    trace(`cycle ${c} ${mode}: ready`);
    if (mode === 'terminate-busy') await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    if (mode === 'terminate-idle' || mode === 'terminate-busy') await worker.terminate();
    const code = await done;
    trace(`cycle ${c} ${mode}: exit ${code}`);
    // Report the cycle on stdout for the parent's tally.
    console.log(`cycle ${mode} ${code} ${Date.now() - t0}`);
  }
  const last = startTsWorker(import.meta.url, { mode: 'left-running' });
  await waitFor(last, 'ready');
  trace(`left-running ready; ending the process ${endByExitCall ? 'by process.exit()' : 'naturally'}`);
  console.log('end');
  if (endByExitCall) process.exit(0);
  last.unref();
}

function runChild(first: number, cycles: number, endByExitCall: boolean): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', String(first), String(cycles), endByExitCall ? '1' : '0'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ENGINE_V2_TRACE: '1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

async function parentMain(children: number, cyclesPerChild: number): Promise<void> {
  const tally = new Map<string, { ok: number; other: string[]; endMs: number[] }>();
  let aborts = 0;
  const t0 = Date.now();
  for (let i = 0; i < children; i++) {
    const endByExitCall = i % 2 === 1;
    const r = await runChild(i * cyclesPerChild, cyclesPerChild, endByExitCall);
    for (const line of r.out.split('\n')) {
      const m = /^cycle (\S+) (-?\d+) (\d+)$/.exec(line);
      if (m === null) continue;
      const t = tally.get(m[1]) ?? { ok: 0, other: [], endMs: [] };
      t.endMs.push(Number(m[3]));
      // A terminated worker exits with 1; every other mode must exit 0.
      const expected = m[1].startsWith('terminate') ? 1 : 0;
      if (Number(m[2]) === expected) t.ok++; else t.other.push(m[2]);
      tally.set(m[1], t);
    }
    const clean = r.signal === null && r.code === 0 && r.out.includes('end\n');
    if (!clean) {
      aborts++;
      console.log(`child ${i} (${endByExitCall ? 'process.exit()' : 'natural exit'}): code ${r.code} signal ${r.signal}; last stderr:`);
      console.log(r.err.split('\n').slice(-8).map((l) => `    ${l}`).join('\n'));
    }
  }
  console.log(`${children} child processes × ${cyclesPerChild} cycles in ${((Date.now() - t0) / 1000).toFixed(0)} s; ` +
    `process ends with a worker still running: ${children} (half natural, half process.exit())`);
  for (const [mode, t] of tally) {
    console.log(`  ${mode}: ${t.ok} as expected${t.other.length ? `, unexpected exit codes ${t.other.join(',')}` : ''}; ` +
      `worker gone after (ms, median / max): ${median(t.endMs)} / ${Math.max(...t.endMs)}`);
  }
  console.log(`  aborted or unclean child processes: ${aborts} of ${children}`);
  // process.exit() on the main thread while a worker spins inside applySync (reducer limit spinTimeoutMs).
  for (let i = 0; i < 2; i++) {
    const t0 = Date.now();
    const r = await new Promise<{ code: number | null; signal: string | null; out: string; endMs: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child-exit-busy'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, out, endMs: Date.now() }));
    });
    const m = /exiting (\d+)/.exec(r.out);
    console.log(`  process.exit() while a worker spins (limit ${spinTimeoutMs} ms): code ${r.code} signal ${r.signal}; ` +
      `process gone ${m === null ? '?' : r.endMs - Number(m[1])} ms after process.exit() (child ran ${r.endMs - t0} ms)`);
  }
}

if (!isMainThread) {
  await workerMain((workerData as { mode: Mode | 'left-running' }).mode);
} else if (process.argv[2] === '--child-exit-busy') {
  await childExitBusy();
} else if (process.argv[2] === '--child') {
  await childMain(Number(process.argv[3]), Number(process.argv[4]), process.argv[5] === '1');
} else {
  await parentMain(Number(process.argv[2] ?? 10), Number(process.argv[3] ?? 5));
}
