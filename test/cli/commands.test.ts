// The real CLI process: config creation, login/logout/show, server add/list, usage errors, and end-to-end
// publish/call/logs against a real server started by the harness.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { cleanupTempDirs, runCli, scrapeIdentity, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

after(cleanupTempDirs);

test('first run writes the default cli.toml and says so on stderr', async () => {
  const configPath = tempConfigPath();
  const r = await runCli(['login', 'show'], { configPath });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, 'You are not logged in. Run `spacetime login` to log in.\n');
  assert.match(r.stderr, new RegExp(`Saving config to ${configPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.`));
  const toml = readFileSync(configPath, 'utf8');
  assert.match(toml, /default_server = "local"/);
  assert.match(toml, /host = "127\.0\.0\.1:3000"/);
});

test('usage errors exit 2 with `error:`; no subcommand exits 2', async () => {
  const configPath = tempConfigPath();
  const bad = await runCli(['publish', '--no-such-flag'], { configPath });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /error: unknown option '--no-such-flag'/);
  assert.equal((await runCli([], { configPath })).code, 2);
});

test('login --token, show --token, logout twice', async () => {
  const configPath = tempConfigPath();
  const notJwt = await runCli(['login', '--token', 'abc'], { configPath });
  assert.equal(notJwt.stdout, 'Token saved.\n');
  const payload = Buffer.from(JSON.stringify({ hex_identity: 'c200' + '1'.repeat(60), sub: 's', iss: 'i', iat: 1 })).toString('base64url');
  const jwt = `e30.${payload}.sig`;
  const r = await runCli(['login', '--token', jwt], { configPath });
  assert.match(r.stdout, /Logged in with identity c2001{60}\n$/);
  const show = await runCli(['login', 'show', '--token'], { configPath });
  assert.equal(show.stdout, `You are logged in as c200${'1'.repeat(60)}\nYour auth token (don't share this!) is ${jwt}\n`);
  assert.equal((await runCli(['logout'], { configPath })).stdout, `Logged out (identity c200${'1'.repeat(60)}).\n`);
  assert.equal((await runCli(['logout'], { configPath })).stdout, 'You are not logged in.\n');
});

test('server list, set-default and remove', async () => {
  const configPath = tempConfigPath();
  const list = await runCli(['server', 'list'], { configPath });
  assert.match(list.stderr, /WARNING: This command is UNSTABLE and subject to breaking changes\.\n\n/);
  assert.match(list.stdout, /^ DEFAULT  HOSTNAME\s+PROTOCOL  NICKNAME +\n/);
  assert.match(list.stdout, /\*\*\*\s+127\.0\.0\.1:3000\s+http\s+local/);
  const unknown = await runCli(['server', 'set-default', 'nope'], { configPath });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /Error: Cannot set default server to unknown server nope/);
  assert.equal((await runCli(['server', 'set-default', 'maincloud'], { configPath })).code, 0);
  assert.match((await runCli(['server', 'list'], { configPath })).stdout, /\*\*\*\s+maincloud\.spacetimedb\.com/);
  assert.equal((await runCli(['server', 'remove', 'maincloud'], { configPath })).code, 0);
  assert.doesNotMatch(readFileSync(configPath, 'utf8'), /maincloud|default_server/);
});

describe('against a real server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('server add fetches the fingerprint; ping answers', async () => {
    const configPath = tempConfigPath();
    const add = await runCli(['server', 'add', 'testsrv', '--url', server.url], { configPath });
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /For server http:\/\/127\.0\.0\.1:\d+, got fingerprint:\n-----BEGIN PUBLIC KEY-----/);
    assert.match(add.stdout, /Host: 127\.0\.0\.1:\d+\nProtocol: http\n/);
    const ping = await runCli(['server', 'ping', 'testsrv'], { configPath });
    assert.equal(ping.stdout, `Server is online: ${server.url}\n`);
  });

  test('implicit login, publish, call, logs, unknown reducer', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    const pub = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/basic', '--yes', 'clitest'], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
    assert.match(pub.stdout, /We have logged in directly to your target server\.\nWARNING: This login will NOT work for any other servers\.\nLogged in with identity c200[0-9a-f]{60}\n/);
    assert.match(pub.stdout, /Build finished successfully\.\n/);
    assert.match(pub.stdout, /Created new database with name: clitest, identity: c200[0-9a-f]{60}\n/);
    const identity = scrapeIdentity(pub.stdout);

    for (const name of ['Alice', '"Bob"']) {
      const call = await runCli(['call', ...s, '--', identity, 'add', name], { configPath });
      assert.equal(call.code, 0, call.stderr);
      assert.equal(call.stdout, '');
    }
    assert.equal((await runCli(['call', ...s, 'clitest', 'say_hello'], { configPath })).code, 0);
    const logs = await runCli(['logs', ...s, '--format=json', '-n', '3', '--', identity], { configPath });
    assert.deepEqual(logs.stdout.trim().split('\n').map((l) => JSON.parse(l).message), ['Hello, Alice!', 'Hello, Bob!', 'Hello, World!']);
    const text = await runCli(['logs', ...s, '-n', '1', 'clitest'], { configPath });
    assert.match(text.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z  INFO: .*Hello, World!\n$/);

    const unknown = await runCli(['call', ...s, 'clitest', 'say_helo'], { configPath });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Error: No such reducer OR procedure `say_helo` for database `clitest` resolving to identity `[0-9a-f]{64}`\.\n\nA reducer with a similar name exists: `say_hello`/);

    const again = await runCli(['publish', ...s, '-p', 'test/fixtures/modules/basic', '--yes', 'clitest'], { configPath });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`Updated database with name: clitest, identity: ${identity}\n`));
  });

  test('delete without confirmation aborts with exit 0', async () => {
    const configPath = tempConfigPath();
    const s = ['-s', server.url];
    assert.equal((await runCli(['publish', ...s, '-p', 'test/fixtures/modules/basic', '-y', 'todelete'], { configPath })).code, 0);
    const no = await runCli(['delete', ...s, 'todelete'], { configPath });
    assert.equal(no.code, 0);
    assert.match(no.stdout, /Are you sure you want to delete database todelete \([0-9a-f]{64}\)\? This action cannot be undone\. \[y\/N\]/);
    assert.match(no.stdout, /Aborting/);
    const yes = await runCli(['delete', ...s, 'todelete'], { configPath, input: 'y\n' });
    assert.equal(yes.code, 0, yes.stderr);
    const gone = await runCli(['call', ...s, 'todelete', 'add', 'x'], { configPath });
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /failed to find database `todelete`\./);
  });
});
