// Datastore: index keys of the table shapes bench/shapes.ts measures. Identity and ConnectionId keys (products of one
// integer) are integer keys: read from the rows, and updates through them may be deferred (MutTx.infallibleUpdate);
// string, byte and wide-integer keys are built flat (key.ts keyChars) and must keep their exact encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Datastore } from '../../src/datastore/store.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { compileIndexKey, compileKeyEncoder, hashIndexKey, type Cursor } from '../../src/datastore/key.js';
import { compileCodec } from '../../src/sats/codec.js';
import type { AlgebraicType, Typespace } from '../../src/sats/types.js';
import { btree, product, T, table, unique } from './fixtures.js';

const identity = product([['__identity__', { tag: 'U256' }]]);
const connectionId = product([['__connection_id__', { tag: 'U128' }]]);

test('infallibleUpdate: an Identity or ConnectionId primary key is an integer key; a two-field product is not', () => {
  const def = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [
      product([['who', identity], ['score', T.i64], ['name', T.str]]),
      product([['conn', connectionId], ['n', T.u32]]),
      product([['pair', product([['a', T.u32], ['b', T.u32]])], ['n', T.u32]]),
    ] } },
    { tag: 'Tables', value: [
      table('players', 0, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] }),
      table('conns', 1, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] }),
      table('pairs', 2, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] }),
    ] },
  ] });
  const [players, conns, pairs] = def.tables;
  const ds = new Datastore(def);
  const tx = ds.beginMutTx();
  const p = tx.infallibleUpdate!(players.indexes[0].indexId);
  assert.ok(p !== undefined, 'Identity key');
  assert.deepEqual([p.rowWidthBytes, p.keyOffset, p.keyWidthBytes], [0, 0, 32]);
  const c = tx.infallibleUpdate!(conns.indexes[0].indexId);
  assert.deepEqual(c, { tableId: conns.tableId, rowWidthBytes: 0, keyOffset: 0, keyWidthBytes: 16, keyNonZero: false, guards: [], layout: c?.layout });
  assert.equal(tx.infallibleUpdate!(pairs.indexes[0].indexId), undefined, 'two fields');

  // Rows found, updated and deleted by such keys, as before.
  const codec = compileCodec({ tag: 'Product', value: players.rowType }, def.typespace);
  const who = (k: bigint): bigint => (0xc200n << 240n) | (k * 0x10001n);
  for (let k = 0n; k < 300n; k++) tx.insert(players.tableId, codec.encode([[who(k)], k, `player ${k}`]));
  const ix = players.indexes[0].indexId;
  const key = (k: bigint): Uint8Array => compileCodec(identity, def.typespace).encode([who(k)]);
  tx.update(players.tableId, ix, codec.encode([[who(7n)], 70n, 'seven']));
  assert.deepEqual(codec.decode(tx.scanIndexPoint(ix, key(7n))[0]), [[who(7n)], 70n, 'seven']);
  assert.throws(() => tx.insert(players.tableId, codec.encode([[who(8n)], 0n, 'dup'])), /Unique constraint violation/);
  assert.equal(tx.deleteByIndexPoint(ix, key(9n)), 1);
  assert.equal(tx.scanIndexPoint(ix, key(9n)).length, 0);
  assert.throws(() => tx.update(players.tableId, ix, codec.encode([[who(9n)], 1n, 'gone'])), /no row/);
  const range = tx.scanIndexRange(ix, { prefix: new Uint8Array(0), prefixElems: 0,
    rangeStart: Uint8Array.of(0, ...key(5n)), rangeEnd: Uint8Array.of(1, ...key(12n)) });
  assert.deepEqual(range.map((r) => codec.decode(r)[1]), [5n, 6n, 70n, 8n, 10n, 11n], 'keys in order, 9 deleted');
  tx.commit();
});

