// Host: loading official-library bundles into an isolate (host-abi §2) and the errors for bundles that cannot load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database } from '../../src/host/database.js';
import { PublishError } from '../../src/host/errors.js';
import { prepareProgram } from '../../src/host/program.js';
import { decodeRawModuleDef } from '../../src/sats/moduledef.js';
import { fixtureBundle } from './bundle.js';

const opts = { identity: 0xc200n, ownerIdentity: 0xabn };

async function publishFails(program: string | Uint8Array, pattern: RegExp): Promise<void> {
  await assert.rejects(Database.create(opts, program), (err: unknown) => {
    assert.ok(err instanceof PublishError, `expected PublishError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

test('basic module: describes as V10, reducer ids follow the Reducers section, canonical names', async () => {
  const db = await Database.create(opts, await fixtureBundle('basic'));
  try {
    const bytes = db.moduleDefBytes();
    assert.equal(bytes[0], 2, 'RawModuleDef::V10 tag');
    assert.ok(decodeRawModuleDef(bytes).sections.length > 0);
    assert.deepEqual(db.reducers.all.map((r) => [r.id, r.name]),
      [[0, 'add'], [1, 'init'], [2, 'on_connect'], [3, 'on_disconnect'], [4, 'say_hello']]);
    assert.equal(db.reducerByName('sayHello')?.name, 'say_hello', 'source names resolve too');
    assert.equal(db.reducers.lifecycle.init?.name, 'init');
  } finally {
    await db.close();
  }
});

test('the isolate has the polyfills and none of Node', async () => {
  const db = await Database.create(opts, await fixtureBundle('host-misc'));
  try {
    const r = await db.callReducerJson('polyfills', [], { identity: 1n, connectionId: 0n, jwtPayload: undefined });
    assert.equal(r.status, 'committed');
    const line = db.logs.tail(1)[0].message.split('|');
    assert.deepEqual(line, [
      'true', '1', '3', 'true', '11', 'héllo 😀', 'true', '4+6',
      'Math.random is not available in SpacetimeDB modules. Use ctx.random instead.',
      'undefined', 'undefined', 'undefined',
    ]);
  } finally {
    await db.close();
  }
});

test('a bundle that is not JavaScript is refused', async () => {
  await publishFails('export default {{{ not js', /not valid JavaScript/);
});

test('a bundle that is not UTF-8 is refused', async () => {
  await publishFails(new Uint8Array([0x65, 0xff, 0xfe]), /not valid UTF-8/);
});

test('a module without a default export is refused', async () => {
  await publishFails(`import { moduleHooks } from 'spacetime:sys@2.0';\nexport const x = moduleHooks;\n`,
    /must export schema as default export/);
});

test('a default export that is not a Schema is refused', async () => {
  await publishFails(`import 'spacetime:sys@2.0';\nexport default 42;\n`, /default export is not a Schema object/);
});

test('imports other than spacetime:sys@2.x cannot be resolved', async () => {
  await publishFails(`import fs from 'node:fs';\nexport default fs;\n`, /Could not find module "node:fs"/);
});

test('a newer sys version asks for a newer SpacetimeDB', async () => {
  await publishFails(`import 'spacetime:sys@2.9';\nexport default {};\n`, /newer version of SpacetimeDB/);
});

test('top-level evaluation errors fail the publish', async () => {
  await publishFails(`import 'spacetime:sys@2.0';\nthrow new Error('boom at load');\n`, /boom at load/);
});

test('sys modules export real functions and the moduleHooks symbol', async () => {
  // A hand-written "module" that records what the sys namespaces look like, then fails on purpose with that text.
  const probe = `import * as a from 'spacetime:sys@2.0'; import * as b from 'spacetime:sys@2.1';
    const all = { ...a, ...b };
    const fns = Object.keys(all).filter((k) => typeof all[k] === 'function').length;
    throw new Error('probe ' + fns + ' ' + String(a.moduleHooks === Symbol.for('SpacetimeDB.moduleHooks.v2')));`;
  await publishFails(probe, /probe 24 true/);
});

test('prepareProgram lowers `using` and caches by content', async () => {
  const src = `class H { [Symbol.dispose]() {} }\nexport function f() { using h = new H(); return 1; }\n`;
  const a = await prepareProgram(src);
  assert.doesNotMatch(a.code, /using h/);
  assert.equal(await prepareProgram(src), a);
});

test('pending top-level await is refused; a rejected one fails with its error', async () => {
  await publishFails(`import 'spacetime:sys@2.0';\nawait new Promise(() => {});\nexport default {};\n`,
    /top-level await and is pending/);
  await publishFails(`import 'spacetime:sys@2.0';\nawait Promise.reject(new Error('late boom'));\nexport default {};\n`,
    /late boom/);
});
