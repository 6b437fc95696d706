// Fault suite: kill -9 under mixed load (issue 11). WebSocket clients (pipelined BSATN calls, v2 and v3) and HTTP
// clients (JSON calls) run recovery-bank's `transfer` concurrently, each with a unique nonce; every call the server
// acknowledged (HTTP 200, or a ReducerResult Ok, which the server sends only once the commit is durable) is recorded.
// The server is SIGKILLed at a random moment, restarted, and then: every acknowledged transfer is in the log exactly
// once, nothing unknown is, each balance equals what the logged transfers imply (no partial transaction), the total
// is unchanged, and a fresh subscriber sees the same total. The WebSocket clients call `transfer_audited`, whose log
// row goes through the fast path (pipelined calls enter the module in batches, and the audit insert is queued in the
// isolate under a sequence lease): its acknowledged rows survive too, and an id seen before a crash is never handed
// out again after it. Fast: 3 rounds; FAULTS_LONG=1: 20.
// (test/recovery/crash.test.ts covers HTTP-only load and restarts with several databases; this adds WebSocket load.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import WebSocket from 'ws';
import { BsatnReader, BsatnWriter } from '../../src/sats/bsatn.js';
import { decodeServerMessages, encodeClientMessage } from '../../src/subscription/messages.js';
import { cleanupTempDirs, within } from '../harness.js';
import { RawClient } from '../ws/helpers.js';
import { accounts, bankProtocols, initialBalance, scaled, seed, sqlRows, startBank, transferArgs, type Bank } from './helpers.js';

const rounds = scaled(3, 20);
const httpClients = 2;
const wsClients = 2;
/** Calls one WebSocket client keeps in flight. */
const wsPipelineDepth = 8;

let bank: Bank;

before(async () => {
  bank = await startBank();
});
after(async () => {
  await bank?.server.stop();
  cleanupTempDirs();
});

interface Transfer { from: number; to: number; amount: bigint }

/** fast-check's generator as a plain stream of transfers (reproducible from the suite's seed). */
function transfers(roundSeed: number): () => Transfer {
  const gen = fc.record({ from: fc.nat(accounts - 1), delta: fc.integer({ min: 1, max: accounts - 1 }), amount: fc.bigInt({ min: 1n, max: 50n }) });
  const sample = fc.sample(gen, { numRuns: 5000, seed: roundSeed });
  let i = 0;
  return () => {
    const t = sample[i++ % sample.length]!;
    return { from: t.from, to: (t.from + t.delta) % accounts, amount: t.amount };
  };
}

/** One HTTP client: sequential JSON calls until the server dies. */
async function httpLoad(name: string, next: () => Transfer, attempted: Map<string, Transfer>, acked: Set<string>, stop: () => boolean): Promise<void> {
  for (let n = 0; !stop(); n++) {
    const t = next();
    const nonce = `${name}-${n}`;
    attempted.set(nonce, t);
    try {
      const res = await fetch(`${bank.server.url}/v1/database/bank/call/transfer`, {
        method: 'POST', headers: { ...bank.auth, 'content-type': 'application/json' },
        body: JSON.stringify([t.from, t.to, Number(t.amount), nonce]),
      });
      await res.text();
      if (res.status === 200) acked.add(nonce);
    } catch {
      return; // the server died under us
    }
  }
}

/** One WebSocket client: keeps `wsPipelineDepth` calls in flight; a ReducerResult Ok acknowledges its call. */
async function wsLoad(name: string, protocol: string, next: () => Transfer, attempted: Map<string, Transfer>, acked: Set<string>,
  stop: () => boolean): Promise<void> {
  const ws = new WebSocket(`${bank.wsUrl()}?compression=None`, [protocol], { headers: bank.auth });
  ws.binaryType = 'nodebuffer';
  const inflight = new Map<number, string>();
  let requestId = 0;
  const w = new BsatnWriter();
  const sendOne = () => {
    const t = next();
    const nonce = `${name}-${requestId}`;
    attempted.set(nonce, t);
    inflight.set(requestId, nonce);
    w.reset();
    encodeClientMessage(w, { tag: 'CallReducer', requestId: requestId++, reducer: 'transfer_audited', args: transferArgs(t.from, t.to, t.amount, nonce) });
    ws.send(w.finish());
  };
  await new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => {
      for (const m of decodeServerMessages(new Uint8Array(data.subarray(1)))) {
        if (m.tag === 'InitialConnection') for (let i = 0; i < wsPipelineDepth; i++) sendOne();
        if (m.tag !== 'ReducerResult') continue;
        const nonce = inflight.get(m.requestId);
        inflight.delete(m.requestId);
        if (nonce !== undefined && m.outcome.tag === 'Ok') acked.add(nonce);
        if (!stop() && ws.readyState === WebSocket.OPEN) sendOne();
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => resolve());
  });
}

