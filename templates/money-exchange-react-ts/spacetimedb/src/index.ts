// A money exchange: every identity gets a private account with a starting balance, claims a public nickname, and
// sends money to other named identities. Balances and histories are private tables; each client sees its own
// through the `my_account` and `my_account_changes` views, and everyone sees the public `directory` of names.
import { schema, SenderError, table, t } from 'spacetimedb/server';

const startingBalanceCents = 10_000n; // $100.00
const nameLengthMax = 20;
const u64Max = (1n << 64n) - 1n;

const directory = table(
  { name: 'directory', public: true },
  {
    identity: t.identity().primaryKey(),
    name: t.string(),
    // Names are unique regardless of case: "Ada" and "ada" are the same person to a reader.
    nameKey: t.string().unique(),
  }
);

const account = table(
  { name: 'account' },
  {
    identity: t.identity().primaryKey(),
    balanceCents: t.u64(),
  }
);

const direction = t.enum('Direction', { Credit: t.unit(), Debit: t.unit() });

const accountChange = table(
  { name: 'account_change' },
  {
    id: t.u64().primaryKey().autoInc(),
    owner: t.identity().index('btree'),
    counterparty: t.identity(),
    direction,
    amountCents: t.u64(),
    at: t.timestamp(),
  }
);

const spacetimedb = schema({ directory, account, accountChange });
export default spacetimedb;

export const onConnect = spacetimedb.clientConnected(ctx => {
  if (ctx.db.account.identity.find(ctx.sender) === null) {
    ctx.db.account.insert({ identity: ctx.sender, balanceCents: startingBalanceCents });
  }
});

export const my_account = spacetimedb.view(
  { name: 'my_account', public: true },
  account.rowType.optional(),
  ctx => ctx.db.account.identity.find(ctx.sender) ?? undefined
);

export const my_account_changes = spacetimedb.view(
  { name: 'my_account_changes', public: true },
  t.array(accountChange.rowType),
  ctx => [...ctx.db.accountChange.owner.filter(ctx.sender)]
);

export const set_name = spacetimedb.reducer({ name: t.string() }, (ctx, { name }) => {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > nameLengthMax) {
    throw new SenderError(`A name has 1 to ${nameLengthMax} characters`);
  }
  const nameKey = trimmed.toLowerCase();
  const holder = ctx.db.directory.nameKey.find(nameKey);
  if (holder !== null && !holder.identity.isEqual(ctx.sender)) throw new SenderError(`The name ${trimmed} is taken`);
  const row = { identity: ctx.sender, name: trimmed, nameKey };
  if (ctx.db.directory.identity.find(ctx.sender) === null) ctx.db.directory.insert(row);
  else ctx.db.directory.identity.update(row);
});

export const transfer = spacetimedb.reducer(
  { recipient: t.identity(), amountCents: t.u64() },
  (ctx, { recipient, amountCents }) => {
    if (ctx.db.directory.identity.find(ctx.sender) === null) throw new SenderError('Choose a name before sending money');
    if (recipient.isEqual(ctx.sender)) throw new SenderError('You cannot send money to yourself');
    if (amountCents === 0n) throw new SenderError('The amount must be more than zero');
    if (ctx.db.directory.identity.find(recipient) === null) throw new SenderError('No such recipient');
    const from = ctx.db.account.identity.find(ctx.sender);
    const to = ctx.db.account.identity.find(recipient);
    if (from === null || to === null) throw new SenderError('No such account');
    if (from.balanceCents < amountCents) throw new SenderError('Insufficient funds');
    if (to.balanceCents > u64Max - amountCents) throw new SenderError("The recipient's balance would overflow");
    // One transaction: a failed check above changes nothing, and both sides move together.
    ctx.db.account.identity.update({ ...from, balanceCents: from.balanceCents - amountCents });
    ctx.db.account.identity.update({ ...to, balanceCents: to.balanceCents + amountCents });
    const entry = { id: 0n, amountCents, at: ctx.timestamp };
    ctx.db.accountChange.insert({ ...entry, owner: ctx.sender, counterparty: recipient, direction: { tag: 'Debit' } });
    ctx.db.accountChange.insert({ ...entry, owner: recipient, counterparty: ctx.sender, direction: { tag: 'Credit' } });
  }
);
