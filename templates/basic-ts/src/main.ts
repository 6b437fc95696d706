// A Node client for the module in ./spacetimedb, using the bindings that `spacetime generate` writes to
// src/module_bindings (`spacetime init` and `spacetime dev` write them for you).
// Usage: npm run dev [-- NAME]   (with NAME: adds a person, waits until the row arrives, then exits)
import type { Identity } from 'spacetimedb';
import { DbConnection, tables, type ErrorContext } from './module_bindings/index.js';

// `spacetime init` and `spacetime dev` write the database name and server address to .env.local; variables already
// in the environment (set by `spacetime dev` for the client it starts) win over the file.
try {
  process.loadEnvFile('.env.local');
} catch {
  // No .env.local: the environment or the defaults below.
}

const HOST = process.env.SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = process.env.SPACETIMEDB_DB_NAME ?? 'basic-ts';
const nameToAdd = process.argv[2];
const waitForRowMs = 10_000;

console.log(`Database: ${DB_NAME} at ${HOST}`);

const conn = DbConnection.builder()
  .withUri(HOST)
  .withDatabaseName(DB_NAME)
  .onConnect((conn: DbConnection, identity: Identity, _token: string) => {
    console.log('Connected to SpacetimeDB!');
    console.log(`Identity: ${identity.toHexString().slice(0, 16)}...`);

    conn.db.person.onInsert((_ctx, person) => {
      console.log(`New person: ${person.name}`);
      if (nameToAdd !== undefined && person.name === nameToAdd) {
        conn.disconnect();
        process.exit(0);
      }
    });

    conn
      .subscriptionBuilder()
      .onApplied(() => {
        const people = [...conn.db.person.iter()].map(p => p.name);
        console.log(`People: ${people.length === 0 ? '(none)' : people.join(', ')}`);
        if (nameToAdd !== undefined) {
          void conn.reducers.add({ name: nameToAdd });
          setTimeout(() => {
            console.error(`Did not see ${nameToAdd} within ${waitForRowMs} ms`);
            process.exit(1);
          }, waitForRowMs).unref();
        }
      })
      .subscribe(tables.person);
  })
  .onDisconnect(() => {
    console.log('Disconnected from SpacetimeDB');
  })
  .onConnectError((_ctx: ErrorContext, error: Error) => {
    console.error('Connection error:', error);
    process.exit(1);
  })
  .build();

process.on('SIGINT', () => {
  conn.disconnect();
  process.exit(0);
});
