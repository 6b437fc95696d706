// Tests of order-preserving index keys: JS string order of keys must equal SATS Ord of the values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileCodec } from '../../src/sats/codec.js';
import { compareValues } from '../../src/sats/order.js';
import type { AlgebraicType, SumValue, Typespace, Value } from '../../src/sats/types.js';
import { compileIndexKey, compileKeyEncoder, hashIndexKey, type Cursor } from '../../src/datastore/key.js';
import { rng } from './fixtures.js';

const ts: Typespace = { types: [] };
const prim = (tag: string) => ({ tag }) as AlgebraicType;
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const option = (t: AlgebraicType): AlgebraicType =>
  ({ tag: 'Sum', value: { variants: [{ name: 'some', algebraicType: t }, { name: 'none', algebraicType: unit }] } });
const prod = (...ts: AlgebraicType[]): AlgebraicType =>
  ({ tag: 'Product', value: { elements: ts.map((algebraicType, i) => ({ name: `f${i}`, algebraicType })) } });
const arr = (t: AlgebraicType): AlgebraicType => ({ tag: 'Array', value: t });

/** Independent reference of SATS Ord (host-abi §3.4). */
function refCompare(t: AlgebraicType, a: Value, b: Value): number {
  switch (t.tag) {
    case 'String': return Buffer.compare(Buffer.from(a as string, 'utf8'), Buffer.from(b as string, 'utf8'));
    case 'Bool': return Number(a) - Number(b);
    case 'F32': case 'F64': {
      const x = a as number, y = b as number;
      if (Number.isNaN(x) || Number.isNaN(y)) return Number(Number.isNaN(x)) - Number(Number.isNaN(y));
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 'Array': {
      if (a instanceof Uint8Array) return Buffer.compare(a, b as Uint8Array);
      const xs = a as Value[], ys = b as Value[];
      for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
        const c = refCompare(t.value, xs[i], ys[i]);
        if (c !== 0) return c;
      }
      return xs.length - ys.length;
    }
    case 'Product': {
      const xs = a as Value[], ys = b as Value[];
      for (let i = 0; i < xs.length; i++) {
        const c = refCompare(t.value.elements[i].algebraicType, xs[i], ys[i]);
        if (c !== 0) return c;
      }
      return 0;
    }
    case 'Sum': {
      const x = a as SumValue, y = b as SumValue;
      if (x.tag !== y.tag) return x.tag - y.tag;
      return refCompare(t.value.variants[x.tag].algebraicType, x.value, y.value);
    }
    case 'Ref': assert.fail('no refs here');
    default: return a < b ? -1 : a > b ? 1 : 0;
  }
}

function gen(t: AlgebraicType, r: () => number): Value {
  const pick = <X>(xs: X[]): X => xs[Math.floor(r() * xs.length)];
  const int = (bits: number, signed: boolean): bigint => {
    // Mix of extremes, small values and random ones, so ties and boundaries happen.
    const lo = signed ? -(1n << BigInt(bits - 1)) : 0n, hi = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
    const c = r();
    if (c < 0.15) return pick([lo, hi, 0n, 1n, lo + 1n, hi - 1n, signed ? -1n : 2n]);
    if (c < 0.5) return BigInt(Math.floor(r() * 7) - (signed ? 3 : 0));
    let v = 0n;
    for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(Math.floor(r() * 65536));
    v = BigInt.asUintN(bits, v);
    return signed ? BigInt.asIntN(bits, v) : v;
  };
  switch (t.tag) {
    case 'Bool': return r() < 0.5;
    case 'U8': case 'U16': case 'U32': case 'I8': case 'I16': case 'I32':
      return Number(int(Number(t.tag.slice(1)), t.tag[0] === 'I'));
    case 'U64': case 'U128': case 'U256': case 'I64': case 'I128': case 'I256':
      return int(Number(t.tag.slice(1)), t.tag[0] === 'I');
    case 'F32': case 'F64': {
      const v = pick([0, -0, NaN, Infinity, -Infinity, 1, -1, 1.5, -2.25, 5e-324, -5e-324, 1e300, -1e-300,
        (r() - 0.5) * 1e6, (r() - 0.5) * 1e-3, Math.floor(r() * 5) - 2]);
      return t.tag === 'F32' ? Math.fround(v) : v;
    }
    case 'String': {
      const alphabet = ['a', 'b', '\u0000', '\u00ff', '\u0100', '\uffff', '\ud83d\ude00', '\ue000', 'z', '\u0001'];
      const n = Math.floor(r() * 4);
      let s = '';
      for (let i = 0; i < n; i++) s += pick(alphabet);
      return s;
    }
    case 'Array': {
      const n = Math.floor(r() * 4);
      if (t.value.tag === 'U8') return Uint8Array.from({ length: n }, () => pick([0, 1, 255, 0x80, 2]));
      return Array.from({ length: n }, () => gen(t.value, r));
    }
    case 'Product': return t.value.elements.map((e) => gen(e.algebraicType, r));
    case 'Sum': {
      const tag = Math.floor(r() * t.value.variants.length);
      return { tag, value: gen(t.value.variants[tag].algebraicType, r) };
    }
    default: assert.fail(`no generator for ${t.tag}`);
  }
}

