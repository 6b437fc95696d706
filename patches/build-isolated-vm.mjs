// patches/build-isolated-vm.mjs — builds isolated-vm from its patched source, once per install (run by package.json's
// postinstall after `patch-package` has applied patches/isolated-vm+5.0.4.patch; see that patch for what it fixes).
// A prebuilt or earlier-built binary lacks the fix, so the binary is rebuilt unless a stamp written beside it says it
// was built by this script from this very patch and the binary is unchanged since. package.json's allowScripts denies
// isolated-vm's own install script, so npm ≥ 11 compiles it only here (~2 min); an npm that ignores allowScripts runs
// that script first and this one then compiles a second time.
// Rerun by hand with `npm run postinstall`. Owns: node_modules/isolated-vm/out. May call: node-gyp (npm's copy).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve('isolated-vm/package.json'));
const binaryFile = path.join(packageDir, 'out', 'isolated_vm.node');
const stampFile = path.join(packageDir, 'out', 'patched-build.json');
const patchFile = path.join(import.meta.dirname, `isolated-vm+${require('isolated-vm/package.json').version}.patch`);

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return undefined;
  }
}

function nodeGyp(args) {
  // npm hands its own node-gyp to scripts in npm_config_node_gyp; isolated-vm's install script uses the same one.
  const script = process.env.npm_config_node_gyp;
  const [command, commandArgs] = script ? [process.execPath, [script, ...args]] : ['node-gyp', args];
  // Its ~150 lines of progress are kept back unless it fails: they filled the head of every install's and CI run's log.
  const result = spawnSync(command, commandArgs, { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) {
    process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`);
    const how = result.error ? result.error.message : `exit ${result.status ?? result.signal}`;
    throw new Error(`build-isolated-vm: node-gyp ${args.join(' ')} in ${packageDir} failed (${how}); ` +
      'it needs python3, make and a C++ compiler; run it through npm (`npm run postinstall`) to use npm\'s node-gyp');
  }
}

if (!existsSync(patchFile)) {
  throw new Error(`build-isolated-vm: no patch for the installed isolated-vm at ${patchFile}; ` +
    'write one for this version (see docs/engine-v2.md, "Risks found" 1–2) or pin isolated-vm to 5.0.4');
}
const patchSha256 = sha256(patchFile);
const stamp = readStamp();
if (stamp?.patchSha256 === patchSha256 && existsSync(binaryFile) && stamp.binarySha256 === sha256(binaryFile)) {
  console.log('build-isolated-vm: the patched isolated-vm binary is already built');
} else {
  console.log(`build-isolated-vm: compiling isolated-vm with ${path.basename(patchFile)} (takes a few minutes)`);
  const started = performance.now();
  nodeGyp(['rebuild', '--release', '-j', 'max']);
  nodeGyp(['clean']);                               // as isolated-vm's own install does: build/ holds ~100 MB of objects
  writeFileSync(stampFile, JSON.stringify({ patchSha256, binarySha256: sha256(binaryFile) }) + '\n');
  console.log(`build-isolated-vm: built in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
