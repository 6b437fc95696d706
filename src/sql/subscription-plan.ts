// sql/subscription-plan.ts — compiled subscription queries: initial rows and per-transaction deltas.
//
// Owns: compileSubscriptionQuery, SubscriptionPlan, compileRlsFilter. Used by subscription/ (query sets, updates),
// by one-off queries over WebSocket, and by the host for views' RawSql.
// May call: datastore/types.ts, sats/codec.ts, sql/parser.ts, sql/typecheck.ts, sql/planner.ts, sql/errors.ts,
// sql/budget.ts.
//
// Accepted language (upstream's subscription subset plus NOT / IS NULL): `SELECT * | alias.* FROM t [[AS] a]
// { [INNER] JOIN u [[AS] b] ON a.x = b.y } [WHERE predicate]`. The result is always whole rows of one table (the
// "return table"). Every join must be a single column equality with an index on at least one of its two columns
// (else "Subscriptions require indexes on join columns"); an event table may only be the driving side.
//
// Semantics of results: a BAG of the return table's rows (BSATN, byte-identical to the stored rows). For a join,
// a return-table row appears once per combination of rows of the other tables that satisfies the query, so the
// same bytes may appear several times. `delta` returns the net multiset change caused by one committed
// transaction: a row whose multiplicity grew by k appears k times in `inserts`; shrank by k, k times in `deletes`.
// evaluate(after) = evaluate(before) − deletes + inserts, as multisets, always.
// Cost: `delta` starts from the transaction's changed rows of the tables the query reads and reaches the other
// tables through index lookups (a join column without an index costs one scan of that table per delta call). So
// that a commit asks only the plans it can change, a plan tells the manager the `column = constant` its WHERE requires
// (`equalityFilter`) and, for a join of two tables, how a changed row of the other table reaches that constant
// (`joinEdge`).
// Budget: `evaluate` and a join's `delta` inside sql/budget.ts `runWithBudget` (a Subscribe's initial evaluation, a
// one-off query; the manager runs each join delta under its own budget) count their rows against its limits.

import assert from 'node:assert/strict';
import type { DatabaseSchema, ReadView, TableId, TableSchema, TxData } from '../datastore/types.js';
import type { Value } from '../sats/types.js';
import { activeBudget } from './budget.js';
import { SqlError } from './errors.js';
import { parseSelectOnly } from './parser.js';
import {
  columnEqualsConstant, compileQuery, evaluateDelta, evaluateQuery, explainQuery, hasIndexOn, indexLookup, type CompiledQuery,
} from './planner.js';
import { compileCodec, type Codec } from '../sats/codec.js';
import { bindSelect, conjuncts, type BoundSelect } from './typecheck.js';

export interface SubscriptionPlan {
  /** The query text as given. */
  readonly sql: string;
  /** The table whose rows the query returns. */
  readonly returnTable: TableSchema;
  /** Every table the query reads (the return table included), without duplicates. */
  readonly readTables: TableId[];
  readonly isJoin: boolean;
  /** The query uses `:sender` (its result depends on the caller). */
  readonly usesSender: boolean;
  /** All matching rows of the return table, as stored BSATN (a bag for joins). */
  evaluate(view: ReadView): Uint8Array[];
  /** Single-table plans only: does this row of the return table satisfy the WHERE clause? */
  matches(row: Uint8Array): boolean;
  /** matches(), with the decoded rows of a commit shared between plans (see Plan.matchesWith). */
  matchesWith(row: Uint8Array, decoded: Map<Uint8Array, Value[]> | undefined): boolean;
  /**
   * A `column = constant` (a top-level conjunct on a bool, integer, string or Identity-like column) the WHERE requires
   * of the rows of table `tableId`: of the return table for a single-table plan, of either table for a join of two
   * tables. Only a changed row of that table whose `equalityKey` of that column is `key` can change the result through
   * that table, so the manager looks such plans up by the changed rows' values instead of asking each one (manager.ts
   * TableQueries).
   */
  readonly equalityFilter: EqualityFilter | undefined;
  /** A row's values: rows of `equalityFilter`'s table (of the return table when there is none). */
  decodeRow(row: Uint8Array): Value[];
  /** Joins with an `equalityFilter`: how a changed row of the other table finds the constants it can reach. */
  readonly joinEdge: ConstantEdge | undefined;
  /** Net change of `evaluate` caused by `changes`; `view` is the state AFTER the transaction. */
  delta(view: ReadView, changes: TxData): { inserts: Uint8Array[]; deletes: Uint8Array[] };
  /** Access paths, for tests and diagnostics (e.g. `index point person (index 4097)`). */
  explain(): string[];
}

