// Upstream smoketests module_nested_op.rs, panic.rs (test_panic, test_reducer_error_message), timestamp_route.rs and
// cluster http_egress.rs (under the default egress policy; the redirect case is in http-egress.test.ts), each flow over our own fixture module (test/fixtures/modules/smoke-*) through the real CLI and one real server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

async function ok(db: string, fn: string, ...args: string[]): Promise<void> {
  const r = await st.call(db, fn, ...args);
  assert.equal(r.code, 0, `${fn}: ${r.stderr}`);
}

test('module_nested_op: index lookups inside a scan of another table', async () => {
  const db = await st.publish('smoke-nested-op');
  await ok(db, 'create_account', '1', '"House"');
  await ok(db, 'create_account', '2', '"Wilson"');
  await ok(db, 'add_friend', '1', '2');
  await ok(db, 'say_friends');
  assert.ok((await st.logMessages(db, 2)).some((m) => m.includes('House is friends with Wilson')));
});

test('panic: a reducer that throws fails the call, the next call runs; an error message reaches the logs', async () => {
  const db = await st.publish('smoke-panic');
  const first = await st.call(db, 'first');
  assert.equal(first.code, 1);
  assert.match(first.stderr, /Error: Response text: The instance encountered a fatal error\.\n[\s\S]*HTTP status server error \(530\)/);
  await ok(db, 'second');
  assert.ok((await st.logMessages(db, 2)).some((m) => m.includes('Test Passed')));
  const fail = await st.call(db, 'fail');
  assert.equal(fail.code, 1);
  assert.match(fail.stderr, /Error: Response text: oopsie :\(\n/);
  assert.ok((await st.logMessages(db, 2)).some((m) => m.includes('oopsie :(')));
});

test('call: a lifecycle reducer is refused with upstream\'s text under `Response text:`, the HTTP status as its cause', async () => {
  const db = await st.publish('smoke-hooks');
  const r = await st.call(db, 'on_connect');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\nError: Response text: can't directly call special OnConnect lifecycle reducer\n\nCaused by:\n {4}HTTP status client error \(400 Bad Request\) for url \(/);
});

test('timestamp_route: 404 for an unknown database, then a SATS-JSON Timestamp once it is published', async () => {
  const name = `ts-${randomBytes(6).toString('hex')}`;
  const token = /spacetimedb_token = "([^"]+)"/.exec(readFileSync(st.configPath, 'utf8'))![1];
  const get = () => fetch(`${server.url}/v1/database/${name}/unstable/timestamp`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal((await get()).status, 404);
  await st.publish('smoke-nested-op', name);
  const found = await get();
  assert.ok(found.ok, String(found.status));
  const timestamp = (await found.json()) as Record<string, unknown>;
  assert.equal(typeof timestamp, 'object');
  assert.ok(Number.isInteger(timestamp.__timestamp_micros_since_unix_epoch__), JSON.stringify(timestamp));
});

test('http_egress (cluster): a procedure sees its request to a private address refused', async () => {
  const db = await st.publish('smoke-http-egress');
  const r = await st.call(db, 'request_disallowed_ip', '"http://10.0.0.1:80/"');
  assert.equal(r.code, 0, r.stdout + r.stderr);
});
