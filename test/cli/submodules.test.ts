// Submodules from the CLI: `spacetime call` with dot-qualified names (canonical `lib.lib_insert` and accessor
// `lib.libInsert`), argument coercions and signatures resolved in the submodule's own typespace, the hint lists; and
// `spacetime generate` for a module with a submodule. The fixture test/fixtures/modules/submodules (root module +
// `lib` submodule, written with the official library) is published with the real CLI to a real server process.
// A second part checks cli/call.ts and the generator in-process on the fixture's described definition, including a
// submodule nested two levels deep.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bestMatchForName, callableFunctions, callBody, editDistance, findFunction, signature, unknownFunctionMessage } from '../../src/cli/call.js';
import { describeProgram } from '../../src/cli/generate/extract.js';
import { generateTypeScript, GenerateError } from '../../src/cli/generate/typescript.js';
import { decodeRawModuleDef, moduleDefToJson, type RawModuleDefV10 } from '../../src/sats/moduledef.js';
import { parseJsonLossless, type LosslessJson } from '../../src/cli/json.js';
import { stringifyJson } from '../../src/sats/json.js';
import {
  buildFixture, cleanupTempDirs, makeTempDir, runCli, startTestServer, tempConfigPath, type TestServer,
} from '../harness.js';

const database = 'clisubmodules';
const ownerHex = 'c200' + '0'.repeat(59) + '7';

after(cleanupTempDirs);

