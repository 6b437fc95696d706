// server/routes/backup.ts — hot backup and restore of a database (issue 15 item 3; docs/operations.md).
//
// Owns: GET /v1/database/:noi/backup (owner only: streams the backup container of durability/backup.ts) and
// POST /v1/database/restore?name=<name> (creates a database from a container in the body, like a publish).
// May call: server/databases.ts, server/control.ts (name rules), server/http.ts, auth/identity.ts, limits.ts.
//
// The offset is fixed when the request arrives (between calls); the copy is read from the files while the database
// keeps serving, so a slow client slows nobody else. The response header spacetime-backup-offset names it.

import { identityToHex } from '../../auth/identity.js';
import { restoreBackupBytesMax } from '../../limits.js';
import { DatabaseNameError, parseDatabaseName } from '../control.js';
import type { DatabaseRegistry } from '../databases.js';
import { HttpError, writeStreamed, type RequestContext, type Router } from '../http.js';

export function addBackupRoutes(router: Router, registry: DatabaseRegistry): void {
  router.add('GET', '/v1/database/:noi/backup', (ctx) => backup(ctx, registry));
  router.add('POST', '/v1/database/restore', (ctx) => restore(ctx, registry));
}

async function backup(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const { offset, chunks } = await registry.backup(registry.resolve(ctx.params.noi!), credentials.identity);
  const res = ctx.res;
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'spacetime-backup-offset': offset.toString() });
  try {
    for await (const chunk of chunks) {
      await writeStreamed(res, chunk);
      if (res.destroyed) return;
    }
    res.end();
  } catch (error) {
    // The status line is out: cut the stream, so the client sees an incomplete (and refused at restore) container.
    res.destroy(error as Error);
  }
}

async function restore(ctx: RequestContext, registry: DatabaseRegistry): Promise<void> {
  const credentials = await ctx.caller();
  const nameText = ctx.query('name');
  let name: string | undefined;
  try {
    name = nameText === undefined ? undefined : parseDatabaseName(nameText);
  } catch (error) {
    if (error instanceof DatabaseNameError) throw new HttpError(400, error.message);
    throw error;
  }
  const bytes = await ctx.body(restoreBackupBytesMax);
  const issuer = (JSON.parse(credentials.payloadJson) as { iss?: unknown }).iss;
  const { record, offset } = await registry.restore({ bytes, name, caller: credentials.identity, issuer: typeof issuer === 'string' ? issuer : undefined });
  ctx.sendJson(200, { database_identity: identityToHex(record.identity), name: name ?? null, offset: offset.toString() });
}
