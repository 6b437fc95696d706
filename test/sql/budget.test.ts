// The SQL request budget (sql/budget.ts, src/limits.ts "SQL") against a real in-memory Datastore: plans whose
// estimate is over the rows-scanned limit are refused before any row is visited; otherwise rows scanned, rows
// returned, result bytes and wall time are counted while executing and the request stops with an error naming the
// limit. The same budget holds for /sql SELECTs and DML, subscriptions' initial evaluation and one-off queries.
// The end-to-end regressions through a real server are in test/sql/budget-server.test.ts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Datastore } from '../../src/datastore/store.js';
import {
  sqlQueryWallTimeMsMax, sqlResultBytesMax, sqlResultValuesMax, sqlRowsReturnedMax, sqlRowsScannedMax,
} from '../../src/limits.js';
import { compileCodec } from '../../src/sats/codec.js';
import { QueryBudget, resultRowSizer, resultValueCounter, sqlQueryLimits, type QueryLimits } from '../../src/sql/budget.js';
import { SqlError } from '../../src/sql/errors.js';
import { executeSql, type SqlOptions } from '../../src/sql/execute.js';
import { compileRlsFilter } from '../../src/sql/subscription-plan.js';
import { compileWithSql, SubscriptionManager } from '../../src/subscription/manager.js';
import { ViewHost } from '../../src/host/views.js';
import { countingView, makeStore, owner } from './fixture.js';

const pet = 4097;
const plain = 4099;

/** `n` pets, all of one person (so a self-join on person_id has n² rows), and `n` plain rows. */
function seeded(n: number): Datastore {
  const ds = makeStore();
  const schema = ds.schema();
  const petCodec = compileCodec({ tag: 'Product', value: schema.tables.find((t) => t.tableId === pet)!.rowType }, schema.typespace);
  const plainCodec = compileCodec({ tag: 'Product', value: schema.tables.find((t) => t.tableId === plain)!.rowType }, schema.typespace);
  const tx = ds.beginMutTx();
  for (let i = 0; i < n; i++) {
    tx.insert(pet, petCodec.encode([i, 1n, 'cat']));
    tx.insert(plain, plainCodec.encode([i, i % 7]));
  }
  tx.commit();
  return ds;
}

const limits = (over: Partial<QueryLimits>): QueryLimits => ({ ...sqlQueryLimits, ...over });
const asOwner = (l?: Partial<QueryLimits>): SqlOptions => ({ sender: owner, isOwner: true, limits: l && limits(l) });

function limitError(re: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof SqlError, String(e));
    assert.equal(e.kind, 'limit');
    assert.match(e.message, re);
    return true;
  };
}

test('the limits leave a 1M-row scan of a few columns possible', () => {
  assert.ok(sqlRowsReturnedMax >= 1_000_000 && sqlRowsScannedMax >= 1_000_000);
  assert.ok(sqlResultBytesMax >= 1_000_000 * 16 && sqlResultValuesMax >= 1_000_000 * 4);
  assert.ok(sqlQueryWallTimeMsMax > 0);
});

test('a cross join whose estimate is over the scan limit is refused before any row is visited', () => {
  const ds = seeded(120);
  const { view, counts } = countingView(ds);
  assert.throws(
    () => executeSql('SELECT a.* FROM plain a JOIN plain b JOIN plain c JOIN plain d', { view }, asOwner()),
    limitError(/^SQL query refused: its plan would scan an estimated \d+ rows \(a cross join of 120 × 120 × 120 × 120 rows\), over the limit of 10000000 rows scanned \(sqlRowsScannedMax\)$/),
  );
  assert.equal(counts.scan, 1, 'only the first table was fetched; nothing was joined');
  // An inequality join is a cross product too.
  assert.throws(
    () => executeSql('SELECT a.* FROM plain a JOIN plain b ON a.a < b.a', { view: ds }, asOwner({ rowsScannedMax: 10_000 })),
    limitError(/estimated 14520 rows \(a cross join of 120 × 120 rows\), over the limit of 10000 rows scanned/),
  );
  // Under the limit, the same cross join runs.
  const [r] = executeSql('SELECT COUNT(*) AS n FROM plain a JOIN plain b', { view: ds }, asOwner());
  assert.deepEqual(r!.rows, [[14400n]]);
});

