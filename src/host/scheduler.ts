// host/scheduler.ts — scheduled reducers and procedures (host-abi §5.4): the queue of schedule-table rows and the one
// Node timer per database that fires the earliest due row.
//
// Owns: decoding a schedule row (its u64 id and ScheduleAt), the delay check (errno 13), the due-time queue keyed by
// (table, id) so an update replaces the queued entry and a delete cancels it, interval re-queueing anchored on the
// previous intended time (missed ticks skipped), the timer, and the bounds on due rows in flight and rows held
// (limits.ts scheduledCallsQueuedMax, scheduleRowsPerDatabaseMax).
// May call: datastore/types, sats (codec, bsatn), host/module-log (the wall clock). The Database (host/database.ts) runs what fires: it owns
// transactions and calls; the scheduler only says "this row is due" and answers "what next for this row".
//
// Rows are queued from committed TxData only (noteCommit), never from inside a transaction, so a rolled-back insert
// can never fire.

import assert from 'node:assert';
import { BsatnWriter } from '../sats/bsatn.js';
import { nowMicros as wallMicros } from './module-log.js';
import { compileCodec, type Codec } from '../sats/codec.js';
import type { SumValue, Typespace, Value } from '../sats/types.js';
import {
  DatastoreError, errno, type DatabaseSchema, type IndexId, type MutTx, type ReadView, type TableId, type TableSchema,
  type TxData,
} from '../datastore/types.js';

/** A delay at or above this many milliseconds is refused with errno 13 (upstream's limit, ~2.18 years). */
export const scheduleDelayMaxMs = 2 ** 36 - 1;
const scheduleDelayMaxMicros = BigInt(scheduleDelayMaxMs) * 1000n;
/** Node timers cannot wait longer than this (2^31−1 ms); a later item is reached by re-arming. */
const timerDelayMaxMs = 2 ** 31 - 1;
/** ScheduleAt variant tags (the library's sum order). */
const scheduleAtInterval = 0;
const scheduleAtTime = 1;

/** One queued schedule-table row. Identity matters: the queue holds the latest entry per (table, id). */
export interface ScheduledItem {
  readonly table: TableSchema;
  readonly id: bigint;
  /** When it should run (µs since the epoch). */
  readonly atMicros: bigint;
  /** Interval rows repeat every `intervalMicros`; undefined for a one-shot `Time` row. */
  readonly intervalMicros: bigint | undefined;
}

interface ScheduleTable {
  table: TableSchema;
  codec: Codec;
  /** The unique index on the id column (for re-reading and deleting a row by id). */
  idIndex: IndexId;
}

/**
 * The time source of a database: reducer timestamps and schedule due times. The system clock by default; module unit
 * tests (src/testing) pass a manual one that moves only when told to, so no Node timer is armed for it.
 */
export interface Clock {
  nowMicros(): bigint;
  /** True: time moves only when its owner advances it, and it runs due schedules itself (Scheduler.fireDue). */
  readonly manual?: boolean;
}

export const systemClock: Clock = { nowMicros: () => BigInt(wallMicros()) };

export interface SchedulerHost {
  nowMicros(): bigint;
  /** A manual clock: arm no timer; due rows run only through fireDue(). */
  manualTime?: boolean;
  /** Called from the timer when `item` is due; the host runs it (serialized with other calls). */
  fire(item: ScheduledItem): void;
  /**
   * How many more due rows the host takes now (limits.ts scheduledCallsQueuedMax). At 0, due rows wait here and the
   * host calls fireDue() again when it has room; the timer is not re-armed meanwhile.
   */
  room(): number;
  /** Due rows wait because the host has no room (a backlog: they are due faster than they run). */
  behind?(): void;
}

