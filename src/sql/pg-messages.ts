// sql/pg-messages.ts — PostgreSQL backend messages (protocol 3.0) and the ones that answer a query: RowDescription,
// DataRow and CommandComplete for each statement, as server/pgwire/ sends them.
//
// Owns: the backend message framing (`PgMessageWriter`: type byte, int32 length, body; server/pgwire/protocol.ts writes
// its other messages with it) and the rendering of a query's results as those messages, done where the query ran (the
// database's own thread in worker mode, like sql/json.ts): decoding and writing a 400k-row answer on the server's main
// thread held every other client and /v1/ping for it, so the server only writes the bytes.
// May call: sql/pg-text.ts, sql/json.ts (types), sats/ (codec, types).
//
// Reference: https://www.postgresql.org/docs/current/protocol-message-formats.html

import { compileCodec } from '../sats/codec.js';
import type { AlgebraicType, Value } from '../sats/types.js';
import type { SqlStatementResult } from './json.js';
import { describeColumns, rowCells } from './pg-text.js';

/** The first buffer of a writer; it doubles as needed. */
const writerInitialBytes = 256;

/** Backend messages written one after another into one growable buffer. */
export class PgMessageWriter {
  private buf = Buffer.allocUnsafe(writerInitialBytes);
  private len = 0;
  /** Where the open message's length field is (-1: none open). */
  private lengthAt = -1;

  /** Starts a message of `type` (one ASCII letter); end() fills in its length. */
  begin(type: string): this {
    this.room(5);
    this.buf[this.len] = type.charCodeAt(0);
    this.lengthAt = this.len + 1;
    this.len += 5;
    return this;
  }

  end(): this {
    this.buf.writeInt32BE(this.len - this.lengthAt, this.lengthAt);
    this.lengthAt = -1;
    return this;
  }

  uint8(value: number): this {
    this.room(1);
    this.buf[this.len++] = value;
    return this;
  }

  int16(value: number): this {
    this.room(2);
    this.len = this.buf.writeInt16BE(value, this.len);
    return this;
  }

  int32(value: number): this {
    this.room(4);
    this.len = this.buf.writeInt32BE(value, this.len);
    return this;
  }

  /** A NUL-terminated UTF-8 string; NULs inside it are dropped (the format cannot carry them). */
  cString(text: string): this {
    this.utf8(text.includes('\0') ? text.replaceAll('\0', '') : text);
    return this.uint8(0);
  }

  /** A length-prefixed UTF-8 value (a DataRow cell); `null` is SQL NULL (length -1). */
  lengthPrefixed(text: string | null): this {
    if (text === null) return this.int32(-1);
    const at = this.len;
    this.int32(0);
    const bytes = this.utf8(text);
    this.buf.writeInt32BE(bytes, at);
    return this;
  }

  /** The messages written (a view of the writer's buffer; the writer is not used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  private utf8(text: string): number {
    this.room(text.length * 3); // a UTF-16 unit is at most 3 bytes of UTF-8
    const bytes = this.buf.write(text, this.len, 'utf8');
    this.len += bytes;
    return bytes;
  }

  private room(bytes: number): void {
    if (this.len + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }
}

/**
 * A query's answer as backend messages: for each statement its rows (RowDescription, DataRow…, `SELECT n`) or DML's
 * stats tag; ReadyForQuery is the session's. `durationMicros`: for statements the host did not time on their own.
 */
export function renderPgAnswer(results: readonly SqlStatementResult[], durationMicros: number): Buffer {
  const w = new PgMessageWriter();
  for (const result of results) writeStatement(w, result, durationMicros);
  return w.finish();
}

function writeStatement(w: PgMessageWriter, result: SqlStatementResult, durationMicros: number): void {
  const schema = result.schema;
  if (schema.elements.length === 0) {
    w.begin('C').cString(statsTag(result, durationMicros)).end();
    return;
  }
  const columns = describeColumns(schema);
  w.begin('T').int16(columns.length);
  for (const c of columns) {
    // table OID and column number: none; type modifier: none; format: text
    w.cString(c.name).int32(0).int16(0).int32(c.type.oid).int16(c.type.sizeBytes).int32(-1).int16(0);
  }
  w.end();
  const rowType: AlgebraicType = { tag: 'Product', value: schema };
  const codec = result.rows.some((row) => row instanceof Uint8Array) ? compileCodec(rowType, { types: [] }) : undefined;
  for (const row of result.rows) {
    const cells = rowCells(schema, (row instanceof Uint8Array ? codec!.decode(row) : row) as Value[]);
    w.begin('D').int16(cells.length);
    for (const cell of cells) w.lengthPrefixed(cell);
    w.end();
  }
  w.begin('C').cString(`SELECT ${result.rows.length}`).end();
}

/** Upstream's DML tag: `inserted: 1, deleted: 2, updated: 3, server: 1.23ms` (zero counts left out). */
function statsTag(result: SqlStatementResult, durationMicros: number): string {
  const parts: string[] = [];
  const stats = result.stats ?? {};
  if ((stats.rowsInserted ?? 0) !== 0) parts.push(`inserted: ${stats.rowsInserted}`);
  if ((stats.rowsDeleted ?? 0) !== 0) parts.push(`deleted: ${stats.rowsDeleted}`);
  if ((stats.rowsUpdated ?? 0) !== 0) parts.push(`updated: ${stats.rowsUpdated}`);
  parts.push(`server: ${rustDurationText(Number(result.totalDurationMicros ?? durationMicros))}`);
  return parts.join(', ');
}

/** Rust's `{:.2?}` of a `Duration`: the largest unit that keeps the value ≥ 1 (s, ms, µs, ns), two decimals. */
function rustDurationText(micros: number): string {
  if (micros >= 1_000_000) return `${(micros / 1_000_000).toFixed(2)}s`;
  if (micros >= 1_000) return `${(micros / 1_000).toFixed(2)}ms`;
  if (micros >= 1) return `${micros.toFixed(2)}µs`;
  return `${(micros * 1000).toFixed(2)}ns`;
}
