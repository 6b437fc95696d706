// server/config-file.ts — `<data-dir>/config.toml`: what an operator sets for `spacetime start`, read and checked once.
//
// Owns: the file's sections and keys (upstream's where upstream has them: [certificate-authority], [logs],
// [module-http], [websocket], [commitlog], [wasm], [v8], [v8-heap-policy]; ours beside them: [limits], [durability],
// [metrics], [publish], and [login]/[oidc] as in the `--oidc-config` file), the default file written at first start,
// the start-time refusal of a bad file (ConfigFileError: file, key, reason), and the publish policy (who may create
// databases) with its check.
// May call: smol-toml, node:fs, limits.ts (the same readers the server uses, so a value is checked as it will be used).
//
// Precedence: a `spacetime start` flag beats the file; for [limits] an environment variable already set beats the
// file (tests and one-off overrides keep working). A key this server accepts for upstream compatibility but does not
// act on is a tuning knob (docs/operations.md lists them); a security setting we cannot honour is refused instead.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import {
  connectionsMaxConfigured, limitFromEnv, moduleMemoryLimitMibConfigured, reducerTimeoutMsConfigured, txWriteBytesMaxConfigured,
} from '../limits.js';

export const configFileName = 'config.toml';

/** A bad config file: which file, which key, and why. `spacetime start` refuses to start with it. */
export class ConfigFileError extends Error {
  constructor(readonly file: string, readonly key: string, readonly reason: string) {
    super(`${file}: ${key}: ${reason}`);
    this.name = 'ConfigFileError';
  }
}

/** Who may create databases: anyone, or callers whose identity or token issuer is listed. */
export interface PublishPolicy {
  anyone: boolean;
  identities: Set<string>;
  issuers: Set<string>;
}

/** What the file says, as the server uses it; absent fields fall back to flags, then defaults. */
export interface ServerConfig {
  path: string;
  /** [certificate-authority]: the directory of id_ecdsa / id_ecdsa.pub. */
  keyDir?: string;
  /** [websocket] ping-interval / idle-timeout. */
  webSocket: { pingIntervalMs?: number; idleTimeoutMs?: number };
  /** [durability] mode. */
  durability?: 'fsync' | 'none';
  /** [limits], as the environment variables the server reads (limits.ts `limitFromEnv`). */
  limitsEnv: Record<string, string>;
  /** [metrics] enabled (default true): serve GET /v1/metrics. */
  metricsEnabled: boolean;
  /** [publish] allow; undefined when the file does not say. */
  publishAllow?: string[];
  /** The file has [login] or [oidc]: read it as the `--oidc-config` file. */
  hasOidc: boolean;
}

type KeyKind =
  | { kind: 'string' } | { kind: 'strings' } | { kind: 'bool' } | { kind: 'count' } | { kind: 'duration' }
  | { kind: 'fraction' } | { kind: 'enum'; values: readonly string[] };
interface KeySpec { type: KeyKind; help: string; env?: string }

const count: KeyKind = { kind: 'count' };
const duration: KeyKind = { kind: 'duration' };

