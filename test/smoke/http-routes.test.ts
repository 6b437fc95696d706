// Upstream smoketests http_routes.rs (the typescript_* variants: end to end, the PR example round trip, strict
// root and non-root paths, the full external URI, request bodies), rewritten over test/fixtures/modules/smoke-http
// and driven with fetch against one real server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { smoke, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
let base: string;
before(async () => {
  server = await startTestServer();
  st = smoke(server, tempConfigPath());
  await st.newIdentity();
  base = `${server.url}/v1/database/${await st.publish('smoke-http')}/route`;
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

const noRoute = 'Database has not registered a handler for this route';
const body = async (res: Response) => [res.status, await res.text()] as const;
const bytes = async (res: Response) => [res.status, Array.from(new Uint8Array(await res.arrayBuffer()))] as const;
const post = (p: string, data: BodyInit) => fetch(`${base}${p}`, { method: 'POST', body: data });

test('http_routes_end_to_end: methods, table writes, headers, statuses, unknown routes, bad tokens', async () => {
  assert.deepEqual(await body(await fetch(`${base}/get`)), [200, 'ok']);
  assert.equal((await post('/post', 'payload')).status, 200);
  assert.deepEqual(await body(await fetch(`${base}/count`)), [200, '1']);
  assert.deepEqual(await body(await fetch(`${base}/any`, { method: 'PUT' })), [200, 'any']);
  assert.deepEqual(await body(await fetch(`${base}/header`, { headers: { 'x-echo': 'hello' } })), [200, 'hello']);
  assert.equal((await fetch(`${base}/set-header`)).headers.get('x-response'), 'set');
  assert.deepEqual(await body(await fetch(`${base}/body`)), [200, 'non-empty']);
  assert.equal((await fetch(`${base}/teapot`)).status, 418);
  assert.deepEqual(await body(await fetch(`${base}/missing`)), [404, noRoute]);
  const schemaStatus = (await fetch(`${base.replace(/\/route$/, '')}/schema?version=10`, { headers: { authorization: 'Bearer not-a-jwt' } })).status;
  assert.ok(schemaStatus >= 400 && schemaStatus < 500, String(schemaStatus));
  assert.equal((await fetch(`${base}/get`, { headers: { authorization: 'Bearer not-a-jwt' } })).status, 200);
});

test('http_routes_pr_example_round_trip: store a body, fetch it by id; missing 404, malformed 5xx', async () => {
  const id = await (await post('/insert', 'hello from the PR example')).text();
  assert.deepEqual(await body(await fetch(`${base}/retrieve?id=${id}`)), [200, 'hello from the PR example']);
  assert.equal((await fetch(`${base}/retrieve?id=999999999`)).status, 404);
  const bad = (await fetch(`${base}/retrieve?id=not-a-u64`)).status;
  assert.ok(bad >= 500 && bad < 600, String(bad));
});

test('http routes are strict: "" vs "/", "/foo" vs "/foo/", doubled slashes unknown', async () => {
  assert.deepEqual(await body(await fetch(base)), [200, 'empty']);
  assert.deepEqual(await body(await fetch(`${base}/`)), [200, 'slash']);
  assert.deepEqual(await body(await fetch(`${base}/foo`)), [200, 'foo']);
  assert.deepEqual(await body(await fetch(`${base}/foo/`)), [200, 'foo-slash']);
  assert.deepEqual(await body(await fetch(`${base}//`)), [404, noRoute]);
  assert.deepEqual(await body(await fetch(`${base}//foo`)), [404, noRoute]);
});

test('http_handler_observes_full_external_uri and handle_request_body', async () => {
  const url = `${base}/echo-uri?alpha=beta`;
  assert.deepEqual(await body(await fetch(url)), [200, url]);
  assert.deepEqual(await bytes(await post('/reverse-bytes', new Uint8Array([0xff, 0x00, 0xfe, 0x7f]))), [200, [0x7f, 0xfe, 0x00, 0xff]]);
  assert.deepEqual(await body(await post('/reverse-bytes', 'stressed')), [200, 'desserts']);
  assert.deepEqual(await body(await post('/reverse-words', new Uint8Array([0x66, 0x6f, 0x80, 0x6f]))), [400, 'request body must be valid UTF-8']);
  assert.deepEqual(await body(await post('/reverse-words', 'red green blue')), [200, 'blue green red']);
});
