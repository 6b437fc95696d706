// Subscription plans: accepted subset, errors, initial rows, and incremental deltas equal to re-evaluation
// (property test with a fixed seed over random transactions).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Datastore } from '../../src/datastore/store.js';
import { compileCodec } from '../../src/sats/codec.js';
import type { Value } from '../../src/sats/types.js';
import { compileRlsFilter, compileSubscriptionQuery } from '../../src/sql/subscription-plan.js';
import { countingView, makeStore, owner } from './fixture.js';
import { mulberry32 } from '../../bench/keynote/workload.js';

const guest = { sender: 99n, isOwner: false };


const bag = (rows: Uint8Array[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const r of rows) { const k = Buffer.from(r).toString('hex'); m.set(k, (m.get(k) ?? 0) + 1); }
  return m;
};

test('errors: projections, unindexed joins, private tables, event-table lookups, DML', () => {
  const schema = makeStore().schema();
  assert.throws(() => compileSubscriptionQuery('SELECT name FROM person', schema, guest), /Column projections are not supported in subscriptions/);
  assert.throws(() => compileSubscriptionQuery('SELECT x.* FROM plain x JOIN plain y ON x.a = y.a', schema, guest), /Subscriptions require indexes on join columns/);
  assert.throws(() => compileSubscriptionQuery('SELECT * FROM secret', schema, guest), /no such table: `secret`/);
  assert.ok(compileSubscriptionQuery('SELECT * FROM secret', schema, { sender: owner, isOwner: true }));
  assert.throws(() => compileSubscriptionQuery('SELECT p.* FROM person p JOIN ev e ON e.person_id = p.age', schema, guest), /Unexpected type|Event tables/);
  assert.throws(() => compileSubscriptionQuery('SELECT p.* FROM plain p JOIN ev e ON e.person_id = e.person_id', schema, guest), /join condition/);
  assert.throws(() => compileSubscriptionQuery('DELETE FROM person', schema, guest), /Non-SELECT/);
  assert.throws(() => compileSubscriptionQuery('SELECT * FROM person LIMIT 1', schema, guest), /LIMIT/);
  assert.throws(() => compileSubscriptionQuery('SELECT * FROM pet JOIN person ON pet.person_id = person.id', schema, guest), /SELECT \* is not supported for joins/);
  const ok = compileSubscriptionQuery('SELECT p.* FROM ev e JOIN person p ON e.person_id = p.id', schema, guest);
  assert.equal(ok.returnTable.name, 'person');
  assert.deepEqual(ok.readTables, [4100, 4096]);
});

test('single-table plan: evaluate uses the index, matches filters rows, :sender binds the caller', () => {
  const ds = makeStore();
  const tx = ds.beginMutTx();
  const codec = compileCodec({ tag: 'Product', value: ds.table(4096).rowType }, ds.schema().typespace);
  const row = (name: string, age: number, who: bigint) => codec.encode([0n, name, age, [who], { tag: 1, value: [] }, [0n]]);
  tx.insert(4096, row('a', 1, owner)); tx.insert(4096, row('b', 50, 5n)); tx.insert(4096, row('b', 60, owner));
  tx.commit();
  const plan = compileSubscriptionQuery("SELECT * FROM person WHERE name = 'b' AND owner = :sender", ds.schema(), { sender: owner, isOwner: false });
  assert.equal(plan.usesSender, true);
  assert.deepEqual(plan.explain(), ['index point person (index 5001)']);
  const { view, counts } = countingView(ds);
  const rows = plan.evaluate(view);
  assert.equal(rows.length, 1);
  assert.deepEqual((codec.decode(rows[0]!) as Value[])[2], 60);
  assert.deepEqual(counts, { scan: 0, point: 1, range: 0 });
  assert.equal(plan.matches(row('b', 1, owner)), true);
  assert.equal(plan.matches(row('b', 1, 5n)), false);
  assert.equal(plan.isJoin, false);
});

test('RLS filter compiles once and binds :sender per caller', () => {
  const ds = makeStore();
  const rls = compileRlsFilter('SELECT * FROM person WHERE owner = :sender', ds.schema());
  assert.equal(rls.table.name, 'person');
  assert.equal(rls.forSender(owner).usesSender, true);
  assert.throws(() => compileRlsFilter('SELECT * FROM person WHERE owner = :nobody', ds.schema()), /unknown parameter/);
});

const queries = [
  'SELECT * FROM person WHERE age > 30',
  "SELECT p.* FROM pet t JOIN person p ON t.person_id = p.id WHERE t.species = 'cat'",
  'SELECT t.* FROM pet t JOIN person p ON t.person_id = p.id WHERE p.age >= 30',
  'SELECT "pet".* FROM "pet" JOIN "Person" ON "pet"."personId" = "Person"."id"',
  'SELECT a.* FROM pet a JOIN pet b ON a.person_id = b.person_id WHERE b.species <> a.species',
  'SELECT p.* FROM person p JOIN pet t ON t.person_id = p.id JOIN pet u ON u.person_id = p.id WHERE u.id < t.id',
];

