// The JSON-over-HTTP RPC shape shared by the baseline servers (Node+PostgreSQL, Node+SQLite) and the client the
// harness uses to reach them: `POST /rpc {"name": …, "args": {…}}` on a keep-alive connection. 200 = done
// (body is the JSON result), 409 = the transaction was rejected (business rule), 500 = server error.
// Owns the server-side request loop and the undici client pool; knows nothing about any database.
// May call: node:http, undici.
import http from 'node:http';
import { Pool } from 'undici';
import type { TransferClient } from './workload.js';

/** An RPC body larger than this is refused (the biggest legitimate one is a few dozen bytes). */
const rpcBodyMaxBytes = 64 * 1024;

/** Thrown by a handler for an expected rejection (insufficient funds, same account): answered with 409. */
export class RejectedError extends Error {}

export type RpcHandler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/** Serves the handlers on 127.0.0.1:<port> (0 = any) and prints `{"listening": port}` on stdout once bound. */
export function serveRpc(port: number, handlers: Record<string, RpcHandler>): http.Server {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= rpcBodyMaxBytes) chunks.push(c);
    });
    req.on('end', () => void dispatch(handlers, req, res, size > rpcBodyMaxBytes ? undefined : Buffer.concat(chunks)));
  });
  server.listen(port, '127.0.0.1', () => {
    const bound = (server.address() as { port: number }).port;
    process.stdout.write(JSON.stringify({ listening: bound }) + '\n');
  });
  return server;
}

async function dispatch(
  handlers: Record<string, RpcHandler>, req: http.IncomingMessage, res: http.ServerResponse, body: Buffer | undefined,
): Promise<void> {
  if (req.method !== 'POST' || req.url !== '/rpc' || body === undefined) return reply(res, 400, { error: 'POST /rpc only' });
  let name: unknown;
  let args: unknown;
  try {
    ({ name, args } = JSON.parse(body.toString('utf8')) as { name?: unknown; args?: unknown });
  } catch {
    return reply(res, 400, { error: 'body is not JSON' });
  }
  const handler = typeof name === 'string' ? handlers[name] : undefined;
  if (handler === undefined) return reply(res, 404, { error: `no rpc named ${JSON.stringify(name)}` });
  try {
    reply(res, 200, (await handler((args ?? {}) as Record<string, unknown>)) ?? null);
  } catch (err) {
    if (err instanceof RejectedError) reply(res, 409, { error: err.message });
    else reply(res, 500, { error: String((err as Error)?.message ?? err) });
  }
}

function reply(res: http.ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A keep-alive client pool to one RPC server. */
export class RpcClient {
  private readonly pool: Pool;

  constructor(port: number, connections: number, pipelining = 1) {
    this.pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining, keepAliveTimeout: 60_000 });
  }

  /** Calls `name`; returns [status, parsed body]. */
  async call(name: string, args: unknown): Promise<[number, unknown]> {
    const res = await this.pool.request({
      method: 'POST', path: '/rpc', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, args }),
    });
    const text = await res.body.text();
    return [res.statusCode, text.length > 0 ? JSON.parse(text) : null];
  }

  /** Like call, but a non-200 status is an error. */
  async must(name: string, args: unknown): Promise<unknown> {
    const [status, body] = await this.call(name, args);
    if (status !== 200) throw new Error(`rpc ${name} answered ${status}: ${JSON.stringify(body)}`);
    return body;
  }

  /** The workload's view: 200 = committed, 409 = rejected, anything else throws. */
  transferClient(): TransferClient {
    return {
      transfer: async (from, to, amount) => {
        const res = await this.pool.request({
          method: 'POST', path: '/rpc', headers: { 'content-type': 'application/json' },
          body: `{"name":"transfer","args":{"from":${from},"to":${to},"amount":${amount}}}`,
        });
        if (res.statusCode === 200 || res.statusCode === 409) {
          await res.body.dump();
          return res.statusCode === 200;
        }
        throw new Error(`transfer answered HTTP ${res.statusCode}: ${await res.body.text()}`);
      },
      close: async () => {},
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Reads a non-negative integer field from RPC args; bad input is a typed error naming the field. */
export function intArg(args: Record<string, unknown>, field: string): number {
  const v = args[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TypeError(`rpc argument ${field} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}
