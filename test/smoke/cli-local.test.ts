// Upstream smoketests that exercise the CLI on its own: standalone servers.rs (test_servers, test_edit_server),
// create_project.rs, cli/dev.rs and cli/generate.rs. Upstream's Rust-project steps (`--lang rust`, template
// `basic-rs`) run as written in test/cli/init-languages.test.ts; here the same steps run for a TypeScript project, and
// `generate --lang rust` differs by design: this CLI builds TypeScript modules only (test/smoke/README.md). One
// server, for `server fingerprint`.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CliError, formatCliError } from '../../src/cli/errors.js';
import { cleanupTempDirs, freePort, makeTempDir, repoRoot, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('servers: add prints host and protocol, list shows it, fingerprint of a running server', async () => {
  const configPath = tempConfigPath();
  const cli = (args: string[]) => runCli(args, { configPath });
  const add = await cli(['server', 'add', '--url', 'https://testnet.spacetimedb.com', 'testnet', '--no-fingerprint']);
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, /Host: testnet\.spacetimedb\.com\n/);
  assert.match(add.stdout, /Protocol: https\n/);
  const list = await cli(['server', 'list']);
  assert.match(list.stdout, /^\s*testnet\.spacetimedb\.com\s+https\s+testnet\s*$/m);
  assert.equal((await cli(['server', 'add', '--url', server.url, 'test-local', '--no-fingerprint'])).code, 0);
  const fingerprint = await cli(['server', 'fingerprint', 'test-local', '-y']);
  assert.equal(fingerprint.code, 0, fingerprint.stderr);
  assert.match(fingerprint.stdout, /fingerprint/i);
  // Upstream's exact text: the new key, then its y_or_n skipped by --yes; a second run finds it unchanged.
  const key = await (await fetch(`${server.url}/v1/identity/public-key`)).text();
  assert.equal(fingerprint.stdout, `No saved fingerprint for server test-local. New fingerprint:\n${key}\nSkipping confirmation due to --yes\n`);
  const again = await cli(['server', 'fingerprint', server.url, '-y']);
  assert.equal(again.stdout, `Fingerprint is unchanged for server ${new URL(server.url).host}:\n${key}\n`);
});

test('servers: list prints upstream\'s table (one space each side of every cell, DEFAULT aligned right)', async () => {
  const list = await runCli(['server', 'list'], { configPath: tempConfigPath() });
  assert.equal(list.stdout, [
    ' DEFAULT  HOSTNAME                   PROTOCOL  NICKNAME  ',
    '          maincloud.spacetimedb.com  https     maincloud ',
    '     ***  127.0.0.1:3000             http      local     ',
  ].join('\n') + '\n');
});

test('servers: edit renames a server and changes its URL', async () => {
  const configPath = tempConfigPath();
  const cli = (args: string[]) => runCli(args, { configPath });
  assert.equal((await cli(['server', 'add', '--url', 'https://foo.com', 'foo', '--no-fingerprint'])).code, 0);
  const edit = await cli(['server', 'edit', 'foo', '--url', 'https://edited-testnet.spacetimedb.com', '--new-name', 'edited-testnet',
    '--no-fingerprint', '--yes']);
  assert.equal(edit.code, 0, edit.stderr);
  assert.equal(edit.stdout, 'Changing nickname from foo to edited-testnet\nChanging host from foo.com to edited-testnet.spacetimedb.com\n' +
    'Changing protocol from https to https\nSkipping confirmation due to --yes\n');
  const conflict = await cli(['server', 'edit', 'edited-testnet', '--new-name', 'local', '--yes']);
  assert.equal(conflict.code, 1);
  assert.match(conflict.stderr, /Error: Nickname local conflicts with saved configuration for server local: http:\/\/127\.0\.0\.1:3000\n/);
  const list = await cli(['server', 'list']);
  assert.match(list.stdout, /^\s*edited-testnet\.spacetimedb\.com\s+https\s+edited-testnet\s*$/m);
});

