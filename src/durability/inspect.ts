// durability/inspect.ts — the operator's tools for a commit log directory: `spacetime debug log <dir>` describes it,
// `--truncate-at-damage` cuts it at its first damage.
//
// Owns: nothing on disk but what the operator asks for. describeLog is read-only: unlike CommitLog.open it never
// repairs anything and does not stop at the first problem: each segment is scanned on its own and its damage is
// reported in place, so an operator can see exactly where a log that refuses to open is broken. truncateAtDamage is
// the explicit way out of a log that refuses to open (segment.ts: damage is never repaired automatically): it drops
// the damaged record and everything after it — transactions that may have been acknowledged — so only an operator
// runs it, never the server, and never while a server holds the log.
// May call: durability/segment.ts, durability/commitlog.ts (the lock holder), durability/fsync.ts.

import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, liveLockHolder } from './commitlog.js';
import { fsyncDirSync } from './fsync.js';
import { CommitLogCorruptError, listSegments, scanSegment, segmentHeaderBytes, type ScanOutcome } from './segment.js';

export interface DescribeLogOptions {
  /** Also list every record (offset, byte position, payload length, crc, timestamp). */
  records?: boolean;
}

export function describeLog(dir: string, options: DescribeLogOptions = {}): string {
  const lines: string[] = [`commit log ${dir}`];
  const segments = fs.existsSync(dir) ? listSegments(dir) : [];
  if (segments.length === 0) lines.push('no segments');
  let total = 0;
  let firstOffset: bigint | undefined;
  let expected: bigint | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const isLast = i === segments.length - 1;
    const size = fs.statSync(seg.path).size;
    if (expected !== undefined && seg.firstOffset !== expected) {
      lines.push(`  gap: previous segment ends before offset ${expected}, this one starts at ${seg.firstOffset}`);
    }
    const recordLines: string[] = [];
    const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: seg.firstOffset, torn: undefined };
    let count = 0;
    let problem: string | undefined;
    try {
      for (const rec of scanSegment(seg, { allowTornTail: isLast }, outcome)) {
        count++;
        if (options.records) {
          const time = new Date(Number(rec.timestampMicros / 1000n)).toISOString();
          recordLines.push(
            `  offset ${rec.offset}  byte ${rec.bytePosition}  length ${rec.payloadLength}  crc 0x${rec.crc.toString(16).padStart(8, '0')}  time ${time}`,
          );
        }
      }
      if (outcome.torn) problem = `torn tail at byte ${outcome.torn.bytePosition} (${outcome.torn.reason}); open will truncate it`;
    } catch (e) {
      if (!(e instanceof CommitLogCorruptError)) throw e;
      problem = `CORRUPT: ${e.message}`;
    }
    const range = count > 0 ? `offsets ${seg.firstOffset}..${seg.firstOffset + BigInt(count) - 1n}` : `empty (first offset ${seg.firstOffset})`;
    lines.push(`segment ${path.basename(seg.path)}  bytes ${size}  ${range}  records ${count}`);
    lines.push(...recordLines);
    if (problem) lines.push(`  ${problem}`);
    total += count;
    firstOffset ??= seg.firstOffset;
    expected = seg.firstOffset + BigInt(count);
  }
  if (segments.length > 0) {
    const last = expected! - 1n;
    lines.push(`total: ${segments.length} segments, ${total} records` + (last >= firstOffset! ? `, offsets ${firstOffset}..${last}` : ''));
  }
  return lines.join('\n');
}

/**
 * Finds the first damage of the log in `dir` (the same checks and torn-tail rule as opening it) and cuts the log
 * there: the damaged segment is truncated at the damaged record (removed when its header is damaged) and every later
 * segment is removed. A torn tail is left to the next open. Returns what was done, one line each. Throws
 * CommitLogError while a live process holds the log.
 */
export function truncateAtDamage(dir: string): string {
  const holder = liveLockHolder(dir);
  if (holder !== undefined) throw new CommitLogError(`commit log ${dir} is in use by process ${holder}: stop the server first`);
  const segments = fs.existsSync(dir) ? listSegments(dir) : [];
  let expected: bigint | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    let damage: { bytePosition: number; firstLost: bigint; reason: string } | undefined;
    if (expected !== undefined && seg.firstOffset !== expected) {
      damage = { bytePosition: 0, firstLost: expected, reason: `offset gap: expected first offset ${expected}, found ${seg.firstOffset}` };
    } else {
      const outcome: ScanOutcome = { validEndBytes: 0, nextOffset: seg.firstOffset, torn: undefined };
      try {
        for (const _ of scanSegment(seg, { allowTornTail: i === segments.length - 1 }, outcome));
      } catch (e) {
        if (!(e instanceof CommitLogCorruptError) || e.file !== seg.path) throw e;
        damage = { bytePosition: e.bytePosition, firstLost: outcome.nextOffset, reason: e.message };
      }
      expected = outcome.nextOffset;
    }
    if (damage === undefined) continue;
    const lines = [`damage: ${damage.reason}`];
    if (damage.bytePosition < segmentHeaderBytes) {
      fs.unlinkSync(seg.path);
      lines.push(`removed ${path.basename(seg.path)} (its header is damaged)`);
    } else {
      const fd = fs.openSync(seg.path, 'r+');
      try {
        const size = fs.fstatSync(fd).size;
        fs.ftruncateSync(fd, damage.bytePosition);
        fs.fdatasyncSync(fd);
        lines.push(`truncated ${path.basename(seg.path)} at byte ${damage.bytePosition} (${size - damage.bytePosition} bytes removed)`);
      } finally {
        fs.closeSync(fd);
      }
    }
    for (const later of segments.slice(i + 1)) {
      fs.unlinkSync(later.path);
      lines.push(`removed ${path.basename(later.path)}`);
    }
    fsyncDirSync(dir);
    lines.push(`commit offsets from ${damage.firstLost} on are gone; snapshots past them are retired at the next open`);
    if (damage.firstLost === 0n) lines.push('the log holds no record now: the database starts over from its program (init runs again)');
    return lines.join('\n');
  }
  return `no damage found in ${dir}: nothing changed`;
}
