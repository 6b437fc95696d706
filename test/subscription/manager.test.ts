// Tests for subscription/manager.ts against a real Datastore: sharing, initial rows, incremental deltas, bag
// semantics across query sets, caller handling, unsubscribe, visibility, event tables, failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileWithSql, SubscriptionManager, type ClientHandle, type SubscriptionPlan } from '../../src/subscription/manager.js';
import { decodeServerMessages, encodeServerMessage, type QuerySetUpdate, type ServerMessage } from '../../src/subscription/messages.js';
import { newDatastore, RecordingSink, row, write } from './fixture.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function setup() {
  const ds = newDatastore();
  const mgr = new SubscriptionManager({ view: () => ds, compile: compileWithSql });
  const clients: { handle: ClientHandle; sink: RecordingSink }[] = [];
  const connect = (identity: bigint, isOwner = false) => {
    const sink = new RecordingSink();
    const handle = mgr.addClient({ identity, connectionId: BigInt(clients.length + 1), isOwner }, sink);
    clients.push({ handle, sink });
    return { handle, sink };
  };
  /** Commit through the datastore and hand the TxData to the manager, as the host does. */
  const commit = (fn: Parameters<typeof write>[1], caller?: ClientHandle) => {
    const tx = write(ds, fn);
    mgr.handleCommit(tx, caller?.connectionId);
    return tx;
  };
  return { ds, mgr, connect, commit };
}

/** Decoded view of query-set updates: [{set, table, inserts hex[], deletes hex[]}]. */
function decoded(querySets: QuerySetUpdate[]) {
  const [m] = decodeServerMessages(encodeServerMessage({ tag: 'TransactionUpdate', querySets }));
  assert.equal(m.tag, 'TransactionUpdate');
  return (m as Extract<ServerMessage, { tag: 'TransactionUpdate' }>).querySets.flatMap((s) =>
    s.tables.flatMap((t) => (t as { tableName: string; rows: any[] }).rows.map((r) => ({
      set: s.querySetId, table: (t as { tableName: string }).tableName,
      ...(r.tag === 'PersistentTable'
        ? { inserts: r.inserts.map(hex), deletes: r.deletes.map(hex) }
        : { events: r.events.map(hex) }),
    }))));
}

/**
 * Asserts that the client got exactly `expected` (hex rows, in any order) in one delivery since the last check, or
 * nothing to deliver when it is empty.
 */
function assertDelivered(sink: RecordingSink, expected: { inserts: string[]; deletes: string[] }, label: string): void {
  const deliveries = sink.deliveries.splice(0);
  if (expected.inserts.length === 0 && expected.deletes.length === 0) {
    assert.ok(deliveries.every((d) => d.querySets.length === 0), `${label} got an update it should not`);
    return;
  }
  assert.equal(deliveries.length, 1, label);
  const [got] = decoded(deliveries[0]!.querySets);
  const sorted = (rows: string[]) => [...rows].sort();
  assert.deepEqual({ inserts: sorted(got!.inserts!), deletes: sorted(got!.deletes!) },
    { inserts: sorted(expected.inserts), deletes: sorted(expected.deletes) }, label);
}

const alice = row('person', [1, 'alice', 30]);
const bob = row('person', [2, 'bob', 40]);

test('subscribe returns the initial rows; same query text is shared between clients', () => {
  const { mgr, connect, commit } = setup();
  commit((tx) => { tx.insert(4096, alice); tx.insert(4096, bob); });
  const a = connect(10n);
  const b = connect(11n);
  const ra = mgr.subscribe(a.handle, 7, 0, ['SELECT * FROM person']);
  const rb = mgr.subscribe(b.handle, 1, 5, ['  SELECT * FROM person  ']);
  assert.deepEqual(ra, { tag: 'SubscribeApplied', requestId: 7, querySetId: 0, rows: [{ table: 'person', rows: [alice, bob] }] });
  assert.equal(rb.tag, 'SubscribeApplied');
  assert.equal(mgr.queryCount, 1);

  const carol = row('person', [3, 'carol', 50]);
  commit((tx) => { tx.insert(4096, carol); });
  assert.equal(a.sink.deliveries.length, 1);
  assert.equal(b.sink.deliveries.length, 1);
  // The delta was encoded once and the same bytes are used for both subscribers.
  assert.equal(a.sink.deliveries[0].querySets[0].tables[0], b.sink.deliveries[0].querySets[0].tables[0]);
  assert.deepEqual(decoded(b.sink.deliveries[0].querySets), [{ set: 5, table: 'person', inserts: [hex(carol)], deletes: [] }]);
});

