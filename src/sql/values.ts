// sql/values.ts — what SQL needs to know about column types: their kind, how a literal becomes a value of that
// type, and how two values of that type compare.
//
// Owns: classifyType, literalToValue, comparatorFor, formatType.
// May call: sats/types.ts, sats/codec.ts, sats/special.ts, sats/order.ts, sql/ast.ts, sql/errors.ts.
//
// Special types (Identity, ConnectionId, Timestamp, TimeDuration, Uuid) are recognised by sats/special.ts; their
// decoded Value is `[inner]`. Ordering and equality are SATS's (sats/order.ts).
// Literals are typed by the column they meet (upstream rule): `'5'`, `5` and `0x05` are all fine for a u8 column,
// `300` is not.

import { resolveType } from '../sats/codec.js';
import { compileComparator, type Comparator } from '../sats/order.js';
import { isSimpleEnum, optionInner, specialKind, type SpecialKind } from '../sats/special.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import type { Literal } from './ast.js';
import { SqlError, type SqlPosition } from './errors.js';

export type TypeKind =
  | { kind: 'bool' }
  | { kind: 'int'; tag: IntTag; min: bigint; max: bigint; wide: boolean }   // wide: Value is bigint
  | { kind: 'float'; f32: boolean }
  | { kind: 'string' }
  | { kind: 'bytes' }
  | { kind: 'special'; which: SpecialKind; innerBits: number; signed: boolean }
  | { kind: 'option'; inner: AlgebraicType; someTag: number; noneTag: number }
  | { kind: 'enum'; names: string[] }                                       // all-unit sum
  | { kind: 'other' };

type IntTag = 'I8' | 'U8' | 'I16' | 'U16' | 'I32' | 'U32' | 'I64' | 'U64' | 'I128' | 'U128' | 'I256' | 'U256';

const intBits: Record<IntTag, number> = {
  I8: 8, U8: 8, I16: 16, U16: 16, I32: 32, U32: 32, I64: 64, U64: 64, I128: 128, U128: 128, I256: 256, U256: 256,
};

function intKind(tag: IntTag): TypeKind {
  const bits = intBits[tag];
  const signed = tag.startsWith('I');
  const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
  const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
  return { kind: 'int', tag, min, max, wide: bits >= 64 };
}

const specialBits: Record<SpecialKind, { bits: number; signed: boolean }> = {
  identity: { bits: 256, signed: false },
  connectionId: { bits: 128, signed: false },
  timestamp: { bits: 64, signed: true },
  timeDuration: { bits: 64, signed: true },
  uuid: { bits: 128, signed: false },
};

export function classifyType(type: AlgebraicType, typespace: Typespace): TypeKind {
  const t = resolveType(type, typespace);
  switch (t.tag) {
    case 'Bool': return { kind: 'bool' };
    case 'String': return { kind: 'string' };
    case 'F32': return { kind: 'float', f32: true };
    case 'F64': return { kind: 'float', f32: false };
    case 'Array': return resolveType(t.value, typespace).tag === 'U8' ? { kind: 'bytes' } : { kind: 'other' };
    case 'Product': {
      const which = specialKind(t, typespace);
      if (which === undefined) return { kind: 'other' };
      return { kind: 'special', which, innerBits: specialBits[which].bits, signed: specialBits[which].signed };
    }
    case 'Sum': {
      const inner = optionInner(t, typespace);
      if (inner !== undefined) return { kind: 'option', inner, someTag: 0, noneTag: 1 };
      return isSimpleEnum(t, typespace) ? { kind: 'enum', names: t.value.variants.map((v) => v.name ?? '') } : { kind: 'other' };
    }
    case 'Ref': throw new Error('unreachable: resolved');
    default: return intKind(t.tag as IntTag);
  }
}

/** Human-readable type name for error messages (`U8`, `Identity`, `Option<String>`, `Array<U8>`). */
export function formatType(type: AlgebraicType, typespace: Typespace): string {
  const k = classifyType(type, typespace);
  switch (k.kind) {
    case 'special': return { identity: 'Identity', connectionId: 'ConnectionId', timestamp: 'Timestamp', timeDuration: 'TimeDuration', uuid: 'Uuid' }[k.which];
    case 'option': return `Option<${formatType(k.inner, typespace)}>`;
    case 'bytes': return 'Array<U8>';
    default: {
      const t = resolveType(type, typespace);
      if (t.tag === 'Array') return `Array<${formatType(t.value, typespace)}>`;
      if (t.tag === 'Product') return `(${t.value.elements.map((e) => `${e.name ?? '_'}: ${formatType(e.algebraicType, typespace)}`).join(', ')})`;
      if (t.tag === 'Sum') return `(${t.value.variants.map((v) => `${v.name ?? '_'}: ${formatType(v.algebraicType, typespace)}`).join(' | ')})`;
      return t.tag;
    }
  }
}

