// test/sql/fixture.ts — a small hand-built schema and a real in-memory Datastore for the SQL tests.
//
// Tables: person (u64 auto_inc pk, name String indexed, age u8, owner Identity, nick Option<String>, born Timestamp),
// pet (u32 pk, person_id u64 btree, species String), secret (private), plain (no indexes), ev (event table).

import { Datastore } from '../../src/datastore/store.js';
import type { DatabaseSchema, IndexSchema, ReadView, TableSchema } from '../../src/datastore/types.js';
import type { AlgebraicType, ProductType } from '../../src/sats/types.js';

export const identityType: AlgebraicType = { tag: 'Product', value: { elements: [{ name: '__identity__', algebraicType: { tag: 'U256' } }] } };
export const timestampType: AlgebraicType = {
  tag: 'Product', value: { elements: [{ name: '__timestamp_micros_since_unix_epoch__', algebraicType: { tag: 'I64' } }] },
};
const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
export const optionString: AlgebraicType = {
  tag: 'Sum', value: { variants: [{ name: 'some', algebraicType: { tag: 'String' } }, { name: 'none', algebraicType: unit }] },
};

let nextIndexId = 5000;

function table(
  tableId: number, name: string, sourceName: string,
  cols: [string, string, AlgebraicType][],
  opts: { pk?: number; indexes?: { cols: number[]; unique?: boolean; algorithm?: 'btree' | 'hash' }[]; autoInc?: number; access?: 'public' | 'private'; isEvent?: boolean },
): TableSchema {
  const rowType: ProductType = { elements: cols.map(([n, , t]) => ({ name: n, algebraicType: t })) };
  const indexes: IndexSchema[] = (opts.indexes ?? []).map((ix) => ({
    indexId: nextIndexId++,
    name: `${name}_${ix.cols.map((c) => cols[c]![0]).join('_')}_idx_${ix.algorithm ?? 'btree'}`,
    aliases: [],
    algorithm: ix.algorithm ?? 'btree',
    columns: ix.cols,
    unique: ix.unique ?? false,
  }));
  return {
    tableId, name, aliases: sourceName === name ? [] : [sourceName], rowType,
    columns: cols.map(([n, s, t]) => ({ name: n, sourceName: s, type: t })),
    primaryKey: opts.pk,
    indexes,
    uniqueConstraints: indexes.filter((i) => i.unique).map((i) => ({ name: `${i.name}_key`, columns: i.columns })),
    sequences: opts.autoInc === undefined ? [] : [{
      name: `${name}_seq`, column: opts.autoInc, start: 1n, increment: 1n, min: 1n, max: (1n << 63n) - 1n,
    }],
    access: opts.access ?? 'public',
    isEvent: opts.isEvent ?? false,
    schedule: undefined,
    defaultValues: new Map(),
  };
}

export function makeSchema(): DatabaseSchema {
  nextIndexId = 5000;
  return {
    typespace: { types: [] },
    tables: [
      table(4096, 'person', 'Person', [
        ['id', 'id', { tag: 'U64' }], ['name', 'name', { tag: 'String' }], ['age', 'age', { tag: 'U8' }],
        ['owner', 'owner', identityType], ['nick', 'nick', optionString], ['born_at', 'bornAt', timestampType],
      ], { pk: 0, autoInc: 0, indexes: [{ cols: [0], unique: true }, { cols: [1] }] }),
      table(4097, 'pet', 'pet', [
        ['id', 'id', { tag: 'U32' }], ['person_id', 'personId', { tag: 'U64' }], ['species', 'species', { tag: 'String' }],
      ], { pk: 0, indexes: [{ cols: [0], unique: true }, { cols: [1] }] }),
      table(4098, 'secret', 'secret', [['id', 'id', { tag: 'U32' }], ['value', 'value', { tag: 'String' }]],
        { access: 'private', indexes: [{ cols: [0], unique: true }] }),
      table(4099, 'plain', 'plain', [['a', 'a', { tag: 'U32' }], ['b', 'b', { tag: 'U32' }]], {}),
      table(4100, 'ev', 'ev', [['person_id', 'personId', { tag: 'U64' }]], { isEvent: true }),
    ],
  };
}

export const owner = 0xc200n << 240n | 7n;

export function makeStore(): Datastore {
  return new Datastore(makeSchema());
}

/** A ReadView wrapper that counts full scans and index lookups (to assert plans use indexes). */
export function countingView(view: ReadView): { view: ReadView; counts: { scan: number; point: number; range: number } } {
  const counts = { scan: 0, point: 0, range: 0 };
  const wrapped: ReadView = {
    schema: () => view.schema(),
    table: (id) => view.table(id),
    tableByName: (n) => view.tableByName(n),
    indexByName: (n) => view.indexByName(n),
    rowCount: (id) => view.rowCount(id),
    scan: (id) => { counts.scan++; return view.scan(id); },
    scanIndexPoint: (id, key) => { counts.point++; return view.scanIndexPoint(id, key); },
    scanIndexRange: (id, r) => { counts.range++; return view.scanIndexRange(id, r); },
  };
  return { view: wrapped, counts };
}
