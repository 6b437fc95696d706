// auth/tokens.ts — issue and verify the JWTs that carry identities (client-protocol.md §6.3, §5.0).
//
// Owns: the claims of server-issued tokens, websocket short-lived tokens, token verification and the AuthError
// statuses/messages the HTTP layer sends back verbatim.
// May call: jose (JWS compact sign/verify), auth/identity.ts, auth/keys.ts, auth/oidc.ts, limits.ts.
//
// Verification order (mirrors upstream): a token whose signature verifies with our own public key is accepted
// whatever its issuer; otherwise a token claiming our issuer is rejected; otherwise it would go to OIDC (issuer
// allow-list + JWKS discovery, auth/oidc.ts) when the server is configured with an OidcVerifier.
// Successful verifications are cached by exact token text (bounded); `exp` is re-checked on every hit.
//
// Expiry (differs from upstream): a token is refused from its `exp` second on, for every issuer and every use —
// upstream's jsonwebtoken allows 60 s of leeway, so a token 20 s past `exp` could still mint a websocket token. And a
// websocket token never outlives the token it was minted from (`exp` = the earlier of now + 60 s and the presented
// token's `exp`), so renewing cannot keep a short-lived IdP token alive.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CompactSign, compactVerify, errors as joseErrors } from 'jose';
import { identityFromClaims, identityFromHex, identityToHex } from './identity.js';
import type { SigningKeys } from './keys.js';
import { OidcError, type OidcVerifier } from './oidc.js';
import { tokenExpiryLeewaySeconds } from '../limits.js';

export const localIssuer = 'localhost';
export const tokenAudience = ['spacetimedb'];
export const websocketTokenLifetimeSeconds = 60;
/** Upstream limit on `iss` and `sub` lengths. */
export const claimMaxBytes = 128;
/** Verified tokens remembered (by exact text) so repeat requests skip the ~200 µs ECDSA check. */
export const verifiedCacheMaxEntries = 4096;
/** Tokens longer than this are refused before any parsing. */
export const tokenMaxBytes = 16 * 1024;

const signingAlgorithm = 'ES256';

