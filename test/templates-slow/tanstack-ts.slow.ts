// tanstack-ts: init → npm install → publish → `npm run build` (vite build with VITE_SPACETIMEDB_* from .env.local
// inlined, then tsc) → `npm start` (vite preview serves the built Start server: server-rendered shell) → the page in
// headless Chromium after hydration, its list a TanStack Query kept live by the subscription (helpers.ts checks).
import { after, test } from 'node:test';
import { cleanupTempDirs } from '../harness.js';
import { checkServerTemplate } from './helpers.js';

after(() => cleanupTempDirs());

test('tanstack-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  await checkServerTemplate('tanstack-ts',
    (port) => ({ command: 'npm', args: ['start', '--', '--port', String(port), '--host', '127.0.0.1', '--strictPort'] }),
    /Local:/);
});
