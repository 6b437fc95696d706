// End-to-end test of a user's client (issue 4): a chat module published with the real CLI to a real server process,
// bindings from our `spacetime generate --lang typescript`, type-checked with tsc, and two official-SDK clients
// (`DbConnection` from `spacetimedb`) that set names and send messages and see each other live.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, repoRoot, runCli, startTestServer, tempConfigPath, type TestServer, within } from '../harness.js';

const execFileAsync = promisify(execFile);

// Generated code imports `spacetimedb`, so it must live inside the repository to resolve the installed package.
const generatedDir = path.join(repoRoot, 'test', '.generated', `chat-${process.pid}`);
const bindingsDir = path.join(generatedDir, 'module_bindings');

let server: TestServer;
let configPath: string;
// The generated module's exports; typed loosely because it is produced at test time.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let bindings: any;


before(async () => {
  server = await startTestServer();
  configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/chat', '-y', 'chat'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
  mkdirSync(generatedDir, { recursive: true });
  const gen = await runCli(
    ['generate', '--lang', 'typescript', '--out-dir', bindingsDir, '--module-path', 'test/fixtures/modules/chat', '-y'],
    { configPath });
  assert.equal(gen.code, 0, gen.stderr);
  bindings = await import(pathToFileURL(path.join(bindingsDir, 'index.ts')).href);
});

after(async () => {
  await server?.stop();
  rmSync(generatedDir, { recursive: true, force: true });
  cleanupTempDirs();
});

test('generated bindings type-check with tsc against the official package', async () => {
  // A consumer file that uses the typed API, so a wrong generated type shows up as a compile error.
  writeFileSync(path.join(generatedDir, 'consumer.ts'), [
    "import { DbConnection, tables } from './module_bindings/index.js';",
    'export function use(conn: DbConnection): string {',
    "  conn.reducers.sendMessage({ text: 'hi' });",
    "  for (const user of conn.db.user.iter()) if (user.name !== undefined) return user.name + String(user.online);",
    '  return String(tables.message);',
    '}',
  ].join('\n'));
  writeFileSync(path.join(generatedDir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'ESNext', moduleResolution: 'bundler', strict: true, noEmit: true,
      skipLibCheck: true, lib: ['ES2022', 'DOM'], allowImportingTsExtensions: true,
    },
    include: ['**/*.ts'],
  }));
  const tsc = path.join(repoRoot, 'node_modules', '.bin', 'tsc');
  await execFileAsync(tsc, ['-p', generatedDir]).catch((error: { stdout?: string }) => {
    assert.fail(`tsc failed on the generated bindings:\n${error.stdout ?? String(error)}`);
  });
});

interface Client { conn: any; identityHex: string; token: string }

function connect(token?: string): Promise<Client> {
  return within(new Promise<Client>((resolve, reject) => {
    let builder = bindings.DbConnection.builder()
      .withUri(server.url)
      .withDatabaseName('chat')
      .onConnect((conn: any, identity: any, newToken: string) => resolve({ conn, identityHex: identity.toHexString(), token: newToken }))
      .onConnectError((_ctx: unknown, error: Error) => reject(error));
    if (token !== undefined) builder = builder.withToken(token);
    builder.build();
  }), 'connect');
}

function subscribe(conn: any, queries: string[]): Promise<void> {
  return within(new Promise<void>((resolve, reject) => {
    conn.subscriptionBuilder()
      .onApplied(() => resolve())
      .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription failed')))
      .subscribe(queries);
  }), 'subscribe');
}

test('two clients chat live: names, messages, presence, reducer errors, reconnect keeps the identity', async () => {
  const alice = await connect();
  const bob = await connect();
  assert.notEqual(alice.identityHex, bob.identityHex);
  await subscribe(alice.conn, ['SELECT * FROM user', 'SELECT * FROM message']);
  await subscribe(bob.conn, ['SELECT * FROM user', 'SELECT * FROM message']);

  // Both users exist and are online (client_connected ran for each connection).
  const onlineIdentities = [...bob.conn.db.user.iter()].filter((u: any) => u.online).map((u: any) => u.identity.toHexString());
  assert.ok(onlineIdentities.includes(alice.identityHex) && onlineIdentities.includes(bob.identityHex));

  const bobSeesName = new Promise<string>((resolve) => {
    bob.conn.db.user.onUpdate((_ctx: unknown, _old: any, row: any) => {
      if (row.identity.toHexString() === alice.identityHex && row.name !== undefined) resolve(row.name);
    });
  });
  await within(alice.conn.reducers.setName({ name: 'Alice' }), 'setName');
  assert.equal(await within(bobSeesName, 'Bob sees Alice rename herself'), 'Alice');

  const aliceSeesMessage = new Promise<{ text: string; sender: string }>((resolve) => {
    alice.conn.db.message.onInsert((_ctx: unknown, row: any) => resolve({ text: row.text, sender: row.sender.toHexString() }));
  });
  await within(bob.conn.reducers.sendMessage({ text: 'hello from bob' }), 'sendMessage');
  assert.deepEqual(await within(aliceSeesMessage, 'Alice sees Bob\'s message'), { text: 'hello from bob', sender: bob.identityHex });

  // A SenderError reaches only the caller, as a rejected reducer promise with the module's message.
  await assert.rejects(within(alice.conn.reducers.sendMessage({ text: '' }), 'failing sendMessage'), /Messages must not be empty/);

  // Presence: Bob leaves, Alice sees him go offline; his saved token brings back the same identity.
  const aliceSeesBobLeave = new Promise<void>((resolve) => {
    alice.conn.db.user.onUpdate((_ctx: unknown, _old: any, row: any) => {
      if (row.identity.toHexString() === bob.identityHex && !row.online) resolve();
    });
  });
  bob.conn.disconnect();
  await within(aliceSeesBobLeave, 'Alice sees Bob go offline');
  const bobAgain = await connect(bob.token);
  assert.equal(bobAgain.identityHex, bob.identityHex);
  bobAgain.conn.disconnect();
  alice.conn.disconnect();
});
