// PostgreSQL wire protocol (issue 15 item 6; docs/pgwire.md): a real `spacetime start --pg-port` process, Debian's
// real `psql`, the `pg` npm client and raw sockets. Checks the startup and token authentication, every column type of
// the alltypes fixture against `spacetime sql`, DML permissions, the errors upstream gives, the extended-protocol
// refusal, and that bad bytes close only the connection that sent them.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseJson } from '../../src/sats/json.js';
import { cleanupTempDirs, freePort, makeTempDir, repoRoot, runCli, tempConfigPath } from '../harness.js';

const startupTimeoutMs = 1_500;
let child: ChildProcess;
let url: string;
let pgPort: number;
let configPath: string;
let ownerToken: string;
let otherToken: string;
let serverLog = '';

async function cli(args: string[]) {
  return runCli(args, { configPath });
}

before(async () => {
  const port = await freePort();
  pgPort = await freePort();
  url = `http://127.0.0.1:${port}`;
  const dataDir = makeTempDir('stdb-pg-');
  child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'spacetime.js'), '--config-path', path.join(dataDir, 'srv.toml'),
    'start', '--listen-addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--pg-port', String(pgPort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SPACETIME_PG_STARTUP_TIMEOUT_MS: String(startupTimeoutMs) },
  });
  child.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/v1/ping`).then((r) => r.ok, () => false);
    if (up) break;
    assert.ok(i < 400 && child.exitCode === null, `server did not start:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  configPath = tempConfigPath();
  const pub = await cli(['publish', '-s', url, '-p', 'test/fixtures/modules/alltypes', '-y', 'alltypes']);
  assert.equal(pub.code, 0, pub.stderr);
  const show = await cli(['login', 'show', '--token']);
  ownerToken = /token \(don't share this!\) is (\S+)/.exec(show.stdout)![1];
  const minted = await fetch(`${url}/v1/identity`, { method: 'POST' });
  otherToken = ((await minted.json()) as { token: string }).token;
});

