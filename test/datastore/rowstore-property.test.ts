// Property tests of the paged row store behind the datastore (issue 12 item 5): random insert / update / delete /
// clear / commit / rollback / snapshot sequences against a plain Map model, over four table shapes — fixed-width rows
// with two unique integer indexes (row-id hashes), variable-width rows with a u64 key and a string btree, variable rows
// with set semantics and a non-unique hash, fixed rows with set semantics. After every step: scans, row counts, point
// lookups and range scans agree with the model; each commit's TxData is the model's net difference; a snapshot round
// trip gives the same rows; and no row handed out earlier ever changes its bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Datastore } from '../../src/datastore/store.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { DatastoreError, errno, type MutTx, type ReadView, type TableSchema, type TxData } from '../../src/datastore/types.js';
import { compileCodec } from '../../src/sats/codec.js';
import type { RawModuleDefV10 } from '../../src/sats/moduledef.js';
import type { Value } from '../../src/sats/types.js';
import { btree, hash, product, T, table, unique } from './fixtures.js';

const moduleDef: RawModuleDefV10 = {
  sections: [
    { tag: 'Typespace', value: { types: [
      product([['id', T.u32], ['balance', T.i64]]),
      product([['id', T.u64], ['name', T.str], ['age', T.u8]]),
      product([['a', T.i32], ['b', T.str]]),
      product([['x', T.u32], ['y', T.u8]]),
    ] } },
    { tag: 'Tables', value: [
      table('accounts', 0, { primaryKey: [0], indexes: [btree(0), hash(0)], constraints: [unique(0)] }),
      table('people', 1, { primaryKey: [0], indexes: [btree(0), btree(1)], constraints: [unique(0)] }),
      table('tags', 2, { indexes: [hash(0)] }),
      table('pairs', 3, {}),
    ] },
  ],
};

const schema = buildDatabaseSchema(moduleDef);
const tables = ['accounts', 'people', 'tags', 'pairs'].map((n) => schema.tables.find((t) => t.name === n)!);
const codecs = tables.map((t) => compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace));
const keyed = [true, true, false, false];

type Op =
  | { k: 'ins' | 'upd' | 'delRow'; t: number; key: number; v: number; s: string }
  | { k: 'delKey' | 'clear'; t: number; key: number }
  | { k: 'commit' | 'rollback' | 'snapshot' }
  | { k: 'range'; lo: number; hi: number };

function rowValue(t: number, key: number, v: number, s: string): Value[] {
  switch (t) {
    case 0: return [key, BigInt(v) - 1000n];
    case 1: return [BigInt(key) * 0x1_0000_0001n, s, v & 255];
    case 2: return [key - 8, s];
    default: return [key, v & 255];
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
const u32 = (n: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; };
const u64 = (n: bigint): Uint8Array => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, n, true); return b; };
const i32 = (n: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setInt32(0, n, true); return b; };

/** The model: per table, row hex → the key it is found by (keyed tables: the unique key; others: column 0). */
type Model = Map<string, number>[];
const cloneModel = (m: Model): Model => m.map((t) => new Map(t));

function opArb(keySpace: number): fc.Arbitrary<Op> {
  const key = fc.integer({ min: 0, max: keySpace - 1 });
  const s = fc.oneof(fc.string({ maxLength: 6 }), fc.string({ minLength: 20, maxLength: 90 }));
  const write = fc.record({ k: fc.constantFrom('ins' as const, 'ins' as const, 'upd' as const, 'delRow' as const),
    t: fc.integer({ min: 0, max: 3 }), key, v: fc.integer({ min: 0, max: 3000 }), s });
  return fc.oneof(
    { weight: 10, arbitrary: write },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('delKey' as const), t: fc.integer({ min: 0, max: 3 }), key }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('clear' as const), t: fc.integer({ min: 0, max: 3 }), key }) },
    { weight: 2, arbitrary: fc.constant({ k: 'commit' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'rollback' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'snapshot' as const }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('range' as const), lo: key, hi: key }) },
  );
}

class Runner {
  ds = new Datastore(schema);
  tx: MutTx | undefined;
  committed: Model = tables.map(() => new Map());
  model: Model = tables.map(() => new Map());
  /** Rows handed out by the datastore, with their bytes when handed out: they must never change. */
  readonly handedOut: [Uint8Array, string][] = [];

  view(): ReadView { return this.tx ?? this.ds; }
  open(): MutTx { return (this.tx ??= this.ds.beginMutTx()); }

