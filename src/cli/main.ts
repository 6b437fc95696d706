// cli/main.ts — the `spacetime` command: argument parsing (commander, clap-like errors and exit codes) and the
// subcommands (cli-and-publish.md §0, §1). Talks to servers over HTTP only; `start` is the one exception (it runs
// server/).
// Owns: the command tree, global options, exit codes, and the subcommands that have no file of their own.
// May call: every file in cli/, server/main.js and server/config-file.js (start only), durability/inspect.js (offline
// commit log inspection), sats/names.js (canonical names).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { authToken, login, loginShow, logoutCommand } from './auth.js';
import { addOidcStartOptions, oidcOptionsFromFlags } from './login-web.js';
import { configKeysHelp, isLoopbackHost, parsePublishPolicy, readServerConfig } from '../server/config-file.js';
import { backupToFile, restoreFromFile } from './backup.js';
import { bundleModule, resolveModuleDir } from './build.js';
import {
  CallArgumentError, callBody, callableFunctions, findFunction, invalidArgumentsMessage, optionString, unknownFunctionMessage,
} from './call.js';
import { registerGenerateCommand } from './generate/register.js';
import { runSubscribe } from './subscribe.js';
import { CliConfig, configDir, dataDir, type PathOptions, type ServerConfig } from './config.js';
import { CliError, ExitWithCode, UsageError, formatError } from './errors.js';
import { parseJsonLossless, type LosslessJson } from './json.js';
import { toSnakeCase } from '../sats/names.js';
import { parseYesScopes, printMigrationHistory, publish, type DeleteDataMode } from './publish.js';
import { publishWithConfig, registerDevflowCommands } from './init/commands.js';
import { databaseFromConfig, partsFromConfig } from './project-config.js';
import { formatLogRecord, type LogRecord } from './logformat.js';
import { formatSqlResult, renderTable } from './sqlformat.js';
import { runSqlRepl, type SqlStatementResult } from './repl.js';
import {
  closeStdin, ensureOk, httpError, httpRequest, identityFromToken, isIdentityHex, jsonBody, warnUnstable, yesOrNo,
} from './util.js';

export const cliVersion = '2.8.3';
// Upstream standalone listens on 0.0.0.0:3000. We bind loopback by default: a local development database should not be
// reachable from the network unless the operator asks for it (`--listen-addr 0.0.0.0:3000`).
const listenAddrDefault = '127.0.0.1:3000';
const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'panic'] as const;
type LogLevel = (typeof logLevels)[number];

interface GlobalOpts {
  configPath?: string;
  rootDir?: string;
}

/** Flags whose value must be attached with `=`; bare forms get their default value spliced in before parsing. */
function normalizeArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  let passthrough = false;
  for (const arg of argv) {
    if (passthrough) {
      out.push(arg);
      continue;
    }
    if (arg === '--') passthrough = true;
    if (arg === '-c' || arg === '--delete-data' || arg === '--clear-database') out.push('--delete-data=always');
    else if (arg.startsWith('--clear-database=')) out.push('--delete-data=' + arg.slice('--clear-database='.length));
    else if (arg.startsWith('-c=')) out.push('--delete-data=' + arg.slice(3));
    else if (arg === '-y' || arg === '--yes') out.push('--yes=all');
    else if (arg.startsWith('-y=')) out.push('--yes=' + arg.slice(3));
    else out.push(arg);
  }
  return out;
}

function pathOpts(cmd: Command): PathOptions {
  const globals = cmd.optsWithGlobals() as GlobalOpts;
  return { configPath: globals.configPath, rootDir: globals.rootDir };
}

