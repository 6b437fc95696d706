// Unit tests for the module in ./spacetimedb: they load it in-process (no server) with `createTestDatabase`.
// Run: npm test   (node --test test/)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase } from 'spacetimedb-ts/testing';

const modulePath = new URL('../spacetimedb', import.meta.url);

test('add inserts a person', async () => {
  const db = await createTestDatabase({ modulePath });
  try {
    await db.callReducer('add', { name: 'Alice' });
    assert.deepEqual(db.table('person').rows(), [{ name: 'Alice' }]);
  } finally {
    await db.close();
  }
});

test('sayHello greets everyone', async () => {
  const db = await createTestDatabase({ modulePath });
  try {
    await db.callReducer('add', { name: 'Bob' });
    await db.callReducer('sayHello', {});
    const messages = db.logs().map(l => l.message);
    assert.ok(messages.includes('Hello, Bob!'));
    assert.equal(messages.at(-1), 'Hello, World!');
    const [result] = await db.sql('SELECT * FROM person');
    assert.equal(result.rows.length, 1);
  } finally {
    await db.close();
  }
});
