// sats/json.ts — SATS-JSON: typed values ⇄ JSON the way upstream's serde bridge writes and reads them.
//
// Owns: valueToJson / valueToUntypedJson / valueFromJson / typeToJson, and stringifyJson / parseJson, which keep
// integers wider than 2^53 exact (JSON.stringify/parse cannot).
// Output rules (upstream `crates/sats/src/ser/serde.rs` + serde_json): products with named fields → objects in field
// order; the empty product → []; sums → {"VariantName": payload}; u64/i64/u128/i128 → JSON numbers (here: `bigint`
// in the returned tree, printed as a bare number by stringifyJson); u256/i256 → "0x…" / "-0x…" strings (ethnum);
// Array<U8> → lowercase hex string without 0x; NaN/±Infinity → null (serde_json); f32 with its shortest digits.
// Untyped output (the /sql rows): products as arrays and sums as [tag, payload].
// Input rules (upstream `de/serde.rs`): products as objects (exactly the fields) or arrays; sums as {"Name": v},
// {"<tag>": v}, [tag|name, v]; an Option also as null (= none); bytes as hex or an array of numbers. Lenient extras,
// for hand-typed CLI input: a special one-field product (Identity, Timestamp, …) may be given as its bare inner value
// (an Identity or ConnectionId as its hex text: exactly 64 / 32 hex digits, as upstream's Identity::from_hex), u256/i256
// may be written without 0x or as a number. Arrays are bounded as in BSATN (codec.ts arrayCountCheck).
// May call: sats/types.ts, sats/codec.ts (resolveType, arrayCountCheck), sats/identity.ts.

import { arrayCountCheck, resolveType } from './codec.js';
import { toCamelCase, toSnakeCase } from './names.js';
import { connectionIdFromHex, identityFromHex } from './identity.js';
import {
  hasOptionVariants, SatsError, specialProductFieldNames, specialProductFieldNameSet, type AlgebraicType, type SumValue, type Typespace,
  type Value,
} from './types.js';

/** The bare form of these special products is their fixed-width hex text, never a shorter number. */
const bareHexParsers: ReadonlyMap<string, { parse: (hex: string) => bigint; what: string }> = new Map([
  [specialProductFieldNames.identity, { parse: identityFromHex, what: 'an identity as 64 hex characters' }],
  [specialProductFieldNames.connectionId, { parse: connectionIdFromHex, what: 'a connection id as 32 hex characters' }],
]);

const intRanges: Record<string, [bigint, bigint]> = {
  I8: [-(2n ** 7n), 2n ** 7n - 1n], U8: [0n, 2n ** 8n - 1n],
  I16: [-(2n ** 15n), 2n ** 15n - 1n], U16: [0n, 2n ** 16n - 1n],
  I32: [-(2n ** 31n), 2n ** 31n - 1n], U32: [0n, 2n ** 32n - 1n],
  I64: [-(2n ** 63n), 2n ** 63n - 1n], U64: [0n, 2n ** 64n - 1n],
  I128: [-(2n ** 127n), 2n ** 127n - 1n], U128: [0n, 2n ** 128n - 1n],
  I256: [-(2n ** 255n), 2n ** 255n - 1n], U256: [0n, 2n ** 256n - 1n],
};

// ---------------------------------------------------------------------------------------------------------------
// Value → JSON

export function valueToJson(type: AlgebraicType, value: Value, typespace: Typespace): unknown {
  return toJson(type, value, typespace, true);
}

/** Like valueToJson, but products as arrays and sums as [tag, payload] (upstream's untyped AlgebraicValue form). */
export function valueToUntypedJson(type: AlgebraicType, value: Value, typespace: Typespace): unknown {
  return toJson(type, value, typespace, false);
}

