// The main thread <-> worker hop end to end (host/worker/protocol.ts through a real server in worker mode): several
// WebSocket connections at once interleave reducer calls (binary records naming an interned caller) with
// subscription requests (object frames). Each connection gets its answers in request order, and every row a call
// wrote names the identity of the connection that made it — also after connections ended and new ones took their
// callers' numbers. A call whose arguments structured clone refuses fails alone (400); the database keeps serving.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { RawClient, stringArgs } from '../ws/helpers.js';
import type { ClientMessage, ServerMessage } from '../../src/subscription/messages.js';

let server: TestServer;
const saved = process.env.SPACETIME_DATABASE_THREADS;

before(async () => {
  process.env.SPACETIME_DATABASE_THREADS = 'worker';
  server = await startTestServer();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/chat', '-y', 'hop'], { configPath: tempConfigPath() });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  if (saved === undefined) delete process.env.SPACETIME_DATABASE_THREADS;
  else process.env.SPACETIME_DATABASE_THREADS = saved;
  await server?.stop();
  cleanupTempDirs();
});

/** A chat `message` row: sender (Identity, u256), sent (Timestamp, i64), text (String). */
function messageRow(row: Uint8Array): { sender: bigint; text: string } {
  const b = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
  let sender = 0n;
  for (let i = 3; i >= 0; i--) sender = (sender << 64n) | b.readBigUInt64LE(i * 8);
  const length = b.readUInt32LE(40);
  return { sender, text: b.toString('utf8', 44, 44 + length) };
}

/** The request id an answer is for; undefined for a message that answers no request (another client's commit). */
function answerTo(m: ServerMessage): number | undefined {
  switch (m.tag) {
    case 'ReducerResult': case 'SubscribeApplied': case 'UnsubscribeApplied': case 'OneOffQueryResult': return m.requestId;
    case 'SubscriptionError': return m.requestId;
    default: return undefined;
  }
}

interface Conn { client: RawClient; identity: bigint; name: string; requests: number }

async function connect(name: string): Promise<Conn> {
  const client = await RawClient.open(`${server.url.replace('http', 'ws')}/v1/database/hop/subscribe?compression=None`);
  const first = await client.next(20_000);
  assert.equal(first.tag, 'InitialConnection');
  return { client, identity: (first as Extract<ServerMessage, { tag: 'InitialConnection' }>).identity, name, requests: 0 };
}

/** One frame of interleaved requests: calls, a subscribe, a one-off query, an unsubscribe, a failing call. */
function frameOf(conn: Conn, round: number): ClientMessage[] {
  const id = () => ++conn.requests;
  const call = (text: string): ClientMessage => ({ tag: 'CallReducer', requestId: id(), reducer: 'sendMessage', args: stringArgs(text) });
  const qs = 100 + round;
  return [
    call(`${conn.name}/${round}/a`),
    { tag: 'Subscribe', requestId: id(), querySetId: qs, queryStrings: ['SELECT * FROM message'] },
    call(`${conn.name}/${round}/b`),
    { tag: 'OneOffQuery', requestId: id(), queryString: 'SELECT * FROM user' },
    call(''), // SenderError: Messages must not be empty
    call(`${conn.name}/${round}/c`),
    { tag: 'Unsubscribe', requestId: id(), querySetId: qs, sendDroppedRows: false },
    call(`${conn.name}/${round}/d`),
  ];
}

/** Reads until every request of `conn` so far is answered; asserts the answers come in request order. */
async function answers(conn: Conn, from: number): Promise<ServerMessage[]> {
  const out: ServerMessage[] = [];
  let expected = from;
  while (expected <= conn.requests) {
    const m = await conn.client.next(20_000);
    const to = answerTo(m);
    if (to === undefined) continue;
    assert.equal(to, expected, `${conn.name}: answers in request order (${m.tag})`);
    out.push(m);
    expected++;
  }
  return out;
}

