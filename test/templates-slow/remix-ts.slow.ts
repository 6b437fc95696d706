// remix-ts: init → npm install → publish → `npm run build` (react-router typegen, tsc, react-router build with
// VITE_SPACETIMEDB_* from .env.local inlined) → `npm start` (react-router-serve, server rendering) → the page in
// headless Chromium after hydration (the people-page checks in helpers.ts).
import { after, test } from 'node:test';
import { cleanupTempDirs } from '../harness.js';
import { checkServerTemplate } from './helpers.js';

after(() => cleanupTempDirs());

test('remix-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  await checkServerTemplate('remix-ts',
    (port) => ({ command: 'npm', args: ['start'], env: { PORT: String(port), HOST: '127.0.0.1' } }), /\[react-router-serve\]/);
});