function toJson(type: AlgebraicType, value: Value, ts: Typespace, typed: boolean): unknown {
  const t = resolveType(type, ts);
  switch (t.tag) {
    case 'Bool': case 'String': case 'I8': case 'U8': case 'I16': case 'U16': case 'I32': case 'U32':
      return value;
    case 'I64': case 'U64': case 'I128': case 'U128':
      return value as bigint;
    case 'I256': case 'U256':
      return bigToHex(value as bigint);
    case 'F32': return floatToJson(value as number, true);
    case 'F64': return floatToJson(value as number, false);
    case 'Array': {
      if (resolveType(t.value, ts).tag === 'U8' && value instanceof Uint8Array) return bytesToHex(value);
      const elem = t.value;
      return (value as Value[]).map((v) => toJson(elem, v, ts, typed));
    }
    case 'Product': {
      const els = t.value.elements;
      const vals = value as Value[];
      if (els.length === 0) return [];
      if (!typed || els.some((e) => e.name === undefined)) {
        return els.map((e, i) => toJson(e.algebraicType, vals[i], ts, typed));
      }
      const out: Record<string, unknown> = {};
      for (let i = 0; i < els.length; i++) out[els[i].name!] = toJson(els[i].algebraicType, vals[i], ts, typed);
      return out;
    }
    case 'Sum': {
      const s = value as SumValue;
      const variant = t.value.variants[s.tag];
      const payload = toJson(variant.algebraicType, s.value, ts, typed);
      if (!typed || variant.name === undefined) return [s.tag, payload];
      return { [variant.name]: payload };
    }
    case 'Ref':
      throw new SatsError('unreachable: resolved type is a Ref');
  }
}

function bigToHex(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** serde_json writes non-finite floats as null; f32 uses the shortest digits that round-trip through f32. */
function floatToJson(v: number, f32: boolean): number | null {
  if (!Number.isFinite(v)) return null;
  if (!f32) return v;
  for (let p = 1; p <= 9; p++) {
    const short = Number(v.toPrecision(p));
    if (Math.fround(short) === v) return short;
  }
  return v;
}

/** AlgebraicType as SATS-JSON, e.g. {"Product":{"elements":[{"name":{"some":"x"},"algebraic_type":{"U32":[]}}]}}. */
export function typeToJson(type: AlgebraicType): unknown {
  switch (type.tag) {
    case 'Ref': return { Ref: type.value };
    case 'Array': return { Array: typeToJson(type.value) };
    case 'Product':
      return { Product: { elements: type.value.elements.map((e) => ({ name: optionToJson(e.name), algebraic_type: typeToJson(e.algebraicType) })) } };
    case 'Sum':
      return { Sum: { variants: type.value.variants.map((v) => ({ name: optionToJson(v.name), algebraic_type: typeToJson(v.algebraicType) })) } };
    default:
      return { [type.tag]: [] };
  }
}

function optionToJson(name: string | undefined): unknown {
  return name === undefined ? { none: [] } : { some: name };
}

// ---------------------------------------------------------------------------------------------------------------
// JSON → Value

export function valueFromJson(type: AlgebraicType, json: unknown, typespace: Typespace): Value {
  return fromJson(type, json, typespace, '');
}

function fail(path: string, expected: string, got: unknown): never {
  const where = path === '' ? '' : `${path}: `;
  throw new SatsError(`${where}expected ${expected}, got ${describeJson(got)}`);
}

function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function join(path: string, seg: string): string {
  return path === '' ? seg : seg.startsWith('[') ? path + seg : `${path}.${seg}`;
}

function fromJson(type: AlgebraicType, json: unknown, ts: Typespace, path: string): Value {
  const t = resolveType(type, ts);
  switch (t.tag) {
    case 'Bool':
      if (typeof json !== 'boolean') fail(path, 'a bool', json);
      return json;
    case 'String':
      if (typeof json !== 'string') fail(path, 'a string', json);
      return json;
    case 'I8': case 'U8': case 'I16': case 'U16': case 'I32': case 'U32':
      return Number(intFromJson(t.tag, json, path, false));
    case 'I64': case 'U64': case 'I128': case 'U128':
      return intFromJson(t.tag, json, path, false);
    case 'I256': case 'U256':
      return intFromJson(t.tag, json, path, true);
    case 'F32': case 'F64': {
      const n = typeof json === 'bigint' ? Number(json) : json;
      if (typeof n !== 'number') fail(path, `a number (${t.tag.toLowerCase()})`, json);
      return t.tag === 'F32' ? Math.fround(n) : n;
    }
    case 'Array': {
      const elem = t.value;
      if (resolveType(elem, ts).tag === 'U8') return bytesFromJson(json, path);
      if (!Array.isArray(json)) fail(path, 'an array', json);
      const countError = arrayCountCheck(elem, ts)(json.length, Number.POSITIVE_INFINITY);
      if (countError !== undefined) throw new SatsError(`${path === '' ? '' : path + ': '}${countError}`);
      return json.map((v, i) => fromJson(elem, v, ts, join(path, `[${i}]`)));
    }
    case 'Product': return productFromJson(t.value.elements, json, ts, path);
    case 'Sum': return sumFromJson(t.value.variants, json, ts, path);
    case 'Ref':
      throw new SatsError('unreachable: resolved type is a Ref');
  }
}

function intFromJson(tag: string, json: unknown, path: string, wide: boolean): bigint {
  const [min, max] = intRanges[tag];
  const what = `an integer ${tag.toLowerCase()}`;
  let v: bigint;
  if (typeof json === 'bigint') {
    v = json;
  } else if (typeof json === 'number') {
    if (!Number.isInteger(json)) fail(path, what, json);
    if (!Number.isSafeInteger(json)) {
      // JSON.parse already rounded it; refuse rather than store a different number.
      fail(path, `${what} (use parseJson for integers beyond 2^53)`, json);
    }
    v = BigInt(json);
  } else if (wide && typeof json === 'string') {
    const m = /^(-?)(?:0x)?([0-9a-fA-F]+)$/.exec(json);
    if (m === null) fail(path, `${what} as a "0x…" hex string`, json);
    v = BigInt(`0x${m[2]}`);
    if (m[1] === '-') v = -v;
  } else {
    fail(path, what, json);
  }
  if (v < min || v > max) fail(path, `${what} in range`, json);
  return v;
}

function bytesFromJson(json: unknown, path: string): Uint8Array {
  if (typeof json === 'string') {
    const hex = json.startsWith('0x') ? json.slice(2) : json;
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) fail(path, 'bytes as a hex string', json);
    return new Uint8Array(Buffer.from(hex, 'hex'));
  }
  if (Array.isArray(json)) {
    const out = new Uint8Array(json.length);
    for (let i = 0; i < json.length; i++) {
      const b = json[i];
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) fail(join(path, `[${i}]`), 'a byte', b);
      out[i] = b;
    }
    return out;
  }
  fail(path, 'bytes as a hex string or an array of numbers', json);
}

