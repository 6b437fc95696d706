// host/worker/entry.ts — the body of one database's worker thread: today's `Database`, unchanged, behind frames.
//
// Owns: the worker side of protocol.ts — opening the database (create or reopen), running each request against it,
// the database's subscription manager (its sinks become events naming the client's connection), and forwarding of
// module log records, recovery reports, durability and failures as events. Frames one turn produced go out together,
// in the order they were produced.
// May call: host/database.ts, host/worker/protocol.ts, host/worker/idle-gc.ts, host/worker/exit-collection.ts,
// subscription/manager.ts, subscription/messages.ts (types).
//
// A worker serves one database at a time and outlives it: after `close` (or a failed open) it waits for the next
// `open` (proxy.ts keeps idle workers). Ending a worker thread is what isolated-vm 5.0.4 does not survive: its
// teardown runs the weak callbacks of dead ivm handles after their environment is gone and aborts the whole process
// ("Assertion `environment != nullptr'"; reproduced by ending workers after failed publishes). When the process
// exits, Node ends the threads still running the same way; so each first collects its garbage when the main thread
// asks (exit-collection.ts), leaving that teardown no dead ivm handle to call back.
//
// Replies to calls are sent after the call's commit is durable, as `Database` resolves them; the events of a commit
// (its clients' TransactionUpdates) are sent at commit time with the durability sequence they wait for. A WebSocket
// client's calls (`callOrdered`) are answered the moment they ran instead, with the sequence their reply waits for, so
// the session can send the next one at once (in-thread calls pipeline the same way: Database.callReducerNow). Such a
// call cannot run while the database is busy (an async procedure holds its queue); then it and every request after it
// wait in `backlog`, in arrival order.

import { parentPort } from 'node:worker_threads';
import { Database, type Caller } from '../database.js';
import { compileWithSql, subscriptionsFor, type ClientHandle, type ClientSink, type SubscriptionManager } from '../../subscription/manager.js';
import type { EncodedTableUpdate, QuerySetUpdate, ServerMessage } from '../../subscription/messages.js';
import { DatabaseClosedError } from '../errors.js';
import { collectWhenIdle } from './idle-gc.js';
import { answerExitCollection } from './exit-collection.js';
import {
  DurableSequencer, encodeError, replaceUncloneable, ReplyBatcher, RequestReader, tight, type AnswerValue, type Batch,
  type DatabaseState, type Frame, type Request, type WorkerMetrics, type WorkerStart,
} from './protocol.js';

const port = parentPort!;

// A throw nobody caught (a bug in a listener, a timer) must not end this thread: ending it aborts the whole process
// (see the header). It is reported on the server's log, and the database keeps serving.
process.on('uncaughtException', (err) => send({ ev: 'report', line: `database worker: uncaught exception: ${err.stack ?? err.message}` }));
process.on('unhandledRejection', (err) => {
  send({ ev: 'report', line: `database worker: unhandled rejection: ${err instanceof Error ? err.stack ?? err.message : String(err)}` });
});

const requests = new RequestReader();
const outbox = new ReplyBatcher();
let flushQueued = false;
/**
 * The batch of this event-loop turn, its flush scheduled. setImmediate, not a microtask: the replies to every batch of
 * requests the turn read, and the durability events of the same turn, go out as one message (a postMessage and the
 * main thread's message event cost more than the records they carry).
 */
