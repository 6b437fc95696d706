// bench/server-profile/stages.ts — a V8 .cpuprofile's busy time split into the stages of a WebSocket reducer call.
//
// Owns: nothing. May call: node built-ins.
//
// Each sample is charged to one stage: that of the innermost frame of its stack a rule matches (the rules below, tried
// in order on each frame), so `datastore` under the isolate entry is the module's row reads and writes (host
// syscalls), and `module` the isolate entry with the module's own JavaScript. Stages are named for what the main thread and a database's
// worker do per transfer; samples no rule claims are `other`. Rules match a frame's file (a src/ or node_modules/ path
// suffix, or a node: module) or its function name.
// Run alone: node --import tsx bench/server-profile/stages.ts <file.cpuprofile> [µs per transfer of that thread]

import { readFileSync } from 'node:fs';

interface Frame { functionName: string; url: string }
interface ProfileNode { id: number; callFrame: Frame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

interface Rule { stage: string; file?: RegExp; fn?: RegExp }

/** Leaf-only rules: what V8 itself reports as the sampled "function". */
const leafRules: Rule[] = [
  { stage: 'GC', fn: /^\(garbage collector\)$/ },
  { stage: 'idle', fn: /^\(idle\)$/ },
];

/** Frame rules: the innermost frame one of them matches decides (rules tried in this order on each frame). */
const frameRules: Rule[] = [
  { stage: 'commit log (encode, write, fdatasync)', file: /\/durability\/|\/host\/persistence\.|^node:fs$/ },
  { stage: 'datastore', file: /\/datastore\// },
  { stage: 'subscriptions (per commit)', file: /\/subscription\/(manager|eval|delta)/ },
  { stage: 'WebSocket receive (frame parse)', fn: /^onStreamRead$/ },
  { stage: 'socket write (frames, writev)', fn: /^(writeMessages|encodeWsFrames|sendReady|flush)$/, file: /^node:net$|node:internal\/stream_base_commons|node:internal\/streams\/writable/ },
  { stage: 'main↔worker hop (records, postMessage)', fn: /^(postMessage|receiveMessageOnPort)$/, file: /\/host\/worker\/(protocol|entry|proxy)\.|node:internal\/worker|messageport/ },
  { stage: 'reply (encode, slot, durable release)', fn: /^(reply|replyGuarded|encodeReducerResult|encode|queued|checkOutboundLimit|whenDurable|transaction)$/, file: /\/server\/websocket\/fanout\.|\/sats\/bsatn\.|\/subscription\/messages\./ },
  { stage: 'WebSocket receive (frame parse)', file: /ws\/lib\/|node:internal\/streams\/readable|node:events/ },
  { stage: 'session inbound (decode, queue, meter)', file: /\/server\/websocket\/|\/server\/byte-budget\./ },
  { stage: 'module (isolate entry + its JS)', fn: /^applySync$/ },
  { stage: 'host call path (database, runtime, syscalls)', file: /\/host\// },
  { stage: 'event loop, timers, promises', fn: /^\(program\)$/, file: /node:internal\/(timers|process\/task_queues|async_hooks)/ },
];

function matches(rule: Rule, f: Frame): boolean {
  return (rule.file !== undefined && rule.file.test(f.url)) || (rule.fn !== undefined && rule.fn.test(f.functionName));
}

/** Busy microseconds per stage (idle left out). */
export function stageTimes(text: string): Map<string, number> {
  const p = JSON.parse(text) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const stageOfNode = new Map<number, string>();
  const stageOf = (id: number): string => {
    const known = stageOfNode.get(id);
    if (known !== undefined) return known;
    const leaf = byId.get(id)!.callFrame;
    let stage = leafRules.find((r) => matches(r, leaf))?.stage;
    for (let cur: number | undefined = id; stage === undefined && cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      stage = frameRules.find((r) => matches(r, frame))?.stage;
    }
    stageOfNode.set(id, stage ??= 'other');
    return stage;
  };
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const stage = stageOf(p.samples[i]!);
    if (stage !== 'idle') out.set(stage, (out.get(stage) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  return out;
}

/** The stages as lines: share of busy time and, given the thread's CPU-µs per transfer, µs per transfer. */
export function formatStages(text: string, threadMicrosPerTransfer: number | undefined): string {
  const times = [...stageTimes(text)].sort((a, b) => b[1] - a[1]);
  const busy = times.reduce((a, [, us]) => a + us, 0);
  return times.map(([stage, us]) => {
    const share = us / busy;
    const perTransfer = threadMicrosPerTransfer === undefined ? '' : `${(share * threadMicrosPerTransfer).toFixed(2).padStart(6)} µs  `;
    return `  ${perTransfer}${(100 * share).toFixed(1).padStart(5)}%  ${stage}`;
  }).join('\n');
}

if (process.argv[1]?.endsWith('stages.ts')) {
  const perTransfer = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  console.log(formatStages(readFileSync(process.argv[2]!, 'utf8'), perTransfer));
}
