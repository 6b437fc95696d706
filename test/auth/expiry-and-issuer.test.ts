// Issue 11 item 12, through the real server (startServer) with an OIDC provider stub: an expired token is refused for
// every use, renewal included, and a renewed websocket token never outlives the token it came from; the same IdP user
// presented with and without a trailing `/` in `iss` gets two identities, as upstream derives them (BLAKE3 of the
// exact `iss|sub` text; upstream trims the slash only to build the discovery URL).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { identityFromClaims, identityToHex } from '../../src/auth/identity.js';
import { loadOrCreateKeys } from '../../src/auth/keys.js';
import { TokenAuthority } from '../../src/auth/tokens.js';
import { startServer, type RunningServer } from '../../src/server/main.js';
import { makeKey, ProviderStub, type SigningKey } from '../login/provider-stub.js';

const provider = new ProviderStub();
let key: SigningKey;
let server: RunningServer;
let dataDir: string;

before(async () => {
  await provider.start();
  key = await makeKey('k', 'ES256');
  provider.published = [key];
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'stdb-expiry-'));
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

const nowSeconds = () => Math.floor(Date.now() / 1000);
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

async function websocketToken(token: string): Promise<{ status: number; token?: string; text: string }> {
  const res = await fetch(`${server.url}/v1/identity/websocket-token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, token: res.status === 200 ? (JSON.parse(text) as { token: string }).token : undefined, text };
}

/** The upgrade's HTTP status: a valid token gets past authentication to the database lookup (404 here). */
function upgradeStatus(token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/database/no-such-db/subscribe?token=${encodeURIComponent(token)}`,
      'v2.bsatn.spacetimedb');
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? -1);
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('upgrade unexpectedly accepted')));
    ws.once('error', () => {});
  });
}

test('an IdP token 20 s past exp mints nothing and opens nothing', async () => {
  const now = nowSeconds();
  const expired = await provider.sign(key, { sub: 'late', iat: now - 60, exp: now - 20 });
  const minted = await websocketToken(expired);
  assert.equal(minted.status, 401);
  assert.match(minted.text, /ExpiredSignature/);
  assert.equal(await upgradeStatus(expired), 401);
});

test('a websocket token of ours 20 s past exp mints nothing and opens nothing', async () => {
  // Signed with the server's own key, by an authority whose clock is 80 s behind: exp = now - 20.
  const keys = await loadOrCreateKeys(path.join(dataDir, 'keys'));
  const past = new TokenAuthority({ keys, nowSeconds: () => nowSeconds() - 80 });
  const stale = await past.websocketToken(await past.verify((await past.mintIdentity()).token));
  assert.ok((claimsOf(stale).exp as number) <= nowSeconds() - 19);
  assert.equal((await websocketToken(stale)).status, 401);
  assert.equal(await upgradeStatus(stale), 401);
});

test('renewing a 5 s IdP token never extends it past its own exp', async () => {
  const exp = nowSeconds() + 5;
  let token = await provider.sign(key, { sub: 'short', exp });
  for (let i = 0; i < 3; i++) {
    const renewed = await websocketToken(token);
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal(claimsOf(renewed.token!).exp, exp, 'the renewal ends when the IdP token does');
    token = renewed.token!;
  }
  assert.equal(await upgradeStatus(token), 404, 'still valid before exp');
});

test('iss with and without a trailing slash: both trusted, two identities (as upstream derives them)', async () => {
  const plain = await provider.sign(key, { sub: 'same-user' });
  const slashed = await provider.sign(key, { sub: 'same-user', iss: `${provider.issuer}/` });
  const a = await server.tokens.verify(plain);
  const b = await server.tokens.verify(slashed);
  assert.equal(a.identity, identityFromClaims(provider.issuer, 'same-user'));
  assert.equal(b.identity, identityFromClaims(`${provider.issuer}/`, 'same-user'));
  assert.notEqual(identityToHex(a.identity), identityToHex(b.identity));
});
