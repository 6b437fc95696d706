// sql/pg-text.ts — SATS column types as PostgreSQL type OIDs, and values as PostgreSQL text-format cells.
//
// Owns: the type mapping (upstream crates/pg/src/encoder.rs `type_of`) and the text of each value as upstream's
// `PsqlClient::Postgres` formatter writes it (crates/sats/src/satn.rs): integers in decimal, floats as Rust's `{}`,
// bool `t`/`f`, bytes and Identity/ConnectionId as bytea hex `\x…`, Timestamp as RFC 3339, TimeDuration as ISO 8601,
// Uuid hyphenated, simple enums by variant name, other products and sums as JSON text.
// Deliberate differences, where upstream's output is not valid for the type it declares: array columns are
// PostgreSQL array literals (`{a,b}`; upstream writes one DataRow field per element), and strings and arrays nested
// in JSON are escaped / bracketed as JSON (upstream writes them raw).
// In sql/, not server/pgwire/: a query's PostgreSQL answer is rendered where the query ran (sql/pg-messages.ts).
// May call: sats/types.ts, sats/text.ts (pure otherwise).

import { rfc3339Text, rustFloatText, uuidHexText } from '../sats/text.js';
import { specialProductFieldNames, type AlgebraicType, type ProductType, type ProductTypeElement, type SumValue, type Value } from '../sats/types.js';

/** PostgreSQL type OIDs (pg_type.oid) the mapping uses, with their fixed sizes (-1: variable). */
export const pgTypes = {
  bool: { oid: 16, sizeBytes: 1 },
  bytea: { oid: 17, sizeBytes: -1 },
  int8: { oid: 20, sizeBytes: 8 },
  int2: { oid: 21, sizeBytes: 2 },
  int4: { oid: 23, sizeBytes: 4 },
  json: { oid: 114, sizeBytes: -1 },
  float4: { oid: 700, sizeBytes: 4 },
  float8: { oid: 701, sizeBytes: 8 },
  unknown: { oid: 705, sizeBytes: -2 },
  boolArray: { oid: 1000, sizeBytes: -1 },
  int2Array: { oid: 1005, sizeBytes: -1 },
  int4Array: { oid: 1007, sizeBytes: -1 },
  varcharArray: { oid: 1015, sizeBytes: -1 },
  int8Array: { oid: 1016, sizeBytes: -1 },
  varchar: { oid: 1043, sizeBytes: -1 },
  timestamp: { oid: 1114, sizeBytes: 8 },
  interval: { oid: 1186, sizeBytes: 16 },
  numericArray: { oid: 1231, sizeBytes: -1 },
  numeric: { oid: 1700, sizeBytes: -1 },
  anyArray: { oid: 2277, sizeBytes: -1 },
  uuid: { oid: 2950, sizeBytes: 16 },
  anyEnum: { oid: 3500, sizeBytes: 4 },
} as const;
export type PgType = (typeof pgTypes)[keyof typeof pgTypes];

export interface ColumnDescription {
  name: string;
  type: PgType;
}

/** How upstream prints a value of a special product (`PsqlPrintFmt`). */
type PrintFormat = 'hex' | 'timestamp' | 'duration' | 'uuid' | 'satn';

/** The one element of a special product, by its tag name and primitive type. */
function specialOf(type: AlgebraicType): PrintFormat {
  if (type.tag !== 'Product' || type.value.elements.length !== 1) return 'satn';
  const [element] = type.value.elements;
  const inner = element.algebraicType.tag;
  switch (element.name) {
    case specialProductFieldNames.identity: return inner === 'U256' ? 'hex' : 'satn';
    case specialProductFieldNames.connectionId: return inner === 'U128' ? 'hex' : 'satn';
    case specialProductFieldNames.timestamp: return inner === 'I64' ? 'timestamp' : 'satn';
    case specialProductFieldNames.timeDuration: return inner === 'I64' ? 'duration' : 'satn';
    case specialProductFieldNames.uuid: return inner === 'U128' ? 'uuid' : 'satn';
    default: return 'satn';
  }
}

