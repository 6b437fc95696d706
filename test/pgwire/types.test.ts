// sql/pg-text.ts against the cell texts upstream's own encoder tests expect (crates/pg/src/encoder.rs tests:
// primitives, options/results/nested products, simple enums, special types), plus the formats' edge cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeColumns, iso8601DurationText, rowCells } from '../../src/sql/pg-text.js';
import { rfc3339Text, rustFloatText } from '../../src/sats/text.js';
import type { AlgebraicType, ProductType, Value } from '../../src/sats/types.js';

const unnamed = (...types: AlgebraicType[]): ProductType => ({ elements: types.map((algebraicType) => ({ name: undefined, algebraicType })) });
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const option = (t: AlgebraicType): AlgebraicType => ({ tag: 'Sum', value: { variants: [{ name: 'some', algebraicType: t }, { name: 'none', algebraicType: unit }] } });
const special = (name: string, tag: 'U256' | 'U128' | 'I64'): AlgebraicType => ({ tag: 'Product', value: { elements: [{ name, algebraicType: { tag } }] } });

test('primitives', () => {
  const tags = ['U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'I128', 'U128', 'I256', 'U256', 'F32', 'F64', 'String', 'Bool'] as const;
  const schema = unnamed(...tags.map((tag) => ({ tag }) as AlgebraicType));
  const row: Value[] = [1, -1, -2, 3, -4, 5, -6n, 7n, -8n, 9n, -10n, 11n, Math.fround(12.34), 56.78, 'test', true];
  assert.deepEqual(rowCells(schema, row), ['1', '-1', '-2', '3', '-4', '5', '-6', '7', '-8', '9', '-10', '11', '12.34', '56.78', 'test', 't']);
  assert.deepEqual(describeColumns(schema).map((c) => c.name).slice(0, 2), ['col_0', 'col_1']);
});

test('options, results, nested products and simple enums as upstream', () => {
  const some = option({ tag: 'I64' });
  assert.deepEqual(rowCells(unnamed(some, some), [{ tag: 0, value: 1n }, { tag: 1, value: [] }]), ['{"some": 1}', '{"none": {}}']);
  const result: AlgebraicType = { tag: 'Sum', value: { variants: [{ name: 'ok', algebraicType: { tag: 'I64' } }, { name: 'err', algebraicType: { tag: 'String' } }] } };
  assert.deepEqual(rowCells(unnamed(result, result), [{ tag: 0, value: 1n }, { tag: 1, value: 'error' }]), ['{"ok": 1}', '{"err": "error"}']);
  const color: AlgebraicType = { tag: 'Sum', value: { variants: [{ name: 'Gray', algebraicType: { tag: 'I64' } }] } };
  const inner = unnamed(color, option(color));
  const innerRow: Value[] = [{ tag: 0, value: 1n }, { tag: 0, value: { tag: 0, value: 2n } }];
  assert.deepEqual(rowCells(inner, innerRow), ['{"Gray": 1}', '{"some": {"Gray": 2}}']);
  const nested: AlgebraicType = { tag: 'Product', value: { elements: [{ name: 'x', algebraicType: { tag: 'Product', value: inner } }, { name: 'y', algebraicType: { tag: 'String' } }] } };
  assert.deepEqual(rowCells(unnamed(nested), [[innerRow, 'a']]), ['{"x": {"col_0": {"Gray": 1}, "col_1": {"some": {"Gray": 2}}}, "y": "a"}']);
  const names: AlgebraicType = { tag: 'Sum', value: { variants: ['A', 'B', 'C'].map((name) => ({ name, algebraicType: unit })) } };
  assert.deepEqual(rowCells(unnamed(names, names, names), [{ tag: 0, value: [] }, { tag: 1, value: [] }, { tag: 2, value: [] }]), ['A', 'B', 'C']);
});

test('special types', () => {
  const schema = unnamed(special('__identity__', 'U256'), special('__connection_id__', 'U128'), special('__time_duration_micros__', 'I64'),
    special('__timestamp_micros_since_unix_epoch__', 'I64'), { tag: 'Array', value: { tag: 'U8' } });
  const row: Value[] = [[0n], [0n], [0n], [1622545800000n], new TextEncoder().encode('test')];
  assert.deepEqual(rowCells(schema, row), [`\\x${'0'.repeat(64)}`, `\\x${'0'.repeat(32)}`, 'P0D', '1970-01-19T18:42:25.800+00:00', '\\x74657374']);
  assert.deepEqual(describeColumns(schema).map((c) => c.type.oid), [17, 17, 1186, 1114, 17]);
});

test('edge cases: JSON escaping, arrays, durations, timestamps, floats', () => {
  const rec: AlgebraicType = { tag: 'Product', value: { elements: [{ name: 's', algebraicType: { tag: 'String' } }, { name: 'a', algebraicType: { tag: 'Array', value: { tag: 'I32' } } }] } };
  assert.deepEqual(rowCells(unnamed(rec), [['say "hi"\n', [1, 2]]]), ['{"s": "say \\"hi\\"\\n", "a": [1, 2]}']);
  const words: AlgebraicType = { tag: 'Array', value: { tag: 'String' } };
  assert.deepEqual(rowCells(unnamed(words), [['plain', 'two words', 'q"b\\', '', 'NULL']]), ['{plain,"two words","q\\"b\\\\","","NULL"}']);
  assert.equal(iso8601DurationText(-1_000_000n), '-PT1S');
  assert.equal(iso8601DurationText(1_440_000_000n), 'PT1440S');
  assert.equal(iso8601DurationText(1_500n), 'PT0.0015S');
  assert.equal(rfc3339Text(0n), '1970-01-01T00:00:00+00:00');
  assert.equal(rfc3339Text(-1n), '1969-12-31T23:59:59.999999+00:00');
  assert.equal(rustFloatText(Math.fround(594806.58906), true), '594806.56'); // f32 spacing there is 1/16
  assert.equal(rustFloatText(1e21, false), '1000000000000000000000');
  assert.equal(rustFloatText(-Infinity, false), '-inf');
});
