// Issue 11 item 7 and issue 15 item 5 through a real server process and the real CLI: a module cannot use its log as a
// weapon — a reducer flooding console.log writes at most logBytesPerCallMax per call (the call still commits, the
// next call logs again), a slow `logs --follow` reader is not buffered without bound, and a database whose module.log
// is 1.5 GB opens in bounded time and memory and serves `spacetime logs -n 10` across the rotated files.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  logBytesPerCallMax, logFileBytesMax, logFollowLagBytesMax, logLineBytesMax, logRotatedFilesMax,
} from '../../src/limits.js';
import { cleanupTempDirs, repoRoot, runCli, scrapeIdentity, startTestServer, tempConfigPath, within, type TestServer } from '../harness.js';

const reducerLimitMs = 2_000;
let server: TestServer;
let configPath: string;
let dbDir: string;
let token: string;

before(async () => {
  process.env.SPACETIME_REDUCER_TIMEOUT_MS = String(reducerLimitMs);     // inherited by the server process
  server = await startTestServer();
  configPath = tempConfigPath();
  const pub = await runCli(['publish', '-s', server.url, '-p', 'test/fixtures/modules/log-flood', '--yes', 'logflood'], { configPath });
  assert.equal(pub.code, 0, pub.stderr);
  dbDir = path.join(server.dataDir, 'databases', scrapeIdentity(pub.stdout));
  token = /spacetimedb_token\s*=\s*"([^"]+)"/.exec(readFileSync(configPath, 'utf8'))![1];
});

after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

function cli(command: string, ...args: string[]) {
  return runCli([command, '-s', server.url, ...args], { configPath });
}

/** A reducer call over HTTP (the CLI's `call` is not what is tested here, and each CLI run costs a process). */
async function call(reducer: string, ...args: unknown[]): Promise<Response> {
  return fetch(`${server.url}/v1/database/logflood/call/${reducer}`, {
    method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(args),
  });
}

async function callOk(reducer: string, ...args: unknown[]): Promise<void> {
  const res = await call(reducer, ...args);
  assert.equal(res.status, 200, await res.text());
}

async function logMessages(...args: string[]): Promise<string[]> {
  const r = await cli('logs', '--format=json', ...args, 'logflood');
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l).message as string);
}

/** Bytes of module.log and its rotations (as sized, so a sparse file counts whole). */
function logSetBytes(): number {
  return readdirSync(dbDir).filter((f) => /^module\.log(\.\d+)?$/.test(f)).reduce((n, f) => n + statSync(path.join(dbDir, f)).size, 0);
}

/** What one call may add to the log: the bound, the record that crosses it, and the line saying the rest is dropped. */
const perCallBytesMax = logBytesPerCallMax + logLineBytesMax + 1024;
const droppedNotice = /this call wrote more than \d+ bytes of log \(logBytesPerCallMax\): the rest of its log is dropped/;

test('a reducer logging 300 lines of 256 KiB writes at most logBytesPerCallMax, commits, and the next call logs', async (t) => {
  const before = logSetBytes();
  await callOk('flood', 300, 256 * 1024);                                // ~77 MB asked, ~20 MB even with records cut
  const grew = logSetBytes() - before;
  t.diagnostic(`the call added ${grew} bytes of log`);
  assert.ok(grew <= perCallBytesMax && grew >= logBytesPerCallMax, `the call added ${grew} bytes of log`);
  const [last] = await logMessages('-n', '1');
  assert.match(last, droppedNotice);
  const rows = await fetch(`${server.url}/v1/database/logflood/sql`, { method: 'POST', body: 'SELECT text FROM note' });
  assert.match(await rows.text(), /"flooded 300"/, 'the call committed');
  await callOk('say', 'after the flood');
  assert.deepEqual(await logMessages('-n', '1'), ['after the flood']);
});

test('a reducer logging 1 MiB lines until it is stopped writes at most logBytesPerCallMax', async (t) => {
  const before = logSetBytes();
  const started = performance.now();
  const res = await call('flood_forever');
  assert.match(await res.text(), /fatal error|time limit/);
  const grew = logSetBytes() - before;
  t.diagnostic(`the call added ${grew} bytes of log in ${(performance.now() - started).toFixed(0)} ms`);
  assert.ok(grew <= perCallBytesMax, `the call added ${grew} bytes of log in ${(performance.now() - started).toFixed(0)} ms`);
  await callOk('say', 'still serving');
  assert.deepEqual((await logMessages('-n', '3')).filter((m) => m === 'still serving'), ['still serving']);
});

