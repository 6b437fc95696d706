// `spacetime init --template basic-ts` in a clean temp dir, then the real workflow against a real server: publish
// (database and server from spacetime.json), generate, bundle and run the template's Node client (official SDK over
// undici: it adds a person and sees the row), rename/lock/unlock, and `spacetime dev` republishing after a module edit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { cliArgv, linkProjectDependencies, makeWorkDir } from './helpers.js';

let srv: TestServer;
let configPath: string;
let projectDir: string;
let database: string;

before(async () => {
  srv = await startTestServer();
  configPath = tempConfigPath();
  const add = await runCli(['server', 'add', '--url', srv.url, 'devsrv', '-d', '--no-fingerprint'], { configPath });
  assert.equal(add.code, 0, add.stderr);
  const work = makeWorkDir('stdb-init-');
  const init = await runCli(['init', 'my-app', '--template', 'basic-ts', '--non-interactive'], { configPath, cwd: work });
  assert.equal(init.code, 0, init.stderr);
  projectDir = path.join(work, 'my-app');
  assert.match(init.stdout, new RegExp(`✓ Created ${path.join(projectDir, 'spacetime.json')}`));
  assert.match(init.stdout, /Next steps:\n {2}cd my-app\n {2}npm install\n/);
  database = (JSON.parse(readFileSync(path.join(projectDir, 'spacetime.local.json'), 'utf8')) as { database: string }).database;
  assert.match(database, /^my-app-[a-z0-9]{5}$/);
  linkProjectDependencies(projectDir);
});

after(async () => {
  await srv?.stop();
  cleanupTempDirs();
});

