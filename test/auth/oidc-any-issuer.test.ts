// OIDC tokens from any issuer (issue 13 item 12): with no allow-list the server accepts a token of an issuer it has
// never heard of, through discovery (<iss>/.well-known/openid-configuration → jwks_uri), as upstream does; by default
// it refuses issuers at loopback/private addresses (checked before connecting, and on every resolved address at
// connect time) and plain http; the operator's allow-list and audiences still restrict; the cache and fetches are
// bounded (limits.ts "OIDC").
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { identityFromClaims, identityToHex } from '../../src/auth/identity.js';
import { OidcVerifier, type OidcFetch } from '../../src/auth/oidc.js';
import { isSpecialAddress } from '../../src/host/http-egress-worker.js';
import { oidcDiscoveriesInFlightMax, oidcDocumentMaxBytes, oidcIssuersCachedMax } from '../../src/limits.js';
import { startServer, type RunningServer } from '../../src/server/main.js';
import { makeKey, ProviderStub, type SigningKey } from '../login/provider-stub.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function serve(oidc: Parameters<typeof startServer>[0]['oidc'], loopbackIssuers: boolean): Promise<RunningServer> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'stdb-oidc-any-'));
  dirs.push(dataDir);
  const saved = process.env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP;
  if (loopbackIssuers) process.env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP = '1';
  else delete process.env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP;
  try {
    return await startServer({ listenAddr: '127.0.0.1:0', dataDir, announce: false, log: () => {}, oidc });
  } finally {
    if (saved === undefined) delete process.env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP;
    else process.env.SPACETIME_OIDC_ALLOW_LOOPBACK_HTTP = saved;
  }
}

async function verify(server: RunningServer, token: string, identity: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}/v1/identity/${identity}/verify`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, text: await res.text() };
}

describe('a token from an issuer the server was never told about', () => {
  const provider = new ProviderStub();
  let key: SigningKey;
  const servers: RunningServer[] = [];
  before(async () => {
    await provider.start();
    key = await makeKey('k1', 'RS256');
    provider.published = [key];
  });
  after(async () => {
    for (const s of servers) await s.close();
    await provider.stop();
  });

  test('is verified through discovery when loopback issuers are allowed for testing (any aud, as upstream)', async () => {
    const server = await serve(undefined, true);
    servers.push(server);
    const token = await provider.sign(key, { sub: 'anyone' }, 'some-other-app');
    const identity = identityToHex(identityFromClaims(provider.issuer, 'anyone'));
    assert.deepEqual(await verify(server, token, identity), { status: 204, text: '' });
    const ws = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(ws.status, 200);
  });

  test('is refused by default when the issuer is loopback or plain http, before any connection', async () => {
    const server = await serve(undefined, false);
    servers.push(server);
    const port = new URL(provider.issuer).port;
    const before = provider.connections;
    const http = await verify(server, await provider.sign(key, { sub: 'u' }), identityToHex(identityFromClaims(provider.issuer, 'u')));
    assert.equal(http.status, 401);
    assert.match(http.text, /https only/);
    for (const issuer of [`https://127.0.0.1:${port}`, `https://localhost:${port}`, `https://[::1]:${port}`, `https://10.1.2.3:${port}`,
      `https://169.254.169.254`]) {
      const token = await provider.sign(key, { iss: issuer, sub: 'u' });
      const r = await verify(server, token, identityToHex(identityFromClaims(issuer, 'u')));
      assert.equal(r.status, 401, issuer);
      assert.match(r.text, /refusing to connect to private or special-purpose addresses/, issuer);
    }
    assert.equal(provider.connections, before, 'the provider was never contacted');
  });

  test('is refused at connect time when a host name resolves to a loopback or private address', async (t) => {
    const names = ['vm', 'runsc', os.hostname()];
    let name: string | undefined;
    for (const n of names) {
      const addresses = await lookup(n, { all: true }).catch(() => []);
      if (addresses.length > 0 && addresses.every((a) => isSpecialAddress(a.address))) { name = n; break; }
    }
    if (name === undefined) { t.skip('no host name here resolves to a special-purpose address'); return; }
    const server = await serve(undefined, false);
    servers.push(server);
    const issuer = `https://${name}:${new URL(provider.issuer).port}`;
    const before = provider.connections;
    const r = await verify(server, await provider.sign(key, { iss: issuer, sub: 'u' }), identityToHex(identityFromClaims(issuer, 'u')));
    assert.equal(r.status, 401);
    assert.match(r.text, /refusing to connect to private or special-purpose addresses/);
    assert.equal(provider.connections, before, 'the provider was never contacted');
  });

  test('the operator allow-list and audiences still restrict', async () => {
    const listed = await serve({ trustedIssuers: ['https://only.example'] }, true);
    servers.push(listed);
    const fetchesBefore = provider.connections;
    const r = await verify(listed, await provider.sign(key, { sub: 'u' }), identityToHex(identityFromClaims(provider.issuer, 'u')));
    assert.equal(r.status, 401);
    assert.match(r.text, /is not trusted by this server/);
    assert.equal(provider.connections, fetchesBefore, 'an issuer off the allow-list is never contacted');

    const audience = await serve({ audiences: ['my-app'] }, true);
    servers.push(audience);
    const id = identityToHex(identityFromClaims(provider.issuer, 'u'));
    assert.equal((await verify(audience, await provider.sign(key, { sub: 'u' }, 'my-app'), id)).status, 204);
    const wrong = await verify(audience, await provider.sign(key, { sub: 'u' }, 'other'), id);
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /InvalidAudience/);
  });
});