test('interleaved calls and subscription requests from many connections: order and caller per call', async () => {
  const connections = 6;
  const rounds = 3;
  const identities = new Map<string, bigint>();
  for (let generation = 0; generation < 3; generation++) {
    // A new set of connections each generation: the ended ones' caller numbers are taken by new callers.
    const conns = await Promise.all(Array.from({ length: connections }, (_, i) => connect(`g${generation}c${i}`)));
    for (const c of conns) identities.set(c.name, c.identity);
    assert.equal(new Set(conns.map((c) => c.identity)).size, connections, 'each connection has its own identity');
    for (let round = 0; round < rounds; round++) {
      const from = conns.map((c) => c.requests + 1);
      for (const c of conns) c.client.send(...frameOf(c, round));
      const got = await Promise.all(conns.map((c, i) => answers(c, from[i])));
      got.forEach((msgs, i) => {
        const c = conns[i];
        assert.deepEqual(msgs.map((m) => m.tag), ['ReducerResult', 'SubscribeApplied', 'ReducerResult', 'OneOffQueryResult',
          'ReducerResult', 'ReducerResult', 'UnsubscribeApplied', 'ReducerResult'], c.name);
        const outcomes = msgs.filter((m) => m.tag === 'ReducerResult').map((m) => (m as Extract<ServerMessage, { tag: 'ReducerResult' }>).outcome);
        assert.deepEqual(outcomes.map((o) => o.tag), ['Ok', 'Ok', 'Err', 'Ok', 'Ok'], c.name);
        // The calls made while subscribed carry their own row: it names this connection's identity.
        for (const o of outcomes.slice(1, 2)) {
          assert.ok(o.tag === 'Ok');
          const rows = o.transactionUpdate.flatMap((qs) => qs.tables.flatMap((t) => t.rows.flatMap((r) => r.tag === 'PersistentTable' ? r.inserts : [])));
          assert.equal(rows.length, 1, `${c.name}: the call's own row is in its reply (it ran as this caller)`);
          assert.deepEqual(messageRow(rows[0]), { sender: c.identity, text: `${c.name}/${round}/b` });
        }
      });
    }
    for (const c of conns) c.client.ws.close();
    await Promise.all(conns.map((c) => c.client.closed));
  }

  // Every row any call wrote names the connection that made it.
  const reader = await connect('reader');
  reader.client.send({ tag: 'OneOffQuery', requestId: 1, queryString: 'SELECT * FROM message' });
  reader.requests = 1;
  const [result] = await answers(reader, 1);
  assert.ok(result.tag === 'OneOffQueryResult' && result.result.ok);
  const rows = result.result.rows.flatMap((t) => t.rows).map(messageRow);
  assert.equal(rows.length, 3 * connections * rounds * 4);
  for (const row of rows) {
    const name = row.text.split('/')[0];
    assert.equal(row.sender, identities.get(name), `${row.text} was written by its own connection`);
  }
  reader.client.ws.close();
});

test('a call whose JSON arguments structured clone refuses fails alone; calls in the same turn run', async () => {
  const conn = await connect('deep');
  const depth = 20_000; // parses, but too deep for structured clone's recursion
  const deep = fetch(`${server.url}/v1/database/hop/call/sendMessage`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '['.repeat(depth) + ']'.repeat(depth),
  });
  const from = conn.requests + 1;
  const texts = Array.from({ length: 20 }, (_, i) => `deep/${i}`);
  conn.client.send(...texts.map((text): ClientMessage => ({ tag: 'CallReducer', requestId: ++conn.requests, reducer: 'sendMessage', args: stringArgs(text) })));
  const response = await deep;
  assert.equal(response.status, 400);
  assert.match(await response.text(), /cannot be passed to the database/);
  const results = await answers(conn, from);
  assert.deepEqual(results.map((m) => m.tag === 'ReducerResult' && m.outcome.tag), texts.map(() => 'Ok'));
  const ping = await fetch(`${server.url}/v1/database/hop/call/sendMessage`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '["after"]',
  });
  assert.equal(ping.status, 200, 'the database keeps serving');
  conn.client.ws.close();
});
