// angular-ts: init → npm install → publish → `npm run build` (scripts/env.mjs copies .env.local into the environment
// file, then `ng build` to dist/) → the built page in headless Chromium (the people-page checks in helpers.ts).
import { after, test } from 'node:test';
import { cleanupTempDirs } from '../harness.js';
import { checkViteTemplate } from './helpers.js';

after(() => cleanupTempDirs());

test('angular-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  await checkViteTemplate('angular-ts');
});
