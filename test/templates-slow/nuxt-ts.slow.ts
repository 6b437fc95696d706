// nuxt-ts: init → npm install (runs `nuxt prepare`) → publish → `nuxt build` (VITE_SPACETIMEDB_* from .env.local are
// inlined) → the Nitro server (`npm start`) → the page in headless Chromium (the people-page checks in helpers.ts).
import { after, test } from 'node:test';
import { cleanupTempDirs } from '../harness.js';
import { checkServerTemplate } from './helpers.js';

after(() => cleanupTempDirs());

test('nuxt-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  await checkServerTemplate('nuxt-ts',
    (port) => ({ command: 'npm', args: ['start'], env: { PORT: String(port), HOST: '127.0.0.1' } }), /Listening on/);
});