/** A credential problem, with the HTTP status and the exact text upstream answers. */
export class AuthError extends Error {
  constructor(readonly status: 400 | 401, message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export const notSignedByUsMessage = 'Authorization failed: token not signed by this instance';
export const malformedTokenMessage = 'Authorization is invalid: malformed token';
export const authRequiredMessage = 'Authorization required';

/** What a verified token tells us. */
export interface VerifiedToken {
  identity: bigint;
  issuer: string;
  subject: string;
  /** Every claim of the token (re-signed as-is into websocket tokens). */
  claims: Record<string, unknown>;
  /** The payload JSON text exactly as signed (what reducers see as the caller's JWT payload). */
  payloadJson: string;
  /** The token itself. */
  token: string;
}

export interface MintedIdentity {
  identity: bigint;
  token: string;
  /** The token's payload JSON text. */
  payloadJson: string;
}

export interface TokenAuthorityOptions {
  keys: SigningKeys;
  issuer?: string;
  /** Clock in seconds; tests override it. */
  nowSeconds?: () => number;
  /** Verifies tokens of external OIDC issuers; without it only our own tokens are accepted. */
  oidc?: OidcVerifier;
}

/** Issues and verifies tokens with one server's key pair. */
export class TokenAuthority {
  readonly keys: SigningKeys;
  readonly issuer: string;
  private readonly nowSeconds: () => number;
  private readonly verified = new Map<string, VerifiedToken>();
  readonly oidc: OidcVerifier | undefined;

  constructor(options: TokenAuthorityOptions) {
    this.keys = options.keys;
    this.oidc = options.oidc;
    this.issuer = options.issuer ?? localIssuer;
    this.nowSeconds = options.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  }

  /** A fresh identity (random UUIDv4 subject under our issuer) and its long-lived token (`exp: null`). */
  async mintIdentity(): Promise<MintedIdentity> {
    const subject = randomUUID();
    const identity = identityFromClaims(this.issuer, subject);
    const claims = {
      hex_identity: identityToHex(identity),
      sub: subject,
      iss: this.issuer,
      aud: tokenAudience,
      iat: this.nowSeconds(),
      exp: null,
    };
    const { token, payloadJson } = await this.signWithPayload(claims);
    // The CLI decodes the payload with the standard base64 alphabet: '-' or '_' in it would break `spacetime login`.
    // Our claims are hex, a UUID, digits and `localhost`, which never encode to those characters.
    assert.ok(!/[-_]/.test(token.split('.')[1]!), 'minted token payload must be standard-base64 safe');
    return { identity, token, payloadJson };
  }

  /**
   * A long-lived token signed by us for an identity another issuer vouched for (the web login's result): `iss` and
   * `sub` are the provider's, so the identity is the one their OIDC tokens derive.
   */
  async mintForSubject(issuer: string, subject: string): Promise<MintedIdentity> {
    const identity = identityFromClaims(issuer, subject);
    const claims = { hex_identity: identityToHex(identity), sub: subject, iss: issuer, aud: tokenAudience, iat: this.nowSeconds(), exp: null };
    const { token, payloadJson } = await this.signWithPayload(claims);
    return { identity, token, payloadJson };
  }

  /**
   * The claims of an already verified token, re-signed with `iat = now` and `exp = now + 60 s`, or the presented
   * token's own `exp` when that comes first (a renewal never extends a token's life). Refuses an expired token even
   * if its verification was cached.
   */
  async websocketToken(verified: VerifiedToken): Promise<string> {
    this.checkExpiry(verified.claims);
    const iat = this.nowSeconds();
    let exp = iat + websocketTokenLifetimeSeconds;
    if (typeof verified.claims.exp === 'number') exp = Math.min(exp, verified.claims.exp);
    const signed = await this.signWithPayload({ ...verified.claims, iat, exp });
    return signed.token;
  }

  /** Verifies a bearer token; throws AuthError (400 malformed, 401 otherwise). */
  async verify(token: string): Promise<VerifiedToken> {
    if (token.length > tokenMaxBytes) throw new AuthError(400, malformedTokenMessage);
    const cached = this.verified.get(token);
    if (cached !== undefined) {
      this.checkExpiry(cached.claims);
      return cached;
    }
    const unverified = decodeUnverified(token);
    let payloadBytes: Uint8Array;
    try {
      const result = await compactVerify(token, this.keys.publicKey, { algorithms: [signingAlgorithm] });
      payloadBytes = result.payload;
    } catch (error) {
      if (error instanceof joseErrors.JWSInvalid) throw new AuthError(400, malformedTokenMessage);
      // Wrong key, wrong algorithm (alg none, HS256 keyed with our public key, ...) or a bad signature.
      if (unverified.iss === this.issuer) throw new AuthError(401, notSignedByUsMessage);
      return this.verifyForeign(token, unverified);
    }
    const payloadJson = new TextDecoder().decode(payloadBytes);
    const result = this.checkClaims(token, payloadJson, parseClaims(payloadJson));
    this.remember(token, result);
    return result;
  }

  /** Tokens from other issuers: OIDC (issuer allow-list, discovery, JWKS cache) when configured. */
  private async verifyForeign(token: string, claims: Record<string, unknown>): Promise<VerifiedToken> {
    if (this.oidc === undefined) throw new AuthError(401, notSignedByUsMessage);
    let payloadJson: string;
    try {
      payloadJson = await this.oidc.verify(token, claims.iss);
    } catch (error) {
      if (error instanceof OidcError) throw new AuthError(error.status, error.message);
      throw error;
    }
    const result = this.checkClaims(token, payloadJson, parseClaims(payloadJson));
    this.remember(token, result);
    return result;
  }

  private remember(token: string, result: VerifiedToken): void {
    if (this.verified.size >= verifiedCacheMaxEntries) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, result);
  }

  private checkClaims(token: string, payloadJson: string, claims: Record<string, unknown>): VerifiedToken {
    const issuer = requireShortString(claims, 'iss');
    const subject = requireShortString(claims, 'sub');
    this.checkExpiry(claims);
    const identity = identityFromClaims(issuer, subject);
    const claimed = claims.hex_identity;
    if (claimed !== undefined) {
      if (typeof claimed !== 'string' || identityFromHex(claimed) !== identity) {
        throw new AuthError(401, `Identity mismatch: token claims ${String(claimed)} but its iss/sub derive ${identityToHex(identity)}`);
      }
    }
    return { identity, issuer, subject, claims, payloadJson, token };
  }

  private checkExpiry(claims: Record<string, unknown>): void {
    const exp = claims.exp;
    if (exp === undefined || exp === null) return;
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new AuthError(401, 'Invalid token: `exp` is not a number');
    if (this.nowSeconds() >= exp + tokenExpiryLeewaySeconds) throw new AuthError(401, 'Invalid token: ExpiredSignature');
  }

  private async signWithPayload(claims: Record<string, unknown>): Promise<{ token: string; payloadJson: string }> {
    const payloadJson = JSON.stringify(claims);
    const token = await new CompactSign(new TextEncoder().encode(payloadJson))
      .setProtectedHeader({ typ: 'JWT', alg: signingAlgorithm })
      .sign(this.keys.privateKey);
    return { token, payloadJson };
  }
}

/** Extracts the bearer token from an Authorization header value; undefined if absent or not Bearer. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) throw new AuthError(400, malformedTokenMessage);
  return match[1];
}

function decodeUnverified(token: string): Record<string, unknown> {
  const parts = token.split('.');
  if (parts.length !== 3) throw new AuthError(400, malformedTokenMessage);
  let json: string;
  try {
    json = Buffer.from(parts[1]!, 'base64url').toString('utf8');
  } catch {
    throw new AuthError(400, malformedTokenMessage);
  }
  return parseClaims(json);
}

function parseClaims(json: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new AuthError(400, malformedTokenMessage);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AuthError(400, malformedTokenMessage);
  return value as Record<string, unknown>;
}

function requireShortString(claims: Record<string, unknown>, name: 'iss' | 'sub'): string {
  const value = claims[name];
  if (typeof value !== 'string' || value.length === 0) throw new AuthError(401, `Invalid token: missing \`${name}\` claim`);
  if (Buffer.byteLength(value, 'utf8') > claimMaxBytes) {
    throw new AuthError(401, `Invalid token: \`${name}\` is longer than ${claimMaxBytes} bytes`);
  }
  return value;
}
