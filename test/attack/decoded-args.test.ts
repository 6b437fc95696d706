// Reducer arguments small as BSATN and large once decoded (session 11 attack probes, limits.ts argsDecodedObjectsMax).
// The official library decodes a call's arguments inside the module's isolate: an anonymous client sending another
// identity's reducer an `Array<Array<u8>>` of 7M empty arrays (28 MB) made that module exceed its memory limit, so its
// isolate was replaced and its module-global state reset, at every such call.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { buildFixture, cleanupTempDirs, startTestServer, within, type TestServer } from '../harness.js';

let server: TestServer;
let ownerToken: string;

before(async () => {
  server = await startTestServer();
  ownerToken = ((await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string }).token;
  const put = await fetch(`${server.url}/v1/database/victim`, {
    method: 'PUT', headers: { authorization: `Bearer ${ownerToken}` }, body: (await buildFixture('hostile-outbound')).code,
  });
  assert.equal(put.status, 200, await put.text());
});
after(async () => { await server.stop(); cleanupTempDirs(); });

async function count(): Promise<void> {
  const r = await fetch(`${server.url}/v1/database/victim/call/count`, {
    method: 'POST', headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json' }, body: '[]',
  });
  assert.equal(r.status, 200, await r.text());
}

/** A v2 CallReducer message. */
function callReducer(reducer: string, args: Buffer): Buffer {
  const name = Buffer.from(reducer);
  const head = Buffer.alloc(10 + name.length + 4);
  head[0] = 3; // CallReducer
  head.writeUInt32LE(1, 1); // request id
  head[5] = 0; // flags
  head.writeUInt32LE(name.length, 6);
  name.copy(head, 10);
  head.writeUInt32LE(args.length, 10 + name.length);
  return Buffer.concat([head, args]);
}

test('a call whose arguments decode to millions of objects is refused before the module; the module keeps its state', async () => {
  await count(); // the module-global counter: 1
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/victim/subscribe?compression=None`, ['v2.bsatn.spacetimedb']);
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(d));
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'connected', 10_000);
  const items = 7_000_000;
  const args = Buffer.alloc(4 + items * 4); // items empty inner arrays
  args.writeUInt32LE(items, 0);
  ws.send(callReducer('nest', args));
  const deadline = Date.now() + 15_000;
  // Frames: a compression byte, then the message's tag (6: ReducerResult).
  while (!frames.some((f) => f[1] === 6) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  ws.terminate();
  const result = frames.find((f) => f[1] === 6);
  assert.ok(result !== undefined, 'the call was answered');
  assert.match(result.toString('latin1'), /7000000 array elements that decode to objects, over argsDecodedObjectsMax = 2097152/);
  await count();
  const logs = await (await fetch(`${server.url}/v1/database/victim/logs?num_lines=50`, { headers: { authorization: `Bearer ${ownerToken}` } })).text();
  // Before: "reducer nest was stopped: the module exceeded its memory limit of 256 MiB", and the counter started over.
  assert.match(logs, /calls 2/);
  assert.doesNotMatch(logs, /memory limit/);
});