type Element = { name: string | undefined; algebraicType: AlgebraicType };

function productFromJson(els: Element[], json: unknown, ts: Typespace, path: string): Value[] {
  const n = els.length;
  if (Array.isArray(json)) {
    if (json.length !== n) fail(path, `a product of ${n} fields`, json);
    return els.map((e, i) => fromJson(e.algebraicType, json[i], ts, join(path, e.name ?? String(i))));
  }
  if (typeof json === 'object' && json !== null && !(json instanceof Uint8Array)) {
    // Fields are named as clients see them (snake_case under the default policy); a field written with the module's
    // source name (`fooBar` for `foo_bar`) is taken too, so clients of either convention work.
    const obj = fieldsByCanonicalName(json as Record<string, unknown>, els, path);
    const out: Value[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const name = els[i].name ?? String(i);
      if (!obj.has(name)) {
        throw new SatsError(`${path === '' ? '' : path + ': '}missing field \`${name}\``);
      }
      out[i] = fromJson(els[i].algebraicType, obj.get(name), ts, join(path, name));
    }
    return out;
  }
  // A special product (Identity, Timestamp, …) may be written as its bare inner value.
  if (n === 1 && els[0].name !== undefined && specialProductFieldNameSet.has(els[0].name)) {
    const hex = bareHexParsers.get(els[0].name);
    if (hex === undefined) return [fromJson(els[0].algebraicType, json, ts, join(path, els[0].name))];
    if (typeof json !== 'string') fail(path, hex.what, json);
    try {
      return [hex.parse(json)];
    } catch (err) {
      throw new SatsError(`${path === '' ? '' : path + ': '}${(err as Error).message}`);
    }
  }
  fail(path, n === 0 ? 'the unit value []' : 'a product (object or array)', json);
}

