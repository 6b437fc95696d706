// host/runtime.ts — one module instance: an isolated-vm Isolate + Context with the bootstrap, the synthetic
// `spacetime:sys@2.x` modules, the evaluated bundle and its hooks.
//
// Owns: isolate lifetime (memory limit and its ballast, re-creation after a trap), module loading (host-abi §2.1) and
// the single entry into the isolate per call, or per batch of queued reducer calls (the dispatcher from
// isolate-src.ts, entered with applySync + timeout).
// May call: isolated-vm, host/isolate-src, host/syscalls (SyscallHost), host/program, host/errors, limits,
// host/module-log (holding log writes while a reducer or view call runs: one append per call).

import assert from 'node:assert';
import ivm from 'isolated-vm';
import { bootstrapSource, callOutcome, evaluatedMarkerSource, sysModuleSource } from './isolate-src.js';
import type { PreparedProgram } from './program.js';
import type { BatchCallArgs, CallBatch, CallEnd, SyscallHost } from './syscalls.js';
import { messageOf, PublishError } from './errors.js';
import { SourceMap } from './sourcemap.js';
import { holdLogWrites, releaseLogWrites } from './module-log.js';
import { callBatchSliceMs, moduleEvaluateTimeoutMs, moduleHeapHardLimitFactor, moduleHeapShedMinBytes } from '../limits.js';
import { memoryBoundReached } from './memory-guard.js';

/**
 * The reducer limit (src/limits.ts `reducerTimeoutMsDefault`) has a price: isolated-vm runs a call with a timeout so
 * that every syscall callback costs ~1–2 µs more (measured: 4 callbacks per call, 6.7 µs without vs 10–17 µs with a
 * timeout).
 */
export { reducerTimeoutMsDefault } from '../limits.js';
/** The outcome of every successful reducer call (never mutated). */
const okOutcome: CallOutcome = { kind: 'ok' };
/** Shared empty argument list of reducer/view calls (never mutated). */
const noExchangeArgs: ivm.Copy<SharedArrayBuffer>[] = [];
/** Time the module's top-level evaluation may take (each of evaluate, hook lookup, describe). */
export const evaluateTimeoutMs = moduleEvaluateTimeoutMs;

export interface RuntimeLimits {
  memoryLimitMib: number; reducerTimeoutMs: number;
  /** Procedures and HTTP handlers (defaults and env overrides in host/procedures.ts). */
  procedureTimeoutMs?: number; httpHandlerTimeoutMs?: number;
}

/** What a procedure or HTTP handler call returned (host/procedures.ts, host/http-handlers.ts). */
export type FeatureCallOutcome<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'error'; message: string; text: string }          // the JS error's message, and message + stack
  | { kind: 'trap'; message: string };

export type CallOutcome =
  | { kind: 'ok' }
  | { kind: 'senderError'; message: string }
  | { kind: 'error'; message: string }                       // JS error text incl. stack
  | { kind: 'trap'; message: string };                       // timeout or memory limit: the call was terminated

/**
 * isolated-vm 5.0.4 can abort a process that exits naturally (exit code 134, "Assertion `environment != nullptr'
 * failed" in ClassHandle::WeakCallback): its environment cleanup hook releases the default environment, then V8
 * finishes a pending incremental GC while Node frees the main isolate (~IsolateData) and runs the weak callbacks of
 * ivm handles, which need that environment. Ending the process from the 'exit' event takes exit(3) instead of that
 * teardown. Nothing is lost: the event loop is already empty there, and the 'exit' listeners registered after this one
 * still run first, in order.
 */
function installExitGuard(): void {
  if (exitGuardInstalled) return;
  exitGuardInstalled = true;
  const guard = (code: number): void => {
    const listeners = process.listeners('exit');
    for (const listener of listeners.slice(listeners.indexOf(guard) + 1)) listener.call(process, code);
    process.exit(process.exitCode ?? code);
  };
  process.on('exit', guard);
}
let exitGuardInstalled = false;

const sysSpecifier = /^spacetime:sys@(\d+)\.(\d+)$/;
const supportedSys = new Set(['2.0', '2.1']);

