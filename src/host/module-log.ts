// host/module-log.ts — the per-database module log (what `spacetime logs` shows).
//
// Owns: log records and their size bound (a long message is cut with a marker), an in-memory ring of the most recent
// ones (bounded in records and bytes), the NDJSON files `<dbDir>/module.log` (append-only, one JSON object per line)
// and its rotations `module.log.1` … `module.log.<logRotatedFilesMax>` (oldest dropped), reading the tail of that set
// in bounded chunks, and live followers. The per-call bound (logBytesPerCallMax) is kept by the syscall host, which
// knows where a call starts and ends (host/syscalls.ts); this file reports the bytes each record took.
// May call: node:fs, limits.
//
// Appends are synchronous (appendFileSync) so records survive a crash right after a failing reducer; the log is
// written only by module output and host errors, never on the hot datastore path. While a module call runs
// (`holdLogWrites` … `releaseLogWrites`, host/runtime.ts around each entry into the isolate) the lines of every log
// are gathered and written with one append when the call returns, before anything replies to it: a file open +
// write + close per record made a short console.log cost ~7 µs of its ~25. Nothing here reads a whole file:
// opening reads at most logRingBytesMax from the end, `read(n)` at most (n + 1) lines' worth of bytes backwards and
// then forwards, one logReadChunkBytes chunk at a time, whatever the files hold (torn or foreign lines are skipped).

import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import assert from 'node:assert';
import { dirname } from 'node:path';
import {
  logFileBytesMax, logLineBytesMax, logReadChunkBytes, logRecordFieldCharsMax, logRecordMessageBytesMax,
  logRingBytesMax, logRingRecordsMax, logRotatedFilesMax,
} from '../limits.js';

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

/** A follower: each record as appended, and its NDJSON line (newline included) as written to module.log. */
export type LogListener = (record: LogRecord, line: string) => void;

/** Nesting depth of holdLogWrites, and the logs with lines waiting for releaseLogWrites. */
let writesHeld = 0;
const logsWithHeldLines = new Set<ModuleLog>();

/** From now until the matching releaseLogWrites, appends gather their file lines instead of writing each one. */
export function holdLogWrites(): void {
  writesHeld++;
}

/** Ends a holdLogWrites; the outermost one writes every gathered line (one append per log). */
export function releaseLogWrites(): void {
  if (--writesHeld > 0 || logsWithHeldLines.size === 0) return;
  const logs = [...logsWithHeldLines];
  logsWithHeldLines.clear();
  for (const log of logs) {
    // A failed write (disk full) must not turn the call's outcome into an exception; the records stay in the ring.
    try { log.flush(); } catch (err) { process.stderr.write(`module log write failed: ${(err as Error).message}\n`); }
  }
}

/** Bounds of one log's files; the defaults are the limits in limits.ts (tests pass small ones to see rotation). */
export interface ModuleLogBounds {
  fileBytesMax: number;
  rotatedFilesMax: number;
}

const newline = 0x0a;

export class ModuleLog {
  private readonly ring: (LogRecord | undefined)[] = new Array(logRingRecordsMax);
  /** What each ring record costs in memory: its NDJSON line's length in UTF-16 units (≈ bytes of a JS string). */
  private readonly ringChars: number[] = new Array(logRingRecordsMax).fill(0);
  private head = 0;      // next write position
  private count = 0;
  private ringCharsTotal = 0;
  private readonly listeners = new Set<LogListener>();
  /** Size of the current module.log as this log wrote it (rotation happens before it would pass fileBytesMax). */
  private fileBytes = 0;
  /** Lines gathered while writes are held (holdLogWrites), and their bytes; counted in fileBytes only once written. */
  private heldLines: string[] = [];
  private heldBytes = 0;
  private readonly bounds: ModuleLogBounds;

