// host/worker/entry.ts — the body of a database worker thread: today's `Database`, unchanged, behind frames, for each
// database the pool placed on this thread.
//
// Owns: the thread's part (the `attach` messages on its parentPort, reports of what belongs to no one database, the
// idle collection, the answer to the exit collection) and, per attached database (`DatabaseSession`, one per
// MessagePort), the worker side of protocol.ts — opening the database (create or reopen), running each request against
// it, the database's subscription manager (its sinks become events naming the client's connection), and forwarding of
// module log records, recovery reports, durability and failures as events. Frames one turn produced for a database go
// out together, in the order they were produced.
// May call: host/database.ts, host/worker/protocol.ts, host/worker/idle-gc.ts, host/worker/exit-collection.ts,
// subscription/manager.ts, subscription/messages.ts (types), subscription/wire-frame.ts (answers encoded here),
// subscription/v1-json.ts (answers rendered here), subscription/port.ts (types), host/worker/backlog.ts, limits.ts.
//
// A thread serves the databases proxy.ts places on it (one each until `workerThreadsMax` threads run, then several)
// and outlives them: each arrives as a MessagePort in an `attach` message and leaves when the main side closes that
// port, after its `close`. Sessions share nothing but the thread: a runaway call in one holds the others for its limit.
// Ending a worker thread is what isolated-vm 5.0.4 does not survive: its teardown runs the weak callbacks of dead ivm
// handles after their environment is gone and aborts the whole process ("Assertion `environment != nullptr'";
// reproduced by ending workers after failed publishes). When the process exits, Node ends the threads still running
// the same way; so each first collects its garbage when the main thread asks (exit-collection.ts), leaving that
// teardown no dead ivm handle to call back.
//
// Replies to calls are sent after the call's commit is durable, as `Database` resolves them; the events of a commit
// (its clients' TransactionUpdates) are sent at commit time with the durability sequence they wait for. A WebSocket
// client's calls (`callOrdered`) are answered the moment they ran instead, with the sequence their reply waits for, so
// the session can send the next one at once (in-thread calls pipeline the same way: Database.callReducerNow). Such a
// call cannot run while the database is busy (an async procedure holds its queue); then it and every request after it
// wait in `backlog` (each connection's requests in arrival order, connections in turn: backlog.ts).
//
// Subscription requests (subscribe, unsubscribe, oneOff) and SQL run until those of this turn took
// `queryMessagesSliceMs` or answered `workerQueryAnswerBytesPerTurnMax`; then the answers go out and every request after
// them waits in `backlog` while the main thread's messages come in (session 12 probe: 200 HTTP /sql of a 40 MB answer
// read in one batch held every result at once, and the worker died of heap exhaustion). A connection that closed meanwhile (its `subRemove`) has its requests still
// waiting there answered unrun: nobody would read them (session 11 probe: 60 pipelined one-off queries of 40 MB each,
// all run and ~2.4 GiB sent after the connection was closed for not reading).

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Database, type Caller, type NowCall } from '../database.js';
import { compileWithSql, subscriptionsFor, type ClientHandle, type ClientSink, type SubscriptionManager } from '../../subscription/manager.js';
import type { EncodedTableUpdate, QuerySetUpdate, ServerMessage } from '../../subscription/messages.js';
import type { AnswersFor } from '../../subscription/port.js';
import { jsonAnswer } from '../../subscription/v1-json.js';
import { framedAnswer } from '../../subscription/wire-frame.js';
import { DatabaseClosedError } from '../errors.js';
import type { LogRecord } from '../module-log.js';
import { attachMemorySample } from '../memory-guard.js';
import { collectWhenIdle } from './idle-gc.js';
import { answerExitCollection } from './exit-collection.js';
import { lowerThisThread } from './priority.js';
import { Backlog } from './backlog.js';
import { queryMessagesSliceMs, workerQueryAnswerBytesPerTurnMax } from '../../limits.js';
import {
  DurableSequencer, encodeError, replaceUncloneable, ReplyBatcher, RequestReader, tight, type AnswerValue, type Batch,
  type DatabaseState, type Frame, type Request, type WorkerAttach, type WorkerMetrics, type WorkerStart, type WorkerThreadReport,
} from './protocol.js';

const parent = parentPort!;

// Behind the main thread for the CPU when SPACETIME_BACKGROUND_NICE asks (priority.ts): before anything runs here, so
// the esbuild service this thread starts inherits it.
lowerThisThread();

