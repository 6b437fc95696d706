// Module updates on a real in-memory Database with official-library fixture modules (test/fixtures/modules/migrate-*):
// planning (§3 rules), the row rewrite, rollback on failure, the swap of reducers and the module-change event.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { Database, type Caller } from '../../src/host/database.js';
import { planMigration, formatPlan, migrateDatastore, migrationChunkRows, MigrationError } from '../../src/datastore/migrate.js';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import type { DatabaseSchema } from '../../src/datastore/types.js';
import { UpdateRejectedError } from '../../src/host/update.js';
import { buildFixture } from '../harness.js';

const owner: Caller = { identity: 0xc200n, connectionId: 0n, jwtPayload: undefined };
const code: Record<string, string> = {};
const variants = ['migrate-v1', 'migrate-compatible', 'migrate-add-column', 'migrate-manual', 'migrate-unique',
  'migrate-remove-spare', 'migrate-throws'];

before(async () => {
  for (const v of variants) code[v] = (await buildFixture(v)).code;
});

let nextId = 1n;
async function freshDb(): Promise<Database> {
  return Database.create({ identity: 0xc200_0000n + nextId++, ownerIdentity: owner.identity }, code['migrate-v1']);
}

async function rows(db: Database, query: string): Promise<unknown[][]> {
  const [result] = await db.sql(query, owner, { isOwner: true });
  return result.rows.map((r) => r as unknown[]);
}

async function call(db: Database, reducer: string, args: unknown[] = []): Promise<void> {
  const r = await db.callReducerJson(reducer, args, owner);
  assert.equal(r.status, 'committed', `${reducer}: ${(r as { message?: string }).message} ${logText(db)}`);
}

function logText(db: Database): string {
  return db.logs.tail().map((r) => r.message).join('\n');
}

function schemaOf(db: Database): { schema: DatabaseSchema; def: Database['moduleDef'] } {
  return { schema: db.schema, def: db.moduleDef };
}

test('compatible update: rows kept, new table, appended variant, index, access change; no client break', async () => {
  const db = await freshDb();
  await call(db, 'add', ['alice']);
  await call(db, 'add', ['bob']);
  const events: boolean[] = [];
  db.onModuleChange((c) => events.push(c.breaksClients));
  const plan = await db.planUpdate(code['migrate-compatible']);
  assert.equal(plan.kind, 'auto');
  assert.ok(plan.kind === 'auto' && !plan.plan.breaksClients);
  const text = plan.kind === 'auto' ? plan.planText : '';
  assert.match(text, /^━{60}\nDatabase Migration Plan\n━{60}\n\n/);
  assert.match(text, /▸ Created user table: pet \(public\)/);
  assert.match(text, /▸ Created index person_name_idx_btree on \[name\] of table person/);
  assert.match(text, /▸ Changed access for table spare \(private → public\)/);
  assert.match(text, /▸ Changed columns for table person\n  ~ Modified: kind/);
  assert.doesNotMatch(text, /Warning/);

  const result = await db.update(code['migrate-compatible'], { breakClients: false });
  assert.equal(result.plan.breaksClients, false);
  assert.deepEqual(events, [false]);
  assert.deepEqual((await rows(db, 'SELECT name FROM person')).map((r) => r[0]), ['alice', 'bob']);
  await call(db, 'addPet', ['cat']);
  await call(db, 'add', ['carol']);
  // The sequence continues where it was (no reissued ids).
  assert.deepEqual((await rows(db, 'SELECT id FROM person')).map((r) => r[0]), [1, 2, 3]);
  assert.equal((await rows(db, 'SELECT * FROM pet')).length, 1);
  await call(db, 'whoami');
  const log = logText(db);
  assert.match(log, /Creating table `pet`/);
  assert.match(log, /Updated program to [0-9a-f]{64}/);
  assert.match(log, /Database updated/);
  assert.match(log, /module compatible with 3 people/);
  assert.doesNotMatch(log, /Disconnecting all users/);
  await db.close();
});

