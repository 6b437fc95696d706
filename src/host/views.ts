// host/views.ts — module views (host-abi §6.1) and row-level security (§4.2 RowLevelSecurity) as seen by callers.
//
// Owns: the view catalogue (a table-like schema per view: name, row type, columns, primary key, function id per
// kind), running a view with a read-set-recording read-only transaction, decoding its result (RowData rows, or
// RawSql executed with sql/subscription-plan.ts against committed state), the per-caller read view (`CallerView`:
// the datastore plus view tables plus RLS filtering for non-owners) and the per-caller subscription plans over views
// and RLS tables (`CallerPlan`: recomputed and diffed only when a commit touches what they read).
// May call: datastore/types, datastore/system, datastore/schema (firstUserTableId), sql/subscription-plan, sql/errors,
// sats (codec, bsatn, names, moduledef), host/runtime (CallOutcome), limits.
//
// Materialization (as upstream): one cache of view results per database (`ViewHost`), keyed by (view, sender) — the
// sender is left out for anonymous views — each entry with the read set recorded when it ran: the tables it scanned
// (or counted, or range-scanned) whole, and the keys it looked up by index point (`find`, `filter` of a value). A view
// runs again only when a commit changed a table it read whole, or a row under a key it looked up, and then at once
// (`commitApplied`, called by the host for every commit before the subscription manager sees it): a sender view over the sender's own
// rows re-runs only for commits that touch them. Two identical queries with no write between them call it once, whatever reads it
// (SQL, subscriptions, other CallerViews). A sender view's results are kept per sender and never shared. The cache
// is bounded (limits.ts viewResultsCachedMax entries, viewResultRowsCachedMax rows; least recently used first out).
// A CallerView pins the results it read until `refresh`, so one evaluation sees one state of each view.
// View tables have pseudo table ids from `viewTableIdBase` up; they never reach the datastore, the commit log or a
// TxData. Host system tables (datastore/system.ts: st_client, st_var, st_view, …) are served here too: their rows come
// from `ViewHostOptions.systemState`, and a subscription reading one is a CallerPlan (evaluated per caller; its rows
// are not kept up to date by commits, which do not carry them).
// Cost of a commit for a live view/RLS plan: a set intersection of the commit's tables with the plan's read set, and for
// point reads the changed rows' keys (computed once per commit and index); only when a view's result was dropped is
// it re-run and the plan's result diffed (multiset) against the previous one.

import assert from 'node:assert/strict';
import { DatastoreError, errno } from '../datastore/types.js';
import { firstUserTableId } from '../datastore/schema.js';
import { hostSystemTableRows, isHostSystemTable, systemTableSchemas, type HostSystemState } from '../datastore/system.js';
import { viewResultRowsCachedMax, viewResultsCachedMax } from '../limits.js';
import type {
  ColumnSchema, DatabaseSchema, IndexId, MutTx, RangeScanArgs, ReadView, StoredRowTest, TableChanges, TableId, TableSchema, TxData,
  WriteResult,
} from '../datastore/types.js';
import { BsatnReader } from '../sats/bsatn.js';
import { compileCodec, resolveType, type Codec } from '../sats/codec.js';
import { moduleDefSections, type RawModuleDefV10 } from '../sats/moduledef.js';
import { toSnakeCase } from '../sats/names.js';
import type { AlgebraicType, Value } from '../sats/types.js';
import { SqlError } from '../sql/errors.js';
import { compileRlsFilter, compileSubscriptionQuery, type RlsFilter, type SubscriptionPlan } from '../sql/subscription-plan.js';
import type { CompileQuery, SubscriptionPlan as ManagerPlan } from '../subscription/manager.js';
import type { CallOutcome } from './runtime.js';

/** View tables get ids from here up (far above any datastore table id); their primary-key indexes likewise. */
export const viewTableIdBase = 1 << 30;
export const viewIndexIdBase = 1 << 30;
/** Distinct RawSql texts whose compiled plans are kept per view (sender views embed the identity in the text). */
const rawSqlPlansMax = 256;

export interface ViewInfo {
  /** Canonical name (SQL, subscriptions, clients). */
  name: string;
  sourceName: string;
  anonymous: boolean;
  isPublic: boolean;
  /** The id passed back to `__call_view__` / `__call_view_anon__` (per kind, root first, submodules depth-first). */
  fnId: number;
  /** A table-like schema; `tableId` is the view's pseudo id. */
  schema: TableSchema;
  rowCodec: Codec;
  /** Codec of the primary-key column (ViewPrimaryKeys), which gets a unique B-tree index for SQL and joins. */
  pkCodec: Codec | undefined;
}

/** A view failed (threw, was stopped, or returned something unusable). */
export class ViewError extends Error {
  constructor(readonly view: string, message: string) {
    super(`view ${view} failed: ${message}`);
    this.name = 'ViewError';
  }
}

