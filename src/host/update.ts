// host/update.ts — module updates of a live database: load the new module beside the old one, plan, build the
// migrated state, and hand the Database everything it swaps in one step.
//
// Owns: loading a program into a fresh isolate with its own syscall host (`loadModule`), the update plan as the
// server and CLI see it (`planModuleUpdate`: AutoMigrate with the printed plan, or ManualMigrate with reasons), the
// migrate-token hash (client-protocol §5.2) and the typed errors of an update. Replay of an update in the commit log
// calls datastore/migrate directly (host/recovery.ts), the same code as the live path.
// May call: host/program, host/runtime, host/syscalls, host/reducers, host/errors, host/recovery (the program record
// size check), datastore (schema, migrate), sats, limits (moduleNameCharsMax).
//
// The Database (host/database.ts `update`) runs the swap inside its FIFO call queue, so no call observes a half
// update; everything built here is discarded when any step fails, and the old module keeps serving.

import { blake3 } from '@noble/hashes/blake3.js';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildDatabaseSchema } from '../datastore/schema.js';
import { formatPlan, formatReasons, planMigration, type MigrationPlan } from '../datastore/migrate.js';
import type { DatabaseSchema } from '../datastore/types.js';
import { decodeRawModuleDef, type RawModuleDefV10 } from '../sats/moduledef.js';
import { messageOf, PublishError } from './errors.js';
import { prepareProgram } from './program.js';
import { ReducerCatalog } from './reducers.js';
import { checkProgramRecordSize } from './recovery.js';
import { ModuleRuntime, type RuntimeLimits } from './runtime.js';
import { SyscallHost, type SyscallEnv } from './syscalls.js';
import { moduleNameCharsMax } from '../limits.js';

export { formatPlan, type MigrationPlan } from '../datastore/migrate.js';

/** A program evaluated in its own isolate, described, its schema built; not yet serving. */
export interface LoadedModule {
  /** sha256 of the program text (host/program.ts). */
  programHash: string;
  programText: string;
  host: SyscallHost;
  runtime: ModuleRuntime;
  defBytes: Uint8Array;
  def: RawModuleDefV10;
  schema: DatabaseSchema;
  reducers: ReducerCatalog;
}

/** What the running module looks like (the "old" side of a plan). */
export interface RunningModule {
  def: RawModuleDefV10;
  schema: DatabaseSchema;
}

export type UpdatePlan =
  | { kind: 'auto'; plan: MigrationPlan; planText: string }
  | { kind: 'manual'; reason: string };

/** How the publisher allowed the update (PUT …?policy=BreakClients&token=…). */
export interface UpdateOptions {
  /** True when the publisher accepted a plan that disconnects every client. */
  breakClients: boolean;
  /** Who published (for the migration history). */
  publisher?: bigint;
}

export interface UpdateResult {
  plan: MigrationPlan;
  planText: string;
  programHash: string;
}

/** The update was refused or failed; the old module is still serving. The message is upstream's 400 text. */
export class UpdateRejectedError extends Error {
  constructor(reason: string) {
    super(`Database update rejected: ${reason}`);
    this.name = 'UpdateRejectedError';
  }
}

/**
 * Evaluates `program` in a new isolate with its own syscall host (env callbacks reach the live Database) and builds
 * its schema. Throws PublishError; on failure the isolate is disposed.
 */
export async function loadModule(
  program: string, limits: RuntimeLimits, env: (current: () => ModuleRuntime | undefined) => SyscallEnv,
): Promise<LoadedModule> {
  const prepared = await prepareProgram(program);
  let runtime: ModuleRuntime | undefined;
  const host = new SyscallHost(env(() => runtime));
  runtime = ModuleRuntime.create(prepared, host, limits);
  try {
    const defBytes = runtime.describe().slice();
    checkProgramRecordSize(program, defBytes); // refused now: after the swap its Program record must fit the log
    try {
      const def = decodeRawModuleDef(defBytes);
      checkModuleNames(def);
      const schema = buildDatabaseSchema(def);
      const reducers = new ReducerCatalog(def);
      return { programHash: prepared.hash, programText: program, host, runtime, defBytes, def, schema, reducers };
    } catch (err) {
      throw new PublishError(`invalid module: ${messageOf(err)}`);
    }
  } catch (err) {
    runtime.dispose();
    throw err;
  }
}

/**
 * Throws when a name in `def` is longer than `moduleNameCharsMax` (limits.ts says why). Every string of the definition
 * is a name except RLS filters' SQL and HTTP route paths. Checked for new programs only: a database accepted before
 * the limit still opens.
 */
export function checkModuleNames(def: RawModuleDefV10): void {
  const pending: unknown[] = [def];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (value.length > moduleNameCharsMax) {
        throw new Error(`the name \`${value.slice(0, 40)}…\` is ${value.length} characters long, over the limit ` +
          `moduleNameCharsMax = ${moduleNameCharsMax}`);
      }
    } else if (Array.isArray(value)) {
      for (const v of value) pending.push(v);
    } else if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
      for (const [key, v] of Object.entries(value)) if (key !== 'sql' && key !== 'path') pending.push(v);
    }
  }
}

/** Plans the update from the running module to `next` (pre_publish and PUT share this). */
export function planModuleUpdate(running: RunningModule, next: { def: RawModuleDefV10; schema: DatabaseSchema }): UpdatePlan {
  const result = planMigration(running, next);
  if (result.kind === 'manual') return { kind: 'manual', reason: formatReasons(result.reasons) };
  return { kind: 'auto', plan: result.plan, planText: formatPlan(result.plan) };
}

/**
 * Upstream's guard token: a hash of (database identity hex, old program hash, new program hash) so a plan approved
 * at pre_publish is the plan applied. A UX check, not a secret. Rendered as `0x` + 64 hex digits.
 */
export function migrationToken(databaseIdentityHex: string, oldProgramHash: string, newProgramHash: string): string {
  const digest = blake3(new TextEncoder().encode(databaseIdentityHex + oldProgramHash + newProgramHash));
  return `0x${Buffer.from(digest).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Migration history (beyond upstream): one NDJSON line per publish in `<database dir>/migrations.ndjson`.

export const migrationHistoryFileName = 'migrations.ndjson';

export interface MigrationHistoryEntry {
  /** µs since the Unix epoch. */
  tsMicros: bigint;
  publisher: bigint;
  /** Hash of the program published (control data's program hash). */
  programHash: string;
  op: 'created' | 'updated' | 'cleared';
  /** The printed plan (updates), empty otherwise. */
  plan: string;
}

/** Appends one entry, synchronously flushed to the OS (publishes are rare). */
export async function appendMigrationHistory(dir: string, entry: MigrationHistoryEntry): Promise<void> {
  const line = JSON.stringify({
    ts_micros: entry.tsMicros.toString(), publisher: entry.publisher.toString(16).padStart(64, '0'),
    program_hash: entry.programHash, op: entry.op, plan: entry.plan,
  });
  await appendFile(join(dir, migrationHistoryFileName), `${line}\n`);
}

/** Every entry, oldest first (an absent file is an empty history; a torn last line is skipped). */
export async function readMigrationHistory(dir: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(join(dir, migrationHistoryFileName), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try { out.push(JSON.parse(line)); } catch { /* torn tail */ }
  }
  return out;
}
