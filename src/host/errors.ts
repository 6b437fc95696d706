// host/errors.ts — typed errors the host layer raises to its callers (the server maps them to HTTP/WebSocket replies).
//
// Owns: error classes, and `messageOf` (the text of anything thrown). May call: nothing.

/** Publishing failed: the program could not be loaded, described, validated, or its `init` failed. Nothing was kept. */
export class PublishError extends Error {
  constructor(message: string) { super(message); this.name = 'PublishError'; }
}

/** A client named a reducer the module does not have. */
export class NoSuchReducerError extends Error {
  constructor(readonly reducer: string) { super(`no such reducer: ${reducer}`); this.name = 'NoSuchReducerError'; }
}

/** A client tried to call a lifecycle or scheduled reducer, which only the host may call; `message` is the whole text. */
export class ReducerNotCallableError extends Error {
  constructor(readonly reducer: string, message: string) {
    super(message);
    this.name = 'ReducerNotCallableError';
  }
}

/** The arguments of a reducer call do not match its parameters; the message says which argument. */
export class BadArgumentsError extends Error {
  constructor(readonly reducer: string, detail: string, kind: 'reducer' | 'procedure' = 'reducer') {
    super(`invalid arguments for ${kind} ${reducer}: ${detail}`);
    this.name = 'BadArgumentsError';
  }
}

/** The module's `client_connected` reducer rejected the connection. */
export class ConnectionRejectedError extends Error {
  constructor(message: string) { super(message); this.name = 'ConnectionRejectedError'; }
}

/** The database was closed; no more calls are accepted. */
export class DatabaseClosedError extends Error {
  constructor() { super('the database is closed'); this.name = 'DatabaseClosedError'; }
}

/** The message of anything thrown: an Error's message, else its string form. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
