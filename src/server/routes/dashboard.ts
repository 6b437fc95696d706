// server/routes/dashboard.ts — the local web dashboard (docs/dashboard.md): its static files at `/` and `/dashboard/*`,
// and the one-time sign-in codes `spacetime dashboard` hands to the browser.
//
// Owns: where the built dashboard lives (dist/dashboard/, written by src/dashboard/build.mjs at `npm run build`), the
// headers it is served with (a strict Content-Security-Policy, no caching of the page, no referrer), and the sign-in
// codes: a code is minted for a verified token (POST /v1/dashboard/code), lives dashboardCodeLifetimeMs, and is
// exchanged once for that token (POST /v1/dashboard/exchange). Codes only ever travel in a URL fragment, which
// browsers never send to a server, and the page removes it from the address bar before it exchanges it.
// May call: server/http.ts, auth/ (identity hex), limits, node:fs, node:crypto.
//
// The dashboard has no data routes of its own: the page calls the same /v1 routes as the CLI with the signed-in
// identity's token, so every permission check (private tables, owner-only logs and history) is the CLI's.

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { identityToHex } from '../../auth/identity.js';
import { dashboardCodeLifetimeMs, dashboardCodesMax } from '../../limits.js';
import { HttpError, jsonBodyMaxBytes, type RequestContext, type Router } from '../http.js';

// src/server/routes/ and dist/server/routes/ are both three levels under the package root.
const staticDir = fileURLToPath(new URL('../../../dist/dashboard/', import.meta.url));

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

const securityHeaders = {
  // Everything the page loads is its own; it talks only to this server (HTTP and WebSocket).
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
};

interface SignInCode {
  token: string;
  identity: bigint;
  expiresAtMs: number;
}

export function addDashboardRoutes(router: Router): void {
  const codes = new Map<string, SignInCode>();
  router.add('GET', '/', (ctx) => sendStatic(ctx, 'index.html'));
  router.add('GET', '/dashboard/:file', (ctx) => sendStatic(ctx, ctx.params.file!));
  router.add('POST', '/v1/dashboard/code', async (ctx) => {
    const verified = await ctx.requireAuth();
    dropExpired(codes);
    if (codes.size >= dashboardCodesMax) {
      throw new HttpError(429, `Too many dashboard sign-in codes outstanding (dashboardCodesMax = ${dashboardCodesMax}); ` +
        `each expires after ${dashboardCodeLifetimeMs / 1000} s`);
    }
    const code = randomBytes(24).toString('base64url');
    codes.set(code, { token: verified.token, identity: verified.identity, expiresAtMs: Date.now() + dashboardCodeLifetimeMs });
    ctx.sendJson(200, { code, expires_in_ms: dashboardCodeLifetimeMs });
  });
  router.add('POST', '/v1/dashboard/exchange', async (ctx) => {
    const code = (await ctx.text(jsonBodyMaxBytes, 'The sign-in code')).trim();
    dropExpired(codes);
    const entry = codes.get(code);
    codes.delete(code); // one use, whatever happens next
    if (entry === undefined) throw new HttpError(404, 'Unknown or expired sign-in code: run `spacetime dashboard` again');
    ctx.sendJson(200, { identity: identityToHex(entry.identity), token: entry.token });
  });
}

function dropExpired(codes: Map<string, SignInCode>): void {
  const now = Date.now();
  for (const [code, entry] of codes) if (entry.expiresAtMs <= now) codes.delete(code);
}

async function sendStatic(ctx: RequestContext, file: string): Promise<void> {
  // One flat folder of built files: a name is a plain file name, never a path.
  const match = /^[A-Za-z0-9_-]+(?:\.[a-z]+)*(\.[a-z]+)$/.exec(file);
  const contentType = match === null ? undefined : contentTypes[match[1]!];
  if (contentType === undefined) throw new HttpError(404, `No dashboard file \`${file}\``);
  let body: Buffer;
  try {
    body = await readFile(staticDir + file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const hint = file === 'index.html' ? ': the dashboard is not built (run `npm run build`)' : '';
    throw new HttpError(404, `No dashboard file \`${file}\`${hint}`);
  }
  ctx.res.writeHead(200, {
    ...securityHeaders,
    'Content-Type': contentType,
    'Content-Length': body.length,
    'Cache-Control': file === 'index.html' ? 'no-store' : 'no-cache',
  });
  ctx.res.end(body);
}
