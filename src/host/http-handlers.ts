// host/http-handlers.ts — module HTTP routes (host-abi §6.3): which root handler serves a method + path.
//
// Owns: the route table built from the root module's HttpRoutes / HttpHandlers sections (handler id = index in the
// root's HttpHandlers; submodule handlers are reached by delegation inside the module), exact path matching and
// `Any` methods. May call: sats/moduledef.

import { moduleDefSections, type HttpMethod, type RawModuleDefV10 } from '../sats/moduledef.js';

export interface HttpRoute {
  /** HTTP method in upper case, or undefined for `Any`. */
  method: string | undefined;
  path: string;
  handlerId: number;
  handlerName: string;
}

export class HttpRouteTable {
  readonly routes: HttpRoute[] = [];

  constructor(def: RawModuleDefV10) {
    const s = moduleDefSections(def);
    const ids = new Map<string, number>();
    s.httpHandlers.forEach((h, i) => ids.set(h.sourceName, i));
    for (const r of s.httpRoutes) {
      const handlerId = ids.get(r.handlerFunction);
      if (handlerId === undefined) continue;            // a route to a submodule handler: not dispatched directly
      this.routes.push({
        method: r.method.tag === 'Any' ? undefined : methodText(r.method.value),
        path: r.path,
        handlerId,
        handlerName: r.handlerFunction,
      });
    }
  }

  /** The route serving `method` on `path`; `pathMatched` tells a 405 from a 404 when there is none. */
  match(method: string, path: string): { route: HttpRoute | undefined; pathMatched: boolean } {
    let pathMatched = false;
    const m = method.toUpperCase();
    for (const r of this.routes) {
      if (r.path !== path) continue;
      pathMatched = true;
      if (r.method === undefined || r.method === m) return { route: r, pathMatched };
    }
    return { route: undefined, pathMatched };
  }
}

function methodText(m: HttpMethod): string {
  const v = m as { tag: string; value?: unknown };
  return v.tag === 'Extension' ? String(v.value) : v.tag.toUpperCase();
}
