// test/durability/helpers.ts — temp directories and deterministic payloads shared by the durability tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(label: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `stdb-durability-${label}-`));
  made.push(d);
  return d;
}

/** A payload whose length and bytes depend on the offset, so a record in the wrong place is noticed. */
export function payloadFor(offset: number | bigint, lengthBytes?: number): Uint8Array {
  const n = Number(offset);
  const len = lengthBytes ?? 1 + ((n * 37) % 90);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (n * 7 + i * 13) & 0xff;
  return out;
}

export function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.stdb.log')).sort().map((n) => path.join(dir, n));
}

export function copyDir(from: string, to: string): void {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
}
