// host/worker/proxy.ts — `WorkerDatabase`: a HostedDatabase whose `Database` runs in a worker thread.
//
// Owns: the pool of database worker threads (at most `workerThreadsMax`; which thread serves a new database; one idle
// thread kept warm: `workerSparesWarm`; each thread's reports and exit), the main side of protocol.ts
// (request ids, replies, events in the worker's order), what the server reads synchronously (the module definition
// and the catalogues built from it, the module log — a mirror of the worker's ring, older records from its files —
// the latest metrics, the failure and durable offset), the subscription port that forwards sessions to the worker's
// manager, and `workerHost` (the DatabaseHost of `spacetime start`, `--database-threads worker` being the default).
// May call: host/worker/protocol.ts, host/worker/exit-collection.ts, limits, host/reducers.ts, host/procedures.ts,
// host/module-log.ts, host/errors.ts, host/recovery.ts, datastore (schema and an empty store for the schema),
// sats/moduledef, subscription/manager.ts (compileWithSql, to refuse another compiler; types), subscription/messages.ts
// and subscription/port.ts (types), metrics/counters.ts (databaseWorkerThreads: what GET /v1/metrics shows of the pool).
//
// Why a worker: a reducer runs synchronously inside its isolate, so on the main thread a runaway holds every
// socket, every other database and /v1/ping for its whole limit. In a worker it holds only the databases of its
// thread: while fewer than `workerThreadsMax` threads run, that is its own database alone (each new database gets an
// idle thread, else a new one); at the bound, a new database goes to the thread serving the fewest (the oldest of
// those), so a client publishing database after database grows the server by a database's memory, not a thread's.
// Each database has a MessageChannel of its own to its thread (one port sent in an attach message), so the frames,
// their ordering and their numbering are per database, as they were with a thread each. A thread with a database is
// ref'd, one without unref'd, and threads are never ended while the process runs: isolated-vm aborts the process
// when a thread that used it is torn down (host/worker/entry.ts). `worker.terminate()` cannot stop a busy isolate
// either (docs/engine-v2.md §1), so close waits for the call to end.

import assert from 'node:assert';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { workerSparesWarm, workerThreadsMaxConfigured } from '../../limits.js';
import { collectBeforeProcessExit } from './exit-collection.js';
import { backgroundNiceConfigured, lowerOtherThreads } from './priority.js';
import { sharedMemorySample } from '../memory-guard.js';
import { databaseWorkerThreads } from '../../metrics/counters.js';
import { Datastore } from '../../datastore/store.js';
import { buildDatabaseSchema } from '../../datastore/schema.js';
import { decodeRawModuleDef, type RawModuleDefV10 } from '../../sats/moduledef.js';
import { ReducerCatalog, type ReducerInfo } from '../reducers.js';
import { ProcedureCatalog } from '../procedures.js';
import { ModuleLog, readLogFiles, type LogCursor, type LogListener, type LogRecord } from '../module-log.js';
import { BadArgumentsError, DatabaseClosedError } from '../errors.js';
import { DatabaseFailedError } from '../recovery.js';
import type {
  Caller, CommitEvent, CommitListener, ModuleChangeListener, ReducerCallResult, UpdateOptions,
  UpdatePlan, UpdateResult,
} from '../database.js';
import type { DatabaseSchema } from '../../datastore/types.js';
import { compileWithSql, type ClientHandle, type ClientSink, type CompileQuery, type SubscriptionCounts } from '../../subscription/manager.js';
import type { AnswersFor, PortAnswer, SubscriptionPort } from '../../subscription/port.js';
import type { QuerySetUpdate } from '../../subscription/messages.js';
import type { CreateDatabaseOptions, DatabaseHost, HostedDatabase, HostedLog } from '../../server/host-api.js';
import {
  decodeError, DurableTracker, readReplies, replaceUncloneable, RequestBatcher, tight, type AnswerValue, type Batch,
  type CallResult, type DatabaseState, type Frame, type ReplyHandlers, type Request, type WorkerAttach, type WorkerMetrics,
  type WorkerStart, type WorkerThreadReport,
} from './protocol.js';

