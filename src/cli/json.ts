// Lossless JSON parsing for server responses: integer literals beyond 2^53 become bigint, so u64..i256 values print
// exactly (Rust's serde_json emits them as bare numbers). Owns only the CLI's typed view of it; the parsing itself is
// sats/json.ts parseJson (one implementation). May call: sats/json.ts.

import { parseJson } from '../sats/json.js';

export type LosslessJson = null | boolean | number | bigint | string | LosslessJson[] | { [key: string]: LosslessJson };

export class JsonSyntaxError extends Error {}

/** Parses `text` like JSON.parse, except that integers which a double cannot hold exactly come back as bigint. */
export function parseJsonLossless(text: string): LosslessJson {
  try {
    return parseJson(text) as LosslessJson;
  } catch (e) {
    throw new JsonSyntaxError(`invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}
