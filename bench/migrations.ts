// bench/migrations.ts — `npm run bench:migrations`: module hot swap with many rows present.
//
// Measures, on an in-memory Database running test/fixtures/modules/migrate-v1 with `rowsCount` person rows:
//   * the time of `Database.update` to a module with the same schema and new code, to a compatible module (new
//     table, new btree index on person.name built over the rows, enum variant) and to a module that adds two
//     defaulted columns to person (every row rewritten);
//   * the longest pause in reducer processing while the update runs: a client loop keeps calling `addNote` and the
//     largest gap between two completed calls is reported (the target is < 200 ms without a row rewrite).
// May call: host/database, sats/bsatn, test/harness (buildFixture).

import { Database, type Caller } from '../src/host/database.js';
import { BsatnWriter } from '../src/sats/bsatn.js';
import { buildFixture } from '../test/harness.js';
import { exitWithUsageOnHelp } from './usage.js';

exitWithUsageOnHelp(import.meta.url);

const rowsCount = Number(process.env.ROWS ?? 1_000_000);
const pauseTargetMs = 200;
const owner: Caller = { identity: 0xc200_beefn, connectionId: 0n, jwtPayload: undefined };

async function seeded(program: string): Promise<Database> {
  const db = await Database.create({ identity: 0xc200_0001n, ownerIdentity: owner.identity }, program);
  const person = db.schema.tables.find((t) => t.name === 'person')!;
  const tx = db.datastore.beginMutTx();
  const w = new BsatnWriter(64);
  for (let i = 1; i <= rowsCount; i++) {
    w.reset();
    w.writeU32(i);
    w.writeString(`person-${i}`);
    w.writeU8(0); // Kind::Student
    tx.insert(person.tableId, w.finish());
  }
  tx.commit();
  return db;
}

/** Runs `update` while a loop keeps calling a reducer; returns the update's duration and the longest gap. */
async function measure(db: Database, update: () => Promise<unknown>): Promise<{ updateMs: number; maxPauseMs: number; calls: number }> {
  let running = true;
  let last = performance.now();
  let maxPauseMs = 0;
  let calls = 0;
  const loop = (async () => {
    while (running) {
      const r = await db.callReducerJson('addNote', [`n${calls}`], owner);
      if (r.status !== 'committed') throw new Error(`addNote failed: ${JSON.stringify(r.status)}`);
      calls++;
      const now = performance.now();
      maxPauseMs = Math.max(maxPauseMs, now - last);
      last = now;
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  await new Promise((r) => setTimeout(r, 200)); // steady state first
  const t0 = performance.now();
  await update();
  const updateMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 200));
  running = false;
  await loop;
  return { updateMs, maxPauseMs, calls };
}

async function main(): Promise<void> {
  const v1 = (await buildFixture('migrate-v1')).code;
  const compatible = (await buildFixture('migrate-compatible')).code;
  const addColumn = (await buildFixture('migrate-add-column')).code;
  console.log(`module hot swap with ${rowsCount.toLocaleString('en-US')} rows in person (Node ${process.version})`);
  {
    // Baseline: the same loop with no update, so GC pauses of a 1M-row heap are not blamed on the swap.
    const db = await seeded(v1);
    const r = await measure(db, () => new Promise((resolve) => setTimeout(resolve, 1000)));
    console.log(`${'no update (baseline, 1 s)'.padEnd(48)} update ${'-'.padStart(6)}      longest reducer pause ` +
      `${r.maxPauseMs.toFixed(0).padStart(6)} ms   (${r.calls} calls during the run)`);
    await db.close();
  }
  for (const [label, next, breakClients] of [
    ['same schema, new code (rows taken over)', `${v1}\n// reducers changed\n`, false],
    ['compatible (rows taken over, one new index)', compatible, false],
    ['add 2 defaulted columns (every row rewritten)', addColumn, true],
  ] as const) {
    const db = await seeded(v1);
    const r = await measure(db, () => db.update(next, { breakClients }));
    const rows = (await db.read((v) => v.rowCount(db.schema.tables.find((t) => t.name === 'person')!.tableId)));
    if (rows !== rowsCount) throw new Error(`expected ${rowsCount} rows after the update, found ${rows}`);
    console.log(`${label.padEnd(48)} update ${r.updateMs.toFixed(0).padStart(6)} ms   longest reducer pause ` +
      `${r.maxPauseMs.toFixed(0).padStart(6)} ms   (${r.calls} calls during the run)`);
    await db.close();
  }
  console.log(`target: longest pause < ${pauseTargetMs} ms without a row rewrite`);
}

await main();