function loadConfig(cmd: Command): CliConfig {
  return CliConfig.load(pathOpts(cmd));
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Name → identity via GET /v1/database/<name>/identity; identities pass through. */
async function resolveDatabase(serverUrl: string, nameOrIdentity: string, notFoundMessage?: string): Promise<string> {
  if (isIdentityHex(nameOrIdentity)) return nameOrIdentity.toLowerCase();
  const url = `${serverUrl}/v1/database/${encodeURIComponent(nameOrIdentity)}/identity`;
  const res = await httpRequest('GET', url);
  if (res.status === 404 && notFoundMessage !== undefined) throw new CliError(notFoundMessage, [res.text]);
  if (res.status < 200 || res.status >= 300) {
    throw new CliError(`failed to find database \`${nameOrIdentity}\`.`, [res.text]);
  }
  return res.text.trim();
}

/** Shared options for commands that address a database on a server. */
function serverOptions(cmd: Command): Command {
  return cmd
    .option('-s, --server <server>', 'The nickname, host name or URL of the server')
    .option('--no-config', 'Ignore spacetime.json configuration')
    .addOption(new Option('-y, --yes <scope>', 'Run non-interactively').argParser(collect));
}

async function fetchSchema(serverUrl: string, identity: string, token: string | undefined): Promise<LosslessJson> {
  for (const version of [10, 9]) {
    const url = `${serverUrl}/v1/database/${identity}/schema?version=${version}`;
    const res = await httpRequest('GET', url, { token });
    if (res.status >= 400 && res.status < 500 && version === 10) continue;
    return jsonBody(res, url);
  }
  throw new CliError('unreachable');
}

// ---------------------------------------------------------------------------------------------------------------
// call

async function callCommand(db: string | undefined, fnArg: string | undefined, argsIn: string[], opts: Record<string, unknown>, cmd: Command) {
  warnUnstable();
  const { database, rest: [fn, ...args] } = partsFromConfig([db, fnArg, ...argsIn], opts, 'function', 1);
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const token = await authToken(config, serverUrl, { anonymous: opts.anonymous === true, yes: opts.yes !== undefined });
  const identity = await resolveDatabase(serverUrl, database);
  // Submodule functions are found by their dot-qualified names (`lib.lib_insert`); see cli/call.ts.
  const functions = callableFunctions(await fetchSchema(serverUrl, identity, token));
  const def = findFunction(functions, fn);
  if (def === undefined) throw new CliError(unknownFunctionMessage(fn, database, identity, functions));
  // As upstream, the server judges the arguments (count and types); its refusal is explained with the signature.
  let body: string;
  try {
    body = callBody(def, args);
  } catch (error) {
    if (!(error instanceof CallArgumentError)) throw error;
    throw new CliError(invalidArgumentsMessage(def, fn, database, identity, args.length), [error.message]);
  }
  const url = `${serverUrl}/v1/database/${identity}/call/${encodeURIComponent(fn)}`;
  const res = await httpRequest('POST', url, { token, body, contentType: 'application/json' });
  if (res.status === 530) throw new CliError(`Response text: ${res.text}`, [`HTTP status server error (530) for url (${url})`]);
  if (res.status >= 400 && res.status < 500 && res.text.startsWith('invalid arguments')) {
    const status = httpError(res, url).causes;
    throw new CliError(invalidArgumentsMessage(def, fn, database, identity, args.length), [`Response text: ${res.text}`, ...status]);
  }
  // Upstream's call puts the server's text under `Response text:`, the status line as its cause.
  if (res.status < 200 || res.status >= 300) throw new CliError(`Response text: ${res.text}`, httpError(res, url).causes);
  if (def.kind === 'procedure' || res.text.length > 0) process.stdout.write(res.text.endsWith('\n') || res.text === '' ? res.text : `${res.text}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// logs

function shouldDisplay(level: string, min: LogLevel | undefined, exact: boolean): boolean {
  if (min === undefined) return true;
  const rank = logLevels.indexOf(level.toLowerCase() as LogLevel);
  const minRank = logLevels.indexOf(min);
  return exact ? rank === minRank : rank >= minRank;
}

async function logsCommand(db: string | undefined, opts: Record<string, unknown>, cmd: Command) {
  const database = databaseFromConfig(db, opts);
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const token = await authToken(config, serverUrl, { yes: opts.yes !== undefined });
  const identity = await resolveDatabase(serverUrl, database);
  let numLines = opts.numLines as string | undefined;
  const follow = opts.follow === true;
  if (follow && numLines === undefined) numLines = '10';
  const query = new URLSearchParams();
  if (numLines !== undefined) query.set('num_lines', numLines);
  query.set('follow', String(follow));
  const url = `${serverUrl}/v1/database/${identity}/logs?${query.toString()}`;
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (error) {
    throw new CliError(`error sending request for url (${url})`, [String((error as { cause?: Error }).cause?.message ?? error)]);
  }
  if (res.status >= 400) throw new CliError(await res.text());
  const level = opts.level as LogLevel | undefined;
  const exact = opts.levelExact === true;
  const json = opts.format === 'json';
  const decoder = new TextDecoder();
  let pending = '';
  const emit = (line: string): void => {
    if (line.trim() === '') return;
    if (json && level === undefined) {
      process.stdout.write(line + '\n');
      return;
    }
    const record = parseJsonLossless(line) as unknown as LogRecord;
    if (!shouldDisplay(record.level, level, exact)) return;
    process.stdout.write(json ? line + '\n' : formatLogRecord(record));
  };
  if (res.body === null) return;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      emit(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  }
  emit(pending);
}

// ---------------------------------------------------------------------------------------------------------------
// sql, describe, list, delete

async function sqlCommand(db: string | undefined, q: string | undefined, opts: Record<string, unknown>, cmd: Command) {
  warnUnstable();
  const interactive = opts.interactive === true;
  if (interactive && q !== undefined) {
    throw new CliError('Too many positional arguments for interactive mode.\nUsage: spacetime sql [database] --interactive [--no-config]');
  }
  const { database, rest: [query] } = interactive
    ? partsFromConfig([db], opts, 'database', 0, 0)
    : partsFromConfig([db, q], opts, 'query', 1, 1);
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const token = await authToken(config, serverUrl, { anonymous: opts.anonymous === true, yes: opts.yes !== undefined });
  const identity = await resolveDatabase(serverUrl, database);
  const params = opts.confirmed !== undefined ? `?confirmed=${String(opts.confirmed)}` : '';
  const url = `${serverUrl}/v1/database/${identity}/sql${params}`;
  if (interactive) {
    const post = async (sql: string) => {
      const r = await httpRequest('POST', url, { token, body: sql });
      ensureOk(r, url);
      return r;
    };
    await runSqlRepl({
      database,
      execute: async (sql) => jsonBody(await post(sql), url) as unknown as SqlStatementResult[],
      executeJson: opts.format === 'json' ? async (sql) => (await post(sql)).text : undefined,
    });
    return;
  }
  const res = await httpRequest('POST', url, { token, body: query });
  if (opts.format === 'json') {
    ensureOk(res, url);
    process.stdout.write(res.text.endsWith('\n') ? res.text : `${res.text}\n`);
    return;
  }
  const results = jsonBody(res, url) as { schema: LosslessJson; rows: LosslessJson[] }[];
  for (const result of results) {
    const elements = (result.schema as { elements?: unknown[] }).elements ?? [];
    if (elements.length === 0 && result.rows.length === 0) continue;
    process.stdout.write(formatSqlResult(result) + '\n');
  }
}

async function describeCommand(
  db: string | undefined, t: string | undefined, n: string | undefined,
  opts: Record<string, unknown>, cmd: Command,
) {
  // --json is required (a usage error before anything else, as clap's `required(true)`).
  if (opts.json !== true) throw new UsageError("the following required arguments were not provided:\n  --json");
  warnUnstable();
  const { database, rest } = partsFromConfig([db, t, n], opts, 'database', 0, 2);
  if (rest.length === 1) {
    throw new CliError('Invalid describe arguments.\nUsage: spacetime describe [database] [entity_type entity_name] --json [--no-config]');
  }
  const [entityType, entityName] = rest;
  const sectionKey = entityType === undefined ? undefined : describeSections[entityType];
  if (entityType !== undefined && sectionKey === undefined) {
    throw new CliError(`Invalid entity_type '${entityType}'. Expected one of: reducer, table.`);
  }
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const token = await authToken(config, serverUrl, { anonymous: opts.anonymous === true, yes: opts.yes !== undefined });
  // An unknown name reads "No such database" too (upstream reaches the schema route's 404 through a leftover name
  // record after a failed first publish; its fail_initial_publish smoketest greps for it).
  const noSuchDatabase = `No such database: ${database}`;
  const identity = await resolveDatabase(serverUrl, database, noSuchDatabase);
  const url = `${serverUrl}/v1/database/${identity}/schema?version=10`;
  const res = await httpRequest('GET', url, { token });
  if (res.status === 404) throw new CliError(noSuchDatabase, [res.text]);
  const schema = jsonBody(res, url);
  let out: unknown = schema;
  if (sectionKey !== undefined) {
    out = describeEntity(schema, sectionKey, entityName!);
    if (out === undefined) throw new CliError(`no such ${entityType}`);
  }
  process.stdout.write(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}

/** `describe <db> <entity_type> <name>`: the RawModuleDefV10 section each entity type is looked up in. */
const describeSections: Record<string, 'Reducers' | 'Tables' | undefined> = { reducer: 'Reducers', table: 'Tables' };

/**
 * One reducer or table definition of a SATS-JSON RawModuleDefV10, found by its canonical name (as upstream: the
 * ExplicitNames entry, else the source name under the module's case-conversion policy) or by its source name;
 * `ns.name` looks in submodule `ns`.
 */
function describeEntity(schema: unknown, sectionKey: 'Reducers' | 'Tables', name: string): unknown {
  type Obj = { [k: string]: LosslessJson };
  const sections = (schema as { sections?: Obj[] }).sections ?? [];
  const section = (key: string): LosslessJson | undefined => sections.find((s) => key in s)?.[key];
  // `lib.name`: look in the submodule with that namespace (nested ones as `a.b.name`).
  const dot = name.indexOf('.');
  if (dot > 0) {
    const submodules = section('Submodules');
    const sub = (Array.isArray(submodules) ? submodules as Obj[] : []).find((m) => m.namespace === name.slice(0, dot));
    if (sub !== undefined) return describeEntity(sub.module, sectionKey, name.slice(dot + 1));
  }
  const snake = JSON.stringify(section('CaseConversionPolicy') ?? null).includes('SnakeCase');
  const explicitTag = sectionKey === 'Tables' ? 'Table' : 'Function';
  const explicit = new Map<string, string>();
  const entries = (section('ExplicitNames') as Obj | undefined)?.entries;
  for (const e of Array.isArray(entries) ? entries as Obj[] : []) {
    const v = e[explicitTag] as Obj | undefined;
    if (typeof v?.source_name === 'string' && typeof v.canonical_name === 'string') explicit.set(v.source_name, v.canonical_name);
  }
  const defs = section(sectionKey);
  return (Array.isArray(defs) ? defs as Obj[] : []).find((d) => {
    const source = optionString(d.source_name);
    if (source === undefined) return false;
    const canonical = explicit.get(source) ?? (snake ? toSnakeCase(source) : source);
    return canonical === name || source === name;
  });
}

async function listCommand(opts: Record<string, unknown>, cmd: Command) {
  warnUnstable();
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const token = await authToken(config, serverUrl, { yes: opts.yes !== undefined });
  const me = identityFromToken(token ?? '') ?? '';
  const url = `${serverUrl}/v1/identity/${me}/databases`;
  const body = jsonBody(await httpRequest('GET', url, { token }), url) as { identities?: string[] };
  const identities = body.identities ?? [];
  if (identities.length === 0) {
    process.stdout.write(`No databases found for ${me}.\n`);
    return;
  }
  const rows: string[][] = [];
  for (const id of identities) {
    const namesUrl = `${serverUrl}/v1/database/${id}/names`;
    const names = jsonBody(await httpRequest('GET', namesUrl, { token }), namesUrl) as { names?: string[] };
    rows.push([(names.names ?? []).join(', '), id]);
  }
  process.stdout.write(`Associated databases for user ${me}:\n`);
  process.stdout.write(renderTable(['Database Name(s)', 'Identity'], rows) + '\n');
}

/**
 * `spacetime dashboard` (docs/dashboard.md): the server trades this CLI's token for a one-time sign-in code that lives
 * a minute; the code travels in the URL fragment (never sent to a server) and the page exchanges it by POST, so the
 * token itself is in no URL. A browser is opened only where one can show (a display, not CI).
 */
async function dashboardCommand(opts: Record<string, unknown>, cmd: Command) {
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined).replace(/\/+$/, '');
  const token = await authToken(config, serverUrl, { yes: true });
  const url = `${serverUrl}/v1/dashboard/code`;
  const { code } = jsonBody(await httpRequest('POST', url, { token }), url) as { code: string };
  const pageUrl = `${serverUrl}/#code=${code}`;
  process.stdout.write(`Dashboard: ${serverUrl}/\nSign in by opening (works once, for a minute): ${pageUrl}\n`);
  const hasDisplay = process.platform === 'darwin' || process.platform === 'win32' ||
    process.env.DISPLAY !== undefined || process.env.WAYLAND_DISPLAY !== undefined;
  if (opts.browser === false || !hasDisplay || process.env.CI !== undefined) return;
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [pageUrl], { stdio: 'ignore', detached: true });
  child.once('error', () => process.stdout.write('Unable to open a browser: open the URL above.\n'));
  child.unref();
}

async function deleteCommand(db: string | undefined, opts: Record<string, unknown>, cmd: Command) {
  const database = databaseFromConfig(db, opts);
  const config = loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const yes = opts.yes !== undefined;
  const token = await authToken(config, serverUrl, { yes });
  const identity = await resolveDatabase(serverUrl, database);
  const label = isIdentityHex(database) ? identity : `${database} (${identity})`;
  if (yes) process.stdout.write('Skipping confirmation due to --yes\n');
  else if (!(await yesOrNo(`Are you sure you want to delete database ${label}? This action cannot be undone.`))) {
    process.stdout.write('Aborting\n');
    return;
  }
  const url = `${serverUrl}/v1/database/${identity}`;
  const res = await httpRequest('DELETE', url, { token });
  if (res.status === 428) {
    const body = parseJsonLossless(res.text) as { confirmation_token?: string };
    process.stdout.write(`WARNING: Deleting the database ${identity} will also delete its children!\n`);
    if (!yes && !(await yesOrNo('Do you want to proceed deleting above databases?'))) {
      process.stdout.write('Aborting\n');
      return;
    }
    const again = `${url}?token=${encodeURIComponent(String(body.confirmation_token))}`;
    ensureOk(await httpRequest('DELETE', again, { token }), again);
    return;
  }
  ensureOk(res, url);
}

// ---------------------------------------------------------------------------------------------------------------
// server subcommands

/** A server URL with its protocol (upstream refuses a bare host here: `Invalid url: …`). */
function parseServerUrl(raw: string): { host: string; protocol: 'http' | 'https' } {
  let url: URL;
  try {
    if (!raw.includes('://')) throw new Error('no protocol');
    url = new URL(raw);
  } catch {
    throw new CliError(`Invalid url: ${raw}`);
  }
  const protocol = url.protocol.replace(/:$/, '');
  if (protocol !== 'http' && protocol !== 'https') throw new CliError(`Invalid protocol: ${protocol}`);
  return { host: url.host, protocol };
}

async function fetchFingerprint(serverUrl: string): Promise<string> {
  const url = `${serverUrl}/v1/identity/public-key`;
  return ensureOk(await httpRequest('GET', url), url).text;
}

/** The pid of a live server holding a commit-log lock under `dir` (`databases/<id>/clog/lock`), if any. */
function runningServerPid(dir: string): number | undefined {
  const databasesDir = path.join(dir, 'databases');
  if (!existsSync(databasesDir)) return undefined;
  for (const entry of readdirSync(databasesDir)) {
    const lockFile = path.join(databasesDir, entry, 'clog', 'lock');
    if (!existsSync(lockFile)) continue;
    const pid = Number.parseInt(readFileSync(lockFile, 'utf8').trim(), 10);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      // no such process: a stale lock from a crash
    }
  }
  return undefined;
}

