// astro-ts: init → npm install → publish → `npm run build` (astro check, then a static build with PUBLIC_SPACETIMEDB_*
// from .env.local inlined) → dist/ served, the React island in headless Chromium (the people-page checks in helpers.ts).
import { after, test } from 'node:test';
import { cleanupTempDirs } from '../harness.js';
import { checkViteTemplate } from './helpers.js';

after(() => cleanupTempDirs());

test('astro-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  await checkViteTemplate('astro-ts');
});
