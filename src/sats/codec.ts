// sats/codec.ts — BSATN codecs compiled once per AlgebraicType.
//
// Owns: compileCodec (type → closures for read/write/skip, built once; no per-value dispatch on the type tag) and
// resolveType. Refs are resolved through the typespace lazily, so recursive types compile (and a compiled Ref is
// cached per typespace, so all tables sharing a type share its codec).
// Errors: decode is strict (truncated, trailing bytes, bad sum tag, bad bool, invalid UTF-8, an array count over its
// limit or beyond the bytes left: checked before any element is read); encode checks the JS shape of the value. Both
// throw SatsError whose message starts with the field path (e.g. `balance: …`, `items[2].x: …`).
// May call: sats/types.ts, sats/bsatn.ts, limits.

import assert from 'node:assert';
import { BsatnReader, BsatnWriter, describe } from './bsatn.js';
import { hasOptionVariants, SatsError, type AlgebraicType, type SumValue, type Typespace, type Value } from './types.js';
import { satsArrayElementsMax, satsZeroSizeArrayElementsMax } from '../limits.js';

export interface Codec {
  decode(bytes: Uint8Array): Value;
  read(reader: BsatnReader): Value;
  encode(value: Value): Uint8Array;
  write(writer: BsatnWriter, value: Value): void;
  skip(reader: BsatnReader): void;
  /**
   * The width of every value when any bytes of that width are a valid value (integers and floats, and products of
   * them): a check of such input is a length comparison. Undefined for every other type.
   */
  readonly anyBytesWidth: number | undefined;
}

/** Longest chain of Ref → Ref we follow before calling the typespace cyclic. */
const refChainMax = 1000;

/** Mutable so that a Ref stub can be patched in place once its target is compiled. */
interface Compiled {
  read: (r: BsatnReader) => Value;
  write: (w: BsatnWriter, v: Value) => void;
  skip: (r: BsatnReader) => void;
}

const refCaches = new WeakMap<Typespace, Map<number, Compiled>>();
const minSizeCaches = new WeakMap<Typespace, Map<number, number>>();
const sharedWriter = new BsatnWriter(1024);

export function compileCodec(type: AlgebraicType, typespace: Typespace): Codec {
  const c = compile(type, typespace);
  const codec: Codec = {
    read: (r) => c.read(r),
    write: (w, v) => c.write(w, v),
    skip: (r) => c.skip(r),
    anyBytesWidth: anyBytesWidth(type, typespace, 0),
    decode(bytes) {
      const r = new BsatnReader(bytes);
      const v = c.read(r);
      r.expectEnd('value');
      return v;
    },
    encode(value) {
      sharedWriter.reset();
      c.write(sharedWriter, value);
      return sharedWriter.finish();
    },
  };
  return codec;
}

/** Follows top-level Refs until a non-Ref type. */
export function resolveType(type: AlgebraicType, typespace: Typespace): AlgebraicType {
  let t = type;
  for (let i = 0; t.tag === 'Ref'; i++) {
    if (i >= refChainMax) throw new SatsError(`type reference cycle at Ref(${t.value})`);
    t = refTarget(t.value, typespace);
  }
  return t;
}

/**
 * Replaces every Ref, at any depth, by its target, so the type can be read without the typespace (e.g. a result schema
 * sent to a client). Recursive types cannot be inlined and are an error.
 */
export function resolveTypeDeep(type: AlgebraicType, typespace: Typespace, depth = 0): AlgebraicType {
  if (depth > refChainMax) throw new SatsError('type is recursive or nested too deeply to inline');
  const t = resolveType(type, typespace);
  switch (t.tag) {
    case 'Product':
      return { tag: 'Product', value: { elements: t.value.elements.map((e) => ({ name: e.name, algebraicType: resolveTypeDeep(e.algebraicType, typespace, depth + 1) })) } };
    case 'Sum':
      return { tag: 'Sum', value: { variants: t.value.variants.map((v) => ({ name: v.name, algebraicType: resolveTypeDeep(v.algebraicType, typespace, depth + 1) })) } };
    case 'Array':
      return { tag: 'Array', value: resolveTypeDeep(t.value, typespace, depth + 1) };
    default:
      return t;
  }
}

