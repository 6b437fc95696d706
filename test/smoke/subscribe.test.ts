// Upstream smoketests dml.rs, confirmed_reads.rs and add_remove_index.rs, rewritten over our own fixture modules
// (test/fixtures/modules/smoke-*) and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

test('dml: SQL INSERTs reach a subscriber as updates', async () => {
  const id = await st.publish('smoke-hooks');
  const sub = await st.subscribeBackground(id, ['SELECT * FROM t'], { n: 2 });
  for (const name of ['Alice', 'Bob']) assert.equal((await st.sql(id, `INSERT INTO t (name) VALUES ('${name}')`)).code, 0);
  assert.deepEqual(await sub.collect(), [
    { t: { deletes: [], inserts: [{ name: 'Alice' }] } },
    { t: { deletes: [], inserts: [{ name: 'Bob' }] } },
  ]);
});

test('confirmed_reads: subscribe and sql with --confirmed true', async () => {
  const id = await st.publish('smoke-hooks');
  const sub = await st.subscribeBackground(id, ['SELECT * FROM person'], { n: 2, confirmed: true });
  assert.equal((await st.call(id, 'add', 'Horst')).code, 0);
  assert.equal((await st.sql(id, "INSERT INTO person (name) VALUES ('Egon')", ['--confirmed', 'true'])).code, 0);
  assert.deepEqual(await sub.collect(), [
    { person: { deletes: [], inserts: [{ name: 'Horst' }] } },
    { person: { deletes: [], inserts: [{ name: 'Egon' }] } },
  ]);
  const read = await st.sql(id, 'SELECT * FROM person', ['--confirmed', 'true']);
  assert.match(read.stdout, /Horst/);
});

test('add_remove_index: an unindexed join is refused, accepted once indexed, refused again after the indexes go (restarts between)', async () => {
  const join = 'select t_1.* from t_1 join t_2 on t_1.id = t_2.id where t_2.id = 1001';
  await st.publish('smoke-index-off', 'smoke-idx');
  const refused = await st.subscribe('smoke-idx', [join]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Subscriptions require indexes on join columns/);
  await server.restart();
  await st.publish('smoke-index-on', 'smoke-idx');
  assert.equal((await st.subscribe('smoke-idx', [join])).code, 0);
  const sub = await st.subscribeBackground('smoke-idx', [join], { n: 1 });
  assert.equal((await st.cli(['call', '--anonymous', '--server', server.url, '--', 'smoke-idx', 'add'])).code, 0);
  assert.equal((await sub.collect()).length, 1);
  await server.restart();
  await st.publish('smoke-index-off', 'smoke-idx');
  assert.equal((await st.subscribe('smoke-idx', [join])).code, 1);
});
