// Token issue/verify, including forged and tampered tokens, and the key files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign } from 'jose';
import { identityFromClaims, identityToHex } from '../../src/auth/identity.js';
import { KeyFileError, loadOrCreateKeys } from '../../src/auth/keys.js';
import { AuthError, TokenAuthority, bearerToken } from '../../src/auth/tokens.js';

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

async function withKeys<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'stdb-keys-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejects(promise: Promise<unknown>, status: number, message?: RegExp | string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AuthError, `expected AuthError, got ${String(error)}`);
    assert.equal(error.status, status);
    if (typeof message === 'string') assert.equal(error.message, message);
    else if (message) assert.match(error.message, message);
    return true;
  });
}

test('keys are created once with mode 0600 and reloaded', () => withKeys(async (dir) => {
  const keys = await loadOrCreateKeys(join(dir, 'keys'));
  const mode = (await stat(join(dir, 'keys', 'id_ecdsa'))).mode & 0o777;
  assert.equal(mode, 0o600);
  assert.match(keys.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  const again = await loadOrCreateKeys(join(dir, 'keys'));
  assert.equal(again.publicKeyPem, keys.publicKeyPem);
  // A token minted before a "restart" still verifies after it.
  const minted = await new TokenAuthority({ keys }).mintIdentity();
  const verified = await new TokenAuthority({ keys: again }).verify(minted.token);
  assert.equal(verified.identity, minted.identity);
}));

test('a lone or mismatched key file is reported, not replaced', () => withKeys(async (dir) => {
  await loadOrCreateKeys(join(dir, 'a'));
  await loadOrCreateKeys(join(dir, 'b'));
  await writeFile(join(dir, 'a', 'id_ecdsa.pub'), await readFile(join(dir, 'b', 'id_ecdsa.pub')));
  await assert.rejects(loadOrCreateKeys(join(dir, 'a')), KeyFileError);
  await rm(join(dir, 'b', 'id_ecdsa'));
  await assert.rejects(loadOrCreateKeys(join(dir, 'b')), KeyFileError);
}));

test('minted tokens have the upstream header and claims', () => withKeys(async (dir) => {
  const authority = new TokenAuthority({ keys: await loadOrCreateKeys(dir), nowSeconds: () => 1_700_000_000 });
  const { identity, token } = await authority.mintIdentity();
  const [header, payload] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(header!, 'base64url').toString()), { typ: 'JWT', alg: 'ES256' });
  // The CLI decodes with the standard alphabet: this must work.
  const claims = JSON.parse(Buffer.from(payload!, 'base64').toString());
  assert.equal(claims.iss, 'localhost');
  assert.match(claims.sub, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(claims.aud, ['spacetimedb']);
  assert.equal(claims.iat, 1_700_000_000);
  assert.equal(claims.exp, null);
  assert.equal(claims.hex_identity, identityToHex(identity));
  assert.equal(identityFromClaims(claims.iss, claims.sub), identity);
  const verified = await authority.verify(token);
  assert.equal(verified.identity, identity);
  assert.equal(verified.payloadJson, Buffer.from(payload!, 'base64url').toString());
}));

test('websocket tokens keep the claims and expire after 60 s, without leeway', () => withKeys(async (dir) => {
  let now = 1_700_000_000;
  const authority = new TokenAuthority({ keys: await loadOrCreateKeys(dir), nowSeconds: () => now });
  const minted = await authority.mintIdentity();
  const wsToken = await authority.websocketToken(await authority.verify(minted.token));
  const claims = JSON.parse(Buffer.from(wsToken.split('.')[1]!, 'base64url').toString());
  assert.equal(claims.exp, now + 60);
  assert.equal((await authority.verify(wsToken)).identity, minted.identity);
  now += 59;
  assert.equal((await authority.verify(wsToken)).identity, minted.identity);
  now += 1;
  await rejects(authority.verify(wsToken), 401, /Expired/);
}));