export class ModuleRuntime {
  private isolate!: ivm.Isolate;
  private context!: ivm.Context;
  private callReducerRef!: ivm.Reference<(...x: ivm.Copy<SharedArrayBuffer>[]) => number>;
  private callReducersRef!: ivm.Reference<(...x: ivm.Copy<SharedArrayBuffer>[]) => number>;
  private describeRef!: ivm.Reference<() => Uint8Array>;
  private callProcedureRef!: ivm.Reference<(...x: unknown[]) => unknown>;
  private callHttpHandlerRef!: ivm.Reference<(...x: unknown[]) => unknown>;
  private callViewRef!: ivm.Reference<(...x: ivm.Copy<SharedArrayBuffer>[]) => number>;
  /**
   * An ArrayBuffer of (moduleHeapHardLimitFactor − 1) × the memory limit, held only by this host reference, so the
   * module can neither reach nor free it. isolated-vm counts it against its limit (which it also makes V8's heap limit):
   * the module is stopped at its own memory limit while V8 keeps room above it for one large allocation (src/limits.ts
   * `moduleHeapHardLimitFactor` says why). Never written: the allocator's calloc maps it without touching its pages.
   */
  private memoryBallast: ivm.Reference<ArrayBuffer> | undefined;
  /** undefined = not looked for yet; null = the program has none. */
  private sourceMap: SourceMap | null | undefined;
  /** Set by dispose(): the instance is gone for good (recover must not load a new isolate). */
  private retired = false;
  /**
   * Set by recover(): the isolate was discarded after a trap and the next call loads a new one. Loading waits for that
   * call rather than delaying the stopped call's reply by the program's evaluation (tens of ms, more on a loaded machine).
   */
  private reloadPending = false;
  /**
   * applySync options of reducer and view calls, built once (the limits never change). Without a prototype: isolated-vm
   * reads the options it was not given (arguments, result, …) with a property lookup each, which then ends at the
   * object itself instead of walking Object.prototype (measured: 1,345 -> 1,320 ns per empty call).
   */
  private readonly callOptions: { timeout: number } | undefined;
  /** applySync options of a batch: the limit plus the slice after which no call of it starts (callBatchSliceMs). */
  private readonly batchOptions: { timeout: number } | undefined;

  private constructor(
    private readonly program: PreparedProgram,
    private readonly host: SyscallHost,
    readonly limits: RuntimeLimits,
  ) {
    const ms = limits.reducerTimeoutMs;
    this.callOptions = ms > 0 ? Object.assign(Object.create(null) as object, { timeout: ms }) : undefined;
    this.batchOptions = ms > 0 ? Object.assign(Object.create(null) as object, { timeout: ms + callBatchSliceMs + 1 }) : undefined;
    // A syscall past the call's deadline ends the call here (SyscallHost.callDeadlineMs); recover() explains it.
    host.stopCall = () => { if (!this.isolate.isDisposed) this.isolate.dispose(); };
  }

  /**
   * Starts the host-side deadline of a call: wall time from now, as the call's isolated-vm `timeout` (wall time too
   * with our patch, patches/isolated-vm+5.0.4.patch). The timer fires only once a syscall has returned, and a thread
   * hop later; the deadline stops a syscall loop at its next syscall. SyscallHost.endCall clears it.
   */
  private armDeadline(limitMs: number): void {
    const host = this.host;
    host.deadlineHit = false;
    host.callDeadlineMs = limitMs > 0 ? performance.now() + limitMs : Infinity;
  }

  /** Creates an isolate and evaluates the program in it. Loading failures throw PublishError with upstream's text. */
  static create(program: PreparedProgram, host: SyscallHost, limits: RuntimeLimits): ModuleRuntime {
    const rt = new ModuleRuntime(program, host, limits);
    rt.load();
    return rt;
  }

