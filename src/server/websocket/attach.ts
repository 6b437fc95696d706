// server/websocket/attach.ts — the WebSocket entry point: `GET /v1/database/:name_or_identity/subscribe`.
//
// Owns: the upgrade handshake (route, subprotocol choice v3 > v2 > v1.json, query parameters, credentials or an anonymous
// identity, database lookup), plain-HTTP refusals before the upgrade (client-protocol.md §1.2–1.4) and the set of
// live (database, connection_id) pairs. Each accepted socket gets a Session (session.ts), or a JsonSession
// (json-session.ts) when the client speaks upstream's legacy v1.json.spacetimedb text protocol.
//
// A connection_id is live from its upgrade until its socket has closed. Upstream refuses a second client with a
// live connection_id when it inserts the `st_client` row (unique (identity, connection_id); `st_connection_credentials`
// unique on connection_id) and drops the socket after the upgrade; we refuse before the upgrade with 409 and a
// message, whatever the identity (upstream would admit a same-identity, same-token duplicate as a second actor).
// May call: server/websocket/session.ts, server/websocket/json-session.ts, server/websocket/inbound-meter.ts (each
// connection's share of server/inbound-budget.ts), server/websocket/query-gate.ts (queries in flight per address),
// server/outbound-budget.ts (what waits for each client),
// server/http.ts (HttpError: a database that is not running is refused with its status and why), subscription/port.ts,
// auth/ (tokens, identities), limits.ts, ws.

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { connectionIdToHex, randomConnectionId } from '../../auth/identity.js';
import { AuthError, bearerToken, type TokenAuthority } from '../../auth/tokens.js';
import { HttpError } from '../http.js';
import { compileWithSql, type CompileQuery } from '../../subscription/manager.js';
import { subscriptionPortFor } from '../../subscription/port.js';
import { closeCodes, inboundMessageMaxBytes, Session, type Compression, type SessionDatabase, type SessionLimits } from './session.js';
import { JsonSession, subprotocolV1Json, type JsonSessionDatabase } from './json-session.js';
import { InboundMeter } from './inbound-meter.js';
import { queryGateFor } from './query-gate.js';
import { InboundBudget } from '../inbound-budget.js';
import { OutboundBudget, socketProgressMark, type OutboundHolder } from '../outbound-budget.js';
import { outboundBudgetChargeMinBytes } from '../../limits.js';

export const subprotocolV3 = 'v3.bsatn.spacetimedb';
export const subprotocolV2 = 'v2.bsatn.spacetimedb';
export { subprotocolV1Json };
const subscribeRoutePattern = /^\/v1\/database\/([^/]+)\/subscribe\/?$/;
const connectionIdPattern = /^[0-9a-fA-F]{32}$/;

export interface AttachDeps {
  /**
   * The database a path segment (name or 64-hex identity) names, once it is open (a connect waits while it opens);
   * undefined when there is none. An HttpError (503: not running, or still opening) is the refusal.
   */
  resolveDatabase(nameOrIdentity: string): SessionDatabase | undefined | Promise<SessionDatabase | undefined>;
  auth: Pick<TokenAuthority, 'verify' | 'mintIdentity'>;
  /** Subscription SQL compiler; default: sql/subscription-plan.ts (compileWithSql). */
  compile?: CompileQuery;
  /** Lower per-connection limits (tests). */
  limits?: Partial<SessionLimits>;
  onError?: (error: unknown) => void;
  /** Calls `listener` when the database is deleted, reset or shut down; returns an unsubscribe function. */
  onDatabaseClosed?: (db: SessionDatabase, listener: (reason?: string) => void) => () => void;
  /** The server's bound on bytes received and not yet handled, shared with HTTP bodies (default: one of its own). */
  inboundBudget?: InboundBudget;
  /** The server's bound on bytes answered and not yet read, shared with HTTP and pgwire (default: one of its own). */
  outboundBudget?: OutboundBudget;
  /** Whether frames are compressed as clients ask (default: SPACETIME_WEBSOCKET_COMPRESSION, else `none`). */
  frameCompression?: FrameCompression;
}

export interface AttachedWebSockets {
  readonly sessions: ReadonlySet<Session | JsonSession>;
  /** Closes every session with 1001 and stops accepting upgrades. */
  close(): Promise<void>;
}

/** A refusal before the upgrade: answered as a plain HTTP response. */
class UpgradeRefusal extends Error {
  constructor(readonly status: 400 | 404 | 409, message: string) {
    super(message);
  }
}

