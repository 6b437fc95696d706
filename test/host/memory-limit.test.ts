// Issue 11 item 3: a module's memory can never take the host down. A reducer (or procedure) filling its heap in any
// shape is stopped with the memory-limit error, its transaction rolls back, and the database keeps serving from a new
// isolate. Map, Set and object-property growth used to abort the whole server (V8's fatal CALL_AND_RETRY_LAST: a hash
// table's doubling did not fit under V8's heap limit, which isolated-vm sets to the memory limit); host/runtime.ts now
// gives V8 room above the limit and an untouchable ballast keeps isolated-vm's check at the limit
// (src/limits.ts moduleHeapHardLimitFactor). A 32 MiB limit reaches every shape within a second or two.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

const memoryLimitMib = 32;
let server: TestServer;
const configPath = tempConfigPath();

before(async () => {
  process.env.SPACETIME_MODULE_MEMORY_LIMIT_MIB = String(memoryLimitMib);
  // Far above what any shape needs to reach the memory limit, so the memory limit is what stops it.
  process.env.SPACETIME_REDUCER_TIMEOUT_MS = '60000';
  server = await startTestServer();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/hostile-input', '-y', 'hostile'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
});

after(async () => {
  delete process.env.SPACETIME_MODULE_MEMORY_LIMIT_MIB;
  delete process.env.SPACETIME_REDUCER_TIMEOUT_MS;
  await server?.stop();
  cleanupTempDirs();
});

async function call(fn: string, args: unknown[]): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}/v1/database/hostile/call/${fn}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args),
  });
  return { status: res.status, text: await res.text() };
}

async function labels(): Promise<string[]> {
  const res = await fetch(`${server.url}/v1/database/hostile/sql`, { method: 'POST', body: 'SELECT label FROM item' });
  assert.equal(res.status, 200);
  const [result] = await res.json() as { rows: [string][] }[];
  return result.rows.map((r) => r[0]);
}

const shapes = ['map', 'mapOfNumbers', 'mapOfStrings', 'set', 'objectProperties', 'arrayOfArrays', 'array', 'strings'];

test('every allocation shape is stopped at the memory limit; the call rolls back and the database keeps serving', async () => {
  for (const shape of shapes) {
    const hog = await call('hog', [shape]);
    assert.equal(server.pid() !== undefined, true, `the server survived ${shape}:\n${server.output().slice(-2000)}`);
    assert.equal(hog.status, 530, `${shape}: ${hog.text}`);
    assert.match(hog.text, new RegExp(`memory limit of ${memoryLimitMib} MiB`), shape);
    const add = await call('add', [`after ${shape}`]);
    assert.equal(add.status, 200, `a new isolate serves after ${shape}: ${add.text}`);
  }
  const rows = await labels();
  assert.deepEqual(rows.filter((l) => l.startsWith('hog')), [], 'every hog call rolled back its insert');
  assert.equal(rows.filter((l) => l.startsWith('after')).length, shapes.length);
});

test('typed arrays past the limit are refused to the module as an allocation error', async () => {
  const hog = await call('hog', ['typedArrays']);
  assert.equal(hog.status, 530, hog.text);
  const logs = await runCli(['logs', '-s', server.url, 'hostile'], { configPath });
  assert.match(logs.stdout, /Array buffer allocation failed/, 'the module saw a RangeError it could catch');
  assert.equal((await call('add', ['after typedArrays'])).status, 200);
});

test('a procedure filling a Map is stopped at the memory limit, off the server thread too', async () => {
  const hog = await call('hog_proc', ['map']);
  assert.equal(server.pid() !== undefined, true, `the server survived:\n${server.output().slice(-2000)}`);
  assert.equal(hog.status, 530, hog.text);
  assert.match(hog.text, new RegExp(`memory limit of ${memoryLimitMib} MiB`));
  assert.equal((await call('add', ['after procedure'])).status, 200);
});
