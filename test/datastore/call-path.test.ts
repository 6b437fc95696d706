// Datastore: the two promises the host's module call path relies on (host/isolate-src.ts "Deferred updates"):
// MutTx.infallibleUpdate (which updates cannot fail once their row exists) and checkpoint/follows (nothing but a
// transaction's own commit changed the state since its checkpoint).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datastore } from '../../src/datastore/store.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { rowLayoutCode, type MutTx } from '../../src/datastore/types.js';
import { compileCodec } from '../../src/sats/codec.js';
import type { AlgebraicType } from '../../src/sats/types.js';
import { autoInc, btree, hash, product, rng, schemaAndCodecs, T, table, unique } from './fixtures.js';
import { layoutAccepts, rowLayout } from '../../src/datastore/table.js';
import { BsatnReader } from '../../src/sats/bsatn.js';
import { layoutCheckSource } from '../../src/host/isolate-src.js';

const { schema, byName, enc } = schemaAndCodecs();

test('infallibleUpdate: plain-number rows with one unique column only', () => {
  const ds = new Datastore(schema);
  const tx = ds.beginMutTx();
  const accounts = byName('accounts');
  const shape = tx.infallibleUpdate!(accounts.indexes[0].indexId);
  assert.deepEqual(shape, { tableId: accounts.tableId, rowWidthBytes: 12, keyOffset: 0, keyWidthBytes: 4, keyNonZero: false, guards: [] });
  // tags: no unique index.
  for (const ix of byName('tags').indexes) assert.equal(tx.infallibleUpdate!(ix.indexId), undefined, 'tags');
  // person, small: the sequence is on the primary key (autoInc), so updates of rows whose key is not 0 cannot fail
  // (nothing is generated); person's (name, age) index is not unique.
  const person = byName('person'), small = byName('small');
  assert.equal(tx.infallibleUpdate!(person.indexes[1].indexId), undefined, 'person (name, age)');
  assert.deepEqual({ ...tx.infallibleUpdate!(person.indexes[0].indexId)!, layout: undefined },
    { tableId: person.tableId, rowWidthBytes: 0, keyOffset: 0, keyWidthBytes: 8, keyNonZero: true, guards: [], layout: undefined });
  assert.deepEqual({ ...tx.infallibleUpdate!(small.indexes[0].indexId)!, layout: undefined },
    { tableId: small.tableId, rowWidthBytes: 0, keyOffset: 0, keyWidthBytes: 1, keyNonZero: true, guards: [], layout: undefined });
  assert.equal(tx.infallibleUpdate!(999_999), undefined, 'unknown index');
  tx.rollback();

  // Two unique column sets: an update through the primary key cannot fail when it keeps the other (its guard: the
  // layout then carries it, so rows of plain numbers get one too); the other is not cacheable (one column per table).
  const def = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [product([['id', T.u32], ['code', T.u32], ['v', T.i64]])] } },
    { tag: 'Tables', value: [table('pair', 0, { primaryKey: [0], indexes: [btree(0), hash(1)], constraints: [unique(0), unique(1)] })] },
  ] });
  const tx2 = new Datastore(def).beginMutTx();
  const [byId, byCode] = def.tables[0].indexes;
  const c = rowLayoutCode;
  const guarded = tx2.infallibleUpdate!(byId.indexId)!;
  assert.deepEqual({ ...guarded, layout: [...guarded.layout!] }, { tableId: def.tables[0].tableId, rowWidthBytes: 0, keyOffset: 0,
    keyWidthBytes: 4, keyNonZero: false, guards: [{ item: 0, offset: 4, widthBytes: 4, nonZero: false }],
    layout: [c.guards, 1, 0, 0, 4, 0, 4, 0, 0, c.fixed, 16, 0] });
  assert.equal(tx2.infallibleUpdate!(byCode.indexId), undefined, 'the second unique column');
  tx2.rollback();

  // A string and an autoInc column, both unique, after the key: guards through the layout's items; the sequence's
  // guard must not be 0. Such updates keep them and succeed; changing one to a taken value fails, as always.
  const members = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [product([['id', T.u32], ['handle', T.str], ['badge', T.u64], ['level', T.u8]])] } },
    { tag: 'Tables', value: [table('members', 0, { primaryKey: [0], indexes: [btree(0), btree(1), btree(2)],
      constraints: [unique(0), unique(1), unique(2)], sequences: [autoInc(2)] })] },
  ] });
  const ds4 = new Datastore(members), tx4 = ds4.beginMutTx(), m = members.tables[0];
  assert.deepEqual(tx4.infallibleUpdate!(m.indexes[0].indexId)?.guards,
    [{ item: 1, offset: 0, widthBytes: 0, nonZero: false }, { item: 2, offset: 0, widthBytes: 8, nonZero: true }]);
  const mc = compileCodec({ tag: 'Product', value: m.rowType }, members.typespace);
  tx4.insert(m.tableId, mc.encode([1, 'ann', 0n, 0]));
  tx4.insert(m.tableId, mc.encode([2, 'bob', 0n, 0]));
  assert.equal(tx4.update(m.tableId, m.indexes[0].indexId, mc.encode([1, 'ann', 1n, 5])).generated.length, 0, 'guards kept');
  assert.throws(() => tx4.update(m.tableId, m.indexes[0].indexId, mc.encode([1, 'bob', 1n, 5])), /unique/i);
  tx4.rollback();

  // A float key: -0 and +0 are one key with two encodings, so key bytes would not identify the row.
  const floats = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [product([['k', { tag: 'F64' }], ['v', T.i64]])] } },
    { tag: 'Tables', value: [table('f', 0, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] })] },
  ] });
  const tx3 = new Datastore(floats).beginMutTx();
  assert.equal(tx3.infallibleUpdate!(floats.tables[0].indexes[0].indexId), undefined);
  tx3.rollback();
});