export class Scheduler {
  private readonly tables = new Map<TableId, ScheduleTable>();
  /** Latest entry per table and id; the heap may hold stale entries, which are skipped when popped. */
  private readonly live = new Map<TableId, Map<bigint, ScheduledItem>>();
  private readonly heap: ScheduledItem[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAtMicros: bigint | undefined;
  private closed = false;

  constructor(schema: DatabaseSchema, private readonly host: SchedulerHost) {
    for (const table of schema.tables) {
      const s = table.schedule;
      if (s === undefined) continue;
      const idIndex = table.indexes.find((i) => i.unique && i.columns.length === 1 && i.columns[0] === s.idColumn);
      assert(idIndex !== undefined, `schedule table ${table.name} has no unique index on its id column`);
      this.tables.set(table.tableId, {
        table,
        codec: compileCodec({ tag: 'Product', value: table.rowType }, schema.typespace as Typespace),
        idIndex: idIndex.indexId,
      });
      this.live.set(table.tableId, new Map());
    }
  }

  /** True when the module has any schedule table (everything else is a no-op otherwise). */
  get active(): boolean {
    return this.tables.size > 0;
  }

  isScheduleTable(tableId: TableId): boolean {
    return this.tables.has(tableId);
  }

  /**
   * Checked when a module inserts or updates a schedule row (inside the transaction): a delay too long to represent
   * fails the write with errno 13, as upstream. `callMicros` is the call's timestamp.
   */
  /** Whether `tableId` is a schedule table. */
  schedules(tableId: TableId): boolean {
    return this.tables.has(tableId);
  }

  checkRow(tableId: TableId, row: Uint8Array, callMicros: bigint): void {
    const st = this.tables.get(tableId);
    if (st === undefined) return;
    const item = this.decode(st, row, this.nowFrom(callMicros));
    if (item.atMicros - this.nowFrom(callMicros) >= scheduleDelayMaxMicros) {
      throw new DatastoreError(errno.scheduleAtDelayTooLong,
        `ScheduleAt delay of ${(item.atMicros - this.nowFrom(callMicros)) / 1000n} ms exceeds the ${scheduleDelayMaxMs} ms limit`);
    }
  }

  /** After a commit: queue inserted schedule rows (an update appears as delete + insert), cancel deleted ones. */
  noteCommit(txData: TxData): void {
    if (this.tables.size === 0 || this.closed) return;
    const now = this.host.nowMicros();
    let changed = false;
    for (const tc of txData.tables) {
      const st = this.tables.get(tc.tableId);
      if (st === undefined) continue;
      const live = this.live.get(tc.tableId)!;
      for (const row of tc.deletes) { live.delete(this.idOf(st, row)); changed = true; }
      for (const row of tc.inserts) { this.push(this.decode(st, row, now)); changed = true; }
    }
    if (changed) this.arm();
  }

  /** At startup: queue every existing row; rows whose time has passed fire as soon as the timer runs. */
  queueAll(view: ReadView): void {
    const now = this.host.nowMicros();
    for (const st of this.tables.values()) {
      for (const row of view.scan(st.table.tableId)) this.push(this.decode(st, row, now));
    }
    this.arm();
  }

  /** The row `item` stands for, re-read from `view`; undefined when it was deleted or rescheduled since. */
  currentRow(view: ReadView, item: ScheduledItem): Uint8Array | undefined {
    if (this.live.get(item.table.tableId)?.get(item.id) !== item) return undefined;
    const st = this.tables.get(item.table.tableId)!;
    return view.scanIndexPoint(st.idIndex, u64Key(item.id))[0];
  }

  /** Whether `item` is still the queued entry for its row (not cancelled or replaced by the call it fired). */
  isCurrent(item: ScheduledItem): boolean {
    return this.live.get(item.table.tableId)?.get(item.id) === item;
  }

  /** Deletes a one-shot row in `tx` (the host commits it through its commit path). */
  deleteRow(tx: MutTx, item: ScheduledItem): number {
    const st = this.tables.get(item.table.tableId)!;
    return tx.deleteByIndexPoint(st.idIndex, u64Key(item.id));
  }

  /** Re-queues an interval row at the first tick after now, anchored on the previous intended time. */
  requeueInterval(item: ScheduledItem): void {
    assert(item.intervalMicros !== undefined);
    if (!this.isCurrent(item)) return;
    const now = this.host.nowMicros();
    const step = item.intervalMicros > 0n ? item.intervalMicros : 1n;
    let next = item.atMicros + step;
    if (next <= now) next += ((now - next) / step + 1n) * step;
    this.push({ ...item, atMicros: next });
    this.arm();
  }

  /** Forgets a row's queued entry (used for a one-shot procedure, deleted before it runs). */
  forget(item: ScheduledItem): void {
    const live = this.live.get(item.table.tableId);
    if (live?.get(item.id) === item) live.delete(item.id);
  }

  /** When the earliest queued row is due (µs), or undefined when nothing is queued. */
  nextDueMicros(): bigint | undefined {
    this.dropStale();
    return this.heap[0]?.atMicros;
  }

  /**
   * Hands rows due by now to the host (in due-time order) while it has room, and re-arms; returns what was handed
   * over. Rows a call schedules for "now" while these run are due too, but wait for the next fireDue.
   */
  fireDue(): ScheduledItem[] {
    if (this.closed) return [];
    const now = this.host.nowMicros();
    const due: ScheduledItem[] = [];
    let room = this.host.room();
    while (this.heap.length > 0 && this.heap[0].atMicros <= now && room > 0) {
      const item = this.pop()!;
      if (this.isCurrent(item)) { due.push(item); room--; }
    }
    for (const item of due) this.host.fire(item);
    this.arm();
    return due;
  }

  /**
   * Checked when a module inserts a schedule row (inside the transaction `tx`, which counts its own inserts): a
   * database holds at most `rowsMax` schedule rows (limits.ts scheduleRowsPerDatabaseMax).
   */
  checkRowCount(tx: ReadView, rowsMax: number): void {
    let rows = 0;
    for (const tableId of this.tables.keys()) rows += tx.rowCount(tableId);
    if (rows >= rowsMax) {
      throw new DatastoreError(errno.hostCallFailure,
        `the database holds ${rows} scheduled rows, the most it may hold (scheduleRowsPerDatabaseMax = ${rowsMax}); ` +
        'this row is refused');
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
    for (const m of this.live.values()) m.clear();
  }

  // ------------------------------------------------------------------------------------------------------------

  private nowFrom(callMicros: bigint): bigint {
    const wall = this.host.nowMicros();
    return callMicros > wall ? callMicros : wall;
  }

  private idOf(st: ScheduleTable, row: Uint8Array): bigint {
    const value = st.codec.decode(row) as Value[];
    return value[st.table.schedule!.idColumn] as bigint;
  }

  private decode(st: ScheduleTable, row: Uint8Array, now: bigint): ScheduledItem {
    const s = st.table.schedule!;
    const value = st.codec.decode(row) as Value[];
    const id = value[s.idColumn];
    if (typeof id !== 'bigint') assert.fail(`schedule table ${st.table.name}: the id column is not a u64`);
    const at = value[s.scheduleAtColumn] as SumValue;
    const micros = unwrapMicros(at.value);
    if (at.tag === scheduleAtInterval) {
      return { table: st.table, id, atMicros: now + micros, intervalMicros: micros };
    }
    if (at.tag !== scheduleAtTime) assert.fail(`schedule table ${st.table.name}: bad ScheduleAt tag ${at.tag}`);
    return { table: st.table, id, atMicros: micros, intervalMicros: undefined };
  }

  private push(item: ScheduledItem): void {
    this.live.get(item.table.tableId)!.set(item.id, item);
    const h = this.heap;
    h.push(item);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (h[p].atMicros <= h[i].atMicros) break;
      [h[p], h[i]] = [h[i], h[p]];
      i = p;
    }
  }

  private pop(): ScheduledItem | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && h[l].atMicros < h[m].atMicros) m = l;
        if (r < h.length && h[r].atMicros < h[m].atMicros) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }

  /** Drops stale heap heads, then (re)arms the single timer for the earliest live entry. */
  private dropStale(): void {
    while (this.heap.length > 0 && !this.isCurrent(this.heap[0])) this.pop();
  }

  private arm(): void {
    if (this.closed || this.host.manualTime === true) return;
    this.dropStale();
    const head = this.heap[0];
    if (head === undefined) {
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = undefined; this.timerAtMicros = undefined;
      return;
    }
    if (this.timer !== undefined && this.timerAtMicros === head.atMicros) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined; this.timerAtMicros = undefined;
    const delayMicros = head.atMicros - this.host.nowMicros();
    // Due, but the host is full: it calls fireDue() when a call finishes (a timer would spin meanwhile).
    if (delayMicros <= 0n && this.host.room() <= 0) { this.host.behind?.(); return; }
    const delayMs = Math.min(timerDelayMaxMs, Math.max(0, Number(delayMicros) / 1000));
    this.timerAtMicros = head.atMicros;
    this.timer = setTimeout(() => this.onTimer(), Math.ceil(delayMs));
    this.timer.unref?.();
  }

  private onTimer(): void {
    this.timer = undefined; this.timerAtMicros = undefined;
    this.fireDue();
  }
}

/** TimeDuration / Timestamp are single-field products holding i64 microseconds. */
function unwrapMicros(v: Value): bigint {
  const inner = Array.isArray(v) ? v[0] : v;
  assert(typeof inner === 'bigint', 'ScheduleAt payload is not an i64 of microseconds');
  return inner;
}

function u64Key(id: bigint): Uint8Array {
  const w = new BsatnWriter(8);
  w.writeU64(id);
  return w.finish();
}
