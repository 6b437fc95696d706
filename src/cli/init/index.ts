// `spacetime init` (cli-and-publish.md §1 init): creates a project from a built-in template. TypeScript projects run
// here; Rust and C# ones (`--lang rust|csharp`, `basic-rs`, `basic-cs`) are scaffolds as upstream's init writes them,
// for upstream's toolchains, since this server hosts no wasm (cli/build refuses to build them).
// Owns: copying a template's files into the project (the shipped bindings included, so the client builds before the
// first `spacetime generate`), the package names (package.json, Cargo.toml), the project's spacetime.json /
// spacetime.local.json / .env.local, its questions (asked only in a terminal), the server language names `--lang`
// accepts and the "Next steps" text. The registry and the env file are in init/templates.ts.
// May call: cli/config (server URL), cli/errors, cli/util (name rule), init/templates, init/prompt, node:fs, node:path.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CliConfig } from '../config.js';
import { CliError } from '../errors.js';
import { validateDatabaseName } from '../util.js';
import { ask, canPrompt, choose } from './prompt.js';
import {
  builtinTemplates, findTemplate, languageNames, printTemplateList, templateListLines, templatesDir, upsertClientEnvFile,
  type TemplateDef, type TemplateLanguage,
} from './templates.js';

export { builtinTemplates, packageRoot, templatesDir } from './templates.js';

const databaseSuffixLength = 5;
const suffixAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
const defaultProjectName = 'my-spacetime-app';
/** Template-only files that are not part of a project. */
const templateOnlyFiles = new Set(['.template.json']);

export interface InitOptions {
  name?: string;
  projectPath?: string;
  lang?: string;
  /** A template id; '' (the flag without a value) lists the templates. */
  template?: string;
  local: boolean;
  nonInteractive: boolean;
  serverOnly: boolean;
  cwd?: string;
  /** The database to write to spacetime.local.json (default `<project>-<5 random>`); `spacetime dev <name>` passes it. */
  database?: string;
  /** `spacetime dev` prints its own next steps. */
  skipNextSteps?: boolean;
}

