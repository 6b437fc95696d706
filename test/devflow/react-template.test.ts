// `spacetime init --template chat-react-ts` in a clean temp dir → `npm install` from the registry → publish and
// generate through the real CLI and server → the template's own `npm run build` (tsc + vite build) → the built page in
// headless Chromium: a message typed in one browser appears in a second one (each has its own identity).
// Skips when the npm registry is unreachable; the browser part skips when playwright-core or Chromium is absent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { cleanupTempDirs, freePort, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { makeWorkDir } from './helpers.js';

const npmInstallTimeoutMs = 180_000;
const chromiumPath = '/usr/bin/chromium';
const pageTimeoutMs = 20_000;

let srv: TestServer;
let configPath: string;
let projectDir: string;
let installed = false;
let installError = '';

before(async () => {
  srv = await startTestServer();
  configPath = tempConfigPath();
  const add = await runCli(['server', 'add', '--url', srv.url, 'devsrv', '-d', '--no-fingerprint'], { configPath });
  assert.equal(add.code, 0, add.stderr);
  const work = makeWorkDir('stdb-react-');
  const init = await runCli(['init', 'chat', '--template', 'chat-react-ts', '--non-interactive'], { configPath, cwd: work });
  assert.equal(init.code, 0, init.stderr);
  projectDir = path.join(work, 'chat');
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: projectDir, encoding: 'utf8', timeout: npmInstallTimeoutMs });
  installed = npm.status === 0;
  installError = `${npm.stdout}${npm.stderr}${npm.error?.message ?? ''}`;
});

after(async () => {
  await srv?.stop();
  cleanupTempDirs();
});

test('chat-react-ts: publish, generate and the template build (tsc + vite build) with no edits', async (t) => {
  if (!installed) {
    t.skip(`npm install failed (registry unreachable?): ${installError.slice(0, 300)}`);
    return;
  }
  const pub = await runCli(['publish'], { configPath, cwd: projectDir });
  assert.equal(pub.code, 0, pub.stderr + pub.stdout);
  const gen = await runCli(['generate', '--lang', 'typescript', '--out-dir', 'src/module_bindings', '--module-path', 'spacetimedb'],
    { configPath, cwd: projectDir });
  assert.equal(gen.code, 0, gen.stderr);
  const build = spawnSync('npm', ['run', 'build'], { cwd: projectDir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(build.status, 0, build.stdout + build.stderr);
  assert.ok(existsSync(path.join(projectDir, 'dist', 'index.html')));
});

/** Serves the built client (dist/) on loopback. */
async function serveDist(dir: string): Promise<{ url: string; server: Server }> {
  const port = await freePort();
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
  const server = createServer((req, res) => {
    const rel = (req.url ?? '/').split('?')[0];
    const file = path.join(dir, rel === '/' ? 'index.html' : path.normalize(rel));
    if (!file.startsWith(dir) || !existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}/`, server };
}

test('chat-react-ts in headless Chromium: a message from one browser appears in another', async (t) => {
  if (!installed || !existsSync(path.join(projectDir, 'dist', 'index.html'))) { t.skip('the client was not built'); return; }
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    t.skip('playwright-core is not installed');
    return;
  }
  if (!existsSync(chromiumPath)) { t.skip(`${chromiumPath} is absent`); return; }
  const { url, server } = await serveDist(path.join(projectDir, 'dist'));
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
  try {
    // Two contexts: separate localStorage, so separate tokens and identities.
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
  } finally {
    await browser.close();
    server.close();
  }
});