/** Every section and key the file may hold. A key not listed here is refused (a typo must not pass silently). */
const schema: Record<string, Record<string, KeySpec>> = {
  'certificate-authority': {
    'jwt-priv-key-path': { type: { kind: 'string' }, help: 'private signing key; must be <dir>/id_ecdsa (with jwt-pub-key-path <dir>/id_ecdsa.pub)' },
    'jwt-pub-key-path': { type: { kind: 'string' }, help: 'public key beside it, <dir>/id_ecdsa.pub' },
  },
  logs: {
    level: { type: { kind: 'enum', values: ['off', 'error', 'warn', 'info', 'debug', 'trace'] }, help: 'accepted (upstream); this server logs errors and start-up lines only' },
    directives: { type: { kind: 'strings' }, help: 'accepted (upstream tracing directives); no effect here' },
  },
  'module-http': {
    enabled: { type: { kind: 'bool' }, help: 'outbound HTTP from procedures; only true is supported (false is refused, not ignored)' },
  },
  websocket: {
    'ping-interval': { type: duration, help: 'keep-alive ping interval (default "15s")' },
    'idle-timeout': { type: duration, help: 'close a connection silent this long (default "30s"); must exceed ping-interval' },
    'close-handshake-timeout': { type: duration, help: 'accepted (upstream); no effect here' },
    'incoming-queue-length': { type: count, help: 'accepted (upstream); fixed at 16384 messages here' },
  },
  commitlog: {
    'log-format-version': { type: count, help: 'accepted (upstream); only format 1 exists here' },
    'max-segment-size': { type: count, help: 'accepted (upstream); segments roll over at 1 GiB here' },
    'offset-index-interval-bytes': { type: count, help: 'accepted (upstream); no offset index here' },
    'offset-index-require-segment-fsync': { type: { kind: 'bool' }, help: 'accepted (upstream); no offset index here' },
    'preallocate-segments': { type: { kind: 'bool' }, help: 'accepted (upstream); no effect here' },
    'write-buffer-size': { type: count, help: 'accepted (upstream); batches are written whole here' },
  },
  wasm: { 'procedure-instance-pool-size': { type: count, help: 'accepted (upstream); no WASM host here' } },
  v8: { 'procedure-instance-pool-size': { type: count, help: 'accepted (upstream); one isolate per database here' } },
  'v8-heap-policy': {
    'heap-check-request-interval': { type: count, help: 'accepted (upstream); no effect here' },
    'heap-check-time-interval': { type: duration, help: 'accepted (upstream); no effect here' },
    'heap-gc-trigger-fraction': { type: { kind: 'fraction' }, help: 'accepted (upstream); no effect here' },
    'heap-retire-fraction': { type: { kind: 'fraction' }, help: 'accepted (upstream); no effect here' },
    'heap-limit-mb': { type: count, help: 'accepted (upstream); use [limits] module-memory-limit-mib' },
  },
  limits: {
    'reducer-timeout-ms': { type: count, env: 'SPACETIME_REDUCER_TIMEOUT_MS', help: 'wall time of one reducer/view/hook call (default 10000; 0: none)' },
    'procedure-timeout-ms': { type: count, env: 'SPACETIME_PROCEDURE_TIMEOUT_MS', help: 'wall time of one procedure call' },
    'http-handler-timeout-ms': { type: count, env: 'SPACETIME_HTTP_HANDLER_TIMEOUT_MS', help: 'wall time of one module HTTP handler call' },
    'http-handler-body-max-bytes': { type: count, env: 'SPACETIME_HTTP_HANDLER_BODY_MAX_BYTES', help: 'request body a module HTTP handler receives' },
    'schedule-rows-max': { type: count, env: 'SPACETIME_SCHEDULE_ROWS_MAX', help: 'rows in one database\'s schedule tables (default 100000)' },
    'tx-write-bytes-max': { type: count, env: 'SPACETIME_TX_WRITE_BYTES_MAX', help: 'bytes one transaction may write (default 134217728)' },
    'module-memory-limit-mib': { type: count, env: 'SPACETIME_MODULE_MEMORY_LIMIT_MIB', help: 'heap of one module isolate (default 256, at least 8)' },
    'connections-max': { type: count, env: 'SPACETIME_CONNECTIONS_MAX', help: 'HTTP and WebSocket connections held at once (default 10000, less when the open-file limit is low)' },
    'server-memory-max-mib': { type: count, env: 'SPACETIME_SERVER_MEMORY_MAX_MIB', help: 'resident memory at which rows, databases and updates are refused (default 3/4 of the memory available; 0: none)' },
    'pg-startup-timeout-ms': { type: count, env: 'SPACETIME_PG_STARTUP_TIMEOUT_MS', help: 'time a PostgreSQL client has to authenticate (default 10000)' },
  },
  durability: {
    mode: { type: { kind: 'enum', values: ['fsync', 'none'] }, help: '"fsync" (default): replies wait for fsync; "none": for the OS write (--durability wins)' },
  },
  metrics: {
    enabled: { type: { kind: 'bool' }, help: 'serve GET /v1/metrics (default true)' },
  },
  publish: {
    allow: { type: { kind: 'strings' }, help: 'who may create databases: "anyone", identities (64 hex digits), token issuers (https://…); --allow-publish wins' },
  },
  login: {
    issuer: { type: { kind: 'string' }, help: 'as in the --oidc-config file (docs/login.md)' },
    client_id: { type: { kind: 'string' }, help: 'as in the --oidc-config file' },
    client_secret: { type: { kind: 'string' }, help: 'as in the --oidc-config file' },
    redirect_url: { type: { kind: 'string' }, help: 'as in the --oidc-config file' },
    scopes: { type: { kind: 'string' }, help: 'as in the --oidc-config file' },
  },
  oidc: {
    trusted_issuers: { type: { kind: 'strings' }, help: 'as in the --oidc-config file' },
    audiences: { type: { kind: 'strings' }, help: 'as in the --oidc-config file' },
  },
};

/**
 * Reads `<dataDir>/config.toml`, writing the commented default first when there is none (as upstream does). Throws
 * ConfigFileError for a file that is not TOML, an unknown section or key, or a value of the wrong kind or range.
 */
export function readServerConfig(dataDir: string, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const path = join(dataDir, configFileName);
  if (!existsSync(path)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path, defaultConfigText(), { flag: 'wx' });
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigFileError(path, '(file)', `not valid TOML: ${(error as Error).message.split('\n')[0]}`);
  }
  const values = checkAgainstSchema(path, doc);
  return toServerConfig(path, values, env);
}