test('servers: add, set-default and remove name servers as upstream does (nickname, host or URL) with its error texts', async () => {
  const configPath = tempConfigPath();
  const cli = (args: string[]) => runCli(args, { configPath });
  const add = (url: string, name: string, ...extra: string[]) => cli(['server', 'add', '--url', url, name, ...extra]);
  const error = async (result: Promise<{ code: number; stderr: string }>, text: string) => {
    const r = await result;
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`Error: ${text}`), r.stderr);
  };
  await error(add('example.org', 'bare', '--no-fingerprint'), 'Invalid url: example.org\n');
  await error(add('http://example.org', 'local', '--no-fingerprint'), 'Server nickname local already in use: http://127.0.0.1:3000\n');
  await error(add('http://local', 'x', '--no-fingerprint'), 'Server host name is ambiguous with existing server nickname: local\n');
  await error(add('http://127.0.0.1:3000/', 'y', '--no-fingerprint'), 'Server already configured for host: 127.0.0.1:3000\n');
  const closed = `http://127.0.0.1:${await freePort()}`;
  await error(add(closed, 'down'), `Unable to retrieve fingerprint for server: ${closed}\nIs the server running?\n` +
    `Add a server without retrieving its fingerprint with:\n\tspacetime server add --url ${closed} --no-fingerprint\n\nCaused by:\n    0: error sending request`);
  assert.equal((await add('http://example.com/', 'ex', '--no-fingerprint')).code, 0);
  assert.equal((await cli(['server', 'set-default', 'example.com'])).code, 0);
  assert.match((await cli(['server', 'list'])).stdout, /^ +\*\*\* {2}example\.com /m);
  assert.equal((await cli(['server', 'remove', 'http://example.com'])).code, 0, 'a server removed by its URL');
  assert.doesNotMatch(readFileSync(configPath, 'utf8'), /example\.com/);
});

test('errors print their causes as anyhow does: numbered when several, further lines indented under the first', () => {
  assert.equal(formatCliError(new CliError('a', ['b\nc'])), 'Error: a\n\nCaused by:\n    b\n    c');
  assert.equal(formatCliError(new CliError('a', ['b\n\nc', 'd'])), 'Error: a\n\nCaused by:\n    0: b\n       \n       c\n    1: d');
});

test('create_project: init needs --lang (or a template), then refuses an existing project', async () => {
  const configPath = tempConfigPath();
  const dir = makeTempDir('stdb-create-');
  const init = (args: string[], cwd?: string) => runCli(['init', '--non-interactive', ...args], { configPath, cwd });
  assert.notEqual((await init(['test-project'], dir)).code, 0, 'without --lang');
  assert.notEqual((await init(['--project-path', dir, 'test-project'])).code, 0, 'without --lang, with --project-path');
  const created = await init(['--lang=typescript', '--project-path', dir, 'test-project']);
  assert.equal(created.code, 0, created.stdout + created.stderr);
  assert.ok(existsSync(path.join(dir, 'spacetimedb', 'src', 'index.ts')));
  const again = await init(['--lang=typescript', '--project-path', dir, 'test-project']);
  assert.equal(again.code, 1, 'the project exists');
  assert.ok(again.stderr.includes(`Error: Cannot create new SpacetimeDB project in non-empty directory: ${dir}\n`), again.stderr);
  // Upstream's other texts: a file in the way; --server-only may use a non-empty directory unless it has a module.
  writeFileSync(path.join(dir, 'a-file'), '');
  const file = await init(['--lang=typescript', '--project-path', 'a-file', 'x'], dir);
  assert.ok(file.stderr.includes('Error: Path a-file exists but is not a directory. A new SpacetimeDB project must be initialized in an ' +
    'empty directory.\n'), file.stderr);
  const client = makeTempDir('stdb-create-');
  writeFileSync(path.join(client, 'package.json'), '{}');
  assert.equal((await init(['--lang=typescript', '--server-only', '--project-path', client, 'mod'])).code, 0);
  assert.ok(existsSync(path.join(client, 'spacetimedb', 'src', 'index.ts')));
  const module = await init(['--lang=typescript', '--server-only', '--project-path', client, 'mod']);
  assert.ok(module.stderr.includes(`Error: A SpacetimeDB module already exists in the target directory: ${client}\n`), module.stderr);
});

