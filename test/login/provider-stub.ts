// A minimal OpenID provider for the JWT tests: a loopback HTTP server that publishes a discovery document and a
// JWKS whose keys the test swaps (key rotation), and signs tokens with real RS256/ES256 keys. It counts JWKS
// fetches so the tests can check the verifier's cache and refetch rate limit.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

export class ProviderStub {
  issuer = '';
  published: SigningKey[] = [];
  jwksFetches = 0;
  /** TCP connections accepted (a refused issuer address must never reach the provider at all). */
  connections = 0;
  private server: Server | undefined;

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const send = (value: unknown): void => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      if (req.url === '/.well-known/openid-configuration') {
        send({ issuer: this.issuer, jwks_uri: `${this.issuer}/jwks`, authorization_endpoint: `${this.issuer}/auth`, token_endpoint: `${this.issuer}/token` });
      } else if (req.url === '/jwks') {
        this.jwksFetches++;
        send({ keys: this.published.map((k) => k.publicJwk) });
      } else {
        res.writeHead(404).end();
      }
    });
    this.server.on('connection', () => { this.connections++; });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** A token signed with `key`; claims default to a valid, current token for `aud`. */
  async sign(key: SigningKey, claims: JWTPayload & Record<string, unknown>, aud = 'my-app'): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: this.issuer, sub: 'user-1', aud, iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .sign(key.privateKey);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