test('filters apply to deltas; clients with no change get nothing; the caller is always told', () => {
  const { mgr, connect, commit } = setup();
  const a = connect(10n);
  const b = connect(11n);
  mgr.subscribe(a.handle, 0, 0, ['SELECT * FROM person WHERE age = 30']);
  mgr.subscribe(b.handle, 0, 0, ['SELECT * FROM person WHERE age = 40']);
  commit((tx) => { tx.insert(4096, alice); }, b.handle);
  assert.deepEqual(decoded(a.sink.deliveries[0].querySets), [{ set: 0, table: 'person', inserts: [hex(alice)], deletes: [] }]);
  assert.equal(a.sink.deliveries[0].isCaller, false);
  assert.deepEqual(b.sink.deliveries, [{ querySets: [], isCaller: true }]);
  commit((tx) => { tx.insert(4097, row('secret', [1])); });
  assert.equal(a.sink.deliveries.length, 1, 'no delivery for an unrelated table');
});

test('bag semantics: a query in two sets is delivered per set; duplicates in one set collapse', () => {
  const { mgr, connect, commit } = setup();
  const a = connect(10n);
  const r = mgr.subscribe(a.handle, 0, 1, ['SELECT * FROM person', 'SELECT * FROM person']);
  assert.equal(r.tag === 'SubscribeApplied' && r.rows.length, 1);
  mgr.subscribe(a.handle, 1, 2, ['SELECT * FROM person']);
  commit((tx) => { tx.insert(4096, alice); });
  assert.deepEqual(decoded(a.sink.deliveries[0].querySets), [
    { set: 1, table: 'person', inserts: [hex(alice)], deletes: [] },
    { set: 2, table: 'person', inserts: [hex(alice)], deletes: [] },
  ]);
});

test('an update is a delete and an insert in the same message', () => {
  const { mgr, connect, commit } = setup();
  commit((tx) => { tx.insert(4096, alice); });
  const a = connect(10n);
  mgr.subscribe(a.handle, 0, 0, ['SELECT * FROM person']);
  const older = row('person', [1, 'alice', 31]);
  commit((tx) => { tx.update(4096, 40960, older); });
  assert.deepEqual(decoded(a.sink.deliveries[0].querySets), [{ set: 0, table: 'person', inserts: [hex(older)], deletes: [hex(alice)] }]);
});

test('unsubscribe returns the dropped rows and stops updates; unknown sets are errors', () => {
  const { mgr, connect, commit } = setup();
  commit((tx) => { tx.insert(4096, alice); });
  const a = connect(10n);
  mgr.subscribe(a.handle, 0, 3, ['SELECT * FROM person']);
  assert.deepEqual(mgr.unsubscribe(a.handle, 1, 3, true),
    { tag: 'UnsubscribeApplied', requestId: 1, querySetId: 3, rows: [{ table: 'person', rows: [alice] }] });
  assert.equal(mgr.queryCount, 0);
  commit((tx) => { tx.insert(4096, bob); });
  assert.equal(a.sink.deliveries.length, 0);
  const err = mgr.unsubscribe(a.handle, 2, 3, false);
  assert.equal(err.tag, 'SubscriptionError');
  assert.equal(err.tag === 'SubscriptionError' && err.requestId, 2);
  // The id can be reused after unsubscribing.
  assert.equal(mgr.subscribe(a.handle, 3, 3, ['SELECT * FROM person']).tag, 'SubscribeApplied');
  assert.equal(mgr.subscribe(a.handle, 4, 3, ['SELECT * FROM person']).tag, 'SubscriptionError', 'set 3 is active');
});

