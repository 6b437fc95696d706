// sats/bsatn.ts — BSATN primitive reading and writing (the binary SATS encoding).
//
// Owns: BsatnReader (strict, bounds-checked cursor over a Uint8Array) and BsatnWriter (growable byte buffer).
// Layout rules: integers and floats little-endian fixed width; bool one byte 0/1; string and bytes are a u32 byte
// length followed by the bytes. Composite layouts (products, sums, arrays) are built on top of this in codec.ts.
// May call: sats/types.ts only.

import assert from 'node:assert';
import { SatsError } from './types.js';

const u64MaskBig = (1n << 64n) - 1n;
const u128MaxBig = (1n << 128n) - 1n;
const u256MaxBig = (1n << 256n) - 1n;
const i128MinBig = -(1n << 127n);
const i128MaxBig = (1n << 127n) - 1n;
const i256MinBig = -(1n << 255n);
const i256MaxBig = (1n << 255n) - 1n;
const i64MinBig = -(1n << 63n);
const i64MaxBig = (1n << 63n) - 1n;

/** Strings up to this many bytes that are pure ASCII are decoded by hand (TextDecoder has a fixed per-call cost). */
const asciiFastPathMaxBytes = 32;
const writerInitialCapacityBytes = 256;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** A strict cursor: every read checks bounds and throws SatsError naming the offset. */
export class BsatnReader {
  readonly bytes: Uint8Array;
  offset: number;
  /**
   * Array elements read so far whose decoded values are heap objects (arrays, products, sums, 64-bit and wider
   * integers): codec.ts counts them, host/args.ts bounds a call's (`argsDecodedObjectsMax`).
   */
  decodedObjects = 0;
  private readonly view: DataView;

