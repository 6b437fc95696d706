// durability/segment.ts — on-disk format of commit log segments: header and record codec, and the one validating
// scanner that every reader (open/recovery, replay, verify, inspect) uses.
//
// Owns: the byte layout below, `CommitLogError`/`CommitLogCorruptError`, and the torn-tail vs corruption rule.
// May call: node:fs, durability/crc32c.ts, limits.ts.
//
// Segment file `<first offset, 20 decimal digits>.stdb.log`, all integers little-endian:
//
//   header (28 bytes)
//     0  magic            8 bytes "STDBTSLG"
//     8  formatVersion    u32 (= segmentFormatVersion; a newer version is refused, never guessed at)
//    12  reserved         u32 (= 0)
//    16  firstOffset      u64 commit offset of the first record; must equal the number in the file name
//    24  headerCrc        u32 CRC-32C of bytes [0, 24)
//
//   record (28 bytes + payload), repeated, offsets consecutive (+1) with no gaps
//     0  payloadLength    u32 (≤ recordPayloadMaxBytes = limits.ts logRecordPayloadMaxBytes)
//     4  commitOffset     u64
//    12  timestampMicros  i64 µs since the Unix epoch (informational: for inspection and point-in-time tools)
//    20  headerCrc        u32 CRC-32C of bytes [0, 20)
//    24  payload          payloadLength bytes, opaque to this layer
//    24+len  crc          u32 CRC-32C of bytes [0, 20) followed by the payload (continues headerCrc)
//
// Why a separate header CRC: without it, a flipped bit in `payloadLength` of a record in the last segment could
// point past the end of the file and be mistaken for a torn write, silently truncating acknowledged commits.
// With it, a length is only trusted once its header checksum holds.
//
// Recovery rule (applies only to the LAST segment; every other segment must be clean to its end):
//   torn tail (cut away, reported): fewer bytes than a record header remain; a header with a good CRC whose record
//   runs past the end of the file; an all-zero header (zero-filled or preallocated space); a record whose checksum
//   fails and that is INCOMPLETE — nothing shows it was written whole: no valid record header (good header CRC, a
//   later commit offset) anywhere after it, and it does not end exactly at the end of the file (for a damaged header:
//   neither its length field nor the length the file size implies makes the header checksum hold and the record
//   end there).
//   Damage (CommitLogCorruptError naming the file, byte position and commit offset): a COMPLETE record whose
//   checksum fails — one followed by a valid record, or one that ends exactly at the end of the file. A process
//   crash (kill -9) leaves a prefix of what was written, so a whole last record with a bad checksum is a bit flip in
//   acknowledged bytes; silently cutting it would lose a transaction a client was told about. Also damage: an offset
//   that is not previous+1, a bad segment header, a name/header mismatch. Damage is never repaired automatically; see
//   inspect.ts (`spacetime debug log`, and `--truncate-at-damage` for an operator who accepts the loss).
//   Why a record followed by a valid one is damage: fdatasync covers the whole file, so once a later batch was
//   synced, every earlier record was too; damage before a valid later record cannot be an unsynced (torn) write.
//   What the bytes cannot tell apart (docs/durability.md): after a power loss, a file whose size reached the disk
//   but one of whose pages did not can look like a complete, damaged record; that is reported as damage (loud), and
//   a damaged record followed by a partial one is taken for a torn tail.

import assert from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from './crc32c.js';
import { logRecordPayloadMaxBytes } from '../limits.js';

export const segmentMagic = Buffer.from('STDBTSLG', 'latin1');
export const segmentFormatVersion = 1;
export const segmentHeaderBytes = 28;
export const recordHeaderBytes = 24;
export const recordTrailerBytes = 4;
export const recordOverheadBytes = recordHeaderBytes + recordTrailerBytes;
/** A single commit may not exceed this; a larger length in a header is corruption. */
export const recordPayloadMaxBytes = logRecordPayloadMaxBytes;
export const segmentFileSuffix = '.stdb.log';
const segmentNameDigits = 20;
const segmentNamePattern = /^(\d{20})\.stdb\.log$/;
/** Read buffer for scans (one read syscall per this many bytes); it grows to fit a larger record. */
const scanChunkBytes = 8 * 1024 * 1024;
/** … but no larger than the file, down to this. */
const scanChunkMinBytes = 64 * 1024;

