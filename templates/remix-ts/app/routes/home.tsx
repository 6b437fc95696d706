import { useEffect, useState, type FormEvent } from 'react';
import type { Identity } from 'spacetimedb';
import { SpacetimeDBProvider, useReducer, useSpacetimeDB, useTable } from 'spacetimedb/react';
import { DbConnection, reducers, tables, type ErrorContext } from '../../src/module_bindings';

// `spacetime init` and `spacetime dev` write these to .env.local; Vite inlines VITE_* at build time.
const HOST = import.meta.env.VITE_SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = import.meta.env.VITE_SPACETIMEDB_DB_NAME ?? 'remix-ts';
const TOKEN_KEY = `${HOST}/${DB_NAME}/auth_token`;

function connectionBuilder() {
  return DbConnection.builder()
    .withUri(HOST)
    .withDatabaseName(DB_NAME)
    .withToken(localStorage.getItem(TOKEN_KEY) || undefined)
    .onConnect((_conn: DbConnection, _identity: Identity, token: string) => {
      localStorage.setItem(TOKEN_KEY, token);
    })
    .onConnectError((_ctx: ErrorContext, error: Error) => console.error('Error connecting to SpacetimeDB:', error));
}

export default function Home() {
  // The server render (and the first client render, so hydration matches) is the "Connecting..." state; the
  // connection needs the browser's localStorage and WebSocket.
  const [builder, setBuilder] = useState<ReturnType<typeof connectionBuilder>>();
  useEffect(() => setBuilder(connectionBuilder()), []);
  return (
    <main>
      <h1>People</h1>
      {builder === undefined ? (
        <p data-testid="status">Connecting...</p>
      ) : (
        <SpacetimeDBProvider connectionBuilder={builder}>
          <People />
        </SpacetimeDBProvider>
      )}
    </main>
  );
}

function People() {
  const { identity, isActive } = useSpacetimeDB();
  const [people] = useTable(tables.person);
  const addPerson = useReducer(reducers.add);
  const [name, setName] = useState('');

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (name.trim() === '') return;
    void addPerson({ name: name.trim() });
    setName('');
  };

  return (
    <>
      <p data-testid="status">{isActive ? 'Connected' : 'Connecting...'}</p>
      <p>Identity: <code data-testid="identity">{identity?.toHexString() ?? ''}</code></p>
      <form onSubmit={onSubmit}>
        <input aria-label="Name" placeholder="Name" value={name} onChange={e => setName(e.target.value)} />
        <button type="submit">Add</button>
      </form>
      <ul data-testid="people">
        {people.map((person, i) => <li key={i}>{person.name}</li>)}
      </ul>
    </>
  );
}
