// subscription/manager.ts — the per-database subscription manager: query sets, shared queries, incremental updates.
//
// Owns: every client's query sets (Subscribe / Unsubscribe by query_set_id), the registry of live queries (shared
// between subscribers when the compiled plan does not depend on the caller; filed by table, and by value when a query
// requires `column = constant` — a join of two tables under its constant on that table and, on the other table, under
// the constants a changed row reaches through the join — so a commit asks only the queries it can change:
// TableQueries), the initial evaluation of a query set against the committed state, and, on every commit, each affected
// query's delta computed once and encoded once (an EncodedTableUpdate reused for every query set of every client
// subscribed to it), and for the common subscriber (one query set of one query) the whole frame built once per query
// set id and shared (sharedTransaction).
// Does not own: sockets, framing, compression, ordering of outbound messages (server/websocket/session.ts), SQL
// compilation (sql/subscription-plan.ts; `compile` is injectable), the datastore.
// May call: subscription/messages.ts, sql/subscription-plan.ts, sql/budget.ts, datastore/types.ts, sats/, limits.ts.
//
// Budget: a Subscribe message's initial evaluation (all its queries together), an Unsubscribe's dropped rows and a
// OneOffQuery each run under one SQL request budget (sql/budget.ts: rows scanned, rows returned, result bytes, wall
// time); over it, the client gets a SubscriptionError / failed OneOffQueryResult naming the limit and nothing is
// registered (an Unsubscribe still drops the set). Each join (and view/RLS) query's delta gets its own budget; over
// it, that query's sets fail with the limit. Single-table deltas are filters of the transaction's rows: unbudgeted. So
// are the lookups that find which join queries a changed row reaches (TableQueries): each is the index lookup one of
// those queries' deltas makes first, made once for all of them.
// A non-owner's Subscribe and OneOffQuery also run under the database's row limit (`SET row_limit`, as upstream:
// the estimates of the new queries, summed, must not exceed it); deltas do not.
//
// Threading contract: `handleCommit` must be called synchronously right after each commit, before the next
// transaction starts, and `subscribe`/`unsubscribe` read the committed state at call time. Because each call
// delivers to the clients' sinks synchronously, a client's messages come out in commit order and every
// SubscribeApplied snapshot contains exactly the transactions already delivered.

import assert from 'node:assert/strict';
import type { ReadView, TableChanges, TableId, TableSchema, TxData } from '../datastore/types.js';
import {
  encodeTableUpdate, encodeTransactionUpdateFrame, transactionUpdateFrame, type EncodedTableUpdate, type QuerySetUpdate, type ServerMessage, type SingleTableRows,
} from './messages.js';
import { QueryBudget, runWithBudget, sqlQueryLimits, type QueryLimits } from '../sql/budget.js';
import { compileSubscriptionQuery, equalityKey } from '../sql/subscription-plan.js';
import { clientQueriesMax, clientQueryTextCharsMax, querySetQueriesMax } from '../limits.js';
import type { Value } from '../sats/types.js';

/** WebSocket close code when a breaking module update disconnects clients (going away). */
export const moduleUpdateCloseCode = 1001;
/** Longest query text accepted (upstream's subscription SQL limit). */
export const queryTextMaxBytes = 50_000;
/** What the caller of a commit touching no subscribed table gets: shared, so sinks must not mutate it. */
const noQuerySets: QuerySetUpdate[] = [];

/**
 * What the manager needs from a compiled subscription query: sql/subscription-plan.ts `SubscriptionPlan` has
 * exactly these members (declared structurally so tests can compile queries their own way).
 */
