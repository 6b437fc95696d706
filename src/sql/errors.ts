// sql/errors.ts — the one error type the SQL layer throws for bad input.
//
// Owns: SqlError (what went wrong, and where in the query text when known).
// May call: nothing.
//
// Every failure caused by the query (syntax, unknown names, type mismatches, permissions, constraint violations
// during DML) surfaces as a SqlError, so callers (HTTP /sql, subscriptions) can send its message to the client as is.
// Programmer errors stay node:assert failures.

export type SqlErrorKind =
  | 'syntax'        // the lexer or parser rejected the text
  | 'unsupported'   // valid SQL we (or upstream) do not support in this context
  | 'unresolved'    // unknown table, alias or column
  | 'type'          // a literal or comparison does not fit the column type
  | 'permission'    // private table, DML by a non-owner
  | 'constraint'    // unique violation, auto_inc overflow, … during DML
  | 'limit';        // query text or result too large

/** Where in the query text an error was found (0-based offset, 1-based line and column). */
export interface SqlPosition {
  offset: number;
  line: number;
  column: number;
}

export class SqlError extends Error {
  constructor(
    readonly kind: SqlErrorKind,
    message: string,
    readonly position?: SqlPosition,
  ) {
    super(position === undefined ? message : `${message} at line ${position.line}, column ${position.column}`);
    this.name = 'SqlError';
  }
}