  /**
   * `filePath` undefined keeps the log in memory only. Opening an existing log loads at most logRingBytesMax from the
   * end of its files into the ring; a module.log over the size bound (written before the bound existed, or by
   * something else) is rotated at once, keeping only its newest logRingBytesMax, so the disk bound holds from here on.
   */
  constructor(private readonly filePath: string | undefined, bounds?: Partial<ModuleLogBounds>) {
    this.bounds = { fileBytesMax: bounds?.fileBytesMax ?? logFileBytesMax, rotatedFilesMax: bounds?.rotatedFilesMax ?? logRotatedFilesMax };
    assert(this.bounds.fileBytesMax > logLineBytesMax && this.bounds.rotatedFilesMax >= 1, 'module log bounds too small');
    if (filePath === undefined) return;
    mkdirSync(dirname(filePath), { recursive: true });
    const foundBytes = existsSync(filePath) ? statSync(filePath).size : 0;
    const oversize = foundBytes > this.bounds.fileBytesMax;
    if (oversize) {
      this.rotate();
      keepTail(`${filePath}.1`, logRingBytesMax);
    } else {
      this.fileBytes = foundBytes;
    }
    const files = openLogFiles(filePath, this.bounds.rotatedFilesMax);
    try {
      const start = locateTail(files, logRingRecordsMax, logRingBytesMax);
      for (const { record, lineChars } of readRecordLines(files, start)) this.remember(record, lineChars);
    } finally {
      closeLogFiles(files);
    }
    if (oversize) {
      this.write('Warn', `module.log was ${foundBytes} bytes, over the ${this.bounds.fileBytesMax}-byte bound ` +
        `(logFileBytesMax): only its newest ${logRingBytesMax} bytes were kept, as module.log.1`);
    }
  }

  /**
   * Appends one record (its message cut to logRecordMessageBytesMax, other texts to logRecordFieldCharsMax) and
   * returns the bytes it took in the file (the per-call bound counts them).
   */
  append(record: LogRecord): number {
    record = boundedRecord(record);
    const line = JSON.stringify(record) + '\n';
    const bytes = Buffer.byteLength(line);
    this.remember(record, line.length);
    if (this.filePath !== undefined) {
      const inFile = this.fileBytes + this.heldBytes;
      if (inFile > 0 && inFile + bytes > this.bounds.fileBytesMax) { this.flush(); this.rotate(); }
      if (writesHeld > 0) {
        this.heldLines.push(line);
        this.heldBytes += bytes;
        logsWithHeldLines.add(this);
      } else {
        appendFileSync(this.filePath, line);
        this.fileBytes += bytes;
      }
    }
    this.notify(record, line);
    return bytes;
  }

  /**
   * Mirrors records another thread's ModuleLog appended, given as their NDJSON lines in order (host/worker/proxy.ts:
   * a module's log flood crosses as one string per turn, not one object per record). Followers get every record;
   * the ring keeps only what it would have kept, so only that tail is parsed when nobody follows. Nothing is written.
   */
  mirrorLines(text: string): void {
    if (text.length === 0) return;
    let start = 0;
    if (this.listeners.size === 0) {
      // The newest lines the ring can hold: at most logRingRecordsMax of them, within logRingBytesMax characters.
      let kept = 0;
      start = text.length - 1;                       // the final newline
      while (start > 0 && kept < logRingRecordsMax && text.length - start <= logRingBytesMax) {
        start = text.lastIndexOf('\n', start - 1);
        kept++;
        if (start < 0) break;
      }
      start = start < 0 ? 0 : start + 1;
    }
    for (let at = start; at < text.length;) {
      const end = text.indexOf('\n', at) + 1;
      const line = text.slice(at, end);
      at = end;
      const record = JSON.parse(line) as LogRecord;
      this.remember(record, line.length);
      this.notify(record, line);
    }
  }

  private notify(record: LogRecord, line: string): void {
    for (const l of this.listeners) {
      try { l(record, line); } catch { /* a broken follower must not break logging */ }
    }
  }

  /** Convenience: a record stamped now. Returns the bytes it took (see append). */
  write(level: LogLevel, message: string, extra?: Omit<LogRecord, 'ts' | 'level' | 'message'>): number {
    return this.append({ ts: nowMicros(), level, message, ...extra });
  }

  /** The last `n` records kept in memory (all of them when n is undefined), oldest first. */
  tail(n?: number): LogRecord[] {
    const take = Math.min(n ?? this.count, this.count);
    const out: LogRecord[] = [];
    for (let i = this.count - take; i < this.count; i++) out.push(this.ring[this.ringIndex(i)]!);
    return out;
  }

