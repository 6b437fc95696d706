// Tests for sats/moduledef.ts: decode the real `__describe_module__` output of a module built with the official
// library (bundled with esbuild, evaluated in a bare vm context with stub syscalls — no host needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import path from 'node:path';
import { build } from 'esbuild';
import {
  decodeRawModuleDef, encodeRawModuleDef, moduleDefSections, moduleDefToJson, rawModuleDefToJson,
} from '../../src/sats/moduledef.js';
import { compileCodec } from '../../src/sats/codec.js';
import { stringifyJson } from '../../src/sats/json.js';
import { SatsError } from '../../src/sats/types.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');

const moduleSource = `
import { schema, table, t } from 'spacetimedb/server';
const Color = t.enum('Color', { Red: t.unit(), Custom: t.u32() });
const person = table({ name: 'person', public: true }, {
  id: t.u64().primaryKey().autoInc(),
  name: t.string().index('btree'),
  balance: t.i128(),
  color: Color,
  nick: t.option(t.string()),
  owner: t.identity(),
});
const spacetime = schema({ person });
export default spacetime;
export const addPerson = spacetime.reducer({ name: t.string(), oneU8: t.u8() }, (ctx, { name }) => {});
export const init = spacetime.init((ctx) => {});
`;

const syscallNames = ['table_id_from_name', 'index_id_from_name', 'datastore_table_row_count',
  'datastore_table_scan_bsatn', 'datastore_index_scan_range_bsatn', 'row_iter_bsatn_advance', 'row_iter_bsatn_close',
  'datastore_insert_bsatn', 'datastore_update_bsatn', 'datastore_delete_by_index_scan_range_bsatn',
  'datastore_delete_all_by_eq_bsatn', 'volatile_nonatomic_schedule_immediate', 'console_log', 'console_timer_start',
  'console_timer_end', 'identity', 'get_jwt_payload', 'procedure_http_request', 'procedure_start_mut_tx',
  'procedure_commit_mut_tx', 'procedure_abort_mut_tx', 'datastore_index_scan_point_bsatn',
  'datastore_delete_by_index_scan_point_bsatn'];