test('an infallible update of an existing row does not throw, whatever its other columns', () => {
  const ds = new Datastore(schema);
  const accounts = byName('accounts');
  const tx = ds.beginMutTx();
  tx.insert(accounts.tableId, enc(accounts, [7, 100n]));
  const ix = accounts.indexes[0].indexId;
  for (const balance of [-5n, 0n, 100n, 2n ** 62n]) tx.update(accounts.tableId, ix, enc(accounts, [7, balance]));
  assert.throws(() => tx.update(accounts.tableId, ix, enc(accounts, [8, 1n])), /no row/, 'only when the row exists');
  tx.commit();
});

test('follows: only a checkpointed commit with nothing after it', () => {
  const ds = new Datastore(schema);
  const accounts = byName('accounts');
  const row = (id: number, b: bigint) => enc(accounts, [id, b]);
  const write = (tx: MutTx, id: number) => tx.insert(accounts.tableId, row(id, 1n));

  const a = ds.beginMutTx(); write(a, 1); a.checkpoint!(); a.commit();
  const b = ds.beginMutTx();
  assert.equal(b.follows!(a), true, 'checkpoint, commit, nothing else');
  write(b, 2); b.checkpoint!(); write(b, 3); b.commit();
  const c = ds.beginMutTx();
  assert.equal(c.follows!(b), false, 'a write after the checkpoint');
  c.checkpoint!(); c.rollback();
  const d = ds.beginMutTx();
  assert.equal(d.follows!(c), false, 'rolled back');
  d.checkpoint!(); d.commit();
  const other = ds.beginMutTx(); other.commit();        // an empty foreign commit still counts
  const e = ds.beginMutTx();
  assert.equal(e.follows!(d), false, 'another commit in between');
  e.commit();
  const f = ds.beginMutTx(); f.checkpoint!(); f.commit();
  ds.loadRows(accounts.tableId, [row(50, 5n)], true);
  const g = ds.beginMutTx();
  assert.equal(g.follows!(f), false, 'rows loaded outside a transaction');
  assert.equal(g.follows!(a), false, 'an older transaction');
  const h = new Datastore(schema).beginMutTx();
  assert.equal(h.follows!(g), false, 'another datastore');
  g.rollback(); h.rollback();
});

