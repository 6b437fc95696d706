// host/module-features.ts — the glue between a Database and its scheduler, procedures, outbound HTTP and module HTTP
// handlers (issue 6 part A), so that host/database.ts keeps only a few hook lines.
//
// Owns: firing scheduled rows (host-abi §5.4: own transaction, database identity as sender, one-shot delete in a
// separate transaction whatever the outcome, interval re-queue; scheduled procedures delete / re-queue first),
// running procedures outside any transaction with their anonymous `withTx` transactions committed through the
// Database's commit path, the FeatureSyscalls the syscall host calls, and serving module HTTP routes.
// May call: host/scheduler, host/procedures, host/http-egress, host/http-handlers, host/runtime (types), sats, limits.
// Everything that touches the module or the datastore runs inside the Database's call queue (`enqueue`).

import type { Datastore } from '../datastore/store.js';
import type { DatabaseSchema, MutTx, TxData } from '../datastore/types.js';
import { valueToUntypedJson } from '../sats/json.js';
import type { RawModuleDefV10 } from '../sats/moduledef.js';
import type { Caller, CommitEvent, ReducerCallResult } from './database.js';
import { argsFromJson, checkArgs } from './args.js';
import { BadArgumentsError, messageOf } from './errors.js';
import {
  decodeHttpResponse, egressOptionsFromEnv, encodeHttpRequest, HttpEgress, HttpEgressError,
} from './http-egress.js';
import { HttpRouteTable } from './http-handlers.js';
import type { ModuleLog } from './module-log.js';
import {
  AnonTx, featureLimitsFromEnv, procErrno, ProcedureCatalog, type FeatureLimits, type ProcedureCallResult,
  type ProcedureInfo,
} from './procedures.js';
import type { ReducerCatalog, ReducerInfo } from './reducers.js';
import type { ModuleRuntime, RuntimeLimits } from './runtime.js';
import { Scheduler, type ScheduledItem } from './scheduler.js';
import { SyscallError, type FeatureSyscalls } from './syscalls.js';
import { limitLogIntervalMs, scheduledCallsQueuedMax } from '../limits.js';

export type { ProcedureCallResult, ProcedureInfo } from './procedures.js';

/** What the glue needs from its Database (closures over its private state; read each time, modules can be swapped). */
export interface FeatureInternals {
  identity: bigint;
  /** The database owner: the only caller of private and scheduled procedures. */
  ownerIdentity: bigint;
  def(): RawModuleDefV10;
  schema(): DatabaseSchema;
  datastore(): Datastore;
  reducers(): ReducerCatalog;
  runtime(): ModuleRuntime | undefined;
  logs(): ModuleLog;
  limits: Partial<RuntimeLimits> | undefined;
  /** The Database's call queue, replies released once durable. */
  enqueue<T>(fn: () => T): Promise<T>;
  /** The same for a call that finishes asynchronously (procedures, handlers): the queue stays held until it settles. */
  enqueueAsync<T>(fn: () => Promise<T>): Promise<T>;
  runReducer(info: ReducerInfo, args: Uint8Array, caller: Caller): ReducerCallResult;
  /** The Database's commit path (durability, subscribers, scheduler). */
  announce(event: CommitEvent): void;
  /** Why `tx` may not commit (over the transaction write limit, or rows added over the memory bound), or undefined. */
  commitRefusal(tx: MutTx): string | undefined;
  onCommit(listener: (event: CommitEvent) => void): () => void;
  nowMicros(): bigint;
  /** The Database's clock is manual (tests): no timers; due rows run through runDueSchedules(). */
  manualTime?: boolean;
}

/** A module HTTP route's answer. */
export interface HttpRouteResponse { status: number; headers: [string, Uint8Array][]; body: Uint8Array }

const emptyArgs = new Uint8Array(0);

