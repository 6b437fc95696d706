// server/routes/login.ts — the server's web login: `spacetime login` through an external OpenID Connect provider.
//
// Owns: the login configuration (`OidcLoginConfig`), pending CLI login requests, web sessions, and these routes,
// which mirror the contract upstream's CLI speaks to its auth host (cli-and-publish.md §1, client-protocol.md §6.4),
// so both our CLI and upstream's `spacetime login --auth-host <this server>` work:
//   POST /api/auth/cli/login/request-token   → {success, data: {token}}            (a login request)
//   GET  /login/cli?token=…                  → 302 to the provider (authorization code flow + PKCE S256)
//   GET  /login/callback?code&state          → code exchange, ID token verified (aud = client id, nonce), approved
//   GET  /api/auth/cli/status?token=…        → {success, data: {approved, sessionToken?}}
//   POST /api/spacetimedb-token  (Bearer session) → {success, data: {token}}       (long-lived, signed by us)
//   POST /auth/cli/logout        (Bearer session) → 204, the session is forgotten
// The stored CLI token is signed by this server with the provider's `iss`/`sub`, so its identity is the one the
// provider's own ID tokens derive, and it never expires (upstream's CLI also stores an auth-host-issued token).
// Requests and sessions live in memory: a restart ends pending logins; issued tokens stay valid.
// Also builds the server's OidcVerifier (createOidcVerifier): any issuer, as upstream, fetched through the egress
// address policy of host/http-egress-worker.ts (checked on every connection: no SSRF), unless the operator lists
// trusted issuers.
// May call: auth/ (tokens, oidc), server/http.ts, host/http-egress-worker.ts (address policy: agentFor, checkTarget),
// undici, jose (decodeJwt), node:crypto, global fetch (the token endpoint).

import { createHash, randomBytes } from 'node:crypto';
import { identityToHex } from '../../auth/identity.js';
import { decodeJwt } from 'jose';
import { fetch as undiciFetch } from 'undici';
import { OidcError, OidcVerifier, sameIssuer, type OidcFetch } from '../../auth/oidc.js';
import { agentFor, checkTarget } from '../../host/http-egress-worker.js';
import type { TokenAuthority } from '../../auth/tokens.js';
import { HttpError, jsonBodyMaxBytes, type RequestContext, type Router } from '../http.js';

/** A login request not completed within this time is dropped. */
export const loginRequestTtlMs = 10 * 60 * 1000;
/** Pending login requests held at once; the oldest is dropped past this. */
export const loginRequestsMax = 1024;
/** Web sessions held at once; the oldest is dropped past this. */
export const webSessionsMax = 4096;
/** The provider's token endpoint must answer within this time. */
export const tokenExchangeTimeoutMs = 10 * 1000;
const randomTokenBytes = 32;

/** What the operator configures (`spacetime start --oidc-*` or the auth config file; docs/login.md). */
export interface OidcLoginConfig {
  issuer: string;
  clientId: string;
  /** Absent for a public client (then only PKCE protects the code). */
  clientSecret?: string;
  /** The callback URL registered with the provider; default `http://<Host header>/login/callback`. */
  redirectUrl?: string;
  /** Default `openid`. */
  scopes?: string;
}

/** The server's OIDC options: the web login's provider and the allow-lists for foreign tokens. */
export interface OidcServerOptions {
  login?: OidcLoginConfig;
  /** Issuers whose tokens are accepted; the login provider's issuer is always added. */
  trustedIssuers?: string[];
  /** Accepted `aud` values; default: the login client id when login is configured, else any audience. */
  audiences?: string[];
}

/**
 * The verifier for `TokenAuthority`: tokens of any issuer (upstream's rule), unless the operator lists trusted issuers
 * (then only those and the login provider). Allow-listed issuers are fetched wherever they are (the operator chose
 * them); any other issuer only over https to public addresses — `SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP=1` also admits
 * http://localhost-style issuers, for local testing.
 */
export function createOidcVerifier(options: OidcServerOptions | undefined, env: NodeJS.ProcessEnv = process.env): OidcVerifier {
  const listed = [...(options?.trustedIssuers ?? [])];
  const trustedIssuers = options?.login !== undefined ? [...listed, options.login.issuer] : listed;
  const issuerAudiences = options?.login !== undefined ? { [options.login.issuer]: [options.login.clientId] } : {};
  const loopback = env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP === '1' || env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP === 'true';
  return new OidcVerifier({
    trustedIssuers, restrictIssuers: listed.length > 0, anyIssuerFetch: issuerFetch(loopback ? 'loopback' : 'public'),
    audiences: options?.audiences ?? [], issuerAudiences,
  });
}

/** Fetches for issuers nobody vouched for: https (or loopback http when allowed), no redirects, every address checked. */
function issuerFetch(policy: 'public' | 'loopback'): OidcFetch {
  const dispatcher = agentFor(policy);
  return async (url, init) => {
    const target = new URL(url);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const loopbackHost = host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1';
    const loopbackHttp = policy === 'loopback' && target.protocol === 'http:' && loopbackHost;
    if (target.protocol !== 'https:' && !loopbackHttp) {
      throw new OidcError(`issuer documents are fetched over https only (${target.protocol} refused)`);
    }
    checkTarget(target, policy);
    const response = await undiciFetch(target, { ...init, redirect: 'error', dispatcher });
    return response as unknown as Response;
  };
}

