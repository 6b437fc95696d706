// The defaults, used by a bare `ng build` / `ng serve`. `npm run dev` and `npm run build` replace this file with
// environment.local.ts, written from .env.local by scripts/env.mjs (see angular.json's fileReplacements).
export const environment = {
  SPACETIMEDB_HOST: 'ws://127.0.0.1:3000',
  SPACETIMEDB_DB_NAME: 'angular-ts',
};
