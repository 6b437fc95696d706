// server/main.ts — `startServer`: keys, control data, databases, the HTTP /v1 API and the WebSocket endpoint.
//
// Owns: server start-up and shutdown order, the listen address, the one "listening" line on stdout, and (when the
// server is the process, `spacetime start`) what happens to an error nobody caught: its stack goes to the log first.
// May call: auth/ (keys, tokens), server/control.ts, server/databases.ts, server/http.ts, server/routes/*,
// server/websocket/attach.ts, server/inbound-budget.ts (one bound for HTTP bodies and WebSocket messages),
// server/pgwire/server.ts (`pg`), server/metrics.ts (/v1/metrics, /v1/health),
// server/config-file.ts (the publish policy's default), host/ (the default DatabaseHost, the memory bound's sampler),
// limits.ts (the connection bound).
//
// Start order: keys → control data → orphan directories removed, every database marked as opening → listen → the
// databases open in the background (server/databases.ts "Opening at start": whatever is addressed to one waits for its
// open, everything else is served at once). Shutdown: stop accepting, close WebSocket sessions and PostgreSQL
// connections, let opens under way end (none more start), close databases (their commit logs flush), close the
// listener.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadOrCreateKeys } from '../auth/keys.js';
import { TokenAuthority } from '../auth/tokens.js';
import { ControlStore } from './control.js';
import { DatabaseRegistry } from './databases.js';
import type { DatabaseHost, HostedDatabase } from './host-api.js';
import { Router, configureHttpTimeouts, fileDescriptorsMax, limitConnections, requestListener } from './http.js';
import { addDatabaseRoutes } from './routes/database.js';
import { addBackupRoutes } from './routes/backup.js';
import { addIdentityRoutes } from './routes/identity.js';
import { addLoginRoutes, createOidcVerifier, type OidcServerOptions } from './routes/login.js';
import { addDashboardRoutes } from './routes/dashboard.js';
import { compileWithSql } from '../subscription/manager.js';
import { attachWebSocket } from './websocket/attach.js';
import { InboundBudget } from './inbound-budget.js';
import { OutboundBudget } from './outbound-budget.js';
import { addMetricsRoutes } from './metrics.js';
import { defaultPublishPolicy, type PublishPolicy } from './config-file.js';
import { startPgServer, type RunningPgServer } from './pgwire/server.js';
import { sqlAsClient } from './routes/database.js';
import { configuredMemoryBoundMib, startMemorySampler } from '../host/memory-guard.js';
import { connectionsMaxConfigured } from '../limits.js';

export const listenAddrDefault = '127.0.0.1:3000';

export interface StartServerOptions {
  /** `host:port`; port 0 picks a free port. */
  listenAddr?: string;
  dataDir: string;
  /** Where id_ecdsa / id_ecdsa.pub live (`--jwt-key-dir`); default `<dataDir>/keys`. */
  keyDir?: string;
  /** Creates and reopens databases; default: host/database.ts. */
  host?: DatabaseHost;
  /** Operational log lines (errors, start-up problems); default stderr. */
  log?: (line: string) => void;
  /** Print "Starting SpacetimeDB listening on <addr>" on stdout (default true). */
  announce?: boolean;
  /**
   * Commit durability for every database (default 'fsync': replies wait until their transaction is fsynced; 'none':
   * until it is written to the OS — a process crash loses nothing, a power loss can). Ignored with a custom `host`.
   */
  durability?: 'fsync' | 'none';
  /**
   * Where each database runs (ignored with a custom `host`): 'worker' (default) in its own worker thread
   * (host/worker/), so a runaway reducer holds only its own database; 'main' on this thread. Default: the
   * environment's SPACETIME_DATABASE_THREADS, else 'worker'.
   */
  databaseThreads?: DatabaseThreads;
  /** Attaches the WebSocket endpoint to the HTTP server (default: `attachWebSocketEndpoint` below). */
  attachUpgrades?: AttachUpgrades;
  /** External OpenID Connect: the web login's provider and trusted issuers/audiences (docs/login.md). */
  oidc?: OidcServerOptions;
  /**
   * The server owns the process (`spacetime start`): an uncaught exception or unhandled rejection is written to the
   * log with its stack, then the process exits 1 (default false: an embedding process keeps its own handlers).
   */
  exitOnUncaughtError?: boolean;
  /** Serve GET /v1/metrics (default true; config.toml [metrics] enabled). GET /v1/health is always served. */
  metrics?: boolean;
  /** What /v1/health reports as `version` (default '0.0.0'). */
  version?: string;
  /**
   * Who may create databases (config.toml [publish] allow, `--allow-publish`); default: anyone when listening on a
   * loopback address, nobody elsewhere (updates by owners are never affected; docs/operations.md).
   */
  publishPolicy?: PublishPolicy;
  /** WebSocket keep-alive (config.toml [websocket] ping-interval, idle-timeout); defaults in websocket/session.ts. */
  webSocket?: { pingIntervalMs?: number; idleTimeoutMs?: number };
  /**
   * Serve the PostgreSQL wire protocol (docs/pgwire.md) on `port` of the listen address's host (`--pg-port`; 0: a
   * free port); `version` is reported as `server_version` (`spacetime <version>`, as upstream).
   */
  pg?: { port: number; version: string };
}

