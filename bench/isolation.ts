// bench/isolation.ts — issue 12 items 1 and 6: what a runaway reducer in one database costs everyone else, with the
// databases on the server's main thread (`--database-threads main`) and each in its own worker thread (`worker`, the
// default), side by side.
//
// Owns: nothing but this measurement. For each mode it starts a real server (bin/spacetime.js → dist/, so run
// `npm run build` first; the npm script does), publishes test/fixtures/modules/cpu-hog as `busy` and `calm`, and
// probes /v1/ping and `calm`'s `hit` reducer (HTTP, one request after another, 10 ms apart) for `quietMs` with nothing
// else running, then while `busy` runs its `spin` reducer (a pure loop stopped by the reducer limit, `limitMs`)
// `runaways` times in a row. It prints one table: per mode and situation, p50 / p99 / max latency and the number of
// answers in the window.
// May call: test/harness.ts (server and CLI helpers).
//
// Run: npm run bench:isolation   (or: node --import tsx bench/isolation.ts [limitMs, default 2000] [runaways, default 2])

import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../test/harness.js';

const limitMs = Number(process.argv[2] ?? 2000);
const runaways = Number(process.argv[3] ?? 2);
const quietMs = 2000;
const probeGapMs = 10;

interface Row { mode: string; situation: string; ping: number[]; other: number[] }

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function call(server: TestServer, db: string, reducer: string): Promise<number> {
  const res = await fetch(`${server.url}/v1/database/${db}/call/${reducer}`, {
    method: 'POST', body: '[]', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(60_000),
  });
  await res.text();
  return res.status;
}

/** Latencies (ms) of `fn`, one after another, until `until` resolves. */
async function probe(fn: () => Promise<unknown>, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.then(() => { done = true; });
  const out: number[] = [];
  while (!done) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, probeGapMs));
  }
  return out;
}

async function measure(server: TestServer, until: Promise<unknown>): Promise<{ ping: number[]; other: number[] }> {
  const [ping, other] = await Promise.all([
    probe(() => fetch(`${server.url}/v1/ping`).then((r) => r.text()), until),
    probe(() => call(server, 'calm', 'hit'), until),
  ]);
  return { ping, other };
}

async function runMode(mode: 'main' | 'worker'): Promise<Row[]> {
  process.env.SPACETIME_DATABASE_THREADS = mode;
  process.env.SPACETIME_REDUCER_TIMEOUT_MS = String(limitMs);
  const server = await startTestServer();
  const configPath = tempConfigPath();
  try {
    for (const name of ['busy', 'calm']) {
      const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/cpu-hog', '-y', name], { configPath });
      if (pub.code !== 0) throw new Error(`publish ${name}: ${pub.stderr}`);
    }
    await call(server, 'calm', 'hit'); // warm
    const quiet = await measure(server, new Promise((resolve) => setTimeout(resolve, quietMs)));
    const spins = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (let i = 0; i < runaways; i++) {
        const status = await call(server, 'busy', 'spin');
        if (status !== 530) throw new Error(`spin answered ${status}, expected 530 (stopped at its limit)`);
      }
    })();
    const busy = await measure(server, spins);
    await spins;
    return [
      { mode, situation: 'quiet', ...quiet },
      { mode, situation: `${runaways} runaways of ${limitMs} ms in another database`, ...busy },
    ];
  } finally {
    await server.stop();
  }
}

function ms(x: number): string {
  return Number.isNaN(x) ? '—' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const mode of ['main', 'worker'] as const) rows.push(...await runMode(mode));
  cleanupTempDirs();
  const lines = [
    '| mode | situation | /v1/ping p50 / p99 / max ms (answers) | other database call p50 / p99 / max ms (answers) |',
    '| --- | --- | ---: | ---: |',
  ];
  for (const r of rows) {
    const cell = (xs: number[]) => `${ms(percentile(xs, 50))} / ${ms(percentile(xs, 99))} / ${ms(Math.max(...xs))} (${xs.length})`;
    lines.push(`| ${r.mode} | ${r.situation} | ${cell(r.ping)} | ${cell(r.other)} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