/** Upstream's `PsqlPrintFmt::use_fmt`: the enclosing product or the field's own type decides. */
function printFormat(tuple: ProductType, field: ProductTypeElement): PrintFormat {
  const fromTuple = specialOf({ tag: 'Product', value: tuple });
  return fromTuple !== 'satn' ? fromTuple : specialOf(field.algebraicType);
}

function isSimpleEnum(type: AlgebraicType): boolean {
  return type.tag === 'Sum' && type.value.variants.every((v) => v.algebraicType.tag === 'Product' && v.algebraicType.value.elements.length === 0);
}

function arrayTypeOf(elem: AlgebraicType): PgType {
  switch (elem.tag) {
    case 'String': return pgTypes.varcharArray;
    case 'Bool': return pgTypes.boolArray;
    case 'U8': return pgTypes.bytea;
    case 'I8': case 'I16': return pgTypes.int2Array;
    case 'U16': case 'I32': return pgTypes.int4Array;
    case 'U32': case 'I64': return pgTypes.int8Array;
    case 'U64': case 'I128': case 'U128': case 'I256': case 'U256': return pgTypes.numericArray;
    default: return pgTypes.anyArray;
  }
}

/** The PostgreSQL type of one result column (upstream's `type_of`). */
export function pgTypeOf(schema: ProductType, field: ProductTypeElement): PgType {
  const type = field.algebraicType;
  switch (type.tag) {
    case 'String': return pgTypes.varchar;
    case 'Bool': return pgTypes.bool;
    case 'U8': case 'I8': case 'I16': return pgTypes.int2;
    case 'U16': case 'I32': return pgTypes.int4;
    case 'U32': case 'I64': return pgTypes.int8;
    case 'U64': case 'I128': case 'U128': case 'I256': case 'U256': return pgTypes.numeric;
    case 'F32': return pgTypes.float4;
    case 'F64': return pgTypes.float8;
    case 'Array': return arrayTypeOf(type.value);
    case 'Product': {
      const format = printFormat(schema, field);
      if (format === 'hex') return pgTypes.bytea;
      if (format === 'timestamp') return pgTypes.timestamp;
      if (format === 'duration') return pgTypes.interval;
      if (format === 'uuid') return pgTypes.uuid;
      return pgTypes.json;
    }
    case 'Sum': return isSimpleEnum(type) ? pgTypes.anyEnum : pgTypes.json;
    default: return pgTypes.unknown;
  }
}

/** RowDescription fields: unnamed columns are `col_<i>`, as upstream names them. */
export function describeColumns(schema: ProductType): ColumnDescription[] {
  return schema.elements.map((field, i) => ({ name: field.name ?? `col_${i}`, type: pgTypeOf(schema, field) }));
}

// ─── Scalars ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** chrono's `Duration` Display (ISO 8601): `P0D`, `PT1.5S`, `-PT10S`. */
export function iso8601DurationText(micros: bigint): string {
  if (micros === 0n) return 'P0D';
  const sign = micros < 0n ? '-' : '';
  const abs = micros < 0n ? -micros : micros;
  const fraction = String(abs % 1_000_000n).padStart(6, '0').replace(/0+$/, '');
  return `${sign}PT${abs / 1_000_000n}${fraction === '' ? '' : '.' + fraction}S`;
}

function bigHex(value: bigint, bytes: number): string {
  return value.toString(16).padStart(bytes * 2, '0');
}

function bytesHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

// ─── Cells ───────────────────────────────────────────────────────────────────────────────────────────────────────

/** One row as PostgreSQL text cells, in column order. */
export function rowCells(schema: ProductType, row: readonly Value[]): string[] {
  return schema.elements.map((field, i) => cellText(schema, field, row[i]));
}

/** A top-level cell: what upstream's `PsqlFormatter` hands to pgwire's text encoder. */
function cellText(tuple: ProductType, field: ProductTypeElement, value: Value): string {
  const type = field.algebraicType;
  switch (type.tag) {
    case 'Bool': return value ? 't' : 'f';
    case 'String': return value as string;
    case 'Array':
      if (type.value.tag === 'U8') return '\\x' + bytesHex(value as Uint8Array);
      return arrayLiteral(type.value, value as Value[]);
    case 'Product': {
      const format = printFormat(tuple, field);
      if (format !== 'satn') return specialText(format, type.value, value as Value[], false);
      return jsonText(type, value);
    }
    case 'Sum': {
      const sum = value as SumValue;
      if (isSimpleEnum(type)) return type.value.variants[sum.tag].name ?? String(sum.tag);
      return jsonText(type, value);
    }
    default: {
      const format = printFormat(tuple, field);
      if (format !== 'satn' && typeof value === 'bigint') return specialText(format, tuple, [value], false);
      return scalarText(type, value);
    }
  }
}