/** What the WebSocket endpoint gets from the server. */
export interface UpgradeContext {
  databases: DatabaseRegistry;
  tokens: TokenAuthority;
  /**
   * The running Database a name or 64-hex identity names, once its open at start has ended; undefined when there is
   * no such database; an HttpError 503 saying why when it is not running or still opening after its wait limit.
   */
  resolveLive(nameOrIdentity: string): Promise<HostedDatabase | undefined>;
  onError(error: unknown): void;
  /** Keep-alive settings from config.toml (absent fields: session.ts defaults). */
  webSocketLimits?: { pingIntervalMs?: number; idleTimeoutMs?: number };
  /** The bound on bytes received and not yet handled, shared by HTTP bodies and WebSocket messages. */
  inboundBudget: InboundBudget;
  /** The bound on bytes answered and not yet read, shared by HTTP, WebSocket and pgwire. */
  outboundBudget: OutboundBudget;
}

/** Installs an 'upgrade' handler on `httpServer`; `close` ends every session (server shutdown). */
export type AttachUpgrades = (httpServer: Server, ctx: UpgradeContext) => { close(): Promise<void> };

export interface RunningServer {
  url: string;
  port: number;
  httpServer: Server;
  databases: DatabaseRegistry;
  tokens: TokenAuthority;
  /** The PostgreSQL wire protocol port, when `pgPort` was given. */
  pgPort?: number;
  close(): Promise<void>;
}

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (options.exitOnUncaughtError === true) exitOnUncaughtErrors(log);
  const { hostname, port } = parseListenAddr(options.listenAddr ?? listenAddrDefault);
  const keys = await loadOrCreateKeys(options.keyDir ?? join(options.dataDir, 'keys'));
  const tokens = new TokenAuthority({ keys, oidc: createOidcVerifier(options.oidc) });
  const control = await ControlStore.open(options.dataDir);
  // Before any database thread starts: each gets the sample at its start (host/memory-guard.ts).
  const stopMemorySampler = startMemorySampler(configuredMemoryBoundMib());
  const host = options.host ?? (await defaultHost(options.durability ?? 'fsync', options.databaseThreads ?? databaseThreadsFromEnv(), log));
  const databases = new DatabaseRegistry(control, host, options.dataDir, log);
  databases.publishPolicy = options.publishPolicy ?? defaultPublishPolicy();
  await databases.prepareOpening();

  const router = new Router();
  addIdentityRoutes(router, tokens, databases);
  addDatabaseRoutes(router, databases);
  addBackupRoutes(router, databases);
  addLoginRoutes(router, tokens, options.oidc?.login);
  addDashboardRoutes(router);
  addMetricsRoutes(router, databases, { enabled: options.metrics ?? true, version: options.version ?? '0.0.0' });
  const onError = (error: unknown) => {
    // A client that goes away mid-request or mid-session is ordinary, not an internal error (upstream logs nothing).
    if (isPeerGone(error)) return;
    log(`internal error: ${(error as Error)?.stack ?? String(error)}`);
  };
  const inboundBudget = new InboundBudget();
  const outboundBudget = new OutboundBudget();
  const httpServer = createServer(requestListener(router, tokens, onError, inboundBudget, outboundBudget));
  configureHttpTimeouts(httpServer);
  limitConnections(httpServer, connectionsMaxConfigured(fileDescriptorsMax()));

  const webSockets = (options.attachUpgrades ?? attachWebSocketEndpoint)(httpServer, {
    databases,
    webSocketLimits: options.webSocket,
    inboundBudget,
    outboundBudget,
    tokens,
    resolveLive: async (nameOrIdentity) => {
      const record = control.resolve(nameOrIdentity);
      return record === undefined ? undefined : await databases.get(record);
    },
    onError,
  });

  try {
    await listen(httpServer, hostname, port);
  } catch (error) {
    await webSockets.close();
    await databases.closeAll();
    stopMemorySampler();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`Port ${port} is already in use. Please free up the port or specify a different port with --listen-addr.`);
    }
    throw error;
  }
  databases.openInBackground();
  const address = httpServer.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  if (options.announce !== false) process.stdout.write(`Starting SpacetimeDB listening on ${shownHost}:${address.port}\n`);
  let pg: RunningPgServer | undefined;
  if (options.pg !== undefined) {
    pg = await startPg(hostname, options.pg, databases, tokens, onError, outboundBudget).catch(async (error: unknown) => {
      await webSockets.close();
      await databases.closeAll();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      stopMemorySampler();
      throw error;
    });
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    port: address.port,
    httpServer,
    databases,
    tokens,
    pgPort: pg?.port,
    close() {
      closing ??= (async () => {
        const listenerClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        await pg?.close();
        await webSockets.close();
        await databases.closeAll(); // ends log follows too
        httpServer.closeAllConnections();
        await listenerClosed;
        stopMemorySampler();
      })();
      return closing;
    },
  };
}