export interface SubscriptionPlan {
  /** The table whose rows the query returns. */
  readonly returnTable: TableSchema;
  /** Every table the query reads (the return table included); a commit touching none of them is skipped. */
  readonly readTables: readonly TableId[];
  readonly isJoin: boolean;
  /** True when the result depends on the caller (`:sender`, row-level security): such plans are never shared. */
  readonly usesSender: boolean;
  /** All rows of the result (bag semantics), against one committed snapshot. */
  evaluate(view: ReadView): Uint8Array[];
  /** Single-table plans: whether a row of `returnTable` is in the result. */
  matches(row: Uint8Array): boolean;
  /**
   * matches(), sharing the rows a commit's plans decoded (`decoded`: row → its values, for plans of one table).
   * Optional: plans without it are asked `matches`.
   */
  matchesWith?(row: Uint8Array, decoded: Map<Uint8Array, Value[]>): boolean;
  /**
   * A `column = constant` the WHERE requires of the rows of table `tableId` (sql/subscription-plan.ts), with
   * `decodeRow` for that table's rows: the plan is asked about a change of that table only for rows of that value.
   */
  readonly equalityFilter?: { tableId: TableId; column: number; key: string };
  decodeRow?(row: Uint8Array): Value[];
  /**
   * Set when the plan diffs each commit against the result it last evaluated (host/views.ts CallerPlan): a recompiled
   * one is evaluated once, between transactions, so that the first commit after a module update is diffed against it.
   */
  readonly diffsLastResult?: boolean;
  /**
   * Joins of two tables with an `equalityFilter`: the constants a changed row of the other table (`tableId`) reaches
   * through the join in the committed state (sql/subscription-plan.ts ConstantEdge); plans with one `id` reach alike.
   */
  readonly joinEdge?: {
    readonly tableId: TableId;
    readonly id: string;
    keysReached(view: ReadView, row: Uint8Array, decoded: Map<Uint8Array, Value[]>): string[];
  };
  /** Net change of the result caused by `tx`; `view` is the committed state after `tx`. Used for joins. */
  delta(view: ReadView, tx: TxData): { inserts: Uint8Array[]; deletes: Uint8Array[] };
}

export interface CompileOptions { sender: bigint; isOwner: boolean }
export type CompileQuery = (text: string, view: ReadView, options: CompileOptions) => SubscriptionPlan;

/** The real compiler: the subscription SQL subset of sql/subscription-plan.ts. */
export const compileWithSql: CompileQuery = (text, view, options) => compileSubscriptionQuery(text, view.schema(), options);

/** Where the manager delivers a client's results; implemented by the WebSocket session. */
export interface ClientSink {
  /**
   * Called once per commit for every client with non-empty changes, and always for the transaction's caller
   * (possibly with `querySets` empty). `durable` resolves when the commit is durable (undefined: already durable).
   */
  transaction(querySets: QuerySetUpdate[], isCaller: boolean, durable: Promise<unknown> | undefined): void;
  /**
   * Optional fast path, used instead of `transaction` for a non-caller client whose only change in this commit is
   * one query set holding one table update: `frame` is the whole server frame (messages.ts
   * `transactionUpdateFrame`), shared byte for byte with every other such subscriber; it must not be mutated.
   */
  sharedTransaction?(frame: Buffer, durable: Promise<unknown> | undefined): void;
  /** A live query set failed during incremental evaluation and was dropped (SubscriptionError, request_id None). */
  querySetFailed(querySetId: number, error: string): void;
  /** Closes the client's connection (WebSocket close code and reason); used when a module update breaks clients. */
  fail?(code: number, reason: string): void;
}

export interface ClientHandle {
  readonly identity: bigint;
  readonly connectionId: bigint;
  readonly isOwner: boolean;
}

interface Client extends ClientHandle {
  readonly sink: ClientSink;
  readonly sets: Map<number, QuerySet>;
  /** Queries of all its sets (each counted per set it is in): bounded by `clientQueriesMax`. */
  queryCount: number;
  /** Characters of the query text of all its sets (as each Subscribe sent it): bounded by `clientQueryTextCharsMax`. */
  queryTextChars: number;
}

interface QuerySet {
  readonly client: Client;
  readonly id: number;
  /** Distinct queries (identical text in one set is subscribed once). */
  readonly queries: Query[];
  /** Characters of its Subscribe's query text (charged to its client while it lives). */
  readonly textChars: number;
  /** handleCommit scratch: the commit whose updates `pending` holds (shared-frame path of multi-query sets). */
  epoch: number;
  pending: EncodedTableUpdate[] | undefined;
}

interface Query {
  readonly key: string;
  /** Replaced when a module update recompiles the query (moduleChanged). */
  plan: SubscriptionPlan;
  /** Every query set containing this query; each gets the delta once. */
  readonly sets: Set<QuerySet>;
}

/** Error raised for a logical subscription failure; becomes a SubscriptionError message. */
export class SubscriptionQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubscriptionQueryError';
  }
}

