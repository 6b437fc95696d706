// bench/server-profile/alloc-core.ts — which host-side functions allocate per in-process keynote transfer.
//
// Owns: nothing but this measurement. Same setup as bench/core.ts (keynote fixture, 100k accounts, uniform pairs),
// then samples Node-heap allocations during the transfers with V8's sampling heap profiler, counting objects that
// minor/major GCs already collected (GC pressure is what costs). Allocations inside the module isolate are not seen.
// May call: host/database.ts, node:inspector.
//
// Run: node --import tsx bench/server-profile/alloc-core.ts [transfers] [top]

import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Database } from '../../src/host/database.js';

const accountsCount = 100_000;
const transfers = Number(process.argv[2] ?? 50_000);
const top = Number(process.argv[3] ?? 30);
const samplingIntervalBytes = 512;

interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }

const db = await Database.create({ identity: 1n, ownerIdentity: 2n },
  readFileSync('test/fixtures/modules/keynote/dist/bundle.js', 'utf8'));
const caller = { identity: 3n, connectionId: 4n, jwtPayload: undefined };
await db.callReducerJson('seed', [accountsCount, 1_000_000_000], caller);
let seed = 7;
const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; };
const args = (): Uint8Array => {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  const from = Math.floor(rand() * accountsCount);
  v.setUint32(0, from, true); v.setUint32(4, (from + 1 + Math.floor(rand() * (accountsCount - 1))) % accountsCount, true);
  v.setBigInt64(8, 1n, true);
  return b;
};
const prepared = Array.from({ length: transfers }, args);
for (let i = 0; i < 5000; i++) await db.callReducer('transfer', args(), caller);

const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', {
  samplingInterval: samplingIntervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
});
for (let i = 0; i < transfers; i++) await db.callReducer('transfer', prepared[i], caller);
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
session.disconnect();
await db.close();

const bySite = new Map<string, number>();
let total = 0;
const walk = (n: HeapNode, parent: string): void => {
  const here = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
  if (n.selfSize > 0) {
    const key = `${here}  <- ${parent}`;
    bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c, here);
};
walk(profile.head, '');
console.log(`sampled ${(total / transfers).toFixed(0)} bytes allocated per transfer in Node's heap (${transfers} transfers)`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${(bytes / transfers).toFixed(0).padStart(6)} B  ${site}`);
}
