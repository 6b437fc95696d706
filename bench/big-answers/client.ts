// bench/big-answers/client.ts — one WebSocket client in a process of its own (its decoding must not run on the
// measuring process's thread): connects, asks one Subscribe or OneOffQuery of every row, prints the answer's tag.
// May call: test/ws/helpers.ts (RawClient).
//
// Run by bench/big-answers.ts: node --import tsx bench/big-answers/client.ts <subscribe url> subscribe|oneOff None|Gzip|Brotli
import { RawClient } from '../../test/ws/helpers.js';

const [url, ask, compression] = process.argv.slice(2);
const client = await RawClient.open(`${url}?compression=${compression}`);
await client.next();
if (ask === 'subscribe') client.send({ tag: 'Subscribe', requestId: 1, querySetId: 0, queryStrings: ['SELECT * FROM row'] });
else client.send({ tag: 'OneOffQuery', requestId: 2, queryString: 'SELECT * FROM row' });
console.log((await client.next(120_000)).tag);
client.ws.close();
process.exit(0);