test('private tables: errors for non-owners (nothing registered), visible to the owner, skipped by SELECT * FROM *', () => {
  const { mgr, connect } = setup();
  const a = connect(10n);
  const owner = connect(99n, true);
  const r = mgr.subscribe(a.handle, 4, 0, ['SELECT * FROM person', 'SELECT * FROM secret']);
  assert.equal(r.tag, 'SubscriptionError');
  assert.equal(r.tag === 'SubscriptionError' && r.requestId, 4);
  assert.match(r.tag === 'SubscriptionError' ? r.error : '', /secret/);
  assert.equal(mgr.queryCount, 0);
  assert.equal(mgr.subscribe(owner.handle, 0, 0, ['SELECT * FROM secret']).tag, 'SubscribeApplied');
  const all = mgr.subscribe(a.handle, 5, 1, ['SELECT * FROM *']);
  assert.deepEqual(all.tag === 'SubscribeApplied' && all.rows.map((t) => t.table), ['person', 'ping', 'owned', 'membership', 'message', 'note']);
});

test(':sender plans are per caller, never shared', () => {
  const { mgr, connect, commit } = setup();
  const a = connect(10n);
  const b = connect(11n);
  mgr.subscribe(a.handle, 0, 0, ['SELECT * FROM owned WHERE owner = :sender']);
  mgr.subscribe(b.handle, 0, 0, ['SELECT * FROM owned WHERE owner = :sender']);
  assert.equal(mgr.queryCount, 2);
  const mine = row('owned', [1, [11n]]);
  commit((tx) => { tx.insert(4099, mine); });
  assert.equal(a.sink.deliveries.length, 0);
  assert.deepEqual(decoded(b.sink.deliveries[0].querySets), [{ set: 0, table: 'owned', inserts: [hex(mine)], deletes: [] }]);
});

test('event tables: EventTable rows, nothing in the initial rows', () => {
  const { mgr, connect, commit } = setup();
  const a = connect(10n);
  const r = mgr.subscribe(a.handle, 0, 0, ['SELECT * FROM ping']);
  assert.deepEqual(r.tag === 'SubscribeApplied' && r.rows, [{ table: 'ping', rows: [] }]);
  commit((tx) => { tx.insert(4098, row('ping', [7])); });
  assert.deepEqual(decoded(a.sink.deliveries[0].querySets), [{ set: 0, table: 'ping', events: [hex(row('ping', [7]))] }]);
});

test('a query whose delta fails drops its sets with querySetFailed; others still get their updates', () => {
  const ds = newDatastore();
  let broken = false;
  const mgr = new SubscriptionManager({
    view: () => ds,
    compile: (text, view, opts) => {
      const plan = compileWithSql(text, view, opts);
      if (!text.includes('age')) return plan;
      const failing: SubscriptionPlan = {
        returnTable: plan.returnTable, readTables: plan.readTables, isJoin: plan.isJoin, usesSender: plan.usesSender,
        evaluate: (v) => plan.evaluate(v),
        delta: (v, tx) => plan.delta(v, tx),
        matches: (r) => { if (broken) throw new Error('kaboom'); return plan.matches(r); },
      };
      return failing;
    },
  });
  const sink = new RecordingSink();
  const h = mgr.addClient({ identity: 1n, connectionId: 1n, isOwner: false }, sink);
  mgr.subscribe(h, 0, 0, ['SELECT * FROM person WHERE age = 30']);
  mgr.subscribe(h, 1, 1, ['SELECT * FROM person']);
  broken = true;
  mgr.handleCommit(write(ds, (tx) => { tx.insert(4096, alice); }), undefined);
  assert.deepEqual(sink.failures, [{ querySetId: 0, error: 'kaboom' }]);
  assert.deepEqual(decoded(sink.deliveries[0].querySets), [{ set: 1, table: 'person', inserts: [hex(alice)], deletes: [] }]);
  assert.equal(mgr.queryCount, 1);
});

