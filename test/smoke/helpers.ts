// Helpers for test/smoke: upstream's smoketest harness contract (crates/smoketests/src/lib.rs) over our real CLI —
// `publish --yes=all`, `call -- <db> <fn> <args>`, `sql`, `logs --format=json -n N`, and `subscribe -t 30
// --print-initial-update` run in the foreground (every stdout line parsed) or in the background (resolves once the
// initial update arrives; collect() waits for the process to exit and returns the lines after it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before } from 'node:test';
import {
  cleanupTempDirs, fixturesDir, repoRoot, runCli, scrapeIdentity, startTestServer, tempConfigPath, type CliResult, type TestServer,
} from '../harness.js';

export interface Smoke {
  server: TestServer;
  configPath: string;
  cli(args: string[], input?: string): Promise<CliResult>;
  /** `publish -p test/fixtures/modules/<fixture> --yes=all [name]`; asserts success, returns the identity. */
  publish(fixture: string, name?: string, extra?: string[]): Promise<string>;
  call(db: string, fn: string, ...args: string[]): Promise<CliResult>;
  sql(db: string, query: string, extra?: string[]): Promise<CliResult>;
  /** The `message` of each JSON log record of the last `n`. */
  logMessages(db: string, n?: number, extra?: string[]): Promise<string[]>;
  /** A new server-issued identity (upstream's new_identity: logout, then login --server-issued-login). */
  newIdentity(): Promise<void>;
  subscribe(db: string, queries: string[], opts?: { n?: number; confirmed?: boolean }): Promise<CliResult>;
  subscribeBackground(db: string, queries: string[], opts: { n?: number; confirmed?: boolean }): Promise<{ collect(): Promise<unknown[]> }>;
}

/** psql-style output compared as upstream's assert_sql does: trailing whitespace trimmed per line. */
export function trimTable(text: string): string {
  return text.split('\n').map((l) => l.trimEnd()).join('\n').trim();
}

/**
 * A smoke file's server: before its tests, a real server and a fresh server-issued identity (handed to `take`); after
 * them, the server stopped and the temporary directories removed.
 */
export function smokeFile(take: (s: { server: TestServer; st: Smoke }) => void): void {
  let server: TestServer | undefined;
  before(async () => {
    server = await startTestServer();
    const st = smoke(server, tempConfigPath());
    await st.newIdentity();
    take({ server, st });
  });
  after(async () => {
    await server?.stop();
    cleanupTempDirs();
  });
}

export function smoke(server: TestServer, configPath: string): Smoke {
  const s = ['--server', server.url];
  const cli = (args: string[], input?: string) => runCli(args, { configPath, input });
  const subscribeArgs = (db: string, queries: string[], n: number | undefined, confirmed: boolean | undefined) => [
    'subscribe', ...s, db, '-t', '30', ...(n === undefined ? [] : ['-n', String(n)]), '--print-initial-update',
    ...(confirmed === undefined ? [] : ['--confirmed', String(confirmed)]), '--', ...queries];
  return {
    server, configPath, cli,
    async publish(fixture, name, extra = []) {
      const r = await cli(['publish', ...s, '-p', path.join(fixturesDir, fixture), '--yes=all', ...extra, ...(name === undefined ? [] : [name])]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      return scrapeIdentity(r.stdout);
    },
    call: (db, fn, ...args) => cli(['call', ...s, '--', db, fn, ...args]),
    sql: (db, query, extra = []) => cli(['sql', ...s, ...extra, db, query]),
    async logMessages(db, n = 100, extra = []) {
      const r = await cli(['logs', ...s, '--format=json', '-n', String(n), ...extra, '--', db]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => (JSON.parse(l) as { message: string }).message);
    },
    async newIdentity() {
      assert.equal((await cli(['logout'])).code, 0);
      const r = await cli(['login', '--server-issued-login', server.url]);
      assert.equal(r.code, 0, r.stderr);
    },
    subscribe: (db, queries, opts = {}) => cli(subscribeArgs(db, queries, opts.n ?? 0, opts.confirmed)),
    subscribeBackground(db, queries, opts) {
      const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'spacetime.js'), '--config-path', configPath,
        ...subscribeArgs(db, queries, opts.n, opts.confirmed)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      const exited = new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? -1)));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      return new Promise((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          const first = stdout.indexOf('\n') < 0;
          stdout += d.toString();
          if (first && stdout.includes('\n')) {
            resolve({
              async collect() {
                const code = await exited;
                assert.equal(code, 0, stderr);
                return stdout.split('\n').slice(1).filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
              },
            });
          }
        });
        void exited.then((code) => reject(new Error(`subscribe exited ${code} before its initial update: ${stderr}`)));
      });
    },
  };
}
