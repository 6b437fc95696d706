// bench/server-profile/summarize.ts — a text summary of a V8 .cpuprofile: self time per function and per file.
//
// Owns: nothing. May call: node built-ins.
// Run alone: node --import tsx bench/server-profile/summarize.ts <file.cpuprofile> [top]

import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

function shortUrl(url: string): string {
  const i = url.indexOf('/src/');
  if (i >= 0) return url.slice(i + 1);
  const n = url.lastIndexOf('node_modules/');
  if (n >= 0) return url.slice(n + 'node_modules/'.length);
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
}

export function summarizeProfile(text: string, top: number): string {
  const p = JSON.parse(text) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const f = shortUrl(n.callFrame.url);
    const key = `${n.callFrame.functionName || '(anonymous)'}  ${f}:${n.callFrame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fk = f === '' ? n.callFrame.functionName : f;
    file.set(fk, (file.get(fk) ?? 0) + us);
  }
  const idle = fn.get('(idle)  :0') ?? 0;
  const busy = total - idle;
  const lines = [`profile: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy; self time as % of busy:`];
  const fmt = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, us]) => `  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`);
  lines.push('by function:', ...fmt(fn, top), 'by file:', ...fmt(file, 25));
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('summarize.ts')) {
  console.log(summarizeProfile(readFileSync(process.argv[2], 'utf8'), Number(process.argv[3] ?? 45)));
}
