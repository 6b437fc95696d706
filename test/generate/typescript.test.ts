// test/generate/typescript.test.ts — `spacetime generate --lang typescript` against the official client SDK.
//
// Builds real modules (test/fixtures/modules/{basic,keynote} as bundled by the CLI engineer, and our own
// test/generate/fixtures/rich bundled here with cli/build.ts), describes them in our host isolate (extract.ts),
// generates bindings with runGenerate, then: type-checks them with tsc (strict, moduleResolution bundler) together
// with a consumer file that uses the typed API; imports them in Node and hands them to the official SDK
// (`DbConnection.builder()…build()`), and checks that generated row types put the same bytes on the wire as the
// module's own row types (SDK serializer ⇄ our sats codec).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleModule } from '../../src/cli/build.js';
import { generateFromCli, runGenerate } from '../../src/cli/generate/command.js';
import { describeJsFile } from '../../src/cli/generate/extract.js';
import { cliVersion, generateTypeScript } from '../../src/cli/generate/typescript.js';
import { compileCodec } from '../../src/sats/codec.js';
import { decodeRawModuleDef, moduleDefSections, type RawModuleDefV10 } from '../../src/sats/moduledef.js';
import type { Value } from '../../src/sats/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const fixtureModules = path.join(repoRoot, 'test/fixtures/modules');

interface Generated { dir: string; def: RawModuleDefV10; lines: string[] }

const work = mkdtempSync(path.join(tmpdir(), 'stdb-generate-'));
// Generated code imports "spacetimedb"; resolve it from the repo's node_modules.
symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'), 'dir');
const generated = new Map<string, Generated>();

async function generate(name: string, bundlePath: string, extra: { includePrivate?: boolean } = {}): Promise<Generated> {
  const bytes = await describeJsFile(bundlePath);
  const dir = path.join(work, name);
  const lines: string[] = [];
  await runGenerate({ lang: 'typescript', outDir: dir, moduleDefBytes: bytes, yes: true, print: (l) => lines.push(l), ...extra });
  return { dir, def: decodeRawModuleDef(bytes), lines };
}

const consumer = `
import { DbConnection, reducers, tables, type EventContext } from './index';
import type { PlayerScore, Shape, Color } from './types';
import type { AddPlayerParams } from './types/reducers';
import type { LevelOfArgs, LevelOfResult } from './types/procedures';

const conn: DbConnection = DbConnection.builder().withUri('ws://127.0.0.1:1').withDatabaseName('db').build();
const params: AddPlayerParams = { displayName: 'a', level: 1, home: { x: 1, y: 2 }, favorite: { tag: 'Red' } };
conn.reducers.addPlayer(params);
conn.db.playerScore.onInsert((_ctx: EventContext, row: PlayerScore) => {
  const id: bigint = row.playerId;
  const nick: string | undefined = row.nickname;
  const color: Color = row.favorite;
  void id; void nick; void color;
});
const found: PlayerScore | null = conn.db.playerScore.playerId.find(1n);
const shape: Shape = { tag: 'Rect', value: { x: 1, y: 2 } };
const args: LevelOfArgs = { playerId: 3n };
const result: LevelOfResult = 7;
void found; void shape; void args; void result; void reducers; void tables.playerScore;
conn.db.legacy_log.onInsert(() => {});
conn.db.legacyLog.onInsert(() => {});
`;

before(async () => {
  for (const name of ['basic', 'keynote']) {
    // The fixture bundles are build artifacts (git-ignored); build them like the e2e harness does when absent.
    const bundle = path.join(fixtureModules, name, 'dist/bundle.js');
    const bundlePath = existsSync(bundle) ? bundle : (await bundleModule(path.join(fixtureModules, name))).bundlePath;
    generated.set(name, await generate(name, bundlePath));
  }
  const rich = await bundleModule(path.join(here, 'fixtures/rich'));
  generated.set('rich', await generate('rich', rich.bundlePath));
  writeFileSync(path.join(work, 'rich', 'consumer.ts'), consumer);
});

after(() => rmSync(work, { recursive: true, force: true }));

