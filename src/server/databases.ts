// server/databases.ts — the live databases of this server and every operation that changes which exist.
//
// Owns: the map identity → open HostedDatabase, publish (create / update / clear), delete, rename, lock, reopening
// everything at start (and removing orphan directories), and reopening a database whose commit log failed. Serializes
// all these control operations through one queue so name checks and the writes that depend on them cannot interleave
// (publishes are rare; reducer calls do not go through it).
//
// Opening at start (issue 12, "restart waits"): the server listens once control data is loaded and orphans are removed
// (`prepareOpening`); databases then open in the background (`openInBackground`), `databasesOpenedAtOnceMax` at a
// time, smallest on disk first (a replay takes time in proportion to its snapshot and log: 10M rows, 6.5 s), and one
// a request waits for goes next. Whatever is addressed to a database still opening waits for its open (`get`, and
// every control operation on it before it enters the queue, so none races the open), at most `openWaitMs`,
// then gets 503 saying so. Other databases, and everything that needs none, are served meanwhile.
// May call: server/control.ts, server/program-hash.ts, server/host-api.ts (the host's Database), server/config-file.ts
// (the publish policy), auth/identity.ts, host/recovery.ts (discardUnacknowledged), host/memory-guard.ts (new databases
// and updates refused at the memory bound), durability/backup.ts (hot backup, restore), limits.ts, node:fs.
//
// Which program a database runs is decided by its own commit log (the Program/Reset record commits an update or a
// reset); control data's program hash is written after it and, after a crash in between, made to follow the log at
// start (`followLoggedProgram`), so the answer a publisher got, the program that runs and the stored hash agree.
//
// Resuming after a commit log failure (host/recovery.ts): a database whose log failed refuses every call. The
// registry then retries, with backoff (limits.ts databaseResume*), to take it out of service (its WebSocket clients and
// log followers are closed), cut its log back to what was on disk, and open it from its files like at start; the new
// Database replaces the failed one. Each attempt first probes the disk with a small synced write, so a disk that is
// still full costs a probe, not a replay. Nothing of the failed in-memory state survives: memory was ahead of disk.
//
// Migration hook: `planUpdate` decides what an update to an existing database means. Today it only knows
// "identical program" (no-op) and "anything else" (ManualMigrate, rejected); the migration issue replaces it.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, open as openFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { identityFromHex, identityToHex } from '../auth/identity.js';
import { ControlStore, newDatabaseIdentity, type DatabaseRecord } from './control.js';
import { programHash } from './program-hash.js';
import type { CreateDatabaseOptions, DatabaseHost, HostedDatabase } from './host-api.js';
import { HttpError } from './http.js';
import { publishRefusal, type PublishPolicy } from './config-file.js';
import { appendMigrationHistory, migrationToken } from '../host/update.js';
import { discardUnacknowledged, type DatabaseFailedError } from '../host/recovery.js';
import { memoryRefusal } from '../host/memory-guard.js';
import { readBackup, restoreInto, writeBackup, BackupDamagedError } from '../durability/backup.js';
import {
  databaseOpenWaitMsConfigured, databaseResumeProbeBytes, databaseResumeRetryFirstMs, databaseResumeRetryMaxMs,
  databaseResumeStableMs,
  databasesMaxConfigured, databasesOpenedAtOnceMax, databasesPerIdentityMaxConfigured,
} from '../limits.js';

export const lockedDeleteMessage = 'Database is locked and cannot be deleted. Run `spacetime unlock` first.';
export const lockedResetMessage = 'Database is locked and cannot be reset with --delete-data. Run `spacetime unlock` first.';
export const noSuchDatabaseMessage = 'No such database.';

export type UpdatePlan =
  | { kind: 'identical' }
  | { kind: 'manual'; reason: string }
  | { kind: 'auto'; planText: string; breaksClients: boolean };

/** How the publisher allowed an update (PUT …?policy=BreakClients&token=…); absent policy = Compatible. */
export interface UpdatePolicy { breakClients: boolean; token: string | undefined }

export interface PublishOutcome {
  record: DatabaseRecord;
  op: 'created' | 'updated';
}

/** A database whose commit log failed, on its way back (see the header). */
interface Resume {
  failed: HostedDatabase;
  failure: DatabaseFailedError;
  /** Attempts so far: the next waits databaseResumeRetryFirstMs · 2^attempts, at most databaseResumeRetryMaxMs. */
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  /** When it was last reopened (a failure soon after keeps the backoff). */
  resumedAtMs: number | undefined;
}

