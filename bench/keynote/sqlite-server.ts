// Baseline C: Node HTTP/JSON RPC server over better-sqlite3 (one process, one connection), the keynote's
// "Node + SQLite" stack. WAL journal, synchronous=FULL by default (acks only after the WAL is fsynced), every
// transfer is prepared statements inside `db.transaction`. `--workload general` runs the transfer as apps write it:
// accounts also hold an `owner` text and an `updated` time (integer µs since the epoch, as ours stores a timestamp),
// set by each transfer, and each transfer inserts an audit row (`INTEGER PRIMARY KEY AUTOINCREMENT`: ids are never
// reused, as an autoInc sequence's and PostgreSQL's identity's are not); the check also counts audit rows.
// Usage: node --import tsx bench/keynote/sqlite-server.ts --db <file> [--port 0] [--synchronous FULL|NORMAL]
//        [--workload keynote|general]
// Owns its database file. May call: better-sqlite3, ./rpc-http.
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { RejectedError, intArg, serveRpc } from './rpc-http.js';

const { values } = parseArgs({
  options: {
    db: { type: 'string' }, port: { type: 'string', default: '0' }, synchronous: { type: 'string', default: 'FULL' },
    workload: { type: 'string', default: 'keynote' },
  },
});
if (values.db === undefined) throw new Error('sqlite-server: --db <file> is required');
if (!['FULL', 'NORMAL'].includes(values.synchronous!)) throw new Error('sqlite-server: --synchronous must be FULL or NORMAL');
if (!['keynote', 'general'].includes(values.workload!)) throw new Error('sqlite-server: --workload must be keynote or general');
const general = values.workload === 'general';

const db = new Database(values.db);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${values.synchronous}`);
if (general) {
  db.exec(`CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL,
    updated INTEGER NOT NULL)`);
  db.exec(`CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, "from" INTEGER NOT NULL,
    "to" INTEGER NOT NULL, amount INTEGER NOT NULL, at INTEGER NOT NULL)`);
} else {
  db.exec('CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)');
}
db.defaultSafeIntegers(true); // balances are i64: read them as bigint, never lose precision

const nowMicros = () => BigInt(Date.now()) * 1000n;
const getBalance = db.prepare<[number]>('SELECT balance FROM accounts WHERE id = ?');
// Untyped parameters: the two workloads' statements take different ones.
const addBalance = general
  ? db.prepare('UPDATE accounts SET balance = balance + ?, updated = ? WHERE id = ?')
  : db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const insertAudit = general
  ? db.prepare<[number, number, bigint, bigint]>('INSERT INTO audit ("from", "to", amount, at) VALUES (?, ?, ?, ?)')
  : undefined;
const insertAccount = general
  ? db.prepare('INSERT INTO accounts (id, owner, balance, updated) VALUES (?, ?, ?, ?)')
  : db.prepare('INSERT INTO accounts (id, balance) VALUES (?, ?)');
const totals = db.prepare('SELECT COUNT(*) AS accounts, COALESCE(SUM(balance), 0) AS total, MIN(balance) AS min FROM accounts');
const auditCount = general ? db.prepare('SELECT COUNT(*) AS n FROM audit') : undefined;

const transfer = db.transaction((from: number, to: number, amount: bigint) => {
  if (from === to) throw new RejectedError('same_account');
  if (amount <= 0n) throw new RejectedError('non_positive_amount');
  const fromRow = getBalance.get(from) as { balance: bigint } | undefined;
  const toRow = getBalance.get(to) as { balance: bigint } | undefined;
  if (fromRow === undefined || toRow === undefined) throw new RejectedError('account_missing');
  if (fromRow.balance < amount) throw new RejectedError('insufficient_funds');
  if (insertAudit === undefined) {
    addBalance.run(-amount, from);
    addBalance.run(amount, to);
    return;
  }
  const at = nowMicros();
  addBalance.run(-amount, at, from);
  addBalance.run(amount, at, to);
  insertAudit.run(from, to, amount, at);
});

const seed = db.transaction((n: number, initialBalance: bigint) => {
  db.exec('DELETE FROM accounts');
  if (!general) {
    for (let id = 0; id < n; id++) insertAccount.run(id, initialBalance);
    return;
  }
  db.exec('DELETE FROM audit');
  const at = nowMicros();
  for (let id = 0; id < n; id++) insertAccount.run(id, `owner-${id}`, initialBalance, at);
});

serveRpc(Number(values.port), {
  transfer: (args) => transfer(intArg(args, 'from'), intArg(args, 'to'), BigInt(intArg(args, 'amount'))),
  seed: (args) => seed(intArg(args, 'n'), BigInt(String(args.initialBalance))),
  check: () => {
    const row = totals.get() as { accounts: bigint; total: bigint; min: bigint | null };
    const auditRows = auditCount === undefined ? undefined : Number((auditCount.get() as { n: bigint }).n);
    return { accounts: Number(row.accounts), total: String(row.total), min: String(row.min ?? 0n), auditRows };
  },
});
