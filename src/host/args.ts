// host/args.ts — the arguments of a reducer or procedure call, as a client sends them: BSATN checked against the
// parameters without building values, or SATS-JSON (HTTP /call) turned into the positional product value. Failures
// are BadArgumentsError naming the function and, for JSON, the argument.
// Owns: the one check of call arguments (both encodings). May call: sats (bsatn, json, codec, types), host/errors,
// limits.

import { BsatnReader } from '../sats/bsatn.js';
import type { Codec } from '../sats/codec.js';
import { valueFromJson } from '../sats/json.js';
import type { AlgebraicType, ProductType, Typespace, Value } from '../sats/types.js';
import { BadArgumentsError, messageOf } from './errors.js';
import { argsDecodedObjectsMax } from '../limits.js';

/** What argument handling needs of a reducer or procedure (ReducerInfo and ProcedureInfo both are one). */
export interface CallableParams {
  name: string;
  params: ProductType;
  paramsType: AlgebraicType;
  argsCodec: Codec;
  typespace: Typespace;
}

export type CallableKind = 'reducer' | 'procedure';

/** `expectEnd`'s label per kind, built once rather than on every call. */
const argumentsLabel: Record<CallableKind, string> = { reducer: 'reducer arguments', procedure: 'procedure arguments' };

/** BSATN arguments are well-formed (lengths, tags, UTF-8) and nothing trails them. */
export function checkArgs(fn: CallableParams, args: Uint8Array, kind: CallableKind): void {
  if (args.length === fn.argsCodec.anyBytesWidth) return;      // numbers only: any bytes of this length are valid
  try {
    const reader = new BsatnReader(args);
    fn.argsCodec.skip(reader);
    reader.expectEnd(argumentsLabel[kind]);
    if (reader.decodedObjects > argsDecodedObjectsMax) {
      throw new Error(`the arguments hold ${reader.decodedObjects} array elements that decode to objects, over ` +
        `argsDecodedObjectsMax = ${argsDecodedObjectsMax} (what the module decodes must fit its memory)`);
    }
  } catch (err) {
    throw new BadArgumentsError(fn.name, messageOf(err), kind);
  }
}

/** SATS-JSON arguments (an array in parameter order, or an object by name) → the positional product value. */
export function argsFromJson(fn: CallableParams, json: unknown, kind: CallableKind): Value {
  const elems = fn.params.elements;
  if (Array.isArray(json)) {
    if (json.length !== elems.length) throw new BadArgumentsError(fn.name, `expected ${elems.length} arguments, got ${json.length}`, kind);
    return elems.map((e, i) => {
      try {
        return valueFromJson(e.algebraicType, json[i], fn.typespace);
      } catch (err) {
        throw new BadArgumentsError(fn.name, `argument ${i}${e.name ? ` (${e.name})` : ''}: ${messageOf(err)}`, kind);
      }
    });
  }
  if (json !== null && typeof json === 'object') {
    try {
      return valueFromJson(fn.paramsType, json, fn.typespace);
    } catch (err) {
      throw new BadArgumentsError(fn.name, messageOf(err), kind);
    }
  }
  throw new BadArgumentsError(fn.name, 'arguments must be a JSON array or object', kind);
}
