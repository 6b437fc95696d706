// The login configuration side: `spacetime start --oidc-*` flags and the TOML config file, the audience default,
// and the CLI's answer when the target server has no web login configured.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { CliError } from '../../src/cli/errors.js';
import { clientSecretEnv, oidcOptionsFromFlags } from '../../src/cli/login-web.js';
import { createOidcVerifier } from '../../src/server/routes/login.js';
import { cleanupTempDirs, makeTempDir, runCli, startTestServer, tempConfigPath } from '../harness.js';

after(cleanupTempDirs);

test('no OIDC flags: no OIDC options; tokens of any issuer are verified by discovery, as upstream', () => {
  assert.equal(oidcOptionsFromFlags({ oidcTrustedIssuer: [], oidcAudience: [] }), undefined);
  const verifier = createOidcVerifier(undefined);
  assert.ok(verifier.accepts('https://any.example'));
  assert.deepEqual(verifier.audiences, []);
});

test('the TOML config file is read; flags win over it', () => {
  const file = path.join(makeTempDir(), 'auth.toml');
  writeFileSync(file, [
    '[login]', 'issuer = "https://accounts.example.com"', 'client_id = "from-file"', 'client_secret = "file-secret"',
    'redirect_url = "https://db.example.com/login/callback"', 'scopes = "openid email"',
    '[oidc]', 'trusted_issuers = ["https://other.example.com"]', 'audiences = ["aud-a", "aud-b"]', '',
  ].join('\n'));
  const saved = process.env[clientSecretEnv];
  delete process.env[clientSecretEnv];
  try {
    const fromFile = oidcOptionsFromFlags({ oidcConfig: file, oidcTrustedIssuer: [], oidcAudience: [] })!;
    assert.deepEqual(fromFile, {
      login: {
        issuer: 'https://accounts.example.com', clientId: 'from-file', clientSecret: 'file-secret',
        redirectUrl: 'https://db.example.com/login/callback', scopes: 'openid email',
      },
      trustedIssuers: ['https://other.example.com'],
      audiences: ['aud-a', 'aud-b'],
    });
    const flags = oidcOptionsFromFlags({ oidcConfig: file, oidcClientId: 'from-flag', oidcTrustedIssuer: ['https://x.example'], oidcAudience: ['aud-c'] })!;
    assert.equal(flags.login!.clientId, 'from-flag');
    assert.equal(flags.login!.clientSecret, 'file-secret');
    assert.deepEqual(flags.trustedIssuers, ['https://x.example']);
    assert.deepEqual(flags.audiences, ['aud-c']);
    process.env[clientSecretEnv] = 'env-secret';
    assert.equal(oidcOptionsFromFlags({ oidcConfig: file, oidcTrustedIssuer: [], oidcAudience: [] })!.login!.clientSecret, 'env-secret');
  } finally {
    if (saved === undefined) delete process.env[clientSecretEnv];
    else process.env[clientSecretEnv] = saved;
  }
});

test('bad config is refused with what and where', () => {
  assert.throws(() => oidcOptionsFromFlags({ oidcIssuer: 'https://a.example', oidcTrustedIssuer: [], oidcAudience: [] }),
    (e: unknown) => e instanceof CliError && /needs both --oidc-issuer and --oidc-client-id/.test(e.message));
  const file = path.join(makeTempDir(), 'bad.toml');
  writeFileSync(file, '[oidc]\naudiences = "not-a-list"\n');
  assert.throws(() => oidcOptionsFromFlags({ oidcConfig: file, oidcTrustedIssuer: [], oidcAudience: [] }),
    (e: unknown) => e instanceof CliError && e.message === `${file}: oidc.audiences must be a list of strings`);
});

test('the login issuer\'s tokens need the client id as aud; trusted issuers restrict and include the login issuer', () => {
  const verifier = createOidcVerifier({ login: { issuer: 'https://idp.example/', clientId: 'cid' }, trustedIssuers: ['https://b.example'] })!;
  assert.deepEqual(verifier.audiences, []); // no global list: only the login issuer's tokens need aud = cid
  assert.ok(verifier.isTrusted('https://idp.example'));
  assert.ok(verifier.isTrusted('https://b.example'));
  assert.ok(!verifier.accepts('https://c.example'));
  // A login provider alone does not restrict issuers.
  assert.ok(createOidcVerifier({ login: { issuer: 'https://idp.example/', clientId: 'cid' } }).accepts('https://c.example'));
  // Trusted issuers without a login: any audience (upstream's behaviour) unless the operator lists some.
  assert.deepEqual(createOidcVerifier({ trustedIssuers: ['https://b.example'] })!.audiences, []);
});

test('spacetime login against a server without web login says how to configure it', async () => {
  const server = await startTestServer();
  try {
    const r = await runCli(['login', '--no-browser', '-s', server.url], { configPath: tempConfigPath() });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error: Web login is not configured on this server \(start it with --oidc-issuer/);
    assert.match(r.stderr, /Caused by:\n {4}HTTP status client error \(404 Not Found\) for url \(http:\/\/127\.0\.0\.1:\d+\/api\/auth\/cli\/login\/request-token\)/);
  } finally {
    await server.stop();
  }
});