/** Text of a literal as the user wrote it, for error messages. */
export function literalText(lit: Literal): string {
  switch (lit.type) {
    case 'number': return lit.text;
    case 'string': return `'${lit.text.replace(/'/g, "''")}'`;
    case 'hex': return `0x${lit.text}`;
    case 'bool': return lit.value ? 'TRUE' : 'FALSE';
    case 'null': return 'NULL';
  }
}

/** What a literal is being converted for, so errors can name the column. */
export interface LiteralTarget {
  type: AlgebraicType;
  typespace: Typespace;
  column: string | undefined;
  pos: SqlPosition | undefined;
}

export function literalToValue(lit: Literal, target: LiteralTarget): Value {
  const k = classifyType(target.type, target.typespace);
  const v = convert(lit, k, target);
  if (v === undefined) {
    const col = target.column === undefined ? '' : ` for column \`${target.column}\``;
    throw new SqlError(
      'type',
      `The literal expression \`${literalText(lit)}\` cannot be parsed as type \`${formatType(target.type, target.typespace)}\`${col}`,
      target.pos,
    );
  }
  return v;
}

/** undefined = does not fit. */
function convert(lit: Literal, k: TypeKind, target: LiteralTarget): Value | undefined {
  if (lit.type === 'null') return k.kind === 'option' ? { tag: k.noneTag, value: [] } : undefined;
  switch (k.kind) {
    case 'bool':
      if (lit.type === 'bool') return lit.value;
      if (lit.type === 'string' && /^(true|false)$/i.test(lit.text)) return lit.text.toLowerCase() === 'true';
      return undefined;
    case 'int': {
      const n = literalInteger(lit);
      if (n === undefined || n < k.min || n > k.max) return undefined;
      return k.wide ? n : Number(n);
    }
    case 'float': {
      if (lit.type !== 'number' && lit.type !== 'string') return undefined;
      const text = lit.text.trim();
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
      const f = k.f32 ? Math.fround(Number(text)) : Number(text);
      return Number.isFinite(f) ? f : undefined;
    }
    case 'string':
      if (lit.type === 'string' || lit.type === 'number') return lit.text;
      return undefined;
    case 'bytes': {
      const hex = hexDigits(lit);
      if (hex === undefined || hex.length % 2 !== 0) return undefined;
      return Buffer.from(hex, 'hex');
    }
    case 'special': return convertSpecial(lit, k);
    case 'option': {
      const inner = convert(lit, classifyType(k.inner, target.typespace), target);
      return inner === undefined ? undefined : { tag: k.someTag, value: inner };
    }
    case 'enum': {
      if (lit.type !== 'string') return undefined;
      const tag = k.names.indexOf(lit.text);
      return tag < 0 ? undefined : { tag, value: [] };
    }
    case 'other': return undefined;
  }
}

function convertSpecial(lit: Literal, k: Extract<TypeKind, { kind: 'special' }>): Value | undefined {
  switch (k.which) {
    case 'identity':
    case 'connectionId': {
      const hex = hexDigits(lit);
      if (hex === undefined || hex.length === 0 || hex.length > k.innerBits / 4) return undefined;
      return [BigInt(`0x${hex}`)];
    }
    case 'uuid': {
      let hex = hexDigits(lit);
      if (hex === undefined && lit.type === 'string' && /^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/.test(lit.text)) {
        hex = lit.text.replace(/-/g, '');
      }
      if (hex === undefined || hex.length === 0 || hex.length > 32) return undefined;
      return [BigInt(`0x${hex}`)];
    }
    case 'timestamp': {
      if (lit.type === 'string') {
        const micros = parseIsoTimestampMicros(lit.text);
        return micros === undefined ? undefined : [micros];
      }
      const n = literalInteger(lit);
      return n === undefined || BigInt.asIntN(64, n) !== n ? undefined : [n];
    }
    case 'timeDuration': {
      const n = literalInteger(lit);
      return n === undefined || BigInt.asIntN(64, n) !== n ? undefined : [n];
    }
  }
}

