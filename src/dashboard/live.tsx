// src/dashboard/live.tsx — one table's rows, kept live by a real subscription over the WebSocket protocol
// (upstream's v1.json.spacetimedb text protocol: rows arrive as JSON text, so a page needs no generated bindings).
// Owns: the connection for one subscribed query and the multiset of rows it holds. May call: api.tsx.
//
// The connection is opened as the signed-in identity: the page asks for a short-lived WebSocket token (POST
// /v1/identity/websocket-token, as the official SDK does, because browsers cannot set headers on a WebSocket) and
// the server evaluates the subscription with that identity's permissions, private tables and RLS included.

import { parseJsonLossless, websocketToken, type Session } from './api.js';

export interface LiveState {
  status: 'connecting' | 'live' | 'error' | 'closed';
  error?: string;
  rows: unknown[][];
  /** Commits applied since the subscription started (the page shows it so a change is visible). */
  updates: number;
}

interface V1TableUpdate { table_name: string; updates: { deletes: string[]; inserts: string[] }[] }

export function subscribeTable(session: Session, database: string, query: string, onChange: (state: LiveState) => void): () => void {
  const counts = new Map<string, number>();
  const state: LiveState = { status: 'connecting', rows: [], updates: 0 };
  let socket: WebSocket | undefined;
  let stopped = false;
  const publish = () => {
    const rows: unknown[][] = [];
    for (const [text, n] of counts) for (let i = 0; i < n; i++) rows.push(parseJsonLossless(text) as unknown[]);
    onChange({ ...state, rows });
  };
  const apply = (tables: V1TableUpdate[]) => {
    for (const table of tables) {
      for (const update of table.updates) {
        for (const row of update.deletes) {
          const n = (counts.get(row) ?? 0) - 1;
          if (n <= 0) counts.delete(row);
          else counts.set(row, n);
        }
        for (const row of update.inserts) counts.set(row, (counts.get(row) ?? 0) + 1);
      }
    }
  };
  const fail = (message: string) => {
    state.status = 'error';
    state.error = message;
    publish();
  };
  void websocketToken(session).then((token) => {
    if (stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const params = new URLSearchParams({ token, compression: 'None' });
    socket = new WebSocket(`${scheme}://${location.host}/v1/database/${encodeURIComponent(database)}/subscribe?${params}`, 'v1.json.spacetimedb');
    socket.onopen = () => socket!.send(JSON.stringify({ SubscribeMulti: { query_strings: [query], request_id: 1, query_id: { id: 1 } } }));
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as Record<string, any>;
      if (message.SubscribeMultiApplied !== undefined) {
        apply(message.SubscribeMultiApplied.update.tables);
        state.status = 'live';
        publish();
      } else if (message.TransactionUpdate !== undefined) {
        const committed = message.TransactionUpdate.status?.Committed;
        if (committed === undefined) return;
        apply(committed.tables);
        state.updates++;
        publish();
      } else if (message.SubscriptionError !== undefined) {
        fail(String(message.SubscriptionError.error));
      }
    };
    socket.onclose = (event) => {
      if (stopped || state.status === 'error') return;
      state.status = 'closed';
      state.error = event.reason === '' ? `connection closed (${event.code})` : event.reason;
      publish();
    };
  }, (error: Error) => fail(error.message));
  return () => {
    stopped = true;
    socket?.close(1000);
  };
}
