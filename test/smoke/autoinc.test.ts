// Upstream smoketests auto_inc.rs (test_autoinc_basic, test_autoinc_unique): an autoInc column of every integer type
// up to 128 bits, called by upstream's canonical reducer names (`add_u_8` for a Rust `add_u8`, the TypeScript export
// `add_u8` gets the same) through the real CLI. Unsigned and signed types run as two lanes, each on a database of its
// own, so the file stays fast; within a lane the calls and log reads are upstream's, in upstream's order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { smokeFile, type Smoke } from './helpers.js';

let st: Smoke;
smokeFile((s) => ({ st } = s));

const lanes = [['u_8', 'u_16', 'u_32', 'u_64', 'u_128'], ['i_8', 'i_16', 'i_32', 'i_64', 'i_128']];

async function ok(db: string, fn: string, ...args: string[]): Promise<void> {
  const r = await st.call(db, fn, ...args);
  assert.equal(r.code, 0, `${fn}: ${r.stderr}`);
}

function assertLogged(logs: string[], type: string, expected: string[]): void {
  for (const text of expected) assert.ok(logs.some((m) => m.includes(text)), `[${type}] expected '${text}' in ${JSON.stringify(logs)}`);
}

test('auto_inc basic: the sequence gives 1, 2, 3 for every integer type', async () => {
  await Promise.all(lanes.map(async (types) => {
    const db = await st.publish('smoke-autoinc-basic');
    for (const type of types) {
      await ok(db, `add_${type}`, '"Robert"', '1');
      await ok(db, `add_${type}`, '"Julie"', '2');
      await ok(db, `add_${type}`, '"Samantha"', '3');
      await ok(db, `say_hello_${type}`);
      assertLogged(await st.logMessages(db, 4), type, ['Hello, 3:Samantha!', 'Hello, 2:Julie!', 'Hello, 1:Robert!', 'Hello, World!']);
    }
  }));
});

test('auto_inc unique: a sequence value taken by an explicit key fails the insert, the rows stay', async () => {
  await Promise.all(lanes.map(async (types) => {
    const db = await st.publish('smoke-autoinc-unique');
    for (const type of types) {
      await ok(db, `update_${type}`, '"Robert"', '2');
      await ok(db, `add_new_${type}`, '"Success"');
      const failure = await st.call(db, `add_new_${type}`, '"Failure"');
      assert.notEqual(failure.code, 0, `[${type}] expected add_new to fail on the unique constraint`);
      await ok(db, `say_hello_${type}`);
      assertLogged(await st.logMessages(db, 4), type, ['Hello, 2:Robert!', 'Hello, 1:Success!', 'Hello, World!']);
    }
  }));
});
