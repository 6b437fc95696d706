// The test clock of src/testing (TestDatabase.advanceTime): time stands still until the test moves it; an interval
// schedule started by init runs once per interval crossed, each call stamped with its due time; a one-shot schedule
// runs once when its time is reached and its row is deleted; a cancelled schedule never runs. The module is
// test/devflow/fixtures/clock, built like `spacetime build` does.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '../../src/testing/index.js';

const modulePath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clock');
const start = new Date('2030-01-01T00:00:00Z');
const startMicros = BigInt(start.getTime()) * 1000n;

const open: TestDatabase[] = [];
after(async () => { for (const db of open) await db.close(); });

function stamps(db: TestDatabase, table: string): bigint[] {
  return (db.table(table).rows() as { at: { microsSinceUnixEpoch: bigint } }[])
    .map((r) => r.at.microsSinceUnixEpoch - startMicros).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

test('advanceTime runs an interval schedule once per interval, at its due times; nothing runs on its own', async () => {
  const db = await createTestDatabase({ modulePath, startTime: start });
  open.push(db);
  assert.equal(db.nowMicros(), startMicros);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(db.table('beat_log').count(), 0, 'wall-clock time does not move the test clock');

  await db.advanceTime(999);
  assert.equal(db.table('beat_log').count(), 0);
  await db.advanceTime(1);
  assert.deepEqual(stamps(db, 'beat_log'), [1_000_000n]);
  await db.advanceTime(3500);
  assert.deepEqual(stamps(db, 'beat_log'), [1_000_000n, 2_000_000n, 3_000_000n, 4_000_000n]);
  assert.equal(db.nowMicros(), startMicros + 4_500_000n);

  await db.callReducer('stopBeating');
  await db.advanceTime(10_000);
  assert.equal(db.table('beat_log').count(), 4, 'a deleted schedule row stops the interval');
});

test('a one-shot schedule runs once at its time and its row is deleted; a reducer call uses the test clock', async () => {
  const db = await createTestDatabase({ modulePath, startTime: start });
  open.push(db);
  await db.callReducer('stopBeating');
  await db.advanceTime(250);
  await db.callReducer('remindIn', { note: 'tea', inMs: 2000 });
  assert.equal(db.table('reminder').count(), 1);
  await db.advanceTime(1999);
  assert.equal(db.table('note_log').count(), 0);
  await db.advanceTime(5000);
  const [row] = db.table('note_log').rows() as { note: string }[];
  assert.equal(row.note, 'tea');
  assert.deepEqual(stamps(db, 'note_log'), [2_250_000n], 'ran at call time (250 ms) + 2000 ms');
  assert.equal(db.table('reminder').count(), 0, 'the one-shot row is deleted after it ran');
  await assert.rejects(db.advanceTime(-1), /finite number >= 0/);
});
