// Host: a process that ran module isolates exits through the runtime's exit guard (host/runtime.ts
// installExitGuard), which skips Node's native teardown where isolated-vm 5.0.4 can abort. The guard must keep what
// a natural exit promises: 'exit' listeners registered after it still run, in order, and the exit code survives.
// The abort itself depends on GC timing at exit (seen in ~8 % of runs of test/migrations/hotswap.test.ts before the
// guard, none in 64 after), so this runs a few children with open isolates and garbage handles.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const childRuns = 4;

function childSource(): string {
  const href = (p: string) => JSON.stringify(pathToFileURL(path.join(repoRoot, p)).href);
  return `
import { Database } from ${href('src/host/database.ts')};
import { fixtureBundle } from ${href('test/host/bundle.ts')};
const program = await fixtureBundle('basic');
const sender = { identity: 1n, connectionId: 0n, jwtPayload: undefined };
for (let i = 0; i < 4; i++) {
  const db = await Database.create({ identity: 0xe000n + BigInt(i), ownerIdentity: 0xabn }, program);
  for (let k = 0; k < 20; k++) await db.callReducerJson('add', ['n' + k], sender);
  if (i % 2 === 0) await db.close();         // half closed, half left open at exit
}
process.on('exit', (code) => { console.log('first late listener, code ' + code); });
process.on('exit', () => { console.log('second late listener'); });
process.exitCode = 3;
`;
}

function runChild(file: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

test('a process with module isolates exits cleanly: later exit listeners run in order, the exit code is kept', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'stdb-exit-'));
  try {
    const file = path.join(dir, 'child.mts');
    writeFileSync(file, childSource());
    const runs = await Promise.all(Array.from({ length: childRuns }, () => runChild(file)));
    for (const r of runs) {
      assert.equal(r.signal, null, `child died by signal:\n${r.out}`);
      assert.equal(r.code, 3, `child exit code:\n${r.out}`);
      assert.match(r.out, /first late listener, code 3\nsecond late listener\n/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