test('a self-join with a huge fan-out stops at the rows-scanned limit, counted before the rows are visited', () => {
  const ds = seeded(2000);  // 4M result rows through the person_id index
  assert.throws(
    () => executeSql('SELECT COUNT(*) AS n FROM pet a JOIN pet b ON a.person_id = b.person_id', { view: ds }, asOwner({ rowsScannedMax: 100_000 })),
    limitError(/^SQL query exceeded the limit of 100000 rows scanned \(sqlRowsScannedMax\)$/),
  );
  // Without an index on the join column (a hash join), likewise.
  assert.throws(
    () => executeSql('SELECT COUNT(*) AS n FROM plain a JOIN plain b ON a.b = b.b', { view: ds }, asOwner({ rowsScannedMax: 100_000 })),
    limitError(/rows scanned \(sqlRowsScannedMax\)/),
  );
});

test('rows returned and result bytes are bounded; LIMIT and COUNT keep a big join usable', () => {
  const ds = seeded(2000);
  const selfJoin = 'SELECT a.* FROM pet a JOIN pet b ON a.person_id = b.person_id';
  assert.throws(() => executeSql(selfJoin, { view: ds }, asOwner()),
    limitError(new RegExp(`^SQL query exceeded the limit of ${sqlRowsReturnedMax} rows returned \\(sqlRowsReturnedMax\\)$`)));
  // A pet row is 4 + 8 + (4 + 3) = 19 bytes; 100 of them fit 1900 bytes, the 101st does not.
  assert.throws(() => executeSql('SELECT * FROM pet', { view: ds }, asOwner({ resultBytesMax: 1900 })),
    limitError(/^SQL query exceeded the limit of 1900 bytes of results \(sqlResultBytesMax\)$/));
  assert.equal(executeSql('SELECT * FROM pet LIMIT 100', { view: ds }, asOwner({ resultBytesMax: 1900 }))[0]!.rows.length, 100);
  // Projected columns are measured as their own BSATN: species is 4 + 3 bytes.
  assert.throws(() => executeSql('SELECT species FROM pet', { view: ds }, asOwner({ resultBytesMax: 700 })), limitError(/700 bytes of results/));
  assert.equal(executeSql('SELECT species FROM pet LIMIT 100', { view: ds }, asOwner({ resultBytesMax: 700 }))[0]!.rows.length, 100);
  const [n] = executeSql(`SELECT COUNT(*) AS n FROM pet a JOIN pet b ON a.person_id = b.person_id WHERE a.id < 50`, { view: ds }, asOwner());
  assert.deepEqual(n!.rows, [[100_000n]]);
  assert.equal(executeSql(`${selfJoin} LIMIT 10`, { view: ds }, asOwner())[0]!.rows.length, 10);
});

test('values of a /sql result (what rendering its JSON costs) are bounded; WebSocket replies (BSATN) count none', () => {
  const ds = seeded(2000);
  // pet has 3 columns: 6000 values.
  assert.throws(() => executeSql('SELECT * FROM pet', { view: ds }, asOwner({ resultValuesMax: 5000 })),
    limitError(/^SQL query exceeded the limit of 5000 values of results \(sqlResultValuesMax\)$/));
  assert.equal(executeSql('SELECT id, species FROM pet', { view: ds }, asOwner({ resultValuesMax: 5000 }))[0]!.rows.length, 2000);
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql, queryLimits: limits({ resultValuesMax: 10 }) });
  const handle = mgr.addClient({ identity: 5n, connectionId: 1n, isOwner: false }, { transaction: () => {}, querySetFailed: () => {} });
  assert.equal(mgr.subscribe(handle, 1, 1, ['SELECT * FROM pet']).tag, 'SubscribeApplied');
});

