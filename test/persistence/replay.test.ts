// Tests of the fast recovery path (host/persistence.ts ReplayBatch/RowCounts/walkTx, datastore applyNetEffect and
// snapshot restore): batched in-place replay of many distinct rows gives exactly the live state, indexes included;
// the net-effect batch detects a row inserted twice; a snapshot with duplicate keys is refused; one-pass recovery
// (replay finds the torn tail) still retires a snapshot that is ahead of the log.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DatabasePersistence, PersistenceError } from '../../src/host/persistence.js';
import { Datastore } from '../../src/datastore/store.js';
import { rng } from '../datastore/fixtures.js';
import { accounts, canonicalRows, enc, newDatastore, person, program, runRandom, schema, tags, tempDbDir } from './helpers.js';

const reopen = (dir: string) => DatabasePersistence.open(dir, { durability: 'none', snapshotEveryCommits: 1e9 });

/** Point and range lookups through every index agree between two datastores (the rows alone could hide a bad index). */
function assertSameIndexes(a: Datastore, b: Datastore): void {
  const hex = (rows: Uint8Array[]) => rows.map((r) => Buffer.from(r).toString('hex'));
  const unbounded = Uint8Array.of(2);
  for (const t of [accounts, person]) {
    for (const ix of t.indexes) {
      const range = { prefix: new Uint8Array(0), prefixElems: 0, rangeStart: unbounded, rangeEnd: unbounded };
      const got = b.scanIndexRange(ix.indexId, range);
      assert.deepEqual(hex(got), hex(a.scanIndexRange(ix.indexId, range)), `range over ${ix.name}`);
      assert.equal(got.length, b.rowCount(t.tableId), `an unbounded range over ${ix.name} returns every row`);
    }
  }
  for (let id = 0; id < 3000; id += 7) {
    const key = enc(accounts, [id, 0n]).subarray(0, 4);
    assert.deepEqual(hex(b.scanIndexPoint(accounts.indexes[0]!.indexId, key)), hex(a.scanIndexPoint(accounts.indexes[0]!.indexId, key)));
  }
}

test('replay of thousands of distinct rows, updates, deletes and re-inserts equals the live state, indexes included', async () => {
  const dir = tempDbDir('replay-many');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const live = newDatastore();
  const next = rng(77);
  const balances = new Map<number, bigint>();
  for (let i = 0; i < 400; i++) {
    const tx = live.beginMutTx();
    for (let k = 0; k < 10; k++) {
      const id = Math.floor(next() * 3000); // > 1024 distinct rows: the row counts and arena must grow
      const r = next();
      const have = balances.get(id);
      if (have === undefined) {
        tx.insert(accounts.tableId, enc(accounts, [id, 5n]));
        balances.set(id, 5n);
      } else if (r < 0.6) {
        const v = have + BigInt(Math.floor(next() * 5) - 2); // may return to an earlier value: identical rows recur
        tx.update(accounts.tableId, accounts.indexes[0]!.indexId, enc(accounts, [id, v]));
        balances.set(id, v);
      } else {
        tx.deleteByRows(accounts.tableId, [enc(accounts, [id, have])]);
        balances.delete(id);
      }
    }
    tx.insert(person.tableId, enc(person, [0n, `p${i % 37}`, i % 100]));
    tx.insert(tags.tableId, enc(tags, [i % 9, 'x'.repeat(i % 50)])); // variable-width rows, no unique index
    persistence.recordTx(tx.commit(), live);
  }
  await persistence.close();
  assert.ok(live.rowCount(accounts.tableId) > 1024);
  const r = await reopen(dir);
  const got = r.recovered!.datastore;
  assert.equal(canonicalRows(got), canonicalRows(live));
  assertSameIndexes(live, got);
  // The recovered datastore keeps working: a range scan built lazily, then writes that must keep it current.
  const tx = got.beginMutTx();
  tx.insert(accounts.tableId, enc(accounts, [100_000, 1n]));
  const ltx = live.beginMutTx();
  ltx.insert(accounts.tableId, enc(accounts, [100_000, 1n]));
  tx.commit();
  ltx.commit();
  assertSameIndexes(live, got);
  await r.persistence.close();
});

test('a restored snapshot equals the source, and its indexes answer range and point scans', () => {
  const live = newDatastore();
  const tx = live.beginMutTx();
  for (let i = 0; i < 5000; i++) tx.insert(accounts.tableId, enc(accounts, [(i * 7919) % 5000, BigInt(i)]));
  for (let i = 0; i < 200; i++) tx.insert(person.tableId, enc(person, [0n, `n${i % 13}`, i % 7]));
  tx.commit();
  const restored = Datastore.fromSnapshot(schema, live.exportSnapshot());
  assert.equal(canonicalRows(restored), canonicalRows(live));
  assertSameIndexes(live, restored);
});

