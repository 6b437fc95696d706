// The per-address query gate's bookkeeping (server/websocket/query-gate.ts): what the end-to-end case in
// owner-first.test.ts relies on, checked without timing — places are bounded, waiters are served in arrival order, a
// closed connection gives back every place it held or was granted, and a leak would leave an address blocked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { queriesInFlightPerAddressMax } from '../../src/limits.js';
import { GatePlaces, queryGateFor } from '../../src/server/websocket/query-gate.js';

test('an address gets queriesInFlightPerAddressMax places; the next query waits and gets one in arrival order', async () => {
  const gate = () => queryGateFor(1n, '10.0.0.1');
  const a = new GatePlaces(gate);
  const b = new GatePlaces(gate);
  for (let i = 0; i < queriesInFlightPerAddressMax; i++) assert.ok(a.take(), `place ${i}`);
  assert.equal(b.take(), false, 'the address is at its bound');
  assert.ok(new GatePlaces(() => queryGateFor(1n, '10.0.0.2')).take(), 'another address is not');
  assert.ok(new GatePlaces(() => queryGateFor(2n, '10.0.0.1')).take(), 'nor the same address at another database');
  const order: string[] = [];
  void b.wait().then(() => order.push('b'));
  const c = new GatePlaces(gate);
  assert.equal(c.take(), false);
  void c.wait().then(() => order.push('c'));
  a.answered();
  await Promise.resolve();
  assert.deepEqual(order, ['b']);
  assert.ok(b.take(), 'b uses the place it was granted');
  a.release(); // a closes: every place it held goes back, c's turn comes
  await Promise.resolve();
  assert.deepEqual(order, ['b', 'c']);
  assert.ok(c.take());
});

test('a connection that closes while granted or waiting leaves nothing held', async () => {
  const gate = () => queryGateFor(3n, '10.0.0.3');
  const a = new GatePlaces(gate);
  for (let i = 0; i < queriesInFlightPerAddressMax; i++) a.take();
  const granted = new GatePlaces(gate);
  const waiting = new GatePlaces(gate);
  void granted.wait();
  void waiting.wait();
  a.answered(); // to `granted`, which closes before its query uses the place
  waiting.release(); // withdrawn: it must not be handed a place later
  granted.release();
  a.release();
  // Nothing is held: the whole bound is free again (before a leak here the address stayed blocked).
  const fresh = new GatePlaces(gate);
  for (let i = 0; i < queriesInFlightPerAddressMax; i++) assert.ok(fresh.take(), `place ${i} free again`);
  assert.equal(fresh.take(), false);
});