/**
 * See WorkerDatabase.callReducerOrdered: told once, when the call ran in the worker (or could not run). An object with a
 * method rather than a callback, so that a session's call state is the whole per-call allocation (no closure).
 */
export interface OrderedCall { ran(result: ReducerCallResult, durable: Promise<unknown> | undefined): void }
type Pending = { reply: (value: unknown) => void; fail: (error: Error) => void };
/** A request without its id (distributes over the union). */
type RequestBody = Request extends infer R ? R extends { id: number } ? Omit<R, 'id'> : never : never;
type Procedures = ReturnType<HostedDatabase['procedureByName']>;

const emptyArgs = new Uint8Array(0);
const noQuerySets: QuerySetUpdate[] = [];
/** How long GET /v1/metrics waits for a worker's current figures before it serves the previous ones. */
const metricsRefreshWaitMs = 1_000;

/** One database worker thread and the databases it serves. */
interface PooledWorker {
  readonly worker: Worker;
  readonly databases: Set<WorkerDatabase>;
  /** Where the thread's own reports go (uncaught exceptions): the server log of the last database placed on it. */
  report: ((line: string) => void) | undefined;
}

/** Every live database worker thread, oldest first. */
const pool: PooledWorker[] = [];

/**
 * The thread for a new database (see the header): an idle one, else a new one below `workerThreadsMax`, else the one
 * serving the fewest databases (the oldest of those).
 */
function place(db: WorkerDatabase, report: (line: string) => void): PooledWorker {
  let pooled = pool.find((p) => p.databases.size === 0);
  if (pooled === undefined && pool.length < workerThreadsMaxConfigured()) pooled = startWorker();
  if (pooled === undefined) {
    pooled = pool[0]!;
    for (const p of pool) if (p.databases.size < pooled.databases.size) pooled = p;
  }
  if (pooled.databases.size === 0) pooled.worker.ref();
  pooled.databases.add(db);
  databaseWorkerThreads.set(pooled.worker.threadId, pooled.databases.size);
  pooled.report = report;
  return pooled;
}

/** `db` left its thread; a thread left with no database is unref'd, so that idle threads never keep the process alive. */
function unplace(pooled: PooledWorker, db: WorkerDatabase): void {
  if (!pooled.databases.delete(db)) return;
  if (pooled.databases.size === 0) pooled.worker.unref();
  databaseWorkerThreads.set(pooled.worker.threadId, pooled.databases.size);
}

/**
 * Starts idle threads until `workerSparesWarm` wait (within `workerThreadsMax`); called once a publish created a
 * database, so the next publish does not wait for a thread to boot (~0.3-0.5 s of its wall time). Not at start nor
 * after a reopen: a booting spare competes for the cores with what follows (a restart's first requests), and a server
 * that only serves its databases never needs one.
 */
function keepSparesWarm(): void {
  const threadsMax = workerThreadsMaxConfigured();
  let idle = pool.filter((p) => p.databases.size === 0).length;
  for (; idle < workerSparesWarm && pool.length < threadsMax; idle++) startWorker();
}

/** A new thread in the pool, idle (unref'd). */
function startWorker(): PooledWorker {
  const pooled: PooledWorker = { worker: newWorker(), databases: new Set(), report: undefined };
  const { worker } = pooled;
  const thread = worker.threadId;
  collectBeforeProcessExit(worker);
  worker.on('message', (message: WorkerThreadReport) => pooled.report?.(message.report));
  // After the 'message' listener: adding one refs the worker's port again (Node 20).
  worker.unref();
  worker.on('error', (err) => { for (const db of pooled.databases) db.threadError(err); });
  // With SPACETIME_BACKGROUND_NICE (priority.ts) the thread lowers itself; V8's platform threads, libuv's pool and any
  // thread started since are lowered from here.
  worker.once('online', () => lowerOtherThreads());
  worker.once('exit', (code) => {
    pool.splice(pool.indexOf(pooled), 1);
    databaseWorkerThreads.delete(thread);
    for (const db of [...pooled.databases]) db.threadExited(code);
    pooled.databases.clear();
  });
  pool.push(pooled);
  databaseWorkerThreads.set(thread, 0);
  return pooled;
}