/** Codec.anyBytesWidth of `type`; `depth` bounds the walk of Refs (a cycle has no fixed width). */
function anyBytesWidth(type: AlgebraicType, typespace: Typespace, depth: number): number | undefined {
  if (depth > refChainMax) return undefined;
  switch (type.tag) {
    case 'Ref': return anyBytesWidth(refTarget(type.value, typespace), typespace, depth + 1);
    case 'Product': {
      let n = 0;
      for (const e of type.value.elements) {
        const w = anyBytesWidth(e.algebraicType, typespace, depth + 1);
        if (w === undefined) return undefined;
        n += w;
      }
      return n;
    }
    case 'I8': case 'U8': return 1;
    case 'I16': case 'U16': return 2;
    case 'I32': case 'U32': case 'F32': return 4;
    case 'I64': case 'U64': case 'F64': return 8;
    case 'I128': case 'U128': return 16;
    case 'I256': case 'U256': return 32;
    default: return undefined;   // bools (0 or 1), sums (tags), strings and arrays (lengths, UTF-8)
  }
}

/**
 * Fewest BSATN bytes a value of `type` takes (0 for unit-like products). A Ref met again inside itself counts 0 (only
 * a type that contains itself outside any sum or array, which has no values, comes out lower than it is). Refs are
 * memoized per typespace, so types that share parts many times over cost one visit each.
 */
export function minSizeBytes(type: AlgebraicType, typespace: Typespace, visiting: Set<number> = new Set()): number {
  switch (type.tag) {
    case 'Ref': {
      let memo = minSizeCaches.get(typespace);
      if (memo === undefined) minSizeCaches.set(typespace, memo = new Map());
      const known = memo.get(type.value);
      if (known !== undefined) return known;
      if (visiting.has(type.value)) return 0;
      visiting.add(type.value);
      const n = minSizeBytes(refTarget(type.value, typespace), typespace, visiting);
      visiting.delete(type.value);
      memo.set(type.value, n);
      return n;
    }
    case 'Product': return type.value.elements.reduce((n, e) => n + minSizeBytes(e.algebraicType, typespace, visiting), 0);
    case 'Sum': {
      const payloads = type.value.variants.map((v) => minSizeBytes(v.algebraicType, typespace, visiting));
      return 1 + (payloads.length === 0 ? 0 : Math.min(...payloads));
    }
    case 'Array': case 'String': return 4;
    case 'Bool': case 'I8': case 'U8': return 1;
    case 'I16': case 'U16': return 2;
    case 'I32': case 'U32': case 'F32': return 4;
    case 'I64': case 'U64': case 'F64': return 8;
    case 'I128': case 'U128': return 16;
    case 'I256': case 'U256': return 32;
  }
}

/**
 * The element-count check of every array decoded from outside (BSATN here, SATS-JSON in json.ts), built once per
 * element type: at most `satsArrayElementsMax` elements (`satsZeroSizeArrayElementsMax` when an element takes no
 * bytes: 4 bytes could otherwise declare 2^32−1 of them), and no more than the bytes left can hold. Returns the error
 * text, or undefined when `count` is fine.
 */
export function arrayCountCheck(elem: AlgebraicType, typespace: Typespace): (count: number, remainingBytes: number) => string | undefined {
  const elemBytes = minSizeBytes(elem, typespace);
  const countMax = elemBytes === 0 ? satsZeroSizeArrayElementsMax : satsArrayElementsMax;
  const limitName = elemBytes === 0 ? 'satsZeroSizeArrayElementsMax' : 'satsArrayElementsMax';
  return (count, remainingBytes) => {
    if (count > countMax) {
      return `array of ${count} elements exceeds the limit of ${countMax} elements${elemBytes === 0 ? ' of a zero-size type' : ''} (${limitName})`;
    }
    if (count * elemBytes > remainingBytes) {
      return `array of ${count} elements needs at least ${count * elemBytes} bytes but only ${remainingBytes} remain`;
    }
    return undefined;
  };
}