test('removeClient drops every set and shared queries are freed only when unused', () => {
  const { mgr, connect } = setup();
  const a = connect(10n);
  const b = connect(11n);
  mgr.subscribe(a.handle, 0, 0, ['SELECT * FROM person']);
  mgr.subscribe(b.handle, 0, 0, ['SELECT * FROM person']);
  mgr.removeClient(a.handle);
  assert.equal(mgr.queryCount, 1);
  mgr.removeClient(b.handle);
  assert.equal(mgr.queryCount, 0);
  assert.equal(mgr.clientCount, 0);
});

test('one-off queries evaluate once and report errors as text', () => {
  const { mgr, connect, commit } = setup();
  commit((tx) => { tx.insert(4096, alice); });
  const a = connect(10n);
  assert.deepEqual(mgr.oneOffQuery(a.handle, 3, 'SELECT * FROM person'),
    { tag: 'OneOffQueryResult', requestId: 3, result: { ok: true, rows: [{ table: 'person', rows: [alice] }] } });
  const bad = mgr.oneOffQuery(a.handle, 4, 'SELEC nonsense');
  assert.equal(bad.tag === 'OneOffQueryResult' && bad.result.ok, false);
  assert.equal(mgr.queryCount, 0);
});

test('joins are maintained incrementally through the plan delta', () => {
  const { mgr, connect, commit } = setup();
  commit((tx) => { tx.insert(4096, alice); tx.insert(4096, bob); });
  const a = connect(10n);
  const r = mgr.subscribe(a.handle, 0, 0, ['SELECT p.* FROM person p JOIN owned o ON p.id = o.id']);
  assert.deepEqual(r.tag === 'SubscribeApplied' && r.rows, [{ table: 'person', rows: [] }]);
  commit((tx) => { tx.insert(4099, row('owned', [2, [5n]])); });
  assert.deepEqual(decoded(a.sink.deliveries[0].querySets), [{ set: 0, table: 'person', inserts: [hex(bob)], deletes: [] }]);
  commit((tx) => { tx.deleteByRows(4099, [row('owned', [2, [5n]])]); });
  assert.deepEqual(decoded(a.sink.deliveries[1].querySets), [{ set: 0, table: 'person', inserts: [], deletes: [hex(bob)] }]);
  commit((tx) => { tx.insert(4096, row('person', [3, 'cy', 1])); });
  assert.equal(a.sink.deliveries.length, 2, 'a person without an owned row does not change the join');
});

