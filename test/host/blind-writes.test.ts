// Host: writes with no read before them (isolate-src.ts datastore_update_bsatn, cacheUpdatedRow; docs/engine-v2.md
// §6f). An update by key of a row the call never read crosses, with the updates queued before it in the same crossing;
// it, and a delete by key that crosses, drop only what the module's row cache holds of their own table; and the host offers the row it stored, which the
// module caches and whose key teaches read-ahead, so later updates of rows nobody read are queued. It must change
// nothing but the crossings: bursts of blind updates, reads of what they wrote in the same call and in later calls,
// blind updates of missing rows (the call fails) and of rows another table's call cached give what the same calls give
// one at a time (outcomes, TxData, state, the commit log byte for byte), in a few crossings per batch once learned.
import { test } from 'node:test';
import type { Caller } from '../../src/host/database.js';
import { compareBursts, sourceBundle, type BurstCall } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const owner: Caller = { identity: 0xabn, connectionId: 0n, jwtPayload: undefined };
const rows = 1_000;

const moduleSource = `
import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({
  counters: table({ name: 'counters' }, { id: t.u32().primaryKey(), value: t.i64() }),
  profiles: table({ name: 'profiles' }, { id: t.u32().primaryKey(), nick: t.string(), level: t.u8() }),
  names: table({ name: 'names' }, { name: t.string().primaryKey(), seen: t.u32() }),
});
export default spacetimedb;
export const seed = spacetimedb.reducer({ n: t.u32() }, (ctx, { n }) => {
  for (let id = 0; id < n; id++) {
    ctx.db.counters.insert({ id, value: 0n });
    ctx.db.profiles.insert({ id, nick: 'p' + id, level: 0 });
    ctx.db.names.insert({ name: 'name-' + 'x'.repeat(id % 7) + id, seen: 0 });
  }
});
// A counter found and updated, then a profile written blind (every column from the arguments).
export const play = spacetimedb.reducer({ id: t.u32(), profile: t.u32(), nick: t.string(), level: t.u8() }, (ctx, { id, profile, nick, level }) => {
  const c = ctx.db.counters.id.find(id);
  if (c === null) throw new SenderError('no counter ' + id);
  ctx.db.counters.id.update({ ...c, value: c.value + 1n });
  ctx.db.profiles.id.update({ id: profile, nick, level });
});
// A blind write, then reads of it: the row the module caches from it must be the row stored.
export const rename = spacetimedb.reducer({ profile: t.u32(), nick: t.string() }, (ctx, { profile, nick }) => {
  ctx.db.profiles.id.update({ id: profile, nick, level: nick.length % 200 });
  const p = ctx.db.profiles.id.find(profile);
  if (p === null || p.nick !== nick) throw new Error('the blind write was not read back');
  ctx.db.profiles.id.update({ ...p, level: p.level + 1 });
});
export const level_up = spacetimedb.reducer({ profile: t.u32() }, (ctx, { profile }) => {
  const p = ctx.db.profiles.id.find(profile);
  if (p === null) throw new SenderError('no profile ' + profile);
  ctx.db.profiles.id.update({ ...p, level: (p.level + 1) % 256, nick: p.nick + '+' });
});
// A row deleted by its key without reading it, between reads of another table's cached rows.
export const drop = spacetimedb.reducer({ id: t.u32(), profile: t.u32() }, (ctx, { id, profile }) => {
  const c = ctx.db.counters.id.find(id);
  if (c === null) throw new SenderError('no counter ' + id);
  if (!ctx.db.profiles.id.delete(profile)) console.info('no profile ' + profile);
  const c2 = ctx.db.counters.id.find(id);
  ctx.db.counters.id.update({ ...c2, value: c2.value + 10n });
  if (ctx.db.profiles.id.find(profile) !== null) throw new Error('a deleted profile was found');
});
// A string key written blind.
export const see = spacetimedb.reducer({ name: t.string(), seen: t.u32() }, (ctx, { name, seen }) => {
  ctx.db.names.name.update({ name, seen });
});
`;

type Call = BurstCall;
const nameOf = (i: number): string => 'name-' + 'x'.repeat(i % 7) + i;
const plays = (n: number, from: number): Call[] =>
  Array.from({ length: n }, (_, i): Call => ['play', [(from + 7 * i) % rows, from + i, 'nick ' + i, i % 9]]);
const renames = (n: number, from: number): Call[] =>
  Array.from({ length: n }, (_, i): Call => ['rename', [from + i, 'r' + 'y'.repeat(i % 5) + i]]);
const levelUps = (n: number, from: number): Call[] => Array.from({ length: n }, (_, i): Call => ['level_up', [from + i]]);
const drops = (n: number, from: number): Call[] => Array.from({ length: n }, (_, i): Call => ['drop', [(from + 3 * i) % rows, from + i]]);
const sees = (n: number, from: number): Call[] =>
  Array.from({ length: n }, (_, i): Call => ['see', [i % 10 === 9 ? 'nobody-' + i : nameOf(from + i), i]]);

test('blind writes give what the same calls give one at a time, in fewer crossings', { timeout: 60_000 }, async () => {
  const program = await sourceBundle(moduleSource, 'blind-writes.ts');
  const bursts: Call[][] = [
    [['seed', [rows]]],
    plays(40, 0),                                   // learning
    [...renames(20, 0), ...levelUps(20, 0), ...plays(10, 40)],
    // Blind writes of missing rows fail (the call's writes go back), between calls that read what others wrote blind.
    [...plays(8, 60), ['play', [1, rows + 5, 'gone', 1]], ...levelUps(8, 60), ['rename', [rows + 9, 'gone']], ...renames(8, 70)],
    sees(40, 0),
    [...levelUps(30, 40), ...renames(30, 100)],
    // Deletes of rows nobody read, then reads and blind writes of them (missing now: those calls fail).
    [...drops(20, 400), ...levelUps(5, 400), ...plays(5, 415), ...drops(4, 400)],
    plays(64, 200),
    renames(64, 300),
    sees(64, 100),
  ];
  // The last three: 64 calls each writing a row nobody read. Without the host's offer and read-ahead each crosses (64
  // and more; before the queued updates travelled inside the update's crossing, 3 per call).
  await compareBursts(program, owner, bursts, alice, 3);
});
