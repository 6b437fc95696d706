// A throwaway PostgreSQL cluster for baseline B: initdb in a temp dir, start on a free loopback port (unix socket in
// the same temp dir) with fsync=on and synchronous_commit=on, stop and delete after. As root it runs the server as
// the `postgres` user (PostgreSQL refuses to run as root). Binaries come from /usr/lib/postgresql/<ver>/bin.
// Owns its temp dir and the postmaster. May call: node built-ins, the PostgreSQL binaries, runuser, taskset.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pinPrefix } from './procs.js';

const run = promisify(execFile);
const pgRoot = '/usr/lib/postgresql';
/** Enough backends for the largest pool in a sweep plus a few admin connections. */
const maxConnections = 200;
/** The superuser initdb creates; the app connects as it with trust auth on loopback only. */
export const pgUser = 'bench';

export const installHint =
  'PostgreSQL is not installed: skipping the Node+PostgreSQL baseline. Install it with `apt-get install postgresql`.';

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
  stop(): Promise<void>;
}

function runAsArgv(): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
}

export async function startPostgres(bin: string, port: number, serverCpus: string | undefined): Promise<PgCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keynote-pg-'));
  const dataDir = path.join(dir, 'data');
  if (process.getuid?.() === 0) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const as = runAsArgv();
  const exec = (argv: string[]) => run(argv[0], argv.slice(1), { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  await exec([...as, path.join(bin, 'initdb'), '-D', dataDir, '-U', pgUser, '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const serverOptions = [
    `-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c fsync=on', '-c synchronous_commit=on',
    `-c max_connections=${maxConnections}`,
  ].join(' ');
  await exec([...pinPrefix(serverCpus), ...as, path.join(bin, 'pg_ctl'), '-D', dataDir, '-l', path.join(dir, 'server.log'),
    '-w', '-t', '60', '-o', serverOptions, 'start']);
  const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    port,
    postmasterPid,
    stop: async () => {
      try {
        await exec([...as, path.join(bin, 'pg_ctl'), '-D', dataDir, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
