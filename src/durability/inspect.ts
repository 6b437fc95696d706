// durability/inspect.ts — human-readable description of a commit log directory, for `spacetime debug log <dir>`.
//
// Owns: nothing on disk; read-only. Unlike CommitLog.open it never repairs anything and does not stop at the first
// problem: each segment is scanned on its own and its damage is reported in place, so an operator can see exactly
// where a log that refuses to open is broken.
// May call: durability/segment.ts.

import fs from 'node:fs';
import path from 'node:path';
import { CommitLogCorruptError, listSegments, scanSegment, type ScanOutcome } from './segment.js';

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