test('equality-filtered queries are looked up by the changed rows\' values: every client gets exactly its rows', () => {
  // person(id u32, name string, age u32). Filters of every kind the lookup files (u32 and string columns, constant on
  // either side, with another conjunct) beside ones asked about every change (OR, <, two columns, no WHERE).
  const { mgr, connect, commit } = setup();
  type Person = [number, string, number];
  const queries: [string, (r: Person) => boolean][] = [];
  for (let age = 0; age < 6; age++) queries.push([`SELECT * FROM person WHERE age = ${age}`, (r) => r[2] === age]);
  for (const name of ['a', 'b', 'c']) queries.push([`SELECT * FROM person WHERE '${name}' = name`, (r) => r[1] === name]);
  queries.push(['SELECT * FROM person WHERE age = 2 AND id > 3', (r) => r[2] === 2 && r[0] > 3]);
  queries.push(["SELECT * FROM person WHERE name = 'b' AND age = 1", (r) => r[1] === 'b' && r[2] === 1]);
  queries.push(['SELECT * FROM person WHERE age = 1 OR age = 4', (r) => r[2] === 1 || r[2] === 4]);
  queries.push(['SELECT * FROM person WHERE age < 2', (r) => r[2] < 2]);
  queries.push(['SELECT * FROM person WHERE id = age', (r) => r[0] === r[2]]);
  queries.push(['SELECT * FROM person', () => true]);
  const clients = queries.map(([q], i) => {
    const c = connect(BigInt(100 + i));
    assert.equal(mgr.subscribe(c.handle, 1, 1, [q]).tag, 'SubscribeApplied', q);
    return c;
  });

  let seed = 7;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const live = new Map<number, Person>();
  const enc = (r: Person) => row('person', r);
  for (let round = 0; round < 80; round++) {
    const inserted: Person[] = [];
    const deleted: Person[] = [];
    commit((tx) => {
      const touched = new Set<number>(); // a row inserted and deleted in one commit is no change
      for (let k = 0; k < 1 + rand(3); k++) {
        const id = rand(12);
        if (touched.has(id)) continue;
        touched.add(id);
        const old = live.get(id);
        if (old !== undefined) {
          tx.deleteByRows(4096, [enc(old)]);
          live.delete(id);
          deleted.push(old);
        } else {
          const r: Person = [id, 'abc'[rand(3)]!, rand(6)];
          tx.insert(4096, enc(r));
          live.set(id, r);
          inserted.push(r);
        }
      }
    });
    clients.forEach((c, i) => {
      const [q, want] = queries[i]!;
      const expected = {
        inserts: inserted.filter(want).map((r) => hex(enc(r))).sort(),
        deletes: deleted.filter(want).map((r) => hex(enc(r))).sort(),
      };
      assertDelivered(c.sink, expected, `round ${round}: ${q}`);
    });
  }
});