after(async () => {
  if (child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  cleanupTempDirs();
});

/** Runs Debian's psql: unaligned, tuples only, `|` between fields. */
function psql(database: string, password: string, sql: string, extra: string[] = []): { code: number; stdout: string; stderr: string } {
  const out = spawnSync('psql', [`host=127.0.0.1 port=${pgPort} user=postgres dbname=${database}`, '-X', '-A', '-t', '-F', '|', ...extra, '-c', sql], {
    env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: out.status ?? -1, stdout: out.stdout, stderr: out.stderr };
}

function pgClient(password = ownerToken, database = 'alltypes'): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', database, password });
}

/** A raw connection; collects every byte the server sends and resolves `closed` when the server ends it. */
function rawConnection(): { socket: Socket; received: () => Buffer; closed: Promise<void> } {
  const socket = connect(pgPort, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

function startupPacket(parameters: Record<string, string>): Buffer {
  const body = Buffer.concat([
    Buffer.from([0, 3, 0, 0]),
    ...Object.entries(parameters).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)),
    Buffer.from([0]),
  ]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([length, body]);
}

function typed(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** The SQLSTATE and message of the first ErrorResponse in `bytes`. */
function firstError(bytes: Buffer): { code: string; message: string } | undefined {
  for (let at = 0; at + 5 <= bytes.length;) {
    const type = String.fromCharCode(bytes[at]);
    const length = bytes.readInt32BE(at + 1);
    if (type === 'E') {
      const fields = new Map<string, string>();
      for (const part of bytes.subarray(at + 5, at + 1 + length).toString('utf8').split('\0')) {
        if (part.length > 0) fields.set(part[0], part.slice(1));
      }
      return { code: fields.get('C')!, message: fields.get('M')! };
    }
    at += 1 + length;
  }
  return undefined;
}

/** A /sql JSON value as decimal text: 256-bit integers arrive as (signed) hex strings, as upstream sends them. */
function decimal(value: unknown): string {
  const hex = typeof value === 'string' ? /^(-?)0x([0-9a-f]+)$/i.exec(value) : null;
  if (hex === null) return String(value);
  return String((hex[1] === '-' ? -1n : 1n) * BigInt(`0x${hex[2]}`));
}

async function assertStillServing(): Promise<void> {
  const out = psql('alltypes', ownerToken, "SELECT key FROM every WHERE key = 'second'");
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, 'second\n');
}

describe('psql', () => {
  test('every column type of alltypes, cell for cell against `spacetime sql`', async () => {
    const query = "SELECT * FROM every WHERE key = 'second'";
    const out = psql('alltypes', ownerToken, query);
    assert.equal(out.code, 0, out.stderr);
    const cells = out.stdout.trimEnd().split('|');
    const sql = await cli(['sql', '-s', url, 'alltypes', query, '--format', 'json']);
    assert.equal(sql.code, 0, sql.stderr);
    // parseJson keeps the 128/256-bit integers exact.
    const [statement] = parseJson(sql.stdout) as { schema: { elements: { name: { some: string } }[] }; rows: unknown[][] }[];
    const names = statement.schema.elements.map((e) => e.name.some);
    const json = Object.fromEntries(names.map((n, i) => [n, statement.rows[0][i]]));
    const pgCells = Object.fromEntries(names.map((n, i) => [n, cells[i]]));
    assert.equal(cells.length, names.length, out.stdout);
    // Numbers and strings: the same text as the JSON value.
    for (const name of ['id', 'i_8', 'i_16', 'i_32', 'i_64', 'i_128', 'i_256', 'u_8', 'u_16', 'u_32', 'u_64', 'u_128', 'u_256', 'f_32', 'f_64', 'key', 'text']) {
      assert.equal(pgCells[name], decimal(json[name]), name);
    }
    const ownerHex = (json.who as [string])[0].replace(/^0x/, '');
    assert.deepEqual(pgCells, {
      ...pgCells,
      flag: 't', // bool as PostgreSQL text
      bytes: '\\x020304', // bytea hex
      words: '{alpha,w2}', // varchar[]
      maybe: '{"some": 2}', // Option as upstream's JSON
      point: '{"x": 2, "y": -2}',
      color: 'green', // simple enum: the variant name (camelCase, as upstream's validated typespace names it)
      shape: '{"circle": 3}',
      who: `\\x${ownerHex}`, // Identity as bytea, big-endian
      conn: `\\x${'0'.repeat(32)}`,
      at: '1970-01-01T00:00:00+00:00', // Timestamp as RFC 3339
      span: 'PT2S', // TimeDuration as ISO 8601
      uuid: '01234567-89ab-cdef-0123-456789abcdf1',
      when: '{"Interval": {"__time_duration_micros__": "PT0.002S"}}',
    });
    assert.match(ownerHex, /^c200[0-9a-f]{60}$/);
    const text = await cli(['sql', '-s', url, 'alltypes', query]);
    assert.match(text.stdout, new RegExp(`0x${ownerHex}`), 'spacetime sql shows the same identity');
  });

  test('column type OIDs as upstream maps them (pg client RowDescription)', async () => {
    const client = pgClient();
    await client.connect();
    try {
      const result = await client.query("SELECT * FROM every WHERE key = 'first'");
      const oids = Object.fromEntries(result.fields.map((f) => [f.name, f.dataTypeID]));
      assert.deepEqual(oids, {
        id: 20, key: 1043, flag: 16, i_8: 21, i_16: 21, i_32: 23, i_64: 20, i_128: 1700, i_256: 1700,
        u_8: 21, u_16: 23, u_32: 20, u_64: 1700, u_128: 1700, u_256: 1700, f_32: 700, f_64: 701, text: 1043,
        bytes: 17, words: 1015, maybe: 114, point: 114, color: 3500, shape: 114, who: 17, conn: 17, at: 1114,
        span: 1186, uuid: 2950, when: 114,
      });
      assert.equal(result.command, 'SELECT');
      assert.equal(result.rowCount, 1);
      assert.deepEqual(result.rows[0].words, ['alpha', 'w1'], 'array text parses as a PostgreSQL array');
      assert.equal(result.rows[0].flag, false);
    } finally {
      await client.end();
    }
  });

  test('DML as the owner: upstream stats tag; refused for another identity', () => {
    const update = psql('alltypes', ownerToken, "UPDATE every SET text = 'changed' WHERE key = 'first'", ['-e']);
    assert.equal(update.code, 0, update.stderr);
    assert.match(update.stdout, /^updated: 1, server: \d+\.\d\d(ns|µs|ms|s)$/m);
    assert.equal(psql('alltypes', ownerToken, "SELECT text FROM every WHERE key = 'first'").stdout, 'changed\n');

    const refused = psql('alltypes', otherToken, "DELETE FROM every WHERE key = 'first'");
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /ERROR: {2}\(Sql\) /);
    assert.equal(psql('alltypes', otherToken, "SELECT text FROM every WHERE key = 'first'").stdout, 'changed\n',
      'the non-owner may read, and its DELETE changed nothing');
  });

  test('multiple statements in one query; empty query; SQL errors keep the session', () => {
    const both = psql('alltypes', ownerToken, "SELECT u_8 FROM every WHERE key = 'second'; SELECT key FROM every WHERE u_8 = 2");
    assert.equal(both.code, 0, both.stderr);
    assert.equal(both.stdout, '2\nsecond\n');
    const empty = psql('alltypes', ownerToken, '');
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, '');
    const bad = psql('alltypes', ownerToken, 'SELECT * FROM no_such_table');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /ERROR: {2}\(Sql\) .*no_such_table/);
  });

  test('unknown database: FATAL 3D000; bad password: FATAL 28P01 "Invalid token"', () => {
    const missing = psql('nope', ownerToken, 'SELECT 1');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /FATAL: {2}database "nope" does not exist/);
    const bad = psql('alltypes', 'not-a-token', 'SELECT 1');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /FATAL: {2}Invalid token/);
  });
});

