// The row-id hash (datastore/rowstore.ts RowIdHash) grows incrementally: a grow moves the old table's entries over the
// adds that follow it, so no single add reads more than `rehashSlotsPerAdd` rows' keys (one insert read every row's
// key, 120 ms at 780k rows, and an insert loop overran its time limit by that stall). Property: random adds, removals,
// lookups, suffix drops (rollback), clears and reserves, many of them in the middle of a drain, agree with a Map model.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RowIdHash, rehashSlotsPerAdd } from '../../src/datastore/rowstore.js';

/** Keys live in `keys[id]` as rows do in a row store; `reads` counts the rows a grow reads. */
class NumberHash extends RowIdHash<number> {
  readonly keys: (number | undefined)[] = [];
  reads = 0;
  protected hashOfId(id: number): number { this.reads++; return hashOf(this.keys[id]!); }
  protected matches(id: number, key: number): boolean { return this.keys[id] === key; }
  protected sameKey(a: number, b: number): boolean { return this.keys[a] === this.keys[b]; }
}
/** Few distinct low bits, so probes run long and tombstones matter. */
const hashOf = (key: number): number => key % 1009;

test('a grow reads at most rehashSlotsPerAdd rows per add, never the whole table at once', () => {
  const hash = new NumberHash();
  let maxReads = 0;
  for (let id = 0; id < 200_000; id++) {
    hash.keys[id] = id * 7;
    hash.reads = 0;
    hash.add(hashOf(id * 7), id);
    maxReads = Math.max(maxReads, hash.reads);
  }
  assert.ok(maxReads <= rehashSlotsPerAdd, `one add read ${maxReads} rows`);
  for (let id = 0; id < 200_000; id += 997) assert.equal(hash.find(hashOf(id * 7), id * 7), id);
  assert.equal(hash.size, 200_000);
});

type Op =
  | { k: 'add'; key: number } | { k: 'remove'; key: number } | { k: 'find'; key: number }
  | { k: 'dropFrom'; back: number } | { k: 'clear' } | { k: 'reserve'; count: number };

test('property: adds, removals, lookups, suffix drops, clears and reserves during drains agree with a model', () => {
  const key = fc.integer({ min: 0, max: 400 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 12, arbitrary: fc.record({ k: fc.constant('add' as const), key }) },
    { weight: 5, arbitrary: fc.record({ k: fc.constant('remove' as const), key }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('find' as const), key }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('dropFrom' as const), back: fc.integer({ min: 1, max: 60 }) }) },
    { weight: 1, arbitrary: fc.constant({ k: 'clear' as const }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('reserve' as const), count: fc.integer({ min: 0, max: 500 }) }) },
  );
  fc.assert(fc.property(fc.array(op, { maxLength: 600 }), (ops) => {
    const hash = new NumberHash();
    const model = new Map<number, number>();                    // key → row id
    let nextId = 0;
    for (const o of ops) {
      switch (o.k) {
        case 'add':
          if (model.has(o.key)) break;
          hash.keys[nextId] = o.key;
          hash.add(hashOf(o.key), nextId);
          model.set(o.key, nextId++);
          break;
        case 'remove': {
          const id = model.get(o.key);
          assert.equal(hash.remove(hashOf(o.key), id ?? nextId), id !== undefined);
          model.delete(o.key);
          break;
        }
        case 'find': assert.equal(hash.find(hashOf(o.key), o.key), model.get(o.key) ?? -1); break;
        case 'dropFrom': {
          // A rollback drops the newest ids: every id from `from` on must be live (the caller knows the count).
          const from = Math.max(0, nextId - o.back);
          const dropped = [...model].filter(([, id]) => id >= from);
          if (dropped.length !== nextId - from) break;
          if (!hash.removeIdsFrom(from, dropped.length)) {
            for (const [k, id] of dropped) assert.ok(hash.remove(hashOf(k), id));
          }
          for (const [k] of dropped) model.delete(k);
          nextId = from;
          break;
        }
        case 'clear': hash.clear(); model.clear(); break;
        case 'reserve': hash.reserve(o.count); break;
      }
      assert.equal(hash.size, model.size);
    }
    const ids: number[] = [];
    hash.forEachId((id) => ids.push(id));
    assert.deepEqual(ids.sort((a, b) => a - b), [...model.values()].sort((a, b) => a - b));
    for (const [k, id] of model) assert.equal(hash.find(hashOf(k), k), id);
  }), { numRuns: 300 });
});
