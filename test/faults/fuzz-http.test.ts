// Fault suite: fuzzed HTTP requests thrown at a real server process (issue 11). fast-check generates reducer calls
// (JSON argument lists and objects with random values, random JSON, BSATN and random bytes, odd content types, deep
// nesting), SQL from a small grammar (SELECT/DML/SET/SHOW with random pieces) plus garbage, publishes of garbage
// programs, and requests with odd Authorization headers, methods, paths and query strings. Every request must get a
// response (never a dropped connection) that is 2xx or 4xx, or a 5xx with a message (530 is a reducer's own error);
// after each batch the server still answers /v1/ping and a well-behaved client still subscribes and calls a reducer.
// The fuzzing targets a second database, `fuzz`, so owner-token SQL DML cannot break the health check's `bank`.
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { cleanupTempDirs } from '../harness.js';
import { assertHealthy, long, publish, scaled, seed, startBank, transferArgs, type Bank } from './helpers.js';

const batches = scaled(3, 30);
const casesPerBatch = scaled(60, 150);
/** Time for one fuzzed request; a slow SQL statement is not a failure, a hang is. */
const requestTimeoutMs = 15_000;

let bank: Bank;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

before(async () => {
  bank = await startBank();
  await publish(bank, 'fuzz');
});
after(async () => {
  agent.destroy();
  await bank?.server.stop();
  cleanupTempDirs();
});

interface Req { method: string; path: string; headers: Record<string, string>; body: Uint8Array | string | undefined }
interface Res { status: number; body: string }

