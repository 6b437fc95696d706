// The ordered index of row ids (datastore/rowtree.ts RowIdTree) against a sorted model: random adds, removals (some
// after the entry's row took another key, as table.ts replaceRow does), moves, point and range scans, suffix drops
// (rollback), bulk loads and clears, over key spaces small enough for long runs of equal keys and tables large enough
// for chunks to split and merge. Keys live in an array indexed by row id, as rows in a row store. Last, a tree of a
// million string-keyed entries (several pages of chunk slots, fence arena compactions): its V8 heap does not grow with
// its entries, the slots that merges free are reused, and pages are given back when most entries go.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { RowIdTree } from '../../src/datastore/rowtree.js';
import type { IndexKey } from '../../src/datastore/key.js';

class Rows {
  readonly keys: (IndexKey | undefined)[] = [];
  keyOf = (id: number): IndexKey => { const k = this.keys[id]; assert.ok(k !== undefined, `row ${id} read after it was dropped`); return k; };
  is = (id: number, key: IndexKey): boolean => this.keyOf(id) === key;
}

const compare = (a: [IndexKey, number], b: [IndexKey, number]): number =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];

type Op =
  | { k: 'add'; key: number; n: number } | { k: 'remove'; pick: number } | { k: 'move'; pick: number; key: number }
  | { k: 'point'; key: number } | { k: 'range'; lo: number; hi: number } | { k: 'dropFrom'; back: number }
  | { k: 'load' } | { k: 'clear' };

const keyKinds = [
  ['numeric', (k: number): IndexKey => k],
  ['string', (k: number): IndexKey => `k${String(k).padStart(4, '0')}`],
  // Keys that are prefixes of others, share long prefixes and hold bytes 0 and 255: the fence comparisons' edge cases.
  ['varied string', (k: number): IndexKey => '\u00ff\u0000'.repeat(k % 3) + k.toString(3)],
] as const;
for (const [name, keyOf] of keyKinds) {
  test(`property (${name} keys): adds, removals, moves, scans, rollbacks and loads agree with a sorted model`, () => {
    const key = fc.integer({ min: 0, max: 60 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 10, arbitrary: fc.record({ k: fc.constant('add' as const), key, n: fc.integer({ min: 1, max: 400 }) }) },
      { weight: 8, arbitrary: fc.record({ k: fc.constant('remove' as const), pick: fc.nat() }) },
      { weight: 4, arbitrary: fc.record({ k: fc.constant('move' as const), pick: fc.nat(), key }) },
      { weight: 3, arbitrary: fc.record({ k: fc.constant('point' as const), key }) },
      { weight: 3, arbitrary: fc.record({ k: fc.constant('range' as const), lo: key, hi: key }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant('dropFrom' as const), back: fc.integer({ min: 1, max: 900 }) }) },
      { weight: 1, arbitrary: fc.constant({ k: 'load' as const }) },
      { weight: 1, arbitrary: fc.constant({ k: 'clear' as const }) },
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      const rows = new Rows();
      let tree = new RowIdTree(rows);
      let live: [IndexKey, number][] = [];                    // the model: (key, id), kept sorted
      let nextId = 0;
      const sorted = (): void => { live.sort(compare); };
      for (const o of ops) {
        switch (o.k) {
          case 'add':
            for (let i = 0; i < o.n; i++) {
              const k = keyOf((o.key * 7 + i) % 61);
              rows.keys[nextId] = k;
              tree.add(k, nextId);
              live.push([k, nextId++]);
            }
            sorted();
            break;
          case 'remove': {
            if (live.length === 0) { assert.equal(tree.remove(keyOf(0), 0), false); break; }
            const [k, id] = live.splice(o.pick % live.length, 1)[0];
            assert.ok(tree.remove(k, id));
            assert.equal(tree.remove(k, id), false, 'removed twice');
            rows.keys[id] = undefined;
            break;
          }
          case 'move': {
            // replaceRow: the row's bytes take the new key first, then the entry moves.
            if (live.length === 0) break;
            const at = o.pick % live.length, [k, id] = live[at], next = keyOf(o.key);
            rows.keys[id] = next;
            assert.ok(tree.remove(k, id));
            tree.add(next, id);
            live[at] = [next, id];
            sorted();
            break;
          }
          case 'point': {
            const out: number[] = [];
            tree.point(keyOf(o.key), out);
            assert.deepEqual(out, live.filter(([k]) => k === keyOf(o.key)).map(([, id]) => id));
            break;
          }
          case 'range': {
            const lo = keyOf(Math.min(o.lo, o.hi)), hi = keyOf(Math.max(o.lo, o.hi)), out: number[] = [];
            tree.range(lo, hi, out);
            assert.deepEqual(out, live.filter(([k]) => k >= lo && k < hi).map(([, id]) => id));
            break;
          }
          case 'dropFrom': {
            // A rollback drops the newest ids, every one of them live.
            const from = Math.max(0, nextId - o.back), dropped = live.filter(([, id]) => id >= from);
            if (dropped.length !== nextId - from) break;
            if (!tree.removeIdsFrom(from, dropped.length)) for (const [k, id] of dropped) assert.ok(tree.remove(k, id));
            live = live.filter(([, id]) => id < from);
            nextId = from;
            break;
          }
          case 'load':
            tree = new RowIdTree(rows);
            tree.load(Int32Array.from(live.map(([, id]) => id)));
            break;
          case 'clear':
            tree.clear();
            live = [];
            break;
        }
        assert.equal(tree.size, live.length);
      }
      const all: number[] = [];
      tree.forEach((id) => all.push(id));
      assert.deepEqual(all, live.map(([, id]) => id));
    }), { numRuns: 150 });
  });
}

