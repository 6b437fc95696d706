// Upstream smoketest filtering.rs (test_filtering): rows found through unique indexes (i32, string, Identity),
// non-unique btree indexes and full scans, before and after deletes, each checked in the last log lines as upstream
// reads them. Upstream runs it as one sequence on one database; the tables never meet, so the three table groups run
// as lanes on a database each (each lane keeps upstream's order and log windows), which keeps the file fast.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { smokeFile, type Smoke } from './helpers.js';

let st: Smoke;
smokeFile((s) => ({ st } = s));

/** One database and upstream's `call(...).unwrap()` then `logs(n)` checks. */
function lane(db: string) {
  const call = async (fn: string, ...args: string[]) => {
    const r = await st.call(db, fn, ...args);
    assert.equal(r.code, 0, `${fn}: ${r.stderr}`);
  };
  const logs = async (n: number, present: string[], absent: string[] = []) => {
    const messages = await st.logMessages(db, n);
    for (const text of present) assert.ok(messages.some((m) => m.includes(text)), `expected '${text}' in ${JSON.stringify(messages)}`);
    for (const text of absent) assert.ok(!messages.some((m) => m.includes(text)), `expected no '${text}' in ${JSON.stringify(messages)}`);
  };
  return { call, logs };
}

async function uniquePeople(db: string): Promise<void> {
  const { call, logs } = lane(db);
  await call('insert_person', '23', '"Alice"', '"al"');
  await call('insert_person', '42', '"Bob"', '"bo"');
  await call('insert_person', '64', '"Bob"', '"b2"');
  await call('find_person', '23');
  await logs(2, ['UNIQUE FOUND: id 23: Alice']);
  await call('find_person_by_name', '"Bob"');
  await logs(4, ['UNIQUE FOUND: id 42: Bob aka bo', 'UNIQUE FOUND: id 64: Bob aka b2']);
  for (const fn of ['find_person', 'find_person_read_only']) {
    await call(fn, '43');
    await logs(2, ['UNIQUE NOT FOUND: id 43']);
  }
  for (const fn of ['find_person_by_nick', 'find_person_by_nick_read_only']) {
    await call(fn, '"al"');
    await logs(2, ['UNIQUE FOUND: id 23: al']);
  }
  await call('delete_person', '23');
  for (const fn of ['find_person', 'find_person_read_only']) {
    await call(fn, '23');
    await logs(2, ['UNIQUE NOT FOUND: id 23']);
  }
  for (const fn of ['find_person_by_nick', 'find_person_by_nick_read_only']) {
    await call(fn, '"al"');
    await logs(2, ['UNIQUE NOT FOUND: nick al']);
  }
  // Rows present in the index but not the table (or the reverse) after a delete.
  for (const [id, name] of [['101', 'Fee'], ['102', 'Fi'], ['103', 'Fo'], ['104', 'Fum']]) {
    await call('insert_person', id!, `"${name}"`, `"${name!.toLowerCase()}"`);
  }
  await call('delete_person', '103');
  for (const fn of ['find_person', 'find_person_read_only']) {
    await call(fn, '104');
    await logs(2, ['UNIQUE FOUND: id 104: Fum']);
  }
  // The second insert collides on both unique columns (id and nick), not on the plain name.
  await call('insert_person_twice', '23', '"Alice"', '"al"');
  await logs(2, ['UNIQUE CONSTRAINT VIOLATION ERROR: id = 23, nick = al']);
}

async function nonuniquePeople(db: string): Promise<void> {
  const { call, logs } = lane(db);
  await call('insert_nonunique_person', '23', '"Alice"', 'true');
  await call('insert_nonunique_person', '42', '"Bob"', 'true');
  for (const fn of ['find_nonunique_person', 'find_nonunique_person_read_only']) {
    await call(fn, '23');
    await logs(2, ['NONUNIQUE FOUND: id 23: Alice']);
  }
  for (const fn of ['find_nonunique_person', 'find_nonunique_person_read_only']) {
    await call(fn, '43');
    await logs(2, [], ['NONUNIQUE NOT FOUND: id 43']);
  }
  await call('insert_nonunique_person', '64', '"Jibbitty"', 'false');
  await call('find_nonunique_humans');
  await logs(4, ['HUMAN FOUND: id 23: Alice', 'HUMAN FOUND: id 42: Bob']);
  await call('find_nonunique_non_humans');
  await logs(2, ['NON-HUMAN FOUND: id 64: Jibbitty']);
  await call('insert_nonunique_person', '23', '"Claire"', 'true');
  for (const fn of ['find_nonunique_person', 'find_nonunique_person_read_only']) {
    await call(fn, '23');
    await logs(4, ['NONUNIQUE FOUND: id 23: Alice', 'NONUNIQUE FOUND: id 23: Claire']);
  }
}

async function indexedAndIdentified(db: string): Promise<void> {
  const { call, logs } = lane(db);
  for (const [id, given] of [['7', 'James'], ['79', 'Gold'], ['1', 'Hydrogen'], ['100', 'Whiskey']]) {
    await call('insert_indexed_person', id!, `"${given}"`, '"Bond"');
  }
  await call('delete_indexed_person', '100');
  for (const fn of ['find_indexed_people', 'find_indexed_people_read_only']) {
    await call(fn, '"Bond"');
    await logs(10, ['INDEXED FOUND: id 7: Bond, James', 'INDEXED FOUND: id 79: Bond, Gold', 'INDEXED FOUND: id 1: Bond, Hydrogen'],
      ['INDEXED FOUND: id 100: Bond, Whiskey']);
  }
  await call('insert_identified_person', '23', '"Alice"');
  await call('find_identified_person', '23');
  await logs(2, ['IDENTIFIED FOUND: Alice']);
}

test('filtering: unique, non-unique, Identity and full-scan lookups, before and after deletes', async () => {
  const groups = [uniquePeople, nonuniquePeople, indexedAndIdentified];
  const dbs = await Promise.all(groups.map(() => st.publish('smoke-filtering')));
  await Promise.all(groups.map((group, i) => group(dbs[i]!)));
});
