// sql/execute.ts — runs the /sql language: one-off SELECTs and owner-only DML (INSERT, UPDATE, DELETE), SET/SHOW.
//
// Owns: executeSql and its result shapes.
// May call: datastore/types.ts, datastore/system.ts (st_var's types), sats/codec.ts, sats/types.ts, sql/parser.ts, sql/typecheck.ts, sql/planner.ts,
// sql/values.ts, sql/errors.ts, sql/budget.ts.
//
// Budget: the whole request (every statement, and the WHERE scans of DML) runs under one QueryBudget
// (sql/budget.ts): rows scanned, rows returned, result bytes and values, and wall time are bounded for owners too,
// and a limit error rolls back the request's transaction like any other error.
//
// Transactions: SELECTs before the first DML statement read `target.view`. The first DML statement opens ONE MutTx
// (target.beginMutTx) that every later statement of the request uses (later SELECTs see the writes). On success it
// is committed and its TxData returned (for the host to persist and broadcast); on any error it is rolled back and
// the error is thrown — no statement of the request takes effect.
//
// System variables (upstream's st_var; only `row_limit` exists): SET is a write (owner only, like DML) and takes
// effect with the request: the request works on a copy of `options.vars` and returns the new map in `results.vars`
// when a SET ran, for the host to store durably. SHOW reads as upstream's rewrite `SELECT value FROM st_var WHERE
// name = …` does. A non-owner's request runs with the row limit in its budget (sql/budget.ts).

import { systemTableIds, systemTableSchemas } from '../datastore/system.js';
import { DatastoreError, type MutTx, type ReadView, type TableSchema, type TxData } from '../datastore/types.js';
import { compileCodec, resolveTypeDeep } from '../sats/codec.js';
import type { AlgebraicType, ProductType, Value } from '../sats/types.js';
import type { DeleteStmt, InsertStmt, LiteralNode, SelectStmt, Statement, UpdateStmt } from './ast.js';
import { activeBudget, QueryBudget, resultRowSizer, resultValueCounter, runWithBudget, sqlQueryLimits, type QueryLimits } from './budget.js';
import { SqlError } from './errors.js';
import { parseStatements } from './parser.js';
import { compileQuery, evaluateQuery, type CompiledQuery } from './planner.js';
import {
  bindParam, bindPredicate, bindSelect, findColumn, resolveTable, type BindContext, type BoundRelation,
} from './typecheck.js';
import { literalToValue } from './values.js';

export interface SqlStats { rowsInserted: number; rowsDeleted: number; rowsUpdated: number }

export interface SqlStatementResult {
  /** Named columns of the result. */
  schema: ProductType;
  rows: Value[][];
  stats: SqlStats;
}

/**
 * The results in statement order; `txData` is the committed transaction when the request ran DML; `vars` the system
 * variables after the request when it SET one (the host stores them).
 */
export type SqlResults = SqlStatementResult[] & { txData: TxData | undefined; vars?: Map<string, bigint> };

export interface SqlTarget {
  view: ReadView;
  /** Opens the request's mutable transaction; absent = DML is refused. */
  beginMutTx?: () => MutTx;
  /** Why the request's transaction may not commit (the host's write and memory bounds), or undefined: checked first. */
  commitRefusal?: (tx: MutTx) => string | undefined;
}

export interface SqlOptions {
  /** Caller identity (`:sender`). */
  sender: bigint;
  /** The caller owns the database: may read private tables and run DML. */
  isOwner: boolean;
  /** System variables for SET/SHOW (only `row_limit` exists); kept by the caller between requests (not modified). */
  vars?: ReadonlyMap<string, bigint>;
  /** The request's limits; sql/budget.ts `sqlQueryLimits` (src/limits.ts) unless a test lowers them. */
  limits?: QueryLimits;
}

const sqlVarNames = new Set(['row_limit']);
export const rowLimitVar = 'row_limit';
const u64Type: AlgebraicType = { tag: 'U64' };
/** upstream StVarValue, as st_var's `value` column (datastore/system.ts); row_limit is its U64 variant. */
const stVarValueU64Tag = 8;

