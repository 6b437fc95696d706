// host/moduledef-v9.ts — the running module described as RawModuleDefV9 SATS-JSON, for `GET /schema?version=9`
// (older clients and tools, and upstream's own procedure tests, which fetch it from inside a module).
//
// Upstream builds V9 from its validated module: canonical (case-converted) names everywhere, generated index,
// constraint, sequence and schedule names, lifecycle on the reducers, and column defaults, procedures and views as
// "misc exports". We do the same from the V10 JSON (types, typespace, parameter and return types carried over as they
// are) and the database schema (canonical names). Like upstream, V9 cannot describe submodules: their tables and
// functions are left out.
//
// Owns: the V9 JSON shape. May call: datastore/types (types), sats/moduledef (JSON of V10). Pure: no I/O.

import type { DatabaseSchema, IndexSchema, TableSchema } from '../datastore/types.js';
import { rawModuleDefToJson } from '../sats/moduledef.js';

type Json = unknown;
type JsonObject = Record<string, Json>;

const none: JsonObject = { none: [] };
const some = (value: Json): JsonObject => ({ some: value });

/**
 * `bytes`: the module's RawModuleDef (V10) BSATN; `schema`: its database schema; `canonicalFunction`: source name →
 * canonical name of a root-module reducer, procedure or view (host/reducers.ts functionNamer).
 */
export function rawModuleDefV9Json(bytes: Uint8Array, schema: DatabaseSchema, canonicalFunction: (sourceName: string) => string): JsonObject {
  const v10 = rawModuleDefToJson(bytes, 10) as { sections: JsonObject[] };
  const section = (name: string): Json[] => {
    const found = v10.sections.find((s) => name in s);
    return (found?.[name] as Json[] | undefined) ?? [];
  };
  const typespace = v10.sections.find((s) => 'Typespace' in s)?.Typespace ?? { types: [] };
  const tables = section('Tables') as JsonObject[];
  const schedules = section('Schedules') as JsonObject[];
  const lifecycles = section('LifeCycleReducers') as JsonObject[];

  // Looked up by name, not searched per table: a module of 5,000 tables spent 0.3 s of the main thread in the search.
  const rootTables = rootTablesBySourceName(schema);
  const scheduleOf = new Map<Json, JsonObject>();
  for (const s of schedules) if (!scheduleOf.has(s.table_name)) scheduleOf.set(s.table_name, s);

  const tablesV9: JsonObject[] = [];
  const columnDefaults: JsonObject[] = [];
  for (const raw of tables) {
    const table = rootTables.get(raw.source_name as string);
    if (table === undefined) continue;                  // not in the schema: nothing a V9 reader could use
    const schedule = scheduleOf.get(raw.source_name);
    tablesV9.push({
      name: table.name,
      product_type_ref: raw.product_type_ref,
      primary_key: raw.primary_key,
      indexes: table.indexes.map((ix) => indexV9(ix, raw.indexes as JsonObject[])),
      constraints: table.uniqueConstraints.map((c) => ({ name: some(c.name), data: { Unique: { columns: c.columns } } })),
      sequences: (raw.sequences as JsonObject[]).map((s) => ({
        name: some(table.sequences.find((q) => q.column === s.column)?.name ?? `${table.name}_seq`),
        column: s.column, start: s.start, min_value: s.min_value, max_value: s.max_value, increment: s.increment,
      })),
      schedule: schedule === undefined ? none : some({
        name: some(`${table.name}_sched`),
        reducer_name: canonicalFunction(schedule.function_name as string),
        scheduled_at_column: schedule.schedule_at_col,
      }),
      table_type: raw.table_type,
      table_access: raw.table_access,
    });
    for (const d of (raw.default_values as JsonObject[] | undefined) ?? []) {
      columnDefaults.push({ ColumnDefaultValue: { table: table.name, col_id: d.col_id, value: d.value } });
    }
  }

  const reducers = (section('Reducers') as JsonObject[]).map((r) => {
    const life = lifecycles.find((l) => l.function_name === r.source_name);
    return {
      name: canonicalFunction(r.source_name as string),
      params: r.params,
      lifecycle: life === undefined ? none : some(life.lifecycle_spec),
    };
  });
  const procedures = (section('Procedures') as JsonObject[]).map((p) => ({
    Procedure: { name: canonicalFunction(p.source_name as string), params: p.params, return_type: p.return_type },
  }));
  const views = (section('Views') as JsonObject[]).map((v) => ({
    View: {
      name: canonicalFunction(v.source_name as string), index: v.index, is_public: v.is_public,
      is_anonymous: v.is_anonymous, params: v.params, return_type: v.return_type,
    },
  }));
  const types = (section('Types') as JsonObject[]).map((t) => {
    const name = t.source_name as { scope: Json; source_name: Json };
    return { name: { scope: name.scope, name: name.source_name }, ty: t.ty, custom_ordering: t.custom_ordering };
  });

  return {
    typespace,
    tables: tablesV9,
    reducers,
    types,
    misc_exports: [...columnDefaults, ...procedures, ...views],
    row_level_security: section('RowLevelSecurity'),
  };
}

/**
 * The root-module table each V10 source name (accessor) resolves to: the first table named so or with that alias;
 * submodule tables (`ns.name`) are not root.
 */
function rootTablesBySourceName(schema: DatabaseSchema): Map<string, TableSchema> {
  const byName = new Map<string, TableSchema>();
  for (const table of schema.tables) {
    if (table.name.includes('.')) continue;
    for (const name of [table.name, ...table.aliases]) if (!byName.has(name)) byName.set(name, table);
  }
  return byName;
}

/** One index with its canonical name, the accessor the module gave it (matched by algorithm and columns). */
function indexV9(ix: IndexSchema, rawIndexes: JsonObject[]): JsonObject {
  const algorithm = ix.algorithm === 'btree' ? { BTree: ix.columns }
    : ix.algorithm === 'hash' ? { Hash: ix.columns }
    : { Direct: ix.columns[0] };
  const key = JSON.stringify(algorithm);
  const raw = rawIndexes.find((r) => JSON.stringify(r.algorithm) === key);
  return { name: some(ix.name), accessor_name: raw?.accessor_name ?? none, algorithm };
}