/** A database of control data whose open at start has not ended (see "Opening at start" in the header). */
interface Opening {
  record: DatabaseRecord;
  /** Bytes of its commit log and snapshots, known once measured: the smaller opens first. */
  bytes: number;
  /** A request waits for it: it opens before every database nobody waits for. */
  wanted: boolean;
  /** Resolves (never rejects) once it is served or broken. */
  done: Promise<void>;
  finish(): void;
}

/** The close reason WebSocket clients of a database being reopened get (fits the 123 bytes of a close reason). */
export const reopenedCloseReason = 'the database is being reopened after a commit log failure; reconnect';

export class DatabaseRegistry {
  private readonly live = new Map<bigint, HostedDatabase>();
  private readonly resumes = new Map<bigint, Resume>();
  /** Databases that failed to open at start (e.g. a corrupt commit log): identity → why. Their routes answer 503. */
  private readonly broken = new Map<bigint, string>();
  private readonly closeListeners = new Map<bigint, Set<(reason?: string) => void>>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Databases whose open at start has not ended, and of those the ones not started yet, in the order they open. */
  private readonly opening = new Map<bigint, Opening>();
  private notStarted: Opening[] = [];
  /** The background opening at start; settles when every open has ended. */
  private opens: Promise<void> = Promise.resolve();
  /** Who may create databases (config.toml [publish], `--allow-publish`); set by startServer. Default: anyone. */
  publishPolicy: PublishPolicy = { anyone: true, identities: new Set(), issuers: new Set() };
  /** Databases this server holds at most (limits.ts `databasesMaxDefault`); a publish or restore past it is refused. */
  databasesMax = databasesMaxConfigured();
  /** Databases one identity owns at most (limits.ts `databasesPerIdentityMaxDefault`); past it its new ones are refused. */
  databasesPerIdentityMax = databasesPerIdentityMaxConfigured();
  /** How long what is addressed to a database still opening at start waits for it (limits.ts `databaseOpenWaitMsDefault`). */
  openWaitMs = databaseOpenWaitMsConfigured();

  constructor(
    readonly control: ControlStore,
    private readonly host: DatabaseHost,
    private readonly dataDir: string,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * The open Database behind a record, once its open at start has ended: 503 with why when it is not running (it
   * failed to open, or is being reopened), or when it is still opening after `openWaitMs`.
   */
  async get(record: DatabaseRecord): Promise<HostedDatabase> {
    await this.whenOpened(record);
    return this.running(record);
  }

  private running(record: DatabaseRecord): HostedDatabase {
    const db = this.live.get(record.identity);
    if (db === undefined) {
      const why = this.broken.get(record.identity);
      throw new HttpError(503, `Database ${identityToHex(record.identity)} is not running${why === undefined ? '' : `: ${why}`}`);
    }
    return db;
  }

  /** Every open database (GET /v1/metrics reads them when scraped). */
  liveEntries(): IterableIterator<[bigint, HostedDatabase]> {
    return this.live.entries();
  }

  /**
   * Calls `listener` once when the database with this identity is closed (deleted, reset, reopened, server shutdown).
   * Returns the unsubscribe function. Used by log follows and WebSocket sessions.
   */
  onClose(identity: bigint, listener: (reason?: string) => void): () => void {
    let listeners = this.closeListeners.get(identity);
    if (listeners === undefined) this.closeListeners.set(identity, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.closeListeners.get(identity) === listeners) this.closeListeners.delete(identity);
    };
  }

  /** Takes a database out of service: stops routing to it, tells the listeners (with why, if given), closes it. */
  private async retire(identity: bigint, reason?: string): Promise<void> {
    const db = this.live.get(identity);
    this.live.delete(identity);
    const listeners = this.closeListeners.get(identity);
    this.closeListeners.delete(identity);
    for (const listener of listeners ?? []) listener(reason);
    await db?.close();
  }

  /** Puts an open database into service and watches its commit log for a failure. */
  private serve(identity: bigint, db: HostedDatabase): void {
    this.live.set(identity, db);
    db.onFailure?.((failure) => this.failed(identity, db, failure));
  }

  /** The log of a live database failed: schedule its reopening (see the header). */
  private failed(identity: bigint, db: HostedDatabase, failure: DatabaseFailedError): void {
    if (this.live.get(identity) !== db) return;
    const previous = this.resumes.get(identity);
    const flapping = previous?.resumedAtMs !== undefined && Date.now() - previous.resumedAtMs < databaseResumeStableMs;
    const resume: Resume = { failed: db, failure, attempts: flapping ? previous.attempts : 0, timer: undefined, resumedAtMs: undefined };
    this.cancelResume(identity);
    this.resumes.set(identity, resume);
    this.log(`database ${identityToHex(identity)}: ${failure.message}; it refuses calls until it is reopened from its files ` +
      `(first attempt in ${this.resumeDelayMs(resume)} ms)`);
    this.scheduleResume(identity, resume);
  }

