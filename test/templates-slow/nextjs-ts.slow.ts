// nextjs-ts: init → npm install → publish → `next build` (NEXT_PUBLIC_* from .env.local are inlined) → `next start`
// → the page in headless Chromium (the people-page checks in helpers.ts).
import { after, test } from 'node:test';
import { cleanupTempDirs, freePort } from '../harness.js';
import { createInstalledProject, drivePeoplePage, launchChromium, npmRun, startInProject } from './helpers.js';

after(() => cleanupTempDirs());

test('nextjs-ts: the page connects, Add calls the reducer, a CLI row shows up live, a reload keeps the identity', async () => {
  const project = await createInstalledProject('nextjs-ts');
  try {
    npmRun(project.projectDir, 'build');
    const port = await freePort();
    const next = startInProject(project.projectDir, 'npx', ['next', 'start', '-p', String(port), '-H', '127.0.0.1'],
      { NEXT_TELEMETRY_DISABLED: '1' });
    const browser = await launchChromium();
    try {
      await next.waitFor(/Ready|started server|Local:/, 60_000);
      await drivePeoplePage(browser, `http://127.0.0.1:${port}/`, project);
    } finally {
      await browser.close();
      await next.stop();
    }
  } finally {
    await project.srv.stop();
  }
});