test('a snapshot with two rows under one primary key is refused, not half-indexed', () => {
  const a = newDatastore();
  const tx = a.beginMutTx();
  tx.insert(accounts.tableId, enc(accounts, [1, 10n]));
  tx.insert(accounts.tableId, enc(accounts, [2, 20n]));
  tx.commit();
  const bytes = a.exportSnapshot();
  // Rewrite the second row's id to 1 (same length, so the snapshot still parses).
  const second = Buffer.from(enc(accounts, [2, 20n]));
  const at = Buffer.from(bytes).indexOf(second);
  assert.ok(at > 0);
  const bad = bytes.slice();
  bad.set(enc(accounts, [1, 20n]), at);
  assert.throws(() => Datastore.fromSnapshot(schema, bad), /bad snapshot: table 'accounts' has 1 duplicate keys/);
  assert.equal(canonicalRows(Datastore.fromSnapshot(schema, bytes)), canonicalRows(a));
});

test('a snapshot with the same row twice in a table without a unique index is refused; its hash index answers', () => {
  const a = newDatastore();
  const tx = a.beginMutTx();
  for (let i = 0; i < 3000; i++) tx.insert(tags.tableId, enc(tags, [i % 7, `tag-${i}`]));
  tx.commit();
  const bytes = a.exportSnapshot();
  const b = Datastore.fromSnapshot(schema, bytes);
  assert.equal(canonicalRows(b), canonicalRows(a));
  const key = enc(tags, [3, '']).subarray(0, 4);
  assert.equal(b.scanIndexPoint(tags.indexes[0]!.indexId, key).length, a.scanIndexPoint(tags.indexes[0]!.indexId, key).length);
  // Rewrite one row into a copy of another of the same length (the snapshot still parses): set semantics are broken.
  const at = Buffer.from(bytes).indexOf(Buffer.from(enc(tags, [2000 % 7, 'tag-2000'])));
  assert.ok(at > 0);
  const bad = bytes.slice();
  bad.set(enc(tags, [1000 % 7, 'tag-1000']), at);
  assert.throws(() => Datastore.fromSnapshot(schema, bad), /bad snapshot: table 'tags' has 1 duplicate rows/);
});

test('a log whose transactions insert the same row twice is a PersistenceError naming the record', async () => {
  const dir = tempDbDir('replay-twice');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  const row = enc(tags, [1, 'same']);
  const txData = { tables: [{ tableId: tags.tableId, tableName: tags.name, inserts: [row], deletes: [] }] };
  persistence.recordTx(txData, ds);
  persistence.recordTx(txData, ds); // never produced live (set semantics); a replay must not accept it
  await persistence.close();
  await assert.rejects(reopen(dir), (e: Error) => e instanceof PersistenceError && /inserted twice \(record 2\)/.test(e.message));
});

test('one-pass recovery: a snapshot ahead of a log that lost its tail is retired and the state comes from the log', async () => {
  const dir = tempDbDir('snap-ahead');
  const { persistence } = await reopen(dir);
  persistence.recordProgram(program());
  const ds = newDatastore();
  runRandom(ds, persistence, 11, 60);
  const before = canonicalRows(ds);
  const tx = ds.beginMutTx();
  tx.insert(accounts.tableId, enc(accounts, [4242, 1n]));
  const last = persistence.recordTx(tx.commit(), ds);
  await persistence.snapshotNow(ds); // the snapshot includes the last transaction …
  await persistence.close();
  const clog = path.join(dir, 'clog');
  const seg = path.join(clog, fs.readdirSync(clog).filter((n) => n.endsWith('.stdb.log')).sort().at(-1)!);
  fs.truncateSync(seg, fs.statSync(seg).size - 5); // … which the log then loses (a torn tail)
  const reports: string[] = [];
  const r = await DatabasePersistence.open(dir, { durability: 'fsync', report: (m) => reports.push(m) });
  assert.equal(canonicalRows(r.recovered!.datastore), before);
  assert.equal(r.recovered!.lastOffset, last - 1n);
  assert.ok(reports.some((m) => m.includes('torn tail')), reports.join('\n'));
  assert.ok(reports.some((m) => m.includes('ahead of the durable log')), reports.join('\n'));
  assert.ok(fs.readdirSync(path.join(dir, 'snapshots')).some((n) => n.endsWith('.invalid')));
  // The log is open for appends right after the cut: the next commit gets the lost offset, and a reopen sees it.
  const tx2 = r.recovered!.datastore.beginMutTx();
  tx2.insert(accounts.tableId, enc(accounts, [4343, 2n]));
  assert.equal(r.persistence.recordTx(tx2.commit(), r.recovered!.datastore), last);
  const expected = canonicalRows(r.recovered!.datastore);
  await r.persistence.close();
  const again = await reopen(dir);
  assert.equal(canonicalRows(again.recovered!.datastore), expected);
  await again.persistence.close();
});
