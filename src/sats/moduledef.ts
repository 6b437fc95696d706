// sats/moduledef.ts — RawModuleDef V10 (what `__describe_module__` returns): TS shapes, decoding, SATS-JSON.
//
// Owns: the interfaces (field names exactly as node_modules/spacetimedb/src/lib/autogen/types.ts: camelCase;
// `Option<T>` → `T | undefined`; enums → `{ tag: 'Variant', value: payload }`, and a unit variant → `{ tag }` only,
// like the primitive AlgebraicTypes in types.ts), and our own meta-type of RawModuleDefV10 as an AlgebraicType, built
// from snake_case field lists (the Rust names, which upstream's /schema JSON uses). Decoding = the compiled codec of that
// meta-type + a mapping to camelCase objects; JSON = valueToJson of the same value.
// Only V10 (tag 2) is supported; V8 (0) and V9 (1) are rejected with a SatsError. JSON version 9 is not implemented.
// May call: sats/types.ts, sats/codec.ts, sats/json.ts, sats/names.ts.

import { compileCodec, type Codec } from './codec.js';
import { valueToJson } from './json.js';
import { toCamelCase } from './names.js';
import { hasOptionVariants, SatsError, type AlgebraicType, type ProductType, type SumValue, type Typespace, type Value } from './types.js';

// ---------------------------------------------------------------------------------------------------------------
// Interfaces

export interface RawModuleDefV10 { sections: RawModuleDefV10Section[] }

export type RawModuleDefV10Section =
  | { tag: 'Typespace'; value: Typespace }
  | { tag: 'Types'; value: RawTypeDefV10[] }
  | { tag: 'Tables'; value: RawTableDefV10[] }
  | { tag: 'Reducers'; value: RawReducerDefV10[] }
  | { tag: 'Procedures'; value: RawProcedureDefV10[] }
  | { tag: 'Views'; value: RawViewDefV10[] }
  | { tag: 'Schedules'; value: RawScheduleDefV10[] }
  | { tag: 'LifeCycleReducers'; value: RawLifeCycleReducerDefV10[] }
  | { tag: 'RowLevelSecurity'; value: RawRowLevelSecurityDefV9[] }
  | { tag: 'CaseConversionPolicy'; value: CaseConversionPolicy }
  | { tag: 'ExplicitNames'; value: ExplicitNames }
  | { tag: 'HttpHandlers'; value: RawHttpHandlerDefV10[] }
  | { tag: 'HttpRoutes'; value: RawHttpRouteDefV10[] }
  | { tag: 'ViewPrimaryKeys'; value: RawViewPrimaryKeyDefV10[] }
  | { tag: 'Submodules'; value: RawSubmoduleV10[] };

export interface RawScopedTypeNameV10 { scope: string[]; sourceName: string }
export interface RawTypeDefV10 { sourceName: RawScopedTypeNameV10; ty: number; customOrdering: boolean }
export type TableType = { tag: 'System' } | { tag: 'User' };
export type TableAccess = { tag: 'Public' } | { tag: 'Private' };
export type RawIndexAlgorithm =
  | { tag: 'BTree'; value: number[] } | { tag: 'Hash'; value: number[] } | { tag: 'Direct'; value: number };
export interface RawIndexDefV10 { sourceName: string | undefined; accessorName: string | undefined; algorithm: RawIndexAlgorithm }
export interface RawUniqueConstraintDataV9 { columns: number[] }
export type RawConstraintDataV9 = { tag: 'Unique'; value: RawUniqueConstraintDataV9 };
export interface RawConstraintDefV10 { sourceName: string | undefined; data: RawConstraintDataV9 }
export interface RawSequenceDefV10 {
  sourceName: string | undefined; column: number;
  start: bigint | undefined; minValue: bigint | undefined; maxValue: bigint | undefined; increment: bigint;
}
export interface RawColumnDefaultValueV10 { colId: number; value: Uint8Array }
export interface RawTableDefV10 {
  sourceName: string; productTypeRef: number; primaryKey: number[];
  indexes: RawIndexDefV10[]; constraints: RawConstraintDefV10[]; sequences: RawSequenceDefV10[];
  tableType: TableType; tableAccess: TableAccess; defaultValues: RawColumnDefaultValueV10[]; isEvent: boolean;
}
export type FunctionVisibility = { tag: 'Private' } | { tag: 'ClientCallable' };
export interface RawReducerDefV10 {
  sourceName: string; params: ProductType; visibility: FunctionVisibility;
  okReturnType: AlgebraicType; errReturnType: AlgebraicType;
}
export interface RawProcedureDefV10 { sourceName: string; params: ProductType; returnType: AlgebraicType; visibility: FunctionVisibility }
export interface RawViewDefV10 {
  sourceName: string; index: number; isPublic: boolean; isAnonymous: boolean; params: ProductType; returnType: AlgebraicType;
}
export interface RawScheduleDefV10 { sourceName: string | undefined; tableName: string; scheduleAtCol: number; functionName: string }
export type Lifecycle = { tag: 'Init' } | { tag: 'OnConnect' } | { tag: 'OnDisconnect' };
export interface RawLifeCycleReducerDefV10 { lifecycleSpec: Lifecycle; functionName: string }
export interface RawRowLevelSecurityDefV9 { sql: string }
export type CaseConversionPolicy = { tag: 'None' } | { tag: 'SnakeCase' };
export interface NameMapping { sourceName: string; canonicalName: string }
export type ExplicitNameEntry =
  | { tag: 'Table'; value: NameMapping } | { tag: 'Function'; value: NameMapping } | { tag: 'Index'; value: NameMapping };