const selectAllTablesPattern = /^\s*select\s+\*\s+from\s+\*\s*;?\s*$/i;

export interface SubscriptionManagerOptions {
  /** The committed state at call time. */
  view: () => ReadView;
  compile: CompileQuery;
  /** Limits of each Subscribe's initial evaluation and each one-off query; `sqlQueryLimits` unless a test lowers them. */
  queryLimits?: QueryLimits;
  /** The database's row limit for non-owners (st_var row_limit), read at each Subscribe and OneOffQuery. */
  rowLimit?: () => bigint | undefined;
  /** Why new subscriptions are refused now (the host's memory bound), or undefined; read at each Subscribe. */
  subscribeRefusal?: () => string | undefined;
}

export class SubscriptionManager {
  private readonly clients = new Map<bigint, Client>();
  private readonly queries = new Map<string, Query>();
  /** Live queries by every table they read. */
  private readonly queriesByTable = new Map<TableId, TableQueries>();
  /** Counts handleCommit calls (QuerySet.epoch). */
  private commitEpoch = 0;

  /**
   * Resolves when the last commit seen by handleCommit is durable (undefined: durable already). Confirmed-read
   * sessions hold snapshot results (SubscribeApplied, UnsubscribeApplied, OneOffQueryResult) until then.
   */
  lastDurable: Promise<unknown> | undefined;

  constructor(private readonly options: SubscriptionManagerOptions) {}

  get clientCount(): number { return this.clients.size; }
  get queryCount(): number { return this.queries.size; }

  addClient(handle: ClientHandle, sink: ClientSink): ClientHandle {
    assert.ok(!this.clients.has(handle.connectionId), 'connection id already registered');
    const client: Client = { ...handle, sink, sets: new Map(), queryCount: 0, queryTextChars: 0 };
    this.clients.set(handle.connectionId, client);
    return client;
  }

  /** Drops every query set of the client (on disconnect). */
  removeClient(handle: ClientHandle): void {
    const client = this.clients.get(handle.connectionId);
    if (client === undefined) return;
    for (const set of client.sets.values()) this.dropSet(set);
    this.clients.delete(handle.connectionId);
  }

  /** Handles Subscribe: SubscribeApplied with the initial rows, or SubscriptionError (nothing registered). */
  subscribe(handle: ClientHandle, requestId: number, querySetId: number, queryStrings: string[]): ServerMessage {
    const client = this.clientOf(handle);
    const fail = (error: string): ServerMessage => ({ tag: 'SubscriptionError', requestId, querySetId, error });
    if (client.sets.has(querySetId)) return fail(`Query set ${querySetId} is already subscribed on this connection`);
    if (queryStrings.length > querySetQueriesMax) {
      return fail(`Too many queries in one subscription: ${queryStrings.length} (max ${querySetQueriesMax})`);
    }
    if (client.queryCount + queryStrings.length > clientQueriesMax) {
      return fail(`Too many queries subscribed on this connection: ${client.queryCount} and ${queryStrings.length} more ` +
        `(limit clientQueriesMax = ${clientQueriesMax}); unsubscribe some first`);
    }
    let textChars = 0;
    for (const q of queryStrings) textChars += q.length;
    if (client.queryTextChars + textChars > clientQueryTextCharsMax) {
      return fail(`Too much query text subscribed on this connection: ${client.queryTextChars} characters and ${textChars} ` +
        `more (limit clientQueryTextCharsMax = ${clientQueryTextCharsMax}); unsubscribe some first`);
    }
    const refused = this.options.subscribeRefusal?.();
    if (refused !== undefined) return fail(refused);
    const view = this.options.view();
    let planned: { key: string; plan: SubscriptionPlan }[];
    try {
      planned = this.compileAll(client, this.expandQueries(client, view, queryStrings), view);
    } catch (e) {
      return fail(errorText(e));
    }
    const rows: SingleTableRows[] = [];
    try {
      runWithBudget(this.newBudget(client), () => {
        for (const p of planned) rows.push({ table: p.plan.returnTable.name, rows: p.plan.evaluate(view) });
      });
    } catch (e) {
      return fail(errorText(e));
    }
    const set: QuerySet = { client, id: querySetId, queries: [], textChars, epoch: 0, pending: undefined };
    for (const p of planned) {
      const query = this.intern(p.key, p.plan);
      query.sets.add(set);
      set.queries.push(query);
    }
    client.sets.set(querySetId, set);
    client.queryCount += set.queries.length;
    client.queryTextChars += textChars;
    return { tag: 'SubscribeApplied', requestId, querySetId, rows };
  }