test('join queries filed by a constant get exactly their changes under random commits to both tables (against a model)', () => {
  // membership(id, room, member) and message(id, room, text) with `room` indexed, note(id, room) without, owned(id,
  // owner identity). Joins with a constant on either table, reached by index (room, id), by the join column itself, or
  // by a scan (note.room has no index), beside joins asked about every change (no constant, OR, a self join). The
  // model re-evaluates every query.
  const { mgr, connect, commit } = setup();
  type Row = number | string | [bigint];
  const state = {
    membership: new Map<number, Row[]>(), message: new Map<number, Row[]>(), note: new Map<number, Row[]>(), owned: new Map<number, Row[]>(),
  };
  type TableName = keyof typeof state;
  const tableIds: Record<TableName, number> = { membership: 4100, message: 4101, note: 4102, owned: 4099 };
  const rowsOf = (t: TableName) => [...state[t].values()];
  /** `SELECT <ret>.* FROM <a> JOIN <b> ON a.<x> = b.<y> WHERE pred(a row, b row)`, evaluated by nested loops. */
  const join = (a: TableName, b: TableName, x: number, y: number, returnA: boolean, pred: (ra: Row[], rb: Row[]) => boolean) =>
    () => rowsOf(a).flatMap((ra) => rowsOf(b).filter((rb) => ra[x] === rb[y] && pred(ra, rb)).map((rb) => hex(row(returnA ? a : b, returnA ? ra : rb))));
  const queries: [string, () => string[]][] = [];
  for (const who of ['a', 'b', 'c']) {
    queries.push([`SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE u.member = '${who}'`,
      join('message', 'membership', 1, 1, true, (_m, u) => u[2] === who)]);
    queries.push([`SELECT u.* FROM membership u JOIN message m ON u.room = m.room WHERE u.member = '${who}'`,
      join('membership', 'message', 1, 1, true, (u) => u[2] === who)]);
    queries.push([`SELECT n.* FROM note n JOIN membership u ON n.room = u.room WHERE '${who}' = u.member`,
      join('note', 'membership', 1, 1, true, (_n, u) => u[2] === who)]);
    queries.push([`SELECT m.* FROM message m JOIN membership u ON m.id = u.id WHERE u.member = '${who}'`,
      join('message', 'membership', 0, 0, true, (_m, u) => u[2] === who)]);
  }
  for (const room of [0, 1, 2]) {
    queries.push([`SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE m.room = ${room}`,
      join('message', 'membership', 1, 1, true, (m) => m[1] === room)]);
    queries.push([`SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE u.room = ${room}`,
      join('message', 'membership', 1, 1, true, (_m, u) => u[1] === room)]);
    queries.push([`SELECT u.* FROM membership u JOIN note n ON u.room = n.room WHERE n.id = ${room}`,
      join('membership', 'note', 1, 1, true, (_u, n) => n[0] === room)]);
  }
  queries.push(["SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE u.member = 'a' AND m.id > 3",
    join('message', 'membership', 1, 1, true, (m, u) => u[2] === 'a' && (m[0] as number) > 3)]);
  queries.push(["SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE m.room = 1 AND u.member = 'b'",
    join('message', 'membership', 1, 1, true, (m, u) => m[1] === 1 && u[2] === 'b')]);
  queries.push(["SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE u.member = 'a' OR u.member = 'c'",
    join('message', 'membership', 1, 1, true, (_m, u) => u[2] === 'a' || u[2] === 'c')]);
  queries.push(['SELECT u.* FROM membership u JOIN message m ON u.room = m.room',
    join('membership', 'message', 1, 1, true, () => true)]);
  // Identity constants (owned.owner), a literal and each client's own `:sender` (its identity is 100 + its index).
  const owners = [1n, 2n, BigInt(100 + queries.length)];
  queries.push(['SELECT m.* FROM message m JOIN owned o ON m.id = o.id WHERE o.owner = :sender',
    join('message', 'owned', 0, 0, true, (_m, o) => (o[1] as [bigint])[0] === owners[2])]);
  queries.push(['SELECT o.* FROM owned o JOIN membership u ON o.id = u.id WHERE o.owner = 0x01',
    join('owned', 'membership', 0, 0, true, (o) => (o[1] as [bigint])[0] === 1n)]);
  queries.push(['SELECT * FROM owned WHERE owner = 0x02', () => rowsOf('owned').filter((o) => (o[1] as [bigint])[0] === 2n).map((o) => hex(row('owned', o)))]);
  // A self join: a change of membership reaches it through either relation, so it is not filed by the constant.
  queries.push(["SELECT u.* FROM membership u JOIN membership v ON u.room = v.room WHERE v.member = 'a'",
    join('membership', 'membership', 1, 1, true, (_u, v) => v[2] === 'a')]);
  const clients = queries.map(([q], i) => {
    const c = connect(BigInt(100 + i));
    assert.equal(mgr.subscribe(c.handle, 1, 1, [q]).tag, 'SubscribeApplied', q);
    return c;
  });

  let seed = 11;
  // The high bits: an LCG's low bits repeat with short periods, which left each room with one member.
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return (seed >>> 12) % n; };
  const fresh: Record<TableName, () => Row[]> = {
    membership: () => [0, rand(3), 'abc'[rand(3)]!],
    message: () => [0, rand(3), 'xy'[rand(2)]!],
    note: () => [0, rand(3)],
    owned: () => [0, [owners[rand(3)]!]],
  };
  for (let round = 0; round < 150; round++) {
    const before = queries.map(([, evaluate]) => evaluate());
    commit((tx) => {
      // 1–4 writes over the three tables: inserts, deletes and updates that move a row to another room or member; an
      // id may be written twice in one commit (the transaction's net change is what counts).
      for (let k = 0; k < 1 + rand(4); k++) {
        const t = (['membership', 'message', 'note', 'owned'] as const)[rand(4)]!;
        const id = rand(8);
        const old = state[t].get(id);
        const next = fresh[t]();
        next[0] = id;
        if (old === undefined) {
          tx.insert(tableIds[t], row(t, next));
          state[t].set(id, next);
        } else if (rand(2) === 0) {
          tx.deleteByRows(tableIds[t], [row(t, old)]);
          state[t].delete(id);
        } else {
          tx.update(tableIds[t], tableIds[t] * 10, row(t, next));
          state[t].set(id, next);
        }
      }
    });
    clients.forEach((c, i) => {
      const [q, evaluate] = queries[i]!;
      const after = evaluate();
      // Bag difference: a row whose multiplicity grew by k is inserted k times, shrank by k deleted k times.
      const count = new Map<string, number>();
      for (const r of after) count.set(r, (count.get(r) ?? 0) + 1);
      for (const r of before[i]!) count.set(r, (count.get(r) ?? 0) - 1);
      const expected = { inserts: [] as string[], deletes: [] as string[] };
      for (const [r, n] of count) for (let j = 0; j < Math.abs(n); j++) (n > 0 ? expected.inserts : expected.deletes).push(r);
      assertDelivered(c.sink, expected, `round ${round}: ${q}`);
    });
  }
});

