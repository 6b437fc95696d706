// `spacetime publish` over an existing database, end to end: a real server process and the real CLI (non-TTY stdin,
// so every prompt answers "no"), module variants from test/fixtures/modules/migrate-*. The flag matrix of
// cli-and-publish.md §2.5, failure rollbacks, identity across --delete-data and the migration history.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildFixture, cleanupTempDirs, runCli, scrapeIdentity, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

// Runs bin/spacetime.js from dist/ (npm run build first), or from src with SPACETIME_CLI_FROM_SOURCE=1.

let server: TestServer;
let configPath: string;
const bundle: Record<string, string> = {};

before(async () => {
  for (const v of ['migrate-v1', 'migrate-compatible', 'migrate-add-column', 'migrate-manual', 'migrate-unique', 'migrate-throws', 'bad-init']) {
    bundle[v] = (await buildFixture(v)).bundlePath;
  }
  server = await startTestServer();
  configPath = tempConfigPath();
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

async function publish(name: string, variant: string, ...flags: string[]) {
  return runCli(['publish', '-s', server.url, '-j', bundle[variant], ...flags, name], { configPath });
}

/** The CLI's saved token (written by the first publish's implicit login). */
function token(): string {
  const t = /spacetimedb_token\s*=\s*"([^"]+)"/.exec(readFileSync(configPath, 'utf8'))?.[1];
  assert.ok(t, 'no token in cli.toml');
  return t;
}

