// Our real server for `npm run bench:subscriptions`: `node bin/spacetime.js start` on a free loopback port with a
// temp data dir, plus publishing the benchmark module over HTTP (POST /v1/identity, PUT /v1/database/<name>).
// Owns: the server child process and its temp dir (removed by stop()). May call: node built-ins,
// src/cli/build.ts (bundleModule).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleModule } from '../../src/cli/build.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const moduleDir = path.join(repoRoot, 'bench', 'subscriptions', 'module');
const serverReadyTimeoutMs = 30_000;
const stopGraceMs = 5_000;

export interface BenchServer {
  httpUrl: string;
  pid: number;
  token: string;
  publish(dbName: string): Promise<void>;
  /** POST /v1/database/<db>/call/<reducer> with a JSON argument object. */
  call(dbName: string, reducer: string, argsJson: string): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
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
    await waitForPing(httpUrl, child, () => log);
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

async function waitForPing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + serverReadyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/v1/ping`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server not ready after ${serverReadyTimeoutMs} ms:\n${output()}`);
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(timer);
}
