// bench/shapes module: one table per table shape issue 12 item 4 names, each seeded by its own reducer, and one
// reducer per shape doing a small transaction over it (bench/shapes.ts drives them). Keys are derived from the row
// number the same way here and in bench/shapes.ts (`whoOf`, `nameOf`, the cell grid), so the driver can aim at rows.
import { Identity, ScheduleAt } from 'spacetimedb';
import { schema, table, t, Range, SenderError } from 'spacetimedb/server';

/** Owners of `items`: row k belongs to owner k % itemOwners (10 rows per owner at 100k rows). */
const itemOwners = 10_000;
/** `cells` is a grid this wide: row k sits at (k / cellsWidth, k % cellsWidth). */
const cellsWidth = 317;
/** `events.at` of row k is k × eventsStep, so a range of 20 × eventsStep holds 20 rows. */
const eventsStep = 10n;
const yearMicros = 365n * 24n * 3600n * 1_000_000n;

const whoOf = (k: number): Identity => new Identity((0xc200n << 240n) | (BigInt(k) * 0x10001n));
const nameOf = (k: number): string => `user-${k}@example.com`;

const reminders = table({ name: 'reminders' }, {
  scheduledId: t.u64().primaryKey().autoInc(),
  scheduledAt: t.scheduleAt(),
  text: t.string(),
});

const spacetimedb = schema({
  counters: table({ name: 'counters' }, { id: t.u32().primaryKey(), value: t.i64() }),
  named: table({ name: 'named' }, { name: t.string().primaryKey(), value: t.i64(), note: t.string() }),
  players: table({ name: 'players' }, { who: t.identity().primaryKey(), score: t.i64(), name: t.string() }),
  items: table({ name: 'items' }, { id: t.u32().primaryKey(), owner: t.u32().index('btree'), qty: t.u32() }),
  events: table({ name: 'events' }, { id: t.u32().primaryKey(), at: t.u64().index('btree'), value: t.i64() }),
  cells: table({ name: 'cells', indexes: [{ accessor: 'xy', algorithm: 'btree', columns: ['x', 'y'] }] },
    { id: t.u32().primaryKey(), x: t.u32(), y: t.u32(), value: t.i64() }),
  queue: table({ name: 'queue' }, { id: t.u64().primaryKey().autoInc(), body: t.string(), at: t.timestamp() }),
  entities: table({ name: 'entities' }, { id: t.u64().primaryKey().autoInc(), x: t.f32(), y: t.f32(), mass: t.u32() }),
  profiles: table({ name: 'profiles' }, { id: t.u32().primaryKey(), nick: t.option(t.string()), bio: t.option(t.string()) }),
  logs: table({ name: 'logs' }, { at: t.timestamp(), level: t.u8(), message: t.string() }),
  wide: table({ name: 'wide' }, {
    id: t.u32().primaryKey(),
    a1: t.u32(), a2: t.u32(), a3: t.u32(), a4: t.u32(), a5: t.u32(),
    b1: t.i64(), b2: t.i64(), b3: t.i64(), b4: t.i64(),
    c1: t.f64(), c2: t.f64(), c3: t.f64(),
    s1: t.string(), s2: t.string(), s3: t.string(),
    flag: t.bool(), at: t.timestamp(), owner: t.identity(), opt: t.option(t.u32()),
  }),
  // Tables with a second unique column: a handle beside the key, or an autoInc id beside an Identity key (a game's player).
  users: table({ name: 'users' }, { id: t.u32().primaryKey(), handle: t.string().unique(), score: t.i64() }),
  pilots: table({ name: 'pilots' }, { who: t.identity().primaryKey(), pilotId: t.u64().unique().autoInc(), x: t.f32(), name: t.string() }),
  // Rows keyed by the caller's Identity, inserted once each (a sign-up).
  signups: table({ name: 'signups' }, { who: t.identity().primaryKey(), name: t.string(), at: t.timestamp() }),
  // Invitations to a player (non-unique btree on `to`), deleted when accepted.
  invites: table({ name: 'invites' }, { id: t.u64().primaryKey().autoInc(), to: t.u32().index('btree'), from: t.u32() }),
  reminders,
});
export default spacetimedb;

export const remind = spacetimedb.reducer({ onSchedule: reminders }, { row: reminders.rowType }, (_ctx, { row }) => {
  void row;
});

