// Host: read-ahead (isolate-src.ts "Read-ahead", docs/engine-v2.md §6d). A reducer's point scans keyed by a slice of its
// arguments are learned; at a batch's start the rows its calls will look up that way, and the module's row cache lacks,
// come in one crossing. It must change nothing but the crossings: bursts that read rows nobody read before, delete
// rows a later call of the same batch looks up, look up rows that do not exist, and pass keys at other offsets give
// what the same calls give one at a time (outcomes, TxData, state, the commit log byte for byte), and a burst over
// cold rows crosses a few times per batch instead of once per row, for keys taken from the arguments (integers and
// strings) and from the caller.
import { test } from 'node:test';
import type { Caller } from '../../src/host/database.js';
import { compareBursts, sourceBundle, type BurstCall } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };
const accountsCount = 2_000;

const moduleSource = `
import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({
  accounts: table({ name: 'accounts' }, { id: t.u32().primaryKey(), owner: t.string(), balance: t.i64() }),
  audit: table({ name: 'audit' }, { id: t.u64().primaryKey().autoInc(), from: t.u32(), to: t.u32(), memo: t.string() }),
  players: table({ name: 'players' }, { who: t.identity().primaryKey(), points: t.u64() }),
  users: table({ name: 'users' }, { name: t.string().primaryKey(), score: t.u32() }),
});
export default spacetimedb;
export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) ctx.db.accounts.insert({ id, owner: 'owner-' + id, balance: 1000n });
});
// Rows keyed by a string argument of any length.
export const users_seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let i = 0; i < n; i++) ctx.db.users.insert({ name: 'user-' + 'x'.repeat(i % 13) + i, score: 0 });
});
export const bump = spacetimedb.reducer({ name: t.string(), by: t.u32() }, (ctx, { name, by }) => {
  const u = ctx.db.users.name.find(name);
  if (u === null) throw new SenderError('no user ' + name);
  ctx.db.users.name.update({ ...u, score: u.score + by });
});
// The caller's row, keyed by ctx.sender (not an argument).
export const join = spacetimedb.reducer((ctx) => { ctx.db.players.insert({ who: ctx.sender, points: 0n }); });
export const score = spacetimedb.reducer({ points: t.u64() }, (ctx, { points }) => {
  const p = ctx.db.players.who.find(ctx.sender);
  if (p === null) throw new SenderError('not a player');
  ctx.db.players.who.update({ ...p, points: p.points + points });
});
function move(ctx, from, to, amount, memo) {
  const byId = ctx.db.accounts.id;
  const a = byId.find(from), b = byId.find(to);
  if (a === null || b === null) throw new SenderError('account_missing');
  if (a.balance < amount) throw new SenderError('insufficient_funds');
  byId.update({ ...a, balance: a.balance - amount });
  byId.update({ ...b, balance: b.balance + amount });
  ctx.db.audit.insert({ id: 0n, from, to, memo });
}
export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  move(ctx, from, to, amount, 'transfer');
});
// The keys at other offsets, after a string of any length: its patterns are learned at the offsets of the first calls
// and miss (answers of no row, or of the wrong row) when the memo's length changes.
export const pay = spacetimedb.reducer({ memo: t.string(), to: t.u32(), from: t.u32() }, (ctx, { memo, to, from }) => {
  move(ctx, from, to, 1n, memo);
});
// A delete crosses: a later call of the same batch that looks the row up must find it gone.
export const close = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  if (!ctx.db.accounts.id.delete(id)) throw new SenderError('no account ' + id);
});
`;

type Call = BurstCall;
const players = Array.from({ length: 400 }, (_, i): Caller => ({ identity: 0xc2000000n + BigInt(i) * 0x1000001n, connectionId: BigInt(i + 1), jwtPayload: undefined }));
const userName = (i: number): string => 'user-' + 'x'.repeat(i % 13) + i;
/** `bump` calls of users [from, from + n), some names missing. */
const bumps = (n: number, from: number): Call[] =>
  Array.from({ length: n }, (_, i): Call => ['bump', [i % 9 === 8 ? 'nobody-' + i : userName(from + i), 1 + (i % 4)]]);
/** `score` calls by players [from, from + n), each twice in a row (the second header says "same caller"). */
const scores = (n: number, from: number): Call[] =>
  Array.from({ length: 2 * n }, (_, i): Call => ['score', [1 + (i % 5)], players[from + (i >> 1)]]);
/** `n` transfers among accounts [from, from + span), each account of it once as a sender. */
const coldTransfers = (n: number, from: number, span: number): Call[] =>
  Array.from({ length: n }, (_, i): Call => ['transfer', [from + i, from + ((i * 7 + 3) % span), 1 + (i % 3)]]);

test('read-ahead gives what the same calls give one at a time, in fewer crossings', { timeout: 60_000 }, async () => {
  const program = await sourceBundle(moduleSource, 'read-ahead.ts');
  const bursts: Call[][] = [
    [['seed', [accountsCount]]],
    // Learning: every pattern is used once it was seen twice.
    coldTransfers(40, 0, 40),
    [...coldTransfers(20, 40, 20), ['pay', ['m', 61, 62]], ['pay', ['m', 63, 64]], ['pay', ['m', 65, 66]]],
    // Read-ahead at work: a delete before a later call's read of the same row, a missing account, a string of
    // another length moving the keys, a failure that empties the row cache in the middle.
    [
      ...coldTransfers(10, 100, 10), ['close', [115]], ['transfer', [116, 115, 1]], ['transfer', [117, 9_999, 1]],
      ['pay', ['a longer memo', 118, 119]], ['pay', ['m', 120, 121]], ['transfer', [122, 123, 1_000_000]],
      ...coldTransfers(10, 124, 10), ['close', [130]], ['close', [130]], ['transfer', [130, 131, 1]],
    ],
    players.map((p): Call => ['join', [], p]),
    [['users_seed', [500]]],
    bumps(40, 0),
    bumps(40, 40),
    [...scores(20, 0), ['score', [1], alice], ...scores(10, 20)],
    coldTransfers(64, 200, 64),
    scores(32, 100),
    bumps(64, 200),
  ];
  // The last three: 64 transfers over accounts nobody read, 64 scores of 32 players or 64 bumps of users nobody read
  // (keyed by a string of varying length; a few missing). Without read-ahead each row read first crosses (64 or 32
  // crossings and more); with it, one crossing per batch brings them, and new sequence leases for the audit rows cross.
  await compareBursts(program, owner, bursts, alice, 3);
});