const ts: Typespace = { types: [] };
const keyOf = (type: AlgebraicType, bytes: Uint8Array): string => {
  const c: Cursor = { pos: 0 };
  const k = compileKeyEncoder(type, ts)(bytes, c);
  assert.equal(c.pos, bytes.length);
  return k;
};
const latin1 = (b: Iterable<number>): string => String.fromCharCode(...b);

test('string and byte keys: bytes with 0x00 escaped, then 0x00 0x01, at every length (flat and chunked)', () => {
  for (const n of [0, 1, 11, 12, 13, 40, 253, 254, 255, 256, 257, 600]) {
    for (const zeroEvery of [0, 1, 3, 50]) {
      const value = Uint8Array.from({ length: n }, (_, i) => (zeroEvery > 0 && i % zeroEvery === 0 ? 0 : 1 + (i * 37) % 255));
      const bsatn = new Uint8Array(4 + n);
      new DataView(bsatn.buffer).setUint32(0, n, true);
      bsatn.set(value, 4);
      const expected = [...value].map((x) => (x === 0 ? '\x00\xff' : String.fromCharCode(x))).join('') + '\x00\x01';
      assert.equal(keyOf({ tag: 'Array', value: T.u8 }, bsatn), expected, `bytes of ${n}, a zero every ${zeroEvery}`);
    }
  }
  const text = 'user-42@example.com ✓';
  const utf8 = Buffer.from(text);
  const bsatn = Buffer.concat([Buffer.from(Uint32Array.of(utf8.length).buffer), utf8]);
  assert.equal(keyOf(T.str, bsatn), latin1(utf8) + '\x00\x01');
  // Two string columns in one key: each is terminated, so the first's end sorts below any continuation.
  assert.ok(keyOf(product([['a', T.str], ['b', T.str]]), Buffer.concat([bsatn, bsatn])).startsWith(latin1(utf8) + '\x00\x01'));
});

test('128- and 256-bit keys: big-endian, sign bit flipped for signed ones', () => {
  for (const [tag, w] of [['U128', 16], ['I128', 16], ['U256', 32], ['I256', 32]] as const) {
    const le = Uint8Array.from({ length: w }, (_, i) => (i * 29 + 3) & 0xff);
    const be = [...le].reverse();
    if (tag[0] === 'I') be[0] ^= 0x80;
    assert.equal(keyOf({ tag }, le), latin1(be), tag);
    assert.equal(keyOf(product([['x', { tag }]]), le), latin1(be), `${tag} in a one-field product`);
  }
});

test('non-unique btree point scans find exactly the rows of their key, keys full of 0xff bytes included', () => {
  const def = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [product([['id', T.u32], ['n', T.u32], ['s', T.str]])] } },
    { tag: 'Tables', value: [table('items', 0, { primaryKey: [0], indexes: [btree(0), btree(1), btree(2), btree(1, 2)],
      constraints: [unique(0)] })] },
  ] });
  const [items] = def.tables;
  const codec = compileCodec({ tag: 'Product', value: items.rowType }, def.typespace);
  const ns = [0, 1, 0xff, 0xffff, 0xfffffe, 0xfffffffe, 0xffffffff];
  const ss = ['', 'a', '\xff', '\xff\xff', 'z', 'a\x00']; // distinct: UTF-8 bytes never hold 0xff, the u32s do
  const tx = new Datastore(def).beginMutTx();
  let id = 0;
  for (const n of ns) for (const s of ss) for (let copy = 0; copy < 3; copy++) tx.insert(items.tableId, codec.encode([id++, n, s]));
  const u32 = (n: number): Uint8Array => Uint8Array.from(Buffer.from(Uint32Array.of(n).buffer));
  const str = (s: string): Uint8Array => { const b = Buffer.from(s); return Uint8Array.from([...u32(b.length), ...b]); };
  const rowsOf = (ix: number, key: Uint8Array) => tx.scanIndexPoint(items.indexes[ix].indexId, key).map((r) => codec.decode(r));
  for (const n of ns) {
    const rows = rowsOf(1, u32(n));
    assert.equal(rows.length, 3 * ss.length, `n = ${n}`);
    assert.ok(rows.every((r) => r[1] === n));
    assert.deepEqual(rows.map((r) => r[0]), [...rows.map((r) => r[0] as number)].sort((a, b) => a - b), 'row-id order');
  }
  for (const s of ss) assert.ok(rowsOf(2, str(s)).every((r) => r[2] === s) && rowsOf(2, str(s)).length === 3 * ns.length, `s = ${JSON.stringify(s)}`);
  for (const n of ns) for (const s of ss) {
    const rows = rowsOf(3, Uint8Array.from([...u32(n), ...str(s)]));
    assert.deepEqual(rows.map((r) => [r[1], r[2]]), [[n, s], [n, s], [n, s]]);
  }
  tx.rollback();
});

