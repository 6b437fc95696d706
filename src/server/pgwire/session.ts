// server/pgwire/session.ts — one PostgreSQL client connection: startup, password (token) authentication, simple
// queries, and the answers to everything we do not support.
//
// Owns: the connection's state machine (startup → password → ready → closed), the startup deadline, handling one
// message at a time (while one is handled the socket is read on up to `pgInputAheadBytesMax` and then paused, so a
// client cannot queue unbounded input, and its close is seen at once: its waiting query is not run), waiting for the
// socket to drain between queries, and turning SQL errors into backend messages. A query's rows come as backend
// messages rendered where the query ran (sql/pg-messages.ts); the session writes them as they are.
// May call: server/pgwire/protocol.ts, server/http.ts (HttpError, Credentials), auth/tokens.ts (AuthError),
// server/outbound-budget.ts (answers not yet read count against the server's bound), limits.ts.
//
// Upstream (crates/pg/src/pg_server.rs on the pgwire crate) answers the same way: SSLRequest 'N'; no database name →
// "Database name is required"; the database is looked up before the token is checked; a bad token is FATAL 28P01;
// each query is re-resolved and runs through the same code as POST /v1/database/:name/sql. Where upstream's pgwire
// configuration panics (the extended protocol), we answer 0A000 and resynchronise at the next Sync.

import type { Socket } from 'node:net';
import { randomInt } from 'node:crypto';
import { AuthError } from '../../auth/tokens.js';
import { HttpError, type Credentials } from '../http.js';
import { socketProgressMark, type OutboundBudget, type OutboundHolder } from '../outbound-budget.js';
import { pgInputAheadBytesMax } from '../../limits.js';
import {
  FrameReader, ProtocolError, authenticationCleartextPassword, authenticationOk, backendKeyData, decodeSingleString,
  decodeStartup, emptyQueryResponse, encryptionRefused, errorResponse, parameterStatus, readyForQuery, type ErrorFields,
  type FrontendMessage,
} from './protocol.js';

/** What a session needs from the server. */
export interface PgBackend {
  messageBytesMax: number;
  startupTimeoutMs: number;
  /** `server_version` as upstream reports it: `spacetime <version>`. */
  serverVersion: string;
  /** True when `database` names a database (name or identity), as POST /sql resolves it. */
  databaseExists(database: string): boolean;
  /** Verifies a token as the HTTP API does; throws AuthError. */
  authenticate(token: string): Promise<Credentials>;
  /**
   * POST /v1/database/:database/sql's path (same resolution, permissions and errors: HttpError), answered as the
   * backend messages of each statement (sql/pg-messages.ts renderPgAnswer), without ReadyForQuery. `gone`: the client
   * closed its connection (its query is then not run if it has not started); `address`: the client's remote address,
   * for its share of the database's queue of queries (server/routes/database.ts SqlSlots).
   */
  sql(database: string, credentials: Credentials, query: string, gone?: () => boolean, address?: string): Promise<Uint8Array>;
  /** An error that is our bug, not the client's. */
  onError(error: unknown): void;
  /** The server's bound on answers not yet read (server/outbound-budget.ts); none in unit tests. */
  outboundBudget?: OutboundBudget;
}

type State = 'startup' | 'password' | 'ready' | 'closed';

/** Messages of the extended query protocol (and Flush/Close that only make sense with it). */
const extendedMessageNames: Record<string, string> = {
  P: 'Parse', B: 'Bind', D: 'Describe', E: 'Execute', C: 'Close', H: 'Flush',
};

