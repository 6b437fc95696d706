// `spacetime.json` project configuration (cli-and-publish.md §0): finding it, layering the `.local` / `.<env>` /
// `.<env>.local` files over it, validating fields, flattening `children` into database targets, resolving a
// command's database argument against the configured targets (upstream's db_arg_resolution rules), and selecting
// `generate` entries.
// Owns the project config format. May call: node:fs, node:path, cli/errors.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CliError } from './errors.js';

export const projectConfigFileName = 'spacetime.json';
const loadErrorMessage = 'Failed to load spacetime.json';

/** One `generate` entry (`language`, `out-dir`, …), as written in the file (kebab-case keys). */
export interface GenerateEntry {
  language?: string;
  outDir?: string;
  modulePath?: string;
  binPath?: string;
  jsPath?: string;
  includePrivate?: boolean;
}

/** A database target after parent → child inheritance. Paths are absolute (relative to the config directory). */
export interface ProjectTarget {
  database?: string;
  server?: string;
  modulePath?: string;
  binPath?: string;
  jsPath?: string;
  buildOptions?: string;
  breakClients?: boolean;
  anonymous?: boolean;
  organization?: string;
  numReplicas?: number;
  generate?: GenerateEntry[];
  /** The file that supplied `database` (e.g. `spacetime.local.json`). */
  sourceConfig?: string;
}

export interface ProjectConfig {
  dir: string;
  /** Files that were loaded, in overlay order. */
  files: string[];
  targets: ProjectTarget[];
  /** `dev.run`: the client command of `spacetime dev`. */
  devRun?: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const stringFields = ['database', 'server', 'module-path', 'bin-path', 'js-path', 'build-options', 'organization'];
const boolFields = ['break-clients', 'anonymous'];
const numberFields = ['num-replicas'];
const structuredFields = ['generate', 'children', 'dev'];
const generateFields = ['language', 'out-dir', 'module-path', 'include-private', 'namespace', 'bin-path', 'js-path',
  'build-options'];
const sourceKey = '_source-config';

function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fail(detail: string): never {
  throw new CliError(loadErrorMessage, [detail]);
}

/** The nearest directory at or above `start` holding spacetime.json. */
export function findProjectConfigDir(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, projectConfigFileName))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Reads one JSON file (comments and trailing commas are tolerated, as upstream reads JSON5). */
function readJsonFile(file: string): JsonObject | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  let value: Json;
  try {
    value = JSON.parse(stripJsonComments(text)) as Json;
  } catch (err) {
    fail(`Failed to parse config file ${file}: ${(err as Error).message}`);
  }
  if (!isObject(value)) fail(`Failed to parse config file ${file}: the top level must be an object`);
  return value;
}

/** Removes // and /* *\/ comments and trailing commas outside strings. */
function stripJsonComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      out += text.slice(start, i + 1);
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2);
      if (i < 0) return out; // unterminated comment: JSON.parse reports the truncation
      i++;
    } else out += c;
  }
  return out.replace(/,(\s*[\]}])/g, '$1');
}

function markSource(value: JsonObject, file: string): void {
  if ('database' in value) value[sourceKey] = file;
  if (Array.isArray(value.children)) for (const c of value.children) if (isObject(c)) markSource(c, file);
}

/** Whole keys replace; `children` merge by index (upstream overlay semantics). */
function overlay(base: JsonObject, top: JsonObject, file: string): void {
  markSource(top, file);
  for (const [key, value] of Object.entries(top)) {
    const current = base[key];
    if (key === 'children' && Array.isArray(current) && Array.isArray(value)) {
      for (let i = 0; i < Math.min(current.length, value.length); i++) {
        const b = current[i];
        const v = value[i];
        if (isObject(b) && isObject(v)) overlay(b, v, file);
        else current[i] = v;
      }
    } else base[key] = value;
  }
}