function queued(): ReplyBatcher {
  if (!flushQueued) {
    flushQueued = true;
    setImmediate(flush);
  }
  return outbox;
}
function send(frame: Frame): void {
  queued().object(frame);
}
function flush(): void {
  flushQueued = false;
  sharedCopies = new WeakMap();
  const { batch, transfer } = outbox.take();
  try {
    port.postMessage(batch, transfer);
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
  port.postMessage(batch, transfer);
}

const durables = new DurableSequencer((seq, error) => {
  if (error === undefined) send({ ev: 'durable', seq, offset: db?.durableOffset });
  else send({ ev: 'durableFailed', seq, error: encodeError(error) });
});

let db: Database | undefined;
let subscriptions: SubscriptionManager | undefined;
const clients = new Map<bigint, ClientHandle>();
let commitEvents: (() => void) | undefined;

function state(d: Database): DatabaseState {
  return { defBytes: d.moduleDefBytes(), loggedProgramText: d.loggedProgramText(), httpBodyMaxBytes: d.httpBodyMaxBytes };
}

/** GET /v1/metrics' figures of this database, live queries of its subscriptions included. */
function metrics(d: Database): WorkerMetrics {
  return { ...d.metricsSnapshot(), subscriptionQueries: subscriptions?.queryCount ?? 0 };
}

function opened(): Database {
  if (db === undefined) throw new DatabaseClosedError();
  return db;
}

async function open(start: WorkerStart, program: string): Promise<unknown> {
  if (db !== undefined) throw new Error('this worker serves a database already');
  const options = {
    identity: start.identity, ownerIdentity: start.ownerIdentity, dir: start.dir, durability: start.durability,
    report: (line: string) => send({ ev: 'report', line }),
  };
  const d = start.mode === 'open' ? await Database.open(options, program) : await Database.create(options, program);
  db = d;
  d.logs.follow((record) => send({ ev: 'log', record }));
  d.onFailure((failure) => send({ ev: 'failure', error: encodeError(failure) }));
  d.onModuleChange((change) => send({ ev: 'moduleChanged', breaksClients: change.breaksClients }));
  return { state: state(d), logTail: d.logs.tail(), logFilePath: d.logs.path, metrics: metrics(d), durableOffset: d.durableOffset };
}

/** The manager of this database, created on the first client (as attach.ts does in-thread). */
function manager(): SubscriptionManager {
  return subscriptions ??= subscriptionsFor(opened(), compileWithSql);
}

/** Copies of the frames a commit shares between clients: one per frame per batch (flush starts a new set). */
let sharedCopies = new WeakMap<Uint8Array, Uint8Array>();
function sharedCopy(frame: Uint8Array): Uint8Array {
  let copy = sharedCopies.get(frame);
  if (copy === undefined) sharedCopies.set(frame, (copy = Uint8Array.prototype.slice.call(frame)));
  return copy;
}

function querySetsOut(querySets: QuerySetUpdate[]): QuerySetUpdate[] {
  if (querySets.length === 0) return querySets;
  return querySets.map((s) => ({
    querySetId: s.querySetId,
    tables: s.tables.map((t) => ('encoded' in t ? { encoded: sharedCopy((t as EncodedTableUpdate).encoded) } : tight(t))),
  }));
}

function sinkFor(connectionId: bigint, client: number, shared: boolean): ClientSink {
  const sink: ClientSink = {
    transaction: (querySets, isCaller, durable) => {
      const seq = durables.seqOf(durable);
      if (isCaller && querySets.length === 0) queued().callerTx(client, seq);
      else send({ ev: 'tx', connectionId, querySets: querySetsOut(querySets), isCaller, seq });
    },
    querySetFailed: (querySetId, error) => send({ ev: 'qsFailed', connectionId, querySetId, error }),
    fail: (code, reason) => send({ ev: 'clientFail', connectionId, code, reason }),
  };
  if (shared) sink.sharedTransaction = (frame, durable) => send({ ev: 'shared', connectionId, frame: sharedCopy(frame), seq: durables.seqOf(durable) });
  return sink;
}

function answer(message: ServerMessage): AnswerValue {
  return { message: tight(message), seq: durables.seqOf(manager().lastDurable) };
}

function client(connectionId: bigint): ClientHandle {
  const handle = clients.get(connectionId);
  if (handle === undefined) throw new Error(`connection ${connectionId.toString(16)} has no subscriptions here`);
  return handle;
}

/** Requests waiting behind a `callOrdered` that found the database busy, in arrival order. */
const backlog: Request[] = [];
let backlogRetry: NodeJS.Timeout | undefined;

/** Runs a client's call now if the database is free: replied to at once (see the header). False: busy, try later. */
function callOrdered(id: number, name: string, args: Uint8Array, caller: Caller): boolean {
  let now;
  try {
    now = opened().callReducerNow(name, args, caller);
  } catch (err) {
    send({ id, ok: false, error: encodeError(err), offset: db?.durableOffset });
    return true;
  }
  if (now === undefined) return false;
  queued().callResult(id, now.result, durables.seqOf(now.durable), db?.durableOffset);
  return true;
}

/** Handles requests in arrival order; stops at a call the busy database cannot take yet and retries in 1 ms. */
function drainBacklog(): void {
  backlogRetry = undefined;
  while (backlog.length > 0) {
    const req = backlog[0];
    if (req.op === 'callOrdered' && db !== undefined && !callOrdered(req.id, req.name, req.args, req.caller)) {
      backlogRetry = setTimeout(drainBacklog, 1);
      return;
    }
    backlog.shift();
    if (req.op !== 'callOrdered') handle(req);
    else if (db === undefined) send({ id: req.id, ok: false, error: encodeError(new DatabaseClosedError()) });
  }
}

/** Runs one request; a value, or a promise of one (replied to when it settles). */
function run(req: Request): unknown {
  switch (req.op) {
    case 'open': return open(req, req.program);
    case 'callOrdered': throw new Error('callOrdered goes through the backlog');
    case 'callReducer': return opened().callReducer(req.name, req.args, req.caller).then(withoutTxData);
    case 'callReducerJson': return opened().callReducerJson(req.name, req.argsJson, req.caller).then(withoutTxData);
    case 'callProcedure': return opened().callProcedure(req.name, req.args, req.caller);
    case 'callProcedureJson': return opened().callProcedureJson(req.name, req.argsJson, req.caller);
    case 'clientConnected': return opened().clientConnected(req.caller);
    case 'clientDisconnected': return opened().clientDisconnected(req.caller);
    case 'sql': return opened().sql(req.query, req.caller, req.isOwner === undefined ? undefined : { isOwner: req.isOwner })
      .then((results) => tight([...results]));
    case 'serveHttp': return opened().serveHttp(req.method, req.path, req.uri, req.headers, req.body);
    case 'planUpdate': return opened().planUpdate(req.program);
    case 'update': {
      const d = opened();
      return d.update(req.program, { breakClients: req.breakClients, publisher: req.publisher })
        .then((result) => ({ result, state: state(d), metrics: metrics(d) }));
    }
    case 'metrics': return metrics(opened());
    case 'commitEvents':
      if (req.on && commitEvents === undefined) {
        commitEvents = opened().onCommit((e) => send({
          ev: 'commit', caller: { identity: e.caller.identity, connectionId: e.caller.connectionId },
          reducer: e.reducer === undefined ? undefined : { id: e.reducer.id, name: e.reducer.name },
          timestampMicros: e.timestampMicros, durationMicros: e.durationMicros,
        }));
      } else if (!req.on) {
        commitEvents?.();
        commitEvents = undefined;
      }
      return undefined;
    case 'subAdd': {
      const handle = manager().addClient({ identity: req.identity, connectionId: req.connectionId, isOwner: req.isOwner },
        sinkFor(req.connectionId, req.client, req.shared));
      clients.set(req.connectionId, handle);
      return undefined;
    }
    case 'subRemove': {
      const handle = clients.get(req.connectionId);
      clients.delete(req.connectionId);
      if (handle !== undefined) subscriptions?.removeClient(handle);
      return undefined;
    }
    case 'subscribe':
      return answer(manager().subscribe(client(req.connectionId), req.requestId, req.querySetId, req.queries));
    case 'unsubscribe':
      return answer(manager().unsubscribe(client(req.connectionId), req.requestId, req.querySetId, req.sendDroppedRows));
    case 'oneOff':
      return answer(manager().oneOffQuery(client(req.connectionId), req.requestId, req.query));
    case 'close': {
      const d = db;
      if (d === undefined) return undefined;
      return d.close().then(() => {
        // Free for the next database (see the header).
        db = undefined;
        requests.reset();
        subscriptions = undefined;
        clients.clear();
        commitEvents = undefined;
        return { failureDurableOffset: d.failure?.durableOffset };
      });
    }
  }
}

function withoutTxData<T extends { status: string }>(result: T): Omit<T, 'txData'> {
  if (result.status !== 'committed') return result;
  const { txData: _unused, ...rest } = result as T & { txData: unknown };
  return rest;
}

port.on('message', (batch: Batch<Request>) => requests.read(batch, onRequest, onCall));
collectWhenIdle(port, (line) => send({ ev: 'report', line }));
answerExitCollection();

function onRequest(req: Request): void {
  if (backlog.length > 0) {
    queueBehind(req);
    return;
  }
  handle(req);
}

/** A client's call (a binary record): run at once when it can, else it waits in the backlog with what follows it. */
function onCall(id: number, name: string, args: Uint8Array, caller: Caller): void {
  if (backlog.length > 0 || (db !== undefined && !callOrdered(id, name, args, caller))) {
    queueBehind({ id, op: 'callOrdered', name, args, caller });
    return;
  }
  if (db === undefined) send({ id, ok: false, error: encodeError(new DatabaseClosedError()) });
}

function queueBehind(req: Request): void {
  backlog.push(req);
  backlogRetry ??= setTimeout(drainBacklog, 1);
}

function handle(req: Request): void {
  const ok = (value: unknown) => send({ id: req.id, ok: true, value, offset: db?.durableOffset });
  const failed = (err: unknown) => send({ id: req.id, ok: false, error: encodeError(err), offset: db?.durableOffset });
  let value: unknown;
  try {
    value = run(req);
  } catch (err) {
    failed(err);
    return;
  }
  if (value instanceof Promise) value.then(ok, failed);
  else ok(value);
}
