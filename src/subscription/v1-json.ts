// subscription/v1-json.ts — rows as upstream's legacy `v1.json.spacetimedb` protocol sends them: each row the JSON text
// of its untyped SATS-JSON (products as arrays), in JSON string arrays (server/websocket/json-session.ts).
//
// Owns: that rendering (`RowText`, with the sqlResultValuesMax bound on one answer), and query answers for a v1 JSON
// client rendered where they were decided (`JsonAnswer`): in worker mode a SubscribeApplied, UnsubscribeApplied or
// one-off result is rendered on its database's thread, its rows' JSON in one byte array, and the session only splices
// those bytes into the few fields of its message (`stringifyJsonWithRows`). Decoding and stringifying a 400k-row answer
// on the server's main thread held every other client and /v1/ping for it.
// May call: subscription/messages.ts, sql/budget.ts, sql/errors.ts, sats/ (codec, json, types), datastore/types.ts
// (types).

import type { ReadView, TableSchema } from '../datastore/types.js';
import { compileCodec, type Codec } from '../sats/codec.js';
import { stringifyJson, valueToUntypedJson } from '../sats/json.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';
import { QueryBudget, resultValueCounter, sqlQueryLimits } from '../sql/budget.js';
import { SqlError } from '../sql/errors.js';
import {
  decodeServerMessages, encodeServerMessage, type QuerySetUpdate, type ServerMessage, type SingleTableRows, type TableUpdate,
} from './messages.js';

/** The committed state's schema, which names each table's row type. */
export type RowTypes = Pick<ReadView, 'schema' | 'tableByName'>;

/** A v1 TableUpdate; `inserts`/`deletes` hold row texts, or rows rendered already (`JsonRows`). */
export interface V1TableUpdate {
  table_id: number; table_name: string; num_rows: bigint;
  updates: { deletes: string[] | JsonRows; inserts: string[] | JsonRows }[];
}

/** A budget counting the values of one answer's JSON rows against sqlResultValuesMax (sql/budget.ts wording). */
function renderBudget(): QueryBudget {
  return new QueryBudget({ ...sqlQueryLimits, rowsReturnedMax: Infinity, resultBytesMax: Infinity });
}

export class RowText {
  private readonly codecs = new WeakMap<TableSchema, Codec>();
  private readonly counters = new WeakMap<TableSchema, (row: Value[]) => number>();
  constructor(private readonly view: RowTypes) {}

  table(name: string): { schema: TableSchema | undefined; typespace: Typespace } {
    return { schema: this.view.tableByName(name), typespace: this.view.schema().typespace };
  }

  /** Rows as JSON texts; `values` (one answer's budget) is charged each row's values before it is rendered. */
  rows(name: string, rows: Uint8Array[], values?: QueryBudget): string[] {
    const { schema, typespace } = this.table(name);
    if (schema === undefined) throw new Error(`v1.json: no row type for table \`${name}\``);
    const type: AlgebraicType = { tag: 'Product', value: schema.rowType };
    let codec = this.codecs.get(schema);
    if (codec === undefined) this.codecs.set(schema, codec = compileCodec(type, typespace));
    let count = this.counters.get(schema);
    if (count === undefined) this.counters.set(schema, count = resultValueCounter(schema.columns.map((c) => c.type), typespace));
    const valuesOf = count;
    return rows.map((row) => {
      const value = codec.decode(row) as Value[];
      values?.returned(0, valuesOf(value));
      return stringifyJson(valueToUntypedJson(type, value, typespace));
    });
  }

  tableId(name: string): number {
    return this.table(name).schema?.tableId ?? 0;
  }

  /** A v2 TableUpdate (possibly several fragments) as one v1 TableUpdate; event rows count as inserts. */
  fromUpdate(t: TableUpdate): V1TableUpdate {
    const updates = t.rows.map((r) => r.tag === 'PersistentTable'
      ? { deletes: this.rows(t.tableName, r.deletes), inserts: this.rows(t.tableName, r.inserts) }
      : { deletes: [], inserts: this.rows(t.tableName, r.events) });
    let n = 0;
    for (const u of updates) n += u.deletes.length + u.inserts.length;
    return { table_id: this.tableId(t.tableName), table_name: t.tableName, num_rows: BigInt(n), updates };
  }

  /** The query sets of one commit as one DatabaseUpdate (v1 has no query sets on the wire). */
  fromQuerySets(querySets: QuerySetUpdate[]): { tables: V1TableUpdate[] } {
    if (querySets.length === 0) return { tables: [] };
    const [decoded] = decodeServerMessages(encodeServerMessage({ tag: 'TransactionUpdate', querySets }));
    const sets = (decoded as Extract<ServerMessage, { tag: 'TransactionUpdate' }>).querySets;
    return { tables: sets.flatMap((s) => (s.tables as TableUpdate[]).map((t) => this.fromUpdate(t))) };
  }
}

