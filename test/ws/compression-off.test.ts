// SPACETIME_WEBSOCKET_COMPRESSION=none (server/websocket/attach.ts): every frame goes uncompressed whatever the client
// asked for, so the official TypeScript SDK, which decompresses frames asynchronously one by one and can deliver a
// later small frame before an earlier compressed one (upstream issue #5730), gets them in order. Without the setting a
// client asking for Gzip gets its large answers gzipped (test/ws/protocol.test.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, makeTempDir, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { RawClient, stringArgs } from './helpers.js';
import type { ServerMessage } from '../../src/subscription/messages.js';

let server: TestServer;

before(async () => {
  server = await startTestServer({ env: { SPACETIME_WEBSOCKET_COMPRESSION: 'none' } });
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/basic', '-y', 'plain'], { configPath: tempConfigPath() });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

async function nextOf<T extends ServerMessage['tag']>(c: RawClient, tag: T): Promise<Extract<ServerMessage, { tag: T }>> {
  const m = await c.next(20_000);
  assert.equal(m.tag, tag);
  return m as Extract<ServerMessage, { tag: T }>;
}

test('with SPACETIME_WEBSOCKET_COMPRESSION=none a client that asks for gzip or brotli gets every frame uncompressed', async () => {
  for (const compression of ['Gzip', 'Brotli']) {
    const c = await RawClient.open(`${server.url.replace('http', 'ws')}/v1/database/plain/subscribe?compression=${compression}`);
    await nextOf(c, 'InitialConnection');
    // 60 rows of ~40 bytes: a SubscribeApplied well over the 1 KiB above which frames are compressed when asked.
    c.send(...Array.from({ length: 60 }, (_, i) => ({
      tag: 'CallReducer' as const, requestId: i + 1, reducer: 'add', args: stringArgs(`${compression}-${i}-${'x'.repeat(30)}`),
    })));
    for (let i = 0; i < 60; i++) assert.equal((await nextOf(c, 'ReducerResult')).outcome.tag, 'Ok');
    c.send({ tag: 'Subscribe', requestId: 100, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
    const applied = await nextOf(c, 'SubscribeApplied');
    assert.ok(applied.rows[0].rows.length >= 60);
    assert.ok(c.frames.length > 1 && c.frames.every((f) => f.tag === 0), `${compression}: frame tags ${c.frames.map((f) => f.tag).join(',')}`);
    c.ws.close();
  }
});

test('any other SPACETIME_WEBSOCKET_COMPRESSION stops the server at start, naming the variable and its values', async () => {
  const dataDir = makeTempDir('stdb-data-');
  const r = await runCli(['start', '--data-dir', dataDir, '--listen-addr', '127.0.0.1:0'], {
    configPath: tempConfigPath(), env: { SPACETIME_WEBSOCKET_COMPRESSION: 'off' },
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /SPACETIME_WEBSOCKET_COMPRESSION is `off`: expected `none` \(never compress\) or `requested`/);
});
