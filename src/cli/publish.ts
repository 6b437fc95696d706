// `spacetime publish` client flow (cli-and-publish.md §2.1, client-protocol.md §5.3): build or read the program,
// pre_publish, prompts, PUT/POST, and the result lines. Owns: the publish options and `--yes` scopes.
// May call: build, config, auth, errors, json, util.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';
import { authToken } from './auth.js';
import { bundleModule, refuseNonTypeScriptModule, resolveModuleDir } from './build.js';
import { CliConfig } from './config.js';
import { CliError } from './errors.js';
import { parseJsonLossless } from './json.js';
import { ensureOk, httpRequest, identityFromToken, isIdentityHex, validateDatabaseName, yesOrNo } from './util.js';

export type YesScope = 'all' | 'remote' | 'migrate' | 'break-clients' | 'skip-login' | 'delete-data';
const yesScopes: readonly string[] = ['all', 'remote', 'migrate', 'break-clients', 'skip-login', 'delete-data'];
export type DeleteDataMode = 'always' | 'on-conflict' | 'never';

export interface PublishOptions {
  database?: string;
  server?: string;
  deleteData: DeleteDataMode;
  breakClients: boolean;
  yes: Set<YesScope>;
  modulePath?: string;
  jsPath?: string;
  binPath?: string;
  anonymous: boolean;
  parent?: string;
  organization?: string;
  debug?: boolean;
}

export function parseYesScopes(values: readonly string[]): Set<YesScope> {
  const out = new Set<YesScope>();
  for (const value of values) {
    for (const part of value.split(',')) {
      if (!yesScopes.includes(part)) throw new CliError(`invalid value '${part}' for '--yes'`);
      out.add(part as YesScope);
    }
  }
  return out;
}

function yesFor(yes: Set<YesScope>, scope: YesScope): boolean {
  return yes.has('all') || yes.has(scope);
}

async function confirmDestroy(name: string, yes: Set<YesScope>): Promise<void> {
  process.stdout.write(`This will DESTROY the current ${name} module, and ALL corresponding data.\n`);
  if (yesFor(yes, 'delete-data')) {
    process.stdout.write('Skipping confirmation due to --yes\n');
    return;
  }
  if (!(await yesOrNo(`Are you sure you want to proceed? [deleting ${name}]`))) throw new CliError('Aborted.');
}

export async function publish(config: CliConfig, opts: PublishOptions): Promise<void> {
  if (opts.jsPath === undefined && opts.binPath === undefined) refuseNonTypeScriptModule(opts.modulePath);
  const serverUrl = config.serverUrl(opts.server);
  const token = await authToken(config, serverUrl, { anonymous: opts.anonymous, yes: yesFor(opts.yes, 'skip-login') });

  // Upstream accepts a name or an identity for the database and for its parent, and `parent/child` for both at once.
  let name = opts.database;
  let parent = opts.parent;
  if (parent !== undefined) validateParent(parent);
  if (name !== undefined) {
    const slash = name.indexOf('/');
    if (slash >= 0) {
      const [parentAlt, child] = [name.slice(0, slash), name.slice(slash + 1)];
      if (parent !== undefined && parent !== parentAlt) throw new CliError("cannot specify both --parent and <parent>/<child>");
      validateParent(parentAlt);
      [parent, name] = [parentAlt, child];
    }
    validateNameOrIdentity(name);
  }

  let program: string;
  let hostType: 'Js' | 'Wasm';
  if (opts.jsPath !== undefined) {
    process.stdout.write(`(JS) Skipping build. Instead we are publishing ${opts.jsPath}\n`);
    program = readFileSync(opts.jsPath, 'utf8');
    hostType = 'Js';
  } else if (opts.binPath !== undefined) {
    throw new CliError('WASM modules are not supported by this server; publish a TypeScript module (--js-path).');
  } else {
    const moduleDir = resolveModuleDir(opts.modulePath);
    program = (await bundleModule(moduleDir, { debug: opts.debug })).code;
    process.stdout.write('Build finished successfully.\n');
    hostType = 'Js';
  }

  const host = new URL(serverUrl).hostname;
  if (host !== 'localhost' && host !== '127.0.0.1') {
    process.stdout.write(`You are about to publish to a non-local server: ${host}\n`);
    if (yesFor(opts.yes, 'remote')) process.stdout.write('Skipping confirmation due to --yes\n');
    else if (!(await yesOrNo('Are you sure you want to proceed?'))) throw new CliError('Publish aborted by user.');
  }
  process.stdout.write(`Uploading to ${config.serverDisplayName(opts.server)} => ${serverUrl}\n`);

  const query = new URLSearchParams();
  let method = 'POST';
  let url = `${serverUrl}/v1/database`;
  if (name !== undefined) {
    const encoded = encodeURIComponent(name);
    method = 'PUT';
    url = `${serverUrl}/v1/database/${encoded}`;
    if (opts.deleteData === 'always') {
      await confirmDestroy(name, opts.yes);
      query.set('clear', 'true');
    } else {
      await prePublish(serverUrl, encoded, name, program, hostType, token, opts, query);
    }
  }
  if (parent !== undefined) query.set('parent', parent);
  if (opts.organization !== undefined) query.set('org', opts.organization);
  query.set('host_type', hostType);

  process.stdout.write('Publishing module...\n');
  const fullUrl = `${url}?${query.toString()}`;
  const res = await httpRequest(method, fullUrl, { token, body: program });
  if (res.status === 401 && name !== undefined && res.text.includes('PermissionDenied')) {
    if (token === undefined) throw new CliError(`You need to be logged in as the owner of ${name} to publish to ${name}`);
    const me = identityFromToken(token) ?? '';
    throw new CliError(
      `The database ${name} is not registered to the identity you provided.\n` +
        'We suggest you push to either a domain owned by you, or a new domain like:\n' +
        `\tspacetime publish ${me.slice(0, 12)}`,
    );
  }
  ensureOk(res, fullUrl);
  let result: { Success?: { domain?: string | null; database_identity?: string; op?: string } };
  try {
    result = parseJsonLossless(res.text) as typeof result;
  } catch {
    throw new CliError(res.text);
  }
  const success = result.Success;
  if (success === undefined) throw new CliError(res.text);
  const identity = String(success.database_identity);
  const op = String(success.op).toLowerCase();
  if (success.domain !== undefined && success.domain !== null) {
    const verb = op === 'created' ? 'Created new database' : 'Updated database';
    process.stdout.write(`${verb} with name: ${success.domain}, identity: ${identity}\n`);
  } else {
    const verb = op === 'created' ? 'Created new database' : 'Updated database';
    process.stdout.write(`${verb} with identity: ${identity}\n`);
  }
}