  /**
   * The last `n` records (every record when n is undefined) across module.log and its rotations, oldest first, as the
   * files are at this moment: the files are opened now, so records appended later (see `follow`) and rotations do not
   * change what the cursor returns. Reads lazily, one chunk at a time. The caller must exhaust or `close` the cursor.
   * A log kept in memory only reads its ring.
   */
  read(n?: number): LogCursor {
    if (this.filePath === undefined || n === 0) return new LogCursor([], this.tail(n).values());
    this.flush();
    return readLogFiles(this.filePath, n, this.bounds.rotatedFilesMax);
  }

  /** module.log's path (undefined: kept in memory only); another thread reads the files through readLogFiles. */
  get path(): string | undefined {
    return this.filePath;
  }

  /** Calls `listener` for every record appended from now on. Returns the unsubscribe function. */
  follow(listener: LogListener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  /** Writes the lines gathered while writes were held (releaseLogWrites, or before the files are read or rotated). */
  flush(): void {
    if (this.heldLines.length === 0) return;
    const text = this.heldLines.length === 1 ? this.heldLines[0] : this.heldLines.join('');
    const bytes = this.heldBytes;
    this.heldLines = [];
    this.heldBytes = 0;
    appendFileSync(this.filePath!, text);
    this.fileBytes += bytes;
  }

  /**
   * module.log → module.log.1 → … → module.log.<rotatedFilesMax>; renaming over the last drops the oldest. Renames
   * go oldest first, so a crash in between leaves a gap in the numbers (readers skip missing files), never a loss
   * of the newer files.
   */
  private rotate(): void {
    const path = this.filePath!;
    for (let k = this.bounds.rotatedFilesMax; k >= 1; k--) {
      const from = k === 1 ? path : `${path}.${k - 1}`;
      if (existsSync(from)) renameSync(from, `${path}.${k}`);
    }
    this.fileBytes = 0;
  }

  private ringIndex(i: number): number {
    return (this.head - this.count + i + logRingRecordsMax) % logRingRecordsMax;
  }

  private remember(record: LogRecord, lineChars: number): void {
    if (this.count === logRingRecordsMax) this.forgetOldest();
    this.ring[this.head] = record;
    this.ringChars[this.head] = lineChars;
    this.ringCharsTotal += lineChars;
    this.head = (this.head + 1) % logRingRecordsMax;
    this.count++;
    while (this.ringCharsTotal > logRingBytesMax && this.count > 1) this.forgetOldest();
  }

  private forgetOldest(): void {
    const at = this.ringIndex(0);
    this.ringCharsTotal -= this.ringChars[at];
    this.ring[at] = undefined;
    this.count--;
  }
}

/**
 * ModuleLog.read over the files alone, for a reader that does not write the log (host/worker/proxy.ts reads on the
 * main thread what the database's worker wrote): lines the writer still holds are not seen.
 */
export function readLogFiles(filePath: string, n: number | undefined, rotatedFilesMax = logRotatedFilesMax): LogCursor {
  if (n === 0) return new LogCursor([], [].values());
  const files = openLogFiles(filePath, rotatedFilesMax);
  try {
    const start = n === undefined ? { file: 0, offset: 0, midLine: false } : locateTail(files, n, (n + 1) * logLineBytesMax);
    return new LogCursor(files, readRecords(files, start));
  } catch (err) {
    closeLogFiles(files);
    throw err;
  }
}

/** Deletes a log's files (module.log and every rotation): a database reset starts a new log. */
export function removeModuleLog(filePath: string): void {
  rmSync(filePath, { force: true });
  for (let k = 1; k <= logRotatedFilesMax; k++) rmSync(`${filePath}.${k}`, { force: true });
}

/** Records of a `read`: an iterator that owns open files until it is exhausted or closed. */
export class LogCursor implements IterableIterator<LogRecord> {
  constructor(private files: LogFile[], private readonly records: Iterator<LogRecord>) {}

  [Symbol.iterator](): this { return this; }

  next(): IteratorResult<LogRecord> {
    const r = this.records.next();
    if (r.done === true) this.close();
    return r;
  }

