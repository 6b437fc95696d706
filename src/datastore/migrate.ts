// datastore/migrate.ts — automatic schema migration: the plan (old schema → new schema) and the row rewrite.
//
// Owns: the rules of cli-and-publish.md §3 (which changes are automatic, which break clients, which are refused and
// why), the ordered plan steps and their printed text (§2.3), and `migrateDatastore`, which builds the datastore of
// the new schema from the committed state of the old one (rows rewritten where columns were added, data checks for
// added unique constraints, sequences and removed tables). The old datastore is never modified, so a failure leaves
// nothing to undo.
// May call: datastore/store, datastore/types, sats (codec, moduledef, types, bsatn).
//
// Tables, indexes and views are matched by canonical name. Table and index ids are positional in a schema
// (schema.ts), so the new datastore is a new object; rows are shared with the old one, never copied.

import { BsatnReader } from '../sats/bsatn.js';
import { compileCodec, resolveType } from '../sats/codec.js';
import { moduleDefSections, type RawModuleDefV10 } from '../sats/moduledef.js';
import { hasOptionVariants, type AlgebraicType, type Typespace } from '../sats/types.js';
import { Datastore } from './store.js';
import type { DatabaseSchema, IndexSchema, SequenceSchema, TableChanges, TableId, TableSchema, TxData } from './types.js';

/** Execution order of step kinds (upstream's enum order): removes before adds, DisconnectAllUsers last. */
export const stepOrder = [
  'RemoveIndex', 'RemoveConstraint', 'RemoveSequence', 'RemoveSchedule', 'RemoveView', 'RemoveRLS', 'RemoveTable',
  'ChangeColumns', 'ReschemaEventTable', 'AddColumns', 'ChangeIndexSourceName', 'ChangeTableAccessorName',
  'ChangeColumnAccessorName', 'AddTable', 'AddIndex', 'AddConstraint', 'AddSequence', 'AddSchedule', 'AddView',
  'AddRLS', 'ChangeAccess', 'ChangePrimaryKey', 'UpdateView', 'DisconnectAllUsers',
] as const;
export type StepKind = (typeof stepOrder)[number];

export interface MigrationStep {
  kind: StepKind;
  /** Canonical table (or view) name the step is about; undefined for RLS and DisconnectAllUsers. */
  table: string | undefined;
  /** Printed lines (without the `▸ ` marker on the first); empty for steps upstream does not print. */
  lines: string[];
  breaksClients: boolean;
}

export interface MigrationPlan {
  steps: MigrationStep[];
  /** True iff the plan ends with DisconnectAllUsers. */
  breaksClients: boolean;
}

export type PlanResult = { kind: 'auto'; plan: MigrationPlan } | { kind: 'manual'; reasons: string[] };

/** One side of a migration: the module's definition and the schema built from it. */
export interface SchemaSide { schema: DatabaseSchema; def: RawModuleDefV10 }

/** A migration step that failed against the live rows (EXEC-CHECK in §3); the update is rolled back. */
export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const planRule = '━'.repeat(60);

// ---------------------------------------------------------------------------------------------------------------
// Planning

export function planMigration(oldSide: SchemaSide, newSide: SchemaSide): PlanResult {
  const steps: MigrationStep[] = [];
  const reasons: string[] = [];
  const oldTs = oldSide.schema.typespace;
  const newTs = newSide.schema.typespace;
  const oldTables = new Map(oldSide.schema.tables.map((t) => [t.name, t]));
  const newTables = new Map(newSide.schema.tables.map((t) => [t.name, t]));
  const add = (kind: StepKind, table: string | undefined, lines: string[], breaksClients = false) =>
    steps.push({ kind, table, lines, breaksClients });

  for (const [name, old] of oldTables) {
    if (newTables.has(name)) continue;
    add('RemoveTable', name, [`Removed table: ${name}`], true);
  }
  for (const [name, next] of newTables) {
    const old = oldTables.get(name);
    if (old === undefined) {
      add('AddTable', name, describeNewTable(next, newTs));
      continue;
    }
    diffTable(old, next, oldTs, newTs, add, reasons);
  }
  diffRls(oldSide.def, newSide.def, add);
  diffViews(oldSide.def, newSide.def, add);

  if (reasons.length > 0) return { kind: 'manual', reasons };
  steps.sort((a, b) => stepOrder.indexOf(a.kind) - stepOrder.indexOf(b.kind));
  const breaksClients = steps.some((s) => s.breaksClients);
  if (breaksClients) add('DisconnectAllUsers', undefined, [], true);
  return { kind: 'auto', plan: { steps, breaksClients } };
}