test('resultValueCounter counts what the untyped JSON rendering holds', () => {
  const unit = { tag: 'Product', value: { elements: [] } } as const;
  const option = { tag: 'Sum', value: { variants: [{ name: 'some', algebraicType: { tag: 'U32' } }, { name: 'none', algebraicType: unit }] } } as const;
  const types = [
    { tag: 'U32' }, { tag: 'String' }, { tag: 'Array', value: { tag: 'U8' } }, { tag: 'Array', value: { tag: 'U16' } },
    option, { tag: 'Array', value: { tag: 'Array', value: { tag: 'Bool' } } },
  ] as const;
  const count = resultValueCounter([...types], { types: [] });
  // 1 + 1 + 1 (hex) + (1 + 3) + (1 tag + 1) + (1 + (1 + 2) + (1 + 0)) = 14
  assert.equal(count([7, 's', new Uint8Array(9), [1, 2, 3], { tag: 0, value: 5 }, [[true, false], []]]), 14);
  assert.equal(resultValueCounter([{ tag: 'U32' }, { tag: 'I64' }], { types: [] })([1, 2n]), 2);
});

test('the wall-time limit stops a long query; one budget covers every statement of a request', () => {
  const ds = seeded(2000);
  assert.throws(
    () => executeSql('SELECT COUNT(*) AS n FROM pet a JOIN pet b ON a.person_id = b.person_id', { view: ds }, asOwner({ wallTimeMsMax: 0 })),
    limitError(/^SQL query exceeded the limit of 0 ms of wall time \(sqlQueryWallTimeMsMax\)$/),
  );
  // Each statement alone fits 3000 rows scanned; together they do not.
  assert.equal(executeSql('SELECT * FROM pet', { view: ds }, asOwner({ rowsScannedMax: 3000 }))[0]!.rows.length, 2000);
  assert.throws(() => executeSql('SELECT * FROM pet; SELECT * FROM pet', { view: ds }, asOwner({ rowsScannedMax: 3000 })),
    limitError(/3000 rows scanned/));
});

test('DML over the budget rolls back: nothing of the request takes effect', () => {
  const ds = seeded(2000);
  const target = { view: ds, beginMutTx: () => ds.beginMutTx() };
  assert.throws(() => executeSql('INSERT INTO plain VALUES (9999, 1); DELETE FROM pet WHERE species = \'cat\'', target, asOwner({ rowsScannedMax: 1000 })),
    limitError(/1000 rows scanned/));
  assert.equal(ds.rowCount(pet), 2000);
  assert.equal(ds.rowCount(plain), 2000);
});

test('QueryBudget reads the clock every sqlClockCheckRows visits, not on every row', () => {
  let reads = 0;
  const budget = new QueryBudget(limits({ wallTimeMsMax: 1000 }), () => { reads++; return 0; });
  for (let i = 0; i < 10_240; i++) budget.visit();
  assert.equal(reads, 1 + 10, 'one read at construction, then one per 1024 visits');
});

test('resultRowSizer matches the BSATN encoding of a projected row', () => {
  const types = [{ tag: 'U32' }, { tag: 'String' }, { tag: 'Array', value: { tag: 'U8' } }, { tag: 'Bool' }] as const;
  const size = resultRowSizer([...types], { types: [] });
  const codec = compileCodec({ tag: 'Product', value: { elements: types.map((t) => ({ name: undefined, algebraicType: t })) } }, { types: [] });
  const row = [7, 'héllo', new Uint8Array(5), true];
  assert.equal(size(row), codec.encode(row).byteLength);
});

