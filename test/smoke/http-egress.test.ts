// Upstream smoketest standalone http_egress.rs (test_http_redirect_to_disallowed_ip_is_blocked): on a server that lets
// modules reach loopback (upstream's allow_loopback_http_for_tests build; `start --allow-loopback-http` here), a
// procedure asks `http://localhost:<port>/`, a one-shot server there answers 302 to a private address, and the
// procedure must see that hop refused. The redirect server must have been reached (by the name `localhost`).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { smoke, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
before(async () => {
  server = await startTestServer({ args: ['--allow-loopback-http'], env: { SPACETIME_ALLOW_PRIVATE_HTTP: '' } });
  st = smoke(server, tempConfigPath());
  await st.newIdentity();
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

/** Upstream's redirect server: IPv4 loopback only, answers its first connection with a 302 and closes. */
async function redirectServer(location: string): Promise<{ port: number; served: Promise<void> }> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const served = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the redirect server got no request')), 10_000);
    listener.once('connection', (socket) => {
      clearTimeout(timer);
      socket.once('data', () => {
        socket.end(`HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        listener.close();
        resolve();
      });
    });
  });
  return { port: (listener.address() as net.AddressInfo).port, served };
}

test('http_egress (standalone): a redirect from an allowed loopback server to a private address is refused', async () => {
  const { port, served } = await redirectServer('http://10.0.0.1:80/');
  const db = await st.publish('smoke-http-egress');
  const r = await st.call(db, 'request_disallowed_ip', `"http://localhost:${port}/"`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  await served;
});
