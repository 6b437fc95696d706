// host/database.ts — `Database`: everything one database needs, behind one object the server talks to.
//
// Owns: the module instance (runtime.ts), the datastore, the module log, the reducer catalogue, per-database FIFO
// serialization of calls, one transaction per call (commit on success, rollback on any failure), the classification of
// failures (host-abi §5.2), lifecycle reducers (§5.3) and commit notifications for subscriptions.
// May call: host/*, datastore (Datastore, buildDatabaseSchema), sql (executeSql, renderSqlJson, renderPgAnswer), sats (moduledef, json, codec), limits,
// metrics/counters (what it counts for GET /v1/metrics), durability/commitlog (types).
//
// Client calls that queue together (a burst of `callReducer`s gathered for a microtask, or a worker's turn of calls,
// `callReducersNow`) enter the module together (`runReducerBatch`, ModuleRuntime.callReducers), each still its own
// transaction, committed or rolled back in order, exactly as one at a time (test/host/batched-calls).
// Durability (host/recovery.ts): every commit is logged synchronously in `announce`, and replies wait until it is on
// disk (`durably`). `open` rebuilds a database from its directory without running init.
// Views and row-level security (host/views.ts): `views` serves SQL (`sql`) and, through `wrapCompile`, subscriptions.
// Module updates (host/update.ts, datastore/migrate.ts): `update` loads the new module beside the old one, copies
// what must be copied between calls, and swaps module, schema, datastore and views inside the call queue.
// Scheduler, procedures and module HTTP routes: host/module-features.ts (`features`).

import assert from 'node:assert';
import { join } from 'node:path';
import { Datastore } from '../datastore/store.js';
import { buildDatabaseSchema } from '../datastore/schema.js';
import type { DatabaseSchema, MutTx, TxData } from '../datastore/types.js';
import { decodeRawModuleDef, type RawModuleDefV10 } from '../sats/moduledef.js';
import { executeSql, rowLimitVar, type SqlResults } from '../sql/execute.js';
import { renderSqlJson } from '../sql/json.js';
import { renderPgAnswer } from '../sql/pg-messages.js';
import type { HostSystemState } from '../datastore/system.js';
import { blake3 } from '@noble/hashes/blake3.js';
import { argsFromJson, checkArgs } from './args.js';
import {
  BadArgumentsError, ConnectionRejectedError, DatabaseClosedError, NoSuchReducerError, PublishError,
  ReducerNotCallableError, messageOf,
} from './errors.js';
import { levelName, ModuleLog, removeModuleLog } from './module-log.js';
import { systemClock, type Clock } from './scheduler.js';
import { prepareProgram } from './program.js';
import { ReducerCatalog, type ReducerInfo } from './reducers.js';
import { ModuleRuntime, type RuntimeLimits } from './runtime.js';
import {
  callBatchCallsMax, callQueueTurnBudgetMs, immediateCallsQueuedMax, moduleMemoryLimitMibConfigured, reducerTimeoutMsConfigured,
} from '../limits.js';
import { SyscallHost, type CallBatch, type CallEnd } from './syscalls.js';
import { updateQueueMaxBytes } from './isolate-src.js';
import { lazyFeatureSyscalls, ModuleFeatures, type HttpRouteResponse, type ProcedureCallResult, type ProcedureInfo } from './module-features.js';
import { buildViewCatalog, compileRlsFilters, ViewHost } from './views.js';
import type { CompileQuery } from '../subscription/manager.js';
import {
  buildMigration, finishMigration, MigrationError, snapshotForMigration, type MigrationBuild,
} from '../datastore/migrate.js';
import {
  checkModuleNames, loadModule, planModuleUpdate, UpdateRejectedError, type RunningModule, type UpdateOptions, type UpdatePlan,
  type UpdateResult,
} from './update.js';
import { DatabaseDurability, txTooLargeMessage, txWriteBytesMaxOf, type DatabaseFailedError, type DurabilityMode } from './recovery.js';
import { memoryBoundReached, memoryRefusal } from './memory-guard.js';
import type { ClientChange, RecoveredState } from './persistence.js';
import type { CommitLogStats } from '../durability/commitlog.js';
import { DatabaseCounters } from '../metrics/counters.js';

export type { ReducerInfo } from './reducers.js';
export type { UpdateOptions, UpdatePlan, UpdateResult } from './update.js';
export type ModuleChangeListener = (change: { breaksClients: boolean }) => void;
/** Module-log fields of host-written (system) lines: the CLI omits the sentinel from `spacetime logs` output. */
const systemLogFields = { filename: '__spacetimedb__', function: '__spacetimedb__' };

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
  /** 'fsync' (default): replies wait for fsync of their transaction; 'none': for the write to the OS only. */
  durability?: DurabilityMode;
  /** Snapshot policy overrides (tests, benchmarks); defaults in host/persistence.ts. */
  snapshotEveryCommits?: number;
  /** Recovery and snapshot events, one line each (default: stderr). */
  report?: (message: string) => void;
  /** Test-only: make the n-th commit-log write or sync fail (see durability/commitlog.ts). */
  faultInjection?: { failWriteNumber?: number; failSyncNumber?: number };
  /** Bytes one transaction may write (limits.ts txWriteBytesMax; default: the server's, env-overridable). */
  txWriteBytesMax?: number;
  /** Test-only: a smaller commit-log record limit (limits.ts logRecordPayloadMaxBytes). */
  recordPayloadMaxBytes?: number;
  /** Reducer timestamps and schedule times (default: the system clock; src/testing passes a manual one). */
  clock?: Clock;
}

export interface DatabaseMetricsSnapshot {
  counters: DatabaseCounters;
  /** Undefined for an in-memory database. */
  commitLog: Readonly<CommitLogStats> | undefined;
  moduleHeapBytes: number | undefined;
  /**
   * Syscalls the module made into the host after its entries since the database opened (module updates included):
   * what the row cache, read-ahead and queued writes leave (docs/engine-v2.md §6d). Per transaction, the figure a
   * workload's shape shows in.
   */
  moduleSyscallCrossings: number;
  tables: { name: string; rows: number }[];
}

export type ReducerCallResult =
  | { status: 'committed'; timestampMicros: bigint; durationMicros: number; txData: TxData }
  | { status: 'failed'; message: string }
  | { status: 'internal'; message: string };

/** `callReducerNow`'s answer: the result, and what its reply waits for (undefined: nothing). */
export interface ImmediateCall {
  result: ReducerCallResult;
  durable: Promise<void> | undefined;
}

/** A client's call as `callReducersNow` takes it. */
export interface NowCall { name: string; args: Uint8Array; caller: Caller }

