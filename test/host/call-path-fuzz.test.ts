// Host: the fast call path against the plain one, on random work. Database A takes every burst of calls at once (batched
// entry, the module's row cache, read-ahead, queued updates, deletes and inserts, sequence leases: isolate-src.ts and
// syscalls.ts); database B takes the same calls one at a time with every write crossing (SPACETIME_IMMEDIATE_WRITES).
// Random bursts mix finds by integer, string and caller keys, updates that change a row's length, updates of rows the
// call never read, deletes and inserts
// of rows the cache holds (by an autoInc key too, and a 0 key), updates of a table with other unique columns (kept:
// queued; changed: crossing, taken or free, a badge generated), autoInc and plain inserts, non-unique index reads with
// writes through them, scans and counts between a find and its update, calls that fail (SenderError, a thrown Error,
// a unique violation) and SQL writes between bursts. After every burst both must agree on
// every call's outcome and TxData and on the whole state; at the end on the module's log and, byte for byte, on the
// commit log. The scripted tests (deferred-equivalence, read-ahead) pin known cases; this one looks for the unknown.
// A failure names the seed and the burst: SPACETIME_FUZZ_SEED=<seed> re-runs that one (SPACETIME_FUZZ_BURSTS=<n>: more
// bursts per seed, for a longer hunt).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Caller, Database } from '../../src/host/database.js';
import { mulberry32 } from '../../bench/keynote/workload.js';
import { callSummary, commitLogBytes, createOnPath, sourceBundle } from './bundle.js';

const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };
const callers: Caller[] = Array.from({ length: 6 }, (_, i) => ({
  identity: 0xc2000000n + BigInt(i) * 0x10000001n, connectionId: BigInt(i + 1), jwtPayload: undefined,
}));
const seeds = process.env.SPACETIME_FUZZ_SEED !== undefined ? [Number(process.env.SPACETIME_FUZZ_SEED)] : [1, 2, 3];
const burstsPerSeed = Number(process.env.SPACETIME_FUZZ_BURSTS ?? 40);
const burstCallsMax = 40;
const accountIds = 48;
/** A u64 key past 2^48 (the seed's first thing): the row cache keys it by a string, smaller ones by a number. */
const bigThingId = 2 ** 50 + 3;
const names = ['', 'ann', 'bob', 'zoë', 'a much longer name than the others ✓', 'x'.repeat(40), 'b', 'c\u0000d'];