  /** Handles Unsubscribe: UnsubscribeApplied (with the dropped rows when asked), or SubscriptionError. */
  unsubscribe(handle: ClientHandle, requestId: number, querySetId: number, sendDroppedRows: boolean): ServerMessage {
    const client = this.clientOf(handle);
    const set = client.sets.get(querySetId);
    if (set === undefined) {
      return { tag: 'SubscriptionError', requestId, querySetId, error: `Subscription not found: query set ${querySetId}` };
    }
    let rows: SingleTableRows[] | undefined;
    let error: string | undefined;
    if (sendDroppedRows) {
      const view = this.options.view();
      try {
        rows = runWithBudget(this.newBudget(), () => set.queries.map((q) => ({ table: q.plan.returnTable.name, rows: q.plan.evaluate(view) })));
      } catch (e) {
        error = errorText(e);
      }
    }
    // Dropped either way: the client asked to leave, and a SubscriptionError also means the set is gone.
    this.dropSet(set);
    client.sets.delete(querySetId);
    if (error !== undefined) return { tag: 'SubscriptionError', requestId, querySetId, error };
    return { tag: 'UnsubscribeApplied', requestId, querySetId, rows };
  }

  /**
   * Evaluates a one-off query with the subscription SQL subset (OneOffQueryResult). Not registered anywhere.
   */
  oneOffQuery(handle: ClientHandle, requestId: number, queryString: string): ServerMessage {
    const client = this.clientOf(handle);
    try {
      const view = this.options.view();
      const [p] = this.compileAll(client, [queryString], view);
      const rows = runWithBudget(this.newBudget(client), () => p.plan.evaluate(view));
      return { tag: 'OneOffQueryResult', requestId, result: { ok: true, rows: [{ table: p.plan.returnTable.name, rows }] } };
    } catch (e) {
      return { tag: 'OneOffQueryResult', requestId, result: { ok: false, error: errorText(e) } };
    }
  }

  /**
   * Computes and delivers the effect of one committed transaction. `callerConnectionId` is the connection whose
   * reducer call produced it (its sink is told even when nothing changed); undefined for HTTP calls, schedules, etc.
   */
  handleCommit(tx: TxData, callerConnectionId: bigint | undefined, durable?: Promise<unknown>): void {
    this.lastDurable = durable;
    const caller = callerConnectionId === undefined ? undefined : this.clients.get(callerConnectionId);
    // O(1) per touched table: most commits of a busy database touch no subscribed table at all.
    let affected: Set<Query> | undefined;
    let changesByTable: Map<TableId, TableChanges> | undefined;
    /** Rows decoded once for every query that looks at their values (a row's table fixes its type). */
    const decoded = new Map<Uint8Array, Value[]>();
    let view: ReadView | undefined;
    const readView = () => (view ??= this.options.view());
    for (const t of tx.tables) {
      if (t.inserts.length === 0 && t.deletes.length === 0) continue;
      const qs = this.queriesByTable.get(t.tableId);
      if (qs === undefined) continue;
      (changesByTable ??= new Map()).set(t.tableId, t);
      qs.collect(t, decoded, readView, (affected ??= new Set()));
    }
    if (affected === undefined || changesByTable === undefined) {
      caller?.sink.transaction(noQuerySets, true, durable);
      return;
    }
    const perClient = new Map<Client, Map<number, EncodedTableUpdate[]>>();
    const epoch = ++this.commitEpoch;
    /** Sets of multi-query sets whose client gets a shared frame once all their updates are known. */
    const gathered: QuerySet[] = [];
    /** Per-commit numbering of updates, the key of a gathered set's update list. */
    const updateIndex = new Map<EncodedTableUpdate, number>();
    const failed: { query: Query; error: string }[] = [];
    for (const query of affected) {
      let update: EncodedTableUpdate | undefined;
      try {
        update = this.queryDelta(query, tx, changesByTable, readView, decoded);
      } catch (e) {
        failed.push({ query, error: errorText(e) });
        continue;
      }
      if (update === undefined) continue;
      updateIndex.set(update, updateIndex.size);
      for (const set of query.sets) {
        const client = set.client;
        if (client !== caller && client.sets.size === 1 && client.sink.sharedTransaction) {
          // The common case (one set of one query, not the caller) gets the shared frame: nothing per subscriber
          // but a Map lookup. Such a client cannot have a failed set or any other update in this commit.
          if (set.queries.length === 1) {
            client.sink.sharedTransaction(transactionUpdateFrame(update, set.id), durable);
          } else if (set.epoch !== epoch) {
            set.epoch = epoch;
            set.pending = [update];
            gathered.push(set);
          } else {
            set.pending!.push(update);
          }
          continue;
        }
        let sets = perClient.get(client);
        if (sets === undefined) perClient.set(client, (sets = new Map()));
        let updates = sets.get(set.id);
        if (updates === undefined) sets.set(set.id, (updates = []));
        updates.push(update);
      }
    }
    // A failed live set is dropped and reported before this transaction's updates (as upstream does).
    for (const { query, error } of failed) {
      for (const set of [...query.sets]) {
        perClient.get(set.client)?.delete(set.id);
        this.dropSet(set);
        set.client.sets.delete(set.id);
        set.client.sink.querySetFailed(set.id, error);
      }
    }
    if (gathered.length > 0) this.deliverGathered(gathered, updateIndex, durable);
    for (const [client, sets] of perClient) {
      if (sets.size === 0 && client !== caller) continue;
      client.sink.transaction(toQuerySetUpdates(sets), client === caller, durable);
    }
    if (caller !== undefined && !perClient.has(caller)) caller.sink.transaction(noQuerySets, true, durable);
  }

