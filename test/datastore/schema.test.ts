// Tests of buildDatabaseSchema: canonical and generated names, aliases, ids, constraints, sequences, schedules,
// submodules and validation — on hand-built defs and on real output of the spacetimedb library.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import path from 'node:path';
import { build } from 'esbuild';
import type { AlgebraicType } from '../../src/sats/types.js';
import { decodeRawModuleDef, type RawModuleDefV10 } from '../../src/sats/moduledef.js';
import { buildDatabaseSchema, firstUserIndexId, firstUserTableId, SchemaError } from '../../src/datastore/schema.js';
import { Datastore } from '../../src/datastore/store.js';
import { autoInc, btree, hash, product, T, table, unique } from './fixtures.js';

const scheduleAt: AlgebraicType = { tag: 'Sum', value: { variants: [
  { name: 'Interval', algebraicType: product([['__time_duration_micros__', T.i64]]) },
  { name: 'Time', algebraicType: product([['__timestamp_micros_since_unix_epoch__', T.i64]]) }] } };

function def(policy: 'SnakeCase' | 'None'): RawModuleDefV10 {
  return { sections: [
    { tag: 'Typespace', value: { types: [
      product([['userId', T.u32], ['displayName', T.str], ['oneU8', T.u8]]),
      product([['scheduledId', T.u64], ['scheduledAt', scheduleAt]]),
    ] } },
    { tag: 'Tables', value: [
      table('userProfiles', 0, { primaryKey: [0], tableAccess: { tag: 'Public' },
        indexes: [{ sourceName: 'userProfiles_userId_idx_btree', accessorName: 'userId', algorithm: { tag: 'BTree', value: [0] } },
          { sourceName: 'userProfiles_displayName_oneU8_idx_btree', accessorName: 'byNameAge', algorithm: { tag: 'BTree', value: [1, 2] } },
          { sourceName: 'userProfiles_oneU8_idx_direct', accessorName: 'age', algorithm: { tag: 'Direct', value: 2 } }],
        constraints: [unique(0)] }),
      table('tickTimer', 1, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)], sequences: [autoInc(0)] }),
      table('Player1Canonical', 0, { indexes: [hash(0)] }),
    ] },
    { tag: 'Schedules', value: [{ sourceName: undefined, tableName: 'tickTimer', scheduleAtCol: 1, functionName: 'onTick' }] },
    { tag: 'ExplicitNames', value: { entries: [{ tag: 'Table', value: { sourceName: 'Player1Canonical', canonicalName: 'Player1Canonical' } }] } },
    { tag: 'CaseConversionPolicy', value: { tag: policy } },
    { tag: 'Submodules', value: [{ namespace: 'lib', module: { sections: [
      { tag: 'Typespace', value: { types: [product([['libKey', T.u32]])] } },
      { tag: 'Tables', value: [table('libData', 0, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] })] },
    ] } }] },
  ] };
}

test('snake_case policy: canonical, generated and alias names; ids; constraints; sequences; schedules', () => {
  const s = buildDatabaseSchema(def('SnakeCase'));
  assert.deepEqual(s.tables.map((t) => t.name), ['user_profiles', 'tick_timer', 'Player1Canonical', 'lib.lib_data']);
  assert.deepEqual(s.tables.map((t) => t.tableId), [0, 1, 2, 3].map((i) => firstUserTableId + i));
  const [users, tick, player, lib] = s.tables;
  assert.deepEqual(users.aliases, ['userProfiles']);
  assert.deepEqual(users.columns.map((c) => [c.name, c.sourceName]),
    [['user_id', 'userId'], ['display_name', 'displayName'], ['one_u_8', 'oneU8']]);
  assert.deepEqual(users.rowType.elements.map((e) => e.name), ['user_id', 'display_name', 'one_u_8']);
  assert.deepEqual(users.indexes.map((i) => [i.indexId, i.name, i.aliases, i.algorithm, i.unique]), [
    [firstUserIndexId, 'user_profiles_user_id_idx_btree', ['userProfiles_userId_idx_btree'], 'btree', true],
    [firstUserIndexId + 1, 'user_profiles_display_name_one_u_8_idx_btree', ['userProfiles_displayName_oneU8_idx_btree'], 'btree', false],
    [firstUserIndexId + 2, 'user_profiles_one_u_8_idx_direct', ['userProfiles_oneU8_idx_direct'], 'direct', false],
  ]);
  assert.deepEqual(users.uniqueConstraints, [{ name: 'user_profiles_user_id_key', columns: [0] }]);
  assert.equal(users.access, 'public');
  assert.equal(tick.access, 'private');
  assert.deepEqual(tick.sequences, [{ name: 'tick_timer_scheduled_id_seq', column: 0, start: 1n, increment: 1n,
    min: 1n, max: (1n << 64n) - 1n }]);
  assert.deepEqual(tick.schedule, { functionName: 'on_tick', scheduleAtColumn: 1, idColumn: 0 });
  assert.equal(player.indexes[0].name, 'Player1Canonical_user_id_idx_hash');
  assert.deepEqual(lib.aliases, ['lib.libData']);
  assert.equal(lib.indexes[0].name, 'lib.lib_data_lib_key_idx_btree');
  assert.deepEqual(lib.indexes[0].aliases, ['lib.libData_libKey_idx_btree']);
  // Submodule typespaces are appended: the row type resolves to the submodule's own type.
  assert.deepEqual(lib.columns.map((c) => c.type), [T.u32]);

  // The datastore resolves canonical names and aliases.
  const ds = new Datastore(s);
  assert.equal(ds.tableByName('userProfiles'), users);
  assert.equal(ds.tableByName('user_profiles'), users);
  assert.equal(ds.tableByName('lib.libData'), lib);
  assert.equal(ds.indexByName('userProfiles_displayName_oneU8_idx_btree')?.index, users.indexes[1]);
  assert.equal(ds.indexByName('lib.lib_data_lib_key_idx_btree')?.table, lib);
  assert.equal(ds.tableByName('nope'), undefined);
});

