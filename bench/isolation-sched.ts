// bench/isolation-sched.ts — what the server's main thread waits for while another database seeds or migrates 1M rows
// (issue 12 item 2; BENCHMARKS "Why /v1/ping slows", session 11). Worker mode, one real server per run: `calm`
// (cpu-hog) and `reps` bulk-rows databases of `rows` rows; then, `reps` times, a publish whose init inserts 200,000
// rows and a migration of one bulk database (column added, pre_publish + PUT as `spacetime publish -y`), probing
// /v1/ping and calm's `hit` 10 ms apart as bench/isolation.ts does. Per window it prints one JSON line: the probes'
// p50 / p99 / max, how many pings took over 10 ms, the CPU / run-queue wait ms of every server thread (schedstat; `@N`
// marks a nice value) and of this client, and with --perf 1 (root, `perf` installed) every run-queue wait of the
// server's main thread and of this client from `perf sched record` (p99, max, how many over 2 and 5 ms). The JSON file
// (--out) holds every window; with --keepperf 1 also the perf.data path, for `perf sched timehist -i`.
// Owns: nothing but this measurement. May call: test/harness.ts, perf.
//
// Run: node --import tsx bench/isolation-sched.ts [--label A] [--reps 2] [--rows 1000000] [--perf 0|1] [--hook 0|1]
//      [--node-flags "--single-threaded-gc"] [--sit seed,migrate,quiet] [--settle 1500] [--out file.json]
//   (--root DIR runs another checkout's server, e.g. a `git archive` of the commit before, for A/B pairs; --hook 1
//   loads bench/isolation-sched-hook.mjs into the server: its main thread's GCs and event-loop stalls to a file)

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const root = args.get('root') ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const label = args.get('label') ?? 'A';
const nodeFlags = (args.get('node-flags') ?? '').split(' ').filter(Boolean);
const reps = Number(args.get('reps') ?? 2);
const settleMs = Number(args.get('settle') ?? 1500);
const hook = args.get('hook') === '1';
const perf = args.get('perf') === '1';
const out = args.get('out') ?? path.join(tmpdir(), `isolation-sched-${label}-${Date.now()}.json`);
const rowsPerDb = Number(args.get('rows') ?? 1_000_000);
const situations = (args.get('sit') ?? 'seed,migrate').split(',');

const harness = await import(path.join(root, 'test/harness.ts'));

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
function threads(pid: number): Map<string, { name: string; cpu: number; wait: number; slices: number }> {
  const m = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const [cpu, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const nice = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]);
      const label = (tid === String(pid) ? 'MAIN' : name) + (nice ? `@${nice}` : '');
      m.set(tid, { name: label, cpu: cpu / 1e6, wait: wait / 1e6, slices });
    } catch { /* gone */ }
  }
  return m;
}
function diff(a: ReturnType<typeof threads>, b: ReturnType<typeof threads>) {
  const byName: Record<string, { cpu: number; wait: number; n: number }> = {};
  for (const [tid, t] of b) {
    const p = a.get(tid) ?? { cpu: 0, wait: 0 };
    const k = t.name;
    byName[k] ??= { cpu: 0, wait: 0, n: 0 };
    byName[k].cpu += t.cpu - p.cpu; byName[k].wait += t.wait - p.wait; byName[k].n++;
  }
  for (const k of Object.keys(byName)) if (byName[k].cpu < 1) delete byName[k];
  return byName;
}
// worker threads per tid: the single busiest non-main thread
function topTids(a: ReturnType<typeof threads>, b: ReturnType<typeof threads>) {
  const xs = [];
  for (const [tid, t] of b) {
    const p = a.get(tid) ?? { cpu: 0, wait: 0 };
    xs.push({ tid, name: t.name, cpu: Math.round(t.cpu - p.cpu), wait: Math.round(t.wait - p.wait) });
  }
  return xs.sort((x, y) => y.cpu - x.cpu).slice(0, 8);
}

