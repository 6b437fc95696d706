// durability/backup.ts — the hot backup container: a consistent copy of one database's files up to one commit offset,
// written while the database keeps serving, checked part by part, and laid out again as a database directory.
//
// Owns: the container format below (`spacetime backup` writes it, `spacetime restore` sends it back). Nothing on disk
// but the directory `restoreInto` is given.
// May call: node:fs, durability/segment.ts, durability/snapshot.ts, durability/crc32c.ts, durability/fsync.ts.
//
// Consistency without blocking: every record up to the log's durable offset X is complete and never rewritten, and a
// snapshot file never changes once in place, so the copy reads files only: the newest valid snapshot at S ≤ X (if
// any) and the log records S+1..X. Appends past X go on meanwhile and are not copied. Restoring writes that snapshot
// and one segment holding those records; opening the directory like at start yields the state after record X.
//
// Container, little-endian:
//   magic "STDBBKUP" (8 bytes), formatVersion u32
//   parts, each: kind u8, length u32, bytes, crc u32 (CRC-32C of the bytes)
//     1 header    UTF-8 JSON: { formatVersion, databaseIdentity, ownerIdentity, programHash, offset, snapshotOffset,
//                 createdMicros } (identities hex, offsets decimal strings; snapshotOffset null without a snapshot)
//     2 snapshot  the snapshot file's payload (at most one part; absent without a snapshot)
//     3 log       raw commit-log records (segment.ts encoding, each with its own CRCs), in order; one part per chunk
//     0 end       u32 CRC-32C of every container byte before this part; nothing may follow
// A part whose crc fails, a missing end, or bytes after it are refused with the part and byte position.

import fs from 'node:fs';
import path from 'node:path';
import { crc32c } from './crc32c.js';
import { fsyncDirSync } from './fsync.js';
import { encodeSegmentHeader, listSegments, recordHeaderBytes, recordTrailerBytes, segmentFileName, SegmentScanner, type ScanOutcome } from './segment.js';
import { listSnapshots, readSnapshotFile, writeSnapshot, type Snapshot } from './snapshot.js';

export const backupMagic = Buffer.from('STDBBKUP', 'latin1');
export const backupFormatVersion = 1;
/** Log bytes per part (a part's length is a u32; smaller parts let a reader check as it goes). */
const logPartBytes = 4 * 1024 * 1024;
const enum PartKind { End = 0, Header = 1, Snapshot = 2, Log = 3 }
const partHeaderBytes = 5;

export interface BackupHeader {
  formatVersion: number;
  databaseIdentity: string;
  ownerIdentity: string;
  programHash: string;
  /** The last commit offset the backup holds. */
  offset: string;
  snapshotOffset: string | null;
  createdMicros: string;
}

/** A container that fails a check; says where. */
export class BackupDamagedError extends Error {
  override name = 'BackupDamagedError';
}

/** One database directory's consistent copy up to `offset` (must be durable), as container chunks. */
export async function* writeBackup(dbDir: string, offset: bigint,
  info: Omit<BackupHeader, 'formatVersion' | 'offset' | 'snapshotOffset' | 'createdMicros'>): AsyncGenerator<Buffer> {
  const snapshot = newestSnapshotAtOrBefore(path.join(dbDir, 'snapshots'), offset);
  const header: BackupHeader = {
    formatVersion: backupFormatVersion, ...info, offset: offset.toString(),
    snapshotOffset: snapshot === undefined ? null : snapshot.offset.toString(), createdMicros: (BigInt(Date.now()) * 1000n).toString(),
  };
  let total = 0;
  const emit = (b: Buffer): Buffer => { total = crc32c(b, total); return b; };
  const head = Buffer.alloc(12);
  backupMagic.copy(head, 0);
  head.writeUInt32LE(backupFormatVersion, 8);
  yield emit(head);
  for (const b of part(PartKind.Header, Buffer.from(JSON.stringify(header), 'utf8'))) yield emit(b);
  if (snapshot !== undefined) for (const b of part(PartKind.Snapshot, Buffer.from(snapshot.payload))) yield emit(b);
  for (const chunk of logRecords(path.join(dbDir, 'clog'), snapshot === undefined ? 0n : snapshot.offset + 1n, offset)) {
    for (const b of part(PartKind.Log, chunk)) yield emit(b);
  }
  const end = Buffer.alloc(4);
  end.writeUInt32LE(total >>> 0, 0);
  for (const b of part(PartKind.End, end)) yield b;
}