// ---- answers rendered where they were decided -----------------------------------------------------------------------

/** The answers whose rows are rendered. */
type RowsAnswer = Extract<ServerMessage, { tag: 'SubscribeApplied' | 'UnsubscribeApplied' | 'OneOffQueryResult' }>;

/** One table of a rendered answer: `JsonAnswer.bytes[start, end)` is the JSON array of its `count` row texts. */
export interface RenderedTable { tableId: number; table: string; count: number; start: number; end: number }

/**
 * A query answer for a v1 JSON client, rendered. `JsonRowsRefused`: its rows hold more than sqlResultValuesMax values
 * (the session answers with that error; a new subscription is dropped again).
 */
export type JsonAnswer =
  | { tag: 'JsonRows'; answers: RowsAnswer['tag']; requestId: number; querySetId: number; tables: RenderedTable[]; bytes: Uint8Array }
  | { tag: 'JsonRowsRefused'; answers: RowsAnswer['tag']; requestId: number; querySetId: number; error: string };

/** `message` with its rows rendered for a v1 JSON client; other messages (errors) and rendered ones as they are. */
export function jsonAnswer(message: ServerMessage | JsonAnswer, view: RowTypes): ServerMessage | JsonAnswer {
  let tables: SingleTableRows[];
  if (message.tag === 'SubscribeApplied' || message.tag === 'UnsubscribeApplied') tables = message.rows ?? [];
  else if (message.tag === 'OneOffQueryResult' && message.result.ok) tables = message.result.rows;
  else return message;
  const head = { answers: message.tag, requestId: message.requestId, querySetId: 'querySetId' in message ? message.querySetId : 0 };
  const rowText = new RowText(view);
  const values = renderBudget();
  let texts: string[][];
  try {
    texts = tables.map((t) => rowText.rows(t.table, t.rows, values));
  } catch (e) {
    if (!(e instanceof SqlError)) throw e;
    return { tag: 'JsonRowsRefused', ...head, error: e.message };
  }
  // One string, then one byte array: byte offsets come from each part's UTF-8 length.
  const rendered: RenderedTable[] = [];
  const parts: string[] = [];
  let at = 0;
  for (let i = 0; i < tables.length; i++) {
    const json = JSON.stringify(texts[i]);
    const bytes = Buffer.byteLength(json);
    parts.push(json);
    rendered.push({ tableId: rowText.tableId(tables[i].table), table: tables[i].table, count: texts[i].length, start: at, end: at + bytes });
    at += bytes;
  }
  return { tag: 'JsonRows', ...head, tables: rendered, bytes: Buffer.from(parts.join('')) };
}

/** Where a message built around a rendered answer takes a table's rows (`stringifyJsonWithRows` puts them in). */
export class JsonRows {
  constructor(readonly table: RenderedTable) {}
  toJSON(): string {
    return `${rowsMarker}${this.table.start}:${this.table.end}`;
  }
}

/** A v1 TableUpdate of a rendered table; `asDeletes`: its rows are what an unsubscription dropped. */
export function renderedTableUpdate(t: RenderedTable, asDeletes = false): V1TableUpdate {
  const rows = new JsonRows(t);
  const update = asDeletes ? { deletes: rows, inserts: [] } : { deletes: [], inserts: rows };
  return { table_id: t.tableId, table_name: t.table, num_rows: BigInt(t.count), updates: [update] };
}

/**
 * The text JsonRows stands in as. In the messages built around an answer only a table name could hold the same text,
 * and a marker must give the offsets of one of the answer's tables, so such a name fails loudly rather than mixing rows.
 */
const rowsMarker = '\u0000rows:';

/** `json` as stringifyJson writes it, each JsonRows in it replaced by those rows of `bytes`: UTF-8 of the message. */
export function stringifyJsonWithRows(json: unknown, answer: Extract<JsonAnswer, { tag: 'JsonRows' }>): Buffer {
  const text = stringifyJson(json);
  const parts: Uint8Array[] = [];
  let from = 0;
  const marker = /"\\u0000rows:(\d+):(\d+)"/g;
  for (let m = marker.exec(text); m !== null; m = marker.exec(text)) {
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (!answer.tables.some((t) => t.start === start && t.end === end)) throw new Error(`v1.json: stray rows marker ${m[0]}`);
    parts.push(Buffer.from(text.slice(from, m.index)), answer.bytes.subarray(start, end));
    from = m.index + m[0].length;
  }
  parts.push(Buffer.from(text.slice(from)));
  return Buffer.concat(parts);
}
