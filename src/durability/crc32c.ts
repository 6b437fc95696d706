// durability/crc32c.ts — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, slicing-by-8.
//
// Owns: the checksum used by every on-disk structure of the durability layer (commit log records, segment headers,
// snapshot headers). It is the same algorithm as upstream's commit log (CRC32C), so a value here matches any
// standard CRC-32C implementation ("123456789" → 0xE3069283).
// May call: nothing.
//
// Slicing-by-8 consumes 8 input bytes per step with 8 table lookups instead of 8 dependent single-byte steps; in
// V8 this is roughly 4× faster than the byte-wise loop. The 8 tables live in one Int32Array (8 KiB) so that all
// lookups index the same typed array (monomorphic, bounds-checked once per access by the JIT).

const polynomialReflected = 0x82f63b78;
const tableEntries = 256;
const sliceCount = 8;

const tables = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(tableEntries * sliceCount);
  for (let n = 0; n < tableEntries; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ polynomialReflected : c >>> 1;
    t[n] = c;
  }
  // Table k gives the CRC contribution of a byte that is followed by k zero bytes.
  for (let k = 1; k < sliceCount; k++) {
    for (let n = 0; n < tableEntries; n++) {
      const prev = t[(k - 1) * tableEntries + n]!;
      t[k * tableEntries + n] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

/**
 * CRC-32C of `bytes[start, end)`. Pass a previous result as `crc` to continue a running checksum:
 * `crc32c(b, crc32c(a)) === crc32c(concat(a, b))`. Returns an unsigned 32-bit number.
 */
export function crc32c(bytes: Uint8Array, crc = 0, start = 0, end = bytes.length): number {
  const t = tables;
  let c = ~crc;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const lo = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    const hi = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    c =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^
      t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^
      t[hi >>> 24]!;
    i += 8;
  }
  while (i < end) {
    c = (c >>> 8) ^ t[(c ^ bytes[i]!) & 0xff]!;
    i++;
  }
  return ~c >>> 0;
}

// Warm-up: run every path once (the 8-byte loop, the byte loop, a running crc above 2^31) before the JIT sees real
// input. Otherwise V8 11 (Node 20) may optimize crc32c while one path has no type feedback yet and then deoptimize it
// on every later call — measured: ~1M deopts while replaying ~1M log records, 2.5x the replay's CPU time, in about
// half of the server starts.
const warmUpBytes = new Uint8Array(2 * sliceCount);
for (let n = 0; n <= warmUpBytes.length; n++) crc32c(warmUpBytes, 0xffffffff, 0, n);