type AddStep = (kind: StepKind, table: string | undefined, lines: string[], breaksClients?: boolean) => void;

function diffTable(
  old: TableSchema, next: TableSchema, oldTs: Typespace, newTs: Typespace, add: AddStep, reasons: string[],
): void {
  const t = old.name;
  if (old.isEvent !== next.isEvent) {
    reasons.push(`Changing the event flag of table ${t} requires a manual migration`);
    return;
  }
  if (old.aliases.join() !== next.aliases.join()) {
    add('ChangeTableAccessorName', t, [`Changed accessor name of table ${t}`]);
  }
  if (old.isEvent) {
    // Event tables keep no rows, so any reschema is allowed (clients must learn the new row type).
    const same = old.columns.length === next.columns.length && old.columns.every((c, i) =>
      c.name === next.columns[i].name && typeName(c.type, oldTs) === typeName(next.columns[i].type, newTs));
    if (!same) add('ReschemaEventTable', t, [`Changed schema of event table ${t}`], true);
  } else {
    diffColumns(old, next, oldTs, newTs, add, reasons);
  }
  diffIndexes(old, next, add);
  diffConstraints(old, next, add);
  diffSequences(old, next, add);
  diffSchedule(old, next, add);
  if (old.access !== next.access) {
    add('ChangeAccess', t, [`Changed access for table ${t} (${old.access} → ${next.access})`]);
  }
  if (old.primaryKey !== next.primaryKey || (old.primaryKey !== undefined &&
      old.columns[old.primaryKey].name !== next.columns[next.primaryKey!]?.name)) {
    const how = next.primaryKey === undefined ? 'removed'
      : old.primaryKey === undefined ? `added on column ${next.columns[next.primaryKey].name}`
      : `changed to column ${next.columns[next.primaryKey].name}`;
    add('ChangePrimaryKey', t, [`Changed primary key on table ${t} (${how})`]);
  }
}

function diffColumns(
  old: TableSchema, next: TableSchema, oldTs: Typespace, newTs: Typespace, add: AddStep, reasons: string[],
): void {
  const t = old.name;
  const modified: string[] = [];
  const renamedAccessors: string[] = [];
  let reordered = false;
  for (let i = 0; i < old.columns.length; i++) {
    const oc = old.columns[i];
    const nc = next.columns[i];
    if (nc === undefined || nc.name !== oc.name) {
      if (next.columns.some((c) => c.name === oc.name)) reordered = true;
      else reasons.push(`Removing a column ${oc.name} from table ${t} requires a manual migration`);
      continue;
    }
    const verdict = compareTypes(oc.type, nc.type, oldTs, newTs);
    if (verdict !== 'same' && verdict !== 'extended') {
      reasons.push(`Changing the type of column ${oc.name} in table ${t} from ${typeName(oc.type, oldTs)} to ` +
        `${typeName(nc.type, newTs)} requires a manual migration${verdict === 'different' ? '' : ` (${verdict})`}`);
    } else if (verdict === 'extended') {
      modified.push(`~ Modified: ${oc.name} (${typeName(oc.type, oldTs)} → ${typeName(nc.type, newTs)})`);
    }
    if (oc.sourceName !== nc.sourceName) renamedAccessors.push(oc.name);
  }
  if (reordered) reasons.push(`Reordering table ${t} requires a manual migration`);
  const added: string[] = [];
  for (let i = old.columns.length; i < next.columns.length; i++) {
    const nc = next.columns[i];
    if (old.columns.some((c) => c.name === nc.name)) continue; // reported as a reorder
    const dflt = next.defaultValues.get(i);
    if (dflt === undefined) {
      reasons.push(`Adding a column ${nc.name} to table ${t} requires a default value annotation`);
      continue;
    }
    added.push(`+ ${nc.name}: ${typeName(nc.type, newTs)} (default: ${formatDefault(nc.type, dflt, newTs)})`);
  }
  if (modified.length > 0) add('ChangeColumns', t, [`Changed columns for table ${t}`, ...modified]);
  if (added.length > 0) add('AddColumns', t, [`Created column(s) in table ${t}`, ...added], true);
  for (const c of renamedAccessors) add('ChangeColumnAccessorName', t, [`Changed accessor name of column ${c} in table ${t}`]);
}

