// server/outbound-budget.ts — the server-wide bound on bytes answered to clients and not yet taken by them: HTTP
// response bodies (server/http.ts), PostgreSQL answers (server/pgwire/session.ts) and WebSocket messages queued or in
// the socket's buffer (server/websocket/). A connection's answer is bounded on its own (a query's by
// `sqlResultBytesMax`, a WebSocket queue by `outboundQueueMaxBytes`), but not the sum: 40 HTTP clients asking
// `SELECT *` of a 40 MB table and never reading held +1.7 GiB for as long as they stayed connected, 20 pgwire clients
// +740 MiB, 20 v1.json clients +2.2 GiB; 400 such sockets would have held the server at its memory bound, where every
// database refuses new rows (session 11 attack probes, docs/reliability.md).
//
// Two rules: past the bound holders are evicted until the rest fits (server/byte-budget.ts), first those whose clients
// have read nothing for longest (then the largest); and a holder
// whose client has taken none of its bytes for `outboundStallTimeoutMs` is evicted too, so a reader that never reads
// does not keep its share below the bound for ever. Holders are looked at again every `outboundBudgetSweepMs` while
// they hold bytes (the kernel takes bytes without telling us); a holder whose bytes are all taken is forgotten.
//
// Owns: the holders' progress (whether their kernels took bytes) and the sweep timer.
// May call: server/byte-budget.ts, limits.

import { outboundBudgetSweepMs, outboundBytesHeldMaxConfigured, outboundStallTimeoutMsConfigured } from '../limits.js';
import { ByteBudget, type BudgetHolder } from './byte-budget.js';

/** One response's or connection's share of the bound. */
export interface OutboundHolder extends BudgetHolder {
  /** Bytes answered and not yet taken by the socket's kernel buffer (queued in the session, or in the socket's). */
  pendingBytes(): number;
  /** A number that changes whenever the kernel takes bytes of this socket: `socketProgressMark`. */
  progressMark(): number;
  /** Closes the response or connection; `stalled`: for the stall rule, not the bound. */
  evict(reason: string, stalled?: boolean): void;
  /** True for a reader that may rightly pause for long (`logs --follow` into a pager): the bound alone applies. */
  stallAllowed?: boolean;
  /** Set by the budget: progressMark at the last look, and when it last changed. */
  progress?: { mark: number; atMs: number };
}

/**
 * A number that changes whenever the kernel takes bytes of `socket`, and only then: what libuv still has to write of
 * the chunk it writes (`writeQueueSize`, which falls as the kernel takes a large chunk piece by piece) plus what waits
 * behind it, less what was ever handed to the socket (so bytes written meanwhile do not count as progress). Node's
 * `writableLength` alone falls only when a whole chunk is written: a 40 MB answer read at 1 MB/s would look stalled.
 */
export function socketProgressMark(socket: object | null | undefined): number {
  if (socket === null || socket === undefined) return 0;
  const handle = Reflect.get(socket, '_handle') as { writeQueueSize?: unknown } | null | undefined;
  return numberOr0(handle?.writeQueueSize) + numberOr0(Reflect.get(socket, 'writableLength')) -
    numberOr0(Reflect.get(socket, 'bytesWritten')); // undefined once destroyed
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

export class OutboundBudget extends ByteBudget<OutboundHolder> {
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    maxBytes = outboundBytesHeldMaxConfigured(), readonly stallTimeoutMs = outboundStallTimeoutMsConfigured(),
  ) {
    // A WebSocket close reason keeps 123 bytes: the limit's name comes first.
    super(maxBytes, (total, max, largest) => `outboundBytesHeldMax: the server holds ${total} bytes of answers not ` +
      `yet read, over its limit of ${max}; this connection held the most (${largest}): closed`);
  }

  /**
   * Charges `holder` with what it holds now: call after writing to its socket or queue. Cheap when it holds nothing
   * and never did (a small answer the kernel took at once).
   */
  update(holder: OutboundHolder): void {
    const pending = holder.pendingBytes();
    if (pending === 0) {
      if (holder.progress !== undefined) this.forget(holder);
      return;
    }
    if (holder.progress === undefined) holder.progress = { mark: holder.progressMark(), atMs: Date.now() };
    else noteProgress(holder.progress, holder.progressMark(), Date.now());
    this.charge(holder, pending);
    this.sweeper ??= setInterval(() => this.sweep(), outboundBudgetSweepMs).unref();
  }

  /** The holder's response or connection is gone. */
  forget(holder: OutboundHolder): void {
    holder.progress = undefined;
    this.release(holder);
    this.stopSweeperIfIdle();
  }

  private stopSweeperIfIdle(): void {
    if (this.holders.size > 0 || this.sweeper === undefined) return;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * The holder whose client has read nothing for longest, the largest among equals: an answer just written holds all
   * of its bytes for a moment, and must not be the one cut in favour of answers nobody has read for seconds.
   */
  protected override victim(): OutboundHolder | undefined {
    let chosen: OutboundHolder | undefined;
    const now = Date.now();
    for (const h of this.holders) {
      if (h.progress !== undefined) noteProgress(h.progress, h.progressMark(), now); // reading now: not judged by the last sweep
      if (chosen === undefined) { chosen = h; continue; }
      const at = h.progress?.atMs ?? Infinity;
      const chosenAt = chosen.progress?.atMs ?? Infinity;
      if (at < chosenAt || (at === chosenAt && h.heldBytes > chosen.heldBytes)) chosen = h;
    }
    return chosen;
  }

  /** Re-charges every holder with what it holds now; evicts one whose client took nothing for the stall timeout. */
  private sweep(): void {
    const now = Date.now();
    for (const holder of [...this.holders]) {
      const progress = holder.progress;
      if (progress === undefined) continue;
      const pending = holder.pendingBytes();
      if (pending === 0) {
        this.forget(holder);
        continue;
      }
      if (!noteProgress(progress, holder.progressMark(), now) && this.stallTimeoutMs > 0 && holder.stallAllowed !== true &&
        now - progress.atMs >= this.stallTimeoutMs) {
        this.forget(holder);
        const reason = `client too slow: none of ${pending} unsent bytes read for ${this.stallTimeoutMs} ms (outboundStallTimeoutMs)`;
        holder.evict(reason, true);
        continue;
      }
      this.charge(holder, pending);
    }
    this.stopSweeperIfIdle();
  }
}

/** Records that the kernel took bytes when `mark` moved (in place: no object per message); true if it did. */
function noteProgress(progress: { mark: number; atMs: number }, mark: number, nowMs: number): boolean {
  if (mark === progress.mark) return false;
  progress.mark = mark;
  progress.atMs = nowMs;
  return true;
}