  private load(): void {
    installExitGuard();
    const memoryLimitMib = this.limits.memoryLimitMib;
    const isolate = new ivm.Isolate({ memoryLimit: memoryLimitMib * moduleHeapHardLimitFactor });
    this.isolate = isolate;
    try {
      const context = isolate.createContextSync();
      this.context = context;
      this.memoryBallast = context.evalSync(
        `new ArrayBuffer(${memoryLimitMib * (moduleHeapHardLimitFactor - 1) * 1024 * 1024})`, { reference: true });
      this.host.handOver(context.global);
      this.host.resetCallCache();
      this.host.pendingNewExchange = false;
      const dispatch = context.evalSync(bootstrapSource, { reference: true, filename: 'spacetimedb_bootstrap' }) as
        ivm.Reference<Record<string, unknown>>;
      this.callReducerRef = dispatch.getSync('callReducer', { reference: true }) as ivm.Reference<(...x: ivm.Copy<SharedArrayBuffer>[]) => number>;
      this.callReducersRef = dispatch.getSync('callReducers', { reference: true }) as ivm.Reference<(...x: ivm.Copy<SharedArrayBuffer>[]) => number>;
      this.describeRef = dispatch.getSync('describe', { reference: true }) as ivm.Reference<() => Uint8Array>;
      this.callProcedureRef = dispatch.getSync('callProcedure', { reference: true }) as ivm.Reference<(...x: unknown[]) => unknown>;
      this.callHttpHandlerRef = dispatch.getSync('callHttpHandler', { reference: true }) as ivm.Reference<(...x: unknown[]) => unknown>;
      this.callViewRef = dispatch.getSync('callView', { reference: true }) as ivm.Reference<(...x: ivm.Copy<SharedArrayBuffer>[]) => number>;
      const loadHooks = dispatch.getSync('loadHooks', { reference: true }) as ivm.Reference<(ns: unknown) => void>;

      const sysModules = new Map<string, ivm.Module>();
      let mod: ivm.Module;
      try {
        mod = isolate.compileModuleSync(this.program.code + evaluatedMarkerSource, { filename: 'spacetimedb_module' });
      } catch (err) {
        throw new PublishError(`the module program does not compile: ${messageOf(err)}`);
      }
      try {
        mod.instantiateSync(context, (specifier) => {
          const m = sysSpecifier.exec(specifier);
          if (m === null) throw new TypeError(`Could not find module "${specifier}"`);
          const version = `${m[1]}.${m[2]}`;
          if (!supportedSys.has(version)) {
            throw new TypeError(`the module was built for a newer version of SpacetimeDB (it imports "${specifier}"); ` +
              'please update the server');
          }
          let sys = sysModules.get(version);
          if (sys === undefined) {
            sys = isolate.compileModuleSync(sysModuleSource(version), { filename: specifier });
            sysModules.set(version, sys);
          }
          return sys;
        });
      } catch (err) {
        throw new PublishError(`the module could not be linked: ${messageOf(err)}`);
      }
      try {
        mod.evaluateSync({ timeout: evaluateTimeoutMs });
      } catch (err) {
        throw new PublishError(`the module threw during evaluation: ${messageOf(err)}`);
      }
      try {
        loadHooks.applySync(undefined, [mod.namespace.derefInto()], { timeout: evaluateTimeoutMs });
      } catch (err) {
        throw new PublishError(messageOf(err));
      }
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      if (err instanceof PublishError) throw err;
      throw new PublishError(`the module could not be loaded: ${messageOf(err)}`);
    }
  }

  /** `__describe_module__()`: BSATN RawModuleDef bytes. */
  describe(): Uint8Array {
    try {
      const bytes = this.describeRef.applySync(undefined, [], { result: { copy: true }, timeout: evaluateTimeoutMs });
      assert(ArrayBuffer.isView(bytes));
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      throw new PublishError(`__describe_module__ failed: ${messageOf(err)}`);
    }
  }

