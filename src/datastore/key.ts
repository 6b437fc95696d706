// datastore/key.ts — order-preserving ("memcomparable") index keys.
//
// Owns: turning the index columns of a BSATN row (or of a module's point/prefix/bound buffer) into a JS string whose
// plain `<` comparison equals SATS Ord (host-abi §3.4): every char is in 0..255 and one char stands for one byte.
//   - unsigned ints: big-endian bytes; signed ints: big-endian with the sign bit flipped;
//   - bool: one byte; floats: IEEE bits, negative ones inverted, positive ones with the sign bit set, -0 as +0, every
//     NaN as all-ones (above +inf), matching decorum's Total order;
//   - strings and Array<U8>: bytes with 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x01 (so prefixes sort first);
//   - sums: tag byte then payload (so some < none); products: fields concatenated;
//   - other arrays: 0x01 before each element, 0x00 at the end.
// Numeric keys: an index on one column of type u8/i8/u16/i16/u32/i32 uses the JS number itself as its key (unless
// `compileIndexKey`'s `allowNumeric` is false): numbers compare with `<` too, and an index reads them from a row
// without building a string (the keynote hot path: find and update by a u32 primary key).
// Every encoding is self-delimiting, so a key is never a proper prefix of another key of the same index, and all keys
// starting with a string P are < P + '\u0100' (`keyPrefixEnd`). Range scans rely on this.
// Bytes handed to the encoders must already be valid BSATN (callers validate with the sats codecs first).
// May call: sats/types, sats/codec (resolveType).

import assert from 'node:assert';
import { resolveType } from '../sats/codec.js';
import type { AlgebraicType, Typespace } from '../sats/types.js';

/** A read position shared by the compiled encoders of one call (avoids returning tuples on the hot path). */
export interface Cursor { pos: number }

/** Encodes one value at `c.pos`, advancing `c.pos` past it. */
export type KeyEncoder = (b: Uint8Array, c: Cursor) => string;
/** Advances `c.pos` past one value. */
export type Skipper = (b: Uint8Array, c: Cursor) => void;

/** Appended to a key prefix, gives a string above every key that starts with that prefix. */
export const keyPrefixEnd = '\u0100';

const byteChar: string[] = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

/** Byte width of a fixed-size type, or undefined when its encoding length varies. */
export function fixedWidth(type: AlgebraicType, ts: Typespace): number | undefined {
  const t = resolveType(type, ts);
  switch (t.tag) {
    case 'Bool': case 'I8': case 'U8': return 1;
    case 'I16': case 'U16': return 2;
    case 'I32': case 'U32': case 'F32': return 4;
    case 'I64': case 'U64': case 'F64': return 8;
    case 'I128': case 'U128': return 16;
    case 'I256': case 'U256': return 32;
    case 'String': case 'Array': return undefined;
    case 'Product': {
      let sum = 0;
      for (const e of t.value.elements) {
        const w = fixedWidth(e.algebraicType, ts);
        if (w === undefined) return undefined;
        sum += w;
      }
      return sum;
    }
    case 'Sum': {
      // A sum is fixed-width only when every payload has the same fixed width (e.g. simple enums: width 1).
      let width: number | undefined;
      for (const v of t.value.variants) {
        const w = fixedWidth(v.algebraicType, ts);
        if (w === undefined || (width !== undefined && w !== width)) return undefined;
        width = w;
      }
      return 1 + (width ?? 0);
    }
    default: return undefined;
  }
}

/** Compiles a skipper for valid BSATN of `type`. */
export function compileSkipper(type: AlgebraicType, ts: Typespace): Skipper {
  const w = fixedWidth(type, ts);
  if (w !== undefined) return (_b, c) => { c.pos += w; };
  const t = resolveType(type, ts);
  switch (t.tag) {
    case 'String': return skipLengthPrefixed;
    case 'Array': {
      const ew = fixedWidth(t.value, ts);
      if (ew !== undefined) return (b, c) => { c.pos += 4 + readU32(b, c.pos) * ew; };
      let elem: Skipper | undefined;
      return (b, c) => {
        elem ??= compileSkipper(t.value, ts); // lazy: element types may be recursive
        const n = readU32(b, c.pos);
        c.pos += 4;
        for (let i = 0; i < n; i++) elem(b, c);
      };
    }
    case 'Product': {
      const fields = t.value.elements.map((e) => lazySkipper(e.algebraicType, ts));
      return (b, c) => { for (const f of fields) f(b, c); };
    }
    case 'Sum': {
      const variants = t.value.variants.map((v) => lazySkipper(v.algebraicType, ts));
      return (b, c) => { const tag = b[c.pos++]; variants[tag](b, c); };
    }
    default: assert.fail(`no skipper for type ${t.tag}`);
  }
}