test('subscriptions: an initial evaluation over the budget fails that Subscribe cleanly; one-off queries likewise', () => {
  const ds = seeded(2000);
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql, queryLimits: limits({ rowsScannedMax: 100_000 }) });
  const handle = mgr.addClient({ identity: 5n, connectionId: 1n, isOwner: false }, { transaction: () => {}, querySetFailed: () => {} });
  const selfJoin = 'SELECT a.* FROM pet a JOIN pet b ON a.person_id = b.person_id';
  const m = mgr.subscribe(handle, 1, 1, [selfJoin]);
  assert.equal(m.tag, 'SubscriptionError');
  assert.match((m as { error: string }).error, /exceeded the limit of 100000 rows scanned \(sqlRowsScannedMax\)/);
  assert.equal(mgr.queryCount, 0, 'nothing was registered');
  // One Subscribe message is one request: two queries of 2000 rows each do not fit a 3000-row budget together.
  const small = new SubscriptionManager({ view: () => ds, compile: compileWithSql, queryLimits: limits({ rowsReturnedMax: 3000 }) });
  const h2 = small.addClient({ identity: 5n, connectionId: 2n, isOwner: false }, { transaction: () => {}, querySetFailed: () => {} });
  assert.equal(small.subscribe(h2, 1, 1, ['SELECT * FROM pet']).tag, 'SubscribeApplied');
  const both = small.subscribe(h2, 2, 2, ['SELECT * FROM pet', 'SELECT * FROM plain']);
  assert.equal(both.tag, 'SubscriptionError');
  assert.match((both as { error: string }).error, /3000 rows returned \(sqlRowsReturnedMax\)/);

  const one = mgr.oneOffQuery(handle, 3, selfJoin);
  assert.ok(one.tag === 'OneOffQueryResult' && !one.result.ok);
  assert.match(one.result.error, /100000 rows scanned/);
  const fine = mgr.oneOffQuery(handle, 4, 'SELECT * FROM pet WHERE id = 5');
  assert.ok(fine.tag === 'OneOffQueryResult' && fine.result.ok && fine.result.rows[0]!.rows.length === 1);
});

test('the owner\'s full scan of a 1M-row table fits the real limits', () => {
  const ds = makeStore();
  const schema = ds.schema();
  const codec = compileCodec({ tag: 'Product', value: schema.tables.find((t) => t.tableId === plain)!.rowType }, schema.typespace);
  const tx = ds.beginMutTx();
  for (let i = 0; i < 1_000_000; i++) tx.insert(plain, codec.encode([i, i % 1000]));
  tx.commit();
  const started = performance.now();
  const [r] = executeSql('SELECT * FROM plain', { view: ds }, { sender: owner, isOwner: true });
  const ms = performance.now() - started;
  assert.equal(r!.rows.length, 1_000_000);
  console.log(`full scan of 1M rows: ${ms.toFixed(0)} ms of the ${sqlQueryWallTimeMsMax} ms limit`);
});

test('an Unsubscribe whose dropped rows are over the budget gets a SubscriptionError, and the set is dropped', () => {
  const ds = seeded(2000);
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql, queryLimits: limits({ rowsReturnedMax: 3000 }) });
  const handle = mgr.addClient({ identity: 5n, connectionId: 1n, isOwner: false }, { transaction: () => {}, querySetFailed: () => {} });
  assert.equal(mgr.subscribe(handle, 1, 1, ['SELECT * FROM pet']).tag, 'SubscribeApplied');
  assert.equal(mgr.subscribe(handle, 2, 2, ['SELECT * FROM plain']).tag, 'SubscribeApplied');
  // Set 1 (2000 rows) is fine to send back; set 2, grown to 4000 rows, is over the budget.
  mgr.handleCommit(insertPlain(ds, 2000, 4000), undefined);
  const bad = mgr.unsubscribe(handle, 3, 2, true);
  assert.equal(bad.tag, 'SubscriptionError');
  assert.match((bad as { error: string }).error, /3000 rows returned \(sqlRowsReturnedMax\)/);
  assert.equal(mgr.unsubscribe(handle, 4, 2, false).tag, 'SubscriptionError', 'set 2 is gone');
  assert.equal(mgr.unsubscribe(handle, 5, 1, true).tag, 'UnsubscribeApplied');
  assert.equal(mgr.queryCount, 0);
});

