// sql/planner.ts — turns a bound query (relations + predicate) into an executable plan, and runs it.
//
// Owns: compileQuery (access paths: index point/prefix scans for `col = literal`, index lookups for equi-joins,
// hash joins as the fallback), evaluateQuery (full evaluation against a ReadView) and evaluateDelta (the change of a
// join's result caused by a transaction, from the changed rows and index lookups only).
// May call: datastore/types.ts, sats/codec.ts, sats/bsatn.ts, sats/special.ts, sql/typecheck.ts, sql/values.ts,
// sql/budget.ts.
//
// A result is a bag of tuples: one row per relation. Evaluation starts from one relation and adds the others one at
// a time, each through a join edge (`a.x = b.y`) when there is one; every WHERE/ON term is checked as soon as all the
// relations it reads are bound.
//
// Budget (sql/budget.ts): an evaluation inside a request (or a join delta: the subscription manager gives each one a
// budget) counts every row it fetches and visits. Before visiting any, a full evaluation estimates the rows it will
// scan — the root's rows times each cross product's table, join lookups assumed to find one row each (their fan-out
// is unknown until run) — and refuses a plan whose estimate is over the limit.
//
// Delta rule (bag semantics): for relations R1..Rn with post-transaction states Ri' and changes ΔRi
// (inserts +1, deletes −1), Δ(R1 ⋈ … ⋈ Rn) = Σi R1' ⋈ … ⋈ R(i−1)' ⋈ ΔRi ⋈ R(i+1) ⋈ … ⋈ Rn, where the Rj without a
// prime are the pre-transaction states (post state minus inserts plus deletes). Each term starts from ΔRi, so the
// cost is proportional to the changed rows times the index lookups they cause.

import assert from 'node:assert/strict';
import type { IndexSchema, ReadView, StoredRowTest, TableId, TxData } from '../datastore/types.js';
import { BsatnReader } from '../sats/bsatn.js';
import { compileCodec, type Codec } from '../sats/codec.js';
import { activeBudget, type QueryBudget } from './budget.js';
import type { DatabaseSchema } from '../datastore/types.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import {
  compilePredicate, conjuncts, relationsOf, type BoundExpr, type BoundRelation, type Predicate,
} from './typecheck.js';
import { specialKind } from '../sats/special.js';
import { sameType } from './values.js';

/** `rels[a].col = rels[b].col`, usable to reach one relation from the other. */
export interface JoinEdge { a: ColumnAt; b: ColumnAt }
export interface ColumnAt { rel: number; col: number }

/** How rows of one relation with a given column value are found. */
export type LookupPath =
  | { kind: 'point'; indexId: number }       // single-column index on that column
  | { kind: 'prefix'; indexId: number }      // B-tree whose first column it is
  | { kind: 'hash' };                        // no usable index: scan once, hash by value

/** How the first relation's rows are produced in a full evaluation. */
export type RootAccess =
  | { kind: 'scan' }
  | { kind: 'point'; indexId: number; key: Uint8Array }
  | { kind: 'prefix'; indexId: number; prefix: Uint8Array; prefixElems: number };

interface Conjunct { pred: Predicate; rels: number[]; term: BoundExpr }

interface Step {
  rel: number;
  /** How `rel` is reached from an already-bound relation; undefined = cross product (scan). */
  via: { from: ColumnAt; col: number } | undefined;
  /** Conjuncts that become checkable once `rel` is bound. */
  checks: Predicate[];
  /**
   * Decodes only the columns of `rel` the checks read (undefined: they read all, or there are none): a row that fails
   * its checks is never decoded whole (a full scan's WHERE on a 10M-row table decoded every string it skipped).
   */
  checked?: SparseDecoder;
}

