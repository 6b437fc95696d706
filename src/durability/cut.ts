// durability/cut.ts — cutting a commit log back to the last offset known to be on disk, before it is reopened after
// a write or fsync failure.
//
// Owns: nothing beyond what it is asked to cut. The records after `lastKeptOffset` were never acknowledged (the log
// failed before they were synced), and after a failed fsync their bytes may sit in the page cache only, marked clean
// (fsyncgate): a reopen would read them back and later syncs would not write them. Cutting them makes the files say
// exactly what is on disk before anything is appended again. Callers hold the database (no CommitLog is open on it).
// May call: node:fs, durability/segment.ts, durability/fsync.ts.

import fs from 'node:fs';
import path from 'node:path';
import { fsyncDirSync } from './fsync.js';
import { listSegments, SegmentScanner, segmentHeaderBytes, type ScanOutcome } from './segment.js';

/**
 * Removes every record after `lastKeptOffset` from the log in `dir`: later segments are deleted, the segment holding
 * `lastKeptOffset` is truncated right after it and synced. A log that ends at or before it is left alone. Returns one
 * line per change (empty when nothing changed).
 */
export function cutLogAfter(dir: string, lastKeptOffset: bigint): string[] {
  const lines: string[] = [];
  const segments = fs.existsSync(dir) ? listSegments(dir) : [];
  let removed = false;
  // A segment starting after the kept offset holds nothing to keep; the first segment always stays (the log needs one).
  while (segments.length > 1 && segments[segments.length - 1]!.firstOffset > lastKeptOffset) {
    const seg = segments.pop()!;
    fs.unlinkSync(seg.path);
    lines.push(`removed ${path.basename(seg.path)} (records after offset ${lastKeptOffset})`);
    removed = true;
  }
  const seg = segments[segments.length - 1];
  if (seg !== undefined) {
    const outcome: ScanOutcome = { validEndBytes: segmentHeaderBytes, nextOffset: seg.firstOffset, torn: undefined };
    if (seg.firstOffset <= lastKeptOffset) {
      const sc = new SegmentScanner(seg, { allowTornTail: true, stopAfterOffset: lastKeptOffset }, outcome);
      try { while (sc.next()); } finally { sc.close(); }
    }
    const fd = fs.openSync(seg.path, 'r+');
    try {
      const size = fs.fstatSync(fd).size;
      if (outcome.validEndBytes < size) {
        fs.ftruncateSync(fd, outcome.validEndBytes);
        fs.fdatasyncSync(fd);
        lines.push(`truncated ${path.basename(seg.path)} at byte ${outcome.validEndBytes} (${size - outcome.validEndBytes} bytes after offset ${lastKeptOffset})`);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  if (removed) fsyncDirSync(dir);
  return lines;
}
