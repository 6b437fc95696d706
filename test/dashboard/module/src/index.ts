// Fixture (test/dashboard): a public table the dashboard shows live, a private one it must never show to a
// non-owner, and reducers that write both and log a line.
import { schema, table, t } from 'spacetimedb/server';

const spacetimedb = schema({
  message: table({ public: true }, { id: t.u64().primaryKey().autoInc(), text: t.string(), sender: t.identity() }),
  secret: table({}, { text: t.string() }),
});
export default spacetimedb;

export const post = spacetimedb.reducer({ text: t.string() }, (ctx, { text }) => {
  ctx.db.message.insert({ id: 0n, text, sender: ctx.sender });
  console.info(`posted ${text}`);
});

export const hide = spacetimedb.reducer({ text: t.string() }, (ctx, { text }) => {
  ctx.db.secret.insert({ text });
  console.warn(`hid a secret of ${text.length} chars`);
});