test('init writes the template, spacetime.json and .env.local for the default server', () => {
  for (const f of ['package.json', 'src/main.ts', 'spacetimedb/src/index.ts', 'spacetimedb/package.json', '.gitignore']) {
    assert.ok(existsSync(path.join(projectDir, f)), f);
  }
  const config = JSON.parse(readFileSync(path.join(projectDir, 'spacetime.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.server, 'devsrv');
  assert.equal(config['module-path'], './spacetimedb');
  const env = readFileSync(path.join(projectDir, '.env.local'), 'utf8');
  assert.match(env, new RegExp(`SPACETIMEDB_DB_NAME=${database}\n`));
  assert.match(env, new RegExp(`SPACETIMEDB_HOST=ws://127.0.0.1:${srv.port}\n`));
  const pkg = JSON.parse(readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { name: string };
  assert.equal(pkg.name, 'my-app');
});

test('init refuses a non-empty directory and an unknown template', async () => {
  const again = await runCli(['init', 'x', '--project-path', projectDir, '--template', 'basic-ts'], { configPath });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Error: Cannot create new SpacetimeDB project in non-empty directory: /);
  const unknown = await runCli(['init', 'x', '--template', 'nope-ts'], { configPath, cwd: makeWorkDir() });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /Unknown template: nope-ts[\s\S]*basic-ts/);
  const neither = await runCli(['init', 'x', '--non-interactive'], { configPath, cwd: makeWorkDir() });
  assert.match(neither.stderr, /Either --template or --lang must be provided in non-interactive mode/);

  const work = makeWorkDir();
  const moduleOnly = await runCli(['init', 'mod', '--lang', 'typescript', '--local'], { configPath, cwd: work });
  assert.equal(moduleOnly.code, 0, moduleOnly.stderr);
  assert.ok(existsSync(path.join(work, 'mod', 'spacetimedb', 'src', 'index.ts')));
  assert.ok(!existsSync(path.join(work, 'mod', 'package.json')), '--lang alone creates the module only');
  assert.deepEqual(JSON.parse(readFileSync(path.join(work, 'mod', 'spacetime.json'), 'utf8')), { server: 'local', 'module-path': './spacetimedb' });
  assert.match(moduleOnly.stdout, /spacetime publish --module-path spacetimedb --server local mod-[a-z0-9]{5}\n/);
});

test('publish from spacetime.json, generate, and the template client adds a row and sees it', async () => {
  const pub = await runCli(['publish'], { configPath, cwd: projectDir });
  assert.equal(pub.code, 0, pub.stderr + pub.stdout);
  assert.match(pub.stdout, /Using configuration from .*spacetime\.json/);
  assert.match(pub.stdout, new RegExp(`Created new database with name: ${database}, identity: c200`));

  const gen = await runCli(['generate', '--lang', 'typescript', '--out-dir', 'src/module_bindings', '--module-path', 'spacetimedb'],
    { configPath, cwd: projectDir });
  assert.equal(gen.code, 0, gen.stderr);
  assert.ok(existsSync(path.join(projectDir, 'src', 'module_bindings', 'index.ts')));

  const build = spawnSync(path.join(projectDir, 'node_modules', '.bin', 'esbuild'),
    ['src/main.ts', '--bundle', '--platform=node', '--format=esm', '--packages=external', '--outfile=dist/main.js', '--log-level=warning'],
    { cwd: projectDir, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  const client = spawnSync(process.execPath, ['dist/main.js', 'Alice'], { cwd: projectDir, encoding: 'utf8', timeout: 20_000 });
  assert.equal(client.status, 0, client.stdout + client.stderr);
  assert.match(client.stdout, /Connected to SpacetimeDB!/);
  assert.match(client.stdout, /New person: Alice/);

  // The database positional comes from spacetime.json too.
  const sql = await runCli(['sql', 'SELECT * FROM person'], { configPath, cwd: projectDir });
  assert.equal(sql.code, 0, sql.stderr);
  assert.match(sql.stdout, /"Alice"/);
  const call = await runCli(['call', 'add', 'Bob'], { configPath, cwd: projectDir });
  assert.equal(call.code, 0, call.stderr);
  const count = await runCli(['sql', database, 'SELECT * FROM person WHERE name = \'Bob\''], { configPath, cwd: projectDir });
  assert.match(count.stdout, /"Bob"/, 'call and sql with an explicit configured name');
});

test('a CLI database name that matches no configured target wins (with the config\'s module and server)', async () => {
  const pub = await runCli(['publish', 'cli-db-name'], { configPath, cwd: projectDir });
  assert.equal(pub.code, 0, pub.stderr + pub.stdout);
  assert.match(pub.stdout, /Publishing module .*spacetimedb to database 'cli-db-name'/);
  assert.match(pub.stdout, /Created new database with name: cli-db-name, identity: c200/);
  const sub = await runCli(['subscribe', 'SELECT * FROM person', '-n', '0', '--print-initial-update', '-t', '5'], { configPath, cwd: projectDir });
  assert.equal(sub.code, 0, sub.stderr);
  assert.match(sub.stdout, /"Alice"/, 'subscribe takes the database from spacetime.json');
});

test('lock, unlock and rename use the configured database', async () => {
  const lock = await runCli(['lock'], { configPath, cwd: projectDir });
  assert.equal(lock.code, 0, lock.stderr);
  assert.match(lock.stdout, /^Database [0-9a-f]{64} is now locked\. It cannot be deleted until unlocked\.\n$/);
  const del = await runCli(['delete', '-y'], { configPath, cwd: projectDir });
  assert.equal(del.code, 1);
  assert.match(del.stderr, /Database is locked and cannot be deleted/);
  const unlock = await runCli(['unlock'], { configPath, cwd: projectDir });
  assert.match(unlock.stdout, /is now unlocked\.\n$/);

  const renamed = `${database}-renamed`;
  const rename = await runCli(['rename', '--to', renamed, database], { configPath, cwd: projectDir });
  assert.equal(rename.code, 0, rename.stderr);
  const identity = /is now unlocked/.test(unlock.stdout) ? /Database ([0-9a-f]{64})/.exec(unlock.stdout)![1] : '';
  assert.equal(rename.stdout, `Name set to ${renamed} for identity ${identity}.\n`);
  const old = await runCli(['sql', database, 'SELECT * FROM person', '--no-config'], { configPath, cwd: projectDir });
  assert.equal(old.code, 1);
  const back = await runCli(['rename', '--to', database, identity], { configPath, cwd: projectDir });
  assert.equal(back.code, 0, back.stderr);
});

test('spacetime dev republishes after a module edit and keeps watching after a build error', async () => {
  const child = spawn(process.execPath, [...cliArgv(), '--config-path', configPath, 'dev', '--run', 'node -e "console.log(40+2)"'],
    { cwd: projectDir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const waitFor = async (re: RegExp, from: number, ms = 30_000): Promise<number> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const m = re.exec(out.slice(from));
      if (m) return from + m.index + m[0].length;
      if (child.exitCode !== null) throw new Error(`dev exited early:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${re}:\n${out}`);
  };
  try {
    let at = await waitFor(/Generating module bindings\.\.\.[\s\S]*Published successfully![\s\S]*Starting client: node -e[\s\S]*\n42\n/, 0);
    const modulePath = path.join(projectDir, 'spacetimedb', 'src', 'index.ts');
    const source = readFileSync(modulePath, 'utf8');
    writeFileSync(modulePath, source + '\nthis is not typescript\n');
    const before = at;
    at = await waitFor(/File change detected, rebuilding\.\.\.[\s\S]*Waiting for next change\.\.\./, at);
    // The diagnostics go to stderr and the progress lines to stdout: two pipes, so either may arrive first.
    at = Math.max(at, await waitFor(/\[ERROR\]/, before, 10_000));
    writeFileSync(modulePath, source.replace("person: table({ public: true }, { name: t.string() }),",
      "person: table({ public: true }, { name: t.string() }),\n  pet: table({ public: true }, { species: t.string() }),"));
    at = await waitFor(/File change detected, rebuilding\.\.\.[\s\S]*Published successfully!/, at);
    assert.match(out, /Created user table: pet \(public\)/, 'dev shows the migration plan');
    const sql = await runCli(['sql', 'SELECT * FROM pet'], { configPath, cwd: projectDir });
    assert.equal(sql.code, 0, sql.stderr);
    const bindings = readFileSync(path.join(projectDir, 'src', 'module_bindings', 'index.ts'), 'utf8');
    assert.match(bindings, /pet/, 'dev regenerated the client bindings');
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  }
  assert.match(out, /Stopping development mode\.\.\./);
});