function diffIndexes(old: TableSchema, next: TableSchema, add: AddStep): void {
  const t = old.name;
  const oldBy = new Map(old.indexes.map((ix) => [ix.name, ix]));
  const newBy = new Map(next.indexes.map((ix) => [ix.name, ix]));
  for (const [name, ix] of oldBy) {
    const n = newBy.get(name);
    if (n === undefined || !sameIndex(ix, n)) add('RemoveIndex', t, [`Removed index ${name} on [${cols(old, ix.columns)}] of table ${t}`]);
  }
  for (const [name, ix] of newBy) {
    const o = oldBy.get(name);
    if (o === undefined || !sameIndex(o, ix)) {
      add('AddIndex', t, [`Created index ${name} on [${cols(next, ix.columns)}] of table ${t}`]);
    } else if (o.aliases.join() !== ix.aliases.join()) {
      add('ChangeIndexSourceName', t, [`Changed source name of index ${name} of table ${t}`]);
    }
  }
}

function diffConstraints(old: TableSchema, next: TableSchema, add: AddStep): void {
  const t = old.name;
  const key = (c: number[]) => c.join(',');
  const oldBy = new Map(old.uniqueConstraints.map((u) => [key(u.columns), u]));
  const newBy = new Map(next.uniqueConstraints.map((u) => [key(u.columns), u]));
  for (const [k, u] of oldBy) {
    if (!newBy.has(k)) add('RemoveConstraint', t, [`Removed unique constraint ${u.name} on [${cols(old, u.columns)}] of table ${t}`]);
  }
  for (const [k, u] of newBy) {
    if (!oldBy.has(k)) add('AddConstraint', t, [`Created unique constraint ${u.name} on [${cols(next, u.columns)}] of table ${t}`]);
  }
}

function diffSequences(old: TableSchema, next: TableSchema, add: AddStep): void {
  const t = old.name;
  for (const s of old.sequences) {
    const n = next.sequences.find((q) => q.column === s.column);
    if (n === undefined || !sameSequence(s, n)) {
      add('RemoveSequence', t, [`Removed auto-increment constraint ${s.name} on column ${old.columns[s.column].name} of table ${t}`]);
    }
  }
  for (const s of next.sequences) {
    const o = old.sequences.find((q) => q.column === s.column);
    if (o === undefined || !sameSequence(o, s)) {
      add('AddSequence', t, [`Created auto-increment constraint ${s.name} on column ${next.columns[s.column].name} of table ${t}`]);
    }
  }
}

function diffSchedule(old: TableSchema, next: TableSchema, add: AddStep): void {
  const o = old.schedule;
  const n = next.schedule;
  const same = o?.functionName === n?.functionName && o?.scheduleAtColumn === n?.scheduleAtColumn;
  if (same) return;
  if (o !== undefined) add('RemoveSchedule', old.name, [`Removed schedule for table ${old.name} calling reducer ${o.functionName}`]);
  if (n !== undefined) add('AddSchedule', old.name, [`Created schedule for table ${old.name} calling reducer ${n.functionName}`]);
}

function diffRls(oldDef: RawModuleDefV10, newDef: RawModuleDefV10, add: AddStep): void {
  const oldSql = new Set(moduleDefSections(oldDef).rowLevelSecurity.map((r) => r.sql));
  const newSql = new Set(moduleDefSections(newDef).rowLevelSecurity.map((r) => r.sql));
  const changed = oldSql.size !== newSql.size || [...oldSql].some((s) => !newSql.has(s));
  if (!changed) return;
  // Any change drops and re-adds every rule, and disconnects clients to flush their caches (upstream).
  for (const sql of oldSql) add('RemoveRLS', undefined, ['Removed row level security policy:', `\`${sql}\``], true);
  for (const sql of newSql) add('AddRLS', undefined, ['Created row level security policy:', `\`${sql}\``], true);
}