function newWorker(): Worker {
  const here = import.meta.url;
  const workerData = sharedMemorySample(); // entry.ts attaches it: the memory bound's sample (host/memory-guard.ts)
  if (here.endsWith('.ts')) {
    // Running from source (tests under tsx): Node 20 does not pass --import loader hooks to workers.
    const entry = new URL('./entry.ts', here).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    return new Worker(boot, { eval: true, execArgv: [], workerData });
  }
  // execArgv: the process's own flags are not the worker's (`--input-type`/`--eval` of a `node --eval` parent fail it).
  return new Worker(new URL('./entry.js', here), { execArgv: [], workerData });
}

export class WorkerDatabase implements HostedDatabase {
  readonly identity: bigint;
  readonly ownerIdentity: bigint;
  readonly logs = new WorkerModuleLog();
  /** The thread serving this database, and this database's channel to it. */
  private readonly thread: PooledWorker;
  private readonly channel: MessagePort;
  private readonly pending = new Map<number, Pending>();
  /**
   * `callOrdered` requests not yet answered, oldest first, as [id, ran] pairs from `orderedHead`: the worker answers
   * them in the order it got them (it runs them in that order, or fails them in that order), so no map is needed.
   */
  private ordered: (number | OrderedCall)[] = [];
  private orderedHead = 0;
  private nextId = 1;
  /** Requests of this event-loop turn, posted together by flushOutbox. */
  private readonly outbox = new RequestBatcher((name) => this.reducers.get(name) !== undefined);
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly durables = new DurableTracker();
  private state!: DatabaseState;
  /**
   * What the server reads of the module, each decoded or built on first read from `state.defBytes` (the worker has its
   * own): a module of 5,000 tables with 3 indexes each and 5,000 reducers held the main thread ~0.47 s at every open
   * and update building all of them (decode 150 ms, schema 235 ms, reducer catalogue 60 ms, and their garbage), though
   * a database served over the binary protocol alone needs only its reducer names.
   */
  private def: RawModuleDefV10 | undefined;
  private dbSchema: DatabaseSchema | undefined;
  private reducerCatalog: ReducerCatalog | undefined;
  private procedureCatalog: ProcedureCatalog | undefined;
  /** Built on first read (only the JSON WebSocket session reads it): 1.6-3 ms of main-thread CPU per open or update. */
  private schemaView: Datastore | undefined;
  private metrics!: WorkerMetrics;
  private lastDurableOffset: bigint | undefined;
  private failed: DatabaseFailedError | undefined;
  private readonly failureListeners: ((failure: DatabaseFailedError) => void)[] = [];
  private readonly commitListeners = new Set<CommitListener>();
  private readonly moduleListeners = new Set<ModuleChangeListener>();
  private port: WorkerSubscriptionPort | undefined;
  /** Subscription sinks by connection id (the port's clients). */
  readonly sinks = new Map<bigint, ClientSink>();
  /** The same sinks by the number their binary events carry (subAdd's `client`). */
  private readonly sinksByNumber: (ClientSink | undefined)[] = [];
  private readonly freeSinkNumbers: number[] = [];

  private constructor(start: WorkerStart, private readonly report: (line: string) => void) {
    this.identity = start.identity;
    this.ownerIdentity = start.ownerIdentity;
    this.thread = place(this, report);
    const { port1, port2 } = new MessageChannel();
    this.channel = port1;
    port1.on('message', (batch: Batch<Frame>) => readReplies(batch, this.replyHandlers, this.outbox));
    this.thread.worker.postMessage({ port: port2 } satisfies WorkerAttach, [port2]);
  }

  /**
   * This database is done with its thread (closed, or never opened): its channel closes (an open port would keep the
   * process alive; the thread's session ends with it) and the thread may serve the next one.
   */
  private release(): void {
    this.closed = true;
    this.channel.close();
    this.failPending(new DatabaseClosedError());
    unplace(this.thread, this);
  }

  /** The pool's: the thread reported an error (it exits next). */
  threadError(err: Error): void {
    this.report(`database ${this.identity.toString(16)}: worker thread error: ${err.stack ?? err.message}`);
  }