/** Base class of every error this layer raises about the log on disk or its state. */
export class CommitLogError extends Error {
  override name = 'CommitLogError';
}

/** The log on disk is inconsistent in a way that is not a torn tail. Never auto-repaired. */
export class CommitLogCorruptError extends CommitLogError {
  override name = 'CommitLogCorruptError';
  constructor(
    readonly file: string,
    readonly bytePosition: number,
    readonly commitOffset: bigint | undefined,
    readonly reason: string,
  ) {
    const at = commitOffset === undefined ? '' : `, commit offset ${commitOffset}`;
    super(`commit log corrupt: ${reason} (file ${file}, byte ${bytePosition}${at})`);
  }
}

export function segmentFileName(firstOffset: bigint): string {
  return firstOffset.toString().padStart(segmentNameDigits, '0') + segmentFileSuffix;
}

/** First offset encoded in a segment file name, or undefined for files that are not segments. */
export function parseSegmentFileName(name: string): bigint | undefined {
  const m = segmentNamePattern.exec(name);
  return m ? BigInt(m[1]!) : undefined;
}

export interface SegmentFile {
  firstOffset: bigint;
  path: string;
}

/** Segment files of `dir` sorted by first offset. */
export function listSegments(dir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of fs.readdirSync(dir)) {
    const first = parseSegmentFileName(name);
    if (first !== undefined) out.push({ firstOffset: first, path: path.join(dir, name) });
  }
  out.sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  return out;
}

export function encodeSegmentHeader(firstOffset: bigint): Buffer {
  const b = Buffer.alloc(segmentHeaderBytes);
  segmentMagic.copy(b, 0);
  b.writeUInt32LE(segmentFormatVersion, 8);
  b.writeBigUInt64LE(firstOffset, 16);
  b.writeUInt32LE(crc32c(b, 0, 0, 24), 24);
  return b;
}

/** Reads and checks the header of an open segment; throws CommitLogCorruptError (or for a newer version, refuses). */
export function readSegmentHeader(fd: number, file: string, expectedFirst: bigint): void {
  const b = Buffer.alloc(segmentHeaderBytes);
  const n = fs.readSync(fd, b, 0, segmentHeaderBytes, 0);
  if (n < segmentHeaderBytes) throw new CommitLogCorruptError(file, n, undefined, `segment header truncated (${n} of ${segmentHeaderBytes} bytes)`);
  if (!b.subarray(0, 8).equals(segmentMagic)) throw new CommitLogCorruptError(file, 0, undefined, 'bad segment magic');
  const storedCrc = b.readUInt32LE(24);
  if (crc32c(b, 0, 0, 24) !== storedCrc) throw new CommitLogCorruptError(file, 0, undefined, 'segment header checksum mismatch');
  const version = b.readUInt32LE(8);
  if (version !== segmentFormatVersion) {
    throw new CommitLogCorruptError(file, 8, undefined, `unsupported segment format version ${version} (this build reads ${segmentFormatVersion})`);
  }
  const first = b.readBigUInt64LE(16);
  if (first !== expectedFirst) {
    throw new CommitLogCorruptError(file, 16, first, `segment header says first offset ${first} but file name says ${expectedFirst}`);
  }
}

/** Encodes one record at `pos` of `buf` (which must have room); returns the record's size in bytes. */
export function encodeRecord(buf: Buffer, pos: number, offset: bigint, timestampMicros: bigint, payload: Uint8Array): number {
  const len = payload.length;
  buf.writeUInt32LE(len, pos);
  write64(buf, pos + 4, offset, false);
  write64(buf, pos + 12, timestampMicros, true);
  const headerCrc = crc32c(buf, 0, pos, pos + 20);
  buf.writeUInt32LE(headerCrc, pos + 20);
  buf.set(payload, pos + recordHeaderBytes);
  const end = pos + recordHeaderBytes + len;
  buf.writeUInt32LE(crc32c(buf, headerCrc, pos + recordHeaderBytes, end), end);
  return recordOverheadBytes + len;
}

