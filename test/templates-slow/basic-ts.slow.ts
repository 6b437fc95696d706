// basic-ts: init → npm install → publish → the Node client as written (`npm run dev -- Alice` on Node 20: the SDK's
// WebSocket comes from undici) adds a person and sees the row; the database it used is the one in .env.local.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cleanupTempDirs, runCli } from '../harness.js';
import { createInstalledProject } from './helpers.js';

after(() => cleanupTempDirs());

test('basic-ts: the Node client connects, subscribes and sees its add', async () => {
  const project = await createInstalledProject('basic-ts');
  try {
    const run = spawnSync('npm', ['run', 'dev', '--', 'Alice'], { cwd: project.projectDir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`Database: ${project.database} at ws://127\\.0\\.0\\.1:${project.srv.port}`));
    assert.match(run.stdout, /Connected to SpacetimeDB!/);
    assert.match(run.stdout, /New person: Alice/);
    const sql = await runCli(['sql', 'SELECT * FROM person'], { configPath: project.configPath, cwd: project.projectDir });
    assert.match(sql.stdout, /"Alice"/);
  } finally {
    await project.srv.stop();
  }
});