/**
 * True when a value of `type` decodes to a heap object in a module (an array other than bytes, a product, a sum other
 * than an option of a value that does not, a 64-bit or wider integer: a BigInt), not a number, boolean or string. Four
 * bytes of BSATN (an empty inner array) become a JS array of ~40 bytes: BsatnReader.decodedObjects counts them.
 */
function decodesToObject(type: AlgebraicType, ts: Typespace, depth = 0): boolean {
  if (depth > 64) return true;
  switch (type.tag) {
    case 'Ref': return decodesToObject(refTarget(type.value, ts), ts, depth + 1);
    case 'Array': return true;
    case 'Product': return true;
    case 'Sum': {
      const v = type.value.variants;
      return !hasOptionVariants(v) || decodesToObject(v[0]!.algebraicType, ts, depth + 1);
    }
    case 'I64': case 'U64': case 'I128': case 'U128': case 'I256': case 'U256': return true;
    default: return false;
  }
}

function refTarget(index: number, typespace: Typespace): AlgebraicType {
  const t = typespace.types[index];
  if (t === undefined) {
    throw new SatsError(`type Ref(${index}) is out of range (typespace has ${typespace.types.length} types)`);
  }
  return t;
}

function compile(type: AlgebraicType, ts: Typespace): Compiled {
  switch (type.tag) {
    case 'Ref': return compileRef(type.value, ts);
    case 'Product': return compileProduct(type.value.elements, ts);
    case 'Sum': return compileSum(type.value.variants, ts);
    case 'Array': return compileArray(type.value, ts);
    case 'Bool': return boolCodec;
    case 'String': return stringCodec;
    case 'I8': return i8Codec;
    case 'U8': return u8Codec;
    case 'I16': return i16Codec;
    case 'U16': return u16Codec;
    case 'I32': return i32Codec;
    case 'U32': return u32Codec;
    case 'I64': return i64Codec;
    case 'U64': return u64Codec;
    case 'I128': return i128Codec;
    case 'U128': return u128Codec;
    case 'I256': return i256Codec;
    case 'U256': return u256Codec;
    case 'F32': return f32Codec;
    case 'F64': return f64Codec;
    default:
      throw new SatsError(`unknown algebraic type tag ${JSON.stringify((type as { tag: unknown }).tag)}`);
  }
}

function compileRef(index: number, ts: Typespace): Compiled {
  let cache = refCaches.get(ts);
  if (cache === undefined) {
    cache = new Map();
    refCaches.set(ts, cache);
  }
  const hit = cache.get(index);
  if (hit !== undefined) return hit;
  const target = refTarget(index, ts);
  // Stub first, so a recursive type that reaches this Ref again gets the stub; then patch it with the real closures.
  const stub: Compiled = {
    read: (r) => { throw new SatsError(`type Ref(${index}) used before it was compiled`, r.offset); },
    write: () => { throw new SatsError(`type Ref(${index}) used before it was compiled`); },
    skip: (r) => { throw new SatsError(`type Ref(${index}) used before it was compiled`, r.offset); },
  };
  cache.set(index, stub);
  if (target.tag === 'Ref') {
    // Guard against Ref(i) → Ref(i) loops, which can never produce a value.
    resolveType(target, ts);
  }
  let real: Compiled;
  try {
    real = compile(target, ts);
  } catch (e) {
    cache.delete(index);
    throw e;
  }
  // Recursion goes through `stub.read(...)` calls on the object, so patching the methods makes them direct.
  stub.read = real.read;
  stub.write = real.write;
  stub.skip = real.skip;
  return stub;
}

interface PathedSatsError extends SatsError { satsPath?: string; satsBase?: string }

