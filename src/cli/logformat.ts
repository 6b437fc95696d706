// cli/logformat.ts — one module log record (the NDJSON lines of GET /v1/database/:db/logs) as `spacetime logs`
// prints it; `spacetime dev` prints its log streams the same way.
// Owns: the LogRecord shape the CLI reads and its text form. May call: sats/text (timestamps).
import { rfc3339Text } from '../sats/text.js';

export interface LogRecord {
  level: string;
  ts?: number | bigint;
  target?: string;
  filename?: string;
  line_number?: number;
  function?: string;
  message: string;
  trace?: { module_name?: string; func_name?: string }[];
}

// The host writes its own records (system messages, not the module's) with this in `function` and `filename`; they
// print without a source location.
const logSentinel = '__spacetimedb__';

/** `<ts> LEVEL: <function> <file>:<line>: <message>` (chrono Debug timestamp, level right-aligned to 5). */
export function formatLogRecord(record: LogRecord): string {
  let line = '';
  if (record.ts !== undefined && record.ts !== null) line += rfc3339Text(BigInt(record.ts)).replace('+00:00', 'Z') + ' ';
  line += `${record.level.toUpperCase().padStart(5)}: `;
  let colon = false;
  if (record.function !== undefined && record.function !== null && record.function !== logSentinel) {
    line += record.function;
    colon = true;
  }
  if (record.filename !== undefined && record.filename !== null && record.filename !== logSentinel) {
    if (colon) line += ' ';
    line += record.filename;
    if (record.line_number !== undefined && record.line_number !== null) line += `:${record.line_number}`;
    colon = true;
  }
  if (colon) line += ': ';
  line += record.message + '\n';
  for (const frame of record.trace ?? []) {
    line += '    in ';
    if (frame.module_name) line += `${frame.module_name} :: `;
    if (frame.func_name) line += `${frame.func_name}\n`;
  }
  return line;
}