/** HTTP /sql as the owner; rows as JSON text (the CLI's own formatting is tested elsewhere). */
async function sql(name: string, query: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/database/${name}/sql`, { method: 'POST', headers: { authorization: `Bearer ${token()}` }, body: query });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.stringify((JSON.parse(text) as { rows: unknown[] }[])[0].rows);
}

async function call(name: string, reducer: string, ...args: unknown[]): Promise<void> {
  const res = await fetch(`${server.url}/v1/database/${name}/call/${reducer}`, {
    method: 'POST', headers: { authorization: `Bearer ${token()}`, 'content-type': 'application/json' }, body: JSON.stringify(args),
  });
  assert.equal(res.status, 200, await res.text());
}

async function logs(name: string): Promise<string> {
  const res = await fetch(`${server.url}/v1/database/${name}/logs`, { headers: { authorization: `Bearer ${token()}` } });
  return (await res.text()).split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { message: string }).message).join('\n');
}

test('create, identical re-publish, compatible update with the printed plan, data kept', async () => {
  const created = await publish('mig-a', 'migrate-v1', '-y');
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /Created new database with name: mig-a, identity: [0-9a-f]{64}/);
  const identity = scrapeIdentity(created.stdout);
  await call('mig-a', 'add', 'alice');
  const same = await publish('mig-a', 'migrate-v1');
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /Database Migration Plan\n━{60}\n\n/);
  assert.match(same.stdout, /Updated database with name: mig-a, identity: /);
  const upd = await publish('mig-a', 'migrate-compatible');
  assert.equal(upd.code, 0, upd.stderr);
  assert.match(upd.stdout, /▸ Created user table: pet \(public\)/);
  assert.doesNotMatch(upd.stdout, /BREAK/);
  assert.equal(scrapeIdentity(upd.stdout), identity);
  assert.match(await sql('mig-a', 'SELECT name FROM person'), /alice/);
  await call('mig-a', 'addPet', 'cat');
  await call('mig-a', 'whoami');
  const log = await logs('mig-a');
  assert.match(log, /Creating table `pet`/);
  assert.match(log, /Database updated/);
  assert.match(log, /module compatible with 1 people/);
  const history = await runCli(['history', '-s', server.url, 'mig-a'], { configPath });
  assert.equal(history.code, 0, history.stderr);
  assert.match(history.stdout, /created .*\n.*updated .*\n(\s+▸ .*\n)*\s+▸ Created user table: pet/);
});

test('a client-breaking plan: prompt answers no without a TTY; --break-clients and -y apply it; rows get defaults', async () => {
  assert.equal((await publish('mig-b', 'migrate-v1')).code, 0);
  await call('mig-b', 'add', 'Robert');
  const refused = await publish('mig-b', 'migrate-add-column');
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /▸ Created column\(s\) in table person/);
  assert.match(refused.stdout, /The above changes will BREAK existing clients\. Do you want to proceed\? \[y\/N\]/);
  assert.match(refused.stdout + refused.stderr, /Publishing aborted by user/);
  assert.doesNotMatch(await sql('mig-b', 'SELECT * FROM person'), /19/);
  const applied = await publish('mig-b', 'migrate-add-column', '--break-clients');
  assert.equal(applied.code, 0, applied.stderr);
  const rows = await sql('mig-b', 'SELECT name, age, mass FROM person');
  assert.equal(rows, '[["Robert",0,19]]');
  assert.match(await logs('mig-b'), /Disconnecting all users/);
  // -y covers break-clients; -c=on-conflict does not delete data for an automatic plan.
  assert.equal((await publish('mig-c', 'migrate-v1')).code, 0);
  await call('mig-c', 'add', 'keep');
  const yes = await publish('mig-c', 'migrate-add-column', '--delete-data=on-conflict', '-y');
  assert.equal(yes.code, 0, yes.stderr);
  assert.match(await sql('mig-c', 'SELECT name FROM person'), /keep/);
});

test('a manual migration: refused without --delete-data; on-conflict asks (no); on-conflict -y wipes, identity kept', async () => {
  const created = await publish('mig-d', 'migrate-v1');
  const identity = scrapeIdentity(created.stdout);
  await call('mig-d', 'add', 'gone');
  const refused = await publish('mig-d', 'migrate-manual');
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /Adding a column secret to table person requires a default value annotation/);
  assert.match(refused.stdout, /Aborting publish due to required manual migration\./);
  assert.match(refused.stderr, /Aborting because publishing would require manual migration or deletion of data and --delete-data was not specified\./);
  const asked = await publish('mig-d', 'migrate-manual', '--delete-data=on-conflict', '--break-clients');
  assert.equal(asked.code, 1);
  assert.match(asked.stdout, /Proceeding with database clear due to --delete-data=on-conflict\./);
  assert.match(asked.stdout, /Are you sure you want to proceed\? \[deleting mig-d\]/);
  assert.match(await sql('mig-d', 'SELECT name FROM person'), /gone/);
  const wiped = await publish('mig-d', 'migrate-manual', '--delete-data=on-conflict', '-y');
  assert.equal(wiped.code, 0, wiped.stderr);
  assert.equal(scrapeIdentity(wiped.stdout), identity);
  assert.doesNotMatch(await sql('mig-d', 'SELECT * FROM person'), /gone/);
  const history = await runCli(['history', '-s', server.url, 'mig-d', '--json'], { configPath });
  assert.deepEqual((JSON.parse(history.stdout) as { op: string }[]).map((e) => e.op), ['created', 'cleared']);
});

test('failures at execution keep the old module serving: duplicates for a new unique, a module that throws on load', async () => {
  assert.equal((await publish('mig-e', 'migrate-v1')).code, 0);
  await call('mig-e', 'add', 'twin');
  await call('mig-e', 'add', 'twin');
  const dup = await publish('mig-e', 'migrate-unique', '-y');
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /Database update rejected: Cannot add unique constraint person_name_key on table `person` \[name\]: 1 duplicate group\(s\) found\./);
  const onConflict = await publish('mig-e', 'migrate-unique', '--delete-data=on-conflict', '-y');
  assert.equal(onConflict.code, 1, 'on-conflict does not rescue an execution failure');
  const broken = await publish('mig-e', 'migrate-throws', '-y');
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /fails to load on purpose/);
  await call('mig-e', 'whoami');
  const log = await logs('mig-e');
  assert.match(log, /module v1 with 2 people/);
  assert.match(log, /Database update failed: /);
  const always = await publish('mig-e', 'migrate-unique', '-c', '-y');
  assert.equal(always.code, 0, always.stderr);
  assert.doesNotMatch(await sql('mig-e', 'SELECT * FROM person'), /twin/);
});

test('a failed first publish leaves nothing; a later publish under the same name works', async () => {
  const failed = await publish('mig-f', 'bad-init');
  assert.equal(failed.code, 1);
  const describe = await runCli(['describe', '-s', server.url, 'mig-f', '--json'], { configPath });
  assert.notEqual(describe.code, 0);
  assert.equal((await publish('mig-f', 'migrate-v1')).code, 0);
});

test('pre_publish answers per client-protocol §5.2; PUT checks the BreakClients token and the Compatible policy', async () => {
  const created = await publish('mig-g', 'migrate-v1');
  const identity = scrapeIdentity(created.stdout);
  const headers = { authorization: `Bearer ${token()}` };
  const program = readFileSync(bundle['migrate-add-column'], 'utf8');
  const pre = await fetch(`${server.url}/v1/database/mig-g/pre_publish?pretty_print_style=NoColor&host_type=Js`, { method: 'POST', headers, body: program });
  assert.equal(pre.status, 200);
  const body = await pre.json() as { AutoMigrate: { migrate_plan: string; break_clients: boolean; token: string; major_version_upgrade: boolean } };
  assert.equal(body.AutoMigrate.break_clients, true);
  assert.equal(body.AutoMigrate.major_version_upgrade, false);
  assert.match(body.AutoMigrate.token, /^0x[0-9a-f]{64}$/);
  const compatible = await fetch(`${server.url}/v1/database/${identity}?host_type=Js`, { method: 'PUT', headers, body: program });
  assert.equal(compatible.status, 400);
  assert.match(await compatible.text(), /Database update rejected: .*disconnects all clients/);
  const badToken = await fetch(`${server.url}/v1/database/${identity}?host_type=Js&policy=BreakClients&token=0x00`, { method: 'PUT', headers, body: program });
  assert.equal(badToken.status, 400);
  assert.match(await badToken.text(), /Token provided is invalid/);
  const ok = await fetch(`${server.url}/v1/database/${identity}?host_type=Js&policy=BreakClients&token=${body.AutoMigrate.token}`, { method: 'PUT', headers, body: program });
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.deepEqual((await ok.json() as { Success: { op: string } }).Success.op, 'updated');
  const manual = await fetch(`${server.url}/v1/database/mig-g/pre_publish?host_type=Js`, { method: 'POST', headers, body: readFileSync(bundle['migrate-manual'], 'utf8') });
  const m = await manual.json() as { ManualMigrate: { reason: string; major_version_upgrade: boolean } };
  assert.match(m.ManualMigrate.reason, /Removing a column age from table person requires a manual migration/);
  assert.equal(m.ManualMigrate.major_version_upgrade, false);
  const missing = await fetch(`${server.url}/v1/database/no-such-db-here/pre_publish?host_type=Js`, { method: 'POST', headers, body: program });
  assert.equal(missing.status, 404);
});

// Replay of a Program record with a new definition uses the live path's row migration (datastore/migrate.ts), so a
// restart after an update with added columns rebuilds the migrated rows.
test('a module update survives a restart (the newest module runs, rows migrated)', async () => {
  assert.equal((await publish('mig-h', 'migrate-v1')).code, 0);
  await call('mig-h', 'add', 'durable');
  assert.equal((await publish('mig-h', 'migrate-add-column', '--break-clients')).code, 0);
  await call('mig-h', 'add', 'after');
  await server.restart();
  const rows = await sql('mig-h', 'SELECT name, age, mass FROM person');
  assert.equal(rows, '[["durable",0,19],["after",7,70]]');
  await call('mig-h', 'whoami');
  assert.match(await logs('mig-h'), /module add-column with 2 people/);
});

