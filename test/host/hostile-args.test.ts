// Issue 11 items 3 and 12: arguments an attacker shapes are refused with a clear error, through the real server.
// - A 15-byte CallReducer frame declaring 2^32−1 elements of a zero-size type (`t.array(t.unit())`) once ran V8 out of
//   memory: decoding now bounds every array's count before reading it (src/limits.ts satsZeroSizeArrayElementsMax,
//   satsArrayElementsMax, and the bytes left), in the host's argument check, BSATN and SATS-JSON alike.
// - A `call` whose Identity argument was too short hex answered 200 (read as a small u256); an Identity written as
//   text must be exactly 64 hex digits, as upstream's Identity::from_hex.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { satsZeroSizeArrayElementsMax } from '../../src/limits.js';
import { decodeServerMessages, encodeClientMessage, type ServerMessage } from '../../src/subscription/messages.js';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, within, type TestServer } from '../harness.js';

let server: TestServer;
const configPath = tempConfigPath();

before(async () => {
  server = await startTestServer();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/hostile-input', '-y', 'hostile'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

async function call(fn: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}/v1/database/hostile/call/${fn}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body,
  });
  return { status: res.status, text: await res.text() };
}

/** Sends one CallReducer over a v2 WebSocket with raw BSATN arguments; resolves with its ReducerResult and the frame size. */
async function callOverWebSocket(reducer: string, args: Uint8Array): Promise<{ result: ServerMessage; frameBytes: number }> {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/hostile/subscribe?compression=None`, ['v2.bsatn.spacetimedb']);
  ws.binaryType = 'nodebuffer';
  try {
    return await within(new Promise((resolve, reject) => {
      let frameBytes = 0;
      ws.on('message', (data: Buffer) => {
        for (const m of decodeServerMessages(new Uint8Array(data.subarray(1)))) {
          if (m.tag === 'InitialConnection') {
            const w = new BsatnWriter();
            encodeClientMessage(w, { tag: 'CallReducer', requestId: 7, reducer, args });
            const frame = w.finish();
            frameBytes = frame.length;
            ws.send(frame);
          }
          if (m.tag === 'ReducerResult') resolve({ result: m, frameBytes });
        }
      });
      ws.on('error', reject);
      ws.on('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)));
    }), 'the ReducerResult');
  } finally {
    ws.removeAllListeners('close');
    ws.close();
  }
}

test('a CallReducer frame declaring 2^32−1 unit elements is refused at once, and the server keeps serving', async () => {
  const started = performance.now();
  const { result, frameBytes } = await callOverWebSocket('units', new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  const elapsedMs = performance.now() - started;
  assert.equal(frameBytes, 23, 'the attack frame: tag, request id, flags, name, 4 bytes of arguments');
  assert.equal(result.tag, 'ReducerResult');
  const outcome = (result as Extract<ServerMessage, { tag: 'ReducerResult' }>).outcome;
  assert.notEqual(outcome.tag, 'Ok');
  const message = 'message' in outcome ? outcome.message : '';
  assert.match(message, /units.*items: array of 4294967295 elements exceeds the limit of 65536 elements of a zero-size type \(satsZeroSizeArrayElementsMax\)/);
  assert.ok(elapsedMs < 5_000, `refused without decoding the elements (${Math.round(elapsedMs)} ms)`);
  assert.ok(server.pid() !== undefined, 'the server is alive');

  // Up to the limit is an ordinary call, over the WebSocket and over HTTP.
  const w = new BsatnWriter();
  w.writeU32(3);
  const ok = await callOverWebSocket('units', w.finish());
  assert.equal((ok.result as Extract<ServerMessage, { tag: 'ReducerResult' }>).outcome.tag, 'Ok');
  const atLimit = await call('units', JSON.stringify([Array.from({ length: satsZeroSizeArrayElementsMax }, () => [])]));
  assert.equal(atLimit.status, 200, atLimit.text);
});

test('SATS-JSON arguments are bounded the same way', async () => {
  const over = await call('units', JSON.stringify([Array.from({ length: satsZeroSizeArrayElementsMax + 1 }, () => [])]));
  assert.equal(over.status, 400, over.text);
  assert.match(over.text, /invalid arguments for reducer units: argument 0 \(items\): array of 65537 elements exceeds the limit of 65536 elements of a zero-size type \(satsZeroSizeArrayElementsMax\)/);
});

test('an Identity argument written as too short hex is refused, naming the argument and what was wrong', async () => {
  const short = await call('greet', JSON.stringify(['c2001234']));
  assert.equal(short.status, 400, short.text);
  assert.match(short.text, /invalid arguments for reducer greet: argument 0 \(who\): invalid identity hex "c2001234": expected 64 hex characters, got 8/);
  const number = await call('greet', JSON.stringify([12]));
  assert.equal(number.status, 400, number.text);
  assert.match(number.text, /argument 0 \(who\): expected an identity as 64 hex characters, got number 12/);

  const cli = await runCli(['call', '-s', server.url, 'hostile', 'greet', '"0xc2001234"'], { configPath });
  assert.notEqual(cli.code, 0, cli.stdout);
  assert.match(cli.stderr + cli.stdout, /expected 64 hex characters, got 8/);

  const full = 'c200' + 'ab'.repeat(30);
  assert.equal((await call('greet', JSON.stringify([full]))).status, 200);
  const byCli = await runCli(['call', '-s', server.url, 'hostile', 'greet', full], { configPath });
  assert.equal(byCli.code, 0, byCli.stderr);
  const sql = await runCli(['sql', '-s', server.url, 'hostile', 'SELECT label FROM item'], { configPath });
  assert.equal((sql.stdout.match(new RegExp(`greet ${full}`, 'g')) ?? []).length, 2, sql.stdout + sql.stderr);
});