test('dev: --template / -t are accepted flags; init from a template; an unknown spacetime.json field', async () => {
  const configPath = tempConfigPath();
  const help = await runCli(['dev', '--help'], { configPath });
  assert.equal(help.code, 0);
  assert.ok(help.stdout.includes('--template') && help.stdout.includes('-t'), help.stdout);
  for (const flag of ['--template', '-t']) {
    const dev = await runCli(['dev', flag, 'react', '--server', 'nonexistent-server-12345'], { configPath, cwd: makeTempDir('stdb-dev-') });
    assert.notEqual(dev.code, 0);
    assert.ok(!(dev.stderr.includes('unrecognized') || dev.stderr.includes('unknown option')), dev.stderr);
  }
  const dir = makeTempDir('stdb-dev-');
  const init = await runCli(['init', '--template', 'basic-ts', '--local', '--non-interactive', 'test-project'], { configPath, cwd: dir });
  assert.equal(init.code, 0, init.stderr);
  assert.ok(existsSync(path.join(dir, 'test-project', 'spacetimedb')));
  assert.ok(existsSync(path.join(dir, 'test-project', 'src')));

  const bad = makeTempDir('stdb-dev-');
  writeFileSync(path.join(bad, 'spacetime.json'), '{\n  "dev": {\n    "run_command": "npm run dev"\n  },\n  "publish": {\n    "database": "test-db"\n  }\n}');
  mkdirSync(path.join(bad, 'spacetimedb', 'src'), { recursive: true });
  writeFileSync(path.join(bad, 'spacetimedb', 'src', 'index.ts'), '');
  const dev = await runCli(['dev', 'test-db'], { configPath, cwd: bad });
  assert.notEqual(dev.code, 0);
  assert.ok(dev.stderr.includes('Failed to load spacetime.json'), dev.stderr);
  assert.ok(dev.stderr.includes('unknown field `run_command`'), dev.stderr);
});

test('generate: a spacetime.json entry for another module path gives way to the command line', async () => {
  const configPath = tempConfigPath();
  const dir = makeTempDir('stdb-generate-');
  const init = await runCli(['init', '--non-interactive', '--lang', 'typescript', '--project-path', dir, 'test-project'], { configPath, cwd: dir });
  assert.equal(init.code, 0, init.stderr);
  const moduleDir = path.join(dir, 'spacetimedb');
  // Upstream points the module at its local bindings crate; here node_modules links the installed library.
  mkdirSync(path.join(moduleDir, 'node_modules'));
  symlinkSync(path.join(repoRoot, 'node_modules', 'spacetimedb'), path.join(moduleDir, 'node_modules', 'spacetimedb'), 'dir');
  writeFileSync(path.join(moduleDir, 'spacetime.json'),
    '{\n  "generate": [\n    {\n      "language": "typescript",\n      "out-dir": "./config-output",\n      "module-path": "config-module-path"\n    }\n  ]\n}');
  const build = await runCli(['build', '--module-path', moduleDir], { configPath });
  assert.equal(build.code, 0, build.stderr);
  const outDir = path.join(moduleDir, 'cli-output');
  mkdirSync(outDir);
  const generate = await runCli(['generate', '--lang', 'typescript', '--out-dir', outDir, '--module-path', moduleDir], { configPath, cwd: moduleDir });
  assert.equal(generate.code, 0, generate.stderr);
  assert.ok(existsSync(path.join(outDir, 'index.ts')), generate.stdout);
  assert.ok(!existsSync(path.join(moduleDir, 'config-output')));
});
