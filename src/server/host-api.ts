// server/host-api.ts — what the server needs from the host layer, in one place.
//
// Owns: the DatabaseHost seam (create at publish, reopen at start) and the shape of one /sql statement result as
// the server renders it. The Database itself is host/database.ts; the server names it `HostedDatabase` so a
// worker-thread proxy can later stand in for it without touching the routes.
// May call: host/database.ts (types only).

import type { Database } from '../host/database.js';
import type { ProductType } from '../sats/types.js';

export type { Caller, ReducerCallResult } from '../host/database.js';
export type { LogRecord } from '../host/module-log.js';

export type HostedDatabase = Database;

/** One statement's result; rows are BSATN of the schema's product or decoded positional values. */
export interface SqlStatementResult {
  schema: ProductType;
  rows: readonly unknown[];
  totalDurationMicros?: number | bigint;
  stats?: { rowsInserted?: number; rowsDeleted?: number; rowsUpdated?: number };
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