export interface CompiledQuery {
  schema: DatabaseSchema;
  relations: BoundRelation[];
  rowCodecs: Codec[];
  edges: JoinEdge[];
  /** Relation evaluation starts from, and how its rows are found. */
  root: { rel: number; access: RootAccess };
  /** Steps of the full evaluation (steps[0] is the root). */
  steps: Step[];
  /** Precomputed lookup path per `rel:col` used by any edge. */
  lookupPaths: Map<string, LookupPath>;
  conjunctList: Conjunct[];
  /** Evaluation orders for delta terms, by starting relation (built on first use). */
  deltaSteps: Map<number, Step[]>;
  /** Codecs of join columns by `rel:col` (built on first use: compiling one per lookup cost more than the lookup). */
  joinKeyCodecs: Map<string, Codec>;
  /**
   * The consumer reads no decoded values of a result (subscriptions read its bytes, COUNT(*) nothing): the last step's
   * row is decoded only as far as its checks need.
   */
  valuesUnused: boolean;
}

/** One result tuple: BSATN row and decoded row per relation. */
export interface Tuple { bytes: Uint8Array[]; vals: Value[][] }

const unboundedBound = Uint8Array.of(2);

export function compileQuery(
  schema: DatabaseSchema, relations: BoundRelation[], predicate: BoundExpr | undefined, options: { valuesUnused?: boolean } = {},
): CompiledQuery {
  const ts = schema.typespace;
  const rowCodecs = relations.map((r) => compileCodec({ tag: 'Product', value: r.table.rowType }, ts));
  const terms = conjuncts(predicate);
  const conjunctList: Conjunct[] = terms.map((t) => ({ pred: compilePredicate(t, ts), rels: [...relationsOf(t)], term: t }));
  const edges: JoinEdge[] = [];
  for (const t of terms) {
    if (t.kind === 'cmp' && t.op === '=' && t.left.kind === 'col' && t.right.kind === 'col' && t.left.rel !== t.right.rel) {
      edges.push({ a: { rel: t.left.rel, col: t.left.col }, b: { rel: t.right.rel, col: t.right.col } });
    }
  }
  const lookupPaths = new Map<string, LookupPath>();
  for (const e of edges) {
    for (const side of [e.a, e.b]) lookupPaths.set(`${side.rel}:${side.col}`, lookupPathFor(relations[side.rel]!, side.col));
  }
  const root = chooseRoot(schema, relations, terms);
  const q: CompiledQuery = {
    schema, relations, rowCodecs, edges, root, steps: [], lookupPaths, conjunctList, deltaSteps: new Map(), joinKeyCodecs: new Map(),
    valuesUnused: options.valuesUnused === true,
  };
  q.steps = orderFrom(q, root.rel);
  return q;
}

function lookupPathFor(rel: BoundRelation, col: number): LookupPath {
  const single = rel.table.indexes.find((ix) => ix.columns.length === 1 && ix.columns[0] === col);
  if (single !== undefined) return { kind: 'point', indexId: single.indexId };
  const prefix = rel.table.indexes.find((ix) => ix.algorithm === 'btree' && ix.columns[0] === col);
  if (prefix !== undefined) return { kind: 'prefix', indexId: prefix.indexId };
  return { kind: 'hash' };
}

export function hasIndexOn(rel: BoundRelation, col: number): boolean {
  return lookupPathFor(rel, col).kind !== 'hash';
}

