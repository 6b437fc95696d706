// Tests of host/persistence.ts with a real Datastore, commit log and snapshots on disk: reopen equality, snapshot +
// replay versus replay from zero, sequences after restart, torn tails, resets, module updates, pruning, encoding size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DatabasePersistence, PersistenceError, sequenceReservationValues } from '../../src/host/persistence.js';
import { CommitLogCorruptError } from '../../src/durability/commitlog.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { decodeRawModuleDef, type RawModuleDefV10 } from '../../src/sats/moduledef.js';
import { moduleDef, product, rng, T, table } from '../datastore/fixtures.js';
import {
  accounts, canonical, canonicalRows, dec, enc, newDatastore, person, program, randomTx, runRandom, small, tempDbDir,
} from './helpers.js';

async function reopen(dir: string, opts: { pruneAfterSnapshot?: boolean } = {}) {
  return DatabasePersistence.open(dir, { durability: 'none', ...opts });
}

function segments(dir: string): string[] {
  return fs.readdirSync(path.join(dir, 'clog')).filter((n) => n.endsWith('.stdb.log')).sort();
}

test('empty directory recovers to undefined; program alone recovers an empty datastore', async () => {
  const dir = tempDbDir('empty');
  const a = await reopen(dir);
  assert.equal(a.recovered, undefined);
  const prog = program();
  assert.equal(a.persistence.recordProgram(prog), 0n);
  await a.persistence.close();
  const b = await reopen(dir);
  assert.ok(b.recovered);
  assert.deepEqual(b.recovered.program, prog);
  assert.equal(b.recovered.lastOffset, 0n);
  assert.equal(b.recovered.datastore.rowCount(accounts.tableId), 0);
  await b.persistence.close();
});

test('random transactions (fixed seeds) → close → reopen gives the same committed rows; twice in a row', async () => {
  for (const seed of [1, 2, 3]) {
    const dir = tempDbDir('random');
    const { persistence } = await reopen(dir);
    persistence.recordProgram(program());
    const ds = newDatastore();
    runRandom(ds, persistence, seed, 300);
    const expected = canonicalRows(ds);
    assert.ok(ds.rowCount(accounts.tableId) > 0 && ds.rowCount(person.tableId) > 0, 'the workload wrote rows');
    await persistence.close();
    const r1 = await reopen(dir);
    assert.equal(canonicalRows(r1.recovered!.datastore), expected, `seed ${seed}`);
    const afterFirst = canonical(r1.recovered!.datastore);
    await r1.persistence.close();
    const r2 = await reopen(dir); // recovery itself writes nothing that changes the outcome
    assert.equal(canonical(r2.recovered!.datastore), afterFirst);
    await r2.persistence.close();
  }
});

test('property: snapshot + replay of the tail equals replay from zero', async () => {
  for (const seed of [11, 12, 13, 14]) {
    const dir = tempDbDir('snap');
    const { persistence } = await reopen(dir, { pruneAfterSnapshot: false });
    persistence.recordProgram(program());
    const ds = newDatastore();
    const next = rng(seed);
    const snapshotAt = new Set([Math.floor(next() * 200), 100 + Math.floor(next() * 100)]);
    for (let i = 0; i < 200; i++) {
      randomTx(ds, persistence, next);
      if (snapshotAt.has(i)) await persistence.snapshotNow(ds);
    }
    await persistence.close();
    assert.equal(fs.readdirSync(path.join(dir, 'snapshots')).filter((n) => n.endsWith('.snapshot')).length, 2);
    const viaSnapshot = await reopen(dir);
    const a = canonical(viaSnapshot.recovered!.datastore);
    const lastA = viaSnapshot.recovered!.lastOffset;
    await viaSnapshot.persistence.close();
    fs.rmSync(path.join(dir, 'snapshots'), { recursive: true });
    const fromZero = await reopen(dir);
    assert.equal(canonical(fromZero.recovered!.datastore), a, `seed ${seed}`);
    assert.equal(fromZero.recovered!.lastOffset, lastA);
    assert.equal(canonicalRows(fromZero.recovered!.datastore), canonicalRows(ds));
    await fromZero.persistence.close();
  }
});

test('sequence values are never reissued after reopen, even when the rows with the highest ids were deleted', async () => {
  const dir = tempDbDir('seq');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  let tx = ds.beginMutTx();
  const ids: bigint[] = [];
  for (let i = 0; i < 5; i++) ids.push((dec(person, tx.insert(person.tableId, enc(person, [0n, `p${i}`, 1])).row) as bigint[])[0]!);
  persistence.recordTx(tx.commit(), ds);
  tx = ds.beginMutTx();
  tx.deleteByRows(person.tableId, tx.scan(person.tableId).slice(3)); // ids 4 and 5
  const w = tx.insert(person.tableId, enc(person, [0n, 'gone', 1])); // id 6, inserted and deleted in one tx
  tx.deleteByRows(person.tableId, [w.row]);
  persistence.recordTx(tx.commit(), ds);
  const maxIssued = 6n;
  await persistence.close();

  const r = await reopen(dir);
  const ds2 = r.recovered!.datastore;
  const tx2 = ds2.beginMutTx();
  const id = (dec(person, tx2.insert(person.tableId, enc(person, [0n, 'new', 1])).row) as bigint[])[0]!;
  assert.ok(id > maxIssued, `new id ${id} must exceed every id handed out before (${maxIssued})`);
  r.persistence.recordTx(tx2.commit(), ds2);
  await r.persistence.close();
  assert.deepEqual(ids, [1n, 2n, 3n, 4n, 5n]);
});

