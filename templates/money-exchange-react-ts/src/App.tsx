import { useState, type FormEvent } from 'react';
import type { Identity } from 'spacetimedb';
import { useReducer, useSpacetimeDB, useTable } from 'spacetimedb/react';
import { reducers, tables } from './module_bindings/index.ts';
import { formatCents, parseDollars } from './money.ts';

export default function App() {
  const { identity, isActive } = useSpacetimeDB();
  const [directory] = useTable(tables.directory);
  const [myAccount] = useTable(tables.myAccount);
  const [changes] = useTable(tables.myAccountChanges);
  const setNameReducer = useReducer(reducers.setName);
  const transferReducer = useReducer(reducers.transfer);
  const [nameInput, setNameInput] = useState('');
  const [recipient, setRecipient] = useState('');
  const [amount, setAmount] = useState('');
  const [error, setError] = useState('');

  const me = directory.find(p => identity !== undefined && p.identity.isEqual(identity));
  const others = directory.filter(p => identity === undefined || !p.identity.isEqual(identity));
  const nameOf = (who: Identity) => directory.find(p => p.identity.isEqual(who))?.name ?? who.toHexString().slice(0, 8);
  // Reducer errors (insufficient funds, a taken name) come back as a rejected promise with the module's message.
  const run = (call: Promise<void>) => {
    setError('');
    call.catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };

  const onSetName = (event: FormEvent) => {
    event.preventDefault();
    run(setNameReducer({ name: nameInput }));
  };
  const onSend = (event: FormEvent) => {
    event.preventDefault();
    const cents = parseDollars(amount);
    const to = others.find(p => p.identity.toHexString() === recipient);
    if (cents === undefined) return setError('Enter an amount such as 12.50');
    if (to === undefined) return setError('Choose a recipient');
    run(transferReducer({ recipient: to.identity, amountCents: cents }));
    setAmount('');
  };

  if (!isActive) return <main><h1>Money exchange</h1><p data-testid="status">Connecting...</p></main>;
  return (
    <main>
      <h1>Money exchange</h1>
      <p data-testid="status">Connected</p>
      <p>Balance: <strong data-testid="balance">{myAccount.length > 0 ? formatCents(myAccount[0].balanceCents) : '…'}</strong></p>
      <p>Name: <strong data-testid="my-name">{me?.name ?? '(none yet)'}</strong></p>
      <form onSubmit={onSetName}>
        <input aria-label="name" placeholder="Your name" value={nameInput} onChange={e => setNameInput(e.target.value)} />
        <button type="submit">Set name</button>
      </form>
      <h2>Send money</h2>
      <form onSubmit={onSend}>
        <select aria-label="recipient" value={recipient} onChange={e => setRecipient(e.target.value)}>
          <option value="">Choose a recipient</option>
          {others.map(p => <option key={p.identity.toHexString()} value={p.identity.toHexString()}>{p.name}</option>)}
        </select>
        <input aria-label="amount" placeholder="0.00" value={amount} onChange={e => setAmount(e.target.value)} />
        <button type="submit" disabled={me === undefined}>Send</button>
      </form>
      {error !== '' && <p role="alert" data-testid="error">{error}</p>}
      <h2>History</h2>
      <ul data-testid="history">
        {[...changes].sort((a, b) => Number(b.id - a.id)).map(c => (
          <li key={c.id.toString()}>
            {c.direction.tag === 'Credit' ? `+${formatCents(c.amountCents)} from` : `-${formatCents(c.amountCents)} to`}{' '}
            {nameOf(c.counterparty)}
          </li>
        ))}
      </ul>
    </main>
  );
}
