// server/control.ts — control data: which databases exist, who owns them, which names point at them.
//
// Owns: `<dataDir>/control/databases.json` (all database records, rewritten atomically on each change) and
// `<dataDir>/control/programs/<blake3 hex>.js` (module programs, content-addressed). Name rules
// (cli-and-publish.md §0). New database identities.
// May call: auth/identity.ts, auth/keys.ts (durable file writes), auth/tokens.ts, server/program-hash.ts, node:fs.
//
// Control data is tiny (a record per database) and changes only on publish/rename/delete/lock, so one JSON file
// rewritten with write-temp/fsync/rename/fsync-dir is both simple and crash-safe: a reader sees the old file or
// the new one, never a mix. Programs are written (durably) before the record that references them.
//
// Database identities: a new database gets `identityFromClaims('localhost', <fresh UUIDv4>)` — the same
// derivation as a server-minted user identity (upstream does this too), so database identities look like every
// other identity (`c200` prefix + checksum) and never collide with a user's in practice.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { identityFromClaims, identityFromHex, identityToHex, isIdentityHex } from '../auth/identity.js';
import { writeFileDurably } from '../auth/keys.js';
import { localIssuer } from '../auth/tokens.js';
import { programHash } from './program-hash.js';

export const controlFileName = 'databases.json';
const controlFormatVersion = 1;

export type HostType = 'Js';

export interface DatabaseRecord {
  identity: bigint;
  ownerIdentity: bigint;
  hostType: HostType;
  /** BLAKE3 of the program text's UTF-8 bytes, 64 hex chars. */
  programHash: string;
  createdMicros: bigint;
  /** Names resolving to this database (usually zero or one). */
  names: string[];
  /** A locked database cannot be deleted or reset. */
  locked: boolean;
}

/** A database name that breaks the naming rule; the message is the upstream text. */
export class DatabaseNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseNameError';
  }
}

/** Checks `^[a-z0-9]+(-[a-z0-9]+)*$` with upstream's error texts; returns the name. */
export function parseDatabaseName(name: string): string {
  if (isIdentityHex(name)) throw new DatabaseNameError('database names cannot be identities');
  if (name.length === 0) throw new DatabaseNameError('database names cannot be empty');
  const isAz09 = (c: string | undefined) => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '-') {
      // No hyphen first, last, or next to another hyphen.
      if (i === 0 || !isAz09(name[i + 1])) throw new DatabaseNameError('invalid hyphen in database name');
    } else if (!isAz09(c)) {
      throw new DatabaseNameError('invalid characters in database name');
    }
  }
  return name;
}

/** A fresh database identity (see the header for why this derivation). */
export function newDatabaseIdentity(): bigint {
  return identityFromClaims(localIssuer, randomUUID());
}

interface StoredRecord {
  identity: string;
  owner_identity: string;
  host_type: HostType;
  program_hash: string;
  created_micros: string;
  names: string[];
  locked: boolean;
}

/** Control data in memory, persisted on every change. Callers serialize mutations (the server's publish lock). */
export class ControlStore {
  private readonly byIdentityHex = new Map<string, DatabaseRecord>();
  private readonly identityByName = new Map<string, bigint>();

  private constructor(readonly controlDir: string) {}

