// Module for bench/footprint.ts: the keynote fixture plus one reducer — a compatible (automatic) migration of
// test/fixtures/modules/keynote, used to time a hot-swap publish over a populated database. It re-exports the
// fixture unchanged so both sides of the migration share one schema definition (tables live in the fixture's
// schema(), so this change can add reducers but not tables).
import { t } from 'spacetimedb/server';
import spacetimedb from '../../../../test/fixtures/modules/keynote/src/index.js';

export * from '../../../../test/fixtures/modules/keynote/src/index.js';
export default spacetimedb;

/** Counts nothing, changes nothing: its only job is to make the module definition differ. */
export const touch = spacetimedb.reducer({ id: t.u32() }, (ctx, { id }) => {
  ctx.db.accounts.id.find(id);
});
