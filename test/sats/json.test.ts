// Tests for sats/json.ts: SATS-JSON output and strict input, wide integers, text helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseJson, stringifyJson, typeToJson, valueFromJson, valueToJson, valueToUntypedJson,
} from '../../src/sats/json.js';
import { SatsError, type AlgebraicType, type Typespace, type Value } from '../../src/sats/types.js';

const ts: Typespace = { types: [] };
const prim = (tag: string): AlgebraicType => ({ tag } as AlgebraicType);
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const product = (...fields: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Product', value: { elements: fields.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const sum = (...vs: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Sum', value: { variants: vs.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const option = (t: AlgebraicType) => sum(['some', t], ['none', unit]);
const identity = product(['__identity__', prim('U256')]);

const row = product(
  ['id', prim('U64')], ['name', prim('String')], ['big', prim('I128')], ['huge', prim('I256')],
  ['owner', identity], ['nick', option(prim('String'))], ['data', { tag: 'Array', value: prim('U8') }],
  ['score', prim('F32')], ['color', sum(['Red', unit], ['Custom', prim('U32')])], ['ok', prim('Bool')],
);
const value: Value = [
  2n ** 64n - 1n, 'ann', -(2n ** 100n), -255n, [0xc200n], { tag: 1, value: [] }, new Uint8Array([0xde, 0xad]),
  Math.fround(0.1), { tag: 1, value: 7 }, true,
];

test('typed output matches upstream serde shapes', () => {
  const json = valueToJson(row, value, ts);
  const text = stringifyJson(json);
  assert.equal(text, '{"id":18446744073709551615,"name":"ann","big":-1267650600228229401496703205376,' +
    '"huge":"-0xff","owner":{"__identity__":"0xc200"},"nick":{"none":[]},"data":"dead","score":0.1,' +
    '"color":{"Custom":7},"ok":true}');
  assert.deepEqual(valueFromJson(row, parseJson(text), ts), value);
  assert.deepEqual(valueToJson(prim('F64'), NaN, ts), null);
  assert.deepEqual(valueToJson(option(prim('U8')), { tag: 0, value: 3 }, ts), { some: 3 });
  assert.deepEqual(valueToJson(unit, [], ts), []);
});

test('untyped output: products as arrays, sums as [tag, payload]', () => {
  const json = valueToUntypedJson(row, value, ts) as unknown[];
  assert.equal(json[0], 2n ** 64n - 1n);
  assert.deepEqual(json[4], ['0xc200']);
  assert.deepEqual(json[5], [1, []]);
  assert.deepEqual(json[8], [1, 7]);
});

test('input accepts upstream alternatives', () => {
  const p = product(['a', prim('U8')], ['b', option(prim('String'))]);
  assert.deepEqual(valueFromJson(p, [1, { some: 'x' }], ts), [1, { tag: 0, value: 'x' }]);
  assert.deepEqual(valueFromJson(p, { b: null, a: 2 }, ts), [2, { tag: 1, value: [] }]);
  assert.deepEqual(valueFromJson(p, { a: 2, b: [1, []] }, ts), [2, { tag: 1, value: [] }]);
  assert.deepEqual(valueFromJson(p, { a: 2, b: { '0': 'y' } }, ts), [2, { tag: 0, value: 'y' }]);
  assert.deepEqual(valueFromJson(p, { a: 2, b: ['some', 'z'] }, ts), [2, { tag: 0, value: 'z' }]);
  assert.deepEqual(valueFromJson(unit, {}, ts), []);
  assert.deepEqual(valueFromJson({ tag: 'Array', value: prim('U8') }, [1, 2], ts), new Uint8Array([1, 2]));
  assert.deepEqual(valueFromJson(identity, { __identity__: '0x' + 'ab'.repeat(32) }, ts), [BigInt('0x' + 'ab'.repeat(32))]);
  assert.deepEqual(valueFromJson(identity, 'ab'.repeat(32), ts), [BigInt('0x' + 'ab'.repeat(32))]);
  assert.equal(valueFromJson(prim('U64'), 5, ts), 5n);
  assert.equal(valueFromJson(prim('F32'), 0.1, ts), Math.fround(0.1));
});

test('input is strict and errors name the field path and expected type', () => {
  const nested = product(['player', product(['stats', { tag: 'Array', value: product(['hp', prim('U16')]) }])]);
  const bad = (t: AlgebraicType, j: unknown, re: RegExp) =>
    assert.throws(() => valueFromJson(t, j, ts), (e: unknown) => e instanceof SatsError && re.test(e.message));
  bad(nested, { player: { stats: [{ hp: 1 }, { hp: 'x' }] } }, /^player\.stats\[1\]\.hp: expected an integer u16, got string "x"$/);
  bad(nested, { player: { stats: [{ hp: 70000 }] } }, /hp: expected an integer u16 in range/);
  bad(product(['a', prim('U8')]), {}, /missing field `a`/);
  bad(product(['a', prim('U8')]), { a: 1, z: 2 }, /unknown field `z`/);
  bad(product(['a', prim('U8')]), [1, 2], /expected a product of 1 fields/);
  bad(option(prim('U8')), { maybe: 1 }, /expected a variant of some \| none/);
  bad(option(prim('U8')), { some: 1, none: [] }, /expected a sum/);
  bad(prim('Bool'), 1, /expected a bool/);
  bad(prim('U64'), '5', /expected an integer u64/);
  bad(prim('U64'), 2 ** 60, /beyond 2\^53/);
  bad(prim('I32'), 1.5, /expected an integer i32/);
  bad({ tag: 'Array', value: prim('U8') }, 'abc', /hex/);
  bad(prim('U256'), 'xyz', /hex string/);
});

test('typeToJson and big-int text helpers', () => {
  assert.deepEqual(typeToJson(product(['x', prim('U32')])),
    { Product: { elements: [{ name: { some: 'x' }, algebraic_type: { U32: [] } }] } });
  assert.deepEqual(typeToJson({ tag: 'Array', value: { tag: 'Ref', value: 3 } }), { Array: { Ref: 3 } });
  assert.deepEqual(typeToJson({ tag: 'Sum', value: { variants: [{ name: undefined, algebraicType: unit }] } }),
    { Sum: { variants: [{ name: { none: [] }, algebraic_type: { Product: { elements: [] } } }] } });
  assert.deepEqual(parseJson('[18446744073709551615, 1.5e3, "12345678901234567890", -9007199254740993, 3]'),
    [18446744073709551615n, 1500, '12345678901234567890', -9007199254740993n, 3]);
  assert.equal(stringifyJson({ a: [1n, -(2n ** 70n)], s: 'x' }), '{"a":[1,-1180591620717411303424],"s":"x"}');
  assert.equal(stringifyJson({ a: 1 }, 2), '{\n  "a": 1\n}');
});

test('bare Identity and ConnectionId text must be full-width hex; JSON arrays are bounded (issue 11 items 3, 12)', async () => {
  const { satsZeroSizeArrayElementsMax } = await import('../../src/limits.js');
  const connectionId = product(['__connection_id__', prim('U128')]);
  assert.throws(() => valueFromJson(identity, 'c2001234', ts), /invalid identity hex "c2001234": expected 64 hex characters, got 8/);
  assert.throws(() => valueFromJson(identity, 12, ts), /expected an identity as 64 hex characters, got number 12/);
  assert.throws(() => valueFromJson(connectionId, 'ab', ts), /invalid connection id hex "ab": expected 32 hex characters, got 2/);
  assert.deepEqual(valueFromJson(connectionId, '0x' + '01'.repeat(16), ts), [BigInt('0x' + '01'.repeat(16))]);
  // The product form is a u256, as upstream's: any width.
  assert.deepEqual(valueFromJson(identity, { __identity__: '0x12' }, ts), [0x12n]);
  const units = { tag: 'Array', value: product() } as const;
  assert.equal((valueFromJson(units, Array.from({ length: satsZeroSizeArrayElementsMax }, () => []), ts) as unknown[]).length, satsZeroSizeArrayElementsMax);
  assert.throws(() => valueFromJson(units, Array.from({ length: satsZeroSizeArrayElementsMax + 1 }, () => []), ts),
    /array of 65537 elements exceeds the limit of 65536 elements of a zero-size type/);
});