test('chunks stay at least a quarter full on average after deleting most entries', () => {
  const rows = new Rows();
  const tree = new RowIdTree(rows);
  for (let id = 0; id < 100_000; id++) { rows.keys[id] = id % 977; tree.add(id % 977, id); }
  for (let id = 0; id < 100_000; id++) if (id % 10 !== 0) assert.ok(tree.remove(id % 977, id));
  const chunks = (tree as unknown as { chunkCount: number }).chunkCount;
  assert.equal(tree.size, 10_000);
  assert.ok(chunks <= Math.ceil(10_000 / 128), `${chunks} chunks hold 10,000 entries`);
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapUsed(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

test('a million entries: no V8 heap per chunk, freed slots reused, pages given back, order kept over pages', (t) => {
  const rows = new Rows(), count = 1_000_000, spread = 7919;       // ids added in a scattered order: splits everywhere
  for (let id = 0; id < count; id++) rows.keys[id] = `key-${String(id % 100_003).padStart(6, '0')}`;
  const tree = new RowIdTree(rows);
  const before = heapUsed();
  for (let i = 0; i < count; i++) { const id = (i * spread) % count; tree.add(rows.keyOf(id), id); }
  const perEntry = (heapUsed() - before) / count;
  t.diagnostic(`V8 heap: ${perEntry.toFixed(3)} B per entry`);
  // Before session 10 each chunk was an Int32Array and a fence in JS arrays: ~0.4 B per entry here.
  assert.ok(perEntry < 0.25, `the V8 heap grew ${perEntry.toFixed(3)} B per entry`);

  const slots = (): number => (tree as unknown as { slotsUsed: number }).slotsUsed;
  const slotsAtFull = slots();
  assert.ok(slotsAtFull > 1024, `${slotsAtFull} chunk slots: more than one page`);
  for (let id = 0; id < count; id++) if (id % 10 !== 0) assert.ok(tree.remove(rows.keyOf(id), id));
  assert.equal(tree.size, count / 10);
  for (let id = 0; id < count; id++) if (id % 10 !== 0) tree.add(rows.keyOf(id), id);
  assert.ok(slots() <= slotsAtFull * 1.1, `${slots()} slots after refilling, ${slotsAtFull} before: freed slots reused`);

  const expected = Int32Array.from({ length: count }, (_, id) => id)
    .sort((a, b) => { const ka = rows.keyOf(a), kb = rows.keyOf(b); return ka < kb ? -1 : ka > kb ? 1 : a - b; });
  const all = new Int32Array(count);
  let at = 0;
  tree.forEach((id) => { all[at++] = id; });
  assert.deepEqual(all, expected);
  const out: number[] = [];
  tree.point(rows.keyOf(123), out);
  assert.deepEqual(out, Array.from(expected.filter((id) => rows.keyOf(id) === rows.keyOf(123))));

  // Deleting 99 % frees most slots: the chunks move to pages that fit them, and the tree answers as before.
  for (let id = 0; id < count; id++) if (id % 100 !== 0) assert.ok(tree.remove(rows.keyOf(id), id));
  const capacity = (tree as unknown as { slotCapacity: number }).slotCapacity;
  assert.ok(capacity <= 1024, `${capacity} chunk slots kept for ${tree.size} entries`);
  const left: number[] = [];
  tree.forEach((id) => left.push(id));
  assert.deepEqual(left, Array.from(expected.filter((id) => id % 100 === 0)));
  for (let id = 0; id < count; id += 2) if (id % 100 !== 0) tree.add(rows.keyOf(id), id);
  const refilled: number[] = [];
  tree.forEach((id) => refilled.push(id));
  assert.deepEqual(refilled, Array.from(expected.filter((id) => id % 2 === 0)));
});
