// Full-stack test: the real server (startServer) with attachWebSocket, a module published over HTTP the way the CLI
// does, and the OFFICIAL SDK connecting with a token obtained from POST /v1/identity (websocket-token exchange).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from '../../src/server/main.js';
import { attachWebSocket } from '../../src/server/websocket/attach.js';
import type { SessionDatabase } from '../../src/server/websocket/session.js';
import { DbConnection } from './bindings/basic.js';
import { bundleFixture } from './helpers.js';

let server: RunningServer;
let dataDir: string;
let token: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'stdb-ws-server-'));
  server = await startServer({
    listenAddr: '127.0.0.1:0', dataDir, announce: false, log: () => undefined,
    attachUpgrades: (httpServer, ctx) => attachWebSocket(httpServer, {
      resolveDatabase: (n) => ctx.resolveLive(n) as unknown as SessionDatabase | undefined,
      auth: ctx.tokens,
      onError: ctx.onError,
    }),
  });
  ({ token } = await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json() as { token: string });
  const res = await fetch(`${server.url}/v1/database/chat?host_type=Js`, {
    method: 'PUT', body: await bundleFixture('basic'), headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200, await res.text());
});
after(async () => {
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('the official SDK connects through the real server with a saved token, subscribes and calls a reducer', async () => {
  const conn = await new Promise<DbConnection>((resolve, reject) => {
    DbConnection.builder().withUri(server.url).withDatabaseName('chat').withToken(token)
      .onConnect((c) => resolve(c)).onConnectError((_ctx, e) => reject(e)).build();
  });
  await new Promise<void>((resolve, reject) => {
    conn.subscriptionBuilder().onApplied(() => resolve()).onError((ctx) => reject(ctx.event)).subscribe(['SELECT * FROM person']);
  });
  const inserted = new Promise<string>((resolve) => conn.db.person.onInsert((_ctx, row) => resolve(row.name)));
  await conn.reducers.add({ name: 'Grace' });
  assert.equal(await inserted, 'Grace');
  conn.disconnect();
});