  /** Places the database on a thread and creates (publish) or reopens (start) it there; rejects as Database.create/open. */
  static async start(start: WorkerStart, program: string, report: (line: string) => void): Promise<WorkerDatabase> {
    const db = new WorkerDatabase(start, report);
    try {
      const opened = await db.request<{
        state: DatabaseState; logTail: LogRecord[]; logFilePath: string | undefined; metrics: WorkerMetrics; durableOffset: bigint | undefined;
      }>({ op: 'open', program, ...start });
      db.setState(opened.state);
      db.logs.filePath = opened.logFilePath;
      for (const r of opened.logTail) db.logs.append(r);
      db.metrics = opened.metrics;
      db.lastDurableOffset = opened.durableOffset;
      return db;
    } catch (err) {
      if (!db.closed) db.release();
      throw err;
    }
  }

  private setState(state: DatabaseState): void {
    this.state = state;
    this.def = undefined;
    this.dbSchema = undefined;
    this.reducerCatalog = undefined;
    this.procedureCatalog = undefined;
    this.schemaView = undefined;
  }

  private get reducers(): ReducerCatalog { return this.reducerCatalog ??= new ReducerCatalog(this.moduleDef); }
  private get procedures(): ProcedureCatalog { return this.procedureCatalog ??= new ProcedureCatalog(this.moduleDef); }

  // ---- transport -------------------------------------------------------------------------------------------------

  private send(body: RequestBody, pending: Pending): void {
    if (this.closed && body.op !== 'close') { pending.fail(this.failed ?? new DatabaseClosedError()); return; }
    const id = this.nextId++;
    this.pending.set(id, pending);
    const request = body as Request;
    request.id = id;
    this.queued().object(request);
  }

  /** The batch of this turn, its flush scheduled. */
  private queued(): RequestBatcher {
    if (this.outbox.empty) setImmediate(this.flushOutbox);
    return this.outbox;
  }

  /**
   * Posts every request of this event-loop turn as one message: a postMessage and the worker's message event cost
   * more than the clone of a small request (bench:cores profile: postMessage was ~1/4 of the main thread's busy time
   * with one message per call). setImmediate gathers the requests of every socket read of the turn, in order.
   */
  private readonly flushOutbox = (): void => {
    const { batch, transfer } = this.outbox.take();
    try {
      this.channel.postMessage(batch, transfer);
      return;
    } catch {
      // Something in the batch cannot be cloned (a failed clone transfers nothing): that request's caller gets the
      // error, the rest go as they are.
    }
    replaceUncloneable(batch, (req, err) => {
      const pending = this.pending.get(req.id);
      this.pending.delete(req.id);
      // Structured clone refused the request (JSON arguments nested too deeply for it): the caller's input, a 400.
      const message = `they cannot be passed to the database: ${err.message}`;
      if (req.op === 'callReducerJson') pending?.fail(new BadArgumentsError(req.name, message));
      else if (req.op === 'callProcedureJson') pending?.fail(new BadArgumentsError(req.name, message, 'procedure'));
      else pending?.fail(err);
      return null;
    });
    this.channel.postMessage(batch, transfer);
  };

  /** Everything waiting for the worker fails with `error` (it closed or exited). */
  private failPending(error: Error): void {
    for (const p of this.pending.values()) p.fail(error);
    this.pending.clear();
    const ordered = this.ordered;
    const head = this.orderedHead;
    this.ordered = [];
    this.orderedHead = 0;
    for (let i = head; i < ordered.length; i += 2) (ordered[i + 1] as OrderedCall).ran({ status: 'internal', message: error.message }, undefined);
  }

  private request<T>(body: RequestBody): Promise<T> {
    return new Promise<T>((resolve, reject) => this.send(body, { reply: resolve as (v: unknown) => void, fail: reject }));
  }

  /** Fire and forget: a failure is only reported (the worker answers every request). */
  private notify(body: RequestBody): void {
    this.send(body, { reply: () => {}, fail: (e) => this.report(`database ${this.identity.toString(16)}: ${body.op}: ${e.message}`) });
  }