function scalarText(type: AlgebraicType, value: Value): string {
  if (type.tag === 'F32' || type.tag === 'F64') return rustFloatText(value as number, type.tag === 'F32');
  return String(value);
}

/** A special product's text; inside JSON it is a quoted string (upstream's SqlFormatter with the Postgres chars). */
function specialText(format: Exclude<PrintFormat, 'satn'>, inner: ProductType, value: Value[], quoted: boolean): string {
  const raw = value[0] as bigint;
  const width = inner.elements[0].algebraicType.tag === 'U256' ? 32 : 16;
  let text: string;
  if (format === 'hex') text = quoted ? '0x' + bigHex(raw, width) : '\\x' + bigHex(raw, width);
  else if (format === 'timestamp') text = rfc3339Text(raw);
  else if (format === 'duration') text = iso8601DurationText(raw);
  else text = uuidHexText(raw);
  return quoted ? JSON.stringify(text) : text;
}

/** A PostgreSQL array literal: `{a,b}`, elements double-quoted when they need it. */
function arrayLiteral(elem: AlgebraicType, values: readonly Value[]): string {
  const wrapper: ProductType = { elements: [{ name: undefined, algebraicType: elem }] };
  const parts = values.map((v) => {
    const text = cellText(wrapper, wrapper.elements[0], v);
    return /^$|[{}",\\\s]|^null$/i.test(text) ? `"${text.replace(/[\\"]/g, (c) => '\\' + c)}"` : text;
  });
  return `{${parts.join(',')}}`;
}

/** A product or sum as upstream's JSON-like record text: `{"x": 1, "y": -1}`, `{"some": 5}`, `{"none": {}}`. */
function jsonText(type: AlgebraicType, value: Value): string {
  const holder: ProductType = { elements: [{ name: undefined, algebraicType: type }] };
  return nestedText(holder, holder.elements[0], type, value);
}

/**
 * A value of `type` inside a JSON record. `tuple`/`field` are the context upstream's formatter carries to decide
 * special formats: the enclosing product and element, which for a sum's payload is the sum itself (so a special
 * product directly inside a variant prints as a record of its field: `{"Interval": {"__time_duration_micros__": …}}`).
 */
function nestedText(tuple: ProductType, field: ProductTypeElement, type: AlgebraicType, value: Value): string {
  switch (type.tag) {
    case 'Bool': return value ? 'true' : 'false';
    case 'String': return JSON.stringify(value);
    case 'Array': {
      if (type.value.tag === 'U8') return JSON.stringify('0x' + bytesHex(value as Uint8Array));
      return '[' + (value as Value[]).map((v) => nestedText(tuple, field, type.value, v)).join(', ') + ']';
    }
    case 'Product': {
      const inner = type.value;
      const format = printFormat(tuple, field);
      if (format !== 'satn') return specialText(format, inner, value as Value[], true);
      const values = value as Value[];
      const parts = inner.elements.map((e, i) => `${JSON.stringify(e.name ?? `col_${i}`)}: ${nestedText(inner, e, e.algebraicType, values[i])}`);
      return `{${parts.join(', ')}}`;
    }
    case 'Sum': {
      const sum = value as SumValue;
      const variant = type.value.variants[sum.tag];
      const holder: ProductType = { elements: [{ name: undefined, algebraicType: type }] };
      const payload = nestedText(holder, holder.elements[0], variant.algebraicType, sum.value);
      return `{${JSON.stringify(variant.name ?? `col_${sum.tag}`)}: ${payload}}`;
    }
    default: {
      const format = printFormat(tuple, field);
      if (format !== 'satn' && typeof value === 'bigint') return specialText(format, tuple, [value], true);
      return scalarText(type, value);
    }
  }
}
