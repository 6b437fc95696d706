// A procedure's `ctx.http.fetch` waits on the module isolate's own thread, not on the server's: while one procedure
// waits for a slow HTTP answer, other databases (and the server's own routes) keep answering at once; and a procedure
// may fetch from the very server that runs it (upstream's `read_my_schema` test does) without waiting for a timeout.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer, within } from '../harness.js';

/** How long the slow endpoint takes to answer; everything else must be answered well before it. */
const slowAnswerMs = 2_000;
/** What "at once" means on a loaded 2-core machine. */
const promptMs = 700;

let server: TestServer;
let slow: http.Server;
let slowUrl: string;

before(async () => {
  slow = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('slow answer'); }, slowAnswerMs);
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  slowUrl = `http://127.0.0.1:${(slow.address() as { port: number }).port}/`;
  process.env.SPACETIME_ALLOW_PRIVATE_HTTP = '1';          // inherited by the server process: loopback allowed
  server = await startTestServer();
  delete process.env.SPACETIME_ALLOW_PRIVATE_HTTP;
  const configPath = tempConfigPath();
  for (const [name, module] of [['fetcher', 'feat-a'], ['bystander', 'basic']]) {
    const pub = await runCli(['publish', '-s', server.url, '-p', `test/fixtures/modules/${module}`, '-y', name], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
  }
});
after(async () => {
  await server?.stop();
  await new Promise<void>((resolve) => slow.close(() => resolve()));
  cleanupTempDirs();
});

function call(db: string, fn: string, args: unknown[]): Promise<{ status: number; text: string }> {
  return fetch(`${server.url}/v1/database/${db}/call/${fn}`, {
    method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json' },
  }).then(async (res) => ({ status: res.status, text: await res.text() }));
}

test('while a procedure waits for HTTP, other databases and routes answer at once', async () => {
  const started = performance.now();
  const waiting = call('fetcher', 'fetch_text', [slowUrl]);
  await new Promise((r) => setTimeout(r, 200));                   // the procedure is now waiting for its answer
  const t0 = performance.now();
  const [ping, other] = await Promise.all([
    fetch(`${server.url}/v1/ping`).then((r) => r.status),
    call('bystander', 'add', ['Ada']),
  ]);
  const otherMs = performance.now() - t0;
  assert.equal(ping, 200);
  assert.equal(other.status, 200, other.text);
  assert.ok(otherMs < promptMs, `another database answered after ${otherMs.toFixed(0)} ms while the procedure waited`);
  const done = await within(waiting, 'the slow procedure', slowAnswerMs + 8_000);
  assert.equal(done.status, 200, done.text);
  assert.equal(JSON.parse(done.text), '200 slow answer');
  assert.ok(performance.now() - started >= slowAnswerMs - 50, 'the procedure did wait for the slow answer');
});

test('a procedure can fetch from the server that runs it', async () => {
  const self = `${server.url}/v1/database/bystander/sql`;      // POST 'ping' as SQL: a quick 400 from this server
  const r = await within(call('fetcher', 'fetch_text', [self]), 'a fetch from the same server', 8_000);
  assert.equal(r.status, 200, r.text);
  assert.match(JSON.parse(r.text) as string, /^400 /);
});