test('None policy keeps source names', () => {
  const s = buildDatabaseSchema(def('None'));
  assert.deepEqual(s.tables.map((t) => t.name), ['userProfiles', 'tickTimer', 'Player1Canonical', 'lib.lib_data']); // the submodule has its own (default) policy
  assert.deepEqual(s.tables[0].columns.map((c) => c.name), ['userId', 'displayName', 'oneU8']);
  assert.equal(s.tables[0].indexes[1].name, 'userProfiles_displayName_oneU8_idx_btree');
  assert.deepEqual(s.tables[0].indexes[1].aliases, []);
  assert.equal(s.tables[1].schedule?.functionName, 'onTick');
});

test('validation errors name the table and column', () => {
  const bad = (tables: ReturnType<typeof table>[], types = [product([['id', T.u32], ['name', T.str]])]) =>
    () => buildDatabaseSchema({ sections: [{ tag: 'Typespace', value: { types } }, { tag: 'Tables', value: tables }] });
  assert.throws(bad([table('st_things', 0)]), (e: Error) => e instanceof SchemaError && /st_things/.test(e.message));
  assert.throws(bad([table('a', 0), table('a', 0)]), /duplicate table name 'a'/);
  const twoTypesNamedRow = () => buildDatabaseSchema({ sections: [
    { tag: 'Typespace', value: { types: [product([['id', T.u32]]), product([['n', T.u32]])] } },
    { tag: 'Types', value: [0, 1].map((ty) => ({ sourceName: { scope: [], sourceName: 'Row' }, ty, customOrdering: true })) },
  ] });
  assert.throws(twoTypesNamedRow, /name `Row` is used for multiple types/);
  assert.throws(bad([table('a', 0, { constraints: [unique(1)] })]), /table 'a'.*a_name_key.*no index/);
  assert.throws(bad([table('a', 0, { indexes: [{ sourceName: undefined, accessorName: undefined,
    algorithm: { tag: 'Direct', value: 1 } }] })]), /table 'a'.*direct index on column 'name'/);
  assert.throws(bad([table('a', 0, { primaryKey: [0, 1] })]), /table 'a'.*single column/);
  assert.throws(bad([table('a', 0, { primaryKey: [5] })]), /table 'a'.*column 5/);
  assert.throws(bad([table('a', 0, { sequences: [autoInc(1)] })]), /table 'a'.*'name' must be an integer/);
});

const moduleSource = `
import { schema, table, t } from 'spacetimedb/server';
const userProfile = table({ public: true, indexes: [{ accessor: 'byNameAge', algorithm: 'btree', columns: ['displayName', 'age'] }] }, {
  id: t.u64().primaryKey().autoInc(),
  email: t.string().unique(),
  displayName: t.string(),
  age: t.u8().index('hash'),
});
const tickTimer = table({ scheduled: () => onTick }, {
  scheduledId: t.u64().primaryKey().autoInc(),
  scheduledAt: t.scheduleAt(),
});
const named = table({ name: 'Player1Canonical', event: true }, { playerId: t.u32() });
const spacetime = schema({ userProfile, tickTimer, named });
export default spacetime;
export const onTick = spacetime.reducer({ arg: tickTimer.rowType }, (ctx, { arg }) => {});
`;

