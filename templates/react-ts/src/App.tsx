import { useState, type FormEvent } from 'react';
import { useReducer, useSpacetimeDB, useTable } from 'spacetimedb/react';
import { reducers, tables } from './module_bindings/index.ts';

export default function App() {
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
    <main>
      <h1>People</h1>
      <p data-testid="status">{isActive ? 'Connected' : 'Connecting...'}</p>
      <p>Identity: <code data-testid="identity">{identity?.toHexString() ?? ''}</code></p>
      <form onSubmit={onSubmit}>
        <input aria-label="Name" placeholder="Name" value={name} onChange={e => setName(e.target.value)} />
        <button type="submit">Add</button>
      </form>
      <ul data-testid="people">
        {people.map((person, i) => <li key={i}>{person.name}</li>)}
      </ul>
    </main>
  );
}