export class ModuleFeatures {
  procedures!: ProcedureCatalog;
  routes!: HttpRouteTable;
  private scheduler!: Scheduler;
  /** Scheduled calls handed to the call queue and not finished yet (awaited by runDueSchedules; at most scheduledCallsQueuedMax). */
  private readonly firing = new Set<Promise<void>>();
  /** When each limit was last reported in the module log (reportLimit). */
  private readonly limitLoggedAtMs = new Map<string, number>();
  readonly limits: FeatureLimits;
  private readonly anonTx: AnonTx;
  private egress: HttpEgress | undefined;
  /** performance.now() deadline of the procedure / handler call in progress (bounds its HTTP requests). */
  private deadlineMs: number | undefined;
  private readonly unsubscribe: () => void;
  private closed = false;
  /** Commits before start() (init at publish) are covered by start()'s full scan. */
  private started = false;
  readonly syscalls: FeatureSyscalls;

  constructor(private readonly db: FeatureInternals) {
    const env = featureLimitsFromEnv();
    this.limits = {
      procedureTimeoutMs: db.limits?.procedureTimeoutMs ?? env.procedureTimeoutMs,
      httpHandlerTimeoutMs: db.limits?.httpHandlerTimeoutMs ?? env.httpHandlerTimeoutMs,
      httpHandlerBodyMaxBytes: env.httpHandlerBodyMaxBytes,
      scheduleRowsPerDatabaseMax: env.scheduleRowsPerDatabaseMax,
    };
    this.anonTx = new AnonTx({
      begin: () => db.datastore().beginMutTx(),
      nowMicros: () => db.nowMicros(),
      commit: (tx, sender, ts) => this.commitAnon(tx, sender, ts),
    });
    this.syscalls = {
      startTx: (otherTxOpen) => this.anonTx.start(otherTxOpen),
      commitTx: () => this.anonTx.commit(),
      abortTx: () => this.anonTx.abort(),
      httpRequest: (req, body) => this.httpRequest(req, body),
      // Every insert/update passes here: only schedule tables need the clock.
      checkScheduleRow: (tableId, row, tx, inserting) => {
        if (!this.scheduler.schedules(tableId)) return;
        this.scheduler.checkRow(tableId, row, db.nowMicros());
        if (inserting) this.checkScheduleRowCount(tx);
      },
    };
    this.build();
    this.unsubscribe = db.onCommit((e) => { if (this.started) this.scheduler.noteCommit(e.txData); });
  }

  /** After publish / recovery: queue every existing schedule row (missed ones fire at once); commits queue after. */
  start(): void {
    this.started = true;
    this.scheduler.queueAll(this.db.datastore());
  }

  /** After a module update swapped in a new module: rebuild catalogs and the schedule queue. */
  reload(): void {
    this.scheduler.close();
    this.build();
    this.start();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.scheduler.close();
    this.egress?.close();
  }

  // ---- procedures ---------------------------------------------------------------------------------------------

  procedureByName(name: string): ProcedureInfo | undefined {
    return this.procedures.get(name);
  }

  /** A client call (WebSocket CallProcedure): BSATN args; failures of any kind become `internal`. */
  callProcedure(name: string, args: Uint8Array, caller: Caller): Promise<ProcedureCallResult> {
    const info = this.procedures.get(name);
    if (info === undefined || (info.ownerOnly && caller.identity !== this.db.ownerIdentity)) {
      return Promise.resolve({ status: 'internal', message: `no such procedure: ${name}` });
    }
    try {
      checkArgs(info, args, 'procedure');
    } catch (err) {
      return Promise.resolve({ status: 'internal', message: messageOf(err) });
    }
    return this.db.enqueueAsync(() => this.runProcedure(info, args, caller));
  }