/** Hex digits of a hex literal, or of a string holding hex (optionally `0x`-prefixed). */
function hexDigits(lit: Literal): string | undefined {
  if (lit.type === 'hex') return lit.text;
  if (lit.type === 'string') {
    const m = /^(?:0x)?([0-9a-fA-F]*)$/.exec(lit.text);
    return m ? m[1] : undefined;
  }
  return undefined;
}

/** Exact integer value of a literal (decimal, `1e3`, `5.0`, hex), or undefined when not an integer. */
function literalInteger(lit: Literal): bigint | undefined {
  if (lit.type === 'hex') return lit.text.length === 0 ? undefined : BigInt(`0x${lit.text}`);
  if (lit.type !== 'number' && lit.type !== 'string') return undefined;
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(lit.text.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const [, sign, intPart, fracPart = '', expText] = m;
  const exp = expText === undefined ? 0 : Number(expText);
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 400) return undefined;
  // mantissa * 10^(exp - fracLen) must be an integer.
  let digits = (intPart! + fracPart).replace(/^0+(?=\d)/, '');
  let scale = exp - fracPart.length;
  if (scale < 0) {
    const cut = digits.length + scale;
    const dropped = cut <= 0 ? digits : digits.slice(cut);
    if (/[1-9]/.test(dropped)) return undefined;
    digits = cut <= 0 ? '0' : digits.slice(0, cut);
    scale = 0;
  }
  const n = BigInt(digits === '' ? '0' : digits) * 10n ** BigInt(scale);
  return sign === '-' ? -n : n;
}

const isoRe = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** RFC 3339 / ISO 8601 → µs since the Unix epoch (sub-µs digits truncated). Undefined when invalid. */
export function parseIsoTimestampMicros(text: string): bigint | undefined {
  const m = isoRe.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (!Number.isFinite(ms)) return undefined;
  const check = new Date(ms);
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1) return undefined;
  let offsetMin = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const zm = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    offsetMin = (Number(zm[2]) * 60 + Number(zm[3] ?? '0')) * (zm[1] === '-' ? -1 : 1);
  }
  const micros = BigInt(ms - offsetMin * 60_000) * 1000n + BigInt((frac + '000000').slice(0, 6));
  return micros;
}

// ---- comparison ----------------------------------------------------------------------------------------------

/**
 * The SATS order for the kinds `<`, `<=`, … accept (upstream's list: bool, numbers, strings, bytes and the special
 * types), or undefined for kinds that only support `=` / `<>`.
 */
export function comparatorFor(type: AlgebraicType, typespace: Typespace): Comparator | undefined {
  const k = classifyType(type, typespace).kind;
  const orderable = k === 'bool' || k === 'int' || k === 'float' || k === 'string' || k === 'bytes' || k === 'special';
  return orderable ? compileComparator(type, typespace) : undefined;
}

/** Equality for any type (SATS order: -0 = +0, NaN = NaN). */
export function equalityFor(type: AlgebraicType, typespace: Typespace): (a: Value, b: Value) => boolean {
  const cmp = compileComparator(type, typespace);
  return (a, b) => cmp(a, b) === 0;
}

/** Structural type equality (after resolving top-level Refs), for column-to-column comparisons. */
export function sameType(a: AlgebraicType, b: AlgebraicType, typespace: Typespace): boolean {
  const x = resolveType(a, typespace);
  const y = resolveType(b, typespace);
  if (x.tag !== y.tag) return false;
  switch (x.tag) {
    case 'Array': return sameType(x.value, (y as typeof x).value, typespace);
    case 'Product': {
      const ye = (y as typeof x).value.elements;
      return x.value.elements.length === ye.length &&
        x.value.elements.every((e, i) => e.name === ye[i]!.name && sameType(e.algebraicType, ye[i]!.algebraicType, typespace));
    }
    case 'Sum': {
      const yv = (y as typeof x).value.variants;
      return x.value.variants.length === yv.length &&
        x.value.variants.every((v, i) => v.name === yv[i]!.name && sameType(v.algebraicType, yv[i]!.algebraicType, typespace));
    }
    default: return true;
  }
}