const moduleSource = `
import { schema, table, t, Range, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({
  accounts: table({ name: 'accounts', indexes: [{ accessor: 'by_tier', algorithm: 'btree', columns: ['tier'] }] }, {
    id: t.u32().primaryKey(), owner: t.string(), balance: t.i64(), tier: t.u8(), tag: t.option(t.string()),
  }),
  users: table({ name: 'users' }, { name: t.string().primaryKey(), score: t.u32() }),
  players: table({ name: 'players' }, { who: t.identity().primaryKey(), points: t.u64() }),
  audit: table({ name: 'audit' }, { id: t.u64().primaryKey().autoInc(), from: t.u32(), to: t.u32(), memo: t.string() }),
  notes: table({ name: 'notes', indexes: [{ accessor: 'by_who', algorithm: 'btree', columns: ['who'] }] }, {
    who: t.u32(), text: t.string(),
  }),
  // An autoInc primary key: found rows are updated and deleted without crossing unless the key is 0.
  things: table({ name: 'things' }, { id: t.u64().primaryKey().autoInc(), owner: t.u32(), label: t.string() }),
  // Unique columns besides the key (a string and an autoInc): an update that keeps them is queued, one that changes
  // them crosses (and may break a unique constraint or generate a badge).
  members: table({ name: 'members' }, {
    id: t.u32().primaryKey(), handle: t.string().unique(), badge: t.u64().unique().autoInc(), level: t.u8(),
  }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) ctx.db.accounts.insert({ id, owner: 'o' + id, balance: 100n, tier: id % 4, tag: undefined });
  ctx.db.things.insert({ id: 1125899906842627n, owner: 0, label: 'big' });
  for (let id = 0; id < 12; id++) ctx.db.members.insert({ id, handle: 'h' + id, badge: 0n, level: 0 });
});
// mode 0: the level (guards kept: queued), 1: the handle (crosses; taken or free), 2: badge 0 (a new one generated),
// 3: another member's badge (taken), 4: the level twice, 5: the handle tried and the error caught, then the level,
// 6: an update of a member never read (the level, every column from the arguments), 7: a new member (insert).
export const member = spacetimedb.reducer({ id: t.u32(), handle: t.string(), mode: t.u8() }, (ctx, { id, handle, mode }) => {
  const byId = ctx.db.members.id;
  if (mode === 6) {
    try { byId.update({ id, handle: 'h' + id, badge: BigInt(id + 1), level: 6 }); } catch (e) { console.info('blind: ' + e.message); }
    return;
  }
  if (mode === 7) { const m = ctx.db.members.insert({ id, handle, badge: 0n, level: 7 }); console.info('badge ' + m.badge); return; }
  const m = byId.find(id);
  if (m === null) throw new SenderError('no member ' + id);
  if (mode === 0) byId.update({ ...m, level: (m.level + 1) % 256 });
  else if (mode === 1) byId.update({ ...m, handle });
  else if (mode === 2) console.info('badge ' + byId.update({ ...m, badge: 0n }).badge);
  else if (mode === 3) byId.update({ ...m, badge: m.badge + 1n });
  else if (mode === 4) { byId.update({ ...m, level: 40 }); const m2 = byId.find(id); byId.update({ ...m2, level: m2.level + 1 }); }
  else {
    try { byId.update({ ...m, handle }); } catch (e) { console.info('taken: ' + e.message); }
    const m2 = byId.find(id);
    byId.update({ ...m2, level: m2.level + 2 });
  }
  const now = byId.find(id);
  if (now === null || ctx.db.members.handle.find(now.handle)?.id !== id) throw new Error('member ' + id + ' lost');
});
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  const byId = ctx.db.accounts.id;
  const a = byId.find(from), b = byId.find(to);
  if (a === null || b === null) throw new SenderError('account_missing');
  if (a.balance < amount) throw new SenderError('insufficient_funds');
  byId.update({ ...a, balance: a.balance - amount });
  const b2 = byId.find(to);
  byId.update({ ...b2, balance: b2.balance + amount });
  ctx.db.audit.insert({ id: 0n, from, to, memo: 'transfer ' + amount });
});
export const rename = spacetimedb.reducer({ id: t.u32(), owner: t.string() }, (ctx, { id, owner }) => {
  const r = ctx.db.accounts.id.find(id);
  if (r === null) throw new SenderError('no account ' + id);
  ctx.db.accounts.id.update({ ...r, owner, tag: owner.length % 2 ? owner + owner : undefined });
});
export const close = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  if (!ctx.db.accounts.id.delete(id)) throw new SenderError('no account ' + id);
  if (ctx.db.accounts.id.find(id) !== null) throw new Error('a deleted account was found');
});
// A unique violation when the account exists: the call fails and its writes go back.
export const open = spacetimedb.reducer({ id: t.u32(), owner: t.string(), tier: t.u8() }, (ctx, { id, owner, tier }) => {
  ctx.db.audit.insert({ id: 0n, from: id, to: id, memo: 'open' });
  ctx.db.accounts.insert({ id, owner, balance: 10n, tier, tag: undefined });
});
// Delete a row, put it back changed under another key, read both keys.
export const move = spacetimedb.reducer({ id: t.u32(), to: t.u32() }, (ctx, { id, to }) => {
  const byId = ctx.db.accounts.id, r = byId.find(id);
  if (r === null) throw new SenderError('no account ' + id);
  byId.delete(id);
  if (byId.find(to) !== null) throw new SenderError('taken ' + to);
  byId.insert({ ...r, id: to, owner: r.owner + '>' });
  if (byId.find(id) !== null || byId.find(to) === null) throw new Error('move not seen');
});
export const bump = spacetimedb.reducer({ name: t.string(), by: t.u32() }, (ctx, { name, by }) => {
  const u = ctx.db.users.name.find(name);
  if (u === null) ctx.db.users.insert({ name, score: by });
  else ctx.db.users.name.update({ ...u, score: u.score + by });
});
export const drop_user = spacetimedb.reducer({ name: t.string() }, (ctx, { name }) => {
  const u = ctx.db.users.name.find(name);
  if (u === null) throw new SenderError('no user');
  ctx.db.users.name.delete(name);
  ctx.db.users.name.delete(name);
});
export const score = spacetimedb.reducer({ points: t.u64() }, (ctx, { points }) => {
  const p = ctx.db.players.who.find(ctx.sender);
  if (p === null) ctx.db.players.insert({ who: ctx.sender, points });
  else if (points === 0n) ctx.db.players.who.delete(ctx.sender);
  else ctx.db.players.who.update({ ...p, points: p.points + points });
});
export const note = spacetimedb.reducer({ who: t.u32(), text: t.string(), n: t.u8() }, (ctx, { who, text, n }) => {
  for (let i = 0; i < n; i++) ctx.db.notes.insert({ who, text: text + (i % 3) });
  console.info('notes of ' + who + ': ' + [...ctx.db.notes.by_who.filter(who)].length + ' of ' + ctx.db.notes.count());
});
// Reads through a non-unique index, writes each row it found through the primary key.
export const tier_pay = spacetimedb.reducer({ tier: t.u8(), amount: t.i64() }, (ctx, { tier, amount }) => {
  let n = 0;
  for (const r of [...ctx.db.accounts.by_tier.filter(tier)]) {
    ctx.db.accounts.id.update({ ...r, balance: r.balance + amount });
    n++;
  }
  console.info('paid ' + n + ' in tier ' + tier);
});
// Reads through a non-unique index (the rows the find and update then take from), deletes one of them, finds it gone.
export const tier_prune = spacetimedb.reducer({ tier: t.u8() }, (ctx, { tier }) => {
  const rows = [...ctx.db.accounts.by_tier.filter(tier)];
  if (rows.length < 2) throw new SenderError('too few in tier ' + tier);
  const byId = ctx.db.accounts.id;
  byId.update({ ...rows[1], balance: rows[1].balance + 1n });
  if (byId.find(rows[1].id).balance !== rows[1].balance + 1n) throw new Error('the update was not seen');
  byId.delete(rows[0].id);
  if (byId.find(rows[0].id) !== null) throw new Error('a deleted row was found');
});
// A whole-table scan (more rows than are searched one key at a time): a row found before it and updated after it stays
// as updated when the scan's other rows are updated (cached whole at the first of them).
export const sweep = spacetimedb.reducer({ anchor: t.u32(), below: t.i64() }, (ctx, { anchor, below }) => {
  const byId = ctx.db.accounts.id;
  const a = byId.find(anchor);
  const all = [...ctx.db.accounts.iter()];
  if (a !== null) byId.update({ ...a, balance: a.balance + 5n });
  for (const r of all) if (r.id !== anchor && r.balance < below) byId.update({ ...r, balance: r.balance + 1n });
  if (a !== null && byId.find(anchor).balance !== a.balance + 5n) throw new Error('the anchor update was lost');
});
// Reads that cross but write nothing (a table scan, a count) between a find and the update of the found row.
export const look_then_pay = spacetimedb.reducer({ id: t.u32(), amount: t.i64() }, (ctx, { id, amount }) => {
  const r = ctx.db.accounts.id.find(id);
  if (r === null) throw new SenderError('no account ' + id);
  let notes = 0;
  for (const n of ctx.db.notes.iter()) if (n.who !== id) notes++;
  const total = ctx.db.accounts.count();
  ctx.db.accounts.id.update({ ...r, balance: r.balance + amount, tag: 'seen ' + notes + '/' + total });
  if (ctx.db.accounts.id.find(id).balance !== r.balance + amount) throw new Error('the update was not seen');
});
export const make_thing = spacetimedb.reducer({ owner: t.u32(), label: t.string() }, (ctx, { owner, label }) => {
  const row = ctx.db.things.insert({ id: 0n, owner, label });
  console.info('thing ' + row.id);
});
export const poke_thing = spacetimedb.reducer({ id: t.u64(), label: t.string() }, (ctx, { id, label }) => {
  const r = ctx.db.things.id.find(id);
  if (r === null) throw new SenderError('no thing');
  ctx.db.things.id.update({ ...r, owner: r.owner + 1, label: r.label.length > 30 ? label : r.label + label });
  if (ctx.db.things.id.find(id).owner !== r.owner + 1) throw new Error('the update was not seen');
  if (label.length === 1) ctx.db.things.id.delete(id);
});
// An update with key 0 generates a key (as an insert would), which no row has.
export const poke_zero = spacetimedb.reducer({ label: t.string() }, (ctx, { label }) => {
  ctx.db.things.id.update({ id: 0n, owner: 0, label });
});
// Updates of rows the call never read (they cross unless cached), between finds and updates of rows it did read, of
// the same tables: what the row cache holds of the other tables stays true, of the written table it is dropped. An
// update of a missing row fails and is caught.
export const blind = spacetimedb.reducer({ id: t.u32(), other: t.u32(), name: t.string(), name2: t.string(), by: t.u32() },
  (ctx, { id, other, name, name2, by }) => {
    const a = ctx.db.accounts.id.find(id), u = ctx.db.users.name.find(name);
    if (by === 0) console.info('dropped ' + ctx.db.users.name.delete(name2));
    else try { ctx.db.users.name.update({ name: name2, score: by }); } catch { console.info('no user ' + name2); }
    if (a !== null) { const a2 = ctx.db.accounts.id.find(id); ctx.db.accounts.id.update({ ...a2, balance: a2.balance + 1n }); }
    try {
      ctx.db.accounts.id.update({ id: other, owner: 'blind ' + by, balance: BigInt(by), tier: other % 4, tag: undefined });
    } catch { console.info('no account ' + other); }
    if (u !== null) {
      const u2 = ctx.db.users.name.find(name);
      if (u2 === null) throw new Error('a user was lost');
      ctx.db.users.name.update({ ...u2, score: u2.score + by });
    }
    const a3 = ctx.db.accounts.id.find(id);
    if (a3 !== null) ctx.db.accounts.id.update({ ...a3, tag: 'after ' + (a3.tag ?? '') });
  });
// Deletes that cross, after the rows were found (the row cache holds them under the primary key) and another was
// updated (queued): by the primary key (mode 0), through a non-unique index by value (1) and by range (2). What each
// deleted must not be found after, the rest must, and the queued update must have reached the host first.
export const prune = spacetimedb.reducer({ lo: t.u32(), tier: t.u8(), mode: t.u8() }, (ctx, { lo, tier, mode }) => {
  const byId = ctx.db.accounts.id;
  const seen = [lo, lo + 1, lo + 2].map((id) => byId.find(id));
  const keep = byId.find(lo + 3);
  if (keep !== null) byId.update({ ...keep, balance: keep.balance + 3n, tag: 'kept' });
  const gone = mode === 0 ? byId.delete(lo) : mode === 1 ? ctx.db.accounts.by_tier.delete(tier)
    : ctx.db.accounts.by_tier.delete(new Range({ tag: 'included', value: tier }, { tag: 'excluded', value: tier + 1 }));
  console.info('pruned ' + gone);
  const deleted = (r) => (mode === 0 ? r.id === lo : r.tier === tier);
  for (const r of seen) {
    if (r === null) continue;
    const now = byId.find(r.id);
    if (deleted(r) !== (now === null)) throw new Error('account ' + r.id + ' after the prune: ' + (now === null ? 'gone' : 'there'));
  }
  const kept = byId.find(lo + 3);
  if (keep !== null && !deleted(keep) && (kept === null || kept.balance !== keep.balance + 3n)) throw new Error('the update before the prune was lost');
});
// Writes, then fails: nothing of it stays, and the calls after it in the batch see the state before it.
export const boom = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  const r = ctx.db.accounts.id.find(id);
  if (r !== null) ctx.db.accounts.id.update({ ...r, balance: r.balance + 1000n, owner: 'boom' });
  ctx.db.notes.insert({ who: id, text: 'boom' });
  ctx.db.audit.insert({ id: 0n, from: id, to: id, memo: 'boom' });
  throw new Error('boom ' + id);
});
`;

