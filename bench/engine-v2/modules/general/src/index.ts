// bench/engine-v2 module: the keynote transfer as apps write it (issue 12's "general" workload): accounts with a
// string owner and a timestamp, and one audit row per transfer with an autoInc id.
import { schema, table, t, SenderError } from 'spacetimedb/server';

const spacetimedb = schema({
  accounts: table({ name: 'accounts', public: true }, {
    id: t.u32().primaryKey(),
    owner: t.string(),
    balance: t.i64(),
    updated: t.timestamp(),
  }),
  audit: table({ name: 'audit', public: true }, {
    id: t.u64().primaryKey().autoInc(),
    from: t.u32(),
    to: t.u32(),
    amount: t.i64(),
    at: t.timestamp(),
  }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer({ n: t.u32(), initialBalance: t.i64() }, (ctx, { n, initialBalance }) => {
  for (let id = 0; id < n; id++) {
    ctx.db.accounts.insert({ id, owner: `owner-${id}`, balance: initialBalance, updated: ctx.timestamp });
  }
});

export const transfer = spacetimedb.reducer({ from: t.u32(), to: t.u32(), amount: t.i64() }, (ctx, { from, to, amount }) => {
  if (from === to) throw new SenderError('same_account');
  if (amount <= 0) throw new SenderError('non_positive_amount');
  const byId = ctx.db.accounts.id;
  const a = byId.find(from);
  const b = byId.find(to);
  if (a === null || b === null) throw new SenderError('account_missing');
  if (a.balance < amount) throw new SenderError('insufficient_funds');
  byId.update({ ...a, balance: a.balance - amount, updated: ctx.timestamp });
  byId.update({ ...b, balance: b.balance + amount, updated: ctx.timestamp });
  ctx.db.audit.insert({ id: 0n, from, to, amount, at: ctx.timestamp });
});