export interface SubscriptionOptions { sender: bigint; isOwner: boolean }

export interface EqualityFilter { tableId: TableId; column: number; key: string }

/**
 * A join of two tables, `ON other.x = filtered.y`, whose WHERE requires `filtered.c = constant` (`equalityFilter`).
 * Through the other table, the result changes only where a changed row's `x` meets rows of the filtered table with
 * `c` equal to the constant, in the state before or after the commit. The manager files such plans under their
 * constant and, from a changed row of the other table, asks only those whose constant `keysReached` returns (upstream's
 * "join edges", which need a unique index; any index on `y` serves here). The rows the commit deleted from the filtered
 * table are not looked up: the plan is found through them by value (`equalityFilter`), as the commit touched that table.
 */
export interface ConstantEdge {
  /** The other table: the one whose changed rows are followed. */
  readonly tableId: TableId;
  /** Same for every plan whose lookups are the same (tables, join columns, filtered column): the manager shares them. */
  readonly id: string;
  /**
   * `equalityKey`s of the filtered column over the rows of the filtered table that `row` (of the other table) joins in
   * `view` (the committed state after the commit); `decoded` caches rows' values for the commit, as in matchesWith.
   */
  keysReached(view: ReadView, row: Uint8Array, decoded: Map<Uint8Array, Value[]>): string[];
}

export function compileSubscriptionQuery(text: string, schema: DatabaseSchema, options: SubscriptionOptions): SubscriptionPlan {
  const stmt = parseSelectOnly(text);
  if (stmt.limit !== undefined) throw new SqlError('unsupported', 'Unsupported: LIMIT in subscriptions', stmt.pos);
  if (stmt.projection.kind !== 'star') {
    throw new SqlError(
      'unsupported',
      'Column projections are not supported in subscriptions; Subscriptions must return a table type',
      stmt.projection.pos,
    );
  }
  stmt.joins.forEach((j) => {
    if (j.on === undefined) throw new SqlError('unsupported', 'Subscriptions require an ON condition for every join', j.pos);
  });
  const bound = bindSelect(schema, stmt, options.sender, options.isOwner);
  checkJoins(bound, stmt.joins.map((j) => j.pos));
  return new Plan(text, schema, bound, /\:sender\b/i.test(text));
}

function checkJoins(bound: BoundSelect, positions: { offset: number; line: number; column: number }[]): void {
  bound.joinConditions.forEach((on, i) => {
    const pos = positions[i];
    if (on === undefined || on.kind !== 'cmp' || on.op !== '=' || on.left.kind !== 'col' || on.right.kind !== 'col' ||
        on.left.rel === on.right.rel) {
      throw new SqlError('unsupported', 'Unsupported: a join condition must be a single equality between columns of two tables', pos);
    }
    const sides = [on.left, on.right] as const;
    // The looked-up side needs an index; an event table may not be looked up (its rows are gone after the tx).
    const usable = sides.filter((s) => {
      const rel = bound.relations[s.rel]!;
      return hasIndexOn(rel, s.col) && !rel.table.isEvent;
    });
    if (usable.length === 0) {
      const eventSide = sides.some((s) => bound.relations[s.rel]!.table.isEvent);
      throw new SqlError('unsupported', eventSide
        ? 'Event tables cannot be used as the lookup table in subscription joins'
        : 'Subscriptions require indexes on join columns', pos);
    }
  });
}

