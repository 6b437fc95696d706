// Host: a module that writes garbage into the buffers its shim shares with the host (test/fixtures/modules/
// hostile-buffers replaces DataView.prototype.setUint32) fails its own calls and nothing else. Found in session 14: a
// call-end buffer claiming more ends than the batch had calls opened a transaction nothing closed, and every later call
// of the database failed ("a mutable transaction is already open"), thrown from a microtask of the host. Now the host
// checks the shim's words before it applies anything (SyscallHost.moduleFault), stops the isolate, and the call fails
// as a trap naming the corruption. What a corrupted shim does commit is the module's own doing (test/attack/
// hostile-modules says more). In process, the calls queued together as in main mode; the real server's worker mode is
// test/attack/hostile-modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Caller } from '../../src/host/database.js';
import { createOnPath, fixtureBundle } from './bundle.js';

const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };
const accounts = 32;

test('corrupted shared-buffer words fail the module\'s own calls as traps; uncorrupted, the database is exact again', { timeout: 120_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'stdb-hostile-buffers-'));
  const db = await createOnPath({ identity: 0xc500abn, ownerIdentity: owner.identity, dataDir: join(root, 'db'), limits: {}, report: () => {} },
    await fixtureBundle('hostile-buffers'), false);
  try {
    assert.equal((await db.callReducerJson('seed', [accounts], owner)).status, 'committed');
    let committed = 0, faults = 0;
    for (const how of ['ends', 'small', 'huge', 'chaos', 'reads', 'count']) {
      for (let seed = 1; seed <= 4; seed++) {
        const burst = (k: number) => Array.from({ length: 20 }, (_, i) => db.callReducerJson('transfer', [(i * 7 + k) % accounts, (i * 11 + k + 1) % accounts], owner));
        const warm = burst(seed);
        const corrupt = db.callReducerJson('corrupt', [how, seed], owner);
        const rest = burst(seed + 5);
        const results = await Promise.all([...warm, ...rest]);
        await corrupt;
        for (const r of results) {
          if (r.status === 'committed') committed++;
          else {
            assert.equal(r.status, 'internal', `${how} ${seed}: ${r.status} ${r.message}`);
            if (/corrupted the shim's shared buffers/.test(r.message)) faults++;
          }
        }
        await db.callReducerJson('corrupt', ['off', 0], owner);
      }
    }
    assert.ok(faults >= 4, `the corruption was caught (${faults} calls failed naming it)`);
    assert.ok(committed > 0);
    const state = db.datastore.exportSnapshot() as unknown;
    assert.ok(state !== undefined);
    // What a corrupted shim committed is the module's doing (a misread word of the shared buffers can end a call with
    // fewer writes than its code made): the ledger is checked once the corruption is off. Every transfer commits
    // again, with its audit row, conserving.
    const rows = async (sql: string) => (await db.sql(sql, owner))[0].rows as unknown[][];
    const ledger = async () => ({
      total: (await rows('SELECT balance FROM accounts')).reduce((s, [b]) => s + BigInt(b as bigint), 0n),
      audit: (await rows('SELECT id FROM audit')).length,
    });
    const before = await ledger();
    const clean = await Promise.all(Array.from({ length: 40 }, (_, i) => db.callReducerJson('transfer', [i % accounts, (i * 5 + 1) % accounts], owner)));
    assert.deepEqual(clean.filter((r) => r.status !== 'committed'), [], 'the database serves on');
    assert.deepEqual(await ledger(), { total: before.total, audit: before.audit + 40 });

    // Queued inserts of `plans` retargeted at the schedule table `reminders` (same bytes): the host would have applied
    // them without checkScheduleRow (a row ten years ahead, past its bound). The record names a table the host never
    // let the module queue into: a fault.
    const refused = await db.callReducerJson('remindLater', ['checked'], owner);
    assert.notEqual(refused.status, 'committed', 'the ordinary insert of such a reminder is refused');
    const idOf = async (name: string) => Number((await rows(`SELECT table_id FROM st_table WHERE table_name = '${name}'`))[0][0]);
    const [plans, reminders] = [await idOf('plans'), await idOf('reminders')];
    for (let i = 0; i < 3; i++) assert.equal((await db.callReducerJson('plan', [`warm ${i}`], owner)).status, 'committed');
    assert.equal((await db.callReducerJson('retarget', [plans, reminders], owner)).status, 'committed');
    const planned = await Promise.all(Array.from({ length: 10 }, (_, i) => db.callReducerJson('plan', [`forged ${i}`], owner)));
    assert.ok(planned.some((r) => r.status === 'internal' && /never lets the module queue/.test(r.message)),
      planned.map((r) => `${r.status} ${r.status === 'committed' ? '' : r.message}`).join('; '));
    assert.deepEqual(await rows('SELECT note FROM reminders'), [], 'no reminder got in unchecked');
  } finally {
    await db.close();
    rmSync(root, { recursive: true, force: true });
  }
});
