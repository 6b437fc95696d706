// sql/typecheck.ts — resolves names against the schema and types expressions.
//
// Owns: resolveTable (canonical names and aliases, private-table visibility), resolveColumn, bindPredicate
// (AST expr → BoundExpr with literals converted to column-typed Values), compilePredicate (BoundExpr → closure).
// May call: datastore/types.ts (types only), sats/types.ts, sql/ast.ts, sql/values.ts, sql/errors.ts.
//
// Scope rules (upstream's): a relation is known by its alias, or by the table name exactly as written when it has
// no alias (so `UPDATE accessor_t … WHERE canonical_t.id = 1` is an error). Unqualified columns are accepted when
// exactly one relation in scope has that column. Comparisons need a column on at least one side; the literal on
// the other side is parsed as the column's type. Column-to-column comparisons need identical types.

import type { DatabaseSchema, TableSchema } from '../datastore/types.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import type { CompareOp, Expr, Projection, SelectStmt } from './ast.js';
import { SqlError, type SqlPosition } from './errors.js';
import {
  classifyType, comparatorFor, equalityFor, formatType, literalToValue, sameType,
} from './values.js';

export interface BoundRelation {
  /** The name the query uses for it (alias, else the table name as written). */
  alias: string;
  table: TableSchema;
}

export type BoundExpr =
  | { kind: 'col'; rel: number; col: number; type: AlgebraicType }
  | { kind: 'const'; value: Value; type: AlgebraicType }
  | { kind: 'cmp'; op: CompareOp; left: BoundExpr; right: BoundExpr; operandType: AlgebraicType }
  | { kind: 'and' | 'or'; left: BoundExpr; right: BoundExpr }
  | { kind: 'not'; expr: BoundExpr }
  | { kind: 'isNull'; expr: BoundExpr; negated: boolean; noneTag: number | undefined };

export interface BindContext {
  schema: DatabaseSchema;
  relations: BoundRelation[];
  /** Caller identity, the value of `:sender`. */
  sender: bigint;
}

const boolType: AlgebraicType = { tag: 'Bool' };

/** The type of the value an expression yields. */
export function typeOf(e: BoundExpr): AlgebraicType {
  return e.kind === 'col' || e.kind === 'const' ? e.type : boolType;
}

export function noSuchTable(name: string, pos?: SqlPosition): SqlError {
  return new SqlError('unresolved', `no such table: \`${name}\`. If the table exists, it may be marked private.`, pos);
}

/** Finds a table by canonical name or alias. Private tables are invisible to non-owners. */
export function resolveTable(schema: DatabaseSchema, name: string, isOwner: boolean, pos?: SqlPosition): TableSchema {
  const table = schema.tables.find((t) => t.name === name) ?? schema.tables.find((t) => t.aliases.includes(name));
  if (table === undefined || (table.access === 'private' && !isOwner)) throw noSuchTable(name, pos);
  return table;
}

/** Column position by canonical or source name, or -1. */
export function findColumn(table: TableSchema, name: string): number {
  const i = table.columns.findIndex((c) => c.name === name);
  return i >= 0 ? i : table.columns.findIndex((c) => c.sourceName === name);
}

export function resolveColumnRef(
  ctx: BindContext, qualifier: string | undefined, name: string, pos: SqlPosition,
): { rel: number; col: number } {
  if (qualifier !== undefined) {
    const rel = ctx.relations.findIndex((r) => r.alias === qualifier);
    if (rel < 0) throw new SqlError('unresolved', `\`${qualifier}\` is not in scope`, pos);
    const col = findColumn(ctx.relations[rel]!.table, name);
    if (col < 0) {
      throw new SqlError('unresolved', `\`${ctx.relations[rel]!.table.name}\` does not have a field \`${name}\``, pos);
    }
    return { rel, col };
  }
  let found: { rel: number; col: number } | undefined;
  ctx.relations.forEach((r, rel) => {
    const col = findColumn(r.table, name);
    if (col < 0) return;
    if (found !== undefined) {
      throw new SqlError('unresolved', `column \`${name}\` is ambiguous; qualify it with a table name`, pos);
    }
    found = { rel, col };
  });
  if (found === undefined) {
    if (ctx.relations.length === 1) {
      throw new SqlError('unresolved', `\`${ctx.relations[0]!.table.name}\` does not have a field \`${name}\``, pos);
    }
    throw new SqlError('unresolved', `\`${name}\` is not in scope`, pos);
  }
  return found;
}