/** One request on a keep-alive connection: the whole response, or a rejection if the connection drops. */
function send(r: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    // An explicit length: node's client sends a GET/DELETE/OPTIONS body unframed otherwise (our bug, not the server's).
    const headers = r.body === undefined ? r.headers : { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) };
    const req = request(`${bank.server.url}${r.path}`, { method: r.method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(requestTimeoutMs, () => req.destroy(new Error(`no response within ${requestTimeoutMs} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Generators

const ownerAuth = () => bank.auth;
/** Mostly no token or the owner's (so requests reach the host), sometimes a malformed or forged one. */
const authHeader: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { arbitrary: fc.constant({}), weight: 4 },
  { arbitrary: fc.constant(null).map(() => ownerAuth()), weight: 4 },
  { arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'bearer x', 'Bearer a.b.c', 'Bearer ..', 'Bearer eyJhbGciOiJub25lIn0.e30.')
    .map((v) => ({ authorization: v })), weight: 1 },
  { arbitrary: fc.tuple(fc.base64String({ maxLength: 40 }), fc.base64String({ maxLength: 80 }), fc.base64String({ maxLength: 40 }))
    .map(([h, p, s]) => ({ authorization: `Bearer ${h}.${p}.${s}` })), weight: 1 },
  { arbitrary: fc.string({ maxLength: 60, unit: 'grapheme-ascii' }).map((v) => ({ authorization: v.replace(/[^\x20-\x7e]/g, '') })), weight: 1 },
);
const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 6 },
  { arbitrary: fc.constantFrom('application/json; charset=utf-8', 'application/octet-stream', 'text/plain', '', 'application/x-www-form-urlencoded',
    'APPLICATION/JSON'), weight: 2 },
);

const jsonScalar = fc.oneof(fc.integer(), fc.bigInt({ min: -(1n << 130n), max: 1n << 130n }).map(String), fc.double().map(String),
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)), fc.constantFrom('null', 'true', 'false', '[]', '{}', '"x"', '-0', '1e400'));
/** JSON text of an argument list or object for `transfer(from, to, amount, nonce)`, with random values. */
const transferJson = fc.oneof(
  fc.array(jsonScalar, { minLength: 0, maxLength: 6 }).map((xs) => `[${xs.join(',')}]`),
  { arbitrary: fc.tuple(fc.nat(11), fc.nat(11), fc.oneof(fc.bigInt({ min: -100n, max: 100n }), fc.bigInt({ min: -(1n << 64n), max: 1n << 64n })),
    fc.string({ maxLength: 30 })).map(([from, to, amount, nonce]) => `[${from},${to},${amount},${JSON.stringify(nonce)}]`), weight: 3 },
  fc.record({ from: jsonScalar, to: jsonScalar, amount: jsonScalar, nonce: jsonScalar }, { requiredKeys: [] })
    .map((o) => `{${Object.entries(o).map(([k, v]) => `"${k}":${v}`).join(',')}}`),
);
const callBody: fc.Arbitrary<Uint8Array | string> = fc.oneof(
  { arbitrary: transferJson, weight: 5 },
  { arbitrary: fc.json({ maxDepth: 4 }), weight: 2 },
  { arbitrary: transferJson.chain((j) => fc.nat(j.length).map((n) => j.slice(0, n))), weight: 1 },
  { arbitrary: fc.tuple(fc.nat(12), fc.nat(12), fc.bigInt({ min: 0n, max: 100n }), fc.string({ maxLength: 8 }))
    .map(([f, t, a, n]) => transferArgs(f, t, a, n)), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 100 }), weight: 1 },
  { arbitrary: fc.nat({ max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n)), weight: 1 },
);
const reducerSegment = fc.oneof(
  { arbitrary: fc.constantFrom('transfer', 'transfer', 'transfer', 'burn_id', 'init', 'on_connect', 'onConnect', 'nope'), weight: 4 },
  { arbitrary: fc.string({ maxLength: 30, unit: 'binary' }).map(encodeURIComponent), weight: 1 },
  { arbitrary: fc.constantFrom('%', '%ZZ', '%00', '..', '%2F', 'a%2Fb'), weight: 1 },
);
const callRequest: fc.Arbitrary<Req> = fc.record({ reducer: reducerSegment, type: contentType, body: callBody, auth: authHeader })
  .map(({ reducer, type, body, auth }) => ({
    method: 'POST', path: `/v1/database/fuzz/call/${reducer}`, body,
    headers: { ...auth, ...(type === '' ? {} : { 'content-type': type }) },
  }));

const ident = fc.constantFrom('accounts', 'transfer_log', 'client_events', 'id', 'balance', 'nonce', 'amount', '"from"', 'st_table',
  'table_name', 'x', '*', 'a.id', 'b.balance', 'COUNT(*)', '"');
const literal = fc.oneof(fc.integer().map(String), fc.string({ maxLength: 10 }).map((s) => `'${s.replace(/'/g, "''")}'`),
  fc.constantFrom('NULL', 'TRUE', ':sender', '0x01', "X'ff'", '1e999', '-9223372036854775809', '340282366920938463463374607431768211456', "'"));
const predicate = fc.tuple(ident, fc.constantFrom('=', '<>', '!=', '<', '<=', '>', '>=', 'IS', 'LIKE', 'IN', ''), literal)
  .map((p) => p.join(' '));
const where = fc.array(predicate, { minLength: 0, maxLength: 3 })
  .chain((ps) => fc.constantFrom(' AND ', ' OR ', ' and ').map((op) => (ps.length === 0 ? '' : ` WHERE ${ps.join(op)}`)));
const sqlStatement = fc.oneof(
  fc.tuple(fc.array(ident, { minLength: 1, maxLength: 3 }), ident, fc.constantFrom('', ' a JOIN accounts b ON a.id = b.id', ' a, accounts b'),
    where, fc.constantFrom('', ' LIMIT 2', ' LIMIT -1', ' ORDER BY id', ';', '; SELECT 1'))
    .map(([cols, table, join, w, tail]) => `SELECT ${cols.join(', ')} FROM ${table}${join}${w}${tail}`),
  fc.tuple(ident, fc.array(literal, { maxLength: 5 })).map(([t, vs]) => `INSERT INTO ${t} VALUES (${vs.join(', ')})`),
  fc.tuple(ident, ident, literal, where).map(([t, c, v, w]) => `UPDATE ${t} SET ${c} = ${v}${w}`),
  fc.tuple(ident, where).map(([t, w]) => `DELETE FROM ${t}${w}`),
  fc.tuple(fc.constantFrom('row_limit', 'slow_ad_hoc_query_ms', 'nope'), literal).map(([k, v]) => `SET ${k} = ${v}`),
  fc.constantFrom('SHOW row_limit', 'SHOW nope', 'SELECT', 'SELECT * FROM', '', ';', ';;;', 'DROP TABLE accounts', 'CREATE TABLE t (x INT)',
    'SELECT * FROM accounts WHERE ' + '('.repeat(500) + 'id = 1' + ')'.repeat(500)),
);
const sqlBody: fc.Arbitrary<Uint8Array | string> = fc.oneof(
  { arbitrary: sqlStatement, weight: 6 },
  { arbitrary: fc.string({ maxLength: 200, unit: 'binary' }), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 100 }), weight: 1 },
);
const sqlRequest: fc.Arbitrary<Req> = fc.record({ body: sqlBody, auth: authHeader, type: contentType })
  .map(({ body, auth, type }) => ({ method: 'POST', path: '/v1/database/fuzz/sql', body, headers: { ...auth, ...(type === '' ? {} : { 'content-type': type }) } }));

const oddRequest: fc.Arbitrary<Req> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  path: fc.oneof(
    fc.constantFrom('/v1/ping', '/v1/database/fuzz', '/v1/database/fuzz/schema', '/v1/database/fuzz/schema?version=9', '/v1/database/fuzz/schema?version=x',
      '/v1/database/fuzz/logs?num_lines=-1', '/v1/database/fuzz/logs?num_lines=99999999999999999999', '/v1/database/fuzz/names',
      '/v1/database/fuzz/identity', '/v1/identity/zz/verify', '/v1/identity/websocket-token', '/v1/database/%ZZ', '/v1//database',
      '/v1/database/fuzz/route/%2e%2e/x', '/v1/database/fuzz/unstable/timestamp', '/v1/identity/public-key', '/', '/v1/database/fuzz/subscribe'),
    fc.array(fc.string({ maxLength: 12, unit: 'grapheme-ascii' }).map(encodeURIComponent), { maxLength: 5 }).map((ss) => `/v1/${ss.join('/')}`),
  ),
  auth: authHeader.filter((h) => h.authorization !== ownerAuth().authorization), // never delete or rename with the owner's token
  body: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
}).map(({ method, path, auth, body }) => ({ method, path, headers: { ...auth }, body: method === 'GET' || method === 'HEAD' ? undefined : body }));