describe('the issuer cache and fetches are bounded', () => {
  /** Serves a discovery document and an empty key set for any https://iss-N.example issuer, counting fetches. */
  function syntheticIssuers(jwksBytes = 0): { fetcher: OidcFetch; fetches: Map<string, number> } {
    const fetches = new Map<string, number>();
    const fetcher: OidcFetch = async (url) => {
      const u = new URL(url);
      fetches.set(u.origin, (fetches.get(u.origin) ?? 0) + 1);
      if (u.pathname === '/.well-known/openid-configuration') {
        return new Response(JSON.stringify({ issuer: u.origin, jwks_uri: `${u.origin}/jwks` }));
      }
      return new Response(JSON.stringify({ keys: [], padding: 'x'.repeat(jwksBytes) }));
    };
    return { fetcher, fetches };
  }

  test(`at most ${oidcIssuersCachedMax} issuers are cached; the least recently used is fetched again`, async () => {
    const { fetcher, fetches } = syntheticIssuers();
    const verifier = new OidcVerifier({ trustedIssuers: [], restrictIssuers: false, anyIssuerFetch: fetcher });
    for (let i = 0; i <= oidcIssuersCachedMax; i++) await verifier.discovery(`https://iss-${i}.example`);
    await verifier.discovery(`https://iss-${oidcIssuersCachedMax}.example`);
    assert.equal(fetches.get(`https://iss-${oidcIssuersCachedMax}.example`), 2, 'a cached issuer is not fetched again');
    await verifier.discovery('https://iss-0.example');
    assert.equal(fetches.get('https://iss-0.example'), 4, 'the oldest issuer was dropped and fetched again');
  });

  test(`a key set above ${oidcDocumentMaxBytes} bytes is refused while it is read`, async () => {
    const { fetcher } = syntheticIssuers(oidcDocumentMaxBytes);
    const verifier = new OidcVerifier({ trustedIssuers: [], restrictIssuers: false, anyIssuerFetch: fetcher });
    await assert.rejects(verifier.discovery('https://big.example'), /larger than 262144 bytes \(oidcDocumentMaxBytes\)/);
  });

  test(`at most ${oidcDiscoveriesInFlightMax} issuer fetches run at once`, async () => {
    const release: (() => void)[] = [];
    const fetcher: OidcFetch = (url) => new Promise((resolve) => release.push(() => {
      const u = new URL(url);
      resolve(new Response(JSON.stringify(u.pathname.endsWith('configuration') ? { issuer: u.origin, jwks_uri: `${u.origin}/jwks` } : { keys: [] })));
    }));
    const verifier = new OidcVerifier({ trustedIssuers: [], restrictIssuers: false, anyIssuerFetch: fetcher });
    const pending = Array.from({ length: oidcDiscoveriesInFlightMax }, (_, i) => verifier.discovery(`https://slow-${i}.example`));
    await assert.rejects(verifier.discovery('https://one-more.example'), /oidcDiscoveriesInFlightMax/);
    while (release.length > 0) { release.shift()!(); await new Promise((r) => setImmediate(r)); }
    await Promise.all(pending);
  });
});
