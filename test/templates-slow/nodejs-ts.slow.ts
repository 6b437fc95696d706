// nodejs-ts: init → npm install → publish → the interactive Node client (`npm run dev`, Node 20 + undici): a line on
// stdin calls `add`, a row added by the CLI is printed live, and a restart keeps the identity (.spacetime-token.json).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupTempDirs, runCli } from '../harness.js';
import { createInstalledProject, startInProject } from './helpers.js';

after(() => cleanupTempDirs());

test('nodejs-ts: stdin adds a person, a CLI row shows up live, a restart keeps the identity', async () => {
  const project = await createInstalledProject('nodejs-ts');
  try {
    const client = startInProject(project.projectDir, 'npm', ['run', 'dev']);
    let identity: string;
    try {
      identity = (await client.waitFor(/Identity: (c200[0-9a-f]{60})/, 60_000))[1];
      await client.waitFor(/People \(0\): \(none yet\)/);
      client.child.stdin!.write('Alice\n');
      await client.waitFor(/\[Added\] Alice/);
      const call = await runCli(['call', 'add', 'Bob'], { configPath: project.configPath, cwd: project.projectDir });
      assert.equal(call.code, 0, call.stderr);
      await client.waitFor(/\[Added\] Bob/);
      assert.match(client.text, new RegExp(`Connecting to ${project.database} at ws://127\\.0\\.0\\.1:${project.srv.port}`));
    } finally {
      await client.stop();
    }
    const again = startInProject(project.projectDir, 'npm', ['run', 'start']);
    try {
      await again.waitFor(new RegExp(`Identity: ${identity}`));
      await again.waitFor(/People \(2\): Alice, Bob/);
    } finally {
      await again.stop();
    }
  } finally {
    await project.srv.stop();
  }
});
