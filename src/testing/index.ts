// Module unit tests without a server (`spacetimedb-ts/testing`): load a module in-process with the same host and
// datastore the server uses, call reducers as any identity, read tables as plain objects, run SQL, read the module
// log, and close.
// Owns: the test-facing API and the conversion of stored rows (BSATN) to objects (the official library's Identity,
// ConnectionId, Timestamp and TimeDuration classes for the special types, so values compare like the module sees them).
// May call: host/database (Database), host/scheduler (Clock), datastore/types, sats (codec, special), cli/build (bundleModule, to build a
// module directory exactly as `spacetime build` does), spacetimedb (value classes).
//
// Time: a test database runs on a manual clock (host/scheduler.ts Clock) that starts at the wall-clock time of
// creation and stands still until advanceTime() moves it; scheduled reducers run only then, in due order, each at its
// due time, so a test sees exactly the ticks it asked for.
import assert from 'node:assert';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as spacetimedbLib from 'spacetimedb';
import { bundleModule } from '../cli/build.js';
import type { TableSchema } from '../datastore/types.js';
import { Database, type Caller } from '../host/database.js';
import { systemClock, type Clock } from '../host/scheduler.js';
import { compileCodec, resolveType } from '../sats/codec.js';
import { optionInner, specialKind } from '../sats/special.js';
import type { AlgebraicType, Typespace, Value } from '../sats/types.js';

// The official value classes. The package's bundled .d.ts does not resolve under NodeNext, so they are typed here.
type ValueClass = new (value: bigint) => { toHexString?(): string };
const lib = spacetimedbLib as unknown as { Identity: ValueClass; ConnectionId: ValueClass; Timestamp: ValueClass; TimeDuration: ValueClass };
const { Identity, ConnectionId, Timestamp, TimeDuration } = lib;

/** The owner of a test database (also the `init` sender) unless `owner` is given: a fixed, recognisable identity. */
export const testOwnerIdentity = 0xc200_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0001n;
const testDatabaseIdentity = 0xc200_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0002n;

/** Anything that names an identity: a bigint, a hex string (with or without 0x), or an official Identity. */
export type IdentityLike = bigint | string | { toHexString(): string };

export interface TestDatabaseOptions {
  /** A module directory (built with `spacetime build`'s bundler into its dist/bundle.js). */
  modulePath?: string | URL;
  /** A built bundle (dist/bundle.js). */
  bundlePath?: string | URL;
  /** The owner identity (the `init` sender and the default reducer sender). */
  owner?: IdentityLike;
  /** Where the test clock starts (default: the wall-clock time of creation). */
  startTime?: Date;
}

/** advanceTime() refuses to run more scheduled calls than this in one step (an interval far shorter than the step). */
export const advanceTimeCallsMax = 100_000;

/** The clock of a test database: moves only when the test advances it. */
class ManualClock implements Clock {
  readonly manual = true;
  constructor(public micros: bigint) {}
  nowMicros(): bigint { return this.micros; }
}

export interface CallOptions {
  /** The caller identity (default: the owner). */
  sender?: IdentityLike;
  connectionId?: bigint;
}

/** A reducer that failed: `kind` 'failed' = the module threw SenderError; 'internal' = any other failure. */
export class ReducerError extends Error {
  constructor(readonly reducer: string, readonly kind: 'failed' | 'internal', message: string) {
    super(`reducer ${reducer} ${kind === 'failed' ? 'failed' : 'crashed'}: ${message}`);
    this.name = 'ReducerError';
  }
}

export interface TestTable {
  /** Every row, decoded to an object keyed by the module's field names. */
  rows(): Record<string, unknown>[];
  count(): number;
}

export interface LogLine { level: string; message: string }

function toPath(p: string | URL): string {
  return p instanceof URL ? fileURLToPath(p) : p;
}

export function toIdentity(value: IdentityLike): bigint {
  if (typeof value === 'bigint') return value;
  const hex = (typeof value === 'string' ? value : value.toHexString()).replace(/^0x/, '');
  if (!/^[0-9a-fA-F]{1,64}$/.test(hex)) throw new TypeError(`not an identity: ${String(value)}`);
  return BigInt('0x' + hex);
}

/** Converts a positional value to the shape module code and the official SDK use. */
function toObject(type: AlgebraicType, value: Value, ts: Typespace): unknown {
  const special = specialKind(type, ts);
  if (special !== undefined) {
    const inner = (value as Value[])[0] as bigint;
    switch (special) {
      case 'identity': return new Identity(inner);
      case 'connectionId': return new ConnectionId(inner);
      case 'timestamp': return new Timestamp(inner);
      case 'timeDuration': return new TimeDuration(inner);
      case 'uuid': return inner;
    }
  }
  const some = optionInner(type, ts);
  if (some !== undefined) {
    const sum = value as { tag: number; value: Value };
    return sum.tag === 0 ? toObject(some, sum.value, ts) : undefined;
  }
  const t = resolveType(type, ts);
  switch (t.tag) {
    case 'Product': {
      const out: Record<string, unknown> = {};
      t.value.elements.forEach((el, i) => { out[el.name ?? String(i)] = toObject(el.algebraicType, (value as Value[])[i], ts); });
      return out;
    }
    case 'Sum': {
      const sum = value as { tag: number; value: Value };
      const variant = t.value.variants[sum.tag];
      return { tag: variant.name ?? String(sum.tag), value: toObject(variant.algebraicType, sum.value, ts) };
    }
    case 'Array':
      return value instanceof Uint8Array ? value : (value as Value[]).map((v) => toObject(t.value, v, ts));
    default:
      return value;
  }
}