  /** HTTP /call fallback: SATS-JSON args (array or object); the result's value as untyped SATS-JSON. */
  async callProcedureJson(name: string, argsJson: unknown, caller: Caller):
    Promise<{ status: 'returned'; json: unknown; durationMicros: bigint } | { status: 'internal'; message: string }> {
    const info = this.procedures.get(name);
    if (info === undefined) return { status: 'internal', message: `no such procedure: ${name}` };
    let args: Uint8Array;
    try {
      args = info.argsCodec.encode(argsFromJson(info, argsJson, 'procedure'));
    } catch (err) {
      throw err instanceof BadArgumentsError ? err : new BadArgumentsError(info.name, messageOf(err), 'procedure');
    }
    const r = await this.callProcedure(name, args, caller);
    if (r.status !== 'returned') return r;
    const value = info.returnCodec.decode(r.value);
    return { status: 'returned', json: valueToUntypedJson(info.returnType, value, info.typespace), durationMicros: r.durationMicros };
  }

  private async runProcedure(info: ProcedureInfo, args: Uint8Array, caller: Caller): Promise<ProcedureCallResult> {
    const runtime = this.db.runtime();
    if (runtime === undefined) return { status: 'internal', message: 'the database is closed' };
    const timestampMicros = this.db.nowMicros();
    const started = performance.now();
    const timeoutMs = this.limits.procedureTimeoutMs;
    this.deadlineMs = timeoutMs > 0 ? started + timeoutMs : undefined;
    this.anonTx.enter(caller.identity);
    let out;
    try {
      out = await runtime.callProcedure(info.id, caller.identity, caller.connectionId, timestampMicros, args, timeoutMs);
    } finally {
      this.anonTx.leave();
      this.deadlineMs = undefined;
    }
    const durationMicros = BigInt(Math.round((performance.now() - started) * 1000));
    const logs = this.db.logs();
    switch (out.kind) {
      case 'ok':
        try {
          info.returnCodec.decode(out.value);
        } catch (err) {
          logs.write('Panic', `procedure ${info.name} returned a value that is not its return type: ${messageOf(err)}`, { target: info.name });
          return { status: 'internal', message: `procedure ${info.name} returned an invalid value` };
        }
        return { status: 'returned', value: out.value, timestampMicros, durationMicros };
      case 'error':
        logs.write('Panic', `procedure ${info.name} threw: ${out.text}`, { target: info.name });
        return { status: 'internal', message: out.message };
      case 'trap':
        logs.write('Panic', `procedure ${info.name} was stopped: ${out.message}`, { target: info.name });
        return { status: 'internal', message: out.message };
    }
  }

  /** `withTx` commit: the same commit path as reducers, the procedure's caller (zero for handlers) as sender. */
  private commitAnon(tx: MutTx, sender: bigint, timestampMicros: bigint): void {
    const started = performance.now();
    const refused = this.db.commitRefusal(tx); // refused before the commit, as for reducers (host/database.ts)
    if (refused !== undefined) { tx.rollback(); throw new Error(refused); }
    const txData: TxData = tx.commit();
    const caller: Caller = { identity: sender, connectionId: 0n, jwtPayload: undefined };
    this.db.announce({ txData, caller, reducer: undefined, args: emptyArgs, timestampMicros,
      durationMicros: Math.round((performance.now() - started) * 1000) });
  }

  /** Starts a request (throws at once when none is allowed here); the promise rejects with the module's errno. */
  private httpRequest(req: Uint8Array, body: Uint8Array): Promise<{ response: Uint8Array; body: Uint8Array }> {
    if (!this.anonTx.active) throw new SyscallError(procErrno.wouldBlockTransaction, 'HTTP requests are only allowed in procedures and HTTP handlers');
    this.egress ??= new HttpEgress(egressOptionsFromEnv());
    return this.egress.request(req, body, this.deadlineMs).catch((err: unknown) => {
      throw err instanceof HttpEgressError ? new SyscallError(procErrno.httpError, err.message) : err;
    });
  }

  // ---- HTTP handlers ------------------------------------------------------------------------------------------

