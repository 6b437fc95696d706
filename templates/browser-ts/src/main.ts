// A plain TypeScript page (no framework): it lists the `person` table live and adds people with the form.
import type { Identity } from 'spacetimedb';
import { DbConnection, tables, type ErrorContext } from './module_bindings/index.ts';

// `spacetime init` and `spacetime dev` write these to .env.local.
const HOST = import.meta.env.VITE_SPACETIMEDB_HOST ?? 'ws://127.0.0.1:3000';
const DB_NAME = import.meta.env.VITE_SPACETIMEDB_DB_NAME ?? 'browser-ts';
const TOKEN_KEY = `${HOST}/${DB_NAME}/auth_token`;

const status = document.querySelector<HTMLElement>('[data-testid="status"]')!;
const identityText = document.querySelector<HTMLElement>('[data-testid="identity"]')!;
const peopleList = document.querySelector<HTMLUListElement>('[data-testid="people"]')!;
const form = document.querySelector<HTMLFormElement>('#add-form')!;
const nameInput = form.querySelector<HTMLInputElement>('input')!;

function renderPeople(conn: DbConnection): void {
  peopleList.replaceChildren(
    ...[...conn.db.person.iter()].map(person => {
      const item = document.createElement('li');
      item.textContent = person.name;
      return item;
    })
  );
}

const conn = DbConnection.builder()
  .withUri(HOST)
  .withDatabaseName(DB_NAME)
  .withToken(localStorage.getItem(TOKEN_KEY) || undefined)
  .onConnect((conn: DbConnection, identity: Identity, token: string) => {
    localStorage.setItem(TOKEN_KEY, token);
    status.textContent = 'Connected';
    identityText.textContent = identity.toHexString();
    conn.db.person.onInsert(() => renderPeople(conn));
    conn.db.person.onDelete(() => renderPeople(conn));
    conn.subscriptionBuilder().onApplied(() => renderPeople(conn)).subscribe(tables.person);
  })
  .onDisconnect(() => {
    status.textContent = 'Disconnected';
  })
  .onConnectError((_ctx: ErrorContext, error: Error) => {
    status.textContent = `Error connecting: ${error.message}`;
  })
  .build();

form.addEventListener('submit', event => {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (name === '') return;
  void conn.reducers.add({ name });
  nameInput.value = '';
});