export function executeSql(text: string, target: SqlTarget, options: SqlOptions): SqlResults {
  const budget = new QueryBudget(options.limits ?? sqlQueryLimits);
  if (!options.isOwner) budget.rowLimit = options.vars?.get(rowLimitVar);
  return runWithBudget(budget, () => executeStatements(text, target, options));
}

interface RequestState { vars: Map<string, bigint>; varsSet: boolean }

function executeStatements(text: string, target: SqlTarget, options: SqlOptions): SqlResults {
  const statements = parseStatements(text);
  const results = [] as unknown as SqlResults;
  results.txData = undefined;
  const state: RequestState = { vars: new Map(options.vars ?? []), varsSet: false };
  let tx: MutTx | undefined;
  try {
    for (const stmt of statements) {
      if (isDml(stmt) || stmt.kind === 'set') {
        if (!options.isOwner) {
          throw new SqlError('permission', `Caller 0x${options.sender.toString(16).padStart(64, '0')} is not authorized to run SQL DML statements`, stmt.pos);
        }
      }
      if (isDml(stmt)) {
        if (tx === undefined) {
          if (target.beginMutTx === undefined) throw new SqlError('permission', 'DML statements are not allowed here', stmt.pos);
          tx = target.beginMutTx();
        }
      }
      results.push(runStatement(stmt, tx ?? target.view, tx, options, state));
    }
  } catch (e) {
    tx?.rollback();
    throw e;
  }
  if (tx !== undefined) {
    const refused = target.commitRefusal?.(tx);
    if (refused !== undefined) {
      tx.rollback();
      throw new SqlError('limit', refused);
    }
    results.txData = tx.commit();
  }
  if (state.varsSet) results.vars = state.vars;
  return results;
}

function isDml(s: Statement): boolean {
  return s.kind === 'insert' || s.kind === 'update' || s.kind === 'delete';
}

const noStats = (): SqlStats => ({ rowsInserted: 0, rowsDeleted: 0, rowsUpdated: 0 });

function runStatement(stmt: Statement, view: ReadView, tx: MutTx | undefined, options: SqlOptions, state: RequestState): SqlStatementResult {
  switch (stmt.kind) {
    case 'select': return runSelect(stmt, view, options);
    case 'insert': return runInsert(stmt, tx!, options);
    case 'update': return runUpdate(stmt, tx!, options);
    case 'delete': return runDelete(stmt, tx!, options);
    case 'set': {
      checkVar(stmt.name, stmt.pos);
      const value = literalNodeValue(stmt.value, u64Type, stmt.name, view, options);
      state.vars.set(stmt.name, value as bigint);
      state.varsSet = true;
      return { schema: { elements: [] }, rows: [], stats: noStats() };
    }
    case 'show': {
      checkVar(stmt.name, stmt.pos);
      const v = state.vars.get(stmt.name);
      const valueType = stVarValueType();
      return {
        schema: { elements: [{ name: 'value', algebraicType: valueType }] },
        rows: v === undefined ? [] : [[{ tag: stVarValueU64Tag, value: v }]],
        stats: noStats(),
      };
    }
  }
}

function stVarValueType(): AlgebraicType {
  const stVar = systemTableSchemas().find((t) => t.tableId === systemTableIds.stVar)!;
  return stVar.columns[1]!.type;
}

function checkVar(name: string, pos: Statement['pos']): void {
  if (!sqlVarNames.has(name)) throw new SqlError('unresolved', `${name} is not a valid system variable`, pos);
}