type Call = [string, unknown[], Caller];

function randomCall(r: () => number): Call {
  const int = (n: number) => Math.floor(r() * n);
  const id = () => (r() < 0.05 ? 1000 + int(5) : int(accountIds));
  const name = () => names[int(names.length)];
  const caller = callers[int(callers.length)];
  const kinds: [number, () => [string, unknown[]]][] = [
    [30, () => ['transfer', [id(), id(), int(4) === 0 ? 500 : 1 + int(20)]]],
    [8, () => ['rename', [id(), name()]]],
    [5, () => ['close', [id()]]],
    [5, () => ['open', [id(), name(), int(4)]]],
    [5, () => ['move', [id(), r() < 0.3 ? id() : accountIds + int(16)]]],
    [12, () => ['bump', [name(), 1 + int(5)]]],
    [4, () => ['drop_user', [name()]]],
    [12, () => ['score', [int(4)]]],
    [6, () => ['note', [int(8), name(), int(4)]]],
    [4, () => ['tier_pay', [int(5), int(7) - 3]]],
    [2, () => ['tier_prune', [int(5)]]],
    [3, () => ['sweep', [id(), int(150)]]],
    [4, () => ['boom', [id()]]],
    [5, () => ['look_then_pay', [id(), int(9) - 4]]],
    [6, () => ['make_thing', [int(5), name()]]],
    [12, () => ['poke_thing', [r() < 0.2 ? bigThingId : int(12), name()]]],
    [1, () => ['poke_zero', [name()]]],
    [8, () => ['blind', [id(), id(), name(), name(), int(9)]]],
    [3, () => ['prune', [int(accountIds), int(4), int(3)]]],
    [14, () => ['member', [int(14), 'h' + int(16), int(8) === 0 ? 1 + int(7) : 0]]],
  ];
  let pick = r() * kinds.reduce((s, [w]) => s + w, 0);
  for (const [w, make] of kinds) {
    pick -= w;
    if (pick < 0) return [...make(), caller];
  }
  return [...kinds[0][1](), caller];
}

