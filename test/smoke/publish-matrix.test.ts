// Upstream smoketests cli/publish.rs: a module on disk published twice under one name, the republish flag matrix
// (no change / a client-breaking added column / a removed table, against --delete-data[=on-conflict], --yes and
// --break-clients), and a spacetime.json naming another database giving way to the command line. Upstream builds
// modules/module-test with cargo features; here the same three shapes are test/fixtures/modules/migrate-v1,
// migrate-add-column and migrate-remove-spare. Driven through the real CLI and one real server.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, makeTempDir, repoRoot, type TestServer } from '../harness.js';
import { smokeFile, type Smoke } from './helpers.js';

let server: TestServer;
let st: Smoke;
smokeFile((s) => ({ server, st } = s));

const publish = (modulePath: string, db: string, extra: string[] = []) =>
  st.cli(['publish', '--module-path', modulePath, '--server', server.url, '--yes=remote', db, ...extra]);

test('a module on disk publishes, and republishes under the same name', async () => {
  const dir = path.join(repoRoot, 'templates', 'chat-react-ts', 'spacetimedb');
  for (let i = 0; i < 2; i++) {
    const r = await publish(dir, `foobar-${process.pid}`);
    assert.equal(r.code, 0, r.stderr);
  }
});

const cases: { name: string; module: string; args: string[]; ok: boolean }[] = [
  { name: 'no change, --delete-data=on-conflict', module: 'migrate-v1', args: ['--delete-data=on-conflict'], ok: true },
  { name: 'no change, --delete-data --yes', module: 'migrate-v1', args: ['--delete-data', '--yes'], ok: true },
  { name: 'no change, no flag', module: 'migrate-v1', args: [], ok: true },
  { name: 'added column, --break-clients', module: 'migrate-add-column', args: ['--break-clients'], ok: true },
  { name: 'added column, no flag', module: 'migrate-add-column', args: [], ok: false },
  { name: 'added column, on-conflict, --break-clients', module: 'migrate-add-column', args: ['--delete-data=on-conflict', '--break-clients'], ok: true },
  { name: 'added column, on-conflict', module: 'migrate-add-column', args: ['--delete-data=on-conflict'], ok: false },
  { name: 'added column, --delete-data --yes', module: 'migrate-add-column', args: ['--delete-data', '--yes'], ok: true },
  { name: 'added column, --delete-data --yes --break-clients', module: 'migrate-add-column', args: ['--delete-data', '--yes', '--break-clients'], ok: true },
  { name: 'removed table, no flag', module: 'migrate-remove-spare', args: [], ok: false },
  { name: 'removed table, --delete-data --yes', module: 'migrate-remove-spare', args: ['--delete-data', '--yes'], ok: true },
  { name: 'removed table, on-conflict --yes', module: 'migrate-remove-spare', args: ['--delete-data=on-conflict', '--yes'], ok: true },
];

test('the republish matrix: which flags let each change through', async () => {
  const failures: string[] = [];
  for (const c of cases) {
    const db = `publish-matrix-${process.pid}-${cases.indexOf(c)}`;
    const first = await publish(path.join(fixturesDir, 'migrate-v1'), db);
    assert.equal(first.code, 0, first.stderr);
    const r = await publish(path.join(fixturesDir, c.module), db, c.args);
    if ((r.code === 0) !== c.ok) failures.push(`${c.name}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  }
  assert.deepEqual(failures, []);
});

test('a spacetime.json naming another database gives way to the database on the command line', async () => {
  const dir = makeTempDir('stdb-publish-config-');
  const init = await st.cli(['init', '--non-interactive', '--lang', 'typescript', '--project-path', dir, 'test-project']);
  assert.equal(init.code, 0, init.stderr);
  const moduleDir = path.join(dir, 'spacetimedb');
  // Upstream points the module at its local bindings crate; here node_modules links the installed library.
  mkdirSync(path.join(moduleDir, 'node_modules'));
  symlinkSync(path.join(repoRoot, 'node_modules', 'spacetimedb'), path.join(moduleDir, 'node_modules', 'spacetimedb'), 'dir');
  const build = await st.cli(['build', '--module-path', moduleDir]);
  assert.equal(build.code, 0, build.stderr);
  writeFileSync(path.join(moduleDir, 'spacetime.json'), '{\n  "database": "config-db-name"\n}');
  const r = await st.cli(['publish', '--server', server.url, '--yes=remote', `cli-db-name-${process.pid}`, '--module-path', moduleDir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`cli-db-name-${process.pid}`));
  assert.doesNotMatch(r.stdout + r.stderr, /config-db-name/);
});
