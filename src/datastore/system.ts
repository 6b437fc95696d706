// datastore/system.ts — the system tables upstream documents (`st_table` … `st_column_accessor`, ids 1–20 as
// upstream's), readable through SQL and subscriptions.
//
// Owns: their schemas (names, column names and types, ids below firstUserTableId, access: all public but
// `st_connection_credentials`, which only the owner reads — as upstream) and their rows. Two kinds:
// - schema tables (st_table, st_column, st_sequence, st_index, st_constraint, st_scheduled, st_event_table and the
//   three accessor tables): rows derived from a DatabaseSchema; the Datastore registers and fills them
//   (`systemTableRows`), so they resolve by id and scan like user tables;
// - host tables (st_module, st_client, st_var, st_row_level_security, st_connection_credentials and the st_view*
//   tables): rows come from what the host knows (connected clients, SQL variables, the module, views, RLS filters);
//   the Datastore registers them empty and host/views.ts `CallerView` serves their rows (`hostSystemTableRows`). They
//   have no indexes (a handful of rows), so every plan scans them.
// Neither kind is in `DatabaseSchema.tables` (user tables only), a snapshot or a TxData; writes to them are refused.
// Simplifications: `st_sequence.allocated` is the next value when the datastore was built (not live); `col_type` is
// the BSATN of the column's AlgebraicType; sequence and constraint ids are numbered in schema order; st_view_param,
// st_view_sub and st_view_arg stay empty (views here take no parameters, and no per-subscriber rows are kept).
// May call: datastore/types, datastore/schema (id constants), sats/types, sats/bsatn.

import { BsatnWriter } from '../sats/bsatn.js';
import { algebraicTypeTags, type AlgebraicType, type ProductType, type Value } from '../sats/types.js';
import { firstUserTableId } from './schema.js';
import type { DatabaseSchema, IndexSchema, TableSchema } from './types.js';

export const systemTableIds = {
  stTable: 1, stColumn: 2, stSequence: 3, stIndex: 4, stConstraint: 5, stModule: 6, stClient: 7, stVar: 8,
  stScheduled: 9, stRowLevelSecurity: 10, stConnectionCredentials: 11, stView: 12, stViewParam: 13, stViewColumn: 14,
  stViewSub: 15, stViewArg: 16, stEventTable: 17, stTableAccessor: 18, stIndexAccessor: 19, stColumnAccessor: 20,
} as const;
/** Index ids of system tables' indexes (below firstUserIndexId). */
const systemIndexIdBase = 1;

const bool: AlgebraicType = { tag: 'Bool' };
const u8: AlgebraicType = { tag: 'U8' };
const u16: AlgebraicType = { tag: 'U16' };
const u32: AlgebraicType = { tag: 'U32' };
const u64: AlgebraicType = { tag: 'U64' };
const i64: AlgebraicType = { tag: 'I64' };
const i128: AlgebraicType = { tag: 'I128' };
const u128: AlgebraicType = { tag: 'U128' };
const u256: AlgebraicType = { tag: 'U256' };
const str: AlgebraicType = { tag: 'String' };
const bytes: AlgebraicType = { tag: 'Array', value: u8 };
const colList: AlgebraicType = { tag: 'Array', value: u16 };
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const product = (fields: [string, AlgebraicType][]): ProductType =>
  ({ elements: fields.map(([name, algebraicType]) => ({ name, algebraicType })) });
