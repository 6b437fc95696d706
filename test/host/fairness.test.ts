// Issue 11 item 6: schedules that reschedule themselves at once share the server's thread fairly. While one database
// runs such a schedule (fan-out 1: one new row per firing; fan-out 2: two), /v1/ping answers in < 100 ms, another
// database and client calls to the same database are served, the schedule itself keeps running, and fan-out 2 stays
// bounded (limits.ts callQueueTurnBudgetMs, scheduledCallsQueuedMax, scheduleRowsPerDatabaseMax). Before the fix,
// fan-out 2 left /v1/ping unanswered within seconds and the server's RSS grew past 1 GiB.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

const scheduleRowsMax = 2_000;
const watchMs = 3_000;
let server: TestServer;
const configPath = tempConfigPath();

before(async () => {
  process.env.SPACETIME_SCHEDULE_ROWS_MAX = String(scheduleRowsMax);
  server = await startTestServer();
  for (const name of ['ticks1', 'ticks2', 'calm']) {
    const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/cpu-hog', '-y', name], { configPath });
    assert.equal(pub.code, 0, pub.stderr);
  }
});

after(async () => {
  delete process.env.SPACETIME_SCHEDULE_ROWS_MAX;
  await server?.stop();
  cleanupTempDirs();
});

async function call(db: string, reducer: string, args: unknown[] = []): Promise<number> {
  const res = await fetch(`${server.url}/v1/database/${db}/call/${reducer}`, {
    method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000),
  });
  await res.text();
  return res.status;
}

async function sqlRows(db: string, query: string): Promise<unknown[][]> {
  const res = await fetch(`${server.url}/v1/database/${db}/sql`, { method: 'POST', body: query, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { rows: unknown[][] }[])[0].rows;
}

async function counter(db: string, id: number): Promise<number> {
  const rows = await sqlRows(db, `SELECT n FROM counter WHERE id = ${id}`);
  return rows.length === 0 ? 0 : Number(rows[0][0]);
}

function rssMiB(): number {
  const status = readFileSync(`/proc/${server.pid()}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** Latencies (ms) of `fn` called one after another for `forMs`. */
async function latencies(fn: () => Promise<unknown>, forMs: number): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + forMs;
  while (performance.now() < end) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return out;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

for (const fanout of [1, 2]) {
  test(`a schedule rescheduling itself at once (fan-out ${fanout}) leaves the server answering everyone`, async (t) => {
    const db = `ticks${fanout}`;
    const probes = (forMs: number) => Promise.all([
      latencies(async () => assert.equal((await fetch(`${server.url}/v1/ping`, { signal: AbortSignal.timeout(10_000) })).status, 200), forMs),
      latencies(async () => assert.equal(await call('calm', 'hit'), 200), forMs),
      latencies(async () => assert.equal(await call(db, 'hit'), 200), forMs),
    ]);
    // A reducer call's reply waits for its commit's fsync: compare calls against their own latency on an idle server.
    const [, calmIdle, sameIdle] = await probes(1_000);
    const rssBefore = rssMiB();
    assert.equal(await call(db, 'start_ticks', [fanout]), 200);
    const [ping, calm, same] = await probes(watchMs);
    const fired = await counter(db, 2);
    const rows = (await sqlRows(db, 'SELECT scheduled_id FROM tick')).length;
    const rss = rssMiB();
    t.diagnostic(`fan-out ${fanout}: ${fired} firings in ~${watchMs} ms; ping p90 ${percentile(ping, 0.9).toFixed(1)} ms ` +
      `max ${Math.max(...ping).toFixed(1)} ms (${ping.length}); other database p90 ${percentile(calm, 0.9).toFixed(1)} ms; ` +
      `same database p90 ${percentile(same, 0.9).toFixed(1)} ms (idle: ${percentile(calmIdle, 0.9).toFixed(1)} / ` +
      `${percentile(sameIdle, 0.9).toFixed(1)} ms); schedule rows ${rows}; RSS ${rssBefore.toFixed(0)} -> ${rss.toFixed(0)} MiB`);
    assert.ok(percentile(ping, 0.9) < 100, `/v1/ping answers in < 100 ms (p90 ${percentile(ping, 0.9).toFixed(1)} ms)`);
    // Calls also wait for fsyncs, which the schedule's own commits make slower (one disk), and in worker mode for the
    // worker's share of a loaded machine (p90 254-488 ms at load 13-20 against 18 ms quiet): starving is what must not
    // happen, so the bound is loose (latency is bench:isolation's); before the fix these calls timed out (10 s).
    const starvedMs = 1_000;
    assert.ok(percentile(calm, 0.9) < percentile(calmIdle, 0.9) + starvedMs, 'another database answers its calls');
    assert.ok(percentile(same, 0.9) < percentile(sameIdle, 0.9) + starvedMs, 'client calls to the busy database interleave with its schedule');
    assert.ok(same.length >= 10 && calm.length >= 10 && ping.length >= 10, 'every probe was answered, many times');
    assert.ok(fired > 100, `the schedule itself keeps running (${fired} firings)`);
    assert.ok(rows <= scheduleRowsMax, `schedule rows stay within SPACETIME_SCHEDULE_ROWS_MAX (${rows})`);
    assert.ok(rss - rssBefore < 200, `memory stays bounded (RSS grew ${(rss - rssBefore).toFixed(0)} MiB)`);
    if (fanout === 2) {
      const logs = await runCli(['logs', '-s', server.url, db, '-n', '200'], { configPath });
      assert.match(logs.stdout, /scheduleRowsPerDatabaseMax/, 'the module log says which limit bit');
    }
    assert.equal(await call(db, 'stop_ticks'), 200);
  });
}
