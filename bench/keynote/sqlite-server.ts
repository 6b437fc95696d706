// Baseline C: Node HTTP/JSON RPC server over better-sqlite3 (one process, one connection), the keynote's
// "Node + SQLite" stack. WAL journal, synchronous=FULL by default (acks only after the WAL is fsynced), every
// transfer is prepared statements inside `db.transaction`.
// Usage: node --import tsx bench/keynote/sqlite-server.ts --db <file> [--port 0] [--synchronous FULL|NORMAL]
// Owns its database file. May call: better-sqlite3, ./rpc-http.
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { RejectedError, intArg, serveRpc } from './rpc-http.js';

const { values } = parseArgs({
  options: { db: { type: 'string' }, port: { type: 'string', default: '0' }, synchronous: { type: 'string', default: 'FULL' } },
});
if (values.db === undefined) throw new Error('sqlite-server: --db <file> is required');
if (!['FULL', 'NORMAL'].includes(values.synchronous!)) throw new Error('sqlite-server: --synchronous must be FULL or NORMAL');

const db = new Database(values.db);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${values.synchronous}`);
db.exec('CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)');
db.defaultSafeIntegers(true); // balances are i64: read them as bigint, never lose precision

const getBalance = db.prepare<[number]>('SELECT balance FROM accounts WHERE id = ?');
const addBalance = db.prepare<[bigint, number]>('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const insertAccount = db.prepare<[number, bigint]>('INSERT INTO accounts (id, balance) VALUES (?, ?)');
const totals = db.prepare('SELECT COUNT(*) AS accounts, COALESCE(SUM(balance), 0) AS total, MIN(balance) AS min FROM accounts');

const transfer = db.transaction((from: number, to: number, amount: bigint) => {
  if (from === to) throw new RejectedError('same_account');
  if (amount <= 0n) throw new RejectedError('non_positive_amount');
  const fromRow = getBalance.get(from) as { balance: bigint } | undefined;
  const toRow = getBalance.get(to) as { balance: bigint } | undefined;
  if (fromRow === undefined || toRow === undefined) throw new RejectedError('account_missing');
  if (fromRow.balance < amount) throw new RejectedError('insufficient_funds');
  addBalance.run(-amount, from);
  addBalance.run(amount, to);
});

const seed = db.transaction((n: number, initialBalance: bigint) => {
  db.exec('DELETE FROM accounts');
  for (let id = 0; id < n; id++) insertAccount.run(id, initialBalance);
});

serveRpc(Number(values.port), {
  transfer: (args) => transfer(intArg(args, 'from'), intArg(args, 'to'), BigInt(intArg(args, 'amount'))),
  seed: (args) => seed(intArg(args, 'n'), BigInt(String(args.initialBalance))),
  check: () => {
    const row = totals.get() as { accounts: bigint; total: bigint; min: bigint | null };
    return { accounts: Number(row.accounts), total: String(row.total), min: String(row.min ?? 0n) };
  },
});