interface LoginRequest {
  createdAtMs: number;
  state?: string;
  codeVerifier?: string;
  nonce?: string;
  redirectUrl?: string;
  sessionToken?: string;
  /** Why the login failed; the CLI's next status poll reports it. */
  failure?: string;
}

interface WebSession {
  issuer: string;
  subject: string;
}

export function addLoginRoutes(router: Router, tokens: TokenAuthority, config: OidcLoginConfig | undefined): void {
  const requests = new Map<string, LoginRequest>();
  const byState = new Map<string, string>();
  const sessions = new Map<string, WebSession>();

  const requireConfig = (): OidcLoginConfig => {
    if (config === undefined || tokens.oidc === undefined) {
      throw new HttpError(404, 'Web login is not configured on this server (start it with --oidc-issuer, --oidc-client-id ' +
        'and --oidc-client-secret). Use `spacetime login --server-issued-login <server>` instead.');
    }
    return config;
  };
  const liveRequest = (token: string | undefined): LoginRequest | undefined => {
    if (token === undefined) return undefined;
    const request = requests.get(token);
    if (request === undefined) return undefined;
    if (Date.now() - request.createdAtMs > loginRequestTtlMs) {
      forget(token);
      return undefined;
    }
    return request;
  };
  const forget = (token: string): void => {
    const request = requests.get(token);
    if (request?.state !== undefined) byState.delete(request.state);
    requests.delete(token);
  };

  router.add('POST', '/api/auth/cli/login/request-token', async (ctx) => {
    requireConfig();
    await ctx.body(jsonBodyMaxBytes);
    if (requests.size >= loginRequestsMax) forget(requests.keys().next().value!);
    const token = randomToken();
    requests.set(token, { createdAtMs: Date.now() });
    ctx.sendJson(200, { success: true, data: { token } });
  });

  router.add('GET', '/login/cli', async (ctx) => {
    const login = requireConfig();
    const requestToken = ctx.query('token');
    const request = liveRequest(requestToken);
    if (request === undefined || request.sessionToken !== undefined || request.failure !== undefined) {
      sendPage(ctx, 400, 'Login link expired', 'This login link is unknown, expired or already used. Run `spacetime login` again.');
      return;
    }
    const discovery = await providerEndpoints(tokens, login.issuer);
    if (request.state !== undefined) byState.delete(request.state);
    request.state = randomToken();
    request.codeVerifier = randomToken();
    request.nonce = randomToken();
    request.redirectUrl = login.redirectUrl ?? `http://${ctx.req.headers.host ?? 'localhost'}/login/callback`;
    byState.set(request.state, requestToken!);
    const url = new URL(discovery.authorizationEndpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', login.clientId);
    url.searchParams.set('redirect_uri', request.redirectUrl);
    url.searchParams.set('scope', login.scopes ?? 'openid');
    url.searchParams.set('state', request.state);
    url.searchParams.set('nonce', request.nonce);
    url.searchParams.set('code_challenge', createHash('sha256').update(request.codeVerifier).digest('base64url'));
    url.searchParams.set('code_challenge_method', 'S256');
    ctx.sendEmpty(302, { Location: url.href, 'Cache-Control': 'no-store' });
  });

  router.add('GET', '/login/callback', async (ctx) => {
    const login = requireConfig();
    const state = ctx.query('state');
    const requestToken = state === undefined ? undefined : byState.get(state);
    const request = liveRequest(requestToken);
    if (request === undefined || request.state !== state || request.failure !== undefined) {
      sendPage(ctx, 400, 'Login failed', 'This login attempt is unknown or expired. Run `spacetime login` again.');
      return;
    }
    const providerError = ctx.query('error');
    if (providerError !== undefined) {
      request.failure = `Login failed: the identity provider answered ${providerError} ${ctx.query('error_description') ?? ''}`.trim();
      sendPage(ctx, 400, 'Login failed', request.failure);
      return;
    }
    const code = ctx.query('code');
    if (code === undefined) throw new HttpError(400, 'Missing `code` query parameter in the login callback');
    byState.delete(state!);
    let session: WebSession;
    try {
      session = await exchangeCode(tokens, login, request, code);
    } catch (error) {
      request.failure = `Login failed: ${(error as Error).message}`;
      if (!(error instanceof OidcError)) throw error;
      sendPage(ctx, 401, 'Login failed', request.failure);
      return;
    }
    if (sessions.size >= webSessionsMax) sessions.delete(sessions.keys().next().value!);
    request.sessionToken = randomToken();
    sessions.set(request.sessionToken, session);
    const { identity } = await tokens.mintForSubject(session.issuer, session.subject);
    sendPage(ctx, 200, 'Login successful',
      `You are logged in as ${identityToHex(identity)}. You can close this window and return to the terminal.`);
  });

  router.add('GET', '/api/auth/cli/status', async (ctx) => {
    requireConfig();
    const requestToken = ctx.query('token');
    const request = liveRequest(requestToken);
    if (request === undefined) {
      ctx.sendJson(200, { success: false, error: 'Unknown or expired login request; run `spacetime login` again.' });
      return;
    }
    if (request.failure !== undefined) {
      forget(requestToken!);
      ctx.sendJson(200, { success: false, error: request.failure });
      return;
    }
    if (request.sessionToken === undefined) {
      ctx.sendJson(200, { success: true, data: { approved: false } });
      return;
    }
    forget(requestToken!); // a session token is handed out once
    ctx.sendJson(200, { success: true, data: { approved: true, sessionToken: request.sessionToken } });
  });

  router.add('POST', '/api/spacetimedb-token', async (ctx) => {
    requireConfig();
    await ctx.body(jsonBodyMaxBytes);
    const session = sessions.get(sessionTokenOf(ctx) ?? '');
    if (session === undefined) {
      ctx.sendJson(401, { success: false, error: 'Unknown or expired web session; run `spacetime login` again.' });
      return;
    }
    const { token } = await tokens.mintForSubject(session.issuer, session.subject);
    ctx.sendJson(200, { success: true, data: { token } });
  });

  router.add('POST', '/auth/cli/logout', async (ctx) => {
    await ctx.body(jsonBodyMaxBytes);
    sessions.delete(sessionTokenOf(ctx) ?? '');
    ctx.sendEmpty(204);
  });
}

function sessionTokenOf(ctx: RequestContext): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.req.headers.authorization ?? '');
  return match?.[1];
}

