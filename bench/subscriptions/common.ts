// Shared pieces of `npm run bench:subscriptions`: the machine-wide clock, a fixed-memory latency histogram that
// can cross process boundaries, /proc CPU readings, and a raw WebSocket client speaking the SDK's v3 BSATN wire
// protocol (compression=None) built on our own message codecs.
// Owns: the client sockets it opens. May call: ws, node built-ins, src/subscription/messages.ts, src/sats/bsatn.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { decodeServerMessages, encodeClientMessage, type ClientMessage, type ServerMessage } from '../../src/subscription/messages.js';

export const wireSubprotocol = 'v3.bsatn.spacetimedb';
export const connectTimeoutMs = 30_000;
/** Server→client frame tag for an uncompressed body (client-protocol.md §1.6). */
const frameTagNone = 0;

/**
 * Microseconds on CLOCK_MONOTONIC (libuv's hrtime), which every process on the machine shares, so a send time
 * taken in the writer process can be subtracted from a receive time taken in a subscriber process.
 */
export function monoMicros(): number {
  const [s, ns] = process.hrtime();
  return s * 1_000_000 + Math.floor(ns / 1000);
}

// ---------------------------------------------------------------------------------------------------------------
// Histogram: exact below 2^(p+1) µs, then 2^p sub-buckets per octave (relative error < 0.1 %), so a worker can
// record millions of samples in a few KiB and ship them to the parent as [bucket, count] pairs.

const precisionBits = 10;
const linearLimit = 1 << (precisionBits + 1);
const subBuckets = 1 << precisionBits;
/** Latencies above this are clamped (a minute is far past any useful figure). */
const histogramMaxMicros = 60_000_000;

export class Histogram {
  readonly counts: Float64Array;
  count = 0;
  maxMicros = 0;
  constructor() {
    this.counts = new Float64Array(bucketOf(histogramMaxMicros) + 1);
  }
  record(micros: number): void {
    const v = micros < 0 ? 0 : micros > histogramMaxMicros ? histogramMaxMicros : Math.floor(micros);
    this.counts[bucketOf(v)]++;
    this.count++;
    if (v > this.maxMicros) this.maxMicros = v;
  }
  /** Non-zero buckets as [bucket, count] pairs (for IPC). */
  toPairs(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.counts.length; i++) if (this.counts[i] !== 0) out.push([i, this.counts[i]]);
    return out;
  }
  addPairs(pairs: [number, number][], maxMicros: number): void {
    for (const [i, c] of pairs) {
      this.counts[i] += c;
      this.count += c;
    }
    if (maxMicros > this.maxMicros) this.maxMicros = maxMicros;
  }
  /** The q-quantile (0..1) in µs, as the lower bound of its bucket; the exact max for q = 1. */
  quantileMicros(q: number): number {
    if (this.count === 0) return NaN;
    if (q >= 1) return this.maxMicros;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return valueOf(i);
    }
    return this.maxMicros;
  }
}

function bucketOf(v: number): number {
  if (v < linearLimit) return v;
  const shift = 31 - Math.clz32(v) - precisionBits;
  return (shift + 1) * subBuckets + (v >>> shift) - subBuckets;
}

function valueOf(bucket: number): number {
  if (bucket < linearLimit) return bucket;
  const shift = Math.floor(bucket / subBuckets) - 1;
  return (bucket - shift * subBuckets) * 2 ** shift;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU time from /proc (utime + stime of all threads of one process).

let clockTicksPerSecond: number | undefined;

export function procCpuMicros(pid: number): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name (which may hold spaces); utime and stime are fields 14 and 15.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1_000_000) / clockTicksPerSecond;
}

// ---------------------------------------------------------------------------------------------------------------
// Wire client

export interface WireClient {
  ws: WebSocket;
  identityHex: string;
  send(messages: ClientMessage[]): void;
  /** Called for every decoded server message after InitialConnection, with the frame's receive time and size. */
  onMessages: (messages: ServerMessage[], recvMicros: number, frameBytes: number) => void;
  onClose: (code: number, reason: string) => void;
}

/**
 * Opens `/v1/database/<db>/subscribe` with the v3 BSATN subprotocol and compression=None and resolves after
 * InitialConnection. Every later frame is decoded with our codecs and handed to `onMessages`.
 */
export function connectWire(httpUrl: string, db: string, confirmed: boolean): Promise<WireClient> {
  const url = `${httpUrl.replace(/^http/, 'ws')}/v1/database/${db}/subscribe?compression=None&confirmed=${confirmed}`;
  const ws = new WebSocket(url, [wireSubprotocol], { perMessageDeflate: false });
  const writer = new BsatnWriter(256);
  const client: WireClient = {
    ws,
    identityHex: '',
    send(messages) {
      writer.reset();
      for (const m of messages) encodeClientMessage(writer, m);
      ws.send(writer.finish(), { binary: true });
    },
    onMessages: () => {},
    onClose: () => {},
  };
  return new Promise((resolve, reject) => {
    let connected = false;
    const timer = setTimeout(() => {
      reject(new Error(`no InitialConnection from ${url} within ${connectTimeoutMs} ms`));
      ws.terminate();
    }, connectTimeoutMs);
    ws.on('error', (err) => {
      if (!connected) {
        clearTimeout(timer);
        reject(err);
      }
    });
    ws.on('close', (code, reason) => client.onClose(code, reason.toString()));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const recvMicros = monoMicros();
      assert.ok(isBinary, 'server sent a text frame on a BSATN subprotocol');
      assert.equal(data[0], frameTagNone, `compressed frame (tag ${data[0]}) despite compression=None`);
      const messages = decodeServerMessages(data.subarray(1));
      if (!connected) {
        const first = messages[0];
        assert.equal(first.tag, 'InitialConnection', `first server message was ${first.tag}`);
        if (first.tag === 'InitialConnection') client.identityHex = first.identity.toString(16).padStart(64, '0');
        connected = true;
        clearTimeout(timer);
        resolve(client);
        if (messages.length > 1) client.onMessages(messages.slice(1), recvMicros, data.length);
        return;
      }
      client.onMessages(messages, recvMicros, data.length);
    });
  });
}

/** `sentMicros` of a `msg` row: BSATN {id u64, sentMicros i64, payload string}, so bytes 8..16. */
export function rowSentMicros(row: Uint8Array): number {
  const o = row.byteOffset + 8;
  const dv = new DataView(row.buffer, o, 8);
  return dv.getInt32(4, true) * 4_294_967_296 + dv.getUint32(0, true);
}
