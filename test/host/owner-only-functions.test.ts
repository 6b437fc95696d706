// Scheduled reducers and procedures are there for the database owner only, as upstream makes them private: a client
// that is not the owner is told they do not exist ("no such reducer" / "no such procedure"), the owner may call them
// like any other. Lifecycle reducers stay refused for everyone with upstream's text. A real Database, official-library
// fixtures (test/fixtures/modules/smoke-schedule, smoke-schedule-procedure).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Database } from '../../src/host/database.js';
import { NoSuchReducerError } from '../../src/host/errors.js';
import { fixtureBundle } from './bundle.js';

const owner = { identity: 0xc2001111n, connectionId: 1n, jwtPayload: undefined };
const other = { identity: 0xc2002222n, connectionId: 2n, jwtPayload: undefined };
const row = { scheduled_id: 0, sched_at: { Time: { __timestamp_micros_since_unix_epoch__: 0 } }, prev: { __timestamp_micros_since_unix_epoch__: 0 } };
const dbs: Database[] = [];
after(async () => { for (const db of dbs) await db.close(); });

test('a scheduled reducer: no such reducer for another client, callable by the owner', async () => {
  const db = await Database.create({ identity: 0xc2000001n, ownerIdentity: owner.identity }, await fixtureBundle('smoke-schedule'));
  dbs.push(db);
  await assert.rejects(db.callReducerJson('my_reducer', [row], other), (e: unknown) => e instanceof NoSuchReducerError);
  assert.equal((await db.callReducerJson('my_reducer', [row], owner)).status, 'committed');
  assert.equal((await db.callReducerJson('schedule_reducer', [], other)).status, 'committed', 'a public reducer stays public');
});

test('a scheduled procedure: no such procedure for another client, callable by the owner', async () => {
  const db = await Database.create({ identity: 0xc2000002n, ownerIdentity: owner.identity }, await fixtureBundle('smoke-schedule-procedure'));
  dbs.push(db);
  const refused = await db.callProcedureJson('my_procedure', [row], other);
  assert.deepEqual(refused, { status: 'internal', message: 'no such procedure: my_procedure' });
  assert.equal((await db.callProcedureJson('my_procedure', [row], owner)).status, 'returned');
});