test('the range tree of a unique integer index, built on the first range scan, orders i32 and u32 keys across their whole span', () => {
  const def = buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [product([['k', T.i32], ['n', T.u8]]), product([['k', T.u32], ['n', T.u8]])] } },
    { tag: 'Tables', value: [
      table('signed', 0, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] }),
      table('unsigned', 1, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] }),
    ] },
  ] });
  const spans: [number, number][] = [[-(2 ** 31), 2 ** 31 - 1], [0, 2 ** 32 - 1]];
  const ds = new Datastore(def);
  const tx = ds.beginMutTx();
  def.tables.forEach((t, which) => {
    const codec = compileCodec({ tag: 'Product', value: t.rowType }, def.typespace);
    const [lo, hi] = spans[which];
    // Keys that differ in every byte and both extremes, inserted in a scrambled order (the hash's order is not theirs).
    const keys = [lo, hi, lo + 1, hi - 1, 0x12345678 + lo, 0x00ff00ff + lo, 0x7f000001 + lo, 0xff + lo, 0x10000 + lo];
    for (let i = 0; i < 3000; i++) keys.push(lo + ((Math.imul(i + 1, 2654435761) >>> 0) % (hi - lo)));
    const distinct = [...new Set(keys)];
    for (const k of distinct) tx.insert(t.tableId, codec.encode([k, 1]));
    const all = tx.scanIndexRange(t.indexes[0].indexId, { prefix: new Uint8Array(0), prefixElems: 0,
      rangeStart: Uint8Array.of(2), rangeEnd: Uint8Array.of(2) }).map((r) => codec.decode(r)[0] as number);
    assert.deepEqual(all, distinct.sort((a, b) => a - b), t.name);
  });
  tx.commit();
});

test('string and byte-array keys read in place: hashAt and equalsAt agree with the built key, zeros and prefixes included', () => {
  const cols: AlgebraicType[] = [T.u32, T.str, { tag: 'Array', value: T.u8 }];
  for (const column of [1, 2]) {
    const codec = compileIndexKey(cols, [column], ts);
    const rowCodec = compileCodec({ tag: 'Product', value: { elements: cols.map((t, i) => ({ name: `c${i}`, algebraicType: t })) } }, ts);
    const values = ['', 'a', 'ab', 'a\0', 'a\0b', '\0', '\0\0', 'é€😀', 'x'.repeat(300), 'x'.repeat(299) + '\0'];
    const rows = values.map((v) => rowCodec.encode([7, v, Uint8Array.from(Buffer.from(v))]));
    const keys = rows.map((r) => codec.ofRow(r));
    rows.forEach((row, i) => {
      const prefixed = new Uint8Array(row.length + 3);
      prefixed.set(row, 3);                                            // a row that does not start at 0, as in a page
      assert.equal(codec.hashAt(prefixed, 3), hashIndexKey(keys[i]), `hash of ${JSON.stringify(values[i])}`);
      keys.forEach((k, j) => assert.equal(codec.equalsAt(prefixed, 3, k), i === j, `${JSON.stringify(values[i])} vs ${JSON.stringify(values[j])}`));
    });
  }
});
