// Engine v2 step 8 (issue 12): database worker threads are a bounded pool (limits.ts workerThreadsMax,
// SPACETIME_WORKER_THREADS_MAX). A real server in worker mode with the bound set to 2: five databases run on two threads
// (not five, plus a spare), a new database goes to the thread serving the fewest, two databases on one thread share no
// rows, clients, callers or subscriptions, a runaway reducer holds the databases of its own thread only, for its limit,
// a restart reopens them on two threads, and a failed publish gives its place back. What the server says of its
// threads is GET /v1/metrics' spacetime_database_worker_thread_databases; /proc counts the process's threads.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildFixture, cleanupTempDirs, startTestServer, type TestServer } from '../harness.js';
import { RawClient, stringArgs } from '../ws/helpers.js';
import type { ServerMessage } from '../../src/subscription/messages.js';

const threadsMax = 2;
const limitMs = 2_000;
let server: TestServer;
let token: string;
const bundles = new Map<string, string>();

before(async () => {
  server = await startTestServer({
    env: { SPACETIME_DATABASE_THREADS: 'worker', SPACETIME_WORKER_THREADS_MAX: String(threadsMax), SPACETIME_REDUCER_TIMEOUT_MS: String(limitMs) },
  });
  for (const fixture of ['chat', 'cpu-hog', 'bad-init']) bundles.set(fixture, (await buildFixture(fixture)).code);
  ({ token } = await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json() as { token: string });
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

function request(method: string, path: string, body?: string): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method, body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, signal: AbortSignal.timeout(20_000),
  });
}

async function publish(name: string, fixture: string): Promise<void> {
  const res = await request('PUT', `/v1/database/${name}`, bundles.get(fixture));
  assert.equal(res.status, 200, await res.text());
}

/** Databases per database worker thread, oldest thread first (thread ids grow), as GET /v1/metrics reports them. */
async function threadLoads(): Promise<number[]> {
  const text = await (await request('GET', '/v1/metrics')).text();
  const loads = [...text.matchAll(/^spacetime_database_worker_thread_databases\{thread="(\d+)"\} (\d+)$/gm)]
    .map((m) => [Number(m[1]), Number(m[2])]).sort((a, b) => a[0] - b[0]).map(([, n]) => n);
  const total = /^spacetime_database_worker_threads (\d+)$/m.exec(text);
  assert.equal(Number(total?.[1]), loads.length, 'the thread count and the per-thread series agree');
  return loads;
}

/** Threads of the server process, from /proc (each database worker is one; without the bound each database adds one). */
function processThreads(): number {
  return readdirSync(`/proc/${server.pid()}/task`).length;
}

/** The rows of a one-statement SQL query as JSON arrays. */
async function sql(db: string, query: string): Promise<unknown[][]> {
  const res = await request('POST', `/v1/database/${db}/sql`, query);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { rows: unknown[][] }[])[0].rows;
}

async function nextOf<T extends ServerMessage['tag']>(c: RawClient, tag: T): Promise<Extract<ServerMessage, { tag: T }>> {
  const m = await c.next(20_000);
  assert.equal(m.tag, tag, `expected ${tag}, got ${m.tag}`);
  return m as Extract<ServerMessage, { tag: T }>;
}

async function call(db: string, reducer: string, args: unknown[] = []): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const res = await request('POST', `/v1/database/${db}/call/${reducer}`, JSON.stringify(args));
  await res.text();
  return { status: res.status, ms: performance.now() - started };
}

// Placement with two threads: a0 → thread 1; b1 → thread 2 (the spare the first publish started); then the thread
// serving the fewest, the oldest of equals: a2 → 1, b3 → 2, b4 → 1.
test('five databases run on two threads, each new one on the thread serving the fewest', async () => {
  await publish('a0', 'chat');
  await publish('b1', 'cpu-hog');
  const threadsAtTwo = processThreads();
  await publish('a2', 'chat');
  await publish('b3', 'cpu-hog');
  await publish('b4', 'cpu-hog');
  assert.deepEqual(await threadLoads(), [3, 2]);
  assert.equal(processThreads(), threadsAtTwo, 'the server process started no thread for databases 3 to 5');
});