test('kill -9 under WebSocket and HTTP load: every acknowledged transfer survives, balances consistent', async (t) => {
  const attempted = new Map<string, Transfer>();
  const acked = new Set<string>();
  const killAt = fc.sample(fc.integer({ min: 0, max: 600 }), { numRuns: rounds, seed });
  /** The largest audit id present after the previous round's restart: every id this round hands out is above it. */
  let auditIdBefore = -1n;
  for (let round = 0; round < rounds; round++) {
    let stopped = false;
    const stop = () => stopped;
    const next = transfers(seed + round);
    const ackedBefore = acked.size;
    const load = Promise.all([
      ...Array.from({ length: httpClients }, (_, c) => httpLoad(`r${round}h${c}`, next, attempted, acked, stop)),
      ...Array.from({ length: wsClients }, (_, c) => wsLoad(`r${round}w${c}`, bankProtocols[c % 2]!, next, attempted, acked, stop)),
    ]);
    // The kill lands under load: after the first acknowledgements (a busy machine may take a while to get there).
    const deadline = Date.now() + 20_000;
    while (acked.size < ackedBefore + 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, killAt[round]));
    await bank.server.kill('SIGKILL');
    stopped = true;
    await within(load, 'the load clients to notice the dead server');
    await bank.server.restart();

    const log = await sqlRows(bank, 'SELECT nonce FROM transfer_log');
    const audit = await sqlRows(bank, 'SELECT id, nonce FROM audit');
    const present = [...log.map((r) => String(r[0])), ...audit.map((r) => String(r[1]))];
    assert.equal(new Set(present).size, present.length, `round ${round}: a transfer logged twice`);
    const auditIds = audit.map((r) => BigInt(String(r[0])));
    assert.equal(new Set(auditIds).size, auditIds.length, `round ${round}: an audit id given twice`);
    for (const [id, nonce] of audit) {
      if (String(nonce).startsWith(`r${round}w`)) {
        assert.ok(BigInt(String(id)) > auditIdBefore, `round ${round}: audit id ${id} (${nonce}) reissued: ids up to ${auditIdBefore} were seen before the last crash`);
      }
    }
    auditIdBefore = auditIds.reduce((a, b) => (b > a ? b : a), auditIdBefore);
    const presentSet = new Set(present);
    const lost = [...acked].filter((n) => !presentSet.has(n));
    assert.deepEqual(lost, [], `round ${round}: acknowledged transfers lost after kill -9`);
    const balances = new Array<bigint>(accounts).fill(initialBalance);
    for (const nonce of present) {
      const tr = attempted.get(nonce);
      assert.ok(tr !== undefined, `round ${round}: transfer ${nonce} was never sent`);
      balances[tr.from]! -= tr.amount;
      balances[tr.to]! += tr.amount;
    }
    const rows = await sqlRows(bank, 'SELECT id, balance FROM accounts');
    for (const [id, balance] of rows) {
      assert.equal(BigInt(String(balance)), balances[Number(id)], `round ${round}: account ${id} disagrees with the transfer log`);
    }
    // A subscriber after the restart sees the same, consistent state.
    const c = await RawClient.open(`${bank.wsUrl()}?compression=None`, bankProtocols, bank.auth);
    try {
      assert.equal((await c.next()).tag, 'InitialConnection');
      c.send({ tag: 'Subscribe', requestId: 1, querySetId: 1, queryStrings: ['SELECT * FROM accounts'] });
      const applied = await c.next();
      assert.ok(applied.tag === 'SubscribeApplied');
      const total = applied.rows.flatMap((tbl) => tbl.rows).reduce((sum, row) => {
        const r = new BsatnReader(row);
        r.readU32();
        return sum + r.readI64();
      }, 0n);
      assert.equal(total, BigInt(accounts) * initialBalance, `round ${round}: total balance`);
    } finally {
      c.ws.close();
    }
    assert.ok(acked.size > ackedBefore, `round ${round}: the load made progress before the kill`);
    const audited = audit.filter((r) => String(r[1]).startsWith(`r${round}w`)).length;
    assert.ok(audited > 0, `round ${round}: no audited transfer (the fast path) was logged before the kill`);
    t.diagnostic(`round ${round}: killed ${killAt[round]} ms into the load; ${acked.size - ackedBefore} acknowledged, ${present.length} logged in all (${audited} audited this round)`);
  }
});