/** Builds the catalogue of every view in the module (root first, then submodules depth-first, with `ns.` names). */
export function buildViewCatalog(def: RawModuleDefV10, schema: DatabaseSchema): ViewInfo[] {
  const out: ViewInfo[] = [];
  const typeBase = { n: 0 };
  const counts = { anon: 0, sender: 0 };
  const walk = (d: RawModuleDefV10, prefix: string): void => {
    const s = moduleDefSections(d);
    const base = typeBase.n;
    typeBase.n += s.typespace.types.length;
    const snake = s.caseConversionPolicy.tag === 'SnakeCase';
    const convert = (n: string) => (snake ? toSnakeCase(n) : n);
    const explicit = new Map<string, string>();
    for (const e of s.explicitNames.entries) if (e.tag === 'Function') explicit.set(e.value.sourceName, e.value.canonicalName);
    const anonStart = counts.anon, senderStart = counts.sender;
    for (const v of s.views) {
      const name = prefix + (explicit.get(v.sourceName) ?? convert(v.sourceName));
      const where = `view '${name}'`;
      const rowType = viewRowType(v.returnType, base, schema, where);
      const columns: ColumnSchema[] = rowType.elements.map((e, i) => {
        if (e.name === undefined) throw new Error(`${where}: column ${i} has no name`);
        return { name: convert(e.name), sourceName: e.name, type: resolveType(e.algebraicType, schema.typespace) };
      });
      const pkDef = s.viewPrimaryKeys.find((p) => p.viewSourceName === v.sourceName);
      const pkCol = pkDef?.columns[0] === undefined ? undefined : columns.findIndex((c) => c.sourceName === pkDef.columns[0] || c.name === pkDef.columns[0]);
      const tableRowType = { elements: rowType.elements.map((e, i) => ({ name: columns[i]!.name, algebraicType: e.algebraicType })) };
      const fnId = v.isAnonymous ? anonStart + v.index : senderStart + v.index;
      const sourceAlias = prefix + v.sourceName;
      const pk = pkCol === undefined || pkCol < 0 ? undefined : pkCol;
      const pkName = pk === undefined ? '' : columns[pk]!.name;
      out.push({
        name, sourceName: v.sourceName, anonymous: v.isAnonymous, isPublic: v.isPublic, fnId,
        rowCodec: compileCodec({ tag: 'Product', value: tableRowType }, schema.typespace),
        pkCodec: pk === undefined ? undefined : compileCodec(columns[pk]!.type, schema.typespace),
        schema: {
          tableId: viewTableIdBase + out.length, name, aliases: sourceAlias === name ? [] : [sourceAlias],
          rowType: tableRowType, columns, primaryKey: pk,
          indexes: pk === undefined ? [] : [{
            indexId: viewIndexIdBase + out.length, name: `${name}_${pkName}_idx_btree`, aliases: [], algorithm: 'btree',
            columns: [pk], unique: true,
          }],
          uniqueConstraints: pk === undefined ? [] : [{ name: `${name}_${pkName}_key`, columns: [pk] }],
          sequences: [], access: 'public', isEvent: false, schedule: undefined, defaultValues: new Map(),
        },
      });
    }
    counts.anon += s.views.filter((v) => v.isAnonymous).length;
    counts.sender += s.views.filter((v) => !v.isAnonymous).length;
    for (const sub of s.submodules) walk(sub.module, `${prefix}${sub.namespace}.`);
  };
  walk(def, '');
  const taken = new Set<string>();
  for (const t of schema.tables) for (const n of [t.name, ...t.aliases]) taken.add(n);
  for (const v of out) {
    for (const n of [v.name, ...v.schema.aliases]) {
      if (taken.has(n)) throw new Error(`view '${v.name}': the name '${n}' is already used by a table or another view`);
      taken.add(n);
    }
  }
  return out;
}

/** `Array(Ref row)` (or `Option(Ref row)`) → the row's product type, with Refs shifted into the merged typespace. */
function viewRowType(ret: AlgebraicType, typeBase: number, schema: DatabaseSchema, where: string) {
  let elem: AlgebraicType | undefined;
  if (ret.tag === 'Array') elem = ret.value;
  else if (ret.tag === 'Sum' && ret.value.variants.length === 2) elem = ret.value.variants.find((v) => v.name === 'some')?.algebraicType;
  if (elem === undefined) throw new Error(`${where}: the return type must be an array or option of rows`);
  const shifted: AlgebraicType = elem.tag === 'Ref' ? { tag: 'Ref', value: elem.value + typeBase } : elem;
  const row = resolveType(shifted, schema.typespace);
  if (row.tag !== 'Product') throw new Error(`${where}: the row type is not a product type`);
  return row.value;
}

/** Compiles every RLS filter of the module; invalid SQL throws an Error naming the filter (publish must fail). */
export function compileRlsFilters(def: RawModuleDefV10, schema: DatabaseSchema): Map<TableId, RlsFilter[]> {
  const out = new Map<TableId, RlsFilter[]>();
  for (const { sql } of moduleDefSections(def).rowLevelSecurity) {
    let f: RlsFilter;
    try {
      f = compileRlsFilter(sql, schema);
    } catch (err) {
      throw new Error(`invalid row-level security filter \`${sql}\`: ${err instanceof Error ? err.message : String(err)}`);
    }
    // As upstream: a private table is the owner's alone, so a filter on it is a mistake, not a policy.
    if (f.table.access === 'private') {
      throw new Error(`Cannot define RLS rule on private table: ${f.table.name}. ` +
        'Please make table public if you wish to restrict access using RLS.');
    }
    let list = out.get(f.table.tableId);
    if (list === undefined) out.set(f.table.tableId, (list = []));
    list.push(f);
  }
  return out;
}

/** Runs one view function with `reader` as the syscalls' transaction. */
export type ViewCall = (anonymous: boolean, fnId: number, sender: bigint, reader: MutTx) => CallOutcome & { bytes?: Uint8Array };

