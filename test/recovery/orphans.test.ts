// Recovery: a crash during create can leave a database directory that no control record names (server/databases.ts
// removeOrphans). At start, once control data is loaded, such directories are removed and logged; a directory whose
// name is not an identity, and every database control data names, are left alone.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { identityFromClaims, identityToHex } from '../../src/auth/identity.js';
import { cleanupTempDirs } from '../harness.js';
import { sqlRows, startBank, type Bank } from '../faults/helpers.js';

let bank: Bank | undefined;
after(async () => {
  await bank?.server.stop();
  cleanupTempDirs();
});

test('an orphan database directory is removed at start; named databases and other directories stay', async () => {
  bank = await startBank();
  const b = bank;
  const root = path.join(b.server.dataDir, 'databases');
  const orphanHex = identityToHex(identityFromClaims('localhost', 'orphan-of-a-crashed-create'));
  const orphan = path.join(root, orphanHex);
  mkdirSync(path.join(orphan, 'clog'), { recursive: true });
  writeFileSync(path.join(orphan, 'clog', '00000000000000000000.stdb.log'), 'half a create');
  const other = path.join(root, 'operator-notes');
  mkdirSync(other);
  await b.server.restart();
  assert.ok(!existsSync(orphan), 'the orphan is gone');
  assert.ok(existsSync(other), 'a directory that is not named by an identity stays');
  assert.match(b.server.output(), new RegExp(`removed orphan database directory .*${orphanHex}`));
  assert.equal((await sqlRows(b, 'SELECT id FROM accounts')).length, 10, 'the published database still serves');
});
