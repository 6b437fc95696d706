// Identity derivation vectors (client-protocol.md §6.1) and ConnectionId generation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectionIdToHex, identityFromClaims, identityFromHex, identityToHex, isIdentityHex, randomConnectionId,
} from '../../src/auth/identity.js';

test('identityFromClaims matches the spec vectors', () => {
  assert.equal(identityToHex(identityFromClaims('localhost', 'alice')),
    'c20035600353a2e93544d898c6ed0eac323e200c0468300f22958f8b472a265d');
  assert.equal(identityToHex(identityFromClaims('localhost', 'bob')),
    'c200e63a6bd07da2304dd6f5b4691d3338562ceaa43cad4624d0d181a7a6c0d4');
});

test('identity hex round-trips and rejects non-identities', () => {
  const id = identityFromClaims('https://issuer.example', 'some-subject');
  const hex = identityToHex(id);
  assert.equal(hex.length, 64);
  assert.ok(hex.startsWith('c200'));
  assert.equal(identityFromHex(hex), id);
  assert.equal(identityFromHex(`0x${hex}`), id);
  assert.equal(identityFromHex(hex.slice(1)), undefined);
  assert.equal(identityFromHex('my-database'), undefined);
  assert.ok(isIdentityHex(hex));
  assert.ok(!isIdentityHex(`${hex}0`));
  assert.equal(identityToHex(1n), `${'0'.repeat(63)}1`);
});

test('randomConnectionId is a non-zero u128 and differs between calls', () => {
  const seen = new Set<bigint>();
  for (let i = 0; i < 100; i++) {
    const id = randomConnectionId();
    assert.ok(id > 0n && id < 1n << 128n);
    seen.add(id);
  }
  assert.equal(seen.size, 100);
  assert.equal(connectionIdToHex(255n), `${'0'.repeat(30)}ff`);
});
