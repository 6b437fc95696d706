// Fault suite: fuzzed WebSocket input thrown at a real server process (issue 11). fast-check generates v2/v3 client
// frames — well-formed ClientMessages with random field values, then mutated (truncated, bytes flipped, a length or
// count overwritten with a huge value, trailing garbage, many messages in one v3 frame), plain random bytes, text
// frames — and upgrade requests with odd subprotocol headers. Every frame must end in replies or a close frame with a
// known code and a reason (never a dropped connection, never a server frame we cannot decode), and after each batch
// the server still answers /v1/ping, a well-behaved client still subscribes and calls a reducer, and the server's RSS
// stays bounded. Fast variant ≈ 160 cases; FAULTS_LONG=1 runs 4,000.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { decodeServerMessages, encodeClientMessage, type ClientMessage, type ServerMessage } from '../../src/subscription/messages.js';
import { cleanupTempDirs } from '../harness.js';
import { assertHealthy, long, rssBytes, scaled, seed, startBank, transferArgs, type Bank } from './helpers.js';

const batches = scaled(4, 40);
const casesPerBatch = scaled(40, 100);
/** Close codes a server may answer bad input with (session.ts closeCodes); 1006 (no close frame) never. */
const allowedCloseCodes = new Set([1000, 1008, 1009, 1011, 1013]);
/** The well-formed message every case ends with: its answer proves everything before it was processed. */
const sentinelRequestId = 0xfeedbeef;
/** How much the server's RSS may grow over the whole run (isolate heaps, caches and V8 growth fit well below). */
const rssGrowthMaxBytes = 256 * 1024 * 1024;

let bank: Bank;

before(async () => {
  bank = await startBank();
});
after(async () => {
  await bank?.server.stop();
  cleanupTempDirs();
});

// ---------------------------------------------------------------------------------------------------------------
// Generators

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const tables = ['accounts', 'transfer_log', 'client_events', 'nope', 'st_table'];
const columns = ['*', 'id', 'balance', 'nonce', 'amount', '"from"', 'who', 'x'];
/** A small SQL grammar: mostly-plausible subscription queries with random pieces, so the planner's errors get exercised. */
const sqlish = fc.tuple(
  fc.constantFrom(...columns), fc.constantFrom(...tables),
  fc.option(fc.tuple(fc.constantFrom(...columns), fc.constantFrom('=', '<', '>', '<>', '!=', 'LIKE', '= =', 'AND'),
    fc.oneof(fc.integer().map(String), fc.string({ maxLength: 8 }).map((s) => `'${s}'`), fc.constantFrom('NULL', 'true', ':sender', '1e999', '-0', '18446744073709551616')))),
  fc.constantFrom('', ';', ' JOIN accounts a ON a.id = id', ' LIMIT 1', ' ORDER BY id', ' --', "'"),
).map(([col, table, where, tail]) => `SELECT ${col} FROM ${table}${where === null ? '' : ` WHERE ${where.join(' ')}`}${tail}`);
const queryString = fc.oneof(
  fc.constantFrom('SELECT * FROM accounts', 'SELECT * FROM transfer_log WHERE amount > 10', 'SELECT * FROM client_events'),
  sqlish,
  fc.string({ maxLength: 200, unit: 'binary' }),
);
const reducerName = fc.oneof(
  fc.constantFrom('transfer', 'burn_id', 'init', 'on_connect', 'onConnect', 'client_connected', 'nope', ''),
  fc.string({ maxLength: 80, unit: 'binary' }),
);
const argsBytes = fc.oneof(
  fc.tuple(u32, u32, fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), fc.string({ maxLength: 40 }))
    .map(([from, to, amount, nonce]) => transferArgs(from % 12, to % 12, amount, nonce)),
  fc.uint8Array({ maxLength: 64 }),
);
const clientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ tag: fc.constant('Subscribe' as const), requestId: u32, querySetId: u32, queryStrings: fc.array(queryString, { maxLength: 4 }) }),
  fc.record({ tag: fc.constant('Unsubscribe' as const), requestId: u32, querySetId: u32, sendDroppedRows: fc.boolean() }),
  fc.record({ tag: fc.constant('OneOffQuery' as const), requestId: u32, queryString }),
  fc.record({ tag: fc.constant('CallReducer' as const), requestId: u32, reducer: reducerName, args: argsBytes }),
  fc.record({ tag: fc.constant('CallProcedure' as const), requestId: u32, procedure: reducerName, args: argsBytes }),
);