function diffViews(oldDef: RawModuleDefV10, newDef: RawModuleDefV10, add: AddStep): void {
  type View = { sourceName: string; isAnonymous: boolean; isPublic: boolean; params: unknown; returnType: unknown };
  const views = (def: RawModuleDefV10) =>
    new Map((moduleDefSections(def).views as unknown as View[]).map((v) => [v.sourceName, v]));
  const oldViews = views(oldDef);
  const newViews = views(newDef);
  const shape = (v: View) => JSON.stringify([v.isAnonymous, v.params, v.returnType], (_k, x) =>
    typeof x === 'bigint' ? x.toString() : x);
  const label = (v: View) => `${v.isAnonymous ? 'anonymous view' : 'view'}: ${v.sourceName}`;
  for (const [name, v] of oldViews) {
    const n = newViews.get(name);
    if (n === undefined || shape(n) !== shape(v)) add('RemoveView', name, [`Removed ${label(v)}`], true);
  }
  for (const [name, v] of newViews) {
    const o = oldViews.get(name);
    if (o === undefined) add('AddView', name, [`Created ${label(v)}`]);
    else if (shape(o) !== shape(v)) add('AddView', name, [`Created ${label(v)}`], true);
    else {
      if (o.isPublic !== v.isPublic) {
        add('ChangeAccess', name, [`Changed access for view ${name} (${o.isPublic ? 'public' : 'private'} → ${v.isPublic ? 'public' : 'private'})`]);
      }
      add('UpdateView', name, []); // recomputed, not printed
    }
  }
}

function describeNewTable(t: TableSchema, ts: Typespace): string[] {
  const lines = [`Created ${t.isEvent ? 'event ' : 'user '}table: ${t.name} (${t.access})`, '  Columns:'];
  for (const c of t.columns) lines.push(`    • ${c.name}: ${typeName(c.type, ts)}`);
  if (t.uniqueConstraints.length > 0) {
    lines.push('  Unique constraints:');
    for (const u of t.uniqueConstraints) lines.push(`    • ${u.name} on [${cols(t, u.columns)}]`);
  }
  if (t.indexes.length > 0) {
    lines.push('  Indexes:');
    for (const ix of t.indexes) lines.push(`    • ${ix.name} on [${cols(t, ix.columns)}]`);
  }
  if (t.sequences.length > 0) {
    lines.push('  Auto-increment constraints:');
    for (const s of t.sequences) lines.push(`    • ${s.name} on ${t.columns[s.column].name}`);
  }
  if (t.schedule !== undefined) lines.push('  Schedule:', `    • Calls reducer: ${t.schedule.functionName}`);
  return lines;
}

/** The plan as upstream prints it (§2.3). The header is printed even when there are no steps. */
export function formatPlan(plan: MigrationPlan): string {
  let out = `${planRule}\nDatabase Migration Plan\n${planRule}\n\n`;
  for (const s of plan.steps) {
    if (s.lines.length === 0) continue;
    out += `▸ ${s.lines[0]}\n`;
    for (const l of s.lines.slice(1)) out += `  ${l}\n`;
  }
  if (plan.breaksClients) out += '\n!!! Warning: All clients will be disconnected due to breaking schema changes\n';
  return out;
}