  /** The oldest `callOrdered` ran in the worker (or failed there: an object reply with its id, see dispatch). */
  private readonly ranOrdered = (id: number, result: CallResult, seq: number, offset: bigint | undefined): void => {
    if (offset !== undefined) this.lastDurableOffset = offset;
    const head = this.orderedHead;
    assert.equal(this.ordered[head], id, 'the worker answers callOrdered requests in the order they were sent');
    const call = this.ordered[head + 1] as OrderedCall;
    this.ordered[head] = this.ordered[head + 1] = 0;
    this.orderedHead = head + 2;
    if (this.orderedHead === this.ordered.length) {
      this.ordered.length = 0;
      this.orderedHead = 0;
    } else if (this.orderedHead >= 1024 && this.orderedHead * 2 >= this.ordered.length) {
      this.ordered = this.ordered.slice(this.orderedHead);
      this.orderedHead = 0;
    }
    // Its TxData stayed in the worker; the session reads only the status, timing and message.
    call.ran(result as ReducerCallResult, this.durables.promiseFor(seq));
  };

  private readonly dispatch = (f: Frame): void => {
    if ('id' in f) {
      if (f.offset !== undefined) this.lastDurableOffset = f.offset;
      const p = this.pending.get(f.id);
      this.pending.delete(f.id);
      if (p !== undefined) {
        if (f.ok) p.reply(f.value);
        else p.fail(decodeError(f.error));
      } else if (!f.ok && this.ordered[this.orderedHead] === f.id) {
        this.ranOrdered(f.id, { status: 'internal', message: decodeError(f.error).message }, 0, undefined);
      }
      return;
    }
    switch (f.ev) {
      case 'tx': this.sinks.get(f.connectionId)?.transaction(f.querySets, f.isCaller, this.durables.promiseFor(f.seq)); return;
      case 'shared': {
        const frame = Buffer.from(f.frame.buffer, f.frame.byteOffset, f.frame.byteLength);
        this.sinks.get(f.connectionId)?.sharedTransaction?.(frame, this.durables.promiseFor(f.seq));
        return;
      }
      case 'qsFailed': this.sinks.get(f.connectionId)?.querySetFailed(f.querySetId, f.error); return;
      case 'clientFail': this.sinks.get(f.connectionId)?.fail?.(f.code, f.reason); return;
      case 'commit': {
        const event = {
          txData: { tables: [] }, caller: { ...f.caller, jwtPayload: undefined }, args: emptyArgs,
          reducer: f.reducer as ReducerInfo | undefined, timestampMicros: f.timestampMicros, durationMicros: f.durationMicros,
        } satisfies CommitEvent;
        for (const l of this.commitListeners) l(event);
        return;
      }
      case 'logs': this.logs.mirrorLines(f.lines); return;
      case 'report': this.report(f.line); return;
      case 'durable':
        if (f.offset !== undefined) this.lastDurableOffset = f.offset;
        this.durables.reached(f.seq);
        return;
      case 'durableFailed': this.durables.fail(f.seq, decodeError(f.error)); return;
      case 'failure': this.fail(decodeError(f.error) as DatabaseFailedError); return;
      case 'moduleChanged': for (const l of this.moduleListeners) l({ breaksClients: f.breaksClients }); return;
    }
  };

  private readonly replyHandlers: ReplyHandlers = {
    frame: this.dispatch,
    result: this.ranOrdered,
    callerTx: (client, seq) => this.sinksByNumber[client]?.transaction(noQuerySets, true, this.durables.promiseFor(seq)),
  };

  private fail(failure: DatabaseFailedError): void {
    if (this.failed !== undefined) return;
    this.failed = failure;
    for (const l of this.failureListeners) l(failure);
  }

  /** The pool's: the thread ended. Anything still waiting fails, and an exit nobody asked for is a database failure. */
  threadExited(code: number): void {
    const unexpected = !this.closed;
    this.closed = true;
    this.channel.close();
    let error: Error = new DatabaseClosedError();
    if (unexpected) {
      const failure = new DatabaseFailedError(new Error(`the database's worker thread exited (code ${code})`));
      failure.durableOffset = this.lastDurableOffset;
      error = failure;
    }
    this.failPending(error);
    this.durables.failAll(error);
    if (error instanceof DatabaseFailedError) {
      this.report(`database ${this.identity.toString(16)}: ${error.message}`);
      this.fail(error);
    }
  }

