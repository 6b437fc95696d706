// Issue 11 regressions for WebSocket sessions, through a real server process (`spacetime start`) and the real CLI:
// a second connection reusing a live connection_id is refused while the first keeps being served, and an uncaught
// error in a server process is written to its stderr with its stack before the process exits.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildFixture, cleanupTempDirs, makeTempDir, repoRoot, runCli, startTestServer, tempConfigPath, within, type TestServer } from '../harness.js';
import { RawClient } from './helpers.js';

let server: TestServer;
let wsBase: string;

before(async () => {
  server = await startTestServer();
  wsBase = server.url.replace(/^http/, 'ws');
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/basic', '-y', 'hard'], { configPath: tempConfigPath() });
  assert.equal(pub.code, 0, pub.stderr);
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

const connectionIdHex = '0123456789abcdef0123456789abcdef';

test('a second connection with a live connection_id is refused; the first is still served and the server stays up', async () => {
  const url = `${wsBase}/v1/database/hard/subscribe?compression=None&connection_id=${connectionIdHex}`;
  const first = await RawClient.open(url);
  const init = await first.next();
  assert.equal(init.tag, 'InitialConnection');
  assert.equal(init.tag === 'InitialConnection' && init.connectionId, BigInt(`0x${connectionIdHex}`));

  // Another identity (anonymous again) and the same identity (the first's token) are both refused before the upgrade.
  const token = init.tag === 'InitialConnection' ? init.token : '';
  for (const headers of [{}, { Authorization: `Bearer ${token}` }]) {
    const refused = await RawClient.open(url, undefined, headers).then(() => undefined, (e: { status?: number; body?: string }) => e);
    assert.equal(refused?.status, 409, 'refused with 409 Conflict');
    assert.match(refused?.body ?? '', new RegExp(`connection_id ${connectionIdHex} is already connected`));
  }

  assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200, 'the server is still up');
  first.send({ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
  assert.equal((await first.next()).tag, 'SubscribeApplied', 'the first client is still served');
  first.ws.close();
  await first.closed;

  // Once the first has gone, the id is free again.
  const deadline = Date.now() + 5000;
  let again: RawClient | undefined;
  while (again === undefined) {
    again = await RawClient.open(url).catch((e: { status?: number }) => {
      if (e.status !== 409 || Date.now() > deadline) throw e;
      return undefined;
    });
  }
  assert.equal((await again.next()).tag, 'InitialConnection');
  again.ws.close();
  assert.doesNotMatch(server.output(), /internal error|AssertionError/);
});

test('an upgrade to an unparsable request target is a 400, not an internal error', async () => {
  const refused = await RawClient.open(`${wsBase}//`).then(() => undefined, (e: { status?: number; body?: string }) => e);
  assert.equal(refused?.status, 400);
  assert.match(refused?.body ?? '', /bad request target/);
  assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
});

/**
 * Runs a real server in a child process with a published module (so the isolated-vm exit guard of host/runtime.ts is
 * installed, as it is under `spacetime start`), then `trigger` (JS run in that process); returns its exit code and
 * stderr.
 */
async function crashServer(trigger: string): Promise<{ code: number | null; stderr: string }> {
  const dataDir = makeTempDir('stdb-fatal-');
  const bundlePath = join(dataDir, 'basic.js');
  writeFileSync(bundlePath, (await buildFixture('basic')).code);
  const url = (path: string) => pathToFileURL(join(repoRoot, 'dist', path)).href;
  const script = `
    import { readFileSync } from 'node:fs';
    const { startServer } = await import(${JSON.stringify(url('server/main.js'))});
    const srv = await startServer({ listenAddr: '127.0.0.1:0', dataDir: ${JSON.stringify(dataDir)}, announce: false, exitOnUncaughtError: true });
    const { token } = await (await fetch(srv.url + '/v1/identity', { method: 'POST' })).json();
    const res = await fetch(srv.url + '/v1/database/fatal?host_type=Js', {
      method: 'PUT', body: readFileSync(${JSON.stringify(bundlePath)}, 'utf8'), headers: { Authorization: 'Bearer ' + token } });
    if (res.status !== 200) throw new Error('publish failed: ' + await res.text());
    ${trigger}`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await within(new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))), 'server exit', 20_000);
  return { code, stderr };
}

test('an uncaught exception in a server process is logged to stderr with its stack, then the process exits 1', async () => {
  const { code, stderr } = await crashServer(`setTimeout(() => { throw new Error('boom from a handler'); }, 10);`);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /uncaught exception: Error: boom from a handler\n\s+at /);
});

test('an unhandled rejection in a server process is logged with its stack too', async () => {
  const { code, stderr } = await crashServer(`setTimeout(() => { void Promise.reject(new Error('rejected in a handler')); }, 10);`);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /unhandled rejection: Error: rejected in a handler\n\s+at /);
});

test('a client that resets its connection leaves no internal error or stack trace in the server log (issue 13 item 11)', async () => {
  const before = server.output().length;
  for (let i = 0; i < 3; i++) {
    const client = await RawClient.open(`${wsBase}/v1/database/hard/subscribe?compression=None`);
    assert.equal((await client.next()).tag, 'InitialConnection');
    client.send({ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
    (client.ws as unknown as { _socket: import('node:net').Socket })._socket.resetAndDestroy();
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal((await fetch(`${server.url}/v1/ping`)).status, 200);
  const logged = server.output().slice(before);
  assert.doesNotMatch(logged, /internal error|ECONNRESET|\n\s+at /, logged);
});
