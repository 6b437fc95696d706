// host/procedures.ts — procedures (host-abi §6.2): the catalogue of a module's procedures, the per-call limits of
// the non-reducer call kinds, and the anonymous transactions procedures and HTTP handlers open with `withTx`.
//
// Owns: procedure ids (same scheme as reducers: root first, then submodules depth-first), canonical names,
// parameter and return codecs; the anonymous-transaction state machine (start → commit | abort, errno 17 / 18);
// the server-wide limits read from the environment (documented in docs/module-features-a.md).
// May call: sats (moduledef, codec, names, json), datastore/types, host/errors, limits (limitFromEnv).

import { compileCodec, type Codec } from '../sats/codec.js';
import { moduleDefSections, type RawModuleDefV10 } from '../sats/moduledef.js';
import { clientTypespace } from '../sats/names.js';
import type { AlgebraicType, ProductType, Typespace } from '../sats/types.js';
import type { MutTx } from '../datastore/types.js';
import { functionNamer } from './reducers.js';
import { SyscallError } from './syscalls.js';
import { limitFromEnv, scheduleRowsPerDatabaseMax } from '../limits.js';

/**
 * Wall time one procedure call may take, including its outbound HTTP waits (outbound requests are clamped to the
 * time left, so a slow server fails the fetch before the procedure is stopped). 0 disables the limit.
 */
export const procedureTimeoutMsDefault = 30_000;
/** Wall time one HTTP handler call may take. */
export const httpHandlerTimeoutMsDefault = 30_000;
/** Request body a module HTTP route accepts; larger bodies get 413. */
export const httpHandlerBodyMaxBytesDefault = 4 * 1024 * 1024;

/** errno values of the procedure syscalls (host-abi §3.3). */
export const procErrno = { wouldBlockTransaction: 17, transactionNotAnonymous: 18, httpError: 21 } as const;

export interface ProcedureInfo {
  id: number;
  /** Canonical (wire) name, e.g. `return_value`, `lib.lib_proc`. */
  name: string;
  sourceName: string;
  params: ProductType;
  paramsType: AlgebraicType;
  argsCodec: Codec;
  returnType: AlgebraicType;
  returnCodec: Codec;
  typespace: Typespace;
  /** Private and scheduled procedures: only the owner may call them (others: "no such procedure", as upstream). */
  ownerOnly: boolean;
}

export class ProcedureCatalog {
  readonly all: ProcedureInfo[] = [];
  private readonly byName = new Map<string, ProcedureInfo>();

  constructor(def: RawModuleDefV10) {
    this.addModule(def, '');
  }

  get(name: string): ProcedureInfo | undefined {
    return this.byName.get(name);
  }

  private addModule(def: RawModuleDefV10, prefix: string): void {
    const s = moduleDefSections(def);
    const canonicalName = functionNamer(s);
    // Argument and return values cross as SATS-JSON with the names clients see (upstream's converted typespace).
    const typespace = clientTypespace(s.typespace, s.caseConversionPolicy.tag === 'SnakeCase');
    const scheduled = new Set(s.schedules.map((x) => x.functionName));
    for (const p of s.procedures) {
      const canonical = canonicalName(p.sourceName);
      const paramsType: AlgebraicType = { tag: 'Product', value: p.params };
      const info: ProcedureInfo = {
        id: this.all.length,
        name: prefix + canonical,
        sourceName: prefix + p.sourceName,
        params: p.params,
        paramsType,
        argsCodec: compileCodec(paramsType, typespace),
        returnType: p.returnType,
        returnCodec: compileCodec(p.returnType, typespace),
        typespace,
        ownerOnly: p.visibility.tag !== 'ClientCallable' || scheduled.has(p.sourceName),
      };
      this.all.push(info);
      this.byName.set(info.name, info);
      if (!this.byName.has(info.sourceName)) this.byName.set(info.sourceName, info);
    }
    for (const sub of s.submodules) this.addModule(sub.module, `${prefix}${sub.namespace}.`);
  }
}

