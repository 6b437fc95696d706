// test/host/bundle.ts — bundles a fixture module with esbuild the way `spacetime build` does (entry src/index.ts,
// ESM, platform browser, `spacetime:sys*` external, inline source map), cached per process. Test helper for test/host/*.
import { build } from 'esbuild';
import { join } from 'node:path';

const fixturesDir = new URL('../fixtures/modules/', import.meta.url).pathname;
const cache = new Map<string, Promise<string>>();

export function fixtureBundle(name: string): Promise<string> {
  let p = cache.get(name);
  if (p === undefined) {
    p = build({
      entryPoints: ['./src/index.ts'], absWorkingDir: join(fixturesDir, name), sourcemap: 'inline',
      bundle: true, format: 'esm', platform: 'browser', write: false, external: ['spacetime:sys*'],
      define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'silent', target: 'esnext',
    }).then((r) => r.outputFiles[0].text);
    cache.set(name, p);
  }
  return p;
}