  /** Called by `for … of` on break or throw. */
  return(): IteratorResult<LogRecord> {
    this.close();
    return { done: true, value: undefined };
  }

  close(): void {
    closeLogFiles(this.files);
    this.files = [];
  }
}

// ---- Files: a snapshot of the set, the tail located backwards, lines read forwards -------------------------------

/** One open file of the set and its size when opened (appends after that belong to followers). */
interface LogFile { fd: number; sizeBytes: number }
/** Where reading starts: file index (oldest first), byte offset, and whether that offset may be inside a line. */
interface TailStart { file: number; offset: number; midLine: boolean }

/** Opens the files that exist, oldest first: module.log.<max> … module.log.1, module.log. */
function openLogFiles(filePath: string, rotatedFilesMax: number): LogFile[] {
  const files: LogFile[] = [];
  try {
    for (let k = rotatedFilesMax; k >= 0; k--) {
      let fd: number;
      try {
        fd = openSync(k === 0 ? filePath : `${filePath}.${k}`, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      files.push({ fd, sizeBytes: 0 });
      files[files.length - 1].sizeBytes = fstatSync(fd).size;
    }
  } catch (err) {
    closeLogFiles(files);
    throw err;
  }
  return files;
}

function closeLogFiles(files: LogFile[]): void {
  for (const f of files) closeSync(f.fd);
  files.length = 0;
}

/**
 * Scans backwards from the end of the newest file for the start of the `recordsMax`-th non-empty line, reading at most
 * `scanBytesMax` bytes; when that runs out first, reading starts where the scan stopped (inside a line). Only lines
 * ended by a newline count: bytes after a file's last newline are a torn append (every record is written with its
 * newline in one write).
 */
function locateTail(files: LogFile[], recordsMax: number, scanBytesMax: number): TailStart {
  const chunk = Buffer.allocUnsafe(logReadChunkBytes);
  let found = 0;
  let scanned = 0;
  for (let f = files.length - 1; f >= 0; f--) {
    const { fd, sizeBytes } = files[f];
    let lineEnd = -1;          // exclusive end of the line whose start is being looked for (-1: none yet, torn bytes)
    let pos = sizeBytes;       // bytes before pos are not scanned yet
    while (pos > 0) {
      if (scanned >= scanBytesMax) return { file: f, offset: pos, midLine: true };
      const len = Math.min(chunk.length, pos, scanBytesMax - scanned);
      pos -= len;
      scanned += len;
      readAt(fd, chunk, len, pos);
      for (let i = len - 1; i >= 0;) {
        const nl = chunk.lastIndexOf(newline, i);
        if (nl < 0) break;
        const lineStart = pos + nl + 1;
        if (lineEnd > lineStart && ++found >= recordsMax) return { file: f, offset: lineStart, midLine: false };
        lineEnd = pos + nl;
        i = nl - 1;
      }
    }
    if (lineEnd > 0 && ++found >= recordsMax) return { file: f, offset: 0, midLine: false };
  }
  return { file: 0, offset: 0, midLine: false };
}

/**
 * Newline-ended lines from `start` to the end of the newest file (as sized when opened), one chunk in memory at a time.
 * A line longer than logLineBytesMax cannot be a record of ours and is skipped without being held; a line never spans
 * files.
 */
function* readLines(files: LogFile[], start: TailStart): Generator<string> {
  const chunk = Buffer.allocUnsafe(logReadChunkBytes);
  for (let f = start.file; f < files.length; f++) {
    const { fd, sizeBytes } = files[f];
    let pos = f === start.file ? start.offset : 0;
    let skipping = f === start.file && start.midLine;
    let parts: Buffer[] = [];
    let partBytes = 0;
    while (pos < sizeBytes) {
      const len = Math.min(chunk.length, sizeBytes - pos);
      readAt(fd, chunk, len, pos);
      pos += len;
      for (let from = 0; from < len;) {
        const found = chunk.indexOf(newline, from);
        const end = found < 0 || found >= len ? len : found;
        if (!skipping && partBytes + end - from > logLineBytesMax) {
          skipping = true;
          parts = [];
          partBytes = 0;
        }
        if (end === len) {
          if (!skipping) { parts.push(Buffer.from(chunk.subarray(from, end))); partBytes += end - from; }
          break;
        }
        if (!skipping) {
          if (partBytes === 0) yield chunk.toString('utf8', from, end);
          else yield Buffer.concat([...parts, chunk.subarray(from, end)]).toString('utf8');
        }
        parts = [];
        partBytes = 0;
        skipping = false;
        from = end + 1;
      }
    }
    // Bytes after the last newline are a torn append: not a record.
  }
}

/** Records of readLines with their line's length; empty, torn and foreign lines are skipped. */
function* readRecordLines(files: LogFile[], start: TailStart): Generator<{ record: LogRecord; lineChars: number }> {
  for (const line of readLines(files, start)) {
    if (line === '') continue;
    let value: unknown;
    try { value = JSON.parse(line); } catch { continue; }
    if (isRecord(value)) yield { record: value, lineChars: line.length + 1 };
  }
}

function* readRecords(files: LogFile[], start: TailStart): Generator<LogRecord> {
  for (const { record } of readRecordLines(files, start)) yield record;
}

function isRecord(value: unknown): value is LogRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<LogRecord>;
  return typeof r.ts === 'number' && typeof r.level === 'string' && typeof r.message === 'string';
}

function readAt(fd: number, into: Buffer, length: number, position: number): void {
  for (let done = 0; done < length;) {
    const n = readSync(fd, into, done, length - done, position + done);
    if (n === 0) { into.fill(0, done, length); return; }    // the file shrank (truncated by hand): read as empty
    done += n;
  }
}

/** Keeps only the last `keepBytes` of `path` (from the first line start inside them), through a temp file + rename. */
function keepTail(path: string, keepBytes: number): void {
  const src = openSync(path, 'r');
  const tmp = `${path}.tmp`;
  try {
    const size = fstatSync(src).size;
    const chunk = Buffer.allocUnsafe(logReadChunkBytes);
    let pos = Math.max(0, size - keepBytes);
    const out = openSync(tmp, 'w');
    try {
      let atLineStart = pos === 0;
      while (pos < size) {
        const len = Math.min(chunk.length, size - pos);
        readAt(src, chunk, len, pos);
        pos += len;
        let from = 0;
        if (!atLineStart) {
          const nl = chunk.indexOf(newline);
          if (nl < 0 || nl >= len) continue;
          atLineStart = true;
          from = nl + 1;
        }
        for (let at = from; at < len;) at += writeSync(out, chunk, at, len - at);
      }
    } finally {
      closeSync(out);
    }
  } finally {
    closeSync(src);
  }
  renameSync(tmp, path);
}

// ---- Records --------------------------------------------------------------------------------------------------------

/** A record whose texts are within their bounds (the same object when they already are). */
function boundedRecord(record: LogRecord): LogRecord {
  const message = boundedMessage(record.message);
  const long = (s: string | undefined) => s !== undefined && s.length > logRecordFieldCharsMax;
  if (message === record.message && !long(record.filename) && !long(record.function) && !long(record.target)) return record;
  const cut = (s: string | undefined) => (long(s) ? s!.slice(0, logRecordFieldCharsMax) : s);
  return { ...record, message, filename: cut(record.filename), function: cut(record.function), target: cut(record.target) };
}

/** `message` cut to logRecordMessageBytesMax UTF-8 bytes (at a character boundary) plus a marker saying how much. */
function boundedMessage(message: string): string {
  if (message.length * 3 <= logRecordMessageBytesMax) return message;        // a UTF-16 unit is ≤ 3 UTF-8 bytes
  const totalBytes = Buffer.byteLength(message);
  if (totalBytes <= logRecordMessageBytesMax) return message;
  const head = Buffer.from(message.slice(0, logRecordMessageBytesMax));
  let cut = logRecordMessageBytesMax;
  while (cut > 0 && (head[cut] & 0xc0) === 0x80) cut--;                      // not inside a multi-byte character
  return `${head.toString('utf8', 0, cut)}… [message cut: ${totalBytes} bytes, logRecordMessageBytesMax is ${logRecordMessageBytesMax}]`;
}

export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}
