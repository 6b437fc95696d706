// OR chains of `column = constant` evaluated as one set lookup (sql/typecheck.ts equalitySetPredicate; session 12
// attack probes: a 2,500-term chain cost ~1 µs per term per row, for every subscribed query at every change). The set
// path must answer exactly what the terms answer one by one: each query here is compared with the union of one query
// per term, over every column type it accepts, also with another term in front of the chain.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { executeSql, type SqlOptions } from '../../src/sql/execute.js';
import { makeStore, owner } from './fixture.js';

const asOwner: SqlOptions = { sender: owner, isOwner: true };

function seeded() {
  const ds = makeStore();
  const target = { view: ds, beginMutTx: () => ds.beginMutTx() };
  const people = Array.from({ length: 40 }, (_, i) => `(0, 'p${i}', ${20 + (i % 7)}, 0x05, NULL, '2000-01-01T00:00:00Z')`).join(', ');
  const plain = Array.from({ length: 60 }, (_, i) => `(${i}, ${i % 9})`).join(', ');
  executeSql(`INSERT INTO person (id, name, age, owner, nick, born_at) VALUES ${people}; INSERT INTO plain VALUES ${plain}`, target, asOwner);
  return target;
}

function rowsOf(target: ReturnType<typeof seeded>, query: string): string[] {
  const [r] = executeSql(query, target, asOwner);
  return r!.rows.map((row) => JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))).sort();
}

test('an OR chain of equalities answers the same as term by term, for u32, u8, u64 and string columns', () => {
  const target = seeded();
  const chains: [string, string, string][] = [
    ['plain', 'a', Array.from({ length: 30 }, (_, i) => `a = ${i * 3}`).join(' OR ')],
    ['plain', 'b', 'b = 1 OR 2 = b OR b = 8 OR b = 100 OR b = 1'],
    ['person', 'age', 'age = 20 OR age = 22 OR age = 26 OR age = 99'],
    ['person', 'id', Array.from({ length: 12 }, (_, i) => `id = ${i * 4}`).join(' OR ')],
    ['person', 'name', "name = 'p1' OR name = 'p7' OR name = 'p39' OR name = 'nobody' OR name = 'P1'"],
  ];
  for (const [table, _column, chain] of chains) {
    const never = table === 'plain' ? '(a = 999 AND b = 999)' : "(name = 'x' AND age = 1)";
    const viaSet = rowsOf(target, `SELECT * FROM ${table} WHERE ${chain}`);
    // Term by term: each term a query of its own (no OR, so no set), their rows united.
    const termByTerm = [...new Set(chain.split(' OR ').flatMap((term) => rowsOf(target, `SELECT * FROM ${table} WHERE ${term}`)))].sort();
    assert.deepEqual(viaSet, termByTerm, chain);
    // Another term anywhere in the chain leaves the equalities one set (compileOr groups them wherever they stand).
    assert.deepEqual(rowsOf(target, `SELECT * FROM ${table} WHERE ${never} OR ${chain}`), termByTerm, `${never} OR ${chain}`);
    assert.ok(viaSet.length > 0, `${chain}: some rows match`);
    const negated = rowsOf(target, `SELECT * FROM ${table} WHERE NOT (${chain})`);
    const all = rowsOf(target, `SELECT * FROM ${table}`);
    assert.equal(negated.length + viaSet.length, all.length, `NOT (${chain})`);
  }
});

test('a chain over two columns, or with another operator, is evaluated term by term and still answers right', () => {
  const target = seeded();
  assert.equal(rowsOf(target, 'SELECT * FROM plain WHERE a = 1 OR b = 1 OR a = 2 OR b = 2').length, 14); // b = 1: 7 rows, b = 2: 7 (a = 1, a = 2 among them)
  assert.equal(rowsOf(target, 'SELECT * FROM plain WHERE a = 1 OR a = 2 OR a = 3 OR a > 57').length, 5);
  // Equalities that are not leftmost, and two columns' sets in one chain.
  assert.equal(rowsOf(target, 'SELECT * FROM plain WHERE a > 57 OR a = 1 OR a = 2 OR a = 3 OR a = 4').length, 6);
  assert.equal(rowsOf(target, 'SELECT * FROM plain WHERE a = 1 OR b = 0 OR a = 2 OR b = 1 OR a = 3 OR b = 2 OR a = 4 OR b = 3').length,
    29); // b in 0..3: 28 rows (a = 1..3 among them), and a = 4
});
