// datastore/system.ts — read-only system tables describing the schema (`st_table`, `st_column`, `st_index`,
// `st_constraint`, `st_sequence`), for `spacetime sql` and tools that inspect a database.
//
// Owns: their schemas (ids below firstUserTableId, as upstream: st_table 1, st_column 2, st_sequence 3, st_index 4,
// st_constraint 5) and their rows, derived from a DatabaseSchema. They are not part of `DatabaseSchema.tables`
// (user tables only); the Datastore registers them so that they resolve by name and id and can be scanned.
// Writes to them are refused. Simplifications: `st_sequence.allocated` is the next value when the datastore was
// built (not live); `col_type` is the BSATN of the column's AlgebraicType.
// May call: datastore/types, datastore/schema (id constants), sats/types, sats/bsatn.

import { BsatnWriter } from '../sats/bsatn.js';
import { algebraicTypeTags, type AlgebraicType, type ProductType, type Value } from '../sats/types.js';
import { firstUserTableId } from './schema.js';
import type { DatabaseSchema, IndexSchema, TableSchema } from './types.js';

export const systemTableIds = { stTable: 1, stColumn: 2, stSequence: 3, stIndex: 4, stConstraint: 5 } as const;
/** Index ids of system tables' primary keys (below firstUserIndexId). */
const systemIndexIdBase = 1;

const u16: AlgebraicType = { tag: 'U16' };
const u32: AlgebraicType = { tag: 'U32' };
const i128: AlgebraicType = { tag: 'I128' };
const str: AlgebraicType = { tag: 'String' };
const bytes: AlgebraicType = { tag: 'Array', value: { tag: 'U8' } };
const colList: AlgebraicType = { tag: 'Array', value: u16 };
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const product = (fields: [string, AlgebraicType][]): ProductType =>
  ({ elements: fields.map(([name, algebraicType]) => ({ name, algebraicType })) });
const option = (t: AlgebraicType): AlgebraicType => ({ tag: 'Sum', value: { variants: [
  { name: 'some', algebraicType: t }, { name: 'none', algebraicType: unit }] } });
const indexAlgorithm: AlgebraicType = { tag: 'Sum', value: { variants: [
  { name: 'Unused', algebraicType: { tag: 'U128' } },
  { name: 'BTree', algebraicType: { tag: 'Product', value: product([['columns', colList]]) } },
  { name: 'Hash', algebraicType: { tag: 'Product', value: product([['columns', colList]]) } },
  { name: 'Direct', algebraicType: { tag: 'Product', value: product([['column', u16]]) } }] } };
const constraintData: AlgebraicType = { tag: 'Sum', value: { variants: [
  { name: 'Unused', algebraicType: { tag: 'U128' } },
  { name: 'Unique', algebraicType: { tag: 'Product', value: product([['columns', colList]]) } }] } };

interface SystemTableDef { id: number; name: string; row: ProductType; rows: (s: DatabaseSchema) => Value[][] }

const defs: SystemTableDef[] = [
  {
    id: systemTableIds.stTable, name: 'st_table',
    row: product([['table_id', u32], ['table_name', str], ['table_type', str], ['table_access', str],
      ['table_primary_key', option(colList)]]),
    rows: (s) => allTables(s).map((t) => [t.tableId, t.name, t.tableId < firstUserTableId ? 'system' : 'user',
      t.access, t.primaryKey === undefined ? { tag: 1, value: [] } : { tag: 0, value: [t.primaryKey] }]),
  },
  {
    id: systemTableIds.stColumn, name: 'st_column',
    row: product([['table_id', u32], ['col_pos', u16], ['col_name', str], ['col_type', bytes]]),
    rows: (s) => allTables(s).flatMap((t) => t.columns.map((c, i) => [t.tableId, i, c.name, encodeType(c.type)])),
  },
  {
    id: systemTableIds.stSequence, name: 'st_sequence',
    row: product([['sequence_id', u32], ['sequence_name', str], ['table_id', u32], ['col_pos', u16],
      ['increment', i128], ['start', i128], ['min_value', i128], ['max_value', i128], ['allocated', i128]]),
    rows: (s) => numbered(s.tables.flatMap((t) => t.sequences.map((q) =>
      [q.name, t.tableId, q.column, q.increment, q.start, q.min, q.max, q.start]))),
  },
  {
    id: systemTableIds.stIndex, name: 'st_index',
    row: product([['index_id', u32], ['table_id', u32], ['index_name', str], ['index_algorithm', indexAlgorithm]]),
    rows: (s) => allTables(s).flatMap((t) => t.indexes.map((ix) => [ix.indexId, t.tableId, ix.name, algorithmValue(ix)])),
  },
  {
    id: systemTableIds.stConstraint, name: 'st_constraint',
    row: product([['constraint_id', u32], ['constraint_name', str], ['table_id', u32], ['constraint_data', constraintData]]),
    rows: (s) => numbered(s.tables.flatMap((t) => t.uniqueConstraints.map((u) =>
      [u.name, t.tableId, { tag: 1, value: [u.columns] }]))),
  },
];

/** Schemas of the system tables (each with a unique btree primary key on its first column). */
export function systemTableSchemas(): TableSchema[] {
  return defs.map((d, i) => {
    const pkIndex: IndexSchema = { indexId: systemIndexIdBase + i, name: `${d.name}_${d.row.elements[0].name}_idx_btree`,
      aliases: [], algorithm: 'btree', columns: [0], unique: true };
    return {
      tableId: d.id, name: d.name, aliases: [], rowType: d.row,
      columns: d.row.elements.map((e) => ({ name: e.name!, sourceName: e.name!, type: e.algebraicType })),
      primaryKey: 0, indexes: [pkIndex], uniqueConstraints: [{ name: `${d.name}_${d.row.elements[0].name}_key`, columns: [0] }],
      sequences: [], access: 'public', isEvent: false, schedule: undefined, defaultValues: new Map(),
    };
  });
}

/** Rows (decoded values) of system table `tableId` describing `schema` and the system tables themselves. */
export function systemTableRows(tableId: number, schema: DatabaseSchema): Value[][] {
  const d = defs.find((x) => x.id === tableId);
  return d === undefined ? [] : d.rows(schema);
}

function allTables(s: DatabaseSchema): TableSchema[] {
  return [...systemTableSchemas(), ...s.tables];
}

/** Prepends ids 1, 2, … (sequence and constraint ids are not kept elsewhere). */
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
