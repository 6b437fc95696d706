// sats/names.ts — case conversion that reproduces Rust `convert_case` 0.6 `to_case` (Snake, Pascal, Camel).
//
// Owns: splitting identifiers into words and re-joining them. Canonical names of tables, columns, functions and types
// are derived with these (host-abi.md §4.3) and clients depend on them byte for byte (e.g. `oneU8` → `one_u_8`).
// Word boundaries (the crate's defaults): `_`, `-` and space are delimiters (dropped); a split also goes before a
// character when the pair (previous, current) is lower→Upper, Upper→digit, digit→Upper, digit→lower or lower→digit,
// and before the middle of an Upper,Upper,lower triple (acronyms: `ABc` → `A|Bc`). Empty words are dropped.
// Characters count as upper/lower only when they have case (digits and symbols have neither); digits are ASCII only.
// Also owns upstream's typespace case conversion (`canonicalTypeNames`): the names inside module types as clients see
// them in SATS-JSON and SQL results.
// May call: sats/types.

import { specialProductFieldNameSet, type AlgebraicType, type Typespace } from './types.js';

/** Splits `s` into words with the crate's default boundaries. */
export function splitWords(s: string): string[] {
  const chars = Array.from(s); // code points; identifiers never need grapheme clusters
  const words: string[] = [];
  let word = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '_' || c === '-' || c === ' ') {
      words.push(word);
      word = '';
      continue;
    }
    if (i > 0 && (splitsPair(chars[i - 1], c) || (i + 1 < chars.length && isAcronymEnd(chars[i - 1], c, chars[i + 1])))) {
      words.push(word);
      word = c;
      continue;
    }
    word += c;
  }
  words.push(word);
  return words.filter((w) => w.length > 0);
}

export function toSnakeCase(s: string): string {
  return splitWords(s).map((w) => w.toLowerCase()).join('_');
}

export function toPascalCase(s: string): string {
  return splitWords(s).map(capitalize).join('');
}

export function toCamelCase(s: string): string {
  return splitWords(s).map((w, i) => (i === 0 ? w.toLowerCase() : capitalize(w))).join('');
}

function capitalize(w: string): string {
  const first = String.fromCodePoint(w.codePointAt(0)!);
  return first.toUpperCase() + w.slice(first.length).toLowerCase();
}

function splitsPair(a: string, b: string): boolean {
  return (isLower(a) && isUpper(b)) || (isUpper(a) && isDigit(b)) || (isDigit(a) && isUpper(b)) ||
    (isDigit(a) && isLower(b)) || (isLower(a) && isDigit(b));
}

function isAcronymEnd(a: string, b: string, c: string): boolean {
  return isUpper(a) && isUpper(b) && isLower(c);
}

function hasCase(c: string): boolean { return c.toUpperCase() !== c.toLowerCase(); }
function isUpper(c: string): boolean { return hasCase(c) && c === c.toUpperCase(); }
function isLower(c: string): boolean { return hasCase(c) && c === c.toLowerCase(); }
function isDigit(c: string): boolean { return c >= '0' && c <= '9'; }

/** Variant names of the special sums (Option, Result, ScheduleAt), which keep their names. */
const specialSumVariantNames = ['some,none', 'ok,err', 'Interval,Time'];

/**
 * Upstream's typespace case conversion under the SnakeCase policy (module validation): product field names become
 * snake_case and sum variant names camelCase, through products, sums and arrays, but not inside the special types
 * (Identity, ConnectionId, Timestamp, TimeDuration, Uuid; Option, Result, ScheduleAt). Refs are left as they are:
 * every typespace entry is converted on its own.
 */
export function canonicalTypeNames(type: AlgebraicType): AlgebraicType {
  switch (type.tag) {
    case 'Product': {
      const els = type.value.elements;
      if (els.length === 1 && els[0].name !== undefined && specialProductFieldNameSet.has(els[0].name)) return type;
      return { tag: 'Product', value: { elements: els.map((e) => ({
        name: e.name === undefined ? undefined : toSnakeCase(e.name), algebraicType: canonicalTypeNames(e.algebraicType),
      })) } };
    }
    case 'Sum': {
      const vs = type.value.variants;
      if (specialSumVariantNames.includes(vs.map((v) => v.name ?? '').join(','))) return type;
      return { tag: 'Sum', value: { variants: vs.map((v) => ({
        name: v.name === undefined ? undefined : toCamelCase(v.name), algebraicType: canonicalTypeNames(v.algebraicType),
      })) } };
    }
    case 'Array':
      return { tag: 'Array', value: canonicalTypeNames(type.value) };
    default:
      return type;
  }
}

/** A module's typespace as clients see it: converted when its case conversion policy is SnakeCase. */
export function clientTypespace(typespace: Typespace, snakeCase: boolean): Typespace {
  return snakeCase ? { types: typespace.types.map(canonicalTypeNames) } : typespace;
}