function lazySkipper(type: AlgebraicType, ts: Typespace): Skipper {
  let s: Skipper | undefined;
  return (b, c) => { (s ??= compileSkipper(type, ts))(b, c); };
}

function lazyEncoder(type: AlgebraicType, ts: Typespace): KeyEncoder {
  let e: KeyEncoder | undefined;
  return (b, c) => (e ??= compileKeyEncoder(type, ts))(b, c);
}

const skipLengthPrefixed: Skipper = (b, c) => { c.pos += 4 + readU32(b, c.pos); };

function readU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/**
 * Char codes of one key being built, handed to String.fromCharCode at once: a key built a char at a time with `+=` is
 * a chain of cons strings past 12 chars, which a Map lookup first flattens (bench:shapes: an Identity key, 32 chars,
 * cost ~3 µs per lookup that way, ~0.9 µs flat). One array per length, so `apply` sees exactly the key's chars.
 */
const keyCharsByLength: number[][] = [];
function keyChars(n: number): number[] {
  return keyCharsByLength[n] ??= new Array<number>(n).fill(0);
}

/** Big-endian chars of `w` little-endian bytes, with `topXor` applied to the most significant byte. */
function bigEndian(b: Uint8Array, at: number, w: number, topXor: number): string {
  // 64-bit keys (u64/i64 ids, the common wide key) in one call, without the array.
  if (w === 8) {
    return String.fromCharCode(b[at + 7] ^ topXor, b[at + 6], b[at + 5], b[at + 4], b[at + 3], b[at + 2], b[at + 1], b[at]);
  }
  const chars = keyChars(w);
  chars[0] = b[at + w - 1] ^ topXor;
  for (let i = 1; i < w; i++) chars[i] = b[at + w - 1 - i];
  return String.fromCharCode.apply(null, chars);
}

/** Strings and byte arrays up to this long are built flat through keyChars; longer ones a chunk at a time. */
const bytesKeyFlatMaxChars = 256;

/** Whether `k` is bigEndian(b, at, w, topXor), without building it. */
function isBigEndian(k: string, b: Uint8Array, at: number, w: number, topXor: number): boolean {
  if (k.length !== w || k.charCodeAt(0) !== (b[at + w - 1] ^ topXor)) return false;
  for (let i = 1; i < w; i++) if (k.charCodeAt(i) !== b[at + w - 1 - i]) return false;
  return true;
}

const fnvBasis = 0x811c9dc5, fnvPrime = 0x01000193;

/** Hash of an index key: the number itself, or FNV-1a over the chars of a string key. */
export function hashIndexKey(key: IndexKey): number {
  if (typeof key === 'number') return key | 0;
  let h = fnvBasis;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), fnvPrime);
  return h;
}

/** hashIndexKey(bigEndian(b, at, w, topXor)), without building the key. */
function hashBigEndian(b: Uint8Array, at: number, w: number, topXor: number): number {
  let h = Math.imul(fnvBasis ^ (b[at + w - 1] ^ topXor), fnvPrime);
  for (let i = w - 2; i >= 0; i--) h = Math.imul(h ^ b[at + i], fnvPrime);
  return h;
}

