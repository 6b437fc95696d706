// SPACETIME_BACKGROUND_NICE puts the server's main thread ahead of its other threads for the CPU
// (host/worker/priority.ts): with it at 10, a real server in worker mode, after a publish and a call, has every thread
// but the main one — database workers, the program-hash thread, V8's platform threads, libuv's pool — and the esbuild
// service a worker started at nice 10, the main thread at the nice it was started with; unset (the default) or 0, every
// thread stays where it was; a malformed value stops the server at start naming the variable. Linux only (/proc;
// elsewhere nothing is changed).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { buildFixture, cleanupTempDirs, startTestServer, type TestServer } from '../harness.js';

const linux = process.platform === 'linux';
const servers: TestServer[] = [];

after(async () => {
  for (const s of servers) await s.stop();
  cleanupTempDirs();
});

/** Field 19 of /proc/<pid>/task/<tid>/stat (or /proc/<pid>/stat): the nice value. */
function niceOf(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function threadNices(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { out.set(Number(tid), niceOf(`/proc/${pid}/task/${tid}/stat`)); } catch { /* ended meanwhile */ }
  }
  return out;
}

/** Child processes of `pid` (any of its threads may have started them), with their nice values. */
function childNices(pid: number): Map<number, { nice: number; cmd: string }> {
  const out = new Map<number, { nice: number; cmd: string }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let children = '';
    try { children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8'); } catch { continue; }
    for (const child of children.split(' ').filter(Boolean).map(Number)) {
      try {
        out.set(child, { nice: niceOf(`/proc/${child}/stat`), cmd: readFileSync(`/proc/${child}/cmdline`, 'utf8').replaceAll('\0', ' ') });
      } catch { /* ended meanwhile */ }
    }
  }
  return out;
}

async function publishAndCall(server: TestServer): Promise<void> {
  const { token } = await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json() as { token: string };
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const put = await fetch(`${server.url}/v1/database/calm`, { method: 'PUT', headers, body: (await buildFixture('cpu-hog')).code });
  assert.equal(put.status, 200, await put.text());
  const hit = await fetch(`${server.url}/v1/database/calm/call/hit`, { method: 'POST', headers, body: '[]' });
  assert.equal(hit.status, 200, await hit.text());
}

test('SPACETIME_BACKGROUND_NICE=10: every thread but the main one, and the esbuild service, run at nice 10', { skip: !linux }, async () => {
  const server = await startTestServer({ env: { SPACETIME_DATABASE_THREADS: 'worker', SPACETIME_BACKGROUND_NICE: '10' } });
  servers.push(server);
  await publishAndCall(server);
  const pid = server.pid()!;
  const started = niceOf(`/proc/${process.pid}/stat`); // the server starts at the test's nice
  const nices = threadNices(pid);
  assert.equal(nices.get(pid), started, 'the main thread keeps the nice it was started with');
  const others = [...nices].filter(([tid]) => tid !== pid);
  assert.ok(others.length >= 6, `a database worker, the hash thread and V8's platform threads at least: ${others.length}`);
  for (const [tid, nice] of others) assert.equal(nice, Math.max(started, 10), `thread ${tid} runs at nice ${nice}`);
  const esbuild = [...childNices(pid).values()].filter((c) => c.cmd.includes('esbuild'));
  assert.ok(esbuild.length >= 1, 'the worker started an esbuild service to lower the program');
  for (const c of esbuild) assert.equal(c.nice, Math.max(started, 10), `${c.cmd} runs at nice ${c.nice}`);
});

for (const value of [undefined, '0']) {
  test(`SPACETIME_BACKGROUND_NICE${value === undefined ? ' unset' : `=${value}`} leaves every thread at the nice the server started with`, { skip: !linux }, async () => {
    const env: NodeJS.ProcessEnv = { SPACETIME_DATABASE_THREADS: 'worker' };
    if (value !== undefined) env.SPACETIME_BACKGROUND_NICE = value;
    const saved = process.env.SPACETIME_BACKGROUND_NICE;
    delete process.env.SPACETIME_BACKGROUND_NICE; // the server inherits the test's environment
    try {
      const server = await startTestServer({ env });
      servers.push(server);
      await publishAndCall(server);
      const started = niceOf(`/proc/${process.pid}/stat`);
      for (const [tid, nice] of threadNices(server.pid()!)) assert.equal(nice, started, `thread ${tid} runs at nice ${nice}`);
    } finally {
      if (saved !== undefined) process.env.SPACETIME_BACKGROUND_NICE = saved;
    }
  });
}

test('a malformed SPACETIME_BACKGROUND_NICE stops the server at start, naming the variable and the value', async () => {
  await assert.rejects(
    startTestServer({ env: { SPACETIME_DATABASE_THREADS: 'worker', SPACETIME_BACKGROUND_NICE: '25' } }),
    /SPACETIME_BACKGROUND_NICE is `25`: expected an integer from 0/,
  );
});
