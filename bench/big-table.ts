// bench/big-table.ts — one database with many rows through a real server (issue 12 item 5: "a database can hold tens
// of millions of rows"): how fast they load, what the server holds, how long a restart after kill -9 takes until
// /v1/ping answers and until the big database does, and what everyday queries of the big table cost.
//
// Owns: nothing but this measurement. Starts `spacetime start` (bin/spacetime.js → dist/: `npm run build` first, the
// npm script does), publishes test/fixtures/modules/bulk-rows (u32 primary key, string, u64) and loads `rows` rows
// through its `load` reducer (test/harness.ts publishBulkRows, 100,000 per call, the publish included in the load's
// time); then kill -9, restart, and the queries. Prints one table: each
// step's wall time, the server's RSS after it and its peak so far (VmHWM).
// May call: test/harness.ts (server, fixture build).
//
// Run: npm run bench:big-table   (or: node --import tsx bench/big-table.ts [rows, default 10000000])

import { readFileSync } from 'node:fs';
import { buildFixture, cleanupTempDirs, publishBulkRows, startTestServer, type TestServer } from '../test/harness.js';

const rows = Number(process.argv[2] ?? 10_000_000);
const batchRows = 100_000; // publishBulkRows' batch

function memoryMiB(server: TestServer): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${server.pid()}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return { rss: Math.round(kib('VmRSS') / 1024), peak: Math.round(kib('VmHWM') / 1024) };
}

const server = await startTestServer();
const table: string[] = ['| step | wall | server RSS MiB | peak MiB | answer |', '| --- | ---: | ---: | ---: | --- |'];
function row(step: string, ms: number, answer = ''): void {
  const m = memoryMiB(server);
  table.push(`| ${step} | ${ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`} | ${m.rss} | ${m.peak} | ${answer} |`);
}
try {
  await buildFixture('bulk-rows'); // built before the clock starts
  let started = performance.now();
  const auth = { authorization: `Bearer ${await publishBulkRows(server, 'big', rows)}` };
  const loadMs = performance.now() - started;
  row(`load ${rows.toLocaleString('en-US')} rows, ${batchRows.toLocaleString('en-US')} per call`, loadMs,
    `${Math.round(rows / (loadMs / 1000)).toLocaleString('en-US')} rows/s`);

  await server.kill('SIGKILL');
  started = performance.now();
  await server.restart(); // returns once /v1/ping answers
  row('restart after kill -9, until /v1/ping answers', performance.now() - started);
  // Databases open in the background once the server listens (server/databases.ts): this request waits for the open.
  const opened = await fetch(`${server.url}/v1/database/big/sql`, { method: 'POST', headers: auth, body: 'SELECT COUNT(*) AS n FROM row' });
  await opened.text();
  row('restart after kill -9, until the big database answers', performance.now() - started, String(opened.status));

  const queries = [
    'SELECT COUNT(*) AS n FROM row',
    'SELECT * FROM row LIMIT 3',
    `SELECT * FROM row WHERE id = ${Math.floor(rows / 2)}`,
    'SELECT * FROM row WHERE n = 15',
    'SELECT COUNT(*) AS n FROM row WHERE n > 5',
  ];
  for (const query of queries) {
    started = performance.now();
    const r = await fetch(`${server.url}/v1/database/big/sql`, { method: 'POST', headers: auth, body: query });
    const text = await r.text();
    const ms = performance.now() - started;
    const answer = r.status === 200 ? `${(JSON.parse(text) as { rows: unknown[] }[])[0]!.rows.length} rows` : `${r.status}: ${text.slice(0, 80)}`;
    row(`\`${query}\``, ms, answer);
  }
  console.log(`bench:big-table, ${new Date().toISOString()}, ${rows.toLocaleString('en-US')} rows of bulk-rows`);
  console.log(table.join('\n'));
} finally {
  await server.stop();
  cleanupTempDirs();
}
