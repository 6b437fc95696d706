// The HostedDatabase contract (server/host-api.ts): the same cases against every implementation — today's Database on
// this thread, and WorkerDatabase (host/worker/: the same Database in its own worker thread, behind messages). What
// the server relies on must not depend on where the database runs: results, error classes (routes map them to HTTP
// codes), logs, SQL, subscriptions through their port, reopening from files, and refusal after close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, type Caller } from '../../src/host/database.js';
import { WorkerDatabase } from '../../src/host/worker/proxy.js';
import {
  BadArgumentsError, ConnectionRejectedError, DatabaseClosedError, NoSuchReducerError, PublishError, ReducerNotCallableError,
} from '../../src/host/errors.js';
import { SqlError } from '../../src/sql/errors.js';
import type { CreateDatabaseOptions, HostedDatabase } from '../../src/server/host-api.js';
import { logRingRecordsMax } from '../../src/limits.js';
import { compileWithSql, existingSubscriptions, type ClientSink } from '../../src/subscription/manager.js';
import { subscriptionPortFor, type PortAnswer } from '../../src/subscription/port.js';
import { jsonAnswer, type JsonAnswer } from '../../src/subscription/v1-json.js';
import type { QuerySetUpdate, ServerMessage } from '../../src/subscription/messages.js';
import { fixtureBundle } from './bundle.js';

interface Impl {
  name: string;
  create(options: CreateDatabaseOptions, program: string): Promise<HostedDatabase>;
  open(options: CreateDatabaseOptions, program: string): Promise<HostedDatabase>;
}

const quiet = () => {};
const impls: Impl[] = [
  {
    name: 'in-thread Database',
    create: (o, p) => Database.create({ ...o, durability: 'none', report: quiet }, p),
    open: (o, p) => Database.open({ ...o, durability: 'none', report: quiet }, p),
  },
  {
    name: 'WorkerDatabase',
    create: (o, p) => WorkerDatabase.start({ mode: 'create', ...o, durability: 'none' }, p, quiet),
    open: (o, p) => WorkerDatabase.start({ mode: 'open', ...o, durability: 'none' }, p, quiet),
  },
];

const owner = 0xabn;
const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: '{"sub":"alice"}' };

/** A subscription client as a session is: it records what the port delivers, in order. */
function recordingSink() {
  const got: string[] = [];
  const sink: ClientSink = {
    transaction: (querySets: QuerySetUpdate[], isCaller: boolean) => { got.push(`tx:${isCaller ? 'caller' : 'other'}:${querySets.length}`); },
    querySetFailed: (id: number, error: string) => { got.push(`failed:${id}:${error}`); },
  };
  return { got, sink };
}

/** The answer a port gives once it is durable (binary-protocol encodings are not asked for here). */
function answer(ask: (done: PortAnswer) => void): Promise<ServerMessage | JsonAnswer> {
  return new Promise((resolve) => ask((m, d) => { void Promise.resolve(d).then(() => resolve(m as ServerMessage | JsonAnswer)); }));
}

/** PostgreSQL backend messages: type letter and body. */
function pgMessages(bytes: Uint8Array): { type: string; body: Buffer }[] {
  const b = Buffer.from(bytes);
  const out: { type: string; body: Buffer }[] = [];
  for (let at = 0; at < b.length;) {
    const length = b.readInt32BE(at + 1);
    out.push({ type: String.fromCharCode(b[at]), body: b.subarray(at + 5, at + 1 + length) });
    at += 1 + length;
  }
  return out;
}

