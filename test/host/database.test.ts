// Host: the Database object with real official-library modules — transactions, error classification, traps,
// lifecycle, argument validation, syscalls through the exchange buffer, the module log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, internalErrorMessage, type Caller } from '../../src/host/database.js';
import {
  BadArgumentsError, ConnectionRejectedError, NoSuchReducerError, PublishError, ReducerNotCallableError,
} from '../../src/host/errors.js';
import { fixtureBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };
const opts = { identity: 0xc200aan, ownerIdentity: 0xabn };

function messages(db: Database, n: number): string[] {
  return db.logs.tail(n).map((r) => r.message);
}

function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));
}

function rowCount(db: Database, table: string): number {
  const t = db.datastore.tableByName(table);
  assert.ok(t !== undefined, `table ${table}`);
  return db.datastore.rowCount(t.tableId);
}

test('basic: init, add, sayHello logs through console.info; commits return TxData', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-db-'));
  try {
    const db = await Database.create({ ...opts, dataDir: dir }, await fixtureBundle('basic'));
    const r = await db.callReducerJson('add', ['Alice'], alice);
    assert.equal(r.status, 'committed');
    assert.equal(r.status === 'committed' && r.txData.tables[0].tableName, 'person');
    assert.equal((await db.callReducerJson('add', { name: 'Bob' }, alice)).status, 'committed');
    assert.equal((await db.callReducerJson('say_hello', [], alice)).status, 'committed');
    assert.deepEqual(messages(db, 3), ['Hello, Alice!', 'Hello, Bob!', 'Hello, World!']);
    const last = db.logs.tail(1)[0];
    assert.equal(last.level, 'Info');
    assert.equal(last.filename, 'src/index.ts', 'log call sites are mapped through the source map');
    assert.equal(last.lineNumber, 29);
    await db.close();
    const lines = readFileSync(join(dir, 'module.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.at(-1).message, 'Hello, World!');
    assert.equal(lines.at(-1).level, 'Info');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing init fails the publish and leaves no files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-db-'));
  try {
    await assert.rejects(Database.create({ ...opts, dataDir: join(dir, 'db') }, await fixtureBundle('bad-init')),
      (err: unknown) => err instanceof PublishError && /init failed on purpose/.test(err.message));
    assert.equal(existsSync(join(dir, 'db')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SenderError fails with its message; a plain Error is internal and logged at Panic; both roll back', async () => {
  const db = await Database.create(opts, await fixtureBundle('runaway'));
  try {
    const refused = await db.callReducerJson('refuse', ['not today'], alice);
    assert.deepEqual(refused, { status: 'failed', message: 'not today' });
    const failed = await db.callReducerJson('fail', [], alice);
    assert.deepEqual(failed, { status: 'internal', message: internalErrorMessage });
    const panic = db.logs.tail(1)[0];
    assert.equal(panic.level, 'Panic');
    assert.match(panic.message, /plain error on purpose/);
    assert.match(panic.message, /at fail \(src\/index\.ts:27:9\)/, 'frames are mapped to the module source');
    assert.doesNotMatch(panic.message, /__call_reducer__/, 'the trace is cut at the library marker');
    assert.equal(rowCount(db, 'item'), 0, 'both inserts were rolled back');
  } finally {
    await db.close();
  }
});

test('an endless loop is stopped, rolled back, and the next call works', async () => {
  const db = await Database.create({ ...opts, limits: { reducerTimeoutMs: 200 } }, await fixtureBundle('runaway'));
  try {
    const r = await db.callReducerJson('spin', [], alice);
    assert.equal(r.status, 'internal');
    assert.match(r.status === 'internal' ? r.message : '', /exceeded its CPU time limit of 200 ms/);
    assert.equal(rowCount(db, 'item'), 0);
    assert.equal((await db.callReducerJson('add', ['after'], alice)).status, 'committed');
    assert.equal(rowCount(db, 'item'), 1);
  } finally {
    await db.close();
  }
});

test('a memory bomb is stopped, the isolate is recreated, and the database keeps serving', async () => {
  const db = await Database.create({ ...opts, limits: { memoryLimitMib: 64 } }, await fixtureBundle('runaway'));
  try {
    const r = await db.callReducerJson('hog', [], alice);
    assert.equal(r.status, 'internal');
    assert.match(r.status === 'internal' ? r.message : '', /exceeded its memory limit/);
    assert.equal(rowCount(db, 'item'), 0);
    assert.equal((await db.callReducerJson('add', ['after'], alice)).status, 'committed');
    assert.equal((await db.callReducerJson('refuse', ['still classified'], alice)).status, 'failed');
    assert.equal(rowCount(db, 'item'), 1);
  } finally {
    await db.close();
  }
});

test('auto_inc values are written back; unique violations raise UniqueAlreadyExists', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    await db.callReducerJson('add_user', ['a@x', 30], alice);
    await db.callReducerJson('add_user', ['b@x', 12], alice);
    assert.deepEqual(messages(db, 2), ['inserted id 1', 'inserted id 2']);
    await db.callReducerJson('catch_unique', ['c@x'], alice);
    assert.match(messages(db, 1)[0], /^caught UniqueAlreadyExists: /);
    const dup = await db.callReducerJson('dup_unique', ['d@x'], alice);
    assert.equal(dup.status, 'internal');
    assert.equal(rowCount(db, 'user'), 3, 'a@x, b@x, c@x (the first insert of catch_unique committed)');
    await db.callReducerJson('find_age', ['b@x'], alice);
    assert.equal(messages(db, 1)[0], 'age 12');
    assert.deepEqual(await db.callReducerJson('find_age', ['nobody'], alice), { status: 'failed', message: 'no user nobody' });
  } finally {
    await db.close();
  }
});

test('range scans, point deletes and clear', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    for (const [e, a] of [['a', 10], ['b', 20], ['c', 20], ['d', 30]] as const) await db.callReducerJson('add_user', [e, a], alice);
    await db.callReducerJson('range_count', [15, 30], alice);
    assert.equal(messages(db, 1)[0], 'range 2');
    await db.callReducerJson('delete_age', [20], alice);
    assert.equal(messages(db, 1)[0], 'deleted 2');
    assert.equal(rowCount(db, 'user'), 2);
    await db.callReducerJson('clear_notes', [], alice);
    assert.equal(messages(db, 1)[0], 'cleared 2');
  } finally {
    await db.close();
  }
});

test('scans larger than the exchange buffer come back whole; early-abandoned iterators are harmless', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    const n = 40, size = 64 * 1024; // 2.5 MiB of rows: several chunks
    assert.equal((await db.callReducerJson('fill_blobs', [n, size], alice)).status, 'committed');
    const r = await db.callReducerJson('check_blobs', [n, size], alice);
    assert.equal(r.status, 'committed', show(r));
    assert.equal(messages(db, 1)[0], `blobs ${n} ${n * size}`);
    assert.equal((await db.callReducerJson('early_break', [], alice)).status, 'committed');
    assert.equal(messages(db, 1)[0], 'left 0');
  } finally {
    await db.close();
  }
});

