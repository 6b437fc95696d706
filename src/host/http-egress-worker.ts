// host/http-egress-worker.ts — the worker thread behind http-egress.ts: performs the outbound fetches it is sent and
// posts each reply back (tagged with its request id).
//
// Owns: the address policy (private, loopback, link-local and other special-purpose addresses are refused unless
// allowed: loopback alone, or all of them; DNS is resolved here and EVERY address is checked, at connect time, so a redirect or a DNS answer cannot
// sneak past it), manual redirect following, the response size cap and error texts without query strings.
// May call: undici, node:dns, node:net, node:worker_threads. Runs in its own thread; imports nothing from the host.

import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { workerData, type MessagePort } from 'node:worker_threads';
import { Agent, fetch } from 'undici';
import type { EgressAddressPolicy, WorkerReply, WorkerRequest } from './http-egress.js';

const privateAddressMessage = 'refusing to connect to private or special-purpose addresses';
// Undefined when this file is imported outside a worker (tests of the address policy).
const { port } = (workerData ?? {}) as { port?: MessagePort };

class PolicyError extends Error {}

/** Special-purpose IPv4 ranges (IANA registry) as [first octets as u32, prefix length]. */
const v4Blocked: [number, number][] = [
  [0x00000000, 8], [0x0a000000, 8], [0x64400000, 10], [0x7f000000, 8], [0xa9fe0000, 16], [0xac100000, 12],
  [0xc0000000, 24], [0xc0000200, 24], [0xc0586300, 24], [0xc0a80000, 16], [0xc6120000, 15], [0xc6336400, 24],
  [0xcb007100, 24], [0xe0000000, 4], [0xf0000000, 4],
];

function v4ToU32(a: string): number {
  return a.split('.').reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
}

function v4Special(a: string): boolean {
  const x = v4ToU32(a);
  return v4Blocked.some(([net, len]) => ((x >>> (32 - len)) << (32 - len)) >>> 0 === net);
}

/** IPv6 as 8 hextets (handles `::` and an embedded dotted IPv4 tail). */
function v6Hextets(a: string): number[] {
  let s = a.split('%')[0];
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted !== null) {
    const x = v4ToU32(dotted[1]);
    tail.push(x >>> 16, x & 0xffff);
    s = s.slice(0, -dotted[1].length) + '0:0';
  }
  const [head, rest] = s.split('::');
  const h = head === '' ? [] : head.split(':').map((p) => parseInt(p, 16));
  const r = rest === undefined ? [] : rest === '' ? [] : rest.split(':').map((p) => parseInt(p, 16));
  const out = rest === undefined ? h : [...h, ...new Array(8 - h.length - r.length).fill(0), ...r];
  if (tail.length === 2) { out[6] = tail[0]; out[7] = tail[1]; }
  return out;
}

function v6Special(a: string): boolean {
  const h = v6Hextets(a);
  const zeroTo = (n: number) => h.slice(0, n).every((x) => x === 0);
  if (zeroTo(8)) return true;                                             // ::
  if (zeroTo(7) && h[7] === 1) return true;                               // ::1
  if (zeroTo(5) && h[5] === 0xffff) return v4Special(`${h[6] >> 8}.${h[6] & 255}.${h[7] >> 8}.${h[7] & 255}`);
  if (h[0] === 0x64 && h[1] === 0xff9b) return true;                      // NAT64
  if ((h[0] & 0xfe00) === 0xfc00) return true;                            // unique local
  if ((h[0] & 0xffc0) === 0xfe80) return true;                            // link-local
  if ((h[0] & 0xff00) === 0xff00) return true;                            // multicast
  if (h[0] === 0x2001 && h[1] === 0x0db8) return true;                    // documentation
  if (h[0] === 0x2001 && h[1] < 0x0200) return true;                      // IETF protocol assignments (incl. Teredo)
  if (h[0] === 0x0100 && zeroTo(0) && h[1] === 0 && h[2] === 0 && h[3] === 0) return true; // discard-only
  if (h[0] === 0x2002) return true;                                       // 6to4
  return false;
}

export function isSpecialAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return v4Special(address);
  if (family === 6) return v6Special(address);
  return true;
}

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x. */
export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return address.startsWith('127.');
  if (family !== 6) return false;
  const h = v6Hextets(address);
  const zeroTo = (n: number) => h.slice(0, n).every((x) => x === 0);
  return (zeroTo(7) && h[7] === 1) || (zeroTo(5) && h[5] === 0xffff && h[6] >> 8 === 127);
}