/** The ManualMigrate reason: every planning error, one per line. */
export function formatReasons(reasons: string[]): string {
  return reasons.map((r) => `- ${r}`).join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Types

type Verdict = 'same' | 'extended' | 'different' | string;

/**
 * Whether values of `a` stay valid, byte for byte, as values of `b`. Sums may gain variants at the end (the BSATN
 * tag stays a u8 and old tags keep their meaning); products and arrays are checked element by element.
 */
function compareTypes(a: AlgebraicType, b: AlgebraicType, ta: Typespace, tb: Typespace): Verdict {
  const x = resolveType(a, ta);
  const y = resolveType(b, tb);
  if (x.tag !== y.tag) return 'different';
  switch (x.tag) {
    case 'Array': return compareTypes(x.value, (y as typeof x).value, ta, tb);
    case 'Product': {
      const ye = (y as typeof x).value.elements;
      const xe = x.value.elements;
      if (xe.length !== ye.length) return 'field count mismatch within column';
      let out: Verdict = 'same';
      for (let i = 0; i < xe.length; i++) {
        if (xe[i].name !== ye[i].name) return 'renamed field within column';
        const v = compareTypes(xe[i].algebraicType, ye[i].algebraicType, ta, tb);
        if (v === 'extended') out = v;
        else if (v !== 'same') return v;
      }
      return out;
    }
    case 'Sum': {
      const yv = (y as typeof x).value.variants;
      const xv = x.value.variants;
      if (yv.length < xv.length) return 'fewer variants';
      if (yv.length > 256) return 'size mismatch';
      let out: Verdict = yv.length > xv.length ? 'extended' : 'same';
      for (let i = 0; i < xv.length; i++) {
        if (xv[i].name !== yv[i].name) return 'renamed variant';
        const v = compareTypes(xv[i].algebraicType, yv[i].algebraicType, ta, tb);
        if (v === 'extended') out = v;
        else if (v !== 'same') return v;
      }
      return out;
    }
    default: return 'same';
  }
}

/** A short type name for plan text and errors (`U32`, `Array<String>`, `Option<I64>`, `Sum{a|b}`). */
export function typeName(t: AlgebraicType, ts: Typespace): string {
  const r = resolveType(t, ts);
  switch (r.tag) {
    case 'Array': return `Array<${typeName(r.value, ts)}>`;
    case 'Product': {
      const e = r.value.elements;
      if (e.length === 1 && e[0].name?.startsWith('__') === true) return e[0].name.replace(/^__|__$/g, '');
      return `(${e.map((x) => `${x.name ?? '_'}: ${typeName(x.algebraicType, ts)}`).join(', ')})`;
    }
    case 'Sum': {
      const v = r.value.variants;
      if (hasOptionVariants(v)) return `Option<${typeName(v[0].algebraicType, ts)}>`;
      return `Sum{${v.map((x) => x.name ?? '_').join(' | ')}}`;
    }
    default: return r.tag;
  }
}

function formatDefault(t: AlgebraicType, bytes: Uint8Array, ts: Typespace): string {
  try {
    const v = compileCodec(t, ts).decode(bytes);
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? [...x] : x));
  } catch {
    return `<${bytes.length} bytes>`;
  }
}

function cols(t: TableSchema, columns: number[]): string {
  return columns.map((c) => t.columns[c].name).join(', ');
}

function sameIndex(a: IndexSchema, b: IndexSchema): boolean {
  return a.algorithm === b.algorithm && a.columns.join() === b.columns.join();
}

function sameSequence(a: SequenceSchema, b: SequenceSchema): boolean {
  return a.start === b.start && a.increment === b.increment && a.min === b.min && a.max === b.max;
}

// ---------------------------------------------------------------------------------------------------------------
// Executing

/** Rows copied per step of `buildMigration` (between steps the caller may let other work run). */
export const migrationChunkRows = 4_000;

/** The part of a migration done ahead of the swap: tables whose rows had to be copied into the new datastore. */
export interface MigrationBuild {
  readonly next: Datastore;
  /** Old table id → the new table its rows were copied into, and the bytes appended to each row. */
  readonly copied: Map<TableId, { tableId: TableId; suffix: Uint8Array | undefined }>;
}

/**
 * The tables whose rows must be copied (rows rewritten, or an index the old table does not have), with a snapshot
 * of their rows, packed (Datastore.scanPacked). Take it inside the call queue, together with starting to record
 * commits for `finishMigration`.
 */
export function snapshotForMigration(old: Datastore, newSchema: DatabaseSchema): Map<TableId, Uint8Array> {
  const oldSchema = old.schema();
  const oldByName = new Map(oldSchema.tables.map((t) => [t.name, t]));
  const out = new Map<TableId, Uint8Array>();
  for (const nt of newSchema.tables) {
    const ot = oldByName.get(nt.name);
    if (ot === undefined || ot.isEvent || nt.isEvent) continue;
    if (needsCopy(ot, nt, oldSchema.typespace, newSchema.typespace)) out.set(ot.tableId, old.scanPacked(ot.tableId));
  }
  return out;
}

