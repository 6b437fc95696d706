// sats/names.ts — case conversion that reproduces Rust `convert_case` 0.6 `to_case` (Snake, Pascal, Camel).
//
// Owns: splitting identifiers into words and re-joining them. Canonical names of tables, columns, functions and types
// are derived with these (host-abi.md §4.3) and clients depend on them byte for byte (e.g. `oneU8` → `one_u_8`).
// Word boundaries (the crate's defaults): `_`, `-` and space are delimiters (dropped); a split also goes before a
// character when the pair (previous, current) is lower→Upper, Upper→digit, digit→Upper, digit→lower or lower→digit,
// and before the middle of an Upper,Upper,lower triple (acronyms: `ABc` → `A|Bc`). Empty words are dropped.
// Characters count as upper/lower only when they have case (digits and symbols have neither); digits are ASCII only.
// May call: nothing.

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
