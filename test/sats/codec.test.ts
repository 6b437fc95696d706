// Tests for sats/bsatn.ts and sats/codec.ts: round trips of every type, wide-integer edges, strictness errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BsatnReader, BsatnWriter } from '../../src/sats/bsatn.js';
import { compileCodec, resolveType } from '../../src/sats/codec.js';
import { SatsError, type AlgebraicType, type Typespace, type Value } from '../../src/sats/types.js';

const empty: Typespace = { types: [] };
const prim = (tag: string): AlgebraicType => ({ tag } as AlgebraicType);
const product = (...fields: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Product', value: { elements: fields.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const sum = (...vs: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Sum', value: { variants: vs.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const unit = product();
const option = (t: AlgebraicType) => sum(['some', t], ['none', unit]);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function roundTrip(type: AlgebraicType, value: Value, expectHex?: string, ts = empty): void {
  const c = compileCodec(type, ts);
  const bytes = c.encode(value);
  if (expectHex !== undefined) assert.equal(hex(bytes), expectHex);
  assert.deepEqual(c.decode(bytes), value);
  const r = new BsatnReader(bytes);
  c.skip(r);
  assert.equal(r.offset, bytes.length);
}

test('integer edges round trip with exact little-endian bytes', () => {
  roundTrip(prim('U8'), 255, 'ff');
  roundTrip(prim('I8'), -128, '80');
  roundTrip(prim('U16'), 0x1234, '3412');
  roundTrip(prim('I16'), -2, 'feff');
  roundTrip(prim('U32'), 0xffffffff, 'ffffffff');
  roundTrip(prim('I32'), -2147483648, '00000080');
  roundTrip(prim('U64'), 2n ** 64n - 1n, 'ff'.repeat(8));
  roundTrip(prim('I64'), -(2n ** 63n), '00'.repeat(7) + '80');
  roundTrip(prim('U128'), 2n ** 128n - 1n, 'ff'.repeat(16));
  roundTrip(prim('U128'), 1n, '01' + '00'.repeat(15));
  roundTrip(prim('I128'), -(2n ** 127n), '00'.repeat(15) + '80');
  roundTrip(prim('I128'), -1n, 'ff'.repeat(16));
  roundTrip(prim('I128'), 2n ** 127n - 1n, 'ff'.repeat(15) + '7f');
  roundTrip(prim('U256'), 2n ** 256n - 1n, 'ff'.repeat(32));
  roundTrip(prim('U256'), 2n ** 200n, '00'.repeat(25) + '01' + '00'.repeat(6));
  roundTrip(prim('I256'), -(2n ** 255n), '00'.repeat(31) + '80');
  roundTrip(prim('I256'), -1n, 'ff'.repeat(32));
  roundTrip(prim('I256'), -(2n ** 130n) - 5n, undefined);
  roundTrip(prim('I256'), 2n ** 255n - 1n, 'ff'.repeat(31) + '7f');
});

test('floats, bool, strings, bytes', () => {
  roundTrip(prim('F32'), 1.5, '0000c03f');
  roundTrip(prim('F64'), -0.25, '000000000000d0bf');
  roundTrip(prim('F64'), Infinity);
  const nan = compileCodec(prim('F64'), empty);
  assert.ok(Number.isNaN(nan.decode(nan.encode(NaN))));
  roundTrip(prim('Bool'), true, '01');
  roundTrip(prim('Bool'), false, '00');
  roundTrip(prim('String'), 'hé😀', '07000000' + Buffer.from('hé😀').toString('hex'));
  roundTrip(prim('String'), 'x'.repeat(1000));
  roundTrip(prim('String'), '');
  roundTrip({ tag: 'Array', value: prim('U8') }, new Uint8Array([1, 2, 3]), '03000000010203');
});

test('products, sums, options, arrays, nested', () => {
  const row = product(['id', prim('U64')], ['name', prim('String')], ['tags', { tag: 'Array', value: prim('String') }],
    ['nick', option(prim('String'))]);
  roundTrip(row, [7n, 'ann', ['a', 'b'], { tag: 0, value: 'x' }]);
  roundTrip(row, [7n, 'ann', [], { tag: 1, value: [] }]);
  roundTrip(unit, [], '');
  roundTrip(sum(['a', unit], ['b', prim('U8')]), { tag: 1, value: 9 }, '0109');
  roundTrip({ tag: 'Array', value: { tag: 'Array', value: prim('U8') } }, [new Uint8Array([1]), new Uint8Array()]);
});

test('recursive types through Refs compile and round trip', () => {
  // List = Sum { nil: (), cons: Product { head: i32, tail: Ref(0) } }
  const ts: Typespace = { types: [sum(['nil', unit], ['cons', product(['head', prim('I32')], ['tail', { tag: 'Ref', value: 0 }])])] };
  const list: Value = { tag: 1, value: [1, { tag: 1, value: [2, { tag: 0, value: [] }] }] };
  roundTrip({ tag: 'Ref', value: 0 }, list, undefined, ts);
  assert.equal(resolveType({ tag: 'Ref', value: 0 }, ts).tag, 'Sum');
  assert.throws(() => compileCodec({ tag: 'Ref', value: 5 }, ts), /out of range/);
  const loop: Typespace = { types: [{ tag: 'Ref', value: 0 }] };
  assert.throws(() => resolveType({ tag: 'Ref', value: 0 }, loop), /cycle/);
});

function decodeError(type: AlgebraicType, hexInput: string, pattern: RegExp, ts = empty): void {
  const c = compileCodec(type, ts);
  const bytes = Buffer.from(hexInput, 'hex');
  assert.throws(() => c.decode(new Uint8Array(bytes)), (e: unknown) => {
    assert.ok(e instanceof SatsError, String(e));
    assert.match(e.message, pattern);
    return true;
  });
  // skip validates too
  assert.throws(() => c.skip(new BsatnReader(new Uint8Array(bytes))), SatsError);
}

test('decode is strict: truncated, bad bool, bad tag, bad UTF-8 (errors name the field and offset)', () => {
  decodeError(prim('U32'), '0102', /truncated.*u32.*at byte 0/);
  decodeError(prim('Bool'), '02', /invalid bool byte 2.*at byte 0/);
  decodeError(product(['a', prim('U8')], ['flag', prim('Bool')]), '0703', /^flag: invalid bool byte 3 \(expected 0 or 1\) \(at byte 1\)$/);
  decodeError(option(prim('U8')), '02', /invalid sum tag 2/);
  decodeError(prim('String'), '02000000c328', /invalid UTF-8.*at byte 4/);
  decodeError(prim('String'), '05000000616263', /truncated/);
  const nested = product(['row', product(['items', { tag: 'Array', value: product(['balance', prim('Bool')]) }])]);
  decodeError(nested, '020000000105', /^row\.items\[1\]\.balance: invalid bool byte 5 .*\(at byte 5\)$/);
  // trailing bytes are an error for decode (not for read)
  const c = compileCodec(prim('U8'), empty);
  assert.throws(() => c.decode(new Uint8Array([1, 2])), /trailing bytes.*1 bytes left over.*at byte 1/);
  const r = new BsatnReader(new Uint8Array([1, 2]));
  assert.equal(c.read(r), 1);
  assert.equal(r.offset, 1);
});

test('encode checks the JS shape and names the field', () => {
  const row = product(['id', prim('U64')], ['balance', prim('U32')], ['data', { tag: 'Array', value: prim('U8') }]);
  const c = compileCodec(row, empty);
  assert.throws(() => c.encode([1, 2, new Uint8Array()]), /: id: expected a bigint u64/);
  assert.throws(() => c.encode([1n, -1, new Uint8Array()]), /: balance: expected an integer u32/);
  assert.throws(() => c.encode([1n, 1.5, new Uint8Array()]), /balance: expected an integer u32/);
  assert.throws(() => c.encode([1n, 2, [1, 2]]), /data: expected a Uint8Array/);
  assert.throws(() => c.encode([1n, 2]), /product of 3 fields/);
  const s = compileCodec(option(prim('U8')), empty);
  assert.throws(() => s.encode({ tag: 3, value: [] }), /invalid sum tag 3/);
  assert.throws(() => s.encode({ tag: 0, value: 256 }), /some: expected an integer u8/);
  assert.throws(() => compileCodec(prim('U256'), empty).encode(2n ** 256n), /u256/);
  assert.throws(() => compileCodec(prim('I128'), empty).encode(2n ** 127n), /i128/);
  assert.throws(() => compileCodec(prim('String'), empty).encode(5), /expected a string/);
});

test('writer grows, resets and finish() copies; readBytes is a subarray', () => {
  const w = new BsatnWriter(1);
  for (let i = 0; i < 1000; i++) w.writeU32(i);
  assert.equal(w.lengthBytes, 4000);
  const a = w.finish();
  w.reset();
  w.writeU8(9);
  assert.equal(a[0], 0);
  assert.equal(w.finish().length, 1);
  const input = new Uint8Array([2, 0, 0, 0, 5, 6]);
  const sub = new BsatnReader(input).readBytes();
  assert.equal(sub.buffer, input.buffer);
  assert.deepEqual([...sub], [5, 6]);
  const rOff = new BsatnReader(input, 4);
  assert.equal(rOff.readU8(), 5);
});

test('throughput: 100k row encodes+decodes well under a second', () => {
  const row = product(['id', prim('U64')], ['name', prim('String')], ['balance', prim('I64')], ['ok', prim('Bool')]);
  const c = compileCodec(row, empty);
  const w = new BsatnWriter();
  const start = performance.now();
  for (let i = 0; i < 100_000; i++) {
    w.reset();
    c.write(w, [BigInt(i), 'user' + (i & 255), -5n, true]);
    c.read(new BsatnReader(w.written()));
  }
  const ms = performance.now() - start;
  assert.ok(ms < 1500, `took ${ms} ms`);
});

test('array counts are bounded before any element is read (issue 11 item 3)', async () => {
  const { satsArrayElementsMax, satsZeroSizeArrayElementsMax } = await import('../../src/limits.js');
  const { minSizeBytes } = await import('../../src/sats/codec.js');
  const u32le = (n: number) => { const w = new BsatnWriter(); w.writeU32(n); return w.finish(); };
  const units = compileCodec({ tag: 'Array', value: unit }, empty);
  // 2^32−1 unit elements take 4 bytes of input: refused at once, neither materialised nor iterated.
  const started = performance.now();
  assert.throws(() => units.decode(u32le(0xffffffff)),
    /array of 4294967295 elements exceeds the limit of 65536 elements of a zero-size type \(satsZeroSizeArrayElementsMax\) \(at byte 0\)/);
  assert.throws(() => units.skip(new BsatnReader(u32le(0xffffffff))), /satsZeroSizeArrayElementsMax/);
  assert.ok(performance.now() - started < 100);
  assert.equal((units.decode(u32le(satsZeroSizeArrayElementsMax)) as Value[]).length, satsZeroSizeArrayElementsMax);
  assert.throws(() => units.decode(u32le(satsZeroSizeArrayElementsMax + 1)), /satsZeroSizeArrayElementsMax/);
  // Elements that take bytes: the count must fit the bytes left, and the general limit holds too.
  const u32s = compileCodec({ tag: 'Array', value: prim('U32') }, empty);
  assert.throws(() => u32s.decode(new Uint8Array([0xe8, 0x03, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])),
    /array of 1000 elements needs at least 4000 bytes but only 8 remain \(at byte 0\)/);
  assert.throws(() => compileCodec({ tag: 'Array', value: prim('Bool') }, empty).skip(new BsatnReader(u32le(satsArrayElementsMax + 1))),
    /exceeds the limit of 16777216 elements \(satsArrayElementsMax\)/);
  // The field path leads the message, as for every decoding error.
  const args = compileCodec(product(['items', { tag: 'Array', value: unit }]), empty);
  assert.throws(() => args.decode(u32le(0xffffffff)), /^SatsError: items: array of 4294967295/);
  // Minimum sizes: products add, sums take the tag plus their smallest variant, recursion through a sum terminates.
  const list: Typespace = { types: [sum(['nil', unit], ['cons', product(['head', prim('I64')], ['tail', { tag: 'Ref', value: 0 }])])] };
  assert.equal(minSizeBytes({ tag: 'Ref', value: 0 }, list), 1);
  assert.equal(minSizeBytes(product(['a', prim('U8')], ['b', prim('String')], ['c', unit]), empty), 5);
  assert.equal(minSizeBytes(product(['nested', product()]), empty), 0);
});

test('anyBytesWidth: set only where every byte string of that width decodes, and then it does', () => {
  const numbers = product(['a', prim('U32')], ['b', prim('I64')], ['c', product(['d', prim('F32')], ['e', prim('U256')])]);
  const refTs: Typespace = { types: [numbers] };
  assert.equal(compileCodec(numbers, empty).anyBytesWidth, 4 + 8 + 4 + 32);
  assert.equal(compileCodec(product(['r', { tag: 'Ref', value: 0 } as AlgebraicType]), refTs).anyBytesWidth, 48);
  assert.equal(compileCodec(product(), empty).anyBytesWidth, 0);
  // A bool takes one byte but only 0 or 1; sums have tags; strings and arrays lengths: none has a fixed valid width.
  for (const t of [prim('Bool'), product(['a', prim('U32')], ['b', prim('Bool')]), option(prim('U8')), prim('String'),
    { tag: 'Array', value: prim('U8') } as AlgebraicType]) {
    assert.equal(compileCodec(t, empty).anyBytesWidth, undefined, JSON.stringify(t));
  }
  // A recursive type has no width and does not loop.
  const rec: Typespace = { types: [product(['next', { tag: 'Ref', value: 0 } as AlgebraicType])] };
  assert.equal(compileCodec({ tag: 'Ref', value: 0 } as AlgebraicType, rec).anyBytesWidth, undefined);
  // What the width promises: random bytes of that width decode to the end.
  const c = compileCodec(numbers, empty);
  for (let i = 0; i < 200; i++) {
    const bytes = new Uint8Array(c.anyBytesWidth!).map(() => Math.floor(Math.random() * 256));
    const r = new BsatnReader(bytes);
    c.skip(r);
    assert.equal(r.offset, bytes.length);
  }
});
