// `spacetime describe` (cli-and-publish.md §1 describe, upstream describe.rs): --json is required (usage error, exit
// 2); the whole module as pretty SATS-JSON RawModuleDefV10; one reducer or table by canonical name (or source
// name); `no such reducer` / `no such table`; bad entity arguments; an unknown database. Real server and CLI, the
// basic fixture module (snake_case canonical names: `sayHello` → `say_hello`).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
let configPath: string;
const db = 'describe-basic';

function describe(...args: string[]) {
  return runCli(['describe', '-s', server.url, ...args], { configPath });
}

before(async () => {
  server = await startTestServer();
  configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/basic', '-y', db], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('describe --json prints the module definition; --json is required', async () => {
  const r = await describe(db, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /WARNING: This command is UNSTABLE and subject to breaking changes\./);
  assert.ok(r.stdout.startsWith('{\n  "sections": [\n'), 'pretty-printed with two spaces');
  const def = JSON.parse(r.stdout) as { sections: Record<string, unknown>[] };
  const reducers = def.sections.find((s) => 'Reducers' in s)!.Reducers as { source_name: string }[];
  assert.deepEqual(reducers.map((x) => x.source_name).sort(), ['add', 'init', 'onConnect', 'onDisconnect', 'sayHello']);

  const noJson = await describe(db);
  assert.equal(noJson.code, 2);
  assert.match(noJson.stderr, /error: the following required arguments were not provided:\n\s+--json/);
});

test('describe one reducer or table by canonical or source name', async () => {
  const byCanonical = await describe(db, 'reducer', 'say_hello', '--json');
  assert.equal(byCanonical.code, 0, byCanonical.stderr);
  const reducer = JSON.parse(byCanonical.stdout) as { source_name: string; params: unknown };
  assert.equal(reducer.source_name, 'sayHello');
  assert.deepEqual(reducer.params, { elements: [] });
  assert.equal((await describe(db, 'reducer', 'sayHello', '--json')).stdout, byCanonical.stdout);

  const table = await describe(db, 'table', 'person', '--json');
  assert.equal(table.code, 0, table.stderr);
  assert.equal((JSON.parse(table.stdout) as { source_name: string }).source_name, 'person');
});

test('describe errors: unknown entity, bad entity arguments, unknown database', async () => {
  const noReducer = await describe(db, 'reducer', 'nope', '--json');
  assert.equal(noReducer.code, 1);
  assert.match(noReducer.stderr, /Error: no such reducer\n/);
  const noTable = await describe(db, 'table', 'nope', '--json');
  assert.match(noTable.stderr, /Error: no such table\n/);

  const badType = await describe(db, 'index', 'x', '--json');
  assert.equal(badType.code, 1);
  assert.match(badType.stderr, /Invalid entity_type 'index'\. Expected one of: reducer, table\./);
  const missingName = await describe(db, 'reducer', '--json');
  assert.equal(missingName.code, 1);
  assert.match(missingName.stderr, /Invalid describe arguments\.\nUsage: spacetime describe \[database\] \[entity_type entity_name\] --json \[--no-config\]/);

  const missing = await describe('no-such-db', '--json');
  assert.equal(missing.code, 1);
  // Upstream's fail_initial_publish smoketest greps "No such database" after a failed first publish.
  assert.match(missing.stderr, /Error: No such database: no-such-db\n\nCaused by:\n\s+`no-such-db` not found/);
});
