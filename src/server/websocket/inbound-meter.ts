// server/websocket/inbound-meter.ts — one WebSocket connection's share of the server's inbound budget
// (server/inbound-budget.ts): what ws holds of messages not yet complete plus what the session holds of messages
// decoded and not yet handled, and backpressure when the latter grows past `inboundQueueBytesPerConnectionMax`.
//
// Owns: the connection's charge and whether its socket is paused. May call: server/inbound-budget.ts, limits, ws.
//
// ws keeps a message's bytes until its last byte arrives (a frame's in its buffer list, earlier fragments in its
// fragment list) and says nothing about them until then; they are read from its receiver after each chunk the socket
// delivered (this listener runs after ws's, so the chunk is parsed). ws 8's field names: a missing field reads as 0,
// and test/attack/inbound-budget.test.ts fails if ws stops exposing them.

import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { InboundBudget, InboundHolder } from '../inbound-budget.js';
import { inboundQueueBytesPerConnectionMax, inboundQueueMessagesPerConnectionMax } from '../../limits.js';

/** Bytes ws's receiver holds of messages not yet complete. */
export function receiverHeldBytes(ws: WebSocket): number {
  const receiver = Reflect.get(ws, '_receiver') as { _bufferedBytes?: unknown; _totalPayloadLength?: unknown } | null | undefined;
  const buffered = receiver?._bufferedBytes;
  const fragments = receiver?._totalPayloadLength;
  return (typeof buffered === 'number' ? buffered : 0) + (typeof fragments === 'number' ? fragments : 0);
}

export class InboundMeter implements InboundHolder {
  heldBytes = 0;
  private queuedBytes = 0;
  private queuedMessages = 0;
  private paused = false;
  private gone = false;
  private readonly recharge = (): void => this.budget.charge(this, receiverHeldBytes(this.ws) + this.queuedBytes);

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly budget: InboundBudget,
    /** Closes the connection with the budget's reason. */
    readonly evict: (reason: string) => void,
  ) {
    socket.on('data', this.recharge);
  }

  /** `messages` messages of `bytes` were decoded from the socket and wait to be handled. */
  queued(bytes: number, messages: number): void {
    this.queuedBytes += bytes;
    this.queuedMessages += messages;
    if (!this.paused && this.overQueueBounds(1)) {
      this.paused = true;
      this.ws.pause();
    }
  }

  /** A message of `bytes` was handled (its database has run it, or refused it). */
  handled(bytes: number): void {
    if (this.gone) return;
    this.queuedBytes -= bytes;
    this.queuedMessages--;
    if (this.paused && !this.overQueueBounds(0.5)) { // read again at half the bounds: no pause and resume per message
      this.paused = false;
      this.ws.resume();
    }
    this.recharge();
  }

  private overQueueBounds(share: number): boolean {
    return this.queuedBytes > inboundQueueBytesPerConnectionMax * share ||
      this.queuedMessages > inboundQueueMessagesPerConnectionMax * share;
  }

  /** The connection is gone: nothing of it is held any more. */
  closed(): void {
    this.gone = true;
    this.socket.off('data', this.recharge);
    this.queuedBytes = 0;
    this.budget.release(this);
  }
}
