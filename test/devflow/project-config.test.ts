// spacetime.json: layering (spacetime.json < .local < .<env> < .<env>.local), comments, children inheritance,
// invalid fields ("Failed to load spacetime.json"), database-argument resolution, and the CLI error shown for a bad
// config (upstream smoketest config_with_invalid_field_shows_error).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CliError, formatCliError } from '../../src/cli/errors.js';
import {
  loadProjectConfig, resolveDatabaseArg, resolveDatabaseParts, selectTargets,
} from '../../src/cli/project-config.js';
import { cleanupTempDirs, runCli, tempConfigPath } from '../harness.js';
import { makeWorkDir } from './helpers.js';

after(() => cleanupTempDirs());

function project(files: Record<string, string>): string {
  const dir = makeWorkDir('stdb-cfg-');
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

test('overlay order: spacetime.json < .local < .<env> < .<env>.local; found from a subdirectory', () => {
  const dir = project({
    'spacetime.json': '{ "server": "local", "module-path": "./spacetimedb", "database": "base" }',
    'spacetime.local.json': '{ "database": "from-local" }',
    'spacetime.staging.json': '// comment\n{ "server": "staging", }',
    'spacetime.staging.local.json': '{ "database": "from-staging-local" }',
  });
  mkdirSync(path.join(dir, 'sub'));
  const plain = loadProjectConfig({ cwd: path.join(dir, 'sub') })!;
  assert.equal(plain.dir, dir);
  assert.deepEqual(plain.files.map((f) => path.basename(f)), ['spacetime.json', 'spacetime.local.json']);
  assert.equal(plain.targets[0].database, 'from-local');
  assert.equal(plain.targets[0].sourceConfig, 'spacetime.local.json');
  assert.equal(plain.targets[0].server, 'local');
  assert.equal(plain.targets[0].modulePath, path.join(dir, 'spacetimedb'));
  const staging = loadProjectConfig({ cwd: dir, env: 'staging' })!;
  assert.equal(staging.targets[0].server, 'staging');
  assert.equal(staging.targets[0].database, 'from-staging-local');
  assert.equal(loadProjectConfig({ cwd: dir, noConfig: true }), undefined);
});

test('children inherit fields; dev.run is read; database arguments resolve against targets', () => {
  const dir = project({
    'spacetime.json': JSON.stringify({
      server: 'local', 'module-path': './server', dev: { run: 'npm run dev' },
      children: [{ database: 'region-1' }, { database: 'region-2', 'js-path': './r2.js' }],
    }),
  });
  const config = loadProjectConfig({ cwd: dir })!;
  assert.equal(config.devRun, 'npm run dev');
  const [root, r1, r2] = config.targets;
  assert.equal(root.database, undefined);
  assert.equal(r1.server, 'local');
  assert.equal(r1.modulePath, path.join(dir, 'server'));
  assert.equal(r2.modulePath, undefined, 'a child with its own module source does not inherit module-path');
  assert.equal(r2.jsPath, path.join(dir, 'r2.js'));
  assert.deepEqual(selectTargets(config, 'region-*').map((t) => t.database), ['region-1', 'region-2']);
  assert.deepEqual(selectTargets(config, 'other'), [], 'no match with several targets: CLI args alone');
  assert.throws(() => resolveDatabaseArg(undefined, config), /Multiple databases found in config: region-1, region-2/);
  assert.equal(resolveDatabaseArg('elsewhere', config).database, 'elsewhere');
  assert.deepEqual(resolveDatabaseParts(['region-2', 'SELECT 1'], config, 'query', 1).rest, ['SELECT 1']);
  assert.throws(() => resolveDatabaseParts(['SELECT 1'], config, 'query', 1), /Multiple databases found/);
});

test('one configured database: it may be omitted; a different CLI name is used with its settings', () => {
  const dir = project({ 'spacetime.json': '{ "database": "solo", "server": "s1" }' });
  const config = loadProjectConfig({ cwd: dir })!;
  assert.deepEqual(resolveDatabaseArg(undefined, config), { database: 'solo', server: 's1', target: config.targets[0] });
  const call = resolveDatabaseParts(['add', '"x"'], config, 'function', 1);
  assert.equal(call.database, 'solo');
  assert.deepEqual(call.rest, ['add', '"x"']);
  const adHoc = resolveDatabaseParts(['other-db', 'SELECT 1'], config, 'query', 1, 1);
  assert.deepEqual([adHoc.database, adHoc.rest, adHoc.server], ['other-db', ['SELECT 1'], undefined], 'sql with two parts: the first is a database');
  assert.equal(resolveDatabaseParts(['SELECT 1'], config, 'query', 1, 1).database, 'solo');
  const other = selectTargets(config, 'another-db');
  assert.equal(other.length, 1);
  assert.equal(other[0].database, 'another-db');
  assert.equal(other[0].server, 's1');
});

test('invalid fields fail with "Failed to load spacetime.json" and say which field', () => {
  const cases: [string, RegExp][] = [
    ['{ "dev": { "run_command": "npm run dev" } }', /unknown field `run_command` in `spacetime.json.dev`/],
    ['{ "publish": { "database": "x" } }', /unknown field `publish`/],
    ['{ "database": 5 }', /invalid type for `spacetime.json.database`: expected a string/],
    ['{ "children": [ { "dev": {} } ] }', /`dev` is allowed at the top level only/],
    ['{ "generate": [ { "lang": "ts" } ] }', /unknown field `lang`/],
    ['{ "database": ', /Failed to parse config file/],
  ];
  for (const [text, reason] of cases) {
    const dir = project({ 'spacetime.json': text });
    try {
      loadProjectConfig({ cwd: dir });
      assert.fail(`accepted ${text}`);
    } catch (error) {
      assert.ok(error instanceof CliError);
      assert.equal(error.message, 'Failed to load spacetime.json');
      assert.match(formatCliError(error), reason);
    }
  }
});

test('the CLI reports a bad spacetime.json (dev, publish, logs) and --no-config ignores it', async () => {
  const dir = project({ 'spacetime.json': '{ "dev": { "run_command": "npm run dev" }, "publish": { "database": "test-db" } }' });
  const configPath = tempConfigPath();
  for (const args of [['dev'], ['publish'], ['logs']]) {
    const r = await runCli(args, { configPath, cwd: dir });
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /^Error: Failed to load spacetime\.json\n\nCaused by:\n {4}unknown field/m);
  }
  const ignored = await runCli(['logs', '--no-config'], { configPath, cwd: dir });
  assert.doesNotMatch(ignored.stderr, /spacetime\.json/);
  assert.match(ignored.stderr, /<database>/);
});
