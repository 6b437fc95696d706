// Corrupt bytes at every position of a small real log (issue 11, "keep it from coming back"): a few acknowledged
// transactions are written through the real persistence layer (DatabasePersistence over a real Datastore and
// CommitLog on disk), then, for every byte of every segment, a copy with that byte flipped is opened. Each open must
// either recover every acknowledged transaction intact, or refuse loudly naming the file and the byte — never lose
// an acknowledged transaction silently and never fail any other way (a crash of the process).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DatabasePersistence } from '../../src/host/persistence.js';
import { CommitLogCorruptError } from '../../src/durability/commitlog.js';
import { Datastore } from '../../src/datastore/store.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import { encodeRawModuleDef, type RawModuleDefV10 } from '../../src/sats/moduledef.js';
import { compileCodec } from '../../src/sats/codec.js';
import { btree, product, T, table, unique } from '../datastore/fixtures.js';
import { tempDbDir } from './helpers.js';

/** One table, so the program record stays small and the whole log is a few hundred bytes. */
const def: RawModuleDefV10 = {
  sections: [
    { tag: 'Typespace', value: { types: [product([['id', T.u32], ['note', T.str]])] } },
    { tag: 'Tables', value: [table('t', 0, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)] })] },
  ],
};
const schema = buildDatabaseSchema(def);
const tableSchema = schema.tables.find((t) => t.name === 't')!;
const codec = compileCodec({ tag: 'Product', value: tableSchema.rowType }, schema.typespace);
const row = (id: number, note: string) => codec.encode([id, note]);

function rowsOf(ds: Datastore): string {
  return ds.scan(tableSchema.tableId).map((r) => Buffer.from(r).toString('hex')).sort().join(',');
}

/** Writes the program and four transactions, waiting for each to be durable (acknowledged); returns the final rows. */
async function writeSmallLog(dir: string, segmentSizeMaxBytes: number): Promise<string> {
  const { persistence } = await DatabasePersistence.open(dir, { durability: 'fsync', segmentSizeMaxBytes });
  persistence.recordProgram({ programText: 'export {};', moduleDef: encodeRawModuleDef(def), ownerIdentity: 1n,
    databaseIdentity: 2n, timestampMicros: 1_700_000_000_000_000n });
  const ds = new Datastore(schema);
  const steps: ((tx: ReturnType<Datastore['beginMutTx']>) => void)[] = [
    (tx) => { tx.insert(tableSchema.tableId, row(1, 'one')); tx.insert(tableSchema.tableId, row(2, 'two')); },
    (tx) => { tx.update(tableSchema.tableId, tableSchema.indexes[0]!.indexId, row(1, 'uno')); },
    (tx) => { tx.deleteByRows(tableSchema.tableId, [row(2, 'two')]); tx.insert(tableSchema.tableId, row(3, 'three')); },
    (tx) => { tx.insert(tableSchema.tableId, row(4, 'four')); },
  ];
  for (const step of steps) {
    const tx = ds.beginMutTx();
    step(tx);
    await persistence.waitDurable(persistence.recordTx(tx.commit(), ds));
  }
  await persistence.close();
  return rowsOf(ds);
}

for (const segmentSizeMaxBytes of [1 << 20, 200]) {
  test(`every flipped byte of a small log is recovered intact or reported with file and byte (segments ≤ ${segmentSizeMaxBytes} bytes)`, async () => {
    const source = tempDbDir('every-byte-src');
    const acknowledged = await writeSmallLog(source, segmentSizeMaxBytes);
    const clog = path.join(source, 'clog');
    const segments = fs.readdirSync(clog).filter((n) => n.endsWith('.stdb.log')).sort();
    if (segmentSizeMaxBytes < 1000) assert.ok(segments.length >= 2, `expected several segments, got ${segments.length}`);
    const originals = new Map(segments.map((name) => [name, fs.readFileSync(path.join(clog, name))]));
    const totalBytes = [...originals.values()].reduce((n, b) => n + b.length, 0);
    assert.ok(totalBytes < 1200, `the log should be small (${totalBytes} bytes)`);

    // Opens are fsync-bound; a tmpfs keeps the ~1,500 of them fast where there is one.
    const work = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : path.dirname(source), 'stdb-every-byte-'));
    const workClog = path.join(work, 'clog');
    const restore = () => {
      fs.rmSync(work, { recursive: true, force: true });
      fs.mkdirSync(workClog, { recursive: true });
      for (const [other, bytes] of originals) fs.writeFileSync(path.join(workClog, other), bytes);
    };
    restore();
    let intact = 0;
    let reported = 0;
    try {
      for (const [name, original] of originals) {
        const target = path.join(workClog, name);
        for (let pos = 0; pos < original.length; pos++) {
          for (const mask of [1 << (pos % 8), 0xff]) {
            const damaged = Buffer.from(original);
            damaged[pos]! ^= mask;
            fs.writeFileSync(target, damaged);
            const where = `${name} byte ${pos} ^ 0x${mask.toString(16)}`;
            let opened: Awaited<ReturnType<typeof DatabasePersistence.open>> | undefined;
            try {
              opened = await DatabasePersistence.open(work, { durability: 'none', segmentSizeMaxBytes, report: () => {} });
            } catch (e) {
              assert.ok(e instanceof CommitLogCorruptError, `${where}: not a corruption report: ${(e as Error)?.stack ?? String(e)}`);
              assert.equal(e.file, target, where);
              assert.ok(e.message.includes(target) && /byte \d+/.test(e.message), `${where}: ${e.message}`);
              assert.ok(e.bytePosition <= pos, `${where}: reported at byte ${e.bytePosition}, after the damage`);
              assert.ok(fs.readFileSync(target).equals(damaged), `${where}: a refused open changed the file`);
              reported++;
              continue;
            }
            try {
              assert.ok(opened.recovered !== undefined, `${where}: the program was lost silently`);
              assert.equal(rowsOf(opened.recovered.datastore), acknowledged, `${where}: acknowledged transactions lost silently`);
              intact++;
            } finally {
              await opened.persistence.close();
              restore();
            }
          }
        }
        fs.writeFileSync(target, original);
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    // CRC-32C catches every 1- and 8-bit error, so in practice every flip is reported; none may be silent.
    assert.equal(intact + reported, totalBytes * 2);
    assert.ok(reported > 0);
  });
}
