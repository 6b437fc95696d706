// Test helpers for issue 6 part B (views, RLS, event tables, clear, JWT payload): bundles the view-b fixture the way
// `spacetime build` does, and runs a real host Database behind a real WebSocket server (attachWebSocket + a real
// TokenAuthority) in this process, so tests can drive it with the official SDK and inspect it directly.
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateKeys } from '../../src/auth/keys.js';
import { TokenAuthority } from '../../src/auth/tokens.js';
import { Database, type Caller } from '../../src/host/database.js';
import { attachWebSocket, type AttachedWebSockets } from '../../src/server/websocket/attach.js';
import { bundleFixture as bundleModuleFixture, websocketTokenServer } from '../ws/helpers.js';

export const fixtureName = 'view-b';
export const databaseName = 'viewb';
export const ownerIdentity = 0xc200_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0001n;

/** Bundles the fixture the way `spacetime build` does (cached). */
export function bundleFixture(): Promise<string> {
  return bundleModuleFixture(fixtureName);
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
  const server = websocketTokenServer(tokens);
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
