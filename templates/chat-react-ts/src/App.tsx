import { useState, type FormEvent } from 'react';
import { useReducer, useSpacetimeDB, useTable } from 'spacetimedb/react';
import { reducers, tables } from './module_bindings/index.ts';

function App() {
  const { identity, isActive: connected } = useSpacetimeDB();
  const setName = useReducer(reducers.setName);
  const sendMessage = useReducer(reducers.sendMessage);
  const [messages] = useTable(tables.message);
  const [users] = useTable(tables.user);
  const [newName, setNewName] = useState('');
  const [newMessage, setNewMessage] = useState('');

  if (!connected || !identity) {
    return <div className="App"><h1>Connecting...</h1></div>;
  }

  const nameOf = (hex: string) => {
    const user = users.find(u => u.identity.toHexString() === hex);
    return user?.name ?? hex.substring(0, 8);
  };
  const me = users.find(u => u.identity.isEqual(identity));
  const sorted = [...messages].sort((a, b) =>
    a.sent.microsSinceUnixEpoch < b.sent.microsSinceUnixEpoch ? -1 : 1
  );

  const onSubmitName = (e: FormEvent) => {
    e.preventDefault();
    void setName({ name: newName });
    setNewName('');
  };
  const onSubmitMessage = (e: FormEvent) => {
    e.preventDefault();
    void sendMessage({ text: newMessage });
    setNewMessage('');
  };

  return (
    <div className="App">
      <section className="profile">
        <h1>Profile</h1>
        <p data-testid="my-name">{me?.name ?? identity.toHexString().substring(0, 8)}</p>
        <form onSubmit={onSubmitName}>
          <input aria-label="name" value={newName} onChange={e => setNewName(e.target.value)} />
          <button type="submit">Set name</button>
        </form>
      </section>
      <section className="messages">
        <h1>Messages</h1>
        {sorted.length === 0 && <p>No messages</p>}
        <ul data-testid="messages">
          {sorted.map((m, i) => (
            <li key={i}>
              <b>{nameOf(m.sender.toHexString())}</b>: <span>{m.text}</span>
            </li>
          ))}
        </ul>
      </section>
      <section className="users">
        <h1>Online</h1>
        <ul>
          {users.filter(u => u.online).map(u => (
            <li key={u.identity.toHexString()}>{u.name ?? u.identity.toHexString().substring(0, 8)}</li>
          ))}
        </ul>
      </section>
      <form className="new-message" onSubmit={onSubmitMessage}>
        <textarea aria-label="message" value={newMessage} onChange={e => setNewMessage(e.target.value)} />
        <button type="submit">Send</button>
      </form>
    </div>
  );
}

export default App;