test('adding defaulted columns breaks clients: refused under Compatible, applied with BreakClients, rows get defaults', async () => {
  const db = await freshDb();
  await call(db, 'add', ['Robert']);
  const plan = await db.planUpdate(code['migrate-add-column']);
  assert.ok(plan.kind === 'auto' && plan.plan.breaksClients);
  assert.match(plan.kind === 'auto' ? plan.planText : '', /▸ Created column\(s\) in table person\n  \+ age: U32 \(default: 0\)\n  \+ mass: U32 \(default: 19\)/);
  assert.match(plan.kind === 'auto' ? plan.planText : '', /!!! Warning: All clients will be disconnected due to breaking schema changes\n$/);
  await assert.rejects(db.update(code['migrate-add-column'], { breakClients: false }), UpdateRejectedError);
  assert.deepEqual(await rows(db, 'SELECT * FROM person'), [[1, 'Robert', { tag: 0, value: [] }]].map((r) => rowsShape(r)));
  const events: boolean[] = [];
  db.onModuleChange((c) => events.push(c.breaksClients));
  await db.update(code['migrate-add-column'], { breakClients: true });
  assert.deepEqual(events, [true]);
  const after = await rows(db, 'SELECT name, age, mass FROM person');
  assert.deepEqual(after, [['Robert', 0, 19]]);
  await call(db, 'add', ['Ann']);
  assert.deepEqual(await rows(db, 'SELECT name, age, mass FROM person WHERE name = \'Ann\''), [['Ann', 7, 70]]);
  assert.match(logText(db), /Disconnecting all users/);
  await db.close();
});

/** Rows as the sql layer returns them (positional values); used only to compare shapes loosely. */
function rowsShape(r: unknown[]): unknown[] { return r; }

test('a change needing a manual migration is refused with reasons naming table and column; the old module serves', async () => {
  const db = await freshDb();
  await call(db, 'add', ['alice']);
  const plan = await db.planUpdate(code['migrate-manual']);
  assert.equal(plan.kind, 'manual');
  const reason = plan.kind === 'manual' ? plan.reason : '';
  assert.match(reason, /Adding a column secret to table person requires a default value annotation/);
  assert.match(reason, /Removing a column text from table note requires a manual migration/);
  await assert.rejects(db.update(code['migrate-manual'], { breakClients: true }),
    (e: unknown) => e instanceof UpdateRejectedError && /Database update rejected: .*secret/s.test(e.message));
  await call(db, 'whoami');
  assert.match(logText(db), /module v1 with 1 people/);
  assert.match(logText(db), /Database update failed: Database update rejected/);
  await db.close();
});

test('adding a unique constraint over duplicate rows rolls back; after removing the duplicate it applies', async () => {
  const db = await freshDb();
  await call(db, 'add', ['alice']);
  await call(db, 'add', ['alice']);
  await call(db, 'add', ['bob']);
  await assert.rejects(db.update(code['migrate-unique'], { breakClients: false }),
    (e: unknown) => e instanceof UpdateRejectedError &&
      /Cannot add unique constraint person_name_key on table `person` \[name\]: 1 duplicate group\(s\) found\./.test(e.message));
  await call(db, 'whoami');
  assert.match(logText(db), /module v1 with 3 people/);
  await db.sql('DELETE FROM person WHERE id = 2', owner, { isOwner: true });
  await db.update(code['migrate-unique'], { breakClients: false });
  await call(db, 'whoami');
  assert.match(logText(db), /module unique with 2 people/);
  const r = await db.callReducerJson('add', ['alice'], owner);
  assert.equal(r.status, 'internal'); // the unique constraint now holds
  await db.close();
});

test('removing a table: refused while it has rows, applied (client-breaking) once empty', async () => {
  const db = await freshDb();
  await db.sql('INSERT INTO spare (x) VALUES (5)', owner, { isOwner: true });
  await assert.rejects(db.update(code['migrate-remove-spare'], { breakClients: true }),
    (e: unknown) => e instanceof UpdateRejectedError && /Cannot remove table `spare`: table contains data/.test(e.message));
  assert.equal((await rows(db, 'SELECT * FROM spare')).length, 1);
  await db.sql('DELETE FROM spare', owner, { isOwner: true });
  const result = await db.update(code['migrate-remove-spare'], { breakClients: true });
  assert.match(result.planText, /▸ Removed table: spare/);
  assert.match(logText(db), /Dropping table `spare`/);
  await db.close();
});

