// auth/oidc.ts — tokens issued by external OpenID Connect providers: discovery, a JWKS cache with key rotation, and
// JWT verification (client-protocol.md §6.3, "else OIDC").
//
// Owns: which issuers are accepted (any issuer, as upstream, unless the operator restricts them to an allow-list),
// the audience allow-list, the per-issuer discovery document and key set cache (bounded: limits.ts "OIDC"), the
// accepted algorithms (RS256, ES256), the clock leeway, and the OidcError messages the HTTP layer answers with.
// May call: jose (key sets, JWT verification), global fetch (allow-listed issuers), limits.ts. Issuers that are not
// allow-listed are fetched only through the `OidcFetch` the server injects (server/routes/login.ts), which enforces
// the egress address policy at connect time (no SSRF to private or loopback addresses). Nothing else in src/.
//
// Upstream trusts any issuer and ignores `aud`; so do we, unless the operator lists trusted issuers (then only those)
// or audiences (then `aud` must name one). Key sets are cached for `jwksCacheTtlMs`; a token whose `kid` is not in the
// cached set triggers one refetch (at most once per `jwksRefetchMinIntervalMs` per issuer), which is how a provider's
// key rotation is picked up without letting forged `kid`s make us hammer the provider.

import assert from 'node:assert/strict';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { oidcDiscoveriesInFlightMax, oidcDocumentMaxBytes, oidcFetchTimeoutMs, oidcIssuersCachedMax } from '../limits.js';

export { oidcDocumentMaxBytes, oidcFetchTimeoutMs };

/** How long a fetched key set is trusted before it is fetched again. */
export const jwksCacheTtlMs = 5 * 60 * 1000;
/** Minimum time between two refetches of one issuer's key set caused by unknown `kid`s. */
export const jwksRefetchMinIntervalMs = 10 * 1000;
/**
 * Clock leeway for `nbf` (jsonwebtoken's default, as upstream uses): a provider's clock may run a little ahead of ours.
 * jose applies it to `exp` too, but auth/tokens.ts then refuses every expired token without leeway, whatever its issuer.
 */
export const oidcClockLeewaySeconds = 60;
/** Signature algorithms accepted from providers. HS* (shared secrets) and `none` are never accepted. */
export const oidcAlgorithms = ['RS256', 'ES256'] as const;

/** A token from an external issuer that we refuse; always HTTP 401. */
export class OidcError extends Error {
  readonly status = 401 as const;
  constructor(message: string) {
    super(message);
    this.name = 'OidcError';
  }
}

/** The parts of a discovery document we use. */
export interface OidcDiscovery {
  issuer: string;
  jwks_uri: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
}

