// Tests for the fan-out fast paths: messages.ts transactionUpdateFrame (one shared frame per query set id),
// manager.ts sharedTransaction (who gets the shared frame and who the per-client message), and
// server/websocket/fanout.ts (one durability reaction per commit, one flush pass per turn).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileWithSql, SubscriptionManager, type ClientHandle } from '../../src/subscription/manager.js';
import {
  decodeServerMessages, encodeServerMessage, encodeTableUpdate, transactionUpdateFrame,
} from '../../src/subscription/messages.js';
import { queueFlush, releaseWhenDurable, type FlushTarget } from '../../src/server/websocket/fanout.js';
import { newDatastore, RecordingSink, row, write } from './fixture.js';
import { outboundSocketWriteBytesPerTurnMax } from '../../src/limits.js';

class SharedSink extends RecordingSink {
  readonly frames: Buffer[] = [];
  sharedTransaction(frame: Buffer): void { this.frames.push(frame); }
}

test('transactionUpdateFrame is byte-identical to the generic encoding, cached per query set id', () => {
  const update = encodeTableUpdate('person', { tag: 'PersistentTable', inserts: [row('person', [1, 'a', 2])], deletes: [] });
  for (const querySetId of [0, 1, 0xdeadbeef]) {
    const frame = transactionUpdateFrame(update, querySetId);
    assert.equal(frame[0], 0, 'compression tag None');
    const generic = encodeServerMessage({ tag: 'TransactionUpdate', querySets: [{ querySetId, tables: [update] }] });
    assert.deepEqual(frame.subarray(1), Buffer.from(generic));
    assert.equal(transactionUpdateFrame(update, querySetId), frame, 'same Buffer on the second call');
    const [m] = decodeServerMessages(frame.subarray(1));
    assert.equal(m.tag, 'TransactionUpdate');
  }
  assert.notEqual(transactionUpdateFrame(update, 1), transactionUpdateFrame(update, 2));
});

test('subscribers of one query share one frame; the caller and multi-set clients get their own message', () => {
  const ds = newDatastore();
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql });
  let nextId = 1n;
  const connect = (sink: RecordingSink): ClientHandle => mgr.addClient({ identity: nextId, connectionId: nextId++, isOwner: false }, sink);
  const shared = [new SharedSink(), new SharedSink(), new SharedSink()];
  const handles = shared.map((s) => connect(s));
  for (const h of handles) assert.equal(mgr.subscribe(h, 1, 7, ['SELECT * FROM person']).tag, 'SubscribeApplied');
  const other = new SharedSink();
  assert.equal(mgr.subscribe(connect(other), 1, 9, ['SELECT * FROM person']).tag, 'SubscribeApplied');
  const multi = new SharedSink();
  const multiHandle = connect(multi);
  mgr.subscribe(multiHandle, 1, 1, ['SELECT * FROM person']);
  mgr.subscribe(multiHandle, 2, 2, ['SELECT * FROM person WHERE age > 10']);
  const plain = new RecordingSink();
  mgr.subscribe(connect(plain), 1, 7, ['SELECT * FROM person']);

  const bob = row('person', [2, 'bob', 40]);
  const tx = write(ds, (t) => { t.insert(4096, bob); });
  mgr.handleCommit(tx, handles[0].connectionId);

  // The caller gets its changes through transaction() (they go into its ReducerResult), never a shared frame.
  assert.equal(shared[0].frames.length, 0);
  assert.deepEqual(shared[0].deliveries.map((d) => d.isCaller), [true]);
  assert.equal(shared[1].frames.length, 1);
  assert.equal(shared[1].frames[0], shared[2].frames[0], 'the very same Buffer');
  assert.equal(shared[1].deliveries.length, 0);
  const [m] = decodeServerMessages(shared[1].frames[0].subarray(1));
  assert.ok(m.tag === 'TransactionUpdate' && m.querySets.length === 1 && m.querySets[0].querySetId === 7);
  assert.notEqual(other.frames[0], shared[1].frames[0]);
  const [o] = decodeServerMessages(other.frames[0].subarray(1));
  assert.ok(o.tag === 'TransactionUpdate' && o.querySets[0].querySetId === 9);
  // Two touched sets must arrive in one TransactionUpdate, so that client takes the general path.
  assert.equal(multi.frames.length, 0);
  assert.deepEqual(multi.deliveries.map((d) => d.querySets.map((s) => s.querySetId)), [[1, 2]]);
  // A sink without the fast path still gets everything.
  assert.equal(plain.deliveries.length, 1);

  // A commit touching no subscribed table still answers the caller, and nobody else.
  mgr.handleCommit({ tables: [] } as unknown as typeof tx, handles[1].connectionId);
  assert.deepEqual(shared[1].deliveries.map((d) => [d.isCaller, d.querySets.length]), [[true, 0]]);
  assert.equal(shared[2].frames.length, 1);
});