test('an expired token is refused for renewal, and a renewal never outlives the token it came from', () => withKeys(async (dir) => {
  let now = 1_700_000_000;
  const keys = await loadOrCreateKeys(dir);
  const authority = new TokenAuthority({ keys, nowSeconds: () => now });
  const sign = (claims: object) => new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ typ: 'JWT', alg: 'ES256' }).sign(keys.privateKey);
  // A 5 s token (as an IdP might issue), renewed every 4 s: every renewal ends when the original does.
  const original = await sign({ iss: 'https://idp.example', sub: 'u', iat: now, exp: now + 5 });
  let current = await authority.verify(original);
  for (let i = 0; i < 2; i++) {
    const renewed = await authority.websocketToken(current);
    assert.equal(JSON.parse(Buffer.from(renewed.split('.')[1]!, 'base64url').toString()).exp, 1_700_000_005);
    now += 2;
    current = await authority.verify(renewed);
  }
  now = 1_700_000_005 + 20;
  // Verified (and cached) while valid, presented again 20 s after `exp`: refused for use and for renewal.
  await rejects(authority.verify(original), 401, /Expired/);
  await rejects(authority.websocketToken(current), 401, /Expired/);
}));

test('forged, tampered and malformed tokens are rejected', () => withKeys(async (dir) => {
  const keys = await loadOrCreateKeys(join(dir, 'ours'));
  const authority = new TokenAuthority({ keys });
  const { token } = await authority.mintIdentity();
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());

  // alg none
  await rejects(authority.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`), 401,
    'Authorization failed: token not signed by this instance');
  // HS256 keyed with our public key PEM (algorithm confusion)
  const hsHeader = b64({ alg: 'HS256', typ: 'JWT' });
  const hsSig = createHmac('sha256', keys.publicKeyPem).update(`${hsHeader}.${payload}`).digest('base64url');
  await rejects(authority.verify(`${hsHeader}.${payload}.${hsSig}`), 401, 'Authorization failed: token not signed by this instance');
  // tampered payload (different subject, same signature)
  const tampered = b64({ ...claims, sub: 'someone-else', hex_identity: undefined });
  await rejects(authority.verify(`${header}.${tampered}.${signature}`), 401, 'Authorization failed: token not signed by this instance');
  // signed by another server's key
  const other = new TokenAuthority({ keys: await loadOrCreateKeys(join(dir, 'other')) });
  await rejects(authority.verify((await other.mintIdentity()).token), 401, 'Authorization failed: token not signed by this instance');
  // malformed
  await rejects(authority.verify('not-a-token'), 400, 'Authorization is invalid: malformed token');
  await rejects(authority.verify(`${header}.${b64('{not json')}.${signature}`), 400, 'Authorization is invalid: malformed token');
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Bearer abc'), 'abc');
  assert.throws(() => bearerToken('Basic abc'), AuthError);
}));

test('claims are checked even on validly signed tokens', () => withKeys(async (dir) => {
  const keys = await loadOrCreateKeys(dir);
  const authority = new TokenAuthority({ keys });
  const sign = (claims: object) => new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ typ: 'JWT', alg: 'ES256' }).sign(keys.privateKey);
  const now = Math.floor(Date.now() / 1000);
  await rejects(authority.verify(await sign({ iss: 'localhost', iat: now })), 401, /sub/);
  await rejects(authority.verify(await sign({ sub: 'x', iat: now })), 401, /iss/);
  await rejects(authority.verify(await sign({ iss: 'localhost', sub: 'x'.repeat(129) })), 401, /128/);
  await rejects(authority.verify(await sign({ iss: 'localhost', sub: 'x', exp: now - 61 })), 401, /Expired/);
  await rejects(authority.verify(await sign({ iss: 'localhost', sub: 'x', hex_identity: identityToHex(identityFromClaims('localhost', 'y')) })), 401, /mismatch/);
  // Signed by us with a foreign issuer: accepted, identity from its own iss/sub.
  const foreign = await authority.verify(await sign({ iss: 'https://auth.example', sub: 'u1', aud: 'x' }));
  assert.equal(foreign.identity, identityFromClaims('https://auth.example', 'u1'));
}));
