// Execution of /sql statements against a real in-memory Datastore: SELECT shapes, DML, auto_inc, unique
// violations with rollback, permissions, index use.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { executeSql, type SqlOptions } from '../../src/sql/execute.js';
import { SqlError } from '../../src/sql/errors.js';
import { countingView, makeStore, owner } from './fixture.js';

const asOwner: SqlOptions = { sender: owner, isOwner: true };
const asGuest: SqlOptions = { sender: 99n, isOwner: false };

function seeded() {
  const ds = makeStore();
  const target = { view: ds, beginMutTx: () => ds.beginMutTx() };
  executeSql(
    `INSERT INTO person (id, name, age, owner, nick, born_at) VALUES
       (0, 'alice', 30, 0x${owner.toString(16)}, 'al', '2024-01-02T03:04:05.000006Z'),
       (0, 'bob', 40, 0x05, NULL, '1970-01-01T00:00:00Z'),
       (0, 'carol', 30, 0x05, NULL, '2000-01-01T00:00:00+01:00');
     INSERT INTO pet VALUES (1, 1, 'cat'), (2, 1, 'dog'), (3, 2, 'fish');
     INSERT INTO secret VALUES (1, 'x');
     INSERT INTO plain VALUES (1, 10), (2, 20), (3, 10)`,
    target, asOwner);
  return { ds, target };
}

test('INSERT with auto_inc 0 generates ids; SELECT * returns canonical column names', () => {
  const { target } = seeded();
  const [r] = executeSql('SELECT * FROM person', target, asGuest);
  assert.deepEqual(r!.schema.elements.map((e) => e.name), ['id', 'name', 'age', 'owner', 'nick', 'born_at']);
  assert.deepEqual(r!.rows.map((row) => row[0]), [1n, 2n, 3n]);
  assert.deepEqual(r!.rows[0]![3], [owner]);
  assert.deepEqual(r!.rows[0]![4], { tag: 0, value: 'al' });
  assert.deepEqual(r!.rows[1]![4], { tag: 1, value: [] });
  assert.deepEqual(r!.rows[0]![5], [1704164645000006n]);
  assert.deepEqual(r!.rows[2]![5], [946681200000000n]);
});

test('result stats and txData', () => {
  const ds = makeStore();
  const res = executeSql("INSERT INTO plain VALUES (1, 2), (3, 4); SELECT * FROM plain", { view: ds, beginMutTx: () => ds.beginMutTx() }, asOwner);
  assert.equal(res[0]!.stats.rowsInserted, 2);
  assert.equal(res[1]!.rows.length, 2, 'a SELECT after DML sees the transaction');
  assert.ok(res.txData !== undefined);
  assert.equal(res.txData.tables.find((t) => t.tableName === 'plain')!.inserts.length, 2);
  assert.equal(ds.rowCount(4099), 2);
});

test('column projection, aliases, source names, WHERE, LIMIT, COUNT', () => {
  const { target } = seeded();
  let [r] = executeSql('SELECT name, bornAt AS b FROM Person WHERE age = 30 AND NOT name = \'carol\'', target, asGuest);
  assert.deepEqual(r!.schema.elements.map((e) => e.name), ['name', 'b']);
  assert.deepEqual(r!.rows, [['alice', [1704164645000006n]]]);
  [r] = executeSql('SELECT * FROM person WHERE nick IS NULL', target, asGuest);
  assert.deepEqual(r!.rows.map((x) => x[1]), ['bob', 'carol']);
  [r] = executeSql("SELECT * FROM person WHERE owner = :sender OR born_at < '1971-01-01T00:00:00Z'", target, { sender: owner, isOwner: false });
  assert.deepEqual(r!.rows.map((x) => x[1]), ['alice', 'bob']);
  [r] = executeSql('SELECT COUNT(*) AS n FROM plain WHERE b = 10', target, asGuest);
  assert.deepEqual(r!.schema.elements, [{ name: 'n', algebraicType: { tag: 'U64' } }]);
  assert.deepEqual(r!.rows, [[2n]]);
  [r] = executeSql('SELECT * FROM plain LIMIT 2', target, asGuest);
  assert.equal(r!.rows.length, 2);
  [r] = executeSql('SELECT * FROM person WHERE age > 35 OR (age >= 30 AND name <> \'alice\')', target, asGuest);
  assert.deepEqual(r!.rows.map((x) => x[1]), ['bob', 'carol']);
});

