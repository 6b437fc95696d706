'use client';

import { useMemo, type ReactNode } from 'react';
import type { Identity } from 'spacetimedb';
import { SpacetimeDBProvider } from 'spacetimedb/react';
import { DbConnection, type ErrorContext } from '../src/module_bindings';

// `spacetime init` and `spacetime dev` write these to .env.local; Next inlines NEXT_PUBLIC_* at build time.
const HOST = process.env.NEXT_PUBLIC_SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = process.env.NEXT_PUBLIC_SPACETIMEDB_DB_NAME ?? 'nextjs-ts';
const TOKEN_KEY = `${HOST}/${DB_NAME}/auth_token`;

export function Providers({ children }: { children: ReactNode }) {
  // The connection lives in the browser only: the server render shows the "Connecting..." state.
  const connectionBuilder = useMemo(
    () =>
      DbConnection.builder()
        .withUri(HOST)
        .withDatabaseName(DB_NAME)
        .withToken(typeof window === 'undefined' ? undefined : localStorage.getItem(TOKEN_KEY) || undefined)
        .onConnect((_conn: DbConnection, _identity: Identity, token: string) => {
          localStorage.setItem(TOKEN_KEY, token);
        })
        .onConnectError((_ctx: ErrorContext, error: Error) => console.error('Error connecting to SpacetimeDB:', error)),
    []
  );
  return <SpacetimeDBProvider connectionBuilder={connectionBuilder}>{children}</SpacetimeDBProvider>;
}
