// host/recovery.ts — the link between a running `Database` and its files: opening persistence, logging each commit,
// waiting for durability, the fail-stop state after an I/O error, and background snapshots.
//
// Owns: `DatabaseDurability` (one per Database with a directory), the durability mode option and its default, and the
// error a database answers with once its log has failed. The on-disk meaning of records is host/persistence.ts.
// May call: host/persistence.ts, durability/commitlog.ts (types), durability/cut.ts (discardUnacknowledged), datastore
// (types, migrateDatastore: replay of a module update rebuilds the datastore exactly as Database.update did live),
// host/errors.ts (PublishError), limits.ts.
//
// Contract with database.ts: after every in-memory commit, `logCommit` is called synchronously (before anything else
// can run on this database) and returns a promise that resolves once that commit is on disk; replies to the caller
// wait for it. A commit that cannot be logged leaves memory ahead of disk: from then on `failure` is set, the database
// refuses every call, and the promise rejects, as does every later wait (`flushed`) — nothing that is not on disk is
// ever acknowledged. What must fit one log record is bounded before it is committed: a transaction by
// `txTooLargeMessage` (checked before the in-memory commit), a program by `checkProgramRecordSize` (when it is loaded).
//
// Resuming after a failure (server/databases.ts drives it): the failed database is closed (its log's last offset known
// on disk is then final and kept in the DatabaseFailedError), `discardUnacknowledged` cuts the log back to that offset,
// and the database is opened from its files like at start. Nothing of the failed in-memory state is kept.

import assert from 'node:assert/strict';
import type { Datastore } from '../datastore/store.js';
import type { MutTx, TxData } from '../datastore/types.js';
import type { DurabilityMode } from '../durability/commitlog.js';
import { cutLogAfter } from '../durability/cut.js';
import { join } from 'node:path';
import { migrateDatastore } from '../datastore/migrate.js';
import { DatabasePersistence, type ClientChange, type ProgramInfo, type RecoveredState } from './persistence.js';
import { PublishError } from './errors.js';
import { programRecordMaxBytes, txWriteBytesMaxConfigured } from '../limits.js';

export type { DurabilityMode } from '../durability/commitlog.js';

/** Default durability: a reply waits for fsync of its transaction (upstream's confirmed default). */
export const durabilityModeDefault: DurabilityMode = 'fsync';

/**
 * The message a transaction over the write limit fails with (before its commit), or undefined when it fits. The
 * datastore counts what the transaction writes (MutTx.writeBytes, with the framing charges of limits.ts), which bounds
 * its log record: a transaction that passes always fits one record.
 */
export function txTooLargeMessage(tx: MutTx, txWriteBytesMax: number): string | undefined {
  const bytes = tx.writeBytes;
  if (bytes === undefined || bytes <= txWriteBytesMax) return undefined;
  return `the transaction is too large to commit: it writes ${bytes} bytes of rows (with their framing), ` +
    `over the limit txWriteBytesMax = ${txWriteBytesMax} bytes; it was rolled back`;
}

/** The transaction write limit of a database: its option, else the server's (env override, else the default). */
export function txWriteBytesMaxOf(option: number | undefined): number {
  return option ?? txWriteBytesMaxConfigured();
}

/** Refuses (PublishError) a module whose Program record would not fit one log record (limits.ts programRecordMaxBytes). */
export function checkProgramRecordSize(programText: string, moduleDef: Uint8Array): void {
  const bytes = Buffer.byteLength(programText, 'utf8') + moduleDef.length;
  if (bytes > programRecordMaxBytes) {
    throw new PublishError(`the module is too large: its program text and module definition take ${bytes} bytes, ` +
      `over the limit programRecordMaxBytes = ${programRecordMaxBytes} bytes`);
  }
}

/** The database's log failed (write or fsync error): it accepts no more calls until it is reopened from its files. */
export class DatabaseFailedError extends Error {
  override name = 'DatabaseFailedError';
  /** The last log offset known to be on disk; final once the failed database was closed (undefined before). */
  durableOffset: bigint | undefined;
  constructor(override readonly cause: Error) {
    // Short, cause last but early: a WebSocket close reason keeps only 123 bytes of "…: <this>".
    super(`the database stopped accepting writes: ${cause.message}`);
  }
}

export interface DurabilityOptions {
  durability?: DurabilityMode;
  /** Snapshot policy overrides (tests and benchmarks). */
  snapshotEveryCommits?: number;
  snapshotEveryLogBytes?: number;
  /** One line per notable recovery / snapshot event. */
  report?: (message: string) => void;
  /** Test-only: make the n-th log write or sync fail. */
  faultInjection?: { failWriteNumber?: number; failSyncNumber?: number };
  /** Test-only: a smaller log record limit (CommitLogOptions.recordPayloadMaxBytes). */
  recordPayloadMaxBytes?: number;
}

export class DatabaseDurability {
  /** Set once a commit could not be logged or synced; the database then refuses every call. */
  failure: DatabaseFailedError | undefined;
  private failureListeners: ((failure: DatabaseFailedError) => void)[] = [];

