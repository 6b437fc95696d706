// `spacetime dev` as upstream's, against a real server and the real CLI (no registry installs): without a terminal it
// never waits on a question and names the flag that answers it; with --template it creates the project; it publishes
// every configured database, streams module logs, keeps .env.local and the client's environment on the database it
// publishes (`spacetime dev <name>` included), and rebuilds on module and config changes but not on gitignored files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { cliArgv, linkProjectDependencies, makeWorkDir } from './helpers.js';

let srv: TestServer;
let configPath: string;

before(async () => {
  srv = await startTestServer();
  configPath = tempConfigPath();
  const add = await runCli(['server', 'add', '--url', srv.url, 'devsrv', '-d', '--no-fingerprint'], { configPath });
  assert.equal(add.code, 0, add.stderr);
});

after(async () => {
  await srv?.stop();
  cleanupTempDirs();
});

/** A running `spacetime dev` (stdin a pipe: not a terminal) whose output can be awaited in order. */
class DevProcess {
  out = '';
  at = 0;
  readonly child: ChildProcess;
  constructor(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [...cliArgv(), '--config-path', configPath, 'dev', ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
  }

  /** Waits for `re` after the last match. */
  async next(re: RegExp, ms = 30_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const m = re.exec(this.out.slice(this.at));
      if (m) { this.at += m.index + m[0].length; return m; }
      if (this.child.exitCode !== null) throw new Error(`dev exited (${this.child.exitCode}) before ${re}:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${re}:\n${this.out}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGINT');
    await exited;
  }
}

async function devExit(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  const dev = new DevProcess(args, cwd);
  const code = await new Promise<number | null>((resolve) => dev.child.once('exit', resolve));
  return { code, out: dev.out };
}

test('without a terminal, dev never waits on a question and names the flag that answers it', async () => {
  const empty = makeWorkDir('stdb-dev-empty-');
  const noTemplate = await devExit([], empty);
  assert.equal(noTemplate.code, 1);
  assert.match(noTemplate.out, /No SpacetimeDB project found in/);
  assert.match(noTemplate.out, /pass --template <id>/);

  const unknown = await devExit(['--template', 'nope-ts'], empty);
  assert.equal(unknown.code, 1);
  assert.match(unknown.out, /Unknown template: nope-ts/);

  // A project whose config names no database.
  const init = await runCli(['init', 'nodb', '--template', 'basic-ts', '--non-interactive'], { configPath, cwd: empty });
  assert.equal(init.code, 0, init.stderr);
  const nodb = path.join(empty, 'nodb');
  writeFileSync(path.join(nodb, 'spacetime.local.json'), '{}\n');
  const noDatabase = await devExit(['--run', 'true'], nodb);
  assert.equal(noDatabase.code, 1);
  assert.match(noDatabase.out, /No database selected, and no terminal to ask: pass one \(`spacetime dev <database>`\), or -y/);

  // A database named in the checked-in spacetime.json needs --yes.
  writeFileSync(path.join(nodb, 'spacetime.json'), JSON.stringify({ server: 'devsrv', 'module-path': './spacetimedb', database: 'prod-db' }));
  const prod = await devExit(['--run', 'true'], nodb);
  assert.equal(prod.code, 1);
  assert.match(prod.out, /`prod-db` are defined in spacetime\.json[\s\S]*Pass --yes to publish to them in dev mode/);
  assert.equal((await runCli(['sql', 'prod-db', 'SELECT * FROM person', '--no-config'], { configPath })).code, 1, 'nothing was published');
});

test('dev <name> --template creates the project, publishes, streams logs and gives the client the same database', async () => {
  const work = makeWorkDir('stdb-dev-new-');
  const clientProbe = 'node -e "console.log(\'client sees \' + process.env.SPACETIMEDB_DB_NAME + \' \' + process.env.VITE_SPACETIMEDB_DB_NAME + \' \' + process.env.SPACETIMEDB_HOST)"';
  // dev runs `npm install` in the new project; here npm has an empty cache and no reachable registry, so the install
  // fails fast (no registry use in `npm test`), dev says so and keeps watching; the test then links the packages.
  const npmOffline = { npm_config_cache: path.join(work, 'npm-cache'), npm_config_registry: 'http://127.0.0.1:9/',
    npm_config_fetch_retries: '0', npm_config_fetch_timeout: '2000' };
  const dev = new DevProcess(['fresh-db', '--template', 'basic-ts', '--run', clientProbe], work, npmOffline);
  const projectDir = path.join(work, 'fresh-db');
  try {
    await dev.next(/No SpacetimeDB project found in/);
    await dev.next(/Project initialized successfully!/);
    await dev.next(/Installing dependencies with npm\.\.\./);
    await dev.next(/Please run 'npm install' manually in/);
    await dev.next(/Database: fresh-db\n/);
    await dev.next(/Waiting for next change\.\.\./);
    await dev.next(new RegExp(`client sees fresh-db fresh-db ws://127\\.0\\.0\\.1:${srv.port}\\n`));
    linkProjectDependencies(projectDir);
    const source = path.join(projectDir, 'spacetimedb', 'src', 'index.ts');
    writeFileSync(source, readFileSync(source, 'utf8') + '\n');
    await dev.next(/File change detected, rebuilding\.\.\.[\s\S]*Published successfully!/);
    assert.equal((JSON.parse(readFileSync(path.join(projectDir, 'spacetime.local.json'), 'utf8')) as { database: string }).database, 'fresh-db');
    assert.match(readFileSync(path.join(projectDir, '.env.local'), 'utf8'), /^SPACETIMEDB_DB_NAME=fresh-db$/m);
    // The module's log reaches dev's console.
    const call = await runCli(['call', 'fresh-db', 'say_hello'], { configPath, cwd: projectDir });
    assert.equal(call.code, 0, call.stderr);
    await dev.next(/INFO: .*Hello, World!/);
  } finally {
    await dev.stop();
  }
});

test("`spacetime dev <other-name>`: .env.local and the template's real client follow the database dev publishes", async () => {
  const work = makeWorkDir('stdb-dev-agree-');
  const init = await runCli(['init', 'agree', '--template', 'basic-ts', '--non-interactive'], { configPath, cwd: work });
  assert.equal(init.code, 0, init.stderr);
  const projectDir = path.join(work, 'agree');
  linkProjectDependencies(projectDir);
  // Drop dev.run so dev detects the client command from package.json (and saves it, as upstream).
  const config = JSON.parse(readFileSync(path.join(projectDir, 'spacetime.json'), 'utf8')) as Record<string, unknown>;
  delete config.dev;
  writeFileSync(path.join(projectDir, 'spacetime.json'), JSON.stringify(config, null, 2));
  const dev = new DevProcess(['other-name'], projectDir);
  try {
    await dev.next(/Detected client command and saved to .*spacetime\.json/);
    await dev.next(/Database: other-name\n/);
    await dev.next(/Updated \.env\.local with database name other-name/);
    await dev.next(/Published successfully!/);
    await dev.next(/Starting client: npm run dev/);
    await dev.next(new RegExp(`Database: other-name at ws://127\\.0\\.0\\.1:${srv.port}`));
    await dev.next(/Connected to SpacetimeDB!/);
    assert.match(readFileSync(path.join(projectDir, '.env.local'), 'utf8'), /^VITE_SPACETIMEDB_DB_NAME=other-name$/m);
    assert.equal((JSON.parse(readFileSync(path.join(projectDir, 'spacetime.json'), 'utf8')) as { dev: { run: string } }).dev.run, 'npm run dev');
  } finally {
    await dev.stop();
  }
});

test('every configured database is published; module and config changes rebuild, gitignored files do not', async () => {
  const work = makeWorkDir('stdb-dev-multi-');
  const init = await runCli(['init', 'multi', '--template', 'basic-ts', '--non-interactive'], { configPath, cwd: work });
  assert.equal(init.code, 0, init.stderr);
  const projectDir = path.join(work, 'multi');
  linkProjectDependencies(projectDir);
  writeFileSync(path.join(projectDir, 'spacetime.local.json'),
    JSON.stringify({ database: 'multi-main', children: [{ database: 'multi-second' }] }, null, 2));
  writeFileSync(path.join(projectDir, 'spacetimedb', '.gitignore'), 'node_modules/\ndist/\nscratch/\n*.tmp\n');
  const dev = new DevProcess(['--run', 'true'], projectDir);
  try {
    await dev.next(/Databases: multi-main, multi-second\n/);
    await dev.next(/Publishing to multi-main\.\.\.[\s\S]*Publishing to multi-second\.\.\.[\s\S]*Published successfully!/);
    for (const db of ['multi-main', 'multi-second']) {
      const sql = await runCli(['sql', db, 'SELECT * FROM person', '--no-config'], { configPath });
      assert.equal(sql.code, 0, `${db}: ${sql.stderr}`);
    }
    const call = await runCli(['call', 'multi-second', 'say_hello', '--no-config'], { configPath });
    assert.equal(call.code, 0, call.stderr);
    await dev.next(/\[multi-second\] .*INFO: .*Hello, World!/);

    // Gitignored: a scratch directory and a *.tmp file in the module.
    mkdirSync(path.join(projectDir, 'spacetimedb', 'scratch'));
    writeFileSync(path.join(projectDir, 'spacetimedb', 'scratch', 'notes.ts'), 'export {};\n');
    writeFileSync(path.join(projectDir, 'spacetimedb', 'src', 'editor.tmp'), 'x');
    await new Promise((r) => setTimeout(r, 1_500));
    assert.doesNotMatch(dev.out.slice(dev.at), /File change detected/, 'gitignored changes do not rebuild');

    const source = path.join(projectDir, 'spacetimedb', 'src', 'index.ts');
    writeFileSync(source, readFileSync(source, 'utf8') + '\n// edited\n');
    await dev.next(/File change detected, rebuilding\.\.\.[\s\S]*Published successfully!/);

    // A config change: a third database appears and is published.
    writeFileSync(path.join(projectDir, 'spacetime.local.json'),
      JSON.stringify({ database: 'multi-main', children: [{ database: 'multi-second' }, { database: 'multi-third' }] }, null, 2));
    await dev.next(/File change detected, rebuilding\.\.\.[\s\S]*Publishing to multi-third\.\.\.[\s\S]*Published successfully!/);
    assert.equal((await runCli(['sql', 'multi-third', 'SELECT * FROM person', '--no-config'], { configPath })).code, 0);
  } finally {
    await dev.stop();
  }
  assert.ok(existsSync(path.join(projectDir, '.env.local')));
});
