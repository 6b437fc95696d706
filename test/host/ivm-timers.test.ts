// Host: isolated-vm's timer thread, as patched by patches/isolated-vm+5.0.4.patch (applied and built on install by
// patches/build-isolated-vm.mjs). Every reducer call is a timed applySync; each leaves a cancelled timer queued until
// its timeout. Unpatched 5.0.4 reaped expired timers by recursion, one stack frame each, so a process stopped for
// longer than the timeout (Ctrl-Z, docker pause, CPU throttling) died by SIGSEGV on waking to ~35k of them; and each
// cancelled timer held ~200 B for the length of its timeout. The children run test/fixtures/ivm-timers-child.ts.
// Checked against an unpatched build with IVM_TIMERS_PACKAGE_DIR=<its package dir>: the first two tests fail.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const childFile = path.resolve(import.meta.dirname, '..', 'fixtures', 'ivm-timers-child.ts');
const stallCalls = 50_000;                          // unpatched: 10k survived, 50k died (the stack holds ~35k frames)
const stallMs = 2_000;                              // longer than the calls' 1 s timeout: all of them expire at once
const memoryCalls = 300_000;
const memoryBytesPerCallMax = 64;                   // unpatched ~200; patched about the untimed figure (~10)

interface ChildResult { code: number | null; signal: NodeJS.Signals | null; out: string }

/** Runs the child; `onLine` sees each stdout line (and may stop or continue the child). */
function runChild(args: string[], onLine: (line: string, pid: number) => void = () => {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', childFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      pending += d.toString();
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        onLine(pending.slice(0, end), child.pid!);
        pending = pending.slice(end + 1);
      }
    });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(killer); resolve({ code, signal, out }); });
  });
}

test('a process stopped past its timeouts survives waking to 50k expired timers', async () => {
  let stoppedAfterBurst = false;
  const result = await runChild(['stall', String(stallCalls)], (line, pid) => {
    if (!line.startsWith('burst ')) return;
    process.kill(pid, 'SIGSTOP');                   // the burst took well under 1 s, so no timer has expired yet
    stoppedAfterBurst = true;
    setTimeout(() => process.kill(pid, 'SIGCONT'), stallMs);
  });
  assert.ok(stoppedAfterBurst, `the child never finished its burst:\n${result.out}`);
  assert.equal(result.signal, null, `the child died by ${result.signal}:\n${result.out}`);
  assert.equal(result.code, 0, result.out);
  assert.match(result.out, /survived/);
});

test('a cancelled timed call holds next to no native memory until its timeout', async () => {
  const result = await runChild(['memory', String(memoryCalls)]);
  assert.equal(result.code, 0, result.out);
  const { bytesPerCall } = JSON.parse(result.out.trim().split('\n').pop()!) as { bytesPerCall: number };
  assert.ok(bytesPerCall < memoryBytesPerCallMax,
    `RSS grew ${bytesPerCall.toFixed(0)} B per timed call over ${memoryCalls} calls (max ${memoryBytesPerCallMax})`);
});

test('a live timeout still fires while cancelled timers around it are swept', async () => {
  const result = await runChild(['live']);
  assert.equal(result.code, 0, result.out);
  assert.match(result.out, /timed out after \d+ ms: Script execution timed out/);
});
