// datastore/schema.ts — RawModuleDefV10 (the module's description of itself) → DatabaseSchema.
//
// Owns: canonical naming (host-abi §4.3), generated names of indexes/constraints/sequences/schedules, aliases
// (source/accessor names the library passes back), id assignment, submodule flattening and schema validation.
// Ids: user tables and indexes are numbered from `firstUserTableId` / `firstUserIndexId` (upstream reserves the ids
// below 4096 for system tables), in definition order: root module first, then submodules depth-first.
// Submodules: their typespaces are appended to the root's (Refs shifted); every table/index/function name gets the
// `ns.` prefix (nested: `a.b.`).
// May call: datastore/types, datastore/table (integerRange), sats/types, sats/codec, sats/moduledef, sats/names.

import { resolveType } from '../sats/codec.js';
import { moduleDefSections, type RawModuleDefV10, type RawTableDefV10 } from '../sats/moduledef.js';
import { canonicalTypeNames, toSnakeCase } from '../sats/names.js';
import { integerRange } from './table.js';
import type { AlgebraicType, ProductType, Typespace } from '../sats/types.js';
import type {
  ColumnSchema, DatabaseSchema, IndexAlgorithm, IndexSchema, ScheduleSchema, SequenceSchema, TableSchema,
} from './types.js';

export const firstUserTableId = 4096;
export const firstUserIndexId = 4096;
const reservedTablePrefix = 'st_';

/** A module schema that cannot be turned into a database; the message names the table/column at fault. */
export class SchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

interface Builder {
  /** What clients see: every module's types after its case conversion (upstream's validated typespace). */
  typespace: Typespace;
  /** The same entries as the module wrote them: column source names (accessors) are read from these. */
  sourceTypespace: Typespace;
  tables: TableSchema[];
  nextIndexId: number;
}

export function buildDatabaseSchema(def: RawModuleDefV10): DatabaseSchema {
  const b: Builder = { typespace: { types: [] }, sourceTypespace: { types: [] }, tables: [], nextIndexId: firstUserIndexId };
  addModule(b, def, '');
  const seen = new Set<string>();
  for (const t of b.tables) {
    if (seen.has(t.name)) throw new SchemaError(`duplicate table name '${t.name}'`);
    seen.add(t.name);
  }
  return { typespace: b.typespace, tables: b.tables };
}

function addModule(b: Builder, def: RawModuleDefV10, prefix: string): void {
  const s = moduleDefSections(def);
  const typeBase = b.typespace.types.length;
  const snake = s.caseConversionPolicy.tag === 'SnakeCase';
  for (const t of s.typespace.types) {
    const shifted = typeBase === 0 ? t : shiftRefs(t, typeBase);
    b.sourceTypespace.types.push(shifted);
    b.typespace.types.push(snake ? canonicalTypeNames(shifted) : shifted);
  }
  const convert = (name: string) => (snake ? toSnakeCase(name) : name);
  const explicit = { Table: new Map<string, string>(), Function: new Map<string, string>(), Index: new Map<string, string>() };
  for (const e of s.explicitNames.entries) explicit[e.tag].set(e.value.sourceName, e.value.canonicalName);

  // Type names must be unique within a module (upstream's DuplicateTypeName; clients' bindings are named after them).
  const typeNames = new Set<string>();
  for (const ty of s.types) {
    const name = [...ty.sourceName.scope, ty.sourceName.sourceName].join('::');
    if (typeNames.has(name)) throw new SchemaError(`name \`${prefix}${name}\` is used for multiple types`);
    typeNames.add(name);
  }

  const bySource = new Map<string, TableSchema>();
  for (const raw of s.tables) {
    const canonical = prefix + (explicit.Table.get(raw.sourceName) ?? convert(raw.sourceName));
    const t = buildTable(b, raw, prefix, canonical, typeBase, convert, explicit.Index, snake);
    bySource.set(raw.sourceName, t);
    b.tables.push(t);
  }
  for (const sched of s.schedules) {
    const t = bySource.get(sched.tableName);
    if (t === undefined) {
      throw new SchemaError(`schedule for function '${sched.functionName}' names unknown table '${sched.tableName}'`);
    }
    t.schedule = buildSchedule(t, sched.scheduleAtCol,
      prefix + (explicit.Function.get(sched.functionName) ?? convert(sched.functionName)));
  }
  for (const sub of s.submodules) addModule(b, sub.module, `${prefix}${sub.namespace}.`);
}