function part(kind: PartKind, bytes: Buffer): Buffer[] {
  const head = Buffer.alloc(partHeaderBytes);
  head.writeUInt8(kind, 0);
  head.writeUInt32LE(bytes.length, 1);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32c(bytes) >>> 0, 0);
  return [head, bytes, crc];
}

/** The newest valid snapshot with offset ≤ `offset`, read only (a live database's files are never renamed here). */
function newestSnapshotAtOrBefore(dir: string, offset: bigint): Snapshot | undefined {
  for (const file of listSnapshots(dir)) {
    if (file.offset > offset) continue;
    const s = readSnapshotFile(file);
    if (typeof s !== 'string') return s;
  }
  return undefined;
}

/** Raw record bytes of offsets [from, to] from the segments of `clogDir`, in chunks of about logPartBytes. */
function* logRecords(clogDir: string, from: bigint, to: bigint): Generator<Buffer> {
  if (to < from) return;
  const segments = listSegments(clogDir);
  let next = from;
  for (let i = 0; i < segments.length && next <= to; i++) {
    const seg = segments[i]!;
    const nextFirst = segments[i + 1]?.firstOffset;
    if (nextFirst !== undefined && nextFirst <= next) continue;
    if (seg.firstOffset > next) throw new Error(`commit log ${clogDir}: offset ${next} is missing (pruned during the backup?); try again`);
    const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: seg.firstOffset, torn: undefined };
    const sc = new SegmentScanner(seg, { allowTornTail: false, stopAfterOffset: to }, outcome);
    const chunks: Buffer[] = [];
    let pending = 0;
    try {
      while (sc.next()) {
        if (BigInt(sc.offset) < next) continue;
        const start = sc.payloadStart - recordHeaderBytes;
        const rec = Buffer.from(sc.buf.subarray(start, sc.payloadEnd + recordTrailerBytes));
        chunks.push(rec);
        pending += rec.length;
        next = BigInt(sc.offset) + 1n;
        if (pending >= logPartBytes) { yield Buffer.concat(chunks); chunks.length = 0; pending = 0; }
      }
    } finally {
      sc.close();
    }
    if (pending > 0) yield Buffer.concat(chunks);
  }
  if (next <= to) throw new Error(`commit log ${clogDir} ends at offset ${next - 1n}, before the backup offset ${to}`);
}

export interface ParsedBackup {
  header: BackupHeader;
  snapshot: Uint8Array | undefined;
  log: Buffer[];
}