export interface ViewHostOptions {
  views: ViewInfo[];
  rls: Map<TableId, RlsFilter[]>;
  /** Committed state (the Datastore). */
  base: ReadView;
  call: ViewCall;
  log: (level: 'Error' | 'Panic', message: string, target: string) => void;
  /** What the host system tables show, read when a caller scans one (datastore/system.ts). */
  systemState?: () => HostSystemState;
  /** Cache bounds (tests lower them); limits.ts viewResultsCachedMax / viewResultRowsCachedMax by default. */
  cacheLimits?: { entriesMax: number; rowsMax: number };
}

/** Changed rows of one table up to which a commit's index keys are computed, to spare the views it did not touch. */
const pointCheckRowsMax = 4096;

/**
 * A view's result for one sender (or anonymous), with the datastore tables it read (`readSet`), of which those it read
 * whole (`whole`; the others only through `points`: index id → the keys it looked up, latin1 of their BSATN).
 */
interface Materialization {
  rows: Uint8Array[]; readSet: Set<TableId>; whole: Set<TableId>; points: Map<IndexId, Set<string>>;
  byKey?: Map<string, Uint8Array[]>;
}

/** Key of a result in the ViewHost's cache: the view's table id, and the sender in hex for a sender view (cachedViews parses it back). */
function cacheKey(view: ViewInfo, sender: bigint): string {
  return view.anonymous ? `${view.schema.tableId}` : `${view.schema.tableId}:${sender.toString(16)}`;
}

/** One database's views and RLS filters. */
export class ViewHost {
  readonly views: ViewInfo[];
  readonly rls: Map<TableId, RlsFilter[]>;
  /** The datastore schema plus one table per view (what SQL and subscriptions resolve names against). */
  readonly schema: DatabaseSchema;
  private readonly indexTable = new Map<IndexId, TableId>();
  private readonly rawSqlPlans = new Map<string, SubscriptionPlan>();
  /** Row codecs of the host system tables (systemRows), compiled on first scan. */
  private readonly systemCodecs = new Map<TableId, Codec>();
  /** The materialization cache: key (see cacheKey) → result; Map order is recency (oldest first). */
  private readonly results = new Map<string, Materialization>();
  /** Cache keys by each datastore table their result read. */
  private readonly keysByTable = new Map<TableId, Set<string>>();
  /** Per index: the codecs that take a changed row to its key (commitApplied). */
  private readonly indexKeyCodecs = new Map<IndexId, { row: Codec; columns: { at: number; codec: Codec }[] }>();
  private cachedRows = 0;
  private readonly cacheLimits: { entriesMax: number; rowsMax: number };
  /** Views run so far (tests and metrics: a cache hit runs none). */
  evaluations = 0;

  constructor(private readonly options: ViewHostOptions) {
    this.views = options.views;
    this.rls = options.rls;
    this.cacheLimits = options.cacheLimits ?? { entriesMax: viewResultsCachedMax, rowsMax: viewResultRowsCachedMax };
    const baseSchema = options.base.schema();
    this.schema = {
      typespace: baseSchema.typespace,
      tables: [...baseSchema.tables, ...this.views.map((v) => v.schema), ...systemTableSchemas()],
    };
    for (const t of baseSchema.tables) for (const ix of t.indexes) this.indexTable.set(ix.indexId, t.tableId);
    for (const v of this.views) for (const ix of v.schema.indexes) this.indexTable.set(ix.indexId, v.schema.tableId);
  }

  get base(): ReadView { return this.options.base; }

  tableOfIndex(indexId: IndexId): TableId | undefined { return this.indexTable.get(indexId); }

  viewOf(tableId: TableId): ViewInfo | undefined {
    return tableId >= viewTableIdBase ? this.views[tableId - viewTableIdBase] : undefined;
  }

  /** The read view a caller's SQL and subscriptions see. */
  callerView(identity: bigint, isOwner: boolean): CallerView {
    return new CallerView(this, identity, isOwner);
  }

  /** Wraps a subscription compiler so that queries over views and (for non-owners) RLS tables become CallerPlans. */
  wrapCompile(base: CompileQuery): CompileQuery {
    return (text, _view, opts) => {
      const cv = this.callerView(opts.sender, opts.isOwner);
      const inner = base(text, cv, opts);
      const readsView = inner.readTables.some((t) => t >= viewTableIdBase || isHostSystemTable(t));
      const readsRls = !opts.isOwner && inner.readTables.some((t) => this.rls.has(t));
      if (!readsView && !readsRls) return inner;
      const perSender = readsRls || inner.usesSender || inner.readTables.some((t) => this.viewOf(t)?.anonymous === false);
      return new CallerPlan(inner, cv, perSender, this.realTableIds());
    };
  }

  private realTableIds(): TableId[] {
    return this.options.base.schema().tables.map((t) => t.tableId);
  }

  /** Rows of a host system table now (datastore/system.ts), encoded as the table's rows. */
  systemRows(tableId: TableId): Uint8Array[] {
    const state = this.options.systemState?.();
    if (state === undefined) return [];
    let codec = this.systemCodecs.get(tableId);
    if (codec === undefined) {
      codec = compileCodec({ tag: 'Product', value: this.options.base.table(tableId).rowType }, this.schema.typespace);
      this.systemCodecs.set(tableId, codec);
    }
    return hostSystemTableRows(tableId, state).map((r) => codec.encode(r));
  }

