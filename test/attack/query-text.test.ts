// Subscribed query text per connection (session 12 attack probe, limits.ts clientQueryTextCharsMax). Within the 50,000-
// byte query text limit, `WHERE id = 0 OR id = 1 OR …` is 2,500 terms, each kept compiled and evaluated against every
// change of its table. One anonymous connection subscribing 3 × 400 such queries held +2.5 GiB, each Subscribe took its
// database's thread 6-11 s, and every commit of that database then took 2.8 s; only the number of queries was bounded.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { cleanupTempDirs, within, type TestServer } from '../harness.js';
import { serverWithDatabase } from './flood.js';

let server: TestServer;

before(async () => {
  ({ server } = await serverWithDatabase('hostile-outbound', 'victim'));
});
after(async () => { await server.stop(); cleanupTempDirs(); });

function bsatnString(text: string): Buffer {
  const bytes = Buffer.from(text);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(bytes.length);
  return Buffer.concat([head, bytes]);
}

/** A v2 Subscribe message. */
function subscribe(querySetId: number, queries: string[]): Buffer {
  const head = Buffer.alloc(13);
  head[0] = 0; // Subscribe
  head.writeUInt32LE(querySetId, 1); // request id
  head.writeUInt32LE(querySetId, 5);
  head.writeUInt32LE(queries.length, 9);
  return Buffer.concat([head, ...queries.map(bsatnString)]);
}

/** A distinct query of 2,500 OR terms (~37 KB, within the query text limit). */
function orChain(k: number): string {
  return 'SELECT * FROM blob WHERE ' + Array.from({ length: 2_500 }, (_, i) => `id = ${k * 10_000 + i}`).join(' OR ');
}

test('a connection subscribing more query text than clientQueryTextCharsMax gets a SubscriptionError naming it', async () => {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/victim/subscribe?compression=None`, ['v2.bsatn.spacetimedb']);
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(d));
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'connected', 10_000);
  const answer = async (): Promise<string> => {
    const seen = frames.length;
    const deadline = Date.now() + 60_000;
    while (frames.length === seen && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return frames.at(-1)!.toString('latin1');
  };
  await answer(); // InitialConnection
  // 20 queries (~750,000 characters): within the limit, applied.
  ws.send(subscribe(1, Array.from({ length: 20 }, (_, i) => orChain(i))));
  assert.doesNotMatch(await answer(), /clientQueryTextCharsMax|SubscriptionError/);
  // 10 more: past it. Before, applied like the first (and so on, 400 queries a message, until the server's memory bound).
  ws.send(subscribe(2, Array.from({ length: 10 }, (_, i) => orChain(100 + i))));
  const refused = await answer();
  assert.match(refused, /Too much query text subscribed on this connection: \d+ characters and \d+ more \(limit clientQueryTextCharsMax = 1048576\)/);
  // Unsubscribing gives the set's text back.
  const unsubscribe = Buffer.alloc(10);
  unsubscribe[0] = 1; // Unsubscribe
  unsubscribe.writeUInt32LE(3, 1);
  unsubscribe.writeUInt32LE(1, 5);
  ws.send(unsubscribe);
  await answer();
  ws.send(subscribe(2, Array.from({ length: 10 }, (_, i) => orChain(100 + i))));
  assert.doesNotMatch(await answer(), /clientQueryTextCharsMax|SubscriptionError/);
  ws.terminate();
});
