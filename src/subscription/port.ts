// subscription/port.ts — the seam between a WebSocket session and the subscription manager of its database.
//
// Owns: `SubscriptionPort` (what session.ts / json-session.ts ask of subscriptions), its in-thread implementation
// over today's SubscriptionManager (answers synchronously, exactly today's behaviour) and the choice between it and a
// database's own port (host/worker/proxy.ts: the manager runs in the database's worker; answers and client messages
// come back as messages, in the order the worker produced them).
// May call: subscription/manager.ts, subscription/messages.ts, subscription/wire-frame.ts and subscription/v1-json.ts
// (types).
//
// Why a callback and not a promise: an answer (SubscribeApplied…) must take its place in the client's outbound queue
// at the moment it is decided, between the TransactionUpdates of the commits before and after its snapshot. The
// in-thread port calls `done` synchronously; the worker port calls it while dispatching the worker's reply, before
// any later message from that worker is looked at. A promise continuation would run after them.

import {
  subscriptionsFor, type ClientHandle, type ClientSink, type CommitSource, type CompileQuery, type SubscriptionManager,
} from './manager.js';
import type { ServerMessage } from './messages.js';
import type { JsonAnswer } from './v1-json.js';
import type { Compression, FramedAnswer } from './wire-frame.js';

/**
 * A (un)subscription or one-off answer, with what it waits for under confirmed reads (the last commit it saw): the
 * message, or (a database in a worker) its encoding for a binary-protocol client (wire-frame.ts) or its rows rendered
 * for a v1 JSON one (v1-json.ts).
 */
export type PortAnswer = (message: ServerMessage | FramedAnswer | JsonAnswer, durable: Promise<unknown> | undefined) => void;

/** How a client's answers may come: encoded with its compression (binary protocol), or rendered for v1 JSON. */
export type AnswersFor = Compression | 'JsonV1';

/** A binary-protocol client's answer: it added itself with its compression, so none comes rendered for v1 JSON. */
export function binaryAnswer(answer: Parameters<PortAnswer>[0]): ServerMessage | FramedAnswer {
  if ('tag' in answer && (answer.tag === 'JsonRows' || answer.tag === 'JsonRowsRefused')) {
    throw new Error(`a v1 JSON answer (${answer.tag}) for a binary-protocol client`);
  }
  return answer;
}

export interface SubscriptionPort {
  /**
   * `answersFor`: the client's protocol, so answers may come encoded (FramedAnswer) or rendered (JsonAnswer); absent,
   * or from the in-thread port, they come as messages.
   */
  addClient(handle: ClientHandle, sink: ClientSink, answersFor?: AnswersFor): ClientHandle;
  removeClient(handle: ClientHandle): void;
  subscribe(handle: ClientHandle, requestId: number, querySetId: number, queryStrings: string[], done: PortAnswer): void;
  unsubscribe(handle: ClientHandle, requestId: number, querySetId: number, sendDroppedRows: boolean, done: PortAnswer): void;
  oneOffQuery(handle: ClientHandle, requestId: number, queryString: string, done: PortAnswer): void;
}

/** Today's manager behind the port: every answer is given synchronously. */
export class InThreadSubscriptionPort implements SubscriptionPort {
  constructor(readonly manager: SubscriptionManager) {}
  addClient(handle: ClientHandle, sink: ClientSink): ClientHandle { return this.manager.addClient(handle, sink); }
  removeClient(handle: ClientHandle): void { this.manager.removeClient(handle); }
  subscribe(handle: ClientHandle, requestId: number, querySetId: number, queryStrings: string[], done: PortAnswer): void {
    const m = this.manager;
    done(m.subscribe(handle, requestId, querySetId, queryStrings), m.lastDurable);
  }
  unsubscribe(handle: ClientHandle, requestId: number, querySetId: number, sendDroppedRows: boolean, done: PortAnswer): void {
    const m = this.manager;
    done(m.unsubscribe(handle, requestId, querySetId, sendDroppedRows), m.lastDurable);
  }
  oneOffQuery(handle: ClientHandle, requestId: number, queryString: string, done: PortAnswer): void {
    const m = this.manager;
    done(m.oneOffQuery(handle, requestId, queryString), m.lastDurable);
  }
}

/** A database that evaluates subscriptions itself (in its worker) offers its own port. */
export interface PortSource { subscriptionPort?(compile: CompileQuery): SubscriptionPort }

const inThreadPorts = new WeakMap<SubscriptionManager, InThreadSubscriptionPort>();

/** The port of `db`'s subscriptions: its own, or one over the in-thread manager (created on first use). */
export function subscriptionPortFor(db: PortSource, compile: CompileQuery): SubscriptionPort {
  if (db.subscriptionPort !== undefined) return db.subscriptionPort(compile);
  const manager = subscriptionsFor(db as PortSource & CommitSource, compile);
  let port = inThreadPorts.get(manager);
  if (port === undefined) inThreadPorts.set(manager, (port = new InThreadSubscriptionPort(manager)));
  return port;
}
