// test/performance/pipeline.test.ts — pipelined reducer calls on one WebSocket connection (the keynote bench's
// traffic shape): every call runs at once instead of waiting for the previous reply's fsync, replies keep request
// order (failures included), and the replies produced in one event-loop turn leave in one v3 frame.
// Real parts: the keynote fixture in a durable Database (commit log on disk), the real session over a real socket.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { Database } from '../../src/host/database.js';
import type { ServerMessage } from '../../src/subscription/messages.js';
import { bundleFixture, ownerIdentity, RawClient, startTestServer } from '../ws/helpers.js';

const accountsCount = 100;
const initialBalance = 1000;
const callsCount = 200;

function transferArgs(from: number, to: number, amount: bigint): Uint8Array {
  const w = new BsatnWriter();
  w.writeU32(from); w.writeU32(to); w.writeI64(amount);
  return w.finish();
}

async function withDurableKeynote(fn: (c: RawClient, db: Database) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-perf-'));
  const db = await Database.create({ identity: 0xc200beefn, ownerIdentity, dataDir: join(dir, 'db') },
    await bundleFixture('keynote'));
  const seeded = await db.callReducerJson('seed', [accountsCount, initialBalance], {
    identity: ownerIdentity, connectionId: 0n, jwtPayload: undefined });
  assert.equal(seeded.status, 'committed');
  const srv = await startTestServer({ db: () => db });
  try {
    const c = await RawClient.open(`${srv.wsUrl}/v1/database/chat/subscribe`, ['v3.bsatn.spacetimedb']);
    assert.equal((await c.next()).tag, 'InitialConnection');
    await fn(c, db);
    c.ws.close();
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function results(c: RawClient, n: number): Promise<Extract<ServerMessage, { tag: 'ReducerResult' }>[]> {
  const out = [];
  while (out.length < n) {
    const m = await c.next(10_000);
    if (m.tag === 'ReducerResult') out.push(m);
  }
  return out;
}

test('pipelined calls on one connection share group commits, keep order, and leave coalesced', async () => {
  await withDurableKeynote(async (c, db) => {
    const framesBefore = c.frames.length;
    const calls = [];
    for (let i = 0; i < callsCount; i++) {
      // Every 10th call is refused by the module (from == to): failures must keep their place in the order.
      const from = i % accountsCount;
      const to = i % 10 === 9 ? from : (i * 7 + 1) % accountsCount === from ? (from + 1) % accountsCount : (i * 7 + 1) % accountsCount;
      calls.push({ tag: 'CallReducer' as const, requestId: 1000 + i, reducer: 'transfer', args: transferArgs(from, to, 1n) });
    }
    c.send(...calls);
    const got = await results(c, callsCount);
    assert.deepEqual(got.map((m) => m.requestId), calls.map((m) => m.requestId), 'replies in request order');
    for (let i = 0; i < callsCount; i++) {
      const outcome = got[i].outcome;
      if (i % 10 === 9) assert.deepEqual(outcome, { tag: 'Err', message: 'same_account' }, `call ${i}`);
      else assert.equal(outcome.tag, 'Ok', `call ${i}: ${JSON.stringify(outcome)}`);
    }
    // Sequential processing (one fsync per call) sends each reply in its own frame; pipelined, the committed calls
    // between two refusals share one durability wait, so at most about one frame per refusal plus a few.
    const frames = c.frames.length - framesBefore;
    assert.ok(frames <= callsCount / 10 + 5, `${frames} frames for ${callsCount} replies`);
    const total = await db.read((view) => {
      let sum = 0n;
      for (const table of view.schema().tables) {
        if (table.name !== 'accounts') continue;
        for (const row of view.scan(table.tableId)) sum += new DataView(row.buffer, row.byteOffset, row.byteLength).getBigInt64(4, true);
      }
      return sum;
    });
    assert.equal(total, BigInt(accountsCount * initialBalance), 'balance invariant');
  });
});

test('a call that commits nothing still waits its turn behind earlier replies', async () => {
  await withDurableKeynote(async (c) => {
    c.send(
      { tag: 'CallReducer', requestId: 1, reducer: 'transfer', args: transferArgs(1, 2, 1n) },
      { tag: 'CallReducer', requestId: 2, reducer: 'transfer', args: transferArgs(3, 4, 10_000n) }, // insufficient
      { tag: 'CallReducer', requestId: 3, reducer: 'no_such_reducer', args: new Uint8Array(0) },
      { tag: 'CallReducer', requestId: 4, reducer: 'transfer', args: transferArgs(2, 1, 1n) },
    );
    const got = await results(c, 4);
    assert.deepEqual(got.map((m) => [m.requestId, m.outcome.tag]), [[1, 'Ok'], [2, 'Err'], [3, 'InternalError'], [4, 'Ok']]);
  });
});