/**
 * The key of a value of a column planner.ts `columnEqualsConstant` accepts: its text (booleans, numbers, bigints, strings;
 * an Identity or another special product of one integer, `[n]`, by its number's).
 */
export function equalityKey(value: Value): string {
  return String(value);
}

/** A top-level `column = constant` conjunct (planner.ts columnEqualsConstant) of relation `rel`. */
interface RelationFilter { rel: number; column: number; key: string }

/**
 * The `column = constant` conjunct the manager files the query under: the first of a single-table query; for a join of
 * two different tables, the first whose join edge is followed by a lookup (joinEdgeOf), else the first followed by a
 * scan, else the first. Self joins and joins of
 * more tables get none (a change of the table through another relation would not be found by its value).
 */
function equalityFilterOf(bound: BoundSelect, q: CompiledQuery): RelationFilter | undefined {
  const { relations } = bound;
  if (relations.length > 2 || (relations.length === 2 && relations[0]!.table.tableId === relations[1]!.table.tableId)) return undefined;
  let first: RelationFilter | undefined;
  let scanned: RelationFilter | undefined;
  for (const c of conjuncts(bound.predicate)) {
    const equality = columnEqualsConstant(c, q.schema.typespace);
    if (equality === undefined) continue;
    const filter = { rel: equality.col.rel, column: equality.col.col, key: equalityKey(equality.value) };
    if (relations.length === 1) return filter;
    const edge = edgeFrom(q, filter);
    if (edge !== undefined && !edge.scan) return filter;
    if (edge !== undefined) scanned ??= filter;
    first ??= filter;
  }
  return scanned ?? first;
}

/**
 * How a join of two relations reaches `filter`'s relation from the other: its `ON` edge, when the filtered table keeps
 * its rows (an event table's are gone after the commit). The filtered side's join column is the filtered column itself
 * (no lookup needed), or has an index (a lookup), or else is scanned for (`scan`): once per changed row of the other
 * table for every plan of that shape, where without an edge each such plan was asked about every change and scanned
 * the filtered table in its own delta (session 11: 8,192 anonymous subscriptions `… JOIN user ON message.sender =
 * user.identity WHERE message.text = 'k<i>'`, message.sender unindexed, made one chat message take 55 s to commit).
 */
function edgeFrom(q: CompiledQuery, filter: RelationFilter): { other: number; otherColumn: number; joinColumn: number; scan: boolean } | undefined {
  if (q.relations[filter.rel]!.table.isEvent) return undefined;
  let scanned: { other: number; otherColumn: number; joinColumn: number; scan: boolean } | undefined;
  for (const e of q.edges) {
    const [near, far] = e.a.rel === filter.rel ? [e.a, e.b] : e.b.rel === filter.rel ? [e.b, e.a] : [undefined, undefined];
    if (near === undefined || far === undefined) continue;
    if (near.col === filter.column || hasIndexOn(q.relations[near.rel]!, near.col)) {
      return { other: far.rel, otherColumn: far.col, joinColumn: near.col, scan: false };
    }
    scanned ??= { other: far.rel, otherColumn: far.col, joinColumn: near.col, scan: true };
  }
  return scanned;
}

