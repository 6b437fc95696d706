// Hot backup and restore (issue 15 item 3): `spacetime backup` copies a database while it keeps serving writes,
// `spacetime restore` creates a database from the file (same server under a new name, or another server); the copy is
// one consistent cut (the state after one commit offset); a damaged or truncated file is refused, saying where.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { readBackup } from '../../src/durability/backup.js';
import { cleanupTempDirs, makeTempDir, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { accounts, initialBalance, sqlRows, startBank, type Bank } from '../faults/helpers.js';

let bank: Bank | undefined;
let other: TestServer | undefined;
after(async () => {
  await bank?.server.stop();
  await other?.stop();
  cleanupTempDirs();
});

async function transfer(b: Bank, from: number, to: number, nonce: string): Promise<number> {
  const res = await fetch(`${b.server.url}/v1/database/bank/call/transfer`, {
    method: 'POST', headers: { ...b.auth, 'content-type': 'application/json' }, body: JSON.stringify([from, to, 1, nonce]),
  });
  await res.text();
  return res.status;
}

/** Balances implied by the transfer log equal the accounts table (the copy is internally consistent). */
async function assertConsistent(b: Bank, db: string): Promise<string[]> {
  const nonces = (await sqlRows(b, 'SELECT nonce FROM transfer_log', db)).map((r) => String(r[0]));
  const balances = new Array<bigint>(accounts).fill(initialBalance);
  for (const n of nonces) {
    const [from, to] = n.split(':')[0]!.split('>').map(Number);
    balances[from!]! -= 1n;
    balances[to!]! += 1n;
  }
  for (const [id, balance] of await sqlRows(b, 'SELECT id, balance FROM accounts', db)) {
    assert.equal(BigInt(String(balance)), balances[Number(id)], `${db}: account ${id}`);
  }
  return nonces;
}

test('backup under write load, restore under a new name and on another server, damaged files refused', async (t) => {
  bank = await startBank();
  const b = bank;
  const configPath = tempConfigPath();
  const cli = (args: string[]) => runCli([...args], { configPath });
  assert.equal((await cli(['login', '--token', b.token])).code, 0);
  // ~1.2 MB of transactions, then a graceful restart: the log now starts after a snapshot (persistence.ts
  // snapshotOnCloseMinLogBytes), so the backup carries a snapshot and a log tail.
  for (let i = 0; i < 20; i++) assert.equal(await transfer(b, 0, 1, `0>1:seed-${i}:${'x'.repeat(60_000)}`), 200);
  await b.server.restart();
  // The restarted server opens the database in the background; on a loaded machine that took longer than the 300 ms
  // of load before the backup, which then cut at the snapshot with no log tail. One call waits for the open.
  assert.equal(await transfer(b, 0, 1, '0>1:after-restart'), 200);

  // Write load: two clients, each a strictly ordered sequence, while the backup is taken.
  let stop = false;
  const ackedBefore = new Set<string>();
  let backupStarted = false;
  const startedAfter = new Set<string>();
  const load = async (c: number) => {
    for (let i = 0; !stop && i < 5000; i++) {
      const nonce = `${c * 2 + 2}>${c * 2 + 3}:c${c}-${i}`;
      const late = backupDone;
      if (await transfer(b, c * 2 + 2, c * 2 + 3, nonce) === 200 && !backupStarted) ackedBefore.add(nonce);
      if (late) startedAfter.add(nonce);
    }
  };
  let backupDone = false;
  const loads = [load(0), load(1)];
  await new Promise((r) => setTimeout(r, 300));
  const file = path.join(makeTempDir('stdb-backup-'), 'bank.stdb-backup');
  backupStarted = true;
  const started = Date.now();
  const out = await cli(['backup', 'bank', '-o', file, '-s', b.server.url]);
  backupDone = true;
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await Promise.all(loads);
  assert.equal(out.code, 0, out.stderr + out.stdout);
  const parsed = readBackup(readFileSync(file));
  t.diagnostic(`${out.stdout.trim()} in ${Date.now() - started} ms; ${ackedBefore.size} transfers acknowledged before it`);
  assert.notEqual(parsed.header.snapshotOffset, null, 'the backup holds a snapshot');
  assert.ok(parsed.log.length > 0, 'and a log tail');

  const restored = await cli(['restore', file, 'bank-copy', '-s', b.server.url]);
  assert.equal(restored.code, 0, restored.stderr + restored.stdout);
  assert.match(restored.stdout, new RegExp(`at commit offset ${parsed.header.offset}`));
  const copy = await assertConsistent(b, 'bank-copy');
  const inCopy = new Set(copy);
  for (const n of ackedBefore) assert.ok(inCopy.has(n), `acknowledged before the backup, missing from the copy: ${n}`);
  for (const n of startedAfter) assert.ok(!inCopy.has(n), `started after the backup finished, yet in the copy: ${n}`);
  // One cut: each client's calls are sequential, so the copy holds a prefix of each client's sequence.
  for (const c of [0, 1]) {
    const seq = copy.filter((n) => n.includes(`:c${c}-`)).map((n) => Number(n.split('-').pop())).sort((x, y) => x - y);
    assert.deepEqual(seq, seq.map((_, i) => i), `client ${c}: the copy is not a prefix`);
  }
  const source = new Set(await assertConsistent(b, 'bank'));
  for (const n of copy) assert.ok(source.has(n));
  assert.ok(source.size > copy.length, 'the source kept serving writes after the backup offset');
  // The copy is a working database of its own.
  const res = await fetch(`${b.server.url}/v1/database/bank-copy/call/transfer`, {
    method: 'POST', headers: { ...b.auth, 'content-type': 'application/json' }, body: JSON.stringify([8, 9, 1, '8>9:copy']),
  });
  assert.equal(res.status, 200, await res.text());

  // Same name again: refused while taken.
  const taken = await cli(['restore', file, 'bank', '-s', b.server.url]);
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr + taken.stdout, /name bank is taken/);

  // Damaged: one flipped byte in the log tail; truncated: the end part is missing.
  const bytes = readFileSync(file);
  const flipped = Buffer.from(bytes);
  flipped[bytes.length - 100]! ^= 0x40;
  const damagedFile = `${file}.damaged`;
  writeFileSync(damagedFile, flipped);
  const damaged = await cli(['restore', damagedFile, 'bank-damaged', '-s', b.server.url]);
  assert.notEqual(damaged.code, 0);
  assert.match(damaged.stderr + damaged.stdout, /damaged: part \d+ \(log\) at byte \d+: checksum mismatch/);
  const truncatedFile = `${file}.truncated`;
  writeFileSync(truncatedFile, bytes.subarray(0, bytes.length - 20));
  const truncated = await cli(['restore', truncatedFile, 'bank-truncated', '-s', b.server.url]);
  assert.match(truncated.stderr + truncated.stdout, /truncated: part \d+/);
  const names = await fetch(`${b.server.url}/v1/database/bank-damaged`);
  assert.equal(names.status, 404, 'nothing was created from a damaged file');

  // Another server, same name, over the route itself.
  other = await startTestServer();
  const id = (await (await fetch(`${other.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
  const put = await fetch(`${other.url}/v1/database/restore?name=bank`, {
    method: 'POST', headers: { authorization: `Bearer ${id.token}` }, body: bytes,
  });
  assert.equal(put.status, 200, await put.text());
  const rows = await fetch(`${other.url}/v1/database/bank/sql`, { method: 'POST', headers: { authorization: `Bearer ${id.token}` }, body: 'SELECT nonce FROM transfer_log' });
  const otherNonces = ((await rows.json()) as { rows: unknown[][] }[])[0]!.rows.map((r) => String(r[0]));
  assert.deepEqual(new Set(otherNonces), inCopy, 'the other server holds the same state');
});
