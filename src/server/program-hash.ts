// server/program-hash.ts — BLAKE3 of module programs (control data's content address, the NoUpdateNeeded check, the
// migration token's input), computed on a thread of its own.
//
// Owns: the program-hash thread: started on first use, unref'd so it never keeps the process alive, never ended (a
// thread that dies is replaced at the next hash; what it was hashing is rejected); the last program's hash, because an
// update hashes the same text twice (pre_publish, then the PUT that carries its token) and during a migration that
// second hash takes the core the main thread would wait for (BENCHMARKS "Why /v1/ping slows").
// May call: @noble/hashes, node:worker_threads, host/worker/priority.ts (the hash thread lowers itself; the main
// thread lowers V8's and libuv's threads: SPACETIME_BACKGROUND_NICE).
//
// Why a thread: BLAKE3 in JS takes 40–90 ms of CPU for a 1.1 MB bundle (a module with the official library), and a
// publish hashed its program on the main thread 1–4 times (pre_publish, the NoUpdateNeeded check, the token check,
// storing it), so /v1/ping and every other database's calls waited behind each hash: /v1/ping p99 40–50 ms while
// another database migrated (bench:isolation, session 5; a 64 MiB program would hold the thread for seconds). Here a
// hash costs the main thread a copy of the text into the message.

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { blake3 } from '@noble/hashes/blake3.js';
import { lowerOtherThreads, lowerThisThread } from '../host/worker/priority.js';

/** workerData of the hash thread: this module, loaded there, serves hashes instead of asking for them. */
const hasherMark = 'spacetime program-hash thread';

if (!isMainThread && workerData === hasherMark) {
  lowerThisThread(); // behind the main thread for the CPU when SPACETIME_BACKGROUND_NICE asks (host/worker/priority.ts)
  parentPort!.on('message', ({ id, program }: { id: number; program: string }) => {
    parentPort!.postMessage({ id, hash: Buffer.from(blake3(new TextEncoder().encode(program))).toString('hex') });
  });
}

type Pending = { resolve: (hash: string) => void; reject: (error: Error) => void };
let hasher: { worker: Worker; pending: Map<number, Pending> } | undefined;
let nextId = 1;

function startHasher(): NonNullable<typeof hasher> {
  const here = import.meta.url;
  // Running from source (tests under tsx): Node 20 does not pass --import loader hooks to workers.
  const load = here.endsWith('.ts')
    ? `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(here)}); })`
    : `import(${JSON.stringify(here)})`;
  const worker = new Worker(load, { eval: true, execArgv: [], workerData: hasherMark });
  worker.unref();
  worker.once('online', () => lowerOtherThreads());
  const started = { worker, pending: new Map<number, Pending>() };
  worker.on('message', ({ id, hash }: { id: number; hash: string }) => {
    const p = started.pending.get(id);
    started.pending.delete(id);
    p?.resolve(hash);
    if (started.pending.size === 0) worker.unref();
  });
  const gone = (error: Error) => {
    if (hasher === started) hasher = undefined;
    for (const p of started.pending.values()) p.reject(error);
    started.pending.clear();
  };
  worker.on('error', gone);
  worker.on('exit', (code) => gone(new Error(`the program-hash thread exited (code ${code})`)));
  return started;
}

/**
 * The last program hashed and its hash (a comparison of equal texts is a memcmp: ~0.1 ms per MB), kept this long so
 * an idle server does not hold a program text it no longer needs; `spacetime publish -y` sends the PUT right after.
 */
const lastHashKeptMs = 60_000;
let lastHashed: { program: string; hash: Promise<string>; forget: NodeJS.Timeout } | undefined;

/** BLAKE3 hex of a program's UTF-8 bytes, computed off the main thread. */
export function programHash(program: string): Promise<string> {
  if (lastHashed !== undefined && lastHashed.program === program) return lastHashed.hash;
  if (lastHashed !== undefined) clearTimeout(lastHashed.forget);
  const hash = hashOnThread(program);
  const forget = () => {
    if (lastHashed?.hash === hash) lastHashed = undefined;
  };
  lastHashed = { program, hash, forget: setTimeout(forget, lastHashKeptMs).unref() };
  hash.catch(forget);
  return hash;
}

function hashOnThread(program: string): Promise<string> {
  const h = (hasher ??= startHasher());
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    h.pending.set(id, { resolve, reject });
    h.worker.ref(); // an answer is awaited: the process waits for it
    h.worker.postMessage({ id, program });
  });
}