/** The ConstantEdge of a join filtered on `filter`'s relation, when edgeFrom finds a way. */
function joinEdgeOf(q: CompiledQuery, filter: RelationFilter): ConstantEdge | undefined {
  const edge = edgeFrom(q, filter);
  if (edge === undefined) return undefined;
  const { other, otherColumn, joinColumn, scan } = edge;
  const otherCodec = q.rowCodecs[other]!;
  const filteredCodec = q.rowCodecs[filter.rel]!;
  const valuesOf = (codec: Codec, row: Uint8Array, decoded: Map<Uint8Array, Value[]>): Value[] => {
    let values = decoded.get(row);
    if (values === undefined) decoded.set(row, (values = codec.decode(row) as Value[]));
    return values;
  };
  const tableId = q.relations[other]!.table.tableId;
  const filteredTableId = q.relations[filter.rel]!.table.tableId;
  const id = `${otherColumn}>${filteredTableId}.${joinColumn}.${filter.column}`;
  if (joinColumn === filter.column) {
    // `ON other.x = filtered.c WHERE filtered.c = k`: the row reaches k exactly when its x is k.
    return { tableId, id, keysReached: (_view, row, decoded) => [equalityKey(valuesOf(otherCodec, row, decoded)[otherColumn]!)] };
  }
  if (scan) {
    // No index on the filtered side's join column: the filtered table is scanned for rows whose join column has the
    // changed row's value. Values compare by equalityKey, which may take two different compound values for one (a
    // row then reaches a query it cannot change: asked for nothing). Scanned rows are decoded, not kept for the commit.
    return {
      tableId, id,
      keysReached(view, row, decoded) {
        const wanted = equalityKey(valuesOf(otherCodec, row, decoded)[otherColumn]!);
        const keys: string[] = [];
        for (const r of view.scan(filteredTableId)) {
          const values = filteredCodec.decode(r) as Value[];
          if (equalityKey(values[joinColumn]!) === wanted) keys.push(equalityKey(values[filter.column]!));
        }
        return keys;
      },
    };
  }
  // Join columns have identical types (typecheck.ts), so the other row's value encodes as the filtered index's key.
  const keyCodec = compileCodec(q.relations[other]!.table.columns[otherColumn]!.type, q.schema.typespace);
  return {
    tableId, id,
    keysReached(view, row, decoded) {
      const key = keyCodec.encode(valuesOf(otherCodec, row, decoded)[otherColumn]!);
      const joined = indexLookup(q, view, filter.rel, joinColumn, key);
      assert.ok(joined !== undefined, 'edgeFrom chose a join column without an index');
      const keys: string[] = [];
      for (const r of joined) keys.push(equalityKey(valuesOf(filteredCodec, r, decoded)[filter.column]!));
      return keys;
    },
  };
}

const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

class Plan implements SubscriptionPlan {
  readonly returnTable: TableSchema;
  readonly readTables: TableId[];
  readonly isJoin: boolean;
  private readonly q: CompiledQuery;
  private readonly returnRel: number;
  /** The relation whose rows `decodeRow` decodes: `equalityFilter`'s, else the return table's. */
  private readonly filteredRel: number;
  readonly equalityFilter: EqualityFilter | undefined;
  readonly joinEdge: ConstantEdge | undefined;

  constructor(readonly sql: string, schema: DatabaseSchema, bound: BoundSelect, readonly usesSender: boolean) {
    assert.ok(bound.projection.kind === 'rows');
    this.returnRel = bound.projection.rel;
    this.returnTable = bound.relations[this.returnRel]!.table;
    this.readTables = [...new Set(bound.relations.map((r) => r.table.tableId))];
    this.isJoin = bound.relations.length > 1;
    this.q = compileQuery(schema, bound.relations, bound.predicate, { valuesUnused: true }); // results are stored bytes
    const filter = equalityFilterOf(bound, this.q);
    this.filteredRel = filter?.rel ?? this.returnRel;
    this.equalityFilter = filter === undefined ? undefined
      : { tableId: bound.relations[filter.rel]!.table.tableId, column: filter.column, key: filter.key };
    this.joinEdge = filter === undefined || !this.isJoin ? undefined : joinEdgeOf(this.q, filter);
  }

  /** matchesWith's argument to the predicates (one relation), reused: a call allocated it per row. */
  private readonly oneRelation: Value[][] = [[]];

  decodeRow(row: Uint8Array): Value[] {
    return this.q.rowCodecs[this.filteredRel]!.decode(row) as Value[];
  }