test('infallibleUpdate: rows with strings, options, bools, bytes and timestamps get a row layout', () => {
  const ts = product([['__timestamp_micros_since_unix_epoch__', T.i64]]);
  const opt = (t: AlgebraicType): AlgebraicType => ({ tag: 'Sum', value: { variants: [
    { name: 'some', algebraicType: t }, { name: 'none', algebraicType: product([]) }] } });
  const def = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [
      product([['id', T.u32], ['name', T.str], ['at', ts], ['n', T.i64], ['nick', opt(T.str)], ['ok', T.bool],
        ['data', { tag: 'Array', value: T.u8 }], ['lvl', opt({ tag: 'U16' })]]),
      product([['id', T.u32], ['words', { tag: 'Array', value: T.str }]]),
    ] } },
    { tag: 'Tables', value: [
      table('named', 0, { primaryKey: [0], indexes: [btree(0), btree(1)], constraints: [unique(0)] }),
      table('words', 1, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] }),
    ] },
  ] });
  const ds = new Datastore(def);
  const tx = ds.beginMutTx();
  const [named, words] = def.tables;
  const shape = tx.infallibleUpdate!(named.indexes[0].indexId)!;
  const c = rowLayoutCode;
  assert.deepEqual({ ...shape, layout: [...shape.layout!] }, { tableId: named.tableId, rowWidthBytes: 0, keyOffset: 0, keyWidthBytes: 4,
    keyNonZero: false, guards: [], layout: [c.fixed, 4, 0, c.string, c.fixed, 16, 0, c.option, c.string, c.bool, c.bytes, c.option, c.fixed, 2, 0] });
  assert.equal(tx.infallibleUpdate!(named.indexes[1].indexId), undefined, 'not unique');
  assert.equal(tx.infallibleUpdate!(words.indexes[0].indexId), undefined, 'an array of strings has no layout code');
  const codec = compileCodec({ tag: 'Product', value: named.rowType }, def.typespace);
  const row = codec.encode([7, 'seven', [5n], 1n, { tag: 0, value: 'x' }, true, new Uint8Array([1, 2]), { tag: 1, value: [] }]);
  tx.insert(named.tableId, row);
  tx.update(named.tableId, named.indexes[0].indexId,
    codec.encode([7, 'a longer name ✓', [6n], 2n, { tag: 1, value: [] }, false, new Uint8Array(0), { tag: 0, value: 9 }]));
  tx.commit();
});

test('infallibleInsert and sequence leases: values no row holds, given back exactly', () => {
  const ds = new Datastore(schema);
  const person = byName('person'), small = byName('small');
  const tx = ds.beginMutTx();
  const shape = tx.infallibleInsert!(person.tableId)!;
  assert.equal(shape.rowWidthBytes, 0);
  assert.equal(shape.sequenceOffset, 0);
  assert.equal(shape.sequenceWidthBytes, 8);
  assert.equal(tx.infallibleInsert!(small.tableId)?.sequenceWidthBytes, 1, 'a u8 sequence');
  assert.equal(tx.infallibleInsert!(byName('accounts').tableId), undefined, 'no sequence');
  // tags: no sequence and no unique index: inserts cannot fail (set semantics apply when made); leases reserve nothing.
  const tags = byName('tags').tableId;
  assert.equal(tx.infallibleInsert!(tags)?.sequenceWidthBytes, 0, 'no unique index, no sequence');
  const plain = tx.leaseSequence!(tags, 16)!;
  assert.ok(plain.count >= 16 && plain.increment === 0n);
  tx.endSequenceLease!(tags, plain.start);
  assert.equal(tx.resumeSequenceLease!(tags, plain.start, plain.count), true);
  tx.insert(person.tableId, enc(person, [3n, 'explicit', 30]));
  const lease = tx.leaseSequence!(person.tableId, 16)!;
  assert.deepEqual(lease, { start: 1n, increment: 1n, count: 2 }, 'stops before the value a row holds');
  // The holder used one value (1); the sequence goes back to 2, as if one insert had generated.
  tx.insert(person.tableId, enc(person, [1n, 'leased', 1]));
  tx.endSequenceLease!(person.tableId, 2n);
  assert.equal(tx.resumeSequenceLease!(person.tableId, 5n, 1), false, 'not where the lease ended');
  assert.equal(tx.resumeSequenceLease!(person.tableId, 2n, 1), true);
  tx.endSequenceLease!(person.tableId, 2n);
  const g = tx.insert(person.tableId, enc(person, [0n, 'generated', 2])).generated;
  assert.equal(new DataView(g.buffer, g.byteOffset).getBigUint64(0, true), 2n);
  assert.throws(() => tx.endSequenceLease!(person.tableId, 9n), /past its end/);
  tx.commit();
});

