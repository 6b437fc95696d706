// Registers the developer-workflow commands on the `spacetime` program: init, dev, rename, lock, unlock, and the
// spacetime.json-aware publish driver (cli-and-publish.md §0, §1). main.ts keeps one hook line for these.
// Owns: their flags and output lines. May call: cli/init, cli/dev, cli/project-config, cli/publish, cli/auth,
// cli/util, cli/config.
import { Command, Option } from 'commander';
import path from 'node:path';
import { authToken } from '../auth.js';
import type { CliConfig } from '../config.js';
import { dev } from '../dev.js';
import { CliError } from '../errors.js';
import { loadProjectConfig, resolveDatabaseArg, selectTargets } from '../project-config.js';
import { publish, type PublishOptions } from '../publish.js';
import { ensureOk, httpRequest } from '../util.js';
import { init } from './index.js';

export interface CommandHelpers {
  loadConfig(cmd: Command): CliConfig;
  resolveDatabase(serverUrl: string, nameOrIdentity: string): Promise<string>;
}

/**
 * `spacetime publish` with spacetime.json: CLI values beat configured ones; a CLI name selects targets as a glob;
 * with no name every configured database is published. Without a config file this is exactly `publish(opts)`.
 */
export async function publishWithConfig(config: CliConfig, opts: PublishOptions, noConfig: boolean, env?: string): Promise<void> {
  const project = loadProjectConfig({ noConfig, env });
  const targets = selectTargets(project, opts.database);
  if (project === undefined || targets.length === 0) {
    await publish(config, opts);
    return;
  }
  process.stdout.write(`Using configuration from ${path.join(project.dir, 'spacetime.json')}\n`);
  const explicitSource = opts.modulePath !== undefined || opts.jsPath !== undefined || opts.binPath !== undefined;
  for (const target of targets) {
    const merged: PublishOptions = {
      ...opts,
      database: opts.database !== undefined && !/[*?]/.test(opts.database) ? opts.database : target.database,
      server: opts.server ?? target.server,
      modulePath: explicitSource ? opts.modulePath : target.modulePath,
      jsPath: explicitSource ? opts.jsPath : target.jsPath,
      binPath: explicitSource ? opts.binPath : target.binPath,
      breakClients: opts.breakClients || target.breakClients === true,
      anonymous: opts.anonymous || target.anonymous === true,
      organization: opts.organization ?? target.organization,
    };
    const source = merged.jsPath ?? merged.binPath ?? merged.modulePath ?? 'spacetimedb';
    process.stdout.write(`Publishing module ${source} to database '${merged.database ?? ''}'\n`);
    await publish(config, merged);
  }
}

/** lock / unlock: POST /v1/database/<id>/lock|unlock (owner only, idempotent). */
async function setLocked(h: CommandHelpers, cmd: Command, given: string | undefined, opts: Record<string, unknown>, locked: boolean) {
  const resolved = resolveDatabaseArg(given, loadProjectConfig({ noConfig: opts.config === false }));
  const config = h.loadConfig(cmd);
  const serverUrl = config.serverUrl((opts.server as string | undefined) ?? resolved.server);
  const token = await authToken(config, serverUrl, { yes: opts.yes !== undefined });
  const identity = await h.resolveDatabase(serverUrl, resolved.database);
  const url = `${serverUrl}/v1/database/${identity}/${locked ? 'lock' : 'unlock'}`;
  ensureOk(await httpRequest('POST', url, { token }), url);
  process.stdout.write(locked
    ? `Database ${identity} is now locked. It cannot be deleted until unlocked.\n`
    : `Database ${identity} is now unlocked.\n`);
}

