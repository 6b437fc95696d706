// test/durability/crash.test.ts — kill -9 while appending: every offset acknowledged as durable survives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../../src/durability/commitlog.js';
import { crashPayload } from './fixtures/crash-payload.js';
import { tempDir } from './helpers.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-appender.ts');
const rounds = 3;
const acksBeforeKill = [200, 700, 1500];

interface Ack { offset: bigint; appender: number; counter: number; round: number }

function runUntilKilled(dir: string, round: number, killAfterAcks: number): Promise<{ acks: Ack[]; openedAt: bigint }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dir, String(round)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acks: Ack[] = [];
    let openedAt = -1n;
    let rest = '';
    let killed = false;
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const parts = line.split(' ');
        if (parts[0] === 'open') openedAt = BigInt(parts[1]!);
        if (parts[0] === 'ack') acks.push({ offset: BigInt(parts[1]!), appender: Number(parts[2]), counter: Number(parts[3]), round });
      }
      if (!killed && acks.length >= killAfterAcks) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve({ acks, openedAt }) : reject(new Error(`child exited ${code} ${signal}`))));
  });
}

test('SIGKILL during group-committed appends loses no acknowledged commit', { timeout: 60_000 }, async () => {
  const dir = tempDir('crash');
  const all: Ack[] = [];
  let previousEnd = 0n;
  for (let round = 0; round < rounds; round++) {
    const { acks, openedAt } = await runUntilKilled(dir, round, acksBeforeKill[round]!);
    assert.ok(openedAt >= previousEnd, `round ${round} reopened at ${openedAt}, but ${previousEnd} commits were on disk`);
    all.push(...acks);
    const log = CommitLog.open(dir, { segmentSizeMaxBytes: 8 * 1024 });
    const records = new Map<bigint, Uint8Array>();
    for (const rec of log.replay(0n)) records.set(rec.offset, rec.payload);
    assert.equal(log.verify(), records.size);
    previousEnd = log.nextOffset;
    await log.close();
    for (const ack of all) {
      const payload = records.get(ack.offset);
      assert.ok(payload, `acknowledged offset ${ack.offset} (round ${ack.round}) missing after kill`);
      assert.deepEqual(payload, crashPayload(ack.round, ack.appender, ack.counter), `payload of ${ack.offset}`);
    }
  }
  assert.ok(all.length >= acksBeforeKill.reduce((a, b) => a + b));
});