test('arguments and rows larger than the exchange buffer grow it', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    const size = 3 * 1024 * 1024;
    const args = new Uint8Array(4 + size);
    new DataView(args.buffer).setUint32(0, size, true);
    args.fill(7, 4);
    const r = await db.callReducer('big_args', args, alice);
    assert.equal(r.status, 'committed', show(r));
    assert.equal(messages(db, 1)[0], `big ${size}`);
  } finally {
    await db.close();
  }
});

test('identity, sender, connection id and JWT payload reach the module', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    const caller: Caller = { identity: 0x1234n, connectionId: 0x99n, jwtPayload: JSON.stringify({ sub: 'user-7', iss: 'test' }) };
    await db.callReducerJson('whoami', [], caller);
    const [who, jwt] = messages(db, 2);
    assert.equal(who, `db ${opts.identity.toString(16).padStart(64, '0')} sender ${(0x1234n).toString(16).padStart(64, '0')} ` +
      `conn ${(0x99n).toString(16).padStart(32, '0')}`);
    assert.equal(jwt, 'jwt user-7');
    await db.callReducerJson('whoami', [], { identity: 1n, connectionId: 0n, jwtPayload: undefined });
    assert.match(messages(db, 2)[0], / conn null$/);
  } finally {
    await db.close();
  }
});

test('console levels and timers map to log levels', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    await db.callReducerJson('levels', [], alice);
    const recs = db.logs.tail(6);
    assert.deepEqual(recs.slice(0, 5).map((r) => [r.level, r.message.split('\n')[0]]),
      [['Error', 'e'], ['Warn', 'w'], ['Info', 'l'], ['Debug', 'd'], ['Trace', 't']]);
    assert.match(recs[5].message, /^Timing span "span": /);
  } finally {
    await db.close();
  }
});

