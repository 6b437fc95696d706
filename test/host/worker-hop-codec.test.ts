// The main thread <-> worker codec (host/worker/protocol.ts): batches of binary records and object frames, through a
// real MessageChannel with the stream transferred. Every frame kind keeps its place; a call names its caller and
// reducer by numbers that cross once (a caller again only when it changes or its number was reused); a frame
// structured clone refuses is replaced without moving the others.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import {
  readReplies, replaceUncloneable, ReplyBatcher, RequestBatcher, RequestReader, type Batch, type CallResult, type Frame,
  type Request,
} from '../../src/host/worker/protocol.js';
import type { Caller } from '../../src/host/database.js';
import { workerCallersInternedMax } from '../../src/limits.js';

const reducers = new Set(['transfer', 'add', 'ünïcode_名前']);

/** Posts the batch through a real port (stream transferred, the rest cloned) and returns what the other side gets. */
function cross<F>(taken: { batch: Batch<F>; transfer: ArrayBuffer[] }): Batch<F> {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(taken.batch, taken.transfer);
    for (const b of taken.transfer) assert.equal(b.byteLength, 0, 'the stream is transferred, not copied');
    return receiveMessageOnPort(port2)!.message as Batch<F>;
  } finally {
    port1.close();
  }
}

type Seen = { request: Request } | { call: { id: number; name: string; args: Uint8Array; caller: Caller } };

function readAll(reader: RequestReader, batch: Batch<Request>): Seen[] {
  const seen: Seen[] = [];
  reader.read(batch, (request) => seen.push({ request }), (id, name, args, caller) => seen.push({ call: { id, name, args, caller } }));
  return seen;
}

function callerOf(n: number, jwt = `{"sub":"user-${n}","iss":"localhost","padding":"${'x'.repeat(300)}"}`): Caller {
  return { identity: (1n << 255n) | BigInt(n) * 0x1_0000_0001n, connectionId: (1n << 127n) | BigInt(n), jwtPayload: jwt };
}

function streamText(batch: Batch<unknown>): string {
  return batch[0] === null ? '' : Buffer.from(batch[0]).toString('latin1');
}

test('requests: object frames and calls keep their order; empty and large args; names interned or inline', () => {
  const batcher = new RequestBatcher((name) => reducers.has(name));
  const reader = new RequestReader();
  const alice = callerOf(1);
  const large = new Uint8Array(1 << 20).map((_, i) => i * 7);
  const sent: Seen[] = [];
  const object = (r: Request) => { batcher.object(r); sent.push({ request: r }); };
  const call = (id: number, name: string, args: Uint8Array, caller: Caller) => {
    batcher.call(id, name, args, caller);
    sent.push({ call: { id, name, args, caller } });
  };
  object({ id: 1, op: 'subAdd', connectionId: alice.connectionId, client: 0, identity: alice.identity, isOwner: false, shared: true });
  call(2, 'transfer', new Uint8Array([1, 2, 3]), alice);
  object({ id: 3, op: 'subscribe', connectionId: alice.connectionId, requestId: 7, querySetId: 1, queries: ['SELECT * FROM t'] });
  call(4, 'add', new Uint8Array(0), alice);
  call(5, 'no_such_reducer', new Uint8Array([9]), alice);
  call(6, 'ünïcode_名前', large, alice);
  object({ id: 7, op: 'metrics' });
  call(8, 'transfer', large.subarray(5, 10), alice);
  assert.equal(batcher.empty, false);
  const batch = cross(batcher.take());
  assert.equal(batcher.empty, true, 'take starts the next batch');
  assert.deepEqual(readAll(reader, batch), sent);

  // The next batch names the same caller and reducers by number: no JWT text, no interned name text.
  for (let i = 0; i < 3; i++) batcher.call(10 + i, 'transfer', new Uint8Array([i]), alice);
  batcher.call(13, 'no_such_reducer', new Uint8Array(0), alice);
  const second = cross(batcher.take());
  const text = streamText(second);
  assert.ok(!text.includes('user-1') && !text.includes('transfer'), 'caller and known name cross once');
  assert.equal(text.split('no_such_reducer').length - 1, 1, 'a name the module does not have crosses as text each time');
  const calls = readAll(reader, second).map((s) => ('call' in s ? s.call : undefined));
  assert.deepEqual(calls.map((c) => c?.name), ['transfer', 'transfer', 'transfer', 'no_such_reducer']);
  assert.ok(calls.every((c) => c?.caller.jwtPayload === alice.jwtPayload && c.caller.identity === alice.identity));

  // A batch of object frames only carries no stream.
  batcher.object({ id: 20, op: 'metrics' });
  const plain = cross(batcher.take());
  assert.equal(plain[0], null);
  assert.deepEqual(readAll(reader, plain), [{ request: { id: 20, op: 'metrics' } }]);
});