export interface ExplicitNames { entries: ExplicitNameEntry[] }
export interface RawHttpHandlerDefV10 { sourceName: string }
export type HttpMethod =
  | { tag: 'Get' } | { tag: 'Head' } | { tag: 'Post' } | { tag: 'Put' } | { tag: 'Delete' } | { tag: 'Connect' }
  | { tag: 'Options' } | { tag: 'Trace' } | { tag: 'Patch' } | { tag: 'Extension'; value: string };
export type MethodOrAny = { tag: 'Any' } | { tag: 'Method'; value: HttpMethod };
export interface RawHttpRouteDefV10 { handlerFunction: string; method: MethodOrAny; path: string }
export interface RawViewPrimaryKeyDefV10 { viewSourceName: string; columns: string[] }
export interface RawSubmoduleV10 { namespace: string; module: RawModuleDefV10 }

/** All sections of one module, each defaulted when absent (the first occurrence wins if one repeats). */
export interface ModuleDefSections {
  typespace: Typespace; types: RawTypeDefV10[]; tables: RawTableDefV10[]; reducers: RawReducerDefV10[];
  procedures: RawProcedureDefV10[]; views: RawViewDefV10[]; schedules: RawScheduleDefV10[];
  lifeCycleReducers: RawLifeCycleReducerDefV10[]; rowLevelSecurity: RawRowLevelSecurityDefV9[];
  caseConversionPolicy: CaseConversionPolicy; explicitNames: ExplicitNames; httpHandlers: RawHttpHandlerDefV10[];
  httpRoutes: RawHttpRouteDefV10[]; viewPrimaryKeys: RawViewPrimaryKeyDefV10[]; submodules: RawSubmoduleV10[];
}

