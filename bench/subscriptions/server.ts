// Our real server for `npm run bench:subscriptions`: `node bin/spacetime.js start` on a free loopback port with a
// temp data dir, plus publishing the benchmark module over HTTP (POST /v1/identity, PUT /v1/database/<name>).
// Owns: the server child process and its temp dir (removed by stop()). May call: node built-ins,
// src/cli/build.ts (bundleModule), ../keynote (repoRoot, freePort, stopChild, waitForPing).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleModule } from '../../src/cli/build.js';
import { freePort, repoRoot } from '../keynote/ours.js';
import { stopChild, waitForPing } from '../keynote/procs.js';

export { repoRoot };

const moduleDir = path.join(repoRoot, 'bench', 'subscriptions', 'module');
const serverReadyTimeoutMs = 30_000;

export interface BenchServer {
  httpUrl: string;
  pid: number;
  token: string;
  publish(dbName: string): Promise<void>;
  /** POST /v1/database/<db>/call/<reducer> with a JSON argument object. */
  call(dbName: string, reducer: string, argsJson: string): Promise<void>;
  stop(): Promise<void>;
}

/** Newest mtime (ms) of any .ts file under `dir`. */
function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** True when some src/ file is newer than the built CLI in dist/ (then `--build` or `npm run build` first). */
export function distIsStale(): boolean {
  try {
    return newestMtimeMs(path.join(repoRoot, 'src')) > statSync(path.join(repoRoot, 'dist', 'cli', 'main.js')).mtimeMs;
  } catch {
    return true;
  }
}

/**
 * argv (after `node`) of the server: 'dist' runs bin/spacetime.js (the built CLI, as users run it); 'src' runs
 * src/cli/main.ts through tsx (the current sources without rebuilding dist/).
 */
function serverArgv(from: 'dist' | 'src'): string[] {
  return from === 'dist'
    ? [path.join(repoRoot, 'bin', 'spacetime.js')]
    : ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts')];
}

export async function startServer(from: 'dist' | 'src', nodeFlags: string[] = []): Promise<BenchServer> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-subscriptions-'));
  const port = await freePort();
  const httpUrl = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(process.execPath, [
    ...nodeFlags, ...serverArgv(from), '--config-path', path.join(tmp, 'cli.toml'), 'start',
    '--listen-addr', `127.0.0.1:${port}`, '--data-dir', path.join(tmp, 'data'),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const stop = async () => {
    await stopChild(child);
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await waitForPing(httpUrl, child, () => log, serverReadyTimeoutMs, 'server');
    const res = await fetch(`${httpUrl}/v1/identity`, { method: 'POST' });
    if (!res.ok) throw new Error(`POST /v1/identity answered ${res.status}: ${await res.text()}`);
    const { token } = (await res.json()) as { token: string };
    const code = Buffer.from((await bundleModule(moduleDir, {})).code, 'utf8');
    const auth = { authorization: `Bearer ${token}` };
    return {
      httpUrl, pid: child.pid!, token, stop,
      async publish(dbName) {
        const r = await fetch(`${httpUrl}/v1/database/${dbName}?host_type=Js`, { method: 'PUT', headers: auth, body: code });
        if (!r.ok) throw new Error(`publish ${dbName} answered ${r.status}: ${await r.text()}`);
      },
      async call(dbName, reducer, argsJson) {
        const r = await fetch(`${httpUrl}/v1/database/${dbName}/call/${reducer}`, {
          method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: argsJson,
        });
        if (!r.ok) throw new Error(`call ${reducer} answered ${r.status}: ${await r.text()}`);
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
