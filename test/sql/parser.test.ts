// Lexer and parser: accepted shapes and error positions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SqlError } from '../../src/sql/errors.js';
import { parseSelectOnly, parseStatements } from '../../src/sql/parser.js';

function syntaxError(text: string, message: RegExp, line: number, column: number): void {
  assert.throws(() => parseStatements(text), (e: unknown) => {
    assert.ok(e instanceof SqlError, String(e));
    assert.match(e.message, message);
    assert.deepEqual([e.position?.line, e.position?.column], [line, column], e.message);
    return true;
  });
}

test('SELECT shapes', () => {
  const s = parseSelectOnly('select T.* from "Tbl" as T inner join u ON t.a = u.b where (t.x >= -5 and not u.y <> \'it\'\'s\') or t.z is not null;');
  assert.equal(s.projection.kind, 'star');
  assert.equal(s.projection.kind === 'star' && s.projection.qualifier, 'T');
  assert.deepEqual([s.from.table, s.from.alias], ['Tbl', 'T']);
  assert.deepEqual([s.joins[0]!.right.table, s.joins[0]!.right.alias], ['u', 'u']);
  assert.equal(s.where?.kind, 'or');
  const w = s.where as any;
  assert.equal(w.left.kind, 'and');
  assert.deepEqual(w.left.left.right.lit, { type: 'number', text: '-5' });
  assert.deepEqual(w.left.right.expr.right.lit, { type: 'string', text: "it's" });
  assert.equal(w.right.kind, 'isNull');
  assert.equal(w.right.negated, true);
});

test('literals: hex forms, big integers, floats, params, booleans', () => {
  const s = parseSelectOnly("SELECT * FROM t WHERE a = 0xDEADbeef AND b = X'0a0B' AND c = 123456789012345678901234567890 AND d = 1.5e-3 AND e = :sender AND f = TRUE AND g = NULL");
  const lits: unknown[] = [];
  const walk = (e: any): void => { if (e.kind === 'and') { walk(e.left); walk(e.right); } else lits.push(e.right.kind === 'lit' ? e.right.lit : e.right); };
  walk(s.where);
  assert.deepEqual(lits.map((l: any) => l.type ?? l.kind), ['hex', 'hex', 'number', 'number', 'param', 'bool', 'null']);
  assert.deepEqual((lits[0] as any).text, 'DEADbeef');
  assert.deepEqual((lits[1] as any).text, '0a0B');
  assert.equal((lits[2] as any).text, '123456789012345678901234567890');
});

test('dotted table names and quoted identifiers keep case', () => {
  const s = parseSelectOnly('SELECT "lib"."libData".* FROM "lib"."libData" WHERE "lib"."libData"."Col" = 1');
  assert.equal(s.from.table, 'lib.libData');
  assert.equal(s.projection.kind === 'star' && s.projection.qualifier, 'lib.libData');
  assert.deepEqual([(s.where as any).left.qualifier, (s.where as any).left.name], ['lib.libData', 'Col']);
});

test('DML, SET, SHOW and multiple statements', () => {
  const stmts = parseStatements(`INSERT INTO t (a, "B") VALUES (1, 'x'), (2, 'y');
    UPDATE t SET a = 5, b = :sender WHERE a = 1;
    DELETE FROM t WHERE a = 2; SET row_limit TO 10; SHOW row_limit;;`);
  assert.deepEqual(stmts.map((s) => s.kind), ['insert', 'update', 'delete', 'set', 'show']);
  const ins = stmts[0] as any;
  assert.deepEqual(ins.columns.map((c: any) => c.name), ['a', 'B']);
  assert.equal(ins.rows.length, 2);
  assert.equal((stmts[1] as any).assignments[1].value.kind, 'param');
});

test('syntax errors carry line, column and the token', () => {
  syntaxError('SELECT * FROM', /expected a table name, found end of input/, 1, 14);
  syntaxError('SELECT * FROM t\nWHERE a = = 1', /expected a column, literal or `\(`, found `=`/, 2, 11);
  syntaxError("SELECT * FROM t WHERE a = 'oops", /unterminated string literal/, 1, 27);
  syntaxError('SELECT * FROM t WHERE a ~ 1', /unexpected character `~`/, 1, 25);
  syntaxError('SELECT * FROM t LEFT JOIN u ON t.a = u.a', /Non-inner joins are not supported/, 1, 17);
  syntaxError('SELECT * FROM t, u', /Implicit joins are not supported/, 1, 16);
  syntaxError('SELECT * FROM t ORDER BY a', /Unsupported: ORDER/, 1, 17);
  syntaxError('SELECT COUNT(*) FROM t', /Aggregate expressions must have column aliases/, 1, 17);
  syntaxError('SELECT * FROM t WHERE a = 0xZZ', /hex literal/, 1, 27);
  syntaxError('DROP TABLE t', /expected SELECT, INSERT, UPDATE, DELETE, SET or SHOW, found `DROP`/, 1, 1);
  assert.throws(() => parseStatements(' ;; '), /empty SQL query/);
});

test('subscription parser rejects DML and multiple statements', () => {
  assert.throws(() => parseSelectOnly('DELETE FROM t'), /Unsupported: Non-SELECT queries/);
  assert.throws(() => parseSelectOnly('SELECT * FROM t; SELECT * FROM u'), /Multiple SQL statements are not supported/);
});

test('nesting limit', () => {
  assert.throws(() => parseStatements(`SELECT * FROM t WHERE ${'('.repeat(500)}a = 1${')'.repeat(500)}`), /nested deeper/);
});
