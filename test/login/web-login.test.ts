// End-to-end web login: a real OpenID provider (`oidc-provider`) on loopback, a real server started by
// `spacetime start --oidc-*`, the real CLI running `spacetime login --no-browser`, and headless Chromium approving
// the login in the provider's own login + consent pages. Then `publish` works and the database's owner is the
// identity derived from the provider's iss|sub.
// Skipped (with a message) only when Debian's chromium is not installed at /usr/bin/chromium.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { chromium, type Browser } from 'playwright-core';
import { parse as parseToml } from 'smol-toml';
import { identityFromClaims, identityToHex } from '../../src/auth/identity.js';
import { cleanupTempDirs, freePort, makeTempDir, repoRoot, runCli, tempConfigPath } from '../harness.js';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const clientId = 'spacetime-test-client';
const clientSecret = 'test-client-secret-0123456789';
const loginTimeoutMs = 30_000;
const serverReadyTimeoutMs = 20_000;
const skip = existsSync(chromiumPath) ? false : `chromium is not installed at ${chromiumPath} (apt-get install -y chromium)`;

/** The argv prefix that runs the CLI (the harness's rule: dist/, or src/ through tsx). */
function cliArgv(): string[] {
  return process.env.SPACETIME_CLI_FROM_SOURCE === '1'
    ? ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')]
    : [path.join(repoRoot, 'bin', 'spacetime.js')];
}

/** Collects a child's stdout+stderr; `waitFor` resolves when the output matches. */
function watch(child: ChildProcess): { text(): string; stdout(): string; waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> } {
  let text = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    text += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    text: () => text,
    stdout: () => stdout,
    waitFor: (pattern, timeoutMs) => new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(text);
        if (match !== null) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(match);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for ${pattern} in:\n${text}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    }),
  };
}

async function startProvider(issuer: string, port: number, redirectUri: string): Promise<Server> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['test-cookie-signing-key'] },
    // Any login name is an account; its id is the `sub`.
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    features: { devInteractions: { enabled: true } },
    // Explicit lifetimes (seconds) keep the provider from printing a notice per default it falls back to.
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
  });
  const server = createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