  /**
   * Shared frames for single-set clients whose set has several queries: the frame depends only on the query set id
   * and the ordered list of updates (every set lists them in the commit's query order), so clients with the same
   * shape share one Buffer. A set dropped by a failure above gets nothing.
   */
  private deliverGathered(
    gathered: QuerySet[], updateIndex: Map<EncodedTableUpdate, number>, durable: Promise<unknown> | undefined,
  ): void {
    const frames = new Map<string, Buffer>();
    for (const set of gathered) {
      const updates = set.pending!;
      set.pending = undefined;
      if (set.client.sets.get(set.id) !== set) continue;
      let frame: Buffer | undefined;
      if (updates.length === 1) {
        frame = transactionUpdateFrame(updates[0], set.id);
      } else {
        let key = String(set.id);
        for (const u of updates) key += ',' + updateIndex.get(u)!;
        frame = frames.get(key);
        if (frame === undefined) frames.set(key, (frame = encodeTransactionUpdateFrame(updates, set.id)));
      }
      set.client.sink.sharedTransaction!(frame, durable);
    }
  }

  /**
   * After a module update (host/update.ts): a breaking plan closes every client (1001, the session then runs the new
   * module's client_disconnected); otherwise every live query is recompiled against the new schema (table ids are
   * positional, so old plans are stale) and a query that no longer compiles fails its query sets.
   */
  moduleChanged(breaksClients: boolean): void {
    if (breaksClients) {
      for (const client of [...this.clients.values()]) {
        client.sink.fail?.(moduleUpdateCloseCode, 'The database module was updated with breaking changes; reconnect.');
      }
      return;
    }
    const view = this.options.view();
    this.queriesByTable.clear();
    for (const query of [...this.queries.values()]) {
      const anySet = query.sets.values().next().value as QuerySet | undefined;
      if (anySet === undefined) { this.queries.delete(query.key); continue; }
      const { client } = anySet;
      try {
        query.plan = this.options.compile(query.key.slice(query.key.indexOf(':') + 1), view,
          { sender: client.identity, isOwner: client.isOwner });
        if (query.plan.diffsLastResult === true) runWithBudget(this.newBudget(), () => query.plan.evaluate(view));
      } catch (e) {
        this.queries.delete(query.key);
        for (const set of [...query.sets]) {
          this.dropSet(set);
          set.client.sets.delete(set.id);
          set.client.sink.querySetFailed(set.id, errorText(e));
        }
        continue;
      }
      this.register(query);
    }
  }