test('two databases on one thread share no rows, clients, callers or subscriptions', async () => {
  const url = (db: string) => `${server.url.replace('http', 'ws')}/v1/database/${db}/subscribe?compression=None`;
  const a = await RawClient.open(url('a0'));
  const b = await RawClient.open(url('a2'));
  try {
    const identityA = (await nextOf(a, 'InitialConnection')).identity;
    const identityB = (await nextOf(b, 'InitialConnection')).identity;
    for (const c of [a, b]) {
      c.send({ tag: 'Subscribe', requestId: 0, querySetId: 1, queryStrings: ['SELECT * FROM message'] });
      await nextOf(c, 'SubscribeApplied');
    }
    // Each connection's first call defines its caller and reducer as number 0 of its database's stream: a thread that
    // kept one table for both would run B's calls as A (or as A's reducer), and A's as B.
    for (let i = 0; i < 3; i++) {
      b.send({ tag: 'CallReducer', requestId: 2 * i + 1, reducer: 'setName', args: stringArgs(`bee${i}`) });
      a.send({ tag: 'CallReducer', requestId: i + 1, reducer: 'sendMessage', args: stringArgs(`from a ${i}`) });
      b.send({ tag: 'CallReducer', requestId: 2 * i + 2, reducer: 'sendMessage', args: stringArgs(`from b ${i}`) });
      assert.equal((await nextOf(a, 'ReducerResult')).outcome.tag, 'Ok');
      for (let j = 0; j < 2; j++) assert.equal((await nextOf(b, 'ReducerResult')).outcome.tag, 'Ok');
    }
    assert.ok(await a.nothingFor(200), "a0's subscriber got nothing of a2's commits");
    const hex = (identity: bigint) => `0x${identity.toString(16).padStart(64, '0')}`;
    assert.deepEqual({
      a0: await sql('a0', `SELECT text FROM message WHERE sender = ${hex(identityA)}`),
      a0All: (await sql('a0', 'SELECT * FROM message')).length,
      a0Users: await sql('a0', `SELECT online FROM user WHERE identity = ${hex(identityA)}`),
      a0UsersOfA2: await sql('a0', `SELECT online FROM user WHERE identity = ${hex(identityB)}`),
      a2: await sql('a2', `SELECT text FROM message WHERE sender = ${hex(identityB)}`),
      a2All: (await sql('a2', 'SELECT * FROM message')).length,
      a2Users: await sql('a2', `SELECT online FROM user WHERE identity = ${hex(identityB)}`),
      a2UsersOfA0: await sql('a2', `SELECT online FROM user WHERE identity = ${hex(identityA)}`),
    }, {
      a0: [['from a 0'], ['from a 1'], ['from a 2']], a0All: 3, a0Users: [[true]], a0UsersOfA2: [],
      a2: [['from b 0'], ['from b 1'], ['from b 2']], a2All: 3, a2Users: [[true]], a2UsersOfA0: [],
    });
  } finally {
    a.ws.close();
    b.ws.close();
  }
});

test("a deleted database's place goes to the next; a runaway holds only its own thread's databases, for its limit", async () => {
  const deleted = await request('DELETE', '/v1/database/b3');
  assert.equal(deleted.status, 200, await deleted.text());
  assert.deepEqual(await threadLoads(), [3, 1]);
  await publish('b5', 'cpu-hog');
  assert.deepEqual(await threadLoads(), [3, 2], 'b5 went to the thread serving the fewest (b1 is its only other)');

  const spin = call('b5', 'spin');
  await new Promise((resolve) => setTimeout(resolve, 150));
  const [sameThread, otherThread] = await Promise.all([call('b1', 'hit'), call('b4', 'hit')]);
  assert.equal((await spin).status, 530, 'the runaway is stopped at its limit');
  assert.equal(sameThread.status, 200, 'the database sharing its thread answers after it');
  assert.equal(otherThread.status, 200);
  assert.ok(sameThread.ms > limitMs / 2, `b1 shares b5's thread: it waited ${sameThread.ms.toFixed(0)} ms`);
  assert.ok(otherThread.ms < limitMs / 2, `b4 is on the other thread: it waited ${otherThread.ms.toFixed(0)} ms`);
  assert.equal((await call('b1', 'hit')).status, 200);
});

test('a restarted server reopens its databases on two threads, each with its own rows', async () => {
  await server.restart();
  // Databases open in the background, smallest first (server/databases.ts): these requests wait for their opens.
  assert.equal((await sql('a0', 'SELECT * FROM message')).length, 3);
  assert.deepEqual(await sql('a2', "SELECT text FROM message WHERE text = 'from b 2'"), [['from b 2']]);
  for (const db of ['b1', 'b4', 'b5']) assert.equal((await call(db, 'hit')).status, 200, db);
  assert.deepEqual((await threadLoads()).sort(), [2, 3]);
});

test('a publish that fails on a shared thread leaves the thread to its databases', async () => {
  const loads = await threadLoads();
  const res = await request('PUT', '/v1/database/bad', bundles.get('bad-init'));
  assert.notEqual(res.status, 200, await res.text());
  assert.deepEqual(await threadLoads(), loads);
  for (const db of ['b1', 'b4']) assert.equal((await call(db, 'hit')).status, 200, db);
});
