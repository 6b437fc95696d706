// cli/call.ts — what `spacetime call` needs to know about a database's functions before it sends a call
// (cli-and-publish.md §1 `call`; upstream crates/cli/src/subcommands/call.rs).
//
// Owns: the list of callable functions read from the `/schema` JSON, including submodules (dot-qualified names such as
// `lib.lib_insert`, each function keeping the typespace of the module that owns it, so its parameter Refs resolve
// there and not in the root's typespace); name lookup (canonical or accessor form); the argument coercions (String,
// Identity); the error texts for an unknown function (similar-name hint, lists of existing functions) and for invalid
// arguments (the signature, types written as upstream writes them); upstream's name-similarity rule (rustc's
// `find_best_match_for_name`).
// The HTTP part of the command (auth, resolving the database, sending the call) stays in cli/main.ts.
// May call: sats (codec, json, moduledef, names, types), cli/errors, cli/json.

import { compileCodec, resolveType } from '../sats/codec.js';
import { valueFromJson } from '../sats/json.js';
import {
  decodeRawModuleDef, moduleDefSections, moduleDefTypespace, rawModuleDefV10Type, type RawModuleDefV10,
} from '../sats/moduledef.js';
import { toSnakeCase } from '../sats/names.js';
import { hasOptionVariants, specialProductFieldNames, type AlgebraicType, type ProductType, type Typespace } from '../sats/types.js';
import { CliError } from './errors.js';
import { parseJsonLossless, type LosslessJson } from './json.js';

/** At most this many names per kind in "Here are some existing reducers:" (upstream CALL_PRINT_LIMIT). */
const functionListMax = 10;
/** The `RawModuleDef` enum tag of V10, which `decodeRawModuleDef` expects before the body. */
const rawModuleDefV10Tag = 2;
/** Nesting bound for writing a signature type; only a recursive type reaches it. */
const typeDepthMax = 16;

export type FunctionKind = 'reducer' | 'procedure';

/** One reducer or procedure of the database, root or submodule. */
export interface CallableFunction {
  /** Canonical (wire) name; submodule functions are prefixed `ns.` (nested: `a.b.`). */
  name: string;
  /** Accessor (source) name with the same prefix, e.g. `lib.libInsert`; the server accepts it too. */
  sourceName: string;
  kind: FunctionKind;
  /** init / client_connected / client_disconnected: not listed in hints, and the server refuses to call them. */
  lifecycle: boolean;
  params: ProductType;
  /** The typespace of the module that owns the function: its params' Refs point into it. */
  typespace: Typespace;
}

/** `"x"` or `{"some": "x"}` (how SATS-JSON writes an `Option<String>`), else undefined. */
export function optionString(value: LosslessJson | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && typeof value.some === 'string') return value.some;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// The schema

/** Every reducer and procedure of a `/schema?version=10` (or legacy 9) document, root first, then submodules. */
export function callableFunctions(schema: LosslessJson): CallableFunction[] {
  const out: CallableFunction[] = [];
  collectFunctions(moduleDefFromJson(schema), '', out);
  return out;
}

/**
 * SATS-JSON of a RawModuleDefV10 → the typed definition, decoded strictly as upstream's CLI does. It goes through
 * BSATN because sats/moduledef.ts exposes the typed view only as a BSATN decoder (one implementation of it).
 */
function moduleDefFromJson(schema: LosslessJson): RawModuleDefV10 {
  const v10 = isObject(schema) && Array.isArray(schema.sections) ? schema : v9AsV10(schema);
  let body: Uint8Array;
  try {
    body = compileCodec(rawModuleDefV10Type, moduleDefTypespace).encode(valueFromJson(rawModuleDefV10Type, v10, moduleDefTypespace));
  } catch (error) {
    throw new CliError('the server returned a module definition this CLI cannot read', [(error as Error).message]);
  }
  const bytes = new Uint8Array(body.length + 1);
  bytes[0] = rawModuleDefV10Tag;
  bytes.set(body, 1);
  return decodeRawModuleDef(bytes);
}

function isObject(v: LosslessJson | undefined): v is { [key: string]: LosslessJson } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * A RawModuleDefV9 JSON document (servers without `version=10`) rewritten as a V10 one with just what calling needs:
 * the typespace, reducers, procedures and lifecycle roles. V9 names are already canonical.
 */