/** 2^32 and the range in which a 64-bit field is written through Number arithmetic (exact below 2^53). */
const twoPow32 = 4294967296;
const safeBig = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Writes a u64 (or, `signed`, an i64) little-endian. Buffer's BigInt writers allocate several BigInts per call
 * (two records' worth per commit on the hot path); offsets and timestamps fit in 2^53, so split them as Numbers.
 */
function write64(buf: Buffer, pos: number, v: bigint, signed: boolean): void {
  if (v >= 0n && v <= safeBig) {
    const n = Number(v);
    buf.writeUInt32LE(n % twoPow32, pos);
    buf.writeUInt32LE(Math.floor(n / twoPow32), pos + 4);
  } else if (signed) {
    buf.writeBigInt64LE(v, pos);
  } else {
    buf.writeBigUInt64LE(v, pos);
  }
}

/** One record as the scanner sees it. `payload` is a view into the scan buffer, valid until the next record. */
export interface ScannedRecord {
  offset: bigint;
  timestampMicros: bigint;
  bytePosition: number;
  payloadLength: number;
  crc: number;
  payload: Uint8Array;
}

export interface ScanOutcome {
  /** Byte length of the valid prefix of the segment (header plus complete, checked records). */
  validEndBytes: number;
  /** Offset the next record after the valid prefix would have. */
  nextOffset: bigint;
  /** Set when a torn tail was found (only possible with allowTornTail). */
  torn: { bytePosition: number; reason: string } | undefined;
}

export interface ScanOptions {
  /** Treat a torn tail as the end of data instead of corruption (only for the last segment). */
  allowTornTail: boolean;
  /** Bytes of the file to consider (defaults to its size): lets a reader ignore a write in progress. */
  sizeBytes?: number;
  /** Stop (cleanly) after the record with this offset. */
  stopAfterOffset?: bigint;
}

/** Commit offsets are handled as numbers on the scan path; beyond this they would lose precision. */
const offsetNumberMax = Number.MAX_SAFE_INTEGER;

/**
 * Iterates the records of one segment, checking the header, every checksum and offset continuity. Fills `outcome`
 * when iteration ends. Throws CommitLogCorruptError on corruption (and on a torn tail unless allowTornTail).
 * Allocates an object per record: for inspection and tests; replay uses SegmentScanner directly.
 */
export function* scanSegment(seg: SegmentFile, options: ScanOptions, outcome: ScanOutcome): Generator<ScannedRecord> {
  const sc = new SegmentScanner(seg, options, outcome);
  try {
    while (sc.next()) {
      yield {
        offset: BigInt(sc.offset),
        timestampMicros: sc.timestampMicros(),
        bytePosition: sc.bytePosition,
        payloadLength: sc.payloadEnd - sc.payloadStart,
        crc: sc.crc,
        payload: sc.buf.subarray(sc.payloadStart, sc.payloadEnd),
      };
    }
  } finally {
    sc.close();
  }
}

/**
 * The one validating scanner (the recovery rule in the file header). `next()` advances to the following record and
 * exposes it in place — `buf[payloadStart, payloadEnd)`, `offset` as a number — without allocating: replay of a
 * million records must not create a million objects. The view is valid until the next call. Reads the file in
 * large chunks (scanChunkBytes). Fills `outcome` as it goes; `close()` releases the file.
 */
export class SegmentScanner {
  buf: Buffer;
  payloadStart = 0;
  payloadEnd = 0;
  /** Commit offset of the current record. */
  offset = -1;
  bytePosition = 0;
  crc = 0;

  private readonly fd: number;
  private readonly reader: ChunkReader;
  private readonly size: number;
  private readonly stopAfter: number;
  private expected: number;
  private pos = segmentHeaderBytes;
  private pendingConsume = 0;
  private ended = false;
  private closedFd = false;

  constructor(
    private readonly seg: SegmentFile,
    private readonly options: ScanOptions,
    private readonly outcome: ScanOutcome,
  ) {
    assert(seg.firstOffset <= BigInt(offsetNumberMax), `segment first offset ${seg.firstOffset} exceeds 2^53`);
    this.fd = fs.openSync(seg.path, 'r');
    try {
      readSegmentHeader(this.fd, seg.path, seg.firstOffset);
      this.size = options.sizeBytes ?? fs.fstatSync(this.fd).size;
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
    this.reader = new ChunkReader(this.fd, this.size, segmentHeaderBytes);
    this.buf = this.reader.buf;
    this.expected = Number(seg.firstOffset);
    const stop = options.stopAfterOffset;
    this.stopAfter = stop === undefined || stop >= BigInt(offsetNumberMax) ? offsetNumberMax : Number(stop);
    outcome.torn = undefined;
    outcome.validEndBytes = this.pos;
    outcome.nextOffset = seg.firstOffset;
  }

  timestampMicros(): bigint {
    return this.buf.readBigInt64LE(this.payloadStart - recordHeaderBytes + 12);
  }

  /** Advances to the next valid record; false at the end of data (clean end, stop offset or torn tail). */
  next(): boolean {
    if (this.ended) return false;
    const reader = this.reader;
    reader.consume(this.pendingConsume);
    this.pendingConsume = 0;
    const pos = this.pos;
    const expected = this.expected;
    if (pos === this.size || expected > this.stopAfter) return this.end();
    if (!reader.fill(recordHeaderBytes)) {
      return this.endTorn(`partial record header (${this.size - pos} bytes) at end of segment`, expected);
    }
    let b = reader.buf;
    const h = reader.start;
    const len = u32At(b, h);
    if (crc32c(b, 0, h, h + 20) !== u32At(b, h + 20)) {
      if (!headerLooksComplete(b, h, pos, this.size) && !laterRecordExists(this.fd, pos + 1, this.size, BigInt(expected))) {
        return this.endTorn('damaged record header with no valid record after it', expected);
      }
      throw new CommitLogCorruptError(this.seg.path, pos, BigInt(expected), 'record header checksum mismatch');
    }
    const offset = u32At(b, h + 4) + u32At(b, h + 8) * 0x1_0000_0000;
    if (len > recordPayloadMaxBytes) {
      throw new CommitLogCorruptError(this.seg.path, pos, b.readBigUInt64LE(h + 4), `record length ${len} exceeds ${recordPayloadMaxBytes}`);
    }
    if (offset !== expected) {
      const exact = b.readBigUInt64LE(h + 4); // the number may have lost precision: report the exact value
      throw new CommitLogCorruptError(this.seg.path, pos, exact, `offset gap: expected commit offset ${expected}, found ${exact}`);
    }
    const total = recordOverheadBytes + len;
    if (!reader.fill(total)) return this.endTorn(`partial record (${this.size - pos} of ${total} bytes) at end of segment`, offset);
    b = reader.buf;
    const r = reader.start;
    const payloadStart = r + recordHeaderBytes;
    const payloadEnd = payloadStart + len;
    const crc = crc32c(b, u32At(b, r + 20), payloadStart, payloadEnd);
    if (crc !== u32At(b, payloadEnd)) {
      // A complete record (it ends exactly at the end of the file, or a valid record follows) was written whole:
      // a failing checksum is damage to acknowledged bytes, never a torn write.
      if (pos + total !== this.size && !laterRecordExists(this.fd, pos + total, this.size, BigInt(offset))) {
        return this.endTorn('last record incomplete: checksum mismatch and the file does not end at its end', offset);
      }
      throw new CommitLogCorruptError(this.seg.path, pos, BigInt(offset), 'record checksum mismatch');
    }
    this.buf = b;
    this.payloadStart = payloadStart;
    this.payloadEnd = payloadEnd;
    this.offset = offset;
    this.bytePosition = pos;
    this.crc = crc;
    this.pendingConsume = total;
    this.pos = pos + total;
    this.expected = offset + 1;
    assert(this.expected <= offsetNumberMax, 'commit offset beyond 2^53');
    this.outcome.validEndBytes = this.pos;
    this.outcome.nextOffset = BigInt(this.expected);
    return true;
  }

  close(): void {
    if (this.closedFd) return;
    this.closedFd = true;
    this.ended = true;
    fs.closeSync(this.fd);
  }

  private end(): false {
    this.ended = true;
    return false;
  }

  private endTorn(reason: string, pendingOffset: number): false {
    if (!this.options.allowTornTail) throw new CommitLogCorruptError(this.seg.path, this.pos, BigInt(pendingOffset), reason);
    this.outcome.torn = { bytePosition: this.pos, reason };
    return this.end();
  }
}

/** Little-endian u32 at `at` (inlined by the JIT; Buffer#readUInt32LE is a call with checks per field). */
function u32At(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** Sequential reader over a file region with a growable window; `buf[start, end)` holds bytes from `pos`. */
class ChunkReader {
  buf: Buffer;
  start = 0;
  end = 0;
  constructor(
    private readonly fd: number,
    private readonly sizeBytes: number,
    private pos: number, // file position of buf[end]
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(scanChunkMinBytes, Math.min(scanChunkBytes, sizeBytes - pos)));
  }

  /** Makes `n` bytes available at `start`; false when the file (region) ends first. */
  fill(n: number): boolean {
    if (this.end - this.start >= n) return true;
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    while (this.end < n && this.pos < this.sizeBytes) {
      const want = Math.min(this.buf.length - this.end, this.sizeBytes - this.pos);
      const got = fs.readSync(this.fd, this.buf, this.end, want, this.pos);
      if (got === 0) break;
      this.end += got;
      this.pos += got;
    }
    return this.end - this.start >= n;
  }

  consume(n: number): void {
    this.start += n;
  }
}

/**
 * Whether a record header whose checksum fails belongs to a record that was written whole (so the failure is damage,
 * not a torn write): its length field makes the record end exactly at the end of the file, or the only damage is to
 * that length field (with the length the file implies, the header checksum holds). An all-zero header (preallocated
 * or zero-filled space after a power loss) is never complete.
 */
function headerLooksComplete(b: Buffer, h: number, pos: number, size: number): boolean {
  let zero = true;
  for (let i = 0; i < recordHeaderBytes && zero; i++) zero = b[h + i] === 0;
  if (zero) return false;
  if (pos + recordOverheadBytes + u32At(b, h) === size) return true;
  const impliedLength = size - pos - recordOverheadBytes;
  if (impliedLength < 0 || impliedLength > recordPayloadMaxBytes) return false;
  const header = Buffer.from(b.subarray(h, h + recordHeaderBytes));
  header.writeUInt32LE(impliedLength, 0);
  return crc32c(header, 0, 0, 20) === header.readUInt32LE(20);
}

/** Search window for laterRecordExists; consecutive windows overlap by a header so none is missed. */
const searchChunkBytes = 1024 * 1024;
/** A candidate header must claim an offset within this distance after the damaged one. */
const searchOffsetWindow = 1n << 32n;

/**
 * True when some byte position in [fromPos, sizeBytes) holds a record header with a valid header CRC and an offset
 * in (damagedOffset, damagedOffset + searchOffsetWindow). Only runs on the rare damaged-record path.
 */
function laterRecordExists(fd: number, fromPos: number, sizeBytes: number, damagedOffset: bigint): boolean {
  const buf = Buffer.allocUnsafe(searchChunkBytes + recordHeaderBytes);
  let pos = fromPos;
  while (pos + recordHeaderBytes <= sizeBytes) {
    const want = Math.min(buf.length, sizeBytes - pos);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(fd, buf, got, want - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    const lastStart = got - recordHeaderBytes;
    for (let i = 0; i <= lastStart; i++) {
      if (crc32c(buf, 0, i, i + 20) !== buf.readUInt32LE(i + 20)) continue;
      const offset = buf.readBigUInt64LE(i + 4);
      if (offset > damagedOffset && offset - damagedOffset < searchOffsetWindow) return true;
    }
    if (pos + got >= sizeBytes) return false;
    pos += lastStart + 1;
  }
  return false;
}
