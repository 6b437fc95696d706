// Test fixture for subscription tests: a hand-built schema on a real Datastore and a recording ClientSink.
import { Datastore } from '../../src/datastore/store.js';
import type { DatabaseSchema, TableSchema, TxData } from '../../src/datastore/types.js';
import { compileCodec } from '../../src/sats/codec.js';
import type { AlgebraicType, Value } from '../../src/sats/types.js';
import type { ClientSink } from '../../src/subscription/manager.js';
import type { QuerySetUpdate } from '../../src/subscription/messages.js';

function table(
  tableId: number, name: string, cols: [string, AlgebraicType][],
  opts: { access?: 'public' | 'private'; isEvent?: boolean; indexedColumns?: number[] } = {},
): TableSchema {
  const extra = (opts.indexedColumns ?? []).map((c, i) => ({
    indexId: tableId * 10 + 1 + i, name: `${name}_${cols[c]![0]}_idx_btree`, aliases: [], algorithm: 'btree' as const, columns: [c], unique: false,
  }));
  return {
    tableId, name, aliases: [],
    rowType: { elements: cols.map(([n, t]) => ({ name: n, algebraicType: t })) },
    columns: cols.map(([n, t]) => ({ name: n, sourceName: n, type: t })),
    primaryKey: 0,
    indexes: [{ indexId: tableId * 10, name: `${name}_${cols[0][0]}_idx_btree`, aliases: [], algorithm: 'btree', columns: [0], unique: true }, ...extra],
    uniqueConstraints: [{ name: `${name}_${cols[0][0]}_key`, columns: [0] }],
    sequences: [], access: opts.access ?? 'public', isEvent: opts.isEvent ?? false, schedule: undefined,
    defaultValues: new Map(),
  };
}

const identityType: AlgebraicType = {
  tag: 'Product', value: { elements: [{ name: '__identity__', algebraicType: { tag: 'U256' } }] },
};

export const schema: DatabaseSchema = {
  typespace: { types: [] },
  tables: [
    table(4096, 'person', [['id', { tag: 'U32' }], ['name', { tag: 'String' }], ['age', { tag: 'U32' }]]),
    table(4097, 'secret', [['id', { tag: 'U32' }]], { access: 'private' }),
    table(4098, 'ping', [['id', { tag: 'U32' }]], { isEvent: true }),
    table(4099, 'owned', [['id', { tag: 'U32' }], ['owner', identityType]]),
    // Join shapes: a chat's rooms. `room` is indexed (not unique) in membership and message, not in note.
    table(4100, 'membership', [['id', { tag: 'U32' }], ['room', { tag: 'U32' }], ['member', { tag: 'String' }]], { indexedColumns: [1] }),
    table(4101, 'message', [['id', { tag: 'U32' }], ['room', { tag: 'U32' }], ['text', { tag: 'String' }]], { indexedColumns: [1] }),
    table(4102, 'note', [['id', { tag: 'U32' }], ['room', { tag: 'U32' }]]),
  ],
};

export const codecs = new Map(schema.tables.map((t) => [t.name, compileCodec({ tag: 'Product', value: t.rowType }, schema.typespace)]));
export const row = (tableName: string, v: Value[]) => codecs.get(tableName)!.encode(v);

export function newDatastore(): Datastore {
  return new Datastore(schema);
}

/** Runs one transaction and returns its TxData. */
export function write(ds: Datastore, fn: (tx: ReturnType<Datastore['beginMutTx']>) => void): TxData {
  const tx = ds.beginMutTx();
  fn(tx);
  return tx.commit();
}

export interface Delivery { querySets: QuerySetUpdate[]; isCaller: boolean }

export class RecordingSink implements ClientSink {
  readonly deliveries: Delivery[] = [];
  readonly failures: { querySetId: number; error: string }[] = [];
  transaction(querySets: QuerySetUpdate[], isCaller: boolean): void {
    this.deliveries.push({ querySets, isCaller });
  }
  querySetFailed(querySetId: number, error: string): void {
    this.failures.push({ querySetId, error });
  }
}