test('sequences crossing a reservation block and a narrow (u8) sequence survive restarts', async () => {
  const dir = tempDbDir('seqblock');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  let tx = ds.beginMutTx();
  const n = Number(sequenceReservationValues) + 10;
  for (let i = 0; i < n; i++) tx.insert(person.tableId, enc(person, [0n, 'x', 1]));
  tx.insert(small.tableId, enc(small, [0, 'a']));
  persistence.recordTx(tx.commit(), ds);
  tx = ds.beginMutTx();
  tx.clear(person.tableId);
  persistence.recordTx(tx.commit(), ds);
  await persistence.close();
  for (let round = 0; round < 3; round++) {
    const r = await reopen(dir);
    const rds = r.recovered!.datastore;
    tx = rds.beginMutTx();
    const id = (dec(person, tx.insert(person.tableId, enc(person, [0n, 'y', 1])).row) as bigint[])[0]!;
    assert.ok(id > BigInt(n) + BigInt(round), `round ${round}: id ${id} after ${n} issued`);
    // u8 sequence: no block is reserved, so restarts lose no values of its 255.
    const sid = (dec(small, tx.insert(small.tableId, enc(small, [0, `s${round}`])).row) as number[])[0]!;
    assert.equal(sid, 2 + round);
    r.persistence.recordTx(tx.commit(), rds);
    await r.persistence.close();
  }
});

test('a torn tail is cut: the last, partially written transaction is lost and the rest recovers', async () => {
  const dir = tempDbDir('torn');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  runRandom(ds, persistence, 5, 50);
  const before = canonicalRows(ds);
  const tx = ds.beginMutTx();
  tx.insert(accounts.tableId, enc(accounts, [999, 1n]));
  const last = persistence.recordTx(tx.commit(), ds);
  await persistence.close();
  const seg = path.join(dir, 'clog', segments(dir).at(-1)!);
  fs.truncateSync(seg, fs.statSync(seg).size - 3);
  const reports: string[] = [];
  const r = await DatabasePersistence.open(dir, { durability: 'fsync', report: (m) => reports.push(m) });
  assert.equal(canonicalRows(r.recovered!.datastore), before);
  assert.equal(r.recovered!.lastOffset, last - 1n);
  assert.ok(reports.some((m) => m.includes('torn tail')), reports.join('\n'));
  await r.persistence.close();
});

test('corruption in the middle of the log propagates with the file and offset', async () => {
  const dir = tempDbDir('corrupt');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  runRandom(ds, persistence, 6, 40);
  await persistence.close();
  const seg = path.join(dir, 'clog', segments(dir)[0]!);
  const bytes = fs.readFileSync(seg);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  fs.writeFileSync(seg, bytes);
  // In the (only, last) segment a flipped byte mid-log is not a tail: every later record is intact.
  await assert.rejects(reopen(dir), (e: Error) => {
    assert.ok(e instanceof CommitLogCorruptError || /corrupt|checksum|crc/i.test(e.message), e.message);
    assert.match(e.message, /00000000000000000000\.stdb\.log/);
    return true;
  });
});

test('reset then reopen gives the empty state with the new program', async () => {
  const dir = tempDbDir('reset');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  runRandom(ds, persistence, 7, 60);
  const newProg = program(moduleDef, 'export default 2;', 1_800_000_000_000_000n);
  persistence.recordReset(newProg);
  await persistence.close();
  const r = await reopen(dir);
  assert.deepEqual(r.recovered!.program, newProg);
  const fresh = newDatastore();
  assert.equal(canonical(r.recovered!.datastore), canonical(fresh));
  // Sequences restart too: the reset database hands out ids from the start.
  const tx = r.recovered!.datastore.beginMutTx();
  assert.equal((dec(person, tx.insert(person.tableId, enc(person, [0n, 'a', 1])).row) as bigint[])[0], 1n);
  tx.rollback();
  await r.persistence.close();
});

