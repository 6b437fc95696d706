// Tests of the Tx record encoding in host/persistence.ts: random TxData (fixed seed) round-trips exactly, including
// the escapes (many extra rows, long diffs, rows of differing lengths, empty rows, table ids below 4096, wide
// sequence values); and corrupt bodies are errors, not garbage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTx, encodeTx } from '../../src/host/persistence.js';
import type { DatabaseSchema, TableChanges } from '../../src/datastore/types.js';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { rng } from '../datastore/fixtures.js';

const tableIds = [1, 7, 4095, 4096, 4097, 4200, 100_000];
const fakeSchema = { typespace: { types: [] }, tables: tableIds.map((id) => ({ tableId: id, name: `t${id}` })) } as unknown as DatabaseSchema;

function randomRow(next: () => number, len: number): Uint8Array {
  return Uint8Array.from({ length: len }, () => Math.floor(next() * 256));
}

test('random TxData round-trips through encodeTx/decodeTx', () => {
  const next = rng(4242);
  const w = new BsatnWriter(16);
  for (let iter = 0; iter < 2000; iter++) {
    const ids = tableIds.filter(() => next() < 0.4);
    const tables: TableChanges[] = ids.map((tableId) => {
      const fixed = next() < 0.5 ? Math.floor(next() * 40) : -1;
      const len = () => (fixed >= 0 ? fixed : Math.floor(next() * 300));
      const deletes = Array.from({ length: Math.floor(next() * 8) }, () => randomRow(next, len()));
      const inserts = Array.from({ length: Math.floor(next() * 8) }, (_, i) => {
        const d = deletes[i];
        if (d !== undefined && next() < 0.7) { // an update: a copy of the deleted row with a few bytes changed
          const r = d.slice();
          const changes = Math.floor(next() * 4);
          for (let c = 0; c < changes && r.length > 0; c++) r[Math.floor(next() * r.length)] ^= 1 + Math.floor(next() * 255);
          return r;
        }
        return randomRow(next, len());
      });
      return { tableId, tableName: `t${tableId}`, inserts, deletes };
    });
    const seqs: [string, bigint][] = next() < 0.3
      ? [['a_seq', BigInt(Math.floor(next() * 1e9))], ['b_seq', -(1n << 200n) + BigInt(iter)], ['c', (1n << 255n) - 1n]]
      : [];
    w.reset();
    encodeTx(w, { tables }, seqs);
    const gotSeqs: [string, bigint][] = [];
    const got = decodeTx(w.finish(), fakeSchema, gotSeqs);
    assert.deepEqual(got, { tables }, `iteration ${iter}`);
    assert.deepEqual(gotSeqs, seqs);
  }
});

test('truncated or padded Tx bodies are errors', () => {
  const w = new BsatnWriter();
  const row = Uint8Array.of(1, 2, 3, 4, 5);
  encodeTx(w, { tables: [{ tableId: 4096, tableName: 't4096', inserts: [row, Uint8Array.of(9)], deletes: [row.map((b) => b + 1)] }] }, []);
  const bytes = w.finish();
  for (let cut = 1; cut < bytes.length; cut++) assert.throws(() => decodeTx(bytes.subarray(0, cut), fakeSchema, []), `cut at ${cut}`);
  assert.throws(() => decodeTx(Uint8Array.from([...bytes, 0]), fakeSchema, []), /trailing/);
  const unknownTable = new BsatnWriter();
  encodeTx(unknownTable, { tables: [{ tableId: 5000, tableName: 'x', inserts: [], deletes: [] }] }, []);
  assert.throws(() => decodeTx(unknownTable.finish(), fakeSchema, []), /table id 5000 is not in the schema/);
});
