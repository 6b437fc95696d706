// Outbound HTTP under the loopback-only policy (`spacetime start --allow-loopback-http`, issue 13 item 10): a
// procedure reaches a server on this machine, and every redirect hop is checked again, so a loopback server cannot
// bounce a request to a private or metadata address. Refused hops are refused before any connection is made.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { addressAllowed } from '../../src/host/http-egress-worker.js';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
let local: http.Server;
let localUrl: string;
const configPath = tempConfigPath();

before(async () => {
  local = http.createServer((req, res) => {
    const targets: Record<string, string> = {
      '/to-private': 'http://10.1.2.3/secret',
      '/to-metadata': 'http://169.254.169.254/latest/meta-data',
      '/to-loopback': `${localUrl}/hello`,
    };
    const target = targets[req.url ?? ''];
    if (target !== undefined) res.writeHead(302, { location: target }).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from loopback');
  });
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  localUrl = `http://127.0.0.1:${(local.address() as { port: number }).port}`;
  const saved = { ...process.env };
  delete process.env.SPACETIME_ALLOW_PRIVATE_HTTP;
  process.env.SPACETIME_ALLOW_LOOPBACK_HTTP = '1';
  try {
    server = await startTestServer();
  } finally {
    process.env = saved;
  }
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/feat-a', '--yes', 'egress-loopback'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  await server?.stop();
  local?.close();
  cleanupTempDirs();
});

async function fetchText(url: string): Promise<string> {
  const res = await runCli(['call', '-s', server.url, 'egress-loopback', 'fetch_text', url], { configPath });
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout) as string;
}

test('the loopback policy admits 127.0.0.0/8 and ::1 and nothing else special', () => {
  for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '8.8.8.8']) assert.equal(addressAllowed(a, 'loopback'), true, a);
  for (const a of ['10.0.0.1', '192.168.1.1', '169.254.169.254', 'fe80::1', 'fd00::1', '0.0.0.0', '::']) {
    assert.equal(addressAllowed(a, 'loopback'), false, a);
  }
  assert.equal(addressAllowed('127.0.0.1', 'public'), false);
  assert.equal(addressAllowed('10.0.0.1', 'private'), true);
});

test('a procedure reaches a loopback server, also through a loopback redirect', async () => {
  assert.equal(await fetchText(`${localUrl}/hello`), '200 hello from loopback');
  assert.equal(await fetchText(`${localUrl}/to-loopback`), '200 hello from loopback');
});

test('a redirect from the allowed loopback server to a private or metadata address is refused', async () => {
  for (const path of ['/to-private', '/to-metadata']) {
    assert.equal(await fetchText(`${localUrl}${path}`), 'HttpError: refusing to connect to private or special-purpose addresses', path);
  }
  assert.equal(await fetchText('http://10.1.2.3/'), 'HttpError: refusing to connect to private or special-purpose addresses');
});
