// sats/special.ts — recognising the special types by shape: Identity, ConnectionId, Timestamp, TimeDuration, Uuid
// (single-field products named in types.ts specialProductFieldNames), ScheduleAt, Option and unit.
//
// Owns: shape tests only (SQL formatting, scheduling and JSON use them). Refs are followed through the typespace.
// May call: sats/types.ts, sats/codec.ts (resolveType).

import { resolveType } from './codec.js';
import { hasOptionVariants, specialProductFieldNames, type AlgebraicType, type Typespace } from './types.js';

export type SpecialKind = keyof typeof specialProductFieldNames;

const innerTagOf: Record<SpecialKind, string> = {
  identity: 'U256', connectionId: 'U128', timestamp: 'I64', timeDuration: 'I64', uuid: 'U128',
};
const kindByFieldName = new Map<string, SpecialKind>(
  (Object.keys(specialProductFieldNames) as SpecialKind[]).map((k) => [specialProductFieldNames[k], k]));

/** Which special product `type` is, or undefined. */
export function specialKind(type: AlgebraicType, typespace: Typespace): SpecialKind | undefined {
  const t = resolveType(type, typespace);
  if (t.tag !== 'Product' || t.value.elements.length !== 1) return undefined;
  const el = t.value.elements[0];
  const kind = el.name === undefined ? undefined : kindByFieldName.get(el.name);
  if (kind === undefined) return undefined;
  return resolveType(el.algebraicType, typespace).tag === innerTagOf[kind] ? kind : undefined;
}

/** ScheduleAt = sum { Interval(TimeDuration) = 0, Time(Timestamp) = 1 }. */
export function isScheduleAt(type: AlgebraicType, typespace: Typespace): boolean {
  const t = resolveType(type, typespace);
  if (t.tag !== 'Sum' || t.value.variants.length !== 2) return false;
  const [interval, time] = t.value.variants;
  return interval.name === 'Interval' && time.name === 'Time' &&
    specialKind(interval.algebraicType, typespace) === 'timeDuration' &&
    specialKind(time.algebraicType, typespace) === 'timestamp';
}

/** Option<T> = sum { some(T) = 0, none = 1 }; returns T, or undefined when `type` is not an option. */
export function optionInner(type: AlgebraicType, typespace: Typespace): AlgebraicType | undefined {
  const t = resolveType(type, typespace);
  if (t.tag !== 'Sum') return undefined;
  const variants = t.value.variants;
  if (!hasOptionVariants(variants) || !isUnit(variants[1].algebraicType, typespace)) return undefined;
  return variants[0].algebraicType;
}

export function isUnit(type: AlgebraicType, typespace: Typespace): boolean {
  const t = resolveType(type, typespace);
  return t.tag === 'Product' && t.value.elements.length === 0;
}

/** A sum whose variants all carry the unit payload (a "simple enum"; Direct indexes allow these). */
export function isSimpleEnum(type: AlgebraicType, typespace: Typespace): boolean {
  const t = resolveType(type, typespace);
  return t.tag === 'Sum' && t.value.variants.every((v) => isUnit(v.algebraicType, typespace));
}
