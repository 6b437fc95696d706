// cli/subscribe.ts — `spacetime subscribe`: subscribe to queries over the WebSocket protocol and print one JSON line
// per update, as upstream's CLI does (`{"<table>":{"deletes":[rows],"inserts":[rows]}}`, rows keyed by column name).
//
// Owns: the subscribe command's connection, output and exit rules (-n, -t, --print-initial-update, --confirmed).
// May call: subscription/messages.ts (wire codecs), datastore/schema.ts + sats + sql/execute.ts namedRowType (row types
//   from the module definition), host/views.ts buildViewCatalog (view row types), ws. Like upstream's CLI, it reads the schema over HTTP and decodes rows locally.
import WebSocket from 'ws';
import { buildDatabaseSchema } from '../datastore/schema.js';
import type { DatabaseSchema } from '../datastore/types.js';
import { BsatnWriter } from '../sats/bsatn.js';
import { compileCodec, type Codec } from '../sats/codec.js';
import { parseJson, stringifyJson, valueFromJson, valueToJson } from '../sats/json.js';
import { decodeRawModuleDef, moduleDefTypespace, rawModuleDefV10Type } from '../sats/moduledef.js';
import type { AlgebraicType, Typespace } from '../sats/types.js';
import {
  decodeServerMessages, encodeClientMessage, type QuerySetUpdate, type SingleTableRows, type TableUpdate,
} from '../subscription/messages.js';
import { namedRowType } from '../sql/execute.js';
import { buildViewCatalog } from '../host/views.js';
import { CliError } from './errors.js';
import { httpRequest } from './util.js';

const subprotocolV3 = 'v3.bsatn.spacetimedb';
const compressionTagNone = 0;
/** RawModuleDef enum tag of the V10 variant (V8BackCompat = 0, V9 = 1, V10 = 2). */
const rawModuleDefV10Tag = 2;

export interface SubscribeOptions {
  serverUrl: string;
  databaseIdentity: string;
  token: string | undefined;
  queries: string[];
  numUpdates: number | undefined;
  timeoutSeconds: number | undefined;
  printInitialUpdate: boolean;
  confirmed: boolean | undefined;
  print: (line: string) => void;
}

interface TableDecoder { rowType: AlgebraicType; codec: Codec }

/** Row decoders per table name (canonical and alias), with canonical column names as JSON keys. */
async function tableDecoders(serverUrl: string, identity: string, token: string | undefined): Promise<{ decoders: Map<string, TableDecoder>; typespace: Typespace }> {
  const url = `${serverUrl}/v1/database/${identity}/schema?version=10`;
  const res = await httpRequest('GET', url, { token });
  if (res.status !== 200) throw new CliError(`failed to read the schema of database \`${identity}\``, [res.text]);
  const defValue = valueFromJson(rawModuleDefV10Type, parseJson(res.text), moduleDefTypespace);
  const v10Bytes = compileCodec(rawModuleDefV10Type, moduleDefTypespace).encode(defValue);
  // The endpoint serves the V10 product itself; the decoder reads the versioned RawModuleDef enum around it.
  const defBytes = new Uint8Array(v10Bytes.length + 1);
  defBytes[0] = rawModuleDefV10Tag;
  defBytes.set(v10Bytes, 1);
  const def = decodeRawModuleDef(defBytes);
  const schema: DatabaseSchema = buildDatabaseSchema(def);
  const decoders = new Map<string, TableDecoder>();
  // Views are subscribed like tables: their rows arrive under the view's name with its row type.
  const views = buildViewCatalog(def, schema).map((view) => view.schema);
  for (const table of [...schema.tables, ...views]) {
    const rowType: AlgebraicType = { tag: 'Product', value: namedRowType(table) };
    const decoder = { rowType, codec: compileCodec(rowType, schema.typespace) };
    for (const name of [table.name, ...table.aliases]) decoders.set(name, decoder);
  }
  return { decoders, typespace: schema.typespace };
}