  /**
   * What st_view and st_view_column show: upstream's ids — views numbered from the first user id, each with a backing
   * table numbered after the module's tables (scripts read them) — not the pseudo ids views have here.
   */
  viewRows(): HostSystemState['views'] {
    const firstBackingTable = this.options.base.schema().tables.reduce((max, t) => Math.max(max, t.tableId + 1), firstUserTableId);
    return this.views.map((v, i) => ({ viewId: firstUserTableId + i, name: v.name, tableId: firstBackingTable + i,
      isPublic: v.isPublic, isAnonymous: v.anonymous, columns: v.schema.columns.map((c) => ({ name: c.name, type: c.type })) }));
  }

  /**
   * The result of `view` for `sender` against committed state: from the cache when no commit touched what it read
   * since it ran, else run now (and kept). Throws ViewError.
   */
  materialize(view: ViewInfo, sender: bigint): Materialization {
    const key = cacheKey(view, sender);
    const hit = this.results.get(key);
    if (hit !== undefined) {
      this.results.delete(key);
      this.results.set(key, hit);
      return hit;
    }
    const m: Materialization = this.evaluate(view, sender);
    this.results.set(key, m);
    this.cachedRows += m.rows.length;
    for (const t of m.readSet) {
      let keys = this.keysByTable.get(t);
      if (keys === undefined) this.keysByTable.set(t, (keys = new Set()));
      keys.add(key);
    }
    const { entriesMax, rowsMax } = this.cacheLimits;
    for (const oldest of this.results.keys()) {
      if (this.results.size <= entriesMax && this.cachedRows <= rowsMax) break;
      if (oldest !== key) this.forget(oldest);
    }
    return m;
  }

  /**
   * Re-runs the cached results this commit may have changed (call after every commit): those that read a changed table
   * whole, or looked up a key that a changed row (inserted or deleted) has. As upstream (views_for_refresh), a
   * materialized view is brought up to date by the commit that changed what it read, not at its next read: module
   * logs show one call per such commit. One that fails now is dropped; its next reader runs it and sees the error.
   */
  commitApplied(tx: TxData): void {
    if (this.results.size === 0) return;
    const stale: string[] = [];
    for (const t of tx.tables) {
      if (t.inserts.length === 0 && t.deletes.length === 0) continue;
      const keys = this.keysByTable.get(t.tableId);
      if (keys === undefined) continue;
      const changedKeys = new Map<IndexId, Set<string>>();
      for (const k of [...keys]) {
        const m = this.results.get(k)!;
        if (m.whole.has(t.tableId) || this.pointsChanged(m, t, changedKeys)) { this.forget(k); stale.push(k); }
      }
    }
    for (const key of stale) {
      const { view, sender } = this.entryOf(key);
      try {
        this.materialize(view, sender);
      } catch (err) {
        if (!(err instanceof ViewError)) throw err;
      }
    }
  }

  /**
   * Whether a row `changes` inserted or deleted has a key `m` looked up in one of the table's indexes. A commit of more
   * than `pointCheckRowsMax` rows of the table counts as changing every key: re-running the views costs less.
   */
  private pointsChanged(m: Materialization, changes: TableChanges, changedKeys: Map<IndexId, Set<string>>): boolean {
    if (changes.inserts.length + changes.deletes.length > pointCheckRowsMax) return true;
    for (const [indexId, keys] of m.points) {
      if (this.indexTable.get(indexId) !== changes.tableId) continue;
      let changed = changedKeys.get(indexId);
      if (changed === undefined) changedKeys.set(indexId, (changed = this.indexKeysOf(indexId, changes)));
      for (const k of keys) if (changed.has(k)) return true;
    }
    return false;
  }

  /** The index keys (latin1 of their BSATN, as point scans take them) of the rows a commit inserted or deleted. */
  private indexKeysOf(indexId: IndexId, changes: TableChanges): Set<string> {
    let codecs = this.indexKeyCodecs.get(indexId);
    if (codecs === undefined) {
      const table = this.options.base.table(changes.tableId), ix = table.indexes.find((i) => i.indexId === indexId)!;
      const ts = this.options.base.schema().typespace;
      codecs = {
        row: compileCodec({ tag: 'Product', value: table.rowType }, ts),
        columns: ix.columns.map((c) => ({ at: c, codec: compileCodec(table.columns[c]!.type, ts) })),
      };
      this.indexKeyCodecs.set(indexId, codecs);
    }
    const out = new Set<string>();
    for (const rows of [changes.inserts, changes.deletes]) {
      for (const row of rows) {
        const values = codecs.row.decode(row) as Value[];
        const parts = codecs.columns.map(({ at, codec }) => codec.encode(values[at]!));
        out.add(parts.map(keyOf).join(''));
      }
    }
    return out;
  }

  /** Cached results now (tests). */
  get cachedResults(): number { return this.results.size; }

  /** The (view name, sender) of every cached result: what subscribers and recent queries are reading. */
  cachedViews(): { name: string; sender: bigint }[] {
    return [...this.results.keys()].map((key) => {
      const { view, sender } = this.entryOf(key);
      return { name: view.name, sender };
    });
  }

  /** The view and sender of a cache key (cacheKey). */
  private entryOf(key: string): { view: ViewInfo; sender: bigint } {
    const [tableId, senderHex] = key.split(':');
    return { view: this.viewOf(Number(tableId))!, sender: senderHex === undefined ? 0n : BigInt(`0x${senderHex}`) };
  }