test('a changed row asks only the join queries whose constant it reaches; without an index on the way, through a scan', () => {
  const ds = newDatastore();
  let deltaCalls = 0;
  const mgr = new SubscriptionManager({
    view: () => ds,
    compile: (text, view, options) => {
      const plan = compileWithSql(text, view, options);
      const delta = plan.delta.bind(plan);
      return Object.assign(plan, { delta: (v: typeof view, tx: Parameters<typeof delta>[1]) => { deltaCalls++; return delta(v, tx); } });
    },
  });
  const sinks: RecordingSink[] = [];
  const subscribe = (text: string) => {
    const sink = new RecordingSink();
    const handle = mgr.addClient({ identity: BigInt(sinks.length + 1), connectionId: BigInt(sinks.length + 1), isOwner: false }, sink);
    assert.equal(mgr.subscribe(handle, 1, 1, [text]).tag, 'SubscribeApplied', text);
    sinks.push(sink);
  };
  // 30 members, three to a room, each subscribed to the messages of its rooms; two queries whose constant's table
  // (note) has no index on its join column: a changed message reaches them through a scan of note (note 1 is in room
  // 3, note 2 in room 5). Before session 11 they were asked about every message, and each delta scanned note.
  write(ds, (tx) => {
    for (let i = 0; i < 30; i++) tx.insert(4100, row('membership', [i, i % 10, `m${i}`]));
    tx.insert(4102, row('note', [1, 3]));
    tx.insert(4102, row('note', [2, 5]));
  });
  for (let i = 0; i < 30; i++) subscribe(`SELECT m.* FROM message m JOIN membership u ON m.room = u.room WHERE u.member = 'm${i}'`);
  subscribe('SELECT m.* FROM message m JOIN note n ON m.room = n.room WHERE n.id = 1');
  subscribe('SELECT m.* FROM message m JOIN note n ON m.room = n.room WHERE n.id = 2');
  const commit = (fn: Parameters<typeof write>[1]) => {
    deltaCalls = 0;
    for (const s of sinks) s.deliveries.length = 0;
    mgr.handleCommit(write(ds, fn), undefined);
    return sinks.flatMap((s, i) => (s.deliveries.length > 0 ? [i] : []));
  };
  const hello = row('message', [1, 3, 'hello']);
  assert.deepEqual(commit((tx) => { tx.insert(4101, hello); }), [3, 13, 23, 30]);
  assert.equal(deltaCalls, 3 + 1);
  // m13 moves to room 4: found by its own value; the message it saw leaves its result.
  assert.deepEqual(commit((tx) => { tx.update(4100, 41000, row('membership', [13, 4, 'm13'])); }), [13]);
  assert.equal(deltaCalls, 1);
  assert.deepEqual(commit((tx) => { tx.deleteByRows(4101, [hello]); }), [3, 23, 30]);
  assert.equal(deltaCalls, 2 + 1);
  assert.deepEqual(commit((tx) => { tx.insert(4101, row('message', [2, 5, 'to note 2'])); }), [5, 15, 25, 31]);
  assert.equal(deltaCalls, 3 + 1);
  assert.deepEqual(commit((tx) => { tx.insert(4101, row('message', [3, 99, 'nobody'])); }), []);
  assert.equal(deltaCalls, 0);
});
