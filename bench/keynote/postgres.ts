// A throwaway PostgreSQL cluster for baseline B: initdb in a temp dir, start on a free loopback port (unix socket in
// the same temp dir) with fsync=on and synchronous_commit=on, stop and delete after. As root it runs the server as
// the `postgres` user (PostgreSQL refuses to run as root). Binaries come from /usr/lib/postgresql/<ver>/bin; when
// they are missing, `pgRequirement` lets ../install.ts install Debian's `postgresql` (and stop the default cluster
// the package starts: the bench never uses it). The cluster's stop is registered with the interrupt cleanup, so
// Ctrl-C or a crash does not leave a postmaster behind (it runs in its own session and would not get the SIGINT).
// Owns its temp dir and the postmaster. May call: node built-ins, the PostgreSQL binaries, runuser, taskset,
// pg_lsclusters/pg_ctlcluster (after an install only), ./procs, ../install.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Requirement } from '../install.js';
import { pinPrefix, stopOnExit } from './procs.js';

const run = promisify(execFile);
const pgRoot = '/usr/lib/postgresql';
/** Enough backends for the largest pool in a sweep plus a few admin connections. */
const maxConnections = 200;
/** The superuser initdb creates; the app connects as it with trust auth on loopback only. */
export const pgUser = 'bench';

/** PostgreSQL server binaries, for ../install.ts: Debian's `postgresql` package. */
export const pgRequirement: Requirement = {
  key: 'postgresql',
  name: 'PostgreSQL',
  packages: ['postgresql'],
  without: 'skipping the Node+PostgreSQL baseline',
  present: () => findPgBin() !== undefined,
  afterInstall: stopPackageClusters,
};

/**
 * Debian's package creates and starts a `main` cluster on port 5432. Before the install there were no server
 * binaries, so every online cluster now is the package's: stop it (it would only take memory and CPU wake-ups).
 */
async function stopPackageClusters(asRoot: string[], log: (line: string) => void): Promise<void> {
  let listing: string;
  try {
    listing = (await run('pg_lsclusters', ['--no-header'])).stdout;
  } catch {
    return; // no postgresql-common tools: nothing was started
  }
  for (const line of listing.split('\n')) {
    const [version, name, , status] = line.trim().split(/\s+/);
    if (status === undefined || !status.startsWith('online')) continue;
    log(`stopping PostgreSQL cluster ${version}/${name} that the package started (the bench uses its own throwaway cluster)`);
    const argv = [...asRoot, 'pg_ctlcluster', version, name, 'stop'];
    await run(argv[0], argv.slice(1)).catch((err: Error) => log(`  could not stop it: ${err.message.split('\n')[0]}`));
  }
}

/** The newest installed PostgreSQL bin dir, or undefined. */
export function findPgBin(): string | undefined {
  if (!existsSync(pgRoot)) return undefined;
  const versions = readdirSync(pgRoot)
    .filter((v) => existsSync(path.join(pgRoot, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(pgRoot, versions[0], 'bin') : undefined;
}

export interface PgCluster {
  port: number;
  /** The postmaster's pid: its process tree is the database's CPU. */
  postmasterPid: number;
  /** The temp dir holding the data directory and the unix socket; deleted by `stop`. */
  dir: string;
  /** pg_ctl stop -m fast, then delete the dir; runs at most once (also on interrupt). */
  stop(): Promise<void>;
}

function runAsArgv(): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
}

export async function startPostgres(bin: string, port: number, serverCpus: string | undefined): Promise<PgCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keynote-pg-'));
  const dataDir = path.join(dir, 'data');
  const as = runAsArgv();
  const exec = (argv: string[]) => run(argv[0], argv.slice(1), { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  // Registered before anything can start, so an interrupt at any point below still removes the dir (and the
  // postmaster once its pid file exists).
  const stop = stopOnExit(async () => {
    try {
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
        await exec([...as, path.join(bin, 'pg_ctl'), '-D', dataDir, '-m', 'fast', '-w', 'stop']);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  try {
    if (process.getuid?.() === 0) {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      chownSync(dir, uid, gid);
    }
    await exec([...as, path.join(bin, 'initdb'), '-D', dataDir, '-U', pgUser, '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const serverOptions = [
      `-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c fsync=on', '-c synchronous_commit=on',
      `-c max_connections=${maxConnections}`,
    ].join(' ');
    await exec([...pinPrefix(serverCpus), ...as, path.join(bin, 'pg_ctl'), '-D', dataDir, '-l', path.join(dir, 'server.log'),
      '-w', '-t', '60', '-o', serverOptions, 'start']);
    const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return { port, postmasterPid, dir, stop };
  } catch (err) {
    await stop().catch(() => {}); // the start's own error is the one worth reporting
    throw err;
  }
}