  // ---- what the server reads synchronously -----------------------------------------------------------------------

  moduleDefBytes(): Uint8Array { return this.state.defBytes; }
  get moduleDef(): RawModuleDefV10 { return this.def ??= decodeRawModuleDef(this.state.defBytes); }
  get schema(): DatabaseSchema { return this.dbSchema ??= buildDatabaseSchema(this.moduleDef); }
  /** The schema of the committed state; its rows live in the worker (this store stays empty). */
  get datastore(): Datastore { return this.schemaView ??= new Datastore(this.schema); }
  get httpBodyMaxBytes(): number { return this.state.httpBodyMaxBytes; }
  loggedProgramText(): string | undefined { return this.state.loggedProgramText; }
  reducerByName(name: string): ReducerInfo | undefined { return this.reducers.get(name); }
  procedureByName(name: string): Procedures { return this.procedures.get(name) as Procedures; }
  get failure(): DatabaseFailedError | undefined { return this.failed; }
  get durableOffset(): bigint | undefined { return this.lastDurableOffset; }
  onFailure(listener: (failure: DatabaseFailedError) => void): void { this.failureListeners.push(listener); }

  /** The worker's figures as of the last refreshMetrics (or open, or update). */
  metricsSnapshot(): WorkerMetrics {
    return this.metrics;
  }