type Mutation =
  | { kind: 'none' }
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'huge-u32'; at: number; value: number }
  | { kind: 'trailing'; bytes: Uint8Array }
  | { kind: 'repeat'; times: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'none' as const }), weight: 3 },
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('huge-u32' as const), at: fc.nat(), value: fc.constantFrom(0xffffffff, 0x7fffffff, 0x10000000, 0x00ffffff) }),
  fc.record({ kind: fc.constant('trailing' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('repeat' as const), times: fc.integer({ min: 2, max: 300 }) }),
);

function mutate(frame: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case 'none': return frame;
    case 'truncate': return frame.subarray(0, m.at % frame.length);
    case 'flip': { const out = frame.slice(); out[m.at % out.length]! ^= m.xor; return out; }
    case 'huge-u32': {
      const out = frame.slice();
      const at = m.at % Math.max(1, out.length - 3);
      new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(at, m.value, true);
      return out;
    }
    case 'trailing': return Buffer.concat([frame, m.bytes]);
    case 'repeat': return Buffer.concat(Array.from({ length: m.times }, () => frame));
  }
}

function encodeFrame(messages: ClientMessage[]): Uint8Array {
  const w = new BsatnWriter();
  for (const m of messages) encodeClientMessage(w, m);
  return w.finish();
}

type Frame = { binary: Uint8Array } | { text: string };
interface WsCase { version: 2 | 3; frames: Frame[] }

/** v2 frames hold exactly one message, v3 frames one or more; most frames stay well-formed so the host gets to run them. */
function frameFor(version: 2 | 3): fc.Arbitrary<Frame> {
  const messages = fc.array(clientMessage, { minLength: 1, maxLength: version === 3 ? 3 : 1 });
  return fc.oneof(
    { arbitrary: messages.map((ms) => ({ binary: encodeFrame(ms) })), weight: 6 },
    { arbitrary: fc.tuple(messages, mutation).map(([ms, m]) => ({ binary: mutate(encodeFrame(ms), m) })), weight: 3 },
    { arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => ({ binary: b })), weight: 1 },
    { arbitrary: fc.string({ maxLength: 64 }).map((text) => ({ text })), weight: 1 },
  );
}
const wsCase: fc.Arbitrary<WsCase> = fc.constantFrom(2 as const, 3 as const)
  .chain((version) => fc.record({ version: fc.constant(version), frames: fc.array(frameFor(version), { minLength: 1, maxLength: 3 }) }));

// ---------------------------------------------------------------------------------------------------------------
// Running one case

interface CaseOutcome { close: { code: number; reason: string } | undefined; sentinelAnswered: boolean; undecodable: string[] }