export function attachWebSocket(server: Server, deps: AttachDeps): AttachedWebSockets {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: inboundMessageMaxBytes,
    perMessageDeflate: false,
    handleProtocols: (offered) => chooseSubprotocol(offered) ?? false,
  });
  const sessions = new Set<Session | JsonSession>();
  const inboundBudget = deps.inboundBudget ?? new InboundBudget();
  const outboundBudget = deps.outboundBudget ?? new OutboundBudget();
  /** `liveKey(db, connectionId)` of every socket from its upgrade until it has closed. */
  const liveConnections = new Set<string>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', (e) => deps.onError?.(e));
    accept(req, socket, head).catch((e: unknown) => {
      if (e instanceof UpgradeRefusal || e instanceof AuthError || e instanceof HttpError) {
        refuse(socket, e.status, e.message);
        return;
      }
      deps.onError?.(e);
      refuse(socket, 500, 'internal error');
    });
  };

  async function accept(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new UpgradeRefusal(400, `bad request target: ${req.url ?? ''}`);
    }
    const route = subscribeRoutePattern.exec(url.pathname);
    if (route === null) throw new UpgradeRefusal(404, 'not found');
    const offered = new Set((req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean));
    const protocol = chooseSubprotocol(offered);
    if (protocol === undefined) throw new UpgradeRefusal(400, 'no valid protocol selected');
    const params = parseParams(url.searchParams, deps.frameCompression ?? frameCompressionFromEnv);

    const headerToken = bearerToken(req.headers.authorization);
    const presented = headerToken ?? url.searchParams.get('token') ?? undefined;
    let identity: bigint;
    let token: string;
    let jwtPayload: string;
    if (presented !== undefined) {
      const verified = await deps.auth.verify(presented);
      ({ identity, token, payloadJson: jwtPayload } = verified);
    } else {
      ({ identity, token } = await deps.auth.mintIdentity());
      jwtPayload = Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8');
    }

    let nameOrIdentity: string;
    try {
      nameOrIdentity = decodeURIComponent(route[1]);
    } catch {
      throw new UpgradeRefusal(400, `bad database name in path: ${route[1]}`);
    }
    const db = await deps.resolveDatabase(nameOrIdentity);
    if (db === undefined) throw new UpgradeRefusal(404, `\`${nameOrIdentity}\` not found`);
    if (socket.destroyed) return;
    const connectionId = params.connectionId ?? randomConnectionId();
    const live = liveKey(db, connectionId);
    const address = req.socket.remoteAddress ?? '';
    // From here to the callback nothing awaits (ws completes the upgrade synchronously), so check and claim are one step.
    if (liveConnections.has(live)) {
      throw new UpgradeRefusal(409, `connection_id ${connectionIdToHex(connectionId)} is already connected to this database`);
    }

    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      liveConnections.add(live);
      // The database's subscriptions: an in-thread manager, or its worker's (subscription/port.ts).
      const subscriptions = subscriptionPortFor(db, deps.compile ?? compileWithSql);
      const caller = { identity, connectionId, jwtPayload };
      // Over the server's inbound budget, the connections holding the most are closed: 1013, try again later.
      const inbound = new InboundMeter(ws, socket, inboundBudget, (reason) => session.fail(closeCodes.tryAgainLater, reason));
      // Over the outbound bound, the same with what waits for them; a client that reads none of it for
      // outboundStallTimeoutMs is closed with 1008 (server/outbound-budget.ts).
      const outboundHolder: OutboundHolder = {
        heldBytes: 0,
        // Charged only while its socket holds bytes: when the socket took all it was handed, what the session holds
        // waits for the server's write turns (fanout.ts), not for the client to read.
        pendingBytes: () => (ws.bufferedAmount === 0 ? 0 : session.outboundPendingBytes()),
        progressMark: () => socketProgressMark(socket),
        evict: (reason, stalled) => session.fail(stalled === true ? closeCodes.policyViolation : closeCodes.tryAgainLater, reason),
      };
      const outbound = (): void => {
        // A message handed to the socket at once (most) costs one comparison here.
        if (outboundHolder.progress === undefined && session.outboundPendingBytes() < outboundBudgetChargeMinBytes) return;
        outboundBudget.update(outboundHolder);
      };
      // Queries in flight of the address's connections to this database (query-gate.ts); the owner's are not counted.
      const queryGate = identity === db.ownerIdentity ? undefined : () => queryGateFor(db.identity, address);
      const session = protocol === subprotocolV1Json
        ? new JsonSession(ws, db as JsonSessionDatabase, subscriptions, {
          caller, token, confirmedReads: params.confirmed ?? false, limits: deps.limits, onError: deps.onError, inbound, outbound,
          queryGate,
        })
        : new Session(ws, db, subscriptions, {
          caller,
          token,
          version: protocol === subprotocolV3 ? 3 : 2,
          compression: params.compression,
          confirmedReads: params.confirmed ?? true,
          limits: deps.limits,
          onError: deps.onError,
          inbound,
          outbound,
          queryGate,
        });
      sessions.add(session);
      // Upstream closes every client with 1001 "module exited" when the database goes away.
      const stopWatching = deps.onDatabaseClosed?.(db, (reason) => session.fail(1001, reason ?? 'module exited'));
      ws.on('close', () => {
        inbound.closed();
        outboundBudget.forget(outboundHolder);
        sessions.delete(session);
        liveConnections.delete(live);
        stopWatching?.();
      });
      session.start();
    });
  }

  server.on('upgrade', onUpgrade);
  return {
    sessions,
    async close() {
      server.off('upgrade', onUpgrade);
      for (const s of sessions) s.fail(1001, 'server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/**
 * Server preference, as upstream's: v3, then v2 (the 2.x SDK offers both), then v1.json (hand-written JSON clients,
 * the upstream CLI's fallback). v1.bsatn is not served: its message set differs from v2's and no client we know of
 * needs it.
 */
function chooseSubprotocol(offered: Set<string>): string | undefined {
  if (offered.has(subprotocolV3)) return subprotocolV3;
  if (offered.has(subprotocolV2)) return subprotocolV2;
  if (offered.has(subprotocolV1Json)) return subprotocolV1Json;
  return undefined;
}

/** `confirmed` undefined: not given (v2/v3 default to true, v1 to false, as upstream's). */
interface SubscribeParams { compression: Compression; confirmed: boolean | undefined; connectionId: bigint | undefined }

/**
 * Whether binary frames are compressed as the client asks (`requested`, as upstream) or never (`none`, tag 0 whatever
 * it asked). The default is `none`: the official TypeScript SDK (2.10.1, its default `gzip`) decompresses each frame
 * on its own asynchronously and hands a later, uncompressed frame to its cache before an earlier compressed one
 * (upstream issue #5730), leaving the cache stale (commits out of order in 1 of 10 runs of test/ws/batched-clients
 * with gzip); uncompressed frames keep their order. This server coalesces a burst's replies into one frame, which
 * crosses the 1 KiB compression threshold more often than upstream's frames do. A client loses nothing but bytes on
 * the wire. `SPACETIME_WEBSOCKET_COMPRESSION=requested` restores compression, read at start (another value stops it,
 * naming the variable).
 */
export type FrameCompression = 'none' | 'requested';
const frameCompressionFromEnv = ((value = process.env.SPACETIME_WEBSOCKET_COMPRESSION): FrameCompression => {
  if (value === undefined || value === '' || value === 'none') return 'none';
  if (value === 'requested') return 'requested';
  throw new Error(`SPACETIME_WEBSOCKET_COMPRESSION is \`${value}\`: expected \`none\` (never compress, the default) or \`requested\` (compress as the client asks)`);
})();

function parseParams(q: URLSearchParams, frames: FrameCompression): SubscribeParams {
  const asked = q.get('compression') ?? 'Brotli';
  if (asked !== 'None' && asked !== 'Gzip' && asked !== 'Brotli') {
    throw new UpgradeRefusal(400, `Invalid query string: unknown compression \`${asked}\`, expected one of \`None\`, \`Brotli\`, \`Gzip\``);
  }
  const compression: Compression = frames === 'none' ? 'None' : asked;
  const confirmed = parseBool(q.get('confirmed'), 'confirmed');
  parseBool(q.get('light'), 'light'); // accepted and ignored on v2/v3
  const rawId = q.get('connection_id');
  let connectionId: bigint | undefined;
  if (rawId !== null) {
    if (!connectionIdPattern.test(rawId)) throw new UpgradeRefusal(400, `Invalid query string: bad connection_id \`${rawId}\``);
    connectionId = BigInt(`0x${rawId}`);
    if (connectionId === 0n) throw new UpgradeRefusal(400, 'Invalid connection ID: the all-zeros ConnectionId is reserved');
  }
  return { compression, confirmed, connectionId };
}

function parseBool(v: string | null, name: string): boolean | undefined {
  if (v === null) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UpgradeRefusal(400, `Invalid query string: \`${name}\` must be true or false, got \`${v}\``);
}

const refusalReasons: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 500: 'Internal Server Error',
  503: 'Service Unavailable' };

/** The live-connection key of one client connection to one database. */
function liveKey(db: SessionDatabase, connectionId: bigint): string {
  return `${db.identity.toString(16)}/${connectionId.toString(16)}`;
}

function refuse(socket: Duplex, status: number, message: string): void {
  if (socket.destroyed) return;
  const body = Buffer.from(message, 'utf8');
  const reason = refusalReasons[status] ?? 'Error';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n` +
    `Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n${message}`);
}