/** The object's fields keyed by element name: exact names first, then names whose snake_case is an element's. */
function fieldsByCanonicalName(obj: Record<string, unknown>, els: Element[], path: string): Map<string, unknown> {
  const known = els.map((e, i) => e.name ?? String(i));
  const out = new Map<string, unknown>();
  for (const key of Object.keys(obj)) {
    const name = known.includes(key) ? key : known.find((k) => k === toSnakeCase(key));
    if (name === undefined || out.has(name)) {
      const why = name === undefined ? 'unknown field' : 'field given twice:';
      throw new SatsError(`${path === '' ? '' : path + ': '}${why} \`${key}\`, expected one of ${known.map((k) => `\`${k}\``).join(', ')}`);
    }
    out.set(name, obj[key]);
  }
  return out;
}

function sumFromJson(variants: Element[], json: unknown, ts: Typespace, path: string): SumValue {
  if (json === null && hasOptionVariants(variants)) return { tag: 1, value: [] };
  let key: unknown;
  let payload: unknown;
  if (Array.isArray(json)) {
    if (json.length !== 2) fail(path, 'a sum as [tag, payload]', json);
    [key, payload] = json;
  } else if (typeof json === 'object' && json !== null) {
    const keys = Object.keys(json);
    if (keys.length !== 1) fail(path, `a sum as {"Variant": payload} (one of ${variantList(variants)})`, json);
    key = keys[0];
    payload = (json as Record<string, unknown>)[keys[0]];
  } else {
    fail(path, `a sum as {"Variant": payload} (one of ${variantList(variants)})`, json);
  }
  let tag = -1;
  if (typeof key === 'number' && Number.isInteger(key)) tag = key;
  else if (typeof key === 'string') {
    tag = /^\d+$/.test(key) ? Number(key) : variants.findIndex((v) => v.name === key);
    // A variant written with the module's source name (`MyVariant` for `myVariant`) is taken too.
    if (tag < 0 && !/^\d+$/.test(key)) tag = variants.findIndex((v) => v.name === toCamelCase(key));
  }
  if (tag < 0 || tag >= variants.length) fail(path, `a variant of ${variantList(variants)}`, key);
  const v = variants[tag];
  return { tag, value: fromJson(v.algebraicType, payload, ts, join(path, v.name ?? String(tag))) };
}

function variantList(variants: Element[]): string {
  return variants.map((v, i) => v.name ?? String(i)).join(' | ');
}

// ---------------------------------------------------------------------------------------------------------------
// Text

/** JSON.stringify that prints bigints as bare integer literals (as serde_json prints u64/u128). */
export function stringifyJson(json: unknown, indent?: number): string {
  const marker = '\u0000big:';
  const text = JSON.stringify(json, (_k, v) => (typeof v === 'bigint' ? marker + v.toString() : v), indent);
  if (text === undefined) return 'null';
  // JSON.stringify escapes the NUL of the marker, so look for its escaped form.
  return text.includes('\\u0000big:') ? text.replace(/"\\u0000big:(-?\d+)"/g, '$1') : text;
}

/** JSON.parse that keeps integers beyond 2^53 exact by returning them as bigints. */
export function parseJson(text: string): unknown {
  if (!/\d{16,}/.test(text)) return JSON.parse(text);
  // Quote long integer literals outside strings, then turn them back into bigints in the reviver.
  const marker = '\u0000big:';
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const start = i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      out += text.slice(start, ++i);
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
      const lit = m === null ? c : m[0];
      const isInt = m !== null && m[1] === undefined && m[2] === undefined;
      // Written escaped: a raw NUL is not allowed inside a JSON string; JSON.parse turns it back into the marker.
      out += isInt && !Number.isSafeInteger(Number(lit)) ? `"\\u0000big:${lit}"` : lit;
      i += lit.length;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out, (_k, v) => (typeof v === 'string' && v.startsWith(marker) ? BigInt(v.slice(marker.length)) : v));
}
