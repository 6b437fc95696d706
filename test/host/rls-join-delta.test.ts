// Row-level security whose filters join other tables (host/views.ts CallerPlan `joinFilters`): each subscriber's
// delta comes from the filters' own join deltas and a count per visible row, not from re-evaluating its query. Checked
// against a model under random commits to every table the filters read, with several subscribers, two filters (one
// per sender through an index, one the same for all through a hash join with several derivations per row) and a
// query with a WHERE of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ViewHost } from '../../src/host/views.js';
import { compileRlsFilter } from '../../src/sql/subscription-plan.js';
import { compileWithSql, SubscriptionManager } from '../../src/subscription/manager.js';
import { decodeServerMessages, encodeServerMessage, type QuerySetUpdate, type ServerMessage } from '../../src/subscription/messages.js';
import { codecs, newDatastore, RecordingSink, row, schema, write } from '../subscription/fixture.js';
import type { Value } from '../../src/sats/types.js';

const message = 4101, owned = 4099, note = 4102;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const senders = [11n, 12n, 13n];
const queries = ['SELECT * FROM message', 'SELECT * FROM message WHERE room < 3'];

/** The rows of one delivery, as {inserts, deletes} of hex rows (one query set of one table at most). */
function rowsOf(querySets: QuerySetUpdate[]): { inserts: string[]; deletes: string[] } {
  const [m] = decodeServerMessages(encodeServerMessage({ tag: 'TransactionUpdate', querySets }));
  const out = { inserts: [] as string[], deletes: [] as string[] };
  for (const s of (m as Extract<ServerMessage, { tag: 'TransactionUpdate' }>).querySets) {
    for (const t of s.tables) for (const r of (t as { rows: any[] }).rows) {
      out.inserts.push(...r.inserts.map(hex));
      out.deletes.push(...r.deletes.map(hex));
    }
  }
  return out;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

test('RLS filters that join other tables: every subscriber gets exactly the change of what it sees', () => {
  const ds = newDatastore();
  const rls = new Map([[message, [
    // Rooms the sender owns (owned.id is a room), found from message.room through owned's primary key.
    compileRlsFilter('SELECT message.* FROM message JOIN owned ON message.room = owned.id WHERE owned.owner = :sender', schema),
    // Rooms with a note under id 3 (note.room has no index: a hash join), several notes per room possible.
    compileRlsFilter('SELECT message.* FROM message JOIN note ON message.room = note.room WHERE note.id < 3', schema),
  ]]]);
  const host = new ViewHost({ views: [], rls, base: ds, call: () => assert.fail('no views'), log: () => {} });
  const mgr = new SubscriptionManager({ view: () => ds, compile: host.wrapCompile(compileWithSql) });
  const messages = new Map<number, Value[]>(), owners = new Map<number, bigint>(), notes = new Map<number, number>();
  const visible = (m: Value[], sender: bigint) => {
    const room = m[1] as number;
    return owners.get(room) === sender || [...notes].some(([id, r]) => id < 3 && r === room);
  };
  const subscribers = senders.flatMap((sender, c) => queries.map((q, i) => {
    const sink = new RecordingSink();
    const handle = mgr.addClient({ identity: sender, connectionId: BigInt(10 * c + i + 1), isOwner: false }, sink);
    const applied = mgr.subscribe(handle, 1, 1, [q]);
    assert.equal(applied.tag, 'SubscribeApplied');
    return { sender, q, sink, want: (m: Value[]) => visible(m, sender) && (i === 0 || (m[1] as number) < 3) };
  }));
  const ownedRow = (id: number, owner: bigint) => row('owned', [id, [owner]]);
  const next = rng(20261207);
  const pick = (n: number) => Math.floor(next() * n);
  for (let round = 0; round < 200; round++) {
    const before = subscribers.map((s) => new Set([...messages.values()].filter(s.want).map((m) => hex(row('message', m)))));
    const tx = write(ds, (tx) => {
      for (let w = 1 + pick(4); w > 0; w--) {
        const kind = pick(3), id = pick(12);
        if (kind === 0) {                                   // message: insert, move to another room, or delete
          const old = messages.get(id);
          if (old !== undefined) tx.deleteByRows(message, [row('message', old)]);
          if (old === undefined || next() < 0.6) {
            const m = [id, pick(5), `m${round}`];
            tx.insert(message, row('message', m));
            messages.set(id, m);
          } else messages.delete(id);
        } else if (kind === 1) {                            // a room changes owner, gets one, or loses it
          const room = pick(5), old = owners.get(room);
          if (old !== undefined) tx.deleteByRows(owned, [ownedRow(room, old)]);
          if (old === undefined || next() < 0.5) {
            const owner = senders[pick(3)]!;
            tx.insert(owned, ownedRow(room, owner));
            owners.set(room, owner);
          } else owners.delete(room);
        } else {                                            // a note moves to another room (or is added, or removed)
          const nid = pick(5), old = notes.get(nid);
          if (old !== undefined) tx.deleteByRows(note, [row('note', [nid, old])]);
          if (old === undefined || next() < 0.7) {
            const r = pick(5);
            tx.insert(note, row('note', [nid, r]));
            notes.set(nid, r);
          } else notes.delete(nid);
        }
      }
    });
    mgr.handleCommit(tx, undefined);
    subscribers.forEach((s, i) => {
      const after = new Set([...messages.values()].filter(s.want).map((m) => hex(row('message', m))));
      const expected = { inserts: [...after].filter((k) => !before[i]!.has(k)).sort(), deletes: [...before[i]!].filter((k) => !after.has(k)).sort() };
      const got = { inserts: [] as string[], deletes: [] as string[] };
      for (const d of s.sink.deliveries.splice(0)) {
        const r = rowsOf(d.querySets);
        got.inserts.push(...r.inserts);
        got.deletes.push(...r.deletes);
      }
      assert.deepEqual(s.sink.failures, [], `round ${round}`);
      assert.deepEqual({ inserts: got.inserts.sort(), deletes: got.deletes.sort() }, expected, `round ${round}: ${s.sender} ${s.q}`);
    });
  }
  assert.ok(codecs.has('message'));
});