/** Escaped bytes plus terminator (see header). */
const encodeBytes: KeyEncoder = (b, c) => {
  const n = readU32(b, c.pos);
  const start = c.pos + 4;
  const end = start + n;
  c.pos = end;
  let zeros = 0;
  for (let i = start; i < end; i++) if (b[i] === 0) zeros++;
  const length = n + zeros + 2;
  if (length > bytesKeyFlatMaxChars) return encodeLongBytes(b, start, end);
  const chars = keyChars(length);
  let j = 0;
  for (let i = start; i < end; i++) {
    const x = b[i];
    chars[j++] = x;
    if (x === 0) chars[j++] = 0xff;
  }
  chars[j] = 0; chars[j + 1] = 1;
  return String.fromCharCode.apply(null, chars);
};

/** encodeBytes of a long value: flat chunks of bytesKeyFlatMaxChars chars, joined. */
function encodeLongBytes(b: Uint8Array, start: number, end: number): string {
  const parts: string[] = [];
  const chars: number[] = [];
  for (let i = start; i < end; i++) {
    const x = b[i];
    chars.push(x);
    if (x === 0) chars.push(0xff);
    if (chars.length >= bytesKeyFlatMaxChars) { parts.push(String.fromCharCode.apply(null, chars)); chars.length = 0; }
  }
  chars.push(0, 1);
  parts.push(String.fromCharCode.apply(null, chars));
  return parts.join('');
}

function floatEncoder(w: 4 | 8): KeyEncoder {
  return (b, c) => {
    const at = c.pos;
    c.pos = at + w;
    const top = b[at + w - 1];
    const expTop = top & 0x7f;
    // NaN: exponent all ones and a non-zero mantissa.
    if (w === 8) {
      const exp = (expTop << 4) | (b[at + 6] >> 4);
      if (exp === 0x7ff && ((b[at + 6] & 0x0f) | b[at + 5] | b[at + 4] | b[at + 3] | b[at + 2] | b[at + 1] | b[at]) !== 0) {
        return '\xff\xff\xff\xff\xff\xff\xff\xff';
      }
    } else {
      const exp = (expTop << 1) | (b[at + 2] >> 7);
      if (exp === 0xff && ((b[at + 2] & 0x7f) | b[at + 1] | b[at]) !== 0) return '\xff\xff\xff\xff';
    }
    let allZero = expTop === 0;
    for (let i = 0; i < w - 1 && allZero; i++) allZero = b[at + i] === 0;
    if (allZero) return w === 8 ? '\x80\x00\x00\x00\x00\x00\x00\x00' : '\x80\x00\x00\x00'; // ±0 → +0
    if ((top & 0x80) === 0) return bigEndian(b, at, w, 0x80);
    let s = '';
    for (let i = w - 1; i >= 0; i--) s += byteChar[b[at + i] ^ 0xff];
    return s;
  };
}

/** Compiles the key encoder of one value of `type`. */
export function compileKeyEncoder(type: AlgebraicType, ts: Typespace): KeyEncoder {
  const t = resolveType(type, ts);
  switch (t.tag) {
    case 'Bool': case 'U8': return (b, c) => byteChar[b[c.pos++]];
    case 'I8': return (b, c) => byteChar[b[c.pos++] ^ 0x80];
    case 'U16': return (b, c) => { const at = c.pos; c.pos = at + 2; return String.fromCharCode(b[at + 1], b[at]); };
    case 'I16': return (b, c) => { const at = c.pos; c.pos = at + 2; return String.fromCharCode(b[at + 1] ^ 0x80, b[at]); };
    case 'U32': return (b, c) => {
      const at = c.pos; c.pos = at + 4;
      return String.fromCharCode(b[at + 3], b[at + 2], b[at + 1], b[at]);
    };
    case 'I32': return (b, c) => {
      const at = c.pos; c.pos = at + 4;
      return String.fromCharCode(b[at + 3] ^ 0x80, b[at + 2], b[at + 1], b[at]);
    };
    case 'U64': case 'U128': case 'U256': case 'I64': case 'I128': case 'I256': {
      const w = t.tag.endsWith('64') ? 8 : t.tag.endsWith('128') ? 16 : 32;
      const topXor = t.tag[0] === 'I' ? 0x80 : 0;
      return (b, c) => { const at = c.pos; c.pos = at + w; return bigEndian(b, at, w, topXor); };
    }
    case 'F32': return floatEncoder(4);
    case 'F64': return floatEncoder(8);
    case 'String': return encodeBytes;
    case 'Array': {
      const et = resolveType(t.value, ts);
      if (et.tag === 'U8') return encodeBytes;
      const elem = lazyEncoder(t.value, ts);
      return (b, c) => {
        const n = readU32(b, c.pos);
        c.pos += 4;
        let s = '';
        for (let i = 0; i < n; i++) s += '\x01' + elem(b, c);
        return s + '\x00';
      };
    }
    case 'Product': {
      const fields = t.value.elements.map((e) => lazyEncoder(e.algebraicType, ts));
      if (fields.length === 1) return fields[0];
      return (b, c) => {
        let s = '';
        for (let i = 0; i < fields.length; i++) s += fields[i](b, c);
        return s;
      };
    }
    case 'Sum': {
      const variants = t.value.variants.map((v) => lazyEncoder(v.algebraicType, ts));
      return (b, c) => { const tag = b[c.pos++]; return byteChar[tag] + variants[tag](b, c); };
    }
    default: assert.fail(`no key encoder for type ${t.tag}`);
  }
}