  /**
   * Asks the worker for its current figures. A database busy for longer than `metricsRefreshWaitMs` (a runaway
   * reducer) keeps its previous ones, so a scrape is never held for a reducer's whole limit.
   */
  refreshMetrics(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, metricsRefreshWaitMs);
      const done = () => { clearTimeout(timer); resolve(); };
      this.send({ op: 'metrics' }, { reply: (m) => { this.metrics = m as WorkerMetrics; done(); }, fail: done });
    });
  }

  /** GET /v1/metrics: clients attached here, live queries as of the last refreshMetrics. */
  subscriptionCounts(): SubscriptionCounts | undefined {
    if (this.port === undefined) return undefined;
    return { clientCount: this.sinks.size, queryCount: this.metrics.subscriptionQueries };
  }

  // ---- calls -----------------------------------------------------------------------------------------------------

  callReducer(name: string, args: Uint8Array, caller: Caller): Promise<ReducerCallResult> {
    return this.request({ op: 'callReducer', name, args: tight(args), caller });
  }
  /**
   * A WebSocket client's call (session.ts): `call.ran` is called while the worker's reply is dispatched, right after the
   * events of the call's commit and before anything later, with what the reply must wait for (see entry.ts).
   */
  callReducerOrdered(name: string, args: Uint8Array, caller: Caller, call: OrderedCall): void {
    if (this.closed) { call.ran({ status: 'internal', message: (this.failed ?? new DatabaseClosedError()).message }, undefined); return; }
    const id = this.nextId++;
    this.ordered.push(id, call);
    this.queued().call(id, name, args, caller);
  }
  callReducerJson(name: string, argsJson: unknown, caller: Caller): Promise<ReducerCallResult> {
    return this.request({ op: 'callReducerJson', name, argsJson, caller });
  }
  callProcedure(name: string, args: Uint8Array, caller: Caller): ReturnType<HostedDatabase['callProcedure']> {
    return this.request({ op: 'callProcedure', name, args: tight(args), caller });
  }
  callProcedureJson(name: string, argsJson: unknown, caller: Caller): ReturnType<HostedDatabase['callProcedureJson']> {
    return this.request({ op: 'callProcedureJson', name, argsJson, caller });
  }
  clientConnected(caller: Caller): Promise<void> { return this.request({ op: 'clientConnected', caller }); }
  /** The connection's last request: its caller's number (callReducerOrdered) is free after it. */
  clientDisconnected(caller: Caller): Promise<void> {
    const done = this.request<void>({ op: 'clientDisconnected', caller });
    if (!this.closed) this.queued().forgetCaller(caller.connectionId);
    return done;
  }
  sql(query: string, caller: Caller, options?: { isOwner: boolean }): ReturnType<HostedDatabase['sql']> {
    return this.request({ op: 'sql', query, caller, isOwner: options?.isOwner });
  }
  sqlJson(query: string, caller: Caller, options?: { isOwner: boolean }): ReturnType<HostedDatabase['sqlJson']> {
    return this.request({ op: 'sqlJson', query, caller, isOwner: options?.isOwner });
  }
  sqlPg(query: string, caller: Caller, options?: { isOwner: boolean }): ReturnType<HostedDatabase['sqlPg']> {
    return this.request({ op: 'sqlPg', query, caller, isOwner: options?.isOwner });
  }
  serveHttp(method: string, path: string, uri: string, headers: [string, string][], body: Uint8Array): ReturnType<HostedDatabase['serveHttp']> {
    return this.request({ op: 'serveHttp', method, path, uri, headers, body: tight(body) });
  }
  planUpdate(program: string): Promise<UpdatePlan> { return this.request({ op: 'planUpdate', program }); }
  async update(program: string, options: UpdateOptions): Promise<UpdateResult> {
    const r = await this.request<{ result: UpdateResult; state: DatabaseState; metrics: WorkerMetrics }>(
      { op: 'update', program, breakClients: options.breakClients, publisher: options.publisher });
    this.setState(r.state);
    this.metrics = r.metrics;
    return r.result;
  }

  // ---- subscriptions (evaluated in the worker) -------------------------------------------------------------------

  /** Commit notices (caller, reducer, timing; no rows: those stay in the worker) after the subscription events. */
  onCommit(listener: CommitListener): () => void {
    this.commitListeners.add(listener);
    if (this.commitListeners.size === 1) this.notify({ op: 'commitEvents', on: true });
    return () => {
      if (this.commitListeners.delete(listener) && this.commitListeners.size === 0 && !this.closed) this.notify({ op: 'commitEvents', on: false });
    };
  }
  onModuleChange(listener: ModuleChangeListener): () => void {
    this.moduleListeners.add(listener);
    return () => { this.moduleListeners.delete(listener); };
  }
  /**
   * The worker compiles with the real subscription SQL (sql/subscription-plan.ts): a function cannot cross to its
   * thread, so another `compile` (a test's) is refused rather than silently not used; such a test runs in-thread.
   */
  subscriptionPort(compile: CompileQuery): SubscriptionPort {
    if (compile !== compileWithSql) throw new Error('a worker-backed database compiles subscriptions with compileWithSql only');
    return this.port ??= new WorkerSubscriptionPort(this);
  }
  /** The port's way in (request with a reply callback, run while the reply is dispatched). */
  subscriptionRequest(body: RequestBody, reply: (value: unknown) => void, fail: (error: Error) => void): void {
    this.send(body, { reply, fail });
  }
  durableFor(seq: number): Promise<void> | undefined { return this.durables.promiseFor(seq); }

  /** A number for the port's new client: its binary events carry it. */
  numberSink(sink: ClientSink): number {
    const client = this.freeSinkNumbers.pop() ?? this.sinksByNumber.length;
    this.sinksByNumber[client] = sink;
    return client;
  }

  /**
   * The client's events stop now; its number may be given again once the worker answered its subRemove (the worker
   * sends nothing for it after that, and everything it sent before arrived before the answer).
   */
  unnumberSink(client: number): () => void {
    this.sinksByNumber[client] = undefined;
    return () => { this.freeSinkNumbers.push(client); };
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------------

  close(): Promise<void> {
    return this.closing ??= (async () => {
      if (this.closed) return; // the worker is gone already: nothing more to close
      try {
        const r = await this.request<{ failureDurableOffset: bigint | undefined } | undefined>({ op: 'close' });
        if (this.failed !== undefined && r?.failureDurableOffset !== undefined) this.failed.durableOffset = r.failureDurableOffset;
      } catch (err) {
        if (this.closed) return;
        this.report(`database ${this.identity.toString(16)}: close: ${(err as Error).message}`);
      }
      if (!this.closed) this.release();
    })();
  }
}

/**
 * The module log as the server reads it, main-side: `tail` and `follow` from a mirror of the worker's ring (fed by its
 * records as they are written), `read` from the files the worker writes, as main mode reads them (rotations
 * included). The worker writes a call's lines before it sends their records, so a record being sent while the files
 * are read can be both in a backlog and, once it arrives, in a follower started right after it.
 */
