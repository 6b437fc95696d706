// Unit tests for the psql renderer against upstream's sql::test_sql_format expectations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonLossless } from '../../src/cli/json.js';
import { formatDuration, formatSqlResult } from '../../src/cli/sqlformat.js';
import { rfc3339Text as formatTimestamp, rustFloatText as formatFloat } from '../../src/sats/text.js';

const col = (name: string, type: unknown) => ({ name: { some: name }, algebraic_type: type });
const special = (tag: string, inner: string) => ({ Product: { elements: [col(tag, { [inner]: [] })] } });
const trimLines = (s: string) => s.split('\n').map((l) => l.trimEnd()).join('\n');

test('integer columns render like psql', () => {
  const schema = { elements: ['I8', 'I16', 'I32', 'I64', 'I128', 'I256'].map((t) => col(`i_${t.slice(1)}`, { [t]: [] })) };
  const rows = parseJsonLossless('[[-25,-3224,-23443,-2344353,-234434897853,-234434897853]]');
  assert.equal(
    trimLines(formatSqlResult({ schema: schema as never, rows })),
    ` i_8 | i_16  | i_32   | i_64     | i_128         | i_256
-----+-------+--------+----------+---------------+---------------
 -25 | -3224 | -23443 | -2344353 | -234434897853 | -234434897853`,
  );
});

test('special types, floats, strings and bytes', () => {
  const schema = {
    elements: [
      col('bool', { Bool: [] }), col('f_32', { F32: [] }), col('f_64', { F64: [] }), col('str', { String: [] }),
      col('bytes', { Array: { U8: [] } }), col('identity', special('__identity__', 'U256')),
      col('connection_id', special('__connection_id__', 'U128')),
      col('timestamp', special('__timestamp_micros_since_unix_epoch__', 'I64')),
      col('duration', special('__time_duration_micros__', 'I64')), col('uuid', special('__uuid__', 'U128')),
    ],
  };
  const rows = parseJsonLossless(
    '[[true,594806.5625,-3454353.345389043,"This is spacetimedb","01020304050607",["0x0000000000000000000000000000000000000000000000000000000000000001"],[0],[0],[0],[0]]]',
  );
  const expected = ` bool | f_32      | f_64               | str                   | bytes            | identity                                                           | connection_id                      | timestamp                 | duration  | uuid
------+-----------+--------------------+-----------------------+------------------+--------------------------------------------------------------------+------------------------------------+---------------------------+-----------+----------------------------------------
 true | 594806.56 | -3454353.345389043 | "This is spacetimedb" | 0x01020304050607 | 0x0000000000000000000000000000000000000000000000000000000000000001 | 0x00000000000000000000000000000000 | 1970-01-01T00:00:00+00:00 | +0.000000 | "00000000-0000-0000-0000-000000000000"`;
  assert.equal(trimLines(formatSqlResult({ schema: schema as never, rows })), expected);
});

test('products and sums', () => {
  const opt = { Sum: { variants: [col('some', { Bool: [] }), col('none', { Product: { elements: [] } })] } };
  const res = { Sum: { variants: [col('ok', { Bool: [] }), col('err', { String: [] })] } };
  const action = { Sum: { variants: [col('inactive', { Product: { elements: [] } }), col('active', { Product: { elements: [] } })] } };
  const tuple = { Product: { elements: [col('bool_opt', opt), col('bool_result', res), col('action', action)] } };
  const schema = { elements: [col('tuple', tuple)] };
  const rows = parseJsonLossless('[[[[0,true],[0,false],[1,[]]]]]');
  assert.equal(
    trimLines(formatSqlResult({ schema: schema as never, rows })),
    ` tuple
--------------------------------------------------------------------------------
 (bool_opt = (some = true), bool_result = (ok = false), action = (active = ()))`,
  );
});

test('wide integers stay exact and value helpers match Rust Display', () => {
  const schema = { elements: [col('u_64', { U64: [] }), col('i_256', { I256: [] })] };
  const rows = parseJsonLossless('[[18446744073709551615,"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"]]');
  assert.match(formatSqlResult({ schema: schema as never, rows }), / 18446744073709551615 \| -1/);
  assert.equal(formatFloat(1e21, false), '1000000000000000000000');
  assert.equal(formatFloat(1, false), '1');
  assert.equal(formatFloat(Math.fround(0.1), true), '0.1');
  assert.equal(formatTimestamp(1_700_000_000_123_000n), '2023-11-14T22:13:20.123+00:00');
  assert.equal(formatTimestamp(1_700_000_000_123_456n), '2023-11-14T22:13:20.123456+00:00');
  assert.equal(formatDuration(-1_500_000n), '-1.500000');
});

test('negative wide integers as the server writes them ("-0x…" strings, numbers) print in decimal', () => {
  const schema = { elements: [col('a', { I128: [] }), col('b', { I256: [] }), col('c', { I256: [] }), col('d', { U256: [] })] };
  const rows = parseJsonLossless('[[-170141183460469231731687303715884105728,"-0x10","0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","0x10"]]');
  assert.equal(
    trimLines(formatSqlResult({ schema: schema as never, rows })),
    ` a                                        | b   | c  | d
------------------------------------------+-----+----+----
 -170141183460469231731687303715884105728 | -16 | -1 | 16`,
  );
});
