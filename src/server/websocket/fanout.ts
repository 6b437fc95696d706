// server/websocket/fanout.ts — batching shared by every WebSocket session: one durability wait per commit and one
// flush pass per event-loop turn.
//
// Owns: the group of outbound slots waiting for one commit's durability (one `durable.then` for all sessions
// instead of one per subscriber), the list of sessions with something to send (one setImmediate for all of them
// instead of one per session), and the bytes one pass may write (`outboundSocketWriteBytesPerTurnMax`: sessions not
// reached wait for the next turn, first in it). Does not own: what a slot holds or how a session writes it (session.ts).
// May call: node timers, limits.ts.
//
// Why: with confirmed reads a commit with N subscribers used to attach N promise reactions and schedule N
// setImmediate callbacks; at 100 subscribers × 1000 tx/s that bookkeeping and its garbage were a third of the
// server's CPU (docs/bench-subscriptions.md). The byte bound: a socket with room in its kernel buffer takes a write
// at once, so one pass copied a 1 MB update into 200 subscribers' sockets in one turn and /v1/ping waited behind it.

import { outboundSocketWriteBytesPerTurnMax } from '../../limits.js';

/** A session as the flush pass sees it. */
export interface FlushTarget {
  /** True while the target is on the pending list (set and cleared only by this module). */
  flushQueued: boolean;
  /**
   * Writes what is ready, about `budgetBytes` at most (it may exceed them by one message), and returns the bytes it
   * handed to its socket. A target that stops with ready messages and a socket that would take them queues itself.
   */
  flush(budgetBytes: number): number;
  /** The commit a slot waited for could not be made durable: the session must close. */
  durabilityFailed(error: unknown): void;
  /** A bug while serving this target (a throw from flush): it closes, everyone else is still served. */
  failInternal(error: unknown): void;
}

/** An outbound position that may only be sent once its commit is durable. */
export interface DurableSlot {
  ready: boolean;
  readonly owner: FlushTarget;
}

let pending: FlushTarget[] = [];
let spare: FlushTarget[] = [];
let passScheduled = false;

/** Puts the target on the next flush pass (at most once per pass). */
export function queueFlush(target: FlushTarget): void {
  if (target.flushQueued) return;
  target.flushQueued = true;
  pending.push(target);
  if (!passScheduled) {
    passScheduled = true;
    // setImmediate, not a microtask: every message produced while this turn runs (a whole group commit's worth)
    // goes out in one write per socket.
    setImmediate(flushPass);
  }
}

function flushPass(): void {
  passScheduled = false;
  const targets = pending;
  pending = spare;
  let budgetBytes = outboundSocketWriteBytesPerTurnMax;
  let i = 0;
  for (; i < targets.length && budgetBytes > 0; i++) {
    const t = targets[i];
    t.flushQueued = false;
    try {
      budgetBytes -= t.flush(budgetBytes);
    } catch (e) {
      t.failInternal(e);
    }
  }
  if (i < targets.length) {
    // This turn's bytes are spent: the targets not reached go first in the next pass (still flushQueued), before
    // those queued meanwhile. The pass goes on, so its frame cache is kept.
    const carried = targets.slice(i);
    for (const t of pending) carried.push(t);
    pending.length = 0;
    spare = pending;
    pending = carried;
    targets.length = 0;
    if (!passScheduled) {
      passScheduled = true;
      setImmediate(flushPass);
    }
    return;
  }
  targets.length = 0;
  spare = targets;
  flushPassEnded();
}

/** Hooks run after each pass (session.ts drops its per-pass frame cache). */
const passEndHooks: (() => void)[] = [];
export function onFlushPassEnd(hook: () => void): void { passEndHooks.push(hook); }
function flushPassEnded(): void { for (const h of passEndHooks) h(); }

/** The slots waiting for one durability promise. */
interface DurableGroup { readonly durable: Promise<unknown>; readonly slots: DurableSlot[] }

/** The group of the latest commit: consecutive slots for the same commit share one promise reaction. */
let current: DurableGroup | undefined;

/** Marks `slot` ready and queues its owner's flush once `durable` resolves (at once when it is undefined). */
export function releaseWhenDurable(slot: DurableSlot, durable: Promise<unknown> | undefined): void {
  if (durable === undefined) {
    slot.ready = true;
    queueFlush(slot.owner);
    return;
  }
  let group = current;
  if (group === undefined || group.durable !== durable) {
    const created: DurableGroup = { durable, slots: [] };
    durable.then(() => release(created), (e) => fail(created, e));
    current = group = created;
  }
  group.slots.push(slot);
}

function release(group: DurableGroup): void {
  if (current === group) current = undefined;
  for (const slot of group.slots) {
    slot.ready = true;
    queueFlush(slot.owner);
  }
}

function fail(group: DurableGroup, error: unknown): void {
  if (current === group) current = undefined;
  for (const slot of group.slots) {
    try {
      slot.owner.durabilityFailed(error);
    } catch (e) {
      slot.owner.failInternal(e);
    }
  }
}