/** An index key: a string (see header), or a number for numeric single-column keys. One index uses one kind. */
export type IndexKey = string | number;

/** Key functions of one index over rows of a given product type. */
export interface IndexKeyCodec {
  /** True when keys are numbers (single small-integer column); otherwise strings. */
  readonly numeric: boolean;
  /** Key of a valid BSATN row. */
  ofRow(row: Uint8Array): IndexKey;
  /** Key of the valid BSATN row that starts at `start` of `bytes` (a row in a row-store page, without a view). */
  ofRowAt(bytes: Uint8Array, start: number): IndexKey;
  /**
   * ofRowAt(bytes, start) === k and hashIndexKey(ofRowAt(bytes, start)), without building the key where the codec
   * can read it in place (integer columns): what an index that reads its keys from the rows probes with.
   */
  equalsAt(bytes: Uint8Array, start: number, k: IndexKey): boolean;
  hashAt(bytes: Uint8Array, start: number): number;
  /** Key of `count` consecutive index columns (starting with the first) encoded at `c.pos`; advances `c.pos`. */
  ofColumns(bytes: Uint8Array, c: Cursor, count: number): IndexKey;
  /** Key part of index column `i` alone, encoded at `c.pos`; advances `c.pos`. */
  ofColumn(i: number, bytes: Uint8Array, c: Cursor): IndexKey;
  /** The smallest key above every key that starts with `k` (string keys) or equals `k` (numeric keys). */
  after(k: IndexKey): IndexKey;
  /** Below / above every key. */
  readonly lowest: IndexKey;
  readonly highest: IndexKey;
}

const numericReaders: Record<string, (b: Uint8Array, at: number) => number> = {
  U8: (b, at) => b[at],
  I8: (b, at) => (b[at] << 24) >> 24,
  U16: (b, at) => b[at] | (b[at + 1] << 8),
  I16: (b, at) => ((b[at] | (b[at + 1] << 8)) << 16) >> 16,
  U32: (b, at) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0,
  I32: (b, at) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24),
};
const numericWidths: Record<string, number> = { U8: 1, I8: 1, U16: 2, I16: 2, U32: 4, I32: 4 };

function compileNumericKey(type: AlgebraicType, offset: number | undefined, column: number, columnTypes: AlgebraicType[],
  ts: Typespace): IndexKeyCodec | undefined {
  const tag = resolveType(type, ts).tag;
  const read = numericReaders[tag];
  if (read === undefined) return undefined;
  const w = numericWidths[tag];
  let ofRowAt: (bytes: Uint8Array, start: number) => number;
  if (offset !== undefined) {
    ofRowAt = (bytes, start) => read(bytes, start + offset);
  } else {
    const locate = compileColumnLocator(columnTypes, ts);
    const starts = new Array<number>(columnTypes.length);
    ofRowAt = (bytes, start) => { locate(bytes, starts, start); return read(bytes, starts[column]); };
  }
  const ofColumn = (bytes: Uint8Array, c: Cursor) => { const at = c.pos; c.pos = at + w; return read(bytes, at); };
  return {
    numeric: true,
    ofRow: (row) => ofRowAt(row, 0),
    ofRowAt,
    equalsAt: (bytes, start, k) => ofRowAt(bytes, start) === k,
    hashAt: (bytes, start) => ofRowAt(bytes, start) | 0,
    ofColumns: (bytes, c, count) => { assert(count === 1); return ofColumn(bytes, c); },
    ofColumn: (i, bytes, c) => { assert(i === 0); return ofColumn(bytes, c); },
    after: (k) => (k as number) + 1,
    lowest: -Infinity,
    highest: Infinity,
  };
}

