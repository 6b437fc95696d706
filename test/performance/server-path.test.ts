// test/performance/server-path.test.ts — the server call path without a promise per call (docs/performance.md,
// "Round 3"): Database.callReducerNow, the session's reply released by the group commit's one reaction, WebSocket
// frames written by the session itself, the cached CallReducer decode and the commit log's Number-based 64-bit
// writes. Each test pins down behaviour that must not change: durable acks, reply order, error texts, wire bytes.
// Real parts: the keynote and basic fixtures in real Databases (commit log on disk where durability matters), the
// real session over a real socket, ws's own frame encoder as the reference.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Sender } from 'ws';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { Database } from '../../src/host/database.js';
import { directFrameMaxBytes, encodeWsFrames } from '../../src/server/websocket/session.js';
import { decodeClientFrame, decodeClientFrameInto, encodeClientMessage, type ClientMessage } from '../../src/subscription/messages.js';
import { encodeRecord, recordOverheadBytes } from '../../src/durability/segment.js';
import { bundleFixture, ownerIdentity, RawClient, startTestServer, stringArgs } from '../ws/helpers.js';

const owner = { identity: ownerIdentity, connectionId: 0n, jwtPayload: undefined };
const alice = { identity: 0xa11cen, connectionId: 7n, jwtPayload: undefined };

function transferArgs(from: number, to: number, amount: bigint): Uint8Array {
  const w = new BsatnWriter();
  w.writeU32(from); w.writeU32(to); w.writeI64(amount);
  return w.finish();
}

async function withKeynote(
  options: { failSyncNumber?: number }, fn: (db: Database) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-server-path-'));
  const db = await Database.create({
    identity: 0xc200beefn, ownerIdentity, dataDir: join(dir, 'db'), report: () => undefined,
    faultInjection: options.failSyncNumber === undefined ? undefined : { failSyncNumber: options.failSyncNumber },
  }, await bundleFixture('keynote'));
  try {
    assert.equal((await db.callReducerJson('seed', [10, 1000], owner)).status, 'committed');
    await fn(db);
  } finally {
    await db.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('callReducerNow runs at once, answers like callReducer, and its durable promise settles after fsync', async () => {
  await withKeynote({}, async (db) => {
    const now = db.callReducerNow('transfer', transferArgs(1, 2, 5n), alice);
    assert.ok(now !== undefined);
    assert.equal(now.result.status, 'committed');
    assert.ok(now.durable !== undefined, 'a durable database hands out what the reply waits for');
    await now.durable;
    const refused = db.callReducerNow('transfer', transferArgs(3, 3, 1n), alice);
    assert.deepEqual(refused?.result, { status: 'failed', message: 'same_account' });
    // Errors thrown at once are the ones callReducer rejects with.
    for (const [name, args] of [['no_such_reducer', new Uint8Array(0)], ['transfer', new Uint8Array(3)]] as const) {
      const rejected = await db.callReducer(name, args, alice).then(() => undefined, (e: Error) => e);
      assert.throws(() => db.callReducerNow(name, args, alice), (e: Error) =>
        e.name === rejected?.name && e.message === rejected.message);
    }
  });
});

test('callReducerNow declines while another call runs (a commit listener), callReducer queues it', async () => {
  await withKeynote({}, async (db) => {
    let inside: unknown = 'not called';
    let queued: Promise<unknown> | undefined;
    const stop = db.onCommit(() => {
      if (queued !== undefined) return;
      inside = db.callReducerNow('transfer', transferArgs(4, 5, 1n), alice);
      queued = db.callReducer('transfer', transferArgs(4, 5, 1n), alice);
    });
    db.callReducerNow('transfer', transferArgs(1, 2, 1n), alice);
    stop();
    assert.equal(inside, undefined);
    assert.equal(((await queued) as { status: string }).status, 'committed');
  });
});

test('a pipelined reply is never sent when its commit cannot be made durable (v2 client)', async () => {
  // Sync 1: the creating batch; 2: seed; 3: the client's connection; 4: the batch holding the transfer fails.
  await withKeynote({ failSyncNumber: 4 }, async (db) => {
    const srv = await startTestServer({ db: () => db });
    try {
      const c = await RawClient.open(`${srv.wsUrl}/v1/database/chat/subscribe`, ['v2.bsatn.spacetimedb']);
      assert.equal((await c.next()).tag, 'InitialConnection');
      c.send({ tag: 'CallReducer', requestId: 1, reducer: 'transfer', args: transferArgs(1, 2, 1n) });
      const first = await Promise.race([c.closed.then(() => 'closed'), c.next(10_000).then((m) => m.tag)]);
      assert.equal(first, 'closed', 'the reply must not leave before its fsync');
      const closed = await c.closed;
      assert.equal(closed.code, 1011);
      assert.match(closed.reason, /could not be made durable/);
      assert.deepEqual(c.frames.flatMap((f) => f.messages.map((m) => m.tag)), ['InitialConnection']);
    } finally {
      await srv.close();
    }
  });
});

test('v2: small replies framed by the session and large ones sent by ws keep request order', async () => {
  const srv = await startTestServer();
  try {
    const big = 'x'.repeat(directFrameMaxBytes);
    const c = await RawClient.open(`${srv.wsUrl}/v1/database/chat/subscribe`, ['v2.bsatn.spacetimedb']);
    assert.equal((await c.next()).tag, 'InitialConnection');
    const sent: ClientMessage[] = [];
    for (let i = 0; i < 6; i++) {
      sent.push({ tag: 'CallReducer', requestId: 10 + i, reducer: 'add', args: stringArgs(i % 2 === 0 ? `${big}${i}` : `p${i}`) });
      sent.push({ tag: 'OneOffQuery', requestId: 100 + i, queryString: 'SELECT * FROM person' });
    }
    for (const m of sent) c.send(m); // v2: one message per frame
    const got: string[] = [];
    let largest = 0;
    while (got.length < sent.length) {
      const m = await c.next(10_000);
      if (m.tag === 'ReducerResult') {
        assert.equal(m.outcome.tag, 'Ok');
        got.push(`r${m.requestId}`);
      } else if (m.tag === 'OneOffQueryResult') {
        assert.ok(m.result.ok);
        const rows = m.result.rows[0]?.rows.length ?? 0;
        largest = Math.max(largest, rows);
        got.push(`q${m.requestId}:${rows}`);
      }
    }
    assert.deepEqual(got, sent.map((m, i) => m.tag === 'CallReducer' ? `r${m.requestId}` : `q${m.requestId}:${(i + 1) / 2}`));
    assert.equal(largest, 6);
  } finally {
    await srv.close();
  }
});

test('encodeWsFrames writes exactly the bytes ws would (every length encoding)', () => {
  const sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000];
  const msgs = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff));
  const expected = Buffer.concat(msgs.flatMap((m) =>
    Sender.frame(Buffer.from(m), { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false }) as Buffer[]));
  assert.ok(encodeWsFrames(msgs, 0, msgs.length, expected.length).equals(expected));
  const two = Buffer.concat(msgs.slice(2, 4).flatMap((m) =>
    Sender.frame(Buffer.from(m), { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false }) as Buffer[]));
  assert.ok(encodeWsFrames(msgs, 2, 4, two.length).equals(two), 'a sub-range');
  assert.throws(() => encodeWsFrames(msgs, 0, 1, 5), /frame sizes/);
});