function buildTable(
  b: Builder, raw: RawTableDefV10, prefix: string, name: string, typeBase: number,
  convert: (s: string) => string, explicitIndexNames: Map<string, string>, convertTypes: boolean,
): TableSchema {
  const where = `table '${name}'`;
  if (name.startsWith(reservedTablePrefix)) {
    throw new SchemaError(`${where}: names starting with '${reservedTablePrefix}' are reserved for system tables`);
  }
  const rowTypeRaw = b.sourceTypespace.types[raw.productTypeRef + typeBase];
  if (rowTypeRaw === undefined) throw new SchemaError(`${where}: row type Ref(${raw.productTypeRef}) is out of range`);
  const rowResolved = resolveType(rowTypeRaw, b.sourceTypespace);
  if (rowResolved.tag !== 'Product') throw new SchemaError(`${where}: row type is not a product type`);

  // Column names are converted here (with their source names kept as accessors); the names inside column types come
  // from the converted typespace, or are converted here when the type is written inline.
  const clientType = (t: AlgebraicType): AlgebraicType => (convertTypes ? canonicalTypeNames(t) : t);
  const columns: ColumnSchema[] = rowResolved.value.elements.map((e, i) => {
    if (e.name === undefined) throw new SchemaError(`${where}: column ${i} has no name`);
    return { name: convert(e.name), sourceName: e.name, type: clientType(resolveType(e.algebraicType, b.typespace)) };
  });
  const rowType: ProductType = {
    elements: rowResolved.value.elements.map((e, i) => ({ name: columns[i].name, algebraicType: clientType(e.algebraicType) })),
  };
  const colName = (c: number, what: string): string => {
    const col = columns[c];
    if (col === undefined) throw new SchemaError(`${where}: ${what} refers to column ${c}, which does not exist`);
    return col.name;
  };

  if (raw.primaryKey.length > 1) throw new SchemaError(`${where}: a primary key must be a single column`);
  const primaryKey = raw.primaryKey.length === 1 ? raw.primaryKey[0] : undefined;
  if (primaryKey !== undefined) colName(primaryKey, 'the primary key');

  const uniqueConstraints: { name: string; columns: number[] }[] = [];
  for (const c of raw.constraints) {
    const cols = c.data.value.columns;
    const generated = `${name}_${cols.map((x) => colName(x, 'a unique constraint')).join('_')}_key`;
    if (!uniqueConstraints.some((u) => sameCols(u.columns, cols))) {
      uniqueConstraints.push({ name: c.sourceName ?? generated, columns: [...cols] });
    }
  }
  if (primaryKey !== undefined && !uniqueConstraints.some((u) => sameCols(u.columns, [primaryKey]))) {
    uniqueConstraints.push({ name: `${name}_${columns[primaryKey].name}_key`, columns: [primaryKey] });
  }

  const indexes: IndexSchema[] = raw.indexes.map((ix) => {
    const algorithm = ix.algorithm.tag.toLowerCase() as IndexAlgorithm;
    const cols = ix.algorithm.tag === 'Direct' ? [ix.algorithm.value] : [...ix.algorithm.value];
    if (cols.length === 0) throw new SchemaError(`${where}: an index has no columns`);
    const colNames = cols.map((c) => colName(c, 'an index'));
    if (algorithm === 'direct') checkDirectType(columns[cols[0]], where, b.typespace);
    const sourceName = ix.sourceName ??
      `${raw.sourceName}_${cols.map((c) => columns[c].sourceName).join('_')}_idx_${algorithm}`;
    const canonical = explicitIndexNames.get(sourceName) ?? `${name}_${colNames.join('_')}_idx_${algorithm}`;
    const aliases = prefix + sourceName === canonical ? [] : [prefix + sourceName];
    return {
      indexId: b.nextIndexId++, name: canonical, aliases, algorithm, columns: cols,
      unique: uniqueConstraints.some((u) => sameCols(u.columns, cols)),
    };
  });
  for (const u of uniqueConstraints) {
    if (!indexes.some((ix) => sameCols(ix.columns, u.columns))) {
      throw new SchemaError(`${where}: unique constraint '${u.name}' on (${u.columns.map((c) => columns[c].name)
        .join(', ')}) has no index on exactly those columns`);
    }
  }

  const sequences: SequenceSchema[] = raw.sequences.map((q) => {
    const col = columns[q.column];
    if (col === undefined) throw new SchemaError(`${where}: a sequence refers to column ${q.column}, which does not exist`);
    const range = integerRange(col.type.tag);
    if (range === undefined) {
      throw new SchemaError(`${where}: auto-increment column '${col.name}' must be an integer, not ${col.type.tag}`);
    }
    if (q.increment === 0n) throw new SchemaError(`${where}: sequence on '${col.name}' has increment 0`);
    // Sequence values are i128 (st_sequence's columns, upstream's SequenceSchema): a 128- or 256-bit column's sequence
    // defaults to the part of its range that i128 covers.
    const up = q.increment > 0n;
    const min = q.minValue ?? (up ? 1n : bigintMax(range.lo, sequenceValueMin));
    const max = q.maxValue ?? (up ? bigintMin(range.hi, sequenceValueMax) : -1n);
    const start = q.start ?? (up ? min : max);
    if (min > max || start < min || start > max) {
      throw new SchemaError(`${where}: sequence on '${col.name}' has start ${start} outside ${min}..${max}`);
    }
    return { name: q.sourceName ?? `${name}_${col.name}_seq`, column: q.column, start, increment: q.increment, min, max };
  });

  const defaultValues = new Map<number, Uint8Array>();
  for (const d of raw.defaultValues) {
    colName(d.colId, 'a default value');
    defaultValues.set(d.colId, d.value);
  }

  const sourceAlias = prefix + raw.sourceName;
  return {
    tableId: firstUserTableId + b.tables.length,
    name,
    aliases: sourceAlias === name ? [] : [sourceAlias],
    rowType,
    columns,
    primaryKey,
    indexes,
    uniqueConstraints,
    sequences,
    access: raw.tableAccess.tag === 'Public' ? 'public' : 'private',
    isEvent: raw.isEvent,
    schedule: undefined,
    defaultValues,
  };
}

