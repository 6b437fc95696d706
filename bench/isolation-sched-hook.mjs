// bench/isolation-sched-hook.mjs — loaded into the server by bench/isolation-sched.ts --hook 1 (main thread only): its
// GCs and event-loop stalls, with wall-clock ms, appended to $PDIAG_LOG as JSON lines. Stall = a 2 ms interval timer fired late by > 4 ms; with the main thread's own CPU and
// run-queue wait over the stall (/proc/thread-self/schedstat).
import { isMainThread } from 'node:worker_threads';
import { appendFileSync, readFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
if (isMainThread && process.env.PDIAG_LOG) {
  const log = process.env.PDIAG_LOG;
  const buf = [];
  const flush = () => { if (buf.length) { appendFileSync(log, buf.join('\n') + '\n'); buf.length = 0; } };
  const sched = () => readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) buf.push(JSON.stringify({ t: performance.timeOrigin + e.startTime, gc: e.detail?.kind ?? e.kind, flags: e.detail?.flags, ms: e.duration }));
  }).observe({ entryTypes: ['gc'] });
  let last = performance.now();
  let s0 = sched();
  setInterval(() => {
    const now = performance.now();
    const s1 = sched();
    const late = now - last - 2;
    if (late > 4) buf.push(JSON.stringify({ t: performance.timeOrigin + last, stall: late, cpu: (s1[0] - s0[0]) / 1e6, wait: (s1[1] - s0[1]) / 1e6 }));
    last = now; s0 = s1;
  }, 2).unref();
  setInterval(flush, 200).unref();
}