  constructor(bytes: Uint8Array, offsetBytes = 0) {
    this.bytes = bytes;
    this.offset = offsetBytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left to read. */
  get remainingBytes(): number {
    return this.bytes.length - this.offset;
  }

  /** Reserves `n` bytes at the cursor and returns their start; throws when the input is too short. */
  private take(n: number, what: string): number {
    const at = this.offset;
    if (at + n > this.bytes.length) {
      throw new SatsError(
        `truncated input: reading ${what} needs ${n} bytes but only ${this.bytes.length - at} remain`, at);
    }
    this.offset = at + n;
    return at;
  }

  /** `take` for a length-prefixed string or byte array: the error message is built only when the input is short. */
  private takeSized(len: number, lenAt: number, what: 'string' | 'byte array'): number {
    if (this.offset + len > this.bytes.length) this.take(len, `${what} of ${len} bytes (length read at byte ${lenAt})`);
    const at = this.offset;
    this.offset = at + len;
    return at;
  }

  readBool(): boolean {
    const at = this.take(1, 'bool');
    const b = this.bytes[at];
    if (b === 0) return false;
    if (b === 1) return true;
    throw new SatsError(`invalid bool byte ${b} (expected 0 or 1)`, at);
  }
  readU8(): number { return this.bytes[this.take(1, 'u8')]; }
  readI8(): number { return this.view.getInt8(this.take(1, 'i8')); }
  readU16(): number { return this.view.getUint16(this.take(2, 'u16'), true); }
  readI16(): number { return this.view.getInt16(this.take(2, 'i16'), true); }
  readU32(): number { return this.view.getUint32(this.take(4, 'u32'), true); }
  readI32(): number { return this.view.getInt32(this.take(4, 'i32'), true); }
  readU64(): bigint { return this.view.getBigUint64(this.take(8, 'u64'), true); }
  readI64(): bigint { return this.view.getBigInt64(this.take(8, 'i64'), true); }
  readU128(): bigint {
    const at = this.take(16, 'u128');
    return this.view.getBigUint64(at, true) | (this.view.getBigUint64(at + 8, true) << 64n);
  }
  readI128(): bigint {
    const at = this.take(16, 'i128');
    return this.view.getBigUint64(at, true) | (this.view.getBigInt64(at + 8, true) << 64n);
  }
  readU256(): bigint {
    const at = this.take(32, 'u256');
    const v = this.view;
    return v.getBigUint64(at, true) | (v.getBigUint64(at + 8, true) << 64n) |
      (v.getBigUint64(at + 16, true) << 128n) | (v.getBigUint64(at + 24, true) << 192n);
  }
  readI256(): bigint {
    const at = this.take(32, 'i256');
    const v = this.view;
    return v.getBigUint64(at, true) | (v.getBigUint64(at + 8, true) << 64n) |
      (v.getBigUint64(at + 16, true) << 128n) | (v.getBigInt64(at + 24, true) << 192n);
  }
  readF32(): number { return this.view.getFloat32(this.take(4, 'f32'), true); }
  readF64(): number { return this.view.getFloat64(this.take(8, 'f64'), true); }

  /** u32 byte length + UTF-8; invalid UTF-8 is an error, not replaced. */
  readString(): string {
    const lenAt = this.offset;
    const len = this.readU32();
    const at = this.takeSized(len, lenAt, 'string');
    const bytes = this.bytes;
    if (len <= asciiFastPathMaxBytes) {
      let s = '';
      let i = at;
      const end = at + len;
      for (; i < end; i++) {
        const c = bytes[i];
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) return s;
    }
    try {
      return utf8Decoder.decode(bytes.subarray(at, at + len));
    } catch {
      throw new SatsError(`invalid UTF-8 in string of ${len} bytes`, at);
    }
  }

  /** u32 length + raw bytes, returned as a subarray of the input (no copy). */
  readBytes(): Uint8Array {
    const lenAt = this.offset;
    const len = this.readU32();
    const at = this.takeSized(len, lenAt, 'byte array');
    return this.bytes.subarray(at, at + len);
  }

  /** `n` raw bytes with no length prefix, as a subarray. */
  readRaw(n: number, what = 'raw bytes'): Uint8Array {
    const at = this.take(n, what);
    return this.bytes.subarray(at, at + n);
  }

  /** Advances over `n` bytes (used by codec skip for fixed-size values). */
  skipBytes(n: number, what: string): void {
    this.take(n, what);
  }

  expectEnd(what: string): void {
    if (this.offset !== this.bytes.length) {
      throw new SatsError(
        `trailing bytes after ${what}: ${this.bytes.length - this.offset} bytes left over`, this.offset);
    }
  }
}

/** A growable little-endian byte buffer. Reuse one with reset() to avoid reallocating on hot paths. */
export class BsatnWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacityBytes = writerInitialCapacityBytes) {
    assert(initialCapacityBytes >= 0);
    this.buf = new Uint8Array(Math.max(initialCapacityBytes, 8));
    this.view = new DataView(this.buf.buffer);
  }

  get lengthBytes(): number { return this.len; }

  reset(): void { this.len = 0; }

  /** A copy of the written bytes (the writer may be reused afterwards). */
  finish(): Uint8Array { return this.buf.slice(0, this.len); }

  /** A view of the written bytes without copying; valid only until the next write or reset. */
  written(): Uint8Array { return this.buf.subarray(0, this.len); }

  /** Makes room for `n` more bytes and returns the offset to write them at. */
  private reserve(n: number): number {
    const at = this.len;
    const need = at + n;
    if (need > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.len = need;
    return at;
  }

  writeBool(v: boolean): void {
    if (typeof v !== 'boolean') throw new SatsError(`expected a boolean, got ${describe(v)}`);
    const at = this.reserve(1); this.buf[at] = v ? 1 : 0;
  }
  writeU8(v: number): void { checkInt(v, 0, 0xff, 'u8'); const at = this.reserve(1); this.buf[at] = v; }
  writeI8(v: number): void { checkInt(v, -0x80, 0x7f, 'i8'); const at = this.reserve(1); this.view.setInt8(at, v); }
  writeU16(v: number): void { checkInt(v, 0, 0xffff, 'u16'); const at = this.reserve(2); this.view.setUint16(at, v, true); }
  writeI16(v: number): void { checkInt(v, -0x8000, 0x7fff, 'i16'); const at = this.reserve(2); this.view.setInt16(at, v, true); }
  writeU32(v: number): void { checkInt(v, 0, 0xffffffff, 'u32'); const at = this.reserve(4); this.view.setUint32(at, v, true); }
  writeI32(v: number): void {
    checkInt(v, -0x80000000, 0x7fffffff, 'i32');
    const at = this.reserve(4); this.view.setInt32(at, v, true);
  }
  writeU64(v: bigint): void {
    checkBig(v, 0n, u64MaskBig, 'u64');
    const at = this.reserve(8); this.view.setBigUint64(at, v, true);
  }
  writeI64(v: bigint): void {
    checkBig(v, i64MinBig, i64MaxBig, 'i64');
    const at = this.reserve(8); this.view.setBigInt64(at, v, true);
  }
  writeU128(v: bigint): void { checkBig(v, 0n, u128MaxBig, 'u128'); this.writeWide(v, 2); }
  writeI128(v: bigint): void { checkBig(v, i128MinBig, i128MaxBig, 'i128'); this.writeWide(v, 2); }
  writeU256(v: bigint): void { checkBig(v, 0n, u256MaxBig, 'u256'); this.writeWide(v, 4); }
  writeI256(v: bigint): void { checkBig(v, i256MinBig, i256MaxBig, 'i256'); this.writeWide(v, 4); }
  /** Two's complement, `words` little-endian u64 words (BigInt.asUintN handles negative values). */
  private writeWide(v: bigint, words: number): void {
    const at = this.reserve(words * 8);
    for (let i = 0; i < words; i++) {
      this.view.setBigUint64(at + i * 8, BigInt.asUintN(64, v >> BigInt(i * 64)), true);
    }
  }
  writeF32(v: number): void {
    if (typeof v !== 'number') throw new SatsError(`expected a number for f32, got ${describe(v)}`);
    const at = this.reserve(4); this.view.setFloat32(at, v, true);
  }
  writeF64(v: number): void {
    if (typeof v !== 'number') throw new SatsError(`expected a number for f64, got ${describe(v)}`);
    const at = this.reserve(8); this.view.setFloat64(at, v, true);
  }

  writeString(s: string): void {
    if (typeof s !== 'string') throw new SatsError(`expected a string, got ${describe(s)}`);
    const lenAt = this.reserve(4);
    // Worst case 3 bytes per UTF-16 unit; reserve, encode in place, then give back the unused tail.
    const maxBytes = s.length * 3;
    const at = this.reserve(maxBytes);
    const { written } = utf8Encoder.encodeInto(s, this.buf.subarray(at, at + maxBytes));
    this.len = at + written;
    this.view.setUint32(lenAt, written, true);
  }

  writeBytes(b: Uint8Array): void {
    if (!(b instanceof Uint8Array)) throw new SatsError(`expected a Uint8Array, got ${describe(b)}`);
    this.writeU32(b.length);
    this.writeRaw(b);
  }

  writeRaw(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }

  /** Overwrites a u32 at an earlier offset (for lengths known only after writing the contents). */
  patchU32(atBytes: number, v: number): void {
    assert(atBytes + 4 <= this.len);
    this.view.setUint32(atBytes, v, true);
  }
}

function checkInt(v: number, min: number, max: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new SatsError(`expected an integer ${what} in [${min}, ${max}], got ${describe(v)}`);
  }
}

function checkBig(v: bigint, min: bigint, max: bigint, what: string): void {
  if (typeof v !== 'bigint' || v < min || v > max) {
    throw new SatsError(`expected a bigint ${what} in [${min}, ${max}], got ${describe(v)}`);
  }
}

/** Short description of a JS value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'bigint') return `bigint ${v}`;
  if (typeof v === 'number') return `number ${v}`;
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  return typeof v;
}
