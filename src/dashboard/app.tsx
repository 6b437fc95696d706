// src/dashboard/app.tsx — the dashboard page (docs/dashboard.md): sign-in, the database list, and per database its
// tables (schema, indexes, row counts, live rows), a SQL console, the live module log, reducers and procedures with a
// call form, the migration history and metrics charts.
// Owns: the page's state, navigation (the URL fragment names the database and tab; it never holds a secret) and
// keyboard shortcuts. May call: api.tsx, live.tsx, metrics.tsx, format.tsx, preact, uPlot.
//
// Everything shown comes from the /v1 routes the CLI uses, as the signed-in identity: what the server refuses (a
// private table's rows for a non-owner, another identity's logs) is shown as the server's refusal.

import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import {
  ApiError, columnName, getJson, ownedDatabases, postJson, request, savedSession, saveSession, signInAsNewIdentity,
  signInFromFragment, signInWithToken, sql, type DatabaseEntry, type Session, type SqlResult,
} from './api.js';
import { bytesText, cellText, typeText, type TypeJson, type TypeNames, type Typespace } from './format.js';
import { subscribeTable, type LiveState } from './live.js';
import { pointBetween, scrapeMetrics, type Point, type Scrape } from './metrics.js';

/** Rows shown per page of a table. */
const pageRowsMax = 50;
/** A live table view subscribes only up to this many rows; a bigger table shows a SQL page instead. */
const liveRowsMax = 10_000;
/** Module log records kept on the page (older ones scroll away). */
const logRecordsMax = 2_000;
/** Metrics scrape interval and points kept per chart (2 minutes). */
const metricsIntervalMs = 2_000;
const metricsPointsMax = 60;

const tabs = ['tables', 'sql', 'logs', 'reducers', 'history', 'metrics'] as const;
type Tab = (typeof tabs)[number];

interface Route { database?: string; tab: Tab; table?: string }

function parseRoute(): Route {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] !== 'db' || parts[1] === undefined || parts[1] === '') return { tab: 'tables' };
  const tab = (tabs as readonly string[]).includes(parts[2] ?? '') ? (parts[2] as Tab) : 'tables';
  return { database: parts[1], tab, table: parts[3] };
}

function routeHash(route: Route): string {
  if (route.database === undefined) return '#/';
  const table = route.table === undefined ? '' : `/${encodeURIComponent(route.table)}`;
  return `#/db/${encodeURIComponent(route.database)}/${route.tab}${table}`;
}

function go(route: Route): void {
  location.hash = routeHash(route);
}

