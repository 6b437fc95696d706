// `spacetime init` (cli-and-publish.md §1 init): creates a project from a built-in TypeScript template.
// Owns: the template registry, copying template files (read at run time from the package's top-level `templates/`
// folder, which ships with the package), the project's spacetime.json / spacetime.local.json / .env.local, and the
// "Next steps" text. May call: cli/config (default server), cli/errors, cli/util (name rule), node:fs, node:path.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliConfig } from '../config.js';
import { CliError } from '../errors.js';
import { validateDatabaseName } from '../util.js';

/** The package root (…/dist/cli/init → …, or …/src/cli/init → …). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const templatesDir = path.join(packageRoot, 'templates');
const databaseSuffixLength = 5;
const suffixAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** The package that provides `<package>/testing` (the basic template's unit tests import it). */
const testingPackageName = 'spacetimedb-ts';

interface TemplateDef {
  id: string;
  description: string;
  /** Directory under templates/. */
  dir: string;
  /** Adds a `file:` dependency on this package (for `spacetimedb-ts/testing`). */
  usesTestingApi: boolean;
}

export const builtinTemplates: readonly TemplateDef[] = [
  { id: 'basic-ts', description: 'A basic TypeScript module with a Node client and module unit tests', dir: 'basic-ts', usesTestingApi: true },
  { id: 'chat-react-ts', description: 'A chat app: TypeScript module with a React + Vite client', dir: 'chat-react-ts', usesTestingApi: false },
  { id: 'react-ts', description: 'Same as chat-react-ts (a React + Vite client with a TypeScript module)', dir: 'chat-react-ts', usesTestingApi: false },
];

export interface InitOptions {
  name?: string;
  projectPath?: string;
  lang?: string;
  template?: string;
  local: boolean;
  nonInteractive: boolean;
  serverOnly: boolean;
  cwd?: string;
}

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function chooseTemplate(opts: InitOptions): { def: TemplateDef; serverOnly: boolean } {
  if (opts.lang !== undefined && !['typescript', 'ts', 'TypeScript'].includes(opts.lang)) {
    throw new CliError(`Language \`${opts.lang}\` is not supported by this CLI: only \`typescript\` modules can be created.`);
  }
  if (opts.template === undefined) {
    if (opts.lang === undefined) throw new CliError('Either --template or --lang must be provided in non-interactive mode');
    // `--lang typescript` alone: the module only, like upstream's empty TypeScript project.
    return { def: builtinTemplates[0], serverOnly: true };
  }
  const def = builtinTemplates.find((t) => t.id === opts.template);
  if (def === undefined) {
    const list = builtinTemplates.map((t) => `  ${t.id} - ${t.description}`).join('\n');
    throw new CliError(`Unknown template: ${opts.template}\n\nAvailable templates:\n${list}`);
  }
  return { def, serverOnly: opts.serverOnly };
}

/** A database name from the project name: lowercase, runs of other characters become '-', plus a random suffix. */
function databaseNameFor(project: string): string {
  const base = project.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'app';
  let suffix = '';
  for (let i = 0; i < databaseSuffixLength; i++) suffix += suffixAlphabet[Math.floor(Math.random() * suffixAlphabet.length)];
  const name = `${base}-${suffix}`;
  validateDatabaseName(name, false);
  return name;
}

function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http:/, 'ws:').replace(/^https:/, 'wss:');
}

/** Copies `src` into `dst` (`_gitignore` → `.gitignore`); returns the files written. */
function copyTree(src: string, dst: string, skip: (relative: string) => boolean, relative = ''): string[] {
  const written: string[] = [];
  mkdirSync(dst, { recursive: true });
  for (const entry of readdirSync(src).sort()) {
    const rel = relative === '' ? entry : `${relative}/${entry}`;
    if (skip(rel)) continue;
    const from = path.join(src, entry);
    const to = path.join(dst, entry === '_gitignore' ? '.gitignore' : entry);
    if (statSync(from).isDirectory()) written.push(...copyTree(from, to, skip, rel));
    else {
      writeFileSync(to, readFileSync(from));
      written.push(to);
    }
  }
  return written;
}