  /**
   * Runs, against the current state, every view of `cached` this module still has (a module update re-evaluates the
   * materialized views, as upstream does: a view that fails refuses the update). Throws ViewError.
   */
  reevaluate(cached: { name: string; sender: bigint }[]): void {
    for (const { name, sender } of cached) {
      const view = this.views.find((v) => v.name === name);
      if (view !== undefined) this.materialize(view, sender);
    }
  }

  private forget(key: string): void {
    const m = this.results.get(key);
    if (m === undefined) return;
    this.results.delete(key);
    this.cachedRows -= m.rows.length;
    for (const t of m.readSet) {
      const keys = this.keysByTable.get(t);
      keys?.delete(key);
      if (keys?.size === 0) this.keysByTable.delete(t);
    }
  }

  /** Runs a view for `sender` against committed state: its rows and the tables it read. Throws ViewError. */
  private evaluate(view: ViewInfo, sender: bigint): Materialization {
    this.evaluations++;
    const reader = new RecordingReader(this.options.base, this.indexTable);
    const outcome = this.options.call(view.anonymous, view.fnId, view.anonymous ? 0n : sender, reader);
    if (outcome.kind !== 'ok' || outcome.bytes === undefined) {
      const message = outcome.kind === 'ok' ? 'no result' : outcome.message;
      this.options.log(outcome.kind === 'trap' ? 'Panic' : 'Error', `view ${view.name} failed: ${message}`, view.name);
      throw new ViewError(view.name, firstLine(message));
    }
    try {
      const rows = this.decodeResult(view, outcome.bytes, sender, reader);
      return { rows, readSet: reader.readSet, whole: reader.whole, points: reader.points };
    } catch (err) {
      // A RawSql result over the reading request's SQL budget is that request's error, not the module's fault.
      if (err instanceof SqlError && err.kind === 'limit') throw err;
      const message = err instanceof Error ? err.message : String(err);
      this.options.log('Error', `view ${view.name} returned an unusable result: ${message}`, view.name);
      throw new ViewError(view.name, message);
    }
  }

  /** ViewResultHeader (tag 0 RowData + Vec<Row>, tag 1 RawSql string) → rows as BSATN. */
  private decodeResult(view: ViewInfo, bytes: Uint8Array, sender: bigint, reader: RecordingReader): Uint8Array[] {
    const r = new BsatnReader(bytes);
    const tag = r.readU8();
    if (tag === 0) {
      const count = r.readU32();
      const rows: Uint8Array[] = [];
      for (let i = 0; i < count; i++) {
        const start = r.offset;
        view.rowCodec.skip(r);
        rows.push(bytes.slice(start, r.offset));
      }
      r.expectEnd('view rows');
      return rows;
    }
    if (tag !== 1) throw new Error(`unknown ViewResultHeader tag ${tag}`);
    const sql = r.readString();
    r.expectEnd('view SQL');
    return this.rawSqlPlan(view, sql, sender).evaluate(reader);
  }

  private rawSqlPlan(view: ViewInfo, sql: string, sender: bigint): SubscriptionPlan {
    const key = /:sender\b/i.test(sql) ? `${view.name}:${sender.toString(16)}:${sql}` : `${view.name}:${sql}`;
    let plan = this.rawSqlPlans.get(key);
    if (plan === undefined) {
      plan = compileSubscriptionQuery(sql, this.options.base.schema(), { sender, isOwner: true });
      // The rows go to clients as the view's rows: same column types, in the same order.
      const got = plan.returnTable.columns.map((c) => JSON.stringify(c.type));
      const want = view.schema.columns.map((c) => JSON.stringify(c.type));
      if (got.length !== want.length || got.some((g, i) => g !== want[i])) {
        throw new Error(`its SQL returns rows of table ${plan.returnTable.name}, which do not match the view's row type`);
      }
      if (this.rawSqlPlans.size >= rawSqlPlansMax) this.rawSqlPlans.clear();
      this.rawSqlPlans.set(key, plan);
    }
    return plan;
  }
}

/**
 * Committed state as one caller sees it: datastore tables (rows of RLS tables filtered for non-owners), the view
 * tables, whose rows are this caller's materializations (from the ViewHost's cache on first read, again after
 * `refresh`), and the host system tables.
 */
export class CallerView implements ReadView {
  private readonly mats = new Map<TableId, Materialization>();
  private rlsPlans: Map<TableId, SubscriptionPlan[]> | undefined;
  /** Row keys each RLS table lets this caller see, for the current committed state (see `forgetState`). */
  private readonly allowed = new Map<TableId, Set<string>>();

  constructor(private readonly host: ViewHost, readonly identity: bigint, readonly isOwner: boolean) {}

  schema(): DatabaseSchema { return this.host.schema; }

  table(tableId: TableId): TableSchema {
    return this.host.viewOf(tableId)?.schema ?? this.host.base.table(tableId);
  }

  tableByName(name: string): TableSchema | undefined {
    const t = this.host.base.tableByName(name);
    if (t !== undefined) return t;
    return this.host.views.find((v) => v.name === name || v.schema.aliases.includes(name))?.schema;
  }

  indexByName(name: string) { return this.host.base.indexByName(name); }

  rowCount(tableId: TableId): number {
    if (tableId >= viewTableIdBase || isHostSystemTable(tableId) || this.filters(tableId) !== undefined) return this.scan(tableId).length;
    return this.host.base.rowCount(tableId);
  }

  scan(tableId: TableId): Uint8Array[] {
    const view = this.host.viewOf(tableId);
    if (view !== undefined) return this.materialize(view).rows;
    if (isHostSystemTable(tableId)) return this.host.systemRows(tableId);
    return this.visible(tableId, this.host.base.scan(tableId));
  }

