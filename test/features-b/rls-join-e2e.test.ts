// Row-level security whose filter joins another table, end to end: a real server, the real CLI (`spacetime
// subscribe` as a non-owner), and test/fixtures/modules/rls-join (messages visible to the members of their room).
// What a subscriber sees changes when it joins or leaves a room (a change to the other table), and when a message is
// posted to a room it is in; nothing of other rooms reaches it. host/views.ts CallerPlan `joinFilters`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupTempDirs, startTestServer, tempConfigPath } from '../harness.js';
import { smoke } from '../smoke/helpers.js';

after(cleanupTempDirs);

test('RLS through a join: joining, posting and leaving move exactly the rows a member sees', async () => {
  const server = await startTestServer();
  try {
    const owner = smoke(server, tempConfigPath());
    await owner.newIdentity();
    await owner.publish('rls-join', 'rls-join');
    const [a, b] = [smoke(server, tempConfigPath()), smoke(server, tempConfigPath())];
    await a.newIdentity();
    await b.newIdentity();
    assert.equal((await b.call('rls-join', 'post', '1', '"before A joined"')).code, 0);
    assert.equal((await b.call('rls-join', 'post', '2', '"room two"')).code, 0);

    const sub = await a.subscribeBackground('rls-join', ['SELECT * FROM message'], { n: 3 });
    assert.equal((await a.call('rls-join', 'join', '1')).code, 0);            // 1: the room's message appears
    assert.equal((await b.call('rls-join', 'post', '2', '"still room two"')).code, 0); // nothing for A
    assert.equal((await b.call('rls-join', 'post', '1', '"after A joined"')).code, 0); // 2: it appears
    assert.equal((await a.call('rls-join', 'leave', '1')).code, 0);           // 3: both go
    const updates = JSON.stringify(await sub.collect());
    const texts = [...updates.matchAll(/"text":"([^"]*)"/g)].map((m) => m[1]);
    assert.deepEqual(texts, ['before A joined', 'after A joined', 'before A joined', 'after A joined'], updates);
    assert.match(updates, /"deletes":\[\{[^\]]*"before A joined"/, updates);

    // The owner sees every message; A (a member of nothing now) sees none through SQL either.
    const all = await owner.sql('rls-join', 'SELECT text FROM message');
    assert.equal((all.stdout.match(/room two/g) ?? []).length, 2, all.stdout);
    const mine = await a.sql('rls-join', 'SELECT text FROM message');
    assert.doesNotMatch(mine.stdout, /room|joined/, mine.stdout);
  } finally {
    await server.stop();
  }
});
