// A real server's module calls make few syscalls after their entry, seen from outside through GET /v1/metrics
// (`spacetime_module_syscall_crossings_total`): a burst of keynote transfers pipelined over one WebSocket, on
// accounts the module has not read yet, reaches the database's worker together, and read-ahead fetches the rows the
// batch's calls will read in one crossing per batch (host/isolate-src.ts "Read-ahead"); the updates are queued.
// Without read-ahead the first reads cross (621 crossings for 600 transfers here).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import type { ServerMessage } from '../../src/subscription/messages.js';
import { RawClient } from './helpers.js';

const accounts = 4000;
const transfers = 600;
/** Read-ahead gave 0.05 crossings per transfer here (27 for 600); without it 1.04 (621). */
const crossingsPerTransferMax = 0.5;
let server: TestServer;

before(async () => {
  server = await startTestServer();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/keynote', '-y', 'bank'],
    { configPath: tempConfigPath() });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/v1/metrics`)).text();
  let n = 0, found = false;
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))) { n += Number(m[1]); found = true; }
  assert.ok(found, `${name} is in /v1/metrics`);
  return n;
}

async function reducerResult(c: RawClient): Promise<Extract<ServerMessage, { tag: 'ReducerResult' }>> {
  for (;;) {
    const m = await c.next(30_000);
    if (m.tag === 'ReducerResult') return m;
  }
}

function args(write: (w: BsatnWriter) => void): Uint8Array {
  const w = new BsatnWriter();
  write(w);
  return w.finish();
}

test('pipelined transfers on unread accounts cross into the host about once per batch, not once per read', async () => {
  const c = await RawClient.open(`${server.url.replace('http', 'ws')}/v1/database/bank/subscribe?compression=None`);
  c.send({ tag: 'CallReducer', requestId: 1, reducer: 'seed', args: args((w) => { w.writeU32(accounts); w.writeI64(1_000_000n); }) });
  assert.equal((await reducerResult(c)).outcome.tag, 'Ok');

  const crossingsBefore = await metric('spacetime_module_syscall_crossings_total');
  const transactionsBefore = await metric('spacetime_transactions_total');
  // Distinct accounts, none read since the seed: every read is a row-cache miss unless read-ahead fetched it.
  c.send(...Array.from({ length: transfers }, (_, i) => ({
    tag: 'CallReducer' as const, requestId: 2 + i, reducer: 'transfer',
    args: args((w) => { w.writeU32(2 * i); w.writeU32(2 * i + 1); w.writeI64(5n); }),
  })));
  for (let i = 0; i < transfers; i++) {
    const r = await reducerResult(c);
    assert.equal(r.requestId, 2 + i);
    assert.equal(r.outcome.tag, 'Ok', `transfer ${i}`);
  }
  const crossings = (await metric('spacetime_module_syscall_crossings_total')) - crossingsBefore;
  assert.equal((await metric('spacetime_transactions_total')) - transactionsBefore, transfers);
  assert.ok(crossings / transfers <= crossingsPerTransferMax,
    `${crossings} syscall crossings for ${transfers} transfers (≤ ${crossingsPerTransferMax} each expected)`);
  c.ws.close();
});
