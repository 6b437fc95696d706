// Issue 12 item 5 (memory): a database worker that goes idle after a bulk load gives the load's garbage back
// (host/worker/idle-gc.ts), and does not collect while requests keep coming. A real server in worker mode (the
// default); the keynote fixture seeded through its reducer over HTTP; the server process's anonymous RSS read from
// /proc. Before the fix the worker kept the seeding transaction's garbage (~200 B per row at 1M rows) while idle.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

/**
 * Short, so the test waits little; the server's default is limits.ts workerIdleGcAfterMsDefault. Long against the
 * busy phase's gaps between requests: at 400 ms a loaded machine (a full `npm test` beside other work) stretched a
 * request and its 100 ms pause past it once, and the worker collected while 'busy' (RSS 230 -> 167 MiB).
 */
const idleGcAfterMs = 1_000;
const seedRows = 400_000;
/** A request this often keeps the worker busy: well under the idle time. */
const busyEveryMs = 100;
/** Twice the idle time, no longer: the longer the phase, the likelier V8's own collections as it allocates. */
const busyForMs = 2 * idleGcAfterMs;
const collectedWithinMs = 5_000;

let server: TestServer;
const configPath = tempConfigPath();

before(async () => {
  process.env.SPACETIME_WORKER_IDLE_GC_AFTER_MS = String(idleGcAfterMs);
  server = await startTestServer();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/keynote', '-y', 'idle'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  delete process.env.SPACETIME_WORKER_IDLE_GC_AFTER_MS;
  await server?.stop();
  cleanupTempDirs();
});

async function call(reducer: string, args: object): Promise<void> {
  const res = await fetch(`${server.url}/v1/database/idle/call/${reducer}`, {
    method: 'POST', body: JSON.stringify(args), headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(20_000),
  });
  assert.equal(res.status, 200, await res.text());
}

/** The server process's anonymous resident memory (heaps and malloc; not mapped files), in MiB. */
function anonMiB(): number {
  const status = readFileSync(`/proc/${server.pid()}/status`, 'utf8');
  return Number(/RssAnon:\s+(\d+)/.exec(status)![1]) / 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a database worker idle after a bulk load collects its garbage, and not while it is busy', async (t) => {
  await sleep(3 * idleGcAfterMs); // the publish's own garbage, if any, goes first
  const baseline = anonMiB();
  await call('seed', { n: seedRows, initialBalance: 1000 });
  const seeded = anonMiB();
  const grown = seeded - baseline;
  assert.ok(grown > 40, `the seed left little to collect (${grown.toFixed(1)} MiB): the test measures nothing`);

  const busyUntil = performance.now() + busyForMs;
  for (let i = 0; performance.now() < busyUntil; i++) {
    await call('transfer', { from: i % seedRows, to: (i + 1) % seedRows, amount: 1 });
    await sleep(busyEveryMs);
  }
  const busy = anonMiB();
  assert.ok(busy > baseline + 0.6 * grown,
    `collected while busy: ${baseline.toFixed(1)} MiB before the seed, ${seeded.toFixed(1)} after, ${busy.toFixed(1)} while busy`);

  const deadline = performance.now() + collectedWithinMs;
  let idle = anonMiB();
  while (idle > baseline + 0.5 * grown && performance.now() < deadline) {
    await sleep(100);
    idle = anonMiB();
  }
  t.diagnostic(`anonymous RSS: ${baseline.toFixed(1)} MiB before the seed, ${seeded.toFixed(1)} after, ${busy.toFixed(1)} busy, ${idle.toFixed(1)} idle`);
  assert.ok(idle <= baseline + 0.5 * grown,
    `not collected when idle: ${baseline.toFixed(1)} MiB before the seed, ${seeded.toFixed(1)} after, ${idle.toFixed(1)} idle`);
});