async function providerEndpoints(tokens: TokenAuthority, issuer: string): Promise<{ authorizationEndpoint: string; tokenEndpoint: string }> {
  let discovery;
  try {
    discovery = await tokens.oidc!.discovery(issuer);
  } catch (error) {
    if (error instanceof OidcError) throw new HttpError(502, error.message);
    throw error;
  }
  if (discovery.authorization_endpoint === undefined || discovery.token_endpoint === undefined) {
    throw new HttpError(502, `The OIDC provider ${issuer} does not publish authorization and token endpoints`);
  }
  return { authorizationEndpoint: discovery.authorization_endpoint, tokenEndpoint: discovery.token_endpoint };
}

/** Authorization code → ID token (verified: signature, issuer, aud = client id, expiry, nonce) → who logged in. */
async function exchangeCode(tokens: TokenAuthority, login: OidcLoginConfig, request: LoginRequest, code: string): Promise<WebSession> {
  const { tokenEndpoint } = await providerEndpoints(tokens, login.issuer);
  const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: request.redirectUrl!, code_verifier: request.codeVerifier! });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (login.clientSecret !== undefined) {
    // client_secret_basic: both parts form-urlencoded first (RFC 6749 §2.3.1).
    const basic = `${encodeURIComponent(login.clientId)}:${encodeURIComponent(login.clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
  } else {
    form.set('client_id', login.clientId);
  }
  let response: Response;
  try {
    response = await fetch(tokenEndpoint, { method: 'POST', headers, body: form, signal: AbortSignal.timeout(tokenExchangeTimeoutMs) });
  } catch (error) {
    throw new OidcError(`The OIDC token endpoint ${tokenEndpoint} could not be reached: ${(error as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new OidcError(`The OIDC token endpoint refused the code (HTTP ${response.status}): ${text.slice(0, 500)}`);
  let idToken: unknown;
  try {
    idToken = (JSON.parse(text) as { id_token?: unknown }).id_token;
  } catch {
    throw new OidcError('The OIDC token endpoint did not answer with JSON');
  }
  if (typeof idToken !== 'string') throw new OidcError('The OIDC token endpoint returned no id_token (is the `openid` scope allowed?)');
  let unverifiedIssuer: unknown;
  try {
    unverifiedIssuer = decodeJwt(idToken).iss;
  } catch {
    throw new OidcError('The OIDC token endpoint returned a malformed id_token');
  }
  if (!sameIssuer(unverifiedIssuer, login.issuer)) {
    throw new OidcError(`The ID token was issued by ${JSON.stringify(unverifiedIssuer)}, not by the configured provider ${login.issuer}`);
  }
  const payloadJson = await tokens.oidc!.verify(idToken, unverifiedIssuer, [login.clientId]);
  const claims = JSON.parse(payloadJson) as { iss: string; sub: string; nonce?: unknown };
  if (claims.nonce !== request.nonce) throw new OidcError('The ID token does not carry the nonce of this login');
  return { issuer: claims.iss, subject: claims.sub };
}

function randomToken(): string {
  return randomBytes(randomTokenBytes).toString('base64url');
}

function sendPage(ctx: RequestContext, status: number, title: string, message: string): void {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body><h1>${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p></body></html>`;
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.sendText(status, html, 'text/html; charset=utf-8');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
