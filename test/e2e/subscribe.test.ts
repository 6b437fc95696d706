// End-to-end test of `spacetime subscribe` (issue 4): upstream's JSON lines for the initial update and each
// transaction, -n / -t exit rules, and clear errors for bad queries — real server, real CLI.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { cleanupTempDirs, repoRoot, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';

let server: TestServer;
let configPath: string;

before(async () => {
  server = await startTestServer();
  configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/basic', '-y', 'subs'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
  assert.equal((await runCli(['call', '-s', server.url, 'subs', 'add', 'Zed'], { configPath })).code, 0);
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

/** Starts `spacetime subscribe` and resolves each stdout line as it arrives. */
function startSubscribe(args: string[]) {
  const child = spawn(process.execPath, ['bin/spacetime.js', '--config-path', configPath, 'subscribe', '-s', server.url, ...args],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let waiter: (() => void) | undefined;
  let stderr = '';
  let buffered = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    waiter?.();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
  return {
    lines,
    stderr: () => stderr,
    exited,
    async waitForLines(n: number): Promise<void> {
      const deadline = Date.now() + 10_000;
      while (lines.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${lines.length}/${n} lines; stderr: ${stderr}`);
        await new Promise<void>((resolve) => { waiter = resolve; setTimeout(resolve, 100); });
      }
    },
  };
}

test('prints the initial update and one JSON line per transaction, then exits 0 after -n updates', async () => {
  const sub = startSubscribe(['subs', '-n', '2', '-t', '20', '--print-initial-update', '--', 'SELECT * FROM person']);
  await sub.waitForLines(1);
  assert.deepEqual(JSON.parse(sub.lines[0]), { person: { deletes: [], inserts: [{ name: 'Zed' }] } });
  assert.equal((await runCli(['call', '-s', server.url, 'subs', 'add', 'Amy'], { configPath })).code, 0);
  assert.equal((await runCli(['sql', '-s', server.url, 'subs', "INSERT INTO person (name) VALUES ('Bo')"], { configPath })).code, 0);
  assert.equal(await sub.exited, 0, sub.stderr());
  assert.deepEqual(sub.lines.slice(1).map((l) => JSON.parse(l)), [
    { person: { deletes: [], inserts: [{ name: 'Amy' }] } },
    { person: { deletes: [], inserts: [{ name: 'Bo' }] } },
  ]);
});

test('a bad query is a clear error with exit 1', async () => {
  const res = await runCli(['subscribe', '-s', server.url, 'subs', '-t', '5', '--', 'SELECT * FROM nope'], { configPath });
  assert.equal(res.code, 1);
  assert.match(res.stderr, /Error: .*nope/);
});

test('-n not reached when the server closes the connection is an error; the server says why', async () => {
  const sub = startSubscribe(['subs', '-n', '5', '-t', '20', '--print-initial-update', '--', 'SELECT * FROM person']);
  await sub.waitForLines(1);
  const del = await runCli(['delete', '-s', server.url, '-y', 'subs'], { configPath });
  assert.equal(del.code, 0, del.stderr);
  assert.equal(await sub.exited, 1);
  assert.match(sub.stderr(), /disconnected by server/);
  assert.match(sub.stderr(), /subscription closed after receiving 0\/5 updates/);
});
