// `spacetime dev` generates bindings for every `generate` entry spacetime.json gives the target's module (each with
// its own out-dir and include-private), not just the first one.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { cleanupTempDirs, makeTempDir, repoRoot, tempConfigPath } from '../harness.js';
import { cliArgv } from './helpers.js';

after(cleanupTempDirs);

test('dev --skip-publish writes the bindings of each generate entry', async () => {
  const projectDir = makeTempDir('stdb-devgen-');
  const modulePath = path.join(repoRoot, 'test', 'fixtures', 'modules', 'basic');
  writeFileSync(path.join(projectDir, 'spacetime.json'), JSON.stringify({
    'module-path': modulePath,
    generate: [
      { language: 'typescript', 'out-dir': 'web/src/module_bindings' },
      { language: 'typescript', 'out-dir': 'bot/bindings' },
    ],
  }));
  const child = spawn(process.execPath, [...cliArgv(), '--config-path', tempConfigPath(), 'dev', '--skip-publish', '--run', 'node -e 0'],
    { cwd: projectDir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const deadline = Date.now() + 30_000;
    while (!/Skipping publish step/.test(out)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`dev did not get past generate:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
  }
  for (const dir of ['web/src/module_bindings', 'bot/bindings']) {
    const index = path.join(projectDir, dir, 'index.ts');
    assert.ok(existsSync(index), `${dir}/index.ts written:\n${out}`);
    assert.match(readFileSync(index, 'utf8'), /person/);
  }
  assert.equal(out.match(/Generating TypeScript module bindings/g)?.length, 2, out);
});
