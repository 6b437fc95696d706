// host/worker/backlog.ts — the requests a database's worker holds back (host/worker/entry.ts: a call that found the
// database busy and what came after it, or what came after a turn's share of queries), in the order they may run.
//
// Owns: that order. Requests of one connection (the connection id they carry, or their caller's) keep their arrival
// order; connections take turns, one request each, and a connection whose request took a turn's share
// (`queryMessagesSliceMs` or more) waits `backlogLaneRestMsMax` at most before its next, while others' requests run.
// Round robin alone was not enough (session 12 probe): another client's /sql is a chain of hops (client_connected, its
// reply after the durability flush, then the query) and each hop found the slow connection's next query running.
// Requests that belong to no connection (open, close, update, metrics, module HTTP, commit events) are barriers: they run
// after everything before them and before everything after. The database owner's connections (their caller's identity,
// or a subAdd saying isOwner: `note`) go first among the lanes (session 12 probe: the owner's /sql waited 25 s behind
// 200 v2 connections' slow one-off queries, one turn each); a slow request of theirs rests them as anyone's.
// May call: host/worker/protocol.ts (types), limits.ts.

import { backlogLaneRestMsMax } from '../../limits.js';
import type { Request } from './protocol.js';

/** Who a request belongs to: its connection, or undefined for a barrier. */
function laneOf(req: Request): bigint | undefined {
  switch (req.op) {
    case 'subAdd': case 'subRemove': case 'subscribe': case 'unsubscribe': case 'oneOff':
      return req.connectionId;
    case 'callReducer': case 'callOrdered': case 'callReducerJson': case 'callProcedure': case 'callProcedureJson':
    case 'clientConnected': case 'clientDisconnected': case 'sql': case 'sqlJson': case 'sqlPg':
      return req.caller.connectionId;
    default:
      return undefined;
  }
}

/**
 * Requests of several connections, each connection's in order; `lanes` iterates in the round-robin order, `first` (the
 * owner's connections) likewise, and before `lanes`.
 */
type Segment = { barrier: Request } | { lanes: Map<bigint, Request[]>; first: Map<bigint, Request[]> };

export class Backlog {
  private readonly segments: Segment[] = [];
  private count = 0;
  /** Connections resting after a slow request, until when (performance.now()). */
  private readonly resting = new Map<bigint, number>();
  /** The connection whose request `peek` named last (`shift` takes from it), and whether it is the owner's. */
  private nextLane: bigint | undefined;
  private nextFirst = false;
  /** The database owner (from its `open`) and the connections it opened (subAdd isOwner) while open. */
  private ownerIdentity: bigint | undefined;
  private readonly ownerConnections = new Set<bigint>();

  get size(): number { return this.count; }

  /** Learns who owns the database and which connections are the owner's: call with every request as it arrives. */
  note(req: Request): void {
    if (req.op === 'open') this.ownerIdentity = req.ownerIdentity;
    else if (req.op === 'subAdd' && req.isOwner) this.ownerConnections.add(req.connectionId);
    else if (req.op === 'subRemove') this.ownerConnections.delete(req.connectionId);
  }

  /** Whether `req` (of connection `lane`) is the owner's. */
  private isOwners(req: Request, lane: bigint): boolean {
    if ('caller' in req) return req.caller.identity === this.ownerIdentity;
    return this.ownerConnections.has(lane);
  }

  /** Adds `req`; true when it can run before the resting connections' requests (drain soon). */
  push(req: Request): boolean {
    this.count++;
    const lane = laneOf(req);
    const last = this.segments.at(-1);
    if (lane === undefined) {
      this.segments.push({ barrier: req });
      return this.segments.length === 1;
    }
    let segment: Extract<Segment, { lanes: unknown }>;
    if (last !== undefined && 'lanes' in last) segment = last;
    else this.segments.push((segment = { lanes: new Map(), first: new Map() }));
    const lanes = this.isOwners(req, lane) ? segment.first : segment.lanes;
    const queue = lanes.get(lane);
    if (queue === undefined) lanes.set(lane, [req]);
    else queue.push(req);
    return this.segments.length === 1 && !this.isResting(lane, performance.now());
  }

  /** Whether `req`'s connection rests now: then it waits here even when nothing else does. */
  restsNow(req: Request): boolean {
    if (this.resting.size === 0) return false; // the common case, asked for every request that finds nothing waiting
    const lane = laneOf(req);
    return lane !== undefined && this.isResting(lane, performance.now());
  }

  private isResting(lane: bigint, now: number): boolean {
    const until = this.resting.get(lane);
    if (until === undefined) return false;
    if (until > now) return true;
    this.resting.delete(lane);
    return false;
  }

  /**
   * The request to run next, or when to look again (ms from now) if every connection with requests waiting is resting;
   * undefined when empty. `shift` takes the request this named.
   */
  peek(): Request | number | undefined {
    const head = this.segments[0];
    if (head === undefined) return undefined;
    if ('barrier' in head) return head.barrier;
    const now = performance.now();
    let wake = Infinity;
    for (const lanes of [head.first, head.lanes]) {
      for (const [lane, queue] of lanes) {
        if (!this.isResting(lane, now)) {
          this.nextLane = lane;
          this.nextFirst = lanes === head.first;
          return queue[0];
        }
        wake = Math.min(wake, this.resting.get(lane)! - now);
      }
    }
    return Math.max(1, Math.ceil(wake));
  }

  /** Takes the request `peek` named (call `peek` first). */
  shift(): void {
    const head = this.segments[0];
    if (head === undefined) return;
    this.count--;
    if ('barrier' in head) {
      this.segments.shift();
      return;
    }
    const lane = this.nextLane!;
    const lanes = this.nextFirst ? head.first : head.lanes;
    const queue = lanes.get(lane)!;
    queue.shift();
    lanes.delete(lane);
    if (queue.length > 0) lanes.set(lane, queue);  // to the end of the round
    else if (head.lanes.size === 0 && head.first.size === 0) this.segments.shift();
  }

  /** The connection of `req` ran `tookMs` on it: past a turn's share, it rests that long (at most the cap). */
  ran(req: Request, tookMs: number, turnMs: number): void {
    const lane = laneOf(req);
    if (lane === undefined || tookMs < turnMs) return;
    const now = performance.now();
    if (this.resting.size >= 1024) for (const [l, until] of this.resting) if (until <= now) this.resting.delete(l);
    this.resting.set(lane, now + Math.min(tookMs, backlogLaneRestMsMax));
  }

  /** Removes the requests `drop` says yes to (it answers them), keeping the order of the rest. */
  remove(drop: (req: Request) => boolean): number {
    let removed = 0;
    for (const segment of this.segments) {
      if ('barrier' in segment) continue;
      for (const lanes of [segment.first, segment.lanes]) {
        for (const [lane, queue] of lanes) {
          const kept = queue.filter((req) => !drop(req));
          removed += queue.length - kept.length;
          if (kept.length === 0) lanes.delete(lane);
          else lanes.set(lane, kept);
        }
      }
    }
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const segment = this.segments[i]!;
      if ('lanes' in segment && segment.lanes.size === 0 && segment.first.size === 0) this.segments.splice(i, 1);
    }
    this.count -= removed;
    return removed;
  }

  clear(): void {
    this.segments.length = 0;
    this.count = 0;
    this.resting.clear();
    this.ownerConnections.clear();
  }
}
