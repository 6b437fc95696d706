// sql/lexer.ts — splits SQL text into tokens (PostgreSQL lexical rules, the subset SpacetimeDB accepts).
//
// Owns: Token, tokenize(). Keywords are recognised case-insensitively by the parser; the lexer only separates
// plain identifiers (case kept as written), "quoted identifiers" ("" escapes a quote), 'strings' ('' escapes),
// numbers (kept as text: the column type decides how they parse), hex literals (0x… and X'…', kept as digits),
// parameters (:sender) and punctuation/operators.
// May call: sql/errors.ts.

import { SqlError, type SqlPosition } from './errors.js';

/** Longest query text accepted (upstream's subscription limit; also applied to /sql). */
export const queryTextMaxBytes = 50_000;

export type TokenKind =
  | 'ident'      // plain identifier or keyword; `text` as written
  | 'qident'     // "quoted identifier"; `text` unescaped
  | 'string'     // 'string'; `text` unescaped
  | 'number'     // digits with optional fraction/exponent; `text` as written
  | 'hex'        // 0xAB / X'AB'; `text` = the hex digits only
  | 'param'      // :name; `text` = name
  | 'op'         // = <> != < <= > >= * , . ( ) ; + -
  | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  pos: SqlPosition;
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isHexDigit = (c: string): boolean => /[0-9a-fA-F]/.test(c);
const isIdentStart = (c: string): boolean => /[A-Za-z_]/.test(c) || c > '\x7f';
const isIdentPart = (c: string): boolean => /[A-Za-z0-9_$]/.test(c) || c > '\x7f';

export function tokenize(text: string): Token[] {
  if (Buffer.byteLength(text, 'utf8') > queryTextMaxBytes) {
    throw new SqlError('limit', `query text is longer than ${queryTextMaxBytes} bytes`);
  }
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const posAt = (offset: number): SqlPosition => ({ offset, line, column: offset - lineStart + 1 });

  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') { i++; line++; lineStart = i; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (c === '-' && text[i + 1] === '-') {                       // -- comment to end of line
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    const pos = posAt(i);
    if ((c === 'x' || c === 'X') && text[i + 1] === "'") {       // X'…' hex
      const end = text.indexOf("'", i + 2);
      if (end < 0) throw new SqlError('syntax', 'unterminated hex literal', pos);
      const digits = text.slice(i + 2, end);
      if (![...digits].every(isHexDigit)) throw new SqlError('syntax', `invalid hex literal X'${digits}'`, pos);
      tokens.push({ kind: 'hex', text: digits, pos });
      i = end + 1;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < text.length && isIdentPart(text[j]!)) j++;
      tokens.push({ kind: 'ident', text: text.slice(i, j), pos });
      i = j;
      continue;
    }
    if (c === '"' || c === "'") {
      const [value, end] = readQuoted(text, i, c, pos);
      tokens.push({ kind: c === '"' ? 'qident' : 'string', text: value, pos });
      // Strings may span lines: keep line numbers right.
      for (let k = i; k < end; k++) if (text[k] === '\n') { line++; lineStart = k + 1; }
      i = end;
      continue;
    }
    if (c === '0' && (text[i + 1] === 'x' || text[i + 1] === 'X')) {
      let j = i + 2;
      while (j < text.length && isHexDigit(text[j]!)) j++;
      if (j === i + 2) throw new SqlError('syntax', 'hex literal `0x` has no digits', pos);
      if (j < text.length && isIdentPart(text[j]!)) {
        throw new SqlError('syntax', `invalid hex literal \`${text.slice(i, j + 1)}\``, pos);
      }
      tokens.push({ kind: 'hex', text: text.slice(i + 2, j), pos });
      i = j;
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(text[i + 1] ?? ''))) {
      const j = scanNumber(text, i);
      if (j < text.length && isIdentStart(text[j]!)) {
        throw new SqlError('syntax', `invalid number \`${text.slice(i, j + 1)}\``, pos);
      }
      tokens.push({ kind: 'number', text: text.slice(i, j), pos });
      i = j;
      continue;
    }
    if (c === '$' && isDigit(text[i + 1] ?? '')) {
      // A positional parameter (what a prepared statement would bind): upstream's parser reads it and refuses it.
      let j = i + 1;
      while (j < text.length && isDigit(text[j]!)) j++;
      throw new SqlError('unsupported', `Unsupported literal expression: ${text.slice(i, j)}`, pos);
    }
    if (c === ':') {
      let j = i + 1;
      while (j < text.length && isIdentPart(text[j]!)) j++;
      if (j === i + 1) throw new SqlError('syntax', 'expected a parameter name after `:`', pos);
      tokens.push({ kind: 'param', text: text.slice(i + 1, j), pos });
      i = j;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '<>' || two === '!=' || two === '<=' || two === '>=') {
      tokens.push({ kind: 'op', text: two, pos });
      i += 2;
      continue;
    }
    if ('=<>*,.();+-'.includes(c)) {
      tokens.push({ kind: 'op', text: c, pos });
      i++;
      continue;
    }
    throw new SqlError('syntax', `unexpected character \`${c}\``, pos);
  }
  tokens.push({ kind: 'eof', text: '', pos: posAt(i) });
  return tokens;
}

/** Reads a quoted run starting at `start` (the opening quote); a doubled quote is an escaped quote. */
function readQuoted(text: string, start: number, quote: string, pos: SqlPosition): [string, number] {
  let out = '';
  let i = start + 1;
  for (;;) {
    const end = text.indexOf(quote, i);
    if (end < 0) {
      throw new SqlError('syntax', quote === '"' ? 'unterminated quoted identifier' : 'unterminated string literal', pos);
    }
    out += text.slice(i, end);
    if (text[end + 1] === quote) { out += quote; i = end + 2; continue; }
    return [out, end + 1];
  }
}

function scanNumber(text: string, start: number): number {
  let j = start;
  while (j < text.length && isDigit(text[j]!)) j++;
  if (text[j] === '.' && j + 1 <= text.length) {
    j++;
    while (j < text.length && isDigit(text[j]!)) j++;
  }
  if ((text[j] === 'e' || text[j] === 'E')) {
    let k = j + 1;
    if (text[k] === '+' || text[k] === '-') k++;
    if (isDigit(text[k] ?? '')) {
      while (k < text.length && isDigit(text[k]!)) k++;
      j = k;
    }
  }
  return j;
}