  /**
   * Calls `__call_reducer__` once. The caller sets `host.tx` and owns commit/rollback. On a trap (timeout, memory
   * limit) the isolate is discarded, and the next call of any kind runs in a fresh instance.
   */
  callReducer(id: number, sender: bigint, connId: bigint, timestamp: bigint, args: Uint8Array): CallOutcome {
    this.ready();
    const host = this.host;
    host.writeReducerCall(id, sender, connId, timestamp, args);
    this.armDeadline(this.limits.reducerTimeoutMs);
    let code: number;
    holdLogWrites();
    try {
      code = this.callReducerRef.applySync(undefined, this.exchangeArgs(), this.callOptions);
    } catch (err) {
      return { kind: 'trap', message: this.recover(err) };
    } finally {
      host.endCall();
      releaseLogWrites();             // before anything replies: the records survive a crash right after the call
    }
    // Updates the call queued (isolate-src.ts "Row cache and deferred updates") cannot fail unless the datastore broke
    // its promise; then the call fails as a whole, even if the module caught the error of an earlier flush. A module
    // fault (SyscallHost.moduleFault: at the call's end, or in what it queued) fails it as a trap.
    const failure = code === callOutcome.okDeferred && host.moduleFault === undefined ? host.applyHandedUpdates()
      : host.deferredFailure;
    if (host.moduleFault !== undefined) return { kind: 'trap', message: this.recover(undefined) };
    if (code === callOutcome.ok || code === callOutcome.okDeferred) {
      if (failure !== undefined) return { kind: 'error', message: failure };
      host.tx?.checkpoint?.();          // what the module's row cache holds is the tx's state now
      return okOutcome;
    }
    const message = host.readReport();
    if (code === callOutcome.senderError) return { kind: 'senderError', message };
    return { kind: 'error', message: this.map()?.rewriteStack(message) ?? message };
  }

  /**
   * Runs `count` calls from `calls[from]`, in order, in one entry into the isolate (isolate-src.ts `callReducers`);
   * `batch` commits or rolls back each as it ends, and begins the first one's transaction before this is called (its
   * leases and row cache depend on it). Returns how many calls ended (at least one): the rest did not run, or ran on
   * a state that did not hold (SyscallHost.batchAborted), and must run again. A trap ends the call in progress.
   */
  callReducers(calls: readonly BatchCallArgs[], from: number, count: number, timestamp: bigint, batch: CallBatch): number {
    this.ready();
    const host = this.host;
    let ended = 0;
    const counting: CallBatch = {
      begin: () => batch.begin(),
      refusal: () => batch.refusal(),
      end: (outcome, group) => { ended++; batch.end(this.mapped(outcome), group); },
      mustStop: () => batch.mustStop(),
    };
    host.writeReducerBatch(calls, from, count, timestamp, callBatchSliceMs);
    this.armDeadline(this.limits.reducerTimeoutMs > 0 ? this.limits.reducerTimeoutMs + callBatchSliceMs + 1 : 0);
    host.batch = counting;
    let trap: string | undefined;
    let ran = 0;
    holdLogWrites();
    try {
      ran = this.callReducersRef.applySync(undefined, this.exchangeArgs(), this.batchOptions);
    } catch (err) {
      trap = this.recover(err);
    } finally {
      try {
        if (!host.batchAborted) host.settleBatch();     // the calls that ended lazily, a trapped batch's too
      } finally {
        host.batch = undefined;
        host.endCall();
        releaseLogWrites();
      }
    }
    // A trap ends the call in progress, unless the batch was cut before it: then it runs again like the calls after it.
    // A module fault found after the entry returned (the lazily ended calls' words) is a trap of the first call not
    // ended, and ends it even though the fault cut the batch, so that every batch ends a call.
    if (host.moduleFault !== undefined) trap ??= this.recover(undefined);
    if (trap !== undefined && ended < count && (!host.batchAborted || host.moduleFault !== undefined)) {
      if (host.tx === undefined) batch.begin();
      ended++;
      batch.end({ kind: 'trap', message: trap }, 1);
    }
    if (ended < count) host.forgetLastCaller();
    assert(ended >= 1 && ended <= count && (trap !== undefined || host.batchAborted || ended === ran), 'a batch ended no call');
    assert(host.tx === undefined, 'a call of the batch was left open');
    return ended;
  }

  private mapped(outcome: CallEnd): CallOutcome {
    if (outcome.kind !== 'error') return outcome;
    return { kind: 'error', message: this.map()?.rewriteStack(outcome.message) ?? outcome.message };
  }

  /**
   * Calls `__call_view__` (sender defined) or `__call_view_anon__` once; the caller sets `host.tx` to a read-only
   * view. 'ok' carries the ViewResultHeader + payload bytes. A trap discards the isolate, as for reducers.
   */
  callView(anonymous: boolean, id: number, sender: bigint): CallOutcome & { bytes?: Uint8Array } {
    const host = this.host;
    // Nested inside a syscall (a procedure's withTx commit refreshing views): keep the outer call's iterators.
    if (host.inSyscall) return host.aside(() => this.enterView(anonymous, id, sender, false));
    this.ready();
    return this.enterView(anonymous, id, sender, true);
  }

