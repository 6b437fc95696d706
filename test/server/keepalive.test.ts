// Issue 11 item 4: while one database's reducer holds the server's thread up to its limit, requests that clients send
// to another database on idle keep-alive connections are all answered (late is acceptable today), never reset.
// Cause: Node closes an idle keep-alive socket from a timer, and once the thread is free again timers run before the
// sockets are read, so a connection idle for longer than the keep-alive timeout was closed with the client's request
// unread (ECONNRESET). The fix sizes the timeout from the longest hold (src/limits.ts httpKeepAliveTimeoutMs).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

/** Longer than Node's default keep-alive timeout (5 s), so the hold outlasts it; short enough for a quick test. */
const reducerTimeoutMs = 6_000;
const connections = 24;
let server: TestServer;
const configPath = tempConfigPath();

before(async () => {
  process.env.SPACETIME_REDUCER_TIMEOUT_MS = String(reducerTimeoutMs);
  server = await startTestServer();
  for (const name of ['hog', 'calm']) {
    const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/cpu-hog', '-y', name], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
  }
});

after(async () => {
  delete process.env.SPACETIME_REDUCER_TIMEOUT_MS;
  await server?.stop();
  cleanupTempDirs();
});

/** POST /v1/database/<db>/call/<reducer> on `agent`; resolves with the status or the socket error's code. */
function call(agent: http.Agent | undefined, db: string, reducer: string, body = '[]'): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.request(`${server.url}/v1/database/${db}/call/${reducer}`, {
      method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(body);
  });
}

test('requests on idle keep-alive connections to another database are all answered while a reducer runs to its limit', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, keepAliveMsecs: 60_000, timeout: 120_000 });
  try {
    // Open `connections` keep-alive connections to the calm database and leave them idle in the agent's pool.
    const warm = await Promise.all(Array.from({ length: connections }, () => call(agent, 'calm', 'hit')));
    assert.deepEqual(warm, warm.map(() => 200));
    assert.equal(Object.values(agent.freeSockets).flat().length, connections, 'every connection is idle and reusable');

    const started = performance.now();
    const spinning = call(undefined, 'hog', 'spin');
    await new Promise((resolve) => setTimeout(resolve, 300));              // the spin now holds the server's thread
    const during = await Promise.all(Array.from({ length: connections }, () => call(agent, 'calm', 'hit')));
    const spin = await spinning;
    const elapsedMs = performance.now() - started;
    assert.ok(elapsedMs >= reducerTimeoutMs, `the spin held the thread for its limit (${Math.round(elapsedMs)} ms)`);
    assert.equal(spin, 530, 'the spin itself failed with its time limit');
    const failures = during.filter((s) => s !== 200);
    assert.deepEqual(failures, [], `every request to the calm database was answered (${failures.length} of ${connections} were not)`);
  } finally {
    agent.destroy();
  }
});