  /** A real table's rows in pieces, each filtered as `scan` filters; a view or host system table is one piece. */
  scanChunk(tableId: TableId, from: number, maxRows: number): { rows: Uint8Array[]; next: number } {
    const base = this.host.base;
    if (this.host.viewOf(tableId) !== undefined || isHostSystemTable(tableId) || base.scanChunk === undefined) {
      return { rows: from === 0 ? this.scan(tableId) : [], next: -1 };
    }
    const chunk = base.scanChunk(tableId, from, maxRows);
    return { rows: this.visible(tableId, chunk.rows), next: chunk.next };
  }

  /** scanChunk, the scan's own WHERE (`keep`) tested on stored rows before any copy; `visited` counts the rows tested. */
  scanChunkWhere(tableId: TableId, from: number, maxRows: number, keep: StoredRowTest): { rows: Uint8Array[]; next: number; visited: number } {
    const base = this.host.base;
    if (this.host.viewOf(tableId) !== undefined || isHostSystemTable(tableId) || base.scanChunkWhere === undefined) {
      const all = from === 0 ? this.scan(tableId) : [];
      return { rows: all.filter((row) => keep(row, 0, row.length)), next: -1, visited: all.length };
    }
    const chunk = base.scanChunkWhere(tableId, from, maxRows, keep);
    return { rows: this.visible(tableId, chunk.rows), next: chunk.next, visited: chunk.visited };
  }

  scanIndexPoint(indexId: IndexId, key: Uint8Array): Uint8Array[] {
    if (indexId >= viewIndexIdBase) return this.viewRowsByKey(indexId, key);
    return this.visibleByIndex(indexId, this.host.base.scanIndexPoint(indexId, key));
  }

  scanIndexRange(indexId: IndexId, range: RangeScanArgs): Uint8Array[] {
    if (indexId >= viewIndexIdBase) {
      // A view's index has one column; the planner asks for whole-key prefixes or everything, never bounds.
      const unbounded = range.rangeStart.length === 1 && range.rangeStart[0] === 2 && range.rangeEnd.length === 1 && range.rangeEnd[0] === 2;
      if (!unbounded) throw new DatastoreError(errno.wrongIndexAlgorithm, 'range scans with bounds are not supported on view indexes');
      if (range.prefixElems === 0) return this.scan(this.host.tableOfIndex(indexId)!);
      return this.viewRowsByKey(indexId, range.prefix);
    }
    return this.visibleByIndex(indexId, this.host.base.scanIndexRange(indexId, range));
  }

  /** Rows of a view whose primary key's BSATN equals `key` (the index is built on first use per materialization). */
  private viewRowsByKey(indexId: IndexId, key: Uint8Array): Uint8Array[] {
    const view = this.host.viewOf(this.host.tableOfIndex(indexId) ?? -1);
    if (view === undefined || view.pkCodec === undefined) throw new DatastoreError(errno.noSuchIndex, `no such index ${indexId}`);
    const m = this.materialize(view);
    if (m.byKey === undefined) {
      m.byKey = new Map();
      const pk = view.schema.primaryKey!;
      for (const row of m.rows) {
        const k = keyOf(view.pkCodec.encode((view.rowCodec.decode(row) as Value[])[pk]!));
        const list = m.byKey.get(k);
        if (list === undefined) m.byKey.set(k, [row]); else list.push(row);
      }
    }
    return m.byKey.get(keyOf(key)) ?? [];
  }

  /** Drops what was computed from the previous committed state (call before reading after a commit). */
  forgetState(): void {
    this.allowed.clear();
  }

  /** Whether an RLS filter this caller's results went through reads `tableId`. */
  rlsDependsOn(tableId: TableId): boolean {
    if (this.rlsPlans !== undefined) {
      for (const plans of this.rlsPlans.values()) for (const p of plans) if (p.readTables.includes(tableId)) return true;
    }
    return false;
  }

  /**
   * Takes the current result of each materialized view whose read set the commit touched (the ViewHost re-runs those
   * whose result the commit may have changed). Returns whether any result is new. Throws ViewError when one fails.
   */
  refresh(changed: Set<TableId>): boolean {
    const stale: [TableId, Materialization][] = [];
    for (const [tableId, m] of this.mats) {
      for (const t of m.readSet) if (changed.has(t)) { stale.push([tableId, m]); break; }
    }
    // Collected first: re-materializing re-inserts into `mats`, which a live iteration would visit again.
    let renewed = false;
    for (const [tableId, before] of stale) {
      this.mats.delete(tableId);
      if (this.materialize(this.host.viewOf(tableId)!) !== before) renewed = true;
    }
    return renewed;
  }

  private materialize(view: ViewInfo): Materialization {
    let m = this.mats.get(view.schema.tableId);
    if (m === undefined) {
      m = this.host.materialize(view, this.identity);
      this.mats.set(view.schema.tableId, m);
    }
    return m;
  }

  private filters(tableId: TableId): SubscriptionPlan[] | undefined {
    if (this.isOwner) return undefined;
    const fs = this.host.rls.get(tableId);
    if (fs === undefined) return undefined;
    this.rlsPlans ??= new Map();
    let plans = this.rlsPlans.get(tableId);
    if (plans === undefined) this.rlsPlans.set(tableId, (plans = fs.map((f) => f.forSender(this.identity))));
    return plans;
  }

