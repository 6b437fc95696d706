import { useState, type FormEvent } from 'react';
import { createFileRoute } from '@tanstack/react-router';
import { useReducer, useSpacetimeDB, useSpacetimeDBQuery } from 'spacetimedb/tanstack';
import { reducers, tables } from '../module_bindings';
import { SpacetimeDB } from '../spacetimedb';

export const Route = createFileRoute('/')({ component: Home });

function Home() {
  return (
    <main>
      <h1>People</h1>
      <SpacetimeDB fallback={<p data-testid="status">Connecting...</p>}>
        <People />
      </SpacetimeDB>
    </main>
  );
}

function People() {
  const { identity, isActive } = useSpacetimeDB();
  const [people] = useSpacetimeDBQuery(tables.person);
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
