// test/persistence/helpers.ts — a real Datastore over the datastore fixtures' module definition, a random
// transaction generator (fixed seeds), and a canonical form of committed state for comparisons.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Datastore } from '../../src/datastore/store.js';
import type { DatabaseSchema } from '../../src/datastore/types.js';
import type { DatabasePersistence, ProgramInfo } from '../../src/host/persistence.js';
import { encodeRawModuleDef, type RawModuleDefV10 } from '../../src/sats/moduledef.js';
import { moduleDef, rng, schemaAndCodecs } from '../datastore/fixtures.js';

export const { schema, byName, enc, dec } = schemaAndCodecs();
export const accounts = byName('accounts');
export const person = byName('person');
export const tags = byName('tags');
export const small = byName('small');

export function tempDbDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `stdb-persist-${label}-`));
}

export function program(def: RawModuleDefV10 = moduleDef, text = 'export default 1;', ts = 1_700_000_000_000_000n): ProgramInfo {
  return { programText: text, moduleDef: encodeRawModuleDef(def), ownerIdentity: 0xc200aan << 200n, databaseIdentity: 0xc200bbn << 200n, timestampMicros: ts };
}

/** Committed state as comparable text: per table its rows sorted (hex), plus every sequence's next value. */
export function canonical(ds: Datastore): string {
  const out: string[] = [];
  for (const t of ds.schema().tables) {
    const rows = ds.scan(t.tableId).map((r) => Buffer.from(r).toString('hex')).sort();
    out.push(`${t.name}: ${rows.join(',')}`);
  }
  for (const [name, next] of [...ds.sequenceState()].sort()) out.push(`seq ${name} = ${next}`);
  return out.join('\n');
}

/** Rows only (sequence state may legitimately jump to a reservation after recovery). */
export function canonicalRows(ds: Datastore): string {
  return canonical(ds).split('\n').filter((l) => !l.startsWith('seq ')).join('\n');
}

/**
 * One random transaction on `ds`, committed (or rolled back, sometimes) and recorded. Mixes inserts, updates and
 * deletes on tables with and without unique indexes, auto-increment inserts, and insert-then-delete in one tx.
 */
export function randomTx(ds: Datastore, p: DatabasePersistence, next: () => number): bigint | undefined {
  const tx = ds.beginMutTx();
  const ops = 1 + Math.floor(next() * 6);
  for (let i = 0; i < ops; i++) {
    const r = next();
    try {
      if (r < 0.25) {
        tx.insert(accounts.tableId, enc(accounts, [Math.floor(next() * 50), BigInt(Math.floor(next() * 1e6))]));
      } else if (r < 0.4) {
        const rows = tx.scan(accounts.tableId);
        if (rows.length > 0) {
          const v = dec(accounts, rows[Math.floor(next() * rows.length)]!) as [number, bigint];
          tx.update(accounts.tableId, accounts.indexes[0]!.indexId, enc(accounts, [v[0], v[1] + BigInt(Math.floor(next() * 300) - 150)]));
        }
      } else if (r < 0.5) {
        const rows = tx.scan(accounts.tableId);
        if (rows.length > 0) tx.deleteByRows(accounts.tableId, [rows[Math.floor(next() * rows.length)]!]);
      } else if (r < 0.65) {
        tx.insert(person.tableId, enc(person, [0n, `p${Math.floor(next() * 1000)}`, Math.floor(next() * 100)]));
      } else if (r < 0.72) {
        const rows = tx.scan(person.tableId);
        if (rows.length > 0) tx.deleteByRows(person.tableId, [rows[rows.length - 1]!]); // often the highest id
      } else if (r < 0.77) {
        const w = tx.insert(person.tableId, enc(person, [0n, 'ephemeral', 1]));
        tx.deleteByRows(person.tableId, [w.row]); // an id handed out that never reaches TxData
      } else if (r < 0.9) {
        tx.insert(tags.tableId, enc(tags, [Math.floor(next() * 20) - 10, 'x'.repeat(Math.floor(next() * 40))]));
      } else {
        const rows = tx.scan(tags.tableId);
        if (rows.length > 0) tx.deleteByRows(tags.tableId, [rows[Math.floor(next() * rows.length)]!]);
      }
    } catch (e) {
      if (!(e instanceof Error) || e.name !== 'DatastoreError') throw e; // unique violations are expected
    }
  }
  if (next() < 0.08) { tx.rollback(); return undefined; }
  const txData = tx.commit();
  return p.recordTx(txData, ds);
}

export function runRandom(ds: Datastore, p: DatabasePersistence, seed: number, count: number): void {
  const next = rng(seed);
  for (let i = 0; i < count; i++) randomTx(ds, p, next);
}

export function newDatastore(s: DatabaseSchema = schema): Datastore {
  return new Datastore(s);
}
