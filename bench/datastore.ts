// bench/datastore.ts — datastore hot path: the keynote transfer (2 point lookups + 2 updates by primary key).
// Run: node --import tsx bench/datastore.ts   (figures are CPU time, GC included)

import { compileCodec } from '../src/sats/codec.js';
import { Datastore } from '../src/datastore/store.js';
import { buildDatabaseSchema } from '../src/datastore/schema.js';
import type { RawModuleDefV10 } from '../src/sats/moduledef.js';

const accountCount = 100_000;
const transferCount = 500_000;
const transfersPerTx = 1;

const def: RawModuleDefV10 = { sections: [
  { tag: 'Typespace', value: { types: [{ tag: 'Product', value: { elements: [
    { name: 'id', algebraicType: { tag: 'U32' } }, { name: 'balance', algebraicType: { tag: 'I64' } }] } }] } },
  { tag: 'Tables', value: [{
    sourceName: 'accounts', productTypeRef: 0, primaryKey: [0],
    indexes: [{ sourceName: undefined, accessorName: 'id', algorithm: { tag: 'BTree', value: [0] } }],
    constraints: [{ sourceName: undefined, data: { tag: 'Unique', value: { columns: [0] } } }],
    sequences: [], tableType: { tag: 'User' }, tableAccess: { tag: 'Public' }, defaultValues: [], isEvent: false,
  }] },
] };

const schema = buildDatabaseSchema(def);
const t = schema.tables[0];
const pk = t.indexes[0].indexId;
const ds = new Datastore(schema);
const codec = compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace);
let tx = ds.beginMutTx();
for (let i = 0; i < accountCount; i++) tx.insert(t.tableId, codec.encode([i, 1_000_000n]));
tx.commit();

// The module's exchange buffer: keys and rows are written into one reused buffer, as the isolate shim does.
const buf = new Uint8Array(64);
const view = new DataView(buf.buffer);
const key = buf.subarray(0, 4);
const row = buf.subarray(0, 12);

/** CPU time of this process (user + system), so that other load on the machine distorts less than wall time. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function transfer(from: number, to: number, amount: bigint): void {
  view.setUint32(0, from, true);
  buf.set(tx.scanIndexPoint(pk, key)[0], 0); // the shim copies found rows into the exchange buffer
  const balA = view.getBigInt64(4, true);
  view.setUint32(0, to, true);
  buf.set(tx.scanIndexPoint(pk, key)[0], 0);
  const balB = view.getBigInt64(4, true);
  view.setUint32(0, from, true); view.setBigInt64(4, balA - amount, true);
  tx.update(t.tableId, pk, row);
  view.setUint32(0, to, true); view.setBigInt64(4, balB + amount, true);
  tx.update(t.tableId, pk, row);
}

function run(n: number): number {
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) % accountCount;
  const start = cpuMicros();
  for (let i = 0; i < n; i += transfersPerTx) {
    tx = ds.beginMutTx();
    for (let j = 0; j < transfersPerTx; j++) transfer(next(), next(), 1n);
    tx.commit();
  }
  return cpuMicros() - start;
}

run(50_000); // warm-up
const us = run(transferCount);
console.log(`keynote transfer (2 finds + 2 updates by PK, 1 tx each): ${(us / transferCount).toFixed(3)} µs/transfer, ` +
  `${(us / transferCount / 4).toFixed(3)} µs per datastore op, ${Math.round(transferCount / (us / 1e6))} transfers/s`);

// Per-operation figures (best of 5 runs, each op in a long transaction) to separate the datastore's own costs.
function best(label: string, n: number, body: (i: number) => void): void {
  let bestUs = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = cpuMicros();
    for (let i = 0; i < n; i++) body(i);
    bestUs = Math.min(bestUs, cpuMicros() - start);
  }
  console.log(`${label}: ${(bestUs / n * 1000).toFixed(0)} ns/op`);
}
best('empty tx begin+commit', 200_000, () => { ds.beginMutTx().commit(); });
best('tx with 2 updates', 100_000, (i) => {
  tx = ds.beginMutTx();
  view.setUint32(0, (i * 7919) % accountCount, true); view.setBigInt64(4, BigInt(i), true); tx.update(t.tableId, pk, row);
  view.setUint32(0, (i * 7919 + 1) % accountCount, true); tx.update(t.tableId, pk, row);
  tx.commit();
});

tx = ds.beginMutTx();
best('point lookup by PK', 200_000, (i) => { view.setUint32(0, (i * 7919) % accountCount, true); tx.scanIndexPoint(pk, key); });
best('update by PK', 200_000, (i) => {
  view.setUint32(0, (i * 7919) % accountCount, true); view.setBigInt64(4, BigInt(i), true); tx.update(t.tableId, pk, row);
});
tx.rollback(); // a long tx: 400k undo entries