for (const impl of impls) {
  test(`${impl.name}: calls, SQL, logs, errors, subscriptions, close and reopen`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hosted-contract-'));
    const options = { identity: 0xc0ffeen, ownerIdentity: owner, dir: join(dir, 'db') };
    const program = await fixtureBundle('basic');
    try {
      const db = await impl.create(options, program);
      assert.equal(db.identity, 0xc0ffeen);
      assert.equal(db.ownerIdentity, owner);
      assert.ok(db.moduleDefBytes().length > 0);
      assert.equal(db.reducerByName('add')?.name, 'add');
      assert.equal(db.reducerByName('nope'), undefined);
      assert.equal(db.schema.tables.some((t) => t.name === 'person'), true);
      assert.equal(typeof db.loggedProgramText(), 'string');

      await db.clientConnected(alice);
      const r = await db.callReducerJson('add', ['Alice'], alice);
      assert.equal(r.status, 'committed');
      const bsatnName = new Uint8Array([3, 0, 0, 0, 0x42, 0x6f, 0x62]); // "Bob"
      assert.equal((await db.callReducer('add', bsatnName, alice)).status, 'committed');
      assert.equal((await db.callReducerJson('say_hello', [], alice)).status, 'committed');
      assert.deepEqual(db.logs.tail(3).map((x) => x.message), ['Hello, Alice!', 'Hello, Bob!', 'Hello, World!']);
      assert.deepEqual([...db.logs.read(1)].map((x) => x.message), ['Hello, World!']);

      const rows = await db.sql('SELECT * FROM person', alice, { isOwner: false });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].rows.length, 2);
      const body = JSON.parse(new TextDecoder().decode(await db.sqlJson('SELECT * FROM person', alice, { isOwner: false })));
      assert.deepEqual(body.map((r: { rows: unknown[] }) => r.rows), [[['Alice'], ['Bob']]]);
      assert.deepEqual(body[0].schema, { elements: [{ name: { some: 'name' }, algebraic_type: { String: [] } }] });
      await assert.rejects(db.sqlJson('SELEKT nonsense', alice), SqlError);
      const pg = pgMessages(await db.sqlPg('SELECT * FROM person', alice, { isOwner: false }));
      assert.deepEqual(pg.map((m) => m.type).join(''), 'TDDC');
      assert.deepEqual(pg.slice(1, 3).map((m) => m.body.subarray(6).toString()), ['Alice', 'Bob']);
      assert.equal(pg[3].body.toString(), 'SELECT 2\0');
      await assert.rejects(db.sqlPg('SELEKT nonsense', alice), SqlError);

      await assert.rejects(db.callReducerJson('nope', [], alice), NoSuchReducerError);
      await assert.rejects(db.callReducerJson('add', [1, 2], alice), BadArgumentsError);
      await assert.rejects(db.callReducerJson('init', [], alice), ReducerNotCallableError);
      await assert.rejects(db.sql('SELEKT nonsense', alice), SqlError);
      let deep: unknown = 'x';
      for (let i = 0; i < 100_000; i++) deep = [deep];
      await assert.rejects(db.callReducerJson('add', [deep], alice), BadArgumentsError, 'arguments nested past what crosses a thread');

      // Subscriptions through the port the sessions use.
      const port = subscriptionPortFor(db, compileWithSql);
      const bob = recordingSink();
      const handle = port.addClient({ identity: 0x3333n, connectionId: 0x44n, isOwner: false }, bob.sink);
      const applied = await answer((done) => port.subscribe(handle, 1, 7, ['SELECT * FROM person'], done));
      assert.equal(applied.tag, 'SubscribeApplied');
      assert.equal(existingSubscriptions(db)?.clientCount, 1, 'GET /v1/metrics counts the client');
      assert.equal(applied.tag === 'SubscribeApplied' && applied.rows[0].rows.length, 2);
      const bad = await answer((done) => port.subscribe(handle, 2, 8, ['SELECT * FROM nowhere'], done));
      assert.equal(bad.tag, 'SubscriptionError');
      await db.callReducerJson('add', ['Carol'], alice);
      assert.deepEqual(bob.got, ['tx:other:1']);
      const oneOff = await answer((done) => port.oneOffQuery(handle, 3, 'SELECT * FROM person', done));
      assert.equal(oneOff.tag === 'OneOffQueryResult' && oneOff.result.ok && oneOff.result.rows[0].rows.length, 3);
      // A v1 JSON client's answers: rendered where they were decided (the worker), or by the session (in-thread).
      const carol = port.addClient({ identity: 0x5555n, connectionId: 0x46n, isOwner: false }, recordingSink().sink, 'JsonV1');
      for (const ask of [(done: PortAnswer) => port.oneOffQuery(carol, 4, 'SELECT * FROM person', done),
        (done: PortAnswer) => port.subscribe(carol, 5, 9, ['SELECT * FROM person'], done)]) {
        const raw = await answer(ask);
        if (impl.name === 'WorkerDatabase') assert.equal(raw.tag, 'JsonRows', 'rendered in the worker');
        const rendered = jsonAnswer(raw, db.datastore);
        assert.ok(rendered.tag === 'JsonRows');
        const [t] = rendered.tables;
        assert.deepEqual([t.table, t.count], ['person', 3]);
        const texts = JSON.parse(Buffer.from(rendered.bytes.subarray(t.start, t.end)).toString()) as string[];
        assert.deepEqual(texts, ['["Alice"]', '["Bob"]', '["Carol"]']);
      }
      port.removeClient(carol);
      port.removeClient(handle);
      assert.equal(existingSubscriptions(db)?.clientCount, 0);

      await db.clientDisconnected(alice);
      const snapshot = db.metricsSnapshot();
      assert.ok(snapshot.tables.some((t) => t.name === 'person'));
      await db.close();
      await assert.rejects(db.callReducerJson('add', ['late'], alice), DatabaseClosedError);

      const again = await impl.open(options, program);
      const after = await again.sql('SELECT * FROM person', alice, { isOwner: true });
      assert.equal(after[0].rows.length, 3, 'reopened from its files');
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${impl.name}: a failing init is a PublishError; a rejecting client_connected a ConnectionRejectedError`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hosted-contract-'));
    try {
      await assert.rejects(impl.create({ identity: 1n, ownerIdentity: owner, dir: join(dir, 'a') }, await fixtureBundle('bad-init')),
        (err: unknown) => err instanceof PublishError && /init failed on purpose/.test(err.message));
      const db = await impl.create({ identity: 2n, ownerIdentity: owner, dir: join(dir, 'b') }, await fixtureBundle('reject-connect'));
      try {
        await assert.rejects(db.clientConnected(alice), ConnectionRejectedError);
      } finally {
        await db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${impl.name}: logs.read serves the log files, rotations included, beyond the in-memory ring`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hosted-contract-'));
    const options = { identity: 0xc0ffeen, ownerIdentity: owner, dir: join(dir, 'db') };
    const program = await fixtureBundle('basic');
    try {
      await (await impl.create(options, program)).close();
      // Older history in a rotated file: more records than the ring holds when the database opens.
      const older = logRingRecordsMax + 500;
      let lines = '';
      for (let i = 0; i < older; i++) lines += `${JSON.stringify({ ts: i, level: 'Info', message: `old ${i}` })}\n`;
      appendFileSync(join(options.dir, 'module.log.1'), lines);
      const db = await impl.open(options, program);
      try {
        await db.callReducerJson('say_hello', [], alice);
        assert.equal(db.logs.tail().length, logRingRecordsMax, 'the ring holds only the newest records');
        const all = [...db.logs.read()].map((r) => r.message);
        assert.equal(all[0], 'old 0');
        assert.equal(all.at(-1), 'Hello, World!');
        assert.ok(all.length > older, `read() gave ${all.length} records`);
        const some = [...db.logs.read(older)].map((r) => r.message);
        assert.equal(some.length, older);
        assert.equal(some.at(-1), 'Hello, World!');
      } finally {
        await db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${impl.name}: subscriptions compile with compileWithSql; another compiler is used or refused, never ignored`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hosted-contract-'));
    try {
      const db = await impl.create({ identity: 3n, ownerIdentity: owner, dir: join(dir, 'c') }, await fixtureBundle('basic'));
      try {
        let used = 0;
        const counting: typeof compileWithSql = (...args) => { used++; return compileWithSql(...args); };
        let port;
        try {
          port = subscriptionPortFor(db, counting);
        } catch (err) {
          assert.match((err as Error).message, /compileWithSql only/);
          return;
        }
        const handle = port.addClient({ identity: 0x3333n, connectionId: 0x45n, isOwner: false }, recordingSink().sink);
        const applied = await answer((done) => port.subscribe(handle, 1, 1, ['SELECT * FROM person'], done));
        assert.equal(applied.tag, 'SubscribeApplied');
        assert.ok(used > 0, 'the injected compiler was used');
        port.removeClient(handle);
      } finally {
        await db.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