function registerServerCommands(program: Command): void {
  const server = program.command('server').description('Manage the connection to the SpacetimeDB server');
  server.command('list').description('List stored server configurations').action(async (_opts, cmd: Command) => {
    warnUnstable();
    const config = loadConfig(cmd);
    const defaultServer = config.data.default_server;
    const rows = config.data.server_configs.map((s) => [
      defaultServer !== undefined && serverIs(s, defaultServer) ? '***' : '',
      s.host, s.protocol, s.nickname ?? '',
    ]);
    const widths = [0, 1, 2, 3].map((i) => Math.max(['DEFAULT', 'HOSTNAME', 'PROTOCOL', 'NICKNAME'][i].length, ...rows.map((r) => r[i].length)));
    // Upstream's table (tabled, empty style): every cell padded by one space each side, trailing spaces kept, the
    // DEFAULT column aligned right.
    const line = (cells: string[]) => cells.map((c, i) => ` ${i === 0 ? c.padStart(widths[i]) : c.padEnd(widths[i])} `).join('');
    process.stdout.write([line(['DEFAULT', 'HOSTNAME', 'PROTOCOL', 'NICKNAME']), ...rows.map(line)].join('\n') + '\n');
  });
  server.command('add').description('Add a new server configuration')
    .argument('<name>', 'Nickname for this server')
    .requiredOption('--url <url>', 'The URL of the server to add')
    .option('-d, --default', 'Make the new server the default server for future commands')
    .option('--no-fingerprint', 'Skip fetching the server public key')
    .action(async (name: string, opts: Record<string, unknown>, cmd: Command) => {
      warnUnstable();
      const config = loadConfig(cmd);
      const url = String(opts.url).replace(/\/+$/, '');
      const { host, protocol } = parseServerUrl(url);
      const sameName = config.findServer(name);
      if (sameName !== undefined) throw new CliError(`Server nickname ${name} already in use: ${sameName.protocol}://${sameName.host}`);
      const sameHost = config.findServer(host);
      if (sameHost !== undefined) {
        if (sameHost.nickname === host) throw new CliError(`Server host name is ambiguous with existing server nickname: ${host}`);
        throw new CliError(`Server already configured for host: ${host}`);
      }
      let key: string | undefined;
      if (opts.fingerprint !== false) {
        key = await fetchFingerprint(url).catch((error: unknown) => {
          throw new CliError(`Unable to retrieve fingerprint for server: ${url}\nIs the server running?\n` +
            `Add a server without retrieving its fingerprint with:\n\tspacetime server add --url ${url} --no-fingerprint`,
            error instanceof CliError ? [error.message, ...error.causes] : [String(error)]);
        });
        process.stdout.write(`For server ${url}, got fingerprint:\n${key}\n`);
      }
      config.data.server_configs.push({ nickname: name, host, protocol, ...(key !== undefined ? { ecdsa_public_key: key } : {}) });
      if (opts.default === true) config.data.default_server = name;
      process.stdout.write(`Host: ${host}\nProtocol: ${protocol}\n`);
      config.save();
    });
  server.command('set-default').description('Set the default server for future commands').argument('<server>')
    .action(async (name: string, _opts, cmd: Command) => {
      warnUnstable();
      const config = loadConfig(cmd);
      if (config.findServer(name) === undefined) throw new CliError(`Cannot set default server to unknown server ${name}`);
      config.data.default_server = name;
      config.save();
    });
  server.command('remove').description('Deletes a saved server configuration').argument('<server>')
    .addOption(new Option('-y, --yes <scope>').argParser(collect).hideHelp())
    .action(async (name: string, _opts, cmd: Command) => {
      warnUnstable();
      const config = loadConfig(cmd);
      const entry = config.data.server_configs.find((s) => serverIs(s, name));
      if (entry === undefined) throw new CliError(`No such saved server configuration: ${name}\nAdd a new server configuration with:\n\tspacetime server add ${name} --url <url>`);
      config.data.server_configs = config.data.server_configs.filter((s) => s !== entry);
      if (config.data.default_server !== undefined && serverIs(entry, config.data.default_server)) delete config.data.default_server;
      config.save();
    });
  server.command('ping').description('Checks to see if a SpacetimeDB host is online').argument('[server]')
    .action(async (name: string | undefined, _opts, cmd: Command) => {
      warnUnstable();
      const config = loadConfig(cmd);
      const serverUrl = config.serverUrl(name);
      const res = await httpRequest('GET', `${serverUrl}/v1/ping`);
      if (res.status === 200) process.stdout.write(`Server is online: ${serverUrl}\n`);
      else if (res.status === 404) process.stdout.write(`Server returned 404 (Not Found): ${serverUrl}\n`);
      else process.stdout.write(`Server could not be reached (${res.status} ${res.statusText}): ${serverUrl}\n`);
    });
  server.command('fingerprint').description("Show or update a saved server's fingerprint").argument('[server]')
    .addOption(new Option('-y, --yes <scope>').argParser(collect))
    .action(async (name: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      warnUnstable();
      const config = loadConfig(cmd);
      const entry = name === undefined ? config.defaultServer() : savedServer(config, name);
      // Upstream names the server as given (a URL by its host), or the default server by nickname or host.
      const label = name === undefined ? entry.nickname ?? entry.host : hostOf(name);
      if (await updateServerFingerprint(entry, label)) {
        if (!(await confirmOrYes(opts, 'Continue?'))) throw new CliError('Aborted');
        config.save();
      }
    });
  server.command('clear').description('Deletes all data from all local databases')
    .option('--data-dir <dir>', 'The path to the server data directory to clear [default: that of the selected spacetime instance]')
    .addOption(new Option('-y, --yes <scope>').argParser(collect))
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      warnUnstable();
      const dir = path.resolve((opts.dataDir as string | undefined) ?? dataDir(pathOpts(cmd)));
      if (!existsSync(dir)) {
        process.stdout.write('Local database not found. Nothing has been deleted.\n');
        return;
      }
      process.stdout.write(`Database path: ${dir}\n`);
      const owner = runningServerPid(dir);
      if (owner !== undefined) throw new CliError(`A server (pid ${owner}) is using ${dir}; stop it before clearing its data`);
      if (opts.yes === undefined && !(await yesOrNo('Are you sure you want to delete all data from the local database?'))) {
        process.stdout.write('Aborting\n');
        return;
      }
      rmSync(dir, { recursive: true, force: true });
      process.stdout.write(`Deleted database: ${dir}\n`);
    });
  server.command('edit').description('Update a saved server\'s nickname, host name or protocol').argument('<server>')
    .option('--new-name <name>').option('--url <url>').option('--no-fingerprint')
    .addOption(new Option('-y, --yes <scope>').argParser(collect))
    .action(async (name: string, opts: Record<string, unknown>, cmd: Command) => {
      warnUnstable();
      const config = loadConfig(cmd);
      const newName = opts.newName as string | undefined;
      const next = opts.url === undefined ? undefined : parseServerUrl(String(opts.url));
      refuseServerConflict(config, 'Nickname', newName);
      refuseServerConflict(config, 'Host', next?.host);
      const entry = savedServer(config, hostOf(name));
      const oldUrl = `${entry.protocol}://${entry.host}`;
      const oldNickname = entry.nickname;
      if (newName !== undefined) {
        if (config.data.default_server !== undefined && config.data.default_server === entry.nickname) config.data.default_server = newName;
        entry.nickname = newName;
        if (oldNickname !== undefined) process.stdout.write(`Changing nickname from ${oldNickname} to ${newName}\n`);
      }
      if (next !== undefined) {
        if (config.data.default_server === entry.host) config.data.default_server = next.host;
        process.stdout.write(`Changing host from ${entry.host} to ${next.host}\nChanging protocol from ${entry.protocol} to ${next.protocol}\n`);
        entry.host = next.host;
        entry.protocol = next.protocol;
      }
      if (`${entry.protocol}://${entry.host}` !== oldUrl) {
        if (opts.fingerprint === false) delete entry.ecdsa_public_key;
        else await updateServerFingerprint(entry, entry.host);
      }
      if (!(await confirmOrYes(opts, 'Continue?'))) throw new CliError('Aborted');
      config.save();
    });
}

