// `spacetime build` for TypeScript: bundling the fixtures and upstream's three post-bundle checks.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { bundleModule, resolveModuleDir } from '../../src/cli/build.js';
import { CliError, ExitWithCode } from '../../src/cli/errors.js';
import { buildFixture, cleanupTempDirs, fixturesDir, makeTempDir, runCli } from '../harness.js';

after(cleanupTempDirs);

/** A throw-away module inside the repo's test tree, so `spacetimedb` resolves from the repo's node_modules. */
function tempModule(source: string): string {
  const dir = makeTempDir('stdb-mod-');
  // Temp dirs live outside the repo; point resolution at the repo's node_modules with a symlinked package.
  mkdirSync(path.join(dir, 'src'));
  mkdirSync(path.join(dir, 'node_modules'));
  writeFileSync(path.join(dir, 'package.json'), '{"name":"tmp","type":"module"}');
  writeFileSync(path.join(dir, 'src', 'index.ts'), source);
  return dir;
}

async function linkSpacetimedb(dir: string): Promise<void> {
  const { symlinkSync } = await import('node:fs');
  symlinkSync(path.join(fixturesDir, '..', '..', '..', 'node_modules', 'spacetimedb'), path.join(dir, 'node_modules', 'spacetimedb'));
}

test('the basic fixture bundles to dist/bundle.js with external spacetime:sys imports and a default export', async () => {
  const { bundlePath, code } = await buildFixture('basic');
  assert.equal(bundlePath, path.join(fixturesDir, 'basic', 'dist', 'bundle.js'));
  assert.match(code, /from "spacetime:sys@2\.0"/);
  assert.match(code, /export \{[^}]*\bdefault\b/s);
  assert.match(code, /\/\/# sourceMappingURL=data:application\/json;base64,/);
  assert.doesNotMatch(code, /process\.env\.NODE_ENV/);
});

test('every fixture bundles', async () => {
  for (const name of ['keynote', 'alltypes', 'bad-init', 'runaway']) {
    const { code } = await buildFixture(name);
    assert.match(code, /spacetime:sys@2/, name);
  }
});

test('a module without a default export is refused with upstream message', async () => {
  const dir = tempModule(`import { schema, table, t } from 'spacetimedb/server';
const s = schema({ a: table({}, { x: t.u8() }) });
export const r = s.reducer(() => {});
`);
  await linkSpacetimedb(dir);
  await assert.rejects(bundleModule(dir), (e: unknown) =>
    e instanceof CliError && e.message === "It seems like you haven't exported your schema. You must `export default schema(...);`");
});

test('a module that does not import spacetimedb/server is refused', async () => {
  const dir = tempModule('export default 1;\n');
  await assert.rejects(bundleModule(dir), (e: unknown) =>
    e instanceof CliError && e.message.startsWith("Your module doesn't import the `spacetimedb/server` package at all"));
});

test('a syntax error prints diagnostics and exits 1; a missing package is "Module not found"', async () => {
  const dir = tempModule('export default {;\n');
  await assert.rejects(bundleModule(dir), (e: unknown) => e instanceof ExitWithCode && e.code === 1);
  const dir2 = tempModule("import x from 'no-such-package-here';\nexport default x;\n");
  await assert.rejects(bundleModule(dir2), (e: unknown) => e instanceof ExitWithCode && e.code === 1);
});

test('module directory resolution and its errors', () => {
  const root = makeTempDir('stdb-res-');
  assert.throws(() => resolveModuleDir(undefined, root), /Could not find a SpacetimeDB module in spacetimedb\/ or the current directory/);
  mkdirSync(path.join(root, 'spacetimedb'));
  writeFileSync(path.join(root, 'spacetimedb', 'package.json'), '{}');
  assert.equal(resolveModuleDir(undefined, root), path.join(root, 'spacetimedb'));
  assert.throws(() => resolveModuleDir('nope', root), /Fatal Error: path nope does not exist\./);
  assert.throws(() => resolveModuleDir('spacetimedb/package.json', root), /exists but is not a directory\./);
});

test('tsc in node_modules: no tsconfig.json skips the type check with a note; with one, a type error fails the build', async () => {
  const { symlinkSync } = await import('node:fs');
  const dir = tempModule(`import { schema, table, t } from 'spacetimedb/server';
const s = schema({ a: table({}, { x: t.u8() }) });
export default s;
export const r = s.reducer(() => { const n: number = 'not a number'; void n; });
`);
  await linkSpacetimedb(dir);
  mkdirSync(path.join(dir, 'node_modules', '.bin'));
  symlinkSync(path.join(fixturesDir, '..', '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), path.join(dir, 'node_modules', '.bin', 'tsc'));
  const configPath = path.join(makeTempDir('stdb-cfg-'), 'cli.toml');
  const skipped = await runCli(['build', '-p', dir], { configPath });
  assert.equal(skipped.code, 0, skipped.stderr);
  assert.match(skipped.stderr, /no tsconfig\.json in .*: skipping the type check/);
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, target: 'ESNext', module: 'ESNext', moduleResolution: 'bundler', noEmit: true, skipLibCheck: true },
    include: ['src'],
  }));
  const checked = await runCli(['build', '-p', dir], { configPath });
  assert.notEqual(checked.code, 0, 'the type error fails the build');
  assert.match(checked.stdout + checked.stderr, /TS2322/);
});

test('parallel builds of one module each return the whole bundle and leave a whole dist/bundle.js', async () => {
  const { readFileSync } = await import('node:fs');
  const dir = path.join(fixturesDir, 'keynote');
  const results = await Promise.all(Array.from({ length: 8 }, () => bundleModule(dir)));
  const first = results[0]!.code;
  assert.ok(first.length > 1000);
  for (const r of results) assert.equal(r.code, first, 'every build returned the same complete bundle');
  assert.equal(readFileSync(results[0]!.bundlePath, 'utf8'), first, 'the file on disk is one whole bundle');
});
