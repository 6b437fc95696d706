// The harness's guards against a test that hangs the suite (ARCHITECTURE.md "Tests"): a server that does not exit
// after SIGTERM fails the test that stops it and is killed; the servers a test file started die with the file; a
// polling wait stops polling at its deadline. Before them, a stop() that never returned or a loop left polling kept
// its file, and the suite, waiting (stop 27's CI ran past its 90 minutes).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cleanupTempDirs, makeTempDir, repoRoot, startTestServer, until } from '../harness.js';

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true; } catch { return false; } };

test('stop() kills a server that does not exit after SIGTERM and fails naming it', { timeout: 60_000 }, async () => {
  const server = await startTestServer({ exitTimeoutMs: 1_000 });
  const pid = server.pid()!;
  process.kill(pid, 'SIGSTOP'); // it cannot act on SIGTERM now
  const started = Date.now();
  await assert.rejects(server.stop(), /the server did not exit within 1000 ms of SIGTERM \(killed\); its output ends:\n[^]*Starting SpacetimeDB/);
  assert.ok(Date.now() - started < 10_000);
  assert.equal(alive(pid), false);
  cleanupTempDirs();
});

test('a test file ended by the runner (SIGTERM) takes its servers with it', async () => {
  const script = path.join(makeTempDir('stdb-harness-'), 'holds-a-server.mts');
  writeFileSync(script, `import { startTestServer } from ${JSON.stringify(path.join(repoRoot, 'test/harness.ts'))};
const server = await startTestServer();
console.log(String(server.pid()));
setInterval(() => {}, 1000);
`);
  const file = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  file.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => file.once('exit', (code) => resolve(code)));
  try {
    await until('the file\'s server started', () => /^\d+\n/.test(out), 30_000, 50);
  } finally {
    if (!/^\d+\n/.test(out)) file.kill('SIGKILL');
  }
  const serverPid = Number(out.trim());
  assert.equal(alive(serverPid), true);
  file.kill('SIGTERM');
  assert.equal(await exited, 143);
  await until('the server gone', () => !alive(serverPid), 5_000, 50);
  cleanupTempDirs();
});

test('until() throws naming what it waited for, and stops polling', async () => {
  let polls = 0;
  await assert.rejects(until('something that never holds', () => { polls++; return false; }, 100, 10), /^Error: timed out: something that never holds$/);
  const after = polls;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(polls, after);
});
