// cli.toml: location, defaults, load/save, and server lookup (cli-and-publish.md §4.1, §4.4, §1 shared flags).
// Owns the config file format. May call: smol-toml, node:fs.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'smol-toml';
import { CliError } from './errors.js';

export interface ServerConfig {
  nickname?: string;
  host: string; // host:port, no scheme
  protocol: 'http' | 'https';
  ecdsa_public_key?: string;
}

export interface CliConfigData {
  default_server?: string;
  web_session_token?: string;
  spacetimedb_token?: string;
  listen_addr?: string;
  server_configs: ServerConfig[];
}

function defaultConfig(): CliConfigData {
  return {
    default_server: 'local',
    server_configs: [
      { nickname: 'maincloud', host: 'maincloud.spacetimedb.com', protocol: 'https' },
      { nickname: 'local', host: '127.0.0.1:3000', protocol: 'http' },
    ],
  };
}

export interface PathOptions {
  configPath?: string;
  rootDir?: string;
}

/** The cli-config-dir: holds cli.toml and the local server's signing keys. */
export function configDir(opts: PathOptions): string {
  if (opts.rootDir !== undefined) return path.join(path.resolve(opts.rootDir), 'config');
  const xdg = process.env.XDG_CONFIG_HOME;
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.config'), 'spacetime');
}

/** The default server data dir, `$XDG_DATA_HOME/spacetime/data` or `<root>/data`. */
export function dataDir(opts: PathOptions): string {
  if (opts.rootDir !== undefined) return path.join(path.resolve(opts.rootDir), 'data');
  const xdg = process.env.XDG_DATA_HOME;
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.local', 'share'), 'spacetime', 'data');
}

export function configFilePath(opts: PathOptions): string {
  if (opts.configPath !== undefined) return path.resolve(opts.configPath);
  return path.join(configDir(opts), 'cli.toml');
}

export class CliConfig {
  readonly filePath: string;
  data: CliConfigData;

  private constructor(filePath: string, data: CliConfigData) {
    this.filePath = filePath;
    this.data = data;
  }

  /** Reads cli.toml; a missing file is created with the defaults (and announced, like every save). */
  static load(opts: PathOptions): CliConfig {
    const filePath = configFilePath(opts);
    if (!existsSync(filePath)) {
      const config = new CliConfig(filePath, defaultConfig());
      config.save();
      return config;
    }
    let raw: Record<string, unknown>;
    try {
      raw = parse(readFileSync(filePath, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new CliError(`Failed to load config file ${filePath}`, [(error as Error).message]);
    }
    const servers = Array.isArray(raw.server_configs) ? (raw.server_configs as ServerConfig[]) : [];
    const data: CliConfigData = { server_configs: servers };
    for (const key of ['default_server', 'web_session_token', 'spacetimedb_token', 'listen_addr'] as const) {
      if (typeof raw[key] === 'string') data[key] = raw[key] as string;
    }
    return new CliConfig(filePath, data);
  }

  /** Writes atomically (temp file + rename) and prints `Saving config to <path>.` on stderr. */
  save(): void {
    process.stderr.write(`Saving config to ${this.filePath}.\n`);
    mkdirSync(path.dirname(this.filePath), { recursive: true });
    const doc: Record<string, unknown> = {};
    for (const key of ['default_server', 'web_session_token', 'spacetimedb_token', 'listen_addr'] as const) {
      if (this.data[key] !== undefined) doc[key] = this.data[key];
    }
    doc.server_configs = this.data.server_configs.map((s) => {
      const entry: Record<string, string> = {};
      if (s.nickname !== undefined) entry.nickname = s.nickname;
      entry.host = s.host;
      entry.protocol = s.protocol;
      if (s.ecdsa_public_key !== undefined) entry.ecdsa_public_key = s.ecdsa_public_key;
      return entry;
    });
    const tmp = `${this.filePath}.tmp-${process.pid}`;
    writeFileSync(tmp, stringify(doc) + '\n');
    renameSync(tmp, this.filePath);
  }

  findServer(nameOrHost: string): ServerConfig | undefined {
    return this.data.server_configs.find((s) => s.nickname === nameOrHost || s.host === nameOrHost);
  }

  defaultServer(): ServerConfig {
    const name = this.data.default_server;
    if (name === undefined) {
      throw new CliError(
        'No default server configuration.\nSet an existing server as the default with:\n\tspacetime server set-default <server>\n' +
          'Or add a new server which will become the default:\n\tspacetime server add {server} <url> --default',
      );
    }
    const server = this.findServer(name);
    if (server === undefined) throw new CliError(`Default server does not refer to a saved server configuration: ${name}`);
    return server;
  }

  /** `-s` value → base URL: a URL is used as is, else a nickname or host from cli.toml, else the default server. */
  serverUrl(server: string | undefined): string {
    if (server !== undefined && server.includes('://')) return server.replace(/\/+$/, '');
    const entry = server === undefined ? this.defaultServer() : this.findServer(server);
    if (entry === undefined) {
      throw new CliError(
        `No such saved server configuration: ${server}\nAdd a new server configuration with:\n\tspacetime server add ${server} --url <url>`,
      );
    }
    return `${entry.protocol}://${entry.host}`;
  }

  /** What `Uploading to X => url` shows: the -s value as typed, else the default server's nickname. */
  serverDisplayName(server: string | undefined): string {
    if (server !== undefined) return server;
    return this.data.default_server ?? '';
  }
}