// ─── PostgreSQL wire protocol ────────────────────────────────────────────────────────────────────────────────────
// Queries go through POST /sql's own function (routes/database.ts sqlAsClient): same resolution, permissions, errors.
async function startPg(
  hostname: string, pg: { port: number; version: string }, databases: DatabaseRegistry, tokens: TokenAuthority,
  onError: (error: unknown) => void, outboundBudget: OutboundBudget,
): Promise<RunningPgServer> {
  return startPgServer({
    hostname,
    port: pg.port,
    outboundBudget,
    backend: {
      serverVersion: `spacetime ${pg.version}`,
      databaseExists: (database) => {
        try {
          databases.resolve(database);
          return true;
        } catch {
          return false;
        }
      },
      authenticate: async (token) => {
        const verified = await tokens.verify(token);
        return { identity: verified.identity, token: verified.token, payloadJson: verified.payloadJson };
      },
      sql: (database, credentials, query, gone, address) => sqlAsClient(databases, databases.resolve(database), credentials, query, gone, address),
      onError,
    },
  });
}

// ─── WebSocket hook ──────────────────────────────────────────────────────────────────────────────────────────────
// `GET /v1/database/:noi/subscribe` upgrades belong to server/websocket/ (attach.ts `attachWebSocket`).
function attachWebSocketEndpoint(httpServer: Server, ctx: UpgradeContext): { close(): Promise<void> } {
  return attachWebSocket(httpServer, {
    resolveDatabase: ctx.resolveLive,
    auth: ctx.tokens,
    compile: compileWithSql,
    onError: ctx.onError,
    limits: withoutUndefined(ctx.webSocketLimits),
    onDatabaseClosed: (db, listener) => ctx.databases.onClose(db.identity, listener),
    inboundBudget: ctx.inboundBudget,
    outboundBudget: ctx.outboundBudget,
  });
}

/**
 * Logs an error nobody caught, with its stack, then exits 1. Without this, Node would emit 'exit' before printing the
 * error, and host/runtime.ts's exit guard ends the process inside that event: the error was never printed. Exiting is
 * the safe answer to a broken invariant: everything acknowledged is already in the commit log. Errors of one client
 * connection never get here (server/websocket/ closes that connection instead).
 */
function exitOnUncaughtErrors(log: (line: string) => void): void {
  if (uncaughtErrorsHandled) return;
  uncaughtErrorsHandled = true;
  process.on('uncaughtException', (error, origin) => {
    const what = origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception';
    try {
      log(`fatal: ${what}: ${(error as Error)?.stack ?? String(error)}`);
    } finally {
      process.exit(1);
    }
  });
}
let uncaughtErrorsHandled = false;

function listen(httpServer: Server, hostname: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, hostname, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
}

/** Parses `host:port` / `[v6]:port`; throws with the text on bad input. */
export function parseListenAddr(text: string): { hostname: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) throw new Error(`invalid listen address \`${text}\`: expected host:port`);
  return { hostname: match[1] ?? match[2]!, port };
}

export type DatabaseThreads = 'main' | 'worker';

/** SPACETIME_DATABASE_THREADS (main | worker); anything else is refused with what is accepted. */
export function databaseThreadsFromEnv(): DatabaseThreads {
  const value = process.env.SPACETIME_DATABASE_THREADS;
  if (value === undefined || value === '') return 'worker';
  if (value === 'main' || value === 'worker') return value;
  throw new Error(`SPACETIME_DATABASE_THREADS=${value}: expected main or worker`);
}

async function defaultHost(durability: 'fsync' | 'none', threads: DatabaseThreads, log: (line: string) => void): Promise<DatabaseHost> {
  if (threads === 'worker') {
    const { workerHost } = await import('../host/worker/proxy.js');
    return workerHost(durability, log);
  }
  const { Database } = await import('../host/database.js');
  return {
    create: (options, program) => Database.create({ ...options, durability, report: log }, program),
    open: (options, program) => Database.open({ ...options, durability, report: log }, program),
  };
}

/** `{a: 1, b: undefined}` → `{a: 1}`, so an unset config key does not override a default by spreading. */
function withoutUndefined<T extends object>(value: T | undefined): Partial<T> | undefined {
  if (value === undefined) return undefined;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Socket errors that only mean the peer closed or reset its connection, or broke the WebSocket framing (ws's
 * `WS_ERR_*`: bad RSV bits, opcodes, masks, UTF-8, a message over maxPayload; ws closes that connection with 1002 or
 * 1009 itself). Logging these as internal errors let any client write a stack trace into the server log per frame.
 */
const peerGoneCodes = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
function isPeerGone(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (peerGoneCodes.has(code) || code.startsWith('WS_ERR_'));
}