class WorkerModuleLog implements HostedLog {
  private readonly mirror = new ModuleLog(undefined);
  /** module.log in the worker's database directory; undefined until open (and for a log kept in memory). */
  filePath: string | undefined;

  append(record: LogRecord): void { this.mirror.append(record); }
  mirrorLines(lines: string): void { this.mirror.mirrorLines(lines); }
  read(n?: number): LogCursor { return this.filePath === undefined ? this.mirror.read(n) : readLogFiles(this.filePath, n); }
  tail(n?: number): LogRecord[] { return this.mirror.tail(n); }
  follow(listener: LogListener): () => void { return this.mirror.follow(listener); }
}

class WorkerSubscriptionPort implements SubscriptionPort {
  /** Each client's number (WorkerDatabase.numberSink) by connection id. */
  private readonly numbers = new Map<bigint, number>();

  constructor(private readonly db: WorkerDatabase) {}

  addClient(handle: ClientHandle, sink: ClientSink, answersFor?: AnswersFor): ClientHandle {
    this.db.sinks.set(handle.connectionId, sink);
    const client = this.db.numberSink(sink);
    this.numbers.set(handle.connectionId, client);
    this.db.subscriptionRequest({
      op: 'subAdd', connectionId: handle.connectionId, client, identity: handle.identity, isOwner: handle.isOwner,
      shared: sink.sharedTransaction !== undefined, answersFor,
    }, () => {}, () => {});
    return handle;
  }

  removeClient(handle: ClientHandle): void {
    this.db.sinks.delete(handle.connectionId);
    const client = this.numbers.get(handle.connectionId);
    this.numbers.delete(handle.connectionId);
    const free = client === undefined ? () => {} : this.db.unnumberSink(client);
    this.db.subscriptionRequest({ op: 'subRemove', connectionId: handle.connectionId }, free, free);
  }

  subscribe(handle: ClientHandle, requestId: number, querySetId: number, queries: string[], done: PortAnswer): void {
    this.ask({ op: 'subscribe', connectionId: handle.connectionId, requestId, querySetId, queries }, done,
      (error) => ({ tag: 'SubscriptionError', requestId, querySetId, error }));
  }

  unsubscribe(handle: ClientHandle, requestId: number, querySetId: number, sendDroppedRows: boolean, done: PortAnswer): void {
    this.ask({ op: 'unsubscribe', connectionId: handle.connectionId, requestId, querySetId, sendDroppedRows }, done,
      (error) => ({ tag: 'SubscriptionError', requestId, querySetId, error }));
  }

  oneOffQuery(handle: ClientHandle, requestId: number, query: string, done: PortAnswer): void {
    this.ask({ op: 'oneOff', connectionId: handle.connectionId, requestId, query }, done,
      (error) => ({ tag: 'OneOffQueryResult', requestId, result: { ok: false, error } }));
  }

  private ask(body: RequestBody, done: PortAnswer, failed: (error: string) => Parameters<PortAnswer>[0]): void {
    this.db.subscriptionRequest(body, (value) => {
      const a = value as AnswerValue;
      done(a.message, this.db.durableFor(a.seq));
    }, (error) => done(failed(error.message), undefined));
  }
}

/** `spacetime start --database-threads worker`: every database in a worker thread (see the header for which). */
export function workerHost(durability: 'fsync' | 'none', report: (line: string) => void): DatabaseHost {
  workerThreadsMaxConfigured(); // a malformed SPACETIME_WORKER_THREADS_MAX fails the start, not a later publish
  backgroundNiceConfigured(); // so does a malformed SPACETIME_BACKGROUND_NICE (priority.ts)
  const start = (mode: WorkerStart['mode'], options: CreateDatabaseOptions, program: string) =>
    WorkerDatabase.start({ mode, identity: options.identity, ownerIdentity: options.ownerIdentity, dir: options.dir, durability },
      program, report);
  return {
    create: async (options, program) => {
      const db = await start('create', options, program);
      setImmediate(keepSparesWarm);
      return db;
    },
    open: (options, program) => start('open', options, program),
  };
}