/** Row objects keyed by the module's source field names (what `table({...})` declared). */
function rowObject(table: TableSchema, typespace: Typespace, row: Value[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  table.columns.forEach((col, i) => { out[col.sourceName ?? col.name] = toObject(col.type, row[i], typespace); });
  return out;
}

export class TestDatabase {
  private closed = false;

  constructor(readonly database: Database, readonly owner: bigint, private readonly clock: ManualClock) {}

  /** The test clock (µs since the Unix epoch): reducer timestamps (`ctx.timestamp`) and schedule due times. */
  nowMicros(): bigint {
    return this.clock.micros;
  }

  /**
   * Moves the clock forward by `ms` milliseconds, running every scheduled reducer or procedure that falls due on the
   * way, in due order, with the clock set to each one's due time (an interval of 1 s advanced by 5 s runs 5 times).
   * Resolves once they have all run. Failures are logged (see logs()), as on the server; the schedule goes on.
   */
  async advanceTime(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advanceTime: ms must be a finite number >= 0, got ${ms}`);
    const target = this.clock.micros + BigInt(Math.round(ms * 1000));
    const features = this.database.features;
    for (let calls = 0; ;) {
      const next = features.nextScheduleMicros();
      if (next === undefined || next > target) break;
      if (next > this.clock.micros) this.clock.micros = next;
      calls += await features.runDueSchedules();
      if (calls > advanceTimeCallsMax) {
        throw new RangeError(`advanceTime(${ms}): more than ${advanceTimeCallsMax} scheduled calls fell due; advance in smaller steps`);
      }
    }
    this.clock.micros = target;
  }

  private caller(opts: CallOptions | undefined): Caller {
    return { identity: opts?.sender !== undefined ? toIdentity(opts.sender) : this.owner, connectionId: opts?.connectionId ?? 0n, jwtPayload: undefined };
  }

  /**
   * Calls a reducer with arguments by parameter name (`{ name: 'x' }`) or position (`['x']`), in SATS-JSON form
   * for values the JSON cannot express directly (e.g. `{ __identity__: '0x…' }`). Throws ReducerError on failure.
   */
  async callReducer(name: string, args: Record<string, unknown> | unknown[] = {}, opts?: CallOptions): Promise<void> {
    const result = await this.database.callReducerJson(name, jsonSafe(args), this.caller(opts));
    if (result.status !== 'committed') throw new ReducerError(name, result.status, result.message);
  }

  /** Runs `client_connected` for `sender` (a client connecting); throws when the module rejects it. */
  connect(opts?: CallOptions): Promise<void> {
    return this.database.clientConnected(this.caller(opts));
  }

  /** Runs `client_disconnected` for `sender`. */
  disconnect(opts?: CallOptions): Promise<void> {
    return this.database.clientDisconnected(this.caller(opts));
  }

  /** A table by its canonical or source name. */
  table(name: string): TestTable {
    const store = this.database.datastore;
    const schema = store.tableByName(name);
    if (schema === undefined) throw new TypeError(`no such table: ${name}`);
    const typespace = store.schema().typespace;
    const codec = compileCodec({ tag: 'Product', value: schema.rowType }, typespace);
    return {
      rows: () => store.scan(schema.tableId).map((bytes) => rowObject(schema, typespace, codec.decode(bytes) as Value[])),
      count: () => store.rowCount(schema.tableId),
    };
  }

  /** One-off SQL as `sender` (default: the owner, so DML is allowed). Rows are objects keyed by column name. */
  async sql(query: string, opts?: CallOptions): Promise<{ rows: Record<string, unknown>[] }[]> {
    const results = await this.database.sql(query, this.caller(opts));
    const typespace = this.database.datastore.schema().typespace;
    return results.map((r) => ({
      rows: r.rows.map((row) => {
        const out: Record<string, unknown> = {};
        r.schema.elements.forEach((el, i) => { out[el.name ?? String(i)] = toObject(el.algebraicType, row[i], typespace); });
        return out;
      }),
    }));
  }

  /** The module log so far (console.* output, panics), oldest first. */
  logs(): LogLine[] {
    return this.database.logs.tail().map((r) => ({ level: r.level, message: r.message }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.database.close();
  }
}

/** bigints inside arguments become decimal strings (SATS-JSON accepts them for wide integers). */
function jsonSafe(args: Record<string, unknown> | unknown[]): unknown {
  return JSON.parse(JSON.stringify(args, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Identity) return { __identity__: '0x' + (v as { toHexString(): string }).toHexString() };
    return v;
  }));
}

/**
 * Loads a module in-process: builds `modulePath` (as `spacetime build` does) or reads `bundlePath`, publishes it into
 * a fresh in-memory database (running `init` as the owner) and returns the test handle. Close it when done.
 */
export async function createTestDatabase(options: TestDatabaseOptions): Promise<TestDatabase> {
  assert((options.modulePath === undefined) !== (options.bundlePath === undefined), 'pass exactly one of modulePath or bundlePath');
  const program = options.modulePath !== undefined
    ? (await bundleModule(toPath(options.modulePath))).code
    : await readFile(toPath(options.bundlePath!), 'utf8');
  const owner = options.owner !== undefined ? toIdentity(options.owner) : testOwnerIdentity;
  const start = options.startTime !== undefined ? BigInt(options.startTime.getTime()) * 1000n : systemClock.nowMicros();
  const clock = new ManualClock(start);
  const database = await Database.create({ identity: testDatabaseIdentity, ownerIdentity: owner, durability: 'none', clock }, program);
  return new TestDatabase(database, owner, clock);
}
