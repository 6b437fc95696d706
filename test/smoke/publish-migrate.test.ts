// Upstream smoketests modules.rs (upload, update, hotswap) and auto_migration.rs (rejected column, added tables and
// enum variants, defaulted columns with --break-clients twice, primary key removal), rewritten over
// test/fixtures/modules/smoke-basic*, smoke-hotswap* and smoke-am-* and driven through the real CLI and one server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, type TestServer } from '../harness.js';
import { smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

/** upstream's publish().name(db).run(): `--yes=all`, success not asserted. */
const publishTo = (fixture: string, db: string, extra: string[] = []) =>
  st.cli(['publish', '--server', server.url, '-p', path.join(fixturesDir, fixture), '--yes=all', ...extra, db]);

const greetings = (logs: string[]) => ['Robert', 'Julie', 'Samantha', 'World'].every((n) => logs.includes(`Hello, ${n}!`));

test('modules: upload, then update — same module, a column without default refused, a table added', async () => {
  const name = `module-update-${process.pid}`;
  await st.publish('smoke-basic', name);
  for (const n of ['Robert', 'Julie', 'Samantha']) assert.equal((await st.call(name, 'add', n)).code, 0);
  assert.equal((await st.call(name, 'say_hello')).code, 0);
  assert.ok(greetings(await st.logMessages(name)));
  assert.equal((await publishTo('smoke-basic', name)).code, 0);
  const breaking = await publishTo('smoke-basic-breaking', name);
  assert.notEqual(breaking.code, 0);
  assert.match(breaking.stdout + breaking.stderr, /manual migration|breaking/);
  assert.equal((await st.call(name, 'say_hello')).code, 0);
  assert.equal((await publishTo('smoke-basic-add-table', name)).code, 0);
  assert.equal((await st.call(name, 'are_we_updated_yet')).code, 0);
  assert.ok((await st.logMessages(name, 2)).includes('MODULE UPDATED'));
});

test('modules: hotswap keeps a SELECT * FROM * subscription flowing (without the new table)', async () => {
  const name = `hotswap-module-${process.pid}`;
  await st.publish('smoke-hotswap', name);
  const sub = await st.subscribeBackground(name, ['SELECT * FROM *'], { n: 2 });
  assert.equal((await st.call(name, 'add_person', 'Horst')).code, 0);
  assert.equal((await publishTo('smoke-hotswap-pet', name)).code, 0);
  assert.equal((await st.call(name, 'add_pet', 'Turtle')).code, 0);
  assert.equal((await st.call(name, 'add_person', 'Cindy')).code, 0);
  assert.deepEqual(await sub.collect(), [
    { person: { deletes: [], inserts: [{ id: 1, name: 'Horst' }] } },
    { person: { deletes: [], inserts: [{ id: 2, name: 'Cindy' }] } },
  ]);
});

test('auto_migration: a u128 column without a default is refused', async () => {
  const id = await st.publish('smoke-am-simple');
  assert.notEqual((await publishTo('smoke-am-incompatible', id)).code, 0);
});

test('auto_migration: tables, an enum variant and an autoInc added; the subscription keeps flowing', async () => {
  const id = await st.publish('smoke-am-add-table');
  const sub = await st.subscribeBackground(id, ['select * from person'], { n: 4 });
  for (const n of ['Robert', 'Julie', 'Samantha']) assert.equal((await st.call(id, 'add_person', n, 'Student')).code, 0);
  assert.equal((await st.call(id, 'print_persons', 'BEFORE')).code, 0);
  const before = await st.logMessages(id);
  for (const n of ['Robert', 'Julie', 'Samantha']) assert.ok(before.includes(`BEFORE: ${n} - Student`), n);
  assert.equal((await publishTo('smoke-am-add-table-updated', id)).code, 0);
  assert.equal((await st.call(id, 'add_person', 'Husserl', 'Student')).code, 0);
  assert.equal((await sub.collect()).length, 4);
  assert.equal((await st.call(id, 'add_person', 'Husserl', 'Professor')).code, 0);
  assert.equal((await st.call(id, 'add_book', '1234567890')).code, 0);
  assert.equal((await st.call(id, 'print_persons', 'AFTER_PERSON')).code, 0);
  assert.equal((await st.call(id, 'print_books', 'AFTER_BOOK')).code, 0);
  const afterLogs = await st.logMessages(id);
  for (const line of ['AFTER_PERSON: Samantha - Student', 'AFTER_PERSON: Julie - Student', 'AFTER_PERSON: Robert - Student',
    'AFTER_PERSON: Husserl - Professor', 'AFTER_BOOK: 1234567890']) assert.ok(afterLogs.includes(line), line);
});

test('auto_migration: defaulted columns added twice with --break-clients; subscribers disconnected', async () => {
  // Upstream runs 20 subscriber processes; 5 keep the same check (every one disconnected, plus the call) on 2 cores.
  const subscribers = 5;
  const id = await st.publish('smoke-am-simple');
  const subs = [];
  for (let i = 0; i < subscribers; i++) subs.push(await st.subscribeBackground(id, ['select * from person'], {}));
  assert.equal((await st.call(id, 'add_person', 'Robert')).code, 0);
  assert.equal((await publishTo('smoke-am-add-columns', id, ['--break-clients'])).code, 0);
  assert.equal((await st.call(id, 'print_persons', 'FIRST_UPDATE')).code, 0);
  const logs1 = await st.logMessages(id);
  assert.ok(logs1.some((l) => l.includes('Disconnecting all users')), logs1.join('\n'));
  assert.ok(logs1.includes('FIRST_UPDATE: Person { name: "Robert", age: 0, mass: 19 }'), logs1.join('\n'));
  assert.equal(logs1.filter((l) => l.includes('FIRST_UPDATE: client disconnected')).length, subscribers + 1);
  assert.equal((await st.call(id, 'add_person', 'Robert2')).code, 0);
  for (const sub of subs) await sub.collect();
  assert.equal((await publishTo('smoke-am-add-columns-again', id, ['--break-clients'])).code, 0);
  assert.equal((await st.call(id, 'print_persons', 'UPDATE_2')).code, 0);
  const logs2 = await st.logMessages(id);
  assert.ok(logs2.includes('UPDATE_2: Person { name: "Robert2", age: 70, mass: 180, height: 160 }'), logs2.join('\n'));
});

test('auto_migration: removing a primary key, then a trivial change (issue 3934)', async () => {
  const id = await st.publish('smoke-am-pk');
  const removed = await publishTo('smoke-am-nopk', id, ['--break-clients']);
  assert.equal(removed.code, 0, removed.stderr);
  const next = await publishTo('smoke-am-nopk-v2', id, ['--break-clients']);
  assert.equal(next.code, 0, next.stderr);
});