const sum = (variants: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Sum', value: { variants: variants.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const option = (t: AlgebraicType): AlgebraicType => sum([['some', t], ['none', unit]]);
const some = (v: Value): Value => ({ tag: 0, value: v });
const none: Value = { tag: 1, value: [] };
const indexAlgorithm = sum([
  ['Unused', u128],
  ['BTree', { tag: 'Product', value: product([['columns', colList]]) }],
  ['Hash', { tag: 'Product', value: product([['columns', colList]]) }],
  ['Direct', { tag: 'Product', value: product([['column', u16]]) }]]);
const constraintData = sum([['Unused', u128], ['Unique', { tag: 'Product', value: product([['columns', colList]]) }]]);
/** Upstream's StVarValue: the variable's value tagged with its primitive type (row_limit is a U64, tag 8). */
const stVarValue = sum([['Bool', bool], ['I8', { tag: 'I8' }], ['U8', u8], ['I16', { tag: 'I16' }], ['U16', u16],
  ['I32', { tag: 'I32' }], ['U32', u32], ['I64', i64], ['U64', u64], ['I128', i128], ['U128', u128],
  ['F32', { tag: 'F32' }], ['F64', { tag: 'F64' }], ['String', str]]);
const stVarU64Tag = 8;
/** upstream ModuleKind::JS */
const moduleKindJs = 1;
/** upstream ONLY_MODULE_VERSION */
const moduleVersion = '0.0.1';

/** What the host knows that the host tables show (host/database.ts builds it on demand). */
export interface HostSystemState {
  module: { databaseIdentity: bigint; ownerIdentity: bigint; programHash: bigint; programBytes: Uint8Array };
  clients: Iterable<{ identity: bigint; connectionId: bigint }>;
  credentials: Iterable<{ connectionId: bigint; jwtPayload: string }>;
  vars: ReadonlyMap<string, bigint>;
  rls: Iterable<{ tableId: number; sql: string }>;
  views: Iterable<{ viewId: number; name: string; tableId: number; isPublic: boolean; isAnonymous: boolean;
    columns: { name: string; type: AlgebraicType }[] }>;
}

interface SystemTableDef {
  id: number; name: string; row: ProductType;
  /** Columns of each unique btree index (the first is the primary key when `pk`). */
  unique: number[][];
  pk: boolean;
  access?: 'private';
  schemaRows?: (s: DatabaseSchema) => Value[][];
  hostRows?: (h: HostSystemState) => Value[][];
}

const defs: SystemTableDef[] = [
  {
    id: systemTableIds.stTable, name: 'st_table', unique: [[0]], pk: true,
    row: product([['table_id', u32], ['table_name', str], ['table_type', str], ['table_access', str],
      ['table_primary_key', option(colList)]]),
    schemaRows: (s) => allTables(s).map((t) => [t.tableId, t.name, t.tableId < firstUserTableId ? 'system' : 'user',
      t.access, t.primaryKey === undefined ? none : some([t.primaryKey])]),
  },
  {
    id: systemTableIds.stColumn, name: 'st_column', unique: [[0, 1]], pk: false,
    row: product([['table_id', u32], ['col_pos', u16], ['col_name', str], ['col_type', bytes]]),
    schemaRows: (s) => allTables(s).flatMap((t) => t.columns.map((c, i) => [t.tableId, i, c.name, encodeType(c.type)])),
  },
  {
    id: systemTableIds.stSequence, name: 'st_sequence', unique: [[0]], pk: true,
    row: product([['sequence_id', u32], ['sequence_name', str], ['table_id', u32], ['col_pos', u16],
      ['increment', i128], ['start', i128], ['min_value', i128], ['max_value', i128], ['allocated', i128]]),
    schemaRows: (s) => numbered(s.tables.flatMap((t) => t.sequences.map((q) =>
      [q.name, t.tableId, q.column, q.increment, q.start, q.min, q.max, q.start]))),
  },
  {
    id: systemTableIds.stIndex, name: 'st_index', unique: [[0]], pk: true,
    row: product([['index_id', u32], ['table_id', u32], ['index_name', str], ['index_algorithm', indexAlgorithm]]),
    schemaRows: (s) => allTables(s).flatMap((t) => t.indexes.map((ix) => [ix.indexId, t.tableId, ix.name, algorithmValue(ix)])),
  },
  {
    id: systemTableIds.stConstraint, name: 'st_constraint', unique: [[0]], pk: true,
    row: product([['constraint_id', u32], ['constraint_name', str], ['table_id', u32], ['constraint_data', constraintData]]),
    schemaRows: (s) => numbered(s.tables.flatMap((t) => t.uniqueConstraints.map((u) =>
      [u.name, t.tableId, { tag: 1, value: [u.columns] }]))),
  },
  {
    id: systemTableIds.stModule, name: 'st_module', unique: [], pk: false,
    row: product([['database_identity', u256], ['owner_identity', u256], ['program_kind', u8], ['program_hash', u256],
      ['program_bytes', bytes], ['module_version', str]]),
    hostRows: ({ module: m }) => [[m.databaseIdentity, m.ownerIdentity, moduleKindJs, m.programHash, m.programBytes, moduleVersion]],
  },
  {
    id: systemTableIds.stClient, name: 'st_client', unique: [], pk: false,
    row: product([['identity', u256], ['connection_id', u128]]),
    hostRows: (h) => [...h.clients].map((c) => [c.identity, c.connectionId]),
  },
  {
    id: systemTableIds.stVar, name: 'st_var', unique: [], pk: false,
    row: product([['name', str], ['value', stVarValue]]),
    hostRows: (h) => [...h.vars].map(([name, v]) => [name, { tag: stVarU64Tag, value: v }]),
  },
  {
    id: systemTableIds.stScheduled, name: 'st_scheduled', unique: [[0]], pk: true,
    row: product([['schedule_id', u32], ['table_id', u32], ['reducer_name', str], ['schedule_name', str], ['at_column', u16]]),
    schemaRows: (s) => numbered(s.tables.flatMap((t) => t.schedule === undefined ? []
      : [[t.tableId, t.schedule.functionName, `${t.name}_sched`, t.schedule.scheduleAtColumn]])),
  },
  {
    id: systemTableIds.stRowLevelSecurity, name: 'st_row_level_security', unique: [], pk: false,
    row: product([['table_id', u32], ['sql', str]]),
    hostRows: (h) => [...h.rls].map((r) => [r.tableId, r.sql]),
  },
  {
    id: systemTableIds.stConnectionCredentials, name: 'st_connection_credentials', unique: [], pk: false, access: 'private',
    row: product([['connection_id', u128], ['jwt_payload', str]]),
    hostRows: (h) => [...h.credentials].map((c) => [c.connectionId, c.jwtPayload]),
  },
  {
    id: systemTableIds.stView, name: 'st_view', unique: [], pk: false,
    row: product([['view_id', u32], ['view_name', str], ['table_id', option(u32)], ['is_public', bool], ['is_anonymous', bool]]),
    hostRows: (h) => [...h.views].map((v) => [v.viewId, v.name, some(v.tableId), v.isPublic, v.isAnonymous]),
  },
  {
    id: systemTableIds.stViewParam, name: 'st_view_param', unique: [], pk: false,
    row: product([['view_id', u32], ['param_pos', u16], ['param_name', str], ['param_type', bytes]]),
    hostRows: () => [],
  },
  {
    id: systemTableIds.stViewColumn, name: 'st_view_column', unique: [], pk: false,
    row: product([['view_id', u32], ['col_pos', u16], ['col_name', str], ['col_type', bytes]]),
    hostRows: (h) => [...h.views].flatMap((v) => v.columns.map((c, i) => [v.viewId, i, c.name, encodeType(c.type)])),
  },
  {
    id: systemTableIds.stViewSub, name: 'st_view_sub', unique: [], pk: false,
    row: product([['view_id', u32], ['arg_id', u64], ['identity', u256], ['num_subscribers', u64],
      ['has_subscribers', bool], ['last_called', i64]]),
    hostRows: () => [],
  },
  {
    id: systemTableIds.stViewArg, name: 'st_view_arg', unique: [], pk: false,
    row: product([['id', u64], ['bytes', bytes]]),
    hostRows: () => [],
  },
  {
    id: systemTableIds.stEventTable, name: 'st_event_table', unique: [[0]], pk: true,
    row: product([['table_id', u32]]),
    schemaRows: (s) => s.tables.filter((t) => t.isEvent).map((t) => [t.tableId]),
  },
  {
    id: systemTableIds.stTableAccessor, name: 'st_table_accessor', unique: [[0]], pk: false,
    row: product([['table_name', str], ['accessor_name', str]]),
    schemaRows: (s) => s.tables.flatMap((t) => t.aliases.length === 0 ? [] : [[t.name, t.aliases[0]!]]),
  },
  {
    id: systemTableIds.stIndexAccessor, name: 'st_index_accessor', unique: [[0]], pk: false,
    row: product([['index_name', str], ['accessor_name', str]]),
    schemaRows: (s) => s.tables.flatMap((t) => t.indexes.flatMap((ix) => ix.aliases.length === 0 ? [] : [[ix.name, ix.aliases[0]!]])),
  },
  {
    id: systemTableIds.stColumnAccessor, name: 'st_column_accessor', unique: [[0, 1]], pk: false,
    row: product([['table_name', str], ['col_name', str], ['accessor_name', str]]),
    schemaRows: (s) => s.tables.flatMap((t) => t.columns.flatMap((c) => c.sourceName === c.name ? [] : [[t.name, c.name, c.sourceName]])),
  },
];

const defById = new Map(defs.map((d) => [d.id, d]));

let schemasCache: TableSchema[] | undefined;

/** Schemas of the system tables (the same objects on every call). */
export function systemTableSchemas(): TableSchema[] {
  if (schemasCache !== undefined) return schemasCache;
  let nextIndexId = systemIndexIdBase;
  schemasCache = defs.map((d) => {
    const colNames = (cols: number[]) => cols.map((c) => d.row.elements[c]!.name).join('_');
    const indexes: IndexSchema[] = d.unique.map((columns) => ({ indexId: nextIndexId++,
      name: `${d.name}_${colNames(columns)}_idx_btree`, aliases: [], algorithm: 'btree', columns, unique: true }));
    return {
      tableId: d.id, name: d.name, aliases: [], rowType: d.row,
      columns: d.row.elements.map((e) => ({ name: e.name!, sourceName: e.name!, type: e.algebraicType })),
      primaryKey: d.pk ? d.unique[0]![0] : undefined, indexes,
      uniqueConstraints: d.unique.map((columns) => ({ name: `${d.name}_${colNames(columns)}_key`, columns })),
      sequences: [], access: d.access ?? 'public', isEvent: false, schedule: undefined, defaultValues: new Map(),
    };
  });
  return schemasCache;
}

/** Rows (decoded values) of schema table `tableId` describing `schema`; none for host tables (see the header). */
export function systemTableRows(tableId: number, schema: DatabaseSchema): Value[][] {
  return defById.get(tableId)?.schemaRows?.(schema) ?? [];
}

/** Whether `tableId` is a host table, whose rows `hostSystemTableRows` gives. */
export function isHostSystemTable(tableId: number): boolean {
  return defById.get(tableId)?.hostRows !== undefined;
}

/** Rows (decoded values) of host table `tableId`. */
export function hostSystemTableRows(tableId: number, state: HostSystemState): Value[][] {
  return defById.get(tableId)?.hostRows?.(state) ?? [];
}

function allTables(s: DatabaseSchema): TableSchema[] {
  return [...systemTableSchemas(), ...s.tables];
}

/** Prepends ids 1, 2, … (sequence, constraint and schedule ids are not kept elsewhere). */
function numbered(rows: Value[][]): Value[][] {
  return rows.map((r, i) => [i + 1, ...r]);
}

function algorithmValue(ix: IndexSchema): Value {
  switch (ix.algorithm) {
    case 'btree': return { tag: 1, value: [ix.columns] };
    case 'hash': return { tag: 2, value: [ix.columns] };
    case 'direct': return { tag: 3, value: [ix.columns[0]] };
  }
}

/** BSATN of an AlgebraicType, laid out like the module library encodes types (tag byte per `algebraicTypeTags`). */
export function encodeType(t: AlgebraicType): Uint8Array {
  const w = new BsatnWriter(64);
  writeType(w, t);
  return w.finish();
}

function writeType(w: BsatnWriter, t: AlgebraicType): void {
  w.writeU8(algebraicTypeTags.indexOf(t.tag));
  switch (t.tag) {
    case 'Ref': w.writeU32(t.value); break;
    case 'Array': writeType(w, t.value); break;
    case 'Product': case 'Sum': {
      const items = t.tag === 'Product' ? t.value.elements : t.value.variants;
      w.writeU32(items.length);
      for (const it of items) {
        if (it.name === undefined) w.writeU8(1);
        else { w.writeU8(0); w.writeString(it.name); }
        writeType(w, it.algebraicType);
      }
      break;
    }
    default: break;
  }
}
