// An interactive Node client: prints everyone in the `person` table and every change to it, and adds a person for
// each line typed on stdin. The identity's token is kept in .spacetime-token.json, so a restart is the same user.
// Usage: npm run dev
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Identity } from 'spacetimedb';
import { DbConnection, tables, type ErrorContext } from './module_bindings/index.js';

// `spacetime init` and `spacetime dev` write these to .env.local; the environment wins over the file.
try {
  process.loadEnvFile('.env.local');
} catch {
  // No .env.local: the environment or the defaults below.
}

const HOST = process.env.SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = process.env.SPACETIMEDB_DB_NAME ?? 'nodejs-ts';
const tokenFile = '.spacetime-token.json';
const tokenKey = `${HOST}/${DB_NAME}`;

function readTokens(): Record<string, string> {
  if (!existsSync(tokenFile)) return {};
  try {
    return JSON.parse(readFileSync(tokenFile, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

function saveToken(token: string): void {
  writeFileSync(tokenFile, JSON.stringify({ ...readTokens(), [tokenKey]: token }, null, 2) + '\n');
}

console.log(`Connecting to ${DB_NAME} at ${HOST}...`);

const conn = DbConnection.builder()
  .withUri(HOST)
  .withDatabaseName(DB_NAME)
  .withToken(readTokens()[tokenKey])
  .onConnect(onConnect)
  .onDisconnect(() => console.log('Disconnected from SpacetimeDB'))
  .onConnectError((_ctx: ErrorContext, error: Error) => {
    console.error('Connection error:', error);
    process.exit(1);
  })
  .build();

function onConnect(conn: DbConnection, identity: Identity, token: string): void {
  saveToken(token);
  console.log('Connected to SpacetimeDB!');
  console.log(`Identity: ${identity.toHexString()}`);

  conn.db.person.onInsert((_ctx, person) => console.log(`[Added] ${person.name}`));
  conn.db.person.onDelete((_ctx, person) => console.log(`[Removed] ${person.name}`));

  conn
    .subscriptionBuilder()
    .onApplied(() => {
      const people = [...conn.db.person.iter()].map(p => p.name);
      console.log(`People (${people.length}): ${people.length === 0 ? '(none yet)' : people.join(', ')}`);
      console.log('Type a name and press Enter to add a person; Ctrl+C to quit.');
    })
    .onError((_ctx, error) => console.error('Subscription error:', error))
    .subscribe(tables.person);
}

createInterface({ input: process.stdin }).on('line', line => {
  const name = line.trim();
  if (name !== '') void conn.reducers.add({ name });
});

process.on('SIGINT', () => {
  conn.disconnect();
  process.exit(0);
});
