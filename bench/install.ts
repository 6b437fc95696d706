// Installs the system tools a benchmark needs (PostgreSQL, rsvg-convert, taskset) from Debian packages when they are
// missing, so `npm run bench` is one command. Installs only with apt-get, only as root or through passwordless
// `sudo -n`, never uninstalls; when it cannot install it says why and the caller carries on without the tool.
// Owns nothing after it returns (apt-get runs to completion). May call: node built-ins, apt-get, sudo.
//
// Test hooks (environment): BENCH_FORCE_INSTALL=<key,…> treats those requirements as absent on the first look (to
// exercise the install path on a machine that has them); BENCH_APT_SIMULATE=1 passes `-s` to apt-get (no changes).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** apt-get waits this long for another apt/dpkg run to release its lock before failing. */
const aptLockWaitSeconds = 120;
/** An install (download + unpack + configure) taking longer than this is abandoned. */
const aptInstallTimeoutMs = 15 * 60_000;
const aptUpdateTimeoutMs = 5 * 60_000;
const sudoProbeTimeoutMs = 10_000;
/** apt output kept for the failure message. */
const aptOutputMaxBytes = 64 * 1024 * 1024;
/** apt-get's words for "the package lists do not know this package": worth one `apt-get update` and a retry. */
const missingListsPattern = /Unable to locate package|has no installation candidate|is not available, but is referred to/;
/** What `apt-get update` prints (with exit status 0) when it cannot reach the archive. */
const unreachablePattern = /Failed to fetch|Some index files failed to download|Temporary failure resolving|Could not resolve/;

/** True when `name` is an executable file in a PATH directory. */
export function hasCommand(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/${name}`));
}

export interface Requirement {
  /** Short key for --flags and BENCH_FORCE_INSTALL, e.g. `postgresql`. */
  key: string;
  /** What the user reads, e.g. `PostgreSQL`. */
  name: string;
  /** Debian packages that provide it. */
  packages: string[];
  /** What the benchmark does without it, e.g. `skipping the Node+PostgreSQL rows`. */
  without: string;
  /** True when it is usable now. */
  present(): boolean;
  /** Runs after a real install, with the argv prefix that has root (e.g. stop a service the package started). */
  afterInstall?(asRoot: string[], log: (line: string) => void): Promise<void>;
}

export type InstallOutcome =
  | { status: 'present' }
  | { status: 'installed' }
  | { status: 'unavailable'; reason: string };

export interface InstallOptions {
  /** false: never install, only report (the `--no-install` flag). */
  allowInstall: boolean;
  log?: (line: string) => void;
}

const forced = new Set((process.env.BENCH_FORCE_INSTALL ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''));
const simulate = process.env.BENCH_APT_SIMULATE === '1';
/** `apt-get update` runs at most once per process, and only after an install failed for want of package lists. */
let listsRefreshed = false;

/** argv prefix that runs a command as root: [] for root, `sudo -n` when passwordless sudo works, else a reason. */
export function rootPrefix(): string[] | { reason: string } {
  if (process.getuid?.() === 0) return [];
  if (hasCommand('sudo')) {
    try {
      execFileSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: sudoProbeTimeoutMs });
      return ['sudo', '-n'];
    } catch {
      return { reason: 'not root and `sudo -n` needs a password' };
    }
  }
  return { reason: 'not root and no sudo' };
}

/** apt's own error lines (`E: …`), else the last lines of its output: what the user needs to see of a failure. */
function aptError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const errors = lines.filter((l) => l.startsWith('E: '));
  return (errors.length > 0 ? errors : lines.slice(-2)).join(' / ');
}

async function apt(asRoot: string[], args: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  const argv = [...asRoot, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', '-o', `DPkg::Lock::Timeout=${aptLockWaitSeconds}`, ...args];
  try {
    const { stdout, stderr } = await run(argv[0], argv.slice(1), { timeout: timeoutMs, maxBuffer: aptOutputMaxBytes });
    return { ok: true, output: `${stdout}\n${stderr}` };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string; killed?: boolean };
    const output = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim() || e.message;
    return { ok: false, output: e.killed ? `timed out after ${timeoutMs / 1000} s: ${output}` : output };
  }
}

/**
 * Makes `req` present when it can: returns `present` when it already is, `installed` after a successful apt-get
 * install, `unavailable` (with the reason, already printed) otherwise. Prints one line per action.
 */
export async function ensureInstalled(req: Requirement, opts: InstallOptions): Promise<InstallOutcome> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const isForced = forced.delete(req.key);
  if (!isForced && req.present()) return { status: 'present' };
  const command = `apt-get install ${req.packages.join(' ')}`;
  const unavailable = (why: string): InstallOutcome => {
    const reason = `${req.name} is not installed and ${why}; ${req.without} (to install it yourself: \`${command}\`).`;
    log(reason);
    return { status: 'unavailable', reason };
  };
  if (!opts.allowInstall) return unavailable('--no-install was given');
  if (!hasCommand('apt-get')) return unavailable('there is no apt-get here (not Debian/Ubuntu)');
  const asRoot = rootPrefix();
  if (!Array.isArray(asRoot)) return unavailable(`cannot install it (${asRoot.reason})`);
  const args = ['install', '-y', '--no-install-recommends', ...(simulate ? ['-s'] : []), ...req.packages];
  log(`installing ${req.name} (${command}${simulate ? ', simulated' : ''}) …`);
  let result = await apt(asRoot, args, aptInstallTimeoutMs);
  let offline = '';
  if (!result.ok && !listsRefreshed && missingListsPattern.test(result.output)) {
    listsRefreshed = true;
    log('package lists are missing or stale: apt-get update …');
    const update = await apt(asRoot, ['update'], aptUpdateTimeoutMs);
    // A partly failed update (one unreachable extra repository) may still have brought the lists needed: retry anyway.
    if (!update.ok || unreachablePattern.test(update.output)) offline = ` after apt-get update could not reach every archive (offline?): ${aptError(update.output)}`;
    result = await apt(asRoot, args, aptInstallTimeoutMs);
  }
  if (!result.ok) return unavailable(`apt-get failed (${aptError(result.output)})${offline}`);
  if (!simulate && req.afterInstall !== undefined) await req.afterInstall(asRoot, log);
  if (!req.present()) return unavailable('apt-get succeeded but it is still not found');
  log(simulate ? `simulated installing ${req.name}: apt-get would succeed (nothing changed)` : `installed ${req.name}`);
  return { status: 'installed' };
}
