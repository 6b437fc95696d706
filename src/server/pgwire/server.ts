// server/pgwire/server.ts — the PostgreSQL wire protocol listener (`spacetime start --pg-port N`).
//
// Owns: the TCP listener, the open-connection limit (with room made by closing unauthenticated connections of an address
// holding too many, server/half-open.ts), and closing every session on shutdown. Each connection is a PgSession
// (session.ts); this file only accepts, counts and ends them.
// May call: server/pgwire/session.ts, server/pgwire/protocol.ts, server/half-open.ts, limits.ts, node:net.

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  connectionHalfOpenEvictableAfterMs, pgConnectionsMax, pgConnectionsUnauthenticatedPerAddressMax, pgMessageBytesMax,
  pgStartupTimeoutMsConfigured,
} from '../../limits.js';
import { HalfOpenConnections } from '../half-open.js';
import { OutboundBudget } from '../outbound-budget.js';
import { errorResponse } from './protocol.js';
import { PgSession, type PgBackend } from './session.js';

export interface PgServerOptions {
  hostname: string;
  port: number;
  backend: Omit<PgBackend, 'messageBytesMax' | 'startupTimeoutMs'>;
  /** Overrides for tests; default the limits.ts values. */
  connectionsMax?: number;
  /** The server's bound on answers not yet read, shared with HTTP and WebSocket; else one of its own. */
  outboundBudget?: OutboundBudget;
}

export interface RunningPgServer {
  port: number;
  close(): Promise<void>;
}

export async function startPgServer(options: PgServerOptions): Promise<RunningPgServer> {
  const backend: PgBackend = {
    ...options.backend, messageBytesMax: pgMessageBytesMax, startupTimeoutMs: pgStartupTimeoutMsConfigured(),
    outboundBudget: options.outboundBudget ?? new OutboundBudget(),
  };
  const connectionsMax = options.connectionsMax ?? pgConnectionsMax;
  const sessions = new Set<PgSession>();
  const unauthenticated = new HalfOpenConnections<PgSession>(pgConnectionsUnauthenticatedPerAddressMax, connectionHalfOpenEvictableAfterMs);
  const makeRoom = (): boolean => {
    const victim = unauthenticated.victim();
    if (victim === undefined) return false;
    sessions.delete(victim.connection);
    unauthenticated.delete(victim.connection);
    victim.connection.displace(`this address (${victim.address}) holds ${victim.count} connections that have not ` +
      `authenticated, over its share of a full server (pgConnectionsUnauthenticatedPerAddressMax = ` +
      `${pgConnectionsUnauthenticatedPerAddressMax}; the limit is ${connectionsMax} connections): this one, the oldest, is closed`);
    return true;
  };
  const server: Server = createServer((socket: Socket) => {
    socket.on('error', () => undefined); // a peer that resets is not our error; the session sees 'close'
    if (sessions.size >= connectionsMax && !makeRoom()) {
      // PostgreSQL's own answer when max_connections is reached.
      socket.end(errorResponse({ severity: 'FATAL', code: '53300', message: `sorry, too many clients already (the limit is ${connectionsMax} connections)` }));
      return;
    }
    const session: PgSession = new PgSession(socket, backend, () => unauthenticated.delete(session));
    sessions.add(session);
    unauthenticated.add(session, socket.remoteAddress ?? '');
    socket.on('close', () => {
      sessions.delete(session);
      unauthenticated.delete(session);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.hostname, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((error: NodeJS.ErrnoException) => {
    const where = `${options.hostname}:${options.port}`;
    throw new Error(`failed to bind the SpacetimeDB PostgreSQL wire protocol server to ${where}, please check that the port is valid and not already in use (${error.code ?? error.message})`);
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.close();
      });
      return closing;
    },
  };
}