/** Re-throws `e` with `segment` prepended to its field path (`a.b`, `a[3]`). Non-SatsErrors pass through. */
function rethrowAt(e: unknown, segment: string): never {
  if (!(e instanceof SatsError)) throw e;
  const inner = e as PathedSatsError;
  let base = inner.satsBase;
  if (base === undefined) {
    const suffix = inner.offsetBytes === undefined ? '' : ` (at byte ${inner.offsetBytes})`;
    base = inner.message.endsWith(suffix) ? inner.message.slice(0, inner.message.length - suffix.length) : inner.message;
  }
  const innerPath = inner.satsPath;
  const path = innerPath === undefined ? segment
    : innerPath.startsWith('[') ? segment + innerPath : `${segment}.${innerPath}`;
  const err = new SatsError(`${path}: ${base}`, inner.offsetBytes) as PathedSatsError;
  err.satsPath = path;
  err.satsBase = base;
  throw err;
}

function compileProduct(elements: { name: string | undefined; algebraicType: AlgebraicType }[], ts: Typespace): Compiled {
  const n = elements.length;
  const fields = elements.map((e) => compile(e.algebraicType, ts));
  const names = elements.map((e, i) => e.name ?? String(i));
  if (n === 0) {
    return {
      read: () => [],
      write: (_w, v) => {
        if (!Array.isArray(v) || v.length !== 0) throw new SatsError(`expected the unit value [], got ${describe(v)}`);
      },
      skip: () => {},
    };
  }
  return {
    read(r) {
      const out: Value[] = new Array(n);
      let i = 0;
      try {
        for (; i < n; i++) out[i] = fields[i].read(r);
      } catch (e) {
        rethrowAt(e, names[i]);
      }
      return out;
    },
    write(w, v) {
      if (!Array.isArray(v) || v.length !== n) {
        throw new SatsError(`expected a product of ${n} fields (${names.join(', ')}) as an array, got ${describe(v)}`);
      }
      let i = 0;
      try {
        for (; i < n; i++) fields[i].write(w, v[i]);
      } catch (e) {
        rethrowAt(e, names[i]);
      }
    },
    skip(r) {
      let i = 0;
      try {
        for (; i < n; i++) fields[i].skip(r);
      } catch (e) {
        rethrowAt(e, names[i]);
      }
    },
  };
}

function compileSum(variants: { name: string | undefined; algebraicType: AlgebraicType }[], ts: Typespace): Compiled {
  const n = variants.length;
  const payloads = variants.map((v) => compile(v.algebraicType, ts));
  const names = variants.map((v, i) => v.name ?? String(i));
  const badTag = (tag: number, at: number): never => {
    throw new SatsError(`invalid sum tag ${tag} (the type has ${n} variants)`, at);
  };
  return {
    read(r) {
      const at = r.offset;
      const tag = r.readU8();
      if (tag >= n) badTag(tag, at);
      let value: Value;
      try {
        value = payloads[tag].read(r);
      } catch (e) {
        rethrowAt(e, names[tag]);
      }
      return { tag, value };
    },
    write(w, v) {
      const s = v as SumValue;
      if (typeof s !== 'object' || s === null || Array.isArray(s) || s instanceof Uint8Array ||
        typeof s.tag !== 'number') {
        throw new SatsError(`expected a sum value {tag, value}, got ${describe(v)}`);
      }
      const tag = s.tag;
      if (!Number.isInteger(tag) || tag < 0 || tag >= n) {
        throw new SatsError(`invalid sum tag ${tag} (the type has ${n} variants)`);
      }
      w.writeU8(tag);
      try {
        payloads[tag].write(w, s.value);
      } catch (e) {
        rethrowAt(e, names[tag]);
      }
    },
    skip(r) {
      const at = r.offset;
      const tag = r.readU8();
      if (tag >= n) badTag(tag, at);
      try {
        payloads[tag].skip(r);
      } catch (e) {
        rethrowAt(e, names[tag]);
      }
    },
  };
}