/** Picks the relation with the best `col = literal` index access (full key beats prefix), else relation 0. */
function chooseRoot(schema: DatabaseSchema, relations: BoundRelation[], terms: BoundExpr[]): { rel: number; access: RootAccess } {
  const ts = schema.typespace;
  let best: { rel: number; access: RootAccess; score: number } = { rel: 0, access: { kind: 'scan' }, score: 0 };
  relations.forEach((r, rel) => {
    const eqConst = new Map<number, Value>();
    for (const t of terms) {
      if (t.kind !== 'cmp' || t.op !== '=') continue;
      if (t.left.kind === 'col' && t.left.rel === rel && t.right.kind === 'const') eqConst.set(t.left.col, t.right.value);
      else if (t.right.kind === 'col' && t.right.rel === rel && t.left.kind === 'const') eqConst.set(t.right.col, t.left.value);
    }
    if (eqConst.size === 0) return;
    for (const ix of r.table.indexes) {
      let matched = 0;
      while (matched < ix.columns.length && eqConst.has(ix.columns[matched]!)) matched++;
      if (matched === 0) continue;
      const full = matched === ix.columns.length;
      if (!full && ix.algorithm !== 'btree') continue;
      const score = (full ? 1000 : 0) + (ix.unique && full ? 500 : 0) + matched;
      if (score <= best.score) continue;
      const key = encodeKey(ix, matched, r, eqConst, ts);
      best = {
        rel, score,
        access: full ? { kind: 'point', indexId: ix.indexId, key } : { kind: 'prefix', indexId: ix.indexId, prefix: key, prefixElems: matched },
      };
    }
  });
  return { rel: best.rel, access: best.access };
}

function encodeKey(ix: IndexSchema, n: number, r: BoundRelation, values: Map<number, Value>, ts: DatabaseSchema['typespace']): Uint8Array {
  const parts = ix.columns.slice(0, n).map((c) => compileCodec(r.table.columns[c]!.type, ts).encode(values.get(c)!));
  return Buffer.concat(parts);
}

/** Evaluation order starting at `start`: connected relations first (through edges), cross products last. */
function orderFrom(q: CompiledQuery, start: number): Step[] {
  const n = q.relations.length;
  const bound = new Set<number>([start]);
  const steps: Step[] = [{ rel: start, via: undefined, checks: [] }];
  while (bound.size < n) {
    let next: Step | undefined;
    for (const e of q.edges) {
      if (bound.has(e.a.rel) && !bound.has(e.b.rel)) { next = { rel: e.b.rel, via: { from: e.a, col: e.b.col }, checks: [] }; break; }
      if (bound.has(e.b.rel) && !bound.has(e.a.rel)) { next = { rel: e.a.rel, via: { from: e.b, col: e.a.col }, checks: [] }; break; }
    }
    if (next === undefined) {
      let r = 0;
      while (bound.has(r)) r++;
      next = { rel: r, via: undefined, checks: [] };
    }
    bound.add(next.rel);
    steps.push(next);
  }
  // Place each conjunct at the first step where all its relations are bound.
  const position = new Map(steps.map((s, i) => [s.rel, i]));
  const checkedColumns = steps.map(() => new Set<number>());
  const equalBytes = steps.map(() => new Map<number, Uint8Array>());
  for (const c of q.conjunctList) {
    const at = c.rels.reduce((m, rel) => Math.max(m, position.get(rel)!), 0);
    const rel = steps[at]!.rel;
    steps[at]!.checks.push(c.pred);
    columnsOf(c.term, rel, checkedColumns[at]!);
    const equal = constantEquality(c.term, rel, q.schema.typespace);
    if (equal !== undefined) equalBytes[at]!.set(equal.col, equal.bytes);
  }
  steps.forEach((step, i) => {
    const columns = checkedColumns[i]!;
    const table = q.relations[step.rel]!.table;
    if (step.checks.length > 0 && (columns.size < table.columns.length || equalBytes[i]!.size > 0)) {
      step.checked = new SparseDecoder(table.columns.map((c) => c.type), columns, equalBytes[i]!, q.schema.typespace);
    }
  });
  return steps;
}

/**
 * Column types with one encoding and one JS value per value (bool, integers, strings, and the special products of one
 * integer: Identity, ConnectionId, Timestamp, TimeDuration, Uuid, decoded as `[n]`): two values are equal exactly when
 * their BSATN bytes are, and when their JS values' text is.
 */
const exactEqualityTypes = new Set(['Bool', 'U8', 'U16', 'U32', 'U64', 'U128', 'U256', 'I8', 'I16', 'I32', 'I64', 'I128', 'I256', 'String']);