/** Whether `policy` lets a request connect to `address` (an IP literal). */
export function addressAllowed(address: string, policy: EgressAddressPolicy): boolean {
  if (policy === 'private' || !isSpecialAddress(address)) return true;
  return policy === 'loopback' && isLoopbackAddress(address);
}

function checkedLookup(policy: EgressAddressPolicy) {
  return (hostname: string, options: object, callback: (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void): void => {
    lookup(hostname, { all: true }, (err, addresses) => {
      if (err) { callback(err, []); return; }
      if (addresses.some((a) => !addressAllowed(a.address, policy))) {
        callback(new PolicyError(privateAddressMessage), []);
        return;
      }
      if ((options as { all?: boolean }).all) callback(null, addresses);
      else callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

const agents = new Map<EgressAddressPolicy, Agent>();
export function agentFor(policy: EgressAddressPolicy): Agent {
  let a = agents.get(policy);
  if (a === undefined) {
    a = new Agent({ connect: { lookup: checkedLookup(policy) as never } });
    agents.set(policy, a);
  }
  return a;
}

/** The URL as error texts may show it: no query string, no credentials. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.search = ''; u.username = ''; u.password = '';
    return u.toString();
  } catch {
    return url.split('?')[0];
  }
}

/** Checked before every hop (the first request and each redirect), before any connection is made. */
export function checkTarget(url: URL, policy: EgressAddressPolicy): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PolicyError(`unsupported URL scheme ${url.protocol}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) {
    if (!addressAllowed(host, policy)) throw new PolicyError(privateAddressMessage);
  } else if ((host === 'localhost' || host.endsWith('.localhost')) && policy === 'public') {
    throw new PolicyError(privateAddressMessage);
  }
}

async function perform(req: WorkerRequest): Promise<WorkerReply> {
  const signal = AbortSignal.timeout(req.timeoutMs);
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    return { id: req.id, ok: false, message: `invalid URL ${redact(req.url)}` };
  }
  let method = req.method;
  let body = req.body;
  try {
    for (let hop = 0; ; hop++) {
      checkTarget(url, req.addressPolicy);
      const res = await fetch(url, {
        method, headers: req.headers, body: body === undefined || method === 'GET' || method === 'HEAD' ? undefined : body,
        redirect: 'manual', signal, dispatcher: agentFor(req.addressPolicy),
      });
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location !== null) {
        await res.body?.cancel();
        if (hop >= req.redirectsMax) return { id: req.id, ok: false, message: `too many redirects from ${redact(req.url)}` };
        url = new URL(location, url);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) { method = 'GET'; body = undefined; }
        continue;
      }
      const chunks: Uint8Array[] = [];
      let total = 0;
      if (res.body !== null) {
        for await (const chunk of res.body) {
          total += chunk.length;
          if (total > req.bodyMaxBytes) {
            await res.body.cancel().catch(() => undefined);
            return { id: req.id, ok: false, message: `response body exceeds the ${req.bodyMaxBytes}-byte limit` };
          }
          chunks.push(chunk);
        }
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) { out.set(c, at); at += c.length; }
      const headers: [string, string][] = [];
      res.headers.forEach((value, name) => headers.push([name, value]));
      return { id: req.id, ok: true, status: res.status, headers, body: out };
    }
  } catch (err) {
    return { id: req.id, ok: false, message: describe(err, url, req.timeoutMs) };
  }
}

function describe(err: unknown, url: URL, timeoutMs: number): string {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof PolicyError) return e.message;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return `the request to ${redact(url.toString())} timed out after ${timeoutMs} ms`;
    if (e.message.includes(privateAddressMessage)) return privateAddressMessage;
    if (e.cause === undefined) break;
    e = e.cause;
  }
  const detail = e instanceof Error ? e.message : String(e);
  return `error sending request for url (${redact(url.toString())}): ${detail.split('?')[0]}`;
}

if (port !== undefined) {
  port.on('message', (req: WorkerRequest) => {
    void perform(req).then((reply) => {
      port.postMessage(reply, reply.ok ? [reply.body.buffer as ArrayBuffer] : []);
    });
  });
}