/**
 * `callReducersNow`'s report of call `index`: its result, or what `callReducer` would have rejected it with; and what
 * its reply waits for (undefined: nothing).
 */
export type NowCallRan = (index: number, result: ReducerCallResult | Error, durable: Promise<void> | undefined) => void;

/** What subscribers learn about each committed transaction. */
export interface CommitEvent {
  txData: TxData;
  caller: Caller;
  /** The reducer that ran (undefined for a commit without one, e.g. a lifecycle hook the module lacks). */
  reducer: ReducerInfo | undefined;
  args: Uint8Array;
  timestampMicros: bigint;
  durationMicros: number;
  /** Resolves when the transaction is on disk (undefined: no durability, e.g. an in-memory database). */
  durable?: Promise<void>;
}
export type CommitListener = (event: CommitEvent) => void;

/** The fixed text a caller sees for a non-SenderError failure (host-abi §5.2). */
export const internalErrorMessage = 'The instance encountered a fatal error.';
const moduleLogFileName = 'module.log';
const emptyArgs = new Uint8Array(0);

export class Database {
  readonly logs: ModuleLog;
  /** Calls and commits counted for GET /v1/metrics (server/metrics.ts reads them when scraped). */
  readonly counters = new DatabaseCounters();
  private closed = false;
  /** True while a call runs; calls arriving then (e.g. from a commit listener) wait in `pending`, in order. */
  private busy = false;
  /** performance.now() when the queue's current turn began (drainQueued yields past callQueueTurnBudgetMs). */
  private turnStartedMs = 0;
  /**
   * What waits for the queue, in order: a function (one that returns a promise, enqueueAsync, holds the queue until it
   * settles), or a client's reducer call (enqueueCall), which runs in a batch with the calls queued right behind it.
   */
  private readonly pending: (PendingRun | QueuedCall)[] = [];
  /** A drain of the queue is due in a microtask: client calls arriving before it join its batch (enqueueCall). */
  private gathering = false;
  private readonly commitListeners = new Set<CommitListener>();
  /** JWT payloads of connected clients, by connection id (read by `get_jwt_payload`). */
  private readonly jwts = new Map<bigint, string>();
  private readonly immediate: { reducer: string; args: Uint8Array; caller: Caller }[] = [];
  private currentCaller: Caller | undefined;
  /** Set from DatabaseOptions.clock in create(), before anything runs. */
  private clock: Clock = systemClock;
  /** Scheduler, procedures and module HTTP routes (host/module-features.ts); set right after construction. */
  features!: ModuleFeatures;
  /** Views and row-level security (host/views.ts); set right after construction. */
  views!: ViewHost;
  /** SQL system variables (SET/SHOW row_limit, st_var): replaced by a request that SETs one, logged durably. */
  private sqlVars: ReadonlyMap<string, bigint> = new Map();
  /** Connected clients (connection id → identity), for st_client. */
  private readonly clients = new Map<bigint, bigint>();
  /** Module-update listeners (onModuleChange). */
  private readonly moduleListeners = new Set<ModuleChangeListener>();
  /** The commit log of a database with a directory (undefined: in memory only, or while init runs at create). */
  private durability: DatabaseDurability | undefined;
  /** A client connect/disconnect to log with the next commit (consumed by `announce`). */
  private pendingClient: ClientChange | undefined;
  /** Bytes one transaction may write; checked before every commit so that it fits one log record (limits.ts). */
  private txWriteBytesMax = 0;

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
  static async create(options: DatabaseOptions, program: string | Uint8Array, reopen?: Reopen): Promise<Database> {
    const dir = options.dataDir ?? options.dir;
    const limits: RuntimeLimits = {
      memoryLimitMib: options.limits?.memoryLimitMib ?? moduleMemoryLimitMibConfigured(),
      reducerTimeoutMs: options.limits?.reducerTimeoutMs ?? reducerTimeoutMsConfigured(),
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
        return target.write(levelName(level), message, at ?? {});
      },
      jwtPayload: (connId) => db?.jwtFor(connId),
      scheduleImmediate: (reducer, args) => db?.queueImmediate(reducer, args),
      features: lazyFeatureSyscalls(() => db?.features),
    });
    runtime = ModuleRuntime.create(prepared, host, limits);
    try {
      const defBytes = runtime.describe().slice();
      let def: RawModuleDefV10;
      let schema: DatabaseSchema;
      let reducers: ReducerCatalog;
      let initTx: TxData | undefined;
      let viewCatalog, rls;
      try {
        def = decodeRawModuleDef(defBytes);
        if (reopen?.recovered === undefined) checkModuleNames(def);
        schema = buildDatabaseSchema(def);
        reducers = new ReducerCatalog(def);
        viewCatalog = buildViewCatalog(def, schema);
        rls = compileRlsFilters(def, schema);
      } catch (err) {
        throw new PublishError(`invalid module: ${messageOf(err)}`);
      }
      const datastore = reopen?.recovered?.datastore ?? new Datastore(schema);
      db = new Database(options.identity, options.ownerIdentity, defBytes, def, schema, reducers, datastore, host,
        runtime, memLog);
      db.clock = options.clock ?? systemClock;
      db.txWriteBytesMax = txWriteBytesMaxOf(options.txWriteBytesMax);
      db.views = db.createViewHost(viewCatalog, rls);
      db.sqlVars = reopen?.recovered?.vars ?? new Map();
      db.features = db.createFeatures(options.limits);
      const init = reopen?.recovered !== undefined ? undefined : reducers.lifecycle.init;
      if (init !== undefined) {
        const owner: Caller = { identity: options.ownerIdentity, connectionId: 0n, jwtPayload: undefined };
        const result = db.runReducer(init, emptyArgs, owner);
        if (result.status !== 'committed') {
          const detail = result.status === 'failed' ? result.message : lastPanic(memLog) ?? result.message;
          throw new PublishError(`the module's init reducer failed: ${detail}`);
        }
        initTx = result.txData;
      }
      if (dir !== undefined) {
        await db.attachDurability(dir, options, program, reopen, initTx);
        const logs = new ModuleLog(join(dir, moduleLogFileName));
        for (const r of memLog.tail()) logs.append(r);
        db.swapLog(logs);
      }
      db.features.start();
      return db;
    } catch (err) {
      db?.features?.close();
      runtime.dispose();
      await (reopen?.durability ?? db?.durability)?.close().catch(() => {});
      if (err instanceof PublishError) throw err;
      throw new PublishError(messageOf(err));
    }
  }

  /**
   * Reopens a database from its directory: recovers its state from snapshot + log, loads the newest logged program
   * (not `program`, which is only used when the directory holds none, e.g. a crash between mkdir and the first
   * record) WITHOUT running init, then runs client_disconnected for every client that was connected at the crash.
   * A corrupt log throws (CommitLogCorruptError / PersistenceError naming the file and offset).
   */
  static async open(options: DatabaseOptions, program: string | Uint8Array): Promise<Database> {
    const dir = options.dataDir ?? options.dir;
    assert(dir !== undefined, 'Database.open needs a directory');
    const { durability, recovered } = await DatabaseDurability.open(dir, durabilityOptionsOf(options));
    const db = await Database.create(options, recovered?.program.programText ?? program, { durability, recovered });
    for (const [connectionId, identity] of recovered?.connectedClients ?? []) {
      await db.clientDisconnected({ identity, connectionId, jwtPayload: undefined }).catch((err: unknown) => {
        db.logs.write('Error', `client_disconnected after restart failed: ${messageOf(err)}`);
      });
    }
    return db;
  }

  /**
   * Connects the database to its commit log (create and open). A new database logs its Program (a Reset when the
   * directory already had one) and init's transaction together, and is returned only once both are durable.
   */
  private async attachDurability(dir: string, options: DatabaseOptions, program: string | Uint8Array, reopen: Reopen | undefined,
    initTx: TxData | undefined): Promise<void> {
    const opened = reopen ?? await DatabaseDurability.open(dir, durabilityOptionsOf(options));
    this.durability = opened.durability;
    if (reopen?.recovered !== undefined) return;
    const text = typeof program === 'string' ? program : new TextDecoder().decode(program);
    const info = { programText: text, moduleDef: this.defBytes, ownerIdentity: this.ownerIdentity, databaseIdentity: this.identity,
      timestampMicros: this.clock.nowMicros() };
    const d = opened.durability;
    d.recordProgram(info, opened.recovered !== undefined);
    // A reset starts a new module log too (as when the directory was recreated).
    if (opened.recovered !== undefined) removeModuleLog(join(dir, moduleLogFileName));
    // init ran before the log was attached: its rows follow the Program record in the same batch.
    await d.logCommit(initTx ?? { tables: [] }, this.datastore, info.timestampMicros);
  }

  private swapLog(logs: ModuleLog): void {
    (this as { logs: ModuleLog }).logs = logs;
  }

  moduleDefBytes(): Uint8Array {
    return this.defBytes;
  }

  /**
   * The program text of the last Program/Reset record in the database's log — the program it runs, and after a
   * crash the one that survives (undefined: an in-memory database). The server's control data follows it at start.
   */
  loggedProgramText(): string | undefined {
    return this.durability?.persistence.currentProgram?.programText;
  }

  reducerByName(name: string): ReducerInfo | undefined {
    return this.reducers.get(name);
  }

  /** Syscall crossings from the isolate into the host so far (benchmarks). */
  syscallCrossings(): number {
    return this.host.crossings;
  }

  /** Subscriptions: wraps the server's query compiler so views and row-level security apply per caller. */
  wrapCompile(base: CompileQuery): CompileQuery {
    // Resolved per compile: a module update replaces the ViewHost (host/update.ts).
    return (text, view, options) => this.views.wrapCompile(base)(text, view, options);
  }

  /** Views run against committed state with a read-only, read-set-recording transaction (host/views.ts). */
  private createViewHost(catalog: ReturnType<typeof buildViewCatalog>, rls: ReturnType<typeof compileRlsFilters>): ViewHost {
    return new ViewHost({
      views: catalog, rls, base: this.datastore,
      log: (level, message, target) => this.logs.write(level, message, { target }),
      systemState: () => this.systemState(),
      call: (anonymous, fnId, sender, reader) => {
        const runtime = this.runtime;
        if (runtime === undefined) return { kind: 'error', message: 'the database is closed' };
        const previous = this.host.tx;
        this.host.tx = reader;
        try {
          return runtime.callView(anonymous, fnId, sender);
        } finally {
          this.host.tx = previous;
        }
      },
    });
  }

  /** The SQL row limit non-owners' queries and subscriptions run under (`SET row_limit`), if set. */
  rowLimit(): bigint | undefined {
    return this.sqlVars.get(rowLimitVar);
  }

  /** Why a new subscription is refused now: the server is at its memory bound (host/memory-guard.ts). */
  subscribeRefusal(): string | undefined {
    return memoryRefusal('a new subscription is refused');
  }

  /** st_module's program bytes and hash, for the program text they were computed from (once per program). */
  private programDigest: { text: string; bytes: Uint8Array; hash: bigint } | undefined;

  /** The logged program's bytes and hash (upstream: u256 of the blake3 digest's LE bytes), computed once per program. */
  private loggedProgramDigest(): { bytes: Uint8Array; hash: bigint } {
    const text = this.loggedProgramText() ?? '';
    if (this.programDigest?.text === text) return this.programDigest;
    const bytes = new TextEncoder().encode(text);
    const digest = blake3(bytes);
    let hash = 0n;
    for (let i = digest.length - 1; i >= 0; i--) hash = (hash << 8n) | BigInt(digest[i]!);
    this.programDigest = { text, bytes, hash };
    return this.programDigest;
  }

  /** What the host system tables (st_module, st_client, st_var, st_view, …: datastore/system.ts) show now. */
  private systemState(): HostSystemState {
    const program = this.loggedProgramDigest();
    return {
      module: { databaseIdentity: this.identity, ownerIdentity: this.ownerIdentity, programHash: program.hash, programBytes: program.bytes },
      clients: [...this.clients].map(([connectionId, identity]) => ({ identity, connectionId })),
      credentials: [...this.jwts].map(([connectionId, jwtPayload]) => ({ connectionId, jwtPayload })),
      vars: this.sqlVars,
      rls: [...this.views.rls.values()].flatMap((fs) => fs.map((f) => ({ tableId: f.table.tableId, sql: f.sql }))),
      views: this.views.viewRows(),
    };
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
      info = this.checkedCall(name, args, caller);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueueCall(info, args, caller);
  }

  /**
   * `callReducer` without a promise per call (the WebSocket session's hot path): when nothing else is running, runs
   * the call at once and returns its result with the promise its reply must wait for (everything logged up to the
   * end of the call is durable; undefined: nothing to wait for). Commits of one group commit share that promise, so
   * a burst of calls costs one durability reaction instead of a promise chain each, and the result (its TxData
   * included) is garbage as soon as the caller has encoded its reply. Returns undefined while another call runs (use
   * `callReducer`); throws what `callReducer` would reject with.
   */
  callReducerNow(name: string, args: Uint8Array, caller: Caller): ImmediateCall | undefined {
    if (this.busy) return undefined;
    const info = this.checkedCall(name, args, caller);
    if (this.closed) throw new DatabaseClosedError();
    const durability = this.durability;
    if (durability?.failure !== undefined) throw durability.failure;
    this.beginTurn();
    try {
      const result = this.runReducer(info, args, caller);
      return { result, durable: durability?.flushed() };
    } finally {
      this.drainQueued();
    }
  }

  /**
   * `callReducerNow` for a client's calls that arrived together (a database worker's turn): runs them in order, in
   * batches where it may (one entry into the isolate for many calls, runReducerBatch), and calls `ran` for each right
   * after its commit's events (or, for a call `callReducer` would reject, with that error in its turn), with what its
   * reply waits for. Immediate calls one queues run right after it. False while another call runs: nothing ran.
   */
  callReducersNow(calls: readonly NowCall[], ran: NowCallRan): boolean {
    if (this.busy) return false;
    if (this.closed) throw new DatabaseClosedError();
    const durability = this.durability;
    if (durability?.failure !== undefined) throw durability.failure;
    this.beginTurn();
    try {
      let next = 0;
      const run: BatchedCall[] = [];
      const ended = (result: ReducerCallResult): void => { ran(next++, result, durability?.flushed()); };
      while (next < calls.length) {
        run.length = 0;
        let error: Error | undefined;
        for (let i = next; i < calls.length && run.length < callBatchCallsMax; i++) {
          const { name, args, caller } = calls[i];
          try {
            const info = this.checkedCall(name, args, caller);
            run.push({ info, args, caller, id: info.id, sender: caller.identity, connId: caller.connectionId });
          } catch (err) {
            error = err instanceof Error ? err : new Error(messageOf(err));
            break;
          }
        }
        this.runCalls(run, ended);
        if (error !== undefined) ran(next++, error, undefined);
      }
      return true;
    } finally {
      this.drainQueued();
    }
  }

  /**
   * Runs `calls` in order, in batches where it may, each followed by the immediate calls it queued; `ended` is called
   * with each call's result right after its commit.
   */
  private runCalls(calls: readonly BatchedCall[], ended: (result: ReducerCallResult) => void): void {
    for (let done = 0; done < calls.length;) {
      if (calls.length - done > 1 && this.batchable()) done += this.runReducerBatch(calls, done, calls.length - done, ended);
      else { const c = calls[done++]; ended(this.runReducer(c.info, c.args, c.caller)); }
      while (this.immediate.length > 0) this.runImmediate();
    }
  }

  /** A client call with SATS-JSON arguments: an array (positional) or an object (by parameter name). */
  callReducerJson(name: string, argsJson: unknown, caller: Caller): Promise<ReducerCallResult> {
    let info: ReducerInfo;
    let args: Uint8Array;
    try {
      info = this.clientCallable(name, caller);
      args = info.argsCodec.encode(argsFromJson(info, argsJson, 'reducer'));
    } catch (err) {
      if (err instanceof BadArgumentsError || err instanceof NoSuchReducerError || err instanceof ReducerNotCallableError) {
        return Promise.reject(err);
      }
      return Promise.reject(new BadArgumentsError(this.reducers.get(name)?.name ?? name, messageOf(err)));
    }
    return this.enqueueCall(info, args, caller);
  }

  /** Runs `client_connected`; a failure rejects the connection (ConnectionRejectedError) and is rolled back. */
  clientConnected(caller: Caller): Promise<void> {
    return this.durably(() => {
      if (caller.jwtPayload !== undefined) this.jwts.set(caller.connectionId, caller.jwtPayload);
      const info = this.reducers.lifecycle.onConnect;
      this.pendingClient = { connected: true, identity: caller.identity, connectionId: caller.connectionId };
      try {
        const r = info === undefined ? undefined : this.runReducer(info, emptyArgs, caller);
        if (r !== undefined && r.status !== 'committed') {
          this.pendingClient = undefined; // rejected: it never was connected
          this.jwts.delete(caller.connectionId);
          throw new ConnectionRejectedError(r.message);
        }
        this.clients.set(caller.connectionId, caller.identity);
      } finally {
        this.logPendingClient();
      }
    });
  }

  /** Runs `client_disconnected`; the client's state is cleaned up whatever the reducer does. */
  clientDisconnected(caller: Caller): Promise<void> {
    return this.durably(() => {
      const info = this.reducers.lifecycle.onDisconnect;
      this.pendingClient = { connected: false, identity: caller.identity, connectionId: caller.connectionId };
      try {
        if (info !== undefined) this.runReducer(info, emptyArgs, caller);
      } finally {
        this.jwts.delete(caller.connectionId);
        this.clients.delete(caller.connectionId);
        this.logPendingClient();
      }
    });
  }

  /**
   * One-off SQL (/sql): SELECTs read committed state; DML (owner only) runs in one transaction whose commit is
   * announced to commit listeners like a reducer's (with `reducer` undefined). Errors are the sql layer's SqlError.
   */
  sql(query: string, caller: Caller, options?: { isOwner: boolean }): Promise<SqlResults> {
    return this.durably(() => {
      const timestampMicros = this.clock.nowMicros();
      const started = performance.now();
      const isOwner = options?.isOwner ?? caller.identity === this.ownerIdentity;
      const results = executeSql(query, { view: this.views.callerView(caller.identity, isOwner), beginMutTx: () => this.datastore.beginMutTx(),
        commitRefusal: (tx) => this.commitRefusal(tx) }, {
        sender: caller.identity,
        isOwner,
        vars: this.sqlVars,
      });
      if (results.vars !== undefined) {
        // Logged with the request's transaction, or alone in an empty one; the reply waits for it (durably).
        this.sqlVars = results.vars;
        this.durability?.persistence.setVars(results.vars);
        if (results.txData === undefined || results.txData.tables.length === 0) {
          this.durability?.logCommit({ tables: [] }, this.datastore, timestampMicros).catch(() => {});
        }
      }
      if (results.txData !== undefined && results.txData.tables.length > 0) {
        const durationMicros = Math.round((performance.now() - started) * 1000);
        this.announce({ txData: results.txData, caller, reducer: undefined, args: emptyArgs, timestampMicros, durationMicros });
      }
      return results;
    });
  }

  /** `sql` rendered as POST /sql's JSON body here, on the database's thread (sql/json.ts says why). */
  sqlJson(query: string, caller: Caller, options?: { isOwner: boolean }): Promise<Uint8Array> {
    return this.sqlRendered(query, caller, options, renderSqlJson);
  }

  /** `sql` rendered as PostgreSQL backend messages (pgwire), here, on the database's thread. */
  sqlPg(query: string, caller: Caller, options?: { isOwner: boolean }): Promise<Uint8Array> {
    return this.sqlRendered(query, caller, options, renderPgAnswer);
  }

  /** `render` gets the results and the request's µs, for the statements the host does not time on their own. */
  private async sqlRendered(query: string, caller: Caller, options: { isOwner: boolean } | undefined,
    render: (results: SqlResults, durationMicros: number) => Uint8Array): Promise<Uint8Array> {
    const started = performance.now();
    const results = await this.sql(query, caller, options);
    return render(results, Math.round((performance.now() - started) * 1000));
  }

  /** Runs `fn` with a read-only view of committed state, serialized with calls (for SQL and subscriptions). */
  read<T>(fn: (view: Datastore) => T): Promise<T> {
    return this.enqueue(() => fn(this.datastore));
  }

  /** The running module as update planning sees it (host/update.ts). */
  runningModule(): RunningModule {
    return { def: this.moduleDef, schema: this.schema };
  }

  /** Loads `program` beside the running module and plans the update to it (pre_publish); nothing changes. */
  async planUpdate(program: string): Promise<UpdatePlan> {
    const next = await this.loadNextModule(program);
    next.runtime.dispose();
    return planModuleUpdate(this.runningModule(), next);
  }

  /**
   * Module update (host/update.ts, datastore/migrate.ts): loads `program` in a new isolate while the old one serves,
   * plans, then inside the call queue migrates the rows and swaps module, schema and datastore in one step (`init`
   * does not run). Any failure throws UpdateRejectedError / PublishError and leaves the old module serving.
   */
  async update(program: string, options: UpdateOptions): Promise<UpdateResult> {
    const next = await this.loadNextModule(program).catch((err: unknown) => {
      this.logs.write('Error', `Database update failed: ${messageOf(err)}`, systemLogFields);
      throw err;
    });
    let swapped = false;
    try {
      const planned = planModuleUpdate(this.runningModule(), next);
      if (planned.kind === 'manual') throw new UpdateRejectedError(planned.reason);
      let viewCatalog: ReturnType<typeof buildViewCatalog>;
      let rls: ReturnType<typeof compileRlsFilters>;
      try {
        viewCatalog = buildViewCatalog(next.def, next.schema);
        rls = compileRlsFilters(next.def, next.schema);
      } catch (err) {
        throw new UpdateRejectedError(`invalid module: ${messageOf(err)}`);
      }
      if (planned.plan.breaksClients && !options.breakClients) {
        throw new UpdateRejectedError('the plan disconnects all clients and the migration policy is `Compatible` ' +
          '(publish with --break-clients to accept)');
      }
      // Copy what must be copied while the old module serves (chunked), recording the commits made meanwhile;
      // the swap then only replays those and takes the other tables over (datastore/migrate.ts).
      const since: TxData[] = [];
      const stopRecording = this.onCommit((e) => { since.push(e.txData); });
      let build: MigrationBuild;
      let result: UpdateResult;
      try {
        const oldDatastore = this.datastore;
        const snapshot = await this.enqueue(() => { since.length = 0; return snapshotForMigration(oldDatastore, next.schema); });
        build = await runChunked(buildMigration(oldDatastore, next.schema, snapshot)).catch((err: unknown) => {
          throw err instanceof MigrationError ? new UpdateRejectedError(err.message) : err;
        });
        result = await this.enqueue(() => {
        assert(this.datastore === oldDatastore, 'the datastore changed during an update');
        let datastore: Datastore;
        try {
          datastore = finishMigration(oldDatastore, next.schema, build, since);
        } catch (err) {
          if (err instanceof MigrationError) throw new UpdateRejectedError(err.message);
          throw err;
        }
        for (const step of planned.plan.steps) {
          if (step.kind === 'AddTable') this.logs.write('Info', `Creating table \`${step.table}\``, systemLogFields);
          if (step.kind === 'RemoveTable') this.logs.write('Info', `Dropping table \`${step.table}\``, systemLogFields);
        }
        const old = this.runtime;
        const self = this as unknown as Record<string, unknown>;
        const swappedFields = ['defBytes', 'moduleDef', 'schema', 'reducers', 'datastore', 'host', 'views', 'runtime'];
        const previous = swappedFields.map((f) => self[f]);
        const materialized = this.views.cachedViews();
        self.defBytes = next.defBytes;
        self.moduleDef = next.def;
        self.schema = next.schema;
        self.reducers = next.reducers;
        self.datastore = datastore;
        self.host = next.host;
        this.views = this.createViewHost(viewCatalog, rls);
        this.runtime = next.runtime;
        // Upstream re-evaluates materialized views inside the update: a view that fails against the new module and
        // data refuses the update, and the old module goes on serving with nothing stored.
        try {
          this.views.reevaluate(materialized);
        } catch (err) {
          swappedFields.forEach((f, i) => { self[f] = previous[i]; });
          throw new UpdateRejectedError(`a view failed while it was re-evaluated: ${messageOf(err)}`);
        }
        swapped = true;
        old?.dispose();
        this.logs.write('Info', `Updated program to ${next.programHash}`, systemLogFields);
        this.durability?.recordProgram({ programText: next.programText, moduleDef: next.defBytes,
          ownerIdentity: this.ownerIdentity, databaseIdentity: this.identity, timestampMicros: this.clock.nowMicros() }, false);
        if (planned.plan.breaksClients) this.logs.write('Info', 'Disconnecting all users', systemLogFields);
        for (const l of this.moduleListeners) {
          try { l({ breaksClients: planned.plan.breaksClients }); } catch (err) {
            this.logs.write('Error', `module change listener failed: ${messageOf(err)}`);
          }
        }
        this.logs.write('Info', 'Database updated', systemLogFields);
        return { plan: planned.plan, planText: planned.planText, programHash: next.programHash };
        });
      } finally {
        stopRecording();
      }
      await this.durability?.flushed();
      return result;
    } catch (err) {
      if (!swapped) next.runtime.dispose();
      this.logs.write('Error', `Database update failed: ${messageOf(err)}`, systemLogFields);
      throw err;
    }
  }

  /**
   * Called inside the call queue right after a module update swapped in (subscriptions recompile their queries
   * against the new schema, or close every client when the plan breaks them; the scheduler reloads). Returns the
   * unsubscribe function.
   */
  onModuleChange(listener: ModuleChangeListener): () => void {
    this.moduleListeners.add(listener);
    return () => { this.moduleListeners.delete(listener); };
  }

  private loadNextModule(program: string) {
    assert(this.runtime !== undefined, 'update after close');
    return loadModule(program, this.runtime.limits, (current) => ({
      identity: this.identity,
      log: (level, message, frame) => {
        const at = frame === '' ? undefined : current()?.mapFrame(frame);
        return this.logs.write(levelName(level), message, at ?? {});
      },
      jwtPayload: (connId) => this.jwtFor(connId),
      scheduleImmediate: (reducer, args) => this.queueImmediate(reducer, args),
      features: lazyFeatureSyscalls(() => this.features),
    }));
  }

  // ---- Scheduler, procedures, module HTTP routes (host/module-features.ts) ----------------------------------------

  /**
   * Why `tx` may not commit, checked before the in-memory commit: too large for one log record, or it adds rows while
   * the server is at its memory bound (host/memory-guard.ts; transactions that delete or keep the size still commit).
   */
  private commitRefusal(tx: MutTx): string | undefined {
    const tooLarge = txTooLargeMessage(tx, this.txWriteBytesMax);
    if (tooLarge !== undefined || (tx.grownBytes ?? 0) <= 0) return tooLarge;
    return memoryRefusal(`a transaction that adds rows (this one: ${tx.grownBytes} bytes) is rolled back`);
  }

  /** The glue object; its constructor sees this Database only through these closures. */
  private createFeatures(limits: Partial<RuntimeLimits> | undefined): ModuleFeatures {
    const f = new ModuleFeatures({
      identity: this.identity, ownerIdentity: this.ownerIdentity, limits,
      def: () => this.moduleDef, schema: () => this.schema, datastore: () => this.datastore,
      reducers: () => this.reducers, runtime: () => this.runtime, logs: () => this.logs,
      enqueue: (fn) => this.durably(fn), enqueueAsync: (fn) => this.durablyAsync(fn),
      runReducer: (info, args, caller) => this.runReducer(info, args, caller),
      announce: (event) => this.announce(event), onCommit: (l) => this.onCommit(l), nowMicros: () => this.clock.nowMicros(),
      commitRefusal: (tx) => this.commitRefusal(tx),
      manualTime: this.clock.manual === true,
    });
    this.onModuleChange(() => f.reload());
    return f;
  }

  procedureByName(name: string): ProcedureInfo | undefined { return this.features.procedureByName(name); }
  /** WebSocket CallProcedure: BSATN args → BSATN return value (or an internal error). */
  callProcedure(name: string, args: Uint8Array, caller: Caller): Promise<ProcedureCallResult> {
    return this.features.callProcedure(name, args, caller);
  }
  /** HTTP /call fallback: SATS-JSON args → the return value as JSON. */
  callProcedureJson(name: string, args: unknown, caller: Caller) { return this.features.callProcedureJson(name, args, caller); }
  /** A module HTTP route (`/v1/database/:noi/route/*`). */
  serveHttp(method: string, path: string, uri: string, headers: [string, string][], body: Uint8Array):
    Promise<HttpRouteResponse | undefined | 'methodNotAllowed'> {
    return this.features.serveHttp(method, path, uri, headers, body);
  }
  /** What GET /v1/metrics reads of this database when it is scraped (server/metrics.ts). */
  metricsSnapshot(): DatabaseMetricsSnapshot {
    return {
      counters: this.counters,
      commitLog: this.durability?.persistence.stats,
      moduleHeapBytes: this.runtime?.heapUsedBytes(),
      moduleSyscallCrossings: this.host.crossings,
      tables: this.schema.tables.map((t) => ({ name: t.name, rows: this.datastore.rowCount(t.tableId) })),
    };
  }

  get httpBodyMaxBytes(): number { return this.features.limits.httpHandlerBodyMaxBytes; }

  /** The commit log failure that stopped this database (host/recovery.ts); undefined while it is healthy. */
  get failure(): DatabaseFailedError | undefined { return this.durability?.failure; }
  /** Calls `listener` once if its commit log fails (server/databases.ts then reopens the database from its files). */
  onFailure(listener: (failure: DatabaseFailedError) => void): void { this.durability?.onFailure(listener); }
  /** The last commit-log offset on disk (undefined: in memory only); a hot backup copies the files up to it. */
  get durableOffset(): bigint | undefined { return this.durability?.persistence.durableOffset; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.drainGathered();                        // calls made before close() run, as they did when calls ran at once
    this.closed = true;
    this.features?.close();
    this.runtime?.dispose();
    this.runtime = undefined;
    await this.durability?.close(this.datastore);
  }

  // ------------------------------------------------------------------------------------------------------------

  /** A client's call by name with BSATN arguments, checked as `callReducer` checks it: its reducer, or the error. */
  private checkedCall(name: string, args: Uint8Array, caller: Caller): ReducerInfo {
    const info = this.clientCallable(name, caller);
    checkArgs(info, args, 'reducer');
    return info;
  }

  private clientCallable(name: string, caller: Caller): ReducerInfo {
    const info = this.reducers.get(name);
    if (info === undefined) throw new NoSuchReducerError(name);
    if (info.lifecycle !== undefined) {
      // Upstream's text names the lifecycle as its Rust enum prints (`Init`, `OnConnect`, `OnDisconnect`).
      const lifecycle = info.lifecycle[0]!.toUpperCase() + info.lifecycle.slice(1);
      throw new ReducerNotCallableError(info.name, `can't directly call special ${lifecycle} lifecycle reducer`);
    }
    // A private or scheduled reducer is there for its owner only; anyone else is told it does not exist (as upstream).
    if (info.ownerOnly && caller.identity !== this.ownerIdentity) throw new NoSuchReducerError(name);
    return info;
  }

  /**
   * FIFO serialization. Module calls are synchronous (the isolate runs on this thread), so a call that arrives while
   * nothing runs is executed at once; one that arrives during a call (re-entrantly, from a listener) is queued and
   * runs right after. This keeps promise hops off the hot path.
   */
  private enqueue<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new DatabaseClosedError());
    const failure = this.durability?.failure;
    if (failure !== undefined) return Promise.reject(failure);
    if (this.busy) {
      return new Promise<T>((resolve, reject) => {
        this.pending.push(() => { try { resolve(fn()); } catch (err) { reject(err); } });
      });
    }
    this.beginTurn();
    let result: Promise<T>;
    try {
      result = Promise.resolve(fn());
    } catch (err) {
      result = Promise.reject(err);
    }
    this.drainQueued();
    return result;
  }

  /**
   * `enqueue` for a call that finishes later (a procedure or HTTP handler: its isolate runs on its own thread, see
   * ModuleRuntime.enterFeature). Nothing else enters the isolate until it settles; this thread serves others meanwhile.
   */
  private enqueueAsync<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DatabaseClosedError());
    const failure = this.durability?.failure;
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      const run = (): Promise<void> => {
        let p: Promise<T>;
        try { p = fn(); } catch (err) { p = Promise.reject(err); }
        return p.then(resolve, reject);
      };
      if (this.busy) { this.pending.push(run); return; }
      this.beginTurn();
      void run().then(() => this.drainQueued());
    });
  }

  /** The queue was idle: this call starts a turn (callQueueTurnBudgetMs counts from here). */
  private beginTurn(): void {
    this.busy = true;
    this.turnStartedMs = performance.now();
  }

  /**
   * After a call: runs what it queued (immediate reducers, re-entrant calls) and what waits, then frees the queue.
   * Past the turn's budget it yields to the event loop first (setImmediate, the queue stays held, so order is kept):
   * sockets, timers and every other database get served between turns, so no database's backlog, schedule or
   * self-rescheduling call can starve the server's thread (limits.ts callQueueTurnBudgetMs).
   */
  private drainQueued(): void {
    let held = false;
    try {
      while (this.pending.length > 0 || (this.immediate.length > 0 && !this.closed)) {
        if (performance.now() - this.turnStartedMs > callQueueTurnBudgetMs) {
          held = true;
          setImmediate(() => { this.turnStartedMs = performance.now(); this.drainQueued(); });
          return;
        }
        // Immediate reducers run right after the call that queued them, before anything else that waits.
        if (this.immediate.length > 0 && !this.closed) { this.runImmediate(); continue; }
        if (typeof this.pending[0] !== 'function') { this.runQueuedCalls(); continue; }
        const running = (this.pending.shift() as PendingRun)();
        if (running !== undefined) {             // an asynchronous call: it keeps the queue, and drains after
          held = true;
          void running.then(() => this.drainQueued());
          return;
        }
      }
    } finally {
      if (!held) this.busy = false;
    }
  }

  /** One reducer call = one transaction. Synchronous: the isolate runs on this thread. */
  private runReducer(info: ReducerInfo, args: Uint8Array, caller: Caller): ReducerCallResult {
    const runtime = this.runtime;
    assert(runtime !== undefined, 'runReducer after close');
    const timestampMicros = this.clock.nowMicros();
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
    return this.finishCall(info, args, caller, tx, outcome, timestampMicros, started);
  }

  /**
   * Calls `calls[from, from + count)` in one entry into the isolate (ModuleRuntime.callReducers), each its own
   * transaction committed or rolled back as it ends, in order, its result handed to `ended` right after. Returns how
   * many ended (at least one): the others must run again (they did not start, or the batch was cut short).
   */
  private runReducerBatch(calls: readonly BatchedCall[], from: number, count: number, ended: (result: ReducerCallResult) => void): number {
    const runtime = this.runtime;
    assert(runtime !== undefined, 'runReducerBatch after close');
    const host = this.host;
    const timestampMicros = this.clock.nowMicros();
    let index = from, tx: MutTx | undefined;
    // Calls that end lazily are seen together (SyscallHost.settleBatch): they share the time since the last end.
    let lastEndMs = performance.now(), groupLeft = 0, shareMs = 0;
    const batch: CallBatch = {
      begin: () => {
        tx = this.datastore.beginMutTx();
        host.tx = tx;
        this.currentCaller = calls[index].caller;
      },
      end: (outcome: CallEnd, group: number) => {
        const now = performance.now();
        if (groupLeft === 0) { groupLeft = group; shareMs = (now - lastEndMs) / group; lastEndMs = now; }
        groupLeft--;
        const call = calls[index++], finished = tx!;
        tx = undefined;
        host.tx = undefined;
        this.currentCaller = undefined;
        ended(this.finishCall(call.info, call.args, call.caller, finished, outcome, timestampMicros, now - shareMs));
      },
      refusal: () => this.commitRefusal(tx!),
      mustStop: () => this.immediate.length > 0 || this.closed,
    };
    batch.begin();
    try {
      runtime.callReducers(calls, from, count, timestampMicros, batch);
    } catch (err) {
      // An internal fault (runReducer's catch, for a batch): the call it hit fails and rolls back.
      if (tx !== undefined) batch.end({ kind: 'error', message: messageOf(err) }, 1);
      else if (index === from) throw err;
    } finally {
      this.counters.callBatches++;
      this.counters.batchedCalls += index - from;
    }
    return index - from;
  }

  /** Whether queued calls may enter the isolate together now (docs/engine-v2.md §6c says why each condition). */
  private batchable(): boolean {
    // A commit that refreshes a view enters the isolate, and a lazily ended call commits inside the batch.
    if (this.views !== undefined && this.views.views.length > 0) return false;
    // A lazily ended call wrote less than one queue; a refusal of its commit (for size or memory) is handled, by
    // running the calls after it again (SyscallHost.cutBatch), but should stay rare.
    return this.txWriteBytesMax >= 2 * updateQueueMaxBytes && !memoryBoundReached();
  }

  /** The end of a reducer call: its commit (announced to the log and listeners) or rollback, and its result. */
  private finishCall(info: ReducerInfo, args: Uint8Array, caller: Caller, tx: MutTx, ended: CallEnd, timestampMicros: bigint,
    started: number): ReducerCallResult {
    let outcome = ended;
    if (outcome.kind === 'ok') {
      // Refused before the in-memory commit: a transaction too large for one log record, or one that adds rows while
      // the server is over its memory bound, fails like a reducer error.
      const refused = this.commitRefusal(tx);
      if (refused !== undefined) outcome = { kind: 'senderError' as const, message: refused };
    }
    if (outcome.kind === 'ok') {
      const txData = tx.commit();
      const elapsedMs = performance.now() - started;   // one clock read per call (~60 ns here)
      this.counters.reducerCalled(info.name, elapsedMs / 1000, false);
      const durationMicros = Math.round(elapsedMs * 1000);
      this.announce({ txData, caller, reducer: info, args, timestampMicros, durationMicros });
      return { status: 'committed', timestampMicros, durationMicros, txData };
    }
    this.counters.reducerCalled(info.name, (performance.now() - started) / 1000, true);
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

  /**
   * A client's reducer call through the queue. It does not run at once even when nothing runs: it waits for a
   * microtask, so that the calls made meanwhile (a burst from one turn of the event loop) run with it in one entry
   * into the isolate (runQueuedCalls). Released once everything logged up to its end is durable.
   */
  private enqueueCall(info: ReducerInfo, args: Uint8Array, caller: Caller): Promise<ReducerCallResult> {
    if (this.closed) return Promise.reject(new DatabaseClosedError());
    const failure = this.durability?.failure;
    if (failure !== undefined) return Promise.reject(failure);
    return new Promise<ReducerCallResult>((resolve, reject) => {
      this.pending.push({ info, args, caller, id: info.id, sender: caller.identity, connId: caller.connectionId, resolve, reject });
      if (this.busy) return;
      this.beginTurn();
      this.gathering = true;
      queueMicrotask(this.drainGatheredSoon);
    });
  }

  private readonly drainGatheredSoon = (): void => { this.drainGathered(); };

  /** Runs the calls enqueueCall gathered, if their drain is still due. */
  private drainGathered(): void {
    if (!this.gathering) return;
    this.gathering = false;
    this.drainQueued();
  }

  /**
   * Runs the client calls at the head of `pending` (up to callBatchCallsMax) as runCalls does, and releases each result
   * once what it logged is durable.
   */
  private runQueuedCalls(): void {
    const pending = this.pending;
    let n = 0;
    while (n < pending.length && n < callBatchCallsMax && typeof pending[n] !== 'function') n++;
    const calls = pending.splice(0, n) as QueuedCall[];
    const results: ReducerCallResult[] = [];
    const ended = (result: ReducerCallResult): void => { results.push(result); };
    let failure: unknown;
    try {
      this.runCalls(calls, ended);
    } catch (err) {
      failure = err;                             // an internal fault: the call that hit it fails, as a queued function would
    }
    const durable = this.durability?.flushed();
    for (let i = 0; i < results.length; i++) {
      const call = calls[i], result = results[i];
      if (durable === undefined) call.resolve(result);
      else durable.then(() => call.resolve(result), call.reject);
    }
    let next = results.length;
    if (failure !== undefined && next < n) calls[next++].reject(failure);
    if (this.closed) { for (let i = next; i < n; i++) calls[i].reject(new DatabaseClosedError()); return; }
    if (next < n) pending.unshift(...calls.slice(next));
  }

  /**
   * `enqueue`, with the result released only once everything logged up to the end of the call is durable (the call's
   * own commit included; later ones in the same batch cost nothing extra).
   */
  private durably<T>(fn: () => T): Promise<T> {
    return this.enqueue(() => {
      const value = fn();
      const durability = this.durability;
      return durability === undefined ? value : durability.flushed().then(() => value);
    }) as Promise<T>;
  }

  /** `durably` for an asynchronous call: released once what was logged up to its end is durable. */
  private durablyAsync<T>(fn: () => Promise<T>): Promise<T> {
    return this.enqueueAsync(async () => {
      const value = await fn();
      return { value, durable: this.durability?.flushed() };       // not awaited inside: the queue moves on
    }).then(async ({ value, durable }) => {
      await durable;
      return value;
    });
  }

  /** Logs a client connect/disconnect that no commit carried (no lifecycle reducer, or it failed). */
  private logPendingClient(): void {
    const client = this.pendingClient;
    this.pendingClient = undefined;
    if (client === undefined || this.durability === undefined) return;
    this.durability.logCommit({ tables: [] }, this.datastore, this.clock.nowMicros(), client).catch(() => {});
  }

  private lastCaughtDurable: Promise<void> | undefined;

  private announce(event: CommitEvent): void {
    this.counters.transactions++;
    const durability = this.durability;
    if (durability !== undefined) {
      const client = this.pendingClient;
      this.pendingClient = undefined;
      const durable = durability.logCommit(event.txData, this.datastore, event.timestampMicros, client);
      // Waiters see a rejection; this only keeps an unobserved one from crashing. Commits of one group commit share
      // one promise (recovery.ts), so one handler each.
      if (durable !== this.lastCaughtDurable) { durable.catch(() => {}); this.lastCaughtDurable = durable; }
      event.durable = durable;
    }
    // Before the listeners: subscriptions re-read views whose cached results this commit made stale.
    this.views?.commitApplied(event.txData);
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
    if (this.immediate.length >= immediateCallsQueuedMax) {
      this.features?.reportLimit('immediateCallsQueuedMax', `volatile_nonatomic_schedule_immediate: ${this.immediate.length} ` +
        `calls wait already (immediateCallsQueuedMax); further ones, starting with ${reducer}, are dropped`);
      return;
    }
    const caller = this.currentCaller ?? { identity: this.identity, connectionId: 0n, jwtPayload: undefined };
    this.immediate.push({ reducer, args, caller });
  }

  /** volatile_nonatomic_schedule_immediate: runs one queued call (drainQueued runs them after the call that queued them). */
  private runImmediate(): void {
    const { reducer, args, caller } = this.immediate.shift()!;
    const info = this.reducers.get(reducer);
    if (info === undefined) {
      this.logs.write('Error', `volatile_nonatomic_schedule_immediate: no such reducer ${reducer}`);
      return;
    }
    this.runReducer(info, args, caller);
  }
}

