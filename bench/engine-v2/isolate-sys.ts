// bench/engine-v2/isolate-sys.ts — the datastore inside the isolate, under the REAL official library: an in-isolate
// implementation of the syscall host function `__stdbH` (the wire of src/host/isolate-src.ts's shims, documented there
// and in src/host/syscalls.ts) over the prototype row store, plus a batch runner that enters the real dispatcher's
// `callReducer` once per queued call, each its own transaction (commit or roll back from the undo arena), all within
// one entry from the host. Bundled into the isolate by official-in-isolate.ts before the bootstrap runs.
//
// Prototype scope: the ops a transfer and a seed use (table/index ids, point scans, table scans of an empty table,
// update, insert with autoInc, row count, log); one unique u32 index per table on its first column (the low 32 bits
// when that column is a u64); every index name of a table maps to it. No iterNextChunk (every scan fits X).
// Owns: nothing outside itself. May call: bench/engine-v2/rowstore.ts (bundled in).

import { Arena, copyBytes, FixedRowStore, U32UniqueIndex, VarRowStore } from './rowstore.js';

export interface TableConfig { name: string; tableId: number; fixedWidthBytes: number /* 0: variable width */; autoInc: boolean }
export interface HostConfig {
  tables: TableConfig[];
  op: { tableId: number; indexId: number; rowCount: number; tableScan: number; indexScanPoint: number; iterClose: number;
    insert: number; update: number; consoleLog: number };
  outcomeOk: number[];
  chunkHeaderBytes: number;
}

/** One table: rows in a fixed or variable-width store, a unique index on the first column. */
class Table {
  readonly fixed: FixedRowStore | undefined;
  readonly varStore: VarRowStore | undefined;
  readonly pk: U32UniqueIndex;
  sequenceNext = 1;

  constructor(readonly config: TableConfig) {
    if (config.fixedWidthBytes > 0) this.fixed = new FixedRowStore(config.fixedWidthBytes);
    else this.varStore = new VarRowStore();
    this.pk = new U32UniqueIndex((this.fixed ?? this.varStore)!, 0);
  }

  get live(): number { return (this.fixed ?? this.varStore)!.live; }

  read(id: number, dst: Uint8Array, at: number): number {
    if (this.fixed !== undefined) { this.fixed.read(id, dst, at); return this.fixed.rowBytes; }
    return this.varStore!.read(id, dst, at);
  }

  /** Inserts; -1 if the key is taken (nothing changed). */
  insert(src: Uint8Array, at: number, length: number): number {
    if (this.fixed !== undefined) {
      const id = this.fixed.allocate();
      this.fixed.write(id, src, at);
      if (this.pk.insert(id)) return id;
      this.fixed.release(id);
      return -1;
    }
    const id = this.varStore!.insert(src, at, length);
    if (this.pk.insert(id)) return id;
    this.varStore!.remove(id);
    return -1;
  }

  replace(id: number, src: Uint8Array, at: number, length: number): void {
    if (this.fixed !== undefined) this.fixed.write(id, src, at);
    else this.varStore!.replace(id, src, at, length);
  }

  remove(id: number): void {
    this.pk.remove((this.fixed ?? this.varStore)!.u32At(id, 0));
    if (this.fixed !== undefined) this.fixed.release(id); else this.varStore!.remove(id);
  }
}

const undoUpdate = 1, undoInsert = 2;
const txDelete = 3, txInsert = 2;
const errnoNoSuchRow = 2, errnoUnique = 3, errnoUnsupported = 1;

const rowBytesMax = 256;

/**
 * Installs `__stdbH` (it must exist before the bootstrap runs, which captures it); `configure` gives the tables once
 * the host has read the module's schema.
 */
