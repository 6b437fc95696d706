// The module unit-test API (src/testing): the chat template's module loaded in-process, reducers called as different
// identities, lifecycle hooks, rows decoded to objects with the official Identity class, SenderError surfaced as
// ReducerError, SQL, logs, and a prebuilt bundle path.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Identity } from 'spacetimedb';
import { buildFixture, repoRoot } from '../harness.js';
import { createTestDatabase, ReducerError, testOwnerIdentity } from '../../src/testing/index.js';

const chatModule = path.join(repoRoot, 'templates', 'chat-react-ts', 'spacetimedb');
const alice = 0xc200aaaan;
const bob = new Identity(0xc200bbbbn);

const open: { close(): Promise<void> }[] = [];
after(async () => { for (const db of open) await db.close(); });

test('chat module: connect, set a name and send messages as different identities', async () => {
  const db = await createTestDatabase({ modulePath: chatModule });
  open.push(db);
  await db.connect({ sender: alice });
  await db.connect({ sender: bob });
  await db.callReducer('setName', { name: 'Alice' }, { sender: alice });
  await db.callReducer('sendMessage', { text: 'hi' }, { sender: bob });

  const users = db.table('user').rows() as { identity: Identity; name: string | undefined; online: boolean }[];
  assert.equal(users.length, 2);
  const a = users.find((u) => u.identity.isEqual(new Identity(alice)))!;
  assert.equal(a.name, 'Alice');
  assert.equal(a.online, true);
  assert.equal(users.find((u) => u.identity.isEqual(bob))!.name, undefined);

  const [message] = db.table('message').rows() as { sender: Identity; text: string; sent: { microsSinceUnixEpoch: bigint } }[];
  assert.equal(message.text, 'hi');
  assert.ok(message.sender.isEqual(bob));
  assert.equal(typeof message.sent.microsSinceUnixEpoch, 'bigint');

  await db.disconnect({ sender: alice });
  const [onlineCount] = await db.sql('SELECT * FROM user WHERE online = true');
  assert.equal(onlineCount.rows.length, 1);
});

test('a SenderError becomes ReducerError(kind failed) and rolls back', async () => {
  const db = await createTestDatabase({ modulePath: chatModule });
  open.push(db);
  await assert.rejects(db.callReducer('sendMessage', { text: '   ' }, { sender: alice }), (err: unknown) => {
    assert.ok(err instanceof ReducerError);
    assert.equal(err.kind, 'failed');
    assert.match(err.message, /Messages must not be empty/);
    return true;
  });
  assert.equal(db.table('message').count(), 0);
  await assert.rejects(db.callReducer('setName', { name: 'x' }, { sender: alice }), /Cannot set name for unknown user/);
  await assert.rejects(db.callReducer('noSuchReducer'), /noSuchReducer/);
  assert.throws(() => db.table('nope'), /no such table: nope/);
});

test('a prebuilt bundle loads too; the owner is the default sender; logs are readable', async () => {
  const { bundlePath } = await buildFixture('basic');
  const db = await createTestDatabase({ bundlePath });
  open.push(db);
  assert.equal(db.owner, testOwnerIdentity);
  await db.callReducer('add', ['Zed']);
  await db.callReducer('sayHello');
  assert.deepEqual(db.table('person').rows(), [{ name: 'Zed' }]);
  assert.deepEqual(db.logs().slice(-2).map((l) => l.message), ['Hello, Zed!', 'Hello, World!']);
  await db.close();
  await assert.rejects(db.database.sql('SELECT * FROM person', { identity: 1n, connectionId: 0n, jwtPayload: undefined }));
});
