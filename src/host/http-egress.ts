// host/http-egress.ts — outbound HTTP for procedures and handlers (`procedure_http_request`, host-abi §6.2): a worker
// thread (http-egress-worker) applies the address policy and performs the fetch; this thread awaits its reply. The
// module sees a synchronous call because its isolate runs on its own thread and blocks there (host/runtime.ts enters
// procedures and handlers asynchronously), while this thread keeps serving everyone else.
//
// Owns: the BSATN HttpRequest / HttpResponse wire, the timeout rules (default, cap, the caller's deadline), the
// worker's lifetime, and the server option that allows private addresses. The address policy and the fetch itself
// live in the worker. May call: node:worker_threads, sats/bsatn, sats/types.

import assert from 'node:assert';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { BsatnReader, BsatnWriter } from '../sats/bsatn.js';
import { SatsError } from '../sats/types.js';

/** A request without a timeout gets this one. */
export const httpRequestTimeoutMsDefault = 30_000;
/** No request may wait longer than this, whatever the module asks. */
export const httpRequestTimeoutMsMax = 180_000;
/** A response body larger than this fails the request. */
export const httpResponseBodyMaxBytes = 16 * 1024 * 1024;
/** Redirects followed (each target is checked against the address policy again). */
export const httpRedirectsMax = 10;
/** A request made near the end of its call's time gives up this long before the call is stopped, so it can report. */
const callDeadlineMarginMs = 200;
/** Extra time the blocked thread waits past the request timeout before giving up on the worker. */
const workerSlackMs = 2_000;

const methodNames = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const methodExtensionTag = 9;
const versionHttp11Tag = 2;

/** Decoded `HttpRequest` (BSATN from the library). */
export interface HttpRequestWire {
  method: string;
  headers: [string, Uint8Array][];
  timeoutMicros: bigint | undefined;
  uri: string;
}

/**
 * Which addresses outbound requests may reach: `public` only (the default, as upstream); `loopback` too (local testing
 * against a server on this machine, upstream's `allow_loopback_http_for_tests`); or every `private` and special-purpose
 * address as well (local development).
 */
export type EgressAddressPolicy = 'public' | 'loopback' | 'private';

export interface EgressOptions {
  addressPolicy: EgressAddressPolicy;
}

/** `SPACETIME_ALLOW_PRIVATE_HTTP=1` / `SPACETIME_ALLOW_LOOPBACK_HTTP=1` (set by `spacetime start --allow-private-http` /
 * `--allow-loopback-http`); private wins when both are set. */
export function egressOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): EgressOptions {
  const on = (v: string | undefined) => v === '1' || v === 'true';
  if (on(env.SPACETIME_ALLOW_PRIVATE_HTTP)) return { addressPolicy: 'private' };
  return { addressPolicy: on(env.SPACETIME_ALLOW_LOOPBACK_HTTP) ? 'loopback' : 'public' };
}

/** A failed outbound request: errno 21 with the reason (query strings stripped). */
export class HttpEgressError extends Error {
  constructor(message: string) { super(message); this.name = 'HttpEgressError'; }
}

/** What the worker answers (see http-egress-worker.ts). */
export type WorkerReply =
  | { id: number; ok: true; status: number; headers: [string, string][]; body: Uint8Array }
  | { id: number; ok: false; message: string };

export interface WorkerRequest {
  id: number;
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array | undefined;
  timeoutMs: number;
  addressPolicy: EgressAddressPolicy;
  bodyMaxBytes: number;
  redirectsMax: number;
}

export class HttpEgress {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private nextId = 1;
  /** Requests in flight: id → what settles them (the reply, or the wait timing out). */
  private readonly waiting = new Map<number, { resolve: (reply: WorkerReply) => void; timer: NodeJS.Timeout }>();

  constructor(private readonly options: EgressOptions = egressOptionsFromEnv()) {}

  /**
   * Performs one request. `deadlineMs` (performance.now() time) bounds the wait further, so a request never outlives
   * the call that made it. Resolves to the BSATN HttpResponse and the body; rejects with HttpEgressError.
   */
  async request(requestBsatn: Uint8Array, body: Uint8Array, deadlineMs: number | undefined): Promise<{ response: Uint8Array; body: Uint8Array }> {
    let req: HttpRequestWire;
    try {
      req = decodeHttpRequest(requestBsatn);
    } catch (err) {
      throw new HttpEgressError(`invalid HttpRequest: ${err instanceof Error ? err.message : String(err)}`);
    }
    let timeoutMs = req.timeoutMicros === undefined ? httpRequestTimeoutMsDefault : Number(req.timeoutMicros / 1000n);
    timeoutMs = Math.min(Math.max(timeoutMs, 1), httpRequestTimeoutMsMax);
    if (deadlineMs !== undefined) {
      const left = Math.floor(deadlineMs - performance.now() - callDeadlineMarginMs);
      if (left <= 0) throw new HttpEgressError('the call has no time left for an HTTP request');
      timeoutMs = Math.min(timeoutMs, left);
    }
    const headers: [string, string][] = req.headers.map(([n, v]) => [n, Buffer.from(v).toString('latin1')]);
    const id = this.nextId++;
    const message: WorkerRequest = {
      id, method: req.method, url: req.uri, headers, body: body.length > 0 || req.method !== 'GET' ? body : undefined,
      timeoutMs, addressPolicy: this.options.addressPolicy, bodyMaxBytes: httpResponseBodyMaxBytes, redirectsMax: httpRedirectsMax,
    };
    const reply = await this.roundTrip(message, timeoutMs + workerSlackMs);
    if (!reply.ok) throw new HttpEgressError(reply.message);
    return { response: encodeHttpResponse(reply.status, reply.headers), body: reply.body };
  }

