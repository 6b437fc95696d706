// bench/subscription-filters.ts — what a commit costs the subscription manager when many clients each subscribe to
// their own filter on one table (`SELECT * FROM person WHERE age = <its own>`: a game's "my zone", a chat's "my room").
//
// Owns: nothing but this measurement. In process: a real Datastore (test/subscription/fixture.ts' schema) and the real
// SubscriptionManager with the SQL compiler; N clients, one distinct equality filter each; then commits of one
// inserted row, each matching one client's filter, handed to the manager as the host does. Prints CPU-µs per commit
// (the datastore write included), for each N, three rounds (the first warms up).
// May call: subscription/manager.ts, test/subscription/fixture.ts.
//
// Run: npm run bench:filters   (or: node --import tsx bench/subscription-filters.ts [N,…, default 100,1000,10000])

import { compileWithSql, SubscriptionManager } from '../src/subscription/manager.js';
import { newDatastore, RecordingSink, row, write } from '../test/subscription/fixture.js';

const counts = (process.argv[2] ?? '100,1000,10000').split(',').map(Number);
const commitsPerRound = 2000;
const rounds = 3;

for (const n of counts) {
  const ds = newDatastore();
  const manager = new SubscriptionManager({ view: () => ds, compile: compileWithSql });
  for (let i = 0; i < n; i++) {
    const handle = manager.addClient({ identity: BigInt(i + 1), connectionId: BigInt(i + 1), isOwner: false }, new RecordingSink());
    const answer = manager.subscribe(handle, 1, 1, [`SELECT * FROM person WHERE age = ${i}`]);
    if (answer.tag !== 'SubscribeApplied') throw new Error(JSON.stringify(answer));
  }
  const perRound: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = process.cpuUsage();
    for (let k = 0; k < commitsPerRound; k++) {
      const id = round * commitsPerRound + k;
      manager.handleCommit(write(ds, (tx) => { tx.insert(4096, row('person', [id, 'someone-with-a-name', k % n])); }), undefined);
    }
    const used = process.cpuUsage(started);
    perRound.push(((used.user + used.system) / commitsPerRound).toFixed(1));
  }
  console.log(`${n.toLocaleString('en-US')} clients, one filter each: ${perRound.join(' / ')} CPU-µs per one-row commit`);
}