function hasExactEquality(type: AlgebraicType, typespace: Typespace): boolean {
  return exactEqualityTypes.has(type.tag) || specialKind(type, typespace) !== undefined;
}

/**
 * `e` as `column = constant` (either side) on a column of an `exactEqualityTypes` type, compared as that type; else
 * undefined. The byte comparison of scans (SparseDecoder) and the subscription lookup by value (subscription-plan.ts
 * equalityFilter) both start here.
 */
export function columnEqualsConstant(e: BoundExpr, typespace: Typespace): { col: Extract<BoundExpr, { kind: 'col' }>; value: Value } | undefined {
  if (e.kind !== 'cmp' || e.op !== '=') return undefined;
  const [col, constant] = e.left.kind === 'col' ? [e.left, e.right] : [e.right, e.left];
  if (col.kind !== 'col' || constant.kind !== 'const') return undefined;
  if (!hasExactEquality(col.type, typespace) || !sameType(e.operandType, col.type, typespace)) return undefined;
  return { col, value: constant.value };
}

/** `column = constant` on a column of `rel` (columnEqualsConstant): the column and the constant's BSATN. */
function constantEquality(e: BoundExpr, rel: number, typespace: Typespace): { col: number; bytes: Uint8Array } | undefined {
  const equality = columnEqualsConstant(e, typespace);
  if (equality === undefined || equality.col.rel !== rel) return undefined;
  return { col: equality.col.col, bytes: compileCodec(equality.col.type, typespace).encode(equality.value) };
}

/** Adds to `out` the columns of relation `rel` that `e` reads. */
function columnsOf(e: BoundExpr, rel: number, out: Set<number>): void {
  switch (e.kind) {
    case 'col': if (e.rel === rel) out.add(e.col); break;
    case 'const': break;
    case 'cmp': case 'and': case 'or': columnsOf(e.left, rel, out); columnsOf(e.right, rel, out); break;
    case 'not': case 'isNull': columnsOf(e.expr, rel, out); break;
  }
}

/**
 * A row's values with only `needed` columns decoded (the others left undefined), up to the last needed one: columns
 * before it are skipped, strings and byte arrays by their length alone (stored rows were validated when written). A
 * column the checks require to equal a constant (`equalBytes`) is compared as bytes first, and a row that differs
 * stops there, undecoded (a string column's WHERE decoded every string of a 10M-row scan).
 */
class SparseDecoder {
  /** Per column up to the last needed one: false when the row cannot pass the checks. */
  private readonly columns: ((r: BsatnReader, out: Value[]) => boolean)[] = [];
  private readonly width: number;

  constructor(types: AlgebraicType[], needed: Set<number>, equalBytes: Map<number, Uint8Array>, typespace: Typespace) {
    this.width = types.length;
    const last = Math.max(...needed);
    for (let i = 0; i <= last; i++) {
      const codec = compileCodec(types[i]!, typespace);
      const type = types[i]!;
      const lengthPrefixed = type.tag === 'String' || (type.tag === 'Array' && type.value.tag === 'U8');
      const skip = lengthPrefixed ? (r: BsatnReader) => { r.skipBytes(r.readU32(), 'a column'); } : (r: BsatnReader) => { codec.skip(r); };
      const expected = equalBytes.get(i);
      if (expected !== undefined) {
        this.columns.push((r, out) => {
          const start = r.offset;
          skip(r);
          if (!bytesEqualAt(r.bytes, start, r.offset, expected)) return false;
          r.offset = start;
          out[i] = codec.read(r);
          return true;
        });
      } else if (needed.has(i)) {
        this.columns.push((r, out) => { out[i] = codec.read(r); return true; });
      } else {
        this.columns.push((r) => { skip(r); return true; });
      }
    }
  }

  /** The row's needed values, or undefined when a column differs from the constant the checks require of it. */
  decode(row: Uint8Array): Value[] | undefined {
    const out = new Array<Value>(this.width);
    return this.decodeInto(new BsatnReader(row), out) ? out : undefined;
  }

