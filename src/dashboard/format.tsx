// src/dashboard/format.tsx — SATS types (SATS-JSON, as /schema and /sql give them) and untyped row values as short
// text, the way the CLI prints them: identities as hex, timestamps as ISO time, options as the value or null.
// Owns: type and cell formatting. May call: nothing.

export type TypeJson = Record<string, any>;
export interface Typespace { types: TypeJson[] }
/** Names of the module's named types by typespace index (schema v9 `types`). */
export type TypeNames = Map<number, string>;

const special: Record<string, string> = {
  __identity__: 'Identity',
  __connection_id__: 'ConnectionId',
  __timestamp_micros_since_unix_epoch__: 'Timestamp',
  __time_duration_micros__: 'TimeDuration',
  __uuid__: 'Uuid',
};

function elementName(e: { name: { some?: string } | string | null | undefined }): string | undefined {
  return typeof e.name === 'string' ? e.name : e.name?.some;
}

function resolve(type: TypeJson, ts: Typespace): TypeJson {
  let t = type;
  for (let i = 0; i < 64 && t.Ref !== undefined; i++) t = ts.types[t.Ref as number] ?? {};
  return t;
}

function specialName(t: TypeJson): string | undefined {
  const elements = t.Product?.elements as { name: any }[] | undefined;
  if (elements?.length !== 1) return undefined;
  return special[elementName(elements[0]!) ?? ''];
}

function isOption(t: TypeJson): boolean {
  const v = t.Sum?.variants as { name: any }[] | undefined;
  return v?.length === 2 && elementName(v[0]!) === 'some' && elementName(v[1]!) === 'none';
}

export function typeText(type: TypeJson, ts: Typespace, names: TypeNames = new Map()): string {
  if (type.Ref !== undefined && names.has(type.Ref as number)) return names.get(type.Ref as number)!;
  const t = resolve(type, ts);
  const tag = Object.keys(t)[0] ?? '?';
  if (tag === 'Product') {
    const name = specialName(t);
    if (name !== undefined) return name;
    const elements = t.Product.elements as { name: any; algebraic_type: TypeJson }[];
    return `(${elements.map((e, i) => `${elementName(e) ?? i}: ${typeText(e.algebraic_type, ts, names)}`).join(', ')})`;
  }
  if (tag === 'Sum') {
    if (isOption(t)) return `Option<${typeText(t.Sum.variants[0].algebraic_type, ts, names)}>`;
    return (t.Sum.variants as { name: any }[]).map((v) => elementName(v)).join(' | ');
  }
  if (tag === 'Array') return `Array<${typeText(t.Array as TypeJson, ts, names)}>`;
  return tag.toLowerCase() === 'string' ? 'string' : tag.toLowerCase();
}

function hexOf(value: unknown, digits: number): string {
  const text = typeof value === 'string' ? value.replace(/^0x/, '') : typeof value === 'bigint' ? value.toString(16) : String(value);
  return text.padStart(digits, '0');
}

export function cellText(value: unknown, type: TypeJson | undefined, ts: Typespace): string {
  if (type === undefined) return plain(value);
  const t = resolve(type, ts);
  const name = specialName(t);
  const inner = Array.isArray(value) ? value[0] : value;
  if (name === 'Identity') return hexOf(inner, 64);
  if (name === 'ConnectionId') return hexOf(inner, 32);
  if (name === 'Timestamp') {
    const micros = BigInt(inner as number | bigint);
    const date = new Date(Number(micros / 1000n));
    return Number.isNaN(date.getTime()) ? String(micros) : date.toISOString();
  }
  if (name === 'TimeDuration') return `${String(inner)}µs`;
  if (t.Sum !== undefined && Array.isArray(value)) {
    const [tag, payload] = value as [number, unknown];
    const variant = t.Sum.variants[tag] as { name: any; algebraic_type: TypeJson } | undefined;
    if (isOption(t)) return tag === 0 ? cellText(payload, variant?.algebraic_type, ts) : 'null';
    const payloadText = Array.isArray(payload) && payload.length === 0 ? '' : `(${cellText(payload, variant?.algebraic_type, ts)})`;
    return `${elementName(variant ?? { name: null }) ?? tag}${payloadText}`;
  }
  if (t.Product !== undefined && Array.isArray(value)) {
    const elements = t.Product.elements as { algebraic_type: TypeJson }[];
    return `(${value.map((v, i) => cellText(v, elements[i]?.algebraic_type, ts)).join(', ')})`;
  }
  if (t.Array !== undefined && Array.isArray(value)) return `[${value.map((v) => cellText(v, t.Array as TypeJson, ts)).join(', ')}]`;
  return plain(value);
}

function plain(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'object') return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return String(value);
}

/** Bytes in the units the CLI prints. */
export function bytesText(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
