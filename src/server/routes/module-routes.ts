// server/routes/module-routes.ts — what the server serves for module-defined functions beyond reducers: module HTTP
// routes (`/v1/database/:noi/route/*path`, host-abi §6.3) and the procedure fallback of `/call/:name`.
//
// Owns: request → host translation for routes (exact path, method, headers, full URI, body size cap → 413, upstream's
// 404 for an unserved path or method) and the
// /call procedure reply (200 + the return value as SATS-JSON). May call: server/http, server/databases, host (via
// HostedDatabase), sats/json.

import { BadArgumentsError } from '../../host/errors.js';
import { stringifyJson } from '../../sats/json.js';
import type { DatabaseRegistry } from '../databases.js';
import type { Caller, HostedDatabase } from '../host-api.js';
import { HttpError, jsonContentType, noteWritten, type RequestContext, type Router } from '../http.js';

const routePrefixSegments = 4;                       // '', 'v1', 'database', ':noi', then 'route'
/** Upstream's body for a path or method no module route serves (404 in both cases, as upstream). */
export const noSuchRouteMessage = 'Database has not registered a handler for this route';

export function addModuleRoutes(router: Router, registry: DatabaseRegistry): void {
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT']) {
    router.add(method, '/v1/database/:noi/route/*path', (ctx) => serveModuleRoute(ctx, registry));
  }
}

async function serveModuleRoute(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const record = registry.resolve(ctx.params.noi!);
  const db = await registry.get(record);
  // The path the module sees: everything after `/route`, raw (not URL-decoded) and strict, as upstream: `…/route` is
  // "", `…/route/` is "/", `…/route//` is "//".
  const rawPath = (ctx.req.url ?? '/').split('?')[0];
  const parts = rawPath.split('/');
  const rest = parts.slice(routePrefixSegments + 1);
  const path = rest.length === 0 ? '' : '/' + rest.join('/');
  const body = await ctx.body(db.httpBodyMaxBytes);
  const headers: [string, string][] = [];
  const raw = ctx.req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.push([raw[i].toLowerCase(), raw[i + 1]]);
  const uri = `http://${ctx.req.headers.host ?? 'localhost'}${ctx.req.url ?? '/'}`;
  const method = ctx.req.method ?? 'GET';
  const result = await db.serveHttp(method, path, uri, headers, new Uint8Array(body.buffer, body.byteOffset, body.length));
  if (result === undefined || result === 'methodNotAllowed') throw new HttpError(404, noSuchRouteMessage);
  for (const [name, value] of result.headers) {
    if (name.toLowerCase() === 'content-length') continue;
    ctx.res.appendHeader(name, Buffer.from(value).toString('latin1'));
  }
  ctx.res.writeHead(result.status, { 'Content-Length': result.body.length });
  ctx.res.end(method === 'HEAD' ? undefined : result.body);
  noteWritten(ctx.res);
}

/**
 * `/call/:name` for a name that is not a reducer: runs the procedure and answers 200 with its return value as
 * SATS-JSON, or 530 with the error text. Returns false when there is no such procedure either.
 */
export async function callProcedureRoute(ctx: RequestContext, db: HostedDatabase, name: string, args: unknown,
  caller: Caller): Promise<boolean> {
  if (db.procedureByName(name) === undefined) return false;
  let result;
  try {
    result = await db.callProcedureJson(name, args, caller);
  } catch (error) {
    if (error instanceof BadArgumentsError) throw new HttpError(400, error.message);
    throw error;
  }
  ctx.res.setHeader('spacetime-energy-used', '0');
  if (result.status === 'returned') {
    ctx.res.setHeader('spacetime-execution-duration-micros', String(result.durationMicros));
    const text = stringifyJson(result.json);
    ctx.sendText(200, text, jsonContentType);
  } else {
    ctx.sendText(530, result.message);
  }
  return true;
}
