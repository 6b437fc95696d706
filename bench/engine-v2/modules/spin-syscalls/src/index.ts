// bench/engine-v2 module: runaway reducers that loop over syscalls (point lookups, or inserts into a table with an
// autoInc key), so most of their time is spent in the host rather than in the isolate.
import { schema, table, t } from 'spacetimedb/server';

const spacetimedb = schema({
  item: table({ public: true }, { id: t.u32().primaryKey().autoInc(), label: t.string() }),
});
export default spacetimedb;

export const seed = spacetimedb.reducer(ctx => {
  ctx.db.item.insert({ id: 0, label: 'first' });
});

export const spinFind = spacetimedb.reducer(ctx => {
  let found = 0;
  for (;;) {
    if (ctx.db.item.id.find(1) !== null) found++;
  }
});

export const spinPure = spacetimedb.reducer(ctx => {
  let n = 0;
  for (;;) n++;
});
