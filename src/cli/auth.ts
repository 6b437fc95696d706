// Login state: the saved token, implicit server-issued login, `login`/`login show`/`logout` output
// (cli-and-publish.md §1 login). Owns: when a command gets a token and from where (saved, server-issued, web login).
// May call: config, errors, util (HTTP, prompts), login-web (the browser login).
import { CliConfig } from './config.js';
import { CliError } from './errors.js';
import { webLogin, webLogout } from './login-web.js';
import { httpRequest, identityFromToken, jsonBody, yesOrNo } from './util.js';

/** POST <server>/v1/identity, save the token, print the three lines the smoketests grep. */
export async function serverIssuedLogin(config: CliConfig, serverUrl: string): Promise<string> {
  const url = `${serverUrl}/v1/identity`;
  const body = jsonBody(await httpRequest('POST', url), url) as { identity?: unknown; token?: unknown };
  if (typeof body.token !== 'string') throw new CliError(`unexpected response from ${url}: no token`);
  config.data.spacetimedb_token = body.token;
  config.save();
  const identity = identityFromToken(body.token) ?? String(body.identity);
  process.stdout.write(
    'We have logged in directly to your target server.\n' +
      'WARNING: This login will NOT work for any other servers.\n' +
      `Logged in with identity ${identity}\n`,
  );
  return body.token;
}

/**
 * The bearer token for a command: none with --anonymous; the saved one; else implicit login. Interactive sessions
 * (stdin is a terminal) are asked about spacetimedb.com first: "y" runs the web login against the target server
 * (webLoginHost); --yes, a "no", EOF or a non-terminal stdin fall back to a server-issued login on the target.
 */
export async function authToken(
  config: CliConfig,
  serverUrl: string,
  opts: { anonymous?: boolean; yes?: boolean },
): Promise<string | undefined> {
  if (opts.anonymous === true) return undefined;
  const saved = config.data.spacetimedb_token;
  if (saved !== undefined) return saved;
  if (opts.yes !== true && process.stdin.isTTY === true) {
    // The prompt keeps upstream's wording; "yes" runs the same web login as `spacetime login` on the target server.
    const web = await yesOrNo('You are not logged in. Would you like to log in with spacetimedb.com?');
    if (web) return webLogin(config, webLoginHost(serverUrl), true);
  }
  return serverIssuedLogin(config, serverUrl);
}

/** The web login's host for a target server: the server itself; maincloud's logins live on spacetimedb.com. */
export function webLoginHost(serverUrl: string): string {
  return /^https:\/\/maincloud\.spacetimedb\.com\/?$/.test(serverUrl) ? 'https://spacetimedb.com' : serverUrl;
}

/**
 * Removes both tokens; prints what upstream prints. A web session is also ended on `authHost` (best effort) when
 * the caller knows the host.
 */
export async function logout(config: CliConfig, authHost?: string): Promise<void> {
  const token = config.data.spacetimedb_token;
  const webSession = config.data.web_session_token;
  if (token === undefined && webSession === undefined) {
    process.stdout.write('You are not logged in.\n');
    return;
  }
  if (webSession !== undefined && authHost !== undefined) await webLogout(authHost, webSession);
  delete config.data.spacetimedb_token;
  delete config.data.web_session_token;
  config.save();
  const identity = token !== undefined ? identityFromToken(token) : undefined;
  process.stdout.write(identity !== undefined ? `Logged out (identity ${identity}).\n` : 'Logged out.\n');
}

/** `spacetime logout`: the web session ends on --auth-host, else on the target server when one is configured. */
export async function logoutCommand(config: CliConfig, opts: { authHost?: string; server?: string }): Promise<void> {
  let host = opts.authHost;
  if (host === undefined) {
    try {
      host = config.serverUrl(opts.server);
    } catch {
      host = undefined; // no usable server config: only the local tokens are cleared
    }
  }
  await logout(config, host);
}

export async function login(
  config: CliConfig,
  opts: { token?: string; serverIssuedLogin?: string; authHost?: string; server?: string; browser?: boolean },
  serverUrlOf: (server: string | undefined) => string,
): Promise<void> {
  // The web login's host: --auth-host, else the target server (-s, else the default server); maincloud's logins
  // live on spacetimedb.com, as upstream.
  const authHostOf = (): string => {
    if (opts.authHost !== undefined) return opts.authHost;
    return webLoginHost(serverUrlOf(opts.server));
  };
  if (config.data.spacetimedb_token !== undefined || config.data.web_session_token !== undefined) {
    let previousHost: string | undefined;
    try {
      previousHost = authHostOf();
    } catch {
      previousHost = undefined; // no usable server config: only the local tokens are cleared
    }
    await logout(config, previousHost);
  }
  if (opts.token !== undefined) {
    config.data.spacetimedb_token = opts.token;
    config.save();
    const identity = identityFromToken(opts.token);
    process.stdout.write(identity !== undefined ? `Logged in with identity ${identity}\n` : 'Token saved.\n');
    return;
  }
  if (opts.serverIssuedLogin !== undefined) {
    await serverIssuedLogin(config, serverUrlOf(opts.serverIssuedLogin));
    return;
  }
  await webLogin(config, authHostOf(), opts.browser !== false);
}

export function loginShow(config: CliConfig, showToken: boolean): void {
  const token = config.data.spacetimedb_token;
  if (token === undefined) {
    process.stdout.write('You are not logged in. Run `spacetime login` to log in.\n');
    return;
  }
  const identity = identityFromToken(token);
  process.stdout.write(`You are logged in as ${identity ?? '<unknown identity>'}\n`);
  if (showToken) process.stdout.write(`Your auth token (don't share this!) is ${token}\n`);
}