/** A function waiting for the call queue (Database.pending). */
type PendingRun = () => void | Promise<void>;

/** A client's reducer call, checked, as a batch runs it (runReducerBatch); the fields of BatchCallArgs included. */
interface BatchedCall {
  info: ReducerInfo; args: Uint8Array; caller: Caller;
  id: number; sender: bigint; connId: bigint;
}

/** A client's reducer call waiting for the queue (Database.enqueueCall). */
interface QueuedCall extends BatchedCall {
  resolve(result: ReducerCallResult): void;
  reject(err: unknown): void;
}

/** What `open` hands to `create`: the opened log and what it recovered (undefined: the directory held no program). */
interface Reopen {
  durability: DatabaseDurability;
  recovered: RecoveredState | undefined;
}

function durabilityOptionsOf(options: DatabaseOptions) {
  return {
    durability: options.durability,
    snapshotEveryCommits: options.snapshotEveryCommits,
    faultInjection: options.faultInjection,
    recordPayloadMaxBytes: options.recordPayloadMaxBytes,
    report: options.report ?? ((line: string) => process.stderr.write(`${line}\n`)),
  };
}

/** Runs a migration build, letting queued calls run between its chunks (setImmediate). */
async function runChunked<T>(steps: Generator<void, T>): Promise<T> {
  for (let r = steps.next(); ; r = steps.next()) {
    if (r.done === true) return r.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function lastPanic(log: ModuleLog): string | undefined {
  const recent = log.tail(5).reverse().find((r) => r.level === 'Panic');
  return recent?.message;
}
