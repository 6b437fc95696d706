// `spacetime init` for Rust and C# projects, as upstream's CLI creates them: upstream's create_project.rs and
// cli/dev.rs `cli_init_with_template_creates_project` flows word for word, `--lang csharp` and its aliases, the
// template list, and the refusal of such a module by build / publish / dev (this server runs TypeScript modules only).
// The real CLI on real directories; no server (publish is refused before it would contact one).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { cleanupTempDirs, freePort, makeTempDir, runCli, tempConfigPath } from '../harness.js';

after(() => cleanupTempDirs());

function filesUnder(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(dir, rel)).sort()) {
    const r = rel === '' ? entry : `${rel}/${entry}`;
    if (statSync(path.join(dir, r)).isDirectory()) out.push(...filesUnder(dir, r));
    else out.push(r);
  }
  return out;
}

const rustRefusal = /Error: .*Cargo\.toml makes .* a Rust module: this server runs TypeScript modules only \(it hosts no wasm\), so it cannot build, publish or run Rust modules\./;

test('create_project (upstream, word for word): --lang=rust into --project-path succeeds, then refuses the existing project', async () => {
  const configPath = tempConfigPath();
  const tmpdir = makeTempDir('stdb-init-rs-');
  const init = (args: string[], cwd?: string) => runCli(['init', ...args], { configPath, cwd });
  assert.notEqual((await init(['--non-interactive', 'test-project'], tmpdir)).code, 0, 'without --lang');
  assert.notEqual((await init(['--non-interactive', '--project-path', tmpdir, 'test-project'])).code, 0, 'with --project-path only');
  const created = await init(['--non-interactive', '--lang=rust', '--project-path', tmpdir, 'test-project']);
  assert.equal(created.code, 0, created.stdout + created.stderr);
  assert.deepEqual(filesUnder(tmpdir), ['spacetime.json', 'spacetime.local.json', 'spacetimedb/.gitignore',
    'spacetimedb/Cargo.toml', 'spacetimedb/src/lib.rs']);
  assert.match(readFileSync(path.join(tmpdir, 'spacetimedb', 'Cargo.toml'), 'utf8'), /^\[package\]\nname = "test_project"\n/);
  assert.match(readFileSync(path.join(tmpdir, 'spacetimedb', 'Cargo.toml'), 'utf8'), /crate-type = \["cdylib"\]/);
  const lib = readFileSync(path.join(tmpdir, 'spacetimedb', 'src', 'lib.rs'), 'utf8');
  assert.match(lib, /#\[spacetimedb::table\(accessor = person, public\)\]/);
  assert.match(lib, /pub fn add\(ctx: &ReducerContext, name: String\)/);
  assert.match(lib, /pub fn say_hello\(ctx: &ReducerContext\)/);
  assert.deepEqual(JSON.parse(readFileSync(path.join(tmpdir, 'spacetime.json'), 'utf8')), { server: 'local', 'module-path': './spacetimedb' });
  assert.match(created.stdout, /Setting up server \(rust\)\.\.\.\n/);
  assert.match(created.stdout, /this server runs TypeScript modules only/);
  const again = await init(['--non-interactive', '--lang=rust', '--project-path', tmpdir, 'test-project']);
  assert.notEqual(again.code, 0, 'the project exists');
  assert.ok(again.stderr.includes(`Error: Cannot create new SpacetimeDB project in non-empty directory: ${tmpdir}\n`), again.stderr);
});

test('cli_init_with_template_creates_project (upstream, word for word): basic-rs; and basic-cs', async () => {
  const configPath = tempConfigPath();
  const tempDir = makeTempDir('stdb-init-rs-');
  const output = await runCli(['init', '--template', 'basic-rs', '--local', '--non-interactive', 'test-project'], { configPath, cwd: tempDir });
  assert.equal(output.code, 0, `init failed: ${output.stderr}`);
  const projectDir = path.join(tempDir, 'test-project');
  assert.ok(existsSync(path.join(projectDir, 'spacetimedb')), 'spacetimedb directory should exist');
  assert.ok(existsSync(path.join(projectDir, 'src')), 'src directory should exist');
  assert.deepEqual(filesUnder(projectDir), ['.gitignore', 'Cargo.toml', 'README.md', 'spacetime.json', 'spacetime.local.json',
    'spacetimedb/.gitignore', 'spacetimedb/Cargo.toml', 'spacetimedb/src/lib.rs', 'src/main.rs']);
  const client = readFileSync(path.join(projectDir, 'Cargo.toml'), 'utf8');
  assert.match(client, /^\[package\]\nname = "test_project"\n/);
  assert.match(client, /exclude = \["spacetimedb"\]/, 'the module is not a member of the client workspace');
  assert.match(client, /spacetimedb-sdk = /);
  assert.match(output.stdout, /Setting up client \(rust\)[\s\S]*cargo run\n/);

  const cs = await runCli(['init', '--template', 'basic-cs', '--local', '--non-interactive', 'cs-project'], { configPath, cwd: tempDir });
  assert.equal(cs.code, 0, cs.stderr);
  assert.deepEqual(filesUnder(path.join(tempDir, 'cs-project')), ['.gitignore', 'Program.cs', 'README.md', 'client.csproj',
    'spacetime.json', 'spacetime.local.json', 'spacetimedb/.gitignore', 'spacetimedb/Lib.cs', 'spacetimedb/StdbModule.csproj']);
  assert.match(readFileSync(path.join(tempDir, 'cs-project', 'client.csproj'), 'utf8'), /<Compile Remove="spacetimedb\/\*\*" \/>/);
  assert.match(cs.stdout, /spacetime generate --lang csharp --out-dir module_bindings --module-path spacetimedb\n\s+dotnet run\n/);
});

test('--lang csharp (also c#, any case) creates the C# module only; unknown languages are upstream\'s error', async () => {
  const configPath = tempConfigPath();
  const cwd = makeTempDir('stdb-init-cs-');
  for (const [i, lang] of ['csharp', 'c#', 'C#'].entries()) {
    const res = await runCli(['init', '--non-interactive', '--lang', lang, `mod-${i}`], { configPath, cwd });
    assert.equal(res.code, 0, `${lang}: ${res.stderr}`);
    assert.deepEqual(filesUnder(path.join(cwd, `mod-${i}`)), ['spacetime.json', 'spacetime.local.json',
      'spacetimedb/.gitignore', 'spacetimedb/Lib.cs', 'spacetimedb/StdbModule.csproj'], lang);
  }
  const lib = readFileSync(path.join(cwd, 'mod-0', 'spacetimedb', 'Lib.cs'), 'utf8');
  assert.match(lib, /public static void Add\(ReducerContext ctx, string name\)/);
  assert.match(readFileSync(path.join(cwd, 'mod-0', 'spacetimedb', 'StdbModule.csproj'), 'utf8'), /SpacetimeDB\.Runtime/);
  const unknown = await runCli(['init', '--non-interactive', '--lang', 'cobol', 'x'], { configPath, cwd });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /Error: Unknown server language: cobol\n/);
  assert.ok(!existsSync(path.join(cwd, 'x')), 'nothing created');
});