async function describeRealModule(): Promise<Uint8Array> {
  const result = await build({
    stdin: { contents: moduleSource, resolveDir: repoRoot, loader: 'ts' },
    bundle: true, write: false, format: 'cjs', platform: 'neutral', target: 'node20',
    mainFields: ['module', 'main'], conditions: ['import', 'default'],
    external: ['spacetime:sys@2.0', 'spacetime:sys@2.1'], logLevel: 'silent',
  });
  const code = result.outputFiles[0].text;
  const sys20: Record<string, unknown> = { moduleHooks: Symbol.for('SpacetimeDB.moduleHooks.v2') };
  for (const n of syscallNames) sys20[n] = () => 0;
  const sys21 = { datastore_clear: () => 0n };
  const context = vm.createContext({ TextEncoder, TextDecoder });
  vm.runInContext(`Symbol.dispose ??= Symbol.for('Symbol.dispose'); Symbol.asyncDispose ??= Symbol.for('Symbol.asyncDispose');
    Set.prototype.isSubsetOf ??= function (o) { for (const x of this) if (!o.has(x)) return false; return true; };`, context);
  const fn = vm.compileFunction(code, ['require', 'module', 'exports'], { parsingContext: context });
  const mod = { exports: {} as Record<string, unknown> };
  const req = (name: string) => (name === 'spacetime:sys@2.0' ? sys20 : name === 'spacetime:sys@2.1' ? sys21 : undefined);
  fn(req, mod, mod.exports);
  const exportsSorted = Object.fromEntries(Object.keys(mod.exports).sort().map((k) => [k, mod.exports[k]]));
  const def = mod.exports.default as Record<symbol, (e: object) => { __describe_module__(): Uint8Array }>;
  const hooks = def[Symbol.for('SpacetimeDB.moduleHooks.v2')](exportsSorted);
  const out = hooks.__describe_module__();
  assert.ok(ArrayBuffer.isView(out));
  return new Uint8Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

test('decodes real library output (V10), round-trips and renders JSON', async () => {
  const bytes = await describeRealModule();
  assert.equal(bytes[0], 2);
  const def = decodeRawModuleDef(bytes);
  const s = moduleDefSections(def);
  assert.equal(def.sections.length, 15);

  assert.equal(s.tables.length, 1);
  const person = s.tables[0];
  assert.equal(person.sourceName, 'person');
  assert.deepEqual(person.primaryKey, [0]);
  assert.deepEqual(person.tableAccess, { tag: 'Public' });
  assert.deepEqual(person.tableType, { tag: 'User' });
  assert.equal(person.sequences.length, 1);
  assert.equal(person.sequences[0].column, 0);
  assert.equal(person.sequences[0].increment, 1n);
  assert.equal(person.sequences[0].start, undefined);
  assert.ok(person.indexes.some((i) => i.algorithm.tag === 'BTree' && i.algorithm.value[0] === 1));
  assert.equal(person.isEvent, false);

  const row = s.typespace.types[person.productTypeRef];
  assert.equal(row.tag, 'Product');
  const cols = row.tag === 'Product' ? row.value.elements : [];
  assert.deepEqual(cols.map((c) => c.name), ['id', 'name', 'balance', 'color', 'nick', 'owner']);
  assert.deepEqual(cols[0].algebraicType, { tag: 'U64' });
  // the identity column is the special product
  const owner = cols[5].algebraicType;
  assert.ok(owner.tag === 'Product' && owner.value.elements[0].name === '__identity__');

  assert.equal(s.reducers.length, 2);
  const add = s.reducers.find((r) => r.sourceName === 'addPerson')!;
  assert.deepEqual(add.params.elements.map((e) => e.name), ['name', 'oneU8']);
  assert.deepEqual(s.lifeCycleReducers.map((l) => l.lifecycleSpec.tag), ['Init']);
  assert.deepEqual(s.caseConversionPolicy, { tag: 'SnakeCase' });

  // row codec from the decoded typespace works
  const codec = compileCodec({ tag: 'Ref', value: person.productTypeRef }, s.typespace);
  const value = [5n, 'ann', -3n, { tag: 1, value: 7 }, { tag: 1, value: [] }, [123n]];
  assert.deepEqual(codec.decode(codec.encode(value)), value);

  // our encoder reproduces the library's bytes exactly
  assert.deepEqual(encodeRawModuleDef(def), bytes);

  // JSON as upstream's /schema?version=10
  const json = rawModuleDefToJson(bytes, 10) as { sections: Record<string, unknown>[] };
  assert.deepEqual(moduleDefToJson(def), json);
  const tables = json.sections.find((x) => 'Tables' in x)!.Tables as Record<string, unknown>[];
  assert.equal(tables[0].source_name, 'person');
  assert.deepEqual(tables[0].table_access, { Public: [] });
  assert.deepEqual(tables[0].primary_key, [0]);
  const seq = (tables[0].sequences as Record<string, unknown>[])[0];
  assert.deepEqual(seq.start, { none: [] });
  assert.equal(seq.increment, 1n);
  const text = stringifyJson(json);
  assert.match(text, /"increment":1[,}]/);
  assert.match(text, /"algebraic_type":\{"U64":\[\]\}/);
  assert.match(text, /"name":\{"some":"id"\}/);
});

test('V8/V9 and garbage are rejected with clear errors', () => {
  assert.throws(() => decodeRawModuleDef(new Uint8Array([1, 0])), /module definition version V9 is not supported/);
  assert.throws(() => decodeRawModuleDef(new Uint8Array([0])), /V8BackCompat is not supported/);
  assert.throws(() => decodeRawModuleDef(new Uint8Array([7])), /invalid RawModuleDef tag 7/);
  assert.throws(() => decodeRawModuleDef(new Uint8Array([2, 1, 0, 0, 0, 99, 0, 0, 0, 0])), (e: unknown) =>
    e instanceof SatsError && /invalid module definition: sections\[0\]: invalid sum tag 99/.test(e.message) && e.offsetBytes === 5);
  // A section count the bytes left cannot hold is refused before any section is read.
  assert.throws(() => decodeRawModuleDef(new Uint8Array([2, 1, 0, 0, 0, 99])), /sections: array of 1 elements needs at least \d+ bytes but only 1 remain/);
  assert.throws(() => rawModuleDefToJson(new Uint8Array([2, 0, 0, 0, 0]), 9), /version 9 is not supported/);
  assert.deepEqual(decodeRawModuleDef(new Uint8Array([2, 0, 0, 0, 0])), { sections: [] });
});
