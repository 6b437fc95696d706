// server/http.ts — HTTP plumbing for the /v1 API: routing, bodies with limits, responses, CORS, credentials.
//
// Owns: the request context every route handler receives, HttpError (status + plain-text or JSON body), the
// body size limits, the CORS policy, the anon middleware (mint an identity when a /v1/database request has
// no token), the server's connection timeouts (configureHttpTimeouts) and its bound on open connections
// (limitConnections). Routes live in server/routes/*.ts.
// May call: auth/ (token verification and minting), server/inbound-budget.ts (bodies held count against the server's
// inbound bound), server/outbound-budget.ts (responses not yet read count against its outbound bound), server/half-open.ts (half-open connections per address), node:http, limits, node:fs (/proc/self/limits).
//
// Responses follow upstream exactly where the CLI depends on it: JSON bodies carry `Content-Type:
// application/json` (the CLI rejects anything else), errors are plain text.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { identityToHex } from '../auth/identity.js';
import { AuthError, authRequiredMessage, bearerToken, type TokenAuthority, type VerifiedToken } from '../auth/tokens.js';
import {
  connectionHalfOpenEvictableAfterMs, connectionSilentTimeoutMsConfigured, connectionsHalfOpenPerAddressMaxConfigured, httpHeadersTimeoutMs,
  httpKeepAliveTimeoutMs, reducerTimeoutMsConfigured, requestBodyDrainBytesMax,
} from '../limits.js';
import { HalfOpenConnections } from './half-open.js';
import { InboundBudget, type InboundHolder } from './inbound-budget.js';
import { OutboundBudget, socketProgressMark, type OutboundHolder } from './outbound-budget.js';

/** Reducer arguments, SQL text, names and every other small body. */
export const jsonBodyMaxBytes = 1024 * 1024;

export const jsonContentType = 'application/json';

/** An HTTP error response. `body` is sent as text unless `json` is set. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly body: string, readonly json = false) {
    super(body);
    this.name = 'HttpError';
  }

  static json(status: number, value: unknown): HttpError {
    return new HttpError(status, JSON.stringify(value), true);
  }
}

/** Who is calling: a verified token, or an identity minted for this request by the anon middleware. */
export interface Credentials {
  identity: bigint;
  token: string;
  /** Payload JSON of the token (reducers see it as the caller's JWT). */
  payloadJson: string;
}

