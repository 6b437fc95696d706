// server/routes/identity.ts — /v1/ping and /v1/identity/* (client-protocol.md §5.1).
//
// Owns: the identity routes. May call: server/http.ts, server/databases.ts, auth/.

import { identityFromHex, identityToHex } from '../../auth/identity.js';
import type { TokenAuthority } from '../../auth/tokens.js';
import type { DatabaseRegistry } from '../databases.js';
import { HttpError, type RequestContext, type Router } from '../http.js';

export function addIdentityRoutes(router: Router, tokens: TokenAuthority, registry: DatabaseRegistry): void {
  router.add('GET', '/v1/ping', async (ctx) => ctx.sendEmpty(200));

  router.add('POST', '/v1/identity', async (ctx) => {
    const minted = await tokens.mintIdentity();
    ctx.sendJson(200, { identity: identityToHex(minted.identity), token: minted.token });
  });

  router.add('POST', '/v1/identity/websocket-token', async (ctx) => {
    const verified = await ctx.requireAuth();
    ctx.sendJson(200, { token: await tokens.websocketToken(verified) });
  });

  router.add('GET', '/v1/identity/public-key', async (ctx) => {
    ctx.sendText(200, tokens.keys.publicKeyPem, 'application/pem-certificate-chain');
  });

  router.add('GET', '/v1/identity/:identity/verify', async (ctx) => {
    const identity = pathIdentity(ctx);
    const verified = await ctx.requireAuth();
    if (verified.identity !== identity) {
      ctx.sendText(400, `Token is for identity ${identityToHex(verified.identity)}, not ${identityToHex(identity)}`);
      return;
    }
    ctx.sendEmpty(204);
  });

  router.add('GET', '/v1/identity/:identity/databases', async (ctx) => {
    const identity = pathIdentity(ctx);
    const identities = registry.control.ownedBy(identity).map((record) => identityToHex(record.identity));
    ctx.sendJson(200, { identities });
  });
}

function pathIdentity(ctx: RequestContext): bigint {
  const text = ctx.params.identity!;
  const identity = identityFromHex(text);
  if (identity === undefined) throw new HttpError(400, `Invalid identity \`${text}\`: expected 64 hex digits`);
  return identity;
}
