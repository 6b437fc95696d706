// host/program.ts — turns a published bundle (the text `spacetime publish` uploads) into code Node 20's V8 can run.
//
// Owns: the UTF-8 check, the esbuild lowering of `using` declarations (host-abi §2.4: the official library contains
// them and V8 11.3 cannot parse them) and a content-hash cache of the result.
// May call: esbuild, node:crypto, host/errors.

import { createHash } from 'node:crypto';
import { transform } from 'esbuild';
import { PublishError } from './errors.js';

export interface PreparedProgram {
  /** sha256 of the original bundle text, hex. */
  hash: string;
  /** Lowered ES module source with an inline (composed) source map. */
  code: string;
}

/** Prepared programs kept in memory, by content hash. Bundles are ~0.3–1 MB each; republishing reuses the entry. */
const programCacheEntriesMax = 32;
const cache = new Map<string, PreparedProgram>();

export async function prepareProgram(bundle: string | Uint8Array): Promise<PreparedProgram> {
  let text: string;
  if (typeof bundle === 'string') text = bundle;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bundle);
    } catch {
      throw new PublishError('the module program is not valid UTF-8');
    }
  }
  const hash = createHash('sha256').update(text).digest('hex');
  const hit = cache.get(hash);
  if (hit !== undefined) return hit;
  let code: string;
  try {
    const out = await transform(text, {
      format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: 'spacetimedb_module', logLevel: 'silent',
    });
    code = out.code;
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { line: number; column: number } }[] }).errors;
    const first = errors?.[0];
    const where = first?.location ? ` at line ${first.location.line}, column ${first.location.column}` : '';
    throw new PublishError(`the module program is not valid JavaScript: ${first?.text ?? String(err)}${where}`);
  }
  const program = { hash, code };
  if (cache.size >= programCacheEntriesMax) cache.delete(cache.keys().next().value as string);
  cache.set(hash, program);
  return program;
}