test('callers: many connections, a caller that changes, a connection that ends, more callers than the table holds', () => {
  const batcher = new RequestBatcher((name) => reducers.has(name));
  const reader = new RequestReader();
  const check = (expected: Caller[]) => {
    const seen = readAll(reader, cross(batcher.take()));
    assert.equal(seen.length, expected.length);
    seen.forEach((s, i) => {
      assert.ok('call' in s);
      assert.deepEqual(s.call.caller, expected[i], `call ${i}`);
    });
    return seen.map((s) => ('call' in s ? s.call.caller : undefined));
  };
  // 300 connections, interleaved, over several batches.
  const callers = Array.from({ length: 300 }, (_, i) => callerOf(i));
  for (let round = 0; round < 3; round++) {
    const expected: Caller[] = [];
    for (let i = 0; i < 300; i++) {
      const c = callers[(i * 7 + round) % 300];
      batcher.call(i, 'add', new Uint8Array([i & 255]), c);
      expected.push(c);
    }
    check(expected);
  }

  // The same connection's caller gets a new JWT payload (same object changed, then a new object): the calls before
  // keep the caller they were made with.
  const c5 = callers[5];
  batcher.call(1, 'add', new Uint8Array(0), c5);
  const before = { ...c5 };
  c5.jwtPayload = '{"sub":"renewed"}';
  batcher.call(2, 'add', new Uint8Array(0), c5);
  const other = { ...c5, jwtPayload: undefined, identity: 42n };
  batcher.call(3, 'add', new Uint8Array(0), other);
  batcher.call(4, 'add', new Uint8Array(0), c5);
  check([before, { ...c5 }, other, { ...c5 }]);

  // A connection ends: its number is free and goes to the next new connection, which must not be taken for it.
  batcher.forgetCaller(callers[9].connectionId);
  const newcomer = callerOf(1000);
  batcher.call(1, 'add', new Uint8Array(0), newcomer);
  batcher.call(2, 'add', new Uint8Array(0), callers[10]);
  check([newcomer, callers[10]]);
  // The ended connection calls again (a late call): defined again, not confused with the newcomer.
  batcher.call(1, 'add', new Uint8Array(0), callers[9]);
  batcher.call(2, 'add', new Uint8Array(0), newcomer);
  check([callers[9], newcomer]);

  // More callers than the table holds: numbers are reused in turn; every call still names its own caller.
  const many = Array.from({ length: workerCallersInternedMax + 50 }, (_, i) => callerOf(5000 + i, `{"n":${i}}`));
  for (const c of many) batcher.call(1, 'add', new Uint8Array(0), c);
  check(many);
  const again = [many[0], many[many.length - 1], many[1], callers[0], many[60]];
  for (const c of again) batcher.call(1, 'add', new Uint8Array(0), c);
  check(again);
});

/** Every reply in the order read, as plain values. */
function readAllReplies(batch: Batch<Frame>): unknown[] {
  const seen: unknown[] = [];
  readReplies(batch, {
    frame: (frame) => seen.push({ frame }),
    result: (id, r, seq, offset) => seen.push({ id, r, seq, offset }),
    callerTx: (client, seq) => seen.push({ client, seq }),
  });
  return seen;
}