/** Binds a WHERE / ON expression, which must be boolean. */
export function bindPredicate(ctx: BindContext, e: Expr): BoundExpr {
  switch (e.kind) {
    case 'and':
    case 'or':
      return { kind: e.kind, left: bindPredicate(ctx, e.left), right: bindPredicate(ctx, e.right) };
    case 'not':
      return { kind: 'not', expr: bindPredicate(ctx, e.expr) };
    case 'cmp':
      return bindComparison(ctx, e);
    case 'isNull': {
      const inner = bindValue(ctx, e.expr, undefined);
      const k = classifyType(typeOf(inner), ctx.schema.typespace);
      return { kind: 'isNull', expr: inner, negated: e.negated, noneTag: k.kind === 'option' ? k.noneTag : undefined };
    }
    case 'lit':
      if (e.lit.type === 'bool') return { kind: 'const', value: e.lit.value, type: boolType };
      throw new SqlError('type', 'Unexpected type: (expected) Bool != literal (inferred)', e.pos);
    case 'col': {
      const b = bindValue(ctx, e, undefined);
      if (classifyType(typeOf(b), ctx.schema.typespace).kind !== 'bool') {
        throw new SqlError('type', `Unexpected type: (expected) Bool != ${formatType(typeOf(b), ctx.schema.typespace)} (inferred)`, e.pos);
      }
      return b;
    }
    case 'param':
      throw new SqlError('type', `Unexpected type: (expected) Bool != Identity (inferred)`, e.pos);
  }
}

function bindComparison(ctx: BindContext, e: Extract<Expr, { kind: 'cmp' }>): BoundExpr {
  const ts = ctx.schema.typespace;
  const isTyped = (x: Expr): boolean => x.kind === 'col' || x.kind === 'cmp' || x.kind === 'and' || x.kind === 'or' ||
    x.kind === 'not' || x.kind === 'isNull';
  let left: BoundExpr;
  let right: BoundExpr;
  if (isTyped(e.left)) {
    left = bindValue(ctx, e.left, undefined);
    right = bindValue(ctx, e.right, typeOf(left), columnName(ctx, left));
  } else if (isTyped(e.right)) {
    right = bindValue(ctx, e.right, undefined);
    left = bindValue(ctx, e.left, typeOf(right), columnName(ctx, right));
  } else if (e.left.kind === 'lit' && e.left.lit.type === 'bool' && e.right.kind === 'lit' && e.right.lit.type === 'bool') {
    left = bindValue(ctx, e.left, boolType);
    right = bindValue(ctx, e.right, boolType);
  } else {
    throw new SqlError('type', 'Cannot resolve type for literal expression', e.pos);
  }
  if (!sameType(typeOf(left), typeOf(right), ts)) {
    throw new SqlError(
      'type',
      `Unexpected type: (expected) ${formatType(typeOf(left), ts)} != ${formatType(typeOf(right), ts)} (inferred)`,
      e.pos,
    );
  }
  if (e.op !== '=' && e.op !== '<>' && comparatorFor(typeOf(left), ts) === undefined) {
    throw new SqlError('type', `Invalid binary operator \`${e.op}\` for type \`${formatType(typeOf(left), ts)}\``, e.pos);
  }
  return { kind: 'cmp', op: e.op, left, right, operandType: typeOf(left) };
}

/** Binds an operand; `expected` types literals (undefined = the operand must carry its own type). */
function columnName(ctx: BindContext, e: BoundExpr): string | undefined {
  return e.kind === 'col' ? ctx.relations[e.rel]!.table.columns[e.col]!.name : undefined;
}

function bindValue(ctx: BindContext, e: Expr, expected: AlgebraicType | undefined, column?: string): BoundExpr {
  const ts = ctx.schema.typespace;
  switch (e.kind) {
    case 'col': {
      const { rel, col } = resolveColumnRef(ctx, e.qualifier, e.name, e.pos);
      return { kind: 'col', rel, col, type: ctx.relations[rel]!.table.columns[col]!.type };
    }
    case 'lit': {
      if (expected === undefined) {
        if (e.lit.type === 'bool') return { kind: 'const', value: e.lit.value, type: boolType };
        throw new SqlError('type', 'Cannot resolve type for literal expression', e.pos);
      }
      return { kind: 'const', value: literalToValue(e.lit, { type: expected, typespace: ts, column, pos: e.pos }), type: expected };
    }
    case 'param':
      return bindParam(ctx, e.name, expected, e.pos);
    default: {
      const p = bindPredicate(ctx, e);
      if (expected !== undefined && classifyType(expected, ts).kind !== 'bool') {
        throw new SqlError('type', `Unexpected type: (expected) ${formatType(expected, ts)} != Bool (inferred)`, e.pos);
      }
      return p;
    }
  }
}

