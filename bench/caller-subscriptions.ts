// bench/caller-subscriptions.ts — what a commit costs when many clients each hold a subscription whose result depends
// on who they are (host/views.ts CallerPlan), over test/fixtures/modules/view-b:
//   rls   `SELECT * FROM secret` under the row-level security filter `SELECT * FROM secret WHERE owner = :sender`;
//   view  `SELECT * FROM my_items`, a sender view returning the caller's items (`ctx.db.item.owner.filter(ctx.sender)`,
//         an index point read).
//
// Owns: nothing but this measurement. In process: a real Database running view-b, `rows` rows (secrets or items) spread
// over `clients` owners, one subscription per client through the database's real SubscriptionManager, then `commits`
// inserts by rotating owners (each a commit every subscription is asked about). Prints CPU-ms per commit, three rounds.
// May call: host/database.ts, subscription/manager.ts, test/features-b/helpers.ts (the fixture and its callers).
//
// Run: npm run bench:rls | npm run bench:views   (or: node --import tsx bench/caller-subscriptions.ts rls|view
//      [clients, default 200] [rows, default 10000] [commits per round, default 20])

import { Database } from '../src/host/database.js';
import { compileWithSql, subscriptionsFor } from '../src/subscription/manager.js';
import { bundleFixture, callerOf, ownerIdentity } from '../test/features-b/helpers.js';

const kinds = {
  rls: { query: 'SELECT * FROM secret', insert: 'addSecret', what: 'RLS subscribers' },
  view: { query: 'SELECT * FROM my_items', insert: 'addItem', what: 'my_items view subscribers' },
} as const;
const kind = kinds[process.argv[2] as keyof typeof kinds];
if (kind === undefined) throw new Error(`usage: caller-subscriptions.ts rls|view [clients] [rows] [commits], got ${process.argv[2]}`);
const clients = Number(process.argv[3] ?? 200);
const rows = Number(process.argv[4] ?? 10_000);
const commits = Number(process.argv[5] ?? 20);
const owner = (i: number) => callerOf(BigInt(1000 + (i % clients)));

const db = await Database.create({ identity: 0xc200abcdn, ownerIdentity }, await bundleFixture());
try {
  for (let i = 0; i < rows; i++) await db.callReducerJson(kind.insert, [`row ${i}`], owner(i));
  const manager = subscriptionsFor(db, compileWithSql);
  for (let c = 0; c < clients; c++) {
    const handle = manager.addClient({ identity: BigInt(1000 + c), connectionId: BigInt(5000 + c), isOwner: false },
      { transaction: () => {}, querySetFailed: () => {} });
    const answer = manager.subscribe(handle, 1, 1, [kind.query]);
    if (answer.tag !== 'SubscribeApplied') throw new Error(JSON.stringify(answer));
  }
  for (let round = 0; round < 3; round++) {
    const started = process.cpuUsage();
    for (let k = 0; k < commits; k++) await db.callReducerJson(kind.insert, [`new ${round}.${k}`], owner(k));
    const used = process.cpuUsage(started);
    console.log(`${clients} ${kind.what}, ${rows.toLocaleString('en-US')} rows: ` +
      `${((used.user + used.system) / commits / 1000).toFixed(2)} CPU-ms per commit`);
  }
} finally {
  await db.close();
}
