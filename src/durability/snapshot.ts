// durability/snapshot.ts — whole-state snapshots as single files, written atomically, read back with fallback.
//
// Owns: the files `<dir>/<20-digit offset>.snapshot` (and transient `*.tmp`, retired `*.invalid`). The payload is
// opaque (the datastore's serialized committed state as of commit `offset`, inclusive).
// May call: node:fs, durability/crc32c.ts, durability/fsync.ts.
//
// File layout (little-endian):
//    0  magic          8 bytes "STDBTSSN"
//    8  formatVersion  u32 (= snapshotFormatVersion)
//   12  reserved       u32 (= 0)
//   16  offset         u64 the last commit offset included in the state
//   24  payloadLength  u64
//   32  payloadCrc     u32 CRC-32C of the payload
//   36  headerCrc      u32 CRC-32C of bytes [0, 36)
//   40  payload
//
// Crash safety: the file is written under a temp name, fdatasync'ed, renamed into place, and the directory is
// fsync'ed, so a snapshot file either is complete or does not exist under its final name (compare upstream #4886).
// A snapshot may be taken from committed in-memory state that is ahead of the durable log; on restart the caller
// passes the log's durable offset as maxOffset, and any newer snapshot is retired (renamed `.invalid`): its commits
// were lost with the log tail, and the offsets will be reused by different commits.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32c } from './crc32c.js';
import { fsyncDirSync } from './fsync.js';

/** How many snapshots to keep after writing a new one (the older ones are deleted). */
export const snapshotsKeepCount = 2;
export const snapshotFormatVersion = 1;
export const snapshotHeaderBytes = 40;
const snapshotMagic = Buffer.from('STDBTSSN', 'latin1');
const snapshotNamePattern = /^(\d{20})\.snapshot$/;
const snapshotNameDigits = 20;
const tempSuffix = '.tmp';
const invalidSuffix = '.invalid';
const unreadablePrefix = 'unreadable: ';

export interface SnapshotFile {
  offset: bigint;
  path: string;
}

export interface Snapshot {
  offset: bigint;
  payload: Uint8Array;
}

export function snapshotFileName(offset: bigint): string {
  return offset.toString().padStart(snapshotNameDigits, '0') + '.snapshot';
}

/** Snapshot files in `dir` (by name; contents not checked), newest first. Missing dir → empty list. */
export function listSnapshots(dir: string): SnapshotFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: SnapshotFile[] = [];
  for (const name of names) {
    const m = snapshotNamePattern.exec(name);
    if (m) out.push({ offset: BigInt(m[1]!), path: path.join(dir, name) });
  }
  out.sort((a, b) => (a.offset > b.offset ? -1 : a.offset < b.offset ? 1 : 0));
  return out;
}

/** Writes a snapshot of the state at `offset` atomically, then deletes all but the newest snapshotsKeepCount. */
export async function writeSnapshot(dir: string, offset: bigint, payload: Uint8Array): Promise<void> {
  await fsp.mkdir(dir, { recursive: true });
  const header = Buffer.alloc(snapshotHeaderBytes);
  snapshotMagic.copy(header, 0);
  header.writeUInt32LE(snapshotFormatVersion, 8);
  header.writeBigUInt64LE(offset, 16);
  header.writeBigUInt64LE(BigInt(payload.length), 24);
  header.writeUInt32LE(crc32c(payload), 32);
  header.writeUInt32LE(crc32c(header, 0, 0, 36), 36);
  const finalPath = path.join(dir, snapshotFileName(offset));
  const tmpPath = finalPath + tempSuffix;
  const fh = await fsp.open(tmpPath, 'w');
  try {
    await fh.writev([header, payload]);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmpPath, finalPath);
  fsyncDirSync(dir);
  deleteOldSnapshots(dir);
}

function deleteOldSnapshots(dir: string): void {
  let changed = false;
  for (const old of listSnapshots(dir).slice(snapshotsKeepCount)) {
    fs.unlinkSync(old.path);
    changed = true;
  }
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith(tempSuffix)) {
      fs.unlinkSync(path.join(dir, name)); // an interrupted earlier write
      changed = true;
    }
  }
  if (changed) fsyncDirSync(dir);
}

/**
 * Reads and checks one snapshot file; returns a reason string when it is not valid. Exported for inspection.
 */
export function readSnapshotFile(file: SnapshotFile): Snapshot | string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file.path);
  } catch (e) {
    return `${unreadablePrefix}${(e as Error).message}`;
  }
  if (bytes.length < snapshotHeaderBytes) return `truncated header (${bytes.length} bytes)`;
  if (!bytes.subarray(0, 8).equals(snapshotMagic)) return 'bad magic';
  if (crc32c(bytes, 0, 0, 36) !== bytes.readUInt32LE(36)) return 'header checksum mismatch';
  const version = bytes.readUInt32LE(8);
  if (version !== snapshotFormatVersion) return `unsupported format version ${version}`;
  const offset = bytes.readBigUInt64LE(16);
  if (offset !== file.offset) return `header offset ${offset} does not match file name`;
  const length = bytes.readBigUInt64LE(24);
  if (BigInt(bytes.length - snapshotHeaderBytes) !== length) return `payload length ${bytes.length - snapshotHeaderBytes}, header says ${length}`;
  // A plain Uint8Array view (not a Buffer) over the file contents: no copy.
  const payload = new Uint8Array(bytes.buffer, bytes.byteOffset + snapshotHeaderBytes, bytes.length - snapshotHeaderBytes);
  if (crc32c(payload) !== bytes.readUInt32LE(32)) return 'payload checksum mismatch';
  return { offset, payload };
}

/**
 * The newest valid snapshot with offset ≤ maxOffset (pass the commit log's durable offset), or undefined.
 * Snapshots that are invalid, or newer than maxOffset, are retired (renamed `<name>.invalid`) so they are never
 * considered again; each is reported through `report`.
 */
export function readNewestValidSnapshot(dir: string, maxOffset: bigint, report: (message: string) => void = () => {}): Snapshot | undefined {
  let retired = false;
  let found: Snapshot | undefined;
  for (const file of listSnapshots(dir)) {
    const result = file.offset > maxOffset ? `offset ${file.offset} is ahead of the durable log (${maxOffset})` : readSnapshotFile(file);
    if (typeof result !== 'string') {
      found = result;
      break;
    }
    if (result.startsWith(unreadablePrefix)) {
      report(`snapshot ${file.path} skipped (${result})`); // maybe transient: keep it for a later attempt
      continue;
    }
    fs.renameSync(file.path, file.path + invalidSuffix);
    retired = true;
    report(`snapshot ${file.path} is not usable (${result}); renamed to ${path.basename(file.path)}${invalidSuffix}`);
  }
  if (retired) fsyncDirSync(dir);
  return found;
}