  /** Loads (or initialises) `<dataDir>/control`. */
  static async open(dataDir: string): Promise<ControlStore> {
    const store = new ControlStore(join(dataDir, 'control'));
    await mkdir(join(store.controlDir, 'programs'), { recursive: true });
    let text: string | undefined;
    try {
      text = await readFile(join(store.controlDir, controlFileName), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) store.load(text);
    return store;
  }

  /** How many databases are recorded. */
  get size(): number {
    return this.byIdentityHex.size;
  }

  all(): DatabaseRecord[] {
    return [...this.byIdentityHex.values()];
  }

  byIdentity(identity: bigint): DatabaseRecord | undefined {
    return this.byIdentityHex.get(identityToHex(identity));
  }

  byName(name: string): DatabaseRecord | undefined {
    const identity = this.identityByName.get(name);
    return identity === undefined ? undefined : this.byIdentity(identity);
  }

  /** A 64-hex identity or a name. */
  resolve(nameOrIdentity: string): DatabaseRecord | undefined {
    const identity = identityFromHex(nameOrIdentity);
    return identity !== undefined ? this.byIdentity(identity) : this.byName(nameOrIdentity);
  }

  ownedBy(owner: bigint): DatabaseRecord[] {
    return this.all().filter((record) => record.ownerIdentity === owner);
  }

  async insert(record: DatabaseRecord): Promise<void> {
    assert.ok(!this.byIdentityHex.has(identityToHex(record.identity)), 'database identity already present');
    for (const name of record.names) assert.ok(!this.identityByName.has(name), `name ${name} already taken`);
    this.put(record);
    await this.save();
  }

  /** Replaces a record (same identity) and persists. */
  async update(record: DatabaseRecord): Promise<void> {
    const previous = this.byIdentity(record.identity);
    assert.ok(previous !== undefined, 'update of an unknown database');
    for (const name of previous.names) this.identityByName.delete(name);
    for (const name of record.names) {
      const holder = this.identityByName.get(name);
      assert.ok(holder === undefined, `name ${name} already taken`);
    }
    this.put(record);
    await this.save();
  }

  async remove(identity: bigint): Promise<void> {
    const record = this.byIdentity(identity);
    if (record === undefined) return;
    for (const name of record.names) this.identityByName.delete(name);
    this.byIdentityHex.delete(identityToHex(identity));
    await this.save();
  }

  /** Stores a program (content-addressed, durable) and returns its hash (`known`: computed already by the caller). */
  async storeProgram(program: string, known?: string): Promise<string> {
    const hash = known ?? await programHash(program);
    await writeFileDurably(this.programPath(hash), program);
    return hash;
  }

  async loadProgram(hash: string): Promise<string> {
    return readFile(this.programPath(hash), 'utf8');
  }

  /** Deletes a program file unless some database still uses it. */
  async dropProgramIfUnused(hash: string): Promise<void> {
    if (this.all().some((record) => record.programHash === hash)) return;
    await rm(this.programPath(hash), { force: true });
  }

  private programPath(hash: string): string {
    assert.match(hash, /^[0-9a-f]{64}$/);
    return join(this.controlDir, 'programs', `${hash}.js`);
  }

  private put(record: DatabaseRecord): void {
    this.byIdentityHex.set(identityToHex(record.identity), record);
    for (const name of record.names) this.identityByName.set(name, record.identity);
  }

  private async save(): Promise<void> {
    const databases: StoredRecord[] = this.all().map((record) => ({
      identity: identityToHex(record.identity),
      owner_identity: identityToHex(record.ownerIdentity),
      host_type: record.hostType,
      program_hash: record.programHash,
      created_micros: record.createdMicros.toString(),
      names: record.names,
      locked: record.locked,
    }));
    const text = `${JSON.stringify({ version: controlFormatVersion, databases }, null, 1)}\n`;
    await writeFileDurably(join(this.controlDir, controlFileName), text);
  }

  private load(text: string): void {
    const where = join(this.controlDir, controlFileName);
    const data = JSON.parse(text) as { version?: unknown; databases?: StoredRecord[] };
    if (data.version !== controlFormatVersion || !Array.isArray(data.databases)) {
      throw new Error(`${where}: unsupported control data format (version ${String(data.version)})`);
    }
    for (const stored of data.databases) {
      const identity = identityFromHex(stored.identity);
      const ownerIdentity = identityFromHex(stored.owner_identity);
      if (identity === undefined || ownerIdentity === undefined) throw new Error(`${where}: bad identity in ${JSON.stringify(stored)}`);
      this.put({
        identity,
        ownerIdentity,
        hostType: stored.host_type,
        programHash: stored.program_hash,
        createdMicros: BigInt(stored.created_micros),
        names: stored.names,
        locked: stored.locked,
      });
    }
  }
}
