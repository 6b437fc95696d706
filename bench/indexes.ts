// bench/indexes.ts — what secondary indexes cost, in the datastore alone: a `message` table (u64 primary key, a
// non-unique u32 btree `sender` with ~10 rows per key, a non-unique string btree `topic` with 1,000 rows per key, a
// string), `rows` rows inserted 10,000 per transaction, then point scans by sender and by topic, 2-key range scans by
// sender, updates that move a row's sender, and deletes by primary key. Prints CPU-µs per operation (process CPU, GC
// included), the V8 heap after a full GC (total, and per row over the empty database's): the memory that grows with
// the rows and that every full GC walks, and the wall time of a full GC at the end (the least of five).
//
// Owns: nothing but this measurement. May call: the datastore, schema and codec of each tree it is given.
// Run: npm run bench:indexes [-- rows, default 1000000] [tree directory ...] — each tree (default: this one; for a
//      before/after, `git archive <commit> | tar -x -C dir` with node_modules linked) runs in its own child process,
//      trees alternating, twice each.

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
if (process.env.BENCH_INDEXES_CHILD === undefined) {
  const rows = process.argv[2] ?? '1000000';
  const trees = process.argv.length > 3 ? process.argv.slice(3).map((d) => resolve(d)) : [resolve(here, '..')];
  for (let round = 0; round < 2; round++) {
    for (const tree of trees) {
      process.stdout.write(execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), rows, tree],
        { env: { ...process.env, BENCH_INDEXES_CHILD: '1' }, encoding: 'utf8' }));
    }
  }
  process.exit(0);
}

const N = Number(process.argv[2]);
const dir = process.argv[3];
const { Datastore } = await import(`${dir}/src/datastore/store.ts`);
const { buildDatabaseSchema } = await import(`${dir}/src/datastore/schema.ts`);
const { compileCodec } = await import(`${dir}/src/sats/codec.ts`);

const def = { sections: [
  { tag: 'Typespace', value: { types: [{ tag: 'Product', value: { elements: [
    { name: 'id', algebraicType: { tag: 'U64' } }, { name: 'sender', algebraicType: { tag: 'U32' } }, { name: 'topic', algebraicType: { tag: 'String' } }, { name: 'text', algebraicType: { tag: 'String' } }] } }] } },
  { tag: 'Tables', value: [{
    sourceName: 'message', productTypeRef: 0, primaryKey: [0],
    indexes: [{ sourceName: undefined, accessorName: 'id', algorithm: { tag: 'BTree', value: [0] } },
      { sourceName: undefined, accessorName: 'sender', algorithm: { tag: 'BTree', value: [1] } },
      { sourceName: undefined, accessorName: 'topic', algorithm: { tag: 'BTree', value: [2] } }],
    constraints: [{ sourceName: undefined, data: { tag: 'Unique', value: { columns: [0] } } }],
    sequences: [], tableType: { tag: 'User' }, tableAccess: { tag: 'Public' }, defaultValues: [], isEvent: false,
  }] },
] };
const schema = buildDatabaseSchema(def as never);
const t = schema.tables[0];
const [pk, bySender, byTopic] = t.indexes.map((i: any) => i.indexId);
const ds = new Datastore(schema);
const codec = compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const senders = Math.max(1, N / 10);
const u32 = (n: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n, true); return b; };
const str = (s: string) => { const e = new TextEncoder().encode(s); const b = new Uint8Array(4 + e.length); new DataView(b.buffer).setUint32(0, e.length, true); b.set(e, 4); return b; };
const heapUsed = (): number => { for (let i = 0; i < 3; i++) global.gc?.(); return process.memoryUsage().heapUsed; };
const heapEmpty = heapUsed();
let c0 = cpu();
let tx: any = ds.beginMutTx();
for (let i = 0; i < N; i++) { tx.insert(t.tableId, codec.encode([BigInt(i), (Math.imul(i, 2654435761) >>> 0) % senders, 'topic-' + (i % 1000), 'hello'])); if (i % 10000 === 9999) { tx.commit(); tx = ds.beginMutTx(); } }
tx.commit();
const insertUs = (cpu() - c0) * 1000 / N;
const M = 200_000;
tx = ds.beginMutTx();
c0 = cpu(); let found = 0;
for (let i = 0; i < M; i++) found += tx.scanIndexPoint(bySender, u32((i * 7919) % senders)).length;
const pointUs = (cpu() - c0) * 1000 / M;
c0 = cpu();
for (let i = 0; i < M / 10; i++) found += tx.scanIndexPoint(byTopic, str('topic-' + (i % 1000))).length > 0 ? 1 : 0;
const topicUs = (cpu() - c0) * 1000 / (M / 10);
c0 = cpu();
for (let i = 0; i < M; i++) { const s = (i * 7919) % senders; const lo = new Uint8Array(5); lo[0] = 0; lo.set(u32(s), 1); const hi = new Uint8Array(5); hi[0] = 1; hi.set(u32(s + 2), 1); found += tx.scanIndexRange(bySender, { prefix: new Uint8Array(0), prefixElems: 0, rangeStart: lo, rangeEnd: hi }).length; }
const rangeUs = (cpu() - c0) * 1000 / M;
// updates that move the sender key, then deletes
c0 = cpu();
for (let i = 0; i < M; i++) { const id = (i * 104729) % N; tx.update(t.tableId, pk, codec.encode([BigInt(id), (i * 31) % senders, 'topic-' + (id % 1000), 'hello']) ); }
const updateUs = (cpu() - c0) * 1000 / M;
c0 = cpu();
const u64 = (n: number) => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), true); return b; };
for (let i = 0; i < M; i++) tx.deleteByIndexPoint(pk, u64(i * 3));
const deleteUs = (cpu() - c0) * 1000 / M;
tx.commit();
const heapBytesPerRow = (heapUsed() - heapEmpty) / N;
// A full GC's wall time, the least of five: what a pause costs at this size, with the least noise from other processes.
let fullGcMs = Infinity;
for (let i = 0; i < 5; i++) { const t0 = performance.now(); global.gc?.(); fullGcMs = Math.min(fullGcMs, performance.now() - t0); }
console.log(JSON.stringify({ tree: dir, rows: N, insertUs: +insertUs.toFixed(2), pointUs: +pointUs.toFixed(2), topicPointUs: +topicUs.toFixed(2), rangeUs: +rangeUs.toFixed(2), updateUs: +updateUs.toFixed(2), deleteUs: +deleteUs.toFixed(2), heapMB: Math.round(process.memoryUsage().heapUsed / 1048576), heapBytesPerRow: +heapBytesPerRow.toFixed(2), fullGcMs: +fullGcMs.toFixed(1), found }));
