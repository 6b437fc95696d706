// The chat module: users (online or not, with an optional name) and messages.
import { schema, table, t, SenderError } from 'spacetimedb/server';

const spacetimedb = schema({
  user: table(
    { public: true },
    {
      identity: t.identity().primaryKey(),
      name: t.string().optional(),
      online: t.bool(),
    }
  ),
  message: table(
    { public: true },
    {
      sender: t.identity(),
      sent: t.timestamp(),
      text: t.string(),
    }
  ),
});
export default spacetimedb;

function validateName(name: string): string {
  if (name.trim() === '') throw new SenderError('Names must not be empty');
  return name.trim();
}

function validateMessage(text: string): string {
  if (text.trim() === '') throw new SenderError('Messages must not be empty');
  return text;
}

export const setName = spacetimedb.reducer({ name: t.string() }, (ctx, { name }) => {
  const user = ctx.db.user.identity.find(ctx.sender);
  if (!user) throw new SenderError('Cannot set name for unknown user');
  ctx.db.user.identity.update({ ...user, name: validateName(name) });
});

export const sendMessage = spacetimedb.reducer({ text: t.string() }, (ctx, { text }) => {
  ctx.db.message.insert({ sender: ctx.sender, text: validateMessage(text), sent: ctx.timestamp });
});

export const onConnect = spacetimedb.clientConnected(ctx => {
  const user = ctx.db.user.identity.find(ctx.sender);
  if (user) ctx.db.user.identity.update({ ...user, online: true });
  else ctx.db.user.insert({ identity: ctx.sender, name: undefined, online: true });
});

export const onDisconnect = spacetimedb.clientDisconnected(ctx => {
  const user = ctx.db.user.identity.find(ctx.sender);
  if (user) ctx.db.user.identity.update({ ...user, online: false });
});