  /** decode from `r`'s position (a stored row in place: storedRowTest) into `out`; false when a constant differs. */
  decodeInto(r: BsatnReader, out: Value[]): boolean {
    const columns = this.columns;
    for (let i = 0; i < columns.length; i++) if (!columns[i]!(r, out)) return false;
    return true;
  }
}

function bytesEqualAt(bytes: Uint8Array, start: number, end: number, expected: Uint8Array): boolean {
  if (end - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

// ---- row sources (pre/post transaction states) ----------------------------------------------------------------

interface RowSource {
  rows(rel: number): Uint8Array[];
  /** Rows of `rel` whose column `col` encodes to `key`. */
  lookup(rel: number, col: number, key: Uint8Array): Uint8Array[];
}

const keyString = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Encodes one column of a decoded row (the join key). */
function columnCodec(q: CompiledQuery, rel: number, col: number): Codec {
  const key = `${rel}:${col}`;
  let codec = q.joinKeyCodecs.get(key);
  if (codec === undefined) q.joinKeyCodecs.set(key, (codec = compileCodec(q.relations[rel]!.table.columns[col]!.type, q.schema.typespace)));
  return codec;
}

class PostState implements RowSource {
  private readonly hashes = new Map<string, Map<string, Uint8Array[]>>();
  constructor(private readonly q: CompiledQuery, private readonly view: ReadView, private readonly budget?: QueryBudget) {}

  rows(rel: number): Uint8Array[] {
    return this.view.scan(this.q.relations[rel]!.table.tableId);
  }

  lookup(rel: number, col: number, key: Uint8Array): Uint8Array[] {
    return indexLookup(this.q, this.view, rel, col, key) ?? this.hashFor(rel, col).get(keyString(key)) ?? [];
  }

  /** Fallback when no index serves the column: one scan per evaluation, hashed by the column's bytes. */
  private hashFor(rel: number, col: number): Map<string, Uint8Array[]> {
    const id = `${rel}:${col}`;
    let h = this.hashes.get(id);
    if (h !== undefined) return h;
    h = new Map();
    const codec = this.q.rowCodecs[rel]!;
    const colCodec = columnCodec(this.q, rel, col);
    const rows = this.rows(rel);
    this.budget?.scanned(rows.length);
    for (const row of rows) {
      this.budget?.visit();
      const k = keyString(colCodec.encode((codec.decode(row) as Value[])[col]!));
      const list = h.get(k);
      if (list === undefined) h.set(k, [row]); else list.push(row);
    }
    this.hashes.set(id, h);
    return h;
  }
}

/** The state before the transaction: post state minus its inserts plus its deletes. */
class PreState implements RowSource {
  constructor(
    private readonly q: CompiledQuery,
    private readonly post: PostState,
    private readonly changes: Map<TableId, { inserted: Set<string>; deletes: Uint8Array[] }>,
  ) {}

  rows(rel: number): Uint8Array[] {
    const ch = this.changes.get(this.q.relations[rel]!.table.tableId);
    const rows = this.post.rows(rel);
    if (ch === undefined) return rows;
    return rows.filter((r) => !ch.inserted.has(keyString(r))).concat(ch.deletes);
  }

  lookup(rel: number, col: number, key: Uint8Array): Uint8Array[] {
    const ch = this.changes.get(this.q.relations[rel]!.table.tableId);
    const found = this.post.lookup(rel, col, key);
    if (ch === undefined) return found;
    const out = found.filter((r) => !ch.inserted.has(keyString(r)));
    if (ch.deletes.length > 0) {
      const codec = this.q.rowCodecs[rel]!;
      const colCodec = columnCodec(this.q, rel, col);
      const k = keyString(key);
      for (const d of ch.deletes) {
        if (keyString(colCodec.encode((codec.decode(d) as Value[])[col]!)) === k) out.push(d);
      }
    }
    return out;
  }
}

/**
 * Rows of `rel` in `view` whose column `col` (one side of a join edge) encodes to `key`, through the column's index;
 * undefined when no index serves it. Also the subscription manager's way from a changed row to the constants a join
 * reaches (sql/subscription-plan.ts `joinEdge`).
 */
export function indexLookup(q: CompiledQuery, view: ReadView, rel: number, col: number, key: Uint8Array): Uint8Array[] | undefined {
  const path = q.lookupPaths.get(`${rel}:${col}`);
  assert.ok(path !== undefined, 'lookup on a column without a planned path');
  switch (path.kind) {
    case 'point': return view.scanIndexPoint(path.indexId, key);
    case 'prefix':
      return view.scanIndexRange(path.indexId, { prefix: key, prefixElems: 1, rangeStart: unboundedBound, rangeEnd: unboundedBound });
    case 'hash': return undefined;
  }
}

// ---- evaluation ------------------------------------------------------------------------------------------------

/** Calls `emit` for every tuple of the query's result in `view` (bag semantics). `emit` returns false to stop. */
export function evaluateQuery(q: CompiledQuery, view: ReadView, emit: (t: Tuple) => boolean | void): void {
  const budget = activeBudget();
  if (budget === undefined) evaluateWith(q, view, emit, undefined);
  else budget.evaluating(() => evaluateWith(q, view, emit, budget));
}

function evaluateWith(q: CompiledQuery, view: ReadView, emit: (t: Tuple) => boolean | void, budget: QueryBudget | undefined): void {
  const source = new PostState(q, view, budget);
  const rootRel = q.root.rel;
  const tableId = q.relations[rootRel]!.table.tableId;
  const access = q.root.access;
  if (access.kind === 'scan' && view.scanChunk !== undefined) {
    evaluateFullScanInChunks(q, view as ChunkedView, tableId, emit, budget);
    return;
  }
  const rows =
    access.kind === 'point' ? view.scanIndexPoint(access.indexId, access.key)
    : access.kind === 'prefix' ? view.scanIndexRange(access.indexId, { prefix: access.prefix, prefixElems: access.prefixElems, rangeStart: unboundedBound, rangeEnd: unboundedBound })
    : view.scan(tableId);
  if (budget !== undefined) {
    checkEstimate(q, view, rows.length, budget);
    budget.scanned(rows.length);
  }
  const sources = q.relations.map(() => source as RowSource);
  const tuple = newTuple(q.relations.length);
  for (const row of rows) {
    if (extendFrom(q, q.steps, 0, row, tuple, sources, emit, budget) === false) return;
  }
}

type ChunkedView = ReadView & Required<Pick<ReadView, 'scanChunk'>>;
/** Rows copied per piece of a full scan: large enough that a piece's overhead is nothing, small enough to hold. */
const scanChunkRows = 4096;

/**
 * A full scan of the root table, `scanChunkRows` rows at a time: a LIMIT stops the copying too (`SELECT * … LIMIT 3` of
 * 10M rows copied all of them first: 5 s and 1.5 GB), and no more than one piece of copies is held. A single table is
 * not refused up front by its size: the running count of rows scanned stops it, so a query that stops early works on
 * tables larger than the budget; joins keep the estimate.
 */
function evaluateFullScanInChunks(
  q: CompiledQuery, view: ChunkedView, tableId: TableId, emit: (t: Tuple) => boolean | void,
  budget: QueryBudget | undefined,
): void {
  const join = q.steps.length > 1;
  // A filtered (RLS) table's row count is a scan of its own: taken only when the estimate is needed.
  if (budget !== undefined && (join || budget.rowLimit !== undefined)) checkEstimate(q, view, view.rowCount(tableId), budget, join);
  const source = new PostState(q, view, budget);
  const sources = q.relations.map(() => source as RowSource);
  const tuple = newTuple(q.relations.length);
  const keep = view.scanChunkWhere === undefined ? undefined : storedRowTest(q);
  for (let from = 0; from >= 0;) {
    // Rows the root's WHERE rejects are tested where they are stored, and never copied (docs/performance.md "Scans").
    const chunk: { rows: Uint8Array[]; next: number; visited?: number } = keep === undefined
      ? view.scanChunk(tableId, from, scanChunkRows) : view.scanChunkWhere!(tableId, from, scanChunkRows, keep);
    if (budget !== undefined) {
      budget.scanned(chunk.visited ?? chunk.rows.length);
      budget.checkClock();
    }
    for (const row of chunk.rows) {
      if (extendFrom(q, q.steps, 0, row, tuple, sources, emit, budget, keep !== undefined) === false) return;
    }
    from = chunk.next;
  }
}

/**
 * The root step's WHERE as a test of a stored row in place, or undefined when it has none. It decodes what the checks
 * read (the sparse decoder, else the whole row) into scratch arrays; extendFrom does not check a row it accepted again.
 */
function storedRowTest(q: CompiledQuery): StoredRowTest | undefined {
  const step = q.steps[0]!;
  if (step.checks.length === 0) return undefined;
  const checked = step.checked, codec = q.rowCodecs[step.rel]!;
  const vals = new Array<Value[]>(q.relations.length), out: Value[] = [];
  let reader: BsatnReader | undefined;
  return (bytes, start) => {
    if (reader === undefined || reader.bytes !== bytes) reader = new BsatnReader(bytes);
    reader.offset = start;
    if (checked !== undefined) {
      if (!checked.decodeInto(reader, out)) return false;
      vals[step.rel] = out;
    } else {
      vals[step.rel] = codec.read(reader) as Value[];
    }
    for (const check of step.checks) if (!check(vals)) return false;
    return true;
  };
}

/**
 * Refuses, before any row is visited, a plan whose estimated rows exceed the caller's row limit or (`scanLimitUpFront`)
 * the rows-scanned budget: the root's rows, times every cross product's table rows; a join lookup is assumed to find
 * one row (a hash join also scans its table once).
 */
function checkEstimate(q: CompiledQuery, view: ReadView, rootRows: number, budget: QueryBudget, scanLimitUpFront = true): void {
  let visits = rootRows;
  let estimate = rootRows;
  const crossFactors = [rootRows];
  const tableRows = (rel: number) => view.rowCount(q.relations[rel]!.table.tableId);
  for (const step of q.steps.slice(1)) {
    if (step.via === undefined) {
      const rows = tableRows(step.rel);
      visits *= rows;
      crossFactors.push(rows);
    } else if (q.lookupPaths.get(`${step.rel}:${step.via.col}`)!.kind === 'hash') {
      estimate += tableRows(step.rel);
    }
    estimate += visits;
  }
  const how = crossFactors.length > 1 ? `a cross join of ${crossFactors.join(' × ')} rows` : `${rootRows} rows to start from`;
  budget.checkEstimate(estimate, how, scanLimitUpFront);
}

function newTuple(n: number): Tuple {
  return { bytes: new Array<Uint8Array>(n), vals: new Array<Value[]>(n) };
}

/**
 * Binds `row` at steps[i], checks, then recurses into the next steps. Returns false when `emit` asked to stop.
 * `passed`: the row already passed steps[i]'s checks (storedRowTest), so only the values later steps read are decoded.
 */
function extendFrom(
  q: CompiledQuery, steps: Step[], i: number, row: Uint8Array, tuple: Tuple, sources: RowSource[],
  emit: (t: Tuple) => boolean | void, budget: QueryBudget | undefined, passed = false,
): boolean {
  budget?.visit();
  const step = steps[i]!;
  tuple.bytes[step.rel] = row;
  if (passed) {
    if (i + 1 < steps.length || !q.valuesUnused) tuple.vals[step.rel] = q.rowCodecs[step.rel]!.decode(row) as Value[];
  } else if (step.checked !== undefined) {
    const values = step.checked.decode(row);
    if (values === undefined) return true;
    tuple.vals[step.rel] = values;
    for (const check of step.checks) if (!check(tuple.vals)) return true;
    if (i + 1 < steps.length || !q.valuesUnused) tuple.vals[step.rel] = q.rowCodecs[step.rel]!.decode(row) as Value[];
  } else if (step.checks.length > 0 || i + 1 < steps.length || !q.valuesUnused) {
    tuple.vals[step.rel] = q.rowCodecs[step.rel]!.decode(row) as Value[];
    for (const check of step.checks) if (!check(tuple.vals)) return true;
  }
  if (i + 1 === steps.length) return emit(tuple) !== false;
  const next = steps[i + 1]!;
  let candidates: Uint8Array[];
  if (next.via === undefined) {
    candidates = sources[next.rel]!.rows(next.rel);
  } else {
    const { from, col } = next.via;
    const key = columnCodec(q, from.rel, from.col).encode(tuple.vals[from.rel]![from.col]!);
    candidates = sources[next.rel]!.lookup(next.rel, col, key);
  }
  budget?.scanned(candidates.length);
  for (const c of candidates) if (!extendFrom(q, steps, i + 1, c, tuple, sources, emit, budget)) return false;
  return true;
}

/**
 * Net change of the query's result caused by `changes`, where `view` is the state after them. Calls `emit` once per
 * result tuple with its multiplicity change (+1 or −1 per derivation; callers sum per row).
 */
export function evaluateDelta(q: CompiledQuery, view: ReadView, changes: TxData, emit: (t: Tuple, sign: 1 | -1) => void): void {
  const byTable = new Map<TableId, { inserts: Uint8Array[]; deletes: Uint8Array[]; inserted: Set<string> }>();
  for (const t of changes.tables) {
    if (t.inserts.length === 0 && t.deletes.length === 0) continue;
    byTable.set(t.tableId, { inserts: t.inserts, deletes: t.deletes, inserted: new Set(t.inserts.map(keyString)) });
  }
  if (!q.relations.some((r) => byTable.has(r.table.tableId))) return;
  const budget = activeBudget();
  const post = new PostState(q, view, budget);
  const pre = new PreState(q, post, byTable);
  const n = q.relations.length;
  for (let i = 0; i < n; i++) {
    const ch = byTable.get(q.relations[i]!.table.tableId);
    if (ch === undefined) continue;
    // Relations before i see the post state, after i the pre state.
    const sources: RowSource[] = q.relations.map((_, j) => (j < i ? post : pre));
    let steps = q.deltaSteps.get(i);
    if (steps === undefined) { steps = orderFrom(q, i); q.deltaSteps.set(i, steps); }
    const tuple = newTuple(n);
    for (const row of ch.inserts) extendFrom(q, steps, 0, row, tuple, sources, (t) => { emit(t, 1); }, budget);
    for (const row of ch.deletes) extendFrom(q, steps, 0, row, tuple, sources, (t) => { emit(t, -1); }, budget);
  }
}

/** A short description of the plan's access paths (for tests and debugging). */
export function explainQuery(q: CompiledQuery): string[] {
  const out: string[] = [];
  const name = (rel: number) => q.relations[rel]!.alias;
  const a = q.root.access;
  out.push(a.kind === 'scan' ? `scan ${name(q.root.rel)}` : `${a.kind === 'point' ? 'index point' : 'index prefix'} ${name(q.root.rel)} (index ${a.indexId})`);
  for (const s of q.steps.slice(1)) {
    if (s.via === undefined) { out.push(`cross ${name(s.rel)}`); continue; }
    const path = q.lookupPaths.get(`${s.rel}:${s.via.col}`)!;
    out.push(path.kind === 'hash' ? `hash join ${name(s.rel)}` : `index join ${name(s.rel)} (index ${path.indexId})`);
  }
  return out;
}
