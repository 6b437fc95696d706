// Upstream smoketests schedule_reducer.rs (one-shot schedule seen in a table and its view, a repeating schedule,
// cancellation by deleting the row), rewritten over test/fixtures/modules/smoke-schedule and driven through the real
// CLI and one real server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { smoke, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
before(async () => {
  server = await startTestServer();
  st = smoke(server, tempConfigPath());
  await st.newIdentity();
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

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