/** Initial size of PackedRows' scratch buffer (it doubles for a longer row). */
const scratchStartBytes = 1 << 12;
/** PackedRows' value once its chunk is done. */
const noRow = new Uint8Array(0);

/**
 * The rows of a packed snapshot (Datastore.scanPacked: u32 length, bytes), `migrationChunkRows` at a time, each followed
 * by `suffix` (added columns' defaults) when there is one. Every row is written into one scratch buffer and handed out
 * as a view of it of the row's length, cached by length, through one reused iterator result: bulkLoadRows copies each
 * row into the table's pages before it asks for the next (store.ts: callers may reuse their buffers), so a 1M-row
 * rewrite allocates nothing per row on the worker's heap. A view per row (or an array per row before) was garbage whose
 * scavenges V8's platform threads run beside the server's main thread (BENCHMARKS "Why /v1/ping slows", session 11).
 */
class PackedRows implements IterableIterator<Uint8Array> {
  /** Byte offset in `packed` of the next row's length. */
  private at = 0;
  private chunkLeft = 0;
  private scratch = new Uint8Array(scratchStartBytes);
  /** `views[n]`: the first `n` bytes of `scratch`. */
  private views: (Uint8Array | undefined)[] = [];
  private readonly result: { done: boolean; value: Uint8Array } = { done: false, value: noRow };

  constructor(private readonly packed: Uint8Array, private readonly suffix: Uint8Array | undefined) {}

  get done(): boolean { return this.at >= this.packed.length; }

  /** Starts the next chunk of at most `migrationChunkRows` rows (iterate this for them). */
  chunk(): this {
    this.chunkLeft = migrationChunkRows;
    return this;
  }

  [Symbol.iterator](): this { return this; }

  next(): IteratorResult<Uint8Array> {
    const packed = this.packed, at = this.at, r = this.result;
    if (this.chunkLeft === 0 || at >= packed.length) {
      r.done = true;
      r.value = noRow;
      return r as IteratorResult<Uint8Array>;
    }
    this.chunkLeft--;
    const n = (packed[at] | (packed[at + 1] << 8) | (packed[at + 2] << 16)) + packed[at + 3] * 0x1000000;
    const suffix = this.suffix, length = n + (suffix === undefined ? 0 : suffix.length);
    if (length > this.scratch.length) this.growScratch(length);
    const out = this.scratch;
    if (n <= 64) { // a byte loop: a short row's copy through a view would allocate the view
      for (let k = 0; k < n; k++) out[k] = packed[at + 4 + k];
    } else {
      out.set(packed.subarray(at + 4, at + 4 + n), 0);
    }
    if (suffix !== undefined) {
      for (let k = 0; k < suffix.length; k++) out[n + k] = suffix[k];
    }
    this.at = at + 4 + n;
    r.done = false;
    r.value = this.views[length] ?? (this.views[length] = out.subarray(0, length));
    return r as IteratorResult<Uint8Array>;
  }

  private growScratch(length: number): void {
    this.scratch = new Uint8Array(Math.max(length, this.scratch.length * 2));
    this.views = [];
  }
}

/**
 * Copies the snapshotted rows into a fresh datastore of `newSchema`, rewriting them where columns were added, into the
 * pages and the non-unique indexes a chunk at a time, then builds each table's unique indexes (or row set) over all its
 * rows at once (store.ts bulkLoadRows). Yields after each chunk of `migrationChunkRows` rows and after each table's
 * unique indexes (the one step longer than a chunk: ~0.1-0.2 s per unique index at 1M rows) so a live database keeps
 * serving calls meanwhile (their commits are replayed by `finishMigration`). Throws MigrationError (e.g. duplicates for
 * a new unique constraint). Reads `old` only through the snapshot and for error messages.
 */
