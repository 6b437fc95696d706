// sats/order.ts — SATS `Ord`: the total order of values used by B-tree indexes and range bounds.
//
// Owns: compareValues and compileComparator (one comparator closure per type, built once and cached).
// Order (host-abi.md §3.4): integers numerically; strings by UTF-8 bytes, i.e. by code point (NOT JS's UTF-16
// order, which puts U+E000..U+FFFF above astral characters); false < true; floats in decorum `Total` order (NaN above
// everything and equal to itself; -0 == +0); sums by tag, then payload (so `some(x) < none`); products and arrays
// lexicographically, a shorter array first when it is a prefix; bytes lexicographically.
// May call: sats/types.ts, sats/codec.ts (resolveType).

import { resolveType } from './codec.js';
import { SatsError, type AlgebraicType, type SumValue, type Typespace, type Value } from './types.js';

export type Comparator = (a: Value, b: Value) => number;

const comparatorCaches = new WeakMap<Typespace, WeakMap<AlgebraicType, Comparator>>();

export function compareValues(type: AlgebraicType, a: Value, b: Value, typespace: Typespace): number {
  return compileComparator(type, typespace)(a, b);
}

/** The comparator for `type`, cached per (typespace, type object). */
export function compileComparator(type: AlgebraicType, typespace: Typespace): Comparator {
  let cache = comparatorCaches.get(typespace);
  if (cache === undefined) {
    cache = new WeakMap();
    comparatorCaches.set(typespace, cache);
  }
  let cmp = cache.get(type);
  if (cmp === undefined) {
    cmp = build(type, typespace);
    cache.set(type, cmp);
  }
  return cmp;
}

function build(type: AlgebraicType, ts: Typespace): Comparator {
  if (type.tag === 'Ref') {
    // Late-bound so recursive types work: compile the target on first use.
    let target: Comparator | undefined;
    const resolved = resolveType(type, ts);
    return (a, b) => (target ??= compileComparator(resolved, ts))(a, b);
  }
  switch (type.tag) {
    case 'Bool': return (a, b) => (a === b ? 0 : a ? 1 : -1);
    case 'I8': case 'U8': case 'I16': case 'U16': case 'I32': case 'U32':
    case 'I64': case 'U64': case 'I128': case 'U128': case 'I256': case 'U256':
      return (a, b) => (a < b ? -1 : a > b ? 1 : 0);
    case 'F32': case 'F64': return compareFloats as Comparator;
    case 'String': return compareStrings as Comparator;
    case 'Array': {
      if (resolveType(type.value, ts).tag === 'U8') return compareBytes as Comparator;
      const elem = compileComparator(type.value, ts);
      return (a, b) => {
        const x = a as Value[];
        const y = b as Value[];
        const n = Math.min(x.length, y.length);
        for (let i = 0; i < n; i++) {
          const c = elem(x[i], y[i]);
          if (c !== 0) return c;
        }
        return x.length < y.length ? -1 : x.length > y.length ? 1 : 0;
      };
    }
    case 'Product': {
      const fields = type.value.elements.map((e) => compileComparator(e.algebraicType, ts));
      return (a, b) => {
        const x = a as Value[];
        const y = b as Value[];
        for (let i = 0; i < fields.length; i++) {
          const c = fields[i](x[i], y[i]);
          if (c !== 0) return c;
        }
        return 0;
      };
    }
    case 'Sum': {
      const payloads = type.value.variants.map((v) => compileComparator(v.algebraicType, ts));
      return (a, b) => {
        const x = a as SumValue;
        const y = b as SumValue;
        if (x.tag !== y.tag) return x.tag < y.tag ? -1 : 1;
        return payloads[x.tag](x.value, y.value);
      };
    }
    default:
      throw new SatsError(`cannot compare values of unknown type ${JSON.stringify(type)}`);
  }
}

export function compareFloats(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0; // includes -0 == +0
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  return an === bn ? 0 : an ? 1 : -1;
}

/** Code point order (= UTF-8 byte order) without encoding: fix up the one place UTF-16 order differs. */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (astral code points) must sort above U+E000..U+FFFF: shift both ranges into code point order.
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