/** A line for the server's log that belongs to the thread, not to one of its databases (proxy.ts forwards it). */
function reportThread(line: string): void {
  parent.postMessage({ report: line } satisfies WorkerThreadReport);
}

// A throw nobody caught (a bug in a listener, a timer) must not end this thread: ending it aborts the whole process
// (see the header). It is reported on the server's log, and the databases keep serving.
process.on('uncaughtException', (err) => reportThread(`database worker: uncaught exception: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => {
  reportThread(`database worker: unhandled rejection: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
});

attachMemorySample(workerData as SharedArrayBuffer | undefined);
const requestArrived = collectWhenIdle(reportThread);
answerExitCollection();
parent.on('message', (message: WorkerAttach) => new DatabaseSession(message.port));

function state(d: Database): DatabaseState {
  return { defBytes: d.moduleDefBytes(), loggedProgramText: d.loggedProgramText(), httpBodyMaxBytes: d.httpBodyMaxBytes };
}

type LogsEvent = Extract<Frame, { ev: 'logs' }>;

/** The byte array a reply carries (a /sql body, an encoded answer), to transfer when large. */
function bytesOf(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  const answer = (value as Partial<AnswerValue> | undefined)?.message;     // a call's failure has a string `message`
  return typeof answer === 'object' && answer !== null && 'bytes' in answer ? answer.bytes : undefined;
}

type QueryOp = 'subscribe' | 'unsubscribe' | 'oneOff';
const queryOps: ReadonlySet<Request['op']> = new Set<Request['op']>(['subscribe', 'unsubscribe', 'oneOff']);
function isQuery(req: Request): req is Extract<Request, { op: QueryOp }> {
  return queryOps.has(req.op);
}
/** Requests whose run counts toward a turn's share (see the header): subscription requests and SQL. */
const turnOps: ReadonlySet<Request['op']> = new Set<Request['op']>([...queryOps, 'sql', 'sqlJson', 'sqlPg']);

function withoutTxData<T extends { status: string }>(result: T): Omit<T, 'txData'> {
  if (result.status !== 'committed') return result;
  const { txData: _unused, ...rest } = result as T & { txData: unknown };
  return rest;
}

/** One database of this thread and everything of it: its port, its request tables, its clients, its queues. */
class DatabaseSession {
  private db: Database | undefined;
  /** The port closed: the database left this thread. */
  private detached = false;
  private subscriptions: SubscriptionManager | undefined;
  private readonly clients = new Map<bigint, ClientHandle>();
  /** Clients whose answers go encoded or rendered (subAdd's `answersFor`): how, by connection id. */
  private readonly answersFor = new Map<bigint, AnswersFor>();
  private commitEvents: (() => void) | undefined;
  private readonly requests = new RequestReader();
  private readonly outbox = new ReplyBatcher();
  private flushQueued = false;
  /** The `logs` frame of this turn that records are added to (onLog); ended by any other frame and by the flush. */
  private logRun: LogsEvent | undefined;
  /** Copies of the frames a commit shares between clients: one per frame per batch (flush starts a new set). */
  private sharedCopies = new WeakMap<Uint8Array, Uint8Array>();
  private readonly durables = new DurableSequencer((seq, error) => {
    if (error === undefined) this.send({ ev: 'durable', seq, offset: this.db?.durableOffset });
    else this.send({ ev: 'durableFailed', seq, error: encodeError(error) });
  });
  /** Requests waiting behind a `callOrdered` that found the database busy, in arrival order. */
  private readonly backlog = new Backlog();
  /** A client's calls that arrived one after another in this message: they run together (runCalls). */
  private readonly callRun: (NowCall & { id: number })[] = [];
  private backlogRetry: NodeJS.Timeout | undefined;
  /** What the subscription requests of this turn took (ms) and answered (bytes); the flush starts a new turn. */
  private queryMs = 0;
  private queryBytes = 0;

  constructor(private readonly port: MessagePort) {
    port.on('message', (batch: Batch<Request>) => {
      requestArrived();
      this.requests.read(batch, this.onRequest, this.onCall);
      this.runCalls();
    });
    port.once('close', () => this.detach());
  }

  /**
   * The main side closed the port: after this database's `close`, or without one (its open failed, or the server let
   * go of it). A database still open here is closed, so its files and isolate are not held by nobody.
   */
  private detach(): void {
    this.detached = true;
    clearTimeout(this.backlogRetry);
    this.backlog.clear();
    const d = this.db;
    if (d === undefined) return;
    this.forget();
    d.close().catch((err: Error) => reportThread(`database ${d.identity.toString(16)}: close after its port closed: ${err.message}`));
  }