function runSelect(stmt: SelectStmt, view: ReadView, options: SqlOptions): SqlStatementResult {
  const schema = view.schema();
  const bound = bindSelect(schema, stmt, options.sender, options.isOwner);
  const q = compileQuery(schema, bound.relations, bound.predicate, { valuesUnused: bound.projection.kind === 'count' });
  const limit = bound.limit === undefined ? Infinity : Number(bound.limit);
  const rows: Value[][] = [];
  const p = bound.projection;
  const budget = activeBudget()!;
  const columnTypes = p.kind === 'columns'
    ? p.items.map((it) => bound.relations[it.rel]!.table.columns[it.col]!.type)
    : p.kind === 'rows' ? bound.relations[p.rel]!.table.columns.map((c) => c.type) : [];
  const sizeOf = p.kind === 'columns' ? resultRowSizer(columnTypes, schema.typespace) : undefined;
  const valuesOf = resultValueCounter(columnTypes, schema.typespace);
  let count = 0;
  if (limit > 0 && p.kind === 'count' && bound.relations.length === 1 && bound.predicate === undefined) {
    // A whole table's COUNT(*) is its row count (the view's: row-level security and views count what the caller
    // sees), not a scan: 10M rows took 6.5 s, past sqlQueryWallTimeMsMax, and held a copy of every row meanwhile.
    count = view.rowCount(bound.relations[0]!.table.tableId);
  } else if (limit > 0) {
    evaluateQuery(q, view, (t) => {
      count++;
      if (p.kind === 'rows') {
        const row = t.vals[p.rel]!;
        budget.returned(t.bytes[p.rel]!.byteLength, valuesOf(row));
        rows.push(row);
      } else if (p.kind === 'columns') {
        const row = p.items.map((it) => t.vals[it.rel]![it.col]!);
        budget.returned(sizeOf!(row), valuesOf(row));
        rows.push(row);
      }
      return p.kind === 'count' || count < limit;
    });
  }
  let resultSchema: ProductType;
  switch (p.kind) {
    case 'rows': resultSchema = namedRowType(bound.relations[p.rel]!.table); break;
    case 'columns':
      resultSchema = { elements: p.items.map((it) => ({ name: it.name, algebraicType: bound.relations[it.rel]!.table.columns[it.col]!.type })) };
      break;
    case 'count':
      resultSchema = { elements: [{ name: p.name, algebraicType: u64Type }] };
      return { schema: resultSchema, rows: limit > 0 ? [[BigInt(count)]] : [], stats: noStats() };
  }
  // Result columns may name module types (Ref); clients read results without the module's typespace.
  const inlined = resolveTypeDeep({ tag: 'Product', value: resultSchema }, schema.typespace);
  return { schema: (inlined as { tag: 'Product'; value: ProductType }).value, rows, stats: noStats() };
}

/** The table's row type with canonical column names. */
export function namedRowType(table: TableSchema): ProductType {
  return { elements: table.columns.map((c) => ({ name: c.name, algebraicType: c.type })) };
}

function literalNodeValue(node: LiteralNode, type: AlgebraicType, column: string, view: ReadView, options: SqlOptions): Value {
  const schema = view.schema();
  if (node.kind === 'param') {
    const ctx: BindContext = { schema, relations: [], sender: options.sender };
    const b = bindParam(ctx, node.name, type, node.pos);
    return (b as { value: Value }).value;
  }
  return literalToValue(node.lit, { type, typespace: schema.typespace, column, pos: node.pos });
}

function runInsert(stmt: InsertStmt, tx: MutTx, options: SqlOptions): SqlStatementResult {
  const schema = tx.schema();
  const table = resolveTable(schema, stmt.table.table, options.isOwner, stmt.table.pos);
  const ncols = table.columns.length;
  // Position in the VALUES tuple of each table column (-1 = not given).
  let sourceOf: number[];
  if (stmt.columns === undefined) {
    sourceOf = table.columns.map((_, i) => i);
  } else {
    sourceOf = new Array<number>(ncols).fill(-1);
    stmt.columns.forEach((c, i) => {
      const col = findColumn(table, c.name);
      if (col < 0) throw new SqlError('unresolved', `\`${table.name}\` does not have a field \`${c.name}\``, c.pos);
      if (sourceOf[col] !== -1) throw new SqlError('unresolved', `Duplicate name \`${c.name}\``, c.pos);
      sourceOf[col] = i;
    });
    const missing = sourceOf.findIndex((s, col) => s === -1 && !table.sequences.some((q) => q.column === col));
    if (missing >= 0) {
      throw new SqlError('type', `The number of fields (${stmt.columns.length}) in the INSERT does not match the number of columns (${ncols}) of the table \`${table.name}\``, stmt.pos);
    }
  }
  const width = stmt.columns === undefined ? ncols : stmt.columns.length;
  const codec = compileCodec({ tag: 'Product', value: table.rowType }, schema.typespace);
  let inserted = 0;
  for (const values of stmt.rows) {
    if (values.length !== width) {
      throw new SqlError('type', `Inserting a row with ${values.length} values into \`${table.name}\` which has ${width} fields`, values[0]?.pos ?? stmt.pos);
    }
    const row: Value[] = table.columns.map((c, col) => {
      const s = sourceOf[col]!;
      if (s === -1) return zeroOf(c.type);   // omitted auto_inc column: 0 asks the sequence for a value
      return literalNodeValue(values[s]!, c.type, c.name, tx, options);
    });
    datastoreCall(() => tx.insert(table.tableId, codec.encode(row)));
    inserted++;
  }
  return { schema: { elements: [] }, rows: [], stats: { ...noStats(), rowsInserted: inserted } };
}

