// bench/raw-load.ts — a load generator for the keynote transfer that costs the machine as little as it can, so that a
// benchmark of the server on the same 2 cores measures the server (bench:cores, issue 12's "server ≥ 1.6 of 2
// cores" target). The SDK-wire client (bench/keynote/ours.ts connectOurs, over the `ws` library) spends ~8 CPU-µs
// per transfer: a promise, a masking pass and a socket write per call, an event per reply.
//
// Here each connection is a plain TCP socket that did the WebSocket handshake itself. Requests are v2 `CallReducer`
// frames built once and patched in place (request id, from, to), masked with the all-zero key (RFC 6455 lets the
// client choose any key, and XOR with zero leaves the payload as it is), and every frame a socket's replies free up is
// sent in one write. Replies are read by frame header and two fixed offsets (the request id and the outcome), nothing
// decoded. Each connection keeps `inFlight` calls outstanding (a closed loop, as runClosedLoop does), and a call's
// latency is measured from its write to the chunk that held its reply.
//
// Owns: its sockets. May call: bench/keynote/workload.ts (LatencyHistogram, LoadResult), node built-ins.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { LatencyHistogram, type LoadResult } from './keynote/workload.js';

const clientMsgCallReducer = 3;
const serverMsgReducerResult = 6;
const outcomeOk = 0, outcomeOkEmpty = 1, outcomeErr = 2;
const reducerName = Buffer.from('transfer', 'utf8');
/** tag u8 | request_id u32 | flags u8 | name (u32 len + bytes) | args (u32 len + from u32, to u32, amount i64) */
const payloadBytes = 1 + 4 + 1 + 4 + reducerName.length + 4 + 16;
/** FIN + binary opcode, mask bit + 7-bit length, the 4-byte mask key (zero). */
const frameHeaderBytes = 2 + 4;
const frameBytes = frameHeaderBytes + payloadBytes;
const argsAt = frameHeaderBytes + 1 + 4 + 1 + 4 + reducerName.length + 4;
const handshakeTimeoutMs = 30_000;

export interface RawLoadOptions {
  url: string;
  dbName: string;
  connections: number;
  inFlightPerConnection: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Account pairs (from, to), as makePairs gives them. */
  pairs: Uint32Array;
  /** Awaited once every connection is open, before the first call (a parent process's "go"). */
  connected?: () => Promise<void>;
}

/** An open connection after its handshake, with the bytes that came after the 101 response. */
interface Opened { socket: net.Socket; rest: Buffer }

async function openConnection(url: URL, dbName: string): Promise<Opened> {
  const socket = net.connect(Number(url.port), url.hostname);
  socket.setNoDelay(true);
  const request = [`GET /v1/database/${dbName}/subscribe?compression=None HTTP/1.1`, `Host: ${url.host}`,
    'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: v2.bsatn.spacetimedb', '', ''].join('\r\n');
  socket.write(request);
  return new Promise<Opened>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('no WebSocket handshake answer')), handshakeTimeoutMs);
    const fail = (err: Error) => { clearTimeout(timer); socket.destroy(); reject(err); };
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData).off('error', fail);
      clearTimeout(timer);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!status.includes(' 101 ')) { fail(new Error(`handshake refused: ${head.subarray(0, end).toString()}`)); return; }
      socket.pause();
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData).on('error', fail);
  });
}

/** What the loop counts, shared by every connection. */
interface Counters {
  committedTotal: number;
  rejected: number;
  errors: number;
  outstanding: number;
  firstError: string | undefined;
}

/**
 * One connection's closed loop. Lane k's calls carry request ids ≡ k (mod inFlight), so a reply finds its lane's send
 * time without a map.
 */
class Lanes {
  private readonly frames: Buffer;
  private readonly sentAtMs: Float64Array;
  private readonly seq: Uint32Array;
  private pending = Buffer.alloc(0);
  stopped = false;

  constructor(private readonly socket: net.Socket, private readonly inFlight: number, private readonly pairs: Uint32Array,
    private nextPair: number, private readonly c: Counters, private readonly record: (endMs: number, micros: number, ok: boolean) => void) {
    this.frames = Buffer.alloc(frameBytes * inFlight);
    for (let k = 0; k < inFlight; k++) writeTemplate(this.frames, k * frameBytes);
    this.sentAtMs = new Float64Array(inFlight);
    this.seq = new Uint32Array(inFlight);
  }

