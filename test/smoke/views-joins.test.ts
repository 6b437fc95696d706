// Upstream smoketests views.rs, the subscriptions joining views with views or tables on their keys: rows of two
// identities in both tables, a subscriber (the second identity) that sees exactly its own matches come and go.
// Rewritten over test/fixtures/modules/smoke-views-query and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestServer } from '../harness.js';
import { smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

type Mutation = ['update_pk_join_lhs' | 'update_pk_join_rhs', number, boolean] | ['delete_pk_join_lhs', number];
const lhs = (id: number, ok: boolean): Mutation => ['update_pk_join_lhs', id, ok];
const rhs = (id: number, ok: boolean): Mutation => ['update_pk_join_rhs', id, ok];
const del = (id: number): Mutation => ['delete_pk_join_lhs', id];

async function joinFlow(query: string, view: string, mutations: Mutation[]): Promise<void> {
  const db = await st.publish('smoke-views-query');
  for (const fn of ['update_pk_join_lhs', 'update_pk_join_rhs']) assert.equal((await st.call(db, fn, '200', 'true')).code, 0);
  await st.newIdentity();
  const sub = await st.subscribeBackground(db, [query], { n: 4 });
  for (const [fn, ...args] of mutations) {
    const r = await st.call(db, fn, ...args.map(String));
    assert.equal(r.code, 0, r.stderr);
  }
  const events = (await sub.collect()) as Record<string, { deletes: { id: number; ok: boolean }[]; inserts: { id: number; ok: boolean }[] }>[];
  const cut = (r: { id: number; ok: boolean }) => ({ id: r.id, ok: r.ok });
  assert.deepEqual(events.map((e) => ({ [view]: { deletes: e[view]!.deletes.map(cut), inserts: e[view]!.inserts.map(cut) } })), [
    { [view]: { deletes: [], inserts: [{ id: 1, ok: true }] } },
    { [view]: { deletes: [{ id: 1, ok: true }], inserts: [] } },
    { [view]: { deletes: [], inserts: [{ id: 2, ok: true }] } },
    { [view]: { deletes: [{ id: 2, ok: true }], inserts: [] } },
  ]);
}

const bothSides = [lhs(1, true), rhs(1, true), rhs(1, false), rhs(2, true), lhs(2, true), lhs(2, false)];
const withTable = [lhs(1, true), rhs(1, true), del(1), rhs(2, true), lhs(2, true), del(2)];

test('sender views joined, filters on both sides', () => joinFlow(
  'SELECT pk_join_lhs_sender_view.* FROM pk_join_lhs_sender_view JOIN pk_join_rhs_sender_view ON pk_join_lhs_sender_view.id = pk_join_rhs_sender_view.id ' +
  'WHERE pk_join_lhs_sender_view.ok = true AND pk_join_rhs_sender_view.ok = true', 'pk_join_lhs_sender_view', bothSides));

test('anonymous views joined, filters on both sides', () => joinFlow(
  'SELECT pk_join_lhs_view.* FROM pk_join_lhs_view JOIN pk_join_rhs_view ON pk_join_lhs_view.id = pk_join_rhs_view.id ' +
  'WHERE pk_join_lhs_view.ok = true AND pk_join_rhs_view.ok = true', 'pk_join_lhs_view', bothSides));

test('an anonymous view joined with a table, a filter and :sender', () => joinFlow(
  'SELECT pk_join_lhs_view.* FROM pk_join_lhs_view JOIN pk_join_rhs ON pk_join_lhs_view.id = pk_join_rhs.id ' +
  'WHERE pk_join_lhs_view.ok = true AND pk_join_rhs.identity = :sender', 'pk_join_lhs_view',
  [lhs(1, true), rhs(1, true), lhs(1, false), rhs(2, true), lhs(2, true), lhs(2, false)]));

test('an anonymous view joined with a table and :sender', () => joinFlow(
  'SELECT pk_join_lhs_view.* FROM pk_join_lhs_view JOIN pk_join_rhs ON pk_join_lhs_view.id = pk_join_rhs.id ' +
  'WHERE pk_join_rhs.identity = :sender', 'pk_join_lhs_view', withTable));

test('a sender view joined with a table', () => joinFlow(
  'SELECT pk_join_lhs_sender_view.* FROM pk_join_lhs_sender_view JOIN pk_join_rhs ON pk_join_lhs_sender_view.id = pk_join_rhs.id',
  'pk_join_lhs_sender_view', withTable));
