// host/reducers.ts — the reducer catalogue of a module: ids, names, parameter codecs, lifecycle and schedule roles.
//
// Owns: reducer ids as the library assigns them (host-abi §4.4: position in the root's Reducers section, then each
// submodule's, depth-first), canonical names (§4.3) and the lookup by canonical or source name.
// May call: sats (moduledef, codec, names, types).

import { compileCodec, type Codec } from '../sats/codec.js';
import { moduleDefSections, type ModuleDefSections, type RawModuleDefV10 } from '../sats/moduledef.js';
import { clientTypespace, toSnakeCase } from '../sats/names.js';
import type { AlgebraicType, ProductType, Typespace } from '../sats/types.js';

export type LifecycleRole = 'init' | 'onConnect' | 'onDisconnect';

export interface ReducerInfo {
  /** The id `__call_reducer__` expects. */
  id: number;
  /** Canonical (wire) name, e.g. `say_hello`, `lib.lib_insert`. */
  name: string;
  /** Name in the module source (the export name), prefixed `ns.` in submodules. */
  sourceName: string;
  params: ProductType;
  typespace: Typespace;
  /** Codec of the parameter product (the BSATN a client sends). */
  argsCodec: Codec;
  paramsType: AlgebraicType;
  lifecycle: LifecycleRole | undefined;
  /**
   * Only the database owner may call it (as upstream: declared private, or fired by a schedule table; another caller
   * gets "no such reducer").
   */
  ownerOnly: boolean;
}

/**
 * A module's canonical name for a function (reducer, procedure) from its source name: the explicit name when the module
 * gave one, else the source name under the module's case-conversion policy (host-abi §4.3).
 */
export function functionNamer(sections: ModuleDefSections): (sourceName: string) => string {
  const explicit = new Map<string, string>();
  for (const e of sections.explicitNames.entries) if (e.tag === 'Function') explicit.set(e.value.sourceName, e.value.canonicalName);
  const snake = sections.caseConversionPolicy.tag === 'SnakeCase';
  return (sourceName) => explicit.get(sourceName) ?? (snake ? toSnakeCase(sourceName) : sourceName);
}

export class ReducerCatalog {
  readonly all: ReducerInfo[] = [];
  private readonly byName = new Map<string, ReducerInfo>();
  readonly lifecycle: Partial<Record<LifecycleRole, ReducerInfo>> = {};

  constructor(def: RawModuleDefV10) {
    this.addModule(def, '');
  }

  get(name: string): ReducerInfo | undefined {
    return this.byName.get(name);
  }

  private addModule(def: RawModuleDefV10, prefix: string): void {
    const s = moduleDefSections(def);
    const canonicalName = functionNamer(s);
    // Argument and return values cross as SATS-JSON with the names clients see (upstream's converted typespace).
    const typespace = clientTypespace(s.typespace, s.caseConversionPolicy.tag === 'SnakeCase');
    const scheduled = new Set(s.schedules.map((x) => x.functionName));
    const roles = new Map<string, LifecycleRole>();
    for (const l of s.lifeCycleReducers) {
      roles.set(l.functionName, l.lifecycleSpec.tag === 'Init' ? 'init' : l.lifecycleSpec.tag === 'OnConnect' ? 'onConnect' : 'onDisconnect');
    }
    for (const r of s.reducers) {
      const canonical = canonicalName(r.sourceName);
      const paramsType: AlgebraicType = { tag: 'Product', value: r.params };
      const role = prefix === '' ? roles.get(r.sourceName) : undefined;
      const info: ReducerInfo = {
        id: this.all.length,
        name: prefix + canonical,
        sourceName: prefix + r.sourceName,
        params: r.params,
        typespace,
        argsCodec: compileCodec(paramsType, typespace),
        paramsType,
        lifecycle: role,
        ownerOnly: scheduled.has(r.sourceName) || r.visibility.tag === 'Private',
      };
      this.all.push(info);
      if (role !== undefined) this.lifecycle[role] = info;
      this.byName.set(info.name, info);
      if (!this.byName.has(info.sourceName)) this.byName.set(info.sourceName, info);
    }
    for (const sub of s.submodules) this.addModule(sub.module, `${prefix}${sub.namespace}.`);
  }
}