export function install(exchange: SharedArrayBuffer) {
  const X = new Uint8Array(exchange);
  const XV = new DataView(exchange);
  let config!: HostConfig;
  let op!: HostConfig['op'];
  let tables: Table[] = [];
  const byId = new Map<number, Table>();
  const undo = new Arena();
  let undoStarts = new Int32Array(64);
  let undoCount = 0;
  const txData = new Arena();

  function error(code: number, message: string): number {
    XV.setUint32(0, message.length, true);
    for (let i = 0; i < message.length; i++) X[4 + i] = message.charCodeAt(i) & 0x7f;
    return -code;
  }
  function tableOf(tableId: number): Table {
    const t = byId.get(tableId);
    if (t === undefined) throw new Error(`no such table ${tableId}`);
    return t;
  }
  function pushUndo(kind: number, table: Table, id: number, oldLength: number): number {
    if (undoCount === undoStarts.length) { const g = new Int32Array(undoCount * 2); g.set(undoStarts); undoStarts = g; }
    const at = undo.reserve(10 + oldLength);
    undoStarts[undoCount++] = at;
    undo.bytes[at] = kind; undo.bytes[at + 1] = table.config.tableId;
    undo.view.setUint32(at + 2, id, true); undo.view.setUint32(at + 6, oldLength, true);
    return at + 10;
  }
  function appendTx(kind: number, table: Table, src: Uint8Array, at: number, length: number): void {
    const t = txData.reserve(6 + length);
    txData.bytes[t] = kind; txData.bytes[t + 1] = table.config.tableId;
    txData.view.setUint32(t + 2, length, true);
    copyBytes(txData.bytes, t + 6, src, at, length);
  }
  /** One-row (or empty) chunk in X, the layout the shim's readChunk expects. */
  function chunk(table: Table, id: number): number {
    const h = config.chunkHeaderBytes;
    if (id < 0) { XV.setUint32(0, 0, true); XV.setUint32(4, 0, true); XV.setUint32(8, 0, true); return 0; }
    const n = table.read(id, X, h + 4);
    XV.setUint32(0, 1, true); XV.setUint32(4, n, true); XV.setUint32(8, 0, true);
    XV.setUint32(12, table.config.tableId, true); XV.setUint32(16, 0, true);
    XV.setUint32(h, n, true);
    return 0;
  }

  // The shims call H(op, a..f): numbers in, a number out (negative = -errno, message in X); bytes travel in X.
  function H(opc: number, a: unknown, b: unknown, c: unknown): number {
    if (opc === op.indexScanPoint) {
      const table = byId.get((b as number) >>> 3)!;
      return chunk(table, table.pk.find(XV.getUint32(0, true)));
    }
    if (opc === op.update) {
      const table = tableOf(a as number), length = c as number;
      const id = table.pk.find(XV.getUint32(0, true));
      if (id < 0) return error(errnoNoSuchRow, 'no row with that key');
      const oldAt = pushUndo(undoUpdate, table, id, rowBytesMax);
      const oldLength = table.read(id, undo.bytes, oldAt);
      undo.length = oldAt + oldLength;
      undo.view.setUint32(oldAt - 4, oldLength, true);
      appendTx(txDelete, table, undo.bytes, oldAt, oldLength);
      table.replace(id, X, 0, length);
      appendTx(txInsert, table, X, 0, length);
      return 0;
    }
    if (opc === op.insert) {
      const table = tableOf(a as number), length = b as number;
      let generated = 0;
      if (table.config.autoInc) {
        // autoInc u64 first column, 0 = "generate": the next value; upstream reserves them in ranges, persisted
        // before use (engine-v2.md "How a call makes at most one crossing", step 5).
        XV.setBigUint64(0, BigInt(table.sequenceNext++), true);
        generated = 8;
      }
      const id = table.insert(X, 0, length);
      if (id < 0) return error(errnoUnique, 'duplicate key');
      pushUndo(undoInsert, table, id, 0);
      appendTx(txInsert, table, X, 0, length);
      return generated;                                 // the generated column's bytes are at X[0..8)
    }
    if (opc === op.tableId) {
      const t = tables.find((x) => x.config.name === a);
      return t === undefined ? error(errnoUnsupported, `no such table ${String(a)}`) : t.config.tableId;
    }
    if (opc === op.indexId) {
      const t = tables.find((x) => String(a).startsWith(`${x.config.name}_`));
      return t === undefined ? error(errnoUnsupported, `no such index ${String(a)}`) : t.config.tableId << 3;
    }
    if (opc === op.tableScan) {
      const table = tableOf(b as number);
      if (table.live > 0) return error(errnoUnsupported, 'table scans of non-empty tables are not in this prototype');
      return chunk(table, -1);
    }
    if (opc === op.iterClose || opc === op.consoleLog) return 0;
    if (opc === op.rowCount) return tableOf(a as number).live;
    return error(errnoUnsupported, `syscall ${opc} is not in this prototype`);
  }

  function rollback(): void {
    for (let k = undoCount - 1; k >= 0; k--) {
      const at = undoStarts[k];
      const table = tableOf(undo.bytes[at + 1]);
      const id = undo.view.getUint32(at + 2, true);
      if (undo.bytes[at] === undoUpdate) table.replace(id, undo.bytes, at + 10, undo.view.getUint32(at + 6, true));
      else table.remove(id);
    }
  }

  (globalThis as { __stdbH?: unknown }).__stdbH = H;

  return {
    configure(c: HostConfig): void {
      config = c;
      op = c.op;
      tables = c.tables.map((t) => new Table(t));
      for (const t of tables) byId.set(t.config.tableId, t);
    },
    /**
     * Runs `count` calls of reducer `reducerId`; call i's BSATN args are requests[i*argsBytes ..]. Each call is a
     * transaction: committed (its TxData kept) or rolled back. Outcome codes go to replies[i]; returns TxData bytes.
     */
    runBatch(dispatch: { callReducer(): number }, reducerId: number, requests: Uint8Array, argsBytes: number,
      replies: Uint8Array, count: number, timestamp: bigint): number {
      txData.length = 0;
      for (let i = 0; i < count; i++) {
        // SyscallHost.writeReducerCall's layout (read by the dispatcher): id, flags (0: read sender and
        // connection), sender u256 @8, connection u128 @40, timestamp @56, args length @64, args @68.
        XV.setUint32(0, reducerId, true); XV.setUint32(4, 0, true);
        for (let w = 8; w < 56; w += 8) XV.setBigUint64(w, 0n, true);
        XV.setUint32(8, 3, true);
        XV.setBigInt64(56, timestamp, true);
        XV.setUint32(64, argsBytes, true);
        copyBytes(X, 68, requests, i * argsBytes, argsBytes);
        undo.length = 0; undoCount = 0;
        const txAt = txData.length;
        const code = dispatch.callReducer();
        if (config.outcomeOk.includes(code)) replies[i] = 0;
        else { rollback(); txData.length = txAt; replies[i] = 1; }
      }
      return txData.length;
    },
    tableRows(name: string): number { return tables.find((t) => t.config.name === name)!.live; },
  };
}