export interface InitResult {
  projectPath: string;
  database: string;
}

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** A random database name for a project: its slug plus a random suffix (upstream's `<project>-xxxxx`). */
export function randomDatabaseName(project: string): string {
  const base = slugify(project) || 'app';
  let suffix = '';
  for (let i = 0; i < databaseSuffixLength; i++) suffix += suffixAlphabet[Math.floor(Math.random() * suffixAlphabet.length)];
  const name = `${base}-${suffix}`;
  validateDatabaseName(name, false);
  return name;
}

/** Lowercase kebab case (upstream slugifies the project name for its directory). */
function slugify(name: string): string {
  return name.trim().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

/** The project `--lang <lang>` alone creates: the module of that language's basic template, as upstream's empty project. */
const moduleTemplateIds: Record<TemplateLanguage, string> = { typescript: 'basic-ts', rust: 'basic-rs', csharp: 'basic-cs' };

/** Upstream's names for a server language (any case), plus our `ts`; C++ is upstream's too but has no scaffold here. */
function parseServerLanguage(lang: string): TemplateLanguage {
  switch (lang.toLowerCase()) {
    case 'typescript': case 'ts': return 'typescript';
    case 'rust': return 'rust';
    case 'csharp': case 'c#': return 'csharp';
    case 'cpp': case 'c++': case 'cxx':
      throw new CliError('C++ modules cannot be created by this CLI: it creates TypeScript, Rust and C# projects.');
    default: throw new CliError(`Unknown server language: ${lang}`);
  }
}

/** The template to use; `--lang <lang>` alone is the module only, like upstream's empty project of that language. */
async function chooseTemplate(opts: InitOptions, interactive: boolean): Promise<{ def: TemplateDef; serverOnly: boolean }> {
  const lang = opts.lang === undefined ? undefined : parseServerLanguage(opts.lang);
  if (opts.template !== undefined && lang !== undefined) {
    throw new CliError('Cannot specify both --template and --lang. Language is determined by the template.');
  }
  if (opts.template === undefined) {
    if (lang !== undefined) return { def: findTemplate(moduleTemplateIds[lang])!, serverOnly: true };
    if (!interactive) throw new CliError('Either --template or --lang must be provided in non-interactive mode');
    const at = await choose('Template:', builtinTemplates.map((t) => `${t.id} - ${t.description}`));
    return { def: builtinTemplates[at], serverOnly: opts.serverOnly };
  }
  const def = findTemplate(opts.template);
  if (def === undefined) {
    throw new CliError(`Unknown template: ${opts.template}\n\nAvailable templates:\n${templateListLines().join('\n')}`);
  }
  return { def, serverOnly: opts.serverOnly };
}

/** Copies `src` into `dst` (`_gitignore` → `.gitignore`, npm drops `.gitignore` files from published packages). */
function copyTree(src: string, dst: string, skip: (relative: string) => boolean, relative = ''): void {
  mkdirSync(dst, { recursive: true });
  for (const entry of readdirSync(src).sort()) {
    const rel = relative === '' ? entry : `${relative}/${entry}`;
    if (skip(rel) || templateOnlyFiles.has(entry)) continue;
    const from = path.join(src, entry);
    const to = path.join(dst, entry === '_gitignore' ? '.gitignore' : entry);
    if (statSync(from).isDirectory()) copyTree(from, to, skip, rel);
    else writeFileSync(to, readFileSync(from));
  }
}

function renamePackage(file: string, name: string): void {
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  pkg.name = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
}

/** Names the crate in `<dir>/Cargo.toml` after the project, as upstream (every character not `[A-Za-z0-9_]` → `_`). */
function renameCrate(dir: string, name: string): void {
  const file = path.join(dir, 'Cargo.toml');
  const text = readFileSync(file, 'utf8');
  const renamed = text.replace(/^(\[package\][^[]*?^name = )"[^"]*"/m, `$1"${name.replace(/[^A-Za-z0-9_]/g, '_')}"`);
  if (renamed === text) throw new Error(`template crate without a [package] name: ${file}`);
  writeFileSync(file, renamed);
}

/** Copies the template's client (everything but spacetimedb/) and names it after the project. */
function setUpClient(def: TemplateDef, templateRoot: string, projectPath: string, name: string, database: string,
  serverUrl: string): void {
  print(`Setting up client (${def.language})...`);
  copyTree(templateRoot, projectPath, (rel) => rel === 'spacetimedb');
  if (def.language === 'rust') renameCrate(projectPath, name);
  if (def.language !== 'typescript') return;
  renamePackage(path.join(projectPath, 'package.json'), name);
  upsertClientEnvFile(projectPath, database, serverUrl);
  print(`✅ Wrote environment configuration to ${path.join(projectPath, '.env.local')}`);
  print("Note: Run 'npm install' in the project directory to install dependencies");
}

/** Writes a project config file unless one is there (a --server-only project may go into an existing one). */
function writeJsonIfMissing(file: string, value: unknown): void {
  if (existsSync(file)) return;
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
  print(`✓ Created ${file}`);
}

/** The URL of a configured server; an unconfigured `local` falls back to the default server's. */
export function serverUrlOrDefault(config: CliConfig, server: string | undefined): string {
  try {
    return config.serverUrl(server);
  } catch {
    return config.serverUrl(undefined);
  }
}

/**
 * Upstream's rule for where a project may go: a missing or empty directory; with --server-only a non-empty one too,
 * unless it already holds a module in spacetimedb/. `shown` is the path as the user gave it (upstream's texts).
 */
function ensureEmptyDirectory(dir: string, shown: string, serverOnly: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) {
    throw new CliError(`Path ${shown} exists but is not a directory. A new SpacetimeDB project must be initialized in an empty directory.`);
  }
  if (readdirSync(dir).length === 0) return;
  if (!serverOnly) throw new CliError(`Cannot create new SpacetimeDB project in non-empty directory: ${shown}`);
  const serverDir = path.join(dir, 'spacetimedb');
  if (existsSync(serverDir) && readdirSync(serverDir).length > 0) {
    throw new CliError(`A SpacetimeDB module already exists in the target directory: ${shown}`);
  }
}

export async function init(config: CliConfig, opts: InitOptions): Promise<InitResult | undefined> {
  if (opts.template === '') {
    printTemplateList(print);
    return undefined;
  }
  const interactive = !opts.nonInteractive && canPrompt();
  const cwd = opts.cwd ?? process.cwd();
  let name = opts.name?.trim();
  if (name === undefined || name === '') {
    if (!interactive) throw new CliError('PROJECT_NAME is required in non-interactive mode');
    name = await ask('Project name', defaultProjectName);
  }
  const { def, serverOnly } = await chooseTemplate(opts, interactive);
  const shownPath = opts.projectPath ?? (slugify(name) || name);
  const projectPath = path.resolve(cwd, shownPath);
  ensureEmptyDirectory(projectPath, shownPath, opts.serverOnly);
  const serverName = opts.local ? 'local' : (config.data.default_server ?? 'local');
  const serverUrl = serverUrlOrDefault(config, serverName);
  const database = opts.database ?? randomDatabaseName(name);
  validateDatabaseName(database, false);
  const templateRoot = path.join(templatesDir, def.id);
  if (!existsSync(templateRoot)) throw new CliError(`Template files not found: ${templateRoot}`);

  print(`Template: ${opts.template ?? def.language}`);
  print(`Project path: ${projectPath}`);
  print('Initializing project from template...');
  mkdirSync(projectPath, { recursive: true });
  if (!serverOnly) setUpClient(def, templateRoot, projectPath, name, database, serverUrl);
  print(`Setting up server (${def.language})...`);
  const moduleDir = path.join(projectPath, 'spacetimedb');
  copyTree(path.join(templateRoot, 'spacetimedb'), moduleDir, () => false);
  if (def.language === 'rust') renameCrate(moduleDir, name);
  print('Project initialized successfully!');
  if (def.language !== 'typescript') {
    print(`Note: this server runs TypeScript modules only: its \`spacetime build\`, \`publish\` and \`dev\` refuse this ` +
      `${languageNames[def.language]} module. Build and publish it with upstream SpacetimeDB's CLI and server.`);
  }

  // Upstream's spacetime.json names the server and the module; our TypeScript projects also say how to generate and run.
  const projectConfig: Record<string, unknown> = { server: serverName, 'module-path': './spacetimedb' };
  if (!serverOnly && def.language === 'typescript') {
    projectConfig.generate = [{ language: 'typescript', 'out-dir': './src/module_bindings' }];
    projectConfig.dev = { run: 'npm run dev' };
  }
  writeJsonIfMissing(path.join(projectPath, 'spacetime.json'), projectConfig);
  writeJsonIfMissing(path.join(projectPath, 'spacetime.local.json'), { database });
  if (opts.skipNextSteps !== true) {
    if (def.language === 'typescript') printNextSteps(cwd, projectPath, serverOnly, opts.local, database);
    else printOtherLanguageNextSteps(cwd, projectPath, def.language, serverOnly);
  }
  return { projectPath, database };
}

function printCd(cwd: string, projectPath: string): void {
  const rel = path.relative(cwd, projectPath);
  if (rel !== '' && rel !== '.') print(`  cd ${rel}`);
}

/** Upstream's steps for a Rust or C# project, which need upstream's CLI and a server that hosts wasm modules. */
function printOtherLanguageNextSteps(cwd: string, projectPath: string, language: Exclude<TemplateLanguage, 'typescript'>,
  serverOnly: boolean): void {
  print();
  print(`Next steps (with upstream SpacetimeDB's \`spacetime\` CLI and server; this one runs TypeScript modules only):`);
  printCd(cwd, projectPath);
  print('  spacetime publish --module-path spacetimedb <database>');
  if (serverOnly) return;
  print(language === 'rust'
    ? '  spacetime generate --lang rust --out-dir src/module_bindings --module-path spacetimedb'
    : '  spacetime generate --lang csharp --out-dir module_bindings --module-path spacetimedb');
  print(language === 'rust' ? '  cargo run' : '  dotnet run');
}

function printNextSteps(cwd: string, projectPath: string, serverOnly: boolean, local: boolean, database: string): void {
  print();
  print('Next steps:');
  printCd(cwd, projectPath);
  if (!serverOnly) {
    print('  npm install');
    print('  spacetime dev');
    print();
    print('`spacetime dev` publishes the module, regenerates the bindings, streams its logs and runs the client,');
    print('again on every change. Or step by step:');
  }
  print(`  spacetime publish --module-path spacetimedb ${local ? '--server local ' : ''}${database}`);
  if (!serverOnly) {
    print('  spacetime generate --lang typescript --out-dir src/module_bindings --module-path spacetimedb');
    print('  npm run dev');
  }
}
