// money-exchange-react-ts: init → npm install → publish → `npm run build` → two browsers (separate localStorage, so
// two people with $100.00 each): both claim names, A sends $12.50 to B and both balances and B's history follow live,
// an overdraft is refused with the module's message and changes nothing, a name claimed by the CLI shows up live in
// the recipient list, and a reload keeps A's account.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { cleanupTempDirs, runCli } from '../harness.js';
import { createInstalledProject, launchChromium, npmRun, pageTimeoutMs, serveStatic } from './helpers.js';

after(() => cleanupTempDirs());

test('money-exchange-react-ts: names, a transfer between two browsers, an overdraft refused, a reload keeps the account', async () => {
  const project = await createInstalledProject('money-exchange-react-ts');
  try {
    npmRun(project.projectDir, 'build');
    const { url, server } = await serveStatic(path.join(project.projectDir, 'dist'));
    const browser = await launchChromium();
    try {
      const pageA = await (await browser.newContext()).newPage();
      const pageB = await (await browser.newContext()).newPage();
      const errors: string[] = [];
      for (const [page, name] of [[pageA, 'Ada'], [pageB, 'Bob']] as const) {
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(url);
        await page.getByTestId('balance').getByText('$100.00').waitFor({ timeout: pageTimeoutMs });
        await page.getByLabel('name').fill(name);
        await page.getByRole('button', { name: 'Set name' }).click();
        await page.getByTestId('my-name').getByText(name).waitFor({ timeout: pageTimeoutMs });
      }
      await pageA.getByLabel('recipient').locator('option', { hasText: 'Bob' }).waitFor({ state: 'attached', timeout: pageTimeoutMs });
      await pageA.getByLabel('recipient').selectOption({ label: 'Bob' });
      await pageA.getByLabel('amount').fill('12.50');
      await pageA.getByRole('button', { name: 'Send' }).click();
      await pageA.getByTestId('balance').getByText('$87.50').waitFor({ timeout: pageTimeoutMs });
      await pageB.getByTestId('balance').getByText('$112.50').waitFor({ timeout: pageTimeoutMs });
      await pageB.getByTestId('history').locator('li', { hasText: '+$12.50 from Ada' }).waitFor({ timeout: pageTimeoutMs });
      assert.deepEqual(await pageA.getByTestId('history').locator('li').allInnerTexts(), ['-$12.50 to Bob']);

      await pageA.getByLabel('amount').fill('1000');
      await pageA.getByRole('button', { name: 'Send' }).click();
      await pageA.getByTestId('error').getByText('Insufficient funds').waitFor({ timeout: pageTimeoutMs });
      assert.equal(await pageA.getByTestId('balance').innerText(), '$87.50');

      const call = await runCli(['call', 'set_name', 'Carol'], { configPath: project.configPath, cwd: project.projectDir });
      assert.equal(call.code, 0, call.stderr);
      await pageA.getByLabel('recipient').locator('option', { hasText: 'Carol' }).waitFor({ state: 'attached', timeout: pageTimeoutMs });

      await pageA.reload();
      await pageA.getByTestId('my-name').getByText('Ada').waitFor({ timeout: pageTimeoutMs });
      await pageA.getByTestId('balance').getByText('$87.50').waitFor({ timeout: pageTimeoutMs });
      assert.deepEqual(errors, [], 'no uncaught errors on the pages');
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    await project.srv.stop();
  }
});