test('a new module that throws while loading changes nothing', async () => {
  const db = await freshDb();
  await call(db, 'add', ['alice']);
  await assert.rejects(db.update(code['migrate-throws'], { breakClients: true }), /fails to load on purpose/);
  await call(db, 'whoami');
  assert.match(logText(db), /module v1 with 1 people/);
  assert.match(logText(db), /Database update failed: .*fails to load on purpose/);
  await db.close();
});

test('updates chain; going back would drop an enum variant (refused); init never runs on update', async () => {
  const db = await freshDb();
  await call(db, 'add', ['x']);
  await db.update(code['migrate-compatible'], { breakClients: false });
  await assert.rejects(db.update(code['migrate-v1'], { breakClients: true }),
    /Changing the type of column kind in table person from Sum\{student \| professor\} to Sum\{student\} requires a manual migration \(fewer variants\)/);
  await call(db, 'whoami');
  assert.match(logText(db), /module compatible with 1 people/);
  await db.close();
});

test('planning rules on schemas: enum variant removal, reorder, event flag, sequences', async () => {
  const db = await freshDb();
  const v1 = schemaOf(db);
  const clone = (): DatabaseSchema => buildDatabaseSchema(db.moduleDef);
  // Reordering person's columns.
  const reordered = clone();
  const p = reordered.tables.find((t) => t.name === 'person')!;
  p.columns = [p.columns[1], p.columns[0], p.columns[2]];
  let r = planMigration(v1, { schema: reordered, def: db.moduleDef });
  assert.ok(r.kind === 'manual' && r.reasons.some((x) => x === 'Reordering table person requires a manual migration'));
  // Toggling the event flag.
  const evented = clone();
  evented.tables.find((t) => t.name === 'note')!.isEvent = true;
  r = planMigration(v1, { schema: evented, def: db.moduleDef });
  assert.ok(r.kind === 'manual' && r.reasons.includes('Changing the event flag of table note requires a manual migration'));
  // Changing a column type.
  const retyped = clone();
  retyped.tables.find((t) => t.name === 'note')!.columns[0].type = { tag: 'U32' };
  r = planMigration(v1, { schema: retyped, def: db.moduleDef });
  assert.ok(r.kind === 'manual' && /Changing the type of column text in table note from String to U32/.test(r.reasons[0]));
  // Removing auto_inc and the primary key: automatic.
  const loose = clone();
  const lp = loose.tables.find((t) => t.name === 'person')!;
  lp.sequences = [];
  lp.primaryKey = undefined;
  lp.uniqueConstraints = [];
  r = planMigration(v1, { schema: loose, def: db.moduleDef });
  assert.equal(r.kind, 'auto');
  const text = r.kind === 'auto' ? formatPlan(r.plan) : '';
  assert.match(text, /Removed auto-increment constraint person_id_seq/);
  assert.match(text, /Changed primary key on table person \(removed\)/);
  // Steps come out in upstream's execution order (removes first).
  assert.ok(text.indexOf('Removed unique constraint') < text.indexOf('Changed primary key'));
  // Adding auto_inc over existing values in range fails the precheck.
  await call(db, 'add', ['a']);
  const seq = clone();
  const note = seq.tables.find((t) => t.name === 'spare')!;
  note.sequences = [{ name: 'spare_x_seq', column: 0, start: 1n, increment: 1n, min: 1n, max: 4294967295n }];
  await db.sql('INSERT INTO spare (x) VALUES (3)', owner, { isOwner: true });
  assert.throws(() => migrateDatastore(db.datastore, seq),
    (e: unknown) => e instanceof MigrationError && /Precheck failed: added sequence spare_x_seq already has values in range/.test(e.message));
  await db.close();
});

