// Upstream smoketests schedule_reducer.rs (one-shot schedule seen in a table and its view, a repeating schedule,
// sender views refreshed by scheduled reducers that succeed or fail, cancellation, the same for scheduled procedures),
// rewritten over test/fixtures/modules/smoke-schedule* and driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempConfigPath, type TestServer } from '../harness.js';
import { smoke, smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

const epoch = { __timestamp_micros_since_unix_epoch__: 0 };
const timeRow = (id: number) => ({ prev: epoch, scheduled_id: id, sched_at: { Time: epoch } });
const intervalRow = (id: number, micros: number) => ({ prev: epoch, scheduled_id: id, sched_at: { Interval: { __time_duration_micros__: micros } } });

test('a one-shot schedule row is inserted and removed in the table and its view in the same transactions', async () => {
  const id = await st.publish('smoke-schedule');
  const sub = await st.subscribeBackground(id, ['SELECT * FROM scheduled_table', 'SELECT * FROM scheduled_view'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_reducer')).code, 0);
  assert.deepEqual(await sub.collect(), [
    { scheduled_table: { deletes: [], inserts: [timeRow(2)] }, scheduled_view: { deletes: [], inserts: [timeRow(2)] } },
    { scheduled_table: { deletes: [timeRow(2)], inserts: [] }, scheduled_view: { deletes: [timeRow(2)], inserts: [] } },
  ]);
});

test('a repeating schedule keeps running and its row stays', async () => {
  const id = await st.publish('smoke-schedule');
  const sub = await st.subscribeBackground(id, ['SELECT * FROM scheduled_table'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_repeated_reducer')).code, 0);
  await new Promise((r) => setTimeout(r, 2000));
  const invoked = (await st.logMessages(id)).filter((m) => m.includes('Invoked:')).length;
  assert.ok(invoked > 2, `ran ${invoked} times`);
  assert.equal((await st.call(id, 'schedule_reducer')).code, 0);
  assert.deepEqual(await sub.collect(), [
    { scheduled_table: { deletes: [], inserts: [intervalRow(1, 100_000)] } },
    { scheduled_table: { deletes: [], inserts: [timeRow(2)] } },
  ]);
});

test('subscribe -n 2 prints exactly two updates when more arrive back to back', async () => {
  // Without the stop in cli/subscribe.ts this printed 17 lines: every update already received kept printing.
  const id = await st.publish('smoke-schedule');
  const sub = await st.subscribeBackground(id, ['SELECT * FROM scheduled_table'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_burst')).code, 0);
  assert.equal((await sub.collect()).length, 2);
});

const insertThenDelete = (tableName: string, viewName: string, row: unknown) => [
  { [tableName]: { deletes: [], inserts: [row] }, [viewName]: { deletes: [], inserts: [row] } },
  { [tableName]: { deletes: [row], inserts: [] }, [viewName]: { deletes: [row], inserts: [] } },
];

test('sender views refresh for scheduled reducers, failed ones included; cancelled schedules never run', async () => {
  const id = await st.publish('smoke-schedule-views');
  assert.equal((await st.call(id, 'seed_player_entity', '2')).code, 0);
  const ok = await st.subscribeBackground(id, ['SELECT * FROM scheduled_table', 'SELECT * FROM scheduled_sender_view'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_reducer')).code, 0);
  assert.deepEqual(await ok.collect(), insertThenDelete('scheduled_table', 'scheduled_sender_view', timeRow(2)));
  assert.equal((await st.call(id, 'seed_player_entity', '3')).code, 0);
  const failing = await st.subscribeBackground(id, ['SELECT * FROM failing_scheduled_table', 'SELECT * FROM failing_scheduled_sender_view'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_failing_reducer')).code, 0);
  assert.deepEqual(await failing.collect(), insertThenDelete('failing_scheduled_table', 'failing_scheduled_sender_view', timeRow(3)));
  const logs = await st.logMessages(id);
  assert.ok(logs.some((l) => l.includes('scheduled reducer failed')), logs.join('\n'));
  // upstream test_cancel_reducer: init scheduled runs at 100 ms and 1 s and cancelled both; 2 s on, neither ran.
  await new Promise((r) => setTimeout(r, 1200));
  assert.ok(!(await st.logMessages(id)).some((l) => l.includes('the reducer ran')));
});

test('scheduled procedures: one-shot row in table and view, then repeating', async () => {
  const id = await st.publish('smoke-schedule-procedure');
  const once = await st.subscribeBackground(id, ['SELECT * FROM scheduled_table', 'SELECT * FROM scheduled_view'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_procedure')).code, 0);
  assert.deepEqual(await once.collect(), insertThenDelete('scheduled_table', 'scheduled_view', timeRow(2)));
  const repeated = await st.subscribeBackground(id, ['SELECT * FROM scheduled_table'], { n: 2 });
  assert.equal((await st.call(id, 'schedule_repeated_procedure')).code, 0);
  await new Promise((r) => setTimeout(r, 2000));
  const invoked = (await st.logMessages(id)).filter((m) => m.includes('Invoked:')).length;
  assert.ok(invoked > 2, `ran ${invoked} times`);
  assert.equal((await st.call(id, 'schedule_procedure')).code, 0);
  const updates = await repeated.collect();
  assert.deepEqual(updates, [
    { scheduled_table: { deletes: [], inserts: [intervalRow(1, 100_000)] } },
    { scheduled_table: { deletes: [], inserts: [timeRow(2)] } },
  ]);
});

test('a scheduled reducer is private: the owner may call it, another identity is told it does not exist', async () => {
  const id = await st.publish('smoke-schedule');
  const row = '{"scheduled_id":0,"sched_at":{"Time":{"__timestamp_micros_since_unix_epoch__":0}},"prev":{"__timestamp_micros_since_unix_epoch__":0}}';
  assert.equal((await st.call(id, 'my_reducer', row)).code, 0, 'the owner calls it');
  const other = smoke(st.server, tempConfigPath());
  await other.newIdentity();
  const refused = await other.call(id, 'my_reducer', row);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /no such reducer/i, refused.stderr);
  assert.equal((await other.call(id, 'schedule_reducer')).code, 0, 'a public reducer stays callable');
});