test('`spacetime logs -f` prints the backlog, then new records as they come', async () => {
  await callOk('say', 'backlog line');
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'spacetime.js'), '--config-path', configPath, 'logs', '-s', server.url,
    '-f', '-n', '1', 'logflood'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const seen = (text: string) => within(new Promise<void>((resolve) => {
    const look = () => (out.includes(text) ? resolve() : setTimeout(look, 50));
    look();
  }), `"${text}" in logs -f output:\n${out}`);
  try {
    await seen('backlog line');
    await callOk('say', 'followed line');
    await seen('followed line');
    assert.match(out, /INFO: .*followed line\n/);
  } finally {
    child.kill();
  }
});

test('a follower that stops reading is skipped past logFollowLagBytesMax, then told how many records it missed', async (t) => {
  let received = 0;
  let text = '';
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request(`${server.url}/v1/database/logflood/logs?num_lines=0&follow=true`, { headers: { authorization: `Bearer ${token}` } }, resolve);
    req.on('error', reject);
    req.end();
  });
  assert.equal(res.statusCode, 200);
  res.pause();
  const calls = 10;                                                      // ~4 MiB each: 40 MiB the reader never asked for
  for (let i = 0; i < calls; i++) await callOk('flood', 70, 64 * 1024);
  res.on('data', (d: Buffer) => { received += d.length; if (text.length < 1e6) text += d.toString().slice(-2000); });
  res.resume();
  await within(new Promise<void>((resolve) => {
    const look = () => (/log records were skipped/.test(text) ? resolve() : setTimeout(look, 50));
    look();
  }), 'the skipped-records line');
  res.destroy();
  t.diagnostic(`the paused reader got ${received} bytes of ${calls * logBytesPerCallMax}`);
  assert.match(text, new RegExp(`\\d+ log records were skipped: this reader fell more than ${logFollowLagBytesMax} bytes behind`));
  // What the server held for it, plus what the kernel's socket buffers took.
  assert.ok(received < calls * logBytesPerCallMax / 2, `the paused reader got ${received} bytes of ${calls * logBytesPerCallMax}`);
});

test('a database whose module.log is 1.5 GB opens fast, in bounded memory, and serves `logs -n 10` across rotations', async (t) => {
  await server.stop();
  const logFile = path.join(dbDir, 'module.log');
  const record = (message: string) => JSON.stringify({ ts: 1_700_000_000_000_000, level: 'Info', message }) + '\n';
  writeFileSync(`${logFile}.1`, Array.from({ length: 20 }, (_, i) => record(`rotated ${i}`)).join(''));
  const fd = openSync(logFile, 'w');
  ftruncateSync(fd, 1536 * 1024 * 1024);                                // sparse: 1.5 GB of zero bytes, no disk used
  closeSync(fd);
  appendFileSync(logFile, '\n' + [1, 2, 3].map((i) => record(`tail ${i}`)).join(''));
  const started = performance.now();
  await server.restart();
  const restartMs = performance.now() - started;
  const peakRssKb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid()}/status`, 'utf8'))?.[1]);
  t.diagnostic(`restart took ${restartMs.toFixed(0)} ms, peak RSS ${peakRssKb} kB`);
  const tail = await logMessages('-n', '10');
  assert.equal(tail.length, 10, tail.join('\n'));
  const at = tail.indexOf('tail 1');
  assert.deepEqual(tail.slice(at - 2, at + 3), ['rotated 18', 'rotated 19', 'tail 1', 'tail 2', 'tail 3']);
  assert.ok(tail.some((m) => /module\.log was 1610612\d+ bytes, over the \d+-byte bound \(logFileBytesMax\)/.test(m)));
  assert.ok(restartMs < 15_000, `restart took ${restartMs.toFixed(0)} ms`);
  assert.ok(peakRssKb < 512 * 1024, `the server's peak RSS was ${peakRssKb} kB`);
  assert.ok(logSetBytes() <= (logRotatedFilesMax + 1) * logFileBytesMax, `${logSetBytes()} bytes of log on disk`);
  assert.ok(!existsSync(`${logFile}.${logRotatedFilesMax + 1}`));
  const all = await logMessages();
  assert.deepEqual(all.filter((m) => /^(rotated|tail) \d+$/.test(m)),
    [...Array.from({ length: 20 }, (_, i) => `rotated ${i}`), 'tail 1', 'tail 2', 'tail 3']);
});