test('client calls: unknown reducer, lifecycle reducer, bad arguments are typed errors', async () => {
  const db = await Database.create(opts, await fixtureBundle('basic'));
  try {
    await assert.rejects(db.callReducerJson('nope', [], alice), NoSuchReducerError);
    await assert.rejects(db.callReducer('nope', new Uint8Array(0), alice), NoSuchReducerError);
    await assert.rejects(db.callReducerJson('init', [], alice), ReducerNotCallableError);
    await assert.rejects(db.callReducerJson('on_connect', [], alice), ReducerNotCallableError);
    await assert.rejects(db.callReducerJson('add', [42], alice), (e: unknown) => e instanceof BadArgumentsError && /name/.test(e.message));
    await assert.rejects(db.callReducerJson('add', [], alice), BadArgumentsError);
    await assert.rejects(db.callReducer('add', new Uint8Array([5, 0, 0, 0, 65]), alice), BadArgumentsError);
    await assert.rejects(db.callReducer('add', new Uint8Array([1, 0, 0, 0, 65, 0]), alice), BadArgumentsError);
    assert.equal((await db.callReducer('add', new Uint8Array([1, 0, 0, 0, 65]), alice)).status, 'committed');
  } finally {
    await db.close();
  }
});

test('client_connected failure rejects the connection; calls are serialized FIFO', async () => {
  const db = await Database.create(opts, await fixtureBundle('basic'));
  try {
    await db.clientConnected(alice);
    await db.clientDisconnected(alice);
    const results = await Promise.all(['x', 'y', 'z'].map((n) => db.callReducerJson('add', [n], alice)));
    assert.deepEqual(results.map((r) => r.status), ['committed', 'committed', 'committed']);
    const ts = results.map((r) => (r.status === 'committed' ? r.timestampMicros : 0n));
    assert.ok(ts[0] <= ts[1] && ts[1] <= ts[2]);
  } finally {
    await db.close();
  }
});

test('lifecycle: a rejected connection is rolled back; a failing disconnect hook still cleans up', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-lifecycle'));
  try {
    await db.clientConnected(alice);
    assert.equal(rowCount(db, 'seen'), 1);
    await assert.rejects(db.clientConnected({ identity: 0xbadn, connectionId: 5n, jwtPayload: undefined }),
      (e: unknown) => e instanceof ConnectionRejectedError && e.message === 'banned');
    assert.equal(rowCount(db, 'seen'), 1, 'the rejected connect was rolled back');
    await db.clientDisconnected(alice); // the hook throws; this must not
    assert.equal(rowCount(db, 'seen'), 1);
    assert.equal(db.logs.tail(1)[0].level, 'Panic');
  } finally {
    await db.close();
  }
});

test('onCommit listeners see each committed transaction with its caller and reducer', async () => {
  const db = await Database.create(opts, await fixtureBundle('basic'));
  try {
    const seen: string[] = [];
    const off = db.onCommit((e) => seen.push(`${e.reducer?.name}:${e.txData.tables.map((t) => t.inserts.length).join(',')}:${e.caller.identity}`));
    await db.callReducerJson('add', ['Ann'], alice);
    off();
    await db.callReducerJson('add', ['Ben'], alice);
    assert.deepEqual(seen, [`add:1:${alice.identity}`]);
  } finally {
    await db.close();
  }
});

test('sql: SELECT reads committed rows; owner DML commits and is announced', async () => {
  const db = await Database.create(opts, await fixtureBundle('basic'));
  try {
    await db.callReducerJson('add', ['Zed'], alice);
    const [sel] = await db.sql('SELECT * FROM person', alice);
    assert.deepEqual(sel.rows, [['Zed']]);
    const seen: number[] = [];
    db.onCommit((e) => seen.push(e.txData.tables[0].inserts.length));
    const owner: Caller = { identity: opts.ownerIdentity, connectionId: 0n, jwtPayload: undefined };
    await db.sql("INSERT INTO person (name) VALUES ('Yan')", owner);
    assert.deepEqual(seen, [1]);
    assert.equal(rowCount(db, 'person'), 2);
  } finally {
    await db.close();
  }
});
