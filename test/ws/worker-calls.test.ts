// Worker mode (`--database-threads worker`, host/worker/): a WebSocket client's reducer calls pipeline as they do
// in-thread. A burst of calls in one frame goes to the database's worker without waiting for each reply, so they share
// group commits (fewer fsyncs than calls), and every reply still comes in request order carrying the caller's own
// subscribed changes — also right after a call that failed — while another subscriber sees every commit in order.
// The calls that reach the worker together run in batches (one entry into the module for many calls).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { RawClient, stringArgs } from './helpers.js';
import type { ServerMessage } from '../../src/subscription/messages.js';

const calls = 120;
let server: TestServer;
const saved = process.env.SPACETIME_DATABASE_THREADS;

before(async () => {
  process.env.SPACETIME_DATABASE_THREADS = 'worker';
  server = await startTestServer();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/basic', '-y', 'pipe'], { configPath: tempConfigPath() });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  if (saved === undefined) delete process.env.SPACETIME_DATABASE_THREADS;
  else process.env.SPACETIME_DATABASE_THREADS = saved;
  await server?.stop();
  cleanupTempDirs();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/v1/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))) n += Number(m[1]);
  return n;
}
const fsyncs = (): Promise<number> => metric('spacetime_commitlog_fsyncs_total');

async function nextOf<T extends ServerMessage['tag']>(c: RawClient, tag: T): Promise<Extract<ServerMessage, { tag: T }>> {
  const m = await c.next(20_000);
  assert.equal(m.tag, tag, `expected ${tag}, got ${JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 200)}`);
  return m as Extract<ServerMessage, { tag: T }>;
}

test('a burst of calls on one connection shares group commits; replies and updates stay in order', async () => {
  const url = `${server.url.replace('http', 'ws')}/v1/database/pipe/subscribe?compression=None`;
  const a = await RawClient.open(url);
  const b = await RawClient.open(url);
  await nextOf(a, 'InitialConnection');
  await nextOf(b, 'InitialConnection');
  a.send({ tag: 'Subscribe', requestId: 0, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
  b.send({ tag: 'Subscribe', requestId: 0, querySetId: 1, queryStrings: ['SELECT * FROM person'] });
  await nextOf(a, 'SubscribeApplied');
  await nextOf(b, 'SubscribeApplied');

  const failing = 60; // bad arguments: InternalError, no commit; the next call must still get its own update
  const before = await fsyncs(), batchedBefore = await metric('spacetime_reducer_calls_batched_total');
  a.send(...Array.from({ length: calls }, (_, i) => ({
    tag: 'CallReducer' as const, requestId: i + 1, reducer: 'add', args: i + 1 === failing ? new Uint8Array([1]) : stringArgs(`p${i + 1}`),
  })));
  for (let i = 1; i <= calls; i++) {
    const r = await nextOf(a, 'ReducerResult');
    assert.equal(r.requestId, i, 'replies in request order');
    if (i === failing) {
      assert.equal(r.outcome.tag, 'InternalError');
      continue;
    }
    assert.equal(r.outcome.tag, 'Ok', `call ${i}`);
    const own = r.outcome.tag === 'Ok' ? r.outcome.transactionUpdate : [];
    assert.equal(own.length, 1, `call ${i} carries its own change`);
  }
  for (let i = 1; i <= calls; i++) {
    if (i === failing) continue;
    const tu = await nextOf(b, 'TransactionUpdate');
    const t = tu.querySets[0].tables[0] as { rows: { inserts?: Uint8Array[] }[] };
    const name = Buffer.from(t.rows[0].inserts![0].subarray(4)).toString('utf8');
    assert.equal(name, `p${i}`, 'the other subscriber sees every commit in order');
  }
  const synced = (await fsyncs()) - before;
  assert.ok(synced < calls / 2, `${calls} pipelined calls took ${synced} fsyncs: they should share group commits`);
  // Calls that reach the worker together enter the module together (Database.callReducersNow).
  const batched = (await metric('spacetime_reducer_calls_batched_total')) - batchedBefore;
  assert.ok(batched >= calls / 2, `${batched} of ${calls} pipelined calls ran in batches`);
  a.ws.close();
  b.ws.close();
});