test('the template list shows basic-rs and basic-cs with their descriptions', async () => {
  const list = await runCli(['init', '--template'], { configPath: tempConfigPath(), cwd: makeTempDir('stdb-init-list-') });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^ {2}basic-rs - Rust module and native client skeleton/m);
  assert.match(list.stdout, /^ {2}basic-cs - C# module and console client skeleton/m);
});

test('build, publish and dev refuse a Rust or C# module at once, naming its language; nothing is written', async () => {
  const configPath = tempConfigPath();
  const cwd = makeTempDir('stdb-init-refuse-');
  assert.equal((await runCli(['init', '--template', 'basic-rs', '--local', '--non-interactive', 'rs'], { configPath, cwd })).code, 0);
  const project = path.join(cwd, 'rs');
  const before = filesUnder(project);
  const build = await runCli(['build'], { configPath, cwd: project });
  assert.equal(build.code, 1, build.stdout + build.stderr);
  assert.match(build.stderr, rustRefusal);
  assert.ok(build.stderr.includes(`${path.join(project, 'spacetimedb', 'Cargo.toml')} makes ${path.join(project, 'spacetimedb')} a Rust module`));
  const byPath = await runCli(['build', '--module-path', 'rs/spacetimedb'], { configPath, cwd });
  assert.match(byPath.stderr, rustRefusal);
  // Refused before any login or request: the server named here is not listening.
  const closed = `http://127.0.0.1:${await freePort()}`;
  const publish = await runCli(['publish', '--server', closed, '-y', 'some-db'], { configPath, cwd: project });
  assert.equal(publish.code, 1);
  assert.match(publish.stderr, rustRefusal);
  const dev = await runCli(['dev', '--server', closed, '-y', 'some-db'], { configPath, cwd: project });
  assert.equal(dev.code, 1);
  assert.match(dev.stderr, rustRefusal);
  assert.deepEqual(filesUnder(project), before, 'no dist/, no config written');

  assert.equal((await runCli(['init', '--lang', 'csharp', '--non-interactive', 'cs'], { configPath, cwd })).code, 0);
  const csBuild = await runCli(['build'], { configPath, cwd: path.join(cwd, 'cs') });
  assert.equal(csBuild.code, 1);
  assert.match(csBuild.stderr, /StdbModule\.csproj makes .* a C# module: this server runs TypeScript modules only/);

  const empty = makeTempDir('stdb-init-refuse-');
  const devTemplate = await runCli(['dev', '--template', 'basic-rs', '-y', 'x'], { configPath, cwd: empty });
  assert.equal(devTemplate.code, 1);
  assert.match(devTemplate.stderr, /Error: Template basic-rs is a Rust project: this server runs TypeScript modules only/);
  assert.deepEqual(readdirSync(empty), [], 'no project created');
});