  close(): void {
    this.port?.close();
    void this.worker?.terminate();
    this.worker = undefined;
    this.port = undefined;
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.resolve({ id, ok: false, message: 'the HTTP client was closed' });
    }
    this.waiting.clear();
  }

  private roundTrip(message: WorkerRequest, waitMs: number): Promise<WorkerReply> {
    const port = this.ensureWorker();
    return new Promise<WorkerReply>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(message.id);
        // The worker is stuck: replace it so later requests start clean.
        this.close();
        resolve({ id: message.id, ok: false, message: 'the HTTP request timed out' });
      }, waitMs);
      this.waiting.set(message.id, { resolve, timer });
      port.postMessage(message);
    });
  }

  private ensureWorker(): MessagePort {
    if (this.port !== undefined) return this.port;
    const { port1, port2 } = new MessageChannel();
    const options = { workerData: { port: port2 }, transferList: [port2] };
    // From source (tests under tsx) the worker is TypeScript: register tsx in the worker before importing it.
    const worker = import.meta.url.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${
        JSON.stringify(new URL('./http-egress-worker.ts', import.meta.url).href)}); })`, { ...options, eval: true })
      : new Worker(new URL('./http-egress-worker.js', import.meta.url), options);
    worker.unref();
    worker.on('error', () => { if (this.worker === worker) { this.worker = undefined; this.port = undefined; } });
    port1.on('message', (reply: WorkerReply) => {
      const w = this.waiting.get(reply.id);
      if (w === undefined) return;                 // a late reply to an abandoned request
      this.waiting.delete(reply.id);
      clearTimeout(w.timer);
      w.resolve(reply);
    });
    port1.unref();                                 // pending requests keep the process alive through their timers
    this.worker = worker;
    this.port = port1;
    return port1;
  }
}

export function decodeHttpRequest(bytes: Uint8Array): HttpRequestWire {
  const r = new BsatnReader(bytes);
  const tag = r.readU8();
  let method: string;
  if (tag < methodNames.length) method = methodNames[tag];
  else if (tag === methodExtensionTag) method = r.readString();
  else throw new SatsError(`bad HttpMethod tag ${tag}`, r.offset - 1);
  const count = r.readU32();
  const headers: [string, Uint8Array][] = [];
  for (let i = 0; i < count; i++) headers.push([r.readString(), r.readBytes()]);
  const opt = r.readU8();
  let timeoutMicros: bigint | undefined;
  if (opt === 0) timeoutMicros = r.readI64();
  else if (opt !== 1) throw new SatsError(`bad Option tag ${opt}`, r.offset - 1);
  const uri = r.readString();
  r.readU8();                                       // HTTP version: ignored, we speak what fetch speaks
  r.expectEnd('HttpRequest');
  return { method, headers, timeoutMicros, uri };
}

/** Encodes an HttpRequest (the host hands one to module HTTP handlers). */
export function encodeHttpRequest(method: string, headers: [string, string][], uri: string): Uint8Array {
  const w = new BsatnWriter(256);
  const tag = (methodNames as readonly string[]).indexOf(method.toUpperCase());
  if (tag >= 0) w.writeU8(tag); else { w.writeU8(methodExtensionTag); w.writeString(method); }
  writeHeaders(w, headers);
  w.writeU8(1);                                     // timeout: none
  w.writeString(uri);
  w.writeU8(versionHttp11Tag);
  return w.finish();
}

export function encodeHttpResponse(status: number, headers: [string, string][]): Uint8Array {
  const w = new BsatnWriter(256);
  writeHeaders(w, headers);
  w.writeU8(versionHttp11Tag);
  w.writeU16(status);
  return w.finish();
}

/** Decoded `HttpResponse` (from a module HTTP handler). */
export function decodeHttpResponse(bytes: Uint8Array): { status: number; headers: [string, Uint8Array][] } {
  const r = new BsatnReader(bytes);
  const count = r.readU32();
  const headers: [string, Uint8Array][] = [];
  for (let i = 0; i < count; i++) headers.push([r.readString(), r.readBytes()]);
  r.readU8();
  const status = r.readU16();
  r.expectEnd('HttpResponse');
  assert(Number.isInteger(status));
  return { status, headers };
}

function writeHeaders(w: BsatnWriter, headers: [string, string][]): void {
  w.writeU32(headers.length);
  for (const [name, value] of headers) {
    w.writeString(name);
    w.writeBytes(Buffer.from(value, 'latin1'));
  }
}