function randomTx(ds: Datastore, rnd: () => number, ops: number): ReturnType<ReturnType<Datastore['beginMutTx']>['commit']> {
  const ts = ds.schema().typespace;
  const personCodec = compileCodec({ tag: 'Product', value: ds.table(4096).rowType }, ts);
  const petCodec = compileCodec({ tag: 'Product', value: ds.table(4097).rowType }, ts);
  const evCodec = compileCodec({ tag: 'Product', value: ds.table(4100).rowType }, ts);
  const pick = <T>(xs: T[]): T | undefined => (xs.length === 0 ? undefined : xs[Math.floor(rnd() * xs.length)]);
  const species = ['cat', 'dog', 'fish'];
  const tx = ds.beginMutTx();
  for (let i = 0; i < ops; i++) {
    const op = Math.floor(rnd() * 8);
    const people = tx.scan(4096);
    const pets = tx.scan(4097);
    const personId = () => BigInt(1 + Math.floor(rnd() * 8));
    if (op === 0) {
      tx.insert(4096, personCodec.encode([0n, `n${i}`, Math.floor(rnd() * 60), [5n], { tag: 1, value: [] }, [0n]]));
    } else if (op === 1) {
      const r = pick(people); if (r) tx.deleteByRows(4096, [r]);
    } else if (op === 2) {
      const r = pick(people);
      if (r) {
        const v = personCodec.decode(r) as Value[];
        tx.deleteByRows(4096, [r]);
        v[2] = Math.floor(rnd() * 60);
        tx.insert(4096, personCodec.encode(v));
      }
    } else if (op === 3 || op === 4) {
      const used = new Set(pets.map((p) => (petCodec.decode(p) as Value[])[0]));
      const id = 1 + Math.floor(rnd() * 40);
      if (!used.has(id)) tx.insert(4097, petCodec.encode([id, personId(), pick(species)!]));
    } else if (op === 5) {
      const r = pick(pets); if (r) tx.deleteByRows(4097, [r]);
    } else if (op === 6) {
      const r = pick(pets);
      if (r) {
        const v = petCodec.decode(r) as Value[];
        tx.deleteByRows(4097, [r]);
        v[1] = personId(); v[2] = pick(species)!;
        tx.insert(4097, petCodec.encode(v));
      }
    } else {
      tx.insert(4100, evCodec.encode([personId()]));
    }
  }
  return tx.commit();
}

test('delta equals the multiset difference of re-evaluation (fixed seed, random transactions)', () => {
  const rnd = mulberry32(0x5eed);
  const ds = makeStore();
  const plans = queries.map((q) => compileSubscriptionQuery(q, ds.schema(), guest));
  let nonEmpty = 0;
  for (let round = 0; round < 150; round++) {
    const before = plans.map((p) => bag(p.evaluate(ds)));
    const txData = randomTx(ds, rnd, 1 + Math.floor(rnd() * 6));
    plans.forEach((plan, qi) => {
      const after = bag(plan.evaluate(ds));
      const { inserts, deletes } = plan.delta(ds, txData);
      if (inserts.length + deletes.length > 0) nonEmpty++;
      const expected = new Map<string, number>();
      for (const k of new Set([...before[qi]!.keys(), ...after.keys()])) {
        const d = (after.get(k) ?? 0) - (before[qi]!.get(k) ?? 0);
        if (d !== 0) expected.set(k, d);
      }
      const actual = new Map<string, number>();
      for (const [k, n] of bag(inserts)) actual.set(k, n);
      for (const [k, n] of bag(deletes)) {
        assert.ok(!actual.has(k), `query ${qi}: a row is both inserted and deleted`);
        actual.set(k, -n);
      }
      assert.deepEqual(actual, expected, `round ${round}, query ${qi}: ${queries[qi]}`);
    });
  }
  assert.ok(nonEmpty > 100, `the random transactions changed results (${nonEmpty} non-empty deltas)`);
});

test('event tables: no initial rows, delta delivers the events', () => {
  const rnd = mulberry32(3);
  const ds = makeStore();
  const plan = compileSubscriptionQuery('SELECT * FROM ev WHERE person_id > 2', ds.schema(), guest);
  let delivered = 0;
  for (let i = 0; i < 30; i++) {
    const txData = randomTx(ds, rnd, 4);
    const events = txData.tables.find((t) => t.tableId === 4100)?.inserts ?? [];
    const { inserts, deletes } = plan.delta(ds, txData);
    assert.deepEqual(deletes, []);
    assert.equal(inserts.length, events.filter((e) => plan.matches(e)).length);
    delivered += inserts.length;
    assert.deepEqual(plan.evaluate(ds), []);
  }
  assert.ok(delivered > 0);
});

test('join delta uses index lookups, not scans', () => {
  const rnd = mulberry32(7);
  const ds = makeStore();
  for (let i = 0; i < 20; i++) randomTx(ds, rnd, 5);
  const plan = compileSubscriptionQuery("SELECT p.* FROM pet t JOIN person p ON t.person_id = p.id WHERE t.species = 'cat'", ds.schema(), guest);
  assert.deepEqual(plan.explain(), ['scan t', 'index join p (index 5000)']);
  const txData = randomTx(ds, rnd, 4);
  const { view, counts } = countingView(ds);
  plan.delta(view, txData);
  assert.equal(counts.scan, 0);
  assert.ok(counts.point > 0);
});
