// End-to-end tests of the core user path (issue 2): a real server process, the real CLI, official-library modules.
// Publishes the keynote and every-type modules, calls reducers through the CLI and HTTP, reads rows with
// `spacetime sql`, and checks that bad input gets a clear error while the server keeps serving.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  cleanupTempDirs, makeTempDir, runCli, scrapeIdentity, startTestServer, tempConfigPath, type TestServer,
} from '../harness.js';

let server: TestServer;
let configPath: string;
const s = (): string[] => ['-s', server.url];

async function cli(args: string[], input?: string) {
  return runCli(args, { configPath, input });
}

async function mintToken(): Promise<string> {
  const res = await fetch(`${server.url}/v1/identity`, { method: 'POST' });
  assert.equal(res.status, 200);
  return ((await res.json()) as { token: string }).token;
}

async function callHttp(db: string, reducer: string, body: string, token?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server.url}/v1/database/${db}/call/${reducer}`, { method: 'POST', headers, body });
  return { status: res.status, text: await res.text() };
}

async function sqlRows(db: string, query: string): Promise<unknown[][]> {
  const res = await cli(['sql', ...s(), db, query, '--format', 'json']);
  assert.equal(res.code, 0, res.stderr);
  const statements = JSON.parse(res.stdout) as { rows: unknown[][] }[];
  return statements[0].rows;
}

before(async () => {
  server = await startTestServer();
  configPath = tempConfigPath();
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

describe('keynote bank module', () => {
  test('publish, seed, transfer through the CLI and HTTP; balances add up; SenderError reaches the caller', async () => {
    const pub = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/keynote', '-y', 'bank']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.match(scrapeIdentity(pub.stdout), /^c200[0-9a-f]{60}$/);

    assert.equal((await cli(['call', ...s(), 'bank', 'seed', '10', '1000'])).code, 0);
    const transfer = await cli(['call', ...s(), 'bank', 'transfer', '1', '2', '300']);
    assert.equal(transfer.code, 0, transfer.stderr);
    assert.equal(transfer.stdout, '');
    const viaHttp = await callHttp('bank', 'transfer', '[3, 4, 5]', await mintToken());
    assert.equal(viaHttp.status, 200, viaHttp.text);

    const rows = await sqlRows('bank', 'SELECT * FROM accounts');
    assert.equal(rows.length, 10);
    const balances = new Map(rows.map((r) => [Number(r[0]), Number(r[1])]));
    assert.equal(balances.get(1), 700);
    assert.equal(balances.get(2), 1300);
    assert.equal(balances.get(3), 995);
    assert.equal([...balances.values()].reduce((a, b) => a + b, 0), 10_000);

    const tooMuch = await cli(['call', ...s(), 'bank', 'transfer', '1', '2', '5000']);
    assert.equal(tooMuch.code, 1);
    assert.match(tooMuch.stderr, /^Error: /m);
    assert.match(tooMuch.stderr, /insufficient/i);
    const after = await sqlRows('bank', 'SELECT balance FROM accounts WHERE id = 1');
    assert.deepEqual(after.map((r) => Number(r[0])), [700], 'a failed reducer changes nothing');
  });
});

describe('every column type', () => {
  test('init rows, reducer inserts, unique violations, index-backed deletes, psql output', async () => {
    const pub = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/alltypes', '-y', 'alltypes']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((await sqlRows('alltypes', 'SELECT * FROM every')).length, 2, 'init inserted two rows');

    assert.equal((await cli(['call', ...s(), 'alltypes', 'insert_sample', 'third', '3'])).code, 0);
    const duplicate = await cli(['call', ...s(), 'alltypes', 'insert_sample', 'third', '4']);
    assert.equal(duplicate.code, 1, 'the unique `key` column rejects a second "third"');

    const byKey = await sqlRows('alltypes', "SELECT id, key, u8, i256 FROM every WHERE key = 'third'");
    assert.equal(byKey.length, 1);
    assert.equal(Number(byKey[0][0]), 3, 'auto_inc ids continue after init');
    assert.equal(Number(byKey[0][2]), 3);

    const text = await cli(['sql', ...s(), 'alltypes', "SELECT key, flag, text FROM every WHERE key = 'first'"]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.split('\n').map((l) => l.trimEnd()).join('\n'),
      ' key     | flag  | text\n---------+-------+---------\n "first" | false | "row 1"\n');

    assert.equal((await cli(['call', ...s(), 'alltypes', 'delete_by_key', 'third'])).code, 0);
    assert.equal((await sqlRows('alltypes', "SELECT * FROM every WHERE key = 'third'")).length, 0);
    const missing = await cli(['call', ...s(), 'alltypes', 'delete_by_key', 'third']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no row with key third/);
  });
});

describe('bad input gets a clear error and the server keeps serving', () => {
  before(async () => {
    const pub = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/basic', '-y', 'steady']);
    assert.equal(pub.code, 0, pub.stderr);
  });

  async function assertStillServing(): Promise<void> {
    const add = await cli(['call', ...s(), 'steady', 'add', 'still-here']);
    assert.equal(add.code, 0, add.stderr);
  }

  test('wrong argument types and counts over HTTP', async () => {
    const token = await mintToken();
    const wrongType = await callHttp('steady', 'add', '[42]', token);
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.text, /name|string/i);
    const wrongCount = await callHttp('steady', 'add', '["a", "b"]', token);
    assert.equal(wrongCount.status, 400);
    const notJson = await callHttp('steady', 'add', '["a"', token);
    assert.equal(notJson.status, 400);
    await assertStillServing();
  });

  test('unknown reducer and unknown database', async () => {
    const unknownReducer = await callHttp('steady', 'no_such_reducer', '[]', await mintToken());
    assert.equal(unknownReducer.status, 404);
    const unknownDb = await callHttp('no-such-database', 'add', '["x"]', await mintToken());
    assert.equal(unknownDb.status, 404);
    const viaCli = await cli(['call', ...s(), 'no-such-database', 'add', 'x']);
    assert.equal(viaCli.code, 1);
    assert.match(viaCli.stderr, /failed to find database `no-such-database`/);
    await assertStillServing();
  });

  test('invalid database names are refused before anything is built', async () => {
    for (const [name, message] of [
      ['Bad_Name', /invalid characters in database name/],
      ['bad--name', /invalid hyphen in database name/],
    ] as const) {
      const res = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/basic', '-y', name]);
      assert.equal(res.code, 1, `${name}: ${res.stdout}`);
      assert.match(res.stderr, message);
    }
  });

  test('a bundle that is not valid JavaScript is rejected and leaves nothing behind', async () => {
    const dir = makeTempDir('stdb-badjs-');
    const bundle = path.join(dir, 'bundle.js');
    writeFileSync(bundle, 'import * as sys from "spacetime:sys@2.0";\nexport default {{{ not javascript');
    const res = await cli(['publish', ...s(), '--js-path', bundle, '-y', 'broken-js']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^Error: /m);
    const describe = await cli(['describe', ...s(), '--json', 'broken-js']);
    assert.notEqual(describe.code, 0, 'no database was created');
    await assertStillServing();
  });

  test('two types with one name are refused at publish, as upstream (DuplicateTypeName)', async () => {
    const res = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/dup-types', '-y', 'dup-types']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /name `Point` is used for multiple types/);
    const describe = await cli(['describe', ...s(), '--json', 'dup-types']);
    assert.notEqual(describe.code, 0, 'no database was created');
    await assertStillServing();
  });

  test('a module whose init throws stores nothing, and the name can be published again', async () => {
    const bad = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/bad-init', '-y', 'second-try']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /init/i);
    const describe = await cli(['describe', ...s(), '--json', 'second-try']);
    assert.notEqual(describe.code, 0);
    const good = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/basic', '-y', 'second-try']);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /Created new database with name: second-try/);
  });

  test('a non-owner cannot delete the database or read its logs', async () => {
    const stranger = tempConfigPath();
    const del = await runCli(['delete', ...s(), '-y', 'steady'], { configPath: stranger });
    assert.equal(del.code, 1);
    const logs = await runCli(['logs', ...s(), 'steady'], { configPath: stranger });
    assert.equal(logs.code, 1);
    await assertStillServing();
  });
});

describe('runaway reducers are stopped; the database and the server keep serving', () => {
  before(async () => {
    const pub = await cli(['publish', ...s(), '-p', 'test/fixtures/modules/runaway', '-y', 'runaway']);
    assert.equal(pub.code, 0, pub.stderr);
  });

  async function labels(): Promise<string[]> {
    return (await sqlRows('runaway', 'SELECT label FROM item')).map((r) => String(r[0]));
  }

  test('an endless loop hits the CPU time limit, is rolled back and reported to the caller and the log', async () => {
    const spin = await cli(['call', ...s(), 'runaway', 'spin']);
    assert.equal(spin.code, 1);
    assert.match(spin.stderr, /time limit/);
    assert.ok(!(await labels()).includes('spin'), 'the insert before the loop was rolled back');
    const logs = await cli(['logs', ...s(), 'runaway', '-n', '20']);
    assert.match(logs.stdout, /time limit/);
    assert.equal((await cli(['call', ...s(), 'runaway', 'add', 'after-spin'])).code, 0);
    assert.ok((await labels()).includes('after-spin'));
  });

  test('unbounded allocation hits the memory limit; the isolate is rebuilt and keeps serving', async () => {
    const hog = await cli(['call', ...s(), 'runaway', 'hog']);
    assert.equal(hog.code, 1);
    assert.match(hog.stderr, /memory limit/);
    assert.ok(!(await labels()).includes('hog'));
    assert.equal((await cli(['call', ...s(), 'runaway', 'add', 'after-hog'])).code, 0);
    assert.ok((await labels()).includes('after-hog'));
  });

  test('SenderError and plain errors: the message for the first, the generic fatal error for the second', async () => {
    const refuse = await cli(['call', ...s(), 'runaway', 'refuse', 'not today']);
    assert.equal(refuse.code, 1);
    assert.match(refuse.stderr, /not today/);
    const fail = await cli(['call', ...s(), 'runaway', 'fail']);
    assert.equal(fail.code, 1);
    assert.match(fail.stderr, /The instance encountered a fatal error\./);
    const logs = await cli(['logs', ...s(), 'runaway', '-n', '50', '--format', 'json']);
    assert.ok(logs.stdout.split('\n').some((l) => l.includes('plain error on purpose')), 'the JS error is in the module log');
    const now = await labels();
    assert.ok(!now.includes('refuse') && !now.includes('fail'), 'both were rolled back');
  });

  test('a request to another database made during a runaway loop is answered, not lost', async () => {
    // Modules run on the server's main thread: a looping reducer delays every database until its time limit stops
    // it (README, "Limits"). What must hold: nothing is lost and the other database answers correctly afterwards.
    const spinning = cli(['call', ...s(), 'runaway', 'spin']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rows = await sqlRows('bank', 'SELECT * FROM accounts WHERE id = 1');
    assert.equal(rows.length, 1);
    assert.equal((await spinning).code, 1);
  });
});
