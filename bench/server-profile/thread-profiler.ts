// bench/server-profile/thread-profiler.ts — V8 CPU profiles of a running server's main thread and of each of its
// worker threads at once, over the Chrome DevTools Protocol of a server started with `--inspect=127.0.0.1:0`.
//
// Owns: the inspector socket it opens and the worker sessions it attaches (NodeWorker domain); nothing in the server.
// May call: ws, node built-ins.
//
// `--cpu-prof` profiles only the main thread of a server in worker mode (the database workers start with no execArgv),
// so the database worker's share of a transfer was invisible; here every thread's profile starts and stops together.

import WebSocket from 'ws';

const callTimeoutMs = 60_000;
/** Microseconds between samples (V8's default): finer sampling costs the server more than it shows. */
const samplingIntervalMicros = 1_000;

/** Bytes between allocation samples (HeapProfiler.startSampling). */
const allocationSamplingBytes = 4096;

type Params = Record<string, unknown>;
interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }
interface Reply { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Params }

/** The inspector's WebSocket URL from the server's stderr ("Debugger listening on ws://…"), once it was printed. */
export function inspectorUrlIn(log: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(log)?.[1];
}

export class ThreadProfiler {
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  /** Worker sessions attached by NodeWorker.enable: session id → the thread's title (its URL). */
  private readonly workers = new Map<string, string>();
  private readonly workerReplies = new Map<string, (reply: Reply) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onMessage(JSON.parse(data.toString()) as Reply));
  }

  static async connect(url: string): Promise<ThreadProfiler> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    const p = new ThreadProfiler(ws);
    await p.call('NodeWorker.enable', { waitForDebuggerOnStart: false });
    return p;
  }

  private onMessage(msg: Reply): void {
    if (msg.id !== undefined) {
      this.waiting.get(msg.id)?.(msg);
      this.waiting.delete(msg.id);
      return;
    }
    const params = msg.params ?? {};
    if (msg.method === 'NodeWorker.attachedToWorker') {
      const info = params.workerInfo as { title?: string; url?: string } | undefined;
      this.workers.set(params.sessionId as string, info?.url ?? info?.title ?? '?');
    } else if (msg.method === 'NodeWorker.receivedMessageFromWorker') {
      const inner = JSON.parse(params.message as string) as Reply;
      if (inner.id === undefined) return;
      const key = `${params.sessionId as string}:${inner.id}`;
      this.workerReplies.get(key)?.(inner);
      this.workerReplies.delete(key);
    }
  }

  private call(method: string, params: Params = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inspector ${method}: no answer`)), callTimeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.error !== undefined) reject(new Error(`inspector ${method}: ${reply.error.message}`));
        else resolve(reply.result);
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The same call in a worker thread's session (its answer comes back as a NodeWorker event). */
  private async callWorker(sessionId: string, method: string, params: Params = {}): Promise<unknown> {
    const id = this.nextId++;
    const answer = new Promise<Reply>((resolve) => this.workerReplies.set(`${sessionId}:${id}`, resolve));
    await this.call('NodeWorker.sendMessageToWorker', { sessionId, message: JSON.stringify({ id, method, params }) });
    const reply = await answer;
    if (reply.error !== undefined) throw new Error(`inspector (worker) ${method}: ${reply.error.message}`);
    return reply.result;
  }

  /** Every thread's call of `method`, the main thread's first; worker results keyed by their session. */
  private async everyThread(method: string, params: Params = {}): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>([['main', await this.call(method, params)]]);
    for (const sessionId of this.workers.keys()) out.set(sessionId, await this.callWorker(sessionId, method, params));
    return out;
  }

  /** Starts sampling on every thread. */
  async start(): Promise<void> {
    await this.everyThread('Profiler.enable');
    await this.everyThread('Profiler.setSamplingInterval', { interval: samplingIntervalMicros });
    await this.everyThread('Profiler.start');
  }

  /** Stops sampling; each thread's profile (.cpuprofile JSON text) by a name: `main`, `worker-<n>`. */
  async stop(): Promise<Map<string, string>> {
    const results = await this.everyThread('Profiler.stop');
    const out = new Map<string, string>();
    let n = 0;
    for (const [session, result] of results) {
      out.set(session === 'main' ? 'main' : `worker-${++n}`, JSON.stringify((result as { profile: unknown }).profile));
    }
    return out;
  }

  /** Starts V8's sampling heap profiler on every thread, counting objects the GC has already collected too. */
  async startAllocations(): Promise<void> {
    await this.everyThread('HeapProfiler.startSampling', {
      samplingInterval: allocationSamplingBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops it; each thread's sampled bytes by allocation site (`function file:line  <- caller`), by thread name. */
  async stopAllocations(): Promise<Map<string, Map<string, number>>> {
    const results = await this.everyThread('HeapProfiler.stopSampling');
    const out = new Map<string, Map<string, number>>();
    let n = 0;
    for (const [session, result] of results) {
      const bySite = new Map<string, number>();
      const walk = (node: HeapNode, caller: string): void => {
        const f = node.callFrame;
        const here = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
        if (node.selfSize > 0) bySite.set(`${here}  <- ${caller}`, (bySite.get(`${here}  <- ${caller}`) ?? 0) + node.selfSize);
        for (const c of node.children) walk(c, here);
      };
      walk((result as { profile: { head: HeapNode } }).profile.head, '');
      out.set(session === 'main' ? 'main' : `worker-${++n}`, bySite);
    }
    return out;
  }

  close(): void { this.ws.terminate(); }
}