  /**
   * The RLS filters of `tableId` for this caller when a row's visibility depends on that row alone (every filter is a
   * query of that table only), else undefined (another table's change can then change what the caller sees).
   */
  rowOnlyFilters(tableId: TableId): SubscriptionPlan[] | undefined {
    const plans = this.filters(tableId);
    if (plans === undefined || plans.some((p) => p.isJoin || p.readTables.length !== 1 || p.readTables[0] !== tableId)) return undefined;
    return plans;
  }

  /** The RLS filters of `tableId` for this caller (undefined: none apply), and the committed state they read. */
  rlsFilters(tableId: TableId): SubscriptionPlan[] | undefined { return this.filters(tableId); }
  get base(): ReadView { return this.host.base; }

  /** Rows of `tableId` the RLS filters let this caller see (a row is visible when any filter returns it). */
  private visible(tableId: TableId, rows: Uint8Array[]): Uint8Array[] {
    const plans = this.filters(tableId);
    if (plans === undefined) return rows;
    let allowed = this.allowed.get(tableId);
    if (allowed === undefined) {
      allowed = new Set<string>();
      for (const p of plans) for (const r of p.evaluate(this.host.base)) allowed.add(keyOf(r));
      this.allowed.set(tableId, allowed);
    }
    const ok = allowed;
    return rows.filter((r) => ok.has(keyOf(r)));
  }

  private visibleByIndex(indexId: IndexId, rows: Uint8Array[]): Uint8Array[] {
    if (this.isOwner || rows.length === 0) return rows;
    const tableId = this.host.tableOfIndex(indexId);
    return tableId === undefined ? rows : this.visible(tableId, rows);
  }
}

/**
 * A subscription over views and/or RLS tables for one caller: the inner plan evaluated against the caller's view,
 * recomputed after a commit that touches what it read, and diffed (multiset) against the previous result.
 * Reported as a join so the manager always asks `delta`; a view failure throws (→ SubscriptionError).
 * Except the RLS cases of a query of one table, which recomputing cost every subscriber a whole evaluation per commit:
 * - its filters read only that table (`rowFilters`): the delta is the changed rows the query and a filter both
 *   accept, as for a plain single-table query;
 * - a filter joins other tables (`joinFilters`, e.g. messages visible to the members of their room): each filter's
 *   own delta (the planner's join delta, from the changed rows through index lookups) moves a count per row of how
 *   many filter results hold it; a row whose count leaves or reaches 0 became visible or hidden, and is in the delta
 *   when the query accepts it. The counts cost a key per visible row, as the previous result did.
 */
class CallerPlan implements ManagerPlan {
  readonly returnTable: TableSchema;
  readonly isJoin = true;
  readonly diffsLastResult = true;
  private last = new Map<string, { row: Uint8Array; count: number }>();
  /** Set when a row's membership depends on that row alone: the inner query's and its RLS filters'. */
  private readonly rowFilters: SubscriptionPlan[] | undefined;
  /** Set when the query reads one table and a filter of it joins others: visibility is counted (see the header). */
  private readonly joinFilters: SubscriptionPlan[] | undefined;
  /** joinFilters: row key → in how many filter results (derivations) the row is. */
  private visibleCounts = new Map<string, number>();

  constructor(
    private readonly inner: ManagerPlan, private readonly cv: CallerView, readonly usesSender: boolean,
    readonly readTables: readonly TableId[],
  ) {
    this.returnTable = inner.returnTable;
    const t = inner.returnTable.tableId;
    const plainTable = t < viewTableIdBase && !isHostSystemTable(t);
    const oneTable = plainTable && !inner.isJoin && inner.readTables.length === 1 && inner.readTables[0] === t;
    this.rowFilters = oneTable ? cv.rowOnlyFilters(t) : undefined;
    this.joinFilters = oneTable && this.rowFilters === undefined ? cv.rlsFilters(t) : undefined;
  }

  evaluate(): Uint8Array[] {
    this.cv.forgetState();
    const rows = this.inner.evaluate(this.cv);
    if (this.joinFilters !== undefined) {
      const counts = new Map<string, number>();
      for (const f of this.joinFilters) for (const r of f.evaluate(this.cv.base)) { const k = keyOf(r); counts.set(k, (counts.get(k) ?? 0) + 1); }
      this.visibleCounts = counts;
    } else if (this.rowFilters === undefined) {
      this.last = bagOf(rows);
    }
    return rows;
  }

  matches(): boolean {
    assert.fail('CallerPlan is always evaluated through delta()');
  }

  delta(_view: ReadView, tx: TxData): { inserts: Uint8Array[]; deletes: Uint8Array[] } {
    if (this.rowFilters !== undefined) return this.rowDelta(tx, this.rowFilters);
    if (this.joinFilters !== undefined) return this.joinFilterDelta(tx, this.joinFilters);
    const changed = new Set<TableId>();
    for (const t of tx.tables) if (t.inserts.length > 0 || t.deletes.length > 0) changed.add(t.tableId);
    let direct = false;
    for (const t of changed) if (this.inner.readTables.includes(t) || this.cv.rlsDependsOn(t)) { direct = true; break; }
    this.cv.forgetState();
    // Nothing it reads changed: no table it or an RLS filter reads directly, and every view result it read is the one
    // it had (the commit touched none of their tables, or none of the keys they looked up).
    if (!this.cv.refresh(changed) && !direct) return { inserts: [], deletes: [] };
    const next = bagOf(this.inner.evaluate(this.cv));
    const inserts: Uint8Array[] = [];
    const deletes: Uint8Array[] = [];
    for (const [k, { row, count }] of next) {
      const before = this.last.get(k)?.count ?? 0;
      for (let i = before; i < count; i++) inserts.push(row);
    }
    for (const [k, { row, count }] of this.last) {
      const after = next.get(k)?.count ?? 0;
      for (let i = after; i < count; i++) deletes.push(row);
    }
    this.last = next;
    return { inserts, deletes };
  }