test('an RLS subscription whose delta after a commit is over the budget fails that set with the limit', () => {
  // A filter that reads another table (pet) gets its join delta after each commit, under the budget of a join delta;
  // one that reads only its table is not budgeted (its delta is the changed rows it accepts, like any single-table
  // delta). The commit makes ~357 rows visible, over the 300 rows returned.
  for (const [filter, reevaluated] of [['SELECT plain.* FROM plain JOIN pet ON plain.a = pet.id WHERE plain.b < 5', true],
    ['SELECT * FROM plain WHERE b < 5', false]] as const) {
    const ds = seeded(100);
    const schema = ds.schema();
    const rls = new Map([[plain, [compileRlsFilter(filter, schema)]]]);
    const queryLimits = limits({ rowsReturnedMax: 300 });
    const host = new ViewHost({ views: [], rls, base: ds, call: () => assert.fail('no views'), log: () => {} });
    const mgr = new SubscriptionManager({ view: () => ds, compile: host.wrapCompile(compileWithSql), queryLimits });
    const failures: { set: number; error: string }[] = [];
    const delivered: number[] = [];
    const handle = mgr.addClient({ identity: 5n, connectionId: 1n, isOwner: false }, {
      transaction: (sets) => { delivered.push(sets.length); },
      querySetFailed: (set, error) => failures.push({ set, error }),
    });
    // 72 visible rows: the filter's rows and the query's rows both count (144 of 300).
    const applied = mgr.subscribe(handle, 1, 1, ['SELECT * FROM plain']);
    assert.ok(applied.tag === 'SubscribeApplied' && applied.rows[0]!.rows.length === 72, filter);
    mgr.handleCommit(insertPlainAndPets(ds, 100, 600), undefined);
    if (reevaluated) {
      assert.equal(failures.length, 1, filter);
      assert.equal(failures[0]!.set, 1);
      assert.match(failures[0]!.error, /SQL query exceeded the limit of 300 rows returned \(sqlRowsReturnedMax\)/);
      assert.equal(mgr.queryCount, 0);
    } else {
      assert.deepEqual(failures, [], filter);
      assert.deepEqual(delivered, [1], filter);
      assert.equal(mgr.queryCount, 1);
    }
  }
});

/** Commits plain rows a = from .. to - 1, b = a % 7, and a pet of the same id for each. */
function insertPlainAndPets(ds: Datastore, from: number, to: number) {
  const schema = ds.schema();
  const codecOf = (id: number) => compileCodec({ tag: 'Product', value: schema.tables.find((t) => t.tableId === id)!.rowType }, schema.typespace);
  const plainCodec = codecOf(plain), petCodec = codecOf(pet);
  const tx = ds.beginMutTx();
  for (let i = from; i < to; i++) {
    tx.insert(plain, plainCodec.encode([i, i % 7]));
    tx.insert(pet, petCodec.encode([i, 1n, 'cat']));
  }
  return tx.commit();
}

/** Commits plain rows a = from .. to - 1, b = a % 7, and returns the TxData. */
function insertPlain(ds: Datastore, from: number, to: number) {
  const schema = ds.schema();
  const codec = compileCodec({ tag: 'Product', value: schema.tables.find((t) => t.tableId === plain)!.rowType }, schema.typespace);
  const tx = ds.beginMutTx();
  for (let i = from; i < to; i++) tx.insert(plain, codec.encode([i, i % 7]));
  return tx.commit();
}

test('a join subscription whose delta after a big commit is over the budget fails that set; others keep their updates', () => {
  const ds = seeded(100);  // 100 pets of person 1: the self-join has 10,000 rows
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql, queryLimits: limits({ rowsScannedMax: 100_000 }) });
  const failures: { set: number; error: string }[] = [];
  let updates = 0;
  const handle = mgr.addClient({ identity: 5n, connectionId: 1n, isOwner: false },
    { transaction: (sets) => { updates += sets.length; }, querySetFailed: (set, error) => failures.push({ set, error }) });
  assert.equal(mgr.subscribe(handle, 1, 1, ['SELECT a.* FROM pet a JOIN pet b ON a.person_id = b.person_id']).tag, 'SubscribeApplied');
  assert.equal(mgr.subscribe(handle, 2, 2, ['SELECT * FROM pet WHERE id = 5000']).tag, 'SubscribeApplied');
  // 1,000 more pets of person 1: the delta alone has ~1.2M tuples.
  const schema = ds.schema();
  const codec = compileCodec({ tag: 'Product', value: schema.tables.find((t) => t.tableId === pet)!.rowType }, schema.typespace);
  const tx = ds.beginMutTx();
  for (let i = 4000; i < 5000 + 1; i++) tx.insert(pet, codec.encode([i, 1n, 'cat']));
  mgr.handleCommit(tx.commit(), undefined);
  assert.deepEqual(failures.map((f) => f.set), [1]);
  assert.match(failures[0]!.error, /SQL query exceeded the limit of 100000 rows scanned \(sqlRowsScannedMax\)/);
  assert.equal(updates, 1, 'set 2 got its update');
  assert.equal(mgr.queryCount, 1);
});

