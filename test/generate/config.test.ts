// test/generate/config.test.ts — `spacetime generate` reading spacetime.json (upstream generate.rs
// get_filtered_generate_configs): `generate` entries with their own out-dir / language / source, a target's
// module-path inherited by its entries, the database glob, CLI flags beating configured values, `--no-config`,
// and the refusals for entry-specific flags with several entries and a glob matching nothing.
// Uses the prebuilt bundle of test/generate/fixtures/rich (built by bundleModule when absent) via `js-path`.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bundleModule } from '../../src/cli/build.js';
import { generateFromCli } from '../../src/cli/generate/command.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'stdb-generate-config-'));
let bundle = '';

before(async () => {
  const prebuilt = path.join(here, 'fixtures/rich/dist/bundle.js');
  bundle = existsSync(prebuilt) ? prebuilt : (await bundleModule(path.join(here, 'fixtures/rich'))).bundlePath;
});
after(() => rmSync(work, { recursive: true, force: true }));

function project(name: string, config: unknown): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'spacetime.json'), JSON.stringify(config, null, 2));
  return dir;
}

async function run(cwd: string, options: Parameters<typeof generateFromCli>[0] = {}): Promise<string[]> {
  const lines: string[] = [];
  await generateFromCli({ yes: true, cwd, print: (l) => lines.push(l), ...options });
  return lines;
}

describe('generate with spacetime.json', () => {
  it('generates every configured entry into its out-dir, relative to the config directory', async () => {
    const dir = project('two', {
      'js-path': bundle,
      children: [
        { database: 'alpha', generate: [{ language: 'typescript', 'out-dir': 'client-a/bindings', 'js-path': bundle }] },
        { database: 'beta', generate: [{ language: 'ts', 'out-dir': 'client-b/bindings', 'js-path': bundle }] },
      ],
    });
    mkdirSync(path.join(dir, 'sub'));
    const lines = await run(path.join(dir, 'sub'));
    assert.equal(lines[0], `Using configuration from ${path.join(dir, 'spacetime.json')}`);
    assert.ok(existsSync(path.join(dir, 'client-a/bindings/index.ts')));
    assert.ok(existsSync(path.join(dir, 'client-b/bindings/index.ts')));
    assert.equal(lines.filter((l) => l === 'Generate finished successfully.').length, 2);

    // The database glob selects a target; its entry alone is generated.
    rmSync(path.join(dir, 'client-a'), { recursive: true });
    rmSync(path.join(dir, 'client-b'), { recursive: true });
    await run(dir, { database: 'al*' });
    assert.ok(existsSync(path.join(dir, 'client-a/bindings/index.ts')));
    assert.ok(!existsSync(path.join(dir, 'client-b')));

    await assert.rejects(run(dir, { database: 'gamma' }),
      /No database target matches 'gamma'\. Available databases: alpha, beta/);
    await assert.rejects(run(dir, { lang: 'typescript' }), /Cannot use generate-entry-specific arguments \(--lang\)/);
    await assert.rejects(run(dir, { jsPath: bundle }), /Cannot use module-specific arguments \(--js-path\)/);
  });

  it('CLI flags beat the configured entry; a target module-path is inherited; --no-config ignores the file', async () => {
    const dir = project('one', {
      'module-path': './no-such-module',
      generate: [{ language: 'typescript', 'out-dir': './config-output' }],
    });
    // The entry inherits ./no-such-module from the target: building from it fails with upstream's message.
    await assert.rejects(run(dir), new RegExp(`Could not find module source at '${path.join(dir, 'no-such-module')}'`));

    const cliOut = path.join(dir, 'cli-output');
    const lines = await run(dir, { jsPath: bundle, outDir: 'cli-output' });
    assert.ok(existsSync(path.join(cliOut, 'index.ts')), 'the CLI out-dir (relative to the cwd) is used');
    assert.ok(!existsSync(path.join(dir, 'config-output')));
    assert.ok(lines.includes(`Skipping build. Instead we are inspecting ${bundle}`));

    const client = path.join(dir, 'elsewhere');
    mkdirSync(client);
    writeFileSync(path.join(client, 'package.json'), '{}');
    const plain = await run(client, { jsPath: bundle, noConfig: true });
    assert.ok(!plain.some((l) => l.startsWith('Using configuration')));
    assert.match(plain[0], /^Detected client language 'typescript' from '\.'/);
    assert.ok(existsSync(path.join(client, 'src/module_bindings/index.ts')));
  });

  it('an entry without a language and no --lang is refused', async () => {
    const dir = project('nolang', { generate: [{ 'out-dir': 'x', 'js-path': bundle }] });
    await assert.rejects(run(dir), /Required key 'language' is missing from the config file or CLI/);
    await run(dir, { lang: 'typescript' });
    assert.ok(existsSync(path.join(dir, 'x/index.ts')));
  });
});