/** SQL between bursts: writes the module's row cache must not survive. */
function randomSql(r: () => number): string | undefined {
  const k = Math.floor(r() * 9), id = Math.floor(r() * accountIds);
  if (k === 0) return `UPDATE accounts SET balance = ${Math.floor(r() * 500)} WHERE id = ${id}`;
  if (k === 1) return `DELETE FROM accounts WHERE id = ${id}`;
  if (k === 2) return `INSERT INTO accounts (id, owner, balance, tier, tag) VALUES (${id}, 'sql', 7, 1, NULL)`;
  if (k === 3) return `DELETE FROM notes WHERE who = ${Math.floor(r() * 8)}`;
  if (k === 4) return `UPDATE users SET score = 0 WHERE name = 'ann'`;
  if (k === 5) return `INSERT INTO things (id, owner, label) VALUES (0, 9, 'sql')`;
  if (k === 6) return `DELETE FROM things WHERE owner = ${Math.floor(r() * 6)}`;
  if (k === 7) return `INSERT INTO things (id, owner, label) VALUES (${bigThingId}, 3, 'big')`;
  if (k === 8) return `UPDATE members SET handle = 'h${Math.floor(r() * 16)}' WHERE id = ${Math.floor(r() * 12)}`;
  return undefined;
}

for (const seed of seeds) {
  test(`random bursts give the same outcomes, states and commit log batched and one at a time (seed ${seed})`,
    { timeout: 120_000 }, async () => {
      const program = await sourceBundle(moduleSource, 'call-path-fuzz.ts');
      const root = mkdtempSync(join(tmpdir(), 'stdb-call-fuzz-'));
      let now = 1_700_000_000_000_000n;
      const clock = { nowMicros: () => now };
      const open = (name: string, immediate: boolean): Promise<Database> => createOnPath({ identity: 0xc500aan,
        ownerIdentity: owner.identity, dataDir: join(root, name), clock, limits: { reducerTimeoutMs: 2000 }, report: () => {} },
      program, immediate);
      const fast = await open('fast', false);
      const plain = await open('plain', true);
      const r = mulberry32(seed);   // seeded, so a failing seed replays
      try {
        for (const db of [fast, plain]) assert.equal((await db.callReducerJson('seed', [accountIds], owner)).status, 'committed');
        for (let b = 0; b < burstsPerSeed; b++) {
          now += 1_000n;
          const where = `seed ${seed}, burst ${b}`;
          const sql = randomSql(r);
          if (sql !== undefined) {
            const outcomes = [];
            for (const db of [fast, plain]) outcomes.push(await db.sql(sql, owner).then(() => 'ok', (e: Error) => e.message));
            assert.equal(outcomes[0], outcomes[1], `${where}: ${sql}`);
          }
          const burst = Array.from({ length: 1 + Math.floor(r() * burstCallsMax) }, () => randomCall(r));
          const expected: unknown[] = [];
          for (const [name, args, caller] of burst) expected.push(callSummary(await plain.callReducerJson(name, args, caller)));
          const got = await Promise.all(burst.map(([name, args, caller]) => fast.callReducerJson(name, args, caller)));
          for (let i = 0; i < burst.length; i++) {
            assert.deepEqual(callSummary(got[i]), expected[i], `${where}, call ${i} ${JSON.stringify(burst[i].slice(0, 2))}`);
          }
          assert.deepEqual(fast.datastore.exportSnapshot(), plain.datastore.exportSnapshot(), `${where}: state`);
        }
        const log = (db: Database) => db.logs.tail(10_000).map((x) => x.message);
        assert.deepEqual(log(fast), log(plain), `seed ${seed}: module logs`);
        assert.ok(fast.counters.callBatches > 0, 'the fast database ran calls in batches');
      } finally {
        await fast.close();
        await plain.close();
      }
      const reference = commitLogBytes(join(root, 'plain'));
      assert.ok(reference.length > 0);
      assert.ok(commitLogBytes(join(root, 'fast')).equals(reference), `seed ${seed}: byte-identical commit logs`);
      rmSync(root, { recursive: true, force: true });
    });
}
