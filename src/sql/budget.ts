// sql/budget.ts — what one SQL request may consume: rows scanned, rows returned, result bytes, wall time.
//
// Owns: QueryBudget (the counts of one request, checked against its QueryLimits), runWithBudget / activeBudget (the
// budget of the request now evaluating), the limit errors' wording, and resultRowSizer (BSATN size of a result row).
// May call: limits.ts, sql/errors.ts, sats/codec.ts, sats/bsatn.ts, sats/types.ts.
//
// Why the budget is ambient rather than a parameter: evaluation nests. A caller's query reads views (whose RawSql
// plans are evaluated inside it) and RLS-filtered tables (whose filters are evaluated inside it) through ReadView
// calls that cannot carry a budget. All of it runs synchronously on one thread, so "the request now evaluating" is
// well defined and every nested evaluation draws on the same budget. Work outside any request — subscription deltas,
// whose cost follows the transaction's changes — runs unbudgeted.

import assert from 'node:assert/strict';
import {
  sqlClockCheckRows, sqlQueryWallTimeMsMax, sqlResultBytesMax, sqlRowsReturnedMax, sqlRowsScannedMax,
} from '../limits.js';
import { BsatnWriter } from '../sats/bsatn.js';
import { compileCodec } from '../sats/codec.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import { SqlError } from './errors.js';

export interface QueryLimits {
  rowsScannedMax: number;
  rowsReturnedMax: number;
  resultBytesMax: number;
  wallTimeMsMax: number;
}

/** The limits every SQL path runs with (src/limits.ts, section "SQL"). */
export const sqlQueryLimits: Readonly<QueryLimits> = Object.freeze({
  rowsScannedMax: sqlRowsScannedMax,
  rowsReturnedMax: sqlRowsReturnedMax,
  resultBytesMax: sqlResultBytesMax,
  wallTimeMsMax: sqlQueryWallTimeMsMax,
});

export class QueryBudget {
  rowsScanned = 0;
  rowsReturned = 0;
  resultBytes = 0;
  private readonly deadlineMs: number;
  private visitsUntilClock = sqlClockCheckRows;

  constructor(
    readonly limits: Readonly<QueryLimits> = sqlQueryLimits,
    private readonly clockMs: () => number = () => performance.now(),
  ) {
    this.deadlineMs = clockMs() + limits.wallTimeMsMax;
  }

  /** Refuses a plan whose estimated rows scanned already exceed the limit, before any row is visited. */
  checkEstimate(rowsScannedEstimate: number, how: string): void {
    const max = this.limits.rowsScannedMax;
    if (this.rowsScanned + rowsScannedEstimate <= max) return;
    throw new SqlError('limit', `SQL query refused: its plan would scan an estimated ${formatCount(rowsScannedEstimate)} rows (${how}), over the limit of ${max} rows scanned (sqlRowsScannedMax)`);
  }

  /** Rows fetched from a table or index, counted before they are visited. */
  scanned(rows: number): void {
    this.rowsScanned += rows;
    if (this.rowsScanned > this.limits.rowsScannedMax) throw exceeded(this.limits.rowsScannedMax, 'rows scanned', 'sqlRowsScannedMax');
  }

  /** One row visited; every `sqlClockCheckRows` visits, the clock is read. */
  visit(): void {
    if (--this.visitsUntilClock > 0) return;
    this.visitsUntilClock = sqlClockCheckRows;
    this.checkClock();
  }

  checkClock(): void {
    if (this.clockMs() > this.deadlineMs) throw exceeded(this.limits.wallTimeMsMax, 'ms of wall time', 'sqlQueryWallTimeMsMax');
  }

  /** One result row of `sizeBytes` (BSATN) kept for the reply. */
  returned(sizeBytes: number): void {
    this.rowsReturned++;
    this.resultBytes += sizeBytes;
    if (this.rowsReturned > this.limits.rowsReturnedMax) throw exceeded(this.limits.rowsReturnedMax, 'rows returned', 'sqlRowsReturnedMax');
    if (this.resultBytes > this.limits.resultBytesMax) throw exceeded(this.limits.resultBytesMax, 'bytes of results', 'sqlResultBytesMax');
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

const fixedSizeBytes: Partial<Record<AlgebraicType['tag'], number>> = {
  Bool: 1, I8: 1, U8: 1, I16: 2, U16: 2, I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8, I128: 16, U128: 16, I256: 32, U256: 32,
};

/**
 * BSATN size of a projected result row (a list of column values) without encoding it whole: fixed-width columns
 * are constants, strings are measured, anything else is written to a reused buffer.
 */
export function resultRowSizer(types: AlgebraicType[], typespace: Typespace): (row: Value[]) => number {
  let fixedBytes = 0;
  const measured: { col: number; size: (v: Value) => number }[] = [];
  types.forEach((type, col) => {
    const fixed = fixedSizeBytes[type.tag];
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