  start(rest: Buffer): void {
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (e) => { this.c.firstError ??= e.message; });
    this.socket.on('close', () => { if (!this.stopped) { this.c.errors++; this.c.firstError ??= 'socket closed'; } });
    this.socket.resume();
    const all: number[] = [];
    for (let k = 0; k < this.inFlight; k++) all.push(k);
    this.send(all, performance.now());
    if (rest.length > 0) this.onData(rest);
  }

  /** Writes the next call of each lane in `lanes`, all in one socket write. */
  private send(lanes: number[], nowMs: number): void {
    if (lanes.length === 0 || this.stopped) return;
    const out = lanes.length === this.inFlight ? this.frames : Buffer.allocUnsafe(lanes.length * frameBytes);
    for (let i = 0; i < lanes.length; i++) {
      const k = lanes[i], at = k * frameBytes;
      const pairIndex = this.nextPair++ % (this.pairs.length / 2);
      const requestId = (this.seq[k]++ * this.inFlight + k) >>> 0;
      this.frames.writeUInt32LE(requestId, at + frameHeaderBytes + 1);
      this.frames.writeUInt32LE(this.pairs[2 * pairIndex], at + argsAt);
      this.frames.writeUInt32LE(this.pairs[2 * pairIndex + 1], at + argsAt + 4);
      if (out !== this.frames) this.frames.copy(out, i * frameBytes, at, at + frameBytes);
      this.sentAtMs[k] = nowMs;
    }
    this.c.outstanding += lanes.length;
    this.socket.write(out === this.frames ? Buffer.from(out) : out);
  }

  private onData(d: Buffer): void {
    let buf = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
    const nowMs = performance.now();
    const free: number[] = [];
    let at = 0;
    while (buf.length - at >= 2) {
      const opcode = buf[at] & 0x0f;
      let len = buf[at + 1] & 0x7f, head = 2;
      if (len === 126) { if (buf.length - at < 4) break; len = buf.readUInt16BE(at + 2); head = 4; }
      else if (len === 127) { if (buf.length - at < 10) break; len = Number(buf.readBigUInt64BE(at + 2)); head = 10; }
      if (buf.length - at < head + len) break;
      const p = at + head;
      if (opcode === 0x8) { this.c.firstError ??= `server closed: ${buf.subarray(p + 2, p + len).toString()}`; }
      else if (opcode === 0x2 && buf[p + 1] === serverMsgReducerResult) {
        assert.equal(buf[p], 0, 'a compressed frame despite compression=None');
        const k = buf.readUInt32LE(p + 2) % this.inFlight, outcome = buf[p + 14];
        this.c.outstanding--;
        if (outcome === outcomeOk || outcome === outcomeOkEmpty) { this.c.committedTotal++; this.record(nowMs, (nowMs - this.sentAtMs[k]) * 1000, true); }
        else if (outcome === outcomeErr) { this.c.rejected++; this.record(nowMs, 0, false); }
        else { this.c.errors++; this.c.firstError ??= `transfer failed: ${buf.subarray(p + 19, p + len).toString()}`; }
        free.push(k);
      }
      at += head + len;
    }
    this.pending = at === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(at));
    this.send(free, nowMs);
  }

  close(): void {
    this.stopped = true;
    this.socket.destroy();
  }
}

function writeTemplate(b: Buffer, at: number): void {
  b[at] = 0x82;
  b[at + 1] = 0x80 | payloadBytes;
  b.writeUInt32LE(0, at + 2);                         // mask key: zero
  let p = at + frameHeaderBytes;
  b[p] = clientMsgCallReducer; p += 1 + 4;
  b[p] = 0; p += 1;                                   // flags
  b.writeUInt32LE(reducerName.length, p); p += 4;
  reducerName.copy(b, p); p += reducerName.length;
  b.writeUInt32LE(16, p); p += 4;
  b.writeBigInt64LE(1n, p + 8);                       // amount
}

/** Runs the closed loop for warm-up + window and reports it as runClosedLoop does (TPS, latency, the client's CPU). */
export async function runRawLoad(o: RawLoadOptions): Promise<LoadResult> {
  assert.ok(payloadBytes < 126, 'a call frame fits the 7-bit length');
  const url = new URL(o.url);
  const opened = await Promise.all(Array.from({ length: o.connections }, () => openConnection(url, o.dbName)));
  await o.connected?.();
  const c: Counters = { committedTotal: 0, rejected: 0, errors: 0, outstanding: 0, firstError: undefined };
  const windowSeconds = o.durationSeconds;
  const perSecond = Array.from({ length: windowSeconds }, () => new LatencyHistogram());
  const t0 = performance.now();
  const windowStartMs = t0 + o.warmupSeconds * 1000, windowEndMs = windowStartMs + windowSeconds * 1000;
  let rejectedInWindow = 0;
  const record = (endMs: number, micros: number, ok: boolean) => {
    if (endMs < windowStartMs || endMs > windowEndMs) return;
    if (!ok) { rejectedInWindow++; return; }
    perSecond[Math.min(windowSeconds - 1, Math.floor((endMs - windowStartMs) / 1000))].record(micros);
  };
  const pairCount = o.pairs.length / 2, lanesTotal = o.connections * o.inFlightPerConnection;
  const lanes = opened.map(({ socket }, i) => new Lanes(socket, o.inFlightPerConnection, o.pairs,
    Math.floor((i * o.inFlightPerConnection * pairCount) / lanesTotal), c, record));
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const startTimer = setTimeout(() => { cpuAtStart = process.cpuUsage(); }, o.warmupSeconds * 1000);
  lanes.forEach((l, i) => l.start(opened[i].rest));
  await new Promise((r) => setTimeout(r, (o.warmupSeconds + windowSeconds) * 1000));
  const cpu = process.cpuUsage(cpuAtStart);
  clearTimeout(startTimer);
  for (const l of lanes) l.close();
  const all = new LatencyHistogram();
  for (const h of perSecond) all.add(h);
  const series = perSecond.map((h, tSec) => ({ tSec, tps: h.total, p50Ms: h.quantile(0.5) / 1000, p99Ms: h.quantile(0.99) / 1000 }));
  const mean = all.total / windowSeconds, cpuMicros = cpu.user + cpu.system;
  return {
    committed: all.total, rejected: rejectedInWindow, committedTotal: c.committedTotal,
    outcomeUnknown: c.errors + c.outstanding, errors: c.errors, tps: mean,
    p50Ms: all.quantile(0.5) / 1000, p99Ms: all.quantile(0.99) / 1000,
    tpsStddev: Math.sqrt(series.reduce((s, p) => s + (p.tps - mean) ** 2, 0) / series.length), series,
    clientCpuMicrosPerTx: all.total > 0 ? cpuMicros / all.total : 0, clientCpuShare: cpuMicros / (windowSeconds * 1e6),
    firstError: c.firstError,
  };
}