function useRoute(): Route {
  const [route, setRoute] = useState(parseRoute);
  useEffect(() => {
    const onHash = () => setRoute(parseRoute());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

function errorText(error: unknown): string {
  return error instanceof ApiError ? `${error.status}: ${error.message}` : (error as Error).message;
}

// ─── App and sign-in ────────────────────────────────────────────────────────────────────────────────────────────

function App() {
  const [session, setSession] = useState<Session | undefined>(savedSession);
  const [error, setError] = useState<string>();
  useEffect(() => {
    signInFromFragment().then((fromCode) => {
      if (fromCode === undefined) return;
      saveSession(fromCode);
      setSession(fromCode);
    }, (e: unknown) => setError(`Sign-in code refused: ${errorText(e)}`));
  }, []);
  const signIn = (s: Session) => {
    saveSession(s);
    setSession(s);
    setError(undefined);
  };
  if (session === undefined) return <SignIn onSignIn={signIn} error={error} />;
  return <Shell session={session} onSignOut={() => { saveSession(undefined); setSession(undefined); go({ tab: 'tables' }); }} />;
}

function SignIn(props: { onSignIn: (s: Session) => void; error?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(props.error);
  useEffect(() => setError(props.error), [props.error]);
  const attempt = (p: Promise<Session>) => p.then(props.onSignIn, (e: unknown) => setError(errorText(e)));
  return (
    <main class="signin">
      <h1>spacetime dashboard</h1>
      <p>Run <code>spacetime dashboard</code> to sign in with the CLI's identity, or paste a token
        (<code>spacetime login show --token</code>).</p>
      <form onSubmit={(e) => { e.preventDefault(); void attempt(signInWithToken(token)); }}>
        <label for="token">Token</label>
        <input id="token" type="password" autocomplete="off" value={token} onInput={(e) => setToken(e.currentTarget.value)} autofocus />
        <button type="submit" disabled={token.trim() === ''}>Sign in</button>
      </form>
      <p><button type="button" onClick={() => void attempt(signInAsNewIdentity())}>Use a new identity</button> (minted by
        this server; it owns no databases)</p>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
    </main>
  );
}

function Shell(props: { session: Session; onSignOut: () => void }) {
  const { session } = props;
  const route = useRoute();
  const [owned, setOwned] = useState<DatabaseEntry[]>();
  const [listError, setListError] = useState<string>();
  const [other, setOther] = useState('');
  useEffect(() => {
    ownedDatabases(session).then(setOwned, (e: unknown) => setListError(errorText(e)));
  }, [session, route.database]);
  useKeyboard(route);
  return (
    <div class="shell">
      <header>
        <span class="brand">spacetime</span> <span class="muted">{location.host}</span>
        <span class="grow" />
        <span class="muted" title={session.identity}>identity {session.identity.slice(0, 16)}…</span>
        <button type="button" onClick={props.onSignOut}>Sign out</button>
      </header>
      <nav class="sidebar" aria-label="Databases">
        <h2>Your databases</h2>
        {listError !== undefined && <p class="error">{listError}</p>}
        {owned?.length === 0 && <p class="muted">none</p>}
        <ul>
          {owned?.map((db) => {
            const label = db.names[0] ?? db.identity.slice(0, 16);
            const current = route.database === label || route.database === db.identity;
            return <li key={db.identity}><a href={routeHash({ database: label, tab: route.tab })} aria-current={current ? 'page' : undefined}>{label}</a></li>;
          })}
        </ul>
        <form onSubmit={(e) => { e.preventDefault(); if (other.trim() !== '') go({ database: other.trim(), tab: 'tables' }); }}>
          <label for="open-db">Open by name or identity</label>
          <input id="open-db" value={other} onInput={(e) => setOther(e.currentTarget.value)} placeholder="name" />
        </form>
        <p class="muted keys">keys: 1–6 tabs · / SQL · ctrl+enter run</p>
      </nav>
      <main class="content">
        {route.database === undefined
          ? <p class="muted">Choose a database.</p>
          : <DatabaseView key={route.database} session={session} route={route as Route & { database: string }} />}
      </main>
    </div>
  );
}

/** Digits 1–6 switch tabs and `/` jumps to the SQL console, unless the user is typing in a field. */
function useKeyboard(route: Route): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      if (route.database === undefined || e.ctrlKey || e.metaKey || e.altKey) return;
      if (target.closest('input, textarea, select') !== null) return;
      const index = Number(e.key) - 1;
      if (Number.isInteger(index) && index >= 0 && index < tabs.length) go({ database: route.database, tab: tabs[index]! });
      else if (e.key === '/') {
        e.preventDefault();
        go({ database: route.database, tab: 'sql' });
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [route.database]);
}

// ─── One database ───────────────────────────────────────────────────────────────────────────────────────────────

interface SchemaV9 {
  typespace: Typespace;
  tables: { name: string; product_type_ref: number; primary_key: number[]; indexes: { name: { some?: string }; accessor_name: { some?: string }; algorithm: Record<string, any> }[];
    constraints: { data: Record<string, any> }[]; table_type: Record<string, unknown>; table_access: Record<string, unknown> }[];
  reducers: { name: string; params: { elements: { name: { some?: string }; algebraic_type: TypeJson }[] }; lifecycle: { some?: Record<string, unknown> } }[];
  types: { name: { name: string }; ty: number }[];
  misc_exports: { Procedure?: { name: string; params: SchemaV9['reducers'][number]['params']; return_type: TypeJson } }[];
}

interface DatabaseInfo {
  identity: string;
  owner: string;
  schema: SchemaV9;
  typeNames: TypeNames;
}

function DatabaseView(props: { session: Session; route: Route & { database: string } }) {
  const { session, route } = props;
  const [info, setInfo] = useState<DatabaseInfo>();
  const [error, setError] = useState<string>();
  const base = `/v1/database/${encodeURIComponent(route.database)}`;
  useEffect(() => {
    Promise.all([getJson<any>(session, base), getJson<SchemaV9>(session, `${base}/schema?version=9`)]).then(([meta, schema]) => {
      const hex = (v: { __identity__: string }) => v.__identity__.replace(/^0x/, '');
      const typeNames: TypeNames = new Map(schema.types.map((t) => [t.ty, t.name.name]));
      setInfo({ identity: hex(meta.database_identity), owner: hex(meta.owner_identity), schema, typeNames });
    }, (e: unknown) => setError(errorText(e)));
  }, [route.database]);
  if (error !== undefined) return <p class="error" role="alert">{error}</p>;
  if (info === undefined) return <p class="muted">loading…</p>;
  const isOwner = info.owner === session.identity;
  return (
    <section>
      <h1>{route.database} <span class="muted small">{info.identity}</span></h1>
      <p class="muted small">owner {info.owner}{isOwner ? ' (you)' : ''}</p>
      <div role="tablist" class="tabs">
        {tabs.map((tab, i) => (
          <a role="tab" href={routeHash({ database: route.database, tab })} aria-selected={route.tab === tab} key={tab}>{i + 1} {tab}</a>
        ))}
      </div>
      <div role="tabpanel" class="panel">
        {route.tab === 'tables' && <TablesTab session={session} route={route} info={info} isOwner={isOwner} />}
        {route.tab === 'sql' && <SqlTab session={session} database={route.database} />}
        {route.tab === 'logs' && <LogsTab session={session} base={base} />}
        {route.tab === 'reducers' && <ReducersTab session={session} base={base} info={info} />}
        {route.tab === 'history' && <HistoryTab session={session} base={base} />}
        {route.tab === 'metrics' && <MetricsTab session={session} info={info} />}
      </div>
    </section>
  );
}

// ─── Tables ─────────────────────────────────────────────────────────────────────────────────────────────────────

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function tableColumns(info: DatabaseInfo, tableName: string): { name: string; type: TypeJson }[] {
  const table = info.schema.tables.find((t) => t.name === tableName);
  if (table === undefined) return [];
  const row = info.schema.typespace.types[table.product_type_ref] as { Product: { elements: { name: { some?: string }; algebraic_type: TypeJson }[] } };
  return row.Product.elements.map((e, i) => ({ name: e.name.some ?? `column ${i}`, type: e.algebraic_type }));
}

function TablesTab(props: { session: Session; route: Route & { database: string }; info: DatabaseInfo; isOwner: boolean }) {
  const { session, route, info } = props;
  const [counts, setCounts] = useState<Record<string, string>>({});
  useEffect(() => {
    for (const table of info.schema.tables) {
      // Counted as the signed-in identity: a table it may not read shows the server's refusal, not a number.
      sql(session, route.database, `SELECT COUNT(*) AS n FROM ${quoteIdent(table.name)}`).then(
        (r) => setCounts((c) => ({ ...c, [table.name]: String(r[0]?.rows[0]?.[0] ?? '?') })),
        () => setCounts((c) => ({ ...c, [table.name]: 'no access' })),
      );
    }
  }, [info]);
  return (
    <div>
      <table class="grid">
        <thead><tr><th>table</th><th>access</th><th>rows</th><th>columns</th><th>indexes</th></tr></thead>
        <tbody>
          {info.schema.tables.map((table) => {
            const columns = tableColumns(info, table.name);
            const access = Object.keys(table.table_access)[0]?.toLowerCase() ?? '';
            const system = Object.keys(table.table_type)[0] === 'System';
            return (
              <tr key={table.name} aria-current={route.table === table.name ? 'true' : undefined}>
                <td><a href={routeHash({ ...route, tab: 'tables', table: table.name })}>{table.name}</a>{system ? ' (system)' : ''}</td>
                <td>{access}</td>
                <td class="num" data-table-count={table.name}>{counts[table.name] ?? '…'}</td>
                <td>{columns.map((c, i) => (
                  <div key={c.name}>{c.name}: {typeText(c.type, info.schema.typespace, info.typeNames)}{table.primary_key.includes(i) ? ' (pk)' : ''}</div>
                ))}</td>
                <td>{table.indexes.map((ix) => {
                  const [kind, cols] = Object.entries(ix.algorithm)[0] ?? ['?', []];
                  const colNames = (Array.isArray(cols) ? cols : [cols]).map((c: number) => columns[c]?.name ?? c).join(', ');
                  return <div key={ix.name.some}>{ix.accessor_name.some ?? ix.name.some} {kind.toLowerCase()}({colNames})</div>;
                })}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {route.table !== undefined && (
        <TableRows key={route.table} session={session} database={route.database} info={info} table={route.table} count={counts[route.table]} />
      )}
    </div>
  );
}

function TableRows(props: { session: Session; database: string; info: DatabaseInfo; table: string; count?: string }) {
  const { session, database, info, table } = props;
  const [live, setLive] = useState<LiveState>({ status: 'connecting', rows: [], updates: 0 });
  const [page, setPage] = useState(0);
  const tooBig = props.count !== undefined && Number(props.count) > liveRowsMax;
  useEffect(() => {
    if (props.count === undefined || props.count === 'no access' || tooBig) return;
    return subscribeTable(session, database, `SELECT * FROM ${quoteIdent(table)}`, setLive);
  }, [table, props.count === undefined, tooBig]);
  const columns = tableColumns(info, table);
  if (props.count === 'no access') return <p class="error" role="alert">{table}: this identity may not read this table.</p>;
  if (tooBig) return <p class="muted">{table} has {props.count} rows, more than the live view holds ({liveRowsMax}); query it in the SQL tab.</p>;
  const pages = Math.max(1, Math.ceil(live.rows.length / pageRowsMax));
  const shown = Math.min(page, pages - 1);
  const rows = live.rows.slice(shown * pageRowsMax, (shown + 1) * pageRowsMax);
  return (
    <section class="rows" aria-label={`rows of ${table}`}>
      <h2>{table} <span class="muted small" data-live-status={live.status}>
        {live.status === 'live' ? `live · ${live.rows.length} rows · ${live.updates} updates` : live.status}
      </span></h2>
      {live.error !== undefined && <p class="error" role="alert">{live.error}</p>}
      <ResultTable columns={columns.map((c) => c.name)} types={columns.map((c) => c.type)} rows={rows} typespace={info.schema.typespace} />
      <p class="pager">
        <button type="button" onClick={() => setPage(Math.max(0, shown - 1))} disabled={shown === 0}>‹ prev</button>
        {' '}page {shown + 1} of {pages}{' '}
        <button type="button" onClick={() => setPage(shown + 1)} disabled={shown + 1 >= pages}>next ›</button>
      </p>
    </section>
  );
}

function ResultTable(props: { columns: string[]; types: (TypeJson | undefined)[]; rows: unknown[][]; typespace: Typespace }) {
  return (
    <div class="scroll">
      <table class="grid result">
        <thead><tr>{props.columns.map((c, i) => <th key={i}>{c}</th>)}</tr></thead>
        <tbody>
          {props.rows.map((row, r) => (
            <tr key={r}>{row.map((v, i) => <td key={i}>{cellText(v, props.types[i], props.typespace)}</td>)}</tr>
          ))}
        </tbody>
      </table>
      <p class="muted small">({props.rows.length} {props.rows.length === 1 ? 'row' : 'rows'})</p>
    </div>
  );
}

// ─── SQL ────────────────────────────────────────────────────────────────────────────────────────────────────────

function SqlTab(props: { session: Session; database: string }) {
  const [query, setQuery] = useState('');
  const [results, setResults] = useState<SqlResult[]>();
  const [error, setError] = useState<string>();
  const [running, setRunning] = useState(false);
  const run = () => {
    setRunning(true);
    sql(props.session, props.database, query).then((r) => { setResults(r); setError(undefined); },
      (e: unknown) => { setResults(undefined); setError(errorText(e)); }).finally(() => setRunning(false));
  };
  const position = error === undefined ? undefined : /at line (\d+), column (\d+)/.exec(error);
  return (
    <div>
      <form onSubmit={(e) => { e.preventDefault(); run(); }}>
        <label for="sql">Query (ctrl+enter runs)</label>
        <textarea id="sql" rows={4} value={query} autofocus spellcheck={false} onInput={(e) => setQuery(e.currentTarget.value)}
          onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } }} />
        <button type="submit" disabled={running || query.trim() === ''}>Run</button>
      </form>
      {error !== undefined && (
        <div class="error" role="alert">
          <p>{error}</p>
          {position !== null && position !== undefined && <pre class="caret">{caretAt(query, Number(position[1]), Number(position[2]))}</pre>}
        </div>
      )}
      {results?.map((r, i) => (
        <div key={i} class="result-block">
          {r.schema.elements.length > 0
            ? <ResultTable columns={r.schema.elements.map(columnName)} types={r.schema.elements.map((e) => e.algebraic_type as TypeJson)} rows={r.rows} typespace={{ types: [] }} />
            : <p class="muted">{r.stats === undefined ? 'OK' : `inserted ${r.stats.rows_inserted}, deleted ${r.stats.rows_deleted}, updated ${r.stats.rows_updated}`}</p>}
          <p class="muted small">{Number(r.total_duration_micros)} µs</p>
        </div>
      ))}
    </div>
  );
}

/** The query's line with a caret under the column the server's error names (1-based). */
function caretAt(query: string, line: number, column: number): string {
  const text = query.split('\n')[line - 1] ?? '';
  return `${text}\n${' '.repeat(Math.max(0, column - 1))}^`;
}

// ─── Logs ───────────────────────────────────────────────────────────────────────────────────────────────────────

interface LogRecord { ts: number; level: string; message: string; target?: string; filename?: string; line_number?: number }
const levels = ['Trace', 'Debug', 'Info', 'Warn', 'Error', 'Panic'];

function LogsTab(props: { session: Session; base: string }) {
  const [records, setRecords] = useState<LogRecord[]>([]);
  const [minLevel, setMinLevel] = useState('Trace');
  const [error, setError] = useState<string>();
  const [following, setFollowing] = useState(false);
  useEffect(() => {
    // fetch, not EventSource: the token goes in the Authorization header. The route streams NDJSON while we read.
    const abort = new AbortController();
    const pending: LogRecord[] = [];
    let flushTimer: number | undefined;
    const flush = () => {
      flushTimer = undefined;
      const batch = pending.splice(0);
      setRecords((old) => [...old, ...batch].slice(-logRecordsMax));
    };
    void (async () => {
      try {
        const res = await fetch(`${props.base}/logs?num_lines=200&follow=true`, {
          headers: { Authorization: `Bearer ${props.session.token}` }, signal: abort.signal, cache: 'no-store',
        });
        if (!res.ok) throw new ApiError(res.status, (await res.text()).trim());
        setFollowing(true);
        const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
        let buffered = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += value;
          const lines = buffered.split('\n');
          buffered = lines.pop()!;
          for (const line of lines) if (line.trim() !== '') pending.push(JSON.parse(line) as LogRecord);
          flushTimer ??= window.setTimeout(flush, 50);
        }
        setFollowing(false);
      } catch (e) {
        if (!abort.signal.aborted) setError(errorText(e));
        setFollowing(false);
      }
    })();
    return () => {
      abort.abort();
      if (flushTimer !== undefined) clearTimeout(flushTimer);
    };
  }, [props.base]);
  const shown = useMemo(() => records.filter((r) => levels.indexOf(r.level) >= levels.indexOf(minLevel)), [records, minLevel]);
  const bottom = useRef<HTMLDivElement>(null);
  useEffect(() => bottom.current?.scrollIntoView({ block: 'nearest' }), [shown.length]);
  return (
    <div>
      <p>
        <label for="level">Level at least </label>
        <select id="level" value={minLevel} onChange={(e) => setMinLevel(e.currentTarget.value)}>
          {levels.map((l) => <option key={l} value={l}>{l.toLowerCase()}</option>)}
        </select>
        {' '}<span class="muted">{following ? 'following' : 'not following'} · {shown.length} of {records.length} records</span>
      </p>
      {error !== undefined && <p class="error" role="alert">{error}</p>}
      <div class="log" role="log" aria-live="polite">
        {shown.map((r, i) => (
          <div key={i} class={`log-line level-${r.level.toLowerCase()}`}>
            <span class="muted">{new Date(r.ts / 1000).toISOString()}</span> <span class="level">{r.level.toUpperCase().padEnd(5)}</span>{' '}
            {r.filename !== undefined && <span class="muted">{r.filename}:{r.line_number} </span>}{r.message}
          </div>
        ))}
        <div ref={bottom} />
      </div>
    </div>
  );
}

// ─── Reducers and procedures ────────────────────────────────────────────────────────────────────────────────────

interface Callable { kind: 'reducer' | 'procedure'; name: string; params: { name: string; type: TypeJson }[]; lifecycle?: string; returns?: TypeJson }

function callables(info: DatabaseInfo): Callable[] {
  const params = (p: SchemaV9['reducers'][number]['params']) => p.elements.map((e, i) => ({ name: e.name.some ?? `arg${i}`, type: e.algebraic_type }));
  const reducers = info.schema.reducers.map((r): Callable => ({
    kind: 'reducer', name: r.name, params: params(r.params), lifecycle: r.lifecycle.some === undefined ? undefined : Object.keys(r.lifecycle.some)[0],
  }));
  const procedures = info.schema.misc_exports.flatMap((m): Callable[] => m.Procedure === undefined ? [] : [{
    kind: 'procedure', name: m.Procedure.name, params: params(m.Procedure.params), returns: m.Procedure.return_type,
  }]);
  return [...reducers, ...procedures];
}

function ReducersTab(props: { session: Session; base: string; info: DatabaseInfo }) {
  const { info } = props;
  const all = callables(info);
  const [selected, setSelected] = useState<string>();
  const chosen = all.find((c) => c.name === selected);
  const sig = (c: Callable) => `${c.name}(${c.params.map((p) => `${p.name}: ${typeText(p.type, info.schema.typespace, info.typeNames)}`).join(', ')})` +
    (c.returns === undefined ? '' : ` → ${typeText(c.returns, info.schema.typespace, info.typeNames)}`);
  return (
    <div>
      <table class="grid">
        <thead><tr><th>kind</th><th>signature</th><th /></tr></thead>
        <tbody>
          {all.map((c) => (
            <tr key={c.name}>
              <td>{c.kind}{c.lifecycle !== undefined ? ` (${c.lifecycle})` : ''}</td>
              <td><code>{sig(c)}</code></td>
              <td>{c.lifecycle === undefined && <button type="button" onClick={() => setSelected(c.name)}>call…</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {chosen !== undefined && <CallForm key={chosen.name} session={props.session} base={props.base} callable={chosen} info={info} />}
    </div>
  );
}

/** An argument as typed: JSON when it parses (numbers, booleans, objects), else the text itself (strings). */
function argValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function CallForm(props: { session: Session; base: string; callable: Callable; info: DatabaseInfo }) {
  const { callable, info } = props;
  const [values, setValues] = useState<string[]>(callable.params.map(() => ''));
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string }>();
  const call = async () => {
    const args = JSON.stringify(callable.params.map((p, i) => {
      const text = values[i]!;
      return typeText(p.type, info.schema.typespace) === 'string' ? text : argValue(text);
    }));
    try {
      const res = await request(props.session, 'POST', `${props.base}/call/${encodeURIComponent(callable.name)}`, args, 'application/json');
      const body = await res.text();
      const micros = res.headers.get('spacetime-execution-duration-micros');
      setOutcome({ ok: true, text: callable.kind === 'procedure' ? `returned ${body}` : `committed${micros === null ? '' : ` in ${micros} µs`}` });
    } catch (e) {
      setOutcome({ ok: false, text: errorText(e) });
    }
  };
  return (
    <form class="call-form" onSubmit={(e) => { e.preventDefault(); void call(); }} aria-label={`call ${callable.name}`}>
      <h2>call {callable.name}</h2>
      {callable.params.map((p, i) => (
        <p key={p.name}>
          <label for={`arg-${p.name}`}>{p.name}: {typeText(p.type, info.schema.typespace, info.typeNames)}</label>
          <input id={`arg-${p.name}`} name={p.name} value={values[i]} autofocus={i === 0}
            onInput={(e) => { const next = [...values]; next[i] = e.currentTarget.value; setValues(next); }} />
        </p>
      ))}
      <button type="submit">Call</button>
      {outcome !== undefined && <p class={outcome.ok ? 'ok' : 'error'} role="status">{outcome.text}</p>}
    </form>
  );
}

// ─── Migration history ──────────────────────────────────────────────────────────────────────────────────────────

interface HistoryEntry { ts_micros: string; publisher: string; program_hash: string; op: string; plan: string }

function HistoryTab(props: { session: Session; base: string }) {
  const [entries, setEntries] = useState<HistoryEntry[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    getJson<{ entries: HistoryEntry[] }>(props.session, `${props.base}/unstable/migrations`).then((b) => setEntries(b.entries), (e: unknown) => setError(errorText(e)));
  }, [props.base]);
  if (error !== undefined) return <p class="error" role="alert">{error}</p>;
  if (entries === undefined) return <p class="muted">loading…</p>;
  return (
    <table class="grid">
      <thead><tr><th>#</th><th>when</th><th>op</th><th>publisher</th><th>program</th><th>plan</th></tr></thead>
      <tbody>
        {entries.map((e, i) => (
          <tr key={i}>
            <td class="num">{i + 1}</td><td>{new Date(Number(BigInt(e.ts_micros) / 1000n)).toISOString()}</td><td>{e.op}</td>
            <td title={e.publisher}>{e.publisher.slice(0, 16)}…</td><td title={e.program_hash}>{e.program_hash.slice(0, 12)}</td>
            <td><pre class="plan">{e.plan.trim() === '' ? '—' : e.plan.trim()}</pre></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// ─── Metrics ────────────────────────────────────────────────────────────────────────────────────────────────────

const charts: { key: keyof Point; title: string; unit: (v: number) => string }[] = [
  { key: 'callsPerSecond', title: 'reducer calls/s', unit: (v) => v.toFixed(1) },
  { key: 'p99Ms', title: 'p99 reducer latency (ms)', unit: (v) => v.toFixed(2) },
  { key: 'commitLogBytes', title: 'commit log (bytes written)', unit: bytesText },
  { key: 'memoryBytes', title: 'module memory (V8 heap)', unit: bytesText },
];

function MetricsTab(props: { session: Session; info: DatabaseInfo }) {
  const [points, setPoints] = useState<Point[]>([]);
  const [unavailable, setUnavailable] = useState<string>();
  useEffect(() => {
    let previous: Scrape | undefined;
    let stopped = false;
    const tick = async () => {
      const result = await scrapeMetrics(props.session);
      if (stopped) return;
      if (!result.ok) {
        setUnavailable(result.reason);
        return;
      }
      setUnavailable(undefined);
      const point = pointBetween(previous, result.scrape, props.info.identity);
      previous = result.scrape;
      setPoints((old) => [...old, point].slice(-metricsPointsMax));
    };
    void tick();
    const timer = setInterval(() => void tick(), metricsIntervalMs);
    return () => { stopped = true; clearInterval(timer); };
  }, [props.info.identity]);
  if (unavailable !== undefined) {
    return <p class="muted" role="status">Metrics are not available from this server (GET /v1/metrics: {unavailable}).</p>;
  }
  return (
    <div class="charts">
      {charts.map((c) => <Chart key={c.key} title={c.title} unit={c.unit} points={points} field={c.key} />)}
    </div>
  );
}

function Chart(props: { title: string; unit: (v: number) => string; points: Point[]; field: keyof Point }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  const values = props.points.map((p) => p[props.field] as number | undefined);
  const present = values.some((v) => v !== undefined);
  const data: uPlot.AlignedData = [props.points.map((p) => p.atMs / 1000), values.map((v) => v ?? null)];
  useEffect(() => {
    if (host.current === null || !present) return;
    if (plot.current === undefined) {
      plot.current = new uPlot({
        width: 420, height: 160, legend: { show: false }, cursor: { show: false },
        series: [{}, { stroke: '#222', width: 1.5, points: { show: false } }],
        axes: [{ font: '11px monospace' }, { font: '11px monospace', size: 70, values: (_u, ticks) => ticks.map(props.unit) }],
      }, data, host.current);
    } else {
      plot.current.setData(data);
    }
  });
  useEffect(() => () => plot.current?.destroy(), []);
  const last = values[values.length - 1];
  return (
    <figure class="chart" data-metric={props.field}>
      <figcaption>{props.title}: <strong>{last === undefined ? '—' : props.unit(last)}</strong></figcaption>
      {present ? <div ref={host} /> : <p class="muted">not reported by this server</p>}
    </figure>
  );
}

render(<App />, document.getElementById('app')!);