function clientFrame(...msgs: ClientMessage[]): Uint8Array {
  const w = new BsatnWriter();
  for (const m of msgs) encodeClientMessage(w, m);
  return w.finish();
}

test('a CallReducer of a known reducer decodes as the generic decoder does, and keeps its errors', () => {
  const call = (requestId: number, reducer: string): ClientMessage =>
    ({ tag: 'CallReducer', requestId, reducer, args: Uint8Array.of(1, 2, 3) });
  const frame = clientFrame(call(1, 'ünïcode_name'), call(0xfffffffe, 'ünïcode_name'), call(3, 'other'));
  const first = decodeClientFrame(frame, 3); // learns the names
  const again = decodeClientFrame(frame, 3); // the cached path
  assert.deepEqual(again, first);
  assert.deepEqual(again.map((m) => m.tag === 'CallReducer' && m.requestId), [1, 0xfffffffe, 3]);
  // The cached name is a copy: rewriting the client's buffer afterwards changes nothing.
  frame[10] = 0x41;
  assert.equal((decodeClientFrame(clientFrame(call(9, 'ünïcode_name')), 2)[0] as { reducer: string }).reducer, 'ünïcode_name');
  // Malformed input with a cached name still fails with the generic decoder's text; nothing is appended.
  const good = clientFrame(call(1, 'other'));
  const badFlags = good.slice(); badFlags[5] = 1;
  const truncated = good.subarray(0, good.length - 1);
  const out: ClientMessage[] = [];
  assert.throws(() => decodeClientFrameInto(badFlags, 2, out), /ClientMessage::CallReducer starting at byte 0: flags must be 0, got 1 at byte 5/);
  assert.throws(() => decodeClientFrameInto(truncated, 2, out), /malformed ClientMessage::CallReducer starting at byte 0: truncated input/);
  assert.throws(() => decodeClientFrameInto(Buffer.concat([good, good]), 2, out), /trailing bytes after ClientMessage: \d+ bytes left over/);
  assert.throws(() => decodeClientFrameInto(Buffer.concat([good, truncated]), 3, out), /truncated input/);
  assert.deepEqual(out, [], 'all of a frame or nothing');
  decodeClientFrameInto(Buffer.concat([good, good]), 3, out);
  assert.equal(out.length, 2);
});

test('commit records: 64-bit header fields written through Numbers match the BigInt writers', () => {
  const payload = Uint8Array.of(9, 8, 7);
  const values: [bigint, bigint][] = [
    [0n, 0n], [1n, -1n], [0xffffffffn, 0x100000000n], [2n ** 53n - 1n, 1_764_000_000_000_000n],
    [2n ** 53n, -(2n ** 63n)], [2n ** 64n - 1n, 2n ** 63n - 1n],
  ];
  for (const [offset, ts] of values) {
    const got = Buffer.alloc(recordOverheadBytes + payload.length);
    encodeRecord(got, 0, offset, ts, payload);
    const want = Buffer.from(got);
    want.writeBigUInt64LE(offset, 4);
    want.writeBigInt64LE(ts, 12);
    assert.deepEqual(got.subarray(4, 20), want.subarray(4, 20), `offset ${offset}, timestamp ${ts}`);
  }
  assert.throws(() => encodeRecord(Buffer.alloc(64), 0, -1n, 0n, payload), RangeError);
});
