// sats/text.ts — the text upstream prints for a few SATS scalars, shared by `spacetime sql` tables (cli/sqlformat)
// and PostgreSQL text cells (sql/pg-text).
//
// Owns: Rust's `{}` for floats (shortest round-trip digits, never exponent notation), chrono's RFC 3339 of a
// Timestamp, and a Uuid's hyphenated hex. Where the two callers differ from each other (the CLI quotes a Uuid and
// re-reads floats as upstream's CLI does), they wrap these.
// May call: nothing (pure).

/** The shortest decimal text that reads back as the same f32. */
export function shortestF32Text(value: number): string {
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === Math.fround(value)) return String(candidate);
  }
  return String(value);
}

/** Rust's `{}` for floats: shortest round-trip digits (of an f32 for F32), never exponent notation. */
export function rustFloatText(value: number, isF32: boolean): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (Object.is(value, -0)) return '-0';
  const text = isF32 ? shortestF32Text(value) : String(value);
  return /e/i.test(text) ? expandExponent(text) : text;
}

function expandExponent(text: string): string {
  const [mantissa, expText] = text.toLowerCase().split('e');
  const negative = mantissa.startsWith('-');
  const [intPart, fracPart = ''] = (negative ? mantissa.slice(1) : mantissa).split('.');
  const digits = intPart + fracPart;
  const pointAt = intPart.length + Number(expText);
  let out: string;
  if (pointAt <= 0) out = '0.' + '0'.repeat(-pointAt) + digits;
  else if (pointAt >= digits.length) out = digits + '0'.repeat(pointAt - digits.length);
  else out = digits.slice(0, pointAt) + '.' + digits.slice(pointAt);
  return (negative ? '-' : '') + out;
}

/** chrono's `to_rfc3339` of a UTC instant in µs: the fraction omitted when zero, else 3 or 6 digits. */
export function rfc3339Text(micros: bigint): string {
  const subMicros = Number(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const seconds = (micros - BigInt(subMicros)) / 1_000_000n;
  const date = new Date(Number(seconds) * 1000);
  // Outside JavaScript's Date range (±275k years) the instant has no calendar text here: show the raw count.
  if (Number.isNaN(date.getTime())) return `${micros}µs`;
  let fraction = '';
  if (subMicros !== 0) fraction = subMicros % 1000 === 0 ? '.' + String(subMicros / 1000).padStart(3, '0') : '.' + String(subMicros).padStart(6, '0');
  return date.toISOString().slice(0, 19) + fraction + '+00:00';
}

/** A u128 Uuid as 8-4-4-4-12 lower-case hex. */
export function uuidHexText(value: bigint): string {
  const hex = value.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