export class RequestContext {
  readonly url: URL;
  params: Record<string, string> = {};
  private credentials: Credentials | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    private readonly tokens: TokenAuthority,
    private readonly inboundBudget: InboundBudget,
  ) {
    this.url = requestUrl(req.url ?? '/');
  }

  query(name: string): string | undefined {
    return this.url.searchParams.get(name) ?? undefined;
  }

  /** Boolean query flag: `true`/`1` are true, absent or `false`/`0` false, anything else a 400. */
  queryFlag(name: string): boolean {
    const value = this.query(name);
    if (value === undefined || value === 'false' || value === '0') return false;
    if (value === 'true' || value === '1') return true;
    throw new HttpError(400, `Invalid query parameter \`${name}\`: expected true or false, got \`${value}\``);
  }

  /** The verified token of this request, if it carries one (header or `?token=`). */
  async optionalAuth(): Promise<VerifiedToken | undefined> {
    const token = bearerToken(this.req.headers.authorization) ?? this.query('token');
    if (token === undefined) return undefined;
    return this.tokens.verify(token);
  }

  /** Credentials or 401 "Authorization required". */
  async requireAuth(): Promise<VerifiedToken> {
    const verified = await this.optionalAuth();
    if (verified === undefined) throw new AuthError(401, authRequiredMessage);
    return verified;
  }

  /**
   * Anon middleware for /v1/database/*: the caller's verified token, or a fresh identity minted now. Either way the
   * response gets `spacetime-identity` / `spacetime-identity-token` headers.
   */
  async caller(): Promise<Credentials> {
    if (this.credentials !== undefined) return this.credentials;
    const from = (await this.optionalAuth()) ?? (await this.tokens.mintIdentity());
    const credentials: Credentials = { identity: from.identity, token: from.token, payloadJson: from.payloadJson };
    this.credentials = credentials;
    if (!this.res.headersSent) {
      this.res.setHeader('spacetime-identity', identityToHex(credentials.identity));
      this.res.setHeader('spacetime-identity-token', credentials.token);
    }
    return credentials;
  }

  /**
   * Reads the whole body; 413 past `maxBytes`. Its bytes count against the server's inbound budget until the response
   * is done (the handler holds the body, or what it decoded, until then); a request evicted from the budget is
   * answered 503 and closed.
   */
  async body(maxBytes: number, limitName?: string): Promise<Buffer> {
    const declared = Number(this.req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      // The client is still sending: what it declared is read and dropped (up to requestBodyDrainBytesMax) so that it
      // reads this answer, not a reset connection (fetch then failed with no message); a larger body is cut at once.
      if (declared <= requestBodyDrainBytesMax) await bodyDropped(this.req);
      throw tooLarge(maxBytes, declared, limitName);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const holder = this.inboundHolder();
    try {
      for await (const chunk of this.req as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > maxBytes) throw tooLarge(maxBytes, undefined, limitName);
        chunks.push(chunk);
        this.inboundBudget.charge(holder, holder.heldBytes + chunk.length);
        if (holder.evicted !== undefined) throw new HttpError(503, holder.evicted);
      }
    } catch (error) {
      throw holder.evicted === undefined ? error : new HttpError(503, holder.evicted);
    }
    return Buffer.concat(chunks, total);
  }

  private inboundHolder(): InboundHolder & { evicted: string | undefined } {
    const { req, res, inboundBudget } = this;
    const holder = {
      heldBytes: 0,
      evicted: undefined as string | undefined,
      evict(reason: string): void {
        holder.evicted = reason;
        // The body loop may be waiting for a chunk that never comes (a slow upload): answer and close from here.
        if (!res.headersSent) {
          const body = `${reason}\n`;
          res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
          res.end(body, () => req.destroy());
        } else {
          req.destroy();
        }
      },
    };
    res.once('close', () => inboundBudget.release(holder));
    return holder;
  }

  /** The body as strict UTF-8 text; `limitName`: the limits.ts name of `maxBytes`, for a 413's message. */
  async text(maxBytes: number, what: string, limitName?: string): Promise<string> {
    const bytes = await this.body(maxBytes, limitName);
    try {
      return strictUtf8.decode(bytes);
    } catch {
      throw new HttpError(400, `${what} is not valid UTF-8`);
    }
  }

  sendJson(status: number, value: unknown): void {
    const body = JSON.stringify(value);
    this.res.writeHead(status, { 'Content-Type': jsonContentType, 'Content-Length': Buffer.byteLength(body) });
    this.res.end(body);
    noteWritten(this.res);
  }

  sendText(status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
    this.res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
    this.res.end(text);
    noteWritten(this.res);
  }

  sendBytes(status: number, body: Uint8Array, contentType: string): void {
    this.res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.byteLength });
    this.res.end(body);
    noteWritten(this.res);
  }

  sendEmpty(status: number, headers: Record<string, string> = {}): void {
    this.res.writeHead(status, { ...headers, 'Content-Length': 0 });
    this.res.end();
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The outbound bound each response of the server counts against (set by requestListener). */
const responseBudgets = new WeakMap<ServerResponse, OutboundBudget>();
const responseHolders = new WeakMap<ServerResponse, OutboundHolder>();

/**
 * Call after writing to `res`: what its socket has not taken yet counts against the server's outbound bound
 * (server/outbound-budget.ts) until the response finishes. Past the bound, or when its client reads none of it for
 * `outboundStallTimeoutMs`, the connection is cut: the status line is out, so nothing more can be said on it. A
 * response the kernel took at once (most of them) costs one look at its length. `stallAllowed`: a reader that may
 * rightly pause for long (a log follower), cut only by the bound.
 */
export function noteWritten(res: ServerResponse, stallAllowed = false): void {
  const budget = responseBudgets.get(res);
  if (budget === undefined) return;
  let holder = responseHolders.get(res);
  if (holder === undefined) {
    if (res.writableLength === 0 || res.destroyed) return;
    let gone = false;
    const created: OutboundHolder = {
      heldBytes: 0,
      stallAllowed,
      pendingBytes: () => (gone || res.destroyed ? 0 : res.writableLength),
      // A pipelined response not yet on its socket waits behind one that is, which is judged instead.
      progressMark: () => (res.socket === null ? Date.now() : socketProgressMark(res.socket)),
      evict: () => {
        gone = true;
        res.destroy();
      },
    };
    holder = created;
    responseHolders.set(res, created);
    const done = (): void => {
      gone = true;
      budget.forget(created);
    };
    res.once('finish', done);
    res.once('close', done);
  }
  budget.update(holder);
}

/** Resolves once `req`'s body was read to its end (and dropped), or the request ended otherwise. */
function bodyDropped(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.once('end', resolve);
    req.once('close', resolve);
    req.once('error', () => resolve());
    req.resume();
  });
}

/** 413 naming the body's size (when it was declared) and the limit (by its limits.ts name when given). */
function tooLarge(maxBytes: number, sizeBytes: number | undefined, limitName: string | undefined): HttpError {
  const size = sizeBytes === undefined ? `more than ${maxBytes}` : String(sizeBytes);
  const limit = limitName === undefined ? `${maxBytes} bytes` : `${limitName} = ${maxBytes} bytes`;
  return new HttpError(413, `Request body too large: ${size} bytes; the limit is ${limit}`);
}

