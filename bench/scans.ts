// bench/scans.ts — what an unindexed full scan costs per row, in process: the CPU of one-off SQL queries whose WHERE
// no index serves, over a table of test/fixtures/modules/bulk-rows (u32 primary key, a ~22-byte string, u64).
//
// Owns: nothing but this measurement. It publishes bulk-rows into an in-memory Database, loads `rows` rows through
// its `load` reducer (100,000 per call), then runs each query `runs` times as the owner (Database.sql: the path of
// POST /sql) and prints CPU-ns per table row, the median over the runs. The shapes: an equality on the u64 that no
// row or one row passes, a range that almost every row passes, an equality and a range on the string, and an OR of two columns.
// May call: host/database.ts, test/host/bundle.ts.
//
// Run: npm run bench:scans [-- rows, default 2000000] [runs, default 5]

import { Database } from '../src/host/database.js';
import { fixtureBundle } from '../test/host/bundle.js';

const rows = Number(process.argv[2] ?? 2_000_000);
const runs = Number(process.argv[3] ?? 5);
const loadRowsPerCall = 100_000;
const owner = { identity: 0x1234n, connectionId: 0n, jwtPayload: undefined };
const queries = [
  'SELECT * FROM row WHERE n = 15',
  "SELECT * FROM row WHERE label = 'row-15-of-a-bulk-load'",
  'SELECT COUNT(*) AS c FROM row WHERE n > 5',
  'SELECT COUNT(*) AS c FROM row WHERE n = 7 OR id = 3',
  "SELECT COUNT(*) AS c FROM row WHERE label > 'row-5'",
];

async function main(): Promise<void> {
  const db = await Database.create({ identity: 0xc200n, ownerIdentity: owner.identity }, await fixtureBundle('bulk-rows'));
  try {
    for (let first = 0; first < rows; first += loadRowsPerCall) {
      const r = await db.callReducerJson('load', [first, Math.min(loadRowsPerCall, rows - first)], owner);
      if (r.status !== 'committed') throw new Error(`load failed: ${JSON.stringify(r)}`);
    }
    console.log(`bench:scans: ${rows.toLocaleString('en-US')} bulk-rows rows, ${runs} runs per query, CPU-ns per table row (median)`);
    for (const query of queries) {
      const perRowNs: number[] = [];
      for (let run = 0; run < runs; run++) {
        const before = process.cpuUsage();
        await db.sql(query, owner, { isOwner: true });
        const cpu = process.cpuUsage(before);
        perRowNs.push(((cpu.user + cpu.system) * 1000) / rows);
      }
      perRowNs.sort((a, b) => a - b);
      console.log(`  ${perRowNs[Math.floor(perRowNs.length / 2)]!.toFixed(0).padStart(5)}  ${query}`);
    }
  } finally {
    await db.close();
  }
}

await main();
