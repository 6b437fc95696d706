// Host: the isolate's UTF-8 TextDecoder / TextEncoder polyfills (isolate-src.ts) give what Node's (WHATWG) give: ASCII
// around 1 KiB, text with 2-, 3- and 4-byte characters, a BOM, invalid sequences (replaced, or thrown with fatal), and
// input long enough to cross the decoder's 4096-code-unit chunks; and the decoder's options given as undefined, null,
// {} or { fatal } (the constructor takes no default object). The module decodes byte strings it is given and logs the
// results; the test computes the same with Node's decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Database, type Caller } from '../../src/host/database.js';
import { sourceBundle } from './bundle.js';

const alice: Caller = { identity: 0x1111n, connectionId: 0x22n, jwtPayload: undefined };

const moduleSource = `
import { schema, table, t } from 'spacetimedb/server';
const spacetimedb = schema({ unused: table({ name: 'unused' }, { id: t.u32().primaryKey() }) });
export default spacetimedb;
function decodeBoth(bytes) {
  const lenient = new TextDecoder().decode(bytes);
  let strict;
  try { strict = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch (e) { strict = 'threw ' + e.name; }
  return [lenient, strict];
}
export const decode = spacetimedb.reducer({ cases: t.array(t.byteArray()) }, (ctx, { cases }) => {
  console.info(JSON.stringify(cases.map((c) => decodeBoth(c))));
});
export const options = spacetimedb.reducer((ctx) => {
  const fatal = (...a) => { try { return new TextDecoder(...a).fatal; } catch (e) { return 'threw ' + e.name; } };
  console.info(JSON.stringify([fatal(), fatal('utf-8'), fatal('utf-8', undefined), fatal('utf-8', null), fatal('utf-8', {}),
    fatal('utf-8', { fatal: 1 }), fatal(undefined, { fatal: true })]));
});
export const roundTrip = spacetimedb.reducer({ texts: t.array(t.string()) }, (ctx, { texts }) => {
  console.info(JSON.stringify(texts.map((s) => Array.from(new TextEncoder().encode(s)))));
});
`;

const moduleBundle = (): Promise<string> => sourceBundle(moduleSource, 'strings.ts');

const ascii = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => 0x20 + ((from + i) % 0x5f));
const utf8 = (s: string): number[] => Array.from(Buffer.from(s, 'utf8'));
const cases: number[][] = [
  [],
  utf8('owner-12345'),
  ascii(1023), ascii(1024), ascii(1025),                    // around the fast path's bound
  [0x7f, 0x00, 0x41],                                       // DEL and NUL are ASCII
  [...ascii(10), 0x80],                                      // a lone continuation byte at the end
  [0xff, ...ascii(5)],
  utf8('héllo wörld ✓ 😀'),
  [0xef, 0xbb, 0xbf, ...utf8('bom')],                       // the BOM is dropped
  [0xe2, 0x82],                                              // truncated 3-byte sequence
  [0xed, 0xa0, 0x80],                                        // an encoded surrogate
  [0xf0, 0x9f, 0x98],                                        // truncated 4-byte sequence
  [...ascii(5000), ...utf8('é'), ...ascii(5000, 7)],         // past one 4096-unit chunk, off the fast path
  [...utf8('😀'.repeat(2100))],                               // surrogate pairs across a chunk boundary
];
const texts = ['', 'owner-1', 'é', '😀', 'a\uD800b', 'x'.repeat(1500)];

function nodeDecodeBoth(bytes: Uint8Array): [string, string] {
  const lenient = new TextDecoder().decode(bytes);
  let strict: string;
  try { strict = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch (e) { strict = `threw ${(e as Error).name}`; }
  return [lenient, strict];
}

test('the isolate decodes and encodes UTF-8 exactly as Node does', async () => {
  const db = await Database.create({ identity: 0xc200c1n, ownerIdentity: 0xabn, report: () => {} }, await moduleBundle());
  try {
    const hex = (b: number[]): string => Buffer.from(b).toString('hex');
    const decoded = await db.callReducerJson('decode', [cases.map(hex)], alice);
    assert.equal(decoded.status, 'committed');
    const got = JSON.parse(db.logs.tail(1)[0].message) as [string, string][];
    assert.equal(got.length, cases.length);
    for (const [i, c] of cases.entries()) assert.deepEqual(got[i], nodeDecodeBoth(new Uint8Array(c)), `case ${i}`);
    assert.equal((await db.callReducerJson('options', [], alice)).status, 'committed');
    assert.deepEqual(JSON.parse(db.logs.tail(1)[0].message), [false, false, false, false, false, true, true]);
    const encoded = await db.callReducerJson('roundTrip', [texts], alice);
    assert.equal(encoded.status, 'committed');
    assert.deepEqual(JSON.parse(db.logs.tail(1)[0].message), texts.map((s) => Array.from(new TextEncoder().encode(s))));
  } finally {
    await db.close();
  }
});