  /**
   * Serves a module route. Undefined when no route has this path (404); `methodNotAllowed` when one has it but not
   * for this method. A handler that throws gives 500 (logged).
   */
  serveHttp(method: string, path: string, uri: string, headers: [string, string][], body: Uint8Array):
    Promise<HttpRouteResponse | undefined | 'methodNotAllowed'> {
    const { route, pathMatched } = this.routes.match(method, path);
    if (route === undefined) return Promise.resolve(pathMatched ? 'methodNotAllowed' : undefined);
    const request = encodeHttpRequest(method, headers, uri);
    return this.db.enqueueAsync(async () => {
      const runtime = this.db.runtime();
      if (runtime === undefined) return internalResponse('the database is closed');
      const timeoutMs = this.limits.httpHandlerTimeoutMs;
      this.deadlineMs = timeoutMs > 0 ? performance.now() + timeoutMs : undefined;
      this.anonTx.enter(0n);
      let out;
      try {
        out = await runtime.callHttpHandler(route.handlerId, this.db.nowMicros(), request, body, timeoutMs);
      } finally {
        this.anonTx.leave();
        this.deadlineMs = undefined;
      }
      const logs = this.db.logs();
      if (out.kind === 'ok') {
        try {
          const r = decodeHttpResponse(out.value.response);
          return { status: r.status, headers: r.headers, body: out.value.body };
        } catch (err) {
          logs.write('Panic', `HTTP handler ${route.handlerName} returned a bad response: ${messageOf(err)}`, { target: route.handlerName });
          return internalResponse('the handler returned an invalid response');
        }
      }
      const text = out.kind === 'error' ? out.text : out.message;
      logs.write('Panic', `HTTP handler ${route.handlerName} ${out.kind === 'error' ? 'threw' : 'was stopped'}: ${text}`, { target: route.handlerName });
      return internalResponse(out.message);
    });
  }

  // ---- scheduler ----------------------------------------------------------------------------------------------

  private build(): void {
    const def = this.db.def();
    this.procedures = new ProcedureCatalog(def);
    this.routes = new HttpRouteTable(def);
    this.scheduler = new Scheduler(this.db.schema(), {
      nowMicros: () => this.db.nowMicros(),
      manualTime: this.db.manualTime,
      fire: (item) => {
        const run = this.db.enqueueAsync(() => this.fire(item)).catch((err: unknown) => this.logError(item, err));
        this.firing.add(run);
        void run.finally(() => {
          this.firing.delete(run);
          // Room again: hand over what waits (a manual clock runs due rows only through runDueSchedules).
          if (this.db.manualTime !== true && !this.closed) this.scheduler.fireDue();
        });
      },
      // A manual clock (module unit tests) fires what is due in one go, as it always did.
      room: () => (this.db.manualTime === true ? Infinity : scheduledCallsQueuedMax - this.firing.size),
      behind: () => this.reportLimit('scheduledCallsQueuedMax', 'scheduled calls are due faster than they run: due ' +
        `rows wait in the schedule, at most ${scheduledCallsQueuedMax} in the call queue at once (scheduledCallsQueuedMax)`),
    });
  }

  /** A schedule-row insert beyond scheduleRowsPerDatabaseMax fails (and is logged, at most once a minute). */
  private checkScheduleRowCount(tx: MutTx): void {
    try {
      this.scheduler.checkRowCount(tx, this.limits.scheduleRowsPerDatabaseMax);
    } catch (err) {
      this.reportLimit('scheduleRowsPerDatabaseMax', messageOf(err));
      throw err;
    }
  }

  /** Logs that a limit bit, at most once per limitLogIntervalMs per limit (a limit can bite thousands of times a second). */
  reportLimit(limit: string, message: string): void {
    const now = performance.now();
    const last = this.limitLoggedAtMs.get(limit);
    if (last !== undefined && now - last < limitLogIntervalMs) return;
    this.limitLoggedAtMs.set(limit, now);
    this.db.logs().write('Warn', message, { filename: '__spacetimedb__', function: '__spacetimedb__' });
  }

