// sql/ast.ts — the syntax tree the parser produces and the type checker consumes.
//
// Owns: statement and expression node shapes. Pure data.
// May call: sql/errors.ts (for SqlPosition).
//
// Names are kept exactly as written (quoted or not); resolution against the schema happens in typecheck.ts.
// Literals keep their source text, because only the column type they meet decides how they parse
// (`300` is fine for a u16 column and an error for a u8 one; `0x01` may be an Identity or bytes).

import type { SqlPosition } from './errors.js';

export type Literal =
  | { type: 'number'; text: string }      // optionally signed: `-5`, `1.5e3`
  | { type: 'string'; text: string }
  | { type: 'hex'; text: string }         // digits only
  | { type: 'bool'; value: boolean }
  | { type: 'null' };

export type CompareOp = '=' | '<>' | '<' | '<=' | '>' | '>=';

export type Expr =
  | { kind: 'lit'; lit: Literal; pos: SqlPosition }
  /** `qualifier` is the table/alias part (`a.b.c` → qualifier `a.b`, name `c`); undefined when unqualified. */
  | { kind: 'col'; qualifier: string | undefined; name: string; pos: SqlPosition }
  | { kind: 'param'; name: string; pos: SqlPosition }
  | { kind: 'cmp'; op: CompareOp; left: Expr; right: Expr; pos: SqlPosition }
  | { kind: 'and' | 'or'; left: Expr; right: Expr; pos: SqlPosition }
  | { kind: 'not'; expr: Expr; pos: SqlPosition }
  | { kind: 'isNull'; expr: Expr; negated: boolean; pos: SqlPosition };

export type ColumnRef = Extract<Expr, { kind: 'col' }>;

export interface TableRef {
  /** Table name as written; dotted paths (`"lib"."libData"`) are joined with `.`. */
  table: string;
  /** The name the query uses for this relation: the alias, else the table name as written. */
  alias: string;
  pos: SqlPosition;
}

export interface Join {
  right: TableRef;
  on: Expr | undefined;
  pos: SqlPosition;
}

export type Projection =
  | { kind: 'star'; qualifier: string | undefined; pos: SqlPosition }
  | { kind: 'count'; alias: string; pos: SqlPosition }
  | { kind: 'columns'; items: { column: ColumnRef; alias: string | undefined }[]; pos: SqlPosition };

export interface SelectStmt {
  kind: 'select';
  projection: Projection;
  from: TableRef;
  joins: Join[];
  where: Expr | undefined;
  limit: bigint | undefined;
  pos: SqlPosition;
}

export type LiteralNode = Extract<Expr, { kind: 'lit' | 'param' }>;

export interface InsertStmt {
  kind: 'insert';
  table: TableRef;
  /** Column names as written, or undefined for "all columns in schema order". */
  columns: { name: string; pos: SqlPosition }[] | undefined;
  rows: LiteralNode[][];
  pos: SqlPosition;
}

export interface UpdateStmt {
  kind: 'update';
  table: TableRef;
  assignments: { column: string; value: LiteralNode; pos: SqlPosition }[];
  where: Expr | undefined;
  pos: SqlPosition;
}

export interface DeleteStmt {
  kind: 'delete';
  table: TableRef;
  where: Expr | undefined;
  pos: SqlPosition;
}

export interface SetStmt { kind: 'set'; name: string; value: LiteralNode; pos: SqlPosition }
export interface ShowStmt { kind: 'show'; name: string; pos: SqlPosition }

export type Statement = SelectStmt | InsertStmt | UpdateStmt | DeleteStmt | SetStmt | ShowStmt;
