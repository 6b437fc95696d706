// Lossless JSON parsing for server responses: integer literals beyond 2^53 become bigint, so u64..i256 values print
// exactly (Rust's serde_json emits them as bare numbers). Owns nothing else. May call: nothing.

const safeIntegerDigitsMax = 15;

export type LosslessJson = null | boolean | number | bigint | string | LosslessJson[] | { [key: string]: LosslessJson };

export class JsonSyntaxError extends Error {}

/** Parses `text` like JSON.parse, except that integers which a double cannot hold exactly come back as bigint. */
export function parseJsonLossless(text: string): LosslessJson {
  let pos = 0;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`invalid JSON at offset ${pos}: ${what}`);
  };
  const skipWs = (): void => {
    while (pos < text.length && (text[pos] === ' ' || text[pos] === '\n' || text[pos] === '\r' || text[pos] === '\t')) {
      pos++;
    }
  };
  const value = (): LosslessJson => {
    skipWs();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: { [key: string]: LosslessJson } = {};
      skipWs();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        skipWs();
        if (text[pos] !== '"') fail('expected a string key');
        const key = string();
        skipWs();
        if (text[pos++] !== ':') fail('expected ":"');
        obj[key] = value();
        skipWs();
        const sep = text[pos++];
        if (sep === '}') return obj;
        if (sep !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      pos++;
      const arr: LosslessJson[] = [];
      skipWs();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        skipWs();
        const sep = text[pos++];
        if (sep === ']') return arr;
        if (sep !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', pos)) return (pos += 4), true;
    if (text.startsWith('false', pos)) return (pos += 5), false;
    if (text.startsWith('null', pos)) return (pos += 4), null;
    return number();
  };
  const string = (): string => {
    const start = pos;
    pos++;
    while (pos < text.length && text[pos] !== '"') pos += text[pos] === '\\' ? 2 : 1;
    if (pos >= text.length) fail('unterminated string');
    pos++;
    return JSON.parse(text.slice(start, pos)) as string;
  };
  const number = (): number | bigint => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(pos, pos + 400));
    if (match === null) return fail('unexpected character');
    pos += match[0].length;
    const isInteger = match[2] === undefined && match[3] === undefined;
    if (isInteger && match[1].length > safeIntegerDigitsMax) {
      const big = BigInt(match[0]);
      if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) return big;
    }
    return Number(match[0]);
  };
  const result = value();
  skipWs();
  if (pos !== text.length) fail('trailing characters');
  return result;
}
