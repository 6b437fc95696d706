// Upstream parity of small CLI behaviours that scripts and upstream's smoketests rely on (issue 13 item 11): the
// version texts, `server clear`, and `publish --parent` as upstream standalone accepts it. Real CLI, real server.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanupTempDirs, makeTempDir, runCli, scrapeIdentity, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

// One server for the whole file: every test uses its own database names and CLI identity.
let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('-V prints the short version, --version the long one with path and commit', async () => {
  const configPath = tempConfigPath();
  const short = await runCli(['-V'], { configPath });
  assert.equal(short.code, 0);
  assert.equal(short.stdout, 'spacetime 2.8.3\n');
  const long = await runCli(['--version'], { configPath });
  assert.equal(long.code, 0);
  assert.match(long.stdout, /^spacetime Path: .+\nCommit: [0-9a-f]*\nspacetimedb tool version 2\.8\.3; spacetimedb-lib version 2\.8\.3;\n$/);
});

describe('server clear', () => {
  test('asks, deletes the data dir, and says when there is nothing to delete', async () => {
    const configPath = tempConfigPath();
    const dataDir = path.join(makeTempDir(), 'data');
    mkdirSync(path.join(dataDir, 'control'), { recursive: true });
    writeFileSync(path.join(dataDir, 'control', 'databases.json'), '[]');
    const declined = await runCli(['server', 'clear', '--data-dir', dataDir], { configPath, input: 'n\n' });
    assert.equal(declined.code, 0);
    assert.match(declined.stdout, new RegExp(`Database path: ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
    assert.match(declined.stdout, /Are you sure you want to delete all data from the local database\? \[y\/N\]/);
    assert.match(declined.stdout, /Aborting\n$/);
    assert.ok(existsSync(dataDir));
    const yes = await runCli(['server', 'clear', '--data-dir', dataDir, '-y'], { configPath });
    assert.equal(yes.code, 0);
    assert.match(yes.stdout, /Deleted database: /);
    assert.ok(!existsSync(dataDir));
    const nothing = await runCli(['server', 'clear', '--data-dir', dataDir, '-y'], { configPath });
    assert.equal(nothing.stdout, 'Local database not found. Nothing has been deleted.\n');
  });

  test('refuses while a server is using the data dir', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    assert.equal((await runCli(['publish', ...s, '-p', 'test/fixtures/modules/basic', '--yes', 'clear-busy'], { configPath })).code, 0);
    const r = await runCli(['server', 'clear', '--data-dir', server.dataDir, '-y'], { configPath });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /A server \(pid \d+\) is using .+; stop it before clearing its data/);
    assert.ok(existsSync(path.join(server.dataDir, 'databases')));
  });
});

describe('publish --parent', () => {
  let configPath: string;
  before(async () => {
    configPath = tempConfigPath();
  });

  test('a parent that exists is accepted at creation; an unknown parent name is 404; not with a clear', async () => {
    const s = ['-s', server.url];
    const module = ['-p', 'test/fixtures/modules/basic', '--yes'];
    const parent = await runCli(['publish', ...s, ...module, 'parent-db'], { configPath });
    assert.equal(parent.code, 0, parent.stderr);
    const child = await runCli(['publish', ...s, ...module, '--parent', 'parent-db', 'child-db'], { configPath });
    assert.equal(child.code, 0, child.stderr);
    assert.match(child.stdout, /Created new database with name: child-db/);
    const slash = await runCli(['publish', ...s, ...module, 'parent-db/child-two'], { configPath });
    assert.equal(slash.code, 0, slash.stderr);
    const byIdentity = await runCli(['publish', ...s, ...module, '--parent', scrapeIdentity(parent.stdout), 'child-three'], { configPath });
    assert.equal(byIdentity.code, 0, byIdentity.stderr);
    const unknown = await runCli(['publish', ...s, ...module, '--parent', 'no-such-parent', 'orphan'], { configPath });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /`no-such-parent` not found/);
    const clear = await runCli(['publish', ...s, ...module, '--delete-data', '--parent', 'parent-db', 'child-db'], { configPath });
    assert.equal(clear.code, 1);
    assert.match(clear.stderr, /Setting the parent of an existing database is not supported/);
  });
});

describe('publish <identity>', () => {

  test('the owner updates the database named by its identity; another identity is refused', async () => {
    const owner = tempConfigPath();
    const s = ['-s', server.url];
    const module = ['-p', 'test/fixtures/modules/basic', '--yes'];
    const created = await runCli(['publish', ...s, ...module], { configPath: owner });
    assert.equal(created.code, 0, created.stderr);
    const identity = scrapeIdentity(created.stdout);
    const updated = await runCli(['publish', ...s, ...module, identity], { configPath: owner });
    assert.equal(updated.code, 0, updated.stderr);
    assert.match(updated.stdout, new RegExp(`Updated database with identity: ${identity}`));
    const stranger = tempConfigPath();
    const refused = await runCli(['publish', ...s, ...module, identity], { configPath: stranger });
    assert.equal(refused.code, 1);
    const refusedClear = await runCli(['publish', ...s, ...module, '--delete-data', identity], { configPath: stranger });
    assert.equal(refusedClear.code, 1);
  });
});

describe('subscribe', () => {
  let configPath: string;
  before(async () => {
    configPath = tempConfigPath();
    const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/view-b', '--yes', 'views-db'], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((await runCli(['call', '-s', server.url, 'views-db', 'add_item', '"one"'], { configPath })).code, 0);
  });

  test('-n 0 --print-initial-update prints the initial rows of an anonymous and a sender view, then exits', async () => {
    const s = ['-s', server.url];
    const anonymous = await runCli(['subscribe', ...s, 'views-db', 'SELECT * FROM item_total', '-n', '0', '--print-initial-update', '-t', '30'], { configPath });
    assert.equal(anonymous.code, 0, anonymous.stderr);
    assert.equal(anonymous.stdout, '{"item_total":{"deletes":[],"inserts":[{"n":1}]}}\n');
    const sender = await runCli(['subscribe', ...s, 'views-db', 'SELECT * FROM my_items', '-n', '0', '--print-initial-update', '-t', '30'], { configPath });
    assert.equal(sender.code, 0, sender.stderr);
    assert.match(sender.stdout, /^\{"my_items":\{"deletes":\[\],"inserts":\[\{"id":1,"owner":\{"__identity__":"0x[0-9a-f]{64}"\},"label":"one"\}\]\}\}\n$/);
    assert.doesNotMatch(anonymous.stderr + sender.stderr, /timed out/);
  });
});

describe('autoInc on 128- and 256-bit columns', () => {

  test('publish, assign 1, 2 in every wide type, and continue after a restart', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    const pub = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/wide-autoinc', '--yes', 'wide-autoinc'], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
    for (const label of ['a', 'b']) assert.equal((await runCli(['call', ...s, 'wide-autoinc', 'add', JSON.stringify(label)], { configPath })).code, 0);
    await server.restart();
    assert.equal((await runCli(['call', ...s, 'wide-autoinc', 'add', '"c"'], { configPath })).code, 0);
    for (const table of ['wide_u_128', 'wide_i_128', 'wide_u_256', 'wide_i_256']) {
      const sql = await runCli(['sql', ...s, 'wide-autoinc', `SELECT id, label FROM ${table}`], { configPath });
      assert.equal(sql.code, 0, sql.stderr);
      const ids = sql.stdout.split('\n').slice(2).filter((l) => l.trim() !== '').map((l) => l.split('|').map((c) => c.trim()));
      ids.sort((x, y) => Number(x[0]) - Number(y[0]));
      assert.deepEqual(ids.slice(0, 2), [['1', '"a"'], ['2', '"b"']], table);
      // After a restart a sequence continues past its reserved block (as upstream's do), never below it.
      assert.equal(ids[2][1], '"c"', table);
      assert.ok(BigInt(ids[2][0]) > 2n, `${table}: ${ids[2][0]}`);
    }
  });
});

describe('subscribe to a database that refuses the client', () => {

  test('exits non-zero with the reason when client_connected throws', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    const pub = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/reject-connect', '--yes', 'reject-connect'], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
    const sub = await runCli(['subscribe', ...s, 'reject-connect', 'SELECT * FROM note', '-t', '20'], { configPath });
    assert.equal(sub.code, 1, sub.stdout + sub.stderr);
    assert.match(sub.stderr, /the server closed the connection before the subscription was applied/);
    assert.doesNotMatch(sub.stderr, /timed out/);
  });
});

describe('publish refusals upstream makes', () => {

  test('a row-level security filter on a private table fails the publish and stores nothing', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    const pub = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/rls-private', '--yes', 'rls-private'], { configPath });
    assert.equal(pub.code, 1);
    assert.match(pub.stderr, /Cannot define RLS rule on private table: diary\. Please make table public/);
    const sql = await runCli(['sql', ...s, 'rls-private', 'SELECT * FROM diary'], { configPath });
    assert.equal(sql.code, 1);
  });
});

describe('names inside module types', () => {

  test('SQL and subscribe show snake_case fields and camelCase variants; calls take either spelling', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    const pub = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/nested-names', '--yes', 'nested-names'], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
    const canonical = await runCli(['call', ...s, 'nested-names', 'add_person', '"Ann"', '{"street_name":"Main St","zip_code":1}', '{"goodDog":[]}'], { configPath });
    assert.equal(canonical.code, 0, canonical.stderr);
    const source = await runCli(['call', ...s, 'nested-names', 'add_person', '"Bob"', '{"streetName":"Elm St","zipCode":2}', '{"CatOfSorts":"tabby"}'], { configPath });
    assert.equal(source.code, 0, source.stderr);
    const twice = await runCli(['call', ...s, 'nested-names', 'add_person', '"Cy"', '{"streetName":"x","street_name":"y","zip_code":3}', '{"goodDog":[]}'], { configPath });
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /field given twice/);

    const sql = await runCli(['sql', ...s, 'nested-names', 'SELECT full_name, home_address, pet FROM person'], { configPath });
    assert.equal(sql.code, 0, sql.stderr);
    assert.match(sql.stdout, /"Ann"\s+\| \(street_name = "Main St", zip_code = 1\) \| \(goodDog = \(\)\)/);
    assert.match(sql.stdout, /"Bob"\s+\| \(street_name = "Elm St", zip_code = 2\)\s+\| \(catOfSorts = "tabby"\)/);

    const sub = await runCli(['subscribe', ...s, 'nested-names', 'SELECT * FROM person', '-n', '0', '--print-initial-update', '-t', '30'], { configPath });
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /"home_address":\{"street_name":"Main St","zip_code":1\},"pet":\{"goodDog":\[\]\}/);
  });
});

describe('an update whose view fails while it is re-evaluated', () => {
  test('is refused; the old module keeps serving and nothing is stored, also after a restart', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    const v1 = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/migrate-view-ok', '--yes', 'view-update'], { configPath });
    assert.equal(v1.code, 0, v1.stderr);
    assert.equal((await runCli(['call', ...s, 'view-update', 'add_item', '1', '"one"'], { configPath })).code, 0);
    // The view is materialized: a query reads it (and keeps its result).
    const before = await runCli(['sql', ...s, 'view-update', 'SELECT n FROM item_count'], { configPath });
    assert.match(before.stdout, /\n 1\s*\n?$/);
    const v2 = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/migrate-view-trap', '--yes', 'view-update'], { configPath });
    assert.equal(v2.code, 1, v2.stdout + v2.stderr);
    assert.match(v2.stderr, /a view failed while it was re-evaluated: .*item_count cannot count in version 2/);
    const check = async () => {
      const sql = await runCli(['sql', ...s, 'view-update', 'SELECT n FROM item_count'], { configPath });
      assert.equal(sql.code, 0, sql.stderr);
      assert.match(sql.stdout, /\n 1\s*\n?$/);
      const v2Only = await runCli(['call', ...s, 'view-update', 'only_in_version_two'], { configPath });
      assert.notEqual(v2Only.code, 0, 'version 2 is not running');
    };
    await check();
    await server.restart();
    await check();
  });
});
