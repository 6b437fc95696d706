// server/pgwire/protocol.ts — the PostgreSQL frontend/backend protocol 3.0 on the wire: framing and messages.
//
// Owns: splitting a client's byte stream into messages (the length-prefixed startup packet, then type byte + length
// messages), the size check on every length, decoding the few frontend messages we read (startup parameters,
// password, query text) and encoding the backend messages of the session (a query's rows: sql/pg-messages.ts). Pure:
// no sockets, no session state.
// May call: sql/pg-messages.ts (the backend framing).
//
// Reference: https://www.postgresql.org/docs/current/protocol-message-formats.html

import { PgMessageWriter } from '../../sql/pg-messages.js';

/** Special "versions" a client sends instead of a StartupMessage. */
export const sslRequestCode = 80877103;
export const gssEncRequestCode = 80877104;
export const cancelRequestCode = 80877102;

/** Malformed bytes from a client: the session answers with an ErrorResponse and closes that connection only. */
export class ProtocolError extends Error {
  constructor(message: string, readonly sqlState = '08P01') {
    super(message);
    this.name = 'ProtocolError';
  }
}

export interface FrontendMessage {
  /** The type byte as a character ('Q', 'p', 'X', …); '' for the untyped startup packet. */
  type: string;
  body: Buffer;
}

/**
 * Accumulates a client's bytes and yields whole messages. The first message of a connection has no type byte
 * (StartupMessage, SSLRequest, …); `expectStartup` says which framing the next message uses.
 */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);
  expectStartup = true;

  constructor(private readonly messageBytesMax: number) {}

  push(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
  }

  /** Bytes received but not yet returned as messages. */
  get bufferedBytes(): number {
    return this.buffered.length;
  }

  /** The next whole message, or undefined until more bytes arrive. Throws ProtocolError on a bad length. */
  next(): FrontendMessage | undefined {
    const headerBytes = this.expectStartup ? 4 : 5;
    if (this.buffered.length < headerBytes) return undefined;
    const type = this.expectStartup ? '' : String.fromCharCode(this.buffered[0]);
    const length = this.buffered.readInt32BE(headerBytes - 4);
    const what = this.expectStartup ? 'startup packet' : `message '${printable(type)}'`;
    if (length < 4) throw new ProtocolError(`invalid length ${length} in ${what}`);
    if (length > this.messageBytesMax) {
      throw new ProtocolError(`${what} of ${length} bytes is larger than the limit of ${this.messageBytesMax} bytes`, '54000');
    }
    const totalBytes = headerBytes - 4 + length;
    if (this.buffered.length < totalBytes) return undefined;
    const body = this.buffered.subarray(headerBytes, totalBytes);
    this.buffered = this.buffered.subarray(totalBytes);
    return { type, body };
  }
}

function printable(type: string): string {
  const code = type.charCodeAt(0);
  return code >= 0x20 && code < 0x7f ? type : `\\x${code.toString(16).padStart(2, '0')}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads NUL-terminated strings from a message body. */
class BodyReader {
  private offset = 0;
  constructor(private readonly body: Buffer, private readonly what: string) {}

  int32(): number {
    if (this.offset + 4 > this.body.length) throw new ProtocolError(`${this.what}: truncated at byte ${this.offset}`);
    const value = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  cString(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) throw new ProtocolError(`${this.what}: string at byte ${this.offset} is not NUL-terminated`);
    let text: string;
    try {
      text = strictUtf8.decode(this.body.subarray(this.offset, end));
    } catch {
      throw new ProtocolError(`${this.what}: string at byte ${this.offset} is not valid UTF-8`, '22021');
    }
    this.offset = end + 1;
    return text;
  }

  get atEnd(): boolean {
    return this.offset >= this.body.length;
  }
}

export type StartupPacket =
  | { kind: 'startup'; parameters: Map<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel' };

export function decodeStartup(body: Buffer): StartupPacket {
  const reader = new BodyReader(body, 'startup packet');
  const code = reader.int32();
  if (code === sslRequestCode) return { kind: 'ssl' };
  if (code === gssEncRequestCode) return { kind: 'gssenc' };
  if (code === cancelRequestCode) return { kind: 'cancel' };
  if (code >> 16 !== 3) {
    throw new ProtocolError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0`, '0A000');
  }
  const parameters = new Map<string, string>();
  for (;;) {
    const name = reader.cString();
    if (name === '') break;
    parameters.set(name, reader.cString());
  }
  if (!reader.atEnd) throw new ProtocolError('startup packet: bytes after the final NUL');
  return { kind: 'startup', parameters };
}

/** PasswordMessage ('p') and Query ('Q') bodies: one NUL-terminated string. */
export function decodeSingleString(body: Buffer, what: string): string {
  const reader = new BodyReader(body, what);
  const text = reader.cString();
  if (!reader.atEnd) throw new ProtocolError(`${what}: bytes after the string`);
  return text;
}

// ─── Backend messages (framed by sql/pg-messages.ts, which also writes a query's answer) ─────────────────────────

const backendMessage = (type: string, body: (w: PgMessageWriter) => void): Buffer => {
  const w = new PgMessageWriter().begin(type);
  body(w);
  return w.end().finish();
};

export const authenticationOk = (): Buffer => backendMessage('R', (w) => w.int32(0));
export const authenticationCleartextPassword = (): Buffer => backendMessage('R', (w) => w.int32(3));

export function parameterStatus(name: string, value: string): Buffer {
  return backendMessage('S', (w) => w.cString(name).cString(value));
}

export function backendKeyData(processId: number, secretKey: number): Buffer {
  return backendMessage('K', (w) => w.int32(processId).int32(secretKey));
}

/** ReadyForQuery: 'I' idle (we never hold a transaction open across queries). */
export const readyForQuery = (): Buffer => backendMessage('Z', (w) => w.uint8('I'.charCodeAt(0)));

export const emptyQueryResponse = (): Buffer => backendMessage('I', () => {});

export interface ErrorFields {
  /** ERROR or FATAL. */
  severity: 'ERROR' | 'FATAL';
  /** SQLSTATE, e.g. 3D000 invalid_catalog_name. */
  code: string;
  message: string;
}

export function errorResponse(error: ErrorFields): Buffer {
  return backendMessage('E', (w) => {
    const field = (code: string, text: string) => w.uint8(code.charCodeAt(0)).cString(text);
    field('S', error.severity);
    field('V', error.severity);
    field('C', error.code);
    field('M', error.message);
    w.uint8(0);
  });
}

/** The one-byte answer to SSLRequest / GSSENCRequest: not supported, continue in plain text. */
export const encryptionRefused = (): Buffer => Buffer.from('N', 'latin1');