describe('spacetime login through an OpenID Connect provider', { skip }, () => {
  let providerServer: Server;
  let spacetime: ChildProcess;
  let browser: Browser;
  let serverUrl: string;
  let issuer: string;
  let usedLoginUrl = '';
  const configPath = tempConfigPath();

  before(async () => {
    const [providerPort, serverPort] = [await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${providerPort}`;
    serverUrl = `http://127.0.0.1:${serverPort}`;
    providerServer = await startProvider(issuer, providerPort, `${serverUrl}/login/callback`);
    spacetime = spawn(process.execPath, [...cliArgv(), '--config-path', path.join(makeTempDir(), 'cli.toml'), 'start',
      '--listen-addr', `127.0.0.1:${serverPort}`, '--data-dir', makeTempDir('stdb-data-'),
      '--oidc-issuer', issuer, '--oidc-client-id', clientId],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SPACETIME_OIDC_CLIENT_SECRET: clientSecret } });
    await watch(spacetime).waitFor(/listening on/, serverReadyTimeoutMs);
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  });

  after(async () => {
    await browser?.close();
    if (spacetime !== undefined && spacetime.exitCode === null) {
      const exited = new Promise((resolve) => spacetime.once('exit', resolve));
      spacetime.kill('SIGTERM');
      await exited;
    }
    providerServer?.closeAllConnections();
    await new Promise((resolve) => providerServer?.close(resolve));
    cleanupTempDirs();
  });

  test('login --no-browser → browser approves → token → publish owned by the OIDC identity → logout', async () => {
    const login = spawn(process.execPath, [...cliArgv(), '--config-path', configPath, 'login', '--no-browser', '-s', serverUrl],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const loginOutput = watch(login);
    const loginExit = new Promise<number>((resolve) => login.once('close', (code) => resolve(code ?? -1)));
    const [, url] = await loginOutput.waitFor(/Open (\S+) in your browser to finish logging in\.\n/, loginTimeoutMs);
    assert.ok(url!.startsWith(`${serverUrl}/login/cli?token=`), url);
    usedLoginUrl = url!;
    await loginOutput.waitFor(/Waiting to hear response from the server\.\.\.\n/, loginTimeoutMs);

    const page = await browser.newPage();
    // Only loopback traffic: the provider's page links web fonts, which a sandboxed CI has no business fetching.
    await page.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
    await page.goto(url!);
    await page.fill('input[name="login"]', 'alice');
    await page.fill('input[name="password"]', 'anything');
    await page.click('button[type="submit"]');
    await page.click('button:has-text("Continue")'); // the provider's consent page
    await page.waitForURL(`${serverUrl}/login/callback**`);
    const expected = identityToHex(identityFromClaims(issuer, 'alice'));
    assert.match(await page.textContent('#message') ?? '', new RegExp(`You are logged in as ${expected}`));
    await page.close();

    assert.equal(await loginExit, 0, loginOutput.text());
    assert.equal(loginOutput.stdout(), `Open ${url} in your browser to finish logging in.\nWaiting to hear response from the server...\n` +
      `Login successful!\nLogged in with identity ${expected}\n`);

    const show = await runCli(['login', 'show'], { configPath });
    assert.equal(show.stdout, `You are logged in as ${expected}\n`);

    const pub = await runCli(['publish', '-s', serverUrl, '-p', 'test/fixtures/modules/basic', '-y', 'oidc-owned'], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
    const info = await (await fetch(`${serverUrl}/v1/database/oidc-owned`)).json() as { owner_identity: { __identity__: string } };
    assert.equal(info.owner_identity.__identity__, `0x${expected}`);

    // Logout also ends the web session on the server.
    const session = (parseToml(readFileSync(configPath, 'utf8')) as { web_session_token?: string }).web_session_token;
    assert.ok(session !== undefined);
    const exchange = (): Promise<Response> => fetch(`${serverUrl}/api/spacetimedb-token`, { method: 'POST', headers: { authorization: `Bearer ${session}` } });
    assert.equal((await exchange()).status, 200);
    const out = await runCli(['logout', '-s', serverUrl], { configPath });
    assert.equal(out.stdout, `Logged out (identity ${expected}).\n`);
    assert.equal((await runCli(['login', 'show'], { configPath })).stdout, 'You are not logged in. Run `spacetime login` to log in.\n');
    assert.equal((await exchange()).status, 401);
  });

  test('cancelling at the provider fails the CLI login with the provider\'s answer', async () => {
    const cancelConfig = tempConfigPath();
    const login = spawn(process.execPath, [...cliArgv(), '--config-path', cancelConfig, 'login', '--no-browser', '-s', serverUrl],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const output = watch(login);
    const exit = new Promise<number>((resolve) => login.once('close', (code) => resolve(code ?? -1)));
    const [, url] = await output.waitFor(/Open (\S+) in your browser/, loginTimeoutMs);
    const page = await browser.newPage();
    await page.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
    await page.goto(url!);
    await page.click('text=[ Cancel ]');
    await page.waitForURL(`${serverUrl}/login/callback**`);
    assert.match(await page.textContent('#message') ?? '', /Login failed: the identity provider answered access_denied/);
    await page.close();
    assert.equal(await exit, 1);
    assert.match(output.text(), /Error: Login failed: the identity provider answered access_denied/);
    assert.equal((await runCli(['login', 'show'], { configPath: cancelConfig })).stdout, 'You are not logged in. Run `spacetime login` to log in.\n');
  });

  test('a login link cannot be reused, and an unknown request token is refused', async () => {
    const page = await browser.newPage();
    for (const link of [`${serverUrl}/login/cli?token=not-a-real-request`, usedLoginUrl]) {
      assert.ok(link !== '', 'the first test ran');
      const res = await page.goto(link);
      assert.equal(res?.status(), 400);
      assert.match(await page.textContent('#message') ?? '', /unknown, expired or already used/);
    }
    await page.close();
    const status = await (await fetch(`${serverUrl}/api/auth/cli/status?token=nope`)).json() as { success: boolean };
    assert.equal(status.success, false);
  });
});
