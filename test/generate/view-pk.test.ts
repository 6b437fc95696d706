// test/generate/view-pk.test.ts — views with a primary key in generated bindings (RawModuleDefV10 ViewPrimaryKeys).
//
// The fixture test/generate/fixtures/viewpk has a view whose row type is a table's (with `.primaryKey()`) and one
// without a key. Its generated row file must mark the key column `.primaryKey()` as upstream's codegen does, so the
// official SDK keys its client cache on it: a changed view row arrives as onUpdate, not onDelete + onInsert. Checked
// against a real server process (published with the real CLI) and the SDK's DbConnection.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { cleanupTempDirs, repoRoot, runCli, startTestServer, tempConfigPath, type TestServer, within } from '../harness.js';

const modulePath = 'test/generate/fixtures/viewpk';
// Generated code imports `spacetimedb`, so it must live inside the repository to resolve the installed package.
const generatedDir = path.join(repoRoot, 'test', '.generated', `viewpk-${process.pid}`);

let server: TestServer;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let bindings: any;


before(async () => {
  server = await startTestServer();
  const configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', modulePath, '-y', 'viewpk'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
  mkdirSync(generatedDir, { recursive: true });
  const gen = await runCli(['generate', '--lang', 'typescript', '--out-dir', generatedDir, '-p', modulePath, '-y'], { configPath });
  assert.equal(gen.code, 0, gen.stderr);
  bindings = await import(pathToFileURL(path.join(generatedDir, 'index.ts')).href);
});

after(async () => {
  await server?.stop();
  rmSync(generatedDir, { recursive: true, force: true });
  cleanupTempDirs();
});

test('the keyed view row file marks its key column; the unkeyed one does not', () => {
  const keyed = readFileSync(path.join(generatedDir, 'all_counters_table.ts'), 'utf8');
  assert.match(keyed, /id: __t\.u32\(\)\.primaryKey\(\),/);
  const plain = readFileSync(path.join(generatedDir, 'plain_counters_table.ts'), 'utf8');
  assert.doesNotMatch(plain, /primaryKey/);
});

test('a changed row of a keyed view reaches the SDK as onUpdate; an unkeyed view as delete + insert', async () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const conn: any = await within(new Promise((resolve, reject) => {
    bindings.DbConnection.builder().withUri(server.url).withDatabaseName('viewpk')
      .onConnect((c: unknown) => resolve(c))
      .onConnectError((_ctx: unknown, error: Error) => reject(error))
      .build();
  }), 'connect');
  await within(conn.reducers.put({ id: 1, value: 10 }), 'put 1');
  await within(new Promise<void>((resolve, reject) => {
    conn.subscriptionBuilder().onApplied(() => resolve())
      .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription failed')))
      .subscribe(['SELECT * FROM all_counters', 'SELECT * FROM plain_counters']);
  }), 'subscribe');
  assert.equal(conn.db.allCounters.count(), 1n);

  const events: string[] = [];
  conn.db.allCounters.onInsert((_c: unknown, r: { value: number }) => events.push(`keyed insert ${r.value}`));
  conn.db.allCounters.onDelete((_c: unknown, r: { value: number }) => events.push(`keyed delete ${r.value}`));
  conn.db.allCounters.onUpdate((_c: unknown, o: { value: number }, n: { value: number }) => events.push(`keyed update ${o.value}->${n.value}`));
  conn.db.plainCounters.onInsert((_c: unknown, r: { value: number }) => events.push(`plain insert ${r.value}`));
  conn.db.plainCounters.onDelete((_c: unknown, r: { value: number }) => events.push(`plain delete ${r.value}`));
  const updated = new Promise<void>((resolve) => conn.db.allCounters.onUpdate(() => resolve()));
  await within(conn.reducers.put({ id: 1, value: 11 }), 'put 1 again');
  await within(updated, 'keyed view onUpdate');
  assert.deepEqual(events.sort(), ['keyed update 10->11', 'plain delete 10', 'plain insert 11']);
  assert.equal(conn.db.allCounters.id.find(1)?.value, 11, 'the keyed view has a primary-key accessor');
  conn.disconnect();
});