test("replies: results of every status, callers' empty transactions and object frames keep their order", () => {
  const batcher = new ReplyBatcher();
  const sent: unknown[] = [];
  const object = (f: Frame) => { batcher.object(f); sent.push({ frame: f }); };
  const result = (id: number, r: CallResult, seq: number, offset: bigint | undefined) => {
    batcher.callResult(id, r, seq, offset);
    sent.push({ id, r, seq, offset });
  };
  object({ ev: 'tx', connectionId: 5n, querySets: [], isCaller: false, seq: 3 });
  batcher.callerTx(7, 3);
  sent.push({ client: 7, seq: 3 });
  result(1, { status: 'committed', timestampMicros: 1_765_000_000_000_000n, durationMicros: 12.5 }, 3, 99n);
  object({ ev: 'commit', caller: { identity: 1n, connectionId: 5n }, reducer: { id: 0, name: 'add' }, timestampMicros: -5n, durationMicros: 1 });
  result(2, { status: 'failed', message: 'insufficient funds: ünïcode' }, 0, undefined);
  result(3, { status: 'internal', message: '' }, 2 ** 40, 2n ** 63n);
  object({ id: 9, ok: true, value: { rows: [new Uint8Array([1])] }, offset: 4n });
  result(4, { status: 'committed', timestampMicros: -1n, durationMicros: 0 }, 4, 0n);
  batcher.callerTx(0, 0);
  sent.push({ client: 0, seq: 0 });
  assert.deepEqual(readAllReplies(cross(batcher.take())), sent);

  batcher.object({ ev: 'report', line: 'only objects' });
  const plain = cross(batcher.take());
  assert.equal(plain[0], null);
});

test('a frame structured clone refuses is replaced in place; the stream and the other frames cross', () => {
  const requests = new RequestBatcher((name) => reducers.has(name));
  const alice = callerOf(1);
  requests.call(1, 'add', new Uint8Array([1]), alice);
  requests.object({ id: 2, op: 'callReducerJson', name: 'add', argsJson: { f() {} }, caller: alice });
  requests.call(3, 'add', new Uint8Array([3]), alice);
  requests.object({ id: 4, op: 'metrics' });
  const taken = requests.take();
  const { port1 } = new MessageChannel();
  assert.throws(() => port1.postMessage(taken.batch, taken.transfer));
  port1.close();
  const refused: number[] = [];
  replaceUncloneable(taken.batch, (req, err) => {
    assert.match(err.message, /could not be cloned/);
    refused.push(req.id);
    return null;
  });
  assert.deepEqual(refused, [2]);
  const seen = readAll(new RequestReader(), cross(taken));
  assert.deepEqual(seen.map((s) => ('call' in s ? `call ${s.call.id}` : `request ${s.request.id}`)), ['call 1', 'call 3', 'request 4']);

  const replies = new ReplyBatcher();
  replies.object({ id: 5, ok: true, value: { f() {} } });
  replies.callResult(6, { status: 'failed', message: 'no' }, 0, undefined);
  const rt = replies.take();
  replaceUncloneable<Frame>(rt.batch, (f) => ({ ev: 'report', line: `dropped ${'id' in f ? f.id : f.ev}` }));
  assert.deepEqual(readAllReplies(cross(rt)), [{ frame: { ev: 'report', line: 'dropped 5' } },
    { id: 6, r: { status: 'failed', message: 'no' }, seq: 0, offset: undefined }]);
});

test("the main side writes its next request stream into the reply stream it has read (recycle); what it read stays intact", () => {
  const replies = new ReplyBatcher();
  const requests = new RequestBatcher((name) => reducers.has(name));
  const reader = new RequestReader();
  const alice = callerOf(2, '{}');
  const message = (round: number, i: number) => `not enough funds for this transfer (${round}/${i})`;
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20; i++) replies.callResult(round * 100 + i, { status: 'failed', message: message(round, i) }, i, undefined);
    const replyBatch = cross(replies.take());
    const replyStream = replyBatch[0]!;
    const seen: { id: number; message: string }[] = [];
    readReplies(replyBatch, {
      frame: () => assert.fail('no object frame was sent'),
      result: (id, r) => seen.push({ id, message: r.status === 'failed' ? r.message : '' }),
      callerTx: () => assert.fail('no callerTx was sent'),
    }, requests);
    const calls = Array.from({ length: 20 }, (_, i) => new Uint8Array([round, i, 0xee]));
    calls.forEach((args, i) => requests.call(round * 100 + i, 'transfer', args, alice));
    const taken = requests.take();
    assert.equal(taken.batch[0], replyStream, `round ${round}: the request stream is the reply stream read before`);
    const got = readAll(reader, cross(taken));
    assert.deepEqual(got.map((s) => 'call' in s ? [...s.call.args] : []), calls.map((a) => [...a]));
    // Values read from the reply stream were copied out: writing the requests over it changed none of them.
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => ({ id: round * 100 + i, message: message(round, i) })));
  }
});
