// `spacetime init` for every built-in template (no registry installs): the listing, the files each project gets
// (client, module, shipped bindings, .gitignore, .env.local under every prefix, spacetime.json), no `file:` dependency
// on this checkout, the shipped bindings equal to what `spacetime generate` writes today, and the refusals.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, repoRoot, runCli, tempConfigPath } from '../harness.js';
import { builtinTemplates } from '../../src/cli/init/templates.js';
import { linkProjectDependencies, makeWorkDir } from './helpers.js';

let configPath: string;
let work: string;

before(() => {
  configPath = tempConfigPath();
  work = makeWorkDir('stdb-init-all-');
});

after(() => cleanupTempDirs());

/** The templates this server runs; basic-rs / basic-cs are checked in test/cli/init-languages.test.ts. */
const typescriptTemplates = builtinTemplates.filter((t) => t.language === 'typescript');

function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(dir, rel)).sort()) {
    const r = rel === '' ? e : `${rel}/${e}`;
    if (statSync(path.join(dir, r)).isDirectory()) out.push(...filesUnder(dir, r));
    else out.push(r);
  }
  return out;
}

test('init --template without a value (upstream) and --list print every template with its description', async () => {
  for (const args of [['init', '--template'], ['init', '--list'], ['init', '-t']]) {
    const res = await runCli(args, { configPath, cwd: work });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^Available templates:\n/);
    for (const t of builtinTemplates) assert.ok(res.stdout.includes(`  ${t.id} - ${t.description}\n`), `${args.join(' ')}: ${t.id}`);
    assert.match(res.stdout, /Create a project: spacetime init --template <id>/);
  }
  const ids = builtinTemplates.map((t) => t.id);
  for (const id of ['basic-ts', 'nodejs-ts', 'browser-ts', 'react-ts', 'chat-react-ts', 'vue-ts', 'svelte-ts', 'nextjs-ts',
    'angular-ts', 'nuxt-ts', 'astro-ts', 'remix-ts', 'tanstack-ts', 'money-exchange-react-ts',
    'hangman-react-ts']) {
    assert.ok(ids.includes(id), `upstream's ${id} is shipped`);
  }
  const onDisk = readdirSync(path.join(repoRoot, 'templates')).sort();
  assert.deepEqual(onDisk, [...ids].sort(), 'every templates/ folder is registered, every registered id has a folder');
});

test('every template: client, module, shipped bindings, .gitignore, .env.local and config; no file: dependency', async () => {
  for (const t of typescriptTemplates) {
    const res = await runCli(['init', `app-${t.id}`, '--template', t.id, '--non-interactive'], { configPath, cwd: work });
    assert.equal(res.code, 0, `${t.id}: ${res.stderr}`);
    const dir = path.join(work, `app-${t.id}`);
    const files = filesUnder(dir);
    for (const f of ['package.json', '.gitignore', 'README.md', 'spacetimedb/src/index.ts', 'spacetimedb/package.json',
      'spacetimedb/tsconfig.json', 'spacetimedb/.gitignore', 'src/module_bindings/index.ts', 'spacetime.json', 'spacetime.local.json',
      '.env.local']) {
      assert.ok(files.includes(f), `${t.id}: ${f}`);
    }
    assert.ok(!files.some((f) => path.basename(f) === '_gitignore'), `${t.id}: _gitignore renamed`);
    for (const f of files.filter((f) => path.basename(f) === 'package.json')) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      assert.doesNotMatch(text, /"file:|"link:|"workspace:/, `${t.id}/${f} stands alone`);
    }
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name: string; scripts: Record<string, string>;
      dependencies: Record<string, string> };
    assert.equal(pkg.name, `app-${t.id}`);
    assert.ok(pkg.scripts.dev !== undefined, `${t.id}: a dev script for \`spacetime dev\``);
    assert.ok(pkg.dependencies.spacetimedb !== undefined);
    if (t.client === 'node') assert.ok(pkg.dependencies.undici !== undefined, `${t.id}: undici for Node 20's missing WebSocket`);
    const database = (JSON.parse(readFileSync(path.join(dir, 'spacetime.local.json'), 'utf8')) as { database: string }).database;
    assert.match(database, new RegExp(`^app-${t.id}-[a-z0-9]{5}$`));
    const env = readFileSync(path.join(dir, '.env.local'), 'utf8');
    for (const prefix of ['SPACETIMEDB', 'VITE_SPACETIMEDB', 'NEXT_PUBLIC_SPACETIMEDB', 'PUBLIC_SPACETIMEDB']) {
      assert.ok(env.includes(`\n${prefix}_DB_NAME=${database}\n`) || env.startsWith(`${prefix}_DB_NAME=${database}\n`), `${t.id}: ${prefix}`);
    }
    assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'spacetime.json'), 'utf8')), {
      server: 'local', 'module-path': './spacetimedb',
      generate: [{ language: 'typescript', 'out-dir': './src/module_bindings' }], dev: { run: 'npm run dev' },
    });
  }
});

test("the shipped bindings are exactly what `spacetime generate` writes for each template's module", async () => {
  const checked = new Set<string>();
  for (const t of typescriptTemplates) {
    const moduleSource = readFileSync(path.join(repoRoot, 'templates', t.id, 'spacetimedb', 'src', 'index.ts'), 'utf8');
    const shipped = path.join(repoRoot, 'templates', t.id, 'src', 'module_bindings');
    const key = moduleSource + filesUnder(shipped).map((f) => readFileSync(path.join(shipped, f), 'utf8')).join('\0');
    if (checked.has(key)) continue; // same module and bindings as a template already checked
    checked.add(key);
    const dir = path.join(work, `app-${t.id}`);
    if (!existsSync(path.join(dir, 'node_modules'))) linkProjectDependencies(dir);
    const gen = await runCli(['generate', '--lang', 'typescript', '--out-dir', 'fresh_bindings', '--module-path', 'spacetimedb', '-y'],
      { configPath, cwd: dir });
    assert.equal(gen.code, 0, `${t.id}: ${gen.stderr}`);
    const fresh = path.join(dir, 'fresh_bindings');
    assert.deepEqual(filesUnder(fresh), filesUnder(shipped), t.id);
    for (const f of filesUnder(fresh)) {
      assert.equal(readFileSync(path.join(fresh, f), 'utf8'), readFileSync(path.join(shipped, f), 'utf8'),
        `${t.id}/src/module_bindings/${f} is stale: regenerate it with spacetime generate`);
    }
  }
  assert.ok(checked.size >= 4, 'the person, chat, money-exchange and hangman modules');
});

test('init refusals say what is missing', async () => {
  const noName = await runCli(['init', '--template', 'react-ts', '--non-interactive'], { configPath, cwd: work });
  assert.equal(noName.code, 1);
  assert.match(noName.stderr, /PROJECT_NAME is required in non-interactive mode/);
  const both = await runCli(['init', 'x', '--template', 'react-ts', '--lang', 'typescript'], { configPath, cwd: work });
  assert.equal(both.code, 1);
  assert.match(both.stderr, /Cannot specify both --template and --lang/);
  // Without a terminal, init never waits for an answer (stdin is a pipe here).
  const piped = await runCli(['init', 'x'], { configPath, cwd: work });
  assert.equal(piped.code, 1);
  assert.match(piped.stderr, /Either --template or --lang must be provided in non-interactive mode/);
});
