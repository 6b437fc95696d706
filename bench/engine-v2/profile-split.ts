// bench/engine-v2/profile-split.ts — splits a V8 `--cpu-prof` profile of the reducer call path into the parts
// docs/performance.md "Round 6" reports: our shims, the official library, the isolate as a whole (when the profile is
// of the real path, where V8 sees only the entry), our syscalls, the datastore, the commit path and call wrapper around
// it, GC, and the driver. Self time only; idle samples are left out.
//
// Which samples count: those under a function named by --root (node-realm-call.ts: `runCalls`), or those inside the
// spans listed in a --windows file (bench/core.ts with BENCH_WINDOWS=1 prints one line per measured run, after its
// header line; the warm-up's spans come before it and are skipped). A GC sample counts when the sample before it did.
//
// Owns: nothing. May call: node built-ins. `category` is shared with node-realm-call.ts's allocation report.
// Run: node --import tsx bench/engine-v2/profile-split.ts <file.cpuprofile> (--root runCalls | --windows out.txt) [top]

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CallFrame { functionName: string; url: string }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number }

/** The part of the call path a frame belongs to, by owner. */
export function category({ url, functionName }: CallFrame): string {
  if (functionName === '(garbage collector)') return 'Node GC';
  if (url === 'spacetimedb_bootstrap') return 'shims and polyfills (isolate-src.ts)';
  if (url === 'spacetimedb_module') return 'official library + module code';
  if (url.endsWith('/src/host/runtime.ts') && functionName === 'callReducer') {
    return 'inside the isolate: entry, shims, library, module, isolate GC';
  }
  if (url.endsWith('/src/host/syscalls.ts')) return 'syscalls.ts (host side of the shims)';
  if (url.includes('/src/datastore/')) return 'datastore';
  if (/\/src\/(host|metrics|durability|subscription|sats)\//.test(url)) return 'call wrapper and commit path (database.ts, args check, metrics, …)';
  return 'driver: bench loop, promises, other';
}

function spans(file: string): [number, number][] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const header = lines.findIndex((l) => l.startsWith('bench:core'));
  return lines.slice(header + 1).flatMap((l) => {
    const m = /^\s*window (\d+) (\d+)$/.exec(l);
    return m === null ? [] : [[Number(m[1]), Number(m[2])] as [number, number]];
  });
}

function main(): void {
  const [file, mode, arg, topArg] = process.argv.slice(2);
  if (file === undefined || (mode !== '--root' && mode !== '--windows') || arg === undefined) {
    throw new Error('usage: profile-split.ts <file.cpuprofile> (--root NAME | --windows FILE) [top]');
  }
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const under = new Map<number, boolean>();
  const isUnder = (id: number): boolean => {
    let r = under.get(id);
    if (r !== undefined) return r;
    const up = parent.get(id);
    r = byId.get(id)!.callFrame.functionName === arg || (up !== undefined && isUnder(up));
    under.set(id, r);
    return r;
  };
  const windows = mode === '--windows' ? spans(arg) : [];
  const inWindow = (t: number): boolean => windows.some(([a, b]) => t >= a && t <= b);
  const counts = new Map<string, number>(), functions = new Map<string, number>();
  let t = p.startTime, total = 0, previousCounted = false;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const n = byId.get(p.samples[i])!;
    if (n.callFrame.functionName === '(idle)') { previousCounted = false; continue; }
    const isGc = n.callFrame.functionName === '(garbage collector)';
    const counted: boolean = mode === '--windows' ? inWindow(t) : isGc ? previousCounted : isUnder(n.id);
    if (!isGc) previousCounted = counted;
    if (!counted) continue;
    total++;
    const c = category(n.callFrame);
    counts.set(c, (counts.get(c) ?? 0) + 1);
    const f = `${n.callFrame.functionName || '(anonymous)'}  ${n.callFrame.url.replace(/^.*\/src\//, 'src/')}`;
    functions.set(f, (functions.get(f) ?? 0) + 1);
  }
  const pct = (x: number): string => `${(100 * x / total).toFixed(1).padStart(5)} %`;
  console.log(`${total} samples`);
  for (const [c, x] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(x)}  ${c}`);
  console.log('by function:');
  for (const [f, x] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) console.log(`  ${pct(x)}  ${f}`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