test('making a table scheduled (and back) migrates: the rows stay and the scheduler follows (upstream refuses)', async () => {
  const off = (await buildFixture('migrate-sched-off')).code;
  const on = (await buildFixture('migrate-sched-on')).code;
  const db = await Database.create({ identity: 0xc200_5c4edn, ownerIdentity: owner.identity }, off);
  await call(db, 'addJob', [20]);
  const plan = await db.planUpdate(on);
  assert.ok(plan.kind === 'auto' && !plan.plan.breaksClients);
  assert.match(plan.kind === 'auto' ? plan.planText : '', /▸ Created schedule for table job calling reducer run/);
  await db.update(on, { breakClients: false });
  const ran = () => db.logs.tail().filter((r) => /job 1 ran \(on\)/.test(r.message)).length;
  const deadline = Date.now() + 3000;
  while (ran() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(ran() >= 2, `the scheduled reducer ran ${ran()} times`);
  await db.update(off, { breakClients: false });
  const stopped = ran();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(ran(), stopped, 'no ticks after the schedule was removed');
  assert.equal((await rows(db, 'SELECT * FROM job')).length, 1);
  await db.close();
});

test('writes made while a copied table is being built are replayed at the swap (nothing lost, nothing doubled)', async () => {
  const db = await freshDb();
  const person = db.schema.tables.find((t) => t.name === 'person')!;
  const seedRows = 3 * migrationChunkRows + 17;
  const tx = db.datastore.beginMutTx();
  const w = new BsatnWriter(64);
  for (let i = 1; i <= seedRows; i++) {
    w.reset(); w.writeU32(i); w.writeString(`p${i}`); w.writeU8(0);
    tx.insert(person.tableId, w.finish());
  }
  tx.commit();
  db.datastore.setSequenceNext(person.tableId, 0, BigInt(seedRows + 1));
  // person gains an index in migrate-compatible, so its rows are copied in chunks while these calls run.
  const updating = db.update(code['migrate-compatible'], { breakClients: false });
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < 30; i++) {
    calls.push(db.callReducerJson('add', [`late-${i}`], owner));
    if (i === 10) calls.push(db.sql('DELETE FROM person WHERE id = 5', owner, { isOwner: true }));
    await new Promise((r) => setImmediate(r));
  }
  await updating;
  await Promise.all(calls);
  assert.match(logText(db), /Database updated/);
  assert.equal((await rows(db, 'SELECT * FROM person')).length, seedRows + 30 - 1);
  assert.equal((await rows(db, "SELECT id FROM person WHERE name = 'late-29'")).length, 1);
  assert.equal((await rows(db, 'SELECT * FROM person WHERE id = 5')).length, 0);
  await call(db, 'add', ['after']);
  assert.deepEqual(await rows(db, "SELECT id FROM person WHERE name = 'after'"), [[seedRows + 31]]);
  await db.close();
});

test('a migration copies every row byte for byte: old bytes plus the added defaults, or the same bytes', async () => {
  // Rows of many lengths over several chunks, with a few long enough to grow the rewrite's scratch buffer
  // (migrate.ts PackedRows) twice, and shorter rows after them, which reuse views cached by length.
  const db = await freshDb();
  const person = db.schema.tables.find((t) => t.name === 'person')!;
  const count = 2 * migrationChunkRows + 123;
  const tx = db.datastore.beginMutTx();
  const w = new BsatnWriter(64);
  for (let i = 1; i <= count; i++) {
    const long = i === 4001 ? 5_000 : i === 4002 ? 20_000 : i % 211;
    w.reset(); w.writeU32(i); w.writeString(String.fromCharCode(97 + (i % 26)).repeat(long)); w.writeU8(0);
    tx.insert(person.tableId, w.finish());
  }
  tx.commit();
  const hex = (rows: Uint8Array[]) => rows.map((r) => Buffer.from(r).toString('hex'));
  const before = hex(db.datastore.scan(person.tableId));
  const targets = [['migrate-add-column', '0000000013000000'], ['migrate-compatible', '']] as const;
  for (const [variant, suffixHex] of targets) {
    const target = await Database.create({ identity: 0xc200_0000n + nextId++, ownerIdentity: owner.identity }, code[variant]);
    const next = migrateDatastore(db.datastore, target.schema);
    const table = target.schema.tables.find((t) => t.name === 'person')!;
    const after = hex(next.scan(table.tableId));
    assert.equal(after.length, count, variant);
    after.forEach((row, i) => { if (row !== before[i] + suffixHex) assert.fail(`${variant}: row ${i} is ${row}, not ${before[i]}+${suffixHex}`); });
    await target.close();
  }
  await db.close();
});
