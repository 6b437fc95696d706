// Host: the row cache's index of number keys (NumberKeys in isolate-src.ts, evaluated from the same source the
// bootstrap splices in) against a Map, over random sets, deletes, lookups and clears of keys up to 2^48 (the widest
// keyAt makes a number), through its growth from 16 slots and with removed slots between a key and its home slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { numberKeysSource } from '../../src/host/isolate-src.js';

interface Keys {
  get(key: number): number | undefined; set(key: number, at: number): void; delete(key: number): void; clear(): void;
}
const NumberKeys = vm.runInNewContext(`${numberKeysSource}; NumberKeys`) as new () => Keys;

test('NumberKeys gives what a Map gives', () => {
  let seed = 12345;
  const random = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
  // Few distinct keys per round, so that sets, deletes and lookups hit the same keys; keys past 2^32 and near 2^48.
  const keyOf = (round: number): number => {
    const k = random(4000);
    return round % 3 === 0 ? k : round % 3 === 1 ? k * 0x100000000 + random(7) : 2 ** 48 - 1 - k;
  };
  const keys = new NumberKeys();
  for (let round = 0; round < 6; round++) {
    const model = new Map<number, number>();
    for (let i = 0; i < 60_000; i++) {
      const key = keyOf(round), op = random(10);
      if (op < 5) { keys.set(key, i); model.set(key, i); }
      else if (op < 7) { keys.delete(key); model.delete(key); }
      else assert.equal(keys.get(key), model.get(key), `round ${round}, op ${i}: key ${key}`);
    }
    for (const [key, at] of model) assert.equal(keys.get(key), at, `round ${round}: key ${key} at the end`);
    assert.equal(keys.get(2 ** 47 + 5), undefined);
    keys.clear();
    for (const key of model.keys()) assert.equal(keys.get(key), undefined, 'cleared');
  }
  keys.set(0, 0);
  assert.equal(keys.get(0), 0, 'key 0 at offset 0');
});