  /** One query's delta as an encoded TableUpdate, or undefined when the result did not change. */
  private queryDelta(
    query: Query, tx: TxData, changesByTable: Map<TableId, TableChanges>, view: () => ReadView,
    decoded: Map<Uint8Array, Value[]>,
  ): EncodedTableUpdate | undefined {
    const { plan } = query;
    let inserts: Uint8Array[];
    let deletes: Uint8Array[];
    if (!plan.isJoin) {
      const changes = changesByTable.get(plan.returnTable.tableId);
      if (changes === undefined) return undefined;
      inserts = filterRows(changes.inserts, plan, decoded);
      deletes = filterRows(changes.deletes, plan, decoded);
    } else {
      // A join's delta is bounded by its changes times the lookups' fan-out, which a big commit can make huge.
      ({ inserts, deletes } = runWithBudget(this.newBudget(), () => plan.delta(view(), tx)));
    }
    if (plan.returnTable.isEvent) {
      return inserts.length === 0 ? undefined : encodeTableUpdate(plan.returnTable.name, { tag: 'EventTable', events: inserts });
    }
    if (inserts.length === 0 && deletes.length === 0) return undefined;
    return encodeTableUpdate(plan.returnTable.name, { tag: 'PersistentTable', inserts, deletes });
  }

  /** A request budget; given the client, with the row limit when it applies to that client (non-owners). */
  private newBudget(client?: Client): QueryBudget {
    const budget = new QueryBudget(this.options.queryLimits ?? sqlQueryLimits);
    if (client !== undefined && !client.isOwner) budget.rowLimit = this.options.rowLimit?.();
    return budget;
  }

  private clientOf(handle: ClientHandle): Client {
    const client = this.clients.get(handle.connectionId);
    assert.ok(client !== undefined, 'client is not registered with this subscription manager');
    return client;
  }

  /** `SELECT * FROM *` stands for every table the caller may read. */
  private expandQueries(client: Client, view: ReadView, queryStrings: string[]): string[] {
    const out: string[] = [];
    for (const q of queryStrings) {
      if (!selectAllTablesPattern.test(q)) {
        out.push(q);
        continue;
      }
      for (const t of view.schema().tables) {
        if (t.access === 'public' || client.isOwner) out.push(`SELECT * FROM "${t.name.replaceAll('"', '""')}"`);
      }
    }
    return out;
  }

  /** Compiles every query; the first failure throws (and nothing is registered). Duplicates in one set collapse. */
  private compileAll(client: Client, texts: string[], view: ReadView): { key: string; plan: SubscriptionPlan }[] {
    const out: { key: string; plan: SubscriptionPlan }[] = [];
    const seen = new Set<string>();
    for (const raw of texts) {
      const text = raw.trim();
      if (Buffer.byteLength(text, 'utf8') > queryTextMaxBytes) {
        throw new SubscriptionQueryError(`Query text is longer than ${queryTextMaxBytes} bytes`);
      }
      const plan = this.options.compile(text, view, { sender: client.identity, isOwner: client.isOwner });
      const key = `${client.isOwner ? 'o' : 'p'}${plan.usesSender ? client.identity.toString(16) : ''}:${text}`;
      if (seen.has(key)) continue;
      seen.add(key);
      // Reuse the shared plan when one is live: identical key means an identical plan.
      out.push({ key, plan: this.queries.get(key)?.plan ?? plan });
    }
    return out;
  }

  private intern(key: string, plan: SubscriptionPlan): Query {
    let query = this.queries.get(key);
    if (query !== undefined) return query;
    query = { key, plan, sets: new Set() };
    this.queries.set(key, query);
    this.register(query);
    return query;
  }

  /** Files `query` under every table it reads, where commits find it. */
  private register(query: Query): void {
    for (const tableId of query.plan.readTables) {
      let qs = this.queriesByTable.get(tableId);
      if (qs === undefined) this.queriesByTable.set(tableId, (qs = new TableQueries(tableId)));
      qs.add(query);
    }
  }

  /** Detaches a set from its queries and forgets queries nobody uses any more (the caller removes it from its client). */
  private dropSet(set: QuerySet): void {
    set.client.queryCount -= set.queries.length;
    set.client.queryTextChars -= set.textChars;
    for (const query of set.queries) {
      query.sets.delete(set);
      if (query.sets.size > 0) continue;
      this.queries.delete(query.key);
      for (const tableId of query.plan.readTables) {
        const qs = this.queriesByTable.get(tableId);
        qs?.delete(query);
        if (qs?.size === 0) this.queriesByTable.delete(tableId);
      }
    }
  }
}