async function rename(h: CommandHelpers, cmd: Command, database: string, opts: Record<string, unknown>) {
  const config = h.loadConfig(cmd);
  const serverUrl = config.serverUrl(opts.server as string | undefined);
  const token = await authToken(config, serverUrl, { yes: opts.yes !== undefined });
  const newName = String(opts.to);
  const identity = await h.resolveDatabase(serverUrl, database); // identities pass through, lowercased
  const url = `${serverUrl}/v1/database/${identity}/names`;
  const res = await httpRequest('PUT', url, { token, body: JSON.stringify([newName]), contentType: 'application/json' });
  if (res.status === 404) throw new CliError(`Database ${identity} not found`);
  if (res.status === 401 || res.status === 403) {
    if (res.text.includes('PermissionDenied')) throw new CliError(`Permission denied for domain: ${newName}`);
    throw new CliError(`You cannot rename ${identity} because it is owned by another identity.`);
  }
  ensureOk(res, url);
  process.stdout.write(`Name set to ${newName} for identity ${identity}.\n`);
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerDevflowCommands(program: Command, h: CommandHelpers): void {
  program.command('init').description('Initializes a new spacetime project.')
    .argument('[project-name]', 'Project name')
    .option('--project-path <path>', 'Directory where the project will be created (defaults to `./<PROJECT_NAME>`)')
    .option('--server-only', 'Initialize server only from the template (no client)')
    .option('--lang <lang>', 'Server language: rust, csharp, typescript (it can only be used when --template is not ' +
      'specified; this server runs typescript modules, rust and csharp projects are for upstream SpacetimeDB)')
    .option('-t, --template [template]', 'Template ID; without a value, lists the templates')
    .addOption(new Option('--list', 'List the templates (same as --template without a value)').hideHelp())
    .option('--local', 'Use local deployment instead of Maincloud')
    .option('--non-interactive', 'Run in non-interactive mode')
    .action(async (name: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      const template = opts.list === true || opts.template === true ? '' : opts.template as string | undefined;
      await init(h.loadConfig(cmd), {
        name, projectPath: opts.projectPath as string | undefined, lang: opts.lang as string | undefined,
        template, local: opts.local === true,
        nonInteractive: opts.nonInteractive === true, serverOnly: opts.serverOnly === true,
      });
    });

  program.command('dev')
    .description('Start development mode with auto-regenerate client module bindings, auto-rebuild, and auto-publish on file changes.')
    .argument('[database]', 'The database name/identity to publish to (optional, will prompt if not provided)')
    .addOption(new Option('--database <database>', 'DEPRECATED: Use positional argument instead').hideHelp())
    .option('--project-path <path>', 'The path to the project directory', '.')
    .option('--module-bindings-path <path>', 'The path to the module bindings directory relative to the project directory', 'src/module_bindings')
    .option('--module-path <path>', 'Path to the SpacetimeDB server module (default: from spacetime.json, else <project-path>/spacetimedb)')
    .option('--client-lang <lang>', 'The language of the generated client bindings (typescript)')
    .option('-s, --server <server>', 'The nickname, host name or URL of the server to publish to')
    .addOption(new Option('-y, --yes <scope>', 'Run non-interactively: publish without questions, create a random database name if none is given').argParser(collect))
    .addOption(new Option('--delete-data <mode>', 'When the schema cannot be migrated').choices(['always', 'on-conflict', 'never']).default('on-conflict'))
    .option('-t, --template <template>', 'Template ID for a new project when there is none here (`spacetime init --template` lists them)')
    .option('--run <command>', 'Command to run the client development server (overrides spacetime.json config)')
    .option('--server-only', 'Only run the server (module) without starting the client')
    .option('--no-config', 'Ignore spacetime.json configuration')
    .option('--env <env>', 'Environment name for config file layering (e.g., dev, staging)', 'dev')
    .option('--skip-publish', 'Skip the publish step')
    .option('--skip-generate', 'Skip the generate step')
    .action(async (database: string | undefined, opts: Record<string, unknown>, cmd: Command) => {
      const bindingsSet = cmd.getOptionValueSource('moduleBindingsPath') === 'cli';
      await dev(h.loadConfig(cmd), {
        database, databaseFlag: opts.database as string | undefined, projectPath: opts.projectPath as string,
        modulePath: opts.modulePath as string | undefined,
        bindingsPath: bindingsSet ? opts.moduleBindingsPath as string : undefined,
        server: opts.server as string | undefined, yes: opts.yes !== undefined, template: opts.template as string | undefined,
        deleteData: opts.deleteData as 'always' | 'on-conflict' | 'never', run: opts.run as string | undefined,
        serverOnly: opts.serverOnly === true, env: opts.env as string, noConfig: opts.config === false,
        skipPublish: opts.skipPublish === true, skipGenerate: opts.skipGenerate === true,
        resolveDatabase: (serverUrl, name) => h.resolveDatabase(serverUrl, name),
      });
    });

  program.command('rename').description('Rename a database')
    .requiredOption('--to <new-name>', 'The new name for the database')
    .argument('<database-identity>', 'The database identity (or current name) to rename')
    .option('-s, --server <server>', 'The nickname, host name or URL of the server')
    .addOption(new Option('-y, --yes <scope>', 'Run non-interactively').argParser(collect))
    .action((db: string, opts: Record<string, unknown>, cmd: Command) => rename(h, cmd, db, opts));

  for (const [name, locked, what] of [['lock', true, 'Lock a database so it cannot be deleted'], ['unlock', false, 'Unlock a database']] as const) {
    program.command(name).description(what)
      .argument('[database]', 'The name or identity of the database (default: from spacetime.json)')
      .option('-s, --server <server>', 'The nickname, host name or URL of the server')
      .option('--no-config', 'Ignore spacetime.json configuration')
      .addOption(new Option('-y, --yes <scope>', 'Run non-interactively').argParser(collect).hideHelp())
      .action((db: string | undefined, opts: Record<string, unknown>, cmd: Command) => setLocked(h, cmd, db, opts, locked));
  }
}
