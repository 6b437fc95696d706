// subscription/wire-frame.ts — the binary protocol's per-message envelope: one compression tag byte, then the body
// (a ServerMessage's BSATN), gzip or brotli above `compressionThresholdBytes` when the client asked for it.
//
// Owns: that envelope, and answers encoded where they were decided (`FramedAnswer`): in worker mode a SubscribeApplied
// or one-off result is encoded on its database's thread, and compressed there when large, so the server's main thread
// only queues and writes the bytes. Cloning the message object across, encoding and compressing it on the main thread
// held every other client and /v1/ping for 0.3–1.2 s per 400k-row (17 MB) answer.
// May call: subscription/messages.ts, sats/bsatn.ts, node:zlib.

import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';
import { BsatnWriter } from '../sats/bsatn.js';
import { writeServerMessage, type ServerMessage } from './messages.js';

export type Compression = 'None' | 'Gzip' | 'Brotli';
export const compressionTag = { None: 0, Brotli: 1, Gzip: 2 } as const;
/** Bodies up to this size are sent uncompressed (tag 0), as upstream does. */
export const compressionThresholdBytes = 1024;

/**
 * An answer encoded where it was decided. `wire` false: byte 0 is a placeholder tag (None) and the body follows, framed
 * by the session like its own messages (coalesced, compressed above the threshold). `wire` true: the final binary
 * WebSocket message, compressed as the client asked; sent alone, never coalesced.
 */
export interface FramedAnswer { readonly bytes: Uint8Array; readonly wire: boolean }

/** Answers at least this large (encoded) and for a compressing client are compressed where they were decided. */
export const answerCompressedAtSourceMinBytes = 64 * 1024;

/** `[compression tag][body]`, compressing bodies above the threshold when the client asked for it. */
export function frame(body: Uint8Array, compression: Compression): Buffer {
  let tag: number = compressionTag.None;
  let out: Uint8Array = body;
  if (compression !== 'None' && body.length > compressionThresholdBytes) {
    tag = compressionTag[compression];
    out = compression === 'Gzip'
      ? gzipSync(body, { level: 1 })
      : brotliCompressSync(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 1 } });
  }
  const f = Buffer.allocUnsafe(out.length + 1);
  f[0] = tag;
  f.set(out, 1);
  return f;
}

/** `message` encoded for a client with `compression` (see FramedAnswer). */
export function framedAnswer(message: ServerMessage, compression: Compression): FramedAnswer {
  const w = new BsatnWriter(4096);
  w.writeU8(compressionTag.None);
  writeServerMessage(w, message);
  const bodyBytes = w.lengthBytes - 1;
  if (compression === 'None' || bodyBytes < answerCompressedAtSourceMinBytes) return { bytes: w.written(), wire: false };
  return { bytes: frame(w.written().subarray(1), compression), wire: true };
}