/** The pre-publish step: 404 means create; a plan is printed and confirmed; a manual migration aborts or clears. */
async function prePublish(
  serverUrl: string,
  encodedName: string,
  name: string,
  program: string,
  hostType: string,
  token: string | undefined,
  opts: PublishOptions,
  query: URLSearchParams,
): Promise<void> {
  process.stdout.write('Checking for breaking changes...\n');
  const style = process.env.NO_COLOR !== undefined ? 'NoColor' : 'AnsiColor';
  const url = `${serverUrl}/v1/database/${encodedName}/pre_publish?pretty_print_style=${style}&host_type=${hostType}`;
  const res = await httpRequest('POST', url, { token, body: program });
  if (res.status === 404) return;
  if (res.status < 200 || res.status >= 300) {
    throw new CliError(`Pre-publish check failed with status ${res.status} ${res.statusText}: ${res.text}`);
  }
  const plan = parseJsonLossless(res.text) as {
    AutoMigrate?: { migrate_plan: string; break_clients: boolean; token: string; major_version_upgrade?: boolean };
    ManualMigrate?: { reason: string; major_version_upgrade?: boolean };
  };
  const major = plan.AutoMigrate?.major_version_upgrade ?? plan.ManualMigrate?.major_version_upgrade ?? false;
  if (major && !yesFor(opts.yes, 'migrate')) {
    throw new CliError('Aborting because major version upgrade was not accepted.');
  }
  if (plan.ManualMigrate !== undefined) {
    process.stdout.write(`${plan.ManualMigrate.reason}\n`);
    if (opts.deleteData === 'never') {
      process.stdout.write('Aborting publish due to required manual migration.\n');
      throw new CliError(
        'Aborting because publishing would require manual migration or deletion of data and --delete-data was not specified.',
      );
    }
    process.stdout.write('Proceeding with database clear due to --delete-data=on-conflict.\n');
    await confirmDestroy(name, opts.yes);
    query.set('clear', 'true');
    return;
  }
  const auto = plan.AutoMigrate;
  if (auto === undefined) throw new CliError(`unexpected pre-publish response: ${res.text}`);
  process.stdout.write(auto.migrate_plan.endsWith('\n') ? auto.migrate_plan : `${auto.migrate_plan}\n`);
  if (auto.break_clients && !opts.breakClients) {
    if (yesFor(opts.yes, 'break-clients')) process.stdout.write('Skipping confirmation due to --yes\n');
    else if (!(await yesOrNo('The above changes will BREAK existing clients. Do you want to proceed?'))) {
      process.stdout.write('Aborting\n');
      throw new CliError('Publishing aborted by user');
    }
  }
  query.set('token', String(auto.token));
  query.set('policy', 'BreakClients');
}

/** One entry of GET /v1/database/:db/unstable/migrations (host/update.ts). */
interface HistoryEntry { ts_micros: string; publisher: string; program_hash: string; op: string; plan: string }

/**
 * `spacetime history <db>` (beyond upstream): every publish of the database, oldest first — when, who, which
 * program, and the migration plan that was applied. `json` prints the server's entries as they are.
 */
export async function printMigrationHistory(serverUrl: string, identity: string, token: string | undefined, json: boolean): Promise<void> {
  const url = `${serverUrl}/v1/database/${identity}/unstable/migrations`;
  const res = await httpRequest('GET', url, { token });
  ensureOk(res, url);
  const body = JSON.parse(res.text) as { entries: HistoryEntry[] };
  if (json) {
    process.stdout.write(`${JSON.stringify(body.entries, null, 2)}\n`);
    return;
  }
  for (const e of body.entries) {
    const when = new Date(Number(BigInt(e.ts_micros) / 1000n)).toISOString();
    process.stdout.write(`${when}  ${e.op.padEnd(7)}  program ${e.program_hash.slice(0, 16)}  by ${e.publisher}\n`);
    const steps = e.plan.split('\n').filter((l) => l.startsWith('▸') || l.startsWith('!!!'));
    for (const s of steps) process.stdout.write(`    ${s}\n`);
  }
}

function validateNameOrIdentity(nameOrIdentity: string): void {
  if (!isIdentityHex(nameOrIdentity)) validateDatabaseName(nameOrIdentity, false);
}

function validateParent(parent: string): void {
  try {
    validateNameOrIdentity(parent);
  } catch (error) {
    if (error instanceof CliError) throw new CliError(`invalid parent database name \`${parent}\`: ${error.message}`);
    throw error;
  }
}