export function bindParam(ctx: BindContext, name: string, expected: AlgebraicType | undefined, pos: SqlPosition): BoundExpr {
  const ts = ctx.schema.typespace;
  if (name.toLowerCase() !== 'sender') throw new SqlError('unresolved', `unknown parameter \`:${name}\``, pos);
  if (expected === undefined) throw new SqlError('type', 'Cannot resolve type for `:sender` here', pos);
  const k = classifyType(expected, ts);
  if (k.kind === 'special' && k.which === 'identity') return { kind: 'const', value: [ctx.sender], type: expected };
  if (k.kind === 'option') {
    const ik = classifyType(k.inner, ts);
    if (ik.kind === 'special' && ik.which === 'identity') {
      return { kind: 'const', value: { tag: k.someTag, value: [ctx.sender] }, type: expected };
    }
  }
  throw new SqlError('type', `Unexpected type: (expected) Identity != ${formatType(expected, ts)} (inferred)`, pos);
}

// ---- evaluation ----------------------------------------------------------------------------------------------

/** A compiled predicate over a tuple of decoded rows (`rows[rel]`). */
export type Predicate = (rows: Value[][]) => boolean;
type Getter = (rows: Value[][]) => Value;

export function compilePredicate(e: BoundExpr, typespace: Typespace): Predicate {
  switch (e.kind) {
    case 'const': { const v = e.value === true; return () => v; }
    case 'col': { const { rel, col } = e; return (rows) => rows[rel]![col] === true; }
    case 'and': {
      const a = compilePredicate(e.left, typespace); const b = compilePredicate(e.right, typespace);
      return (rows) => a(rows) && b(rows);
    }
    case 'or': return compileOr(e, typespace);
    case 'not': { const a = compilePredicate(e.expr, typespace); return (rows) => !a(rows); }
    case 'isNull': {
      const get = compileGetter(e.expr, typespace);
      const { noneTag, negated } = e;
      if (noneTag === undefined) return () => negated;  // a non-Option value is never NULL
      return (rows) => ((get(rows) as { tag: number }).tag === noneTag) !== negated;
    }
    case 'cmp': {
      const a = compileGetter(e.left, typespace); const b = compileGetter(e.right, typespace);
      if (e.op === '=' || e.op === '<>') {
        const eq = equalityFor(e.operandType, typespace);
        return e.op === '=' ? (rows) => eq(a(rows), b(rows)) : (rows) => !eq(a(rows), b(rows));
      }
      const cmp = comparatorFor(e.operandType, typespace)!;
      switch (e.op) {
        case '<': return (rows) => cmp(a(rows), b(rows)) < 0;
        case '<=': return (rows) => cmp(a(rows), b(rows)) <= 0;
        case '>': return (rows) => cmp(a(rows), b(rows)) > 0;
        case '>=': return (rows) => cmp(a(rows), b(rows)) >= 0;
      }
    }
  }
}

/** OR chains of at least this many `column = constant` terms on one column are evaluated as one set lookup. */
const equalitySetTermsMin = 4;

/**
 * An OR chain, flattened once: its `c = v` terms on one column of a boolean, integer or string type (whose equality is
 * `===` on its values), when there are at least equalitySetTermsMin of them wherever they stand, become one Set
 * lookup; every other term is compiled on its own. A 2,500-term chain (within the query text limit) evaluated as a
 * closure per term cost ~1 µs per term per row, for every query subscribed, at every change of its table (session 12
 * attack probes); compiling each nested OR's subtree again made its compile quadratic.
 */