  private resumeDelayMs(resume: Resume): number {
    return Math.min(databaseResumeRetryFirstMs * 2 ** resume.attempts, databaseResumeRetryMaxMs);
  }

  private scheduleResume(identity: bigint, resume: Resume): void {
    resume.timer = setTimeout(() => {
      resume.timer = undefined;
      void this.serialized(() => this.tryResume(identity, resume));
    }, this.resumeDelayMs(resume));
    resume.timer.unref();
  }

  private cancelResume(identity: bigint): void {
    const resume = this.resumes.get(identity);
    if (resume?.timer !== undefined) clearTimeout(resume.timer);
    this.resumes.delete(identity);
  }

  /** One attempt (inside the control queue): probe, take the failed database out of service, cut, open. */
  private async tryResume(identity: bigint, resume: Resume): Promise<void> {
    if (this.resumes.get(identity) !== resume) return; // deleted, reset or failed again meanwhile
    const record = this.control.byIdentity(identity);
    const current = this.live.get(identity);
    if (record === undefined || (current !== undefined && current !== resume.failed)) { this.resumes.delete(identity); return; }
    const hex = identityToHex(identity);
    const dir = this.databaseDir(identity);
    try {
      await probeDisk(dir);
      if (current !== undefined) {
        this.broken.set(identity, `${resume.failure.message}; it is being reopened from its files`);
        await this.retire(identity, reopenedCloseReason).catch(() => {});
      }
      for (const line of discardUnacknowledged(dir, resume.failure)) this.log(`database ${hex}: commit log: ${line}`);
      const db = await this.openFromFiles(record);
      this.broken.delete(identity);
      resume.resumedAtMs = Date.now();
      this.serve(identity, db);
      this.log(`database ${hex}: reopened from its files after the commit log failure (attempt ${resume.attempts + 1}; ` +
        `the log ends at offset ${resume.failure.durableOffset})`);
    } catch (error) {
      resume.attempts++;
      const message = `${resume.failure.message}; reopening failed: ${(error as Error).message}`;
      if (!this.live.has(identity)) this.broken.set(identity, message);
      this.log(`database ${hex}: ${message} (attempt ${resume.attempts}; next in ${this.resumeDelayMs(resume)} ms)`);
      this.scheduleResume(identity, resume);
    }
  }

  /** A record by name or identity, or 404 "No such database.". */
  resolve(nameOrIdentity: string): DatabaseRecord {
    const record = this.control.resolve(nameOrIdentity);
    if (record === undefined) throw new HttpError(404, noSuchDatabaseMessage);
    return record;
  }

  /**
   * Recovery of a recorded database from its own directory (snapshot + commit log); init does not run again. A host
   * without `open` (test doubles) can only re-create.
   */
  private async openFromFiles(record: DatabaseRecord): Promise<HostedDatabase> {
    const program = await this.control.loadProgram(record.programHash);
    const options = this.optionsFor(record.identity, record.ownerIdentity);
    return this.host.open !== undefined ? await this.host.open(options, program) : await this.host.create(options, program);
  }

  /**
   * Server start, before it listens: removes orphan directories and marks every database of control data as opening,
   * so whatever is addressed to one waits for `openInBackground`.
   */
  async prepareOpening(): Promise<void> {
    await this.removeOrphans();
    for (const record of this.control.all()) {
      let finish!: () => void;
      const done = new Promise<void>((resolve) => (finish = resolve));
      const opening: Opening = { record, bytes: 0, wanted: false, done, finish };
      this.opening.set(record.identity, opening);
      this.notStarted.push(opening);
    }
  }

  /**
   * Server start, once it listens (a server that cannot listen opens nothing): opens the databases `prepareOpening`
   * marked, in the background (see "Opening at start" in the header). One that fails to open is logged and served as
   * broken. `databasesOpenedAtOnceMax` open at a time: in worker mode each open starts a thread and loads the host in it
   * (~0.5 s of CPU), so opening one after another took 10-13 s for 10 databases against 4.7 s in-thread.
   */
  openInBackground(): void {
    this.opens = this.openAllMarked();
  }

  private async openAllMarked(): Promise<void> {
    await Promise.all(this.notStarted.map(async (o) => { o.bytes = await bytesOnDisk(this.databaseDir(o.record.identity)); }));
    this.notStarted.sort((a, b) => Number(b.wanted) - Number(a.wanted) || a.bytes - b.bytes);
    const opener = async () => {
      for (let o = this.notStarted.shift(); o !== undefined; o = this.notStarted.shift()) await this.openAtStart(o);
    };
    await Promise.all(Array.from({ length: Math.min(databasesOpenedAtOnceMax, this.notStarted.length) }, opener));
  }

