// bench/engine-v2 module: an app-shaped table with secondary indexes (bench/memory.ts's `indexed` shape): messages
// with an autoInc u64 primary key, a non-unique btree on the sender's Identity, a non-unique btree on a string topic,
// a unique string handle and a free text. `edit` is the call the bench times: a read by the unique string index, a
// read of the sender's messages through the Identity btree, and an update (through the primary key: the library has
// no update on other unique indexes) that moves the row's topic entry.
import { schema, table, t, SenderError } from 'spacetimedb/server';

const spacetimedb = schema({
  message: table({ name: 'message', public: true }, {
    id: t.u64().primaryKey().autoInc(),
    sender: t.identity().index('btree'),
    topic: t.string().index('btree'),
    handle: t.string().unique(),
    text: t.string(),
    sent: t.timestamp(),
  }),
});
export default spacetimedb;

const editArgs = { handle: t.string(), topic: t.string(), text: t.string() };
export const edit = spacetimedb.reducer(editArgs, (ctx, { handle, topic, text }) => {
  const m = ctx.db.message.handle.find(handle);
  if (m === null) throw new SenderError('no_such_message');
  let fromSender = 0;
  for (const _ of ctx.db.message.sender.filter(m.sender)) fromSender++;
  if (fromSender === 0) throw new SenderError('sender_index_misses_row');
  ctx.db.message.id.update({ ...m, topic, text, sent: ctx.timestamp });
});
