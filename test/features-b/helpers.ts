// Test helpers for issue 6 part B (views, RLS, event tables, clear, JWT payload): bundles the view-b fixture the way
// `spacetime build` does, and runs a real host Database behind a real WebSocket server (attachWebSocket + a real
// TokenAuthority) in this process, so tests can drive it with the official SDK and inspect it directly.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { loadOrCreateKeys } from '../../src/auth/keys.js';
import { TokenAuthority } from '../../src/auth/tokens.js';
import { Database, type Caller } from '../../src/host/database.js';
import { attachWebSocket, type AttachedWebSockets } from '../../src/server/websocket/attach.js';

export const fixtureName = 'view-b';
export const databaseName = 'viewb';
export const ownerIdentity = 0xc200_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0001n;

let bundled: string | undefined;

export async function bundleFixture(): Promise<string> {
  if (bundled !== undefined) return bundled;
  const r = await esbuild.build({
    entryPoints: [join(import.meta.dirname, '..', 'fixtures', 'modules', fixtureName, 'src', 'index.ts')],
    bundle: true, write: false, format: 'esm', platform: 'browser', target: 'esnext',
    external: ['spacetime:sys*'], conditions: ['production'], mainFields: ['module', 'main'], logLevel: 'silent',
  });
  bundled = r.outputFiles[0]!.text;
  return bundled;
}

export interface FeatureServer {
  url: string;
  db: Database;
  tokens: TokenAuthority;
  errors: unknown[];
  close(): Promise<void>;
}

/** A Database running the fixture, served over WebSocket on a free loopback port. `reducerTimeoutMs` bounds views too. */
export async function startFeatureServer(options: { reducerTimeoutMs?: number } = {}): Promise<FeatureServer> {
  const dir = mkdtempSync(join(tmpdir(), 'stdb-fb-'));
  const tokens = new TokenAuthority({ keys: await loadOrCreateKeys(join(dir, 'keys')) });
  const db = await Database.create({
    identity: 0xc200abcdn, ownerIdentity, limits: { reducerTimeoutMs: options.reducerTimeoutMs ?? 2000 },
  }, await bundleFixture());
  const server: Server = createServer((req, res) => {
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
  const errors: unknown[] = [];
  const attached: AttachedWebSockets = attachWebSocket(server, {
    resolveDatabase: (n) => (n === databaseName ? db : undefined),
    auth: tokens,
    onError: (e) => errors.push(e),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, db, tokens, errors,
    async close() {
      await attached.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function callerOf(identity: bigint): Caller {
  return { identity, connectionId: identity & 0xffffn, jwtPayload: undefined };
}

export function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);
}