function zeroOf(type: AlgebraicType): Value {
  return ['I64', 'U64', 'I128', 'U128', 'I256', 'U256'].includes(type.tag) ? 0n : 0;
}

/** Rows of a single-table DML target matching `where`, as (bytes, decoded). */
function dmlMatches(table: TableSchema, alias: string, where: DeleteStmt['where'], tx: MutTx, options: SqlOptions): { bytes: Uint8Array; vals: Value[] }[] {
  const schema = tx.schema();
  const relations: BoundRelation[] = [{ alias, table }];
  const predicate = where === undefined ? undefined : bindPredicate({ schema, relations, sender: options.sender }, where);
  const q: CompiledQuery = compileQuery(schema, relations, predicate);
  const out: { bytes: Uint8Array; vals: Value[] }[] = [];
  evaluateQuery(q, tx, (t) => { out.push({ bytes: t.bytes[0]!, vals: t.vals[0]! }); });
  return out;
}

function runDelete(stmt: DeleteStmt, tx: MutTx, options: SqlOptions): SqlStatementResult {
  const table = resolveTable(tx.schema(), stmt.table.table, options.isOwner, stmt.table.pos);
  const matches = dmlMatches(table, stmt.table.alias, stmt.where, tx, options);
  const deleted = matches.length === 0 ? 0 : datastoreCall(() => tx.deleteByRows(table.tableId, matches.map((m) => m.bytes)));
  return { schema: { elements: [] }, rows: [], stats: { ...noStats(), rowsDeleted: deleted } };
}

function runUpdate(stmt: UpdateStmt, tx: MutTx, options: SqlOptions): SqlStatementResult {
  const schema = tx.schema();
  const table = resolveTable(schema, stmt.table.table, options.isOwner, stmt.table.pos);
  const assignments = stmt.assignments.map((a) => {
    const col = findColumn(table, a.column);
    if (col < 0) throw new SqlError('unresolved', `\`${table.name}\` does not have a field \`${a.column}\``, a.pos);
    const column = table.columns[col]!;
    return { col, value: literalNodeValue(a.value, column.type, column.name, tx, options) };
  });
  const matches = dmlMatches(table, stmt.table.alias, stmt.where, tx, options);
  if (matches.length === 0) return { schema: { elements: [] }, rows: [], stats: noStats() };
  const codec = compileCodec({ tag: 'Product', value: table.rowType }, schema.typespace);
  // Delete all old rows first so that updates swapping unique values among matched rows succeed.
  datastoreCall(() => tx.deleteByRows(table.tableId, matches.map((m) => m.bytes)));
  for (const m of matches) {
    const row = m.vals.slice();
    for (const a of assignments) row[a.col] = a.value;
    datastoreCall(() => tx.insert(table.tableId, codec.encode(row)));
  }
  return { schema: { elements: [] }, rows: [], stats: { ...noStats(), rowsUpdated: matches.length } };
}

/** Datastore input errors (unique violation, sequence overflow, …) become SqlErrors carrying the same message. */
function datastoreCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DatastoreError) throw new SqlError('constraint', e.message);
    throw e;
  }
}