function v9AsV10(v9: LosslessJson): LosslessJson {
  if (!isObject(v9)) throw new CliError('the server returned a module definition this CLI cannot read', ['not a JSON object']);
  const list = (v: LosslessJson | undefined): { [key: string]: LosslessJson }[] => (Array.isArray(v) ? v.filter(isObject) : []);
  const unit = { Product: { elements: [] } };
  const lifecycles: LosslessJson[] = [];
  const reducers = list(v9.reducers).map((r) => {
    const role = isObject(r.lifecycle) && isObject(r.lifecycle.some) ? r.lifecycle.some : undefined;
    if (role !== undefined) lifecycles.push({ lifecycle_spec: role, function_name: r.name });
    return {
      source_name: r.name, params: r.params, visibility: { ClientCallable: [] }, ok_return_type: unit,
      err_return_type: { String: [] },
    };
  });
  const procedures = list(v9.procedures).map((p) => ({
    source_name: p.name, params: p.params, return_type: p.return_type, visibility: { ClientCallable: [] },
  }));
  return {
    sections: [
      { Typespace: v9.typespace ?? { types: [] } }, { Reducers: reducers }, { Procedures: procedures },
      { LifeCycleReducers: lifecycles }, { CaseConversionPolicy: { None: [] } },
    ],
  };
}

function collectFunctions(def: RawModuleDefV10, prefix: string, out: CallableFunction[]): void {
  const s = moduleDefSections(def);
  const snake = s.caseConversionPolicy.tag === 'SnakeCase';
  const explicit = new Map<string, string>();
  for (const e of s.explicitNames.entries) if (e.tag === 'Function') explicit.set(e.value.sourceName, e.value.canonicalName);
  const canonical = (source: string) => prefix + (explicit.get(source) ?? (snake ? toSnakeCase(source) : source));
  const lifecycle = new Set(s.lifeCycleReducers.map((l) => l.functionName));
  for (const r of s.reducers) {
    out.push({
      name: canonical(r.sourceName), sourceName: prefix + r.sourceName, kind: 'reducer',
      lifecycle: lifecycle.has(r.sourceName), params: r.params, typespace: s.typespace,
    });
  }
  for (const p of s.procedures) {
    out.push({
      name: canonical(p.sourceName), sourceName: prefix + p.sourceName, kind: 'procedure', lifecycle: false,
      params: p.params, typespace: s.typespace,
    });
  }
  for (const sub of s.submodules) collectFunctions(sub.module, `${prefix}${sub.namespace}.`, out);
}

/**
 * The function `name` denotes: a reducer before a procedure (as upstream looks them up), the canonical name before
 * the accessor form (`lib.lib_insert`, then `lib.libInsert`).
 */
export function findFunction(functions: readonly CallableFunction[], name: string): CallableFunction | undefined {
  for (const byName of [(f: CallableFunction) => f.name === name, (f: CallableFunction) => f.sourceName === name]) {
    const found = functions.find((f) => f.kind === 'reducer' && byName(f)) ?? functions.find((f) => f.kind === 'procedure' && byName(f));
    if (found !== undefined) return found;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments

/** Whether `type` (Refs followed in `typespace`) is the Identity product. */
function isIdentity(type: AlgebraicType, typespace: Typespace): boolean {
  return specialField(resolveType(type, typespace)) === specialProductFieldNames.identity;
}

/** A CLI argument that is not a JSON literal; the message names the argument. */
export class CallArgumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CallArgumentError';
  }
}

/**
 * The JSON array body for the call: each CLI argument is a JSON literal, except that a String parameter gets quotes
 * added unless the argument is already quoted, and an Identity parameter accepts hex (`c200…`, `0x…`, quoted or not).
 * The arguments are sent as written (not re-serialized), so wide integers keep every digit. Arguments beyond the
 * parameters are passed through for the server to refuse.
 */
