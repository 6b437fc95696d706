// The SpacetimeDB module: tables and reducers run inside the database.
import { schema, table, t } from 'spacetimedb/server';

const spacetimedb = schema({
  person: table({ public: true }, { name: t.string() }),
});
export default spacetimedb;

export const init = spacetimedb.init(_ctx => {
  // Runs once, when the database is first published.
});

export const onConnect = spacetimedb.clientConnected(_ctx => {
  // Runs for every new client connection.
});

export const onDisconnect = spacetimedb.clientDisconnected(_ctx => {
  // Runs when a client disconnects.
});

export const add = spacetimedb.reducer({ name: t.string() }, (ctx, { name }) => {
  ctx.db.person.insert({ name });
});

export const sayHello = spacetimedb.reducer(ctx => {
  for (const person of ctx.db.person.iter()) {
    console.info(`Hello, ${person.name}!`);
  }
  console.info('Hello, World!');
});
