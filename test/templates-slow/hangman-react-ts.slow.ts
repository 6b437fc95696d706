// hangman-react-ts: init → npm install → publish (init starts round 1, a scheduled timer ends it) → `npm run build`
// → two browsers: both claim names; A misses once, then solves the word (read as the owner with SQL from the private
// `secret` table); B's standings show A solved live while B's own board stays blank (boards are private); a guess on
// a finished board is refused with the module's message; a reload keeps A's board; the timer reveals the word and
// starts the next round.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { cleanupTempDirs, runCli } from '../harness.js';
import { createInstalledProject, launchChromium, npmRun, pageTimeoutMs, serveStatic, type TemplateProject } from './helpers.js';

after(() => cleanupTempDirs());

const roundCycleMs = 70_000; // the module's 60 s round + 10 s results

/** The current round's word, from the private `secret` table (the owner's SQL reads private tables). */
async function currentWord(project: TemplateProject): Promise<string> {
  const sql = await runCli(['sql', 'SELECT * FROM secret'], { configPath: project.configPath, cwd: project.projectDir });
  assert.equal(sql.code, 0, sql.stderr);
  const rows = [...sql.stdout.matchAll(/(\d+)\s*\|\s*"([A-Z]+)"/g)].map((m) => ({ round: Number(m[1]), word: m[2] }));
  assert.ok(rows.length > 0, sql.stdout);
  return rows.sort((a, b) => b.round - a.round)[0].word;
}

/** Waits for a round with at least `needMs` left (a round may be near its end by the time the page is up). */
async function roundWithTimeLeft(page: Page, needMs: number): Promise<void> {
  const deadline = Date.now() + roundCycleMs + pageTimeoutMs;
  while (Date.now() < deadline) {
    const left = page.getByTestId('time-left');
    if (await left.count() > 0 && Number.parseInt(await left.innerText(), 10) * 1000 >= needMs) return;
    await page.waitForTimeout(500);
  }
  throw new Error('no round with enough time left');
}

async function guess(page: Page, letter: string): Promise<void> {
  await page.getByLabel('letter').fill(letter);
  await page.getByRole('button', { name: 'Guess' }).click();
  await page.getByTestId('guesses').getByText(letter, { exact: false }).waitFor({ timeout: pageTimeoutMs });
}

test('hangman-react-ts: private boards, live standings, a finished board refused, reload, the timer ends the round', async () => {
  const project = await createInstalledProject('hangman-react-ts');
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
        await page.getByTestId('status').getByText('Connected').waitFor({ timeout: pageTimeoutMs });
        await page.getByLabel('name').fill(name);
        await page.getByRole('button', { name: 'Set name' }).click();
        await page.getByTestId('my-name').getByText(name).waitFor({ timeout: pageTimeoutMs });
      }
      await roundWithTimeLeft(pageA, 30_000);
      const word = await currentWord(project);
      const blank = '_'.repeat(word.length);
      assert.equal(await pageA.getByTestId('mask').innerText(), blank);

      const miss = [...'ZQXJKVWYFBGHPM'].find((c) => !word.includes(c))!;
      await guess(pageA, miss);
      assert.equal(await pageA.getByTestId('misses').innerText(), '1');
      for (const letter of new Set(word)) await guess(pageA, letter);
      await pageA.getByTestId('mask').getByText(word, { exact: true }).waitFor({ timeout: pageTimeoutMs });

      await pageB.getByTestId('standings').locator('li', { hasText: `Ada: ${word.length} found, 1 missed, solved` })
        .waitFor({ timeout: pageTimeoutMs });
      assert.equal(await pageB.getByTestId('mask').innerText(), blank, "B's board does not show A's letters");

      await pageA.getByLabel('letter').fill(miss === 'Z' ? 'Q' : 'Z');
      await pageA.getByRole('button', { name: 'Guess' }).click();
      await pageA.getByTestId('error').getByText('Your board for this round is finished').waitFor({ timeout: pageTimeoutMs });

      await pageA.reload();
      await pageA.getByTestId('mask').getByText(word, { exact: true }).waitFor({ timeout: pageTimeoutMs });

      // The scheduled timer ends the round (the word is revealed to everyone), then starts the next one.
      await pageB.getByTestId('revealed').getByText(word, { exact: true }).waitFor({ timeout: roundCycleMs });
      await pageB.getByTestId('time-left').waitFor({ timeout: 10_000 + pageTimeoutMs });
      assert.notEqual(await pageB.getByRole('heading', { name: /^Round / }).innerText(), 'Round 1');
      assert.deepEqual(errors, [], 'no uncaught errors on the pages');
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    await project.srv.stop();
  }
});
