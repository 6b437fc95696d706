// host/database.ts — `Database`: everything one database needs, behind one object the server talks to.
//
// Owns: the module instance (runtime.ts), the datastore, the module log, the reducer catalogue, per-database FIFO
// serialization of calls, one transaction per call (commit on success, rollback on any failure), the classification of
// failures (host-abi §5.2), lifecycle reducers (§5.3) and commit notifications for subscriptions.
// May call: host/*, datastore (Datastore, buildDatabaseSchema), sql (executeSql), sats (moduledef, json, codec).
//
// Not yet here: durability (commit log, snapshots, reopen), the scheduler, views, procedures, migrations.

import assert from 'node:assert';
import { join } from 'node:path';
import { Datastore } from '../datastore/store.js';
import { buildDatabaseSchema } from '../datastore/schema.js';
import type { DatabaseSchema, MutTx, TxData } from '../datastore/types.js';
import { BsatnReader } from '../sats/bsatn.js';
import { decodeRawModuleDef, type RawModuleDefV10 } from '../sats/moduledef.js';
import { valueFromJson } from '../sats/json.js';
import { executeSql, type SqlResults } from '../sql/execute.js';
import type { Value } from '../sats/types.js';
import {
  BadArgumentsError, ConnectionRejectedError, DatabaseClosedError, NoSuchReducerError, PublishError,
  ReducerNotCallableError,
} from './errors.js';
import { levelName, ModuleLog, nowMicros } from './module-log.js';
import { prepareProgram } from './program.js';
import { ReducerCatalog, type ReducerInfo } from './reducers.js';
import { memoryLimitMibDefault, ModuleRuntime, reducerTimeoutMsDefault, type RuntimeLimits } from './runtime.js';
import { SyscallHost } from './syscalls.js';

export type { ReducerInfo } from './reducers.js';

export interface Caller {
  identity: bigint;
  connectionId: bigint;
  /** The caller's JWT payload JSON text; undefined for internal callers. */
  jwtPayload: string | undefined;
}

export interface DatabaseOptions {
  identity: bigint;
  ownerIdentity: bigint;
  /** The database's own directory (`<data-dir>/databases/<identity-hex>`); undefined keeps everything in memory. */
  dataDir?: string;
  /** Alias of `dataDir` (the server's CreateDatabaseOptions name). */
  dir?: string;
  limits?: Partial<RuntimeLimits>;
}

export type ReducerCallResult =
  | { status: 'committed'; timestampMicros: bigint; durationMicros: number; txData: TxData }
  | { status: 'failed'; message: string }
  | { status: 'internal'; message: string };

/** What subscribers learn about each committed transaction. */
export interface CommitEvent {
  txData: TxData;
  caller: Caller;
  /** The reducer that ran (undefined for a commit without one, e.g. a lifecycle hook the module lacks). */
  reducer: ReducerInfo | undefined;
  args: Uint8Array;
  timestampMicros: bigint;
  durationMicros: number;
}
export type CommitListener = (event: CommitEvent) => void;

/** The fixed text a caller sees for a non-SenderError failure (host-abi §5.2). */
export const internalErrorMessage = 'The instance encountered a fatal error.';
const moduleLogFileName = 'module.log';
const emptyArgs = new Uint8Array(0);

export class Database {
  readonly logs: ModuleLog;
  private closed = false;
  /** True while a call runs; calls arriving then (e.g. from a commit listener) wait in `pending`, in order. */
  private busy = false;
  private readonly pending: (() => void)[] = [];
  private readonly commitListeners = new Set<CommitListener>();
  /** JWT payloads of connected clients, by connection id (read by `get_jwt_payload`). */
  private readonly jwts = new Map<bigint, string>();
  private readonly immediate: { reducer: string; args: Uint8Array; caller: Caller }[] = [];
  private currentCaller: Caller | undefined;
  /** SQL system variables (SET/SHOW row_limit), kept between requests. */
  private readonly sqlVars = new Map<string, bigint>();

  private constructor(
    readonly identity: bigint,
    readonly ownerIdentity: bigint,
    private readonly defBytes: Uint8Array,
    readonly moduleDef: RawModuleDefV10,
    readonly schema: DatabaseSchema,
    readonly reducers: ReducerCatalog,
    readonly datastore: Datastore,
    private readonly host: SyscallHost,
    private runtime: ModuleRuntime | undefined,
    logs: ModuleLog,
  ) {
    this.logs = logs;
  }

