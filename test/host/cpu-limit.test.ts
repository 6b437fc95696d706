// Issue 11 item 5: a reducer that loops over syscalls stops at its time limit like a pure-JS loop does. isolated-vm's
// own timeout counted only time inside the isolate (until patches/isolated-vm+5.0.4.patch made it wall time), so a loop
// spending most of its time in host syscalls (logging, `find`, inserts) used to run 1.5–4× its limit; the host checks
// the call's deadline at every syscall and ends the isolate's execution, which a `try/catch` in the module cannot
// swallow. Real module (cpu-hog), real isolate. The whole matrix (entries × loops × thread modes): cpu-limit-cases.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, type Caller } from '../../src/host/database.js';
import { ConnectionRejectedError } from '../../src/host/errors.js';
import { fixtureBundle } from './bundle.js';

const limitMs = 2_000;
const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
let db: Database;
/** Time a pure-JS loop takes to be stopped (isolated-vm's timer, exact) and answered. */
let spinMs: number;

before(async () => {
  db = await Database.create({ identity: 0xc200aan, ownerIdentity: 0xabn, limits: { reducerTimeoutMs: limitMs } },
    await fixtureBundle('cpu-hog'));
  spinMs = await stoppedAfterMs('spin', []);
});

after(async () => { await db?.close(); });

function rowCount(table: string): number {
  const t = db.datastore.tableByName(table);
  assert.ok(t !== undefined, `table ${table}`);
  return db.datastore.rowCount(t.tableId);
}

/** Calls a looping reducer; checks it was stopped by its limit and rolled back; returns how long the call took. */
async function stoppedAfterMs(reducer: string, args: unknown[]): Promise<number> {
  const started = performance.now();
  const r = await db.callReducerJson(reducer, args, alice);
  const elapsedMs = performance.now() - started;
  assert.equal(r.status, 'internal');
  assert.match(r.status === 'internal' ? r.message : '', new RegExp(`exceeded its CPU time limit of ${limitMs} ms`));
  assert.equal(rowCount('item'), 0, `${reducer}: everything it inserted was rolled back`);
  const stopped = db.logs.tail(5).find((l) => l.level === 'Panic' && /^reducer \S+ was stopped: .*time limit/.test(l.message));
  assert.ok(stopped !== undefined, `${reducer}: the module log says why it stopped`);
  return elapsedMs;
}

for (const [reducer, swallow] of [
  ['logLoop', false], ['logLoop', true], ['findLoop', false], ['findLoop', true], ['insertLoop', false], ['insertLoop', true],
] as const) {
  test(`${reducer}${swallow ? ' inside try/catch' : ''} stops within its limit + 10 % (as a pure-JS loop does)`, async (t) => {
    // spinMs = the limit and the reply; a syscall loop may take 10 % of the limit more than that, an insert loop too:
    // its rollback drops the rows it wrote at once (datastore/store.ts rollbackTable). A run over that is tried up to
    // twice more: on a loaded machine a descheduled thread has made a run late by 0.1–0.4 s, twice in a row once (an
    // insert loop at 2,244 ms in a full `npm test`; alone it stops at 2,003–2,033 ms).
    const boundMs = spinMs + limitMs * 0.1;
    let elapsedMs = await stoppedAfterMs(reducer, [swallow]);
    for (let retry = 0; retry < 2 && elapsedMs > boundMs; retry++) elapsedMs = Math.min(elapsedMs, await stoppedAfterMs(reducer, [swallow]));
    t.diagnostic(`stopped after ${Math.round(elapsedMs)} ms (pure-JS loop: ${Math.round(spinMs)} ms, limit ${limitMs} ms)`);
    assert.ok(elapsedMs <= boundMs,
      `${reducer} took ${Math.round(elapsedMs)} ms; a pure-JS loop took ${Math.round(spinMs)} ms; limit ${limitMs} ms`);
    assert.equal((await db.callReducerJson('add', ['after'], alice)).status, 'committed', 'the next call works');
    assert.equal((await db.callReducerJson('hit', [], alice)).status, 'committed');
    assert.equal((await db.callReducerJson('clear_items', [], alice)).status, 'committed');
  });
}

test('a client_connected hook looping over syscalls is stopped at its limit too; the connection is refused', async (t) => {
  assert.equal((await db.callReducerJson('set_connect_loop', [true], alice)).status, 'committed');
  const bob: Caller = { identity: 0x3333n, connectionId: 0x44n, jwtPayload: undefined };
  const started = performance.now();
  await assert.rejects(db.clientConnected(bob), (err: unknown) => err instanceof ConnectionRejectedError &&
    new RegExp(`exceeded its CPU time limit of ${limitMs} ms`).test(err.message));
  const elapsedMs = performance.now() - started;
  t.diagnostic(`client_connected stopped after ${Math.round(elapsedMs)} ms (pure-JS loop: ${Math.round(spinMs)} ms)`);
  // Today the hook holds the server's thread for up to its limit (engine v2 moves databases off it); never more.
  // The refused connection also runs client_disconnected and tears the session down: 15 % of the limit on a loaded machine.
  assert.ok(elapsedMs <= spinMs + limitMs * 0.15, `client_connected took ${Math.round(elapsedMs)} ms`);
  assert.equal((await db.callReducerJson('set_connect_loop', [false], alice)).status, 'committed');
  await db.clientConnected(bob);
});
