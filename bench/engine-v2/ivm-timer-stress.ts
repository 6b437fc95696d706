// bench/engine-v2/ivm-timer-stress.ts — does isolated-vm 5.0.4's timeout survive heavy use from several threads?
// ivm-crossings.ts died by SIGSEGV in ~1 of 8 runs; the core dump showed isolated-vm's one process-wide timer thread
// (src/lib/timer.cc timer_thread_t::run_next → ~timer_data_t → free) freeing a RunWithTimeout timer. Every reducer call
// carries a timeout, so this decides whether v2 can keep isolated-vm's `timeout` in worker threads.
// Each child process makes `seconds` of back-to-back applySync calls with {timeout} into a no-op, from:
//   main      the main thread only (today's design)
//   worker    one worker thread only
//   main+1    the main thread and one worker at the same time
//   2workers  two workers at the same time (v2: two databases)
// and reports how many children died by a signal.
//
// Run: node --import tsx bench/engine-v2/ivm-timer-stress.ts [childrenPerCase=5] [seconds=3] [cases=main,worker,main+1,2workers]
// Owns: its child processes. May call: isolated-vm, bench/engine-v2/common.ts.

import ivm from 'isolated-vm';
import { spawnSync } from 'node:child_process';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { printTable, startTsWorker } from './common.js';

function hammer(seconds: number): number {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const context = isolate.createContextSync();
  const add = context.evalSync('(function (a, b) { return a + b; })', { reference: true }) as ivm.Reference<(a: number, b: number) => number>;
  const options = { timeout: 10_000 };
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

if (!isMainThread) {
  parentPort!.postMessage(hammer((workerData as { seconds: number }).seconds));
} else if (process.argv[2] === '--child') {
  await childMain(process.argv[3], Number(process.argv[4]));
} else {
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
}
