// server/routes/database.ts — /v1/database/* (client-protocol.md §5.2, cli-and-publish.md §2.2).
//
// Owns: publish / pre_publish / info / identity / names / delete / call / sql / schema / logs / timestamp /
// lock routes: request parsing, permission checks that depend on the caller, and the exact response shapes.
// May call: server/databases.ts, server/control.ts, server/program-hash.ts, server/http.ts, host/errors.ts, host/recovery.ts, host/update.ts,
// host/moduledef-v9.ts, host/reducers.ts, sats/ (JSON), auth/, limits.
//
// Every route here goes through the anon middleware (`ctx.caller()`): a request without a token gets a freshly
// minted identity, echoed in the spacetime-identity(-token) headers.

import type { ServerResponse } from 'node:http';
import { identityFromHex, identityToHex, randomConnectionId } from '../../auth/identity.js';
import {
  BadArgumentsError, ConnectionRejectedError, DatabaseClosedError, NoSuchReducerError, ReducerNotCallableError,
} from '../../host/errors.js';
import { parseJson, stringifyJson } from '../../sats/json.js';
import { moduleDefSections, rawModuleDefToJson } from '../../sats/moduledef.js';
import { SatsError } from '../../sats/types.js';
import { SqlError } from '../../sql/errors.js';
import { DatabaseNameError, parseDatabaseName, type DatabaseRecord } from '../control.js';
import { DatabaseFailedError } from '../../host/recovery.js';
import { readMigrationHistory } from '../../host/update.js';
import { rawModuleDefV9Json } from '../../host/moduledef-v9.js';
import { functionNamer } from '../../host/reducers.js';
import { DatabaseRegistry, requireOwner } from '../databases.js';
import { programHash } from '../program-hash.js';
import { addModuleRoutes, callProcedureRoute } from './module-routes.js';
import type { Caller, HostedDatabase, LogRecord } from '../host-api.js';
import { logFollowLagBytesMax, logReadChunkBytes, programBytesMax, sqlRequestsInFlightPerDatabaseMax } from '../../limits.js';
import { HttpError, jsonBodyMaxBytes, jsonContentType, noteWritten, writeStreamed, type Credentials, type RequestContext, type Router } from '../http.js';

/** Upper bound on `num_lines` (the log's files hold fewer records than this anyway). */
export const logTailMaxLines = 1_000_000;

const migrationPlanRule = '━'.repeat(60);

export function addDatabaseRoutes(router: Router, registry: DatabaseRegistry): void {
  router.add('POST', '/v1/database', (ctx) => publish(ctx, registry, undefined));
  router.add('PUT', '/v1/database/:noi', (ctx) => publish(ctx, registry, ctx.params.noi));
  router.add('POST', '/v1/database/:noi/pre_publish', (ctx) => prePublish(ctx, registry));
  router.add('PUT', '/v1/database/:noi/reset', (ctx) => reset(ctx, registry));
  router.add('GET', '/v1/database/:noi', (ctx) => info(ctx, registry));
  router.add('DELETE', '/v1/database/:noi', (ctx) => deleteDatabase(ctx, registry));
  router.add('GET', '/v1/database/:noi/identity', (ctx) => databaseIdentity(ctx, registry));
  router.add('GET', '/v1/database/:noi/names', (ctx) => getNames(ctx, registry));
  router.add('POST', '/v1/database/:noi/names', (ctx) => addName(ctx, registry));
  router.add('PUT', '/v1/database/:noi/names', (ctx) => replaceNames(ctx, registry));
  router.add('POST', '/v1/database/:noi/call/:reducer', (ctx) => call(ctx, registry));
  router.add('POST', '/v1/database/:noi/sql', (ctx) => sql(ctx, registry));
  router.add('GET', '/v1/database/:noi/schema', (ctx) => schema(ctx, registry));
  router.add('GET', '/v1/database/:noi/logs', (ctx) => logs(ctx, registry));
  router.add('GET', '/v1/database/:noi/unstable/timestamp', (ctx) => timestamp(ctx, registry));
  router.add('POST', '/v1/database/:noi/lock', (ctx) => setLocked(ctx, registry, true));
  router.add('POST', '/v1/database/:noi/unlock', (ctx) => setLocked(ctx, registry, false));
  addModuleRoutes(router, registry);
  router.add('GET', '/v1/database/:noi/unstable/migrations', (ctx) => migrationHistory(ctx, registry));
}