  /**
   * Opens and serves one database at start, or serves it as broken when it cannot be opened. Control data then follows
   * its log, through the queue (the control file is rewritten whole), before anyone waiting for the database is let
   * in: a request answered by the database never sees control data name another program than the one that runs.
   */
  private async openAtStart(opening: Opening): Promise<void> {
    const { record } = opening;
    try {
      const db = await this.openFromFiles(record);
      this.serve(record.identity, db);
      await this.serialized(() => this.followLoggedProgram(record.identity, db)).catch((error: unknown) => {
        this.log(`database ${identityToHex(record.identity)}: could not update control data to its logged program: ${(error as Error).message}`);
      });
    } catch (error) {
      const message = (error as Error).message;
      this.broken.set(record.identity, message);
      // Damage is never repaired by the server (it could drop acknowledged transactions): say where to look.
      const hint = (error as Error).name === 'CommitLogCorruptError'
        ? `; inspect it with \`spacetime debug log ${this.databaseDir(record.identity)}\` (docs/durability.md: damaged logs)` : '';
      this.log(`failed to open database ${identityToHex(record.identity)}: ${message}${hint}`);
    } finally {
      this.opening.delete(record.identity);
      opening.finish();
    }
  }

  /**
   * Returns once `record`'s open at start has ended (at once when it has), moving it ahead of the databases nobody waits
   * for; 503 naming the database and the limit when that takes over `openWaitMs`.
   */
  private async whenOpened(record: DatabaseRecord): Promise<void> {
    const opening = this.opening.get(record.identity);
    if (opening === undefined) return;
    const at = this.notStarted.indexOf(opening);
    if (!opening.wanted && at >= 0) {
      this.notStarted.splice(at, 1);
      const firstUnwanted = this.notStarted.findIndex((o) => !o.wanted);
      this.notStarted.splice(firstUnwanted < 0 ? this.notStarted.length : firstUnwanted, 0, opening);
    }
    opening.wanted = true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), this.openWaitMs); });
    const outcome = await Promise.race([opening.done, late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      throw new HttpError(503, `Database ${identityToHex(record.identity)} is still opening (replaying its snapshot and commit ` +
        `log since the server started); this request waited ${this.openWaitMs} ms, the server's limit ` +
        '(SPACETIME_DATABASE_OPEN_WAIT_MS): try again later');
    }
  }

  /** A control operation on `record`'s database: after its open at start (so it never races it), in the queue. */
  private serializedOn<T>(record: DatabaseRecord, operation: () => Promise<T>): Promise<T> {
    return this.whenOpened(record).then(() => this.serialized(operation));
  }

  /**
   * A crash during create (between making the directory and writing the control record) leaves a database directory
   * that no record names: nothing refers to it and no publisher was answered, so it is removed (logged). Runs once
   * control data is loaded and before anything can create a database; only identity-named directories are touched.
   */
  private async removeOrphans(): Promise<void> {
    const root = join(this.dataDir, 'databases');
    let names: string[];
    try {
      names = await readdir(root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      const identity = identityFromHex(name);
      if (identity === undefined || this.control.byIdentity(identity) !== undefined) continue;
      await rm(join(root, name), { recursive: true, force: true });
      this.log(`removed orphan database directory ${join(root, name)}: no database in control data has identity ${name} ` +
        '(left by a create that did not finish)');
    }
  }

  /**
   * The database's own log is the single source of truth for its program: an update or reset is committed by its
   * Program/Reset record, and control data is written after it. A crash between the two leaves control data naming
   * the previous program; the publisher got no answer then, so the logged program stands and control data follows it.
   */
  private async followLoggedProgram(identity: bigint, db: HostedDatabase): Promise<void> {
    const record = this.control.byIdentity(identity);
    const text = db.loggedProgramText?.();
    if (record === undefined || this.live.get(identity) !== db || text === undefined) return;
    const hash = await programHash(text);
    if (hash === record.programHash) return;
    await this.control.storeProgram(text, hash);
    await this.control.update({ ...record, programHash: hash });
    await this.control.dropProgramIfUnused(record.programHash);
    this.log(`database ${identityToHex(record.identity)}: its commit log runs program ${hash}, control data named ` +
      `${record.programHash} (a publish interrupted after its commit); control data now names the logged program`);
    await appendMigrationHistory(this.databaseDir(record.identity), {
      tsMicros: BigInt(Date.now()) * 1000n, publisher: record.ownerIdentity, programHash: hash, op: 'updated',
      plan: '(completed at start: the update was committed to the log when the server stopped)',
    }).catch((error: unknown) => this.log(`migration history: ${(error as Error).message}`));
  }

  /** Server shutdown: databases not yet opening stay closed (broken, for waiters), opens under way end, all close. */
  async closeAll(): Promise<void> {
    for (const opening of this.notStarted.splice(0)) {
      this.broken.set(opening.record.identity, 'the server is shutting down');
      this.opening.delete(opening.record.identity);
      opening.finish();
    }
    await this.opens;
    for (const identity of [...this.resumes.keys()]) this.cancelResume(identity);
    await Promise.allSettled([...this.live.keys()].map((identity) => this.retire(identity)));
  }

  /**
   * Decides what publishing `program` over an existing database means (pre_publish; host/update.ts plans). `hash`:
   * the program's (program-hash.ts), which the caller needs for the migration token too.
   */
  async planUpdate(record: DatabaseRecord, program: string, hash: string): Promise<UpdatePlan> {
    if (hash === record.programHash) return { kind: 'identical' };
    const plan = await (await this.get(record)).planUpdate(program).catch((error: unknown) => {
      throw new HttpError(400, `Database update rejected: ${(error as Error)?.message ?? String(error)}`);
    });
    if (plan.kind === 'manual') return plan;
    return { kind: 'auto', planText: plan.planText, breaksClients: plan.plan.breaksClients };
  }

  /** Upstream's migrate token for updating `record` to the program of hash `hash` (pre_publish hands it out, PUT checks it). */
  migrationToken(record: DatabaseRecord, hash: string): string {
    return migrationToken(identityToHex(record.identity), record.programHash, hash);
  }

  /**
   * Publish: create `name` (or an unnamed database) owned by `caller`, or update / clear the existing one.
   * `target` is a validated name, an identity, or undefined for POST /v1/database.
   */
  publish(args: {
    target: { name: string } | { identity: bigint } | undefined; caller: bigint; program: string; clear: boolean;
    policy?: UpdatePolicy; /** The caller's token issuer (`iss`), for the publish policy. */ issuer?: string;
  }): Promise<PublishOutcome> {
    const { target, caller, program, clear } = args;
    const find = () => target === undefined ? undefined
      : 'name' in target ? this.control.byName(target.name) : this.control.byIdentity(target.identity);
    const operation = async (): Promise<PublishOutcome> => {
      const existing = find();
      // Found before the wait or not, it is not opening: a name moves only to a database that has opened (addName,
      // replaceNames, create and restore wait for it or open it first).
      assert.ok(existing === undefined || !this.opening.has(existing.identity), 'a publish never races its database\'s open');
      if (existing === undefined) {
        if (target !== undefined && 'identity' in target) {
          throw new HttpError(404, `Database ${identityToHex(target.identity)} not found`);
        }
        const refusal = publishRefusal(this.publishPolicy, identityToHex(caller), args.issuer);
        if (refusal !== undefined) throw new HttpError(403, refusal);
        this.refuseWhenFull(caller);
        const names = target === undefined ? [] : [target.name];
        return { record: await this.create(newDatabaseIdentity(), caller, names, program), op: 'created' };
      }
      if (existing.ownerIdentity !== caller) {
        const name = existing.names[0] ?? identityToHex(existing.identity);
        throw HttpError.json(401, { PermissionDenied: { name } });
      }
      if (clear) return { record: await this.reset(existing, program), op: 'updated' };
      const hash = await programHash(program);
      if (hash === existing.programHash) return { record: existing, op: 'updated' }; // NoUpdateNeeded
      return { record: await this.update(existing, caller, program, hash, args.policy ?? { breakClients: false, token: undefined }), op: 'updated' };
    };
    const before = find();
    return before === undefined ? this.serialized(operation) : this.serializedOn(before, operation);
  }

  /** A module update in place (host/update.ts): the old module serves until the swap and keeps serving on failure. */
  private async update(record: DatabaseRecord, caller: bigint, program: string, hash: string, policy: UpdatePolicy): Promise<DatabaseRecord> {
    if (policy.breakClients && policy.token !== this.migrationToken(record, hash)) {
      throw new HttpError(400, 'Token provided is invalid: the module or the database changed since `pre_publish`. ' +
        'Run `spacetime publish` again.');
    }
    refuseOverMemory('a module update (it holds the old and the new module, and may rewrite every row) is refused');
    const db = this.running(record);
    let result;
    try {
      result = await db.update(program, { breakClients: policy.breakClients, publisher: caller });
    } catch (error) {
      const message = (error as Error)?.message ?? String(error);
      throw new HttpError(400, message.startsWith('Database update rejected: ') ? message : `Database update rejected: ${message}`);
    }
    // The update is committed (its Program record is durable); control data follows, and a crash before it is
    // completed at the next start (followLoggedProgram).
    const updated: DatabaseRecord = { ...record, programHash: await this.control.storeProgram(program, hash) };
    await this.control.update(updated);
    if (updated.programHash !== record.programHash) await this.control.dropProgramIfUnused(record.programHash);
    await appendMigrationHistory(this.databaseDir(record.identity), {
      tsMicros: BigInt(Date.now()) * 1000n, publisher: caller, programHash: updated.programHash, op: 'updated', plan: result.planText,
    }).catch((error: unknown) => this.log(`migration history: ${(error as Error).message}`));
    return updated;
  }

  /** PUT …/reset: drop all data and restart from `program` (default: the current one). Owner only, not when locked. */
  resetDatabase(record: DatabaseRecord, caller: bigint, program: string | undefined): Promise<DatabaseRecord> {
    return this.serializedOn(record, async () => {
      const current = this.resolveCurrent(record);
      requireOwner(current, caller);
      return this.reset(current, program ?? (await this.control.loadProgram(current.programHash)));
    });
  }

  /** Deletes a database: closes it, forgets it, removes its files. Owner only; refused while locked. */
  delete(record: DatabaseRecord, caller: bigint): Promise<void> {
    return this.serializedOn(record, async () => {
      const current = this.control.byIdentity(record.identity);
      if (current === undefined) return; // already gone: deleting is idempotent
      requireOwner(current, caller);
      if (current.locked) throw new HttpError(403, lockedDeleteMessage);
      this.cancelResume(current.identity);
      await this.retire(current.identity);
      this.broken.delete(current.identity);
      await this.control.remove(current.identity);
      await rm(this.databaseDir(current.identity), { recursive: true, force: true });
      await this.control.dropProgramIfUnused(current.programHash);
    });
  }

  setLocked(record: DatabaseRecord, caller: bigint, locked: boolean): Promise<void> {
    return this.serializedOn(record, async () => {
      const current = this.resolveCurrent(record);
      requireOwner(current, caller);
      if (current.locked !== locked) await this.control.update({ ...current, locked });
    });
  }

  /** Adds one name (POST …/names). The name must be free or already ours. */
  addName(record: DatabaseRecord, caller: bigint, name: string): Promise<void> {
    return this.serializedOn(record, async () => {
      const current = this.resolveCurrent(record);
      requireOwner(current, caller, { PermissionDenied: { domain: name } });
      const holder = this.control.byName(name);
      if (holder !== undefined && holder.identity !== current.identity) throw HttpError.json(401, { PermissionDenied: { domain: name } });
      if (holder === undefined) await this.control.update({ ...current, names: [...current.names, name] });
    });
  }

  /** Replaces the name set (PUT …/names, `spacetime rename`). */
  replaceNames(record: DatabaseRecord, caller: bigint, names: string[]): Promise<void> {
    return this.serializedOn(record, async () => {
      const current = this.resolveCurrent(record);
      requireOwner(current, caller, { NotYourDatabase: { database: identityToHex(current.identity) } });
      for (const name of names) {
        const holder = this.control.byName(name);
        if (holder !== undefined && holder.identity !== current.identity) throw HttpError.json(400, { OtherError: `Name ${name} is already in use.` });
      }
      await this.control.update({ ...current, names: [...new Set(names)] });
    });
  }

  /**
   * A hot backup (durability/backup.ts) of a database the caller owns: the files up to its durable offset, read while
   * it keeps serving. The offset is taken now, between calls; the chunks are produced as the consumer reads them.
   */
  async backup(record: DatabaseRecord, caller: bigint): Promise<{ offset: bigint; chunks: AsyncGenerator<Buffer> }> {
    requireOwner(this.resolveCurrent(record), caller);
    const db = await this.get(record);
    const current = this.resolveCurrent(record);
    const offset = db.durableOffset;
    if (offset === undefined || offset < 0n) throw new HttpError(400, 'This database keeps no commit log: there is nothing to back up');
    const chunks = writeBackup(this.databaseDir(current.identity), offset, {
      databaseIdentity: identityToHex(current.identity), ownerIdentity: identityToHex(current.ownerIdentity), programHash: current.programHash,
    });
    return { offset, chunks };
  }

  /**
   * Creates a database from a backup container (`spacetime restore`): checked whole before anything is written, laid
   * out as a database directory and opened like at start. It keeps the backup's identity when that is free here, and
   * belongs to the caller. Creating is subject to the publish policy, like a publish.
   */
  restore(args: { bytes: Buffer; name: string | undefined; caller: bigint; issuer?: string }): Promise<{ record: DatabaseRecord; offset: bigint }> {
    let parsed: ReturnType<typeof readBackup>;
    try {
      parsed = readBackup(args.bytes);
    } catch (error) {
      if (error instanceof BackupDamagedError) throw new HttpError(400, `The backup is refused: ${error.message}`);
      throw error;
    }
    return this.serialized(async () => {
      const refusal = publishRefusal(this.publishPolicy, identityToHex(args.caller), args.issuer);
      if (refusal !== undefined) throw new HttpError(403, refusal);
      this.refuseWhenFull(args.caller);
      if (args.name !== undefined && this.control.byName(args.name) !== undefined) {
        throw new HttpError(409, `The name ${args.name} is taken: delete that database first or restore under another name`);
      }
      const fromBackup = identityFromHex(parsed.header.databaseIdentity);
      const identity = fromBackup !== undefined && this.control.byIdentity(fromBackup) === undefined ? fromBackup : newDatabaseIdentity();
      const dir = this.databaseDir(identity);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      let db: HostedDatabase | undefined;
      try {
        await restoreInto(dir, parsed);
        const options = this.optionsFor(identity, args.caller);
        db = this.host.open !== undefined ? await this.host.open(options, '') : undefined;
        const text = db?.loggedProgramText?.();
        if (db === undefined || text === undefined) throw new HttpError(400, 'The backup holds no program');
        const record: DatabaseRecord = {
          identity, ownerIdentity: args.caller, hostType: 'Js', programHash: await this.control.storeProgram(text),
          createdMicros: BigInt(Date.now()) * 1000n, names: args.name === undefined ? [] : [args.name], locked: false,
        };
        await this.control.insert(record);
        this.serve(identity, db);
        await appendMigrationHistory(dir, { tsMicros: record.createdMicros, publisher: args.caller, programHash: record.programHash,
          op: 'created', plan: `(restored from a backup of ${parsed.header.databaseIdentity} at offset ${parsed.header.offset})` })
          .catch((error: unknown) => this.log(`migration history: ${(error as Error).message}`));
        this.log(`database ${identityToHex(identity)} restored from a backup of ${parsed.header.databaseIdentity} at offset ${parsed.header.offset}`);
        return { record, offset: BigInt(parsed.header.offset) };
      } catch (error) {
        await db?.close().catch(() => {});
        await rm(dir, { recursive: true, force: true });
        if (error instanceof HttpError) throw error;
        const message = (error as Error)?.message ?? String(error);
        throw new HttpError(400, `The backup is refused: ${error instanceof BackupDamagedError ? message : `it does not open as a database: ${message}`}`);
      }
    });
  }

  /**
   * A new database past `databasesMax`, past `databasesPerIdentityMax` of its owner's, or while the server is at its
   * memory bound, is refused (callers hold `serialized`, so creates cannot race past it).
   */
  private refuseWhenFull(owner: bigint): void {
    const held = this.control.size;
    if (held >= this.databasesMax) {
      throw new HttpError(403, `This server holds ${held} databases, its limit (${this.databasesMax}, set by ` +
        'SPACETIME_DATABASES_MAX): delete a database first, or ask the operator to raise the limit');
    }
    const owned = this.control.ownedBy(owner).length;
    if (owned >= this.databasesPerIdentityMax) {
      throw new HttpError(403, `Identity ${identityToHex(owner)} owns ${owned} databases on this server, the limit for one ` +
        `identity (databasesPerIdentityMax = ${this.databasesPerIdentityMax}, set by SPACETIME_DATABASES_PER_IDENTITY_MAX): ` +
        'delete one of them first, or ask the operator to raise the limit');
    }
    refuseOverMemory('a new database is refused');
  }

  private async create(identity: bigint, owner: bigint, names: string[], program: string): Promise<DatabaseRecord> {
    const dir = this.databaseDir(identity);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    let db: HostedDatabase;
    try {
      db = await this.host.create({ identity, ownerIdentity: owner, dir }, program);
    } catch (error) {
      // Nothing is stored for a module that fails to publish (upstream `fail_initial_publish`).
      await rm(dir, { recursive: true, force: true });
      throw publishFailed(error);
    }
    try {
      const record: DatabaseRecord = {
        identity, ownerIdentity: owner, hostType: 'Js', programHash: await this.control.storeProgram(program),
        createdMicros: BigInt(Date.now()) * 1000n, names, locked: false,
      };
      await this.control.insert(record);
      this.serve(identity, db);
      await appendMigrationHistory(dir, { tsMicros: record.createdMicros, publisher: owner, programHash: record.programHash, op: 'created', plan: '' })
        .catch((error: unknown) => this.log(`migration history: ${(error as Error).message}`));
      return record;
    } catch (error) {
      await db.close();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * `clear=true`: validate the new program in a scratch database first (so a broken module leaves the old one
   * untouched), then drop all data and start the same identity from the new program.
   */
  private async reset(record: DatabaseRecord, program: string): Promise<DatabaseRecord> {
    if (record.locked) throw new HttpError(403, lockedResetMessage);
    const scratchDir = join(this.dataDir, 'tmp', `validate-${randomBytes(8).toString('hex')}`);
    await mkdir(scratchDir, { recursive: true });
    try {
      const scratch = await this.host.create({ identity: record.identity, ownerIdentity: record.ownerIdentity, dir: scratchDir }, program);
      await scratch.close();
    } catch (error) {
      throw publishFailed(error);
    } finally {
      await rm(scratchDir, { recursive: true, force: true });
    }
    this.cancelResume(record.identity);
    await this.retire(record.identity);
    // The directory is kept: the host logs a Reset record (all data dropped, new program) in the same log, so a crash
    // at any point leaves either the old database or the reset one. A broken database is started over from scratch.
    const dir = this.databaseDir(record.identity);
    if (this.broken.delete(record.identity)) await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const db = await this.host.create(this.optionsFor(record.identity, record.ownerIdentity), program).catch((error: unknown) => {
      throw publishFailed(error);
    });
    this.serve(record.identity, db);
    const updated: DatabaseRecord = { ...record, programHash: await this.control.storeProgram(program) };
    await this.control.update(updated);
    if (updated.programHash !== record.programHash) await this.control.dropProgramIfUnused(record.programHash);
    await appendMigrationHistory(dir, { tsMicros: BigInt(Date.now()) * 1000n, publisher: record.ownerIdentity, programHash: updated.programHash, op: 'cleared', plan: '' })
      .catch((error: unknown) => this.log(`migration history: ${(error as Error).message}`));
    return updated;
  }

  private resolveCurrent(record: DatabaseRecord): DatabaseRecord {
    const current = this.control.byIdentity(record.identity);
    if (current === undefined) throw new HttpError(404, noSuchDatabaseMessage);
    return current;
  }

  private optionsFor(identity: bigint, ownerIdentity: bigint): CreateDatabaseOptions {
    return { identity, ownerIdentity, dir: this.databaseDir(identity) };
  }

  databaseDir(identity: bigint): string {
    return join(this.dataDir, 'databases', identityToHex(identity));
  }

  private serialized<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** 403 unless `caller` owns the database; `jsonBody` replaces the plain-text body where upstream answers JSON. */
export function requireOwner(record: DatabaseRecord, caller: bigint, jsonBody?: unknown): void {
  if (record.ownerIdentity === caller) return;
  if (jsonBody !== undefined) throw HttpError.json(401, jsonBody);
  throw new HttpError(403, `Identity does not own database, expected: ${identityToHex(record.ownerIdentity)} got: ${identityToHex(caller)}`);
}

function publishFailed(error: unknown): HttpError {
  assert.ok(error !== undefined);
  if (error instanceof HttpError) return error;
  return new HttpError(500, `Failed to create or update the database: ${(error as Error)?.message ?? String(error)}`);
}

/** Writes and fsyncs databaseResumeProbeBytes in `dir`, then removes them: throws while the disk cannot take a write. */
async function probeDisk(dir: string): Promise<void> {
  const probe = join(dir, 'resume-probe.tmp');
  try {
    const file = await openFile(probe, 'w');
    try {
      await file.writeFile(Buffer.alloc(databaseResumeProbeBytes));
      await file.datasync();
    } finally {
      await file.close();
    }
  } finally {
    await rm(probe, { force: true });
  }
}

/** 503 naming the memory bound while the server is at it (host/memory-guard.ts); `what` says what is refused. */
function refuseOverMemory(what: string): void {
  const refusal = memoryRefusal(what);
  if (refusal !== undefined) throw new HttpError(503, `${refusal[0].toUpperCase()}${refusal.slice(1)}`);
}

/** Bytes of a database's commit log and snapshots (what its open replays); 0 for what cannot be read. */
async function bytesOnDisk(dir: string): Promise<number> {
  let bytes = 0;
  for (const sub of ['clog', 'snapshots']) {
    const names = await readdir(join(dir, sub)).catch(() => [] as string[]);
    for (const name of names) bytes += await stat(join(dir, sub, name)).then((s) => s.size, () => 0);
  }
  return bytes;
}