  private enterView(anonymous: boolean, id: number, sender: bigint, outermost: boolean): CallOutcome & { bytes?: Uint8Array } {
    const host = this.host;
    host.writeViewCall(anonymous, id, sender);
    if (outermost) this.armDeadline(this.limits.reducerTimeoutMs);    // nested: the outer call's deadline holds
    let code: number;
    holdLogWrites();
    try {
      code = this.callViewRef.applySync(undefined, this.exchangeArgs(), this.callOptions);
    } catch (err) {
      return { kind: 'trap', message: this.recover(err).replace('the reducer', 'the view') };
    } finally {
      if (outermost) host.endCall();
      releaseLogWrites();
    }
    if (code === callOutcome.ok) return { kind: 'ok', bytes: host.readResultBytes() };
    const message = host.readReport();
    return { kind: 'error', message: this.map()?.rewriteStack(message) ?? message };
  }

  /**
   * Calls `__call_procedure__` outside any transaction (the procedure opens its own with withTx). Returns the BSATN
   * of the return value. `timeoutMs` is the wall-time limit (0 = none); a trap discards the isolate. Asynchronous:
   * the call runs on the isolate's own thread (see enterFeature); the caller must keep every other call out until it
   * settles (Database.enqueueAsync).
   */
  async callProcedure(id: number, sender: bigint, connId: bigint, timestamp: bigint, args: Uint8Array, timeoutMs: number):
    Promise<FeatureCallOutcome<Uint8Array>> {
    this.ready();                                    // before reading callProcedureRef: a reload replaces it
    const r = await this.enterFeature(this.callProcedureRef,
      [id, sender.toString(), connId.toString(), timestamp.toString(), new ivm.ExternalCopy(args).copyInto()], timeoutMs, 'procedure');
    if (r.kind !== 'ok') return r;
    return { kind: 'ok', value: toU8((r.value as { value: Uint8Array }).value) };
  }

  /** Calls `__call_http_handler__`: returns the BSATN HttpResponse and the response body. Asynchronous, as procedures. */
  async callHttpHandler(id: number, timestamp: bigint, request: Uint8Array, body: Uint8Array, timeoutMs: number):
    Promise<FeatureCallOutcome<{ response: Uint8Array; body: Uint8Array }>> {
    this.ready();
    const r = await this.enterFeature(this.callHttpHandlerRef,
      [id, timestamp.toString(), new ivm.ExternalCopy(request).copyInto(), new ivm.ExternalCopy(body).copyInto()], timeoutMs, 'HTTP handler');
    if (r.kind !== 'ok') return r;
    const v = r.value as { response: Uint8Array; body: Uint8Array };
    return { kind: 'ok', value: { response: toU8(v.response), body: toU8(v.body) } };
  }

  /** The call's arguments: the exchange buffer when the host replaced it since the last call, else none. */
  private exchangeArgs(): ivm.Copy<SharedArrayBuffer>[] {
    const host = this.host;
    if (!host.pendingNewExchange) return noExchangeArgs;
    host.pendingNewExchange = false;
    return [host.exchangeTransfer()];
  }

