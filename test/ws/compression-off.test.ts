// Frame compression (server/websocket/attach.ts FrameCompression): by default every frame goes uncompressed whatever
// the client asked for, so the official TypeScript SDK, which decompresses frames asynchronously one by one and can
// deliver a later small frame before an earlier compressed one (upstream issue #5730), gets them in order.
// SPACETIME_WEBSOCKET_COMPRESSION=requested compresses large frames as the client asks (as upstream); any other value
// stops the server at start.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, makeTempDir, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { RawClient, stringArgs } from './helpers.js';
import type { ServerMessage } from '../../src/subscription/messages.js';

let server: TestServer;

before(async () => {
  server = await startTestServer();
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

/** Subscribes after 60 calls (a SubscribeApplied well over 1 KiB); returns the frames' compression tags. */
async function frameTags(s: TestServer, db: string, compression: string): Promise<number[]> {
  const c = await RawClient.open(`${s.url.replace('http', 'ws')}/v1/database/${db}/subscribe?compression=${compression}`);
  await nextOf(c, 'InitialConnection');
  c.send(...Array.from({ length: 60 }, (_, i) => ({
    tag: 'CallReducer' as const, requestId: i + 1, reducer: 'add', args: stringArgs(`${compression}-${i}-${'x'.repeat(30)}`),
  })));
  for (let i = 0; i < 60; i++) assert.equal((await nextOf(c, 'ReducerResult')).outcome.tag, 'Ok');
  c.send({ tag: 'Subscribe', requestId: 100, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
  const applied = await nextOf(c, 'SubscribeApplied');
  assert.ok(applied.rows[0].rows.length >= 60);
  c.ws.close();
  return c.frames.map((f) => f.tag);
}

test('SPACETIME_WEBSOCKET_COMPRESSION=requested compresses a large frame as the client asks', async () => {
  const compressing = await startTestServer({ env: { SPACETIME_WEBSOCKET_COMPRESSION: 'requested' } });
  try {
    const pub = await runCli(['publish', '-s', compressing.url, '-p', 'test/fixtures/modules/basic', '-y', 'plain'], { configPath: tempConfigPath() });
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal((await frameTags(compressing, 'plain', 'Gzip')).at(-1), 2);
  } finally {
    await compressing.stop();
  }
});

test('by default a client that asks for gzip or brotli gets every frame uncompressed', async () => {
  for (const compression of ['Gzip', 'Brotli']) {
    const tags = await frameTags(server, 'plain', compression);
    assert.ok(tags.length > 1 && tags.every((t) => t === 0), `${compression}: frame tags ${tags.join(',')}`);
  }
});

test('any other SPACETIME_WEBSOCKET_COMPRESSION stops the server at start, naming the variable and its values', async () => {
  const dataDir = makeTempDir('stdb-data-');
  const r = await runCli(['start', '--data-dir', dataDir, '--listen-addr', '127.0.0.1:0'], {
    configPath: tempConfigPath(), env: { SPACETIME_WEBSOCKET_COMPRESSION: 'off' },
  });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr + r.stdout, /SPACETIME_WEBSOCKET_COMPRESSION is `off`: expected `none` \(never compress, the default\) or `requested`/);
});
