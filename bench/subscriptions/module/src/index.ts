// Benchmark module for `npm run bench:subscriptions`: one public table of timestamped rows.
// `send` inserts one row carrying the writer's send time (fan-out latency); `fill` inserts a batch of rows
// (initial-snapshot size). Owns nothing else. May call: the official `spacetimedb/server` API only.
import { schema, table, t } from 'spacetimedb/server';

const spacetimedb = schema({
  msg: table(
    { name: 'msg', public: true },
    {
      id: t.u64().primaryKey().autoInc(),
      sentMicros: t.i64(),
      payload: t.string(),
    }
  ),
});
export default spacetimedb;

export const send = spacetimedb.reducer(
  { sentMicros: t.i64(), payload: t.string() },
  (ctx, { sentMicros, payload }) => {
    ctx.db.msg.insert({ id: 0n, sentMicros, payload });
  }
);

export const fill = spacetimedb.reducer(
  { count: t.u32(), payload: t.string() },
  (ctx, { count, payload }) => {
    const msg = ctx.db.msg;
    for (let i = 0; i < count; i++) msg.insert({ id: 0n, sentMicros: 0n, payload });
  }
);
