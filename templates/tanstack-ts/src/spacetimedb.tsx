import { useEffect, useState, type ReactNode } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { Identity } from 'spacetimedb';
import { SpacetimeDBProvider, SpacetimeDBQueryClient } from 'spacetimedb/tanstack';
import { DbConnection, type ErrorContext } from './module_bindings';

// `spacetime init` and `spacetime dev` write these to .env.local; Vite inlines VITE_* at build time.
const HOST = import.meta.env.VITE_SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = import.meta.env.VITE_SPACETIMEDB_DB_NAME ?? 'tanstack-ts';
const TOKEN_KEY = `${HOST}/${DB_NAME}/auth_token`;

/** Subscriptions become TanStack Query data: `useSpacetimeDBQuery(tables.x)` is a query kept live by the connection. */
function createClients() {
  const spacetime = new SpacetimeDBQueryClient();
  const queryClient = new QueryClient({
    defaultOptions: { queries: { queryFn: spacetime.queryFn, staleTime: Infinity, refetchOnWindowFocus: false } },
  });
  spacetime.connect(queryClient);
  const connectionBuilder = DbConnection.builder()
    .withUri(HOST)
    .withDatabaseName(DB_NAME)
    .withToken(localStorage.getItem(TOKEN_KEY) || undefined)
    .onConnect((conn: DbConnection, _identity: Identity, token: string) => {
      localStorage.setItem(TOKEN_KEY, token);
      spacetime.setConnection(conn);
    })
    .onConnectError((_ctx: ErrorContext, error: Error) => console.error('Error connecting to SpacetimeDB:', error));
  return { queryClient, connectionBuilder };
}

/**
 * The connection lives in the browser only (it needs localStorage and a WebSocket): the server render, and the first
 * client render that hydrates it, show `fallback`.
 */
export function SpacetimeDB({ children, fallback }: { children: ReactNode; fallback: ReactNode }) {
  const [clients, setClients] = useState<ReturnType<typeof createClients>>();
  useEffect(() => setClients(createClients()), []);
  if (clients === undefined) return fallback;
  return (
    <QueryClientProvider client={clients.queryClient}>
      <SpacetimeDBProvider connectionBuilder={clients.connectionBuilder}>{children}</SpacetimeDBProvider>
    </QueryClientProvider>
  );
}
