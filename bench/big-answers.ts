// bench/big-answers.ts — issue 12 item 2: what one big query answer costs everyone else. A real server (bin/spacetime.js
// → dist/, worker mode unless SPACETIME_DATABASE_THREADS says otherwise) holds `rows` rows of
// test/fixtures/modules/bulk-rows; while one client asks for all of them (POST /sql; a WebSocket Subscribe and
// OneOffQuery, uncompressed and brotli, from a client process of its own; the same over the legacy v1.json protocol;
// Debian's `psql` over the PostgreSQL wire protocol), /v1/ping is probed every 2 ms.
//
// Owns: nothing but this measurement. Prints per situation: how long the answer took, ping p50 / p99 / max, and the
// CPU the server's main thread spent meanwhile (/proc/<pid>/task/<pid>/schedstat).
// May call: test/harness.ts (server, fixture build), bench/big-answers/client.ts (as a child process).
//
// Run: npm run bench:answers   (or: node --import tsx bench/big-answers.ts [rows, default 400000])

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { buildFixture, cleanupTempDirs, freePort, serverMainThreadCpuMs, startTestServer, type TestServer } from '../test/harness.js';

const rows = Number(process.argv[2] ?? 400_000);
const loadBatchRows = 100_000;
const probeGapMs = 2;
const settleMs = 300;
const run = promisify(execFile);

async function situation(server: TestServer, what: string, work: () => Promise<string>): Promise<string> {
  const latencies: number[] = [];
  let stop = false;
  const pinger = (async () => {
    while (!stop) {
      const t = performance.now();
      await fetch(`${server.url}/v1/ping`);
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, probeGapMs));
    }
  })();
  await new Promise((r) => setTimeout(r, settleMs));
  const cpuBefore = serverMainThreadCpuMs(server);
  const started = performance.now();
  const answer = await work();
  const tookMs = performance.now() - started;
  const cpuMs = serverMainThreadCpuMs(server) - cpuBefore;
  await new Promise((r) => setTimeout(r, settleMs));
  stop = true;
  await pinger;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))].toFixed(1);
  return `| ${what} | ${answer} | ${Math.round(tookMs)} | ${at(0.5)} / ${at(0.99)} / ${latencies[latencies.length - 1].toFixed(1)} | ${Math.round(cpuMs)} |`;
}

async function main(): Promise<void> {
  const pgPort = await freePort();
  const server = await startTestServer({ args: ['--pg-port', String(pgPort)] });
  try {
    const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };
    const published = await fetch(`${server.url}/v1/database/big`, { method: 'PUT', headers: auth, body: (await buildFixture('bulk-rows')).code });
    if (!published.ok) throw new Error(await published.text());
    for (let first = 0; first < rows; first += loadBatchRows) {
      const r = await fetch(`${server.url}/v1/database/big/call/load`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify([first, Math.min(loadBatchRows, rows - first)]),
      });
      if (!r.ok) throw new Error(await r.text());
    }
    await new Promise((r) => setTimeout(r, 2500)); // the worker's idle collection after the load
    const ws = `${server.url.replace('http', 'ws')}/v1/database/big/subscribe`;
    const client = async (ask: string, compression: string) =>
      (await run(process.execPath, ['--import', 'tsx', new URL('./big-answers/client.ts', import.meta.url).pathname, ws, ask, compression])).stdout.trim();
    const lines = [
      `big answers: ${rows.toLocaleString('en-US')} rows of bulk-rows, database threads ${process.env.SPACETIME_DATABASE_THREADS ?? 'worker (default)'}`,
      '| situation | answer | took ms | /v1/ping p50 / p99 / max ms | server main thread CPU ms |',
      '| --- | --- | ---: | ---: | ---: |',
      await situation(server, 'quiet', async () => { await new Promise((r) => setTimeout(r, 1000)); return '—'; }),
      await situation(server, 'POST /sql SELECT *', async () => {
        const r = await fetch(`${server.url}/v1/database/big/sql`, { method: 'POST', headers: auth, body: 'SELECT * FROM row' });
        return `${r.status}, ${((await r.arrayBuffer()).byteLength / 1e6).toFixed(1)} MB`;
      }),
      await situation(server, 'WebSocket Subscribe, uncompressed', () => client('subscribe', 'None')),
      await situation(server, 'WebSocket Subscribe, brotli', () => client('subscribe', 'Brotli')),
      await situation(server, 'WebSocket OneOffQuery, uncompressed', () => client('oneOff', 'None')),
      await situation(server, 'v1.json SubscribeSingle', () => client('subscribe', 'v1.json')),
      await situation(server, 'v1.json OneOffQuery', () => client('oneOff', 'v1.json')),
      await situation(server, 'psql SELECT *', async () => {
        const out = await run('psql', [`host=127.0.0.1 port=${pgPort} user=postgres dbname=big`, '-X', '-A', '-t', '-c', 'SELECT * FROM row'],
          { env: { ...process.env, PGPASSWORD: token }, maxBuffer: 1 << 30 });
        return `${(out.stdout.length / 1e6).toFixed(1)} MB of text`;
      }),
    ];
    console.log(lines.join('\n'));
  } finally {
    await server.stop();
    cleanupTempDirs();
  }
}

await main();
