// bench/rls-join.ts — what a commit costs when many clients subscribe to a table whose row-level security filter
// joins another table: `SELECT * FROM message` under `message JOIN owned ON message.room = owned.id WHERE
// owned.owner = :sender` (each client sees the messages of the rooms it owns; the shape of upstream's RLS examples).
//
// Owns: nothing but this measurement. In process: a real Datastore with test/subscription/fixture.ts's schema,
// `rooms` rooms (owned rows) spread over the clients, `messages` messages spread over the rooms, the real ViewHost and
// SubscriptionManager, one subscription per client; then `commits` one-message commits. Prints CPU-ms per commit for
// each client count, three rounds.
// May call: host/views.ts, sql/subscription-plan.ts, subscription/manager.ts, test/subscription/fixture.ts.
//
// Run: npm run bench:rls-join   (or: node --import tsx bench/rls-join.ts [clients, default 100,1000] [messages,
//      default 10000] [commits per round, default 20])

import { ViewHost } from '../src/host/views.js';
import { compileRlsFilter } from '../src/sql/subscription-plan.js';
import { compileWithSql, SubscriptionManager } from '../src/subscription/manager.js';
import { newDatastore, RecordingSink, row, schema, write } from '../test/subscription/fixture.js';

const clientCounts = (process.argv[2] ?? '100,1000').split(',').map(Number);
const messages = Number(process.argv[3] ?? 10_000);
const commits = Number(process.argv[4] ?? 20);
const message = 4101, owned = 4099;
const roomsPerClient = 2;
const senderOf = (i: number) => 0xc2000000n + BigInt(i);

for (const clients of clientCounts) {
  const rooms = clients * roomsPerClient;
  const ds = newDatastore();
  write(ds, (tx) => {
    for (let r = 0; r < rooms; r++) tx.insert(owned, row('owned', [r, [senderOf(r % clients)]]));
    for (let m = 0; m < messages; m++) tx.insert(message, row('message', [m, m % rooms, `message ${m}`]));
  });
  const filter = compileRlsFilter('SELECT message.* FROM message JOIN owned ON message.room = owned.id WHERE owned.owner = :sender', schema);
  const host = new ViewHost({ views: [], rls: new Map([[message, [filter]]]), base: ds, call: () => { throw new Error('no views'); }, log: () => {} });
  const mgr = new SubscriptionManager({ view: () => ds, compile: host.wrapCompile(compileWithSql) });
  for (let c = 0; c < clients; c++) {
    const handle = mgr.addClient({ identity: senderOf(c), connectionId: BigInt(c + 1), isOwner: false }, new RecordingSink());
    const applied = mgr.subscribe(handle, 1, 1, ['SELECT * FROM message']);
    if (applied.tag !== 'SubscribeApplied') throw new Error(JSON.stringify(applied));
  }
  let id = messages;
  const perCommitMs: string[] = [];
  for (let round = 0; round < 3; round++) {
    const before = process.cpuUsage();
    for (let i = 0; i < commits; i++, id++) {
      const tx = write(ds, (tx) => { tx.insert(message, row('message', [id, id % rooms, `message ${id}`])); });
      mgr.handleCommit(tx, undefined);
    }
    const cpu = process.cpuUsage(before);
    perCommitMs.push(((cpu.user + cpu.system) / 1000 / commits).toFixed(2));
  }
  console.log(`bench:rls-join: ${clients} clients, ${rooms} rooms, ${messages} messages: ${perCommitMs.join(' / ')} CPU-ms per commit`);
}
