import { createApp, h } from 'vue';
import type { Identity } from 'spacetimedb';
import { SpacetimeDBProvider } from 'spacetimedb/vue';
import App from './App.vue';
import { DbConnection, type ErrorContext } from './module_bindings/index.ts';

// `spacetime init` and `spacetime dev` write these to .env.local.
const HOST = import.meta.env.VITE_SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = import.meta.env.VITE_SPACETIMEDB_DB_NAME ?? 'vue-ts';
const TOKEN_KEY = `${HOST}/${DB_NAME}/auth_token`;

const connectionBuilder = DbConnection.builder()
  .withUri(HOST)
  .withDatabaseName(DB_NAME)
  .withToken(localStorage.getItem(TOKEN_KEY) || undefined)
  .onConnect((_conn: DbConnection, _identity: Identity, token: string) => {
    localStorage.setItem(TOKEN_KEY, token);
  })
  .onConnectError((_ctx: ErrorContext, error: Error) => console.error('Error connecting to SpacetimeDB:', error));

createApp({
  render: () => h(SpacetimeDBProvider, { connectionBuilder }, () => h(App)),
}).mount('#app');