  /**
   * Publishes a new database: prepares and evaluates the program, builds the schema, creates the datastore and runs
   * `init` (owner as sender) in the creating transaction. Any failure throws PublishError and leaves nothing behind.
   */
  static async create(options: DatabaseOptions, program: string | Uint8Array): Promise<Database> {
    const dir = options.dataDir ?? options.dir;
    const limits: RuntimeLimits = {
      memoryLimitMib: options.limits?.memoryLimitMib ?? memoryLimitMibDefault,
      reducerTimeoutMs: options.limits?.reducerTimeoutMs ?? reducerTimeoutMsDefault,
    };
    const prepared = await prepareProgram(program);
    // Logs during publish stay in memory until the database exists (a failed publish leaves no file).
    const memLog = new ModuleLog(undefined);
    let db: Database | undefined;
    let runtime: ModuleRuntime | undefined;
    const host = new SyscallHost({
      identity: options.identity,
      log: (level, message, frame) => {
        const target = db?.logs ?? memLog;
        const at = frame === '' ? undefined : runtime?.mapFrame(frame);
        target.write(levelName(level), message, at ?? {});
      },
      jwtPayload: (connId) => db?.jwtFor(connId),
      scheduleImmediate: (reducer, args) => db?.queueImmediate(reducer, args),
    });
    runtime = ModuleRuntime.create(prepared, host, limits);
    try {
      const defBytes = runtime.describe().slice();
      let def: RawModuleDefV10;
      let schema: DatabaseSchema;
      let reducers: ReducerCatalog;
      try {
        def = decodeRawModuleDef(defBytes);
        schema = buildDatabaseSchema(def);
        reducers = new ReducerCatalog(def);
      } catch (err) {
        throw new PublishError(`invalid module: ${messageOf(err)}`);
      }
      const datastore = new Datastore(schema);
      db = new Database(options.identity, options.ownerIdentity, defBytes, def, schema, reducers, datastore, host,
        runtime, memLog);
      const init = reducers.lifecycle.init;
      if (init !== undefined) {
        const owner: Caller = { identity: options.ownerIdentity, connectionId: 0n, jwtPayload: undefined };
        const result = db.runReducer(init, emptyArgs, owner);
        if (result.status !== 'committed') {
          const detail = result.status === 'failed' ? result.message : lastPanic(memLog) ?? result.message;
          throw new PublishError(`the module's init reducer failed: ${detail}`);
        }
      }
      if (dir !== undefined) {
        const logs = new ModuleLog(join(dir, moduleLogFileName));
        for (const r of memLog.tail()) logs.append(r);
        db.swapLog(logs);
      }
      return db;
    } catch (err) {
      runtime.dispose();
      if (err instanceof PublishError) throw err;
      throw new PublishError(messageOf(err));
    }
  }

  private swapLog(logs: ModuleLog): void {
    (this as { logs: ModuleLog }).logs = logs;
  }

  moduleDefBytes(): Uint8Array {
    return this.defBytes;
  }

  reducerByName(name: string): ReducerInfo | undefined {
    return this.reducers.get(name);
  }

  /** Syscall crossings from the isolate into the host so far (benchmarks). */
  syscallCrossings(): number {
    return this.host.crossings;
  }

  /** Registers a commit listener (subscriptions). Returns the unsubscribe function. */
  onCommit(listener: CommitListener): () => void {
    this.commitListeners.add(listener);
    return () => { this.commitListeners.delete(listener); };
  }

  /** A client call by canonical or source name; args are the BSATN of the reducer's parameter product. */
  callReducer(name: string, args: Uint8Array, caller: Caller): Promise<ReducerCallResult> {
    let info: ReducerInfo;
    try {
      info = this.clientCallable(name);
    } catch (err) {
      return Promise.reject(err);
    }
    try {
      // Validate without building values (skip checks lengths, tags and UTF-8).
      const reader = new BsatnReader(args);
      info.argsCodec.skip(reader);
      reader.expectEnd('reducer arguments');
    } catch (err) {
      return Promise.reject(new BadArgumentsError(info.name, messageOf(err)));
    }
    return this.enqueue(() => this.runReducer(info, args, caller));
  }

