import { useEffect, useState, type FormEvent } from 'react';
import { useReducer, useSpacetimeDB, useTable } from 'spacetimedb/react';
import { reducers, tables } from './module_bindings/index.ts';

const missesMax = 6; // as in the module

export default function App() {
  const { identity, isActive } = useSpacetimeDB();
  const [players] = useTable(tables.player);
  const [rounds] = useTable(tables.round);
  const [boards] = useTable(tables.myBoard);
  const [standings] = useTable(tables.standing);
  const setNameReducer = useReducer(reducers.setName);
  const guessReducer = useReducer(reducers.guessLetter);
  const [nameInput, setNameInput] = useState('');
  const [letter, setLetter] = useState('');
  const [error, setError] = useState('');
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);

  const me = players.find(p => identity !== undefined && p.identity.isEqual(identity));
  const round = rounds.reduce<(typeof rounds)[number] | undefined>((a, r) => (a === undefined || r.id > a.id ? r : a), undefined);
  const board = boards.find(b => round !== undefined && b.roundId === round.id);
  const mask = board?.mask ?? '_'.repeat(round?.wordLength ?? 0);
  const ranking = standings
    .filter(s => round !== undefined && s.roundId === round.id)
    .sort((a, b) => {
      // Solved first, earliest first; then most letters found, fewest misses.
      if ((a.solvedAt === undefined) !== (b.solvedAt === undefined)) return a.solvedAt === undefined ? 1 : -1;
      if (a.solvedAt !== undefined && b.solvedAt !== undefined) {
        return Number(a.solvedAt.microsSinceUnixEpoch - b.solvedAt.microsSinceUnixEpoch);
      }
      return b.found - a.found || a.misses - b.misses;
    });
  const secondsLeft = round === undefined ? 0 : Math.max(0, Math.ceil((Number(round.endsAtMicros / 1000n) - now) / 1000));

  // Reducer errors (a repeated letter, a finished board) come back as a rejected promise with the module's message.
  const run = (call: Promise<void>) => {
    setError('');
    call.catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  };
  const onSetName = (event: FormEvent) => {
    event.preventDefault();
    run(setNameReducer({ name: nameInput }));
  };
  const onGuess = (event: FormEvent) => {
    event.preventDefault();
    run(guessReducer({ letter }));
    setLetter('');
  };

  if (!isActive) return <main><h1>Hangman</h1><p data-testid="status">Connecting...</p></main>;
  return (
    <main>
      <h1>Hangman</h1>
      <p data-testid="status">Connected</p>
      <p>Name: <strong data-testid="my-name">{me?.name ?? '(none yet)'}</strong></p>
      <form onSubmit={onSetName}>
        <input aria-label="name" placeholder="Your name" value={nameInput} onChange={e => setNameInput(e.target.value)} />
        <button type="submit">Set name</button>
      </form>
      {round !== undefined && (
        <section>
          <h2>Round {round.id.toString()}</h2>
          {round.revealed === undefined
            ? <p data-testid="time-left">{secondsLeft} s left</p>
            : <p>The word was <strong data-testid="revealed">{round.revealed}</strong>; the next round starts soon.</p>}
          <p data-testid="mask" style={{ fontFamily: 'monospace', fontSize: '2rem', letterSpacing: '0.3em' }}>{mask}</p>
          <p>Misses: <span data-testid="misses">{board?.misses ?? 0}</span> of {missesMax}; guessed: <span data-testid="guesses">{board?.guesses ?? ''}</span></p>
          <form onSubmit={onGuess}>
            <input aria-label="letter" maxLength={1} value={letter} onChange={e => setLetter(e.target.value)} />
            <button type="submit" disabled={me === undefined}>Guess</button>
          </form>
          {error !== '' && <p role="alert" data-testid="error">{error}</p>}
          <h2>Standings</h2>
          <ol data-testid="standings">
            {ranking.map(s => (
              <li key={s.id.toString()}>
                {s.name}: {s.found} found, {s.misses} missed{s.solvedAt !== undefined ? ', solved' : ''}
              </li>
            ))}
          </ol>
        </section>
      )}
    </main>
  );
}