  keep(rows: Uint8Array[]): void {
    for (const r of rows) if (this.handedOut.length < 2000) this.handedOut.push([r, hex(r)]);
  }

  run(op: Op): void {
    switch (op.k) {
      case 'ins': case 'upd': case 'delRow': this.write(op); break;
      case 'delKey': this.deleteKey(op.t, op.key); break;
      case 'clear': {
        const n = this.open().clear(tables[op.t].tableId);
        assert.equal(n, this.model[op.t].size);
        this.model[op.t].clear();
        break;
      }
      case 'commit': this.commit(); break;
      case 'rollback':
        if (this.tx !== undefined) { this.tx.rollback(); this.tx = undefined; }
        this.model = cloneModel(this.committed);
        break;
      case 'snapshot':
        this.commit();
        this.ds = Datastore.fromSnapshot(schema, this.ds.exportSnapshot());
        break;
      case 'range': this.range(Math.min(op.lo, op.hi), Math.max(op.lo, op.hi)); break;
    }
    if (++this.steps % this.checkEvery === 0 || op.k === 'commit' || op.k === 'rollback' || op.k === 'snapshot') this.check();
  }

  steps = 0;
  constructor(readonly checkEvery = 1) {}

  write(op: { k: 'ins' | 'upd' | 'delRow'; t: number; key: number; v: number; s: string }): void {
    const t = tables[op.t], m = this.model[op.t];
    const row = codecs[op.t].encode(rowValue(op.t, op.key, op.v, op.s));
    const h = hex(row);
    const tx = this.open();
    const sameKey = keyed[op.t] ? [...m].find(([, k]) => k === op.key)?.[0] : undefined;
    if (op.k === 'delRow') {
      assert.equal(tx.deleteByRows(t.tableId, [row]), m.has(h) ? 1 : 0);
      m.delete(h);
    } else if (op.k === 'upd' && keyed[op.t]) {
      const index = t.indexes[0].indexId;
      if (sameKey === undefined) {
        assert.throws(() => tx.update(t.tableId, index, row), (e) => e instanceof DatastoreError && e.code === errno.noSuchRow);
      } else {
        const result = tx.update(t.tableId, index, row);
        this.keep([result.row]);
        assert.equal(hex(result.row), h);
        m.delete(sameKey);
        m.set(h, op.key);
      }
    } else if (sameKey !== undefined && sameKey !== h) {
      assert.throws(() => tx.insert(t.tableId, row), (e) => e instanceof DatastoreError && e.code === errno.uniqueAlreadyExists);
    } else {
      this.keep([tx.insert(t.tableId, row).row]);
      m.set(h, op.t === 2 ? op.key - 8 : op.key);
    }
    row.fill(0xee); // callers reuse their buffers: the datastore must have copied
  }

  deleteKey(t: number, key: number): void {
    const tx = this.open(), m = this.model[t];
    if (t === 3) return;
    const k = t === 2 ? key - 8 : key;
    const bytes = t === 0 ? u32(key) : t === 1 ? u64(BigInt(key) * 0x1_0000_0001n) : i32(k);
    const index = t === 2 ? tables[2].indexes[0].indexId : tables[t].indexes[0].indexId;
    const expected = [...m].filter(([, mk]) => mk === k).map(([h]) => h);
    assert.equal(tx.deleteByIndexPoint(index, bytes), expected.length);
    for (const h of expected) m.delete(h);
  }

  commit(): void {
    if (this.tx === undefined) return;
    const txData = this.tx.commit();
    this.tx = undefined;
    this.checkTxData(txData);
    this.committed = cloneModel(this.model);
  }

  checkTxData(txData: TxData): void {
    for (let t = 0; t < tables.length; t++) {
      const ch = txData.tables.find((c) => c.tableId === tables[t].tableId);
      const before = this.committed[t], after = this.model[t];
      const inserts = [...after.keys()].filter((h) => !before.has(h)).sort();
      const deletes = [...before.keys()].filter((h) => !after.has(h)).sort();
      assert.deepEqual((ch?.inserts ?? []).map(hex).sort(), inserts, `inserts of ${tables[t].name}`);
      assert.deepEqual((ch?.deletes ?? []).map(hex).sort(), deletes, `deletes of ${tables[t].name}`);
      if (ch !== undefined) this.keep([...ch.inserts, ...ch.deletes]);
    }
  }

