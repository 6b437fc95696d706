// bench/rollback.ts — what a rollback costs after an insert or update loop (issue 12 item 3: a call stopped at its
// time limit answers within limit + 10 %, and its rollback comes after the deadline). A transaction inserts N rows
// into the fixture's `item` shape (u32 autoInc primary key, a string: test/fixtures/modules/cpu-limit-cases) of a
// table that already holds P rows, or updates N of the P rows through the key, then rolls back; CPU time of the
// rollback alone, median of the rounds.
// Run: node --import tsx bench/rollback.ts [rounds]   (figures in docs/performance.md "Insert-loop rollback")

import { compileCodec } from '../src/sats/codec.js';
import { Datastore } from '../src/datastore/store.js';
import { buildDatabaseSchema } from '../src/datastore/schema.js';
import type { RawModuleDefV10 } from '../src/sats/moduledef.js';

const rounds = Number(process.argv[2] ?? 7);
/** [write, rows written and rolled back, rows the table holds before]: an insert loop stopped at 1 s wrote 330-560k here. */
const cases: ['insert' | 'update', number, number][] = [
  ['insert', 400_000, 0], ['insert', 400_000, 1_000_000], ['insert', 10_000, 1_000_000], ['insert', 1_000, 0],
  ['update', 400_000, 1_000_000],
];

const def: RawModuleDefV10 = { sections: [
  { tag: 'Typespace', value: { types: [{ tag: 'Product', value: { elements: [
    { name: 'id', algebraicType: { tag: 'U32' } }, { name: 'label', algebraicType: { tag: 'String' } }] } }] } },
  { tag: 'Tables', value: [{
    sourceName: 'item', productTypeRef: 0, primaryKey: [0],
    indexes: [{ sourceName: undefined, accessorName: 'id', algorithm: { tag: 'BTree', value: [0] } }],
    constraints: [{ sourceName: undefined, data: { tag: 'Unique', value: { columns: [0] } } }],
    sequences: [{ sourceName: undefined, column: 0, start: undefined, minValue: undefined, maxValue: undefined, increment: 1n }],
    tableType: { tag: 'User' }, tableAccess: { tag: 'Public' }, defaultValues: [], isEvent: false,
  }] },
] };
const schema = buildDatabaseSchema(def);
const item = schema.tables[0];
const codec = compileCodec({ tag: 'Product', value: item.rowType }, schema.typespace);

/** CPU time of this process (user + system) in ms: other load on the machine distorts it less than wall time. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

for (const [write, written, before] of cases) {
  const ds = new Datastore(schema);
  const load = ds.beginMutTx();
  for (let i = 0; i < before; i++) load.insert(item.tableId, codec.encode([0, `row ${i}`]));
  load.commit();
  const row = codec.encode([0, 'runaway']), pk = item.indexes[0].indexId;
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const tx = ds.beginMutTx();
    if (write === 'insert') for (let i = 0; i < written; i++) tx.insert(item.tableId, row);
    else for (let i = 1; i <= written; i++) tx.update(item.tableId, pk, codec.encode([i, `new ${i}`]));
    const started = cpuMs();
    tx.rollback();
    times.push(cpuMs() - started);
    if (ds.rowCount(item.tableId) !== before) throw new Error('the rollback left rows behind');
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  console.log(`${write} ${written} rows of ${before}: rollback ${median.toFixed(1)} CPU ms median (${times[0].toFixed(1)}-` +
    `${times[times.length - 1].toFixed(1)}), ${(median * 1000 / written).toFixed(3)} µs per row`);
}