/** A saved server by nickname or host (a URL by its host), or upstream's error. */
function savedServer(config: CliConfig, nameOrUrl: string): ServerConfig {
  const entry = config.findServer(hostOf(nameOrUrl));
  if (entry === undefined) {
    throw new CliError(`No such saved server configuration: ${nameOrUrl}\nAdd a new server configuration with:\n\tspacetime server add ${nameOrUrl} --url <url>`);
  }
  return entry;
}

/** Whether `nameOrUrl` names this server by nickname, host or URL (upstream's nick_or_host_or_url_is). */
function serverIs(entry: ServerConfig, nameOrUrl: string): boolean {
  return entry.nickname === nameOrUrl || entry.host === nameOrUrl || entry.host === hostOf(nameOrUrl);
}

/** The host of a URL; a nickname or host as it is (upstream's host_or_url_to_host_and_protocol). */
function hostOf(nameOrUrl: string): string {
  return nameOrUrl.includes('://') ? parseServerUrl(nameOrUrl).host : nameOrUrl;
}

/** `server edit` refuses a new nickname or host that names a saved server, the edited one included (as upstream). */
function refuseServerConflict(config: CliConfig, what: 'Nickname' | 'Host', value: string | undefined): void {
  const other = value === undefined ? undefined : config.findServer(value);
  if (other !== undefined) {
    throw new CliError(`${what} ${value} conflicts with saved configuration for server ${other.nickname ?? other.host}: ${other.protocol}://${other.host}`);
  }
}

