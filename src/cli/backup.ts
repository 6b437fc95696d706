// cli/backup.ts — `spacetime backup <database> [-o file]` and `spacetime restore <file> [name]` (docs/operations.md).
//
// Owns: fetching a hot backup to a file (written as `<file>.partial`, checked, then renamed, so a file under the
// final name is always a whole, verified backup) and sending one to a server to create a database from it.
// May call: cli/util.ts, cli/errors.ts, durability/backup.ts (readBackup: the same checks the server makes), node:fs.

import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupDamagedError, readBackup } from '../durability/backup.js';
import { CliError } from './errors.js';
import { ensureOk, httpRequest, jsonBody } from './util.js';

/** Streams the backup of `identity` to `outPath`, verifies it, and prints what it holds. */
export async function backupToFile(serverUrl: string, token: string | undefined, identity: string, outPath: string): Promise<void> {
  const url = `${serverUrl}/v1/database/${identity}/backup`;
  let res: Response;
  try {
    res = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  } catch (error) {
    throw new CliError(`error sending request for url (${url})`, [((error as { cause?: Error }).cause ?? (error as Error)).message]);
  }
  if (res.status !== 200 || res.body === null) {
    ensureOk({ status: res.status, statusText: res.statusText, contentType: res.headers.get('content-type') ?? '', text: await res.text() }, url);
  }
  const partial = `${outPath}.partial`;
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), fs.createWriteStream(partial));
    const parsed = readBackup(fs.readFileSync(partial));
    fs.renameSync(partial, outPath);
    const bytes = fs.statSync(outPath).size;
    process.stdout.write(`Backed up database ${parsed.header.databaseIdentity} at commit offset ${parsed.header.offset} ` +
      `(${parsed.header.snapshotOffset === null ? 'no snapshot' : `snapshot at ${parsed.header.snapshotOffset}`}, ${bytes} bytes) to ${outPath}\n`);
  } catch (error) {
    fs.rmSync(partial, { force: true });
    if (error instanceof BackupDamagedError) throw new CliError(`the backup received from ${url} does not check: ${error.message}`);
    throw new CliError(`the backup from ${url} could not be written to ${outPath}`, [(error as Error).message]);
  }
}

/** Creates a database on `serverUrl` from the backup file (named `name`, or unnamed). */
export async function restoreFromFile(serverUrl: string, token: string | undefined, file: string, name: string | undefined): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new CliError(`cannot read the backup file ${file}`, [(error as Error).message]);
  }
  const url = `${serverUrl}/v1/database/restore${name === undefined ? '' : `?name=${encodeURIComponent(name)}`}`;
  const res = ensureOk(await httpRequest('POST', url, { token, body: bytes, contentType: 'application/octet-stream' }), url);
  const body = jsonBody(res, url) as { database_identity: string; offset: string };
  process.stdout.write(`Restored ${file} as ${name ?? 'an unnamed database'} (identity ${body.database_identity}) at commit offset ${body.offset}\n`);
}