const syscallNames = ['table_id_from_name', 'index_id_from_name', 'datastore_table_row_count',
  'datastore_table_scan_bsatn', 'datastore_index_scan_range_bsatn', 'row_iter_bsatn_advance', 'row_iter_bsatn_close',
  'datastore_insert_bsatn', 'datastore_update_bsatn', 'datastore_delete_by_index_scan_range_bsatn',
  'datastore_delete_all_by_eq_bsatn', 'volatile_nonatomic_schedule_immediate', 'console_log', 'console_timer_start',
  'console_timer_end', 'identity', 'get_jwt_payload', 'procedure_http_request', 'procedure_start_mut_tx',
  'procedure_commit_mut_tx', 'procedure_abort_mut_tx', 'datastore_index_scan_point_bsatn',
  'datastore_delete_by_index_scan_point_bsatn'];

/** Bundles `moduleSource` with the real library and calls its `__describe_module__` in a plain vm context. */
async function describeRealModule(): Promise<Uint8Array> {
  const result = await build({
    stdin: { contents: moduleSource, resolveDir: path.resolve(import.meta.dirname, '../..'), loader: 'ts' },
    bundle: true, write: false, format: 'cjs', platform: 'neutral', target: 'node20',
    mainFields: ['module', 'main'], conditions: ['import', 'default'],
    external: ['spacetime:sys@2.0', 'spacetime:sys@2.1'], logLevel: 'silent',
  });
  const sys20: Record<string, unknown> = { moduleHooks: Symbol.for('SpacetimeDB.moduleHooks.v2') };
  for (const n of syscallNames) sys20[n] = () => 0;
  const context = vm.createContext({ TextEncoder, TextDecoder });
  vm.runInContext(`Symbol.dispose ??= Symbol.for('Symbol.dispose'); Symbol.asyncDispose ??= Symbol.for('Symbol.asyncDispose');
    Set.prototype.isSubsetOf ??= function (o) { for (const x of this) if (!o.has(x)) return false; return true; };`, context);
  const fn = vm.compileFunction(result.outputFiles[0].text, ['require', 'module', 'exports'], { parsingContext: context });
  const mod = { exports: {} as Record<string, unknown> };
  fn((n: string) => (n === 'spacetime:sys@2.0' ? sys20 : n === 'spacetime:sys@2.1' ? { datastore_clear: () => 0n } : undefined),
    mod, mod.exports);
  const exportsSorted = Object.fromEntries(Object.keys(mod.exports).sort().map((k) => [k, mod.exports[k]]));
  const d = mod.exports.default as Record<symbol, (e: object) => { __describe_module__(): Uint8Array }>;
  const out = d[Symbol.for('SpacetimeDB.moduleHooks.v2')](exportsSorted).__describe_module__();
  return new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

test('real library output: names the library passes back resolve; constraints, sequences, schedule, event', async () => {
  const s = buildDatabaseSchema(decodeRawModuleDef(await describeRealModule()));
  const ds = new Datastore(s);
  const users = ds.tableByName('userProfile')!;
  assert.equal(users.name, 'user_profile');
  assert.equal(users.access, 'public');
  assert.deepEqual(users.columns.map((c) => c.name), ['id', 'email', 'display_name', 'age']);
  const ix = (n: string) => ds.indexByName(n)?.index;
  assert.equal(ix('userProfile_id_idx_btree')?.name, 'user_profile_id_idx_btree');
  assert.equal(ix('userProfile_email_idx_btree')?.unique, true);
  assert.equal(ix('userProfile_age_idx_hash')?.algorithm, 'hash');
  assert.deepEqual(ix('userProfile_displayName_age_idx_btree')?.columns, [2, 3]);
  assert.equal(ix('user_profile_display_name_age_idx_btree')?.unique, false);
  assert.deepEqual(users.uniqueConstraints.map((u) => u.name).sort(), ['user_profile_email_key', 'user_profile_id_key']);
  assert.equal(users.primaryKey, 0);
  assert.deepEqual(users.sequences.map((q) => q.name), ['user_profile_id_seq']);
  const tick = ds.tableByName('tickTimer')!;
  assert.deepEqual(tick.schedule, { functionName: 'on_tick', scheduleAtColumn: 1, idColumn: 0 });
  const named = ds.tableByName('Player1Canonical')!;
  assert.equal(named.isEvent, true);
  assert.equal(named.columns[0].name, 'player_id');
});