/** Fetches the server's key and saves it on `entry`; prints what changed. True when the entry changed. */
async function updateServerFingerprint(entry: ServerConfig, label: string): Promise<boolean> {
  const key = await fetchFingerprint(`${entry.protocol}://${entry.host}`);
  const saved = entry.ecdsa_public_key;
  if (saved === key) {
    process.stdout.write(`Fingerprint is unchanged for server ${label}:\n${key}\n`);
    return false;
  }
  if (saved !== undefined) process.stdout.write(`Fingerprint has changed for server ${label}.\nWas:\n${saved}\nNew:\n${key}\n`);
  else process.stdout.write(`No saved fingerprint for server ${label}. New fingerprint:\n${key}\n`);
  entry.ecdsa_public_key = key;
  return true;
}

/** Upstream's y_or_n: `--yes` prints that it skipped the question. */
async function confirmOrYes(opts: Record<string, unknown>, prompt: string): Promise<boolean> {
  if (opts.yes === undefined) return yesOrNo(prompt);
  process.stdout.write('Skipping confirmation due to --yes\n');
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// start

async function startCommand(opts: Record<string, unknown>, cmd: Command) {
  const paths = pathOpts(cmd);
  const config = CliConfig.load(paths);
  const listenAddr = (opts.listenAddr as string | undefined) ?? config.data.listen_addr ?? listenAddrDefault;
  const dir = path.resolve((opts.dataDir as string | undefined) ?? dataDir(paths));
  // <data-dir>/config.toml (written with every key commented out at first start); a bad key stops the start here.
  const file = readServerConfig(dir);
  for (const [name, value] of Object.entries(file.limitsEnv)) process.env[name] = value; // limits.ts limitFromEnv
  // Keys: config.toml [certificate-authority] (upstream's order), else --jwt-key-dir, else the root dir's config dir
  // (upstream's layout), else the server's <data-dir>/keys.
  const jwtKeyDir = opts.jwtKeyDir as string | undefined;
  const keyDir = file.keyDir ?? jwtKeyDir ?? (paths.rootDir !== undefined ? configDir(paths) : undefined);
  const allowPublish = opts.allowPublish as string[];
  const publishPolicy = allowPublish.length > 0 ? parsePublishPolicy(allowPublish, '--allow-publish')
    : file.publishAllow !== undefined ? parsePublishPolicy(file.publishAllow, `${file.path}: [publish] allow`) : undefined;
  const listenHost = /^\[?([^\]]*?)\]?:\d+$/.exec(listenAddr)?.[1] ?? listenAddr;
  if (publishPolicy === undefined && !isLoopbackHost(listenHost)) {
    process.stdout.write(`warning: anyone who can reach ${listenAddr} may create databases (as upstream); ` +
      `--allow-publish or [publish] allow in ${file.path} limits who may (docs/operations.md)\n`);
  }
  const durability = cmd.getOptionValueSource('durability') === 'default' ? file.durability ?? 'fsync' : opts.durability as 'fsync' | 'none';
  const oidcOpts = opts.oidcConfig === undefined && file.hasOidc ? { ...opts, oidcConfig: file.path } : opts;
  // Outbound HTTP from procedures to private / loopback addresses (host/http-egress.ts reads this).
  if (opts.allowPrivateHttp === true) process.env.SPACETIME_ALLOW_PRIVATE_HTTP = '1';
  if (opts.allowLoopbackHttp === true) process.env.SPACETIME_ALLOW_LOOPBACK_HTTP = '1';
  // Loaded lazily so that ordinary CLI commands do not pay for loading the server.
  const { startServer } = await import('../server/main.js');
  process.stdout.write(`spacetimedb-standalone version: ${cliVersion}\n`);
  process.stdout.write(`spacetimedb-standalone path: ${process.argv[1] ?? ''}\n`);
  process.stdout.write(`database running in data directory ${dir}\n`);
  // startServer prints `Starting SpacetimeDB listening on <addr>` once it is bound.
  const running = await startServer({ listenAddr, dataDir: dir, keyDir, oidc: oidcOptionsFromFlags(oidcOpts), durability, exitOnUncaughtError: true,
    databaseThreads: opts.databaseThreads as 'main' | 'worker' | undefined,
    metrics: file.metricsEnabled, version: cliVersion, publishPolicy, webSocket: file.webSocket,
    pg: opts.pgPort === undefined ? undefined : { port: opts.pgPort as number, version: cliVersion } });
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void running.close().finally(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** `--pg-port`: an unprivileged TCP port, 1024..65534 (upstream's clap range). */
function parsePgPort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1024 || port >= 65535) {
    throw new InvalidArgumentError(`${text} is not in 1024..65535`);
  }
  return port;
}

// ---------------------------------------------------------------------------------------------------------------
// program

/** What `--version` and `spacetime version` print: upstream's long version (clap's `--version`), path and commit. */
function versionText(): string {
  return `spacetime Path: ${process.argv[1] ?? ''}\nCommit: ${checkoutCommit()}\n` +
    `spacetimedb tool version ${cliVersion}; spacetimedb-lib version ${cliVersion};`;
}

/** What `-V` prints: clap's short version. */
const versionTextShort = `spacetime ${cliVersion}`;

/** The commit of the checkout this CLI runs from, read from its .git (empty when it is not a git checkout). */
function checkoutCommit(): string {
  const gitDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '.git');
  try {
    const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head;
    const ref = head.slice('ref: '.length);
    if (existsSync(path.join(gitDir, ref))) return readFileSync(path.join(gitDir, ref), 'utf8').trim();
    const packed = readFileSync(path.join(gitDir, 'packed-refs'), 'utf8').split('\n').find((line) => line.endsWith(` ${ref}`));
    return packed?.split(' ')[0] ?? '';
  } catch {
    return '';
  }
}