test('joins: t.* projection, bag semantics, quoted source names (views RawSql)', () => {
  const { target } = seeded();
  let [r] = executeSql('SELECT p.* FROM pet AS t JOIN person p ON t.person_id = p.id', target, asGuest);
  assert.deepEqual(r!.rows.map((x) => x[1]), ['alice', 'alice', 'bob']);
  [r] = executeSql(
    `SELECT "Person".* FROM "pet" JOIN "Person" ON "pet"."personId" = "Person"."id" WHERE "Person"."owner" = 0x${owner.toString(16).padStart(64, '0')}`,
    target, asGuest);
  assert.deepEqual(r!.rows.map((x) => x[1]), ['alice', 'alice']);
  [r] = executeSql('SELECT t.species, p.name FROM pet t JOIN person p ON t.person_id = p.id WHERE t.species <> \'dog\'', target, asGuest);
  assert.deepEqual(r!.rows, [['cat', 'alice'], ['fish', 'bob']]);
  // Join without an index on either side still works for /sql (hash join).
  [r] = executeSql('SELECT x.* FROM plain x JOIN plain y ON x.b = y.b WHERE y.a = 1', target, asGuest);
  assert.deepEqual(r!.rows, [[1, 10], [3, 10]]);
  assert.throws(() => executeSql('SELECT * FROM pet JOIN person ON pet.person_id = person.id', target, asGuest), /SELECT \* is not supported for joins/);
});

test('point lookups use the index; joins look up the indexed side', () => {
  const { ds } = seeded();
  const { view, counts } = countingView(ds);
  const [r] = executeSql("SELECT * FROM person WHERE name = 'bob'", { view }, asGuest);
  assert.equal(r!.rows.length, 1);
  assert.deepEqual(counts, { scan: 0, point: 1, range: 0 });
  const c2 = countingView(ds);
  executeSql('SELECT p.* FROM pet t JOIN person p ON t.person_id = p.id', { view: c2.view }, asGuest);
  assert.deepEqual(c2.counts, { scan: 1, point: 3, range: 0 }, 'one scan of pet, one person lookup per pet');
  const c3 = countingView(ds);
  executeSql('SELECT * FROM plain WHERE a = 1', { view: c3.view }, asGuest);
  assert.deepEqual(c3.counts, { scan: 1, point: 0, range: 0 });
});

test('UPDATE is delete + insert; DELETE; target name is the implicit alias', () => {
  const { target, ds } = seeded();
  const res = executeSql("UPDATE person SET age = 31, nick = 'A' WHERE person.name = 'alice'; DELETE FROM plain WHERE b = 10", target, asOwner);
  assert.equal(res[0]!.stats.rowsUpdated, 1);
  assert.equal(res[1]!.stats.rowsDeleted, 2);
  const [r] = executeSql("SELECT age, nick FROM Person WHERE name = 'alice'", { view: ds }, asOwner);
  assert.deepEqual(r!.rows, [[31, { tag: 0, value: 'A' }]]);
  assert.throws(() => executeSql("UPDATE Person SET age = 1 WHERE person.id = 1", target, asOwner), /`person` is not in scope/);
  assert.equal(ds.inTransaction, false);
});

test('unique violation rolls back the whole request', () => {
  const { target, ds } = seeded();
  assert.throws(
    () => executeSql("INSERT INTO plain VALUES (9, 9); INSERT INTO pet VALUES (1, 1, 'dup')", target, asOwner),
    (e: unknown) => e instanceof SqlError && e.kind === 'constraint');
  assert.equal(ds.rowCount(4099), 3, 'the first INSERT was rolled back');
  assert.equal(ds.inTransaction, false);
  // UPDATE that collides on a unique column.
  assert.throws(() => executeSql('UPDATE pet SET id = 1 WHERE id = 2', target, asOwner), (e: unknown) => e instanceof SqlError && e.kind === 'constraint');
  assert.equal(ds.rowCount(4097), 3);
});