function compileOr(e: BoundExpr, typespace: Typespace): Predicate {
  const terms: BoundExpr[] = [];
  for (const pending: BoundExpr[] = [e]; pending.length > 0;) {
    const x = pending.pop()!;
    if (x.kind === 'or') pending.push(x.right, x.left); else terms.push(x);
  }
  const groups = new Map<string, { rel: number; col: number; values: Value[]; terms: BoundExpr[] }>();
  const others: BoundExpr[] = [];
  for (const t of terms) {
    const eq = setTerm(t, typespace);
    if (eq === undefined) { others.push(t); continue; }
    const key = `${eq.rel} ${eq.col} ${typeof eq.value}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { rel: eq.rel, col: eq.col, values: [], terms: [] }));
    g.values.push(eq.value);
    g.terms.push(t);
  }
  const preds: Predicate[] = [];
  for (const { rel, col, values, terms: grouped } of groups.values()) {
    if (values.length < equalitySetTermsMin) { others.push(...grouped); continue; }
    const set = new Set(values);
    preds.push((rows) => set.has(rows[rel]![col]!));
  }
  for (const t of others) preds.push(compilePredicate(t, typespace));
  if (preds.length === 1) return preds[0]!;
  if (preds.length === 2) { const [a, b] = preds as [Predicate, Predicate]; return (rows) => a(rows) || b(rows); }
  return (rows) => {
    for (let i = 0; i < preds.length; i++) if (preds[i]!(rows)) return true;
    return false;
  };
}

/** The column and value of a `c = v` term a set lookup may take (see compileOr); undefined for any other term. */
function setTerm(x: BoundExpr, typespace: Typespace): { rel: number; col: number; value: Value } | undefined {
  if (x.kind !== 'cmp' || x.op !== '=') return undefined;
  const column = x.left.kind === 'col' ? x.left : x.right.kind === 'col' ? x.right : undefined;
  const constant = x.left.kind === 'const' ? x.left : x.right.kind === 'const' ? x.right : undefined;
  if (column?.kind !== 'col' || constant?.kind !== 'const') return undefined;
  const k = classifyType(x.operandType, typespace);
  const kind = k.kind === 'int' ? (k.wide ? 'bigint' : 'number') : k.kind === 'bool' ? 'boolean' : k.kind === 'string' ? 'string' : undefined;
  // Values of one type compare by `===` only then.
  return kind !== undefined && typeof constant.value === kind ? { rel: column.rel, col: column.col, value: constant.value } : undefined;
}

function compileGetter(e: BoundExpr, typespace: Typespace): Getter {
  if (e.kind === 'col') { const { rel, col } = e; return (rows) => rows[rel]![col]!; }
  if (e.kind === 'const') { const v = e.value; return () => v; }
  const p = compilePredicate(e, typespace);
  return (rows) => p(rows);
}

/** Splits a predicate into its top-level AND terms. */
export function conjuncts(e: BoundExpr | undefined, out: BoundExpr[] = []): BoundExpr[] {
  if (e === undefined) return out;
  if (e.kind === 'and') { conjuncts(e.left, out); conjuncts(e.right, out); } else out.push(e);
  return out;
}

/** The relations an expression reads. */
export function relationsOf(e: BoundExpr, out: Set<number> = new Set()): Set<number> {
  switch (e.kind) {
    case 'col': out.add(e.rel); break;
    case 'const': break;
    case 'cmp': case 'and': case 'or': relationsOf(e.left, out); relationsOf(e.right, out); break;
    case 'not': case 'isNull': relationsOf(e.expr, out); break;
  }
  return out;
}

// ---- SELECT --------------------------------------------------------------------------------------------------

export interface BoundSelect {
  relations: BoundRelation[];
  /** ON and WHERE terms ANDed together (inner joins make them equivalent). */
  predicate: BoundExpr | undefined;
  /** The ON terms alone, one per join (for subscription checks). */
  joinConditions: (BoundExpr | undefined)[];
  projection: BoundProjection;
  limit: bigint | undefined;
}

export type BoundProjection =
  | { kind: 'rows'; rel: number }                                   // `*` (single table) or `alias.*`
  | { kind: 'columns'; items: { rel: number; col: number; name: string }[] }
  | { kind: 'count'; name: string };

export function bindSelect(schema: DatabaseSchema, stmt: SelectStmt, sender: bigint, isOwner: boolean): BoundSelect {
  const relations: BoundRelation[] = [];
  for (const ref of [stmt.from, ...stmt.joins.map((j) => j.right)]) {
    if (relations.some((r) => r.alias === ref.alias)) {
      throw new SqlError('unresolved', `Duplicate name \`${ref.alias}\``, ref.pos);
    }
    relations.push({ alias: ref.alias, table: resolveTable(schema, ref.table, isOwner, ref.pos) });
  }
  const ctx: BindContext = { schema, relations, sender };
  const joinConditions = stmt.joins.map((j) => (j.on === undefined ? undefined : bindPredicate(ctx, j.on)));
  let predicate: BoundExpr | undefined;
  for (const p of [...joinConditions, stmt.where === undefined ? undefined : bindPredicate(ctx, stmt.where)]) {
    if (p !== undefined) predicate = predicate === undefined ? p : { kind: 'and', left: predicate, right: p };
  }
  return { relations, predicate, joinConditions, projection: bindProjection(ctx, stmt.projection), limit: stmt.limit };
}

function bindProjection(ctx: BindContext, p: Projection): BoundProjection {
  switch (p.kind) {
    case 'star': {
      if (p.qualifier === undefined) {
        if (ctx.relations.length > 1) throw new SqlError('unsupported', 'SELECT * is not supported for joins', p.pos);
        return { kind: 'rows', rel: 0 };
      }
      const rel = ctx.relations.findIndex((r) => r.alias === p.qualifier);
      if (rel < 0) throw new SqlError('unresolved', `\`${p.qualifier}\` is not in scope`, p.pos);
      return { kind: 'rows', rel };
    }
    case 'count':
      return { kind: 'count', name: p.alias };
    case 'columns': {
      const seen = new Set<string>();
      const items = p.items.map(({ column, alias }) => {
        const { rel, col } = resolveColumnRef(ctx, column.qualifier, column.name, column.pos);
        const name = alias ?? column.name;
        if (seen.has(name)) throw new SqlError('unresolved', `Duplicate name \`${name}\``, column.pos);
        seen.add(name);
        return { rel, col, name };
      });
      return { kind: 'columns', items };
    }
  }
}
