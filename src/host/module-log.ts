// host/module-log.ts — the per-database module log (what `spacetime logs` shows).
//
// Owns: log records, an in-memory ring of the most recent ones, an NDJSON file `<dbDir>/module.log` (append-only,
// one JSON object per line) and live followers.
// May call: node:fs.
//
// Appends are synchronous (appendFileSync) so records survive a crash right after a failing reducer; the log is
// written only by module output and host errors, never on the hot datastore path.

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type LogLevel = 'Error' | 'Warn' | 'Info' | 'Debug' | 'Trace' | 'Panic';

export interface LogRecord {
  /** µs since the Unix epoch. */
  ts: number;
  level: LogLevel;
  message: string;
  filename?: string;
  lineNumber?: number;
  function?: string;
  target?: string;
}

/** Records kept in memory for `tail`. Older records are only in the file. */
export const logRingRecordsMax = 10_000;
/** A record's message is cut to this many characters (a runaway logger must not fill the disk with one line). */
export const logMessageCharsMax = 64 * 1024;

/** console_log level numbers (host-abi §3.4) to names; unknown numbers are Debug. */
export function levelName(level: number): LogLevel {
  switch (level) {
    case 0: return 'Error';
    case 1: return 'Warn';
    case 2: return 'Info';
    case 3: return 'Debug';
    case 4: return 'Trace';
    case 101: return 'Panic';
    default: return 'Debug';
  }
}

export type LogListener = (record: LogRecord) => void;

export class ModuleLog {
  private readonly ring: (LogRecord | undefined)[] = new Array(logRingRecordsMax);
  private head = 0;      // next write position
  private count = 0;
  private readonly listeners = new Set<LogListener>();

  /** `filePath` undefined keeps the log in memory only. Existing records in the file are loaded into the ring. */
  constructor(private readonly filePath: string | undefined) {
    if (filePath === undefined) return;
    mkdirSync(dirname(filePath), { recursive: true });
    if (!existsSync(filePath)) return;
    const lines = readFileSync(filePath, 'utf8').split('\n');
    for (let i = Math.max(0, lines.length - 1 - logRingRecordsMax); i < lines.length; i++) {
      if (lines[i] === '') continue;
      try { this.remember(JSON.parse(lines[i]) as LogRecord); } catch { /* a torn last line after a crash */ }
    }
  }

  append(record: LogRecord): void {
    if (record.message.length > logMessageCharsMax) {
      record = { ...record, message: record.message.slice(0, logMessageCharsMax) + '…' };
    }
    this.remember(record);
    if (this.filePath !== undefined) appendFileSync(this.filePath, JSON.stringify(record) + '\n');
    for (const l of this.listeners) {
      try { l(record); } catch { /* a broken follower must not break logging */ }
    }
  }

  /** Convenience: a record stamped now. */
  write(level: LogLevel, message: string, extra?: Omit<LogRecord, 'ts' | 'level' | 'message'>): void {
    this.append({ ts: nowMicros(), level, message, ...extra });
  }

  /** The last `n` records (all kept ones when n is undefined), oldest first. */
  tail(n?: number): LogRecord[] {
    const take = Math.min(n ?? this.count, this.count);
    const out: LogRecord[] = [];
    for (let i = this.count - take; i < this.count; i++) {
      const at = (this.head - this.count + i + logRingRecordsMax) % logRingRecordsMax;
      out.push(this.ring[at]!);
    }
    return out;
  }

  /** Calls `listener` for every record appended from now on. Returns the unsubscribe function. */
  follow(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  private remember(record: LogRecord): void {
    this.ring[this.head] = record;
    this.head = (this.head + 1) % logRingRecordsMax;
    if (this.count < logRingRecordsMax) this.count++;
  }
}

export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}