  private rowDelta(tx: TxData, filters: SubscriptionPlan[]): { inserts: Uint8Array[]; deletes: Uint8Array[] } {
    const changes = tx.tables.find((t) => t.tableId === this.returnTable.tableId);
    if (changes === undefined) return { inserts: [], deletes: [] };
    // The query and each filter read the same decoded row: decoded once, not once per plan.
    const decoded = new Map<Uint8Array, Value[]>();
    const inner = this.inner;
    const keep = (row: Uint8Array) => (inner.matchesWith !== undefined ? inner.matchesWith(row, decoded) : inner.matches(row)) &&
      filters.some((f) => f.matchesWith(row, decoded));
    return { inserts: changes.inserts.filter(keep), deletes: changes.deletes.filter(keep) };
  }

  private joinFilterDelta(tx: TxData, filters: SubscriptionPlan[]): { inserts: Uint8Array[]; deletes: Uint8Array[] } {
    const counts = this.visibleCounts, base = this.cv.base;
    // Rows whose visibility this commit changed, by key; a row shown and hidden again within it is in neither.
    const shown = new Map<string, Uint8Array>(), hidden = new Map<string, Uint8Array>();
    for (const f of filters) {
      const { inserts, deletes } = f.delta(base, tx);
      for (const row of inserts) {
        const k = keyOf(row), count = counts.get(k) ?? 0;
        counts.set(k, count + 1);
        if (count === 0 && !hidden.delete(k)) shown.set(k, row);
      }
      for (const row of deletes) {
        const k = keyOf(row), count = counts.get(k) ?? 0;
        assert(count > 0, 'an RLS filter dropped a row it did not hold');
        if (count > 1) { counts.set(k, count - 1); continue; }
        counts.delete(k);
        if (!shown.delete(k)) hidden.set(k, row);
      }
    }
    if (shown.size === 0 && hidden.size === 0) return { inserts: [], deletes: [] };
    const decoded = new Map<Uint8Array, Value[]>(), inner = this.inner;
    const keep = (row: Uint8Array) => (inner.matchesWith !== undefined ? inner.matchesWith(row, decoded) : inner.matches(row));
    return { inserts: [...shown.values()].filter(keep), deletes: [...hidden.values()].filter(keep) };
  }
}

function bagOf(rows: Uint8Array[]): Map<string, { row: Uint8Array; count: number }> {
  const m = new Map<string, { row: Uint8Array; count: number }>();
  for (const row of rows) {
    const k = keyOf(row);
    const e = m.get(k);
    if (e === undefined) m.set(k, { row, count: 1 }); else e.count++;
  }
  return m;
}

const keyOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

/**
 * A read-only transaction over committed state that records what a view read: every table (`readSet`), those read
 * whole (scans, counts, range scans), and the keys looked up by index point.
 */
class RecordingReader implements MutTx {
  readonly readSet = new Set<TableId>();
  readonly whole = new Set<TableId>();
  readonly points = new Map<IndexId, Set<string>>();

  constructor(private readonly base: ReadView, private readonly indexTable: Map<IndexId, TableId>) {}

  schema(): DatabaseSchema { return this.base.schema(); }
  table(tableId: TableId): TableSchema { return this.base.table(tableId); }
  tableByName(name: string): TableSchema | undefined { return this.base.tableByName(name); }
  indexByName(name: string) { return this.base.indexByName(name); }
  rowCount(tableId: TableId): number { this.noteWhole(tableId); return this.base.rowCount(tableId); }
  scan(tableId: TableId): Uint8Array[] { this.noteWhole(tableId); return this.base.scan(tableId); }
  scanIndexPoint(indexId: IndexId, key: Uint8Array): Uint8Array[] {
    const t = this.indexTable.get(indexId);
    if (t !== undefined) {
      this.readSet.add(t);
      let keys = this.points.get(indexId);
      if (keys === undefined) this.points.set(indexId, (keys = new Set()));
      keys.add(keyOf(key));
    }
    return this.base.scanIndexPoint(indexId, key);
  }
  scanIndexRange(indexId: IndexId, range: RangeScanArgs): Uint8Array[] {
    const t = this.indexTable.get(indexId);
    if (t !== undefined) this.noteWhole(t);
    return this.base.scanIndexRange(indexId, range);
  }
  private noteWhole(tableId: TableId): void {
    this.readSet.add(tableId);
    this.whole.add(tableId);
  }
  insert(): WriteResult { throw readOnly(); }
  update(): WriteResult { throw readOnly(); }
  deleteByIndexPoint(): number { throw readOnly(); }
  deleteByIndexRange(): number { throw readOnly(); }
  deleteByRows(): number { throw readOnly(); }
  clear(): number { throw readOnly(); }
  commit(): TxData { throw readOnly(); }
  rollback(): void {}
}

function readOnly(): DatastoreError {
  return new DatastoreError(errno.hostCallFailure, 'views are read-only: they cannot write to tables');
}
