// sats/identity.ts — Identity (u256) and ConnectionId (u128): hex text ⇄ bigint ⇄ BSATN bytes.
//
// Owns: the text and byte forms. Hex is big-endian, lowercase, fixed width (64 / 32 chars), no 0x when written;
// BSATN bytes are little-endian (32 / 16 bytes). Bad hex from outside gives a SatsError saying what was wrong.
// May call: sats/types.ts.

import { SatsError } from './types.js';

export const identityHexChars = 64;
export const connectionIdHexChars = 32;
export const identityBytes = 32;

export function identityToHex(identity: bigint): string {
  return toFixedHex(identity, identityHexChars, 'identity');
}

/** Parses 64 hex chars (an optional 0x prefix and upper case are accepted). */
export function identityFromHex(hex: string): bigint {
  return fromFixedHex(hex, identityHexChars, 'identity');
}

export function connectionIdToHex(connectionId: bigint): string {
  return toFixedHex(connectionId, connectionIdHexChars, 'connection id');
}

export function connectionIdFromHex(hex: string): bigint {
  return fromFixedHex(hex, connectionIdHexChars, 'connection id');
}

export function isIdentityHex(s: string): boolean {
  return /^(0x)?[0-9a-fA-F]{64}$/.test(s);
}

export function identityToBytes(identity: bigint): Uint8Array { return toLeBytes(identity, identityBytes); }
export function identityFromBytes(bytes: Uint8Array): bigint { return fromLeBytes(bytes, identityBytes, 'identity'); }

function toFixedHex(v: bigint, chars: number, what: string): string {
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << BigInt(chars * 4)) {
    throw new SatsError(`${what} out of range: ${String(v)}`);
  }
  return v.toString(16).padStart(chars, '0');
}

function fromFixedHex(hex: string, chars: number, what: string): bigint {
  const body = typeof hex === 'string' && hex.startsWith('0x') ? hex.slice(2) : hex;
  if (typeof body !== 'string' || body.length !== chars || !/^[0-9a-fA-F]*$/.test(body)) {
    const got = typeof body !== 'string' ? typeof hex : body.length !== chars ? `${body.length}` : 'characters that are not hex';
    throw new SatsError(`invalid ${what} hex ${JSON.stringify(hex)}: expected ${chars} hex characters, got ${got}`);
  }
  return BigInt(`0x${body}`);
}

function toLeBytes(v: bigint, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = v;
  for (let i = 0; i < n; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function fromLeBytes(bytes: Uint8Array, n: number, what: string): bigint {
  if (bytes.length !== n) throw new SatsError(`${what} must be ${n} bytes, got ${bytes.length}`);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}