const types: AlgebraicType[] = [
  ...['Bool', 'U8', 'I8', 'U16', 'I16', 'U32', 'I32', 'U64', 'I64', 'U128', 'I128', 'U256', 'I256', 'F32', 'F64', 'String']
    .map(prim),
  arr(prim('U8')), option(prim('I32')), option(prim('String')), prod(prim('I32'), prim('String'), prim('Bool')),
  arr(prim('I16')), arr(prim('String')), arr(option(prim('U8'))),
  { tag: 'Sum', value: { variants: [{ name: 'a', algebraicType: prim('String') }, { name: 'b', algebraicType: unit },
    { name: 'c', algebraicType: prod(prim('F64'), arr(prim('I8'))) }] } },
];

function keyOf(enc: (b: Uint8Array, c: Cursor) => string, bytes: Uint8Array): string {
  const c = { pos: 0 };
  const k = enc(bytes, c);
  assert.equal(c.pos, bytes.length, 'the encoder consumes exactly one value');
  return k;
}

test('property: key order equals SATS Ord for many types (fixed seed)', () => {
  // Checked against both the independent reference above and sats' compareValues.
  const r = rng(2024);
  for (const t of types) {
    const codec = compileCodec(t, ts);
    const enc = compileKeyEncoder(t, ts);
    const values = Array.from({ length: 120 }, () => gen(t, r));
    const keys = values.map((v) => keyOf(enc, codec.encode(v)));
    for (const k of keys) for (let i = 0; i < k.length; i++) assert.ok(k.charCodeAt(i) < 256, 'keys are latin1');
    for (let i = 0; i < values.length; i++) {
      for (let j = 0; j < values.length; j += 3) {
        const want = Math.sign(refCompare(t, values[i], values[j]));
        const got = keys[i] < keys[j] ? -1 : keys[i] > keys[j] ? 1 : 0;
        assert.equal(got, want, `${JSON.stringify(t)}: ${String(values[i])} vs ${String(values[j])}`);
        assert.equal(got, Math.sign(compareValues(t, values[i], values[j], ts)), `compareValues disagrees on ${t.tag}`);
      }
    }
  }
});

test('multi-column keys: a column prefix of a key sorts before the key; variable-width columns are located', () => {
  const cols: AlgebraicType[] = [prim('String'), prim('U32'), arr(prim('U8')), prim('I64')];
  const row = compileCodec(prod(...cols), ts);
  const ix = compileIndexKey(cols, [3, 0], ts); // key order differs from column order
  const k1 = <string>ix.ofRow(row.encode(['ab', 1, Uint8Array.of(1, 2), -5n]));
  const k2 = <string>ix.ofRow(row.encode(['a', 9, Uint8Array.of(), -5n]));
  const k3 = <string>ix.ofRow(row.encode(['a', 9, Uint8Array.of(), 7n]));
  assert.ok(k2 < k1 && k1 < k3);
  const prefix = <string>ix.ofColumns(compileCodec(prim('I64'), ts).encode(-5n), { pos: 0 }, 1);
  assert.ok(k1.startsWith(prefix) && k2.startsWith(prefix) && !k3.startsWith(prefix));
});

test('equalsAt and hashAt (what row-id hashes probe with) agree with ofRowAt for integer keys, in place or located', () => {
  // Wide integers are compared and hashed in the row's bytes without building the key; a hash that differs from
  // hashIndexKey of the built key would make a unique index miss rows it holds.
  const r = rng(77);
  for (const tag of ['U8', 'I8', 'U16', 'I16', 'U32', 'I32', 'U64', 'I64', 'U128', 'I128', 'U256', 'I256']) {
    for (const before of [prim('U32'), prim('String')]) {
      for (const allowNumeric of [false, true]) {
        const cols = [before, prim(tag)];
        const row = compileCodec(prod(...cols), ts);
        const ix = compileIndexKey(cols, [1], ts, allowNumeric);
        const rows = Array.from({ length: 40 }, () => {
          const encoded = row.encode([gen(before, r), gen(prim(tag), r)]);
          const at = 1 + Math.floor(r() * 5); // rows inside a page: not at offset 0
          const page = new Uint8Array(at + encoded.length);
          page.set(encoded, at);
          return { page, at, key: ix.ofRow(encoded) };
        });
        for (const a of rows) {
          const what = `${tag} after ${before.tag}, numeric ${allowNumeric}`;
          assert.equal(ix.hashAt(a.page, a.at), hashIndexKey(a.key), what);
          for (const b of rows) assert.equal(ix.equalsAt(a.page, a.at, b.key), a.key === b.key, what);
        }
      }
    }
  }
});
