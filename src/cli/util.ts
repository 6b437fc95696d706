// Shared CLI plumbing: HTTP requests with upstream's error shape, prompts, token identity decoding, name checks.
// Owns nothing persistent. May call: node:readline, @noble/hashes (identity derivation), global fetch, cli/errors,
// cli/json.
import { blake3 } from '@noble/hashes/blake3.js';
import { CliError } from './errors.js';
import { parseJsonLossless, type LosslessJson } from './json.js';

export const unstableWarning = 'WARNING: This command is UNSTABLE and subject to breaking changes.\n\n';

export function warnUnstable(): void {
  process.stderr.write(unstableWarning);
}

export interface HttpResponse {
  status: number;
  statusText: string;
  contentType: string;
  text: string;
}

const reasonPhrases: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict',
  428: 'Precondition Required', 500: 'Internal Server Error', 503: 'Service Unavailable', 530: '',
};

/** Sends one request; a connection failure becomes a CliError naming the URL. */
export async function httpRequest(
  method: string,
  url: string,
  opts: { token?: string; body?: string | Uint8Array; contentType?: string } = {},
): Promise<HttpResponse> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: opts.body });
  } catch (error) {
    const cause = (error as { cause?: Error }).cause;
    throw new CliError(`error sending request for url (${url})`, cause ? [cause.message] : []);
  }
  return {
    status: res.status,
    statusText: res.statusText || reasonPhrases[res.status] || '',
    contentType: res.headers.get('content-type') ?? '',
    text: await res.text(),
  };
}

/** anyhow-style error for a non-2xx response: the server's text on top, the HTTP status as the cause. */
export function httpError(res: HttpResponse, url: string): CliError {
  const kind = res.status >= 500 ? 'server error' : 'client error';
  return new CliError(res.text, [`HTTP status ${kind} (${res.status} ${res.statusText}) for url (${url})`]);
}

export function ensureOk(res: HttpResponse, url: string): HttpResponse {
  if (res.status < 200 || res.status >= 300) throw httpError(res, url);
  return res;
}

/** JSON body of a 2xx response; the content type must be JSON (upstream's `json_or_error`). */
export function jsonBody(res: HttpResponse, url: string): LosslessJson {
  ensureOk(res, url);
  if (!res.contentType.startsWith('application/json')) throw new CliError(res.text);
  return parseJsonLossless(res.text);
}

let stdinLines: AsyncIterator<string> | undefined;

/** One line from stdin; undefined at EOF. Lines are shared across prompts so piped input feeds them in order. */
export async function readStdinLine(): Promise<string | undefined> {
  if (stdinLines === undefined) {
    const { createInterface } = await import('node:readline');
    stdinLines = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
  }
  const next = await stdinLines.next();
  return next.done === true ? undefined : next.value;
}

/** `<prompt> [y/N]`: only y/yes (any case) mean yes; EOF means no. */
export async function yesOrNo(prompt: string): Promise<boolean> {
  process.stdout.write(`${prompt} [y/N]`);
  const line = await readStdinLine();
  if (line === undefined) process.stdout.write('\n');
  const answer = (line ?? '').trim().toLowerCase();
  return answer === 'y' || answer === 'yes';
}

/** Closes stdin reading so the process can exit. */
export function closeStdin(): void {
  if (stdinLines !== undefined) void stdinLines.return?.();
  process.stdin.unref?.();
}

function base64Decode(text: string): string {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
}

/** identity = c200 ++ blake3(c200 ++ id)[0..4] ++ id, id = blake3(iss|sub)[0..26] (client-protocol.md §6.1). */
export function identityFromClaims(iss: string, sub: string): string {
  const id = blake3(new TextEncoder().encode(`${iss}|${sub}`)).subarray(0, 26);
  const prefixed = new Uint8Array(28);
  prefixed.set([0xc2, 0x00]);
  prefixed.set(id, 2);
  const checksum = blake3(prefixed).subarray(0, 4);
  const out = new Uint8Array(32);
  out.set([0xc2, 0x00]);
  out.set(checksum, 2);
  out.set(id, 6);
  return Buffer.from(out).toString('hex');
}

/** The identity a JWT stands for, or undefined when the token is not a decodable JWT. */
export function identityFromToken(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(base64Decode(parts[1])) as Record<string, unknown>;
    if (typeof claims.hex_identity === 'string') return claims.hex_identity.toLowerCase();
    if (typeof claims.iss === 'string' && typeof claims.sub === 'string') return identityFromClaims(claims.iss, claims.sub);
  } catch {
    return undefined;
  }
  return undefined;
}

export function isIdentityHex(text: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(text);
}

/** Database name rule `^[a-z0-9]+(-[a-z0-9]+)*$`; `allowParent` accepts one `parent/child`. */
export function validateDatabaseName(name: string, allowParent: boolean): void {
  const parts = allowParent && name.split('/').length === 2 ? name.split('/') : [name];
  for (const part of parts) {
    if (isIdentityHex(part)) throw new CliError('database names cannot be identities');
    if (part === '') throw new CliError('database names cannot be empty');
    if (!/^[a-z0-9-]+$/.test(part)) throw new CliError('invalid characters in database name');
    if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(part)) throw new CliError('invalid hyphen in database name');
  }
}