type Values = Map<string, unknown>; // "section.key" → checked value

function checkAgainstSchema(path: string, doc: Record<string, unknown>): Values {
  const values: Values = new Map();
  for (const [section, table] of Object.entries(doc)) {
    const keys = schema[section];
    if (keys === undefined) {
      throw new ConfigFileError(path, `[${section}]`, `unknown section (known: ${Object.keys(schema).map((s) => `[${s}]`).join(', ')})`);
    }
    if (typeof table !== 'object' || table === null || Array.isArray(table) || table instanceof Date) {
      throw new ConfigFileError(path, section, 'must be a table ([' + section + '])');
    }
    for (const [key, value] of Object.entries(table as Record<string, unknown>)) {
      const spec = keys[key];
      const where = `[${section}] ${key}`;
      if (spec === undefined) throw new ConfigFileError(path, where, `unknown key (known in [${section}]: ${Object.keys(keys).join(', ')})`);
      values.set(`${section}.${key}`, checkValue(path, where, spec.type, value));
    }
  }
  return values;
}

function checkValue(path: string, where: string, type: KeyKind, value: unknown): unknown {
  const fail = (reason: string): never => { throw new ConfigFileError(path, where, `${reason}, got ${JSON.stringify(value) ?? String(value)}`); };
  switch (type.kind) {
    case 'string': return typeof value === 'string' && value !== '' ? value : fail('must be a non-empty string');
    case 'strings': return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : fail('must be a list of strings');
    case 'bool': return typeof value === 'boolean' ? value : fail('must be true or false');
    case 'count': return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : fail('must be a non-negative integer');
    case 'fraction': return typeof value === 'number' && value >= 0 && value <= 1 ? value : fail('must be a number from 0 to 1');
    case 'enum': return typeof value === 'string' && type.values.includes(value) ? value : fail(`must be one of ${type.values.map((v) => `"${v}"`).join(', ')}`);
    case 'duration': {
      const ms = typeof value === 'string' ? parseDurationMs(value) : undefined;
      return ms !== undefined ? ms : fail('must be a duration such as "500ms", "15s", "1min"');
    }
  }
}

/** Upstream's humantime forms that matter here: a number with ms, s, sec, m, min or h. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|m|min|mins|h|hr|hrs)\s*$/.exec(text);
  if (match === null) return undefined;
  const unitMs: Record<string, number> = { ms: 1, s: 1000, sec: 1000, secs: 1000, m: 60_000, min: 60_000, mins: 60_000, h: 3_600_000, hr: 3_600_000, hrs: 3_600_000 };
  return Math.round(Number(match[1]) * unitMs[match[2]!]!);
}

function toServerConfig(path: string, values: Values, env: NodeJS.ProcessEnv): ServerConfig {
  const get = <T>(key: string): T | undefined => values.get(key) as T | undefined;
  if (get<boolean>('module-http.enabled') === false) {
    throw new ConfigFileError(path, '[module-http] enabled', 'false is not supported by this server: procedures may always make outbound HTTP requests (refused rather than ignored)');
  }
  const webSocket = { pingIntervalMs: get<number>('websocket.ping-interval'), idleTimeoutMs: get<number>('websocket.idle-timeout') };
  if ((webSocket.pingIntervalMs ?? 15_000) >= (webSocket.idleTimeoutMs ?? 30_000)) {
    throw new ConfigFileError(path, '[websocket] idle-timeout', 'must be greater than ping-interval (default 15s, 30s)');
  }
  if (webSocket.pingIntervalMs === 0) throw new ConfigFileError(path, '[websocket] ping-interval', 'must be greater than 0');
  return {
    path,
    keyDir: keyDirOf(path, get<string>('certificate-authority.jwt-priv-key-path'), get<string>('certificate-authority.jwt-pub-key-path')),
    webSocket,
    durability: get<'fsync' | 'none'>('durability.mode'),
    limitsEnv: limitsEnvOf(path, values, env),
    metricsEnabled: get<boolean>('metrics.enabled') ?? true,
    publishAllow: get<string[]>('publish.allow'),
    hasOidc: [...values.keys()].some((k) => k.startsWith('login.') || k.startsWith('oidc.')),
  };
}

/** Our key loader reads a directory holding id_ecdsa and id_ecdsa.pub; other layouts are refused, not half-used. */
function keyDirOf(path: string, privatePath: string | undefined, publicPath: string | undefined): string | undefined {
  if (privatePath === undefined && publicPath === undefined) return undefined;
  const where = '[certificate-authority]';
  if (privatePath === undefined || publicPath === undefined) throw new ConfigFileError(path, where, 'needs both jwt-priv-key-path and jwt-pub-key-path');
  const expand = (p: string): string => (p.startsWith('~/') ? join(process.env.HOME ?? '~', p.slice(2)) : p);
  const priv = expand(privatePath);
  const pub = expand(publicPath);
  const dir = priv.slice(0, Math.max(0, priv.lastIndexOf('/')));
  if (!priv.endsWith('/id_ecdsa') || pub !== `${dir}/id_ecdsa.pub`) {
    throw new ConfigFileError(path, where, `this server reads a key directory: the keys must be <dir>/id_ecdsa and <dir>/id_ecdsa.pub, got ${privatePath} and ${publicPath}`);
  }
  return dir;
}

