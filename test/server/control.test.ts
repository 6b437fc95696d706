// Control data, restart persistence, name rules, the /sql JSON shape and listen addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlStore, DatabaseNameError, newDatabaseIdentity, parseDatabaseName } from '../../src/server/control.js';
import { programHash } from '../../src/server/program-hash.js';
import { parseListenAddr, startServer } from '../../src/server/main.js';
import { sqlResultToJson } from '../../src/sql/json.js';
import { compileCodec } from '../../src/sats/codec.js';
import { stringifyJson } from '../../src/sats/json.js';
import type { AlgebraicType, ProductType } from '../../src/sats/types.js';

test('databases, names, owners and tokens survive a server restart', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'stdb-restart-'));
  const basic = await readFile(new URL('../fixtures/modules/basic/dist/bundle.js', import.meta.url), 'utf8');
  try {
    let server = await startServer({ listenAddr: '127.0.0.1:0', dataDir, announce: false, log: () => {} });
    const { token, identity } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string; identity: string };
    const auth = { authorization: `Bearer ${token}` };
    const pub = await fetch(`${server.url}/v1/database/keep-me?host_type=Js`, { method: 'PUT', headers: auth, body: basic });
    const dbId = ((await pub.json()) as { Success: { database_identity: string } }).Success.database_identity;
    await fetch(`${server.url}/v1/database/keep-me/lock`, { method: 'POST', headers: auth });
    await server.close();

    server = await startServer({ listenAddr: '127.0.0.1:0', dataDir, announce: false, log: () => {} });
    try {
      assert.equal(await (await fetch(`${server.url}/v1/database/keep-me/identity`)).text(), dbId);
      const verify = await fetch(`${server.url}/v1/identity/${identity}/verify`, { headers: auth });
      assert.equal(verify.status, 204, 'a token minted before the restart still verifies');
      const owned = (await (await fetch(`${server.url}/v1/identity/${identity}/databases`)).json()) as { identities: string[] };
      assert.deepEqual(owned.identities, [dbId]);
      const call = await fetch(`${server.url}/v1/database/keep-me/call/add`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '["Zed"]',
      });
      assert.equal(call.status, 200, 'the database runs again after the restart');
      assert.equal((await fetch(`${server.url}/v1/database/keep-me`, { method: 'DELETE', headers: auth })).status, 403, 'lock survives');
    } finally {
      await server.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('ControlStore persists records and programs, and cleans up unused programs', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'stdb-control-'));
  try {
    const store = await ControlStore.open(dataDir);
    const identity = newDatabaseIdentity();
    const hash = await store.storeProgram('export default 1;');
    assert.equal(hash, await programHash('export default 1;'));
    await store.insert({ identity, ownerIdentity: 7n, hostType: 'Js', programHash: hash, createdMicros: 1n, names: ['a-b'], locked: false });
    const reopened = await ControlStore.open(dataDir);
    assert.equal(reopened.byName('a-b')?.identity, identity);
    assert.equal(reopened.resolve(identity.toString(16).padStart(64, '0'))?.ownerIdentity, 7n);
    assert.equal(await reopened.loadProgram(hash), 'export default 1;');
    assert.deepEqual(reopened.ownedBy(7n).map((r) => r.identity), [identity]);
    await reopened.remove(identity);
    await reopened.dropProgramIfUnused(hash);
    assert.deepEqual(await readdir(join(dataDir, 'control', 'programs')), []);
    assert.equal((await ControlStore.open(dataDir)).all().length, 0);
    assert.ok(!(await readdir(join(dataDir, 'control'))).some((f) => f.includes('.tmp')));
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('database name rules use the upstream messages', () => {
  for (const ok of ['a', 'abc-123', 'x-y-z', '0']) assert.equal(parseDatabaseName(ok), ok);
  const cases: [string, string][] = [
    ['', 'database names cannot be empty'],
    ['c200'.padEnd(64, 'a'), 'database names cannot be identities'],
    ['-a', 'invalid hyphen in database name'],
    ['a-', 'invalid hyphen in database name'],
    ['a--b', 'invalid hyphen in database name'],
    ['a_b', 'invalid characters in database name'],
    ['Abc', 'invalid characters in database name'],
    ['a/b', 'invalid characters in database name'],
  ];
  for (const [name, message] of cases) {
    assert.throws(() => parseDatabaseName(name), (e: unknown) => e instanceof DatabaseNameError && e.message === message, name);
  }
});

test('sqlResultToJson renders the /sql shape with untyped rows', () => {
  const schema: ProductType = {
    elements: [
      { name: 'id', algebraicType: { tag: 'U64' } },
      { name: 'name', algebraicType: { tag: 'String' } },
      { name: 'nick', algebraicType: { tag: 'Sum', value: { variants: [
        { name: 'some', algebraicType: { tag: 'String' } }, { name: 'none', algebraicType: { tag: 'Product', value: { elements: [] } } },
      ] } } },
    ],
  };
  const codec = compileCodec({ tag: 'Product', value: schema } as AlgebraicType, { types: [] });
  const row = codec.encode([2n ** 60n, 'Ada', { tag: 0, value: 'A' }]);
  const json = stringifyJson(sqlResultToJson({ schema, rows: [row], totalDurationMicros: 12, stats: { rowsInserted: 1 } }));
  assert.equal(json, '{"schema":{"elements":[{"name":{"some":"id"},"algebraic_type":{"U64":[]}},'
    + '{"name":{"some":"name"},"algebraic_type":{"String":[]}},{"name":{"some":"nick"},"algebraic_type":{"Sum":{"variants":['
    + '{"name":{"some":"some"},"algebraic_type":{"String":[]}},{"name":{"some":"none"},"algebraic_type":{"Product":{"elements":[]}}}]}}}]},'
    + `"rows":[[${2n ** 60n},"Ada",[0,"A"]]],"total_duration_micros":12,"stats":{"rows_inserted":1,"rows_deleted":0,"rows_updated":0}}`);
});

test('a busy port is reported with the upstream message', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'stdb-port-'));
  const first = await startServer({ listenAddr: '127.0.0.1:0', dataDir, announce: false, log: () => {} });
  try {
    await assert.rejects(startServer({ listenAddr: `127.0.0.1:${first.port}`, dataDir, announce: false, log: () => {} }),
      new RegExp(`^Error: Port ${first.port} is already in use\\. Please free up the port`));
  } finally {
    await first.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('parseListenAddr', () => {
  assert.deepEqual(parseListenAddr('127.0.0.1:3000'), { hostname: '127.0.0.1', port: 3000 });
  assert.deepEqual(parseListenAddr('[::1]:0'), { hostname: '::1', port: 0 });
  assert.throws(() => parseListenAddr('3000'));
  assert.throws(() => parseListenAddr('h:70000'));
});
