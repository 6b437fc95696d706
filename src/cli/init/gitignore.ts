// Which files `spacetime dev` watches: directories that are never sources (dependencies, build outputs, VCS data),
// then the project's and the module's .gitignore rules, with the local config and env files always watched (they are
// gitignored on purpose, yet a change to them changes what dev publishes). Upstream dev.rs filters the same way.
// Owns: the gitignore pattern subset we honour — blank and `#` lines, `!` negation, a trailing `/` for directories,
// a leading or inner `/` anchoring to the .gitignore's directory, `*`, `?`, `[…]` and `**`; the last matching rule
// wins, and a path under an ignored directory stays ignored (as in git). May call: node:fs, node:path.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Directory names never watched, whatever .gitignore says. */
export const alwaysIgnoredDirs: readonly string[] = ['.git', '.hg', '.svn', 'node_modules', 'dist', 'build', 'target',
  'bin', 'obj', '.next', '.nuxt', '.output', '.svelte-kit', '.turbo', '.cache', '__pycache__', '.venv', 'venv', '.idea', '.vs'];

interface Rule {
  base: string;
  regex: RegExp;
  negate: boolean;
  dirOnly: boolean;
}

/** Escapes a glob into a regular expression over `/`-separated relative paths. */
function globToRegex(glob: string, anchored: boolean): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` any leading directories, `/**` anything below, `**` alone anything.
      if (glob[i + 2] === '/') { re += '(?:.*/)?'; i += 2; } else { re += '.*'; i += 1; }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else { re += `[${glob.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`; i = close; }
    } else if (c === '\\' && i + 1 < glob.length) { re += glob[i + 1].replace(/[.+^${}()|[\]\\*?]/g, '\\$&'); i += 1; }
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${anchored ? '' : '(?:.*/)?'}${re}$`);
}

function parseRules(text: string, base: string): Rule[] {
  const rules: Rule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.replace(/(?<!\\)\s+$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith('/');
    if (dirOnly) line = line.slice(0, -1);
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    if (line === '') continue;
    rules.push({ base, regex: globToRegex(line, anchored), negate, dirOnly });
  }
  return rules;
}

export class IgnoreMatcher {
  private readonly rules: Rule[] = [];
  private readonly roots: string[];

  /**
   * Loads `<dir>/.gitignore` for each directory given (rules apply below their own directory). Always-ignored names
   * count only below these directories, so a project kept under e.g. `~/build/` is still watched.
   */
  constructor(dirs: readonly string[]) {
    this.roots = [...new Set(dirs.map((d) => path.resolve(d)))];
    for (const dir of this.roots) {
      const file = path.join(dir, '.gitignore');
      if (existsSync(file)) this.rules.push(...parseRules(readFileSync(file, 'utf8'), dir));
    }
  }

  /** Files that matter to dev even though templates gitignore them. */
  static alwaysWatched(name: string): boolean {
    return name === '.env.local' || /^spacetime(\..+)?\.json$/.test(name);
  }

  /** Whether a change at `file` (absolute) should be ignored. */
  ignores(file: string, isDir: boolean): boolean {
    const full = path.resolve(file);
    const root = this.roots.find((r) => full === r || full.startsWith(r + path.sep)) ?? path.dirname(full);
    if (path.relative(root, full).split(path.sep).some((p) => alwaysIgnoredDirs.includes(p))) return true;
    if (!isDir && IgnoreMatcher.alwaysWatched(path.basename(full))) return false;
    // A path below an ignored directory is ignored: check each ancestor as a directory first.
    const ancestors: string[] = [];
    for (let dir = path.dirname(full); dir !== path.dirname(dir); dir = path.dirname(dir)) ancestors.unshift(dir);
    for (const dir of ancestors) if (this.matches(dir, true)) return true;
    return this.matches(full, isDir);
  }

  private matches(full: string, isDir: boolean): boolean {
    let ignored = false;
    for (const rule of this.rules) {
      const rel = path.relative(rule.base, full);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) continue;
      if (rule.dirOnly && !isDir) continue;
      if (rule.regex.test(rel.split(path.sep).join('/'))) ignored = !rule.negate;
    }
    return ignored;
  }
}
