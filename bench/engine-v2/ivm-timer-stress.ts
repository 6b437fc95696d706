// bench/engine-v2/ivm-timer-stress.ts — what isolated-vm 5.0.4's per-call `timeout` costs in native memory, and
// whether heavy use from several threads kills the process.
// ivm-crossings.ts died by SIGSEGV in ~1 of 8 runs. The core dump: isolated-vm's timer thread, 69,887 frames deep in
// timer_thread_t::run_next ↔ maybe_run_next (src/lib/timer.cc), i.e. its 8 MiB stack overflowed. A timed call's timer
// is cancelled when the call returns but stays in the timer thread's queue until its timeout would have expired; when
// the timer thread wakes it reaps every expired entry by recursion, one stack level per timer. Calls at ~500k/s with a
// 10 s timeout and a timer thread descheduled for ~70 ms (a loaded 2-core machine) give ~35k levels: the overflow.
// Every reducer call carries a timeout today, so this bounds v2's call rate per timed entry (batching helps).
// Part 1 — native memory: RSS growth per timed call over 3 s of calls on the main thread (a cancelled timer lives on
// for the whole timeout), against untimed calls.
// Part 2 — each child process makes `seconds` of back-to-back applySync calls with {timeout} into a no-op, from:
//   main      the main thread only (today's design)
//   worker    one worker thread only
//   main+1    the main thread and one worker at the same time
//   2workers  two workers at the same time (v2: two databases)
// and reports how many children died by a signal. (A child shorter than the timeout exits before any timer expires,
// so this part alone rarely reproduces the overflow: it shows the threads themselves do not conflict.)
// Part 3 — the overflow on demand: a child makes N timed calls (timeout 1,000 ms) in a burst; the parent stops the
// child with SIGSTOP before the first timer expires and continues it 2 s later, so the timer thread wakes to N expired
// timers at once — what a long deschedule does on a loaded machine. N = 10k, 50k, 200k.
//
// Run: node --import tsx bench/engine-v2/ivm-timer-stress.ts [childrenPerCase=5] [seconds=3] [cases=main,worker,main+1,2workers]
// Owns: its child processes. May call: isolated-vm, bench/engine-v2/common.ts.

import ivm from 'isolated-vm';
import { spawn, spawnSync } from 'node:child_process';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { printTable, startTsWorker } from './common.js';

function hammer(seconds: number, timed = true): number {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const context = isolate.createContextSync();
  const add = context.evalSync('(function (a, b) { return a + b; })', { reference: true }) as ivm.Reference<(a: number, b: number) => number>;
  const options = timed ? { timeout: 10_000 } : {};
  const until = performance.now() + seconds * 1000;
  let calls = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 1000; i++) add.applySync(undefined, [i, 1], options);
    calls += 1000;
  }
  isolate.dispose();
  return calls;
}

async function childMain(kind: string, seconds: number): Promise<void> {
  const workers = kind === 'worker' || kind === 'main+1' ? 1 : kind === '2workers' ? 2 : 0;
  const started = Array.from({ length: workers }, () => startTsWorker(import.meta.url, { seconds }));
  const done = started.map((w) => new Promise<number>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));
  let calls = kind === 'main' || kind === 'main+1' ? hammer(seconds) : 0;
  for (const n of await Promise.all(done)) calls += n;
  await Promise.all(started.map((w) => w.terminate()));
  console.log(`calls ${calls}`);
}

/** Part 3: one child, stopped right after its burst (before its 1 s timers expire) and continued 2 s later. */
function stalledChild(n: number): Promise<(string | number)[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--stall-child', String(n)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let burst = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /burst \d+ in (\d+) ms/.exec(out);
      if (m !== null && burst === '') {
        burst = `${m[1]} ms`;
        child.kill('SIGSTOP');
        setTimeout(() => child.kill('SIGCONT'), 2_000);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve([n.toLocaleString('en-US'), burst || '—',
      signal !== null ? `died by ${signal}` : out.includes('survived') ? 'survived' : `exit ${code}`]));
  });
}

if (!isMainThread) {
  parentPort!.postMessage(hammer((workerData as { seconds: number }).seconds));
} else if (process.argv[2] === '--child') {
  await childMain(process.argv[3], Number(process.argv[4]));
} else if (process.argv[2] === '--stall-child') {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const add = isolate.createContextSync().evalSync('(function (a, b) { return a + b; })', { reference: true }) as
    ivm.Reference<(a: number, b: number) => number>;
  const n = Number(process.argv[3]);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) add.applySync(undefined, [i, 1], { timeout: 1_000 });
  console.log(`burst ${n} in ${(performance.now() - t0).toFixed(0)} ms`);
  setTimeout(() => { console.log('survived'); process.exit(0); }, 3_000);
} else if (process.argv[2] === '--memory-child') {
  const timed = process.argv[3] === 'timed';
  const rss0 = process.memoryUsage().rss;
  const calls = hammer(3, timed);
  console.log(JSON.stringify({ calls, bytesPerCall: (process.memoryUsage().rss - rss0) / calls }));
  process.exit(0);                                     // before the timers expire: their memory is what we measured
} else {
  const memory: (string | number)[][] = [];
  for (const mode of ['untimed', 'timed']) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--memory-child', mode], { encoding: 'utf8' });
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { calls: number; bytesPerCall: number };
    memory.push([mode === 'timed' ? 'applySync with {timeout: 10000}' : 'applySync without timeout', m.calls.toLocaleString('en-US'), m.bytesPerCall]);
  }
  console.log('native memory held per call (RSS growth over 3 s of calls on the main thread, divided by the calls)');
  printTable(['call', 'calls in 3 s', 'RSS bytes per call'], memory);
  console.log('');
  const children = Number(process.argv[2] ?? 5);
  const seconds = Number(process.argv[3] ?? 3);
  const cases = (process.argv[4] ?? 'main,worker,main+1,2workers').split(',');
  const rows: (string | number)[][] = [];
  for (const kind of cases) {
    let died = 0, calls = 0;
    const signals: string[] = [];
    for (let i = 0; i < children; i++) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', kind, String(seconds)],
        { encoding: 'utf8' });
      const m = /calls (\d+)/.exec(r.stdout);
      if (m !== null) calls += Number(m[1]);
      if (r.signal !== null || r.status !== 0) { died++; signals.push(r.signal ?? `exit ${r.status}`); }
    }
    rows.push([kind, String(children), calls.toLocaleString('en-US'), String(died), signals.join(' ') || '—']);
  }
  console.log(`isolated-vm timed applySync stress: ${seconds} s of calls per child process`);
  printTable(['threads calling', 'child processes', 'timed calls in all', 'died', 'signals'], rows);
  console.log('');
  const stalls: (string | number)[][] = [];
  for (const n of [10_000, 50_000, 200_000]) stalls.push(await stalledChild(n));
  console.log('timer thread woken to N expired timers at once (child stopped with SIGSTOP for 2 s after its burst)');
  printTable(['timed calls in the burst', 'burst took', 'outcome'], stalls);
}