test('a whole table\'s COUNT(*) is its row count, not a scan: it answers past the rows-scanned limit', () => {
  const ds = seeded(300);
  const { view, counts } = countingView(ds);
  const [n] = executeSql('SELECT COUNT(*) AS n FROM plain', { view }, asOwner({ rowsScannedMax: 100 }));
  assert.deepEqual(n!.rows, [[300n]]);
  assert.equal(counts.scan, 0, 'no row was fetched');
  // With a predicate it still scans, under the budget.
  assert.throws(() => executeSql('SELECT COUNT(*) AS n FROM plain WHERE b = 3', { view }, asOwner({ rowsScannedMax: 100 })),
    limitError(/over the limit of 100 rows scanned/));
});

test('a full scan goes in pieces: a LIMIT stops it early, past the budget\'s size; a predicate over the budget stops while running', () => {
  const ds = seeded(10_000);
  // The Datastore scans in pieces of 4,096 rows; countingView has no scanChunk, so it scans whole: the same answers.
  const { view: whole } = countingView(ds);
  const matching = (view: typeof whole) => executeSql('SELECT * FROM plain WHERE b = 3', { view }, asOwner())[0]!.rows;
  assert.equal(matching(ds).length, Math.floor((10_000 - 3) / 7) + 1);
  assert.deepEqual(matching(ds), matching(whole));
  const [three] = executeSql('SELECT * FROM plain LIMIT 3', { view: ds }, asOwner({ rowsScannedMax: 5_000 }));
  assert.equal(three!.rows.length, 3);
  assert.throws(() => executeSql('SELECT * FROM plain WHERE b = 99', { view: ds }, asOwner({ rowsScannedMax: 5_000 })),
    limitError(/exceeded the limit of 5000 rows scanned/));
});

test('a WHERE over some columns decodes only those for the rows it drops: the same answers as decoding every row', () => {
  // plain(a u32, b u32): checks on b skip a; on both decode both (no sparse decoder). The sparse path leaves skipped
  // columns undefined, so a check that read one it did not decode would drop or keep the wrong rows.
  const ds = seeded(3_000);
  for (const where of ['b = 3', 'b > 4', 'a < 100 AND b = 1', 'NOT (b = 2)', 'a = b']) {
    const rows = executeSql(`SELECT * FROM plain WHERE ${where}`, { view: ds }, asOwner())[0]!.rows as [number, number][];
    const [count] = executeSql(`SELECT COUNT(*) AS n FROM plain WHERE ${where}`, { view: ds }, asOwner());
    const all = executeSql('SELECT * FROM plain', { view: ds }, asOwner())[0]!.rows as [number, number][];
    const model = all.filter(([a, b]) => where === 'b = 3' ? b === 3 : where === 'b > 4' ? b > 4
      : where === 'a < 100 AND b = 1' ? a < 100 && b === 1 : where === 'NOT (b = 2)' ? b !== 2 : a === b);
    assert.deepEqual(rows, model, where);
    assert.deepEqual(count!.rows, [[BigInt(model.length)]], where);
  }
  // pet(id u32, person_id u64, species string), every species 'cat': a string equality is compared as bytes first.
  const count = (where: string) => executeSql(`SELECT COUNT(*) AS n FROM pet WHERE ${where}`, { view: ds }, asOwner())[0]!.rows;
  assert.deepEqual(count("species = 'cat'"), [[3000n]]);
  assert.deepEqual(count("'cat' = species AND id < 10"), [[10n]]);
  assert.deepEqual(count("species = 'ca'"), [[0n]]);
  assert.deepEqual(count("species = 'cats'"), [[0n]]);
  assert.deepEqual(count('person_id = 1 AND id = 7'), [[1n]]);
  assert.deepEqual(count('person_id = 2'), [[0n]]);
});