function buildSchedule(t: TableSchema, scheduleAtColumn: number, functionName: string): ScheduleSchema {
  const where = `scheduled table '${t.name}'`;
  if (t.columns[scheduleAtColumn] === undefined) {
    throw new SchemaError(`${where}: ScheduleAt column ${scheduleAtColumn} does not exist`);
  }
  if (t.primaryKey === undefined) throw new SchemaError(`${where}: needs a primary key (the scheduled id)`);
  return { functionName, scheduleAtColumn, idColumn: t.primaryKey };
}

function checkDirectType(col: ColumnSchema, where: string, ts: Typespace): void {
  const t = resolveType(col.type, ts);
  const ok = ['U8', 'U16', 'U32', 'U64'].includes(t.tag) ||
    (t.tag === 'Sum' && t.value.variants.every((v) => {
      const p = resolveType(v.algebraicType, ts);
      return p.tag === 'Product' && p.value.elements.length === 0;
    }));
  if (!ok) {
    throw new SchemaError(`${where}: direct index on column '${col.name}' needs an unsigned integer (u8..u64) or ` +
      `a simple enum, not ${t.tag}`);
  }
}

function sameCols(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

/** A copy of `t` with every Ref moved by `by` (a submodule's typespace appended after others). */
function shiftRefs(t: AlgebraicType, by: number): AlgebraicType {
  switch (t.tag) {
    case 'Ref': return { tag: 'Ref', value: t.value + by };
    case 'Array': return { tag: 'Array', value: shiftRefs(t.value, by) };
    case 'Product': return { tag: 'Product', value: { elements: t.value.elements.map((e) =>
      ({ name: e.name, algebraicType: shiftRefs(e.algebraicType, by) })) } };
    case 'Sum': return { tag: 'Sum', value: { variants: t.value.variants.map((v) =>
      ({ name: v.name, algebraicType: shiftRefs(v.algebraicType, by) })) } };
    default: return t;
  }
}

const sequenceValueMin = -(1n << 127n);
const sequenceValueMax = (1n << 127n) - 1n;
const bigintMin = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const bigintMax = (a: bigint, b: bigint): bigint => (a > b ? a : b);
