// sql/execute.ts — runs the /sql language: one-off SELECTs and owner-only DML (INSERT, UPDATE, DELETE), SET/SHOW.
//
// Owns: executeSql and its result shapes.
// May call: datastore/types.ts, sats/codec.ts, sats/types.ts, sql/parser.ts, sql/typecheck.ts, sql/planner.ts,
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

/** The results in statement order; `txData` is the committed transaction when the request ran DML. */
export type SqlResults = SqlStatementResult[] & { txData: TxData | undefined };

export interface SqlTarget {
  view: ReadView;
  /** Opens the request's mutable transaction; absent = DML is refused. */
  beginMutTx?: () => MutTx;
}

export interface SqlOptions {
  /** Caller identity (`:sender`). */
  sender: bigint;
  /** The caller owns the database: may read private tables and run DML. */
  isOwner: boolean;
  /** System variables for SET/SHOW (only `row_limit` exists); kept by the caller between requests. */
  vars?: Map<string, bigint>;
  /** The request's limits; sql/budget.ts `sqlQueryLimits` (src/limits.ts) unless a test lowers them. */
  limits?: QueryLimits;
}

const sqlVarNames = new Set(['row_limit']);
const u64Type: AlgebraicType = { tag: 'U64' };

export function executeSql(text: string, target: SqlTarget, options: SqlOptions): SqlResults {
  return runWithBudget(new QueryBudget(options.limits ?? sqlQueryLimits), () => executeStatements(text, target, options));
}

function executeStatements(text: string, target: SqlTarget, options: SqlOptions): SqlResults {
  const statements = parseStatements(text);
  const results = [] as unknown as SqlResults;
  results.txData = undefined;
  let tx: MutTx | undefined;
  try {
    for (const stmt of statements) {
      if (isDml(stmt)) {
        if (!options.isOwner) {
          throw new SqlError('permission', `Caller 0x${options.sender.toString(16).padStart(64, '0')} is not authorized to run SQL DML statements`, stmt.pos);
        }
        if (tx === undefined) {
          if (target.beginMutTx === undefined) throw new SqlError('permission', 'DML statements are not allowed here', stmt.pos);
          tx = target.beginMutTx();
        }
      }
      results.push(runStatement(stmt, tx ?? target.view, tx, options));
    }
  } catch (e) {
    tx?.rollback();
    throw e;
  }
  if (tx !== undefined) results.txData = tx.commit();
  return results;
}

function isDml(s: Statement): boolean {
  return s.kind === 'insert' || s.kind === 'update' || s.kind === 'delete';
}

const noStats = (): SqlStats => ({ rowsInserted: 0, rowsDeleted: 0, rowsUpdated: 0 });

function runStatement(stmt: Statement, view: ReadView, tx: MutTx | undefined, options: SqlOptions): SqlStatementResult {
  switch (stmt.kind) {
    case 'select': return runSelect(stmt, view, options);
    case 'insert': return runInsert(stmt, tx!, options);
    case 'update': return runUpdate(stmt, tx!, options);
    case 'delete': return runDelete(stmt, tx!, options);
    case 'set': {
      checkVar(stmt.name, stmt.pos);
      const value = literalNodeValue(stmt.value, u64Type, stmt.name, view, options);
      options.vars?.set(stmt.name, value as bigint);
      return { schema: { elements: [] }, rows: [], stats: noStats() };
    }
    case 'show': {
      checkVar(stmt.name, stmt.pos);
      const v = options.vars?.get(stmt.name);
      return {
        schema: { elements: [{ name: 'name', algebraicType: { tag: 'String' } }, { name: 'value', algebraicType: u64Type }] },
        rows: v === undefined ? [] : [[stmt.name, v]],
        stats: noStats(),
      };
    }
  }
}

function checkVar(name: string, pos: Statement['pos']): void {
  if (!sqlVarNames.has(name)) throw new SqlError('unresolved', `${name} is not a valid system variable`, pos);
}

function runSelect(stmt: SelectStmt, view: ReadView, options: SqlOptions): SqlStatementResult {
  const schema = view.schema();
  const bound = bindSelect(schema, stmt, options.sender, options.isOwner);
  const q = compileQuery(schema, bound.relations, bound.predicate);
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
  if (limit > 0) {
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
