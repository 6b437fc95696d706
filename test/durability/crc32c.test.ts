// test/durability/crc32c.test.ts — CRC-32C against published check values and a byte-wise reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '../../src/durability/crc32c.js';

const ascii = (s: string) => new TextEncoder().encode(s);

test('standard check values', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) appendix B.4 vectors.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(ascii('The quick brown fox jumps over the lazy dog')), 0x22620404);
});

function bytewiseReference(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('slicing-by-8 equals the bitwise definition for every length and alignment', () => {
  const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
  for (let start = 0; start < 9; start++) {
    for (let end = start; end <= data.length; end += 1 + (end % 7)) {
      assert.equal(crc32c(data, 0, start, end), bytewiseReference(data.subarray(start, end)), `range ${start}..${end}`);
    }
  }
});

test('continuation: crc(b, crc(a)) === crc(a ++ b)', () => {
  const a = ascii('hello, ');
  const b = ascii('commit log');
  const ab = new Uint8Array([...a, ...b]);
  assert.equal(crc32c(b, crc32c(a)), crc32c(ab));
  for (let cut = 0; cut <= ab.length; cut++) assert.equal(crc32c(ab, crc32c(ab, 0, 0, cut), cut), crc32c(ab));
});
