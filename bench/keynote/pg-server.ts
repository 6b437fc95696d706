// Baseline B: Node HTTP/JSON RPC server over a `pg` Pool, the keynote's "Node + PostgreSQL" stack.
// Two variants:
//   serializable  (B1, keynote-faithful): BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT … FOR UPDATE both rows
//                 ordered by id; two UPDATEs; COMMIT — retried on 40001/40P01/55P03 with jittered backoff.
//   function      (B2, tuned): one round trip, `SELECT bench_transfer($1,$2,$3)`, a plpgsql function run in
//                 READ COMMITTED autocommit that locks both rows in id order; retried on deadlock only.
// `--workload general` runs the same transfer as apps write it: accounts also hold an `owner` text and an `updated`
// timestamptz (set to now() by each transfer), and each transfer inserts an audit row (identity id) in the same
// transaction; the check also counts audit rows. Setup drops and recreates the tables, so the workloads can take
// turns on one cluster.
// `--synchronous-commit off` (the relaxed variant) sets it on every pooled session: a commit is acknowledged before
// its WAL record is flushed, so a crash can lose the last acknowledged transfers (the database stays consistent).
// Usage: node --import tsx bench/keynote/pg-server.ts --pg-port <p> --pg-user <u> --pool <n> --variant <v>
//        [--synchronous-commit on|off] [--workload keynote|general] [--port 0]
// Owns its pool and the schema it creates. May call: pg, ./rpc-http.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { RejectedError, intArg, serveRpc } from './rpc-http.js';

/** Attempts of one transfer before it is reported as failed (the keynote's server used 10). */
const retryAttemptsMax = 10;
const retryBackoffMinMs = 5;
const retryBackoffMaxMs = 200;
/** SQLSTATEs worth retrying: serialization failure, deadlock, lock not available. */
const retryableCodes = new Set(['40001', '40P01', '55P03']);

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'pg-port': { type: 'string' },
    'pg-user': { type: 'string', default: 'bench' },
    pool: { type: 'string', default: '64' },
    variant: { type: 'string', default: 'serializable' },
    'synchronous-commit': { type: 'string', default: 'on' },
    workload: { type: 'string', default: 'keynote' },
  },
});
if (values['pg-port'] === undefined) throw new Error('pg-server: --pg-port is required');
const variant = values.variant!;
if (variant !== 'serializable' && variant !== 'function') throw new Error('pg-server: --variant must be serializable or function');

const workload = values.workload!;
if (workload !== 'keynote' && workload !== 'general') throw new Error('pg-server: --workload must be keynote or general');
const general = workload === 'general';

const synchronousCommit = values['synchronous-commit']!;
if (synchronousCommit !== 'on' && synchronousCommit !== 'off') throw new Error('pg-server: --synchronous-commit must be on or off');

const pool = new pg.Pool({
  host: '127.0.0.1', port: Number(values['pg-port']), user: values['pg-user'], database: 'postgres',
  max: Number(values.pool), options: `-c synchronous_commit=${synchronousCommit}`,
});

const lockBoth = { name: 'lock_both', text: 'SELECT id, balance FROM accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE' };
const addBalance = general
  ? { name: 'add_balance', text: 'UPDATE accounts SET balance = balance + $1, updated = now() WHERE id = $2' }
  : { name: 'add_balance', text: 'UPDATE accounts SET balance = balance + $1 WHERE id = $2' };
const insertAudit = { name: 'insert_audit', text: 'INSERT INTO audit ("from", "to", amount, at) VALUES ($1, $2, $3, now())' };
const callTransfer = { name: 'call_transfer', text: 'SELECT bench_transfer($1, $2, $3) AS code' };
/** bench_transfer's result codes, mapped to the same rejection messages as the other systems. */
const functionCodes = ['ok', 'same_account', 'account_missing', 'insufficient_funds', 'non_positive_amount'];

const schemaKeynote = ['CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL)'];
const schemaGeneral = [
  'CREATE TABLE accounts (id integer PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL, updated timestamptz NOT NULL)',
  `CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "from" integer NOT NULL, "to" integer NOT NULL,
    amount bigint NOT NULL, at timestamptz NOT NULL)`,
];