function compileArray(elem: AlgebraicType, ts: Typespace): Compiled {
  if (elem.tag === 'U8') return bytesCodec;
  const c = compile(elem, ts);
  const countCheck = arrayCountCheck(elem, ts);
  const objects = decodesToObject(elem, ts);
  const readCount = (r: BsatnReader): number => {
    const at = r.offset;
    const count = r.readU32();
    const error = countCheck(count, r.remainingBytes);
    if (error !== undefined) throw new SatsError(error, at);
    if (objects) r.decodedObjects += count;
    return count;
  };
  return {
    read(r) {
      const count = readCount(r);
      const out: Value[] = new Array(count);
      let i = 0;
      try {
        for (; i < count; i++) out[i] = c.read(r);
      } catch (e) {
        rethrowAt(e, `[${i}]`);
      }
      return out;
    },
    write(w, v) {
      if (!Array.isArray(v)) throw new SatsError(`expected an array, got ${describe(v)}`);
      const count = v.length;
      w.writeU32(count);
      let i = 0;
      try {
        for (; i < count; i++) c.write(w, v[i]);
      } catch (e) {
        rethrowAt(e, `[${i}]`);
      }
    },
    skip(r) {
      const count = readCount(r);
      let i = 0;
      try {
        for (; i < count; i++) c.skip(r);
      } catch (e) {
        rethrowAt(e, `[${i}]`);
      }
    },
  };
}

// Primitive codecs: shared singletons (stateless).

function fixed(
  read: (r: BsatnReader) => Value, write: (w: BsatnWriter, v: Value) => void, sizeBytes: number, what: string,
): Compiled {
  assert(sizeBytes > 0);
  return { read, write, skip: (r) => r.skipBytes(sizeBytes, what) };
}

const boolCodec: Compiled = {
  read: (r) => r.readBool(),
  write: (w, v) => w.writeBool(v as boolean),
  skip: (r) => { r.readBool(); },
};
const stringCodec: Compiled = {
  read: (r) => r.readString(),
  write: (w, v) => w.writeString(v as string),
  skip: (r) => { r.readString(); },
};
const bytesCodec: Compiled = {
  // A copy: the input buffer is often reused (exchange buffer, socket frames).
  read: (r) => r.readBytes().slice(),
  write: (w, v) => w.writeBytes(v as Uint8Array),
  skip: (r) => { r.readBytes(); },
};
const i8Codec = fixed((r) => r.readI8(), (w, v) => w.writeI8(v as number), 1, 'i8');
const u8Codec = fixed((r) => r.readU8(), (w, v) => w.writeU8(v as number), 1, 'u8');
const i16Codec = fixed((r) => r.readI16(), (w, v) => w.writeI16(v as number), 2, 'i16');
const u16Codec = fixed((r) => r.readU16(), (w, v) => w.writeU16(v as number), 2, 'u16');
const i32Codec = fixed((r) => r.readI32(), (w, v) => w.writeI32(v as number), 4, 'i32');
const u32Codec = fixed((r) => r.readU32(), (w, v) => w.writeU32(v as number), 4, 'u32');
const i64Codec = fixed((r) => r.readI64(), (w, v) => w.writeI64(v as bigint), 8, 'i64');
const u64Codec = fixed((r) => r.readU64(), (w, v) => w.writeU64(v as bigint), 8, 'u64');
const i128Codec = fixed((r) => r.readI128(), (w, v) => w.writeI128(v as bigint), 16, 'i128');
const u128Codec = fixed((r) => r.readU128(), (w, v) => w.writeU128(v as bigint), 16, 'u128');
const i256Codec = fixed((r) => r.readI256(), (w, v) => w.writeI256(v as bigint), 32, 'i256');
const u256Codec = fixed((r) => r.readU256(), (w, v) => w.writeU256(v as bigint), 32, 'u256');
const f32Codec = fixed((r) => r.readF32(), (w, v) => w.writeF32(v as number), 4, 'f32');
const f64Codec = fixed((r) => r.readF64(), (w, v) => w.writeF64(v as number), 8, 'f64');
