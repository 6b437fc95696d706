// Smoke test for the transfer harness (bench/keynote/*): a few-second run of the Node+SQLite baseline on a tiny
// account set, for each workload, so CI exercises the workload generator, the closed loop, the RPC server and the
// invariant check (balances; audit rows for the general workload) without PostgreSQL or our server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSqlite, measure } from '../../bench/keynote/systems.js';
import { LatencyHistogram, assertInvariant, makePairs } from '../../bench/keynote/workload.js';

test('zipf pairs are deterministic, never from == to, and skewed at alpha 1.5', () => {
  const a = makePairs(1000, 1.5, 5000);
  assert.deepEqual(a, makePairs(1000, 1.5, 5000));
  let hot = 0;
  for (let i = 0; i < 5000; i++) {
    assert.notEqual(a[2 * i], a[2 * i + 1]);
    if (a[2 * i] === 0) hot++;
  }
  assert.ok(hot > 5000 * 0.3, `rank 0 should take ~38% of draws at alpha 1.5, got ${hot}`);
  const uniform = makePairs(1000, 0, 5000);
  assert.ok(uniform.filter((v) => v === 0).length < 100);
});

test('latency histogram quantiles are within 1%', () => {
  const h = new LatencyHistogram();
  for (let v = 1; v <= 100_000; v++) h.record(v);
  assert.ok(Math.abs(h.quantile(0.5) - 50_000) / 50_000 < 0.01);
  assert.ok(Math.abs(h.quantile(0.99) - 99_000) / 99_000 < 0.01);
});

test('invariant check rejects a changed total, and for the general workload an audit count off the committed range', () => {
  const none = { rowsMin: 0, rowsMax: 0 };
  assert.throws(() => assertInvariant({ accounts: 10, total: 99n, min: 0n }, 10, 10n, 'keynote', none), /total balance/);
  assertInvariant({ accounts: 10, total: 100n, min: 0n }, 10, 10n, 'keynote', none);
  const ok = { accounts: 10, total: 100n, min: 0n };
  assertInvariant({ ...ok, auditRows: 7 }, 10, 10n, 'general', { rowsMin: 5, rowsMax: 7 });
  assert.throws(() => assertInvariant({ ...ok, auditRows: 4 }, 10, 10n, 'general', { rowsMin: 5, rowsMax: 7 }), /4 audit rows/);
  assert.throws(() => assertInvariant({ ...ok, auditRows: 8 }, 10, 10n, 'general', { rowsMin: 5, rowsMax: 7 }), /8 audit rows/);
  assert.throws(() => assertInvariant(ok, 10, 10n, 'general', none), /undefined audit rows/);
});

for (const workload of ['keynote', 'general'] as const) {
  test(`sqlite baseline, ${workload}: a short run commits transfers and keeps the invariant`, { timeout: 60_000 }, async () => {
    const sut = await startSqlite(workload, undefined);
    try {
      const accounts = 200;
      const result = await measure(sut, 1.5, makePairs(accounts, 1.5, 10_000), {
        accounts, initialBalance: 1_000_000n, clients: 4, inFlightPerClient: 1, warmupSeconds: 0.5, durationSeconds: 2,
      });
      assert.equal(result.invariant, 'ok');
      assert.equal(result.workload, workload);
      assert.ok(result.tps > 0, `tps ${result.tps}`);
      assert.equal(result.errors, 0, result.firstError);
      assert.equal(result.outcomeUnknown, 0);
      assert.ok(result.committedTotal >= result.committed);
      assert.ok(result.p99Ms >= result.p50Ms && result.p50Ms > 0);
      assert.equal(result.series.length, 2);
      // The check reads back one audit row per committed transfer (measure asserted it; this proves it looked).
      const after = await sut.check();
      assert.equal(after.auditRows, workload === 'general' ? result.committedTotal : undefined);
    } finally {
      await sut.stop();
    }
  });
}

test('installer: present tools are left alone; --no-install and a missing tool give a reason naming the apt command', async () => {
  const { ensureInstalled } = await import('../../bench/install.js');
  const lines: string[] = [];
  const base = { key: 'fake-tool', name: 'Fake tool', packages: ['no-such-package-stdb'], without: 'skipping the fake rows' };
  assert.deepEqual(await ensureInstalled({ ...base, present: () => true }, { allowInstall: false, log: (l) => lines.push(l) }),
    { status: 'present' });
  assert.deepEqual(lines, []);
  const missing = await ensureInstalled({ ...base, present: () => false }, { allowInstall: false, log: (l) => lines.push(l) });
  assert.equal(missing.status, 'unavailable');
  assert.match(lines.join('\n'), /Fake tool is not installed and --no-install was given; skipping the fake rows \(to install it yourself: `apt-get install no-such-package-stdb`\)/);
});
