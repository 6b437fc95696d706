// bench/join-filters.ts — what a commit costs the subscription manager when many clients each subscribe to a join with
// their own constant (a chat's "messages of my rooms": `SELECT m.* FROM message m JOIN membership u ON m.room = u.room
// WHERE u.member = '<its own>'`).
//
// Owns: nothing but this measurement. In process: a real Datastore (test/subscription/fixture.ts' schema: membership
// and message, `room` indexed in both) and the real SubscriptionManager with the SQL compiler; N clients, one
// membership each, ten to a room, one join query each; then commits of one inserted message (the table without the
// constant), each into the next room, so ten clients' results change. Prints CPU-µs per commit (the datastore write
// included), for each N, three rounds (the first warms up).
// May call: subscription/manager.ts, test/subscription/fixture.ts.
//
// Run: npm run bench:join-filters   (or: node --import tsx bench/join-filters.ts [N,…, default 100,1000,10000])

import { compileWithSql, SubscriptionManager } from '../src/subscription/manager.js';
import { newDatastore, RecordingSink, row, write } from '../test/subscription/fixture.js';

const counts = (process.argv[2] ?? '100,1000,10000').split(',').map(Number);
const membersPerRoom = 10;
const rounds = 3;
const commitsPerRoundMax = 2000;
const commitsPerRoundMin = 10;
const roundCpuMicrosMax = 2_000_000;

for (const n of counts) {
  const ds = newDatastore();
  const manager = new SubscriptionManager({ view: () => ds, compile: compileWithSql });
  const rooms = Math.ceil(n / membersPerRoom);
  write(ds, (tx) => { for (let i = 0; i < n; i++) tx.insert(4100, row('membership', [i, i % rooms, `member-${i}`])); });
  for (let i = 0; i < n; i++) {
    const handle = manager.addClient({ identity: BigInt(i + 1), connectionId: BigInt(i + 1), isOwner: false }, new RecordingSink());
    const query = `SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE u.member = 'member-${i}'`;
    const answer = manager.subscribe(handle, 1, 1, [query]);
    if (answer.tag !== 'SubscribeApplied') throw new Error(JSON.stringify(answer));
  }
  const perRound: string[] = [];
  let id = 0;
  for (let round = 0; round < rounds; round++) {
    // Up to `commitsPerRoundMax` commits, fewer when they cost more than `roundCpuMicrosMax` (before the change, every
    // client's query ran on every commit: ~0.1 s each at 10,000 clients).
    const started = process.cpuUsage();
    let commits = 0;
    let used = 0;
    while (commits < commitsPerRoundMax && (commits < commitsPerRoundMin || used < roundCpuMicrosMax)) {
      manager.handleCommit(write(ds, (tx) => { tx.insert(4101, row('message', [id, id % rooms, 'hello, room'])); }), undefined);
      id++;
      commits++;
      const u = process.cpuUsage(started);
      used = u.user + u.system;
    }
    perRound.push((used / commits).toFixed(1));
  }
  console.log(`${n.toLocaleString('en-US')} clients, a join each (${membersPerRoom} to a room): ${perRound.join(' / ')} CPU-µs per one-row commit`);
}
