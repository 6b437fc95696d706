// bench/many-databases.ts — what each database costs a server: publishes test/fixtures/modules/basic `count` times to
// one in-process server (worker mode unless MODE=main; SPACETIME_WORKER_THREADS_MAX bounds the threads) and prints
// the process's RSS every 10 databases and 3 s after the last, and the publishes' time.
// Owns: nothing but this measurement. May call: dist/server/main.js (startServer; `npm run build` first, the npm script
// does), test/harness.ts (fixture build).
//
// Run: npm run bench:databases   (or: [MODE=main] node --import tsx bench/many-databases.ts [count, default 40])
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The built server (dist/): from source every worker thread would also load the TypeScript loader (~50 MiB more each).
import { startServer } from '../dist/server/main.js';
import { buildFixture } from '../test/harness.js';

const count = Number(process.argv[2] ?? 40);
const settleMs = 3000;
const rssMiB = (): number => Math.round(process.memoryUsage().rss / 1048576);

const dataDir = await mkdtemp(join(tmpdir(), 'many-databases-'));
const server = await startServer({
  dataDir, listenAddr: '127.0.0.1:0', log: () => {}, databaseThreads: process.env.MODE === 'main' ? 'main' : 'worker',
});
try {
  const program = (await buildFixture('basic')).code;
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const startRss = rssMiB();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const r = await fetch(`${server.url}/v1/database/db-${i}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: program });
    if (!r.ok) throw new Error(await r.text());
    if ((i + 1) % 10 === 0) console.log(`${i + 1} databases: RSS ${rssMiB()} MiB after ${Math.round(performance.now() - started)} ms`);
  }
  const tookS = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, settleMs));
  const settled = rssMiB();
  console.log(`mode ${process.env.MODE === 'main' ? 'main' : 'worker'} (SPACETIME_WORKER_THREADS_MAX ${process.env.SPACETIME_WORKER_THREADS_MAX ?? 'default'}): ` +
    `RSS ${startRss} -> ${settled} MiB settled, ${((settled - startRss) / count).toFixed(1)} MiB per database, ${tookS.toFixed(1)} s for ${count} publishes`);
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