export function moduleDefSections(def: RawModuleDefV10): ModuleDefSections {
  const out: ModuleDefSections = {
    typespace: { types: [] }, types: [], tables: [], reducers: [], procedures: [], views: [], schedules: [],
    lifeCycleReducers: [], rowLevelSecurity: [], caseConversionPolicy: { tag: 'SnakeCase' },
    explicitNames: { entries: [] }, httpHandlers: [], httpRoutes: [], viewPrimaryKeys: [], submodules: [],
  };
  const seen = new Set<string>();
  for (const s of def.sections) {
    if (seen.has(s.tag)) continue;
    seen.add(s.tag);
    const key = (s.tag[0].toLowerCase() + s.tag.slice(1)) as keyof ModuleDefSections;
    (out as unknown as Record<string, unknown>)[key] = s.value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Meta-types (our own description of the Rust types, built from their field lists)

const unit: AlgebraicType = { tag: 'Product', value: { elements: [] } };
const str: AlgebraicType = { tag: 'String' };
const bool: AlgebraicType = { tag: 'Bool' };
const u16: AlgebraicType = { tag: 'U16' };
const u32: AlgebraicType = { tag: 'U32' };
const i128: AlgebraicType = { tag: 'I128' };
const ref = (i: number): AlgebraicType => ({ tag: 'Ref', value: i });
const arr = (t: AlgebraicType): AlgebraicType => ({ tag: 'Array', value: t });
const product = (fields: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Product', value: { elements: fields.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const sum = (variants: [string, AlgebraicType][]): AlgebraicType =>
  ({ tag: 'Sum', value: { variants: variants.map(([name, algebraicType]) => ({ name, algebraicType })) } });
const opt = (t: AlgebraicType): AlgebraicType => sum([['some', t], ['none', unit]]);
const units = (...names: string[]): AlgebraicType => sum(names.map((n) => [n, unit]));

// Recursive types live in the meta typespace.
const algebraicTypeRef = ref(0);
const sumTypeRef = ref(1);
const productTypeRef = ref(2);
const moduleDefV10Ref = ref(3);

const primitiveNames = ['String', 'Bool', 'I8', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'I128', 'U128',
  'I256', 'U256', 'F32', 'F64'];
const metaAlgebraicType = sum([['Ref', u32], ['Sum', sumTypeRef], ['Product', productTypeRef], ['Array', algebraicTypeRef],
  ...primitiveNames.map((n): [string, AlgebraicType] => [n, unit])]);
const namedElement = product([['name', opt(str)], ['algebraic_type', algebraicTypeRef]]);
const metaSumType = product([['variants', arr(namedElement)]]);
const metaProductType = product([['elements', arr(namedElement)]]);

const httpMethod = sum([...['Get', 'Head', 'Post', 'Put', 'Delete', 'Connect', 'Options', 'Trace', 'Patch']
  .map((n): [string, AlgebraicType] => [n, unit]), ['Extension', str]]);
const nameMapping = product([['source_name', str], ['canonical_name', str]]);

const section = sum([
  ['Typespace', product([['types', arr(algebraicTypeRef)]])],
  ['Types', arr(product([
    ['source_name', product([['scope', arr(str)], ['source_name', str]])], ['ty', u32], ['custom_ordering', bool]]))],
  ['Tables', arr(product([
    ['source_name', str], ['product_type_ref', u32], ['primary_key', arr(u16)],
    ['indexes', arr(product([['source_name', opt(str)], ['accessor_name', opt(str)],
      ['algorithm', sum([['BTree', arr(u16)], ['Hash', arr(u16)], ['Direct', u16]])]]))],
    ['constraints', arr(product([['source_name', opt(str)], ['data', sum([['Unique', product([['columns', arr(u16)]])]])]]))],
    ['sequences', arr(product([['source_name', opt(str)], ['column', u16], ['start', opt(i128)],
      ['min_value', opt(i128)], ['max_value', opt(i128)], ['increment', i128]]))],
    ['table_type', units('System', 'User')], ['table_access', units('Public', 'Private')],
    ['default_values', arr(product([['col_id', u16], ['value', arr({ tag: 'U8' })]]))], ['is_event', bool]]))],
  ['Reducers', arr(product([['source_name', str], ['params', productTypeRef],
    ['visibility', units('Private', 'ClientCallable')], ['ok_return_type', algebraicTypeRef],
    ['err_return_type', algebraicTypeRef]]))],
  ['Procedures', arr(product([['source_name', str], ['params', productTypeRef], ['return_type', algebraicTypeRef],
    ['visibility', units('Private', 'ClientCallable')]]))],
  ['Views', arr(product([['source_name', str], ['index', u32], ['is_public', bool], ['is_anonymous', bool],
    ['params', productTypeRef], ['return_type', algebraicTypeRef]]))],
  ['Schedules', arr(product([['source_name', opt(str)], ['table_name', str], ['schedule_at_col', u16], ['function_name', str]]))],
  ['LifeCycleReducers', arr(product([['lifecycle_spec', units('Init', 'OnConnect', 'OnDisconnect')], ['function_name', str]]))],
  ['RowLevelSecurity', arr(product([['sql', str]]))],
  ['CaseConversionPolicy', units('None', 'SnakeCase')],
  ['ExplicitNames', product([['entries', arr(sum([['Table', nameMapping], ['Function', nameMapping], ['Index', nameMapping]]))]])],
  ['HttpHandlers', arr(product([['source_name', str]]))],
  ['HttpRoutes', arr(product([['handler_function', str], ['method', sum([['Any', unit], ['Method', httpMethod]])], ['path', str]]))],
  ['ViewPrimaryKeys', arr(product([['view_source_name', str], ['columns', arr(str)]]))],
  ['Submodules', arr(product([['namespace', str], ['module', moduleDefV10Ref]]))],
]);
const metaModuleDefV10 = product([['sections', arr(section)]]);

/** The meta typespace: Ref 0 AlgebraicType, 1 SumType, 2 ProductType, 3 RawModuleDefV10. */
export const moduleDefTypespace: Typespace = { types: [metaAlgebraicType, metaSumType, metaProductType, metaModuleDefV10] };
/** RawModuleDefV10 as an AlgebraicType (a Ref into moduleDefTypespace). */
export const rawModuleDefV10Type: AlgebraicType = moduleDefV10Ref;

const rawModuleDefVersionNames = ['V8BackCompat', 'V9', 'V10'];
const rawModuleDefV10Tag = 2;
let v10Codec: Codec | undefined;

/** Decodes `__describe_module__` output (the RawModuleDef enum). Only V10 is accepted. */
export function decodeRawModuleDef(bytes: Uint8Array): RawModuleDefV10 {
  return toObject(rawModuleDefV10Type, decodeV10Value(bytes)) as RawModuleDefV10;
}

/** The module definition as upstream's `/schema?version=10` JSON (snake_case fields, SATS-JSON values). */
export function rawModuleDefToJson(bytes: Uint8Array, version: 9 | 10): unknown {
  if (version !== 10) throw new SatsError(`module definition JSON version ${version} is not supported (only 10)`);
  return valueToJson(rawModuleDefV10Type, decodeV10Value(bytes), moduleDefTypespace);
}

/** JSON of an already decoded module def. */
export function moduleDefToJson(def: RawModuleDefV10): unknown {
  return valueToJson(rawModuleDefV10Type, fromObject(rawModuleDefV10Type, def), moduleDefTypespace);
}

/** Encodes a module def back to RawModuleDef::V10 BSATN (used by tests and by hosts that rewrite definitions). */
export function encodeRawModuleDef(def: RawModuleDefV10): Uint8Array {
  v10Codec ??= compileCodec(rawModuleDefV10Type, moduleDefTypespace);
  const body = v10Codec.encode(fromObject(rawModuleDefV10Type, def));
  const out = new Uint8Array(body.length + 1);
  out[0] = rawModuleDefV10Tag;
  out.set(body, 1);
  return out;
}

function decodeV10Value(bytes: Uint8Array): Value {
  if (bytes.length === 0) throw new SatsError('empty module definition', 0);
  const tag = bytes[0];
  if (tag !== rawModuleDefV10Tag) {
    const name = rawModuleDefVersionNames[tag];
    if (name === undefined) throw new SatsError(`invalid RawModuleDef tag ${tag}`, 0);
    throw new SatsError(`module definition version ${name} is not supported; only V10 is (rebuild the module with spacetimedb 2.x)`, 0);
  }
  v10Codec ??= compileCodec(rawModuleDefV10Type, moduleDefTypespace);
  try {
    return v10Codec.decode(bytes.subarray(1));
  } catch (e) {
    if (e instanceof SatsError) {
      // Offsets inside are relative to the V10 body; report them against the whole input.
      const off = e.offsetBytes === undefined ? undefined : e.offsetBytes + 1;
      const base = e.offsetBytes === undefined ? e.message : e.message.replace(/ \(at byte \d+\)$/, '');
      throw new SatsError(`invalid module definition: ${base}`, off);
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Positional Value ⇄ camelCase objects, driven by the meta-type (the module def is decoded once per publish).

const camelCache = new Map<string, string>();
function camel(name: string): string {
  let c = camelCache.get(name);
  if (c === undefined) {
    c = toCamelCase(name);
    camelCache.set(name, c);
  }
  return c;
}

function resolveMeta(t: AlgebraicType): AlgebraicType {
  while (t.tag === 'Ref') t = moduleDefTypespace.types[t.value];
  return t;
}

function isUnitType(t: AlgebraicType): boolean {
  return t.tag === 'Product' && t.value.elements.length === 0;
}

function toObject(type: AlgebraicType, v: Value): unknown {
  const t = resolveMeta(type);
  switch (t.tag) {
    case 'Product': {
      const vals = v as Value[];
      const obj: Record<string, unknown> = {};
      t.value.elements.forEach((e, i) => { obj[camel(e.name!)] = toObject(e.algebraicType, vals[i]); });
      return obj;
    }
    case 'Sum': {
      const s = v as SumValue;
      if (hasOptionVariants(t.value.variants)) return s.tag === 0 ? toObject(t.value.variants[0].algebraicType, s.value) : undefined;
      const variant = t.value.variants[s.tag];
      if (isUnitType(resolveMeta(variant.algebraicType))) return { tag: variant.name };
      return { tag: variant.name, value: toObject(variant.algebraicType, s.value) };
    }
    case 'Array':
      return v instanceof Uint8Array ? v : (v as Value[]).map((x) => toObject(t.value, x));
    default:
      return v;
  }
}

function fromObject(type: AlgebraicType, o: unknown): Value {
  const t = resolveMeta(type);
  switch (t.tag) {
    case 'Product': {
      const obj = o as Record<string, unknown>;
      return t.value.elements.map((e) => fromObject(e.algebraicType, obj[camel(e.name!)]));
    }
    case 'Sum': {
      if (hasOptionVariants(t.value.variants)) {
        return o === undefined ? { tag: 1, value: [] } : { tag: 0, value: fromObject(t.value.variants[0].algebraicType, o) };
      }
      const { tag, value } = o as { tag: string; value?: unknown };
      const index = t.value.variants.findIndex((x) => x.name === tag);
      if (index < 0) throw new SatsError(`unknown variant ${tag}`);
      const variant = t.value.variants[index];
      return { tag: index, value: isUnitType(resolveMeta(variant.algebraicType)) ? [] : fromObject(variant.algebraicType, value) };
    }
    case 'Array':
      return o instanceof Uint8Array ? o : (o as unknown[]).map((x) => fromObject(t.value, x));
    default:
      return o as Value;
  }
}
