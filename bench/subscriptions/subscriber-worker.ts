// Child process of `npm run bench:subscriptions`: holds a share of the subscribers (raw v3 BSATN WebSocket clients),
// each subscribed to `SELECT * FROM msg`, and records commit-to-client latency = receive time − the row's
// sentMicros for rows sent inside the parent's measurement window.
// Talks to the parent over the IPC channel (messages typed below). Owns its sockets; exits on 'close'.
// May call: ./common.ts, node built-ins.
import assert from 'node:assert/strict';
import { connectWire, Histogram, rowSentMicros, type WireClient } from './common.js';

/** Connections opened at once while connecting (the server signs a token for each anonymous client). */
const connectConcurrency = 50;

export type ToWorker =
  | { type: 'connect'; httpUrl: string; db: string; count: number; confirmed: boolean; query: string }
  | { type: 'window'; fromMicros: number; untilMicros: number }
  | { type: 'report' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; connected: number }
  | { type: 'report'; pairs: [number, number][]; maxMicros: number; rowsInWindow: number; messages: number;
      frames: number; bytes: number; closed: number; closeReasons: string[] }
  | { type: 'error'; message: string };

const histogram = new Histogram();
const clients: WireClient[] = [];
let fromMicros = Infinity;
let untilMicros = -Infinity;
let rowsInWindow = 0;
let messages = 0;
let frames = 0;
let bytes = 0;
let closed = 0;
let closing = false;
const closeReasons: string[] = [];

function send(m: FromWorker): void {
  process.send!(m);
}

function onMessages(ms: Parameters<WireClient['onMessages']>[0], recvMicros: number, frameBytes: number): void {
  frames++;
  bytes += frameBytes;
  for (const m of ms) {
    if (m.tag !== 'TransactionUpdate') continue;
    messages++;
    for (const set of m.querySets) {
      for (const table of set.tables) {
        assert.ok('rows' in table, 'decoded TableUpdate has rows');
        for (const rows of table.rows) {
          if (rows.tag !== 'PersistentTable') continue;
          for (const row of rows.inserts) {
            const sent = rowSentMicros(row);
            if (sent < fromMicros || sent > untilMicros) continue;
            rowsInWindow++;
            histogram.record(recvMicros - sent);
          }
        }
      }
    }
  }
}

async function connectOne(httpUrl: string, db: string, confirmed: boolean, query: string, requestId: number): Promise<void> {
  const client = await connectWire(httpUrl, db, confirmed);
  await new Promise<void>((resolve, reject) => {
    client.onMessages = (ms) => {
      for (const m of ms) {
        if (m.tag === 'SubscribeApplied') resolve();
        else if (m.tag === 'SubscriptionError') reject(new Error(`SubscriptionError: ${m.error}`));
      }
    };
    client.send([{ tag: 'Subscribe', requestId, querySetId: requestId, queryStrings: [query] }]);
  });
  client.onMessages = onMessages;
  client.onClose = (code, reason) => {
    if (closing) return;
    closed++;
    if (closeReasons.length < 5) closeReasons.push(`${code} ${reason}`);
  };
  clients.push(client);
}

async function connectAll(m: Extract<ToWorker, { type: 'connect' }>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < m.count) {
      const i = next++;
      await connectOne(m.httpUrl, m.db, m.confirmed, m.query, i + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(connectConcurrency, m.count) }, lane));
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'connect':
      connectAll(m).then(
        () => send({ type: 'ready', connected: clients.length }),
        (err: Error) => send({ type: 'error', message: err.stack ?? String(err) }));
      return;
    case 'window':
      fromMicros = m.fromMicros;
      untilMicros = m.untilMicros;
      return;
    case 'report':
      send({ type: 'report', pairs: histogram.toPairs(), maxMicros: histogram.maxMicros, rowsInWindow, messages,
        frames, bytes, closed, closeReasons });
      return;
    case 'close':
      closing = true;
      for (const c of clients) c.ws.terminate();
      process.disconnect();
      return;
  }
});

// The parent died or let go of us: do not linger with open sockets.
process.on('disconnect', () => {
  closing = true;
  for (const c of clients) c.ws.terminate();
  process.exit(0);
});
