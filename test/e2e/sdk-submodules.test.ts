// End-to-end test of client bindings for a module with a submodule: the submodules fixture (root module + `lib`
// submodule) published with the real CLI to a real server process, bindings from our `spacetime generate --lang
// typescript`, type-checked with tsc against the official package, and an official-SDK client (`DbConnection` from
// `spacetimedb`) that subscribes to the submodule's table and calls the submodule's reducer and procedure through
// the generated bindings, and follows the submodule's view.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, generateBindings, type GeneratedBindings, repoRoot, runCli, startTestServer, tempConfigPath, type TestServer, within } from '../harness.js';

const execFileAsync = promisify(execFile);
const database = 'sdksubmodules';

let server: TestServer;
let generated: GeneratedBindings;
// The generated module's exports; typed loosely because it is produced at test time.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let bindings: any;


before(async () => {
  server = await startTestServer();
  const configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/submodules', '-y', database], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
  generated = await generateBindings('submodules');
  bindings = await generated.load();
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('submodule bindings type-check with tsc against the official package', async () => {
  // A consumer that uses the namespaced API, so a wrong generated type is a compile error.
  writeFileSync(path.join(generated.dir, 'consumer.ts'), [
    "import { DbConnection, procedures, reducers, tables } from './index.js';",
    "import type { LibEntry } from './lib/types.js';",
    'export async function use(conn: DbConnection): Promise<string> {',
    "  await conn.reducers['lib.libInsert']({ value: 'hi' });",
    "  const entry: LibEntry = { label: 'a', weight: 1 };",
    "  await conn.reducers['lib.libPut']({ entry, owner: conn.identity! });",
    "  const count: bigint = await conn.procedures['lib.libCount']({});",
    "  for (const row of conn.db['lib.libData'].iter()) return row.value + String(row.id + count);",
    "  for (const total of conn.db['lib.libTotal'].iter()) return String(total.n + 1n);",
    '  const names: string[] = [reducers.lib.libInsert.name, procedures.lib.libCount.name, reducers.addNote.name];',
    '  return names.join() + tables.lib.libData.toSql() + tables.lib.libTotal.toSql() + tables.note.toSql();',
    '}',
  ].join('\n'));
  writeFileSync(path.join(generated.dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', strict: true, noEmit: true,
      skipLibCheck: true, lib: ['ES2022', 'DOM'], allowImportingTsExtensions: true,
    },
    include: ['**/*.ts'],
  }));
  const tsc = path.join(repoRoot, 'node_modules', '.bin', 'tsc');
  await execFileAsync(tsc, ['-p', generated.dir]).catch((error: { stdout?: string }) => {
    assert.fail(`tsc failed on the generated bindings:\n${error.stdout ?? String(error)}`);
  });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function connect(): Promise<{ conn: any; identityHex: string }> {
  return within(new Promise((resolve, reject) => {
    bindings.DbConnection.builder()
      .withUri(server.url)
      .withDatabaseName(database)
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      .onConnect((conn: any, identity: { toHexString(): string }) => resolve({ conn, identityHex: identity.toHexString() }))
      .onConnectError((_ctx: unknown, error: Error) => reject(error))
      .build();
  }), 'connect');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function subscribe(conn: any, query: unknown): Promise<void> {
  return within(new Promise<void>((resolve, reject) => {
    conn.subscriptionBuilder()
      .onApplied(() => resolve())
      .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription failed')))
      .subscribe(query);
  }), 'subscribe');
}

interface LibRow { id: bigint; value: string; owner: { toHexString(): string } }

/** Resolves with the first inserted row whose value is `value`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function nextInsert(conn: any, value: string): Promise<LibRow> {
  return within(new Promise<LibRow>((resolve) => {
    conn.db['lib.libData'].onInsert((_ctx: unknown, row: LibRow) => {
      if (row.value === value) resolve(row);
    });
  }), `insert of ${value}`);
}

test('an SDK client subscribes to the submodule table and calls its reducer and procedure', async () => {
  const { conn, identityHex } = await connect();
  try {
    // The generated query builder for a submodule table (tables.lib.libData) addresses it by its qualified name.
    assert.equal(bindings.tables.lib.libData.toSql(), 'SELECT * FROM "lib"."libData"');
    await subscribe(conn, [bindings.tables.lib.libData, bindings.tables.lib.libTotal]);
    // The submodule's anonymous view follows the table's row count.
    const totalThree = within(new Promise<void>((resolve) => {
      conn.db['lib.libTotal'].onInsert((_ctx: unknown, row: { n: bigint }) => {
        if (row.n === 3n) resolve();
      });
    }), 'lib.libTotal reaching 3');

    const direct = nextInsert(conn, 'from client');
    await within(conn.reducers['lib.libInsert']({ value: 'from client' }), 'lib.libInsert');
    const row = await direct;
    assert.equal(row.owner.toHexString(), identityHex);
    assert.equal(typeof row.id, 'bigint');

    // A named type of the submodule (LibEntry, a Ref into the submodule's typespace) as a reducer argument.
    const put = nextInsert(conn, 'crate:7');
    await within(conn.reducers['lib.libPut']({ entry: { label: 'crate', weight: 7 }, owner: conn.identity }), 'lib.libPut');
    await put;

    // The root's reducer calls into the submodule; its row reaches the client the same way.
    const viaRoot = nextInsert(conn, 'via root');
    await within(conn.reducers.useSubmodule({ value: 'via root' }), 'useSubmodule');
    await viaRoot;
    await totalThree;
    assert.deepEqual([...conn.db['lib.libTotal'].iter()].map((r: { n: bigint }) => r.n), [3n]);

    assert.deepEqual([...conn.db['lib.libData'].iter()].map((r: LibRow) => r.value).sort(), ['crate:7', 'from client', 'via root']);
    assert.equal(await within(conn.procedures['lib.libCount']({}), 'lib.libCount'), 3n);
    assert.equal(await within(conn.procedures.useSubmoduleProcedure({}), 'useSubmoduleProcedure'), 3n);
  } finally {
    conn.disconnect();
  }
});

test('the query-builder callback form reaches submodule tables by namespace', async () => {
  const { conn } = await connect();
  try {
    // The SDK's own namespaced builder groups tables by the part of the wire name before the dot.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    await subscribe(conn, (t: any) => [t.note, t.lib.libData]);
    assert.ok([...conn.db['lib.libData'].iter()].length >= 1);
  } finally {
    conn.disconnect();
  }
});
