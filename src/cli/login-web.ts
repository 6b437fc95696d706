// cli/login-web.ts — `spacetime login` through the browser, and the `spacetime start` options that configure the
// server's OpenID Connect login (docs/login.md).
//
// Owns: the CLI side of the web login contract (cli-and-publish.md §1, client-protocol.md §6.4): request token →
// browser URL → status polling → session token → long-lived token; the `--oidc-*` start flags and the TOML auth
// config file they may come from.
// May call: cli/config.ts, cli/util.ts (HTTP), cli/errors.ts, smol-toml, node:child_process (opening a browser).
// Only a type comes from server/ (the options `spacetime start` hands to startServer).

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseToml } from 'smol-toml';
import type { OidcServerOptions } from '../server/routes/login.js';
import type { CliConfig } from './config.js';
import { CliError } from './errors.js';
import { ensureOk, httpRequest, identityFromToken } from './util.js';

/** How often the CLI asks whether the browser login was approved (upstream: 1 s). */
export const loginPollIntervalMs = 1000;
/** The CLI gives up waiting for the browser after this long. */
export const loginWaitMaxMs = 15 * 60 * 1000;
/** The environment variable that may carry the client secret (keeps it out of `ps`). */
export const clientSecretEnv = 'SPACETIME_OIDC_CLIENT_SECRET';

/**
 * The web login against `host` (our server or any auth host speaking upstream's contract). Prints what upstream
 * prints; saves `web_session_token` and `spacetimedb_token`.
 */
export async function webLogin(config: CliConfig, host: string, openBrowser: boolean): Promise<string> {
  const base = host.replace(/\/+$/, '');
  const requested = await postJson(`${base}/api/auth/cli/login/request-token`) as { success?: boolean; data?: { token?: unknown } };
  if (requested.success !== true || typeof requested.data?.token !== 'string') throw new CliError('Failed to request token');
  const requestToken = requested.data.token;
  const browserUrl = `${base}/login/cli?token=${encodeURIComponent(requestToken)}`;
  if (openBrowser) {
    process.stdout.write(`Opening ${browserUrl} in your browser.\n`);
    if (!(await tryOpenBrowser(browserUrl))) process.stdout.write('Unable to open your browser! Please open the URL above manually.\n');
  } else {
    process.stdout.write(`Open ${browserUrl} in your browser to finish logging in.\n`);
  }
  process.stdout.write('Waiting to hear response from the server...\n');
  const sessionToken = await waitForApproval(base, requestToken);
  process.stdout.write('Login successful!\n');
  config.data.web_session_token = sessionToken;
  config.save();

  const url = `${base}/api/spacetimedb-token`;
  const res = await httpRequest('POST', url, { token: sessionToken });
  const body = parseJson(ensureOk(res, url).text, url) as { success?: boolean; error?: string; data?: { token?: unknown } };
  if (body.success !== true || typeof body.data?.token !== 'string') {
    throw new CliError(`Failed to get token: ${body.error ?? 'Unknown error'}`);
  }
  const token = body.data.token;
  config.data.spacetimedb_token = token;
  config.save();
  process.stdout.write(`Logged in with identity ${identityFromToken(token) ?? '<unknown identity>'}\n`);
  return token;
}

