// auth/oidc.ts — tokens issued by external OpenID Connect providers: discovery, a JWKS cache with key rotation, and
// JWT verification against operator allow-lists (client-protocol.md §6.3, "else OIDC").
//
// Owns: the trusted-issuer and audience allow-lists, the per-issuer discovery document and key set cache, the
// accepted algorithms (RS256, ES256), the clock leeway, and the OidcError messages the HTTP layer answers with.
// May call: jose (key sets, JWT verification), global fetch (loopback or remote issuers). Nothing else in src/.
//
// Upstream trusts any issuer and ignores `aud`; here an issuer must be on the allow-list and, when the operator lists
// audiences, `aud` must name one of them. Key sets are cached for `jwksCacheTtlMs`; a token whose `kid` is not in the
// cached set triggers one refetch (at most once per `jwksRefetchMinIntervalMs` per issuer), which is how a provider's
// key rotation is picked up without letting forged `kid`s make us hammer the provider.

import assert from 'node:assert/strict';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/** How long a fetched key set is trusted before it is fetched again. */
export const jwksCacheTtlMs = 5 * 60 * 1000;
/** Minimum time between two refetches of one issuer's key set caused by unknown `kid`s. */
export const jwksRefetchMinIntervalMs = 10 * 1000;
/**
 * Clock leeway for `nbf` (jsonwebtoken's default, as upstream uses): a provider's clock may run a little ahead of ours.
 * jose applies it to `exp` too, but auth/tokens.ts then refuses every expired token without leeway, whatever its issuer.
 */
export const oidcClockLeewaySeconds = 60;
/** Discovery and JWKS requests give up after this long. */
export const oidcFetchTimeoutMs = 5 * 1000;
/** Discovery documents and key sets larger than this are refused. */
export const oidcDocumentMaxBytes = 256 * 1024;
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

export interface OidcVerifierOptions {
  /** Issuers whose tokens are accepted (exact `iss` strings). */
  trustedIssuers: readonly string[];
  /** When non-empty, a token's `aud` must contain one of these. */
  audiences?: readonly string[];
  /** Clock in seconds for token validity; tests override it. */
  nowSeconds?: () => number;
  /** Clock in milliseconds for the key cache; tests override it. */
  nowMs?: () => number;
}

interface IssuerKeys {
  discovery: OidcDiscovery;
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

  constructor(options: OidcVerifierOptions) {
    this.trustedIssuers = new Set(options.trustedIssuers.map(normalizeIssuer));
    this.audiences = [...(options.audiences ?? [])];
    this.nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
    this.nowMs = options.nowMs ?? Date.now;
  }

  isTrusted(issuer: unknown): issuer is string {
    return typeof issuer === 'string' && this.trustedIssuers.has(normalizeIssuer(issuer));
  }

  /**
   * Verifies `token` (its unverified claims already parsed by the caller) and returns the payload JSON text exactly
   * as signed. `audiences` overrides the configured allow-list (the login callback requires its client id).
   */
  async verify(token: string, unverifiedIssuer: unknown, audiences = this.audiences): Promise<string> {
    if (!this.isTrusted(unverifiedIssuer)) {
      throw new OidcError(`Authorization failed: issuer ${JSON.stringify(unverifiedIssuer ?? null)} is not trusted by this server`);
    }
    const issuer = unverifiedIssuer;
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
      return cached.then((keys) => (this.nowMs() - keys.fetchedAtMs > jwksCacheTtlMs ? this.refresh(issuer, keys) : keys));
    }
    const loading = this.load(issuer);
    this.issuers.set(key, loading);
    // A failed discovery must not stick: the next request tries again.
    loading.catch(() => {
      if (this.issuers.get(key) === loading) this.issuers.delete(key);
    });
    return loading;
  }

  private async load(issuer: string): Promise<IssuerKeys> {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const document = (await fetchJson(url, 'discovery document')) as Partial<OidcDiscovery>;
    if (typeof document.issuer !== 'string' || normalizeIssuer(document.issuer) !== normalizeIssuer(issuer)) {
      throw new OidcError(`OIDC discovery for ${issuer} failed: the document names issuer ${JSON.stringify(document.issuer)}`);
    }
    if (typeof document.jwks_uri !== 'string') throw new OidcError(`OIDC discovery for ${issuer} failed: no jwks_uri`);
    return this.fetchKeys(document as OidcDiscovery, 0);
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
    const refreshed = this.fetchKeys(stale.discovery, stale.refetchedAtMs).then(
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

  private async fetchKeys(discovery: OidcDiscovery, refetchedAtMs: number): Promise<IssuerKeys> {
    const jwks = (await fetchJson(discovery.jwks_uri, 'key set')) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new OidcError(`OIDC key set at ${discovery.jwks_uri} has no "keys" array`);
    return { discovery, keySet: createLocalJWKSet(jwks), fetchedAtMs: this.nowMs(), refetchedAtMs };
  }
}

/** Issuers compare without a trailing slash (`https://a.example/` and `https://a.example` are one issuer). */
function normalizeIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

/** True when `a` and `b` name the same issuer. */
export function sameIssuer(a: unknown, b: string): boolean {
  return typeof a === 'string' && normalizeIssuer(a) === normalizeIssuer(b);
}

async function fetchJson(url: string, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(oidcFetchTimeoutMs), headers: { accept: 'application/json' } });
  } catch (error) {
    throw new OidcError(`Could not fetch the OIDC ${what} at ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new OidcError(`Could not fetch the OIDC ${what} at ${url}: HTTP ${response.status}`);
  const text = await response.text();
  if (text.length > oidcDocumentMaxBytes) throw new OidcError(`The OIDC ${what} at ${url} is larger than ${oidcDocumentMaxBytes} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new OidcError(`The OIDC ${what} at ${url} is not JSON`);
  }
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