function editPackageJson(file: string, edit: (pkg: Record<string, unknown>) => void): void {
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(pkg);
  writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
  print(`✓ Created ${file}`);
}

export async function init(config: CliConfig, opts: InitOptions): Promise<void> {
  const cwd = opts.cwd ?? process.cwd();
  const name = opts.name;
  if (name === undefined || name.trim() === '') throw new CliError('Project name is required in non-interactive mode');
  const { def, serverOnly } = chooseTemplate(opts);
  const projectPath = path.resolve(cwd, opts.projectPath ?? name);
  if (existsSync(projectPath) && (!statSync(projectPath).isDirectory() || readdirSync(projectPath).length > 0)) {
    throw new CliError(`Project path ${projectPath} is not empty. Please choose an empty directory.`);
  }
  const serverName = opts.local ? 'local' : (config.data.default_server ?? 'local');
  let serverUrl: string;
  try {
    serverUrl = config.serverUrl(serverName);
  } catch {
    serverUrl = config.serverUrl(undefined);
  }
  const database = databaseNameFor(name);
  const templateRoot = path.join(templatesDir, def.dir);
  if (!existsSync(templateRoot)) throw new CliError(`Template files not found: ${templateRoot}`);

  print(`Template: ${opts.template ?? 'typescript'}`);
  print(`Project path: ${projectPath}`);
  print('Initializing project from template...');
  mkdirSync(projectPath, { recursive: true });
  if (!serverOnly) {
    print('Setting up client (typescript)...');
    copyTree(templateRoot, projectPath, (rel) => rel === 'spacetimedb');
    editPackageJson(path.join(projectPath, 'package.json'), (pkg) => {
      pkg.name = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
      if (def.usesTestingApi) {
        const dev = (pkg.devDependencies ?? {}) as Record<string, string>;
        dev[testingPackageName] = `file:${packageRoot}`;
        pkg.devDependencies = dev;
      }
    });
    const envPath = path.join(projectPath, '.env.local');
    const host = wsUrl(serverUrl);
    writeFileSync(envPath, `SPACETIMEDB_DB_NAME=${database}\nSPACETIMEDB_HOST=${host}\n\n` +
      `# Vite\nVITE_SPACETIMEDB_DB_NAME=${database}\nVITE_SPACETIMEDB_HOST=${host}\n`);
    print(`✅ Wrote environment configuration to ${envPath}`);
    print("Note: Run 'npm install' in the project directory to install dependencies");
  }
  print('Setting up server (typescript)...');
  copyTree(path.join(templateRoot, 'spacetimedb'), path.join(projectPath, 'spacetimedb'), () => false);

  const projectConfig: Record<string, unknown> = { server: serverName, 'module-path': './spacetimedb' };
  if (!serverOnly) {
    projectConfig.generate = [{ language: 'typescript', 'out-dir': './src/module_bindings' }];
    projectConfig.dev = { run: 'npm run dev' };
  }
  writeJson(path.join(projectPath, 'spacetime.json'), projectConfig);
  writeJson(path.join(projectPath, 'spacetime.local.json'), { database });
  print('Project initialized successfully!');
  printNextSteps(cwd, projectPath, serverOnly, opts.local, database);
}

function printNextSteps(cwd: string, projectPath: string, serverOnly: boolean, local: boolean, database: string): void {
  print();
  print('Next steps:');
  const rel = path.relative(cwd, projectPath);
  if (rel !== '' && rel !== '.') print(`  cd ${rel}`);
  if (!serverOnly) print('  npm install');
  print(`  spacetime publish --module-path spacetimedb ${local ? '--server local ' : ''}${database}`);
  if (!serverOnly) {
    print('  spacetime generate --lang typescript --out-dir src/module_bindings --module-path spacetimedb');
    print('  npm run dev');
  }
  print();
  print('Or run `spacetime dev` to rebuild, republish and regenerate bindings on every change.');
}
