// src/dashboard/build.mjs — bundles the dashboard (preact + uPlot + our .tsx) with esbuild into dist/dashboard/, the
// static folder server/routes/dashboard.ts serves. Runs at `npm run build`; nothing is fetched at run time.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const outDir = fileURLToPath(new URL('../../dist/dashboard/', import.meta.url));
mkdirSync(outDir, { recursive: true });
await build({
  entryPoints: { app: `${here}app.tsx` },
  outdir: outDir,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  logLevel: 'warning',
  legalComments: 'eof',
});
copyFileSync(`${here}index.html`, `${outDir}index.html`);
