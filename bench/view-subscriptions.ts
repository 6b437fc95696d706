// bench/view-subscriptions.ts — what a commit costs when many clients subscribe to a sender view: `SELECT * FROM
// my_items` of test/fixtures/modules/view-b, whose view returns the caller's own items (`ctx.db.item.owner.filter(
// ctx.sender)`, an index point read). Every client's view result is its own.
//
// Owns: nothing but this measurement. In process: a real Database running view-b, `rows` items spread over `clients`
// owners, one subscription per client through the database's real SubscriptionManager, then `commits` calls of addItem
// by rotating owners (each a commit every view subscription is asked about). Prints CPU-ms per commit, three rounds.
// May call: host/database.ts, subscription/manager.ts, test/features-b/helpers.ts (the fixture and its callers).
//
// Run: npm run bench:views   (or: node --import tsx bench/view-subscriptions.ts [clients, default 200] [rows, default
//      10000] [commits per round, default 20])

import { Database } from '../src/host/database.js';
import { compileWithSql, subscriptionsFor } from '../src/subscription/manager.js';
import { bundleFixture, callerOf, ownerIdentity } from '../test/features-b/helpers.js';

const clients = Number(process.argv[2] ?? 200);
const rows = Number(process.argv[3] ?? 10_000);
const commits = Number(process.argv[4] ?? 20);
const owner = (i: number) => callerOf(BigInt(1000 + (i % clients)));

const db = await Database.create({ identity: 0xc200abcdn, ownerIdentity }, await bundleFixture());
try {
  for (let i = 0; i < rows; i++) await db.callReducerJson('addItem', [`item ${i}`], owner(i));
  const manager = subscriptionsFor(db, compileWithSql);
  for (let c = 0; c < clients; c++) {
    const handle = manager.addClient({ identity: BigInt(1000 + c), connectionId: BigInt(5000 + c), isOwner: false },
      { transaction: () => {}, querySetFailed: () => {} });
    const answer = manager.subscribe(handle, 1, 1, ['SELECT * FROM my_items']);
    if (answer.tag !== 'SubscribeApplied') throw new Error(JSON.stringify(answer));
  }
  for (let round = 0; round < 3; round++) {
    const started = process.cpuUsage();
    for (let k = 0; k < commits; k++) await db.callReducerJson('addItem', [`new ${round}.${k}`], owner(k));
    const used = process.cpuUsage(started);
    console.log(`${clients} my_items view subscribers, ${rows.toLocaleString('en-US')} items: ` +
      `${((used.user + used.system) / commits / 1000).toFixed(2)} CPU-ms per commit`);
  }
} finally {
  await db.close();
}