export function callBody(def: CallableFunction, args: readonly string[]): string {
  const parts = args.map((raw, i) => {
    const param = def.params.elements[i];
    if (param !== undefined) {
      const type = resolveType(param.algebraicType, def.typespace);
      if (type.tag === 'String' && !(raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"'))) return JSON.stringify(raw);
      if (isIdentity(type, def.typespace)) {
        const hex = raw.replace(/^"|"$/g, '').replace(/^0x/, '');
        if (/^[0-9a-fA-F]{64}$/.test(hex)) return JSON.stringify({ [specialProductFieldNames.identity]: `0x${hex.toLowerCase()}` });
      }
    }
    try {
      parseJsonLossless(raw);
    } catch (error) {
      throw new CallArgumentError(`argument ${i}${param?.name === undefined ? '' : ` (${param.name})`}: ${(error as Error).message}`);
    }
    return raw;
  });
  return `[${parts.join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------------------------
// Error texts

/**
 * "Invalid arguments provided for …", the count line when `provided` differs from the parameter count, and the
 * signature. `typedName` is the name as the user wrote it (upstream prints that one).
 */
export function invalidArgumentsMessage(
  def: CallableFunction, typedName: string, database: string, identity: string, provided: number,
): string {
  let message = `Invalid arguments provided for ${def.kind} \`${typedName}\` for database \`${database}\` resolving to identity \`${identity}\`.`;
  const expected = def.params.elements.length;
  if (provided !== expected) message += `\n\n${expected} parameters were expected, but ${provided} were provided.`;
  message += `\n\nThe ${def.kind} has the following signature:\n\t${signature(def, typedName)}`;
  return message;
}

/** `name(param: type, …)`: parameter names in snake_case, types written against the owning module's typespace. */
export function signature(def: CallableFunction, name: string): string {
  const params = def.params.elements.map((e) => {
    const type = writeType(e.algebraicType, def.typespace, 0);
    return e.name === undefined ? type : `${toSnakeCase(e.name)}: ${type}`;
  });
  return `${name}(${params.join(', ')})`;
}

const primitiveSpelling: Partial<Record<AlgebraicType['tag'], string>> = {
  Bool: 'bool', I8: 'i8', U8: 'u8', I16: 'i16', U16: 'u16', I32: 'i32', U32: 'u32', I64: 'i64', U64: 'u64',
  I128: 'i128', U128: 'u128', I256: 'i256', U256: 'u256', F32: 'f32', F64: 'f64', String: 'String',
};

/** The single field name of a special product (Identity, ConnectionId, Timestamp, …), else undefined. */
function specialField(type: AlgebraicType): string | undefined {
  if (type.tag !== 'Product' || type.value.elements.length !== 1) return undefined;
  const name = type.value.elements[0].name;
  return name !== undefined && name.startsWith('__') && name.endsWith('__') ? name : undefined;
}

function isScheduleAt(type: AlgebraicType): boolean {
  if (type.tag !== 'Sum' || type.value.variants.length !== 2) return false;
  const [interval, time] = type.value.variants;
  return interval.name === 'Interval' && specialField(interval.algebraicType) === specialProductFieldNames.timeDuration &&
    time.name === 'Time' && specialField(time.algebraicType) === specialProductFieldNames.timestamp;
}

function isOption(type: AlgebraicType & { tag: 'Sum' }): boolean {
  const v = type.value.variants;
  return hasOptionVariants(v) && v[1].algebraicType.tag === 'Product' && v[1].algebraicType.value.elements.length === 0;
}

/**
 * A type as upstream's CLI writes it in signatures: `u32`, `String`, `Vec<T>`, `Option<T>`, `Identity`,
 * `ConnectionId`, `ScheduleAt`, `{ a: T, b: U }` for products, `enum { A: T }` for sums; Refs are written out.
 */
function writeType(type: AlgebraicType, typespace: Typespace, depth: number): string {
  if (depth > typeDepthMax) return '…';
  const field = specialField(type);
  if (field === specialProductFieldNames.identity) return 'Identity';
  if (field === specialProductFieldNames.connectionId) return 'ConnectionId';
  if (isScheduleAt(type)) return 'ScheduleAt';
  const braced = (members: { name: string | undefined; algebraicType: AlgebraicType }[]) => {
    const inner = members.map((m) => (m.name === undefined ? '' : `${m.name}: `) + writeType(m.algebraicType, typespace, depth + 1));
    return inner.length === 0 ? '{}' : `{ ${inner.join(', ')} }`;
  };
  switch (type.tag) {
    case 'Ref': {
      const target = typespace.types[type.value];
      return target === undefined ? `Ref(${type.value})` : writeType(target, typespace, depth + 1);
    }
    case 'Sum':
      return isOption(type)
        ? `Option<${writeType(type.value.variants[0].algebraicType, typespace, depth + 1)}>`
        : `enum ${braced(type.value.variants)}`;
    case 'Product': return braced(type.value.elements);
    case 'Array': return `Vec<${writeType(type.value, typespace, depth + 1)}>`;
    default: return primitiveSpelling[type.tag] ?? type.tag;
  }
}

/**
 * "No such reducer OR procedure …" followed by the closest callable name, or else the lists of existing reducers and
 * procedures (closest first, at most `functionListMax` each). Submodule functions appear under their dot-qualified
 * names; lifecycle reducers are left out.
 */
export function unknownFunctionMessage(
  name: string, database: string, identity: string, functions: readonly CallableFunction[],
): string {
  let message = `No such reducer OR procedure \`${name}\` for database \`${database}\` resolving to identity \`${identity}\`.`;
  const names = (kind: FunctionKind) => functions.filter((f) => f.kind === kind && !f.lifecycle).map((f) => f.name);
  const reducers = names('reducer');
  const procedures = names('procedure');
  const bestReducer = bestMatchForName(reducers, name);
  if (bestReducer !== undefined) return `${message}\n\nA reducer with a similar name exists: \`${bestReducer}\``;
  const bestProcedure = bestMatchForName(procedures, name);
  if (bestProcedure !== undefined) return `${message}\n\nA procedure with a similar name exists: \`${bestProcedure}\``;
  for (const [kind, list] of [['reducer', reducers], ['procedure', procedures]] as const) {
    if (list.length === 0) {
      message += `\n\nThe database has no ${kind}s.`;
      continue;
    }
    // A stable sort by distance: equally distant names keep their definition order.
    const ranked = list.map((n) => ({ n, d: editDistance(name, n, Infinity) ?? Infinity })).sort((a, b) => a.d - b.d);
    message += `\n\nHere are some existing ${kind}s:`;
    for (const { n } of ranked.slice(0, functionListMax)) message += `\n- ${n}`;
    if (list.length > functionListMax) {
      const hidden = list.length - functionListMax;
      message += `\n... (${hidden} ${kind}${hidden === 1 ? '' : 's'} not shown)`;
    }
  }
  return message;
}

// ---------------------------------------------------------------------------------------------------------------
// Name similarity (the rule rustc uses for "a similar name exists", which upstream's CLI adopted)

/**
 * Optimal-string-alignment distance (edits: insert, delete, substitute, swap two adjacent characters), or undefined
 * when it exceeds `limit`. Compares Unicode code points, case-sensitively.
 */
export function editDistance(x: string, y: string, limit: number): number | undefined {
  let a = [...x];
  let b = [...y];
  if (a.length < b.length) [a, b] = [b, a];
  const lengthGap = a.length - b.length;
  if (lengthGap > limit) return undefined;
  // A shared prefix and suffix cost nothing; dropping them keeps the table small.
  let start = 0;
  while (start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  a = a.slice(start, endA);
  b = b.slice(start, endB);
  if (b.length === 0) return lengthGap <= limit ? lengthGap : undefined;

  let beforePrevious: number[] = new Array<number>(b.length + 1).fill(Number.MAX_SAFE_INTEGER);
  let previous: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current: number[] = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        current[j] = Math.min(current[j], beforePrevious[j - 2] + 1);
      }
    }
    [beforePrevious, previous, current] = [previous, current, beforePrevious];
  }
  const distance = previous[b.length];
  return distance <= limit ? distance : undefined;
}

/**
 * The candidate `lookup` most likely meant: an exact match ignoring case; else the closest within a third of the
 * lookup's length (at least 1), later candidates winning only when strictly closer; else one with the same
 * `_`-separated words in another order.
 */
export function bestMatchForName(candidates: readonly string[], lookup: string): string | undefined {
  const upper = lookup.toUpperCase();
  const sameIgnoringCase = candidates.find((c) => c.toUpperCase() === upper);
  if (sameIgnoringCase !== undefined) return sameIgnoringCase;
  let limit = Math.floor(Math.max(Buffer.byteLength(lookup), 3) / 3);
  let best: string | undefined;
  for (const c of candidates) {
    const d = editDistance(lookup, c, limit);
    if (d === 0) return c;
    if (d !== undefined) {
      limit = d - 1;
      best = c;
    }
  }
  if (best !== undefined) return best;
  const words = (s: string) => s.split('_').sort().join('_');
  const lookupWords = words(lookup);
  let byWords: string | undefined;
  for (const c of candidates) if (words(c) === lookupWords) byWords = c;
  return byWords;
}