  /** The log's last (shared, per batch) promise and our wrapper of it: one wrapper per group commit, not per call. */
  private lastInner: Promise<void> | undefined;
  private lastOuter: Promise<void> | undefined;

  private constructor(readonly persistence: DatabasePersistence) {}

  /** Opens (creating if needed) `<dir>/clog` and `<dir>/snapshots` and recovers what they hold. */
  static async open(dir: string, options: DurabilityOptions): Promise<{ durability: DatabaseDurability; recovered: RecoveredState | undefined }> {
    const { persistence, recovered } = await DatabasePersistence.open(dir, {
      durability: options.durability ?? durabilityModeDefault,
      snapshotEveryCommits: options.snapshotEveryCommits,
      snapshotEveryLogBytes: options.snapshotEveryLogBytes,
      report: options.report,
      migrate: (old, newSchema) => migrateDatastore(old, newSchema),
      faultInjection: options.faultInjection,
      recordPayloadMaxBytes: options.recordPayloadMaxBytes,
    });
    return { durability: new DatabaseDurability(persistence), recovered };
  }

  /**
   * Logs a program (creation) or, with `reset`, that all data was dropped and the database starts over with it. A
   * program too large for one record is refused (PublishError) before anything is logged.
   */
  recordProgram(program: ProgramInfo, reset: boolean): bigint {
    checkProgramRecordSize(program.programText, program.moduleDef);
    return this.guard(() => reset ? this.persistence.recordReset(program) : this.persistence.recordProgram(program));
  }

  /**
   * Logs one committed transaction (synchronously, right after the in-memory commit) and returns a promise for its
   * durability. Also starts a background snapshot when the policy says so.
   */
  logCommit(txData: TxData, datastore: Datastore, timestampMicros: bigint, client?: ClientChange): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let offset: bigint;
    try {
      offset = this.persistence.recordTx(txData, datastore, timestampMicros, client);
    } catch (err) {
      return Promise.reject(this.fail(err));
    }
    this.persistence.maybeSnapshot(datastore);
    return this.waitDurable(offset);
  }

  /** Resolves once everything up to `offset` is durable; a log failure fails the database. */
  waitDurable(offset: bigint): Promise<void> {
    if (offset <= this.persistence.durableOffset) return Promise.resolve();
    const inner = this.persistence.waitDurable(offset);
    if (inner === this.lastInner) return this.lastOuter!;
    const outer = inner.catch((err: unknown) => { throw this.fail(err); });
    this.lastInner = inner;
    this.lastOuter = outer;
    return outer;
  }

  /**
   * Everything logged so far is durable. Rejects once the database has failed: a commit whose append failed never
   * moved the log's last offset, so waiting for that offset would acknowledge a commit that is not on disk.
   */
  flushed(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return this.waitDurable(this.persistence.lastOffset);
  }

  /**
   * Calls `listener` once when the log fails (at once, asynchronously, when it has failed already). The server uses it
   * to reopen the database from its files.
   */
  onFailure(listener: (failure: DatabaseFailedError) => void): void {
    if (this.failure !== undefined) { const f = this.failure; queueMicrotask(() => listener(f)); return; }
    this.failureListeners.push(listener);
  }

  /**
   * Closes the log; with the datastore of a healthy database, snapshots it first when much log is owed (persistence.ts).
   * A failed database closes without an error (its failure is known) and records its final durable offset in it.
   */
  async close(datastore?: Datastore): Promise<void> {
    const failure = this.failure;
    if (failure === undefined) return this.persistence.close(datastore);
    await this.persistence.close().catch(() => {});
    failure.durableOffset = this.persistence.durableOffset;
  }

  private guard<T>(f: () => T): T {
    if (this.failure !== undefined) throw this.failure;
    try {
      return f();
    } catch (err) {
      throw this.fail(err);
    }
  }

  private fail(err: unknown): DatabaseFailedError {
    if (this.failure !== undefined) return this.failure;
    const failure = new DatabaseFailedError(err instanceof Error ? err : new Error(String(err)));
    this.failure = failure;
    const listeners = this.failureListeners;
    this.failureListeners = [];
    // Not inside the failing call: listeners take the database out of service.
    if (listeners.length > 0) queueMicrotask(() => { for (const l of listeners) l(failure); });
    return failure;
  }
}

/**
 * Before a failed database is opened again: cuts its log (`<dir>/clog`) back to the last offset that was on disk when
 * it was closed, since what follows was never acknowledged and may exist in the page cache only. Returns what it
 * changed, one line each. Throws when the log cannot be cut (the disk still fails): then it must not be opened yet.
 */
export function discardUnacknowledged(dir: string, failure: DatabaseFailedError): string[] {
  assert(failure.durableOffset !== undefined, 'discardUnacknowledged before the failed database was closed');
  if (failure.durableOffset < 0n) return [];
  return cutLogAfter(join(dir, 'clog'), failure.durableOffset);
}