function target(): FlushTarget & { flushes: number; failures: unknown[] } {
  return {
    flushQueued: false, flushes: 0, failures: [],
    flush() { this.flushes++; return 0; },
    durabilityFailed(e: unknown) { this.failures.push(e); },
  };
}

test('fanout: one flush per target per pass, slots released when their commit is durable', async () => {
  const a = target();
  const b = target();
  queueFlush(a); queueFlush(a); queueFlush(b);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([a.flushes, b.flushes], [1, 1]);

  let resolve!: () => void;
  const durable = new Promise<void>((r) => { resolve = r; });
  let reactions = 0;
  const origThen = durable.then.bind(durable);
  durable.then = ((...args: Parameters<typeof origThen>) => { reactions++; return origThen(...args); }) as typeof durable.then;
  const slots = [a, b, a].map((owner) => ({ ready: false, owner }));
  for (const s of slots) releaseWhenDurable(s, durable);
  assert.equal(reactions, 1, 'one promise reaction for the whole commit');
  await new Promise((r) => setImmediate(r));
  assert.ok(slots.every((s) => !s.ready), 'held until durable');
  resolve();
  await durable;
  await new Promise((r) => setImmediate(r));
  assert.ok(slots.every((s) => s.ready));
  assert.deepEqual([a.flushes, b.flushes], [2, 2]);

  const undurable = Promise.reject(new Error('disk gone'));
  const c = target();
  releaseWhenDurable({ ready: false, owner: c }, undurable);
  await undurable.catch(() => undefined);
  await new Promise((r) => setImmediate(r));
  assert.equal(c.failures.length, 1);

  const d = target();
  const now = { ready: false, owner: d };
  releaseWhenDurable(now, undefined);
  assert.equal(now.ready, true);
});

test('fanout: a pass writes about outboundSocketWriteBytesPerTurnMax; the targets it did not reach go first in the next', async () => {
  const order: string[] = [];
  const writer = (name: string, bytes: number): FlushTarget => ({
    flushQueued: false,
    flush(budgetBytes: number) { order.push(name); return Math.min(bytes, budgetBytes); },
    durabilityFailed() {},
    failInternal() {},
  });
  const half = outboundSocketWriteBytesPerTurnMax / 2;
  const [a, b, c, d] = [writer('a', half), writer('b', half), writer('c', half), writer('d', 10)];
  for (const t of [a, b, c]) queueFlush(t);
  await new Promise((r) => setImmediate(r));
  // Before the bound every queued target was flushed in one turn, whatever it wrote.
  assert.deepEqual(order, ['a', 'b'], 'the pass stops once its bytes are spent');
  assert.equal(c.flushQueued, true);
  queueFlush(d);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b', 'c', 'd'], 'the one carried goes before one queued later');
});

test('single-set clients with several queries share one frame per (query set id, list of updates)', () => {
  const ds = newDatastore();
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql });
  let nextId = 1n;
  const connect = (sink: RecordingSink): ClientHandle => mgr.addClient({ identity: nextId, connectionId: nextId++, isOwner: false }, sink);
  const sinks = [new SharedSink(), new SharedSink(), new SharedSink()];
  // Same queries in a different order: the frame follows the commit's query order, so the bytes are the same.
  mgr.subscribe(connect(sinks[0]), 1, 3, ['SELECT * FROM person', 'SELECT * FROM ping']);
  mgr.subscribe(connect(sinks[1]), 1, 3, ['SELECT * FROM ping', 'SELECT * FROM person']);
  mgr.subscribe(connect(sinks[2]), 1, 4, ['SELECT * FROM person', 'SELECT * FROM ping']);

  mgr.handleCommit(write(ds, (t) => { t.insert(4096, row('person', [5, 'eve', 20])); t.insert(4098, row('ping', [1])); }), undefined);
  assert.equal(sinks[0].frames.length, 1);
  assert.equal(sinks[0].frames[0], sinks[1].frames[0], 'the very same Buffer');
  assert.notEqual(sinks[2].frames[0], sinks[0].frames[0]);
  for (const [sink, id] of [[sinks[0], 3], [sinks[2], 4]] as const) {
    const [m] = decodeServerMessages(sink.frames[0].subarray(1));
    assert.ok(m.tag === 'TransactionUpdate');
    assert.equal(m.querySets.length, 1);
    assert.equal(m.querySets[0].querySetId, id);
    assert.deepEqual(m.querySets[0].tables.map((t) => (t as { tableName: string }).tableName).sort(), ['person', 'ping']);
  }

  // Only one of the set's queries changed: the single-update frame, still shared.
  mgr.handleCommit(write(ds, (t) => { t.insert(4096, row('person', [6, 'fay', 21])); }), undefined);
  assert.equal(sinks[0].frames.length, 2);
  assert.equal(sinks[0].frames[1], sinks[1].frames[1]);
  const [m] = decodeServerMessages(sinks[0].frames[1].subarray(1));
  assert.ok(m.tag === 'TransactionUpdate' && m.querySets[0].tables.length === 1);
  assert.ok(sinks.every((s) => s.deliveries.length === 0));
});
