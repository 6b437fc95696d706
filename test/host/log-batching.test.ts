// Host: a module call's log records are written to module.log together when the call returns (module-log.ts
// holdLogWrites / releaseLogWrites around each entry into the isolate), not with one file append per record, and
// still before anything replies: a process killed right after a failing call has its records on disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller } from '../../src/host/database.js';
import { holdLogWrites, ModuleLog, releaseLogWrites } from '../../src/host/module-log.js';
import { fixtureBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const opts = { identity: 0xc200aan, ownerIdentity: 0xabn };

/** Write syscalls this process made so far (Linux /proc/self/io). */
function writeSyscalls(): number {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
}

test('held lines reach the file at release, in order, one write per log; rotation still bounds the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-logbatch-'));
  try {
    const path = join(dir, 'module.log');
    const log = new ModuleLog(path, { fileBytesMax: 512 * 1024, rotatedFilesMax: 2 });
    log.write('Info', 'before');
    holdLogWrites();
    for (let i = 0; i < 3; i++) log.write('Info', `held ${i}`);
    assert.equal(readFileSync(path, 'utf8').split('\n').length - 1, 1, 'nothing written while held');
    assert.deepEqual(log.tail(4).map((r) => r.message), ['before', 'held 0', 'held 1', 'held 2'], 'the ring has them');
    releaseLogWrites();
    assert.deepEqual(readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l).message), ['before', 'held 0', 'held 1', 'held 2']);
    holdLogWrites();
    const body = 'x'.repeat(10_000);
    for (let i = 0; i < 200; i++) log.write('Info', `many ${i} ${body}`);   // ~2 MB: rotations inside the batch
    releaseLogWrites();
    assert.ok(statSync(path).size <= 512 * 1024, 'rotation happened inside the held batch');
    assert.deepEqual([...log.read(2)].map((r) => r.message), [`many 198 ${body}`, `many 199 ${body}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a call logging 300 lines writes module.log a few times, not 300', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-logbatch-'));
  const db = await Database.create({ ...opts, dataDir: join(dir, 'db') }, await fixtureBundle('log-flood'));
  try {
    assert.equal((await db.callReducerJson('flood', [10, 8], alice)).status, 'committed');
    const before = writeSyscalls();
    assert.equal((await db.callReducerJson('flood', [300, 8], alice)).status, 'committed');
    const writes = writeSyscalls() - before;
    // The commit log's own writes and fsyncs, plus one module.log append; without batching it was ≥ 300.
    assert.ok(writes < 50, `${writes} write syscalls for one call of 300 log lines`);
    const lines = readFileSync(join(dir, 'db', 'module.log'), 'utf8').split('\n').filter((l) => l.includes(' xxxxxxxx'));
    assert.equal(lines.length, 310);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// The child runs a failing call that logs, then kills itself with SIGKILL as soon as the call has returned.
const childSource = `
import { Database } from ${JSON.stringify(new URL('../../src/host/database.ts', import.meta.url).pathname)};
import { readFileSync } from 'node:fs';
const [dir, bundlePath] = process.argv.slice(2);
const db = await Database.create({ identity: 0xc200aan, ownerIdentity: 0xabn, dataDir: dir }, readFileSync(bundlePath, 'utf8'));
const r = await db.callReducerJson('fails_after_logging', [], { identity: 1n, connectionId: 2n, jwtPayload: undefined });
if (r.status !== 'failed') process.exit(3);
process.kill(process.pid, 'SIGKILL');
`;

test('records of a failing call are on disk when the process is killed right after it returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-logbatch-'));
  try {
    const { build } = await import('esbuild');
    const bundle = (await build({
      stdin: { contents: `import { schema, table, t, SenderError } from 'spacetimedb/server';
const spacetimedb = schema({ n: table({ name: 'n' }, { id: t.u32().primaryKey() }) });
export default spacetimedb;
export const fails_after_logging = spacetimedb.reducer((ctx) => {
  for (let i = 0; i < 5; i++) console.info('before the failure ' + i);
  ctx.db.n.insert({ id: 1 });
  throw new SenderError('failing on purpose');
});`, resolveDir: new URL('../../', import.meta.url).pathname, loader: 'ts' },
      bundle: true, format: 'esm', platform: 'browser', write: false, external: ['spacetime:sys*'], logLevel: 'silent', target: 'esnext',
    })).outputFiles[0].text;
    const bundlePath = join(dir, 'bundle.js');
    (await import('node:fs')).writeFileSync(bundlePath, bundle);
    const childPath = join(dir, 'child.mts');
    (await import('node:fs')).writeFileSync(childPath, childSource);
    const r = spawnSync(process.execPath, ['--import', 'tsx', childPath, join(dir, 'db'), bundlePath],
      { cwd: new URL('../../', import.meta.url).pathname, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, 'SIGKILL', `child: status ${r.status}, stderr ${r.stderr}`);
    const messages = readFileSync(join(dir, 'db', 'module.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).message);
    assert.deepEqual(messages.filter((m: string) => m.startsWith('before the failure')), [0, 1, 2, 3, 4].map((i) => `before the failure ${i}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
