/** Amounts are whole cents in a u64; the page shows and reads dollars. */
const centsMax = (1n << 64n) - 1n;

export function formatCents(cents: bigint): string {
  return `$${(cents / 100n).toLocaleString('en-US')}.${(cents % 100n).toString().padStart(2, '0')}`;
}

/** "12", "12.5" or "12.50" → 1250n; anything else (or zero, or too large) → undefined. */
export function parseDollars(text: string): bigint | undefined {
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (m === null) return undefined;
  const cents = BigInt(m[1]) * 100n + BigInt((m[2] ?? '').padEnd(2, '0'));
  return cents > 0n && cents <= centsMax ? cents : undefined;
}
