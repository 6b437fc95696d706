// browser-ts: init → npm install → publish → `npm run build` → the built page in headless Chromium (see helpers.ts).
import { after, test } from 'node:test';
import { cleanupTempDirs } from '../harness.js';
import { checkViteTemplate } from './helpers.js';

after(() => cleanupTempDirs());

test('browser-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  await checkViteTemplate('browser-ts');
});
