// sql/parser.ts — recursive-descent parser: tokens → AST (sql/ast.ts).
//
// Owns: parseStatements (the `;`-separated /sql language: SELECT, INSERT, UPDATE, DELETE, SET, SHOW) and
// parseSelectOnly (one SELECT, for subscriptions, views' RawSql and RLS filters).
// May call: sql/lexer.ts, sql/ast.ts, sql/errors.ts.
//
// Keywords are case-insensitive and reserved only when unquoted. Every error names the offending token and its
// line/column. The accepted language is a superset of upstream's (NOT and IS NULL are accepted, as the official
// query builder can emit them); narrower contexts (subscriptions) are checked in the planner.

import type {
  ColumnRef, CompareOp, Expr, Join, Literal, LiteralNode, Projection, SelectStmt, Statement, TableRef,
} from './ast.js';
import { SqlError, type SqlPosition } from './errors.js';
import { tokenize, type Token } from './lexer.js';

/** Deepest nesting of parentheses / NOT we parse before calling the query hostile. */
export const exprNestingMax = 128;

const reservedWords = new Set([
  'select', 'from', 'where', 'join', 'inner', 'left', 'right', 'full', 'outer', 'cross', 'on', 'as', 'and', 'or',
  'not', 'is', 'null', 'true', 'false', 'limit', 'insert', 'into', 'values', 'update', 'set', 'delete', 'show',
  'order', 'group', 'having', 'union', 'except', 'intersect', 'offset', 'distinct', 'in', 'like', 'between',
]);

/** Reserved words that continue an expression rather than end it. */
const expressionWords = new Set(['and', 'or', 'not', 'is', 'null', 'true', 'false', 'in', 'like', 'between']);

export function parseStatements(text: string): Statement[] {
  const p = new Parser(tokenize(text));
  const out: Statement[] = [];
  for (;;) {
    while (p.eatOp(';'));
    if (p.peek().kind === 'eof') break;
    out.push(p.statement());
    if (p.peek().kind !== 'eof') p.expectOp(';');
  }
  if (out.length === 0) throw new SqlError('syntax', 'empty SQL query');
  return out;
}

