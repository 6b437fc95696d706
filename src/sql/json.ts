// sql/json.ts — the body of POST /v1/database/:name/sql: one statement result per element, as the CLI and upstream's
// clients read it (schema as a SATS-JSON ProductType, rows as untyped SATS-JSON, duration and DML stats).
//
// Owns: that rendering, done where the query ran (the database's own thread in worker mode: a 400k-row result took
// the server's main thread 1.5 s to decode and stringify, and every other client waited), so the server only sends
// the bytes.
// May call: sats/ (codec, json, types).

import { compileCodec } from '../sats/codec.js';
import { stringifyJson, typeToJson, valueToUntypedJson } from '../sats/json.js';
import type { AlgebraicType, ProductType, Value } from '../sats/types.js';

/** One statement's result before rendering: rows as BSATN or as SATS values. */
export interface SqlStatementResult {
  schema: ProductType;
  rows: readonly unknown[];
  totalDurationMicros?: number | bigint;
  stats?: { rowsInserted?: number; rowsDeleted?: number; rowsUpdated?: number };
}

/** One statement's result in the /sql JSON shape; `durationMicros` when the statement was not timed on its own. */
export function sqlResultToJson(result: SqlStatementResult, durationMicros = 0): unknown {
  const rowType: AlgebraicType = { tag: 'Product', value: result.schema };
  const typespace = { types: [] };
  const codec = result.rows.some((row) => row instanceof Uint8Array) ? compileCodec(rowType, typespace) : undefined;
  const rows = result.rows.map((row) => valueToUntypedJson(rowType, row instanceof Uint8Array ? codec!.decode(row) : (row as Value), typespace));
  return {
    schema: (typeToJson(rowType) as { Product: unknown }).Product,
    rows,
    total_duration_micros: BigInt(Math.round(Number(result.totalDurationMicros ?? durationMicros))),
    stats: {
      rows_inserted: result.stats?.rowsInserted ?? 0,
      rows_deleted: result.stats?.rowsDeleted ?? 0,
      rows_updated: result.stats?.rowsUpdated ?? 0,
    },
  };
}

/** The whole /sql response body, UTF-8. */
export function renderSqlJson(results: readonly SqlStatementResult[], durationMicros: number): Uint8Array {
  return Buffer.from(stringifyJson(results.map((r) => sqlResultToJson(r, durationMicros))));
}