function validateEntity(value: JsonObject, where: string, root: boolean): void {
  for (const [key, v] of Object.entries(value)) {
    if (key === sourceKey || key.startsWith('$')) continue;
    const at = `${where}.${key}`;
    if (stringFields.includes(key)) {
      if (typeof v !== 'string') fail(`invalid type for \`${at}\`: expected a string`);
    } else if (boolFields.includes(key)) {
      if (typeof v !== 'boolean') fail(`invalid type for \`${at}\`: expected true or false`);
    } else if (numberFields.includes(key)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`invalid type for \`${at}\`: expected an integer`);
    } else if (key === 'dev') {
      if (!root) fail(`\`dev\` is allowed at the top level only (found at ${at})`);
      if (!isObject(v)) fail(`invalid type for \`${at}\`: expected an object`);
      for (const [dk, dv] of Object.entries(v)) {
        if (dk !== 'run') fail(`unknown field \`${dk}\` in \`${at}\`, expected \`run\``);
        if (typeof dv !== 'string') fail(`invalid type for \`${at}.run\`: expected a string`);
      }
    } else if (key === 'generate') {
      if (!Array.isArray(v)) fail(`invalid type for \`${at}\`: expected an array`);
      v.forEach((entry, i) => {
        if (!isObject(entry)) fail(`invalid type for \`${at}[${i}]\`: expected an object`);
        for (const gk of Object.keys(entry)) {
          if (!generateFields.includes(gk)) fail(`unknown field \`${gk}\` in \`${at}[${i}]\`, expected one of ${generateFields.map((f) => `\`${f}\``).join(', ')}`);
        }
      });
    } else if (key === 'children') {
      if (!Array.isArray(v)) fail(`invalid type for \`${at}\`: expected an array`);
      v.forEach((child, i) => {
        if (!isObject(child)) fail(`invalid type for \`${at}[${i}]\`: expected an object`);
        validateEntity(child, `${at}[${i}]`, false);
      });
    } else {
      const known = [...stringFields, ...boolFields, ...numberFields, ...structuredFields];
      fail(`unknown field \`${key}\` in \`${where}\`, expected one of ${known.map((f) => `\`${f}\``).join(', ')}`);
    }
  }
}

function toTarget(fields: JsonObject, dir: string): ProjectTarget {
  const abs = (v: Json | undefined): string | undefined => (typeof v === 'string' ? path.resolve(dir, v) : undefined);
  const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
  const generate = Array.isArray(fields.generate)
    ? (fields.generate as JsonObject[]).map((g) => ({
        language: str(g.language), outDir: abs(g['out-dir']), modulePath: abs(g['module-path']),
        binPath: abs(g['bin-path']), jsPath: abs(g['js-path']),
        includePrivate: typeof g['include-private'] === 'boolean' ? g['include-private'] : undefined,
      }))
    : undefined;
  return {
    database: str(fields.database), server: str(fields.server), modulePath: abs(fields['module-path']),
    binPath: abs(fields['bin-path']), jsPath: abs(fields['js-path']), buildOptions: str(fields['build-options']),
    breakClients: typeof fields['break-clients'] === 'boolean' ? fields['break-clients'] : undefined,
    anonymous: typeof fields.anonymous === 'boolean' ? fields.anonymous : undefined,
    organization: str(fields.organization),
    numReplicas: typeof fields['num-replicas'] === 'number' ? fields['num-replicas'] : undefined,
    generate, sourceConfig: str(fields[sourceKey]),
  };
}

const moduleSourceKeys = ['module-path', 'bin-path', 'js-path'];

/** Parent → child inheritance: children inherit unset fields except dev/generate/children. */
function flatten(entity: JsonObject, inherited: JsonObject | undefined, dir: string, out: ProjectTarget[]): void {
  const fields: JsonObject = {};
  if (inherited !== undefined) {
    // A child naming its own module source does not inherit the parent's (they are mutually exclusive).
    const ownSource = moduleSourceKeys.some((k) => k in entity);
    for (const [k, v] of Object.entries(inherited)) if (!(ownSource && moduleSourceKeys.includes(k))) fields[k] = v;
  }
  for (const [k, v] of Object.entries(entity)) if (k !== 'children' && k !== 'dev') fields[k] = v;
  out.push(toTarget(fields, dir));
  const passDown: JsonObject = { ...fields };
  delete passDown.generate;
  delete passDown[sourceKey];
  if (Array.isArray(entity.children)) for (const c of entity.children) flatten(c as JsonObject, passDown, dir, out);
}

/**
 * Loads spacetime.json and its overlays from the nearest directory at or above `cwd`; undefined when there is none
 * or `noConfig` is set. Invalid files throw CliError("Failed to load spacetime.json") with the reason as the cause.
 */
export function loadProjectConfig(opts: { cwd?: string; env?: string; noConfig?: boolean } = {}): ProjectConfig | undefined {
  if (opts.noConfig === true) return undefined;
  const dir = findProjectConfigDir(opts.cwd ?? process.cwd());
  if (dir === undefined) return undefined;
  const names = [projectConfigFileName, 'spacetime.local.json'];
  if (opts.env !== undefined) names.push(`spacetime.${opts.env}.json`, `spacetime.${opts.env}.local.json`);
  let merged: JsonObject | undefined;
  const files: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const value = readJsonFile(file);
    if (value === undefined) continue;
    files.push(file);
    if (merged === undefined) {
      markSource(value, name);
      merged = value;
    } else overlay(merged, value, name);
  }
  if (merged === undefined) return undefined;
  validateEntity(merged, 'spacetime.json', true);
  const targets: ProjectTarget[] = [];
  flatten(merged, undefined, dir, targets);
  const dev = merged.dev;
  return { dir, files, targets, devRun: isObject(dev) && typeof dev.run === 'string' ? dev.run : undefined };
}

/** Targets that name a database, first occurrence of each name. */
export function databaseTargets(config: ProjectConfig | undefined): ProjectTarget[] {
  if (config === undefined) return [];
  const seen = new Set<string>();
  return config.targets.filter((t) => t.database !== undefined && !seen.has(t.database) && (seen.add(t.database), true));
}

/** `*` and `?` glob over database names (publish's CLI name acts as a pattern). */
export function globMatches(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  return re.test(name);
}

export interface ResolvedDatabase {
  database: string;
  /** The configured server for the target, when the database came from (or matched) the config. */
  server?: string;
  target?: ProjectTarget;
}

function missingArgument(name: string): CliError {
  return new CliError(`the following required arguments were not provided:\n  <${name}>`);
}

/**
 * A command with a dedicated, optional `[database]` argument (logs, delete, lock, unlock): omitted → the single
 * configured database; given → its target when configured, else used as-is (an ad-hoc database outside the project).
 */
export function resolveDatabaseArg(given: string | undefined, config: ProjectConfig | undefined): ResolvedDatabase {
  const targets = databaseTargets(config);
  if (given !== undefined) {
    const target = targets.find((t) => t.database === given);
    return { database: given, server: target?.server, target };
  }
  if (targets.length === 1) return { database: targets[0].database!, server: targets[0].server, target: targets[0] };
  if (targets.length > 1) {
    throw new CliError(`Multiple databases found in config: ${targets.map((t) => t.database).join(', ')}. Please specify which database to use.`);
  }
  throw missingArgument('database');
}

/**
 * Commands whose database positional may be omitted in front of other positionals (sql, call, subscribe, describe):
 * `parts[0]` is the database when it names a configured one (or there is no config); otherwise, with exactly one
 * configured database, every part is an argument. With more than `maxRest` parts the first is a database outside
 * the project (sql: `sql other-db "SELECT …"`). Several configured databases and an unknown first part are refused.
 */
export function resolveDatabaseParts(
  parts: readonly string[], config: ProjectConfig | undefined, requiredArg: string, minRest: number,
  maxRest = Number.POSITIVE_INFINITY,
): ResolvedDatabase & { rest: string[] } {
  const targets = databaseTargets(config);
  if (targets.length === 0) {
    if (parts.length === 0) throw missingArgument('database');
    if (parts.length - 1 < minRest) throw missingArgument(requiredArg);
    return { database: parts[0], rest: parts.slice(1) };
  }
  const matched = parts.length > 0 ? targets.find((t) => t.database === parts[0]) : undefined;
  if (matched !== undefined) {
    if (parts.length - 1 < minRest) throw missingArgument(requiredArg);
    return { database: matched.database!, server: matched.server, target: matched, rest: parts.slice(1) };
  }
  // More parts than the command takes besides the database: the first one is a database outside the project.
  if (parts.length > maxRest) return { database: parts[0], rest: parts.slice(1) };
  if (targets.length > 1) {
    const first = parts[0] ?? '';
    throw new CliError(`Multiple databases found in config: ${targets.map((t) => t.database).join(', ')}. ` +
      `Please specify which database to use, or pass --no-config to use '${first}' directly.`);
  }
  if (parts.length < minRest) throw missingArgument(requiredArg);
  return { database: targets[0].database!, server: targets[0].server, target: targets[0], rest: [...parts] };
}

/**
 * Publish/dev targets (generate uses generateEntries): no CLI name → every configured target with a database (or the single root target);
 * a CLI name → the targets it matches as a glob; no match with exactly one target → the CLI name with that target's
 * settings; otherwise none (the CLI arguments are used alone).
 */
export function selectTargets(config: ProjectConfig | undefined, cliName: string | undefined): ProjectTarget[] {
  if (config === undefined) return [];
  const withDb = config.targets.filter((t) => t.database !== undefined);
  if (cliName === undefined) return withDb.length > 0 ? withDb : config.targets.slice(0, 1);
  const matched = withDb.filter((t) => globMatches(cliName, t.database!));
  if (matched.length > 0) return matched;
  if (config.targets.length === 1) return [{ ...config.targets[0], database: cliName }];
  return [];
}

/** resolveDatabaseArg for a command's options: honours `--no-config` and fills `opts.server` from the target. */
export function databaseFromConfig(given: string | undefined, opts: Record<string, unknown>): string {
  const resolved = resolveDatabaseArg(given, loadProjectConfig({ noConfig: opts.config === false }));
  if (opts.server === undefined && resolved.server !== undefined) opts.server = resolved.server;
  return resolved.database;
}

/** resolveDatabaseParts for a command's options (see databaseFromConfig). */
export function partsFromConfig(
  parts: readonly (string | undefined)[], opts: Record<string, unknown>, requiredArg: string, minRest: number,
  maxRest = Number.POSITIVE_INFINITY,
): { database: string; rest: string[] } {
  const present = parts.filter((p): p is string => p !== undefined);
  const resolved = resolveDatabaseParts(present, loadProjectConfig({ noConfig: opts.config === false }), requiredArg, minRest, maxRest);
  if (opts.server === undefined && resolved.server !== undefined) opts.server = resolved.server;
  return { database: resolved.database, rest: resolved.rest };
}

/**
 * `spacetime generate`'s entries (upstream get_filtered_generate_configs): the targets the CLI name matches as a glob
 * (none matching is an error), or every target; then each target's `generate` entries with the target's module-path
 * filled in where the entry has none. An entry repeated for the same module is generated once. Empty when nothing in
 * the config says what to generate (the CLI arguments are then used alone).
 */
export function generateEntries(config: ProjectConfig, cliName: string | undefined): GenerateEntry[] {
  let targets = config.targets;
  if (cliName !== undefined) {
    targets = targets.filter((t) => t.database !== undefined && globMatches(cliName, t.database));
    if (targets.length === 0) {
      const names = config.targets.filter((t) => t.database !== undefined).map((t) => t.database);
      throw new CliError(`No database target matches '${cliName}'. Available databases: ${names.join(', ')}`);
    }
  }
  const seen = new Set<string>();
  const out: GenerateEntry[] = [];
  for (const target of targets) {
    for (const entry of target.generate ?? []) {
      const key = `${target.modulePath ?? ''}:${JSON.stringify(entry)}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ ...entry, modulePath: entry.modulePath ?? target.modulePath });
    }
  }
  return out;
}
