// auth/keys.ts — the server's ES256 signing key pair.
//
// Owns: `<dataDir>/keys/id_ecdsa` (PKCS#8 PEM private key, mode 0600) and `id_ecdsa.pub` (SPKI PEM public key).
// Created on first start, loaded afterwards. Files are written atomically (temp file, fsync, rename, fsync dir) so a
// crash never leaves a half-written key that would invalidate every token issued so far.
// May call: node:crypto, node:fs. Nothing else in src/.

import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

export const privateKeyFileName = 'id_ecdsa';
export const publicKeyFileName = 'id_ecdsa.pub';

export interface SigningKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as SPKI PEM text (what GET /v1/identity/public-key serves). */
  publicKeyPem: string;
}

/** Error for unusable key files on disk (unreadable, not EC P-256, public half not matching the private one). */
export class KeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFileError';
  }
}

/** Loads the key pair from `keyDir`, creating it (and the directory) when neither file exists. */
export async function loadOrCreateKeys(keyDir: string): Promise<SigningKeys> {
  const privatePath = join(keyDir, privateKeyFileName);
  const publicPath = join(keyDir, publicKeyFileName);
  const privatePem = await readIfExists(privatePath);
  const publicPem = await readIfExists(publicPath);
  if (privatePem === undefined && publicPem === undefined) return createKeys(keyDir, privatePath, publicPath);
  if (privatePem === undefined || publicPem === undefined) {
    throw new KeyFileError(`key directory ${keyDir} holds only one of ${privateKeyFileName} / ${publicKeyFileName}`);
  }
  return parseKeys(privatePem, publicPem, keyDir);
}

async function createKeys(keyDir: string, privatePath: string, publicPath: string): Promise<SigningKeys> {
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  // Public first: a crash between the two writes leaves only the public key, which loadOrCreateKeys reports
  // instead of silently generating a new pair that would not match it.
  await writeFileDurably(publicPath, publicPem, 0o644);
  await writeFileDurably(privatePath, privatePem, 0o600);
  return { privateKey, publicKey, publicKeyPem: publicPem };
}

function parseKeys(privatePem: string, publicPem: string, keyDir: string): SigningKeys {
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  try {
    privateKey = createPrivateKey(privatePem);
    publicKey = createPublicKey(publicPem);
  } catch (error) {
    throw new KeyFileError(`cannot parse the key files in ${keyDir}: ${(error as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyFileError(`${join(keyDir, privateKeyFileName)} is not an EC P-256 private key`);
  }
  const derivedPublic = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  if (!derivedPublic.equals(publicKey.export({ type: 'spki', format: 'der' }))) {
    throw new KeyFileError(`${join(keyDir, publicKeyFileName)} does not match ${privateKeyFileName}`);
  }
  return { privateKey, publicKey, publicKeyPem: publicPem };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Write temp, fsync, rename over the target, fsync the directory. */
export async function writeFileDurably(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tempPath = `${path}.tmp-${process.pid}`;
  const file = await open(tempPath, 'w', mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tempPath, path);
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