// ---------------------------------------------------------------------------------------------------------------
// Publish

async function publish(ctx: RequestContext, registry: DatabaseRegistry, noi: string | undefined): Promise<void> {
  const credentials = await ctx.caller();
  checkPublishQuery(ctx);
  const target = noi === undefined ? undefined : publishTarget(noi);
  checkParent(registry, ctx.query('parent'), target, ctx.queryFlag('clear'));
  const program = await ctx.text(programBytesMax, 'The module program', 'programBytesMax');
  const policy = { breakClients: ctx.query('policy') === 'BreakClients', token: ctx.query('token') };
  const issuer = (JSON.parse(credentials.payloadJson) as { iss?: unknown }).iss; // who vouched: the publish policy
  const { record, op } = await registry.publish({
    target, caller: credentials.identity, program, clear: ctx.queryFlag('clear'), policy, issuer: typeof issuer === 'string' ? issuer : undefined,
  });
  const domain = target !== undefined && 'name' in target ? target.name : null;
  ctx.sendJson(200, { Success: { domain, database_identity: identityToHex(record.identity), op } });
}

function checkPublishQuery(ctx: RequestContext): void {
  const hostType = ctx.query('host_type');
  if (hostType !== undefined && hostType !== 'Js') {
    throw new HttpError(400, `Unsupported host type \`${hostType}\`: this server runs JavaScript modules only (host_type=Js)`);
  }
  if (ctx.query('policy') === 'BreakClients' && ctx.query('token') === undefined) {
    throw new HttpError(400, 'Migration policy is set to `BreakClients`, but no migration token was provided.');
  }
}

/**
 * `--parent` as upstream standalone treats it: a parent named by name must exist (404), one named by identity is taken
 * as it is, a parent cannot be given to a `clear` of an existing database (400), and otherwise it is accepted and has
 * no effect (standalone has no teams for a child to inherit).
 */
function checkParent(registry: DatabaseRegistry, parent: string | undefined, target: PublishTarget | undefined, clear: boolean): void {
  if (parent === undefined) return;
  if (identityFromHex(parent) === undefined && registry.control.resolve(parent) === undefined) throw new HttpError(404, `\`${parent}\` not found`);
  const existing = target === undefined ? undefined : registry.control.resolve('name' in target ? target.name : identityToHex(target.identity));
  if (clear && existing !== undefined) throw new HttpError(400, 'Setting the parent of an existing database is not supported');
}

type PublishTarget = { name: string } | { identity: bigint };

function publishTarget(noi: string): PublishTarget {
  const identity = identityFromHex(noi);
  if (identity !== undefined) return { identity };
  if (noi.includes('/')) throw new HttpError(400, `Nested database names (\`${noi}\`) are not supported by this server`);
  return { name: validName(noi) };
}

function validName(name: string): string {
  try {
    return parseDatabaseName(name);
  } catch (error) {
    if (error instanceof DatabaseNameError) throw new HttpError(400, error.message);
    throw error;
  }
}

async function reset(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  checkPublishQuery(ctx);
  const record = registry.resolve(ctx.params.noi!);
  const program = await ctx.text(programBytesMax, 'The module program', 'programBytesMax');
  const updated = await registry.resetDatabase(record, credentials.identity, program === '' ? undefined : program);
  ctx.sendJson(200, { Success: { domain: updated.names[0] ?? null, database_identity: identityToHex(updated.identity), op: 'updated' } });
}