describe('generate --lang typescript', () => {
  it('emits upstream\'s file set and header', () => {
    const rich = generated.get('rich')!;
    const files = generateTypeScript(rich.def);
    assert.deepEqual([...files.keys()].sort(), [
      'add_player_reducer.ts', 'damage_table.ts', 'hit_reducer.ts', 'index.ts', 'legacy_log_table.ts',
      // No on_connect_reducer.ts: upstream's validation makes lifecycle reducers private (as in its chat template).
      'level_of_procedure.ts', 'my_players_table.ts', 'player_score_table.ts', 'set_shape_reducer.ts', 'types.ts', 'types/procedures.ts', 'types/reducers.ts',
    ]);
    for (const [file, code] of files) {
      assert.ok(code.startsWith('// THIS FILE IS AUTOMATICALLY GENERATED BY SPACETIMEDB. EDITS TO THIS FILE\n'), file);
    }
    const index = files.get('index.ts')!;
    assert.match(index, new RegExp(`// This was generated using spacetimedb cli version ${cliVersion.replace(/\./g, '\\.')} `));
    assert.match(index, /__reducerSchema\("add_player", AddPlayerReducer\)/);
    assert.doesNotMatch(index, /OnConnectReducer|InitReducer/); // lifecycle reducers are not callable
    assert.match(index, /name: 'player_score',/);
    assert.match(index, /event: true,/);
    assert.match(index, /"legacy_log": "legacyLog",/);
    assert.match(files.get('player_score_table.ts')!, /playerId: __t\.u64\(\)\.primaryKey\(\)\.name\("player_id"\),/);
    assert.match(files.get('types.ts')!, /get Rect\(\) \{\n {4}return Point;/);
    assert.doesNotMatch(files.get('types.ts')!, /"AddPlayer"/); // reducer argument structs are not types
    assert.ok(rich.lines.includes('Skipping private tables during codegen: secret.'));
    assert.equal(rich.lines.at(-1), 'Generate finished successfully.');
    const withPrivate = generateTypeScript(rich.def, { includePrivate: true });
    assert.ok(withPrivate.has('secret_table.ts'));
  });

  it('type-checks with tsc (strict, moduleResolution bundler) against the installed SDK', () => {
    writeFileSync(path.join(work, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', noEmit: true,
        skipLibCheck: true, lib: ['ES2022', 'DOM'], types: [],
      },
      include: [...generated.keys()].map((n) => `${n}/**/*.ts`),
    }));
    const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', path.join(work, 'tsconfig.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  });

  it('is accepted by the official SDK: DbConnection.builder() builds a connection with tables and reducers', async () => {
    for (const [name, g] of generated) {
      const mod = await import(pathToFileURL(path.join(g.dir, 'index.ts')).href);
      const s = moduleDefSections(g.def);
      let connectError: unknown;
      const conn = mod.DbConnection.builder()
        .withUri('ws://127.0.0.1:1')
        .withDatabaseName('generate-test')
        .onConnectError((_ctx: unknown, err: unknown) => { connectError = err; })
        .build();
      try {
        for (const t of s.tables.filter((x) => x.tableAccess.tag === 'Public')) {
          const key = t.sourceName.replace(/_([a-z0-9])/g, (_m: string, c: string) => c.toUpperCase());
          assert.ok(conn.db[key] !== undefined, `${name}: conn.db.${key}`);
          assert.ok(mod.tables[key] !== undefined, `${name}: tables.${key}`);
        }
        const lifecycle = new Set(s.lifeCycleReducers.map((l) => l.functionName));
        for (const r of s.reducers.filter((x) => !lifecycle.has(x.sourceName))) {
          assert.equal(typeof conn.reducers[r.sourceName], 'function', `${name}: conn.reducers.${r.sourceName}`);
          assert.ok(mod.reducers[r.sourceName] !== undefined, `${name}: reducers.${r.sourceName}`);
        }
      } finally {
        conn.disconnect();
      }
      void connectError;
    }
  });

  it('row types put the same bytes on the wire as the module (SDK serializer ⇄ our codec)', async () => {
    const rich = generated.get('rich')!;
    const { AlgebraicType, BinaryReader, BinaryWriter, Identity, ConnectionId, Timestamp, TimeDuration, Uuid } =
      await import('spacetimedb');
    const Row = (await import(pathToFileURL(path.join(rich.dir, 'player_score_table.ts')).href)).default;
    const sample = {
      playerId: 42n, displayName: 'héllo', level: 7, owner: new Identity(123n), conn: new ConnectionId(5n),
      joinedAt: new Timestamp(1_700_000_000_000_000n), idleFor: new TimeDuration(-3n), uuid: new Uuid(99n),
      nickname: 'nick', tags: ['a', 'b'], avatar: new Uint8Array([1, 2, 3]), home: { x: -1, y: 2 },
      path: [{ x: 3, y: 4 }], favorite: { tag: 'Blue' }, shape: { tag: 'Rect', value: { x: 5, y: 6 } },
      big: -(2n ** 100n), huge: 2n ** 200n, ratio: 0.5,
    };
    const writer = new BinaryWriter(64);
    AlgebraicType.makeSerializer(Row.algebraicType)(writer, sample);
    const bytes = writer.getBuffer();

    const s = moduleDefSections(rich.def);
    const table = s.tables.find((t) => t.sourceName === 'playerScore')!;
    const codec = compileCodec({ tag: 'Ref', value: table.productTypeRef }, s.typespace);
    const v = codec.decode(bytes) as Value[];
    assert.equal(v[0], 42n);
    assert.equal(v[1], 'héllo');
    assert.deepEqual(v[3], [123n]);
    assert.deepEqual(v[8], { tag: 0, value: 'nick' });
    assert.deepEqual(v[13], { tag: 2, value: [] });
    assert.deepEqual(v[14], { tag: 1, value: [5, 6] });
    assert.equal(v[16], 2n ** 200n);
    assert.deepEqual(codec.encode(v), bytes);

    const back = AlgebraicType.makeDeserializer(Row.algebraicType)(new BinaryReader(codec.encode(v)));
    assert.equal(back.displayName, 'héllo');
    assert.equal(back.big, -(2n ** 100n));
    assert.deepEqual(back.shape, { tag: 'Rect', value: { x: 5, y: 6 } });
  });

  it('rewrites only changed files and deletes stale generated files', async () => {
    const rich = generated.get('rich')!;
    const stale = path.join(rich.dir, 'old_thing_table.ts');
    writeFileSync(stale, '// THIS FILE IS AUTOMATICALLY GENERATED BY SPACETIMEDB. EDITS TO THIS FILE\nexport {};\n');
    const handWritten = path.join(rich.dir, 'mine.ts');
    writeFileSync(handWritten, 'export const mine = 1;\n');
    writeFileSync(path.join(rich.dir, 'types.ts'), '// edited\n');
    const lines: string[] = [];
    const bytes = await describeJsFile(path.join(here, 'fixtures/rich/dist/bundle.js'));
    await runGenerate({ lang: 'typescript', outDir: rich.dir, moduleDefBytes: bytes, yes: true, print: (l) => lines.push(l) });
    assert.deepEqual(lines.filter((l) => l.startsWith('Writing file')), [`Writing file ${path.join(rich.dir, 'types.ts')}`]);
    assert.ok(lines.includes('The following files were not generated by this command and will be deleted:'));
    assert.ok(lines.includes(`  ${stale}`));
    assert.ok(lines.includes('Files deleted successfully.'));
    assert.equal(existsSync(stale), false);
    assert.equal(readFileSync(handWritten, 'utf8'), 'export const mine = 1;\n');
  });

  it('rejects languages it cannot generate', async () => {
    const bytes = await describeJsFile(path.join(here, 'fixtures/rich/dist/bundle.js'));
    await assert.rejects(runGenerate({ lang: 'rust', outDir: path.join(work, 'x'), moduleDefBytes: bytes, print: () => {} }),
      /not supported/);
    await assert.rejects(runGenerate({ lang: 'cobol', outDir: path.join(work, 'x'), moduleDefBytes: bytes, print: () => {} }),
      /invalid value 'cobol'/);
  });
  it('generateFromCli: --module-path builds the module; --js-path skips the build; language is detected', async () => {
    const modulePath = path.join(here, 'fixtures/rich');
    const built: string[] = [];
    const outA = path.join(work, 'cli-a');
    await generateFromCli({ lang: 'typescript', modulePath, outDir: outA, yes: true, print: (l) => built.push(l) });
    assert.equal(built[0], `Generating TypeScript module bindings for module ${modulePath}`);
    assert.ok(existsSync(path.join(outA, 'index.ts')));

    const client = path.join(work, 'client');
    mkdirSync(client);
    writeFileSync(path.join(client, 'package.json'), '{"name":"client"}');
    const lines: string[] = [];
    await generateFromCli({ jsPath: path.join(modulePath, 'dist/bundle.js'), cwd: client, yes: true, print: (l) => lines.push(l) });
    assert.match(lines[0], /^Detected client language 'typescript' from '\.'/);
    assert.equal(lines[1], 'Generating TypeScript module bindings for module spacetimedb');
    assert.equal(lines[2], `Skipping build. Instead we are inspecting ${path.join(modulePath, 'dist/bundle.js')}`);
    assert.ok(existsSync(path.join(client, 'src/module_bindings/index.ts')));
    assert.equal(readFileSync(path.join(client, 'src/module_bindings/index.ts'), 'utf8'), readFileSync(path.join(outA, 'index.ts'), 'utf8'));

    const wasm = path.join(work, 'module.wasm');
    writeFileSync(wasm, new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    await assert.rejects(generateFromCli({ lang: 'ts', binPath: wasm, outDir: path.join(work, 'w'), print: () => {} }),
      /could not extract schema/);
    await assert.rejects(generateFromCli({ lang: 'ts', modulePath: path.join(work, 'missing'), print: () => {} }),
      /Could not find module source at/);
  });
});
