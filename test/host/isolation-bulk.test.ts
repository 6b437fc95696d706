// Issue 12 item 2: a publish or a migration of one database must not hold the server's main thread (the front door
// and every other database's calls) in worker mode. Asserted on the main thread's CPU time (/proc/<pid>/task/<pid>/
// schedstat), which a loaded machine does not inflate the way it inflates latencies: the main thread's share of a
// publish must not grow with the program's size or the database's rows. Latencies under load are bench:isolation's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture, cleanupTempDirs, onServerMainThread, startTestServer, type TestServer } from '../harness.js';
import { programBytesMax } from '../../src/limits.js';

/**
 * Padding that makes a program this much larger (a comment: nothing to run): as large as programBytesMax lets a program
 * be, less room for the fixture itself (~1 MB).
 */
const paddingBytes = programBytesMax - 2 * 1024 * 1024;
/**
 * The main thread's CPU allowed for one publish request of a program `paddingBytes` larger than the fixture. While it
 * hashed programs itself (BLAKE3 in JS, ~40 ms per MB, 1–2 hashes per request) these requests took 740–820 (create),
 * 950–1,000 (pre_publish) and 1,300–1,600 ms (migration); what is left — reading and decoding the body, copying the
 * text to the database's worker and to the hash thread, its garbage — 110–290 ms (load average ~7).
 */
const mainThreadCpuPerPublishMsMax = 500;
const migratedRows = 200_000;

let server: TestServer;
let auth: Record<string, string>;
let bulk: string;
let tagged: string;

const onMainThread = <T>(fn: () => Promise<T>) => onServerMainThread(server, fn);

async function ok(res: Response, what: string): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, 200, `${what}: ${text}\n${server.output()}`);
  return text;
}

const put = (name: string, program: string, query = '') =>
  fetch(`${server.url}/v1/database/${name}${query}`, { method: 'PUT', headers: auth, body: program }).then((r) => ok(r, `publish ${name}${query}`));

before(async () => {
  const padding = `\n// ${'x'.repeat(paddingBytes)}\n`;
  bulk = (await buildFixture('bulk-rows')).code + padding;
  tagged = (await buildFixture('bulk-rows-tagged')).code + padding;
  process.env.SPACETIME_DATABASE_THREADS = 'worker';
  server = await startTestServer();
  const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  auth = { authorization: `Bearer ${token}` };
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('worker mode: publishing and migrating a large program costs the main thread little, whatever its size and rows', async () => {
  const created = await onMainThread(() => put('bulk', bulk));
  assert.ok(created.cpuMs < mainThreadCpuPerPublishMsMax,
    `creating a database from a ${paddingBytes >> 20} MiB larger program took ${created.cpuMs.toFixed(0)} ms of the main thread`);

  const load = await fetch(`${server.url}/v1/database/bulk/call/load`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify([0, migratedRows]),
  });
  await ok(load, 'load');

  const planned = await onMainThread(() => fetch(`${server.url}/v1/database/bulk/pre_publish`, { method: 'POST', headers: auth, body: tagged })
    .then((r) => ok(r, 'pre_publish')));
  const plan = JSON.parse(planned.value) as { AutoMigrate?: { token: string } };
  assert.ok(plan.AutoMigrate !== undefined, planned.value);
  assert.ok(planned.cpuMs < mainThreadCpuPerPublishMsMax, `pre_publish took ${planned.cpuMs.toFixed(0)} ms of the main thread`);

  const migrated = await onMainThread(() => put('bulk', tagged, `?policy=BreakClients&token=${plan.AutoMigrate!.token}`));
  assert.ok(migrated.cpuMs < mainThreadCpuPerPublishMsMax,
    `migrating ${migratedRows} rows to a ${paddingBytes >> 20} MiB larger program took ${migrated.cpuMs.toFixed(0)} ms of the main thread`);

  const sql = await fetch(`${server.url}/v1/database/bulk/sql`, { method: 'POST', headers: auth, body: 'SELECT COUNT(*) AS n FROM row WHERE tag = 7' });
  assert.match(await ok(sql, 'sql'), new RegExp(`\\[${migratedRows}\\]`), 'every row was migrated, with the new column\'s default');
  process.stderr.write(`main thread CPU ms: create ${created.cpuMs.toFixed(0)}, pre_publish ${planned.cpuMs.toFixed(0)}, ` +
    `migration ${migrated.cpuMs.toFixed(0)}\n`);
});
