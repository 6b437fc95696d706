// bench/big-answers/client.ts — one WebSocket client in a process of its own (its decoding must not run on the
// measuring process's thread): connects, asks one Subscribe or OneOffQuery of every row, prints the answer's tag (the
// v1.json protocol: SubscribeSingle or OneOffQuery, prints the message's variant).
// May call: test/ws/helpers.ts (RawClient), ws.
//
// Run by bench/big-answers.ts: node --import tsx bench/big-answers/client.ts <subscribe url> subscribe|oneOff None|Gzip|Brotli|v1.json
import WebSocket from 'ws';
import { RawClient } from '../../test/ws/helpers.js';

const [url, ask, compression] = process.argv.slice(2);
if (compression === 'v1.json') {
  const ws = new WebSocket(url, ['v1.json.spacetimedb'], { maxPayload: 0 });
  const messages: string[] = [];
  let wake = (): void => {};
  ws.on('message', (data) => { messages.push(data.toString()); wake(); });
  const next = async (): Promise<string> => {
    while (messages.length === 0) await new Promise<void>((r) => (wake = r));
    return messages.shift()!;
  };
  await next(); // IdentityToken
  ws.send(JSON.stringify(ask === 'subscribe'
    ? { SubscribeSingle: { query: 'SELECT * FROM row', request_id: 1, query_id: { id: 1 } } }
    : { OneOffQuery: { message_id: '01', query_string: 'SELECT * FROM row' } }));
  console.log(Object.keys(JSON.parse(await next()))[0]);
  ws.close();
  process.exit(0);
}
const client = await RawClient.open(`${url}?compression=${compression}`);
await client.next();
if (ask === 'subscribe') client.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM row'] });
else client.send({ tag: 'OneOffQuery', requestId: 2, queryString: 'SELECT * FROM row' });
console.log((await client.next(120_000)).tag);
client.ws.close();
process.exit(0);
