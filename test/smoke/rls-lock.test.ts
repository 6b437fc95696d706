// Upstream smoketests rls.rs (rows visible per identity, a filter on a private table refused, adding a filter
// disconnects clients and republishing the same one does not) and database_lock.rs (lock / unlock: delete and
// --delete-data refused while locked, idempotent, owner only, a plain publish still allowed). Rewritten over
// test/fixtures/modules/smoke-rls* and smoke-basic and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, type TestServer } from '../harness.js';
import { smokeFile, trimTable, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

/** upstream's publish().name(db).run(): `--yes=all`, success not asserted. */
const publishTo = (fixture: string, db: string, extra: string[] = []) =>
  st.cli(['publish', '--server', server.url, '-p', path.join(fixturesDir, fixture), '--yes=all', ...extra, db]);
const spacetime = (...args: string[]) => st.cli([args[0]!, '--server', server.url, ...args.slice(1)]);

test('rls: each identity sees only its own users', async () => {
  const id = await st.publish('smoke-rls');
  assert.equal((await st.call(id, 'add_user', 'Alice')).code, 0);
  await st.newIdentity();
  assert.equal((await st.call(id, 'add_user', 'Bob')).code, 0);
  assert.equal(trimTable((await st.sql(id, 'SELECT name FROM users')).stdout), ' name\n-------\n "Bob"'.trim());
  await st.newIdentity();
  assert.equal(trimTable((await st.sql(id, 'SELECT name FROM users')).stdout), ' name\n------'.trim());
});

test('rls: a filter on a private table fails the publish', async () => {
  const r = await publishTo('smoke-rls-private', `rls-rules-${process.pid}`);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /private/, r.stderr);
});

test('rls: adding a filter (--break-clients) disconnects all users; republishing the same filter does not', async () => {
  const name = `rls-disconnect-${process.pid}`;
  assert.equal((await publishTo('smoke-rls-none', name)).code, 0);
  const r = await publishTo('smoke-rls', name, ['--break-clients']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(trimTable((await st.sql(name, 'SELECT sql FROM st_row_level_security')).stdout), trimTable(` sql
------------------------------------------------
 "SELECT * FROM users WHERE identity = :sender"`));
  assert.ok((await st.logMessages(name)).some((l) => l.includes('Disconnecting all users')));
  const same = `rls-no-disconnect-${process.pid}`;
  assert.equal((await publishTo('smoke-rls', same)).code, 0);
  assert.equal((await publishTo('smoke-rls', same)).code, 0);
  assert.ok(!(await st.logMessages(same)).some((l) => l.includes('Disconnecting all users')));
});

test('database_lock: a locked database cannot be deleted or reset; unlocked it can be deleted', async () => {
  const name = `test-lock-reset-${process.pid}`;
  const id = await st.publish('smoke-basic', name);
  assert.equal((await spacetime('lock', id)).code, 0);
  const del = await spacetime('delete', id, '--yes');
  assert.notEqual(del.code, 0);
  assert.match(del.stderr, /Database is locked and cannot be deleted/, del.stderr);
  const reset = await publishTo('smoke-basic', name, ['--delete-data']);
  assert.notEqual(reset.code, 0);
  assert.match(reset.stderr, /Database is locked and cannot be reset/, reset.stderr);
  assert.equal((await spacetime('unlock', id)).code, 0);
  assert.equal((await spacetime('delete', id, '--yes')).code, 0);
});

test('database_lock: lock and unlock are idempotent; a locked database still takes a publish', async () => {
  const name = `test-lock-publish-${process.pid}`;
  const id = await st.publish('smoke-basic', name);
  assert.equal((await spacetime('unlock', id)).code, 0);
  assert.equal((await spacetime('lock', id)).code, 0);
  assert.equal((await spacetime('lock', id)).code, 0);
  const r = await publishTo('smoke-basic', id);
  assert.equal(r.code, 0, r.stderr);
});

test('database_lock: another identity can neither lock nor unlock', async () => {
  const id = await st.publish('smoke-basic');
  await st.newIdentity();
  assert.notEqual((await spacetime('lock', id)).code, 0);
  assert.notEqual((await spacetime('unlock', id)).code, 0);
});
