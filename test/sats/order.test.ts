// Tests for sats/order.ts, sats/identity.ts and sats/special.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareValues } from '../../src/sats/order.js';
import {
  connectionIdFromHex, connectionIdToHex, identityFromBytes, identityFromHex, identityToBytes, identityToHex,
} from '../../src/sats/identity.js';
import { isScheduleAt, optionInner, specialKind } from '../../src/sats/special.js';
import { SatsError, type AlgebraicType, type Typespace } from '../../src/sats/types.js';

const ts: Typespace = { types: [] };
const prim = (tag: string): AlgebraicType => ({ tag } as AlgebraicType);
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const option = (t: AlgebraicType): AlgebraicType =>
  ({ tag: 'Sum', value: { variants: [{ name: 'some', algebraicType: t }, { name: 'none', algebraicType: unit }] } });
const one = (name: string, t: AlgebraicType): AlgebraicType =>
  ({ tag: 'Product', value: { elements: [{ name, algebraicType: t }] } });

test('strings compare by UTF-8 bytes, not UTF-16 code units', () => {
  const s = prim('String');
  // JS says '\uFFFF' > '\u{1F600}' (0xFFFF > 0xD83D); UTF-8 says the emoji (F0 ..) is bigger than EF BF BF.
  assert.ok('\uFFFF' > '\u{1F600}');
  assert.equal(compareValues(s, '\uFFFF', '\u{1F600}', ts), -1);
  assert.equal(compareValues(s, '\u{1F600}', '\uFFFF', ts), 1);
  assert.equal(compareValues(s, '\uE000', '\u{10000}', ts), -1);
  assert.equal(compareValues(s, 'a', 'b', ts), -1);
  assert.equal(compareValues(s, 'ab', 'a', ts), 1);
  assert.equal(compareValues(s, 'x', 'x', ts), 0);
  const words = ['b', '\u{1F600}', 'a', '\uFFFF', 'é', ''];
  const sorted = [...words].sort((a, b) => compareValues(s, a, b, ts));
  const byBytes = [...words].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(sorted, byBytes);
});

test('numbers, bools, floats (NaN last), sums (some < none), products, arrays, bytes', () => {
  assert.equal(compareValues(prim('I256'), -(2n ** 200n), 1n, ts), -1);
  assert.equal(compareValues(prim('U64'), 2n ** 64n - 1n, 0n, ts), 1);
  assert.equal(compareValues(prim('I32'), -5, 3, ts), -1);
  assert.equal(compareValues(prim('Bool'), false, true, ts), -1);
  const f = prim('F64');
  assert.equal(compareValues(f, NaN, Infinity, ts), 1);
  assert.equal(compareValues(f, -Infinity, NaN, ts), -1);
  assert.equal(compareValues(f, NaN, NaN, ts), 0);
  assert.equal(compareValues(f, -0, 0, ts), 0);
  assert.equal(compareValues(f, -1.5, 2, ts), -1);
  const o = option(prim('U32'));
  assert.equal(compareValues(o, { tag: 0, value: 1000 }, { tag: 1, value: [] }, ts), -1);
  assert.equal(compareValues(o, { tag: 0, value: 1 }, { tag: 0, value: 2 }, ts), -1);
  const p: AlgebraicType = { tag: 'Product', value: { elements: [
    { name: 'a', algebraicType: prim('U8') }, { name: 'b', algebraicType: prim('String') }] } };
  assert.equal(compareValues(p, [1, 'z'], [2, 'a'], ts), -1);
  assert.equal(compareValues(p, [1, 'b'], [1, 'a'], ts), 1);
  const arr: AlgebraicType = { tag: 'Array', value: prim('U16') };
  assert.equal(compareValues(arr, [1, 2], [1, 2, 0], ts), -1);
  assert.equal(compareValues(arr, [3], [1, 2, 0], ts), 1);
  const bytes: AlgebraicType = { tag: 'Array', value: prim('U8') };
  assert.equal(compareValues(bytes, new Uint8Array([1, 2]), new Uint8Array([1, 3]), ts), -1);
  assert.equal(compareValues(bytes, new Uint8Array([1]), new Uint8Array([1, 0]), ts), -1);
  // recursive type through a Ref
  const rts: Typespace = { types: [option({ tag: 'Ref', value: 0 })] };
  const depth1 = { tag: 0, value: { tag: 1, value: [] } };
  assert.equal(compareValues({ tag: 'Ref', value: 0 }, depth1, { tag: 1, value: [] }, rts), -1);
});

test('identity and connection id hex/bytes', () => {
  const hex = 'c200' + '0'.repeat(56) + '01ff';
  const id = identityFromHex(hex);
  assert.equal(identityToHex(id), hex);
  assert.equal(identityFromHex('0x' + hex.toUpperCase()), id);
  const bytes = identityToBytes(id);
  assert.equal(bytes[0], 0xff);
  assert.equal(bytes[31], 0xc2);
  assert.equal(identityFromBytes(bytes), id);
  assert.equal(identityToHex(1n), '0'.repeat(63) + '1');
  assert.throws(() => identityFromHex('c200'), SatsError);
  assert.throws(() => identityFromHex('g'.repeat(64)), /expected 64 hex characters/);
  assert.throws(() => identityToHex(-1n), /out of range/);
  assert.equal(connectionIdToHex(connectionIdFromHex('ab'.repeat(16))), 'ab'.repeat(16));
  assert.throws(() => connectionIdFromHex('ab'.repeat(17)), /32 hex/);
});

test('special types are recognised by shape', () => {
  const identity = one('__identity__', prim('U256'));
  const timestamp = one('__timestamp_micros_since_unix_epoch__', prim('I64'));
  const duration = one('__time_duration_micros__', prim('I64'));
  const sts: Typespace = { types: [identity] };
  assert.equal(specialKind({ tag: 'Ref', value: 0 }, sts), 'identity');
  assert.equal(specialKind(one('__identity__', prim('U128')), ts), undefined);
  assert.equal(specialKind(one('__uuid__', prim('U128')), ts), 'uuid');
  assert.equal(specialKind(one('__connection_id__', prim('U128')), ts), 'connectionId');
  assert.equal(specialKind(timestamp, ts), 'timestamp');
  const scheduleAt: AlgebraicType = { tag: 'Sum', value: { variants: [
    { name: 'Interval', algebraicType: duration }, { name: 'Time', algebraicType: timestamp }] } };
  assert.ok(isScheduleAt(scheduleAt, ts));
  assert.ok(!isScheduleAt(option(prim('U8')), ts));
  assert.deepEqual(optionInner(option(prim('U8')), ts), prim('U8'));
  assert.equal(optionInner(scheduleAt, ts), undefined);
});