/** Tells the auth host the web session is over (best effort, as upstream: failures only warn). */
export async function webLogout(host: string, sessionToken: string): Promise<void> {
  const url = `${host.replace(/\/+$/, '')}/auth/cli/logout`;
  try {
    await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${sessionToken}` }, signal: AbortSignal.timeout(5000) });
  } catch (error) {
    process.stderr.write(`Warning: Failed to logout from auth server: ${(error as Error).message}\nLocal credentials have been cleared.\n`);
  }
}

async function waitForApproval(base: string, requestToken: string): Promise<string> {
  const url = `${base}/api/auth/cli/status?token=${encodeURIComponent(requestToken)}`;
  const deadline = Date.now() + loginWaitMaxMs;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, loginPollIntervalMs));
    const res = await httpRequest('GET', url);
    const body = parseJson(ensureOk(res, url).text, url) as {
      success?: boolean; error?: string; data?: { approved?: boolean; sessionToken?: unknown };
    };
    if (body.success !== true) throw new CliError(body.error ?? 'Unknown error');
    if (body.data === undefined) throw new CliError('Response data is missing.');
    if (body.data.approved !== true) continue;
    if (typeof body.data.sessionToken !== 'string') throw new CliError('Session token is missing in response.');
    return body.data.sessionToken;
  }
  throw new CliError(`Login was not approved within ${loginWaitMaxMs / 60_000} minutes`);
}

async function postJson(url: string): Promise<unknown> {
  return parseJson(ensureOk(await httpRequest('POST', url), url).text, url);
}

function parseJson(text: string, url: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`unexpected response from ${url}: ${text.slice(0, 200)}`);
  }
}

/** Starts the platform's URL opener; false when there is none (headless machines). */
function tryOpenBrowser(url: string): Promise<boolean> {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  return new Promise((resolve) => {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.once('error', () => resolve(false));
    child.once('spawn', () => {
      child.unref();
      resolve(true);
    });
  });
}

// ─── `spacetime start` options ──────────────────────────────────────────────────────────────────────────────────

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Adds the `--oidc-*` flags to the `start` command. */
export function addOidcStartOptions(command: Command): Command {
  return command
    .option('--oidc-config <file>', 'TOML file with [login] and [oidc] sections (see docs/login.md)')
    .option('--oidc-issuer <url>', 'OpenID Connect provider used by `spacetime login` (its issuer URL)')
    .option('--oidc-client-id <id>', 'Client id registered with the OpenID Connect provider')
    .option('--oidc-client-secret <secret>', `Client secret (or set ${clientSecretEnv})`)
    .option('--oidc-redirect-url <url>', 'Callback URL registered with the provider (default http://<host>/login/callback)')
    .option('--oidc-scopes <scopes>', 'Scopes requested at login (default "openid")')
    .option('--oidc-trusted-issuer <url>', 'Also accept tokens from this issuer (repeatable)', collect, [])
    .option('--oidc-audience <aud>', 'Accept only tokens whose aud contains one of these (repeatable)', collect, []);
}

/** The server's OIDC options from the start flags (which win) and the config file; undefined when none are set. */
export function oidcOptionsFromFlags(opts: Record<string, unknown>): OidcServerOptions | undefined {
  const file = typeof opts.oidcConfig === 'string' ? readOidcConfigFile(opts.oidcConfig) : {};
  const login = { ...file.login };
  const str = (name: string): string | undefined => (typeof opts[name] === 'string' ? (opts[name] as string) : undefined);
  login.issuer = str('oidcIssuer') ?? login.issuer;
  login.clientId = str('oidcClientId') ?? login.clientId;
  login.clientSecret = str('oidcClientSecret') ?? process.env[clientSecretEnv] ?? login.clientSecret;
  login.redirectUrl = str('oidcRedirectUrl') ?? login.redirectUrl;
  login.scopes = str('oidcScopes') ?? login.scopes;
  const flagIssuers = (opts.oidcTrustedIssuer as string[] | undefined) ?? [];
  const flagAudiences = (opts.oidcAudience as string[] | undefined) ?? [];
  const trustedIssuers = flagIssuers.length > 0 ? flagIssuers : file.trustedIssuers ?? [];
  const audiences = flagAudiences.length > 0 ? flagAudiences : file.audiences ?? [];
  const hasLogin = login.issuer !== undefined || login.clientId !== undefined;
  if (hasLogin && (login.issuer === undefined || login.clientId === undefined)) {
    throw new CliError('OIDC login needs both --oidc-issuer and --oidc-client-id');
  }
  if (!hasLogin && trustedIssuers.length === 0) return undefined;
  return {
    login: hasLogin ? (login as OidcServerOptions['login']) : undefined,
    trustedIssuers,
    audiences,
  };
}

interface OidcFile {
  login?: { issuer?: string; clientId?: string; clientSecret?: string; redirectUrl?: string; scopes?: string };
  trustedIssuers?: string[];
  audiences?: string[];
}

function readOidcConfigFile(file: string): OidcFile {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new CliError(`Could not read the OIDC config file ${file}: ${(error as Error).message}`);
  }
  const table = (name: string): Record<string, unknown> => {
    const value = doc[name] ?? {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CliError(`${file}: [${name}] must be a table`);
    return value as Record<string, unknown>;
  };
  const text = (t: Record<string, unknown>, section: string, key: string): string | undefined => {
    const value = t[key];
    if (value !== undefined && typeof value !== 'string') throw new CliError(`${file}: ${section}.${key} must be a string`);
    return value;
  };
  const list = (t: Record<string, unknown>, section: string, key: string): string[] | undefined => {
    const value = t[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new CliError(`${file}: ${section}.${key} must be a list of strings`);
    return value as string[];
  };
  const login = table('login');
  const oidc = table('oidc');
  return {
    login: {
      issuer: text(login, 'login', 'issuer'),
      clientId: text(login, 'login', 'client_id'),
      clientSecret: text(login, 'login', 'client_secret'),
      redirectUrl: text(login, 'login', 'redirect_url'),
      scopes: text(login, 'login', 'scopes'),
    },
    trustedIssuers: list(oidc, 'oidc', 'trusted_issuers'),
    audiences: list(oidc, 'oidc', 'audiences'),
  };
}
