// chat-react-ts: init → npm install → publish → `npm run build` → two browsers in headless Chromium (separate
// localStorage, so separate identities): a name and a message from one appear in the other, a message sent by the
// CLI shows up live, and a reload keeps the identity (the name stays).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { cleanupTempDirs, runCli } from '../harness.js';
import { createInstalledProject, launchChromium, npmRun, pageTimeoutMs, serveStatic } from './helpers.js';

after(() => cleanupTempDirs());

test('chat-react-ts: messages between two browsers and from the CLI, a reload keeps the identity', async () => {
  const project = await createInstalledProject('chat-react-ts');
  try {
    npmRun(project.projectDir, 'build');
    const { url, server } = await serveStatic(path.join(project.projectDir, 'dist'));
    const browser = await launchChromium();
    try {
      const pageA = await (await browser.newContext()).newPage();
      const pageB = await (await browser.newContext()).newPage();
      for (const page of [pageA, pageB]) {
        await page.goto(url);
        await page.getByText('Profile').waitFor({ timeout: pageTimeoutMs });
      }
      await pageA.getByLabel('name').fill('Ada');
      await pageA.getByRole('button', { name: 'Set name' }).click();
      await pageA.getByTestId('my-name').getByText('Ada').waitFor({ timeout: pageTimeoutMs });
      await pageA.getByLabel('message').fill('hello from A');
      await pageA.getByRole('button', { name: 'Send' }).click();
      const seen = pageB.getByTestId('messages').locator('li', { hasText: 'hello from A' });
      await seen.waitFor({ timeout: pageTimeoutMs });
      assert.match(await seen.innerText(), /^Ada: hello from A$/);

      const call = await runCli(['call', 'send_message', 'from the CLI'], { configPath: project.configPath, cwd: project.projectDir });
      assert.equal(call.code, 0, call.stderr);
      await pageA.getByTestId('messages').locator('li', { hasText: 'from the CLI' }).waitFor({ timeout: pageTimeoutMs });

      await pageA.reload();
      await pageA.getByTestId('my-name').getByText('Ada').waitFor({ timeout: pageTimeoutMs });
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    await project.srv.stop();
  }
});