  /** A client call with SATS-JSON arguments: an array (positional) or an object (by parameter name). */
  callReducerJson(name: string, argsJson: unknown, caller: Caller): Promise<ReducerCallResult> {
    let info: ReducerInfo;
    let args: Uint8Array;
    try {
      info = this.clientCallable(name);
      args = info.argsCodec.encode(argsFromJson(info, argsJson));
    } catch (err) {
      if (err instanceof BadArgumentsError || err instanceof NoSuchReducerError || err instanceof ReducerNotCallableError) {
        return Promise.reject(err);
      }
      return Promise.reject(new BadArgumentsError(this.reducers.get(name)?.name ?? name, messageOf(err)));
    }
    return this.enqueue(() => this.runReducer(info, args, caller));
  }

  /** Runs `client_connected`; a failure rejects the connection (ConnectionRejectedError) and is rolled back. */
  clientConnected(caller: Caller): Promise<void> {
    return this.enqueue(() => {
      if (caller.jwtPayload !== undefined) this.jwts.set(caller.connectionId, caller.jwtPayload);
      const info = this.reducers.lifecycle.onConnect;
      if (info === undefined) return;
      const r = this.runReducer(info, emptyArgs, caller);
      if (r.status !== 'committed') {
        this.jwts.delete(caller.connectionId);
        throw new ConnectionRejectedError(r.message);
      }
    });
  }

  /** Runs `client_disconnected`; the client's state is cleaned up whatever the reducer does. */
  clientDisconnected(caller: Caller): Promise<void> {
    return this.enqueue(() => {
      const info = this.reducers.lifecycle.onDisconnect;
      try {
        if (info !== undefined) this.runReducer(info, emptyArgs, caller);
      } finally {
        this.jwts.delete(caller.connectionId);
      }
    });
  }

  /**
   * One-off SQL (/sql): SELECTs read committed state; DML (owner only) runs in one transaction whose commit is
   * announced to commit listeners like a reducer's (with `reducer` undefined). Errors are the sql layer's SqlError.
   */
  sql(query: string, caller: Caller, options?: { isOwner: boolean }): Promise<SqlResults> {
    return this.enqueue(() => {
      const timestampMicros = BigInt(nowMicros());
      const started = performance.now();
      const results = executeSql(query, { view: this.datastore, beginMutTx: () => this.datastore.beginMutTx() }, {
        sender: caller.identity,
        isOwner: options?.isOwner ?? caller.identity === this.ownerIdentity,
        vars: this.sqlVars,
      });
      if (results.txData !== undefined && results.txData.tables.length > 0) {
        const durationMicros = Math.round((performance.now() - started) * 1000);
        this.announce({ txData: results.txData, caller, reducer: undefined, args: emptyArgs, timestampMicros, durationMicros });
      }
      return results;
    });
  }

  /** Runs `fn` with a read-only view of committed state, serialized with calls (for SQL and subscriptions). */
  read<T>(fn: (view: Datastore) => T): Promise<T> {
    return this.enqueue(() => fn(this.datastore));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.runtime?.dispose();
    this.runtime = undefined;
  }

  // ------------------------------------------------------------------------------------------------------------

  private clientCallable(name: string): ReducerInfo {
    const info = this.reducers.get(name);
    if (info === undefined) throw new NoSuchReducerError(name);
    if (info.lifecycle !== undefined) throw new ReducerNotCallableError(info.name, 'it is a lifecycle reducer');
    if (info.scheduled) throw new ReducerNotCallableError(info.name, 'it is a scheduled reducer');
    return info;
  }