describe('pg npm client', () => {
  test('plain queries work; a parameterized query gets 0A000 and the connection stays usable', async () => {
    const client = pgClient();
    await client.connect();
    try {
      const plain = await client.query("SELECT key, u_256 FROM every WHERE key = 'second'");
      assert.deepEqual(plain.rows, [{ key: 'second', u_256: '2' + '0'.repeat(60) }]);
      await assert.rejects(client.query('SELECT * FROM every WHERE u_8 = $1', [2]), (error: Error & { code?: string }) => {
        assert.equal(error.code, '0A000');
        assert.match(error.message, /extended query protocol \(Parse\) is not supported/);
        return true;
      });
      const again = await client.query("SELECT u_8 FROM every WHERE key = 'second'");
      assert.deepEqual(again.rows, [{ u_8: 2 }]);
    } finally {
      await client.end(); // Terminate
    }
    await assertStillServing();
  });

  test('bad token is refused with 28P01', async () => {
    const client = pgClient('garbage');
    await assert.rejects(client.connect(), (error: Error & { code?: string }) => {
      assert.equal(error.code, '28P01');
      return true;
    });
  });
});

describe('bad bytes close only that connection', () => {
  test('SSLRequest is answered N; a startup without a database is refused', async () => {
    const conn = rawConnection();
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8);
    ssl.writeInt32BE(80877103, 4);
    conn.socket.write(ssl);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(conn.received().toString('latin1'), 'N');
    conn.socket.write(startupPacket({ user: 'postgres' }));
    await conn.closed;
    assert.equal(firstError(conn.received().subarray(1))?.message, 'Database name is required');
  });

  test('garbage, an oversized length and an unknown message type each get an ErrorResponse; others keep working', async () => {
    const http = rawConnection();
    http.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await http.closed;
    assert.match(firstError(http.received())?.message ?? '', /startup packet of \d+ bytes is larger than the limit/);

    const garbage = rawConnection();
    garbage.socket.write(Buffer.from([0, 0, 0, 2, 0xde, 0xad]));
    await garbage.closed;
    assert.deepEqual(firstError(garbage.received()), { code: '08P01', message: 'invalid length 2 in startup packet' });

    const huge = rawConnection();
    const length = Buffer.alloc(4);
    length.writeInt32BE(0x7fffffff);
    huge.socket.write(length);
    await huge.closed;
    assert.match(firstError(huge.received())?.message ?? '', /larger than the limit of 1048576 bytes/);

    const session = rawConnection();
    session.socket.write(startupPacket({ user: 'postgres', database: 'alltypes' }));
    await new Promise((r) => setTimeout(r, 100));
    session.socket.write(typed('p', Buffer.from(`${ownerToken}\0`)));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(session.received().includes(Buffer.from('Z\0\0\0\x05I', 'latin1')), 'authenticated and ready');
    session.socket.write(typed('\x01', Buffer.from('junk')));
    await session.closed;
    assert.match(firstError(session.received())?.message ?? '', /invalid frontend message type 1/);
    await assertStillServing();
  });

  test('a connection that never authenticates is closed after the startup limit', async () => {
    const idle = rawConnection();
    const started = Date.now();
    await idle.closed;
    assert.ok(Date.now() - started >= startupTimeoutMs - 100);
    assert.equal(firstError(idle.received())?.code, '08006');
    await assertStillServing();
  });

  test('the open-connection limit answers 53300 and frees up when connections close', async () => {
    const held = await Promise.all(Array.from({ length: 256 }, () => new Promise<Socket>((resolve) => {
      const s = connect(pgPort, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    })));
    const extra = rawConnection();
    await extra.closed;
    assert.equal(firstError(extra.received())?.code, '53300');
    await Promise.all(held.map((s) => new Promise<void>((resolve) => { s.once('close', () => resolve()); s.destroy(); })));
    await new Promise((r) => setTimeout(r, 100));
    await assertStillServing();
  });
});
