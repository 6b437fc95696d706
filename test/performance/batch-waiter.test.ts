// test/performance/batch-waiter.test.ts — commits of one group commit share one durability promise
// (src/durability/commitlog.ts waitPendingBatch), and sharing never releases an offset before its batch is synced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLog, CommitLogFailedError } from '../../src/durability/commitlog.js';

function tempDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `stdb-perf-${label}-`));
}

test('offsets of one pending batch share a promise; the next batch gets its own; each resolves only once synced', async () => {
  const dir = tempDir('batch');
  const log = CommitLog.open(dir, {});
  try {
    const a = log.append(new Uint8Array([1]));
    const b = log.append(new Uint8Array([2]));
    const pa = log.waitDurable(a);
    const pb = log.waitDurable(b);
    assert.equal(pa, pb, 'one waiter for the whole pending batch');
    assert.equal(log.waitDurable(a), pa);
    // Let flushLoop take the batch (setImmediate), then append while it is being synced.
    await new Promise((r) => setImmediate(r));
    const c = log.append(new Uint8Array([3]));
    const pc = log.waitDurable(c);
    assert.notEqual(pc, pa, 'an append after the batch was taken waits for the next batch');
    const afterTaken = log.waitDurable(b); // an offset of the batch in flight: its own (sorted) waiter
    assert.notEqual(afterTaken, pc);
    const order: string[] = [];
    await Promise.all([
      pa.then(() => order.push(`ab durable=${log.durableOffset}`)),
      afterTaken.then(() => order.push(`b durable=${log.durableOffset}`)),
      pc.then(() => order.push(`c durable=${log.durableOffset}`)),
    ]);
    for (const o of order) {
      const [who, d] = o.split(' durable=');
      const needed = who === 'c' ? c : b;
      assert.ok(BigInt(d) >= needed, `${who} released at durable offset ${d}`);
    }
  } finally {
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed sync rejects the shared batch promise for every offset in it', async () => {
  const dir = tempDir('batchfail');
  const log = CommitLog.open(dir, { faultInjection: { failSyncNumber: 1 } });
  try {
    const p1 = log.waitDurable(log.append(new Uint8Array([1])));
    const p2 = log.waitDurable(log.append(new Uint8Array([2])));
    assert.equal(p1, p2);
    await assert.rejects(p1, CommitLogFailedError);
  } finally {
    await log.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