/** Exactly one SELECT (a trailing `;` is allowed). */
export function parseSelectOnly(text: string): SelectStmt {
  const p = new Parser(tokenize(text));
  const t = p.peek();
  if (t.kind === 'eof') throw new SqlError('syntax', 'empty SQL query');
  if (!p.isKeyword(t, 'select')) {
    throw new SqlError('unsupported', 'Unsupported: Non-SELECT queries', t.pos);
  }
  const stmt = p.select();
  p.eatOp(';');
  const end = p.peek();
  if (end.kind !== 'eof') throw new SqlError('unsupported', 'Multiple SQL statements are not supported', end.pos);
  return stmt;
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(ahead = 0): Token {
    return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }
  isKeyword(t: Token, word: string): boolean {
    return t.kind === 'ident' && t.text.toLowerCase() === word;
  }
  private eatKeyword(word: string): boolean {
    if (this.isKeyword(this.peek(), word)) { this.i++; return true; }
    return false;
  }
  private expectKeyword(word: string): Token {
    const t = this.peek();
    if (!this.isKeyword(t, word)) throw this.unexpected(t, `\`${word.toUpperCase()}\``);
    return this.next();
  }
  eatOp(op: string): boolean {
    const t = this.peek();
    if (t.kind === 'op' && t.text === op) { this.i++; return true; }
    return false;
  }
  expectOp(op: string): Token {
    const t = this.peek();
    if (t.kind !== 'op' || t.text !== op) throw this.unexpected(t, `\`${op}\``);
    return this.next();
  }
  private unexpected(t: Token, expected: string): SqlError {
    return new SqlError('syntax', `expected ${expected}, found ${describeToken(t)}`, t.pos);
  }

  statement(): Statement {
    const t = this.peek();
    if (t.kind === 'ident') {
      switch (t.text.toLowerCase()) {
        case 'select': return this.select();
        case 'insert': return this.insert();
        case 'update': return this.update();
        case 'delete': return this.delete();
        case 'set': return this.set();
        case 'show': return this.show();
      }
    }
    throw this.unexpected(t, 'SELECT, INSERT, UPDATE, DELETE, SET or SHOW');
  }

  select(): SelectStmt {
    const start = this.expectKeyword('select');
    const projection = this.projection();
    if (!this.isKeyword(this.peek(), 'from')) {
      if (this.peek().kind === 'eof') throw new SqlError('syntax', 'A FROM clause is required', this.peek().pos);
      throw this.unexpected(this.peek(), '`FROM`');
    }
    this.next();
    const from = this.tableRef();
    const joins: Join[] = [];
    for (;;) {
      const t = this.peek();
      if (this.isKeyword(t, 'inner')) { this.next(); this.expectKeyword('join'); }
      else if (this.isKeyword(t, 'join')) this.next();
      else if (['left', 'right', 'full', 'cross', 'outer'].some((w) => this.isKeyword(t, w))) {
        throw new SqlError('unsupported', 'Non-inner joins are not supported', t.pos);
      } else if (t.kind === 'op' && t.text === ',') {
        throw new SqlError('unsupported', 'Implicit joins are not supported', t.pos);
      } else break;
      const right = this.tableRef();
      const on = this.eatKeyword('on') ? this.expr() : undefined;
      joins.push({ right, on, pos: t.pos });
    }
    const where = this.eatKeyword('where') ? this.expr() : undefined;
    let limit: bigint | undefined;
    if (this.eatKeyword('limit')) {
      const n = this.peek();
      if (n.kind !== 'number' || !/^\d+$/.test(n.text)) throw this.unexpected(n, 'a non-negative integer after LIMIT');
      this.next();
      limit = BigInt(n.text);
    }
    this.rejectTrailingClause();
    return { kind: 'select', projection, from, joins, where, limit, pos: start.pos };
  }

  /** Gives the upstream-style "Unsupported" answer for clauses we recognise but do not implement. */
  private rejectTrailingClause(): void {
    const t = this.peek();
    for (const w of ['order', 'group', 'having', 'union', 'except', 'intersect', 'offset']) {
      if (this.isKeyword(t, w)) throw new SqlError('unsupported', `Unsupported: ${w.toUpperCase()}`, t.pos);
    }
  }

  private projection(): Projection {
    const t = this.peek();
    if (this.isKeyword(t, 'distinct')) throw new SqlError('unsupported', 'Unsupported: DISTINCT', t.pos);
    if (t.kind === 'op' && t.text === '*') { this.next(); return { kind: 'star', qualifier: undefined, pos: t.pos }; }
    if (this.isKeyword(t, 'count') && this.peek(1).kind === 'op' && this.peek(1).text === '(') {
      this.next(); this.next();
      this.expectOp('*');
      this.expectOp(')');
      if (!this.eatKeyword('as')) {
        throw new SqlError('unsupported', 'Aggregate expressions must have column aliases', this.peek().pos);
      }
      return { kind: 'count', alias: this.name('an alias for COUNT(*)'), pos: t.pos };
    }
    // `path.*` or a column list.
    const items: { column: ColumnRef; alias: string | undefined }[] = [];
    for (;;) {
      const itemPos = this.peek().pos;
      const itemStart = this.i;
      if (this.peek().kind !== 'ident' && this.peek().kind !== 'qident') this.rejectProjectionExpr(itemStart);
      const path = [this.name('a column name, `*` or `table.*`')];
      let star = false;
      while (this.eatOp('.')) {
        if (this.eatOp('*')) { star = true; break; }
        path.push(this.name('a name after `.`'));
      }
      if (star) {
        if (items.length > 0 || this.peek().kind === 'op' && this.peek().text === ',') {
          throw new SqlError('unsupported', 'Mixed wildcard projections are not supported', itemPos);
        }
        return { kind: 'star', qualifier: path.join('.'), pos: itemPos };
      }
      const column = columnFromPath(path, itemPos);
      // `AS` is optional before an alias, as in sqlparser.
      const next = this.peek();
      const implicitAlias = next.kind === 'qident' || (next.kind === 'ident' && !this.isReserved(next));
      const alias = this.eatKeyword('as') || implicitAlias ? this.name('an alias') : undefined;
      if (!this.atProjectionItemEnd()) this.rejectProjectionExpr(itemStart);
      items.push({ column, alias });
      if (!this.eatOp(',')) break;
      if (this.peek().kind === 'op' && this.peek().text === '*') {
        throw new SqlError('unsupported', 'Mixed wildcard projections are not supported', this.peek().pos);
      }
    }
    return { kind: 'columns', items, pos: t.pos };
  }

  /** After a select item's column and alias: the next item, a clause or the end (else the item is an expression). */
  private atProjectionItemEnd(): boolean {
    const t = this.peek();
    if (t.kind === 'op') return t.text === ',' || t.text === ';';
    return t.kind === 'eof' || (this.isReserved(t) && !expressionWords.has(t.text.toLowerCase()));
  }

  /**
   * A select item that is an expression, not a column (`CASE …`, `a + 1`, a literal): upstream's "Unsupported
   * projection expression: <the expression>", the expression being the item's tokens up to the next top-level `,`,
   * AS or FROM, printed as sqlparser prints them (single spaces, none inside parentheses or before a comma).
   */
  private rejectProjectionExpr(start: number): never {
    const pos = this.tokens[start]!.pos;
    let depth = 0;
    let end = start;
    for (; end < this.tokens.length; end++) {
      const t = this.tokens[end]!;
      const atTop = depth === 0 && (this.isKeyword(t, 'from') || this.isKeyword(t, 'as') || (t.kind === 'op' && (t.text === ',' || t.text === ';')));
      if (t.kind === 'eof' || atTop) break;
      if (t.kind === 'op' && t.text === '(') depth++;
      if (t.kind === 'op' && t.text === ')') depth--;
    }
    let text = '';
    for (let k = start; k < end; k++) {
      const t = this.tokens[k]!;
      const prev = this.tokens[k - 1];
      const glued = k === start || (t.kind === 'op' && (t.text === ')' || t.text === ',')) || (prev?.kind === 'op' && prev.text === '(') ||
        (t.kind === 'op' && t.text === '(' && prev?.kind === 'ident');
      text += (glued ? '' : ' ') + tokenSource(t);
    }
    throw new SqlError('unsupported', `Unsupported projection expression: ${text}`, pos);
  }

  private tableRef(): TableRef {
    const pos = this.peek().pos;
    const path = [this.name('a table name')];
    while (this.eatOp('.')) path.push(this.name('a name after `.`'));
    const table = path.join('.');
    let alias = table;
    if (this.eatKeyword('as')) alias = this.name('an alias after AS');
    else if (this.peek().kind === 'qident' || (this.peek().kind === 'ident' && !this.isReserved(this.peek()))) {
      alias = this.name('an alias');
    }
    return { table, alias, pos };
  }

  private isReserved(t: Token): boolean {
    return t.kind === 'ident' && reservedWords.has(t.text.toLowerCase());
  }

  /** An identifier: plain (not a reserved word) or quoted. */
  private name(what: string): string {
    const t = this.peek();
    if (t.kind === 'qident' || (t.kind === 'ident' && !this.isReserved(t))) { this.next(); return t.text; }
    throw this.unexpected(t, what);
  }

  private insert(): Statement {
    const start = this.expectKeyword('insert');
    this.expectKeyword('into');
    const table = this.tableRef();
    let columns: { name: string; pos: SqlPosition }[] | undefined;
    if (this.eatOp('(')) {
      columns = [];
      do { const pos = this.peek().pos; columns.push({ name: this.name('a column name'), pos }); } while (this.eatOp(','));
      this.expectOp(')');
    }
    this.expectKeyword('values');
    const rows: LiteralNode[][] = [];
    do {
      this.expectOp('(');
      const row: LiteralNode[] = [];
      do row.push(this.literalNode()); while (this.eatOp(','));
      this.expectOp(')');
      rows.push(row);
    } while (this.eatOp(','));
    return { kind: 'insert', table, columns, rows, pos: start.pos };
  }

  private update(): Statement {
    const start = this.expectKeyword('update');
    const table = this.tableRef();
    this.expectKeyword('set');
    const assignments: { column: string; value: LiteralNode; pos: SqlPosition }[] = [];
    do {
      const pos = this.peek().pos;
      const path = [this.name('a column name')];
      while (this.eatOp('.')) path.push(this.name('a name after `.`'));
      if (path.length > 1 && path.slice(0, -1).join('.') !== table.alias) {
        throw new SqlError('unresolved', `\`${path.slice(0, -1).join('.')}\` is not in scope`, pos);
      }
      this.expectOp('=');
      assignments.push({ column: path[path.length - 1]!, value: this.literalNode(), pos });
    } while (this.eatOp(','));
    const where = this.eatKeyword('where') ? this.expr() : undefined;
    return { kind: 'update', table, assignments, where, pos: start.pos };
  }

  private delete(): Statement {
    const start = this.expectKeyword('delete');
    this.expectKeyword('from');
    const table = this.tableRef();
    const t = this.peek();
    if (this.isKeyword(t, 'join') || (t.kind === 'op' && t.text === ',')) {
      throw new SqlError('unsupported', 'Multi-table DELETE is not supported', t.pos);
    }
    const where = this.eatKeyword('where') ? this.expr() : undefined;
    return { kind: 'delete', table, where, pos: start.pos };
  }

  private set(): Statement {
    const start = this.expectKeyword('set');
    const name = this.name('a variable name');
    if (!this.eatOp('=') && !this.eatKeyword('to')) throw this.unexpected(this.peek(), '`=` or `TO`');
    return { kind: 'set', name, value: this.literalNode(), pos: start.pos };
  }

  private show(): Statement {
    const start = this.expectKeyword('show');
    return { kind: 'show', name: this.name('a variable name'), pos: start.pos };
  }

  /** A literal or `:param` (VALUES, SET). */
  private literalNode(): LiteralNode {
    const t = this.peek();
    if (t.kind === 'param') { this.next(); return { kind: 'param', name: t.text, pos: t.pos }; }
    const lit = this.literal();
    if (lit === undefined) throw this.unexpected(t, 'a literal value');
    return { kind: 'lit', lit, pos: t.pos };
  }

  /** Consumes and returns a literal if one starts here. */
  private literal(): Literal | undefined {
    const t = this.peek();
    switch (t.kind) {
      case 'number': this.next(); return { type: 'number', text: t.text };
      case 'string': this.next(); return { type: 'string', text: t.text };
      case 'hex': this.next(); return { type: 'hex', text: t.text };
      case 'op': {
        if (t.text !== '-' && t.text !== '+') return undefined;
        const n = this.peek(1);
        if (n.kind !== 'number') throw this.unexpected(n, `a number after \`${t.text}\``);
        this.next(); this.next();
        return { type: 'number', text: t.text === '-' ? `-${n.text}` : n.text };
      }
      case 'ident': {
        const w = t.text.toLowerCase();
        if (w === 'true' || w === 'false') { this.next(); return { type: 'bool', value: w === 'true' }; }
        if (w === 'null') { this.next(); return { type: 'null' }; }
        return undefined;
      }
      default: return undefined;
    }
  }

  expr(): Expr {
    if (++this.depth > exprNestingMax) {
      throw new SqlError('limit', `expression nested deeper than ${exprNestingMax} levels`, this.peek().pos);
    }
    try {
      let left = this.andExpr();
      for (;;) {
        const t = this.peek();
        if (!this.eatKeyword('or')) return left;
        left = { kind: 'or', left, right: this.andExpr(), pos: t.pos };
      }
    } finally {
      this.depth--;
    }
  }

  private andExpr(): Expr {
    let left = this.notExpr();
    for (;;) {
      const t = this.peek();
      if (!this.eatKeyword('and')) return left;
      left = { kind: 'and', left, right: this.notExpr(), pos: t.pos };
    }
  }

  private notExpr(): Expr {
    const t = this.peek();
    if (this.eatKeyword('not')) {
      if (++this.depth > exprNestingMax) {
        throw new SqlError('limit', `expression nested deeper than ${exprNestingMax} levels`, t.pos);
      }
      try { return { kind: 'not', expr: this.notExpr(), pos: t.pos }; } finally { this.depth--; }
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.operand();
    const t = this.peek();
    if (t.kind === 'op' && ['=', '<>', '!=', '<', '<=', '>', '>='].includes(t.text)) {
      this.next();
      const op = (t.text === '!=' ? '<>' : t.text) as CompareOp;
      return { kind: 'cmp', op, left, right: this.operand(), pos: t.pos };
    }
    if (this.eatKeyword('is')) {
      const negated = this.eatKeyword('not');
      this.expectKeyword('null');
      return { kind: 'isNull', expr: left, negated, pos: t.pos };
    }
    for (const w of ['in', 'like', 'between']) {
      if (this.isKeyword(t, w)) throw new SqlError('unsupported', `Unsupported: ${w.toUpperCase()}`, t.pos);
    }
    return left;
  }

  private operand(): Expr {
    const t = this.peek();
    if (t.kind === 'op' && t.text === '(') {
      this.next();
      const inner = this.expr();
      this.expectOp(')');
      return inner;
    }
    if (t.kind === 'param') { this.next(); return { kind: 'param', name: t.text, pos: t.pos }; }
    const lit = this.literal();
    if (lit !== undefined) return { kind: 'lit', lit, pos: t.pos };
    if (t.kind === 'ident' || t.kind === 'qident') {
      if (t.kind === 'ident' && this.peek(1).kind === 'op' && this.peek(1).text === '(') {
        throw new SqlError('unsupported', `Unsupported: function call \`${t.text}(…)\``, t.pos);
      }
      const path = [this.name('a column name')];
      while (this.eatOp('.')) path.push(this.name('a name after `.`'));
      return columnFromPath(path, t.pos);
    }
    throw this.unexpected(t, 'a column, literal or `(`');
  }
}

function columnFromPath(path: string[], pos: SqlPosition): ColumnRef {
  const name = path[path.length - 1]!;
  const qualifier = path.length > 1 ? path.slice(0, -1).join('.') : undefined;
  return { kind: 'col', qualifier, name, pos };
}

function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'end of input';
    case 'string': return `string '${t.text}'`;
    case 'qident': return `"${t.text}"`;
    case 'hex': return `hex literal 0x${t.text}`;
    case 'param': return `:${t.text}`;
    default: return `\`${t.text}\``;
  }
}

/** A token as written in SQL (sqlparser's Display of it). */
function tokenSource(t: Token): string {
  switch (t.kind) {
    case 'string': return `'${t.text.replaceAll("'", "''")}'`;
    case 'qident': return `"${t.text.replaceAll('"', '""')}"`;
    case 'hex': return `X'${t.text}'`;
    case 'param': return `:${t.text}`;
    default: return t.text;
  }
}
