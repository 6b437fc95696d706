import { createSignal, For } from 'solid-js';
import { useReducer, useSpacetimeDB, useTable } from 'spacetimedb/solid';
import { reducers, tables } from './module_bindings/index.ts';

export default function App() {
  const conn = useSpacetimeDB();
  const [people] = useTable(() => tables.person);
  const addPerson = useReducer(reducers.add);
  const [name, setName] = createSignal('');

  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const value = name().trim();
    if (value === '') return;
    void addPerson({ name: value });
    setName('');
  };

  return (
    <main>
      <h1>People</h1>
      <p data-testid="status">{conn.isActive ? 'Connected' : 'Connecting...'}</p>
      <p>Identity: <code data-testid="identity">{conn.identity?.toHexString() ?? ''}</code></p>
      <form onSubmit={onSubmit}>
        <input aria-label="Name" placeholder="Name" value={name()} onInput={e => setName(e.currentTarget.value)} />
        <button type="submit">Add</button>
      </form>
      <ul data-testid="people">
        <For each={people}>{person => <li>{person.name}</li>}</For>
      </ul>
    </main>
  );
}
