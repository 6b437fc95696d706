// psql-style rendering of `/sql` results, as `spacetime sql` prints them (cli-and-publish.md §1 sql; smoketest
// sql::test_sql_format). Input is the server JSON: a ProductType schema in SATS-JSON and untyped rows (products as
// arrays, sums as [tag, payload], byte arrays as hex strings). Owns value-to-cell text and table layout.
// May call: cli/json (types), sats/text. Pure.
import { rfc3339Text, rustFloatText, shortestF32Text, uuidHexText } from '../sats/text.js';
import type { LosslessJson } from './json.js';

type TypeJson = { [key: string]: LosslessJson };
interface Element {
  name: string | undefined;
  type: TypeJson;
}

const specialTags = {
  identity: '__identity__',
  connectionId: '__connection_id__',
  timestamp: '__timestamp_micros_since_unix_epoch__',
  duration: '__time_duration_micros__',
  uuid: '__uuid__',
} as const;
type Special = keyof typeof specialTags | undefined;

const integerBits: Record<string, { bits: number; signed: boolean }> = {
  I8: { bits: 8, signed: true }, U8: { bits: 8, signed: false },
  I16: { bits: 16, signed: true }, U16: { bits: 16, signed: false },
  I32: { bits: 32, signed: true }, U32: { bits: 32, signed: false },
  I64: { bits: 64, signed: true }, U64: { bits: 64, signed: false },
  I128: { bits: 128, signed: true }, U128: { bits: 128, signed: false },
  I256: { bits: 256, signed: true }, U256: { bits: 256, signed: false },
};

export class SqlFormatError extends Error {}

function typeTag(type: TypeJson): string {
  const keys = Object.keys(type);
  if (keys.length !== 1) throw new SqlFormatError(`not an algebraic type: ${JSON.stringify(type)}`);
  return keys[0];
}

function optionName(name: LosslessJson): string | undefined {
  if (typeof name === 'string') return name;
  if (name !== null && typeof name === 'object' && !Array.isArray(name) && typeof name.some === 'string') {
    return name.some;
  }
  return undefined;
}

function elementsOf(list: LosslessJson): Element[] {
  if (!Array.isArray(list)) throw new SqlFormatError('product or sum without an element list');
  return list.map((e) => {
    const obj = e as { [key: string]: LosslessJson };
    return { name: optionName(obj.name), type: obj.algebraic_type as TypeJson };
  });
}

function productElements(type: TypeJson): Element[] {
  const inner = type.Product as { [key: string]: LosslessJson };
  return elementsOf(inner.elements);
}

function specialOf(type: TypeJson): Special {
  if (typeTag(type) !== 'Product') return undefined;
  const elements = productElements(type);
  if (elements.length !== 1) return undefined;
  for (const [kind, tag] of Object.entries(specialTags)) {
    if (elements[0].name === tag) return kind as Special;
  }
  return undefined;
}

function toBigInt(value: LosslessJson, tag: string): bigint {
  const shape = integerBits[tag];
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number') big = BigInt(value);
  else if (typeof value === 'string') big = parseIntegerText(value, tag);
  else throw new SqlFormatError(`expected an integer for ${tag}, got ${JSON.stringify(value)}`);
  // Unsigned hex strings ("0x…") carry the two's-complement bit pattern of signed values; "-0x…" is already signed.
  if (shape.signed && typeof value === 'string' && value.startsWith('0x') && big >= 1n << BigInt(shape.bits - 1)) {
    big -= 1n << BigInt(shape.bits);
  }
  return big;
}

/** Decimal or hex integer text with an optional sign (`BigInt` itself refuses "-0x…", the server's negative i256). */
function parseIntegerText(text: string, tag: string): bigint {
  const m = /^([+-]?)(0x[0-9a-fA-F]+|[0-9]+)$/.exec(text.trim());
  if (m === null) throw new SqlFormatError(`expected an integer for ${tag}, got ${JSON.stringify(text)}`);
  const magnitude = BigInt(m[2]);
  return m[1] === '-' ? -magnitude : magnitude;
}

function hexFixed(value: bigint, bytes: number): string {
  return '0x' + value.toString(16).padStart(bytes * 2, '0');
}

const powersOfTen = Array.from({ length: 309 }, (_, i) => Number(`1e${i}`));
const u64Max = (1n << 64n) - 1n;

/**
 * The float upstream's CLI prints for `value`: the server writes its shortest digits, and upstream's CLI reads them with
 * serde_json's default (not correctly rounded) parser — significand as an integer, then one multiply or divide by a
 * power of ten — so some doubles print one unit in the last place off (sql::test_sql_format's f64 column:
 * -3454353.3453890434 is printed -3454353.345389043). Printing the same keeps `spacetime sql` tables byte-compatible.
 */