// --- Seeding: rows [from, to) of one table (the driver seeds in chunks).
export const seed = spacetimedb.reducer({ table: t.string(), from: t.u32(), to: t.u32() }, (ctx, { table: name, from, to }) => {
  const db = ctx.db, now = ctx.timestamp;
  for (let k = from; k < to; k++) {
    switch (name) {
      case 'counters': db.counters.insert({ id: k, value: 0n }); break;
      case 'named': db.named.insert({ name: nameOf(k), value: 0n, note: `note of ${k}` }); break;
      case 'players': db.players.insert({ who: whoOf(k), score: 0n, name: nameOf(k) }); break;
      case 'items': db.items.insert({ id: k, owner: k % itemOwners, qty: k }); break;
      case 'events': db.events.insert({ id: k, at: BigInt(k) * eventsStep, value: BigInt(k) }); break;
      case 'cells': db.cells.insert({ id: k, x: Math.floor(k / cellsWidth), y: k % cellsWidth, value: 0n }); break;
      case 'queue': db.queue.insert({ id: 0n, body: `job ${k}`, at: now }); break;
      case 'entities': db.entities.insert({ id: 0n, x: k, y: 0, mass: 1 }); break;
      case 'profiles': db.profiles.insert({ id: k, nick: k % 2 === 0 ? nameOf(k) : undefined, bio: 'hello' }); break;
      case 'logs': db.logs.insert({ at: now, level: k % 5, message: `seeded line ${k}` }); break;
      case 'wide': db.wide.insert({
        id: k, a1: k, a2: k + 1, a3: k + 2, a4: k + 3, a5: k + 4, b1: BigInt(k), b2: 0n, b3: 0n, b4: 0n,
        c1: k / 2, c2: 0, c3: 1.5, s1: nameOf(k), s2: 'second', s3: '', flag: false, at: now, owner: whoOf(k), opt: undefined,
      }); break;
      case 'reminders': db.reminders.insert({
        scheduledId: 0n, scheduledAt: ScheduleAt.time(now.microsSinceUnixEpoch + yearMicros), text: `reminder ${k}`,
      }); break;
      case 'users': db.users.insert({ id: k, handle: nameOf(k), score: 0n }); break;
      case 'pilots': db.pilots.insert({ who: whoOf(k), pilotId: 0n, x: 0, name: nameOf(k) }); break;
      case 'signups': db.signups.insert({ who: whoOf(k), name: nameOf(k), at: now }); break;
      case 'invites': db.invites.insert({ id: 0n, to: k % itemOwners, from: k }); break;
      default: throw new SenderError(`no table ${name}`);
    }
  }
});

// --- One reducer per shape.

/** The baseline of the one-row shapes: find by a u32 primary key, update. */
export const u32Pk = spacetimedb.reducer({ id: t.u32(), delta: t.i64() }, (ctx, { id, delta }) => {
  const row = ctx.db.counters.id.find(id);
  if (row === null) throw new SenderError('no row');
  ctx.db.counters.id.update({ ...row, value: row.value + delta });
});

/** A read that crosses but writes nothing (a count) between a find and the update of the row found. */
export const findCountUpdate = spacetimedb.reducer({ id: t.u32(), delta: t.i64() }, (ctx, { id, delta }) => {
  const row = ctx.db.counters.id.find(id);
  if (row === null) throw new SenderError('no row');
  const rows = ctx.db.counters.count();
  ctx.db.counters.id.update({ ...row, value: row.value + delta + rows * 0n });
});

/** A game's entity moved: find by a u64 autoInc primary key, update two floats. */
export const autoIncUpdate = spacetimedb.reducer({ id: t.u64(), dx: t.f32() }, (ctx, { id, dx }) => {
  const row = ctx.db.entities.id.find(id);
  if (row === null) throw new SenderError('no row');
  ctx.db.entities.id.update({ ...row, x: row.x + dx, y: row.y - dx });
});

export const stringPk = spacetimedb.reducer({ name: t.string(), delta: t.i64() }, (ctx, { name, delta }) => {
  const row = ctx.db.named.name.find(name);
  if (row === null) throw new SenderError('no row');
  ctx.db.named.name.update({ ...row, value: row.value + delta });
});

export const identityPk = spacetimedb.reducer({ who: t.identity(), delta: t.i64() }, (ctx, { who, delta }) => {
  const row = ctx.db.players.who.find(who);
  if (row === null) throw new SenderError('no row');
  ctx.db.players.who.update({ ...row, score: row.score + delta });
});

/** ~10 rows under one owner (non-unique btree); the one with the least qty gets one more. */
export const btreeFilter = spacetimedb.reducer({ owner: t.u32() }, (ctx, { owner }) => {
  let least = null;
  for (const row of ctx.db.items.owner.filter(owner)) if (least === null || row.qty < least.qty) least = row;
  if (least === null) throw new SenderError('no rows');
  ctx.db.items.id.update({ ...least, qty: least.qty + 1 });
});

/** ~20 rows of a range on a non-unique u64 btree index, read only. */
export const rangeScan = spacetimedb.reducer({ lo: t.u64() }, (ctx, { lo }) => {
  let sum = 0n, n = 0;
  const range = new Range({ tag: 'included', value: lo }, { tag: 'excluded', value: lo + 20n * eventsStep });
  for (const row of ctx.db.events.at.filter(range)) { sum += row.value; n++; }
  if (n === 0 || sum < 0n) throw new SenderError('empty range');
});

