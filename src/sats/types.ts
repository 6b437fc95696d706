// sats/types.ts — the algebraic type system (SATS) shared by every layer.
//
// Owns: the shape of types (AlgebraicType) and of decoded values (Value). Pure data, and the one shape test every
// decoder needs (an Option's variants).
// May call: nothing. Everything else in src/ may import this file.
//
// Conventions fixed here (every layer relies on them):
// - A row crosses layer boundaries as its BSATN encoding (`Uint8Array`), never as a decoded object.
// - A decoded value (`Value`) is positional, not keyed by name:
//     Bool → boolean; I8..I32, U8..U32, F32, F64 → number; I64..I256, U64..U256 → bigint; String → string;
//     Array<U8> → Uint8Array; any other Array → Value[]; Product → Value[] (one entry per element, in order);
//     Sum → SumValue { tag, value } (a unit payload is the empty product []).
//   Special products keep this rule: an Identity is [u256 bigint], a Timestamp is [i64 bigint], and so on.

export type AlgebraicType =
  | { tag: 'Ref'; value: number }
  | { tag: 'Sum'; value: SumType }
  | { tag: 'Product'; value: ProductType }
  | { tag: 'Array'; value: AlgebraicType }
  | { tag: PrimitiveTag };

export type PrimitiveTag =
  | 'String' | 'Bool'
  | 'I8' | 'U8' | 'I16' | 'U16' | 'I32' | 'U32' | 'I64' | 'U64' | 'I128' | 'U128' | 'I256' | 'U256'
  | 'F32' | 'F64';

/** BSATN tag byte of each AlgebraicType variant, as the module library encodes types. */
export const algebraicTypeTags = [
  'Ref', 'Sum', 'Product', 'Array', 'String', 'Bool',
  'I8', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'I128', 'U128', 'I256', 'U256', 'F32', 'F64',
] as const;

export interface ProductType { elements: ProductTypeElement[] }
export interface ProductTypeElement { name: string | undefined; algebraicType: AlgebraicType }
export interface SumType { variants: SumTypeVariant[] }
export interface SumTypeVariant { name: string | undefined; algebraicType: AlgebraicType }

/**
 * Whether a sum's variants are an Option's by name: `some(T) = 0, none = 1`. The one test of it for codecs, SATS-JSON
 * and module definitions; special.optionInner also follows Refs and checks that `none` carries the unit.
 */
export function hasOptionVariants(variants: readonly SumTypeVariant[]): boolean {
  return variants.length === 2 && variants[0].name === 'some' && variants[1].name === 'none';
}

/** The module's typespace: `Ref(i)` points at `types[i]`. */
export interface Typespace { types: AlgebraicType[] }

export interface SumValue { tag: number; value: Value }
export type Value = boolean | number | bigint | string | Uint8Array | Value[] | SumValue;

/** Names of the single-field special products (their one element's name identifies them). */
export const specialProductFieldNames = {
  identity: '__identity__',
  connectionId: '__connection_id__',
  timestamp: '__timestamp_micros_since_unix_epoch__',
  timeDuration: '__time_duration_micros__',
  uuid: '__uuid__',
} as const;
/** The field names above as a set: a one-field product with one of them is a special type by name. */
export const specialProductFieldNameSet: ReadonlySet<string> = new Set(Object.values(specialProductFieldNames));

/** Error for malformed input (BSATN bytes, SATS-JSON, type mismatches). Says what was wrong and where. */
export class SatsError extends Error {
  constructor(message: string, readonly offsetBytes?: number) {
    super(offsetBytes === undefined ? message : `${message} (at byte ${offsetBytes})`);
    this.name = 'SatsError';
  }
}
