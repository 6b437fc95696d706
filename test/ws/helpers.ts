// Test helpers for the WebSocket layer: a real host Database running a fixture module, a real TokenAuthority,
// an http.Server with attachWebSocket, and a raw `ws` client that decodes server frames strictly.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import WebSocket from 'ws';
import { loadOrCreateKeys } from '../../src/auth/keys.js';
import { TokenAuthority } from '../../src/auth/tokens.js';
import { Database } from '../../src/host/database.js';
import { attachWebSocket, type AttachedWebSockets, type FrameCompression } from '../../src/server/websocket/attach.js';
import type { SessionLimits } from '../../src/server/websocket/session.js';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import type { CompileQuery } from '../../src/subscription/manager.js';
import { decodeServerMessages, encodeClientMessage, type ClientMessage, type ServerMessage } from '../../src/subscription/messages.js';

const bundles = new Map<string, string>();

/** Bundles test/fixtures/modules/<name> the way `spacetime build` does. */
export async function bundleFixture(name: string): Promise<string> {
  const cached = bundles.get(name);
  if (cached !== undefined) return cached;
  const r = await esbuild.build({
    entryPoints: [join(import.meta.dirname, '..', 'fixtures', 'modules', name, 'src', 'index.ts')],
    bundle: true, write: false, format: 'esm', platform: 'browser', target: 'esnext',
    external: ['spacetime:sys*'], conditions: ['production'], mainFields: ['module', 'main'], logLevel: 'silent',
  });
  const code = r.outputFiles[0].text;
  bundles.set(name, code);
  return code;
}

export interface TestServer {
  url: string;
  wsUrl: string;
  db: Database;
  tokens: TokenAuthority;
  server: Server;
  attached: AttachedWebSockets;
  errors: unknown[];
  close(): Promise<void>;
}

export const ownerIdentity = 0xc2001234n;

/**
 * An http.Server with the one HTTP route the official SDK needs besides the socket: POST
 * /v1/identity/websocket-token trades a saved token for a short-lived one. Everything else is 404.
 */
export function websocketTokenServer(tokens: TokenAuthority): Server {
  return createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/identity/websocket-token') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    tokens.verify(token).then((v) => tokens.websocketToken(v)).then(
      (t) => { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify({ token: t })); },
      () => { res.statusCode = 401; res.end('Authorization failed'); },
    );
  });
}

export async function startTestServer(
  options: {
    module?: string; compile?: CompileQuery; db?: (db: Database) => Database; limits?: Partial<SessionLimits>;
    frameCompression?: FrameCompression;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-ws-'));
  const tokens = new TokenAuthority({ keys: await loadOrCreateKeys(join(dir, 'keys')) });
  const db = await Database.create({ identity: 0xc200abcdn, ownerIdentity }, await bundleFixture(options.module ?? 'basic'));
  const served = options.db ? options.db(db) : db;
  const server = websocketTokenServer(tokens);
  const errors: unknown[] = [];
  const attached = attachWebSocket(server, {
    resolveDatabase: (n) => (n === 'chat' ? served : undefined),
    auth: tokens,
    compile: options.compile,
    frameCompression: options.frameCompression,
    limits: options.limits,
    onError: (e) => errors.push(e),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}`, db, tokens, server, attached, errors,
    async close() {
      await attached.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RawFrame { tag: number; messages: ServerMessage[] }

/** A raw protocol client: every binary frame is un-tagged, decompressed and strictly decoded. */
export class RawClient {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly waiters: (() => void)[] = [];
  private readonly queue: ServerMessage[] = [];

  constructor(readonly ws: WebSocket) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer) => {
      const tag = data[0];
      const body = data.subarray(1);
      const plain = tag === 0 ? body : tag === 1 ? brotliDecompressSync(body) : tag === 2 ? gunzipSync(body) : undefined;
      if (plain === undefined) throw new Error(`bad compression tag ${tag}`);
      const messages = decodeServerMessages(new Uint8Array(plain));
      this.frames.push({ tag, messages });
      this.queue.push(...messages);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of this.waiters.splice(0)) w();
    }));
    ws.on('error', () => undefined);
  }

  static async open(
    url: string, protocols: string[] = ['v3.bsatn.spacetimedb', 'v2.bsatn.spacetimedb'], headers: Record<string, string> = {},
    options: { autoPong?: boolean } = {},
  ): Promise<RawClient> {
    const ws = new WebSocket(url, protocols, { headers, autoPong: options.autoPong ?? true });
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
    return c;
  }

  /** The next server message (waits up to `timeoutMs`). */
  async next(timeoutMs = 5000): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('socket closed while waiting for a message');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a server message');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.queue.shift()!;
  }

  /** Asserts nothing arrives within `ms`. */
  async nothingFor(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.length === 0;
  }

  send(...messages: ClientMessage[]): void {
    const w = new BsatnWriter();
    for (const m of messages) encodeClientMessage(w, m);
    this.ws.send(w.finish());
  }
}

/** BSATN of a single String argument (the `add(name)` reducer's parameter product). */
export function stringArgs(s: string): Uint8Array {
  const w = new BsatnWriter();
  w.writeString(s);
  return w.finish();
}