  /**
   * Enters the isolate asynchronously: it runs on its own thread, its syscalls still run on this one (~6 µs each
   * instead of ~1), and an HTTP request blocks only the isolate's thread while this one keeps serving others.
   */
  private async enterFeature(ref: ivm.Reference<(...x: unknown[]) => unknown>, args: unknown[], timeoutMs: number, what: string):
    Promise<FeatureCallOutcome<unknown>> {
    const host = this.host;
    // The exchange buffer may have grown since the last call: hand it over as the last argument, as callReducer does.
    args.push(...this.exchangeArgs());
    this.armDeadline(timeoutMs);
    let out: { ok: boolean; value?: unknown; message?: string; text?: string };
    try {
      out = await ref.apply(undefined, args as never[], { result: { copy: true }, ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}) }) as typeof out;
    } catch (err) {
      return { kind: 'trap', message: this.recover(err).replace(/the reducer exceeded its CPU time limit of \d+ ms/, `the ${what} exceeded its time limit of ${timeoutMs} ms`) };
    } finally {
      host.endCall();
      host.tx = undefined;                           // procedures and handlers run outside any transaction
    }
    if (out.ok) return { kind: 'ok', value: out };
    const text = out.text ?? out.message ?? '';
    return { kind: 'error', message: out.message ?? '', text: this.map()?.rewriteStack(text) ?? text };
  }

  /** "file:line:col" as the shims report a log call site → the original source position when the map knows it. */
  mapFrame(frame: string): { filename: string; lineNumber: number } | undefined {
    const mapped = this.map()?.mapFrame(frame);
    if (mapped !== undefined) return { filename: mapped.source, lineNumber: mapped.line };
    const m = /^(.*):(\d+):\d+$/.exec(frame);
    return m === null ? undefined : { filename: m[1], lineNumber: Number(m[2]) };
  }

  private map(): SourceMap | undefined {
    if (this.sourceMap === undefined) this.sourceMap = SourceMap.fromCode(this.program.code) ?? null;
    return this.sourceMap ?? undefined;
  }

  /** After a terminated call: explains what happened and replaces the isolate when it is gone. */
  private recover(err: unknown): string {
    const msg = messageOf(err);
    // Disposed on purpose while an asynchronous call ran (the database closed, or was updated): no new instance.
    if (this.retired) return 'the module was unloaded during the call';
    let why: string;
    if (this.host.moduleFault !== undefined) {
      why = this.host.moduleFault;
    } else if (this.isolate.isDisposed && !this.host.deadlineHit || /memory limit/i.test(msg)) {
      why = `the module exceeded its memory limit of ${this.limits.memoryLimitMib} MiB`;
    } else if (this.host.deadlineHit || /timed out/i.test(msg)) {
      why = `the reducer exceeded its CPU time limit of ${this.limits.reducerTimeoutMs} ms`;
    } else {
      why = `the module instance failed: ${msg}`;
    }
    // A call stopped midway may leave the library's in-isolate state (reused ctx, iterator buffers) inconsistent;
    // start over with a fresh instance. Module-global JS state is lost, as upstream after a trap.
    this.disposeIsolate();
    this.reloadPending = true;
    return why;
  }

  /**
   * Before a call of any kind: a new isolate after a trap, or in place of one that holds more than
   * `moduleHeapShedMinBytes` while the server is at its memory bound (host/memory-guard.ts). The bound stops new rows,
   * subscriptions and databases; this gives back the heaps that modules of databases admitted earlier grew since
   * (each may grow to its memory limit). Module-global JS state is lost, as after a trap, and the module log says so.
   */
  private ready(): void {
    if (!this.reloadPending && memoryBoundReached()) {
      const usedBytes = this.heapUsedBytes() ?? 0;
      if (usedBytes > moduleHeapShedMinBytes) {
        this.host.warn(`the module's instance was replaced to free its ${Math.round(usedBytes / 1048576)} MiB heap: ` +
          'the server is at its memory bound (serverMemoryShareMax); module-global state is reset');
        this.disposeIsolate();
        this.reloadPending = true;
      }
    }
    if (this.reloadPending) this.reload();
  }

  /** A new isolate in place of the one a trap discarded (recover); if loading throws, the next call tries again. */
  private reload(): void {
    this.load();
    this.reloadPending = false;
  }

  /** V8 heap bytes the module's isolate uses now (GET /v1/metrics); undefined once it is disposed. */
  heapUsedBytes(): number | undefined {
    return this.isolate.isDisposed ? undefined : this.isolate.getHeapStatisticsSync().used_heap_size;
  }

  /** For good: a call still running asynchronously fails, and nothing re-creates the isolate. */
  dispose(): void {
    this.retired = true;
    this.disposeIsolate();
    this.host.detach();
  }

  private disposeIsolate(): void {
    this.memoryBallast = undefined;              // freed with the isolate
    if (!this.isolate.isDisposed) this.isolate.dispose();
  }
}

function toU8(v: unknown): Uint8Array {
  assert(ArrayBuffer.isView(v), 'expected bytes from the module');
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}