export function* buildMigration(old: Datastore, newSchema: DatabaseSchema, snapshot: Map<TableId, Uint8Array>): Generator<void, MigrationBuild> {
  const oldSchema = old.schema();
  const newByName = new Map(newSchema.tables.map((t) => [t.name, t]));
  const next = new Datastore(newSchema);
  const copied = new Map<TableId, { tableId: TableId; suffix: Uint8Array | undefined }>();
  for (const [oldId, packed] of snapshot) {
    const ot = oldSchema.tables.find((t) => t.tableId === oldId)!;
    const nt = newByName.get(ot.name)!;
    const suffix = addedColumnsSuffix(ot, nt);
    // Rows a chunk at a time; then the unique indexes over all of them at once (store.ts bulkLoadRows).
    for (const rows = new PackedRows(packed, suffix); !rows.done;) {
      loadOrFail(old, ot, nt, oldSchema.typespace, () => next.bulkLoadRows(nt.tableId, rows.chunk(), suffix !== undefined));
      yield;
    }
    loadOrFail(old, ot, nt, oldSchema.typespace, () => next.finishBulkLoad(nt.tableId));
    yield;
    copied.set(oldId, { tableId: nt.tableId, suffix });
  }
  return { next, copied };
}

/**
 * Completes a migration at the swap (inside the call queue): checks the live rows (removed tables must be empty,
 * added sequences must not collide), replays onto the copied tables the transactions committed since the snapshot,
 * takes over every other table without copying, and carries sequence positions over. The old datastore is not
 * modified. Throws MigrationError saying which table and constraint failed.
 */
export function finishMigration(old: Datastore, newSchema: DatabaseSchema, build: MigrationBuild, since: readonly TxData[]): Datastore {
  const oldSchema = old.schema();
  const kept = new Set(newSchema.tables.map((t) => t.name));
  for (const t of oldSchema.tables) {
    if (kept.has(t.name) || t.isEvent) continue;
    if (old.rowCount(t.tableId) > 0) {
      throw new MigrationError(`Cannot remove table \`${t.name}\`: table contains data. Clear the table's rows ` +
        '(e.g. via a reducer) before removing it from your schema.');
    }
  }
  const { next, copied } = build;
  for (const tx of since) {
    const tables: TableChanges[] = [];
    for (const ch of tx.tables) {
      const c = copied.get(ch.tableId);
      if (c === undefined) continue;
      const fix = (rows: Uint8Array[]) => (c.suffix === undefined ? rows : rows.map((r) => concat(r, c.suffix!)));
      tables.push({ tableId: c.tableId, tableName: ch.tableName, inserts: fix(ch.inserts), deletes: fix(ch.deletes) });
    }
    if (tables.length === 0) continue;
    try {
      next.applyTxData({ tables });
    } catch (e) {
      const t = oldSchema.tables.find((x) => x.tableId === tx.tables[0].tableId);
      const nt = newSchema.tables.find((x) => x.name === t?.name);
      if (t !== undefined && nt !== undefined) checkAddedUniques(old, t, nt, oldSchema.typespace);
      throw new MigrationError(`Cannot migrate rows written during the update: ${(e as Error).message}`);
    }
  }
  const oldByName = new Map(oldSchema.tables.map((t) => [t.name, t]));
  const sequences = old.sequenceState();
  for (const nt of newSchema.tables) {
    const ot = oldByName.get(nt.name);
    if (ot === undefined || ot.isEvent || nt.isEvent) continue;
    checkAddedSequences(old, ot, nt, oldSchema.typespace);
    if (!copied.has(ot.tableId)) {
      // The rows are byte-for-byte valid in the new table and every index exists already: take them over.
      next.adoptRows(nt.tableId, old, ot.tableId, retypedColumns(ot, nt, oldSchema.typespace, newSchema.typespace));
    }
    for (const s of nt.sequences) {
      const os = ot.sequences.find((q) => q.column === s.column);
      const at = os === undefined ? undefined : sequences.get(os.name);
      if (at !== undefined && os !== undefined && sameSequence(os, s)) next.setSequenceNext(nt.tableId, s.column, at);
    }
  }
  return next;
}

/** The whole migration at once, synchronously (commit-log replay, tests): snapshot, build, finish. */
export function migrateDatastore(old: Datastore, newSchema: DatabaseSchema): Datastore {
  const steps = buildMigration(old, newSchema, snapshotForMigration(old, newSchema));
  let r = steps.next();
  while (r.done !== true) r = steps.next();
  return finishMigration(old, newSchema, r.value, []);
}