  private forget(): void {
    this.db = undefined;
    this.subscriptions = undefined;
    this.clients.clear();
    this.commitEvents = undefined;
  }

  // ---- frames out ------------------------------------------------------------------------------------------------

  /**
   * The batch of this event-loop turn, its flush scheduled. setImmediate, not a microtask: the replies to every batch
   * of requests the turn read, and the durability events of the same turn, go out as one message (a postMessage and
   * the main thread's message event cost more than the records they carry).
   */
  private queued(): ReplyBatcher {
    this.logRun = undefined;                           // a frame after a log run ends it: order is kept
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flush);
    }
    return this.outbox;
  }

  /**
   * The module's log records cross as their NDJSON lines, one `logs` frame per run of records with no other frame
   * between them: a call that logs 400k lines before its limit stops it sends one string, not 400k objects the main
   * thread must rebuild before it can send the call's reply (ModuleLog.mirrorLines).
   */
  private readonly onLog = (_record: LogRecord, line: string): void => {
    const run = this.logRun;
    if (run !== undefined) {
      run.lines += line;
      return;
    }
    const fresh: LogsEvent = { ev: 'logs', lines: line };
    this.send(fresh);
    this.logRun = fresh;
  };

  /** `bytes`: a large byte array in the frame, transferred rather than copied (ReplyBatcher.object). */
  private send(frame: Frame, bytes?: Uint8Array): void {
    this.queued().object(frame, bytes);
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    this.logRun = undefined;
    this.queryMs = this.queryBytes = 0;
    this.sharedCopies = new WeakMap();
    const { batch, transfer } = this.outbox.take();
    if (this.detached) return; // nobody is listening any more
    try {
      this.port.postMessage(batch, transfer);
      return;
    } catch {
      // Something in the batch cannot be cloned (a failed clone transfers nothing): for that frame its caller gets an
      // error, not silence; the rest go as they are.
    }
    replaceUncloneable<Frame>(batch, (f, err) => {
      const why = `the database's answer cannot be passed to the server: ${err.message}`;
      if ('id' in f) return { id: f.id, ok: false, error: encodeError(new Error(why)) };
      return { ev: 'report', line: `database worker: ${f.ev} event dropped: ${why}` };
    });
    this.port.postMessage(batch, transfer);
  };

  // ---- the database ----------------------------------------------------------------------------------------------

  /** GET /v1/metrics' figures of this database, live queries of its subscriptions included. */
  private metrics(d: Database): WorkerMetrics {
    return { ...d.metricsSnapshot(), subscriptionQueries: this.subscriptions?.queryCount ?? 0 };
  }

  private opened(): Database {
    if (this.db === undefined) throw new DatabaseClosedError();
    return this.db;
  }

  private async open(start: WorkerStart, program: string): Promise<unknown> {
    if (this.db !== undefined) throw new Error('this session serves a database already');
    const options = {
      identity: start.identity, ownerIdentity: start.ownerIdentity, dir: start.dir, durability: start.durability,
      report: (line: string) => this.send({ ev: 'report', line }),
    };
    const d = start.mode === 'open' ? await Database.open(options, program) : await Database.create(options, program);
    if (this.detached) { // the server let go of it while it opened
      await d.close();
      throw new DatabaseClosedError();
    }
    this.db = d;
    d.logs.follow(this.onLog);
    d.onFailure((failure) => this.send({ ev: 'failure', error: encodeError(failure) }));
    d.onModuleChange((change) => this.send({ ev: 'moduleChanged', breaksClients: change.breaksClients }));
    return { state: state(d), logTail: d.logs.tail(), logFilePath: d.logs.path, metrics: this.metrics(d), durableOffset: d.durableOffset };
  }

  private close(): unknown {
    const d = this.db;
    if (d === undefined) return undefined;
    return d.close().then(() => {
      this.forget();
      return { failureDurableOffset: d.failure?.durableOffset };
    });
  }

  /** The manager of this database, created on the first client (as attach.ts does in-thread). */
  private manager(): SubscriptionManager {
    return this.subscriptions ??= subscriptionsFor(this.opened(), compileWithSql);
  }

  private setCommitEvents(on: boolean): void {
    if (on && this.commitEvents === undefined) {
      this.commitEvents = this.opened().onCommit((e) => this.send({
        ev: 'commit', caller: { identity: e.caller.identity, connectionId: e.caller.connectionId },
        reducer: e.reducer === undefined ? undefined : { id: e.reducer.id, name: e.reducer.name },
        timestampMicros: e.timestampMicros, durationMicros: e.durationMicros,
      }));
    } else if (!on) {
      this.commitEvents?.();
      this.commitEvents = undefined;
    }
  }

  // ---- subscriptions ---------------------------------------------------------------------------------------------

  private sharedCopy(frame: Uint8Array): Uint8Array {
    let copy = this.sharedCopies.get(frame);
    if (copy === undefined) this.sharedCopies.set(frame, (copy = Uint8Array.prototype.slice.call(frame)));
    return copy;
  }

  private querySetsOut(querySets: QuerySetUpdate[]): QuerySetUpdate[] {
    if (querySets.length === 0) return querySets;
    return querySets.map((s) => ({
      querySetId: s.querySetId,
      tables: s.tables.map((t) => ('encoded' in t ? { encoded: this.sharedCopy((t as EncodedTableUpdate).encoded) } : tight(t))),
    }));
  }

  private sinkFor(connectionId: bigint, client: number, shared: boolean): ClientSink {
    const durables = this.durables;
    const sink: ClientSink = {
      transaction: (querySets, isCaller, durable) => {
        const seq = durables.seqOf(durable);
        if (isCaller && querySets.length === 0) this.queued().callerTx(client, seq);
        else this.send({ ev: 'tx', connectionId, querySets: this.querySetsOut(querySets), isCaller, seq });
      },
      querySetFailed: (querySetId, error) => this.send({ ev: 'qsFailed', connectionId, querySetId, error }),
      fail: (code, reason) => this.send({ ev: 'clientFail', connectionId, code, reason }),
    };
    if (shared) {
      sink.sharedTransaction = (frame, durable) =>
        this.send({ ev: 'shared', connectionId, frame: this.sharedCopy(frame), seq: durables.seqOf(durable) });
    }
    return sink;
  }

  /**
   * Encoded here for a binary-protocol client (subscription/wire-frame.ts says why), its rows rendered here for a v1
   * JSON one (subscription/v1-json.ts), else the message itself.
   */
  private answer(connectionId: bigint, message: ServerMessage): AnswerValue {
    const form = this.answersFor.get(connectionId);
    const answer = form === undefined ? tight(message)
      : form === 'JsonV1' ? tight(jsonAnswer(message, this.opened().datastore)) : framedAnswer(message, form);
    return { message: answer, seq: this.durables.seqOf(this.manager().lastDurable) };
  }

  private client(connectionId: bigint): ClientHandle {
    const handle = this.clients.get(connectionId);
    if (handle === undefined) throw new Error(`connection ${connectionId.toString(16)} has no subscriptions here`);
    return handle;
  }

  /** A subscription request (the port's: subAdd … oneOff). */
  private runSubscription(req: Extract<Request, { op: 'subAdd' | 'subRemove' | 'subscribe' | 'unsubscribe' | 'oneOff' }>): unknown {
    switch (req.op) {
      case 'subAdd': {
        const handle = this.manager().addClient({ identity: req.identity, connectionId: req.connectionId, isOwner: req.isOwner },
          this.sinkFor(req.connectionId, req.client, req.shared));
        this.clients.set(req.connectionId, handle);
        if (req.answersFor !== undefined) this.answersFor.set(req.connectionId, req.answersFor);
        return undefined;
      }
      case 'subRemove': {
        const handle = this.clients.get(req.connectionId);
        this.clients.delete(req.connectionId);
        this.answersFor.delete(req.connectionId);
        if (handle !== undefined) this.subscriptions?.removeClient(handle);
        return undefined;
      }
      case 'subscribe': {
        const m = this.manager().subscribe(this.client(req.connectionId), req.requestId, req.querySetId, req.queries);
        return this.answer(req.connectionId, m);
      }
      case 'unsubscribe': {
        const m = this.manager().unsubscribe(this.client(req.connectionId), req.requestId, req.querySetId, req.sendDroppedRows);
        return this.answer(req.connectionId, m);
      }
      case 'oneOff':
        return this.answer(req.connectionId, this.manager().oneOffQuery(this.client(req.connectionId), req.requestId, req.query));
    }
  }

  // ---- requests --------------------------------------------------------------------------------------------------

  /** Runs one request; a value, or a promise of one (replied to when it settles). */
  private run(req: Request): unknown {
    switch (req.op) {
      case 'open': return this.open(req, req.program);
      case 'callOrdered': throw new Error('callOrdered goes through the backlog');
      case 'callReducer': return this.opened().callReducer(req.name, req.args, req.caller).then(withoutTxData);
      case 'callReducerJson': return this.opened().callReducerJson(req.name, req.argsJson, req.caller).then(withoutTxData);
      case 'callProcedure': return this.opened().callProcedure(req.name, req.args, req.caller);
      case 'callProcedureJson': return this.opened().callProcedureJson(req.name, req.argsJson, req.caller);
      case 'clientConnected': return this.opened().clientConnected(req.caller);
      case 'clientDisconnected': return this.opened().clientDisconnected(req.caller);
      case 'sql': return this.opened().sql(req.query, req.caller, req.isOwner === undefined ? undefined : { isOwner: req.isOwner })
        .then((results) => tight([...results]));
      case 'sqlJson': return this.opened().sqlJson(req.query, req.caller, req.isOwner === undefined ? undefined : { isOwner: req.isOwner });
      case 'sqlPg': return this.opened().sqlPg(req.query, req.caller, req.isOwner === undefined ? undefined : { isOwner: req.isOwner });
      case 'serveHttp': return this.opened().serveHttp(req.method, req.path, req.uri, req.headers, req.body);
      case 'planUpdate': return this.opened().planUpdate(req.program);
      case 'update': {
        const d = this.opened();
        return d.update(req.program, { breakClients: req.breakClients, publisher: req.publisher })
          .then((result) => ({ result, state: state(d), metrics: this.metrics(d) }));
      }
      case 'metrics': return this.metrics(this.opened());
      case 'commitEvents': this.setCommitEvents(req.on); return undefined;
      case 'subAdd': case 'subRemove': case 'subscribe': case 'unsubscribe': case 'oneOff': return this.runSubscription(req);
      case 'close': return this.close();
    }
  }

  /** Runs `req` and answers it, now or when its promise settles; a turn op's answer bytes count toward the turn. */
  private handle(req: Request): void {
    const turnOp = turnOps.has(req.op);
    const ok = (value: unknown) => {
      const bytes = bytesOf(value);
      if (turnOp) this.queryBytes += bytes?.length ?? 0;
      this.send({ id: req.id, ok: true, value, offset: this.db?.durableOffset }, bytes);
    };
    const failed = (err: unknown) => this.send({ id: req.id, ok: false, error: encodeError(err), offset: this.db?.durableOffset });
    let value: unknown;
    try {
      value = this.run(req);
    } catch (err) {
      failed(err);
      return;
    }
    if (value instanceof Promise) value.then(ok, failed);
    else ok(value);
  }

  /** This turn's subscription requests took their share (see the header): what follows waits for the next turn. */
  private turnSpent(): boolean {
    return this.queryMs >= queryMessagesSliceMs || this.queryBytes >= workerQueryAnswerBytesPerTurnMax;
  }

  /**
   * The connection closed (its subRemove arrived): its subscription requests still waiting are answered unrun, with an
   * error nobody reads. Its calls still run, as they would have: a client may call and leave.
   */
  private dropQueries(connectionId: bigint): void {
    if (this.backlog.size === 0) return;
    const closed = encodeError(new Error('the connection closed before this request ran'));
    const dropped = this.backlog.remove((req) => {
      if (!isQuery(req) || req.connectionId !== connectionId) return false;
      this.send({ id: req.id, ok: false, error: closed });
      return true;
    });
    if (dropped > 0) {
      const who = this.db === undefined ? '' : `database ${this.db.identity.toString(16)}: `;
      this.send({ ev: 'report', line: `${who}${dropped} queued subscription requests of connection ${connectionId.toString(16)} dropped unrun: it closed` });
    }
  }

  private readonly onRequest = (req: Request): void => {
    this.backlog.note(req);                      // who owns the database, which connections are the owner's
    this.runCalls();                             // the calls before it run first
    if (req.op === 'subRemove') this.dropQueries(req.connectionId);
    if (this.backlog.size > 0 || this.turnSpent() || this.backlog.restsNow(req)) {
      this.queueBehind(req);
      return;
    }
    this.handleTimed(req);
  };

  /**
   * A client's call (a binary record): it joins the calls that arrived right before it, which run together once the
   * message is read or another request comes (runCalls).
   */
  private readonly onCall = (id: number, name: string, args: Uint8Array, caller: Caller): void => {
    this.callRun.push({ id, name, args, caller });
  };

  /**
   * Runs the calls gathered by onCall: at once when the database is free (in batches, Database.callReducersNow), each
   * answered as it would be alone; else they wait in the backlog, in order, with what follows them.
   */
  private runCalls(): void {
    const run = this.callRun;
    if (run.length === 0) return;
    const calls = run.splice(0, run.length);
    if (this.backlog.size > 0 || this.db === undefined) {
      for (const c of calls) {
        if (this.db === undefined) this.send({ id: c.id, ok: false, error: encodeError(new DatabaseClosedError()) });
        else this.queueBehind({ id: c.id, op: 'callOrdered', name: c.name, args: c.args, caller: c.caller });
      }
      return;
    }
    if (calls.length === 1) {
      const c = calls[0];
      if (!this.callOrdered(c.id, c.name, c.args, c.caller)) this.queueBehind({ id: c.id, op: 'callOrdered', name: c.name, args: c.args, caller: c.caller });
      return;
    }
    let ran = 0, took: boolean;
    try {
      took = this.opened().callReducersNow(calls, (i, result, durable) => {
        ran = i + 1;
        const offset = this.db?.durableOffset;
        if (result instanceof Error) this.send({ id: calls[i].id, ok: false, error: encodeError(result), offset });
        else this.queued().callResult(calls[i].id, result, this.durables.seqOf(durable), offset);
      });
    } catch (err) {
      // An internal fault: the calls not answered yet fail with it, as a single call would.
      for (let i = ran; i < calls.length; i++) this.send({ id: calls[i].id, ok: false, error: encodeError(err), offset: this.db?.durableOffset });
      return;
    }
    if (!took) for (const c of calls) this.queueBehind({ id: c.id, op: 'callOrdered', name: c.name, args: c.args, caller: c.caller });
  }

  /** Runs a client's call now if the database is free: replied to at once (see the header). False: busy, try later. */
  private callOrdered(id: number, name: string, args: Uint8Array, caller: Caller): boolean {
    let now;
    try {
      now = this.opened().callReducerNow(name, args, caller);
    } catch (err) {
      this.send({ id, ok: false, error: encodeError(err), offset: this.db?.durableOffset });
      return true;
    }
    if (now === undefined) return false;
    this.queued().callResult(id, now.result, this.durables.seqOf(now.durable), this.db?.durableOffset);
    return true;
  }

  private queueBehind(req: Request): void {
    const soon = this.backlog.push(req);
    if (soon) clearTimeout(this.backlogRetry);               // it need not wait for a resting connection's turn
    else if (this.backlogRetry !== undefined) return;
    this.backlogRetry = setTimeout(this.drainBacklog, 1);
  }

  /**
   * `handle`, timed once: a turn op's time counts toward this turn's share (turnSpent), and every request's is told to
   * the backlog (a connection whose request took a turn rests: backlog.ts).
   */
  private handleTimed(req: Request): void {
    const startMs = performance.now();
    try {
      this.handle(req);
    } finally {
      const tookMs = performance.now() - startMs;
      if (turnOps.has(req.op)) this.queryMs += tookMs;
      this.backlog.ran(req, tookMs, queryMessagesSliceMs);
    }
  }

  /**
   * Handles requests in the backlog's order (each connection's in arrival order, connections in turn, a slow one resting:
   * backlog.ts); stops at a call the busy database cannot take yet and retries in 1 ms.
   */
  private readonly drainBacklog = (): void => {
    this.backlogRetry = undefined;
    const backlog = this.backlog;
    for (let req = backlog.peek(); req !== undefined; req = backlog.peek()) {
      if (typeof req === 'number') { // every connection waiting rests: look again when the first may go
        this.backlogRetry = setTimeout(this.drainBacklog, req);
        return;
      }
      if (req.op === 'callOrdered' && this.db !== undefined && !this.callOrdered(req.id, req.name, req.args, req.caller)) {
        this.backlogRetry = setTimeout(this.drainBacklog, 1);
        return;
      }
      backlog.shift();
      if (req.op !== 'callOrdered') this.handleTimed(req);
      else if (this.db === undefined) this.send({ id: req.id, ok: false, error: encodeError(new DatabaseClosedError()) });
      if (backlog.size > 0 && this.turnSpent()) { // the answers go out, the main thread's messages come in first
        this.backlogRetry = setTimeout(this.drainBacklog, 1);
        return;
      }
    }
  };
}