  /** When the earliest queued schedule row is due (µs since the epoch); undefined when none is queued. */
  nextScheduleMicros(): bigint | undefined {
    return this.scheduler.nextDueMicros();
  }

  /** Runs every schedule row due by the clock's now and resolves once they (and any still running) are done. */
  async runDueSchedules(): Promise<number> {
    const fired = this.scheduler.fireDue().length;
    while (this.firing.size > 0) await Promise.all([...this.firing]);
    return fired;
  }

  /** Runs one due row (inside the call queue; a procedure holds it until it is done). */
  private async fire(item: ScheduledItem): Promise<void> {
    if (this.closed) return;
    const scheduler = this.scheduler;
    const row = scheduler.currentRow(this.db.datastore(), item);
    if (row === undefined) return;                                  // deleted, rescheduled, or never committed
    const fnName = item.table.schedule!.functionName;
    const caller: Caller = { identity: this.db.identity, connectionId: 0n, jwtPayload: undefined };
    const reducer = this.db.reducers().get(fnName);
    if (reducer !== undefined) {
      // Failures are logged by runReducer; the schedule goes on either way.
      this.db.runReducer(reducer, row, caller);
      this.afterRun(item);
      return;
    }
    const procedure = this.procedures.get(fnName);
    if (procedure === undefined) {
      this.db.logs().write('Error', `scheduled function ${fnName} does not exist`, { target: fnName });
      this.afterRun(item);
      return;
    }
    // Procedures are not retried: the row is deleted / re-queued before it runs.
    this.afterRun(item);
    await this.runProcedure(procedure, row, caller);
  }

  /** One-shot rows are deleted in their own transaction; interval rows are queued for their next tick. */
  private afterRun(item: ScheduledItem): void {
    if (item.intervalMicros !== undefined) {
      this.scheduler.requeueInterval(item);
      return;
    }
    if (!this.scheduler.isCurrent(item)) return;                    // the call rescheduled or deleted it
    const tx = this.db.datastore().beginMutTx();
    let deleted = 0;
    try {
      deleted = this.scheduler.deleteRow(tx, item);
    } catch (err) {
      tx.rollback();
      throw err;
    }
    if (deleted === 0) { tx.rollback(); this.scheduler.forget(item); return; }
    const caller: Caller = { identity: this.db.identity, connectionId: 0n, jwtPayload: undefined };
    this.db.announce({ txData: tx.commit(), caller, reducer: undefined, args: emptyArgs,
      timestampMicros: this.db.nowMicros(), durationMicros: 0 });
  }

  private logError(item: ScheduledItem, err: unknown): void {
    if (this.closed) return;
    this.db.logs().write('Error', `scheduled ${item.table.schedule!.functionName} could not run: ${messageOf(err)}`);
  }
}

/** A FeatureSyscalls that forwards to features created later (the syscall host exists before the Database). */
export function lazyFeatureSyscalls(get: () => ModuleFeatures | undefined): FeatureSyscalls {
  const f = (): FeatureSyscalls => {
    const features = get();
    if (features === undefined) throw new SyscallError(1, 'cannot call this function during module initialization');
    return features.syscalls;
  };
  return {
    startTx: (o) => f().startTx(o),
    commitTx: () => f().commitTx(),
    abortTx: () => f().abortTx(),
    httpRequest: (r, b) => f().httpRequest(r, b),
    checkScheduleRow: (t, r, tx, inserting) => { get()?.syscalls.checkScheduleRow(t, r, tx, inserting); },
  };
}

function internalResponse(message: string): HttpRouteResponse {
  return { status: 500, headers: [['content-type', new TextEncoder().encode('text/plain; charset=utf-8')]], body: new TextEncoder().encode(message) };
}