  evaluate(view: ReadView): Uint8Array[] {
    const out: Uint8Array[] = [];
    const p = this.returnRel;
    const budget = activeBudget();
    evaluateQuery(this.q, view, (t) => {
      const row = t.bytes[p]!;
      budget?.returned(row.byteLength, 0);
      out.push(row);
    });
    return out;
  }

  matches(row: Uint8Array): boolean {
    return this.matchesWith(row, undefined);
  }

  /**
   * matches(), taking the row's decoded values from `decoded` (and leaving them there): a commit's plans on one table
   * share it, so a changed row is decoded once, not once per query (1,000 distinct filtered subscriptions cost
   * ~500 CPU-µs per one-row commit, nearly all of it decoding the same row again).
   */
  matchesWith(row: Uint8Array, decoded: Map<Uint8Array, Value[]> | undefined): boolean {
    assert.ok(!this.isJoin, 'matches() is for single-table plans; use delta() for joins');
    const conjuncts = this.q.conjunctList;
    // No WHERE (the common `SELECT * FROM t`): every (committed, valid) row matches; nothing to decode.
    if (conjuncts.length === 0) return true;
    let values = decoded?.get(row);
    if (values === undefined) {
      values = this.decodeRow(row);
      decoded?.set(row, values);
    }
    const vals = this.oneRelation;
    vals[0] = values;
    for (let i = 0; i < conjuncts.length; i++) if (!conjuncts[i]!.pred(vals)) return false;
    return true;
  }

  delta(view: ReadView, changes: TxData): { inserts: Uint8Array[]; deletes: Uint8Array[] } {
    if (!this.isJoin) return this.singleTableDelta(changes);
    const p = this.returnRel;
    const net = new Map<string, { row: Uint8Array; count: number }>();
    const budget = activeBudget();
    evaluateDelta(this.q, view, changes, (t, sign) => {
      const row = t.bytes[p]!;
      budget?.returned(row.byteLength, 0);
      const k = keyOf(row);
      const e = net.get(k);
      if (e === undefined) net.set(k, { row, count: sign }); else e.count += sign;
    });
    const inserts: Uint8Array[] = [];
    const deletes: Uint8Array[] = [];
    for (const { row, count } of net.values()) {
      for (let i = 0; i < count; i++) inserts.push(row);
      for (let i = 0; i < -count; i++) deletes.push(row);
    }
    return { inserts, deletes };
  }

  /** TxData is already net per table, so filtering its rows is the whole delta. */
  private singleTableDelta(changes: TxData): { inserts: Uint8Array[]; deletes: Uint8Array[] } {
    const id = this.returnTable.tableId;
    const inserts: Uint8Array[] = [];
    const deletes: Uint8Array[] = [];
    for (const t of changes.tables) {
      if (t.tableId !== id) continue;
      for (const r of t.inserts) if (this.matches(r)) inserts.push(r);
      for (const r of t.deletes) if (this.matches(r)) deletes.push(r);
    }
    return { inserts, deletes };
  }

  explain(): string[] {
    return explainQuery(this.q);
  }
}

// ---- row-level security --------------------------------------------------------------------------------------

export interface RlsFilter {
  readonly sql: string;
  /** The table whose visible rows the filter defines. */
  readonly table: TableSchema;
  /** The filter as a subscription plan for one caller. */
  forSender(sender: bigint): SubscriptionPlan;
}

/**
 * Validates a `clientVisibilityFilter` SQL (at publish time: bad SQL must fail the publish) and returns a factory
 * of per-caller plans. RLS filters are written by the module, so they may read private tables.
 */
export function compileRlsFilter(sql: string, schema: DatabaseSchema): RlsFilter {
  const probe = compileSubscriptionQuery(sql, schema, { sender: 0n, isOwner: true });
  return {
    sql,
    table: probe.returnTable,
    forSender: (sender) => compileSubscriptionQuery(sql, schema, { sender, isOwner: true }),
  };
}
