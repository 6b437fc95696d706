// bench/isolation.ts — issue 12 items 1, 2 and 6: what one database's heavy work costs everyone else, with the
// databases on the server's main thread (`--database-threads main`) and each in its own worker thread (`worker`, the
// default), side by side.
//
// Owns: nothing but this measurement. For each mode it starts a real server (bin/spacetime.js → dist/, so run
// `npm run build` first; the npm script does) and probes /v1/ping and the `hit` reducer of a `calm` database
// (test/fixtures/modules/cpu-hog; HTTP, one request after another, 10 ms apart) while another database:
//   * does nothing (quiet);
//   * runs cpu-hog's `spin` (a pure loop stopped by the reducer limit, `limitMs`) `runaways` times in a row;
//   * loads `bulkRows` rows through test/fixtures/modules/bulk-rows' `load` reducer, `bulkBatchRows` per call;
//   * is published with bulk-rows whose `init` inserts `initRows` rows (as many as the default 10 s limit allows on a
//     loaded machine, with margin);
//   * is migrated to bulk-rows-tagged (a defaulted column added: every one of its `bulkRows` rows rewritten), through
//     pre_publish and PUT ?policy=BreakClients as `spacetime publish -y` does;
//   * is republished with `--delete-data` (PUT ?clear=true: all its rows dropped, init run again).
// The bulk situations run on a second server with the default reducer limit. It prints one table: per mode and
// situation, p50 / p99 / max latency and the number of answers in the window, how long the situation took, the
// server's peak RSS during it (VmRSS sampled every 50 ms), the CPU time of the server's main thread in it (the
// probes' own share included: compare with the quiet row) and how long that thread waited for a core in it (run-queue
// wait, /proc schedstat: what a ping waits for when the main thread's own work is short; host/worker/priority.ts).
// May call: test/harness.ts (server and CLI helpers, fixture builds).
//
// Run: npm run bench:isolation   (or: node --import tsx bench/isolation.ts [limitMs, default 2000] [runaways, default 2]
//      [bulkRows, default 1000000]; env ISOLATION_ONLY=runaway|bulk runs one half, ISOLATION_MODES=worker one mode)

import { readFileSync } from 'node:fs';
import { buildFixture, cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../test/harness.js';

const limitMs = Number(process.argv[2] ?? 2000);
const runaways = Number(process.argv[3] ?? 2);
const bulkRows = Number(process.argv[4] ?? 1_000_000);
const bulkBatchRows = 100_000;
const initRows = 200_000;
const quietMs = 2000;
const probeGapMs = 10;
const rssSampleMs = 50;
const only = process.env.ISOLATION_ONLY;
const modes = (process.env.ISOLATION_MODES ?? 'main,worker').split(',') as ('main' | 'worker')[];

interface Row {
  mode: string; situation: string; ping: number[]; other: number[]; tookMs: number; rssPeakMiB: number; mainCpuMs: number;
  mainWaitMs: number;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function call(server: TestServer, db: string, reducer: string, args: unknown[] = [], token?: string): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server.url}/v1/database/${db}/call/${reducer}`, {
    method: 'POST', body: JSON.stringify(args), headers, signal: AbortSignal.timeout(120_000),
  });
  await res.text();
  return res.status;
}

/** Latencies (ms) of `fn`, one after another, until `until` resolves. */
async function probe(fn: () => Promise<unknown>, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.then(() => { done = true; }, () => { done = true; });
  const out: number[] = [];
  while (!done) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, probeGapMs));
  }
  return out;
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/**
 * CPU time and run-queue wait (ms) of the server's main thread so far (/proc/<pid>/task/<pid>/schedstat: ns on CPU,
 * ns runnable but waiting for a core). Unlike latencies the CPU time does not grow with the machine's load, so it
 * shows what a situation makes the main thread do; the wait is what it spent queued behind other threads.
 */
function mainThreadSched(pid: number | undefined): { cpuMs: number; waitMs: number } {
  if (pid === undefined) return { cpuMs: NaN, waitMs: NaN };
  const [cpu, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { cpuMs: cpu / 1e6, waitMs: wait / 1e6 };
}

/** Probes while `work` runs (started 50 ms into the window); its time and the server's peak sampled RSS. */
async function measure(server: TestServer, mode: string, situation: string, work: () => Promise<unknown>): Promise<Row> {
  let peak = rssMiB(server.pid());
  const before = mainThreadSched(server.pid());
  const sampler = setInterval(() => { peak = Math.max(peak, rssMiB(server.pid())); }, rssSampleMs);
  let tookMs = 0;
  const running = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const t = performance.now();
    await work();
    tookMs = performance.now() - t;
  })();
  const [ping, other] = await Promise.all([
    probe(() => fetch(`${server.url}/v1/ping`).then((r) => r.text()), running),
    probe(() => call(server, 'calm', 'hit'), running),
  ]);
  clearInterval(sampler);
  await running;
  const end = mainThreadSched(server.pid());
  return { mode, situation, ping, other, tookMs, rssPeakMiB: peak, mainCpuMs: end.cpuMs - before.cpuMs, mainWaitMs: end.waitMs - before.waitMs };
}

async function publishCli(server: TestServer, configPath: string, fixture: string, name: string): Promise<void> {
  const pub = await runCli(['publish', '-s', server.url, '-p', `test/fixtures/modules/${fixture}`, '-y', name], { configPath });
  if (pub.code !== 0) throw new Error(`publish ${name}: ${pub.stderr}`);
}

async function runRunaways(mode: 'main' | 'worker'): Promise<Row[]> {
  process.env.SPACETIME_DATABASE_THREADS = mode;
  process.env.SPACETIME_REDUCER_TIMEOUT_MS = String(limitMs);
  const server = await startTestServer();
  const configPath = tempConfigPath();
  try {
    for (const name of ['busy', 'calm']) await publishCli(server, configPath, 'cpu-hog', name);
    await call(server, 'calm', 'hit'); // warm
    const quiet = await measure(server, mode, 'quiet', () => new Promise((resolve) => setTimeout(resolve, quietMs)));
    const spins = await measure(server, mode, `${runaways} runaways of ${limitMs} ms in another database`, async () => {
      for (let i = 0; i < runaways; i++) {
        const status = await call(server, 'busy', 'spin');
        if (status !== 530) throw new Error(`spin answered ${status}, expected 530 (stopped at its limit)`);
      }
    });
    return [quiet, spins];
  } finally {
    await server.stop();
  }
}

async function ok(res: Response, what: string): Promise<string> {
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${what}: ${res.status} ${text}`);
  return text;
}

