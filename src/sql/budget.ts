// sql/budget.ts — what one SQL request may consume: rows scanned, rows returned, result bytes, wall time.
//
// Owns: QueryBudget (the counts of one request, checked against its QueryLimits), runWithBudget / activeBudget (the
// budget of the request now evaluating), the limit errors' wording, resultRowSizer (BSATN size of a result row) and
// resultValueCounter (how many values a row's JSON rendering holds).
// May call: limits.ts, sql/errors.ts, datastore/key.ts (fixedWidth), sats/codec.ts, sats/bsatn.ts, sats/types.ts.
//
// Why the budget is ambient rather than a parameter: evaluation nests. A caller's query reads views (whose RawSql
// plans are evaluated inside it) and RLS-filtered tables (whose filters are evaluated inside it) through ReadView
// calls that cannot carry a budget. All of it runs synchronously on one thread, so "the request now evaluating" is
// well defined and every nested evaluation draws on the same budget. Work outside any request — subscription deltas,
// whose cost follows the transaction's changes — runs unbudgeted.
//
// Row limit (`SET row_limit = N`, upstream's st_var row_limit): a budget may carry the caller's row limit (the host
// sets it for non-owners only, as upstream). The estimates of the request's top-level plans (not those of views and
// RLS filters evaluated inside them) are summed, and a request whose sum exceeds the limit is refused before its rows
// are visited, with upstream's message.

import assert from 'node:assert/strict';
import {
  sqlClockCheckRows, sqlQueryWallTimeMsMax, sqlResultBytesMax, sqlResultValuesMax, sqlRowsReturnedMax, sqlRowsScannedMax,
} from '../limits.js';
import { fixedWidth } from '../datastore/key.js';
import { BsatnWriter } from '../sats/bsatn.js';
import { compileCodec, resolveType } from '../sats/codec.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import { SqlError } from './errors.js';

export interface QueryLimits {
  rowsScannedMax: number;
  rowsReturnedMax: number;
  resultBytesMax: number;
  /** Values of rows rendered as JSON (/sql); BSATN replies count none. */
  resultValuesMax: number;
  wallTimeMsMax: number;
}

/** The limits every SQL path runs with (src/limits.ts, section "SQL"). */
export const sqlQueryLimits: Readonly<QueryLimits> = Object.freeze({
  rowsScannedMax: sqlRowsScannedMax,
  rowsReturnedMax: sqlRowsReturnedMax,
  resultBytesMax: sqlResultBytesMax,
  resultValuesMax: sqlResultValuesMax,
  wallTimeMsMax: sqlQueryWallTimeMsMax,
});

export class QueryBudget {
  rowsScanned = 0;
  rowsReturned = 0;
  resultBytes = 0;
  resultValues = 0;
  /** The caller's row limit (st_var `row_limit`), when one applies to it. */
  rowLimit: bigint | undefined;
  /** Sum of the estimates of the request's top-level plans (checked against rowLimit). */
  private estimatedRows = 0;
  /** Plans being evaluated now, nested ones included (evaluateQuery enters and leaves). */
  private depth = 0;
  private readonly deadlineMs: number;
  private visitsUntilClock = sqlClockCheckRows;

  constructor(
    readonly limits: Readonly<QueryLimits> = sqlQueryLimits,
    private readonly clockMs: () => number = () => performance.now(),
  ) {
    this.deadlineMs = clockMs() + limits.wallTimeMsMax;
  }

  /**
   * Refuses a plan whose estimated rows exceed the caller's row limit, or (`upFront`: joins) whose estimated rows
   * scanned exceed the scan limit, before any row is visited.
   */
  checkEstimate(rowsScannedEstimate: number, how: string, upFront = true): void {
    if (this.rowLimit !== undefined && this.depth === 1) {
      this.estimatedRows += rowsScannedEstimate;
      if (this.estimatedRows > Number(this.rowLimit)) {
        throw new SqlError('limit', `Estimated cardinality (${formatCount(this.estimatedRows)} rows) exceeds limit (${this.rowLimit} rows)`);
      }
    }
    const max = this.limits.rowsScannedMax;
    if (!upFront || this.rowsScanned + rowsScannedEstimate <= max) return;
    const estimate = formatCount(rowsScannedEstimate);
    throw new SqlError('limit',
      `SQL query refused: its plan would scan an estimated ${estimate} rows (${how}), over the limit of ${max} rows scanned (sqlRowsScannedMax)`);
  }

  /** Runs one plan's evaluation (nested plans count as nested: only top-level ones meet the row limit). */
  evaluating<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  /** Rows fetched from a table or index, counted before they are visited. */
  scanned(rows: number): void {
    this.rowsScanned += rows;
    const max = this.limits.rowsScannedMax;
    if (this.rowsScanned > max) throw exceeded(max, 'rows scanned', 'sqlRowsScannedMax');
  }

  /** One row visited; every `sqlClockCheckRows` visits, the clock is read. */
  visit(): void {
    if (--this.visitsUntilClock > 0) return;
    this.visitsUntilClock = sqlClockCheckRows;
    this.checkClock();
  }