  /**
   * FIFO serialization. Module calls are synchronous (the isolate runs on this thread), so a call that arrives while
   * nothing runs is executed at once; one that arrives during a call (re-entrantly, from a listener) is queued and
   * runs right after. This keeps promise hops off the hot path.
   */
  private enqueue<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new DatabaseClosedError());
    if (this.busy) {
      return new Promise<T>((resolve, reject) => {
        this.pending.push(() => { try { resolve(fn()); } catch (err) { reject(err); } });
      });
    }
    this.busy = true;
    let result: Promise<T>;
    try {
      result = Promise.resolve(fn());
    } catch (err) {
      result = Promise.reject(err);
    }
    try {
      this.drainImmediate();
      for (let next = this.pending.shift(); next !== undefined; next = this.pending.shift()) {
        next();
        this.drainImmediate();
      }
    } finally {
      this.busy = false;
    }
    return result;
  }

  /** One reducer call = one transaction. Synchronous: the isolate runs on this thread. */
  private runReducer(info: ReducerInfo, args: Uint8Array, caller: Caller): ReducerCallResult {
    const runtime = this.runtime;
    assert(runtime !== undefined, 'runReducer after close');
    const timestampMicros = BigInt(nowMicros());
    const started = performance.now();
    const tx: MutTx = this.datastore.beginMutTx();
    this.host.tx = tx;
    this.currentCaller = caller;
    let outcome;
    try {
      outcome = runtime.callReducer(info.id, caller.identity, caller.connectionId, timestampMicros, args);
    } catch (err) {
      outcome = { kind: 'error' as const, message: messageOf(err) };
    } finally {
      this.host.tx = undefined;
      this.currentCaller = undefined;
    }
    if (outcome.kind === 'ok') {
      const txData = tx.commit();
      const durationMicros = Math.round((performance.now() - started) * 1000);
      this.announce({ txData, caller, reducer: info, args, timestampMicros, durationMicros });
      return { status: 'committed', timestampMicros, durationMicros, txData };
    }
    tx.rollback();
    switch (outcome.kind) {
      case 'senderError':
        this.logs.write('Error', `reducer ${info.name} failed: ${outcome.message}`, { target: info.name });
        return { status: 'failed', message: outcome.message };
      case 'error':
        this.logs.write('Panic', `reducer ${info.name} threw: ${outcome.message}`, { target: info.name });
        return { status: 'internal', message: internalErrorMessage };
      case 'trap':
        this.logs.write('Panic', `reducer ${info.name} was stopped: ${outcome.message}`, { target: info.name });
        return { status: 'internal', message: `${internalErrorMessage} (${outcome.message})` };
    }
  }

  private announce(event: CommitEvent): void {
    for (const l of this.commitListeners) {
      try { l(event); } catch (err) { this.logs.write('Error', `commit listener failed: ${messageOf(err)}`); }
    }
  }

  private jwtFor(connId: bigint): string | undefined {
    const current = this.currentCaller;
    if (current !== undefined && current.connectionId === connId && current.jwtPayload !== undefined) return current.jwtPayload;
    return this.jwts.get(connId);
  }

  private queueImmediate(reducer: string, args: Uint8Array): void {
    const caller = this.currentCaller ?? { identity: this.identity, connectionId: 0n, jwtPayload: undefined };
    this.immediate.push({ reducer, args, caller });
  }

  /** volatile_nonatomic_schedule_immediate: runs queued calls after the call that queued them, best effort. */
  private drainImmediate(): void {
    while (this.immediate.length > 0 && !this.closed) {
      const { reducer, args, caller } = this.immediate.shift()!;
      const info = this.reducers.get(reducer);
      if (info === undefined) {
        this.logs.write('Error', `volatile_nonatomic_schedule_immediate: no such reducer ${reducer}`);
        continue;
      }
      this.runReducer(info, args, caller);
    }
  }
}

/** SATS-JSON reducer arguments → the positional product value. */
function argsFromJson(info: ReducerInfo, json: unknown): Value {
  const elems = info.params.elements;
  if (Array.isArray(json)) {
    if (json.length !== elems.length) {
      throw new BadArgumentsError(info.name, `expected ${elems.length} arguments, got ${json.length}`);
    }
    return elems.map((e, i) => {
      try {
        return valueFromJson(e.algebraicType, json[i], info.typespace);
      } catch (err) {
        throw new BadArgumentsError(info.name, `argument ${i}${e.name ? ` (${e.name})` : ''}: ${messageOf(err)}`);
      }
    });
  }
  if (json !== null && typeof json === 'object') return valueFromJson(info.paramsType, json, info.typespace);
  throw new BadArgumentsError(info.name, 'arguments must be a JSON array or object');
}

function lastPanic(log: ModuleLog): string | undefined {
  const recent = log.tail(5).reverse().find((r) => r.level === 'Panic');
  return recent?.message;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
