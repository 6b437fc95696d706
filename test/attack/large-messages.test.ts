// Large client messages and the server's main thread (session 12 attack probe; patches/ws+8.23.0.patch). Every
// WebSocket message a client sends is unmasked on the main thread; on Node 20 without bufferutil, ws did it a byte at a
// time: 4 connections pipelining 30 calls of 31 MB arguments (refused, argsDecodedObjectsMax) held the main thread
// ~120 ms per message (profile: 1.2 s of 310 MB in ws's _unmask), /v1/ping p99 252 ms, max 1.7 s, for every database.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, onServerMainThread, repoRoot, type TestServer } from '../harness.js';
import { openGreeted, serverWithDatabase } from './flood.js';

let server: TestServer;

before(async () => {
  ({ server } = await serverWithDatabase('hostile-outbound', 'victim'));
});
after(async () => { await server.stop(); cleanupTempDirs(); });

test('ws unmasks four bytes at a time, exactly as a byte at a time, at any offset and length', () => {
  const { unmask } = createRequire(import.meta.url)(path.join(repoRoot, 'node_modules/ws/lib/buffer-util.js')) as { unmask(b: Buffer, m: Buffer): void };
  for (let t = 0; t < 2_000; t++) {
    const length = (t * 7919) % 300 + (t % 50 === 0 ? 100_003 : 0);
    const offset = t % 8;
    const whole = Buffer.alloc(length + offset + 8);
    for (let i = 0; i < whole.length; i++) whole[i] = (i * 31 + t) & 0xff;
    const original = Buffer.from(whole);
    const mask = Buffer.from([t & 0xff, (t >> 3) & 0xff, 0x5a, 0xc3]);
    unmask(whole.subarray(offset, offset + length), mask);
    for (let i = 0; i < whole.length; i++) {
      const expected = i >= offset && i < offset + length ? original[i]! ^ mask[(i - offset) & 3]! : original[i];
      if (whole[i] !== expected) assert.fail(`length ${length}, offset ${offset}: byte ${i} is ${whole[i]}, expected ${expected}`);
    }
  }
});

/** A v2 CallReducer message. */
function callReducer(reducer: string, args: Buffer): Buffer {
  const name = Buffer.from(reducer);
  const head = Buffer.alloc(10 + name.length + 4);
  head[0] = 3; // CallReducer
  head.writeUInt32LE(1, 1);
  head.writeUInt32LE(name.length, 6);
  name.copy(head, 10);
  head.writeUInt32LE(args.length, 10 + name.length);
  return Buffer.concat([head, args]);
}

test('31 MB messages cost the main thread ~2.5 ms per MB, not ~4.7', async (t) => {
  const ws = await openGreeted(`${server.url.replace('http', 'ws')}/v1/database/victim/subscribe?compression=None`, 'v2.bsatn.spacetimedb');
  let answers = 0;
  ws.on('message', () => answers++);
  const items = 7_750_000; // empty inner arrays: over argsDecodedObjectsMax, so refused before the module runs
  const args = Buffer.alloc(4 + items * 4);
  args.writeUInt32LE(items, 0);
  const message = callReducer('nest', args);
  const calls = 8;
  const { cpuMs } = await onServerMainThread(server, async () => {
    for (let i = 0; i < calls; i++) ws.send(message);
    const deadline = Date.now() + 120_000;
    while (answers < calls && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  });
  ws.terminate();
  assert.equal(answers, calls, 'every call answered');
  const perMB = cpuMs / (calls * message.length / 1e6);
  t.diagnostic(`main thread: ${Math.round(cpuMs)} ms for ${calls} messages of ${message.length} bytes (${perMB.toFixed(2)} ms per MB)`);
  // Before: 4.7 ms per MB (most of it unmasking). After: 2.3-2.7 at load 5-8.5 (ws assembling the message, its copy into
  // the worker's frame, GC).
  assert.ok(perMB < 3.7, `${perMB.toFixed(2)} ms of the main thread per MB received`);
});