export type Handler = (ctx: RequestContext) => Promise<void>;

interface Route {
  method: string;
  segments: string[];
  handler: Handler;
}

/** A small router: literal segments and `:param` segments (URL-decoded, so `a%2Fb` is one segment). */
export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    this.routes.push({ method, segments: path.split('/').filter((s) => s !== ''), handler });
    return this;
  }

  /** The handler for a request, or a 404/405 error. */
  match(method: string, pathname: string): { handler: Handler; params: Record<string, string> } {
    let segments: string[];
    try {
      segments = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    } catch {
      throw new HttpError(400, 'Malformed URL path');
    }
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method === method) return { handler: route.handler, params };
    }
    throw pathMatched ? new HttpError(405, `Method ${method} not allowed on ${pathname}`) : new HttpError(404, `No route for ${pathname}`);
  }
}

function matchSegments(pattern: string[], segments: string[]): Record<string, string> | undefined {
  const rest = pattern.length > 0 && pattern[pattern.length - 1]!.startsWith('*');   // `*name`: the rest, maybe empty
  if (rest ? segments.length < pattern.length - 1 : pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith('*')) { params[p.slice(1)] = segments.slice(i).join('/'); break; }
    if (p.startsWith(':')) params[p.slice(1)] = segments[i]!;
    else if (p !== segments[i]) return undefined;
  }
  return params;
}

const corsHeaders = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE, PATCH, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Accept, Content-Type',
  'Access-Control-Expose-Headers': 'spacetime-identity, spacetime-identity-token, spacetime-energy-used, spacetime-execution-duration-micros',
  'Access-Control-Max-Age': '86400',
} as const;

/**
 * Sets the connection timeouts of the HTTP server. A module call holds the server's thread up to its limit (engine v2
 * moves databases off it); idle keep-alive connections must outlive such a hold, or requests clients wrote meanwhile
 * are reset instead of answered (src/limits.ts httpKeepAliveTimeoutMs says why).
 */
export function configureHttpTimeouts(server: Server, reducerTimeoutMs = reducerTimeoutMsConfigured()): void {
  server.keepAliveTimeout = httpKeepAliveTimeoutMs(reducerTimeoutMs);
  server.headersTimeout = httpHeadersTimeoutMs(reducerTimeoutMs);
}

/** The process's open-file limit (its soft RLIMIT_NOFILE, which Node raises to the hard one), Infinity when unknown. */
export function fileDescriptorsMax(): number {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line === null ? Infinity : Number(line[1]);
  } catch {
    return Infinity;
  }
}

/** One connection counted against the bound. */
interface CountedConnection {
  readonly socket: Socket;
  readonly address: string;
  readonly silent: NodeJS.Timeout;
  /** Requests on it not yet answered (pipelined ones come one after another). */
  requests: number;
  counted: boolean;
}

/**
 * Holds the server to `connectionsMax` open connections (HTTP and WebSocket alike: an upgrade keeps its socket): one
 * more is answered 503 naming the limit and closed before any request is read, so the process keeps descriptors for
 * its files (limits.ts "Connections"). A connection that has sent nothing after `silentTimeoutMs` is closed, so
 * sockets that never send cannot hold those places. When the bound is full, a newcomer takes the place of the oldest
 * half-open connection (no complete request yet, or idle between requests) of an address holding more than
 * `halfOpenPerAddressMax` of them (server/half-open.ts), so slow senders from one address cannot hold every place.
 */
