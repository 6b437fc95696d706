// server/host-api.ts — what the server needs from the host layer, in one place.
//
// Owns: the HostedDatabase seam (everything server/ calls on one database) and the DatabaseHost seam (create at
// publish, reopen at start). Two implementations stand behind HostedDatabase: host/database.ts `Database` (in this
// thread) and host/worker/proxy.ts `WorkerDatabase` (the same Database in its own worker thread, behind messages);
// test/host/hosted-database-contract.test.ts runs the same cases against both.
// May call: host/database.ts, host/worker/, datastore/types.ts (types).

import type { Database } from '../host/database.js';
import type { LogCursor, LogListener, LogRecord } from '../host/module-log.js';
import type { WorkerDatabase } from '../host/worker/proxy.js';
import type { ReadView } from '../datastore/types.js';
import type { CompileQuery } from '../subscription/manager.js';
import type { SubscriptionPort } from '../subscription/port.js';

export type { Caller, ReducerCallResult } from '../host/database.js';
export type { LogRecord } from '../host/module-log.js';

/** The module log as the server reads it: `spacetime logs` (backlog, then follow). */
export interface HostedLog {
  read(n?: number): LogCursor;
  tail(n?: number): LogRecord[];
  follow(listener: LogListener): () => void;
}

/**
 * One open database as the server sees it. Signatures are `Database`'s own (so the in-thread path is today's code,
 * unchanged); a worker-backed implementation answers the synchronous members from what it caches main-side (the
 * module definition and the catalogues built from it, the identity, the latest metrics and failure state).
 */
export interface HostedDatabase {
  readonly identity: bigint;
  readonly ownerIdentity: bigint;
  /** The module definition and what is derived from it (pure functions of moduleDefBytes). */
  moduleDefBytes(): Uint8Array;
  readonly moduleDef: Database['moduleDef'];
  readonly schema: Database['schema'];
  reducerByName: Database['reducerByName'];
  procedureByName: Database['procedureByName'];
  readonly httpBodyMaxBytes: number;
  loggedProgramText(): string | undefined;

  // Calls (every reply is sent once its commit is durable).
  callReducer: Database['callReducer'];
  /** The synchronous hot path; absent when calls cannot run on this thread (worker). */
  callReducerNow?: Database['callReducerNow'];
  /** The worker's pipelined path for WebSocket calls (host/worker/proxy.ts); absent in-thread. */
  callReducerOrdered?: WorkerDatabase['callReducerOrdered'];
  callReducerJson: Database['callReducerJson'];
  callProcedure: Database['callProcedure'];
  callProcedureJson: Database['callProcedureJson'];
  clientConnected: Database['clientConnected'];
  clientDisconnected: Database['clientDisconnected'];
  sql: Database['sql'];
  /** `sql` rendered as POST /sql's JSON body where the query ran (sql/json.ts says why). */
  sqlJson: Database['sqlJson'];
  /** `sql` rendered as PostgreSQL backend messages where the query ran (sql/pg-messages.ts), for server/pgwire/. */
  sqlPg: Database['sqlPg'];
  serveHttp: Database['serveHttp'];

  // Module updates.
  planUpdate: Database['planUpdate'];
  update: Database['update'];

  readonly logs: HostedLog;

  // Subscriptions: a worker-backed database evaluates them where its datastore lives and hands out a port; the
  // in-thread one offers its commits and committed state to a manager on this thread (subscription/port.ts).
  subscriptionPort?(compile: CompileQuery): SubscriptionPort;
  /** Committed state; a worker-backed database serves only its schema here (rows live in the worker). */
  readonly datastore: ReadView;
  onCommit: Database['onCommit'];
  onModuleChange: Database['onModuleChange'];
  wrapCompile?: Database['wrapCompile'];
  rowLimit?: Database['rowLimit'];

  // Health and metrics.
  metricsSnapshot: Database['metricsSnapshot'];
  /** Makes the next metricsSnapshot current (GET /v1/metrics awaits it); absent when snapshots are always current. */
  refreshMetrics?(): Promise<void>;
  readonly failure: Database['failure'];
  onFailure: Database['onFailure'];
  readonly durableOffset: bigint | undefined;
  close(): Promise<void>;
}


/** What the server passes when it creates or reopens a database. */
export interface CreateDatabaseOptions {
  identity: bigint;
  ownerIdentity: bigint;
  /** `<dataDir>/databases/<identity hex>`. */
  dir: string;
}

/** Creates (publish) and reopens (restart) databases. The default goes to host/database.ts. */
export interface DatabaseHost {
  create(options: CreateDatabaseOptions, program: string): Promise<HostedDatabase>;
  /** Reopens an existing database from its files; absent when the host cannot (then the server re-creates). */
  open?(options: CreateDatabaseOptions, program: string): Promise<HostedDatabase>;
}