/** [limits] as environment variables; each value is checked by the reader the server uses, relations included. */
function limitsEnvOf(path: string, values: Values, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(schema.limits!)) {
    const value = values.get(`limits.${key}`);
    if (value === undefined || spec.env === undefined || (env[spec.env] ?? '') !== '') continue;
    out[spec.env] = String(value);
  }
  const merged = { ...env, ...out };
  const check = (key: string, read: () => unknown): void => {
    try {
      read();
    } catch (error) {
      throw new ConfigFileError(path, `[limits] ${key}`, (error as Error).message);
    }
  };
  check('reducer-timeout-ms', () => reducerTimeoutMsConfigured(merged));
  check('tx-write-bytes-max', () => txWriteBytesMaxConfigured(merged));
  check('module-memory-limit-mib', () => moduleMemoryLimitMibConfigured(merged));
  check('connections-max', () => connectionsMaxConfigured(Infinity, merged));
  for (const [key, spec] of Object.entries(schema.limits!)) check(key, () => limitFromEnv(spec.env!, 0, merged));
  return out;
}

// ─── Who may publish ────────────────────────────────────────────────────────────────────────────────────────────

/** Parses `allow` entries ("anyone", a 64-hex identity, an issuer URL); `where` names the flag or key for errors. */
export function parsePublishPolicy(entries: readonly string[], where: string): PublishPolicy {
  const policy: PublishPolicy = { anyone: false, identities: new Set(), issuers: new Set() };
  for (const entry of entries) {
    if (entry === 'anyone') policy.anyone = true;
    else if (/^(0x)?[0-9a-fA-F]{64}$/.test(entry)) policy.identities.add(entry.replace(/^0x/, '').toLowerCase());
    else if (/^https?:\/\/\S+$/.test(entry)) policy.issuers.add(entry);
    else throw new Error(`${where}: \`${entry}\` is not "anyone", an identity (64 hex digits) or an issuer URL (https://…)`);
  }
  return policy;
}

/** The policy when nothing is configured: open on a loopback address, closed anywhere else (docs/operations.md). */
/**
 * With no setting, anyone may create databases, as upstream standalone allows (`spacetime start` binds loopback by
 * default; on another address the start prints a warning naming the setting).
 */
export function defaultPublishPolicy(): PublishPolicy {
  return { anyone: true, identities: new Set(), issuers: new Set() };
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Why `identityHex` (with its token's `iss`) may not create a database, or undefined when it may. */
export function publishRefusal(policy: PublishPolicy, identityHex: string, issuer: string | undefined): string | undefined {
  if (policy.anyone || policy.identities.has(identityHex) || (issuer !== undefined && policy.issuers.has(issuer))) return undefined;
  return `Identity ${identityHex} may not create databases on this server: the operator allows only listed identities ` +
    'or token issuers ([publish] allow in config.toml, or `spacetime start --allow-publish`). Updating a database you own is not affected.';
}

// ─── The default file and the help text ─────────────────────────────────────────────────────────────────────────

/** Every section and key with its meaning, for `spacetime start --help` and docs/operations.md. */
export function configKeysHelp(): string {
  const lines: string[] = [];
  for (const [section, keys] of Object.entries(schema)) {
    lines.push(`  [${section}]`);
    for (const [key, spec] of Object.entries(keys)) lines.push(`    ${key}: ${spec.help}`);
  }
  return lines.join('\n');
}

/** What a new data directory's config.toml holds: every section, its keys commented out with their meaning. */
export function defaultConfigText(): string {
  const parts = ['# spacetime start reads this file at start; a bad key or value stops the start with the key and why.',
    '# Each comment names a key of its section and what it means; set one with `key = value` under the section header',
    '# (durations as "15s", lists as ["a", "b"]). docs/operations.md explains each one.', ''];
  for (const [section, keys] of Object.entries(schema)) {
    parts.push(`[${section}]`);
    for (const [key, spec] of Object.entries(keys)) parts.push(`# ${key}: ${spec.help}`);
    parts.push('');
  }
  return parts.join('\n');
}