test('a row layout, in the datastore and in the module shim, accepts exactly the rows the row codec accepts', () => {
  const opt = (t: AlgebraicType): AlgebraicType => ({ tag: 'Sum', value: { variants: [
    { name: 'some', algebraicType: t }, { name: 'none', algebraicType: product([]) }] } });
  const rowType = product([['id', T.u32], ['name', T.str], ['nick', opt(T.str)], ['ok', T.bool],
    ['data', { tag: 'Array', value: T.u8 }], ['lvl', opt({ tag: 'U16' })], ['n', T.i64]]);
  const typespace = { types: [rowType] };
  const cols = (rowType as { value: { elements: { algebraicType: AlgebraicType }[] } }).value.elements.map((e) => e.algebraicType);
  const { layout, starts } = rowLayout(cols, typespace)!;
  const codec = compileCodec(rowType, typespace);
  const codecAccepts = (row: Uint8Array): boolean => {
    try { const r = new BsatnReader(row); codec.skip(r); r.expectEnd('row'); return true; } catch { return false; }
  };
  // The same check as the module's shim runs it inside the isolate (host/isolate-src.ts).
  const shimValidRow = new Function(`${layoutCheckSource}; return validRow;`)() as (b: Uint8Array, len: number, l: Uint8Array) => boolean;
  const shimItemAt = new Function(`${layoutCheckSource}; return itemAt;`)() as (l: Uint8Array, b: Uint8Array, p: number, item: number) => number;
  // Where each column starts by the layout's walk (rowLayout's starts, the shim's itemAt), against the codec's own.
  const columnStarts = (row: Uint8Array): number[] => {
    const r = new BsatnReader(row), at: number[] = [];
    for (const e of (rowType as { value: { elements: { algebraicType: AlgebraicType }[] } }).value.elements) {
      at.push(r.offset);
      compileCodec(e.algebraicType, typespace).skip(r);
    }
    return at;
  };
  const next = rng(7);
  const seeds = [
    codec.encode([1, 'plain', { tag: 0, value: 'ünïcødé ✓ 😀' }, true, new Uint8Array([0xff, 0]), { tag: 0, value: 7 }, -1n]),
    codec.encode([2, '', { tag: 1, value: [] }, false, new Uint8Array(0), { tag: 1, value: [] }, 0n]),
  ];
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const base = seeds[i % 2];
    let row = base.slice();
    const edits = 1 + Math.floor(next() * 3);
    for (let e = 0; e < edits; e++) {
      const what = next();
      if (what < 0.6) row[Math.floor(next() * row.length)] = [0, 1, 2, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xed, 0xf0, 0xf4, 0xff][Math.floor(next() * 12)];
      else if (what < 0.8) row = row.subarray(0, Math.floor(next() * row.length));
      else row = Uint8Array.from([...row, Math.floor(next() * 256)]);
    }
    const want = codecAccepts(row);
    const hex = [...row].map((b) => b.toString(16).padStart(2, '0')).join('');
    assert.equal(layoutAccepts(layout, row), want, `datastore, row ${hex}`);
    assert.equal(shimValidRow(row, row.length, layout), want, `module shim, row ${hex}`);
    if (want) {
      accepted++;
      const framed = Uint8Array.from([9, 9, ...row]);
      assert.deepEqual(starts.map((s) => shimItemAt(layout, framed, 2, s!.item) - 2 + s!.offset), columnStarts(row), `column starts, row ${hex}`);
    }
  }
  assert.ok(accepted > 1000 && accepted < 19_000, `both outcomes exercised (${accepted} accepted)`);
  // The UTF-8 edges, as the name column: surrogates, overlongs, out of range, truncated, stray continuations.
  const edges = ['eda080', 'ed9fbf', 'edbfbf', 'e08080', 'e0a080', 'f08fbfbf', 'f0908080', 'f4908080', 'f48fbfbf', 'c080',
    'c1bf', 'c280', '80', 'bf', 'e282', 'e282ac', 'f5808080', 'ff', 'efbbbf', '00', '7f', 'f09f9880', 'f09f98'];
  for (const edge of edges) {
    const name = Uint8Array.from(edge.match(/../g)!.map((h) => parseInt(h, 16)));
    const row = new Uint8Array(4 + 4 + name.length + 1 + 1 + 4 + 1 + 8);
    const v = new DataView(row.buffer);
    v.setUint32(4, name.length, true);
    row.set(name, 8);
    row[8 + name.length] = 1;                  // nick: none
    row[8 + name.length + 6] = 1;              // lvl: none (after ok and an empty data)
    const want = codecAccepts(row);
    assert.equal(layoutAccepts(layout, row), want, `datastore, name bytes ${edge}`);
    assert.equal(shimValidRow(row, row.length, layout), want, `module shim, name bytes ${edge}`);
  }
});