const dataDir = mkdtempSync(path.join(tmpdir(), 'isolation-sched-data-'));
const cfg = path.join(mkdtempSync(path.join(tmpdir(), 'isolation-sched-cfg-')), 'cli.toml');
const port = await harness.freePort();
const url = `http://127.0.0.1:${port}`;
const logPath = path.join(tmpdir(), `isolation-sched-hook-${label}-${Date.now()}.ndjson`);
const env: NodeJS.ProcessEnv = { ...process.env, SPACETIME_DATABASE_THREADS: 'worker' };
delete env.SPACETIME_REDUCER_TIMEOUT_MS;
const imports = [];
if (hook) { imports.push(`--import ${path.join(root, 'bench', 'isolation-sched-hook.mjs')}`); env.PDIAG_LOG = logPath; }
if (imports.length) env.NODE_OPTIONS = imports.join(' ');
const child: ChildProcess = spawn(process.execPath, [...nodeFlags, path.join(root, 'bin/spacetime.js'), '--config-path', cfg,
  'start', '--listen-addr', `127.0.0.1:${port}`, '--data-dir', dataDir],
  { stdio: ['ignore', 'pipe', 'pipe'], env });
let log = ''; child.stdout!.on('data', (d) => (log += d)); child.stderr!.on('data', (d) => (log += d));
for (let i = 0; ; i++) {
  try { if ((await fetch(`${url}/v1/ping`)).ok) break; } catch { /* not yet */ }
  if (i > 200) throw new Error(`server did not start: ${log}`);
  await new Promise((r) => setTimeout(r, 50));
}
const pid = child.pid!;
const { token } = (await (await fetch(`${url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
const auth = { authorization: `Bearer ${token}` };
async function ok(res: Response, what: string) {
  const t = await res.text();
  if (res.status !== 200) throw new Error(`${what}: ${res.status} ${t}`);
  return t;
}
const put = (name: string, program: string, query = '') =>
  fetch(`${url}/v1/database/${name}${query}`, { method: 'PUT', headers: auth, body: program }).then((r) => ok(r, `publish ${name}${query}`));
const call = (db: string, red: string, a: unknown[] = []) =>
  fetch(`${url}/v1/database/${db}/call/${red}`, { method: 'POST', body: JSON.stringify(a), headers: { 'content-type': 'application/json', ...auth } })
    .then((r) => ok(r, `${db}.${red}`));

const bulk = (await harness.buildFixture('bulk-rows')).code as string;
const tagged = (await harness.buildFixture('bulk-rows-tagged')).code as string;
const seeding = bulk.replace('INIT_ROWS = 0', 'INIT_ROWS = 200000');
await put('calm', (await harness.buildFixture('cpu-hog')).code);
const nMig = situations.includes('migrate') ? reps : 0;
for (let i = 0; i < nMig; i++) {
  await put(`bulk${i}`, bulk);
  for (let first = 0; first < rowsPerDb; first += 100_000) await call(`bulk${i}`, 'load', [first, 100_000]);
}
await call('calm', 'hit');

async function probe(fn: () => Promise<unknown>, until: Promise<unknown>) {
  let done = false; void until.then(() => { done = true; }, () => { done = true; });
  const xs: { t: number; ms: number }[] = [];
  while (!done) {
    const t0 = performance.now();
    const w = Date.now();
    await fn();
    xs.push({ t: w, ms: performance.now() - t0 });
    await new Promise((r) => setTimeout(r, 10));
  }
  return xs;
}
const results: unknown[] = [];
async function measure(situation: string, work: () => Promise<unknown>) {
  await new Promise((r) => setTimeout(r, settleMs));
  let perfProc: ChildProcess | undefined;
  const perfFile = path.join(tmpdir(), `isolation-sched-perf-${label}-${situation}-${Date.now()}.data`);
  if (perf) {
    perfProc = spawn('perf', ['sched', 'record', '-o', perfFile], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  }
  const s0 = threads(pid), c0 = threads(process.pid), w0 = Date.now();
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  let tookMs = 0;
  const running = (async () => {
    await new Promise((r) => setTimeout(r, 50));
    const t = performance.now();
    await work();
    tookMs = performance.now() - t;
  })();
  const [ping, other] = await Promise.all([
    probe(() => fetch(`${url}/v1/ping`).then((r) => r.text()), running),
    probe(() => call('calm', 'hit'), running),
  ]);
  await running;
  const s1 = threads(pid), c1 = threads(process.pid), w1 = Date.now();
  if (perfProc) { perfProc.kill('SIGINT'); await new Promise((r) => perfProc!.once('exit', r)); }
  const p = ping.map((x) => x.ms);
  let sched: unknown;
  if (perf) {
    const { execFileSync } = await import('node:child_process');
    const text = execFileSync('perf', ['sched', 'timehist', '-i', perfFile], { maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString();
    const delays: Record<string, number[]> = { server: [], client: [] };
    const runs: number[] = [];
    for (const line of text.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 6) continue;
      const task = f.slice(2, f.length - 3).join(' ');
      const sd = Number(f[f.length - 2]), run = Number(f[f.length - 1]);
      if (task === `node[${pid}]`) { delays.server.push(sd); runs.push(run); }
      else if (task === `node[${process.pid}]`) delays.client.push(sd);
    }
    const st = (xs: number[]) => ({
      n: xs.length, p99: +percentile(xs, 99).toFixed(2), max: +Math.max(...xs).toFixed(1),
      over2: xs.filter((x) => x > 2).length, over5: xs.filter((x) => x > 5).length, sum: Math.round(xs.reduce((a, b) => a + b, 0)),
    });
    sched = { server: st(delays.server), client: st(delays.client), serverRunMax: +Math.max(...runs).toFixed(1) };
    if (args.get('keepperf') !== '1') (await import('node:fs')).unlinkSync(perfFile);
  }
  const r = {
    label, situation, load: load0, tookMs: Math.round(tookMs), w0, w1,
    ping: {
      n: p.length, p50: +percentile(p, 50).toFixed(1), p99: +percentile(p, 99).toFixed(1), max: +Math.max(...p).toFixed(1),
      over10: p.filter((x) => x > 10).length,
    },
    calm: { n: other.length, p99: +percentile(other.map((x) => x.ms), 99).toFixed(1) },
    slow: ping.filter((x) => x.ms > 8).map((x) => ({ at: x.t - w0, ms: +x.ms.toFixed(1) })),
    server: Object.fromEntries(Object.entries(diff(s0, s1))
      .map(([k, v]) => [k, `${Math.round(v.cpu)}/${Math.round(v.wait)}${v.n > 1 ? ` x${v.n}` : ''}`])),
    top: topTids(s0, s1),
    client: Object.fromEntries(Object.entries(diff(c0, c1)).map(([k, v]) => [k, `${Math.round(v.cpu)}/${Math.round(v.wait)}`])),
    sched, mainTid: pid, clientPid: process.pid, serverTids: [...s1.keys()],
    perfFile: args.get('keepperf') === '1' ? perfFile : undefined,
  };
  results.push(r);
  console.log(JSON.stringify({ ...r, top: undefined }));
}
for (let i = 0; i < reps; i++) {
  for (const s of situations) {
    if (s === 'seed') await measure('seed', () => put(`seeded${i}`, seeding));
    if (s === 'migrate') await measure('migrate', async () => {
      const planned = await fetch(`${url}/v1/database/bulk${i}/pre_publish`, { method: 'POST', headers: auth, body: tagged });
      const plan = JSON.parse(await ok(planned, 'pre_publish')) as { AutoMigrate?: { token: string } };
      await put(`bulk${i}`, tagged, `?policy=BreakClients&token=${plan.AutoMigrate!.token}`);
    });
    if (s === 'quiet') await measure('quiet', () => new Promise((r) => setTimeout(r, 1500)));
  }
}
writeFileSync(out, JSON.stringify({ results, hookLog: hook && existsSync(logPath) ? logPath : undefined }, null, 1));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });
rmSync(path.dirname(cfg), { recursive: true, force: true });
console.log(`out ${out}`);