/**
 * The live queries that read one table. A query whose WHERE requires `column = constant` on this table
 * (SubscriptionPlan.equalityFilter) is filed under that value and asked only about commits with a changed row of that
 * value; a join of this table with the constant's table (SubscriptionPlan.joinEdge) is filed under the constant too,
 * and asked only when a changed row of this table reaches it through the join; the others are asked about every change.
 * 1,000 clients each subscribed to `… WHERE room = <its own>` cost ~500 CPU-µs per one-row commit when every query
 * looked at every changed row; 1,000 clients each joining messages to their own memberships (ten to a room), 11–13
 * CPU-ms per message when every join computed its delta, 0.2 after (BENCHMARKS.md "Many clients, a join each").
 */
class TableQueries {
  /** Queries asked about every change of the table: other filters, joins without an edge from this table. */
  private readonly everyChange = new Set<Query>();
  /** column → equalityKey of the value → the queries that need it. */
  private readonly byValue = new Map<number, Map<string, Set<Query>>>();
  /** ConstantEdge id → the edge (any plan's: all with one id reach alike) and equalityKey of the constant → queries. */
  private readonly byEdge = new Map<string, { edge: ConstantEdge; byKey: Map<string, Set<Query>> }>();
  private keyed = 0;
  /** Decodes a changed row for the lookups by value: any such plan's (all have this table's row type). */
  private decodeRow: ((row: Uint8Array) => Value[]) | undefined;

  constructor(private readonly tableId: TableId) {}

  get size(): number { return this.everyChange.size + this.keyed; }

  add(query: Query): void {
    const plan = query.plan;
    const filed = this.filing(plan);
    if (filed === undefined) { this.everyChange.add(query); return; }
    if (addTo(filed.byKey, plan.equalityFilter!.key, query)) this.keyed++;
    if (filed.byEdge === undefined) this.decodeRow = (row) => plan.decodeRow!(row);
  }

  delete(query: Query): void {
    const plan = query.plan;
    const filed = this.filing(plan, false);
    if (filed === undefined) { this.everyChange.delete(query); return; }
    const key = plan.equalityFilter!.key;
    const qs = filed.byKey.get(key);
    if (qs === undefined || !qs.delete(query)) return;
    this.keyed--;
    if (qs.size > 0) return;
    filed.byKey.delete(key);
    if (filed.byKey.size > 0) return;
    if (filed.byEdge !== undefined) this.byEdge.delete(filed.byEdge); else this.byValue.delete(plan.equalityFilter!.column);
  }

  /**
   * Adds to `out` every query that `changes` (of this table) may affect; `decoded` caches rows' values, `view` is the
   * committed state after the commit (for the join edges' lookups).
   */
  collect(changes: TableChanges, decoded: Map<Uint8Array, Value[]>, view: () => ReadView, out: Set<Query>): void {
    for (const q of this.everyChange) out.add(q);
    if (this.keyed === 0) return;
    for (const rows of [changes.inserts, changes.deletes]) {
      for (const row of rows) {
        if (this.byValue.size > 0) {
          let values = decoded.get(row);
          if (values === undefined) decoded.set(row, (values = this.decodeRow!(row)));
          for (const [column, byKey] of this.byValue) addAll(byKey.get(equalityKey(values[column]!)), out);
        }
        for (const { edge, byKey } of this.byEdge.values()) {
          for (const key of edge.keysReached(view(), row, decoded)) addAll(byKey.get(key), out);
        }
      }
    }
  }

