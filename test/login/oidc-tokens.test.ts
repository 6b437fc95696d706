// OIDC-issued JWTs: accepted from allow-listed issuers through discovery + JWKS (with key rotation), and the attacks
// rejected — alg none, HS256 keyed with the provider's public key, unknown issuer, wrong audience, expired,
// not-yet-valid, a forged key under a published kid. Also checks HTTP and WebSocket accept them on a real server.
import assert from 'node:assert/strict';
import { createPublicKey, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportSPKI } from 'jose';
import { WebSocket } from 'ws';
import { identityFromClaims, identityToHex } from '../../src/auth/identity.js';
import { loadOrCreateKeys } from '../../src/auth/keys.js';
import { OidcVerifier, jwksCacheTtlMs, oidcClockLeewaySeconds } from '../../src/auth/oidc.js';
import { AuthError, TokenAuthority, notSignedByUsMessage } from '../../src/auth/tokens.js';
import { startServer, type RunningServer } from '../../src/server/main.js';
import { makeKey, ProviderStub, type SigningKey } from './provider-stub.js';

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

async function rejects(authority: TokenAuthority, token: string, pattern: RegExp): Promise<void> {
  await assert.rejects(authority.verify(token), (error: unknown) => {
    assert.ok(error instanceof AuthError, `expected AuthError, got ${String(error)}`);
    assert.equal(error.status, 401);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('OIDC token verification', () => {
  const provider = new ProviderStub();
  let rsa: SigningKey;
  let ec: SigningKey;
  let authority: TokenAuthority;
  let keyDir: string;

  before(async () => {
    await provider.start();
    rsa = await makeKey('rsa-1', 'RS256');
    ec = await makeKey('ec-1', 'ES256');
    provider.published = [rsa, ec];
    keyDir = mkdtempSync(path.join(os.tmpdir(), 'stdb-oidc-keys-'));
    authority = new TokenAuthority({
      keys: await loadOrCreateKeys(keyDir),
      oidc: new OidcVerifier({ trustedIssuers: [provider.issuer], audiences: ['my-app'] }),
    });
  });
  after(async () => {
    await provider.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  test('RS256 and ES256 tokens of a trusted issuer are accepted; identity derives from iss|sub', async () => {
    const token = await provider.sign(rsa, { sub: 'alice' });
    const verified = await authority.verify(token);
    assert.equal(identityToHex(verified.identity), identityToHex(identityFromClaims(provider.issuer, 'alice')));
    assert.equal(verified.issuer, provider.issuer);
    assert.equal(JSON.parse(verified.payloadJson).sub, 'alice');
    const ecVerified = await authority.verify(await provider.sign(ec, { sub: 'bob' }));
    assert.equal(ecVerified.identity, identityFromClaims(provider.issuer, 'bob'));
    // `aud` as an array containing an accepted audience is fine too.
    await authority.verify(await provider.sign(rsa, { sub: 'carol', aud: ['other', 'my-app'] }));
    // The discovery + JWKS were fetched once for all of these.
    assert.equal(provider.jwksFetches, 1);
  });

  test('alg none is rejected', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: provider.issuer, sub: 'mallory', aud: 'my-app', iat: now, exp: now + 60 })}.`;
    await rejects(authority, token, /algorithm not accepted/);
  });

  test('HS256 signed with the provider public key (algorithm confusion) is rejected', async () => {
    const now = Math.floor(Date.now() / 1000);
    const pem = await exportSPKI(rsa.publicKey);
    const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
    for (const secret of [pem, der, Buffer.from(rsa.publicJwk.n!, 'base64url')]) {
      const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })}.${b64url({ iss: provider.issuer, sub: 'mallory', aud: 'my-app', iat: now, exp: now + 60 })}`;
      const token = `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
      await rejects(authority, token, /algorithm not accepted/);
    }
  });

  test('a key the provider never published, under a published kid, is rejected', async () => {
    const forged = await makeKey(rsa.kid, 'RS256');
    await rejects(authority, await provider.sign(forged, { sub: 'mallory' }), /InvalidSignature/);
  });

  test('an issuer not on the allow-list is rejected with a clear message', async () => {
    const other = await new ProviderStub().start();
    try {
      other.published = [rsa];
      await rejects(authority, await other.sign(rsa, { sub: 'alice' }), /issuer "http:\/\/127\.0\.0\.1:\d+" is not trusted by this server/);
      assert.equal(other.jwksFetches, 0, 'an untrusted issuer is never contacted');
    } finally {
      await other.stop();
    }
  });

  test('a token for another audience is rejected', async () => {
    await rejects(authority, await provider.sign(rsa, { sub: 'alice' }, 'someone-else'), /InvalidAudience/);
  });

  test('expired tokens are rejected, without leeway (src/limits.ts tokenExpiryLeewaySeconds)', async () => {
    const now = Math.floor(Date.now() / 1000);
    await rejects(authority, await provider.sign(rsa, { sub: 'late', iat: now - 600, exp: now - oidcClockLeewaySeconds - 30 }), /ExpiredSignature/);
    await rejects(authority, await provider.sign(rsa, { sub: 'just-late', iat: now - 600, exp: now - 20 }), /ExpiredSignature/);
    await authority.verify(await provider.sign(rsa, { sub: 'on-time', iat: now - 600, exp: now + 30 }));
  });

  test('not-yet-valid tokens are rejected past the leeway', async () => {
    const now = Math.floor(Date.now() / 1000);
    await rejects(authority, await provider.sign(rsa, { sub: 'early', nbf: now + oidcClockLeewaySeconds + 60 }), /ImmatureSignature/);
  });

  test('key rotation: a new kid is accepted after one JWKS refetch; refetches are rate limited', async () => {
    const before = provider.jwksFetches;
    const rotated = await makeKey('rsa-2', 'RS256');
    provider.published = [rotated];
    const verified = await authority.verify(await provider.sign(rotated, { sub: 'dave' }));
    assert.equal(verified.identity, identityFromClaims(provider.issuer, 'dave'));
    assert.equal(provider.jwksFetches, before + 1);
    // Another unknown kid right away: no second fetch (forged kids cannot make us hammer the provider).
    const unknown = await makeKey('rsa-3', 'RS256');
    await rejects(authority, await provider.sign(unknown, { sub: 'erin' }), /no key of the issuer matches/);
    assert.equal(provider.jwksFetches, before + 1);
  });

  test('key sets expire after the TTL; if the provider is down the stale keys keep working', async () => {
    const stub = await new ProviderStub().start();
    const key = await makeKey('ttl', 'ES256');
    stub.published = [key];
    let nowMs = Date.now();
    const ttlAuthority = new TokenAuthority({
      keys: authority.keys,
      oidc: new OidcVerifier({ trustedIssuers: [stub.issuer], nowMs: () => nowMs }),
    });
    try {
      await ttlAuthority.verify(await stub.sign(key, { sub: 'ttl-1' }));
      await ttlAuthority.verify(await stub.sign(key, { sub: 'ttl-2' }));
      assert.equal(stub.jwksFetches, 1);
      nowMs += jwksCacheTtlMs + 1;
      await ttlAuthority.verify(await stub.sign(key, { sub: 'ttl-3' }));
      assert.equal(stub.jwksFetches, 2, 'refetched after the TTL');
      const token = await stub.sign(key, { sub: 'ttl-4' });
      await stub.stop();
      nowMs += jwksCacheTtlMs + 1;
      const verified = await ttlAuthority.verify(token);
      assert.equal(verified.identity, identityFromClaims(stub.issuer, 'ttl-4'));
    } finally {
      await stub.stop();
    }
  });

  test('without OIDC configuration foreign tokens get the upstream message', async () => {
    const plain = new TokenAuthority({ keys: authority.keys });
    await rejects(plain, await provider.sign(ec, { sub: 'alice' }), new RegExp(notSignedByUsMessage));
  });
});

describe('OIDC tokens on the HTTP API and the WebSocket endpoint', () => {
  const provider = new ProviderStub();
  let key: SigningKey;
  let server: RunningServer;
  let dataDir: string;

  before(async () => {
    await provider.start();
    key = await makeKey('k', 'ES256');
    provider.published = [key];
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'stdb-oidc-srv-'));
    server = await startServer({
      listenAddr: '127.0.0.1:0', dataDir, announce: false, log: () => {},
      oidc: { trustedIssuers: [provider.issuer], audiences: ['my-app'] },
    });
  });
  after(async () => {
    await server.close();
    await provider.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('GET /v1/identity/:id/verify accepts an OIDC token for its derived identity', async () => {
    const token = await provider.sign(key, { sub: 'http-user' });
    const identity = identityToHex(identityFromClaims(provider.issuer, 'http-user'));
    const ok = await fetch(`${server.url}/v1/identity/${identity}/verify`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 204);
    const wrongAud = await provider.sign(key, { sub: 'http-user' }, 'nope');
    const refused = await fetch(`${server.url}/v1/identity/${identity}/verify`, { headers: { authorization: `Bearer ${wrongAud}` } });
    assert.equal(refused.status, 401);
    assert.match(await refused.text(), /InvalidAudience/);
  });

  test('a websocket token is minted for an OIDC caller', async () => {
    const token = await provider.sign(key, { sub: 'ws-user' });
    const res = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const short = ((await res.json()) as { token: string }).token;
    const verified = await server.tokens.verify(short);
    assert.equal(verified.identity, identityFromClaims(provider.issuer, 'ws-user'));
  });

  test('the WebSocket upgrade authenticates OIDC tokens (valid → past auth, invalid → 401)', async () => {
    const upgrade = (token: string): Promise<number> => new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/no-such-db/subscribe?token=${encodeURIComponent(token)}`,
        'v2.bsatn.spacetimedb');
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? -1);
        ws.terminate();
      });
      ws.once('open', () => reject(new Error('upgrade unexpectedly accepted')));
      ws.once('error', () => {}); // the refusal surfaces as 'unexpected-response'
    });
    // A valid token gets past authentication to the database lookup (404); a bad one stops at 401.
    assert.equal(await upgrade(await provider.sign(key, { sub: 'ws' })), 404);
    assert.equal(await upgrade(await provider.sign(key, { sub: 'ws' }, 'nope')), 401);
  });
});