/** Opens a socket, sends the case's frames and a sentinel query, and waits for the sentinel's answer or a close. */
async function runCase(c: WsCase): Promise<CaseOutcome> {
  const ws = new WebSocket(`${bank.wsUrl()}?compression=None`, [c.version === 3 ? 'v3.bsatn.spacetimedb' : 'v2.bsatn.spacetimedb'],
    { headers: bank.auth });
  const outcome: CaseOutcome = { close: undefined, sentinelAnswered: false, undecodable: [] };
  let initial = false;
  let onProgress = () => {};
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    let messages: ServerMessage[] = [];
    try {
      assert.ok(isBinary, 'text frame from the server');
      assert.equal(data[0], 0, 'compression tag');
      messages = decodeServerMessages(new Uint8Array(data.subarray(1)));
    } catch (e) {
      outcome.undecodable.push((e as Error).message);
    }
    for (const m of messages) {
      if (m.tag === 'InitialConnection') initial = true;
      if (m.tag === 'OneOffQueryResult' && m.requestId === sentinelRequestId) outcome.sentinelAnswered = true;
    }
    onProgress();
  });
  ws.on('error', () => {});
  const closed = new Promise<void>((resolve) => ws.on('close', (code, reason) => {
    outcome.close = { code, reason: reason.toString() };
    resolve();
  }));
  const until = (done: () => boolean, what: string, ms = 10_000) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${what} for case ${fc.stringify(c)}`)), ms);
    onProgress = () => { if (done()) { clearTimeout(timer); resolve(); } };
    void closed.then(() => { clearTimeout(timer); resolve(); });
    onProgress();
  });
  await until(() => initial, 'InitialConnection');
  if (outcome.close === undefined) {
    for (const f of c.frames) ws.send('binary' in f ? f.binary : f.text, { binary: 'binary' in f });
    ws.send(encodeFrame([{ tag: 'OneOffQuery', requestId: sentinelRequestId, queryString: 'SELECT * FROM accounts' }]));
    await until(() => outcome.sentinelAnswered, 'the sentinel query answer or a close');
  }
  if (outcome.close === undefined) {
    ws.close();
    await closed;
  }
  return outcome;
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

function checkOutcome(c: WsCase, o: CaseOutcome): void {
  const shown = () => fc.stringify(c).slice(0, 2000);
  assert.deepEqual(o.undecodable, [], `server frames we could not decode for ${shown()}`);
  if (o.sentinelAnswered) return;
  assert.ok(o.close !== undefined);
  assert.ok(allowedCloseCodes.has(o.close.code), `close code ${o.close.code} (${o.close.reason}) for ${shown()}`);
  assert.ok(o.close.code === 1000 || o.close.reason.length > 0, `a close without a reason for ${shown()}`);
}

// ---------------------------------------------------------------------------------------------------------------

test('fuzzed v2/v3 client frames: every one ends in replies or a clean close; the server keeps serving', async (t) => {
  await assertHealthy(bank, 'before fuzzing');
  const pid = bank.server.pid()!;
  const rssStart = rssBytes(pid);
  const reasons = new Map<string, number>();
  for (let batch = 0; batch < batches; batch++) {
    await fc.assert(fc.asyncProperty(wsCase, async (c) => {
      const o = await runCase(c);
      checkOutcome(c, o);
      if (o.sentinelAnswered) return;
      const reason = `${o.close!.code} ${o.close!.reason.replace(/\d+/g, 'N').slice(0, 50)}`;
      reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }), { numRuns: casesPerBatch, seed: seed + batch, endOnFailure: !long });
    await assertHealthy(bank, `after batch ${batch} (seed ${seed + batch})`);
  }
  const rssEnd = rssBytes(pid);
  const closes = [...reasons.values()].reduce((a, b) => a + b, 0);
  t.diagnostic(`${batches * casesPerBatch} cases, ${closes} closed by the server; RSS ${mib(rssStart)} → ${mib(rssEnd)} MiB`);
  for (const [reason, n] of reasons) t.diagnostic(`${n} × ${reason}`);
  assert.ok(rssEnd - rssStart < rssGrowthMaxBytes,
    `server RSS grew by ${mib(rssEnd - rssStart)} MiB over ${batches * casesPerBatch} cases`);
  // The generators must reach the error paths, not only the happy one.
  assert.ok(closes > batches * casesPerBatch / 10, `only ${closes} cases closed the connection`);
});

test('a frame over the 32 MiB inbound limit closes with 1009; the server keeps serving', async () => {
  const ws = new WebSocket(bank.wsUrl(), ['v2.bsatn.spacetimedb'], { headers: bank.auth });
  await new Promise<void>((resolve, reject) => { ws.once('message', () => resolve()); ws.once('error', reject); });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => {});
  ws.send(randomBytes(32 * 1024 * 1024 + 1));
  assert.equal(await closed, 1009);
  await assertHealthy(bank, 'after an oversized frame');
});

/** A raw upgrade request with any Sec-WebSocket-Protocol header (the ws client refuses to send odd tokens). */
function upgrade(protocolHeader: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13',
      'sec-websocket-key': randomBytes(16).toString('base64'), ...bank.auth,
    };
    if (protocolHeader !== undefined) headers['sec-websocket-protocol'] = protocolHeader;
    const req = request(`${bank.server.url}/v1/database/bank/subscribe`, { headers });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode!, body: '' }); });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('upgrades with wrong or odd subprotocols are refused with 400 and a message', async () => {
  const token = fc.oneof(
    fc.constantFrom('v1.bsatn.spacetimedb', 'v1.json.spacetimedb', 'v2.json.spacetimedb', 'V2.BSATN.SPACETIMEDB', 'v4.bsatn.spacetimedb', ''),
    fc.string({ maxLength: 40, unit: fc.constantFrom(...'abcv.23,; \t-_=/"'.split('')) }),
  );
  await fc.assert(fc.asyncProperty(fc.array(token, { maxLength: 4 }), async (tokens) => {
    const header = tokens.join(', ');
    const offered = header.split(',').map((t) => t.trim());
    // A header that is not a list of distinct RFC 7230 tokens is refused whatever it offers (the ws library's parse).
    const wellFormed = offered.every((t) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(t)) && new Set(offered).size === offered.length;
    const supported = wellFormed && ['v1.json.spacetimedb', 'v2.bsatn.spacetimedb', 'v3.bsatn.spacetimedb'].some((p) => offered.includes(p));
    const res = await upgrade(tokens.length === 0 ? undefined : header);
    if (supported) assert.equal(res.status, 101, header);
    else {
      assert.equal(res.status, 400, `${JSON.stringify(header)}: ${res.body}`);
      assert.match(res.body, /protocol/i);
    }
  }), { numRuns: scaled(30, 500), seed, endOnFailure: !long });
  await assertHealthy(bank, 'after odd subprotocols');
});