  range(lo: number, hi: number): void {
    const ix = tables[0].indexes[0].indexId;
    const start = new Uint8Array([0, ...u32(lo)]), end = new Uint8Array([1, ...u32(hi)]);
    const rows = this.view().scanIndexRange(ix, { prefix: new Uint8Array(0), prefixElems: 0, rangeStart: start, rangeEnd: end });
    const expected = [...this.model[0]].filter(([, k]) => k >= lo && k < hi).sort((a, b) => a[1] - b[1]).map(([h]) => h);
    assert.deepEqual(rows.map(hex), expected, `range [${lo}, ${hi})`);
    this.keep(rows);
  }

  check(): void {
    const v = this.view();
    for (let t = 0; t < tables.length; t++) {
      const ts: TableSchema = tables[t], m = this.model[t];
      const rows = v.scan(ts.tableId);
      assert.equal(v.rowCount(ts.tableId), m.size);
      assert.deepEqual(rows.map(hex).sort(), [...m.keys()].sort(), `scan of ${ts.name}`);
      this.keep(rows.slice(0, 4));
      const sample = [...m].slice(0, 40);
      if (t === 0) {
        for (const [h, k] of sample) {
          for (const ix of ts.indexes) assert.deepEqual(v.scanIndexPoint(ix.indexId, u32(k)).map(hex), [h]);
        }
      }
      if (t === 1) for (const [h, k] of sample) assert.deepEqual(v.scanIndexPoint(ts.indexes[0].indexId, u64(BigInt(k) * 0x1_0000_0001n)).map(hex), [h]);
    }
    for (const [row, h] of this.handedOut) assert.equal(hex(row), h, 'a row handed out earlier changed');
  }
}

test('row store: random transactions agree with a Map model (small key space: conflicts, reuse)', () => {
  fc.assert(fc.property(fc.array(opArb(12), { maxLength: 120 }), (ops) => {
    const r = new Runner();
    for (const op of ops) r.run(op);
  }), { numRuns: 100 });
});

test('row store: random transactions agree with a Map model (large key space: hash growth, many rows)', () => {
  fc.assert(fc.property(fc.array(opArb(5000), { minLength: 200, maxLength: 600 }), (ops) => {
    const r = new Runner(25);
    for (const op of ops) r.run(op);
  }), { numRuns: 8 });
});

test('row store: a bulk load, deletes of half, and reinserts reuse row ids only after commit; snapshot round trip', () => {
  const r = new Runner();
  for (let i = 0; i < 3000; i++) r.write({ k: 'ins', t: i % 4, key: i, v: i, s: 'x'.repeat(i % 50) });
  r.run({ k: 'commit' });
  // Rows that grow and shrink move between spans; the neighbours must not notice.
  for (let i = 1; i < 3000; i += 4) r.write({ k: 'upd', t: 1, key: i, v: i, s: 'w'.repeat((i * 7) % 120) });
  r.run({ k: 'commit' });
  for (let i = 0; i < 3000; i += 2) r.deleteKey(i % 4, i);
  for (let i = 0; i < 3000; i += 2) r.write({ k: 'ins', t: i % 4, key: i, v: i + 1, s: 'y'.repeat(i % 70) });
  r.run({ k: 'rollback' });
  for (let i = 0; i < 3000; i += 2) r.write({ k: 'delRow', t: i % 4, key: i, v: i, s: 'x'.repeat(i % 50) });
  r.run({ k: 'commit' });
  for (let i = 0; i < 3000; i += 3) r.write({ k: 'ins', t: i % 4, key: i, v: 7, s: 'z'.repeat(i % 90) });
  r.run({ k: 'snapshot' });
  r.run({ k: 'range', lo: 100, hi: 2000 });
});

test('row store: rolled-back work leaves no trace in row ids (snapshots equal those of a history without it)', () => {
  const a = new Runner(), b = new Runner();
  for (let i = 0; i < 40; i++) for (const r of [a, b]) r.write({ k: 'ins', t: i % 4, key: i, v: i, s: 's'.repeat(i % 9) });
  for (const r of [a, b]) r.run({ k: 'commit' });
  for (let i = 0; i < 40; i += 3) for (const r of [a, b]) r.deleteKey(i % 4, i);
  for (const r of [a, b]) r.run({ k: 'commit' });
  for (let i = 100; i < 130; i++) a.write({ k: 'ins', t: i % 4, key: i, v: i, s: 'x' });
  a.run({ k: 'rollback' });
  for (let i = 200; i < 260; i++) for (const r of [a, b]) r.write({ k: 'ins', t: i % 4, key: i, v: i, s: 'y'.repeat(i % 5) });
  for (const r of [a, b]) r.run({ k: 'commit' });
  assert.deepEqual(a.ds.exportSnapshot(), b.ds.exportSnapshot());
});