const stringKeyBounds = {
  numeric: false,
  after: (k: IndexKey) => (k as string) + keyPrefixEnd,
  lowest: '',
  highest: keyPrefixEnd,
} as const;

/**
 * Compiles the key functions of an index on `columns` (positions, in key order) of rows of type `columnTypes`.
 * When every column before an index column has a fixed width, that column is read at a constant offset.
 */
export function compileIndexKey(
  columnTypes: AlgebraicType[], columns: number[], ts: Typespace, allowNumeric = true,
): IndexKeyCodec {
  assert(columns.length > 0, 'an index needs at least one column');
  const offsets = staticOffsets(columnTypes, ts);
  if (allowNumeric && columns.length === 1) {
    const numeric = compileNumericKey(columnTypes[columns[0]], offsets[columns[0]], columns[0], columnTypes, ts);
    if (numeric !== undefined) return numeric;
  }
  const encoders = columns.map((col) => compileKeyEncoder(columnTypes[col], ts));
  const cursor: Cursor = { pos: 0 };

  let ofRowAt: (bytes: Uint8Array, start: number) => string;
  if (columns.every((col) => offsets[col] !== undefined)) {
    const at = columns.map((col) => offsets[col] as number);
    if (columns.length === 1) {
      const enc = encoders[0], off = at[0];
      ofRowAt = (bytes, start) => { cursor.pos = start + off; return enc(bytes, cursor); };
    } else {
      ofRowAt = (bytes, start) => {
        let s = '';
        for (let i = 0; i < encoders.length; i++) { cursor.pos = start + at[i]; s += encoders[i](bytes, cursor); }
        return s;
      };
    }
  } else {
    const locate = compileColumnLocator(columnTypes, ts);
    const starts = new Array<number>(columnTypes.length);
    ofRowAt = (row, start) => {
      locate(row, starts, start);
      let s = '';
      for (let i = 0; i < encoders.length; i++) { cursor.pos = starts[columns[i]]; s += encoders[i](row, cursor); }
      return s;
    };
  }
  const inPlace = columns.length === 1
    ? integerInPlace(columnTypes, columns[0], offsets[columns[0]], ts) ?? bytesInPlace(columnTypes, columns[0], offsets[columns[0]], ts)
    : undefined;
  return {
    ...stringKeyBounds,
    ofRow: (row) => ofRowAt(row, 0),
    ofRowAt,
    equalsAt: inPlace?.equalsAt ?? ((bytes, start, k) => ofRowAt(bytes, start) === k),
    hashAt: inPlace?.hashAt ?? ((bytes, start) => hashIndexKey(ofRowAt(bytes, start))),
    ofColumns(bytes, c, count) {
      let s = '';
      for (let i = 0; i < count; i++) s += encoders[i](bytes, c);
      return s;
    },
    ofColumn: (i, bytes, c) => encoders[i](bytes, c),
  };
}

const integerTags = new Set(['I8', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'I128', 'U128', 'I256', 'U256']);

/**
 * The integer type tag of a column that holds an integer, or a product of one such field (Identity, ConnectionId):
 * equal values have equal bytes, and its key is that integer's (a one-field product encodes as its field). Else
 * undefined.
 */
export function integerColumnTag(type: AlgebraicType, ts: Typespace): string | undefined {
  const t = resolveType(type, ts);
  if (integerTags.has(t.tag)) return t.tag;
  if (t.tag === 'Product' && t.value.elements.length === 1) return integerColumnTag(t.value.elements[0].algebraicType, ts);
  return undefined;
}

