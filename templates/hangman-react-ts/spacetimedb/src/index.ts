// Competitive hangman: every player guesses the same hidden word on a private board. A round lasts
// `roundMicros`, then the word is shown with the standings for `resultsMicros`, then a new round starts. The word
// and the boards are private; players see their own board through the `my_board` view and everyone's progress
// (letters found, misses, solved) in the public `standing` table, never anyone's letters.
import { ScheduleAt, schema, SenderError, table, t, type ReducerCtx } from 'spacetimedb/server';

const roundMicros = 60_000_000n;
const resultsMicros = 10_000_000n;
const missesMax = 6;
const nameLengthMax = 20;
const words = ['DATABASE', 'REDUCER', 'SUBSCRIPTION', 'IDENTITY', 'TRANSACTION', 'REPLICA', 'SCHEDULE', 'MODULE',
  'TABLE', 'INDEX', 'QUERY', 'CLIENT', 'SERVER', 'LATENCY', 'SNAPSHOT'];

const player = table({ name: 'player', public: true }, { identity: t.identity().primaryKey(), name: t.string() });

const round = table(
  { name: 'round', public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    wordLength: t.u32(),
    endsAtMicros: t.u64(), // microseconds since the Unix epoch
    // Set when the round ends: the hidden word, shown with the standings until the next round starts.
    revealed: t.option(t.string()),
  }
);

const secret = table({ name: 'secret' }, { roundId: t.u64().primaryKey(), word: t.string() });

const board = table(
  { name: 'board' },
  {
    id: t.u64().primaryKey().autoInc(),
    owner: t.identity().index('btree'),
    roundId: t.u64(),
    mask: t.string(), // the word with unfound letters as "_"
    guesses: t.string(),
    misses: t.u32(),
  }
);

const standing = table(
  { name: 'standing', public: true },
  {
    id: t.u64().primaryKey().autoInc(),
    roundId: t.u64().index('btree'),
    player: t.identity(),
    name: t.string(),
    found: t.u32(),
    misses: t.u32(),
    solvedAt: t.option(t.timestamp()),
  }
);

const roundTimer = table({ name: 'round_timer' }, { scheduledId: t.u64().primaryKey().autoInc(), scheduledAt: t.scheduleAt() });

const spacetimedb = schema({ player, round, secret, board, standing, roundTimer });
export default spacetimedb;

type Ctx = ReducerCtx<typeof spacetimedb.schemaType>;

function currentRound(ctx: Ctx) {
  let latest = null;
  for (const r of ctx.db.round.iter()) if (latest === null || r.id > latest.id) latest = r;
  return latest;
}

function startRound(ctx: Ctx): void {
  const word = words[ctx.random.integerInRange(0, words.length - 1)];
  const endsAtMicros = ctx.timestamp.microsSinceUnixEpoch + roundMicros;
  const row = ctx.db.round.insert({ id: 0n, wordLength: word.length, endsAtMicros, revealed: undefined });
  ctx.db.secret.insert({ roundId: row.id, word });
  ctx.db.roundTimer.insert({ scheduledId: 0n, scheduledAt: ScheduleAt.time(endsAtMicros) });
}

export const init = spacetimedb.init(ctx => startRound(ctx));

/** Fired at the end of a round (reveal the word) and at the end of the results pause (next round). */
export const advance_round = spacetimedb.reducer({ onSchedule: roundTimer }, { timer: roundTimer.rowType }, ctx => {
  const current = currentRound(ctx);
  if (current === null || current.revealed !== undefined) {
    startRound(ctx);
    return;
  }
  const word = ctx.db.secret.roundId.find(current.id)?.word ?? '';
  ctx.db.round.id.update({ ...current, revealed: word });
  ctx.db.roundTimer.insert({ scheduledId: 0n, scheduledAt: ScheduleAt.time(ctx.timestamp.microsSinceUnixEpoch + resultsMicros) });
});

export const set_name = spacetimedb.reducer({ name: t.string() }, (ctx, { name }) => {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > nameLengthMax) {
    throw new SenderError(`A name has 1 to ${nameLengthMax} characters`);
  }
  if (ctx.db.player.identity.find(ctx.sender) === null) ctx.db.player.insert({ identity: ctx.sender, name: trimmed });
  else ctx.db.player.identity.update({ identity: ctx.sender, name: trimmed });
  for (const s of ctx.db.standing.iter()) {
    if (s.player.isEqual(ctx.sender)) ctx.db.standing.id.update({ ...s, name: trimmed });
  }
});

export const guess_letter = spacetimedb.reducer({ letter: t.string() }, (ctx, { letter }) => {
  const guess = letter.trim().toUpperCase();
  if (!/^[A-Z]$/.test(guess)) throw new SenderError('Guess one letter from A to Z');
  const me = ctx.db.player.identity.find(ctx.sender);
  if (me === null) throw new SenderError('Choose a name before playing');
  const current = currentRound(ctx);
  if (current === null || current.revealed !== undefined) throw new SenderError('The round is over; the next one starts soon');
  const word = ctx.db.secret.roundId.find(current.id)!.word;
  let mine = [...ctx.db.board.owner.filter(ctx.sender)].find(b => b.roundId === current.id);
  if (mine === undefined) {
    mine = ctx.db.board.insert({ id: 0n, owner: ctx.sender, roundId: current.id, mask: '_'.repeat(word.length), guesses: '', misses: 0 });
  }
  if (!mine.mask.includes('_') || mine.misses >= missesMax) throw new SenderError('Your board for this round is finished');
  if (mine.guesses.includes(guess)) throw new SenderError(`You already guessed ${guess}`);
  const mask = [...word].map((c, i) => (c === guess ? c : mine.mask[i])).join('');
  const misses = mine.misses + (word.includes(guess) ? 0 : 1);
  ctx.db.board.id.update({ ...mine, mask, guesses: mine.guesses + guess, misses });
  const found = [...mask].filter(c => c !== '_').length;
  const solvedAt = mask.includes('_') ? undefined : ctx.timestamp;
  const entry = [...ctx.db.standing.roundId.filter(current.id)].find(s => s.player.isEqual(ctx.sender));
  if (entry === undefined) {
    ctx.db.standing.insert({ id: 0n, roundId: current.id, player: ctx.sender, name: me.name, found, misses, solvedAt });
  } else {
    ctx.db.standing.id.update({ ...entry, found, misses, solvedAt });
  }
});

export const my_board = spacetimedb.view(
  { name: 'my_board', public: true },
  t.array(board.rowType),
  ctx => [...ctx.db.board.owner.filter(ctx.sender)]
);