  /**
   * Where `plan` is filed here: the value map of its filtered column (this is its constant's table) or of its join
   * edge (this is the other table of its join); undefined for every change. `create` makes missing maps.
   */
  private filing(plan: SubscriptionPlan, create = true): { byKey: Map<string, Set<Query>>; byEdge?: string } | undefined {
    const filter = plan.equalityFilter;
    if (filter === undefined || plan.decodeRow === undefined) return undefined;
    if (filter.tableId === this.tableId) {
      let byKey = this.byValue.get(filter.column);
      if (byKey === undefined && create) this.byValue.set(filter.column, (byKey = new Map()));
      return byKey === undefined ? undefined : { byKey };
    }
    const edge = plan.joinEdge;
    if (edge === undefined || edge.tableId !== this.tableId) return undefined;
    let filed = this.byEdge.get(edge.id);
    if (filed === undefined && create) this.byEdge.set(edge.id, (filed = { edge, byKey: new Map() }));
    return filed === undefined ? undefined : { byKey: filed.byKey, byEdge: edge.id };
  }
}

type ConstantEdge = NonNullable<SubscriptionPlan['joinEdge']>;

/** Adds `query` under `key`; false when it was there already. */
function addTo(byKey: Map<string, Set<Query>>, key: string, query: Query): boolean {
  let qs = byKey.get(key);
  if (qs === undefined) byKey.set(key, (qs = new Set()));
  if (qs.has(query)) return false;
  qs.add(query);
  return true;
}

function addAll(queries: Set<Query> | undefined, out: Set<Query>): void {
  if (queries !== undefined) for (const q of queries) out.add(q);
}

/** What a database offers the subscription layer (host/database.ts `Database` satisfies it). */
export interface CommitSource {
  /** Committed state between transactions. */
  readonly datastore: ReadView;
  /** Listener called synchronously after every commit, before the next transaction starts. */
  onCommit(listener: (event: CommitNotice) => void): () => void;
  /** Wraps the compiler with per-caller semantics the database owns (views, row-level security: host/views.ts). */
  wrapCompile?(base: CompileQuery): CompileQuery;

  /** The row limit for non-owners' new queries (host/database.ts `rowLimit`: `SET row_limit`). */
  rowLimit?(): bigint | undefined;

  /** Why a new subscription is refused now (host/database.ts: the server's memory bound), or undefined. */
  subscribeRefusal?(): string | undefined;

  /** Module updates (host/database.ts `onModuleChange`), called between transactions. */
  onModuleChange?(listener: (change: { breaksClients: boolean }) => void): () => void;
}

export interface CommitNotice {
  txData: TxData;
  caller: { connectionId: bigint };
  /** Resolves when the commit is durable; absent when the host has no durability wait (treated as durable). */
  durable?: Promise<unknown>;
}

const managers = new WeakMap<CommitSource, SubscriptionManager>();

/** What GET /v1/metrics reports of a database's subscriptions. */
export interface SubscriptionCounts { readonly clientCount: number; readonly queryCount: number }

/**
 * The database's subscription counts if a client ever used them (GET /v1/metrics reads them without creating a
 * manager). A database that evaluates its subscriptions elsewhere (host/worker/proxy.ts) reports its own.
 */
export function existingSubscriptions(db: CommitSource & { subscriptionCounts?(): SubscriptionCounts | undefined }): SubscriptionCounts | undefined {
  return db.subscriptionCounts !== undefined ? db.subscriptionCounts() : managers.get(db);
}

/** The database's subscription manager, created and hooked to its commits on first use. */
export function subscriptionsFor(db: CommitSource, compile: CompileQuery): SubscriptionManager {
  let mgr = managers.get(db);
  if (mgr !== undefined) return mgr;
  const created = new SubscriptionManager({
    view: () => db.datastore, compile: db.wrapCompile?.(compile) ?? compile, rowLimit: () => db.rowLimit?.(),
    subscribeRefusal: () => db.subscribeRefusal?.(),
  });
  db.onCommit((e) => created.handleCommit(e.txData, e.caller.connectionId, e.durable));
  db.onModuleChange?.((change) => created.moduleChanged(change.breaksClients));
  managers.set(db, created);
  return created;
}

function filterRows(rows: Uint8Array[], plan: SubscriptionPlan, decoded: Map<Uint8Array, Value[]>): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const row of rows) if (plan.matchesWith !== undefined ? plan.matchesWith(row, decoded) : plan.matches(row)) out.push(row);
  return out;
}

function toQuerySetUpdates(sets: Map<number, EncodedTableUpdate[]>): QuerySetUpdate[] {
  const out: QuerySetUpdate[] = [];
  for (const [querySetId, tables] of sets) out.push({ querySetId, tables });
  out.sort((a, b) => a.querySetId - b.querySetId);
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