describe('spacetime call and generate against a published module with a submodule', () => {
  let server: TestServer;
  let configPath: string;
  let identity: string;
  const cli = (args: string[]) => runCli(args, { configPath });
  const call = (...args: string[]) => cli(['call', '-s', server.url, '--', database, ...args]);

  before(async () => {
    server = await startTestServer();
    configPath = tempConfigPath();
    const pub = await cli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/submodules', '-y', database]);
    assert.equal(pub.code, 0, pub.stderr);
    identity = /identity: ([0-9a-f]{64})/.exec(pub.stdout)![1];
  });
  after(() => server?.stop());

  test('submodule reducers and procedures are called by canonical and accessor dot-qualified names', async () => {
    for (const [fn, value] of [['lib.lib_insert', 'one'], ['lib.libInsert', '"two"']]) {
      const r = await call(fn, value);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
    }
    const viaRoot = await call('use_submodule', 'three');
    assert.equal(viaRoot.code, 0, viaRoot.stderr);
    for (const fn of ['lib.lib_count', 'lib.libCount', 'use_submodule_procedure']) {
      const r = await call(fn);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '3\n', fn);
    }
  });

  test('describe finds submodule reducers and tables by dot-qualified name', async () => {
    const reducer = await cli(['describe', '-s', server.url, database, 'reducer', 'lib.lib_insert', '--json']);
    assert.equal(reducer.code, 0, reducer.stderr);
    assert.equal((JSON.parse(reducer.stdout) as { source_name: string }).source_name, 'libInsert');
    const table = await cli(['describe', '-s', server.url, database, 'table', 'lib.libData', '--json']);
    assert.equal(table.code, 0, table.stderr);
    assert.equal((JSON.parse(table.stdout) as { source_name: string }).source_name, 'libData');
    const missing = await cli(['describe', '-s', server.url, database, 'reducer', 'lib.nope', '--json']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such reducer/);
  });

  test('a Ref parameter of the submodule and an Identity parameter are accepted', async () => {
    const r = await call('lib.lib_put', '{"label":"crate","weight":7}', ownerHex);
    assert.equal(r.code, 0, r.stderr);
    const sql = await cli(['sql', '-s', server.url, database, "SELECT owner FROM lib.libData WHERE value = 'crate:7'"]);
    assert.equal(sql.code, 0, sql.stderr);
    assert.match(sql.stdout, new RegExp(`0x${ownerHex}`));
  });

  test('wrong argument counts print the signature written with the submodule typespace', async () => {
    const r = await call('lib.lib_put', '{"label":"crate","weight":7}');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(
      `Error: Invalid arguments provided for reducer \`lib\\.lib_put\` for database \`${database}\` resolving to identity \`${identity}\`\\.\n\n` +
      '2 parameters were expected, but 1 were provided\\.\n\n' +
      'The reducer has the following signature:\n\tlib\\.lib_put\\(entry: \\{ label: String, weight: u32 \\}, owner: Identity\\)\n\n' +
      'Caused by:\n {4}0: Response text: invalid arguments'));
    // An argument that is not JSON is refused before sending, with the same explanation.
    const notJson = await call('lib.lib_put', '{label', ownerHex);
    assert.equal(notJson.code, 1);
    assert.match(notJson.stderr, /Invalid arguments provided for reducer `lib\.lib_put` .*\n\nThe reducer has the following signature:\n.*\n\nCaused by:\n {4}argument 0 \(entry\): invalid JSON/);
    // The accessor form is echoed as typed; a procedure says "procedure".
    const accessor = await call('lib.libCount', '1');
    assert.equal(accessor.code, 1);
    assert.match(accessor.stderr, /Invalid arguments provided for procedure `lib\.libCount` .*\n\n0 parameters were expected, but 1 were provided\.\n\nThe procedure has the following signature:\n\tlib\.libCount\(\)\n/);
  });

  test('arguments the server rejects give the signature and the server text as the cause', async () => {
    const r = await call('lib.lib_put', '{"label":1,"weight":7}', ownerHex);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error: Invalid arguments provided for reducer `lib\.lib_put` .*\n\nThe reducer has the following signature:\n\tlib\.lib_put\(entry: \{ label: String, weight: u32 \}, owner: Identity\)\n\nCaused by:\n {4}0: Response text: invalid arguments/);
    assert.doesNotMatch(r.stderr, /parameters were expected/);
  });

  test('unknown names get submodule functions as hints under their qualified names', async () => {
    const similar = await call('lib.lib_insrt', 'x');
    assert.equal(similar.code, 1);
    assert.match(similar.stderr, /No such reducer OR procedure `lib\.lib_insrt` .*\n\nA reducer with a similar name exists: `lib\.lib_insert`\n/);
    const procedure = await call('LIB.LIB_COUNT');
    assert.match(procedure.stderr, /\n\nA procedure with a similar name exists: `lib\.lib_count`\n/);
    const none = await call('lib.nope');
    assert.equal(none.code, 1);
    assert.ok(none.stderr.includes(
      `Error: No such reducer OR procedure \`lib.nope\` for database \`${database}\` resolving to identity \`${identity}\`.\n\n` +
      'Here are some existing reducers:\n- add_note\n- lib.lib_put\n- lib.lib_insert\n- use_submodule\n\n' +
      'Here are some existing procedures:\n- lib.lib_count\n- use_submodule_procedure\n'), none.stderr);
  });

  test('generate writes the submodule files into a namespace folder', async () => {
    const outDir = path.join(makeTempDir('stdb-gen-'), 'module_bindings');
    const r = await cli(['generate', '--lang', 'typescript', '--out-dir', outDir, '--module-path', 'test/fixtures/modules/submodules', '-y']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Creating directory ${outDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/lib\n`));
    for (const file of ['lib/lib_data_table.ts', 'lib/lib_total_table.ts', 'lib/lib_insert_reducer.ts', 'lib/lib_put_reducer.ts', 'lib/lib_count_procedure.ts', 'lib/types.ts']) {
      assert.ok(existsSync(path.join(outDir, file)), file);
    }
    const index = readFileSync(path.join(outDir, 'index.ts'), 'utf8');
    assert.match(index, /\n  "lib\.libData": __table\(\{\n    name: 'lib\.libData',\n/);
    assert.match(index, /\n  __reducerSchema\("lib\.lib_insert", Lib_LibInsertReducer\),\n/);
    assert.match(index, /\n  __procedureSchema\("lib\.lib_count", Lib_LibCountProcedure\.params, Lib_LibCountProcedure\.returnType\),\n/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// In-process: cli/call.ts and the generator on the fixture's definition

describe('submodule resolution without a server', () => {
  let def: RawModuleDefV10;
  /** The fixture mounted once more, under `outer`: `outer.lib.…` is two levels deep. */
  let nested: RawModuleDefV10;
  /** The definition as the server's `/schema?version=10` JSON (wide integers stay numbers). */
  const schemaJson = (d: RawModuleDefV10): LosslessJson => parseJsonLossless(stringifyJson(moduleDefToJson(d)));

  before(async () => {
    def = decodeRawModuleDef(await describeProgram((await buildFixture('submodules')).code));
    nested = { sections: [...def.sections.filter((s) => s.tag !== 'Submodules'), { tag: 'Submodules', value: [{ namespace: 'outer', module: def }] }] };
  });

  test('functions keep the owning typespace: a submodule Ref resolves in the submodule', () => {
    const functions = callableFunctions(schemaJson(def));
    assert.deepEqual(functions.map((f) => `${f.kind} ${f.name} ${f.sourceName}`), [
      'reducer add_note addNote', 'reducer use_submodule useSubmodule', 'procedure use_submodule_procedure useSubmoduleProcedure',
      'reducer lib.lib_insert lib.libInsert', 'reducer lib.lib_put lib.libPut', 'procedure lib.lib_count lib.libCount',
    ]);
    const put = findFunction(functions, 'lib.libPut')!;
    assert.equal(put.name, 'lib.lib_put');
    // The root typespace has fewer entries than the submodule's Ref index: resolving there would fail or be wrong.
    assert.equal(signature(put, 'lib.lib_put'), 'lib.lib_put(entry: { label: String, weight: u32 }, owner: Identity)');
    assert.equal(callBody(put, ['{"label":"a","weight":18446744073709551615}', ownerHex]),
      `[{"label":"a","weight":18446744073709551615}, {"__identity__":"0x${ownerHex}"}]`);
    assert.equal(callBody(findFunction(functions, 'lib.lib_insert')!, ['plain words']), '["plain words"]');
    assert.equal(findFunction(functions, 'lib'), undefined);
    assert.equal(findFunction(functions, 'lib_insert'), undefined);
  });

  test('nested submodules are reached by their full path', () => {
    const functions = callableFunctions(schemaJson(nested));
    const inner = findFunction(functions, 'outer.lib.lib_put')!;
    assert.equal(signature(inner, 'outer.lib.lib_put'), 'outer.lib.lib_put(entry: { label: String, weight: u32 }, owner: Identity)');
    assert.equal(findFunction(functions, 'outer.lib.libCount')?.name, 'outer.lib.lib_count');
    assert.match(unknownFunctionMessage('OUTER.LIB.LIB_COUNT', 'db', 'id', functions), /A procedure with a similar name exists: `outer\.lib\.lib_count`$/);
  });

  test('name similarity follows rustc: case-insensitive match, a third of the length, word order', () => {
    assert.equal(editDistance('ab', 'ba', 5), 1);
    assert.equal(editDistance('kitten', 'sitting', 5), 3);
    assert.equal(editDistance('kitten', 'sitting', 2), undefined);
    assert.equal(bestMatchForName(['say_hello'], 'SAY_HELLO'), 'say_hello');
    assert.equal(bestMatchForName(['say_hello', 'say_hallo'], 'say_helo'), 'say_hello');
    assert.equal(bestMatchForName(['hello_say'], 'say_hello'), 'hello_say');
    assert.equal(bestMatchForName(['abc'], 'xyz'), undefined);
  });

  test('the generator nests namespaces and writes each module against its own typespace', () => {
    const files = generateTypeScript(nested);
    assert.deepEqual([...files.keys()].filter((f) => f.startsWith('outer/')).sort(), [
      'outer/lib/lib_count_procedure.ts', 'outer/lib/lib_data_table.ts', 'outer/lib/lib_insert_reducer.ts',
      'outer/lib/lib_put_reducer.ts', 'outer/lib/lib_total_table.ts', 'outer/lib/types.ts', 'outer/note_table.ts', 'outer/types.ts',
      'outer/use_submodule_procedure_procedure.ts', 'outer/use_submodule_reducer.ts', 'outer/add_note_reducer.ts',
    ].sort());
    const index = files.get('index.ts')!;
    assert.match(index, /import OuterLib_LibDataRow from "\.\/outer\/lib\/lib_data_table";/);
    assert.match(index, /\n  "outer\.lib\.libData": __table\(\{\n    name: 'outer\.lib\.libData',/);
    assert.match(index, /\n  outer: \{\n    note: __qb\["outer\.note"\],\n    lib: \{\n      libData: __qb\["outer\.lib\.libData"\],\n      libTotal: __qb\["outer\.lib\.libTotal"\],\n    \},\n  \},\n/);
    assert.match(index, /\n    lib: \{\n      libInsert: __reducerAccessors\["outer\.lib\.libInsert"\],\n/);
    assert.match(files.get('outer/lib/lib_put_reducer.ts')!, /import \{\n  LibEntry,\n\} from "\.\/types";/);
    assert.match(files.get('outer/lib/types.ts')!, /export const LibEntry = __t\.object\("LibEntry", \{/);
    assert.doesNotMatch(files.get('types.ts')!, /LibEntry/);
  });

  test('a namespace that is not an identifier, or two types with one name, are refused', () => {
    const bad: RawModuleDefV10 = { sections: [{ tag: 'Submodules', value: [{ namespace: '../x', module: def }] }] };
    assert.throws(() => generateTypeScript(bad), (e: unknown) => e instanceof GenerateError && /namespace '\.\.\/x'/.test(e.message));
    // The library lets a row type and a view's parameter type share a name; upstream's validation refuses that, and
    // so does ours (datastore/schema.ts), before the generator would write two declarations of one name.
    const twice: RawModuleDefV10 = {
      sections: def.sections.map((s) => (s.tag === 'Types' ? { tag: 'Types', value: [...s.value, { ...s.value[0] }] } : s)),
    };
    assert.throws(() => generateTypeScript(twice), /name `Note` is used for multiple types/);
  });
});