export class PgSession {
  private state: State = 'startup';
  private readonly reader: FrameReader;
  private startupParameters = new Map<string, string>();
  private credentials: Credentials | undefined;
  private database = '';
  /** After an extended-protocol error, messages are skipped until Sync, as PostgreSQL does after any error there. */
  private skippingToSync = false;
  private pumping = false;
  private readonly startupTimer: NodeJS.Timeout;
  /** This connection's share of the outbound bound: what its socket has not taken of our answers. */
  private readonly outbound: OutboundHolder = {
    heldBytes: 0,
    pendingBytes: () => (this.state === 'closed' || this.socket.destroyed ? 0 : this.socket.writableLength),
    progressMark: () => socketProgressMark(this.socket),
    evict: () => {
      // An answer is half sent: nothing more can be said on this connection.
      this.close();
      this.socket.destroy();
    },
  };

  /** `onAuthenticated` runs once the password exchange succeeded (the server counts unauthenticated connections). */
  constructor(private readonly socket: Socket, private readonly backend: PgBackend, private readonly onAuthenticated = (): void => {}) {
    this.reader = new FrameReader(backend.messageBytesMax);
    socket.setNoDelay(true);
    this.startupTimer = setTimeout(() => {
      this.fail({ severity: 'FATAL', code: '08006', message: `authentication not completed within ${backend.startupTimeoutMs} ms` });
    }, backend.startupTimeoutMs);
    this.startupTimer.unref();
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      if (this.pumping && this.reader.bufferedBytes > pgInputAheadBytesMax) this.socket.pause();
      void this.pump();
    });
    socket.on('error', () => this.close());
    // The client closed (its end of the stream): nothing it asked for is wanted any more, even while a query runs.
    socket.on('end', () => this.close());
    socket.on('close', () => this.close());
    socket.on('drain', () => this.backend.outboundBudget?.update(this.outbound));
  }

  /** Ends the connection (server shutdown or a fatal error already sent). */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.startupTimer);
    this.backend.outboundBudget?.forget(this.outbound);
    this.socket.end();
    this.socket.destroySoon();
  }

  private send(bytes: Uint8Array): void {
    if (this.state === 'closed') return;
    this.socket.write(bytes);
    if (this.socket.writableLength > 0) this.backend.outboundBudget?.update(this.outbound);
  }

  /** Closes a connection that has not authenticated to make room for another (server.ts): FATAL 53300 `message`. */
  displace(message: string): void {
    this.fail({ severity: 'FATAL', code: '53300', message });
  }

  /** Sends a FATAL/ERROR response and closes this connection only. */
  private fail(error: ErrorFields): void {
    if (this.state === 'closed') return;
    this.send(errorResponse(error));
    this.close();
  }

  /** Handles whole messages one at a time; the socket is paused while one is in flight and more than a little waits. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.state === 'closed') return;
        const message = this.reader.next();
        if (message === undefined) break;
        await this.handle(message);
        if (this.socket.writableNeedDrain) await this.drained();
      }
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.fail({ severity: 'FATAL', code: error.sqlState, message: error.message });
      } else {
        this.backend.onError(error);
        this.fail({ severity: 'FATAL', code: 'XX000', message: 'internal error' });
      }
    } finally {
      this.pumping = false;
      if (this.state !== 'closed') this.socket.resume();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  private async handle(message: FrontendMessage): Promise<void> {
    if (this.state === 'startup') return this.handleStartup(message.body);
    if (this.state === 'password') {
      if (message.type !== 'p') throw new ProtocolError(`expected a password message, got message '${message.type}'`);
      return this.handlePassword(decodeSingleString(message.body, 'password message'));
    }
    return this.handleReady(message);
  }

  private handleStartup(body: Buffer): void {
    const packet = decodeStartup(body);
    if (packet.kind === 'ssl' || packet.kind === 'gssenc') {
      this.send(encryptionRefused()); // the client continues with a StartupMessage in the clear
      return;
    }
    if (packet.kind === 'cancel') {
      this.close(); // queries are not cancellable here; PostgreSQL also answers a CancelRequest with nothing
      return;
    }
    this.reader.expectStartup = false;
    this.startupParameters = packet.parameters;
    const database = packet.parameters.get('database');
    if (database === undefined || database === '') {
      this.fail({ severity: 'ERROR', code: 'XX000', message: 'Database name is required' });
      return;
    }
    this.database = database;
    this.state = 'password';
    this.send(authenticationCleartextPassword());
  }

  private async handlePassword(password: string): Promise<void> {
    if (!this.backend.databaseExists(this.database)) {
      this.fail(databaseMissing(this.database));
      return;
    }
    try {
      this.credentials = await this.backend.authenticate(password);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      const text = error.message.startsWith('Invalid token') ? error.message : `Invalid token: ${error.message}`;
      this.fail({ severity: 'FATAL', code: '28P01', message: text });
      return;
    }
    if (this.state === 'closed') return;
    clearTimeout(this.startupTimer);
    this.state = 'ready';
    this.onAuthenticated();
    const parameters: [string, string][] = [
      ['server_version', this.backend.serverVersion],
      ['server_encoding', 'UTF8'],
      ['client_encoding', 'UTF8'],
      ['DateStyle', 'ISO YMD'],
      ['integer_datetimes', 'on'],
    ];
    this.send(Buffer.concat([
      authenticationOk(),
      ...parameters.map(([name, value]) => parameterStatus(name, value)),
      backendKeyData(process.pid, randomInt(0, 2 ** 31)),
      readyForQuery(),
    ]));
  }

  private async handleReady(message: FrontendMessage): Promise<void> {
    const { type } = message;
    if (type === 'X') {
      this.close();
      return;
    }
    if (type === 'S') {
      // Sync ends an extended-protocol exchange (and resynchronises after the error we sent for it).
      this.skippingToSync = false;
      this.send(readyForQuery());
      return;
    }
    if (type in extendedMessageNames) {
      if (this.skippingToSync || type === 'H') return;
      this.skippingToSync = true;
      this.send(errorResponse({
        severity: 'ERROR',
        code: '0A000',
        message: `the extended query protocol (${extendedMessageNames[type]}) is not supported: ` +
          'send queries with the simple query protocol, with values written into the SQL text (no $1 parameters)',
      }));
      return;
    }
    if (type === 'Q') {
      await this.runQuery(decodeSingleString(message.body, 'query message'));
      return;
    }
    if (type === 'd' || type === 'c' || type === 'f') return; // COPY data outside COPY: ignored, as PostgreSQL does
    if (type === 'F') {
      this.send(errorResponse({ severity: 'ERROR', code: '0A000', message: 'function calls (FunctionCall message) are not supported' }));
      this.send(readyForQuery());
      return;
    }
    throw new ProtocolError(`invalid frontend message type ${type.charCodeAt(0)}`);
  }

  private async runQuery(query: string): Promise<void> {
    if (/^[\s;]*$/.test(query)) {
      this.send(Buffer.concat([emptyQueryResponse(), readyForQuery()]));
      return;
    }
    let answer: Uint8Array;
    try {
      answer = await this.backend.sql(this.database, this.credentials!, query, () => this.state === 'closed' || this.socket.destroyed,
        this.socket.remoteAddress);
    } catch (error) {
      if (error instanceof HttpError && error.status === 404) {
        this.fail(databaseMissing(this.database));
        return;
      }
      if (!(error instanceof HttpError) && !(error instanceof AuthError)) {
        this.backend.onError(error);
        this.send(errorResponse({ severity: 'ERROR', code: 'XX000', message: 'internal error' }));
      } else {
        // Upstream sends the /sql error body as it is, prefixed as its PgError::Sql prints.
        this.send(errorResponse({ severity: 'ERROR', code: 'XX000', message: `(Sql) ${error.message}` }));
      }
      this.send(readyForQuery());
      return;
    }
    this.send(answer);
    this.send(readyForQuery());
  }

  /** Startup parameters the client sent (user, application_name, …): kept for logs and tests. */
  get parameters(): ReadonlyMap<string, string> {
    return this.startupParameters;
  }
}

function databaseMissing(database: string): ErrorFields {
  return { severity: 'FATAL', code: '3D000', message: `database "${database}" does not exist` };
}
