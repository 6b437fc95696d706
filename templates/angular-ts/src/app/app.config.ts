import { provideBrowserGlobalErrorListeners, provideZonelessChangeDetection, type ApplicationConfig } from '@angular/core';
import type { Identity } from 'spacetimedb';
import { provideSpacetimeDB } from 'spacetimedb/angular';
import { environment } from '../environments/environment';
import { DbConnection, type ErrorContext } from '../module_bindings';

const HOST = environment.SPACETIMEDB_HOST;
const DB_NAME = environment.SPACETIMEDB_DB_NAME;
const TOKEN_KEY = `${HOST}/${DB_NAME}/auth_token`;

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    // Signals (the connection state, the table rows) drive rendering: no zone.js.
    provideZonelessChangeDetection(),
    provideSpacetimeDB(
      DbConnection.builder()
        .withUri(HOST)
        .withDatabaseName(DB_NAME)
        .withToken(localStorage.getItem(TOKEN_KEY) || undefined)
        .onConnect((_conn: DbConnection, _identity: Identity, token: string) => {
          localStorage.setItem(TOKEN_KEY, token);
        })
        .onConnectError((_ctx: ErrorContext, error: Error) => console.error('Error connecting to SpacetimeDB:', error))
    ),
  ],
};