export function limitConnections(
  server: Server, connectionsMax: number, silentTimeoutMs = connectionSilentTimeoutMsConfigured(),
  halfOpenPerAddressMax = connectionsHalfOpenPerAddressMaxConfigured(),
): void {
  const refusal = textResponse('503 Service Unavailable', `This server holds ${connectionsMax} connections, its limit ` +
    '(connectionsMax, set by SPACETIME_CONNECTIONS_MAX): try again later\n');
  const halfOpen = new HalfOpenConnections<CountedConnection>(halfOpenPerAddressMax, connectionHalfOpenEvictableAfterMs);
  const connections = new WeakMap<Socket, CountedConnection>();
  let open = 0;
  const release = (connection: CountedConnection): void => {
    if (!connection.counted) return;
    connection.counted = false;
    open--;
    clearTimeout(connection.silent);
    halfOpen.delete(connection);
  };
  const makeRoom = (): boolean => {
    const victim = halfOpen.victim();
    if (victim === undefined) return false;
    release(victim.connection);
    victim.connection.socket.end(textResponse('503 Service Unavailable', `This address (${victim.address}) holds ` +
      `${victim.count} connections without a complete request, over its share of a full server ` +
      `(connectionsHalfOpenPerAddressMax = ${halfOpenPerAddressMax}, set by SPACETIME_CONNECTIONS_HALF_OPEN_PER_ADDRESS_MAX; ` +
      `connectionsMax = ${connectionsMax}): this one, the oldest, is closed\n`), () => victim.connection.socket.destroy());
    return true;
  };
  server.on('connection', (socket: Socket) => {
    if (open >= connectionsMax && !makeRoom()) {
      socket.on('error', () => {}); // the peer may be gone already; nothing to tell it
      socket.end(refusal, () => socket.destroy()); // not held half-open by a peer that never closes
      return;
    }
    open++;
    // Node's headers timeout starts at a connection's first byte: one that never sends would hold its place forever.
    const silent = setTimeout(() => { if (socket.bytesRead === 0) socket.destroy(); }, silentTimeoutMs).unref();
    const connection: CountedConnection = { socket, address: socket.remoteAddress ?? '', silent, requests: 0, counted: true };
    connections.set(socket, connection);
    halfOpen.add(connection, connection.address);
    socket.once('close', () => release(connection));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const connection = connections.get(req.socket);
    if (connection === undefined) return;
    connection.requests++;
    halfOpen.delete(connection);
    res.once('close', () => {
      if (--connection.requests === 0 && connection.counted && !connection.socket.destroyed) halfOpen.add(connection, connection.address);
    });
  });
  server.on('upgrade', (req: IncomingMessage) => {
    const connection = connections.get(req.socket);
    if (connection !== undefined) halfOpen.delete(connection); // a WebSocket is established from here on
  });
}

/**
 * Writes one piece of a streamed response (a log backlog, a backup) and returns once the event loop has turned, after
 * 'drain' when the socket's buffer is full, or once the response closed. Awaiting 'drain' alone is not enough: with a
 * fast reader it comes from the socket's uncork on the next tick, so a loop of writes ran in ticks and microtasks and
 * held the thread for the whole stream (a 218 MB log backlog: 1.6 s; an 84 MB backup: ping max 265 ms).
 */
export async function writeStreamed(res: ServerResponse, data: string | Uint8Array, stallAllowed = false): Promise<void> {
  const taken = res.write(data);
  noteWritten(res, stallAllowed);
  if (!taken) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  await new Promise((resolve) => setImmediate(resolve));
}

/** A whole HTTP/1.1 response with a plain-text body, written to a socket the server then closes. */
function textResponse(status: string, body: string): string {
  return `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * The request target as a URL. Origin-form targets are taken as paths even when they start with `//` (which the URL
 * parser would read as a host: `GET //` once crashed the server); anything unparsable is a 400.
 */
function requestUrl(target: string): URL {
  try {
    return target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target, 'http://localhost');
  } catch {
    throw new HttpError(400, `Malformed request target: ${target.slice(0, 200)}`);
  }
}

/** Returns the node:http request listener for a router. */
export function requestListener(
  router: Router, tokens: TokenAuthority, onError: (error: unknown) => void, inboundBudget = new InboundBudget(),
  outboundBudget = new OutboundBudget(),
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    responseBudgets.set(res, outboundBudget);
    for (const [name, value] of Object.entries(corsHeaders)) res.setHeader(name, value);
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'Content-Length': 0 });
      res.end();
      return;
    }
    let ctx: RequestContext;
    try {
      ctx = new RequestContext(req, res, tokens, inboundBudget);
    } catch (error) {
      // Nothing a request carries may throw out of the listener: an exception here would end the process.
      const body = error instanceof HttpError ? error.body : 'Bad request';
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
      return;
    }
    void handle(router, ctx).catch((error: unknown) => sendError(ctx, error, onError));
  };
}

async function handle(router: Router, ctx: RequestContext): Promise<void> {
  const { handler, params } = router.match(ctx.req.method ?? 'GET', ctx.url.pathname);
  ctx.params = params;
  await handler(ctx);
}

function sendError(ctx: RequestContext, error: unknown, onError: (error: unknown) => void): void {
  const { res } = ctx;
  if (res.headersSent) {
    // Mid-stream failure (e.g. a log follow): all we can do is end the response.
    if (!(error instanceof HttpError)) onError(error);
    res.destroy();
    return;
  }
  if (error instanceof HttpError) {
    if (error.status === 413) res.setHeader('Connection', 'close');
    if (error.json) ctx.sendJson(error.status, JSON.parse(error.body));
    else ctx.sendText(error.status, error.body);
  } else if (error instanceof AuthError) {
    ctx.sendText(error.status, error.message);
  } else {
    onError(error);
    ctx.sendText(500, `Internal server error: ${(error as Error)?.message ?? String(error)}`);
  }
}
