// The slow template suite (`npm run test:templates`, not part of `npm test`): each template is created with
// `spacetime init --template X`, installed with `npm install` from the registry, published to a real server, and its
// client run as a user would — Node clients as processes, web clients built and driven in headless Chromium.
// Files here are named *.slow.ts so `npm test`'s glob (test/*/*.test.ts) never picks them up.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { freePort, runCli, startTestServer, tempConfigPath, type TestServer } from '../harness.js';
import { makeWorkDir } from '../devflow/helpers.js';

export const npmInstallTimeoutMs = 300_000;
export const buildTimeoutMs = 240_000;
export const pageTimeoutMs = 30_000;
export const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

export interface TemplateProject {
  srv: TestServer;
  configPath: string;
  projectDir: string;
  database: string;
}

/** init → npm install → publish (database and server from the project's spacetime.json). */
export async function createInstalledProject(template: string): Promise<TemplateProject> {
  const srv = await startTestServer();
  try {
    return await initInstallPublish(template, srv);
  } catch (e) {
    await srv.stop(); // the caller's finally never sees a server it was not given
    throw e;
  }
}

async function initInstallPublish(template: string, srv: TestServer): Promise<TemplateProject> {
  const configPath = tempConfigPath();
  const add = await runCli(['server', 'add', '--url', srv.url, 'devsrv', '-d', '--no-fingerprint'], { configPath });
  assert.equal(add.code, 0, add.stderr);
  const work = makeWorkDir(`stdb-${template}-`);
  const init = await runCli(['init', 'my-app', '--template', template, '--non-interactive'], { configPath, cwd: work });
  assert.equal(init.code, 0, init.stderr + init.stdout);
  const projectDir = path.join(work, 'my-app');
  const database = (JSON.parse(readFileSync(path.join(projectDir, 'spacetime.local.json'), 'utf8')) as { database: string }).database;
  const started = Date.now();
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: projectDir, encoding: 'utf8', timeout: npmInstallTimeoutMs });
  assert.equal(npm.status, 0, `npm install failed for ${template}:\n${npm.stdout}${npm.stderr}${npm.error?.message ?? ''}`);
  process.stdout.write(`# ${template}: npm install took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  const pub = await runCli(['publish'], { configPath, cwd: projectDir });
  assert.equal(pub.code, 0, pub.stderr + pub.stdout);
  assert.match(pub.stdout, new RegExp(`Created new database with name: ${database}`));
  return { srv, configPath, projectDir, database };
}

/** `npm run <script>` in the project; fails the test with its output. */
export function npmRun(projectDir: string, script: string): void {
  const run = spawnSync('npm', ['run', script], { cwd: projectDir, encoding: 'utf8', timeout: buildTimeoutMs });
  assert.equal(run.status, 0, `npm run ${script}:\n${run.stdout}${run.stderr}`);
}

/** A child process whose combined output can be waited on. */
export class Output {
  text = '';
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.text += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.text += d.toString()));
  }

  async waitFor(re: RegExp, ms = pageTimeoutMs): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const m = re.exec(this.text);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before ${re}:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${re}:\n${this.text}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.pid === undefined) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    process.kill(-this.child.pid, 'SIGTERM'); // the process group: npm and what it started
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (this.child.exitCode === null) process.kill(-this.child.pid, 'SIGKILL');
  }
}

export function startInProject(projectDir: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Output {
  return new Output(spawn(command, args, { cwd: projectDir, env: { ...process.env, ...env }, detached: true,
    stdio: ['pipe', 'pipe', 'pipe'] }));
}

/** Serves a built client directory (Vite's dist/) on loopback. */
export async function serveStatic(dir: string): Promise<{ url: string; server: Server }> {
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

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium`);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

/**
 * The people-page contract every person template's page keeps (browser, react, vue, svelte, solid, next, angular,
 * nuxt, astro, remix, tanstack): status
 * "Connected", the identity, a Name field with an Add button, and the list. Checks: the page connects, Add calls the
 * reducer, a row the CLI adds shows up live, and a reload keeps the identity (the token is in localStorage).
 */
export async function drivePeoplePage(browser: Browser, url: string, project: TemplateProject): Promise<void> {
  const page: Page = await (await browser.newContext()).newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.getByTestId('status').getByText('Connected').waitFor({ timeout: pageTimeoutMs });
  const identity = await page.getByTestId('identity').innerText();
  assert.match(identity, /^c200[0-9a-f]{60}$/);
  await page.getByLabel('Name').fill('Alice');
  await page.getByRole('button', { name: 'Add' }).click();
  await page.getByTestId('people').locator('li', { hasText: 'Alice' }).waitFor({ timeout: pageTimeoutMs });
  const call = await runCli(['call', 'add', 'Bob'], { configPath: project.configPath, cwd: project.projectDir });
  assert.equal(call.code, 0, call.stderr);
  await page.getByTestId('people').locator('li', { hasText: 'Bob' }).waitFor({ timeout: pageTimeoutMs });
  await page.reload();
  await page.getByTestId('status').getByText('Connected').waitFor({ timeout: pageTimeoutMs });
  await page.getByTestId('identity').getByText(identity).waitFor({ timeout: pageTimeoutMs });
  assert.deepEqual(await page.getByTestId('people').locator('li').allInnerTexts(), ['Alice', 'Bob']);
  assert.deepEqual(errors, [], 'no uncaught errors on the page');
  const sql = await runCli(['sql', 'SELECT * FROM person'], { configPath: project.configPath, cwd: project.projectDir });
  assert.match(sql.stdout, /"Alice"[\s\S]*"Bob"|"Bob"[\s\S]*"Alice"/);
}

/** A template whose `npm run build` writes a static site to dist/ (Vite's, Angular's): build, serve dist/, drive the page. */
export async function checkViteTemplate(template: string): Promise<void> {
  const project = await createInstalledProject(template);
  try {
    npmRun(project.projectDir, 'build');
    const { url, server } = await serveStatic(path.join(project.projectDir, 'dist'));
    const browser = await launchChromium();
    try {
      await drivePeoplePage(browser, url, project);
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    await project.srv.stop();
  }
}

/**
 * A template served by its own production server (Next's, Nuxt's Nitro, Astro's, React Router's, TanStack Start's):
 * `npm run build`, start the server on a free loopback port (`start(port)` gives the command and environment), wait
 * for `ready` in its output, drive the page.
 */
export async function checkServerTemplate(template: string, start: (port: number) => { command: string; args: string[];
  env?: NodeJS.ProcessEnv }, ready: RegExp): Promise<void> {
  const project = await createInstalledProject(template);
  try {
    npmRun(project.projectDir, 'build');
    const port = await freePort();
    const { command, args, env } = start(port);
    const server = startInProject(project.projectDir, command, args, env);
    const browser = await launchChromium();
    try {
      await server.waitFor(ready, 60_000);
      await drivePeoplePage(browser, `http://127.0.0.1:${port}/`, project);
    } finally {
      await browser.close();
      await server.stop();
    }
  } finally {
    await project.srv.stop();
  }
}