async function runBulk(mode: 'main' | 'worker'): Promise<Row[]> {
  process.env.SPACETIME_DATABASE_THREADS = mode;
  delete process.env.SPACETIME_REDUCER_TIMEOUT_MS;
  const bulk = (await buildFixture('bulk-rows')).code;
  const tagged = (await buildFixture('bulk-rows-tagged')).code;
  if (bulk.split('INIT_ROWS = 0').length !== 2) throw new Error('bulk-rows: the INIT_ROWS marker must occur once');
  const seeding = bulk.replace('INIT_ROWS = 0', `INIT_ROWS = ${initRows}`);
  const server = await startTestServer();
  const configPath = tempConfigPath();
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const put = (name: string, program: string, query = '') =>
    fetch(`${server.url}/v1/database/${name}${query}`, { method: 'PUT', headers: auth, body: program }).then((r) => ok(r, `publish ${name}${query}`));
  try {
    await publishCli(server, configPath, 'cpu-hog', 'calm');
    await put('bulk', bulk);
    await call(server, 'calm', 'hit'); // warm
    const rows = [await measure(server, mode, 'quiet (default reducer limit)', () => new Promise((resolve) => setTimeout(resolve, quietMs)))];
    rows.push(await measure(server, mode, `bulk load of ${bulkRows.toLocaleString('en-US')} rows, ${bulkBatchRows.toLocaleString('en-US')} per call, in another database`, async () => {
      for (let first = 0; first < bulkRows; first += bulkBatchRows) {
        const status = await call(server, 'bulk', 'load', [first, Math.min(bulkBatchRows, bulkRows - first)], token);
        if (status !== 200) throw new Error(`load answered ${status}`);
      }
    }));
    rows.push(await measure(server, mode, `publish of another database whose init inserts ${initRows.toLocaleString('en-US')} rows`,
      () => put('seeded', seeding)));
    rows.push(await measure(server, mode, `migration of another database's ${bulkRows.toLocaleString('en-US')} rows (column added)`, async () => {
      const plan = JSON.parse(await fetch(`${server.url}/v1/database/bulk/pre_publish`, { method: 'POST', headers: auth, body: tagged })
        .then((r) => ok(r, 'pre_publish'))) as { AutoMigrate?: { token: string } };
      if (plan.AutoMigrate === undefined) throw new Error(`pre_publish: not an automatic migration: ${JSON.stringify(plan)}`);
      await put('bulk', tagged, `?policy=BreakClients&token=${plan.AutoMigrate.token}`);
    }));
    rows.push(await measure(server, mode, `--delete-data republish of another database (${bulkRows.toLocaleString('en-US')} rows dropped)`,
      () => put('bulk', bulk, '?clear=true')));
    return rows;
  } finally {
    await server.stop();
  }
}

function ms(x: number): string {
  return Number.isNaN(x) ? '—' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const mode of modes) {
    if (only !== 'bulk') rows.push(...await runRunaways(mode));
    if (only !== 'runaway') rows.push(...await runBulk(mode));
  }
  cleanupTempDirs();
  const lines = [
    '| mode | situation | took s | server RSS peak MiB | server main thread CPU / run-queue wait ms | /v1/ping p50 / p99 / max ms (answers) | ' +
      'other database call p50 / p99 / max ms (answers) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const cell = (xs: number[]) => `${ms(percentile(xs, 50))} / ${ms(percentile(xs, 99))} / ${ms(Math.max(...xs))} (${xs.length})`;
    lines.push(`| ${r.mode} | ${r.situation} | ${(r.tookMs / 1000).toFixed(1)} | ${Math.round(r.rssPeakMiB)} | ${Math.round(r.mainCpuMs)} / ${Math.round(r.mainWaitMs)} | ` +
      `${cell(r.ping)} | ${cell(r.other)} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