test('type errors name the literal, the type and the column', () => {
  const { target } = seeded();
  assert.throws(() => executeSql('INSERT INTO plain VALUES (1, 300000000000)', target, asOwner),
    /`300000000000` cannot be parsed as type `U32` for column `b`/);
  assert.throws(() => executeSql('SELECT * FROM person WHERE age = 300', target, asOwner), /`300` cannot be parsed as type `U8` for column `age`/);
  assert.throws(() => executeSql('SELECT * FROM person WHERE age = -1', target, asOwner), /`-1` cannot be parsed as type `U8`/);
  assert.throws(() => executeSql("SELECT * FROM person WHERE born_at = 'yesterday'", target, asOwner), /type `Timestamp`/);
  assert.throws(() => executeSql('SELECT * FROM person WHERE name = age', target, asOwner), /Unexpected type/);
  assert.throws(() => executeSql('SELECT * FROM person WHERE nick < 5', target, asOwner), /Invalid binary operator `<`/);
  assert.throws(() => executeSql('SELECT * FROM person WHERE 1 = 1', target, asOwner), /Cannot resolve type for literal/);
  assert.throws(() => executeSql('SELECT * FROM person WHERE nope = 1', target, asOwner), /`person` does not have a field `nope`/);
  assert.throws(() => executeSql('SELECT * FROM nope', target, asOwner), /no such table: `nope`/);
  assert.throws(() => executeSql('INSERT INTO plain VALUES (1)', target, asOwner), /Inserting a row with 1 values into `plain` which has 2 fields/);
  assert.throws(() => executeSql('INSERT INTO plain (a) VALUES (1)', target, asOwner), /number of fields \(1\)/);
  // Accepted conversions: string→int, hex→int, 1e2→int, float literal for a float-free table is not tested here.
  const [r] = executeSql("SELECT * FROM plain WHERE a = '1' OR a = 0x02 OR b = 1e1", target, asOwner);
  assert.equal(r!.rows.length, 3);
});

test('private tables and DML are owner-only', () => {
  const { target } = seeded();
  assert.throws(() => executeSql('SELECT * FROM secret', target, asGuest), /no such table: `secret`. If the table exists, it may be marked private./);
  assert.equal(executeSql('SELECT * FROM secret', target, asOwner)[0]!.rows.length, 1);
  assert.throws(() => executeSql('DELETE FROM plain', target, asGuest), /is not authorized to run SQL DML statements/);
  assert.throws(() => executeSql('DELETE FROM plain', { view: target.view }, asOwner), /not allowed/);
});

test('SET and SHOW row_limit: SET is the owner\'s, takes effect with the request, SHOW reads st_var\'s value', () => {
  const { target } = seeded();
  const vars = new Map<string, bigint>();
  const set = executeSql('SET row_limit = 5', target, { ...asOwner, vars });
  assert.deepEqual(set.vars, new Map([['row_limit', 5n]]));
  assert.equal(vars.size, 0, 'the caller\'s map is not modified: the host stores the returned one');
  const [r] = executeSql('SHOW row_limit', target, { ...asGuest, vars: set.vars });
  assert.deepEqual(r!.schema.elements.map((e) => e.name), ['value']);
  assert.deepEqual(r!.rows, [[{ tag: 8, value: 5n }]]);   // StVarValue::U64
  assert.equal(executeSql('SHOW row_limit', target, asOwner)[0]!.rows.length, 0);
  assert.throws(() => executeSql('SET bogus = 1', target, asOwner), /bogus is not a valid system variable/);
  assert.throws(() => executeSql('SET row_limit = 1', target, asGuest), /is not authorized to run SQL DML statements/);
  // A failing later statement: nothing of the request takes effect, the SET included.
  assert.throws(() => executeSql('SET row_limit = 7; SELECT * FROM nope', target, { ...asOwner, vars: set.vars }));
});

test('row_limit refuses a non-owner\'s query whose estimate exceeds it, with upstream\'s message; owners are exempt', () => {
  const { target } = seeded();
  const vars = new Map([['row_limit', 2n]]);
  assert.throws(() => executeSql('SELECT * FROM plain', target, { ...asGuest, vars }),
    /^SqlError: Estimated cardinality \(3 rows\) exceeds limit \(2 rows\)$/m);
  assert.equal(executeSql('SELECT * FROM plain', target, { ...asOwner, vars })[0]!.rows.length, 3);
  // An index point lookup estimates the rows it finds.
  assert.equal(executeSql('SELECT * FROM pet WHERE id = 1', target, { ...asGuest, vars })[0]!.rows.length, 1);
  // Statements of one request add up.
  assert.throws(() => executeSql('SELECT * FROM pet WHERE id = 1; SELECT * FROM pet WHERE id = 2; SELECT * FROM pet WHERE id = 3', target, { ...asGuest, vars }),
    /Estimated cardinality \(3 rows\) exceeds limit \(2 rows\)/);
});