async function setupSchema(): Promise<void> {
  // The setting is per session: prove the pool's sessions really run with it before anything is measured.
  const { rows } = await pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
  if (rows[0].synchronous_commit !== synchronousCommit) {
    throw new Error(`pg-server: sessions run with synchronous_commit=${rows[0].synchronous_commit}, wanted ${synchronousCommit}`);
  }
  await pool.query('DROP TABLE IF EXISTS accounts, audit');
  for (const statement of general ? schemaGeneral : schemaKeynote) await pool.query(statement);
  const touch = general ? ', updated = now()' : '';
  await pool.query(`CREATE OR REPLACE FUNCTION bench_transfer(a integer, b integer, amt bigint) RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE fb bigint; n integer;
    BEGIN
      IF a = b THEN RETURN 1; END IF;
      IF amt <= 0 THEN RETURN 4; END IF;
      SELECT count(*) INTO n FROM (SELECT id FROM accounts WHERE id IN (a, b) ORDER BY id FOR UPDATE) locked;
      IF n <> 2 THEN RETURN 2; END IF;
      SELECT balance INTO fb FROM accounts WHERE id = a;
      IF fb < amt THEN RETURN 3; END IF;
      UPDATE accounts SET balance = balance - amt${touch} WHERE id = a;
      UPDATE accounts SET balance = balance + amt${touch} WHERE id = b;
      ${general ? 'INSERT INTO audit ("from", "to", amount, at) VALUES (a, b, amt, now());' : ''}
      RETURN 0;
    END $$`);
}

async function transferSerializable(from: number, to: number, amount: number): Promise<void> {
  if (from === to) throw new RejectedError('same_account');
  if (amount <= 0) throw new RejectedError('non_positive_amount');
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
    try {
      const { rows } = await client.query<{ id: number; balance: string }>({ ...lockBoth, values: [from, to] });
      if (rows.length !== 2) throw new RejectedError('account_missing');
      const fromRow = rows[0].id === from ? rows[0] : rows[1];
      if (BigInt(fromRow.balance) < BigInt(amount)) throw new RejectedError('insufficient_funds');
      await client.query({ ...addBalance, values: [-amount, from] });
      await client.query({ ...addBalance, values: [amount, to] });
      if (general) await client.query({ ...insertAudit, values: [from, to, amount] });
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    }
  } finally {
    client.release();
  }
}

async function transferFunction(from: number, to: number, amount: number): Promise<void> {
  const { rows } = await pool.query<{ code: number }>({ ...callTransfer, values: [from, to, amount] });
  const code = rows[0].code;
  if (code !== 0) throw new RejectedError(functionCodes[code] ?? `code ${code}`);
}

async function withRetry(run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === undefined || !retryableCodes.has(code) || attempt >= retryAttemptsMax) throw err;
      const capMs = Math.min(retryBackoffMaxMs, retryBackoffMinMs * 2 ** attempt);
      await new Promise((r) => setTimeout(r, retryBackoffMinMs + Math.random() * (capMs - retryBackoffMinMs)));
    }
  }
}

const transfer = variant === 'serializable' ? transferSerializable : transferFunction;

await setupSchema();
serveRpc(Number(values.port), {
  transfer: (args) => {
    const from = intArg(args, 'from');
    const to = intArg(args, 'to');
    const amount = intArg(args, 'amount');
    return withRetry(() => transfer(from, to, amount));
  },
  seed: async (args) => {
    const n = intArg(args, 'n');
    const initialBalance = String(args.initialBalance);
    if (general) {
      await pool.query('TRUNCATE accounts, audit RESTART IDENTITY');
      await pool.query(`INSERT INTO accounts SELECT g, 'owner-' || g, $2::bigint, now()
        FROM generate_series(0, $1::integer - 1) g`, [n, initialBalance]);
      await pool.query('VACUUM ANALYZE accounts, audit');
    } else {
      await pool.query('TRUNCATE accounts');
      await pool.query('INSERT INTO accounts SELECT g, $2::bigint FROM generate_series(0, $1::integer - 1) g', [n, initialBalance]);
      await pool.query('VACUUM ANALYZE accounts');
    }
  },
  check: async () => {
    const { rows } = await pool.query<{ accounts: string; total: string; min: string | null }>(
      'SELECT count(*) AS accounts, COALESCE(sum(balance), 0) AS total, min(balance) AS min FROM accounts');
    const auditRows = general ? Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM audit')).rows[0].n) : undefined;
    return { accounts: Number(rows[0].accounts), total: rows[0].total, min: rows[0].min ?? '0', auditRows };
  },
});