export type ProcedureCallResult =
  | { status: 'returned'; value: Uint8Array; timestampMicros: bigint; durationMicros: bigint }
  | { status: 'internal'; message: string };


/** How the anonymous transaction of a `withTx` reaches the Database (its datastore and its commit path). */
export interface AnonTxHost {
  begin(): MutTx;
  /** Commits through the Database's commit path (subscriptions, scheduler, durability), caller = `sender`. */
  commit(tx: MutTx, sender: bigint, timestampMicros: bigint): void;
  nowMicros(): bigint;
}

/**
 * The anonymous transaction of the procedure or handler call in progress. One per Database; the syscall host asks it
 * whether a transaction is open (so HTTP inside `withTx` fails with 17).
 */
export class AnonTx {
  tx: MutTx | undefined;
  private sender = 0n;
  private timestampMicros = 0n;
  /** True while a procedure or handler call runs (outside one, start_mut_tx is refused). */
  active = false;

  constructor(private readonly host: AnonTxHost) {}

  /** Called around a procedure / handler call: `sender` is the caller (zero for handlers). */
  enter(sender: bigint): void {
    this.active = true;
    this.sender = sender;
  }

  /** After the call: a transaction the module left open (trap, or a body that never returned) is rolled back. */
  leave(): void {
    this.active = false;
    const tx = this.tx;
    this.tx = undefined;
    if (tx !== undefined) tx.rollback();
  }

  start(otherTxOpen: boolean): { tx: MutTx; timestampMicros: bigint } {
    if (this.tx !== undefined || otherTxOpen) {
      throw new SyscallError(procErrno.wouldBlockTransaction, 'a transaction is already open');
    }
    if (!this.active) throw new SyscallError(procErrno.wouldBlockTransaction, 'not inside a procedure');
    const tx = this.host.begin();
    this.tx = tx;
    this.timestampMicros = this.host.nowMicros();
    return { tx, timestampMicros: this.timestampMicros };
  }

  commit(): void {
    const tx = this.take();
    this.host.commit(tx, this.sender, this.timestampMicros);
  }

  abort(): void {
    this.take().rollback();
  }

  private take(): MutTx {
    const tx = this.tx;
    if (tx === undefined) {
      throw new SyscallError(procErrno.transactionNotAnonymous, 'no anonymous transaction is open');
    }
    this.tx = undefined;
    return tx;
  }
}

export interface FeatureLimits {
  procedureTimeoutMs: number;
  httpHandlerTimeoutMs: number;
  httpHandlerBodyMaxBytes: number;
  /** limits.ts scheduleRowsPerDatabaseMax, overridable for tests (`SPACETIME_SCHEDULE_ROWS_MAX`). */
  scheduleRowsPerDatabaseMax: number;
}

/**
 * Server-wide limits for procedures and handlers: `SPACETIME_PROCEDURE_TIMEOUT_MS`, `SPACETIME_HTTP_HANDLER_TIMEOUT_MS`,
 * `SPACETIME_HTTP_HANDLER_BODY_MAX_BYTES`, `SPACETIME_SCHEDULE_ROWS_MAX` override the defaults (bad values are refused loudly).
 */
export function featureLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): FeatureLimits {
  return {
    procedureTimeoutMs: limitFromEnv('SPACETIME_PROCEDURE_TIMEOUT_MS', procedureTimeoutMsDefault, env),
    httpHandlerTimeoutMs: limitFromEnv('SPACETIME_HTTP_HANDLER_TIMEOUT_MS', httpHandlerTimeoutMsDefault, env),
    httpHandlerBodyMaxBytes: limitFromEnv('SPACETIME_HTTP_HANDLER_BODY_MAX_BYTES', httpHandlerBodyMaxBytesDefault, env),
    scheduleRowsPerDatabaseMax: limitFromEnv('SPACETIME_SCHEDULE_ROWS_MAX', scheduleRowsPerDatabaseMax, env),
  };
}

