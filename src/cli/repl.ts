// cli/repl.ts — `spacetime sql <database> --interactive`: a line-by-line SQL shell. Each line is one request to the
// server's /sql route; results print as `spacetime sql` prints them, followed by the statement statistics and the round
// trip time, as upstream's REPL does. `.exit` leaves, `.clear` clears the screen, Ctrl-C / Ctrl-D end with "Aborted!".
// History is kept in ~/.stdb.history.txt (upstream's file).
//
// Owns: the prompt loop, its history file and the statistics line.
// May call: node:readline, cli/sqlformat, cli/json (types). The HTTP request is the caller's (`execute`).

import { readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { LosslessJson } from './json.js';
import { formatSqlResult } from './sqlformat.js';

/** One statement's result as the /sql route returns it (the fields the shell prints). */
export interface SqlStatementResult {
  schema: LosslessJson;
  rows: LosslessJson[];
  total_duration_micros?: LosslessJson;
  stats?: { rows_inserted?: LosslessJson; rows_deleted?: LosslessJson; rows_updated?: LosslessJson };
}

/** Lines of history kept between sessions. */
const historyLinesMax = 1000;

const banner = `\
┌──────────────────────────────────────────────────────────┐
│ .exit: Exit the REPL                                     │
│ .clear: Clear the Screen                                 │
└──────────────────────────────────────────────────────────┘`;

export interface ReplOptions {
  database: string;
  /** Runs one line of SQL on the server; throws with the server's message on failure. */
  execute(sql: string): Promise<SqlStatementResult[]>;
  /** Prints the server's JSON as is instead of tables (`--format json`). */
  executeJson?: (sql: string) => Promise<string>;
  historyPath?: string;
}

export async function runSqlRepl(options: ReplOptions): Promise<void> {
  const historyPath = options.historyPath ?? path.join(homedirOrTemp(), '.stdb.history.txt');
  const input = process.stdin;
  const output = process.stdout;
  const terminal = input.isTTY === true;
  let history = loadHistory(historyPath);
  const rl = createInterface({ input, output, terminal, history: [...history], historySize: historyLinesMax });
  rl.on('history', (lines: string[]) => { history = lines; });   // a terminal keeps its own (most recent first)
  const green = output.isTTY === true ? (s: string) => `\x1b[32m${s}\x1b[0m` : (s: string) => s;
  const red = process.stderr.isTTY === true ? (s: string) => `\x1b[31m${s}\x1b[0m` : (s: string) => s;
  output.write(`${banner}\n`);
  rl.setPrompt(green(`🪐${options.database}>`));
  let aborted = true;                                   // unless `.exit`: Ctrl-C, Ctrl-D or the end of piped input
  rl.on('SIGINT', () => rl.close());
  rl.prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '.exit') { aborted = false; break; }
    if (line === '.clear') {
      output.write('\x1b[2J\x1b[H');
    } else if (line !== '') {
      if (!terminal) history.unshift(line);
      try {
        output.write(`${options.executeJson !== undefined ? await options.executeJson(line) : await runLine(options, line)}\n`);
      } catch (err) {
        process.stderr.write(`${red(err instanceof Error ? err.message : String(err))}\n`);
      }
    }
    rl.prompt();
  }
  rl.close();
  if (aborted) output.write(`\n${red('Aborted!')}\n`);
  saveHistory(historyPath, history);
}

async function runLine(options: ReplOptions, sql: string): Promise<string> {
  const startedMs = performance.now();
  const results = await options.execute(sql);
  const roundTripMicros = (performance.now() - startedMs) * 1000;
  const parts = results.length === 0 ? ['(0 rows) [server: 0.00ns]'] : results.map(formatStatement);
  return `${parts.join('\n\n')}\nRoundtrip time: ${formatDuration(roundTripMicros)}\n`;
}

/** A statement's table (when it has columns) and its statistics line: `(2 rows) [inserted: 1, server: 1.20ms]`. */
function formatStatement(result: SqlStatementResult): string {
  const elements = (result.schema as { elements?: unknown[] }).elements ?? [];
  const table = elements.length > 0 ? `${formatSqlResult(result)}\n` : '';
  const count = result.rows.length;
  const info: string[] = [];
  const inserted = Number(result.stats?.rows_inserted ?? 0);
  const deleted = Number(result.stats?.rows_deleted ?? 0);
  const updated = Number(result.stats?.rows_updated ?? 0);
  if (inserted !== 0) info.push(`inserted: ${inserted}`);
  if (deleted !== 0) info.push(`deleted: ${deleted}`);
  if (updated !== 0) info.push(`updated: ${updated}`);
  info.push(`server: ${formatDuration(Number(result.total_duration_micros ?? 0))}`);
  return `${table}(${count} ${count === 1 ? 'row' : 'rows'}) [${info.join(', ')}]`;
}

/** A duration the way the upstream CLI prints one (`{:.2?}`): 512.00ns, 3.40µs, 1.25ms, 2.00s. */
export function formatDuration(micros: number): string {
  if (micros >= 1e6) return `${(micros / 1e6).toFixed(2)}s`;
  if (micros >= 1e3) return `${(micros / 1e3).toFixed(2)}ms`;
  if (micros >= 1) return `${micros.toFixed(2)}µs`;
  return `${(micros * 1e3).toFixed(2)}ns`;
}

function homedirOrTemp(): string {
  try { return homedir(); } catch { return tmpdir(); }
}

/** Most recent first, as readline keeps it. A missing or unreadable file starts an empty history. */
function loadHistory(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').reverse().slice(0, historyLinesMax);
  } catch {
    return [];
  }
}

function saveHistory(file: string, history: string[]): void {
  try {
    writeFileSync(file, `${history.slice(0, historyLinesMax).reverse().join('\n')}\n`);
  } catch {
    // History is a convenience: an unwritable home directory must not fail the session.
  }
}