/** A two-column index point lookup (one row), then an update through the primary key. */
export const twoColumn = spacetimedb.reducer({ x: t.u32(), y: t.u32(), delta: t.i64() }, (ctx, { x, y, delta }) => {
  for (const row of ctx.db.cells.xy.filter([x, y])) {
    ctx.db.cells.id.update({ ...row, value: row.value + delta });
    return;
  }
  throw new SenderError('no cell');
});

/** A FIFO queue: the oldest job goes, a new one (autoInc id) comes. */
export const churn = spacetimedb.reducer({ oldId: t.u64(), body: t.string() }, (ctx, { oldId, body }) => {
  if (!ctx.db.queue.id.delete(oldId)) throw new SenderError('no job');
  ctx.db.queue.insert({ id: 0n, body, at: ctx.timestamp });
});

export const optionUpdate = spacetimedb.reducer({ id: t.u32(), nick: t.option(t.string()) }, (ctx, { id, nick }) => {
  const row = ctx.db.profiles.id.find(id);
  if (row === null) throw new SenderError('no row');
  ctx.db.profiles.id.update({ ...row, nick });
});

export const insertNoPk = spacetimedb.reducer({ level: t.u8(), message: t.string() }, (ctx, { level, message }) => {
  ctx.db.logs.insert({ at: ctx.timestamp, level, message });
});

export const wideUpdate = spacetimedb.reducer({ id: t.u32(), delta: t.i64() }, (ctx, { id, delta }) => {
  const row = ctx.db.wide.id.find(id);
  if (row === null) throw new SenderError('no row');
  ctx.db.wide.id.update({ ...row, b2: row.b2 + delta, a5: row.a5 + 1, at: ctx.timestamp });
});

/**
 * A row updated by its key without reading it first (every column from the arguments) beside a find and update of
 * another table's row: the update crosses (the module cannot know the row exists), and what the row cache holds of the
 * other table stays.
 */
export const blindUpdate = spacetimedb.reducer({ id: t.u32(), profile: t.u32(), nick: t.string() }, (ctx, { id, profile, nick }) => {
  const c = ctx.db.counters.id.find(id);
  if (c === null) throw new SenderError('no counter');
  ctx.db.counters.id.update({ ...c, value: c.value + 1n });
  ctx.db.profiles.id.update({ id: profile, nick, bio: undefined });
});

export const scheduleInsert = spacetimedb.reducer({ text: t.string() }, (ctx, { text }) => {
  ctx.db.reminders.insert({
    scheduledId: 0n, scheduledAt: ScheduleAt.time(ctx.timestamp.microsSinceUnixEpoch + yearMicros), text,
  });
});

/** Find by the key and update a column that is not the second unique one (`handle` unchanged). */
export const twoUnique = spacetimedb.reducer({ id: t.u32(), delta: t.i64() }, (ctx, { id, delta }) => {
  const row = ctx.db.users.id.find(id);
  if (row === null) throw new SenderError('no row');
  ctx.db.users.id.update({ ...row, score: row.score + delta });
});

/** A game's player moved: find by its Identity key, update; its unique autoInc `pilotId` unchanged. */
export const seqUnique = spacetimedb.reducer({ who: t.identity(), dx: t.f32() }, (ctx, { who, dx }) => {
  const row = ctx.db.pilots.who.find(who);
  if (row === null) throw new SenderError('no row');
  ctx.db.pilots.who.update({ ...row, x: row.x + dx });
});

/** A sign-up: insert a row under a new Identity key (the unique check is the host's). */
export const signup = spacetimedb.reducer({ who: t.identity(), name: t.string() }, (ctx, { who, name }) => {
  ctx.db.signups.insert({ who, name, at: ctx.timestamp });
});

/** Accept: find and update a counter, delete the invitations to `to` (non-unique index), invite `next`. */
export const accept = spacetimedb.reducer({ id: t.u32(), to: t.u32(), next: t.u32() }, (ctx, { id, to, next }) => {
  const c = ctx.db.counters.id.find(id);
  if (c === null) throw new SenderError('no counter');
  ctx.db.counters.id.update({ ...c, value: c.value + 1n });
  ctx.db.invites.to.delete(to);
  ctx.db.invites.insert({ id: 0n, to: next, from: id });
});

/** Two scans in one call: an owner's items (~10) and a range of events (~20), then one item updated. */
export const twoScans = spacetimedb.reducer({ owner: t.u32(), lo: t.u64() }, (ctx, { owner, lo }) => {
  let least = null;
  for (const row of ctx.db.items.owner.filter(owner)) if (least === null || row.qty < least.qty) least = row;
  if (least === null) throw new SenderError('no rows');
  let sum = 0n;
  const range = new Range({ tag: 'included', value: lo }, { tag: 'excluded', value: lo + 20n * eventsStep });
  for (const row of ctx.db.events.at.filter(range)) sum += row.value;
  ctx.db.items.id.update({ ...least, qty: least.qty + 1 + Number(sum % 2n) * 0 });
});