test('a Program record with a different definition rebuilds the datastore (rows carried over by table)', async () => {
  const dir = tempDbDir('update');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  runRandom(ds, persistence, 8, 40);
  const def2: RawModuleDefV10 = structuredClone(moduleDef);
  const ts = def2.sections.find((s) => s.tag === 'Typespace')!.value as { types: unknown[] };
  ts.types.push(product([['k', T.u32]]));
  (def2.sections.find((s) => s.tag === 'Tables')!.value as unknown[]).push(table('extra', ts.types.length - 1));
  const prog2 = program(def2, 'export default 3;');
  persistence.recordProgram(prog2);
  const schema2 = buildDatabaseSchema(decodeRawModuleDef(prog2.moduleDef));
  const { Datastore } = await import('../../src/datastore/store.js');
  const live = Datastore.fromSnapshot(schema2, ds.exportSnapshot());
  const extra = schema2.tables.find((t) => t.name === 'extra')!;
  const tx = live.beginMutTx();
  tx.insert(extra.tableId, Uint8Array.of(7, 0, 0, 0));
  persistence.recordTx(tx.commit(), live);
  await persistence.close();
  const r = await reopen(dir);
  assert.deepEqual(r.recovered!.program, prog2);
  assert.equal(canonicalRows(r.recovered!.datastore), canonicalRows(live));
  assert.equal(r.recovered!.datastore.rowCount(extra.tableId), 1);
  await r.persistence.close();
});

test('maybeSnapshot follows the commit policy; pruning keeps the log back to the oldest kept snapshot', async () => {
  const dir = tempDbDir('prune');
  const { persistence } = await DatabasePersistence.open(dir, {
    durability: 'none', snapshotEveryCommits: 50, segmentSizeMaxBytes: 2048, pruneAfterSnapshot: true,
  });
  persistence.recordProgram(program());
  const ds = newDatastore();
  const next = rng(21);
  let started = 0;
  for (let i = 0; i < 400; i++) {
    randomTx(ds, persistence, next);
    if (persistence.maybeSnapshot(ds)) { started++; await persistence.snapshotNow(ds); }
  }
  assert.ok(started >= 5, `snapshots started: ${started}`);
  await persistence.close();
  const snaps = fs.readdirSync(path.join(dir, 'snapshots')).filter((n) => n.endsWith('.snapshot')).sort();
  assert.equal(snaps.length, 2);
  const first = BigInt(segments(dir)[0]!.slice(0, 20));
  assert.ok(first > 0n, 'old segments were pruned');
  assert.ok(first <= BigInt(snaps[0]!.slice(0, 20)), 'the log still reaches back to the older snapshot');
  // Even with the newest snapshot damaged, the older one plus the log rebuild the state.
  const newest = path.join(dir, 'snapshots', snaps[1]!);
  const b = fs.readFileSync(newest); b[b.length - 1] ^= 1; fs.writeFileSync(newest, b);
  const r = await reopen(dir);
  assert.equal(canonicalRows(r.recovered!.datastore), canonicalRows(ds));
  await r.persistence.close();
});

test('a payload that cannot be understood is a PersistenceError naming the record', async () => {
  const dir = tempDbDir('badpayload');
  const { CommitLog } = await import('../../src/durability/commitlog.js');
  const log = CommitLog.open(path.join(dir, 'clog'));
  log.append(Uint8Array.of(9, 1, 2));
  await log.close();
  await assert.rejects(reopen(dir), (e: Error) => e instanceof PersistenceError && /record 0 .*unknown record kind 9/.test(e.message));
});

test('keynote transfer: ≤ 64 log bytes per transfer, and recordTx cost', async () => {
  const dir = tempDbDir('keynote');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  const accountCount = 1000;
  let tx = ds.beginMutTx();
  for (let i = 0; i < accountCount; i++) tx.insert(accounts.tableId, enc(accounts, [i, 1_000_000n]));
  persistence.recordTx(tx.commit(), ds);
  const pk = accounts.indexes[0]!.indexId;
  const balances = new Array<bigint>(accountCount).fill(1_000_000n);
  const next = rng(99);
  const transfers = 20_000;
  const bytesBefore = persistence.stats.bytesAppended;
  let recordNs = 0n;
  for (let i = 0; i < transfers; i++) {
    const from = Math.floor(next() * accountCount);
    let to = Math.floor(next() * accountCount);
    if (to === from) to = (to + 1) % accountCount;
    balances[from]! -= 1n; balances[to]! += 1n;
    tx = ds.beginMutTx();
    tx.update(accounts.tableId, pk, enc(accounts, [from, balances[from]!]));
    tx.update(accounts.tableId, pk, enc(accounts, [to, balances[to]!]));
    const data = tx.commit();
    assert.equal(data.tables[0]!.inserts.length, 2);
    const t0 = process.hrtime.bigint();
    persistence.recordTx(data, ds);
    recordNs += process.hrtime.bigint() - t0;
  }
  const bytesPer = (persistence.stats.bytesAppended - bytesBefore) / transfers;
  const usPer = Number(recordNs) / transfers / 1000;
  console.log(`keynote transfer: ${bytesPer.toFixed(1)} log bytes/tx, recordTx ${usPer.toFixed(2)} µs/tx`);
  assert.ok(bytesPer <= 64, `${bytesPer} bytes per transfer`);
  assert.ok(usPer < 50, `${usPer} µs per recordTx`);
  await persistence.close();
  const r = await reopen(dir);
  const got = r.recovered!.datastore.scan(accounts.tableId).map((row) => dec(accounts, row) as [number, bigint]);
  assert.equal(got.length, accountCount);
  for (const [id, bal] of got) assert.equal(bal, balances[id]);
  await r.persistence.close();
});