/** Checks every part and the overall checksum; throws BackupDamagedError naming the part and byte position. */
export function readBackup(bytes: Buffer): ParsedBackup {
  if (bytes.length < 12 || !bytes.subarray(0, 8).equals(backupMagic)) throw new BackupDamagedError('not a backup file (no STDBBKUP magic at byte 0)');
  const version = bytes.readUInt32LE(8);
  if (version !== backupFormatVersion) throw new BackupDamagedError(`backup format version ${version} is not supported (this server reads ${backupFormatVersion})`);
  let pos = 12;
  let header: BackupHeader | undefined;
  let snapshot: Uint8Array | undefined;
  const log: Buffer[] = [];
  for (let index = 0; ; index++) {
    if (pos + partHeaderBytes > bytes.length) throw new BackupDamagedError(`truncated: part ${index} at byte ${pos} is cut off (no end part)`);
    const kind = bytes.readUInt8(pos);
    const length = bytes.readUInt32LE(pos + 1);
    const dataAt = pos + partHeaderBytes;
    if (dataAt + length + 4 > bytes.length) throw new BackupDamagedError(`truncated: part ${index} (kind ${kind}) at byte ${pos} declares ${length} bytes, the file ends first`);
    const data = bytes.subarray(dataAt, dataAt + length);
    if ((crc32c(data) >>> 0) !== bytes.readUInt32LE(dataAt + length)) {
      throw new BackupDamagedError(`damaged: part ${index} (${kindName(kind)}) at byte ${pos}: checksum mismatch`);
    }
    if (kind === PartKind.End) {
      if (length !== 4 || (crc32c(bytes, 0, 0, pos) >>> 0) !== data.readUInt32LE(0)) throw new BackupDamagedError(`damaged: the overall checksum (end part at byte ${pos}) does not match`);
      if (dataAt + length + 4 !== bytes.length) throw new BackupDamagedError(`damaged: ${bytes.length - (dataAt + length + 4)} bytes follow the end part at byte ${pos}`);
      break;
    }
    if (kind === PartKind.Header) {
      try { header = JSON.parse(data.toString('utf8')) as BackupHeader; } catch (e) { throw new BackupDamagedError(`damaged: header part at byte ${pos}: ${(e as Error).message}`); }
    } else if (kind === PartKind.Snapshot) snapshot = data;
    else if (kind === PartKind.Log) log.push(data);
    else throw new BackupDamagedError(`damaged: part ${index} at byte ${pos} has unknown kind ${kind}`);
    pos = dataAt + length + 4;
  }
  if (header === undefined || header.formatVersion !== backupFormatVersion || typeof header.offset !== 'string') throw new BackupDamagedError('damaged: no valid header part');
  if ((header.snapshotOffset === null) !== (snapshot === undefined)) throw new BackupDamagedError('damaged: the header and the snapshot part disagree');
  return { header, snapshot, log };
}

function kindName(kind: number): string {
  return kind === PartKind.Header ? 'header' : kind === PartKind.Snapshot ? 'snapshot' : kind === PartKind.Log ? 'log' : kind === PartKind.End ? 'end' : `kind ${kind}`;
}

/**
 * Lays a checked backup out as a database directory (`<dbDir>/snapshots`, `<dbDir>/clog`), synced, and checks that
 * its log holds exactly the records the header names. The caller then opens it like at start.
 */
export async function restoreInto(dbDir: string, backup: ParsedBackup): Promise<void> {
  const snapshotOffset = backup.header.snapshotOffset === null ? undefined : BigInt(backup.header.snapshotOffset);
  const offset = BigInt(backup.header.offset);
  if (snapshotOffset !== undefined) await writeSnapshot(path.join(dbDir, 'snapshots'), snapshotOffset, backup.snapshot!);
  const clog = path.join(dbDir, 'clog');
  fs.mkdirSync(clog, { recursive: true });
  const first = snapshotOffset === undefined ? 0n : snapshotOffset + 1n;
  const file = path.join(clog, segmentFileName(first));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, encodeSegmentHeader(first));
    for (const chunk of backup.log) fs.writeSync(fd, chunk);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDirSync(clog);
  const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: first, torn: undefined };
  const sc = new SegmentScanner({ firstOffset: first, path: file }, { allowTornTail: false }, outcome);
  try { while (sc.next()); } catch (e) {
    throw new BackupDamagedError(`damaged: the log records do not check: ${(e as Error).message}`);
  } finally { sc.close(); }
  if (outcome.nextOffset !== offset + 1n) {
    throw new BackupDamagedError(`damaged: the log holds offsets ${first}..${outcome.nextOffset - 1n}, the header says up to ${offset}`);
  }
}