function asUpstreamCliReads(value: number, isF32: boolean): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const text = isF32 ? shortestF32Text(value) : String(value);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(text);
  if (m === null) return value;
  let significand = 0n;
  let exponent = Number(m[4] ?? 0);
  let overflowed = false;
  for (const digit of m[2]) {
    const next = significand * 10n + BigInt(digit);
    if (overflowed || next > u64Max) [overflowed, exponent] = [true, exponent + 1];
    else significand = next;
  }
  for (const digit of m[3] ?? '') {
    const next = significand * 10n + BigInt(digit);
    if (overflowed || next > u64Max) break;
    [significand, exponent] = [next, exponent - 1];
  }
  let f = Number(significand);
  while (f !== 0) {
    const power = powersOfTen[Math.abs(exponent)];
    if (power !== undefined) {
      f = exponent >= 0 ? f * power : f / power;
      break;
    }
    if (exponent >= 0) return value;
    [f, exponent] = [f / 1e308, exponent + 308];
  }
  const read = m[1] === '-' ? -f : f;
  return isF32 ? Math.fround(read) : read;
}

export function formatDuration(micros: bigint): string {
  const sign = micros < 0n ? '-' : '+';
  const abs = micros < 0n ? -micros : micros;
  return `${sign}${abs / 1_000_000n}.${String(abs % 1_000_000n).padStart(6, '0')}`;
}

function formatSpecial(kind: NonNullable<Special>, type: TypeJson, value: LosslessJson): string {
  const inner = Array.isArray(value) ? value[0] : value;
  const innerTag = typeTag(productElements(type)[0].type);
  const big = toBigInt(inner, innerTag);
  switch (kind) {
    case 'identity':
      return hexFixed(big, 32);
    case 'connectionId':
      return hexFixed(big, 16);
    case 'timestamp':
      return rfc3339Text(big);
    case 'duration':
      return formatDuration(big);
    case 'uuid':
      return `"${uuidHexText(big)}"`;
  }
}

function bytesHex(value: LosslessJson): string {
  if (typeof value === 'string') return '0x' + value.replace(/^0x/, '').toLowerCase();
  if (Array.isArray(value)) return '0x' + value.map((b) => Number(b).toString(16).padStart(2, '0')).join('');
  throw new SqlFormatError(`expected bytes, got ${JSON.stringify(value)}`);
}

/** One value rendered as psql shows it inside a cell. */
export function formatValue(type: TypeJson, value: LosslessJson): string {
  const tag = typeTag(type);
  if (tag in integerBits) return toBigInt(value, tag).toString();
  switch (tag) {
    case 'Bool':
      return String(value);
    case 'F32':
    case 'F64':
      return rustFloatText(asUpstreamCliReads(Number(value), tag === 'F32'), tag === 'F32');
    case 'String':
      return `"${String(value)}"`;
    case 'Array': {
      const elem = type.Array as TypeJson;
      if (typeTag(elem) === 'U8') return bytesHex(value);
      if (!Array.isArray(value)) throw new SqlFormatError('expected an array value');
      return '[' + value.map((v) => formatValue(elem, v)).join(', ') + ']';
    }
    case 'Product': {
      const special = specialOf(type);
      if (special !== undefined) return formatSpecial(special, type, value);
      const elements = productElements(type);
      const values = Array.isArray(value) ? value : elements.map((e) => (value as { [k: string]: LosslessJson })[e.name ?? '']);
      if (elements.length === 0) return '()';
      const parts = elements.map((e, i) => `${e.name ?? String(i)} = ${formatValue(e.type, values[i])}`);
      return '(' + parts.join(', ') + ')';
    }
    case 'Sum': {
      const variants = elementsOf((type.Sum as { [key: string]: LosslessJson }).variants);
      let index: number;
      let payload: LosslessJson;
      if (Array.isArray(value)) [index, payload] = [Number(value[0]), value[1]];
      else {
        const [name] = Object.keys(value as object);
        index = variants.findIndex((v) => v.name === name);
        payload = (value as { [k: string]: LosslessJson })[name];
      }
      const variant = variants[index];
      if (variant === undefined) throw new SqlFormatError(`sum tag ${index} out of range`);
      return `(${variant.name ?? String(index)} = ${formatValue(variant.type, payload)})`;
    }
    default:
      return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

/** The psql table: ` h1 | h2`, a `-`/`+` rule, then one line per row; cells left-aligned to the widest in their column. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => ` ${c.padEnd(widths[i])} `).join('|');
  const out = [line(headers), widths.map((w) => '-'.repeat(w + 2)).join('+')];
  for (const row of rows) out.push(line(row));
  return out.join('\n');
}

/** One `/sql` statement result rendered as `spacetime sql` prints it. */
export function formatSqlResult(result: { schema: LosslessJson; rows: LosslessJson }): string {
  const schema = result.schema as { elements: LosslessJson };
  const elements = elementsOf(schema.elements);
  const rows = (result.rows as LosslessJson[]).map((row) => {
    const values = row as LosslessJson[];
    return elements.map((e, i) => formatValue(e.type, values[i]));
  });
  return renderTable(
    elements.map((e, i) => e.name ?? String(i)),
    rows,
  );
}