async function prePublish(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  requireOwner(record, credentials.identity);
  const program = await ctx.text(programBytesMax, 'The module program', 'programBytesMax');
  const hash = await programHash(program);
  const plan = await registry.planUpdate(record, program, hash);
  if (plan.kind === 'manual') {
    ctx.sendJson(200, { ManualMigrate: { reason: plan.reason, major_version_upgrade: false } });
    return;
  }
  ctx.sendJson(200, {
    AutoMigrate: {
      migrate_plan: plan.kind === 'auto' ? plan.planText : `${migrationPlanRule}\nDatabase Migration Plan\n${migrationPlanRule}\n\n`,
      break_clients: plan.kind === 'auto' && plan.breaksClients,
      // Upstream's guard token: hash of (db identity, old program hash, new program hash). A UX check, not a secret.
      token: registry.migrationToken(record, hash),
      major_version_upgrade: false,
    },
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Control data

async function info(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  ctx.sendJson(200, {
    database_identity: { __identity__: `0x${identityToHex(record.identity)}` },
    owner_identity: { __identity__: `0x${identityToHex(record.ownerIdentity)}` },
    host_type: { [record.hostType]: [] },
    initial_program: `0x${record.programHash}`,
  });
}

async function databaseIdentity(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  await ctx.caller();
  const noi = ctx.params.noi!;
  const record = registry.control.resolve(noi);
  if (record === undefined) throw new HttpError(404, `\`${noi}\` not found`);
  ctx.sendText(200, identityToHex(record.identity));
}

async function getNames(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  await ctx.caller();
  ctx.sendJson(200, { names: registry.resolve(ctx.params.noi!).names });
}

async function addName(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  const name = validName((await ctx.text(jsonBodyMaxBytes, 'The name')).trim());
  await registry.addName(record, credentials.identity, name);
  ctx.sendJson(200, { Success: { domain: name, database_identity: identityToHex(record.identity) } });
}

async function replaceNames(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  const body = await ctx.text(jsonBodyMaxBytes, 'The name list');
  let names: unknown;
  try {
    names = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'Expected a JSON array of database names');
  }
  if (!Array.isArray(names) || !names.every((n): n is string => typeof n === 'string')) {
    throw new HttpError(400, 'Expected a JSON array of database names');
  }
  await registry.replaceNames(record, credentials.identity, names.map(validName));
  ctx.sendJson(200, 'Success');
}

async function deleteDatabase(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.control.resolve(ctx.params.noi!);
  if (record !== undefined) await registry.delete(record, credentials.identity);
  ctx.sendEmpty(200);
}

async function setLocked(ctx: RequestContext, registry: DatabaseRegistry, locked: boolean): Promise<void> {
  const credentials = await ctx.caller();
  await registry.setLocked(registry.resolve(ctx.params.noi!), credentials.identity, locked);
  ctx.sendEmpty(200);
}

// ---------------------------------------------------------------------------------------------------------------
// Module code: call, sql

/** Runs `fn` as a connected client: client_connected before, client_disconnected after (§5.0). */
async function asHttpClient<T>(db: HostedDatabase, credentials: Credentials, fn: (caller: Caller) => Promise<T>): Promise<T> {
  const caller: Caller = { identity: credentials.identity, connectionId: randomConnectionId(), jwtPayload: credentials.payloadJson };
  try {
    await db.clientConnected(caller);
  } catch (error) {
    throw hostError(error);
  }
  try {
    return await fn(caller);
  } finally {
    await db.clientDisconnected(caller).catch(() => undefined);
  }
}

async function call(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  const reducer = ctx.params.reducer!;
  const contentType = ctx.req.headers['content-type'];
  if (contentType !== jsonContentType) {
    throw new HttpError(415, `Expected request with \`Content-Type: ${jsonContentType}\``);
  }
  const body = await ctx.text(jsonBodyMaxBytes, 'The reducer arguments');
  let args: unknown;
  try {
    // parseJson keeps u64/i128/… literals beyond 2^53 exact (JSON.parse would round them).
    args = body.trim() === '' ? [] : parseJson(body);
  } catch (error) {
    throw new HttpError(400, `Failed to parse the request body as JSON: ${(error as Error).message}`);
  }
  const db = await registry.get(record);
  if (db.reducerByName(reducer) === undefined) {
    // Not a reducer: maybe a procedure (routes/module-routes.ts answers with its return value).
    const served = await asHttpClient(db, credentials, (caller) => callProcedureRoute(ctx, db, reducer, args, caller))
      .catch((error: unknown) => { throw hostError(error); });
    if (served) return;
    throw new HttpError(404, `No such reducer \`${reducer}\` in database \`${identityToHex(record.identity)}\``);
  }
  const result = await asHttpClient(db, credentials, (caller) => db.callReducerJson(reducer, args, caller)).catch((error: unknown) => {
    throw hostError(error);
  });
  const durationMicros = result.status === 'committed' ? result.durationMicros : 0;
  const headers = { 'spacetime-energy-used': '0', 'spacetime-execution-duration-micros': String(Math.round(durationMicros)) };
  for (const [name, value] of Object.entries(headers)) ctx.res.setHeader(name, value);
  if (result.status === 'committed') ctx.sendEmpty(200);
  else ctx.sendText(530, result.message);
}

async function sql(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  const query = await ctx.text(jsonBodyMaxBytes, 'The SQL query');
  const socket = ctx.req.socket;
  const gone = () => socket.destroyed || !socket.writable;
  const body = await asSqlClient(registry, record, credentials, (db, caller, options) => db.sqlJson(query, caller, options), gone,
    socket.remoteAddress);
  ctx.sendBytes(200, body, jsonContentType);
}

/**
 * Runs `fn` against `record`'s database as POST /sql does: as a connected client, DML only for the owner, host errors
 * mapped to HttpError. A client `gone` by the time its client_connected ran (the database's queue is long) does not
 * have its query run: nobody would read the answer. Session 12 probe: 20 loops sending `SELECT *` of a 40 MB table and
 * closing the socket at once, for 5 s, queued 1,740 queries that all ran (the owner's /sql waited 87 s, the server
 * grew to 6.8 GiB of answers written to closed sockets). `address`: the client's, for its share of the queue (SqlSlots).
 */
async function asSqlClient<T>(
  registry: DatabaseRegistry, record: DatabaseRecord, credentials: Credentials,
  fn: (db: HostedDatabase, caller: Caller, options: { isOwner: boolean }) => Promise<T>, gone?: () => boolean,
  address?: string,
): Promise<T> {
  const db = await registry.get(record);
  const options = { isOwner: record.ownerIdentity === credentials.identity };
  return asHttpClient(db, credentials, async (caller) => {
    const slots = await sqlSlot(record.identity, options.isOwner, address ?? '', credentials.identity);
    try {
      if (gone?.() === true) throw new HttpError(400, 'The client closed its connection before its query ran');
      return await fn(db, caller, options);
    } finally {
      releaseSqlSlot(record.identity, slots);
    }
  }).catch((error: unknown) => {
    throw hostError(error);
  });
}

/**
 * Per database: its queries handed to it (≤ sqlRequestsInFlightPerDatabaseMax) and those waiting. The owner's go
 * first; the others take turns by remote address, and within an address by identity, each in arrival order: 200
 * connections of one client get one share, not 200 places ahead of everyone else (session 12 probe: the owner's /sql
 * waited 97 s behind 200 unread ones).
 */
interface SqlSlots {
  running: number;
  readonly owner: (() => void)[];
  /** Address → identity → waiting starts; both maps iterate in turn order (a served entry moves to the end). */
  readonly others: Map<string, Map<bigint, (() => void)[]>>;
}
const sqlSlotsByDatabase = new Map<bigint, SqlSlots>();

/** Resolves once the database `identity` has room for one more query (limits.ts sqlRequestsInFlightPerDatabaseMax). */
function sqlSlot(identity: bigint, isOwner: boolean, address: string, caller: bigint): SqlSlots | Promise<SqlSlots> {
  let slots = sqlSlotsByDatabase.get(identity);
  if (slots === undefined) sqlSlotsByDatabase.set(identity, (slots = { running: 0, owner: [], others: new Map() }));
  const held = slots;
  if (held.running < sqlRequestsInFlightPerDatabaseMax) {
    held.running++;
    return held;
  }
  return new Promise((resolve) => {
    const start = () => resolve(held);
    if (isOwner) return void held.owner.push(start);
    let byCaller = held.others.get(address);
    if (byCaller === undefined) held.others.set(address, (byCaller = new Map()));
    const queue = byCaller.get(caller);
    if (queue === undefined) byCaller.set(caller, [start]);
    else queue.push(start);
  });
}

/** The next waiting query: the owner's, else the next address's next identity's (both then go to the end). */
function nextWaiting(slots: SqlSlots): (() => void) | undefined {
  const owned = slots.owner.shift();
  if (owned !== undefined) return owned;
  for (const [address, byCaller] of slots.others) {
    slots.others.delete(address);
    for (const [caller, queue] of byCaller) {
      byCaller.delete(caller);
      const next = queue.shift()!;
      if (queue.length > 0) byCaller.set(caller, queue);
      if (byCaller.size > 0) slots.others.set(address, byCaller);
      return next;
    }
  }
  return undefined;
}

/** The query answered: the next waiting one takes its place (its count stays), or the count drops. */
function releaseSqlSlot(identity: bigint, slots: SqlSlots): void {
  const next = nextWaiting(slots);
  if (next !== undefined) {
    next();
    return;
  }
  slots.running--;
  if (slots.running === 0) sqlSlotsByDatabase.delete(identity);
}

/**
 * `query` run as POST /sql runs it (asSqlClient), answered as PostgreSQL backend messages for server/pgwire/; `gone`:
 * the pg client closed its connection (its query is then not run).
 */
export function sqlAsClient(
  registry: DatabaseRegistry, record: DatabaseRecord, credentials: Credentials, query: string, gone?: () => boolean,
  address?: string,
): Promise<Uint8Array> {
  return asSqlClient(registry, record, credentials, (db, caller, options) => db.sqlPg(query, caller, options), gone, address);
}

// ---------------------------------------------------------------------------------------------------------------
// Schema, logs, timestamp

async function schema(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  const versionText = ctx.query('version');
  if (versionText === undefined) throw new HttpError(400, 'Missing query parameter `version` (9 or 10)');
  if (versionText !== '9' && versionText !== '10') throw new HttpError(400, `Unsupported schema version \`${versionText}\``);
  const db = await registry.get(record);
  const defBytes = db.moduleDefBytes();
  const cached = schemaTexts.get(defBytes)?.[versionText];
  if (cached !== undefined) return ctx.sendText(200, cached, jsonContentType);
  let json: unknown;
  try {
    json = versionText === '9'
      ? rawModuleDefV9Json(defBytes, db.schema, functionNamer(moduleDefSections(db.moduleDef)))
      : rawModuleDefToJson(defBytes, 10);
  } catch (error) {
    if (error instanceof SatsError) throw new HttpError(400, error.message);
    throw error;
  }
  const body = stringifyJson(json);
  let texts = schemaTexts.get(defBytes);
  if (texts === undefined) schemaTexts.set(defBytes, (texts = {}));
  texts[versionText] = body;
  ctx.sendText(200, body, jsonContentType);
}

/**
 * Each module's schema text by version, kept while its definition is (a module update brings new bytes): building it
 * held the main thread 0.7 s for a module of 5,000 tables, and anyone may ask again and again.
 */
const schemaTexts = new WeakMap<Uint8Array, { '9'?: string; '10'?: string }>();

async function logs(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  requireOwner(record, credentials.identity);
  const numLines = parseNumLines(ctx.query('num_lines'));
  const follow = ctx.queryFlag('follow');
  const db = await registry.get(record);
  const res = ctx.res;
  // The backlog is the log files as they are now and the follower starts in the same turn (appends are synchronous),
  // so a followed record is sent exactly once: after the backlog if it came later.
  const backlog = db.logs.read(numLines);
  const follower = follow ? new LogFollower(res) : undefined;
  if (follower !== undefined) {
    const unsubscribe = db.logs.follow((entry) => follower.push(entry));
    // The stream ends when the client goes away or the database is closed (deleted, reset, server shutdown).
    const stop = () => {
      unsubscribe();
      stopOnClose();
      res.end();
    };
    const stopOnClose = registry.onClose(record.identity, stop);
    res.once('close', stop);
  }
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
  if (follower !== undefined) res.flushHeaders(); // the client waits for the status line before it reads the stream
  try {
    await sendBacklog(res, backlog);
  } finally {
    backlog.close();
  }
  if (follower === undefined) res.end();
  else follower.goLive();
}

/**
 * Writes the records in batches of about logReadChunkBytes, waiting for the socket when it is full and letting other
 * requests run between batches, so a long log costs neither memory nor a blocked server.
 */
async function sendBacklog(res: ServerResponse, records: Iterable<LogRecord>): Promise<void> {
  let batch = '';
  for (const entry of records) {
    if (res.writableEnded || res.destroyed) return;
    batch += logLine(entry);
    if (batch.length < logReadChunkBytes) continue;
    await writeStreamed(res, batch, true); // a log reader may pause (a pager): only the outbound bound cuts it
    batch = '';
  }
  if (batch !== '' && !res.writableEnded && !res.destroyed) {
    res.write(batch);
    noteWritten(res, true);
  }
}

/**
 * A `logs --follow` reader: records that arrive while its backlog is sent wait in a queue, later ones go straight to
 * the socket. Whenever the reader is more than logFollowLagBytesMax behind (queued, or unsent in the socket), records
 * are skipped for it and one line then says how many: a slow reader must not make the server buffer a flood.
 */
class LogFollower {
  private queued: string[] | undefined = [];
  private queuedChars = 0;
  private skipped = 0;

  constructor(private readonly res: ServerResponse) {
    res.on('drain', () => {
      if (this.queued === undefined && this.skipped > 0) res.write(this.skipNote());
      noteWritten(res, true);
    });
  }

  push(entry: LogRecord): void {
    const res = this.res;
    if (res.writableEnded || res.destroyed) return;
    const line = logLine(entry);
    const lag = this.queued === undefined ? res.writableLength : this.queuedChars;
    if (lag + line.length > logFollowLagBytesMax) {
      this.skipped++;
      return;
    }
    const text = this.skipNote() + line;
    if (this.queued === undefined) {
      res.write(text);
      noteWritten(res, true);
    } else {
      this.queued.push(text);
      this.queuedChars += text.length;
    }
  }

  /** The backlog is sent: what queued meanwhile follows it, then records as they come. */
  goLive(): void {
    const queued = this.queued!;
    this.queued = undefined;
    if (!this.res.writableEnded && !this.res.destroyed && queued.length > 0) {
      this.res.write(queued.join(''));
      noteWritten(this.res, true);
    }
  }

  private skipNote(): string {
    if (this.skipped === 0) return '';
    const message = `${this.skipped} log records were skipped: this reader fell more than ${logFollowLagBytesMax} bytes ` +
      'behind (logFollowLagBytesMax)';
    this.skipped = 0;
    return logLine({ ts: Date.now() * 1000, level: 'Warn', message });
  }
}

/** undefined (parameter absent) means every record on disk (module.log and its rotations), as upstream. */
function parseNumLines(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `Invalid query parameter \`num_lines\`: \`${text}\``);
  return Math.min(n, logTailMaxLines);
}

/** One NDJSON line in upstream's record shape (snake_case `line_number`, absent fields omitted). */
function logLine(entry: LogRecord): string {
  const record = {
    ts: entry.ts,
    level: entry.level,
    target: entry.target,
    filename: entry.filename,
    line_number: entry.lineNumber,
    function: entry.function,
    message: entry.message,
    trace: (entry as { trace?: unknown }).trace,
  };
  return `${stringifyJson(record)}\n`;
}

/** Migration history (beyond upstream): every publish of the database, oldest first. Owner only. */
async function migrationHistory(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const record = registry.resolve(ctx.params.noi!);
  requireOwner(record, credentials.identity);
  ctx.sendJson(200, { database_identity: identityToHex(record.identity), entries: await readMigrationHistory(registry.databaseDir(record.identity)) });
}

async function timestamp(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  await ctx.caller();
  registry.resolve(ctx.params.noi!);
  const body = stringifyJson({ __timestamp_micros_since_unix_epoch__: BigInt(Date.now()) * 1000n });
  ctx.sendText(200, body, jsonContentType);
}

// ---------------------------------------------------------------------------------------------------------------

/** Maps the host's typed errors to HTTP. */
function hostError(error: unknown): unknown {
  if (error instanceof HttpError) return error;
  if (error instanceof NoSuchReducerError) return new HttpError(404, error.message);
  if (error instanceof ReducerNotCallableError || error instanceof BadArgumentsError) return new HttpError(400, error.message);
  if (error instanceof ConnectionRejectedError) return new HttpError(403, error.message);
  // A database that is closed, or whose commit log failed (it resumes by itself: server/databases.ts), is unavailable.
  if (error instanceof DatabaseClosedError || error instanceof DatabaseFailedError) return new HttpError(503, error.message);
  if (error instanceof SatsError) return new HttpError(400, error.message);
  if (error instanceof SqlError) return new HttpError(400, error.message);
  return error;
}
