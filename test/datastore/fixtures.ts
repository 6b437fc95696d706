// test/datastore/fixtures.ts — a hand-built RawModuleDefV10 and row codecs shared by the datastore tests.

import { compileCodec } from '../../src/sats/codec.js';
import type { RawIndexDefV10, RawModuleDefV10, RawTableDefV10 } from '../../src/sats/moduledef.js';
import type { AlgebraicType, Value } from '../../src/sats/types.js';
import { buildDatabaseSchema } from '../../src/datastore/schema.js';
import type { DatabaseSchema, TableSchema } from '../../src/datastore/types.js';

export const T = {
  u8: { tag: 'U8' }, u32: { tag: 'U32' }, u64: { tag: 'U64' }, i32: { tag: 'I32' }, i64: { tag: 'I64' },
  str: { tag: 'String' }, bool: { tag: 'Bool' },
} as const satisfies Record<string, AlgebraicType>;

export function product(fields: [string, AlgebraicType][]): AlgebraicType {
  return { tag: 'Product', value: { elements: fields.map(([name, algebraicType]) => ({ name, algebraicType })) } };
}

export function btree(...cols: number[]): RawIndexDefV10 {
  return { sourceName: undefined, accessorName: undefined, algorithm: { tag: 'BTree', value: cols } };
}
export function hash(...cols: number[]): RawIndexDefV10 {
  return { sourceName: undefined, accessorName: undefined, algorithm: { tag: 'Hash', value: cols } };
}

export function table(sourceName: string, ref: number, opts: Partial<RawTableDefV10> = {}): RawTableDefV10 {
  return {
    sourceName, productTypeRef: ref, primaryKey: [], indexes: [], constraints: [], sequences: [],
    tableType: { tag: 'User' }, tableAccess: { tag: 'Private' }, defaultValues: [], isEvent: false, ...opts,
  };
}

export const unique = (...cols: number[]) => ({ sourceName: undefined, data: { tag: 'Unique' as const, value: { columns: cols } } });
export const autoInc = (col: number) =>
  ({ sourceName: undefined, column: col, start: undefined, minValue: undefined, maxValue: undefined, increment: 1n });

/** accounts {id u32 pk, balance i64}; person {id u64 autoInc pk, name, age u8; btree(name, age)};
 *  tags {a i32, b string; hash(a)} (no unique index); events {x u32} (event table); small {id u8 autoInc pk}. */
export const moduleDef: RawModuleDefV10 = {
  sections: [
    { tag: 'Typespace', value: { types: [
      product([['id', T.u32], ['balance', T.i64]]),
      product([['id', T.u64], ['name', T.str], ['age', T.u8]]),
      product([['a', T.i32], ['b', T.str]]),
      product([['x', T.u32]]),
      product([['id', T.u8], ['label', T.str]]),
    ] } },
    { tag: 'Tables', value: [
      table('accounts', 0, { primaryKey: [0], indexes: [btree(0)], constraints: [unique(0)], tableAccess: { tag: 'Public' } }),
      table('person', 1, { primaryKey: [0], indexes: [btree(0), btree(1, 2)], constraints: [unique(0)], sequences: [autoInc(0)] }),
      table('tags', 2, { indexes: [hash(0)] }),
      table('events', 3, { isEvent: true }),
      table('small', 4, { primaryKey: [0], indexes: [hash(0)], constraints: [unique(0)], sequences: [autoInc(0)] }),
    ] },
  ],
};

export function schemaAndCodecs(): { schema: DatabaseSchema; byName: (n: string) => TableSchema;
  enc: (t: TableSchema, v: Value[]) => Uint8Array; dec: (t: TableSchema, row: Uint8Array) => Value } {
  const schema = buildDatabaseSchema(moduleDef);
  const byName = (n: string) => schema.tables.find((t) => t.name === n)!;
  const enc = (t: TableSchema, v: Value[]) => compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace).encode(v);
  const dec = (t: TableSchema, row: Uint8Array) => compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace).decode(row);
  return { schema, byName, enc, dec };
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

