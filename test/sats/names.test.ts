// Tests for sats/names.ts against the convert_case 0.6 examples in host-abi.md §4.3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toCamelCase, toPascalCase, toSnakeCase } from '../../src/sats/names.js';

test('snake case matches convert_case 0.6', () => {
  const cases: [string, string][] = [
    ['sayHello', 'say_hello'], ['listOverAge', 'list_over_age'], ['useSubmodule', 'use_submodule'],
    ['oneU8', 'one_u_8'], ['Person2', 'person_2'], ['testATable', 'test_a_table'], ['Player1Id', 'player_1_id'],
    ['AddPerson2', 'add_person_2'], ['already_snake', 'already_snake'], ['HTTPServer', 'http_server'],
    ['__leading__under', 'leading_under'], ['with-hyphen and space', 'with_hyphen_and_space'],
    ['vecU8', 'vec_u_8'], ['i128Value', 'i_128_value'], ['ABC', 'abc'], ['', ''], ['x', 'x'],
    ['insertOptionI32', 'insert_option_i_32'], ['u8', 'u_8'],
  ];
  for (const [input, want] of cases) assert.equal(toSnakeCase(input), want, input);
});

test('pascal and camel case', () => {
  assert.equal(toPascalCase('say_hello'), 'SayHello');
  assert.equal(toPascalCase('person'), 'Person');
  assert.equal(toPascalCase('oneU8'), 'OneU8');
  assert.equal(toPascalCase('HTTPServer'), 'HttpServer');
  assert.equal(toPascalCase('insert_one_u8'), 'InsertOneU8');
  assert.equal(toCamelCase('Some_variant'), 'someVariant');
  assert.equal(toCamelCase('MyVariant'), 'myVariant');
  assert.equal(toCamelCase('ABC'), 'abc');
  assert.equal(toCamelCase('player_1_id'), 'player1Id');
});