/** A table must be copied when rows change shape or the new table has an index the old one cannot lend. */
function needsCopy(ot: TableSchema, nt: TableSchema, ta: Typespace, tb: Typespace): boolean {
  if (nt.columns.length !== ot.columns.length) return true;
  const retyped = retypedColumns(ot, nt, ta, tb);
  return nt.indexes.some((ix) => ix.columns.some((c) => retyped.has(c)) || !ot.indexes.some((x) =>
    x.algorithm === ix.algorithm && x.unique === ix.unique && x.columns.join() === ix.columns.join()));
}

/** Runs one step of loading table `nt` (buildMigration); a failure becomes a MigrationError naming its cause. */
function loadOrFail(old: Datastore, ot: TableSchema, nt: TableSchema, ts: Typespace, load: () => void): void {
  try {
    load();
  } catch (e) {
    checkAddedUniques(old, ot, nt, ts); // the precise message (duplicate groups), when that is the cause
    throw new MigrationError(`Cannot migrate table \`${nt.name}\`: ${(e as Error).message}`);
  }
}

/** Columns whose type changed compatibly (e.g. an enum gained variants): indexes over them are rebuilt. */
function retypedColumns(ot: TableSchema, nt: TableSchema, ta: Typespace, tb: Typespace): Set<number> {
  const out = new Set<number>();
  ot.columns.forEach((c, i) => { if (compareTypes(c.type, nt.columns[i].type, ta, tb) !== 'same') out.add(i); });
  return out;
}

/** BSATN of a product is its fields in order, so appending the defaults' bytes rewrites a row. */
function addedColumnsSuffix(ot: TableSchema, nt: TableSchema): Uint8Array | undefined {
  if (nt.columns.length === ot.columns.length) return undefined;
  const parts: Uint8Array[] = [];
  for (let i = ot.columns.length; i < nt.columns.length; i++) {
    const d = nt.defaultValues.get(i);
    if (d === undefined) throw new MigrationError(`Adding a column ${nt.columns[i].name} to table ${nt.name} requires a default value annotation`);
    parts.push(d);
  }
  return parts.reduce((a, b) => concat(a, b), new Uint8Array(0));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Upstream's precheck: an added sequence may not already have values in its range. */
function checkAddedSequences(old: Datastore, ot: TableSchema, nt: TableSchema, ts: Typespace): void {
  const added = nt.sequences.filter((s) => {
    const o = ot.sequences.find((q) => q.column === s.column);
    return o === undefined || !sameSequence(o, s);
  });
  if (added.length === 0) return;
  const codec = compileCodec({ tag: 'Product', value: ot.rowType }, ts);
  for (const row of old.scan(ot.tableId)) {
    const v = codec.decode(row) as unknown[];
    for (const s of added) {
      const x = BigInt(v[s.column] as bigint | number);
      if (x >= s.min && x <= s.max) {
        throw new MigrationError(`Precheck failed: added sequence ${s.name} already has values in range ` +
          `(table \`${nt.name}\`, column ${nt.columns[s.column].name} = ${x})`);
      }
    }
  }
}

/** Counts duplicate groups for every added unique constraint, so the error says how bad it is. */
function checkAddedUniques(old: Datastore, ot: TableSchema, nt: TableSchema, ts: Typespace): void {
  const oldKeys = new Set(ot.uniqueConstraints.map((u) => u.columns.join()));
  const added = nt.uniqueConstraints.filter((u) => !oldKeys.has(u.columns.join()) && u.columns.every((c) => c < ot.columns.length));
  if (added.length === 0) return;
  const rows = old.scan(ot.tableId);
  const codecs = ot.columns.map((c) => compileCodec(c.type, ts));
  for (const u of added) {
    const seen = new Map<string, number>();
    for (const row of rows) {
      const r = new BsatnReader(row);
      let key = '';
      for (let c = 0; c < ot.columns.length; c++) {
        const start = r.offset;
        codecs[c].skip(r);
        if (u.columns.includes(c)) key += `${c}:${Buffer.from(row.subarray(start, r.offset)).toString('hex')};`;
      }
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    let groups = 0;
    for (const n of seen.values()) if (n > 1) groups++;
    if (groups > 0) {
      throw new MigrationError(`Cannot add unique constraint ${u.name} on table \`${nt.name}\` ` +
        `[${cols(nt, u.columns)}]: ${groups} duplicate group(s) found.`);
    }
  }
}
