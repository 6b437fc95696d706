// st_client cleanup (issue 13 item 8): every way a client goes away runs client_disconnected, so the rows the module
// keeps per live connection (our stand-in for upstream's st_client, which is not queryable here yet) are gone: an HTTP
// call the client aborts mid-call, client_connected throwing (HTTP and WebSocket), a reset WebSocket, and a server
// killed with -9 while clients were connected (client_disconnected runs for them when the database is reopened).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, until, within, type TestServer } from '../harness.js';

after(cleanupTempDirs);

/** Million-round units of the fixture's `spin` reducer: about a second here, far past the 100 ms abort. */
const spinRounds = 100;

describe('client_disconnected runs on every disconnect path', () => {
  let server: TestServer;
  const configPath = tempConfigPath();
  before(async () => {
    server = await startTestServer();
    const r = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/client-tracker', '--yes', 'cleanup'], { configPath });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    if (process.env.DEBUG_CLEANUP) console.log(server.output());
    await server.stop();
  });

  const db = () => `${server.url}/v1/database/cleanup`;
  /** Rows of other connections: the /sql request is itself a connected client while it runs (as upstream's). */
  async function connectedRows(): Promise<number> {
    const res = await fetch(`${db()}/sql`, { method: 'POST', body: 'SELECT * FROM connected' });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { rows: unknown[] }[])[0].rows.length - 1;
  }
  const call = (reducer: string, args: unknown, signal?: AbortSignal) =>
    fetch(`${db()}/call/${reducer}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args), signal });
  async function openSocket(): Promise<WebSocket> {
    const ws = new WebSocket(`${db().replace('http', 'ws')}/subscribe`, ['v1.json.spacetimedb']);
    await within(new Promise<void>((resolve) => ws.once('message', () => resolve())), 'IdentityToken');
    return ws;
  }

  test('an HTTP call the client aborts mid-call', async () => {
    assert.equal(await connectedRows(), 0);
    const controller = new AbortController();
    const started = Date.now();
    const pending = call('spin', [spinRounds], controller.signal).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 100);
    assert.ok((await pending) instanceof Error, `the call finished before it was aborted (${Date.now() - started} ms)`);
    await until('the aborted call is disconnected', async () => (await connectedRows()) === 0, 10_000, 50);
  });

  test('client_connected throws: no row stays, for HTTP and WebSocket', async () => {
    // A client connected before the gate closes watches `connected` and reopens the gate afterwards.
    const watcher = await openSocket();
    const seen: string[] = [];
    watcher.on('message', (data) => seen.push(data.toString()));
    watcher.send(JSON.stringify({ SubscribeSingle: { query: 'SELECT * FROM connected', request_id: 1, query_id: { id: 1 } } }));
    await until('subscribed', async () => seen.some((m) => m.includes('SubscribeApplied')), 10_000, 50);
    assert.equal((await call('set_gate', [true])).status, 200);
    const refused = await call('fail_with', ['x']);
    assert.ok(refused.status >= 400, `status ${refused.status}`);
    assert.match(await refused.text(), /the gate is closed/);
    const ws = new WebSocket(`${db().replace('http', 'ws')}/subscribe`, ['v1.json.spacetimedb']);
    await within(new Promise((resolve) => ws.once('close', resolve)), 'refused socket closes');
    watcher.send(JSON.stringify({ CallReducer: { reducer: 'set_gate', args: '[false]', request_id: 2, flags: 0 } }));
    await until('the gate is open again', async () => seen.some((m) => m.includes('"set_gate"')), 10_000, 50);
    assert.equal(await connectedRows(), 1, 'only the watcher is connected: no refused client left a row');
    watcher.close();
    await until('the watcher is disconnected', async () => (await connectedRows()) === 0, 10_000, 50);
  });

  test('a reset WebSocket, and a server killed with -9 while clients were connected', async () => {
    const r = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/client-tracker', '--yes', '--delete-data', 'cleanup'], { configPath });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const reset = await openSocket();
    assert.equal(await connectedRows(), 1);
    (reset as unknown as { _socket: { destroy(): void } })._socket.destroy();
    await until('the reset socket is disconnected', async () => (await connectedRows()) === 0, 10_000, 50);

    const sockets = [await openSocket(), await openSocket()];
    assert.equal(await connectedRows(), 2);
    await server.kill('SIGKILL');
    for (const s of sockets) s.terminate();
    await server.restart();
    assert.equal(await connectedRows(), 0, 'client_disconnected ran for the clients connected at the crash');
  });
});
