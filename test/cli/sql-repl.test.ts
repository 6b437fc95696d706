// `spacetime sql <db> --interactive` through the real CLI and a real server: lines piped on stdin run one by one,
// results print with their statistics and the round trip, a failing line reports and the shell goes on, `.exit`
// leaves quietly, the end of input says "Aborted!", and the history file keeps the lines.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, makeTempDir, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { formatDuration } from '../../src/cli/repl.js';

let server: TestServer;
let configPath: string;
before(async () => {
  server = await startTestServer();
  configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/basic', '--yes', 'repltest'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});
after(async () => { await server?.stop(); cleanupTempDirs(); });

test('lines run in order with statistics; errors go on; .exit leaves; history is kept', async () => {
  const home = makeTempDir('stdb-home-');
  const input = [
    "INSERT INTO person (name) VALUES ('Ada')",
    'SELECT * FROM person',
    'SELECT * FROM no_such_table',
    "SELECT name FROM person WHERE name = 'Ada'",
    '.exit',
    'SELECT * FROM person',                          // after .exit: never runs
  ].join('\n');
  const r = await runCli(['sql', '-s', server.url, 'repltest', '--interactive'], { configPath, input, env: { HOME: home } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /│ \.exit: Exit the REPL/);
  assert.match(r.stdout, /🪐repltest>/);
  assert.match(r.stdout, /\(0 rows\) \[inserted: 1, server: [\d.]+(ns|µs|ms|s)\]\nRoundtrip time: [\d.]+(ns|µs|ms|s)\n/);
  assert.match(r.stdout, / name {2}\n-+\n "Ada" \n\(1 row\) \[server: /);
  assert.equal(r.stdout.match(/Roundtrip time:/g)?.length, 3, 'three successful lines, the one after .exit not run');
  assert.match(r.stderr, /no_such_table/);
  assert.doesNotMatch(r.stdout, /Aborted!/);
  const history = readFileSync(path.join(home, '.stdb.history.txt'), 'utf8').trim().split('\n');
  assert.deepEqual(history.slice(-2), ['SELECT * FROM no_such_table', "SELECT name FROM person WHERE name = 'Ada'"]);
});

test('end of input aborts; a query argument with --interactive is a usage error', async () => {
  const home = makeTempDir('stdb-home-');
  const r = await runCli(['sql', '-s', server.url, 'repltest', '--interactive'], { configPath, input: 'SELECT * FROM person\n', env: { HOME: home } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\(1 row\)/);
  assert.match(r.stdout, /\nAborted!\n$/);
  const both = await runCli(['sql', '-s', server.url, 'repltest', 'SELECT 1', '--interactive'], { configPath, env: { HOME: home } });
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /Too many positional arguments for interactive mode/);
});

test('durations print as the upstream CLI prints them', () => {
  assert.equal(formatDuration(0.512), '512.00ns');
  assert.equal(formatDuration(3.4), '3.40µs');
  assert.equal(formatDuration(1250), '1.25ms');
  assert.equal(formatDuration(2_000_000), '2.00s');
});
