// Official-SDK client helpers for the features-b tests: connect with the generated view-b bindings, subscribe and
// wait for applied / error, wait for a condition on the client cache. The bindings are generated at first use by our
// `spacetime generate` (test/harness.ts generateBindings); call cleanupTempDirs() from `after` to remove them.
import { after, before } from 'node:test';
import { cleanupTempDirs, generateBindings, until } from '../harness.js';
import { databaseName, fixtureName, startFeatureServer, within, type FeatureServer } from './helpers.js';

/** `conn` is a generated DbConnection, typed loosely because the bindings exist only at test time. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Client { conn: any; identityHex: string; token: string }

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let bindings: Promise<any> | undefined;

export async function connect(url: string, token?: string): Promise<Client> {
  bindings ??= generateBindings(fixtureName).then((g) => g.load());
  const { DbConnection } = await bindings;
  return within(new Promise<Client>((resolve, reject) => {
    let b = DbConnection.builder()
      .withUri(url)
      .withDatabaseName(databaseName)
      .onConnect((conn: unknown, identity: { toHexString(): string }, tok: string) =>
        resolve({ conn, identityHex: identity.toHexString(), token: tok }))
      .onConnectError((_ctx: unknown, err: Error) => reject(err));
    if (token !== undefined) b = b.withToken(token);
    b.build();
  }), 'connect');
}

/** Subscribes; resolves on SubscribeApplied, rejects with the server's error text. `onError` sees later errors. */
export function subscribe(c: Client, queries: string[], onError?: (message: string) => void): Promise<{ unsubscribe(): void }> {
  let applied = false;
  return within(new Promise((resolve, reject) => {
    const handle = c.conn.subscriptionBuilder()
      .onApplied(() => { applied = true; resolve(handle); })
      .onError((ctx: { event?: unknown }) => {
        const message = String((ctx as { event?: Error }).event?.message ?? ctx.event ?? 'subscription error');
        if (!applied) reject(new Error(message)); else onError?.(message);
      })
      .subscribe(queries);
  }), `subscribe ${queries.join('; ')}`);
}

/** Polls `cond` until true (the SDK applies updates asynchronously after the reducer's promise settles). */
export function eventually(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  return until(what, cond, ms);
}

/**
 * A test file's feature server and two SDK clients of it: started before the file's tests (handed to `take`),
 * disconnected and closed after them.
 */
export function serverWithTwoClients(take: (s: { srv: FeatureServer; a: Client; b: Client }) => void,
  options: { reducerTimeoutMs?: number } = {}): void {
  let s: { srv: FeatureServer; a: Client; b: Client } | undefined;
  before(async () => {
    const srv = await startFeatureServer(options);
    s = { srv, a: await connect(srv.url), b: await connect(srv.url) };
    take(s);
  });
  after(async () => {
    s?.a.conn.disconnect();
    s?.b.conn.disconnect();
    await s?.srv.close();
    cleanupTempDirs();
  });
}