function buildProgram(): Command {
  const program = new Command('spacetime');
  program
    .description('SpacetimeDB command line tool')
    .option('--root-dir <dir>', 'The root directory to store all spacetime files in')
    .option('--config-path <file>', 'The path to the cli.toml config file')
    .version(versionText(), '--version')
    .addOption(new Option('-V', 'Print version').hideHelp())
    .on('option:V', () => {
      process.stdout.write(`${versionTextShort}\n`);
      throw new CommanderError(0, 'commander.version', versionTextShort);
    })
    .showSuggestionAfterError(false)
    // Global flags go before the subcommand (as the smoketests pass them); this keeps `login show --token` working.
    .enablePositionalOptions()
    .configureOutput({ outputError: (text, write) => write(text) })
    .exitOverride();

  serverOptions(program.command('publish').description('Create and update a SpacetimeDB database'))
    .argument('[name|identity]', 'A valid domain or identity for this database')
    .addOption(new Option('--delete-data <mode>', 'When publishing to an existing database, delete all data first')
      .choices(['always', 'on-conflict', 'never']).default('never'))
    .option('--break-clients', 'Allow breaking changes that disconnect clients')
    .option('-p, --module-path <dir>', 'The system path (absolute or relative) to the module project')
    .option('-b, --bin-path <file>', 'The system path to a precompiled wasm binary')
    .option('-j, --js-path <file>', 'The system path to a precompiled JavaScript bundle')
    .option('--build-options <opts>', 'Options to pass to the build command')
    .option('--anonymous', 'Perform this action with an anonymous identity')
    .option('--parent <db>', 'A parent database')
    .option('--organization, --org <org>', 'The organization to publish under')
    .option('-d, --debug', 'Build in debug mode')
    .option('--env <env>', 'Configuration environment (spacetime.<env>.json)')
    .action(async (name: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      const paths = [opts.modulePath, opts.binPath, opts.jsPath].filter((p) => p !== undefined);
      if (paths.length > 1) throw new UsageError("the argument '--module-path <dir>' cannot be used with '--js-path <file>'");
      await publishWithConfig(loadConfig(cmd), {
        database: name,
        server: opts.server as string | undefined,
        deleteData: opts.deleteData as DeleteDataMode,
        breakClients: opts.breakClients === true,
        yes: parseYesScopes((opts.yes as string[] | undefined) ?? []),
        modulePath: opts.modulePath as string | undefined,
        jsPath: opts.jsPath as string | undefined,
        binPath: opts.binPath as string | undefined,
        anonymous: opts.anonymous === true,
        parent: opts.parent as string | undefined,
        organization: opts.org as string | undefined,
        debug: opts.debug === true,
      }, opts.config === false, opts.env as string | undefined);
    });

  serverOptions(program.command('delete').description('Deletes a SpacetimeDB database'))
    .argument('[database]', 'The name or identity of the database to delete')
    .action((db: string, opts: Record<string, unknown>, cmd: Command) => deleteCommand(db, opts, cmd));

  serverOptions(program.command('logs').description('Prints logs from a SpacetimeDB database'))
    .argument('[database]', 'The name or identity of the database')
    .option('-n, --num-lines <n>', 'The number of lines to print from the end of the log')
    .option('-f, --follow', 'Keep printing new lines as they arrive')
    .addOption(new Option('--format <format>', 'Output format for the logs').choices(['text', 'json']).default('text'))
    .addOption(new Option('-l, --level <level>', 'Show only this level and more severe ones').choices([...logLevels]))
    .option('--level-exact', 'Show only the level given with --level')
    .action((db: string, opts: Record<string, unknown>, cmd: Command) => logsCommand(db, opts, cmd));

  serverOptions(program.command('call').description('Invokes a function (reducer or procedure) in a SpacetimeDB database'))
    .argument('[database]', 'The database name or identity')
    .argument('[function]', 'The name of the function to call')
    .argument('[arguments...]', 'Arguments, one JSON literal each')
    .option('--anonymous', 'Perform this action with an anonymous identity')
    .action((db: string, fn: string, args: string[], opts: Record<string, unknown>, cmd: Command) =>
      callCommand(db, fn, args, opts, cmd));

  // Hot backup and restore (cli/backup.ts, docs/operations.md).
  serverOptions(program.command('backup').description('Writes a consistent backup of a database to a file while it keeps serving'))
    .argument('[database]', 'The name or identity of the database').option('-o, --out <file>', 'The backup file (default: <database>.stdb-backup)')
    .action(async (db: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      const config = loadConfig(cmd);
      const serverUrl = config.serverUrl(opts.server as string | undefined);
      const token = await authToken(config, serverUrl, { yes: opts.yes !== undefined });
      const database = databaseFromConfig(db, opts);
      await backupToFile(serverUrl, token, await resolveDatabase(serverUrl, database), (opts.out as string | undefined) ?? `${database}.stdb-backup`);
    });
  serverOptions(program.command('restore').description('Creates a database from a backup file (same or new name, any server)'))
    .argument('<file>', 'A file written by `spacetime backup`').argument('[name]', 'The new database\'s name (default: unnamed)')
    .action(async (file: string, name: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      const config = loadConfig(cmd);
      const serverUrl = config.serverUrl(opts.server as string | undefined);
      await restoreFromFile(serverUrl, await authToken(config, serverUrl, { yes: opts.yes !== undefined }), file, name);
    });

  serverOptions(program.command('history').description('Lists every publish of a database and the migration plan it applied'))
    .argument('[database]').option('--json', 'Print the entries as JSON')
    .action(async (db: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      const config = loadConfig(cmd);
      const serverUrl = config.serverUrl(opts.server as string | undefined);
      const token = await authToken(config, serverUrl, { yes: opts.yes !== undefined });
      await printMigrationHistory(serverUrl, await resolveDatabase(serverUrl, databaseFromConfig(db, opts)), token, opts.json === true);
    });

  serverOptions(program.command('describe').description('Describe the structure of a database or entities within it'))
    .argument('[database]').argument('[entity_type]', 'reducer or table').argument('[entity_name]')
    .option('--json', 'Output the schema as JSON (required)')
    .option('--anonymous', 'Perform this action with an anonymous identity')
    .action((db: string, t: string | undefined, n: string | undefined, opts: Record<string, unknown>, cmd: Command) =>
      describeCommand(db, t, n, opts, cmd));

  serverOptions(program.command('sql').description('Runs a SQL query on the database'))
    .argument('[database]').argument('[query]')
    .option('--interactive', 'Instead of using a query, run an interactive command prompt for `SQL` expressions')
    .addOption(new Option('--confirmed <bool>').choices(['true', 'false']))
    .option('--anonymous', 'Perform this action with an anonymous identity')
    .addOption(new Option('--format <format>').choices(['text', 'json']).default('text'))
    .action((db: string, q: string, opts: Record<string, unknown>, cmd: Command) => sqlCommand(db, q, opts, cmd));

  serverOptions(program.command('list').description('Lists the databases attached to an identity'))
    .action((opts: Record<string, unknown>, cmd: Command) => listCommand(opts, cmd));

  program.command('dashboard').description('Opens the web dashboard of a server, signed in as this CLI\'s identity')
    .option('-s, --server <server>', 'The nickname, host name or URL of the server')
    .option('--no-browser', 'Only print the URL')
    .action((opts: Record<string, unknown>, cmd: Command) => dashboardCommand(opts, cmd));

  // `login --token T` and `login show --token` share a flag name: login's own options only count before `show`.
  const loginCmd = program.command('login').description('Manage your login to SpacetimeDB').enablePositionalOptions()
    .option('--auth-host <url>', 'The auth host (default: the target server\'s web login, see docs/login.md)')
    .option('-s, --server <server>', 'The server whose web login to use (default: the default server)')
    .option('--token <token>', 'Bypass the login flow and use a token directly')
    .option('--no-browser', 'Do not open a browser')
    .addOption(new Option('--server-issued-login <server>').hideHelp())
    .action(async (opts: Record<string, unknown>, cmd: Command) => {
      const config = loadConfig(cmd);
      await login(config, {
        token: opts.token as string | undefined, serverIssuedLogin: opts.serverIssuedLogin as string | undefined,
        authHost: opts.authHost as string | undefined, server: opts.server as string | undefined, browser: opts.browser !== false,
      }, (s) => config.serverUrl(s));
    });
  loginCmd.command('show').description('Show the current login info').option('--token', 'Also show the auth token')
    .action((opts: Record<string, unknown>, cmd: Command) => {
      const config = loadConfig(cmd);
      loginShow(config, opts.token === true);
    });

  program.command('logout').description('Log out of SpacetimeDB').option('--auth-host <url>', 'The auth host')
    .option('-s, --server <server>', 'The server whose web session to end (default: the default server)')
    .action((opts: Record<string, unknown>, cmd: Command) =>
      logoutCommand(loadConfig(cmd), { authHost: opts.authHost as string | undefined, server: opts.server as string | undefined }));

  program.command('build').description('Builds a spacetime module.')
    .option('-p, --module-path <dir>', 'The system path (absolute or relative) to the module project')
    .option('--lint-dir <dir>', 'The directory to lint for nonfunctional print statements', 'src')
    .option('-d, --debug', 'Builds the module using debug instead of release')
    .action(async (opts: Record<string, unknown>) => {
      const dir = resolveModuleDir(opts.modulePath as string | undefined);
      await bundleModule(dir, { debug: opts.debug === true });
      process.stdout.write('Build finished successfully.\n');
    });

  registerServerCommands(program);
  registerDevflowCommands(program, { loadConfig, resolveDatabase });

  registerGenerateCommand(program);

  program.command('subscribe').description('Subscribe to SQL queries on the database. (UNSTABLE)')
    .argument('[database]', 'The name or identity of the database you would like to query')
    .argument('[query...]', 'The SQL queries to subscribe to')
    .option('-n, --num-updates <n>', 'The number of subscription updates to receive before exiting')
    .option('-t, --timeout <secs>', 'The timeout, in seconds, after which to disconnect and stop receiving updates')
    .option('--print-initial-update', 'Print the initial update for the queries')
    .option('--confirmed <bool>', 'Instruct the server to deliver only updates of confirmed transactions')
    .option('--anonymous', 'Perform this action with an anonymous identity')
    .option('-s, --server <server>', 'The nickname, host name or URL of the server')
    .option('-y, --yes <scope>', 'Run non-interactively wherever possible')
    .option('--no-config', 'Ignore spacetime.json configuration')
    .action(async (db: string | undefined, queryArgs: string[], opts: Record<string, unknown>, cmd: Command) => {
      warnUnstable();
      const { database, rest: queries } = partsFromConfig([db, ...queryArgs], opts, 'query', 1);
      const config = loadConfig(cmd);
      const serverUrl = config.serverUrl(opts.server as string | undefined);
      const token = await authToken(config, serverUrl, { anonymous: opts.anonymous === true, yes: opts.yes !== undefined });
      const count = (flag: string, value: unknown): number | undefined => {
        if (value === undefined) return undefined;
        const n = Number(value);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`invalid value '${String(value)}' for '${flag}'`);
        return n;
      };
      if (opts.confirmed !== undefined && opts.confirmed !== 'true' && opts.confirmed !== 'false') {
        throw new UsageError(`invalid value '${String(opts.confirmed)}' for '--confirmed <bool>'`);
      }
      await runSubscribe({
        serverUrl, token, queries,
        databaseIdentity: await resolveDatabase(serverUrl, database),
        numUpdates: count('--num-updates <n>', opts.numUpdates),
        timeoutSeconds: count('--timeout <secs>', opts.timeout),
        printInitialUpdate: opts.printInitialUpdate === true,
        confirmed: opts.confirmed === undefined ? undefined : opts.confirmed === 'true',
        print: (line) => process.stdout.write(`${line}\n`),
      });
    });


  addOidcStartOptions(program.command('start').description('Start a local SpacetimeDB instance'))
    .option('-l, --listen-addr <addr>', 'The address and port to listen on')
    .option('--data-dir <dir>', 'The path to the data directory')
    .option('--jwt-key-dir <dir>', 'Directory holding the id_ecdsa signing keys')
    .addOption(new Option('--edition <edition>').choices(['standalone']).default('standalone'))
    .option('--non-interactive')
    .option('--pg-port <port>', 'If specified, enables the built-in PostgreSQL wire protocol server on the given port.', parsePgPort)
    .addOption(new Option('--durability <mode>', 'fsync: replies wait until the transaction is on disk; none: until the OS has it')
      .choices(['fsync', 'none']).default('fsync'))
    .addOption(new Option('--database-threads <mode>', 'worker: each database in its own worker thread, so a runaway reducer ' +
      'holds only its own database; main: databases run on the server thread [default: $SPACETIME_DATABASE_THREADS, else worker]')
      .choices(['main', 'worker']))
    .option('--allow-private-http', 'Let procedures make HTTP requests to private and loopback addresses (local development)')
    .option('--allow-loopback-http', 'Let procedures make HTTP requests to loopback addresses only (local testing)')
    .option('--allow-publish <who>', 'Who may create databases: "anyone", an identity (64 hex) or a token issuer URL; repeatable ' +
      '(default: anyone on a loopback address, nobody elsewhere; replaces config.toml [publish] allow)', (v: string, p: string[]) => [...p, v], [])
    .addHelpText('after', () => `\n<data-dir>/config.toml (created at first start; bad keys and values stop the start):\n${configKeysHelp()}\n`)
    .action((opts: Record<string, unknown>, cmd: Command) => startCommand(opts, cmd));

  // `spacetime debug log <dir>`: segments, offsets and checksums of a commit log (read-only; see docs/durability.md);
  // `--truncate-at-damage` is the operator's explicit way out of a damaged log (it drops the damage and all after it).
  program.command('debug').description('Inspect on-disk data').command('log')
    .description('Describe a commit log: a database directory or its clog/ directory')
    .argument('<dir>').option('--records', 'List every record')
    .option('--truncate-at-damage', 'Cut the log at its first damaged record, dropping it and everything after it (server stopped)')
    .action(async (dir: string, opts: { records?: boolean; truncateAtDamage?: boolean }) => {
      const { describeLog, truncateAtDamage } = await import('../durability/inspect.js');
      const { existsSync } = await import('node:fs');
      const clog = existsSync(path.join(dir, 'clog')) ? path.join(dir, 'clog') : dir;
      if (opts.truncateAtDamage === true) process.stdout.write(`${truncateAtDamage(clog)}\n`);
      process.stdout.write(`${describeLog(clog, { records: opts.records === true })}\n`);
    });

  program.command('version').description('Print the version').allowUnknownOption().allowExcessArguments()
    .argument('[args...]').action(() => {
      process.stdout.write(`${versionText()}\n`);
    });

  return program;
}

/** Runs the CLI; resolves after setting process.exitCode (never calls process.exit while output may be pending). */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    if (argv.length === 0) {
      process.stderr.write(program.helpInformation());
      process.exitCode = 2;
      return;
    }
    await program.parseAsync(normalizeArgv(argv), { from: 'user' });
  } catch (error) {
    process.exitCode = exitCodeFor(error);
  } finally {
    closeStdin();
  }
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and version requests exit 0; a missing subcommand shows help as an error, like clap (exit 2).
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n\nFor more information, try '--help'.\n`);
    return 2;
  }
  if (error instanceof ExitWithCode) return error.code;
  process.stderr.write(formatError(error) + '\n');
  return 1;
}

// Allow `node --import tsx src/cli/main.ts …` during development.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  void main(process.argv.slice(2));
}