/** Where column `column` starts in the valid row at `start` of `bytes`: its static offset, or found by a locator. */
function columnStart(columnTypes: AlgebraicType[], column: number, offset: number | undefined, ts: Typespace):
  (bytes: Uint8Array, start: number) => number {
  if (offset !== undefined) return (_bytes, start) => start + offset;
  const locate = compileColumnLocator(columnTypes, ts);
  const starts = new Array<number>(columnTypes.length);
  return (bytes, start) => { locate(bytes, starts, start); return starts[column]; };
}

/** equalsAt / hashAt of a key on one integer column (string-encoded: 64 bits and wider), read in place. */
function integerInPlace(columnTypes: AlgebraicType[], column: number, offset: number | undefined, ts: Typespace):
  Pick<IndexKeyCodec, 'equalsAt' | 'hashAt'> | undefined {
  const m = /^([IU])(64|128|256)$/.exec(integerColumnTag(columnTypes[column], ts) ?? '');
  if (m === null) return undefined;
  const w = Number(m[2]) / 8, topXor = m[1] === 'I' ? 0x80 : 0;
  const at = columnStart(columnTypes, column, offset, ts);
  return {
    equalsAt: (bytes, start, k) => isBigEndian(k as string, bytes, at(bytes, start), w, topXor),
    hashAt: (bytes, start) => hashBigEndian(bytes, at(bytes, start), w, topXor),
  };
}

/**
 * equalsAt / hashAt of a key on one string or byte-array column, read in place: the escaped bytes and terminator of
 * encodeBytes walked over the row without building the key (a unique string key reads its rows this way on every
 * probe, indexes.ts).
 */
function bytesInPlace(columnTypes: AlgebraicType[], column: number, offset: number | undefined, ts: Typespace):
  Pick<IndexKeyCodec, 'equalsAt' | 'hashAt'> | undefined {
  const t = resolveType(columnTypes[column], ts);
  if (t.tag !== 'String' && !(t.tag === 'Array' && resolveType(t.value, ts).tag === 'U8')) return undefined;
  const at = columnStart(columnTypes, column, offset, ts);
  return {
    equalsAt: (bytes, start, k) => {
      const key = k as string, from = at(bytes, start), end = from + 4 + readU32(bytes, from);
      let j = 0;
      for (let i = from + 4; i < end; i++) {
        const x = bytes[i];
        if (key.charCodeAt(j++) !== x) return false;
        if (x === 0 && key.charCodeAt(j++) !== 0xff) return false;
      }
      return key.length === j + 2 && key.charCodeAt(j) === 0 && key.charCodeAt(j + 1) === 1;
    },
    hashAt: (bytes, start) => {
      const from = at(bytes, start), end = from + 4 + readU32(bytes, from);
      let h = fnvBasis;
      for (let i = from + 4; i < end; i++) {
        const x = bytes[i];
        h = Math.imul(h ^ x, fnvPrime);
        if (x === 0) h = Math.imul(h ^ 0xff, fnvPrime);
      }
      h = Math.imul(h ^ 0, fnvPrime);
      return Math.imul(h ^ 1, fnvPrime);
    },
  };
}

/** Offset of each column in every row, when all columns before it have fixed widths; undefined after that. */
export function staticOffsets(columnTypes: AlgebraicType[], ts: Typespace): (number | undefined)[] {
  const out: (number | undefined)[] = [];
  let at: number | undefined = 0;
  for (const t of columnTypes) {
    out.push(at);
    const w = fixedWidth(t, ts);
    at = at === undefined || w === undefined ? undefined : at + w;
  }
  return out;
}

/**
 * Compiles a function that writes the offset in `bytes` of every column of the valid row starting at `start` (0 by
 * default) into `starts`.
 */
export function compileColumnLocator(
  columnTypes: AlgebraicType[], ts: Typespace,
): (bytes: Uint8Array, starts: number[], start?: number) => void {
  const skippers = columnTypes.map((t) => compileSkipper(t, ts));
  const c: Cursor = { pos: 0 };
  return (row, starts, start = 0) => {
    c.pos = start;
    for (let i = 0; i < skippers.length; i++) { starts[i] = c.pos; skippers[i](row, c); }
  };
}