const anyRequest = fc.oneof({ arbitrary: callRequest, weight: 3 }, { arbitrary: sqlRequest, weight: 2 }, { arbitrary: oddRequest, weight: 1 });

// ---------------------------------------------------------------------------------------------------------------

const shown = (r: Req) => fc.stringify({ ...r, body: typeof r.body === 'string' ? r.body.slice(0, 300) : r.body?.subarray(0, 100) });

/** 2xx or 4xx, or a 5xx that says what went wrong; and any error must carry a body (HEAD answers carry none). */
function checkResponse(r: Req, res: Res): void {
  assert.ok(res.status >= 200 && res.status < 600 && !(res.status >= 300 && res.status < 400), `status ${res.status} for ${shown(r)}`);
  if (res.status >= 400 && r.method !== 'HEAD') assert.ok(res.body.trim().length > 0, `status ${res.status} without a message for ${shown(r)}`);
}

test('fuzzed reducer calls, SQL and odd requests: every one is answered 2xx/4xx or a 5xx with a message', async (t) => {
  await assertHealthy(bank, 'before fuzzing');
  const statuses = new Map<number, number>();
  const fiveHundreds = new Map<string, number>();
  for (let batch = 0; batch < batches; batch++) {
    await fc.assert(fc.asyncProperty(anyRequest, async (r) => {
      const res = await send(r);
      checkResponse(r, res);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      // A publish (POST /v1/database; the router drops the empty segment of '/v1//database') of a garbage body is a
      // module that fails to load: 500 with the load error, as upstream, and the garbage-publish test below checks it.
      const refusedPublish = res.status === 500 && r.method === 'POST' && /^\/v1\/+database\/*$/.test(r.path) &&
        res.body.startsWith('Failed to create or update the database');
      if (res.status >= 500 && res.status !== 530 && !refusedPublish) {
        const key = `${res.status} ${res.body.replace(/\d+/g, 'N').slice(0, 80)}`;
        fiveHundreds.set(key, (fiveHundreds.get(key) ?? 0) + 1);
      }
    }), { numRuns: casesPerBatch, seed: seed + batch, endOnFailure: !long });
    await assertHealthy(bank, `after batch ${batch} (seed ${seed + batch})`);
  }
  t.diagnostic(`statuses: ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ')}`);
  for (const [k, n] of fiveHundreds) t.diagnostic(`${n} × ${k}`);
  // Bad input is the client's fault: a 500 means the server did not recognise it as such.
  assert.deepEqual([...fiveHundreds.keys()].filter((k) => k.startsWith('500')), [], 'internal server errors for fuzzed input');
});

test('publishing garbage programs is refused with a message (4xx, or 500 as upstream for a module that fails to load); nothing is left behind', async () => {
  const program = fc.oneof(
    fc.uint8Array({ maxLength: 2000 }),
    fc.string({ maxLength: 300 }),
    fc.constantFrom('', 'export default 1;', 'export {};', 'throw new Error("boom")', 'export default {', '\u0000\uffff',
      'import x from "node:fs"; export default x;', 'export const init = 1;', 'globalThis.x = 1', '}{'),
  );
  let n = 0;
  await fc.assert(fc.asyncProperty(program, fc.boolean(), async (body, named) => {
    const name = `garbage-${process.pid}-${n++}`;
    const res = await send({ method: named ? 'PUT' : 'POST', path: named ? `/v1/database/${name}` : '/v1/database', headers: ownerAuth(), body });
    // Upstream answers a first publish that fails to load or init with 500 and the error text (cli-and-publish.md).
    assert.ok(res.status >= 400 && res.status <= 500, `status ${res.status} (${res.body.slice(0, 200)}) for ${fc.stringify(body).slice(0, 300)}`);
    assert.ok(res.body.trim().length > 0, 'a message');
    if (named) assert.equal((await send({ method: 'GET', path: `/v1/database/${name}`, headers: ownerAuth(), body: undefined })).status, 404, name);
  }), { numRuns: scaled(12, 120), seed, endOnFailure: !long });
  await assertHealthy(bank, 'after garbage publishes');
});

// Found by this fuzzer: `new URL(req.url, base)` in server/http.ts threw for a path that starts with `//` (read as a
// scheme-relative URL with an empty host), outside any try, so one unauthenticated request ended the whole process
// ("fatal: uncaught exception: TypeError: Invalid URL"). Fixed in requestUrl; kept last in this file.
test('a request path starting with // is answered, not fatal to the server', async () => {
  for (const path of ['//', '//x', '///v1/ping']) {
    const res = await send({ method: 'GET', path, headers: {}, body: undefined });
    assert.ok(res.status === 404 || res.status === 400 || res.status === 200, `${path}: ${res.status}`);
  }
  await assertHealthy(bank, 'after // paths');
});
