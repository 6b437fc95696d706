// src/dashboard/api.tsx — the dashboard's client of the server's /v1 API: the same routes the CLI calls, with the
// signed-in identity's token in the Authorization header (never in a URL), so the server's permission checks decide
// what this page may see.
// Owns: sign-in (one-time code exchange, pasted token, new identity), request helpers, lossless JSON, the database
// list. May call: the browser's fetch.

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** JSON.parse that keeps integers beyond 2^53 exact (u64/u128/u256 cells, identities) as bigint. */
export function parseJsonLossless(text: string): unknown {
  return (JSON.parse as (t: string, r: (k: string, v: unknown, c?: { source?: string }) => unknown) => unknown)(
    text,
    (_key, value, context) => {
      if (typeof value === 'number' && !Number.isSafeInteger(value) && context?.source !== undefined && /^-?\d+$/.test(context.source)) {
        return BigInt(context.source);
      }
      return value;
    },
  );
}

export interface Session {
  token: string;
  identity: string;
}

const storageKey = 'spacetime-dashboard-session';

export function savedSession(): Session | undefined {
  const text = sessionStorage.getItem(storageKey);
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as Session;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session | undefined): void {
  if (session === undefined) sessionStorage.removeItem(storageKey);
  else sessionStorage.setItem(storageKey, JSON.stringify(session));
}

async function failure(res: Response): Promise<ApiError> {
  const text = (await res.text()).trim();
  return new ApiError(res.status, text === '' ? `${res.status} ${res.statusText}` : text);
}

export async function request(session: Session | undefined, method: string, path: string, body?: string, contentType?: string): Promise<Response> {
  const headers: Record<string, string> = {};
  if (session !== undefined) headers.Authorization = `Bearer ${session.token}`;
  if (contentType !== undefined) headers['Content-Type'] = contentType;
  const res = await fetch(path, { method, headers, body, cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return res;
}

export async function getJson<T>(session: Session | undefined, path: string): Promise<T> {
  const res = await request(session, 'GET', path);
  return parseJsonLossless(await res.text()) as T;
}

export async function postJson<T>(session: Session | undefined, path: string, body: string, contentType?: string): Promise<T> {
  const res = await request(session, 'POST', path, body, contentType);
  const text = await res.text();
  return (text === '' ? undefined : parseJsonLossless(text)) as T;
}

/** The one-time code `spacetime dashboard` put in the URL fragment: removed from the address bar, then exchanged. */
export async function signInFromFragment(): Promise<Session | undefined> {
  const match = /(?:^#|&)code=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match === null) return undefined;
  history.replaceState(null, '', location.pathname + location.search);
  return postJson<Session>(undefined, '/v1/dashboard/exchange', match[1]!);
}

/** A pasted token: checked by the server (a 401 says it is not valid here), identity from its claims. */
export async function signInWithToken(token: string): Promise<Session> {
  const trimmed = token.trim();
  const session = { token: trimmed, identity: '' };
  const { token: wsToken } = await postJson<{ token: string }>(session, '/v1/identity/websocket-token', '');
  return { token: trimmed, identity: identityFromToken(trimmed) ?? identityFromToken(wsToken) ?? '' };
}

export async function signInAsNewIdentity(): Promise<Session> {
  return postJson<Session>(undefined, '/v1/identity', '');
}

function identityFromToken(token: string): string | undefined {
  try {
    const payload = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload)) as { hex_identity?: unknown };
    return typeof claims.hex_identity === 'string' ? claims.hex_identity.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

export interface DatabaseEntry {
  identity: string;
  names: string[];
}

/** The databases this identity owns, with their names (what `spacetime list` shows). */
export async function ownedDatabases(session: Session): Promise<DatabaseEntry[]> {
  if (session.identity === '') return [];
  const { identities } = await getJson<{ identities: string[] }>(session, `/v1/identity/${session.identity}/databases`);
  return Promise.all(identities.map(async (identity) => {
    const { names } = await getJson<{ names: string[] }>(session, `/v1/database/${identity}/names`);
    return { identity, names };
  }));
}

/** A short-lived token for one WebSocket connection (browsers cannot set its Authorization header). */
export async function websocketToken(session: Session): Promise<string> {
  return (await postJson<{ token: string }>(session, '/v1/identity/websocket-token', '')).token;
}

export interface SqlResult {
  schema: { elements: { name: { some?: string } | string | null; algebraic_type: unknown }[] };
  rows: unknown[][];
  total_duration_micros: number | bigint;
  stats?: { rows_inserted: number; rows_deleted: number; rows_updated: number };
}

export function sql(session: Session, database: string, query: string): Promise<SqlResult[]> {
  return postJson<SqlResult[]>(session, `/v1/database/${encodeURIComponent(database)}/sql`, query, 'text/plain; charset=utf-8');
}

export function columnName(element: SqlResult['schema']['elements'][number], index: number): string {
  const name = element.name;
  if (typeof name === 'string') return name;
  return name?.some ?? `column ${index}`;
}