/** Fetches an issuer's document; the server's checks the scheme and every address it connects to (login.ts). */
export type OidcFetch = (url: string, init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<Response>;

export interface OidcVerifierOptions {
  /** Issuers the operator trusts (exact `iss` strings): fetched with the global fetch, wherever they are. */
  trustedIssuers: readonly string[];
  /** Accept only `trustedIssuers` (the operator's allow-list); otherwise any issuer, as upstream. */
  restrictIssuers?: boolean;
  /** How other issuers are fetched; without it only `trustedIssuers` are accepted. */
  anyIssuerFetch?: OidcFetch;
  /** `aud` values required of one issuer's tokens when no global `audiences` are set (the login client id). */
  issuerAudiences?: Readonly<Record<string, readonly string[]>>;
  /** When non-empty, a token's `aud` must contain one of these. */
  audiences?: readonly string[];
  /** Clock in seconds for token validity; tests override it. */
  nowSeconds?: () => number;
  /** Clock in milliseconds for the key cache; tests override it. */
  nowMs?: () => number;
}

interface IssuerKeys {
  discovery: OidcDiscovery;
  fetcher: OidcFetch;
  keySet: JWTVerifyGetKey;
  fetchedAtMs: number;
  refetchedAtMs: number;
}

/** Verifies JWTs from allow-listed OIDC issuers. One instance per server. */
export class OidcVerifier {
  readonly trustedIssuers: ReadonlySet<string>;
  readonly audiences: readonly string[];
  private readonly nowSeconds: () => number;
  private readonly nowMs: () => number;
  private readonly issuers = new Map<string, Promise<IssuerKeys>>();
  private readonly refreshing = new Map<string, Promise<IssuerKeys>>();
  private readonly restrictIssuers: boolean;
  private readonly anyIssuerFetch: OidcFetch | undefined;
  private readonly issuerAudiences: ReadonlyMap<string, readonly string[]>;
  /** Discovery and key-set fetches running now (bounded by oidcDiscoveriesInFlightMax). */
  private fetchesInFlight = 0;

  constructor(options: OidcVerifierOptions) {
    this.trustedIssuers = new Set(options.trustedIssuers.map(normalizeIssuer));
    this.restrictIssuers = options.restrictIssuers ?? true;
    this.anyIssuerFetch = options.anyIssuerFetch;
    this.issuerAudiences = new Map(Object.entries(options.issuerAudiences ?? {}).map(([i, a]) => [normalizeIssuer(i), a]));
    this.audiences = [...(options.audiences ?? [])];
    this.nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.nowMs = options.nowMs ?? Date.now;
  }

  isTrusted(issuer: unknown): issuer is string {
    return typeof issuer === 'string' && this.trustedIssuers.has(normalizeIssuer(issuer));
  }

  /** Whether tokens of `issuer` are verified at all (allow-listed, or any issuer when not restricted). */
  accepts(issuer: unknown): issuer is string {
    if (this.isTrusted(issuer)) return true;
    return typeof issuer === 'string' && !this.restrictIssuers && this.anyIssuerFetch !== undefined;
  }

  /**
   * Verifies `token` (its unverified claims already parsed by the caller) and returns the payload JSON text exactly
   * as signed. `audiences` overrides the configured allow-list (the login callback requires its client id).
   */
  async verify(token: string, unverifiedIssuer: unknown, audiences?: readonly string[]): Promise<string> {
    if (!this.accepts(unverifiedIssuer)) {
      throw new OidcError(`Authorization failed: issuer ${JSON.stringify(unverifiedIssuer ?? null)} is not trusted by this server`);
    }
    const issuer = unverifiedIssuer;
    audiences ??= this.audiences.length > 0 ? this.audiences : this.issuerAudiences.get(normalizeIssuer(issuer)) ?? [];
    let keys = await this.keysFor(issuer);
    try {
      return await this.verifyWith(token, issuer, keys, audiences);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw translate(error);
      // Unknown kid: the provider may have rotated its keys. Refetch once, rate-limited per issuer.
      const now = this.nowMs();
      if (now - keys.refetchedAtMs < jwksRefetchMinIntervalMs) throw translate(error);
      keys.refetchedAtMs = now;
      keys = await this.refresh(issuer, keys);
      try {
        return await this.verifyWith(token, issuer, keys, audiences);
      } catch (retryError) {
        throw translate(retryError);
      }
    }
  }

  /** The issuer's discovery document (cached with its keys); used by the login flow for its endpoints. */
  async discovery(issuer: string): Promise<OidcDiscovery> {
    return (await this.keysFor(issuer)).discovery;
  }

  private async verifyWith(token: string, issuer: string, keys: IssuerKeys, audiences: readonly string[]): Promise<string> {
    const { payload } = await jwtVerify(token, keys.keySet, {
      algorithms: [...oidcAlgorithms],
      issuer,
      audience: audiences.length > 0 ? [...audiences] : undefined,
      clockTolerance: oidcClockLeewaySeconds,
      currentDate: new Date(this.nowSeconds() * 1000),
      requiredClaims: ['iss', 'sub'],
    });
    // jwtVerify returns the parsed payload; the text the token carries is what reducers must see.
    const encoded = token.split('.')[1]!;
    assert.equal(typeof payload.sub, 'string');
    return Buffer.from(encoded, 'base64url').toString('utf8');
  }

  private keysFor(issuer: string): Promise<IssuerKeys> {
    const key = normalizeIssuer(issuer);
    const cached = this.issuers.get(key);
    if (cached !== undefined) {
      // Least recently used first in the map's order: re-inserting marks it used.
      this.issuers.delete(key);
      this.issuers.set(key, cached);
      return cached.then((keys) => (this.nowMs() - keys.fetchedAtMs > jwksCacheTtlMs ? this.refresh(issuer, keys) : keys));
    }
    const fetcher = this.isTrusted(issuer) ? globalFetch : this.anyIssuerFetch;
    if (fetcher === undefined) return Promise.reject(new OidcError(`Authorization failed: issuer ${JSON.stringify(issuer)} is not trusted by this server`));
    const loading = this.load(issuer, fetcher);
    if (this.issuers.size >= oidcIssuersCachedMax) this.issuers.delete(this.issuers.keys().next().value!);
    this.issuers.set(key, loading);
    // A failed discovery must not stick: the next request tries again.
    loading.catch(() => {
      if (this.issuers.get(key) === loading) this.issuers.delete(key);
    });
    return loading;
  }

  private async load(issuer: string, fetcher: OidcFetch): Promise<IssuerKeys> {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const document = (await this.fetchJson(fetcher, url, 'discovery document')) as Partial<OidcDiscovery>;
    if (typeof document.issuer !== 'string' || normalizeIssuer(document.issuer) !== normalizeIssuer(issuer)) {
      throw new OidcError(`OIDC discovery for ${issuer} failed: the document names issuer ${JSON.stringify(document.issuer)}`);
    }
    if (typeof document.jwks_uri !== 'string') throw new OidcError(`OIDC discovery for ${issuer} failed: no jwks_uri`);
    return this.fetchKeys(document as OidcDiscovery, fetcher, 0);
  }

  /**
   * Fetches the key set again (one fetch at a time per issuer). If the provider is unreachable the stale keys stay
   * in use and the next attempt waits `jwksRefetchMinIntervalMs`, so an outage neither locks users out nor makes
   * every request wait for a timeout.
   */
  private refresh(issuer: string, stale: IssuerKeys): Promise<IssuerKeys> {
    const key = normalizeIssuer(issuer);
    const pending = this.refreshing.get(key);
    if (pending !== undefined) return pending;
    const refreshed = this.fetchKeys(stale.discovery, stale.fetcher, stale.refetchedAtMs).then(
      (fresh) => {
        this.issuers.set(key, Promise.resolve(fresh));
        return fresh;
      },
      () => {
        stale.fetchedAtMs = this.nowMs() - jwksCacheTtlMs + jwksRefetchMinIntervalMs;
        return stale;
      },
    ).finally(() => this.refreshing.delete(key));
    this.refreshing.set(key, refreshed);
    return refreshed;
  }

  private async fetchKeys(discovery: OidcDiscovery, fetcher: OidcFetch, refetchedAtMs: number): Promise<IssuerKeys> {
    const jwks = (await this.fetchJson(fetcher, discovery.jwks_uri, 'key set')) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new OidcError(`OIDC key set at ${discovery.jwks_uri} has no "keys" array`);
    return { discovery, fetcher, keySet: createLocalJWKSet(jwks), fetchedAtMs: this.nowMs(), refetchedAtMs };
  }

  /** One fetch of an issuer's document, counted against oidcDiscoveriesInFlightMax. */
  private async fetchJson(fetcher: OidcFetch, url: string, what: string): Promise<unknown> {
    if (this.fetchesInFlight >= oidcDiscoveriesInFlightMax) {
      throw new OidcError(`Could not fetch the OIDC ${what} at ${url}: ${oidcDiscoveriesInFlightMax} issuer fetches are ` +
        'running already (oidcDiscoveriesInFlightMax); try again');
    }
    this.fetchesInFlight++;
    try {
      return await fetchJson(fetcher, url, what);
    } finally {
      this.fetchesInFlight--;
    }
  }
}

const globalFetch: OidcFetch = (url, init) => fetch(url, init);

/** Issuers compare without a trailing slash (`https://a.example/` and `https://a.example` are one issuer). */
function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

/** True when `a` and `b` name the same issuer. */
export function sameIssuer(a: unknown, b: string): boolean {
  return typeof a === 'string' && normalizeIssuer(a) === normalizeIssuer(b);
}

async function fetchJson(fetcher: OidcFetch, url: string, what: string): Promise<unknown> {
  const signal = AbortSignal.timeout(oidcFetchTimeoutMs);
  let response: Response;
  try {
    response = await fetcher(url, { signal, headers: { accept: 'application/json' } });
  } catch (error) {
    throw new OidcError(`Could not fetch the OIDC ${what} at ${url}: ${innermostMessage(error)}`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw new OidcError(`Could not fetch the OIDC ${what} at ${url}: HTTP ${response.status}`);
  }
  let text: string;
  try {
    text = await readBounded(response, oidcDocumentMaxBytes);
  } catch (error) {
    throw new OidcError(`Could not read the OIDC ${what} at ${url}: ${innermostMessage(error)}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new OidcError(`The OIDC ${what} at ${url} is not JSON`);
  }
}

/** The body as text, refused as soon as it passes `maxBytes` (never buffered whole first). */
async function readBounded(response: Response, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > maxBytes) {
        await response.body.cancel().catch(() => undefined);
        throw new Error(`larger than ${maxBytes} bytes (oidcDocumentMaxBytes)`);
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fetch wraps the reason (a refused address, a timeout) in "fetch failed": say the reason. */
function innermostMessage(error: unknown): string {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `timed out after ${oidcFetchTimeoutMs} ms`;
  return e instanceof Error ? e.message : String(e);
}

/** jose's errors as the 401 texts a client sees. */
function translate(error: unknown): Error {
  if (error instanceof OidcError) return error;
  if (error instanceof joseErrors.JWTExpired) return new OidcError('Invalid token: ExpiredSignature');
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return new OidcError('Invalid token: ImmatureSignature (not valid yet)');
    if (error.claim === 'aud') return new OidcError('Invalid token: InvalidAudience (aud is not accepted by this server)');
    return new OidcError(`Invalid token: claim \`${error.claim}\` ${error.reason}`);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new OidcError(`Invalid token: algorithm not accepted (only ${oidcAlgorithms.join(', ')})`);
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) return new OidcError('Invalid token: no key of the issuer matches the token');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new OidcError('Invalid token: InvalidSignature');
  if (error instanceof joseErrors.JOSEError) return new OidcError(`Invalid token: ${error.message}`);
  return error as Error;
}
