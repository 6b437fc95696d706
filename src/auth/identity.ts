// auth/identity.ts — Identity derivation from token claims, and ConnectionId generation.
//
// Owns: the `iss|sub` → Identity rule (client-protocol.md §6.1), hex ⇄ bigint for identities and connection ids
// as the HTTP layer writes them, and random ConnectionIds (§6.2).
// May call: @noble/hashes (BLAKE3), node:crypto (randomness). Nothing else in src/.
//
// Identity layout (big-endian bytes, what the hex shows): [0xC2, 0x00] ++ checksum(4) ++ id(26), where
//   id = BLAKE3(utf8(iss + "|" + sub))[0..26] and checksum = BLAKE3([0xC2, 0x00] ++ id)[0..4].
// In memory an Identity is a u256 bigint whose big-endian bytes are exactly that layout.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';

export const identityHexLengthChars = 64;
export const connectionIdHexLengthChars = 32;
const identityIdBytes = 26;
const identityChecksumBytes = 4;
const identityPrefix = [0xc2, 0x00] as const;

const hexIdentityPattern = /^[0-9a-fA-F]{64}$/;

/** Derives the Identity a token with these claims stands for. */
export function identityFromClaims(issuer: string, subject: string): bigint {
  const encoder = new TextEncoder();
  const id = blake3(encoder.encode(`${issuer}|${subject}`)).subarray(0, identityIdBytes);
  const checksumInput = new Uint8Array(identityPrefix.length + identityIdBytes);
  checksumInput.set(identityPrefix, 0);
  checksumInput.set(id, identityPrefix.length);
  const checksum = blake3(checksumInput).subarray(0, identityChecksumBytes);
  const bytes = new Uint8Array(32);
  bytes.set(identityPrefix, 0);
  bytes.set(checksum, identityPrefix.length);
  bytes.set(id, identityPrefix.length + identityChecksumBytes);
  return bytesToBigintBe(bytes);
}

/** 64 lowercase hex chars, big-endian, no `0x`. */
export function identityToHex(identity: bigint): string {
  assert.ok(identity >= 0n && identity < 1n << 256n, 'identity out of u256 range');
  return identity.toString(16).padStart(identityHexLengthChars, '0');
}

/** True when `text` is exactly 64 hex digits (the form identities take in URLs and claims). */
export function isIdentityHex(text: string): boolean {
  return hexIdentityPattern.test(text);
}

/** Parses 64 hex digits (an optional `0x` prefix is accepted); undefined when the text is not an identity. */
export function identityFromHex(text: string): bigint | undefined {
  const digits = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text;
  if (!hexIdentityPattern.test(digits)) return undefined;
  return BigInt(`0x${digits}`);
}

/** 32 lowercase hex chars, big-endian. */
export function connectionIdToHex(connectionId: bigint): string {
  assert.ok(connectionId >= 0n && connectionId < 1n << 128n, 'connection id out of u128 range');
  return connectionId.toString(16).padStart(connectionIdHexLengthChars, '0');
}

/** A fresh random u128 ConnectionId; never 0 (0 is reserved for "no connection"). */
export function randomConnectionId(): bigint {
  for (;;) {
    const id = bytesToBigintBe(randomBytes(16));
    if (id !== 0n) return id;
  }
}

function bytesToBigintBe(bytes: Uint8Array): bigint {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return BigInt(`0x${hex}`);
}
