// `spacetime sql` / `spacetime call` over HTTP against a real server process (issue 6 part B): RLS hides other
// identities' rows from non-owners, views are queryable by name, the HTTP caller's JWT payload reaches the reducer,
// and a first publish with invalid RLS SQL fails and leaves no database.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
let s: string[];
const owner = tempConfigPath();
const user = tempConfigPath();

before(async () => {
  server = await startTestServer();
  s = ['-s', server.url];
});
after(async () => { await server?.stop(); });

async function ok(args: string[], configPath: string): Promise<string> {
  const r = await runCli(args, { configPath });
  assert.equal(r.code, 0, `spacetime ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('RLS, views and the JWT payload through the CLI; a publish with invalid RLS SQL fails', async () => {
  // CLI processes are slow to start: independent steps run side by side (after each config's first, logging-in run).
  await ok(['publish', ...s, '-p', 'test/fixtures/modules/view-b', '--yes', 'viewb'], owner);
  const [badPublish] = await Promise.all([
    runCli(['publish', ...s, '-p', 'test/fixtures/modules/view-bad-rls', '--yes', 'badrls'], { configPath: owner }),
    ok(['call', ...s, 'viewb', 'add_secret', 'owner-secret'], owner),
    (async () => {
      await ok(['call', ...s, 'viewb', 'add_secret', 'user-secret'], user);
      await ok(['call', ...s, 'viewb', 'add_item', 'user-item'], user);
      await ok(['call', ...s, 'viewb', 'record_jwt'], user);
    })(),
  ]);
  assert.notEqual(badPublish.code, 0);
  assert.match(badPublish.stdout + badPublish.stderr, /row-level security filter/);
  assert.match(badPublish.stdout + badPublish.stderr, /no_such_column/);

  const [mine, all, gone] = await Promise.all([
    ok(['sql', ...s, 'viewb', 'SELECT text FROM secret; SELECT label FROM my_items'], user),
    ok(['sql', ...s, 'viewb', 'SELECT text FROM secret; SELECT label FROM my_items; SELECT payload FROM jwt_seen'], owner),
    runCli(['sql', ...s, 'badrls', 'SELECT * FROM note'], { configPath: owner }),
  ]);
  assert.match(mine, /user-secret/);
  assert.doesNotMatch(mine, /owner-secret/, 'RLS hides the owner\'s row from a non-owner');
  assert.match(mine, /user-item/, 'the sender view evaluates for the caller');
  assert.match(all, /owner-secret/);
  assert.match(all, /user-secret/, 'the owner bypasses RLS');
  assert.doesNotMatch(all, /user-item/, 'the owner\'s my_items holds only the owner\'s items');
  assert.match(all, /\\?"sub\\?"/, 'the HTTP caller\'s JWT claims reached ctx.senderAuth.jwt');
  assert.notEqual(gone.code, 0, 'the failed first publish left no database');
});