  checkClock(): void {
    if (this.clockMs() <= this.deadlineMs) return;
    throw exceeded(this.limits.wallTimeMsMax, 'ms of wall time', 'sqlQueryWallTimeMsMax');
  }

  /** One result row of `sizeBytes` (BSATN) kept for the reply, holding `values` to render as JSON (0: sent as BSATN). */
  returned(sizeBytes: number, values: number): void {
    const l = this.limits;
    if (++this.rowsReturned > l.rowsReturnedMax) throw exceeded(l.rowsReturnedMax, 'rows returned', 'sqlRowsReturnedMax');
    if ((this.resultBytes += sizeBytes) > l.resultBytesMax) throw exceeded(l.resultBytesMax, 'bytes of results', 'sqlResultBytesMax');
    if ((this.resultValues += values) > l.resultValuesMax) {
      throw exceeded(l.resultValuesMax, 'values of results', 'sqlResultValuesMax');
    }
  }
}

function exceeded(max: number, unit: string, name: string): SqlError {
  return new SqlError('limit', `SQL query exceeded the limit of ${max} ${unit} (${name})`);
}

/** Exact below 2^53, else in scientific notation (a cross join's product can be astronomically large). */
function formatCount(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : n.toExponential(2);
}

let active: QueryBudget | undefined;

/** The budget of the request now evaluating on this thread; undefined outside any request. */
export function activeBudget(): QueryBudget | undefined {
  return active;
}

/**
 * Runs `fn` (synchronous: the budget must not outlive it) with `budget` active. A nested call keeps the outer budget:
 * one request, one budget.
 */
export function runWithBudget<T>(budget: QueryBudget, fn: () => T): T {
  if (active !== undefined) return fn();
  active = budget;
  try {
    const result = fn();
    assert.ok(!(result instanceof Promise), 'runWithBudget takes synchronous work only');
    return result;
  } finally {
    active = undefined;
  }
}

// ---- result sizes ----------------------------------------------------------------------------------------------

/**
 * BSATN size of a projected result row (a list of column values) without encoding it whole: fixed-width columns
 * (datastore/key.ts fixedWidth) are constants, strings are measured, anything else is written to a reused buffer.
 */
export function resultRowSizer(types: AlgebraicType[], typespace: Typespace): (row: Value[]) => number {
  let fixedBytes = 0;
  const measured: { col: number; size: (v: Value) => number }[] = [];
  types.forEach((type, col) => {
    const fixed = fixedWidth(type, typespace);
    if (fixed !== undefined) { fixedBytes += fixed; return; }
    if (type.tag === 'String') { measured.push({ col, size: (v) => 4 + Buffer.byteLength(v as string, 'utf8') }); return; }
    const codec = compileCodec(type, typespace);
    const writer = new BsatnWriter(256);
    measured.push({ col, size: (v) => { writer.reset(); codec.write(writer, v); return writer.lengthBytes; } });
  });
  return (row) => {
    let size = fixedBytes;
    for (const m of measured) size += m.size(row[m.col]!);
    return size;
  };
}

/**
 * How many values the JSON rendering of a result row holds (sats/json.ts untyped form): one per primitive or string,
 * per byte array (one hex string), per sum tag; array elements each. Constant unless the row holds arrays.
 */
export function resultValueCounter(types: AlgebraicType[], typespace: Typespace): (row: Value[]) => number {
  const counters = types.map((t) => valueCounter(t, typespace));
  let fixed = 0;
  for (const c of counters) if (typeof c === 'number') fixed += c;
  const varying: { col: number; count: (v: Value) => number }[] = [];
  counters.forEach((c, col) => { if (typeof c !== 'number') varying.push({ col, count: c }); });
  if (varying.length === 0) return () => fixed;
  return (row) => {
    let n = fixed;
    for (const v of varying) n += v.count(row[v.col]!);
    return n;
  };
}

/** A constant count, or a function of the value when the type holds arrays. */
function valueCounter(type: AlgebraicType, typespace: Typespace): number | ((v: Value) => number) {
  const t = resolveType(type, typespace);
  switch (t.tag) {
    case 'Array': {
      if (resolveType(t.value, typespace).tag === 'U8') return 1;
      const elem = valueCounter(t.value, typespace);
      if (typeof elem === 'number') return (v) => 1 + elem * (v as Value[]).length;
      return (v) => (v as Value[]).reduce((n: number, e) => n + elem(e), 1);
    }
    case 'Product': {
      const parts = t.value.elements.map((e) => valueCounter(e.algebraicType, typespace));
      if (parts.every((p) => typeof p === 'number')) return Math.max(1, (parts as number[]).reduce((a, b) => a + b, 0));
      return (v) => parts.reduce((n: number, p, i) => n + (typeof p === 'number' ? p : p((v as Value[])[i]!)), 0);
    }
    case 'Sum': {
      const variants = t.value.variants.map((x) => valueCounter(x.algebraicType, typespace));
      const first = variants[0] ?? 0;
      if (typeof first === 'number' && variants.every((p) => p === first)) return 1 + first;
      return (v) => {
        const { tag, value } = v as { tag: number; value: Value };
        const p = variants[tag]!;
        return 1 + (typeof p === 'number' ? p : p(value));
      };
    }
    default:
      return 1;
  }
}