/** Runs the subscription until -n updates arrived, the timeout expired or the server closed the socket. */
export async function runSubscribe(options: SubscribeOptions): Promise<void> {
  const { decoders, typespace } = await tableDecoders(options.serverUrl, options.databaseIdentity, options.token);
  const rowsJson = (table: string, rows: Uint8Array[]): unknown[] => {
    const decoder = decoders.get(table);
    if (decoder === undefined) throw new CliError(`the server sent rows of unknown table \`${table}\``);
    return rows.map((row) => valueToJson(decoder.rowType, decoder.codec.decode(row), typespace));
  };

  const params = new URLSearchParams({ compression: 'None' });
  if (options.confirmed !== undefined) params.set('confirmed', String(options.confirmed));
  const wsUrl = `${options.serverUrl.replace(/^http/, 'ws')}/v1/database/${options.databaseIdentity}/subscribe?${params}`;
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const socket = new WebSocket(wsUrl, [subprotocolV3], { headers });

  let updatesSeen = 0;
  let applied = false;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.close();
      if (error === undefined) resolve();
      else reject(error);
    };
    const timer = options.timeoutSeconds === undefined ? undefined : setTimeout(() => {
      process.stderr.write(`timed out after ${options.timeoutSeconds}s\n`);
      if (options.numUpdates !== undefined && updatesSeen < options.numUpdates) {
        finish(new CliError(`received ${updatesSeen}/${options.numUpdates} updates before the timeout`));
      } else finish();
    }, options.timeoutSeconds * 1000);

    const countUpdate = (): void => {
      updatesSeen += 1;
      if (options.numUpdates !== undefined && updatesSeen >= options.numUpdates) finish();
    };

    socket.on('open', () => {
      const writer = new BsatnWriter();
      encodeClientMessage(writer, { tag: 'Subscribe', requestId: 0, querySetId: 0, queryStrings: options.queries });
      socket.send(writer.finish());
    });
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => finish(new CliError(`the server refused the subscription (HTTP ${res.statusCode})`, [body])));
    });
    socket.on('error', (error) => finish(new CliError('WebSocket error', [error.message])));
    socket.on('close', (code: number, reason: Buffer) => {
      process.stderr.write('disconnected by server\n');
      if (!applied) {
        // Before the initial update a close is never a normal end: the server refused the client (its
        // client_connected reducer failed, or a limit) or the subscription. Upstream's CLI fails here too.
        const why = reason.length > 0 ? `: ${reason.toString()}` : code === 1006 ? ' without a close frame' : ` (code ${code})`;
        finish(new CliError(`the server closed the connection before the subscription was applied${why}`,
          ['The database may have refused this client in its client_connected reducer; `spacetime logs` shows why.']));
        return;
      }
      if (options.numUpdates !== undefined && updatesSeen < options.numUpdates) {
        finish(new CliError(`subscription closed after receiving ${updatesSeen}/${options.numUpdates} updates`));
      } else finish();
    });
    socket.on('message', (data: Buffer) => {
      // Once finished, print nothing more: `-n N` means exactly N update lines, even when further updates arrive in
      // the same frame or before the close completes (a burst of scheduled transactions printed 17 lines for -n 2).
      if (settled) return;
      try {
        if (data[0] !== compressionTagNone) throw new CliError(`unexpected compression tag ${data[0]}`);
        for (const message of decodeServerMessages(new Uint8Array(data.buffer, data.byteOffset + 1, data.length - 1))) {
          if (settled) break;
          if (message.tag === 'SubscriptionError') {
            finish(new CliError(message.error));
          } else if (message.tag === 'SubscribeApplied') {
            applied = true;
            if (options.printInitialUpdate) options.print(stringifyJson(initialUpdateJson(message.rows, rowsJson)));
            // `-n 0` asks for the initial update alone.
            if (options.numUpdates !== undefined && updatesSeen >= options.numUpdates) finish();
          } else if (message.tag === 'TransactionUpdate') {
            const line = transactionUpdateJson(message.querySets, rowsJson);
            if (line !== undefined) {
              options.print(stringifyJson(line));
              countUpdate();
            }
          }
        }
      } catch (error) {
        finish(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

type RowsJson = (table: string, rows: Uint8Array[]) => unknown[];

function initialUpdateJson(tables: SingleTableRows[], rowsJson: RowsJson): Record<string, unknown> {
  const out: Record<string, { deletes: unknown[]; inserts: unknown[] }> = {};
  for (const t of tables) {
    const entry = (out[t.table] ??= { deletes: [], inserts: [] });
    entry.inserts.push(...rowsJson(t.table, t.rows));
  }
  return out;
}

/** One line for a transaction: every query set's changes merged per table; undefined when nothing changed. */
function transactionUpdateJson(querySets: QuerySetUpdate[], rowsJson: RowsJson): Record<string, unknown> | undefined {
  const out: Record<string, { deletes: unknown[]; inserts: unknown[] }> = {};
  for (const set of querySets) {
    for (const table of set.tables) {
      const update = table as TableUpdate;
      const entry = (out[update.tableName] ??= { deletes: [], inserts: [] });
      for (const rows of update.rows) {
        if (rows.tag === 'PersistentTable') {
          entry.deletes.push(...rowsJson(update.tableName, rows.deletes));
          entry.inserts.push(...rowsJson(update.tableName, rows.inserts));
        } else {
          entry.inserts.push(...rowsJson(update.tableName, rows.events));
        }
      }
    }
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
