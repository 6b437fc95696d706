// host/isolate-src.ts — JavaScript source text evaluated INSIDE a module's isolate (never in Node's realm).
//
// Owns: (1) the bootstrap script: the engine polyfills a V8 14.5 module expects on V8 11.3 (Symbol.dispose, ES2025
// Set methods, iterator helpers, a few ES2024 statics), UTF-8 TextEncoder/TextDecoder, the throwing Math.random, and
// (2) the syscall shims of `spacetime:sys@2.0/2.1` plus the call dispatcher the host enters through.
// May call: datastore/types (rowLayoutCode, a constant spliced into the source). The wire between shims and host is
// documented at `op` below and in syscalls.ts.
//
// Crossing design (ARCHITECTURE.md "Isolate crossings"): the shims share one SharedArrayBuffer (the exchange buffer,
// `X`) with the host. Inputs are copied into X, the host callback `H(op, ...numbers|strings)` returns a number
// (negative = -errno, message in X as u32 length + UTF-8), outputs are read from X. Scans come back whole in the same
// crossing when they fit (chunk format: u32 rowCount, u32 dataBytes, u32 flags, u32 tableId, u32 updateShape,
// rowCount × u32 rowLen, data; flags bit 0 = more rows on the host, bit 1 = the one row found by a point scan may be
// updated without a crossing, see below, bits 8.. = the id of its row layout when its rows have no fixed width, the
// layout itself (u32 length + codes) following the data), and the shim serves row_iter_bsatn_advance from its own copy.
//
// Row cache and deferred updates (reducer calls only; docs/performance.md "Round 3: module call path" and "Round 5").
// For indexes whose updates cannot fail once their row exists (datastore MutTx.infallibleUpdate: rows of numbers,
// strings, bytes, bools, timestamps and options of these, every unique constraint on that one integer column, no
// sequences, no schedule), the shim keeps the rows that point scans found
// and that updates wrote (the row cache). A point scan it can answer needs no crossing. An update of a cached row is
// queued instead of crossing when its row passes the same checks the host would make (its length, or for rows
// without a fixed width its row layout, validRow): it returns the 0 the host would return and cannot throw, so the
// module observes no difference; a row that fails them crosses as usual, and gets the host's error. The queue goes to the host before any other crossing (op.applyUpdates, in order: every read sees it)
// or with the call's result (callOutcome.okDeferred). The cache is exact: every crossing other than a point scan
// empties it (inserts, deletes, clears and other updates all cross), and it survives from one reducer call to the
// next only when the host says nothing else wrote in between (keepRowCacheFlag, MutTx.checkpoint/follows).
// Procedures and views neither use nor fill it.

import { rowLayoutCode } from '../datastore/types.js';

/** Op codes shared by the shims (below) and the host (syscalls.ts). Keep the two in sync through this object. */
export const op = {
  tableId: 1,
  indexId: 2,
  rowCount: 3,
  tableScan: 4,
  indexScanPoint: 5,
  indexScanRange: 6,
  iterNextChunk: 7,
  iterClose: 8,
  insert: 9,
  update: 10,
  deletePoint: 11,
  deleteRange: 12,
  deleteEq: 13,
  clear: 14,
  consoleLog: 15,
  timerStart: 16,
  timerEnd: 17,
  identity: 18,
  jwtPayload: 19,
  scheduleImmediate: 20,
  // 21 was a placeholder for procedures (never sent); they use procStartTx..httpResult.
  procStartTx: 22,
  procCommitTx: 23,
  procAbortTx: 24,
  httpRequest: 25,
  httpResult: 26,
  applyUpdates: 27,
} as const;

/** Bytes of the scan chunk header in the exchange buffer (five u32 words, see above). */
export const chunkHeaderBytes = 20;
/** Chunk flags (header word 2). */
export const chunkFlag = { more: 1, updatable: 2 } as const;

/**
 * Outcome codes the dispatcher returns for a reducer call. okDeferred: the call succeeded and left queued updates in
 * the exchange buffer (u32 byte length, then records of u32 tableId, u32 indexId, u32 rowLength, row bytes).
 */
export const callOutcome = { ok: 0, senderError: 1, otherError: 2, okDeferred: 3 } as const;

/** Bytes of a queued update's record header (tableId, indexId, row length). */
export const updateRecordHeaderBytes = 12;
/** The queue is sent to the host (one crossing) when it would grow past this; it always fits the exchange buffer. */
export const updateQueueMaxBytes = 64 * 1024;
/** Estimated bytes the row cache may hold in the module's heap (rows plus per-entry Map overhead); past it, it restarts. */
const rowCacheMaxBytes = 8 << 20;
const rowCacheEntryOverheadBytes = 48;
/** Flag bit of the reducer-call header: the previous call committed and nothing else wrote since (MutTx.follows). */
export const keepRowCacheFlag = 4;

/**
 * Sequence leases (deferred autoInc inserts, see the header): a second SharedArrayBuffer the host writes and the shim
 * reads, apart from X so that it survives X's growth and the isolate's end. Word 0: slots in use; slot i at
 * leaseHeaderBytes + i × leaseSlotBytes: u32 tableId, u32 active, u32 used (the shim counts), u32 granted,
 * f64 start, f64 increment, u32 sequence offset, u32 sequence width, u32 row width (0: layout), u32 layout id,
 * u32 layout length, layout codes.
 */
export const lease = { bufferBytes: 4096, headerBytes: 16, slotBytes: 256, layoutAt: 52 } as const;
export const leaseSlotsMax = Math.floor((lease.bufferBytes - lease.headerBytes) / lease.slotBytes);
/** indexId of a queued record that is an insert (updates carry their index). */
export const insertRecordMarker = 0xffffffff;

/** Error code the host uses for "the exchange buffer must grow to N bytes; retry" (N in X[0..4]). */
export const growCode = -1000;

/**
 * The shim's row layout check (validRow, utf8Valid), spliced into the bootstrap; exported so that a test can hold it
 * against the datastore's row validation (test/datastore/call-path).
 */
export const layoutCheckSource = String.raw`
// Whether row[0, len) is a row the layout accepts (codes: datastore/types.ts rowLayoutCode). It must accept exactly
// what the host's row validation accepts: a row it wrongly accepted would fail the whole call when applied.
function validRow(b, len, L) {
  let p = 0;
  for (let i = 0; i < L.length;) {
    let k = L[i++];
    if (k === ${rowLayoutCode.option}) {
      if (p >= len) return false;
      const tag = b[p++];
      if (tag === 1) { i += L[i] === ${rowLayoutCode.fixed} ? 3 : 1; continue; }
      if (tag !== 0) return false;
      k = L[i++];
    }
    if (k === ${rowLayoutCode.fixed}) { p += L[i] | (L[i + 1] << 8); i += 2; if (p > len) return false; }
    else if (k === ${rowLayoutCode.bool}) { if (p >= len || b[p] > 1) return false; p++; }
    else {
      if (p + 4 > len) return false;
      const n = (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x1000000;
      p += 4;
      if (n > len - p) return false;
      if (k === ${rowLayoutCode.string} && !utf8Valid(b, p, p + n)) return false;
      p += n;
    }
  }
  return p === len;
}
// WHATWG UTF-8 decoding without replacement (TextDecoder fatal), as the host's BsatnReader.readString.
function utf8Valid(b, p, end) {
  while (p < end) {
    const c = b[p];
    if (c < 0x80) { p++; continue; }
    let need, lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c === 0xe0) lo = 0xa0; else if (c === 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c === 0xf0) lo = 0x90; else if (c === 0xf4) hi = 0x8f; }
    else return false;
    if (p + need >= end) return false;
    const d = b[p + 1];
    if (d < lo || d > hi) return false;
    for (let j = 2; j <= need; j++) { const e = b[p + j]; if (e < 0x80 || e > 0xbf) return false; }
    p += need + 1;
  }
  return true;
}
`;

export const bootstrapSource = String.raw`
(function () {
'use strict';
const G = globalThis;
const def = (o, k, v) => Object.defineProperty(o, k, { value: v, writable: true, configurable: true, enumerable: false });

// --- Explicit resource management: esbuild's lowered 'using' falls back to these registered symbols.
if (!Symbol.dispose) def(Symbol, 'dispose', Symbol.for('Symbol.dispose'));
if (!Symbol.asyncDispose) def(Symbol, 'asyncDispose', Symbol.for('Symbol.asyncDispose'));

// --- ES2025 Set methods (the library calls isSubsetOf on first ctx.db access).
const SP = Set.prototype;
const keysOf = (o) => o.keys();
if (!SP.union) def(SP, 'union', function (o) { const r = new Set(this); for (const k of keysOf(o)) r.add(k); return r; });
if (!SP.intersection) def(SP, 'intersection', function (o) { const r = new Set(); for (const k of this) if (o.has(k)) r.add(k); return r; });
if (!SP.difference) def(SP, 'difference', function (o) { const r = new Set(); for (const k of this) if (!o.has(k)) r.add(k); return r; });
if (!SP.symmetricDifference) def(SP, 'symmetricDifference', function (o) {
  const r = new Set(this); for (const k of keysOf(o)) { if (this.has(k)) r.delete(k); else r.add(k); } return r; });
if (!SP.isSubsetOf) def(SP, 'isSubsetOf', function (o) { if (this.size > o.size) return false; for (const k of this) if (!o.has(k)) return false; return true; });
if (!SP.isSupersetOf) def(SP, 'isSupersetOf', function (o) { for (const k of keysOf(o)) if (!this.has(k)) return false; return true; });
if (!SP.isDisjointFrom) def(SP, 'isDisjointFrom', function (o) { for (const k of this) if (o.has(k)) return false; return true; });

// --- Iterator helpers on %IteratorPrototype% (the library's table iterators are generators).
const IP = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
if (!IP.map) {
  function* map(it, f) { let i = 0; for (const v of it) yield f(v, i++); }
  function* filter(it, f) { let i = 0; for (const v of it) if (f(v, i++)) yield v; }
  function* take(it, n) { if (n <= 0) return; let i = 0; for (const v of it) { yield v; if (++i >= n) return; } }
  function* drop(it, n) { let i = 0; for (const v of it) if (i++ >= n) yield v; }
  function* flatMap(it, f) { let i = 0; for (const v of it) yield* f(v, i++); }
  const wrap = (self) => ({ [Symbol.iterator]: () => self });
  def(IP, 'map', function (f) { return map(wrap(this), f); });
  def(IP, 'filter', function (f) { return filter(wrap(this), f); });
  def(IP, 'take', function (n) { return take(wrap(this), Number(n)); });
  def(IP, 'drop', function (n) { return drop(wrap(this), Number(n)); });
  def(IP, 'flatMap', function (f) { return flatMap(wrap(this), f); });
  def(IP, 'toArray', function () { return Array.from(wrap(this)); });
  def(IP, 'forEach', function (f) { let i = 0; for (const v of wrap(this)) f(v, i++); });
  def(IP, 'some', function (f) { let i = 0; for (const v of wrap(this)) if (f(v, i++)) return true; return false; });
  def(IP, 'every', function (f) { let i = 0; for (const v of wrap(this)) if (!f(v, i++)) return false; return true; });
  def(IP, 'find', function (f) { let i = 0; for (const v of wrap(this)) if (f(v, i++)) return v; return undefined; });
  def(IP, 'reduce', function (f, ...init) {
    let i = 0, acc, first = init.length === 0; if (!first) acc = init[0];
    for (const v of wrap(this)) { if (first) { acc = v; first = false; i++; continue; } acc = f(acc, v, i++); }
    if (first) throw new TypeError('Reduce of empty iterator with no initial value'); return acc; });
}

// --- Small ES2024/2025 statics.
if (!Object.groupBy) def(Object, 'groupBy', function (items, f) {
  const r = Object.create(null); let i = 0; for (const v of items) { const k = f(v, i++); (r[k] ??= []).push(v); } return r; });
if (!Map.groupBy) def(Map, 'groupBy', function (items, f) {
  const r = new Map(); let i = 0; for (const v of items) { const k = f(v, i++); let a = r.get(k); if (!a) r.set(k, a = []); a.push(v); } return r; });
if (!Promise.withResolvers) def(Promise, 'withResolvers', function () {
  let resolve, reject; const promise = new this((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; });
if (!Error.isError) def(Error, 'isError', function (v) { return Object.prototype.toString.call(v) === '[object Error]'; });
if (!RegExp.escape) def(RegExp, 'escape', function (s) { return String(s).replace(/[\\^$.*+?()[\]{}|/\-]/g, '\\$&'); });

// --- Math.random is not deterministic: modules must use ctx.random.
Object.defineProperty(Math, 'random', { configurable: true, enumerable: false, get() {
  throw new TypeError('Math.random is not available in SpacetimeDB modules. Use ctx.random instead.'); } });

// --- UTF-8 TextEncoder / TextDecoder (the only encoding modules get, as upstream). The official library constructs
// one per string it reads or writes (BinaryReader.readString, BinaryWriter.writeString), so construction and the
// ASCII case are kept cheap: one exact-size allocation for an ASCII string (measured 340 → 130 ns for 10 chars).
function utf8Encode(s) {
  const n = s.length;
  let i = 0;
  while (i < n && s.charCodeAt(i) < 0x80) i++;
  if (i === n) { const a = new Uint8Array(n); for (let k = 0; k < n; k++) a[k] = s.charCodeAt(k); return a; }
  let out = new Uint8Array(n * 3); let j = 0;
  for (let k = 0; k < i; k++) out[j++] = s.charCodeAt(k);
  for (; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) { out[j++] = c; continue; }
    if (c < 0x800) { out[j++] = 0xc0 | (c >> 6); out[j++] = 0x80 | (c & 63); continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++; c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        out[j++] = 0xf0 | (c >> 18); out[j++] = 0x80 | ((c >> 12) & 63); out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63);
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    out[j++] = 0xe0 | (c >> 12); out[j++] = 0x80 | ((c >> 6) & 63); out[j++] = 0x80 | (c & 63);
  }
  return j === out.length ? out : out.slice(0, j);
}
function utf8Decode(b, fatal) {
  const n = b.length; let s = ''; let chunk = [];
  const bad = () => { if (fatal) throw new TypeError('The encoded data was not valid for encoding utf-8'); chunk.push(0xfffd); };
  for (let i = 0; i < n;) {
    const c = b[i];
    if (c < 0x80) { chunk.push(c); i++; }
    else {
      let need = 0, cp = 0, lo = 0x80, hi = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) { need = 1; cp = c & 0x1f; }
      else if (c >= 0xe0 && c <= 0xef) { need = 2; cp = c & 0xf; if (c === 0xe0) lo = 0xa0; if (c === 0xed) hi = 0x9f; }
      else if (c >= 0xf0 && c <= 0xf4) { need = 3; cp = c & 7; if (c === 0xf0) lo = 0x90; if (c === 0xf4) hi = 0x8f; }
      else { bad(); i++; continue; }
      let k = 1;
      for (; k <= need; k++) {
        const d = b[i + k];
        if (i + k >= n || d < lo || d > hi) break;
        lo = 0x80; hi = 0xbf; cp = (cp << 6) | (d & 63);
      }
      if (k <= need) { bad(); i += k; continue; }
      i += need + 1;
      if (cp >= 0x10000) { cp -= 0x10000; chunk.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff)); } else chunk.push(cp);
    }
    if (chunk.length >= 4096) { s += String.fromCharCode.apply(null, chunk); chunk = []; }
  }
  return s + String.fromCharCode.apply(null, chunk);
}
const isUtf8Label = (l) => { const x = String(l).trim().toLowerCase(); return x === 'utf-8' || x === 'utf8' || x === 'unicode-1-1-utf-8'; };
class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(s = '') { return utf8Encode(String(s)); }
  encodeInto(s, dest) {
    const b = utf8Encode(String(s)); let n = Math.min(b.length, dest.length);
    while (n > 0 && n < b.length && (b[n] & 0xc0) === 0x80) n--;
    dest.set(b.subarray(0, n));
    let read = 0; for (let i = 0; i < n;) { const c = b[i]; const w = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; i += w; read += w === 4 ? 2 : 1; }
    return { read, written: n };
  }
}
class TextDecoder {
  #fatal; #ignoreBOM;
  constructor(label = 'utf-8', options = {}) {
    if (label !== 'utf-8' && !isUtf8Label(label)) throw new RangeError('The "' + label + '" encoding is not supported');
    if (options.ignoreBOM) throw new TypeError('TextDecoder ignoreBOM is not supported');
    this.#fatal = !!options.fatal; this.#ignoreBOM = false;
  }
  get encoding() { return 'utf-8'; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input, options) {
    if (options && options.stream) throw new TypeError('TextDecoder stream option is not supported');
    if (input === undefined) return '';
    let b;
    if (input instanceof Uint8Array) b = input;
    else if (input instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && input instanceof SharedArrayBuffer)) b = new Uint8Array(input);
    else if (ArrayBuffer.isView(input)) b = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    else throw new TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
    let start = 0; if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) start = 3;
    return utf8Decode(start ? b.subarray(start) : b, this.#fatal);
  }
}
def(G, 'TextEncoder', TextEncoder);
def(G, 'TextDecoder', TextDecoder);

// --- Syscall shims. The host callback and the exchange SharedArrayBuffer are handed over once, as globals.
const H = G.__stdbH;
const W = G.__stdbW;                            // awaits the host's HTTP reply (applySyncPromise: only this thread waits)
let X = new Uint8Array(G.__stdbX), XV = new DataView(G.__stdbX);
// Sequence leases (\`lease\` in isolate-src.ts); a host without them (bench/engine-v2) leaves zero slots.
const LV = new DataView(G.__stdbL ?? new ArrayBuffer(16));
delete G.__stdbH; delete G.__stdbX; delete G.__stdbW; delete G.__stdbL;
const decoder = new TextDecoder('utf-8');
let hooks;                                      // set once the module's hooks exist
let inCall = false;                             // true while the host is inside a call into the module
let nextIterId = 1;                             // never reused
// id -> iterator { data, lv, count, row, lenAt, pos, more }: rows row..count-1 of the current chunk, their u32
// lengths at lv[lenAt + 4*i], their bytes from data[pos]. A fresh chunk is left in the exchange buffer (data = X)
// and only copied out (materialize) when another crossing is about to overwrite X: a find then costs no copy.
const iters = new Map();
let xIter;                                      // the iterator whose rows still sit in X, if any

// The host allocates the bigger buffer (it must see it too) and copies the old contents, so a retried call finds
// its input still in place.
function grow(minBytes) { setX(H(0, minBytes)); }
function setX(sab) {
  X = new Uint8Array(sab); XV = new DataView(sab);
  if (xIter !== undefined) { xIter.data = X; xIter.lv = XV; }
}
function fail(code) {
  if (code === ${growCode}) { grow(XV.getUint32(0, true)); return true; }
  const len = XV.getUint32(0, true);
  const msg = decoder.decode(X.slice(4, 4 + len));
  if (hooks === undefined) throw new Error(msg);
  const Ctor = hooks.__get_error_constructor__(-code);
  throw new Ctor(msg);
}
// Small copies by hand: a typed-array view per call costs more than the bytes.
const copySmallMaxBytes = 64;
let lastIn, lastInU8;
function checkLen(buf, len) {
  if (typeof len !== 'number' || len < 0 || len > buf.byteLength) throw new RangeError('length argument was out of bounds for ArrayBuffer');
}
function bytesOf(buf) {
  if (buf !== lastIn || lastInU8.byteLength !== buf.byteLength) { lastIn = buf; lastInU8 = new Uint8Array(buf); }
  return lastInU8;
}
function put(buf, len, at) {
  checkLen(buf, len);
  prepareX();
  if (at + len > X.length) grow(at + len);
  const src = bytesOf(buf);
  if (len <= copySmallMaxBytes) { for (let i = 0; i < len; i++) X[at + i] = src[i]; }
  else X.set(src.subarray(0, len), at);
}
// Before anything writes X: copy out rows still sitting there, and hand queued updates to the host.
function prepareX() {
  if (xIter !== undefined) materialize();
  if (qLen > 0) flushUpdates();
}
// Every crossing but a point scan may remove rows, so it forgets which rows are known to exist.
function call(opc, a, b, c, d, e, f) {
  prepareX();
  clearRowCache();
  for (;;) { const r = H(opc, a, b, c, d, e, f); if (r >= 0) return r; fail(r); }
}

// --- Row cache and deferred updates (see the header of isolate-src.ts). rowCache: indexId -> { tableId, shape
// (keyOffset | rowWidth << 16; rowWidth 0: rows of any length that \`layout\` accepts), layoutId, layout, keyLen,
// rows: Map<key, offset in arena> } for indexes whose updates cannot fail: the row with that key is in the
// transaction's state now, as u32 length + bytes at arena[offset]. One arena for all rows (no object per row: a cache
// of many rows must not cost the module's GC); a hit is copied into X like a fresh scan.
let deferring = false;                          // true inside a reducer call
const rowCache = new Map();
const layouts = new Map();                      // layout id (the host numbers them) -> MutTx.infallibleUpdate layout
let arena = new Uint8Array(4096), arenaUsed = 0, rowCacheBytes = 0;
let arenaV = new DataView(arena.buffer);
let Q = new Uint8Array(4096), QV = new DataView(Q.buffer), qLen = 0;   // queued update records, see queueUpdate
function clearRowCache() { if (rowCache.size > 0) { rowCache.clear(); arenaUsed = 0; rowCacheBytes = 0; } }
// Map key of the n key bytes at b[at]: a number up to 6 bytes (exact), else a latin1 string.
function keyAt(b, at, n) {
  if (n <= 6) { let k = 0, m = 1; for (let i = 0; i < n; i++) { k += b[at + i] * m; m *= 256; } return k; }
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[at + i]);
  return s;
}
function copyBytes(dst, to, src, from, n) {
  if (n <= copySmallMaxBytes) { for (let i = 0; i < n; i++) dst[to + i] = src[from + i]; }
  else dst.set(src.subarray(from, from + n), to);
}
${layoutCheckSource}
// Writes len bytes of src[from..] as the cached row of key in c: in place when the old row (at, or undefined) has
// the same length, else in a new arena slot (the old one is garbage until the cache restarts).
function storeRow(c, key, at, src, from, len) {
  if (at !== undefined && arenaV.getUint32(at, true) === len) { copyBytes(arena, at + 4, src, from, len); return; }
  if (rowCacheBytes + len + ${rowCacheEntryOverheadBytes} > ${rowCacheMaxBytes}) {
    // Restart the cache; keep only this entry.
    const rows = c.rows;
    clearRowCache(); rows.clear(); rowCache.set(c.indexId, c);
  }
  if (arenaUsed + 4 + len > arena.length) {
    const a = new Uint8Array(Math.max(2 * arena.length, arenaUsed + 4 + len));
    a.set(arena.subarray(0, arenaUsed)); arena = a; arenaV = new DataView(a.buffer);
  }
  at = arenaUsed; arenaUsed += 4 + len; rowCacheBytes += len + ${rowCacheEntryOverheadBytes};
  arenaV.setUint32(at, len, true);
  copyBytes(arena, at + 4, src, from, len);
  c.rows.set(key, at);
}
// Remembers the row src[from .. from + len] under key for indexId (a point scan found it).
function cacheRow(indexId, tableId, shape, layoutId, keyLen, key, src, from, len) {
  let c = rowCache.get(indexId);
  if (c === undefined || c.tableId !== tableId || c.shape !== shape || c.keyLen !== keyLen || c.layoutId !== layoutId) {
    let layout;
    if ((shape >>> 16) === 0) {
      layout = layouts.get(layoutId);
      if (layout === undefined) {
        // The host put it after the row: u32 length + codes.
        const at = from + len, n = XV.getUint32(at, true);
        layout = X.slice(at + 4, at + 4 + n);
        layouts.set(layoutId, layout);
      }
    }
    c = { indexId, tableId, shape, keyLen, layoutId, layout, rows: new Map() };
    rowCache.set(indexId, c);
  }
  storeRow(c, key, c.rows.get(key), src, from, len);
}
// Serves a cached row as a one-row chunk in X (as if the host had sent it) and returns its iterator id.
function cachedIter(c, at) {
  if (xIter !== undefined) materialize();
  const width = arenaV.getUint32(at, true), data = ${chunkHeaderBytes} + 4;
  if (data + width > X.length) grow(data + width);
  XV.setUint32(0, 1, true); XV.setUint32(4, width, true); XV.setUint32(8, 0, true);
  XV.setUint32(${chunkHeaderBytes}, width, true);
  copyBytes(X, data, arena, at + 4, width);
  const id = nextIterId++;
  const it = { data: undefined, lv: undefined, count: 0, row: 0, lenAt: 0, pos: 0, more: false };
  readChunk(it);
  iters.set(id, it);
  return id;
}
// An insert into a table the host leased sequence values for (MutTx.infallibleInsert / leaseSequence): when the row
// passes the host's checks and its sequence column is zero, it gets the next leased value, is queued like an
// update, and returns the generated bytes as the host would. Else -1: the insert crosses (the host ends the lease).
function deferInsert(tableId, buf, len) {
  const slots = LV.getUint32(0, true);
  let at = ${lease.headerBytes};
  for (let i = 0; i < slots; i++, at += ${lease.slotBytes}) if (LV.getUint32(at, true) === tableId) break;
  if (at >= ${lease.headerBytes} + slots * ${lease.slotBytes} || LV.getUint32(at + 4, true) !== 1) return -1;
  const used = LV.getUint32(at + 8, true);
  if (used >= LV.getUint32(at + 12, true)) return -1;
  const row = bytesOf(buf), width = LV.getUint32(at + 40, true);
  if (width !== 0 ? len !== width : !validRow(row, len, leaseLayout(at))) return -1;
  const off = LV.getUint32(at + 32, true), sw = LV.getUint32(at + 36, true);
  for (let i = 0; i < sw; i++) if (row[off + i] !== 0) return -1;
  LV.setUint32(at + 8, used + 1, true);
  let v = LV.getFloat64(at + 16, true) + used * LV.getFloat64(at + 24, true);
  const p = queueUpdate(tableId, ${insertRecordMarker}, row, len) + off;
  for (let i = 0; i < sw; i++) { const b = v % 256; Q[p + i] = b; row[i] = b; v = (v - b) / 256; }
  return sw;
}
function leaseLayout(at) {
  const id = LV.getUint32(at + 44, true);
  let layout = layouts.get(id);
  if (layout === undefined) {
    const n = LV.getUint32(at + 48, true);
    layout = new Uint8Array(n);
    for (let i = 0; i < n; i++) layout[i] = LV.getUint8(at + ${lease.layoutAt} + i);
    layouts.set(id, layout);
  }
  return layout;
}
// Queues a record (an update, or an insert: indexId insertRecordMarker); returns where its row starts in Q.
function queueUpdate(tableId, indexId, row, len) {
  const need = ${updateRecordHeaderBytes} + len;
  if (qLen + need > ${updateQueueMaxBytes}) { if (xIter !== undefined) materialize(); flushUpdates(); }
  if (qLen + need > Q.length) {
    const q = new Uint8Array(Math.max(2 * Q.length, qLen + need));
    q.set(Q.subarray(0, qLen)); Q = q; QV = new DataView(q.buffer);
  }
  QV.setUint32(qLen, tableId, true); QV.setUint32(qLen + 4, indexId, true); QV.setUint32(qLen + 8, len, true);
  const at = qLen + ${updateRecordHeaderBytes};
  for (let i = 0; i < len; i++) Q[at + i] = row[i];
  qLen += need;
  return at;
}
// Hands the queue to the host (X must hold nothing still needed). A failure here means the datastore broke its
// promise; the host fails the whole call (SyscallHost.deferredFailure), whatever the module does with this error.
function flushUpdates() {
  const n = qLen;
  qLen = 0;
  if (n > X.length) grow(n);
  X.set(Q.subarray(0, n), 0);
  const r = H(${op.applyUpdates}, n);
  if (r < 0) fail(r);
}
// At the end of a successful call: the queue goes back with the result (u32 length @0, records @4).
function handOverUpdates() {
  const n = qLen;
  qLen = 0;
  if (n + 4 > X.length) grow(n + 4);
  XV.setUint32(0, n, true);
  X.set(Q.subarray(0, n), 4);
  return ${callOutcome.okDeferred};
}
function materialize() {
  const it = xIter; xIter = undefined;
  const left = it.count - it.row;
  if (left === 0) { it.data = undefined; it.lv = undefined; return; }
  const from = it.lenAt + 4 * it.row;
  let bytes = 0;
  for (let i = 0; i < left; i++) bytes += XV.getUint32(from + 4 * i, true);
  const lens = X.slice(from, it.lenAt + 4 * it.count);
  const data = new Uint8Array(4 * left + bytes);
  data.set(lens, 0);
  data.set(X.subarray(it.pos, it.pos + bytes), 4 * left);
  it.data = data; it.lv = new DataView(data.buffer);
  it.count = left; it.row = 0; it.lenAt = 0; it.pos = 4 * left;
}
function readChunk(it) {
  const count = XV.getUint32(0, true);
  it.more = (XV.getUint32(8, true) & ${chunkFlag.more}) !== 0;
  it.data = X; it.lv = XV; it.count = count; it.row = 0;
  it.lenAt = ${chunkHeaderBytes}; it.pos = ${chunkHeaderBytes} + 4 * count;
  xIter = it;
}
function openIter(opc, a, b, c, d, e) {
  const id = nextIterId++;
  call(opc, id, a, b, c, d, e);
  const it = { data: undefined, lv: undefined, count: 0, row: 0, lenAt: 0, pos: 0, more: false };
  readChunk(it);
  iters.set(id, it);
  return id;
}
function dropIter(id, it) { iters.delete(id); if (xIter === it) xIter = undefined; }
let lastOut, lastOutU8;
const u8 = (n) => n & 0xff;
function readBig(at, words) { let v = 0n; for (let i = words - 1; i >= 0; i--) v = (v << 64n) | XV.getBigUint64(at + 8 * i, true); return v; }
function writeBig(at, v, words) { for (let i = 0; i < words; i++) { XV.setBigUint64(at + 8 * i, BigInt.asUintN(64, v), true); v >>= 64n; } }

const sys = {
  table_id_from_name(name) { return call(${op.tableId}, String(name)); },
  index_id_from_name(name) { return call(${op.indexId}, String(name)); },
  datastore_table_row_count(tableId) { return BigInt(call(${op.rowCount}, tableId)); },
  datastore_table_scan_bsatn(tableId) { return openIter(${op.tableScan}, tableId); },
  // Not through call(): a point scan removes nothing, so what is known to exist stays known.
  // A cached row is served without a crossing (and without flushing queued updates: the entry already has them).
  datastore_index_scan_point_bsatn(indexId, buf, len) {
    if (deferring) {
      const c = rowCache.get(indexId);
      if (c !== undefined && len === c.keyLen) {
        checkLen(buf, len);
        const at = c.rows.get(keyAt(bytesOf(buf), 0, len));
        if (at !== undefined) return cachedIter(c, at);
      }
    }
    put(buf, len, 0);
    const id = nextIterId++;
    for (;;) { const r = H(${op.indexScanPoint}, id, indexId, len); if (r >= 0) break; fail(r); }
    const it = { data: undefined, lv: undefined, count: 0, row: 0, lenAt: 0, pos: 0, more: false };
    readChunk(it);
    iters.set(id, it);
    if (deferring && (XV.getUint32(8, true) & ${chunkFlag.updatable}) !== 0) {
      const flags = XV.getUint32(8, true), rowLen = XV.getUint32(${chunkHeaderBytes}, true);
      cacheRow(indexId, XV.getUint32(12, true), XV.getUint32(16, true), flags >>> 8, len, keyAt(lastInU8, 0, len), X,
        ${chunkHeaderBytes} + 4, rowLen);
    }
    return id;
  },
  datastore_index_scan_range_bsatn(indexId, buf, prefixLen, prefixElems, rstartLen, rendLen) {
    put(buf, prefixLen + rstartLen + rendLen, 0);
    return openIter(${op.indexScanRange}, indexId, prefixLen, prefixElems, rstartLen, rendLen);
  },
  row_iter_bsatn_advance(id, out) {
    const it = iters.get(id);
    if (it === undefined) noSuchIter(id);
    if (out !== lastOut || lastOutU8.byteLength !== out.byteLength) { lastOut = out; lastOutU8 = new Uint8Array(out); }
    const dst = lastOutU8, cap = dst.length; let n = 0;
    for (;;) {
      if (it.row === it.count) {
        if (!it.more) break;
        if (n > 0) return n;
        call(${op.iterNextChunk}, id); readChunk(it); continue;
      }
      const len = it.lv.getUint32(it.lenAt + 4 * it.row, true);
      if (n + len > cap) {
        if (n === 0) throw { __buffer_too_small__: len };
        return n;
      }
      const src = it.data, p = it.pos;
      if (len <= copySmallMaxBytes) { for (let i = 0; i < len; i++) dst[n + i] = src[p + i]; }
      else dst.set(src.subarray(p, p + len), n);
      n += len; it.pos = p + len; it.row++;
    }
    dropIter(id, it);
    return -n;
  },
  row_iter_bsatn_close(id) {
    const it = iters.get(id);
    if (it === undefined) { if (inCall) noSuchIter(id); return; }
    dropIter(id, it);
    if (it.more && inCall) call(${op.iterClose}, id);
  },
  // An insert removes no row and changes none (a row with a cached key would violate its unique index and fail), so
  // the row cache stays; queued updates travel in the same crossing, after the row (the host applies them first).
  datastore_insert_bsatn(tableId, buf, len) {
    checkLen(buf, len);
    if (deferring && LV.getUint32(0, true) > 0) { const n = deferInsert(tableId, buf, len); if (n >= 0) return n; }
    if (xIter !== undefined) materialize();
    let q = qLen;
    if (len + q > X.length) grow(len + q);
    const src = bytesOf(buf);
    copyBytes(X, 0, src, 0, len);
    if (q > 0) { qLen = 0; X.set(Q.subarray(0, q), len); }
    let n;
    for (;;) { n = H(${op.insert}, tableId, len, q); if (n >= 0) break; q = 0; fail(n); }
    if (n > 0) new Uint8Array(buf).set(X.subarray(0, n));
    return n;
  },
  datastore_update_bsatn(tableId, indexId, buf, len) {
    const c = deferring ? rowCache.get(indexId) : undefined;
    if (c !== undefined && c.tableId === tableId && ((c.shape >>> 16) === len || (c.layout !== undefined && len > 0))) {
      checkLen(buf, len);
      const row = bytesOf(buf);
      const key = c.layout === undefined || validRow(row, len, c.layout) ? keyAt(row, c.shape & 0xffff, c.keyLen) : undefined;
      const at = key === undefined ? undefined : c.rows.get(key);
      if (at !== undefined) {
        queueUpdate(tableId, indexId, row, len);
        storeRow(c, key, at, row, 0, len);
        // Other indexes of the table are on the same column (MutTx.infallibleUpdate): their entries are stale now.
        if (rowCache.size > 1) for (const [id, o] of rowCache) if (id !== indexId && o.tableId === tableId) o.rows.delete(key);
        return 0;
      }
    }
    put(buf, len, 0); const n = call(${op.update}, tableId, indexId, len);
    if (n > 0) new Uint8Array(buf).set(X.subarray(0, n)); return n;
  },
  datastore_delete_by_index_scan_point_bsatn(indexId, buf, len) { put(buf, len, 0); return call(${op.deletePoint}, indexId, len); },
  datastore_delete_by_index_scan_range_bsatn(indexId, buf, prefixLen, prefixElems, rstartLen, rendLen) {
    put(buf, prefixLen + rstartLen + rendLen, 0);
    return call(${op.deleteRange}, indexId, prefixLen, prefixElems, rstartLen, rendLen);
  },
  datastore_delete_all_by_eq_bsatn(tableId, buf, len) { put(buf, len, 0); return call(${op.deleteEq}, tableId, len); },
  volatile_nonatomic_schedule_immediate(name, args) {
    const b = new Uint8Array(args.buffer, args.byteOffset, args.byteLength);
    prepareX();
    if (b.length > X.length) grow(b.length);
    X.set(b, 0);
    call(${op.scheduleImmediate}, String(name), b.length);
  },
  // Not through call(): logging reads and writes no rows, so queued updates stay queued and the row cache stays.
  console_log(level, message) {
    const frame = callerFrame(), text = String(message);
    if (xIter !== undefined) materialize();
    for (;;) { const r = H(${op.consoleLog}, u8(level), text, frame); if (r >= 0) return; fail(r); }
  },
  console_timer_start(name) { return call(${op.timerStart}, String(name)); },
  console_timer_end(id) { call(${op.timerEnd}, id); },
  identity() { call(${op.identity}); return readBig(0, 4); },
  get_jwt_payload(connId) { prepareX(); writeBig(0, BigInt(connId), 2); const n = call(${op.jwtPayload}); return X.slice(0, n); },
  // Procedures (host/procedures.ts, host/http-egress.ts). The HTTP reply is fetched by a second, idempotent
  // crossing so that growing the exchange buffer never repeats the request; in between, only this isolate's thread
  // waits for it (W), the host's thread goes on serving (procedures and handlers are entered asynchronously).
  procedure_http_request(req, body) {
    const r = req instanceof Uint8Array ? req : new Uint8Array(req);
    const b = typeof body === 'string' ? utf8Encode(body) : body instanceof Uint8Array ? body : new Uint8Array(body);
    prepareX();
    if (r.length + b.length > X.length) grow(r.length + b.length);
    X.set(r, 0); X.set(b, r.length);
    call(${op.httpRequest}, r.length, b.length);
    W.applySyncPromise(undefined, []);
    call(${op.httpResult});
    const rl = XV.getUint32(0, true), bl = XV.getUint32(4, true);
    return [X.slice(8, 8 + rl), X.slice(8 + rl, 8 + rl + bl)];
  },
  procedure_start_mut_tx() { call(${op.procStartTx}); return XV.getBigUint64(0, true); },
  procedure_commit_mut_tx() { call(${op.procCommitTx}); },
  procedure_abort_mut_tx() { call(${op.procAbortTx}); },
};
const sys21 = {
  datastore_clear(tableId) { return BigInt(call(${op.clear}, tableId)); },
};
function noSuchIter(id) {
  const msg = 'no such iterator: ' + id;
  if (hooks === undefined) throw new Error(msg);
  throw new (hooks.__get_error_constructor__(6))(msg);
}
// "file:line:column" of the module code that called console.*: above this function, frame 0 is the shim, 1 the
// library's console method, 2 its caller. Read from V8's structured call sites of three frames, not from a formatted
// stack text of ten (measured: a short console.log cost ~12 µs in the isolate with the text). The module's own
// Error.prepareStackTrace and stackTraceLimit are put back at once.
const callSites = (_e, frames) => frames;
function callerFrame() {
  const limit = Error.stackTraceLimit, prepare = Error.prepareStackTrace;
  const holder = {};
  let frames;
  try {
    Error.stackTraceLimit = 3;
    Error.prepareStackTrace = callSites;
    Error.captureStackTrace(holder, callerFrame);
    frames = holder.stack;
  } catch {
    frames = undefined;                         // a module that froze Error: no location
  } finally {
    Error.stackTraceLimit = limit;
    Error.prepareStackTrace = prepare;
  }
  const f = Array.isArray(frames) ? frames[2] : undefined;
  if (f === undefined) return '';
  const file = f.getFileName();
  return file ? file + ':' + f.getLineNumber() + ':' + f.getColumnNumber() : '';
}
def(G, Symbol.for('SpacetimeDB.sys'), { '2.0': sys, '2.1': sys21 });

// The host appends a statement setting this flag to the end of the module body (see evaluatedMarkerSource): when
// it is missing after evaluation, top-level await is still pending.
const evaluatedKey = Symbol.for('SpacetimeDB.evaluated');

// --- The dispatcher the host enters through (one applySync per call). Arguments travel in X.
let argBuf = new ArrayBuffer(4096), argU8 = new Uint8Array(argBuf);
let lastSender, lastConn;
function errorText(e) {
  try {
    if (e instanceof Error) return (e.stack && e.stack.indexOf(e.message) >= 0 ? e.stack : e.name + ': ' + e.message + '\n' + (e.stack || ''));
    return 'uncaught exception: ' + String(e);
  } catch { return 'uncaught exception'; }
}
function errorMessage(e) {
  try { return e instanceof Error ? String(e.message) : String(e); } catch { return 'uncaught exception'; }
}
function report(code, text) {
  const b = utf8Encode(text);
  if (b.length + 4 > X.length) grow(b.length + 4);
  XV.setUint32(0, b.length, true); X.set(b, 4);
  return code;
}
function endCall() { inCall = false; iters.clear(); xIter = undefined; deferring = false; qLen = 0; }
return {
  describe() { const b = hooks.__describe_module__(); return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice(); },
  callReducer(newX) {
    if (newX !== undefined) setX(newX);
    // Layout written by SyscallHost.writeReducerCall: id u32, flags u32 (bit 0: same sender as the previous call,
    // bit 1: same connection id), sender u256 @8, connection id u128 @40, timestamp i64 @56, args length u32 @64,
    // args @68. Re-using the previous BigInts saves their construction on the hot path.
    const id = XV.getUint32(0, true), flags = XV.getUint32(4, true);
    if ((flags & 1) === 0 || lastSender === undefined) lastSender = readBig(8, 4);
    if ((flags & 2) === 0 || lastConn === undefined) lastConn = readBig(40, 2);
    const sender = lastSender, connId = lastConn, ts = XV.getBigInt64(56, true);
    const len = XV.getUint32(64, true);
    if (len > argBuf.byteLength) { argBuf = new ArrayBuffer(len); argU8 = new Uint8Array(argBuf); }
    if (len <= copySmallMaxBytes) { for (let i = 0; i < len; i++) argU8[i] = X[68 + i]; }
    else argU8.set(X.subarray(68, 68 + len));
    inCall = true;
    deferring = true;
    if ((flags & ${keepRowCacheFlag}) === 0) clearRowCache();
    try {
      const r = hooks.__call_reducer__(id, sender, connId, ts, new DataView(argBuf, 0, len));
      if (r !== undefined) throw new TypeError('Reducer returned a value other than undefined');
      return qLen > 0 ? handOverUpdates() : ${callOutcome.ok};
    } catch (e) {
      let senderError = false;
      try { senderError = e instanceof hooks.__sender_error_class__; } catch {}
      if (senderError) return report(${callOutcome.senderError}, String(e.message));
      return report(${callOutcome.otherError}, errorText(e));
    } finally { endCall(); }
  },
  // Views (host-abi §6.1). Layout written by SyscallHost.writeViewCall: anonymous u32 @0, id u32 @4, sender u256 @8.
  // The result (ViewResultHeader + payload) goes back in X as u32 length @0 + bytes @4.
  callView(newX) {
    if (newX !== undefined) setX(newX);
    const anon = XV.getUint32(0, true) === 1, id = XV.getUint32(4, true);
    const sender = anon ? undefined : readBig(8, 4);
    // Nested inside another call (a procedure's commit refreshing views): keep its iterators, and copy out rows
    // still sitting in X, which this call will overwrite.
    const outer = inCall;
    if (outer && xIter !== undefined) materialize();
    const savedIters = outer ? new Map(iters) : undefined;
    inCall = true;
    try {
      const r = anon ? hooks.__call_view_anon__(id, new Uint8Array(0)) : hooks.__call_view__(id, sender, new Uint8Array(0));
      const data = r !== null && typeof r === 'object' && !ArrayBuffer.isView(r) ? r.data : r;
      if (!ArrayBuffer.isView(data)) throw new TypeError('view returned no result bytes');
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (bytes.length + 4 > X.length) grow(bytes.length + 4);
      XV.setUint32(0, bytes.length, true); X.set(bytes, 4);
      return ${callOutcome.ok};
    } catch (e) {
      return report(${callOutcome.otherError}, errorText(e));
    } finally {
      if (savedIters === undefined) endCall();
      else { iters.clear(); for (const [k, v] of savedIters) iters.set(k, v); xIter = undefined; }
    }
  },
  // Procedures and HTTP handlers are not hot: arguments arrive as copies, 64-bit-and-wider values as decimal text.
  callProcedure(id, sender, connId, ts, args, newX) {
    if (newX !== undefined) setX(newX);
    inCall = true;
    try {
      const r = hooks.__call_procedure__(id, BigInt(sender), BigInt(connId), BigInt(ts), args);
      return { ok: true, value: new Uint8Array(r.buffer, r.byteOffset, r.byteLength).slice() };
    } catch (e) {
      return { ok: false, message: errorMessage(e), text: errorText(e) };
    } finally { endCall(); }
  },
  callHttpHandler(id, ts, request, body, newX) {
    if (newX !== undefined) setX(newX);
    inCall = true;
    try {
      if (typeof hooks.__call_http_handler__ !== 'function') throw new TypeError('the module has no HTTP handler hook');
      const [resp, respBody] = hooks.__call_http_handler__(id, BigInt(ts), request, body);
      return { ok: true, response: new Uint8Array(resp).slice(), body: new Uint8Array(respBody).slice() };
    } catch (e) {
      return { ok: false, message: errorMessage(e), text: errorText(e) };
    } finally { endCall(); }
  },
  // Run once after evaluation: find the hooks (host-abi §2.1) and drop the sys registry from the global object.
  loadHooks(ns) {
    delete G[Symbol.for('SpacetimeDB.sys')];
    const evaluated = G[evaluatedKey] === true;
    delete G[evaluatedKey];
    if (!evaluated) throw new Error('module has top-level await and is pending');
    const d = ns.default;
    if (d === undefined) throw new TypeError('must export schema as default export');
    if (d === null || (typeof d !== 'object' && typeof d !== 'function')) throw new TypeError('default export is not a Schema object');
    const f = d[Symbol.for('SpacetimeDB.moduleHooks.v2')];
    if (typeof f !== 'function') throw new TypeError('default export is not a Schema object: expected a function at [moduleHooks]');
    const h = f.call(d, ns);
    if (h === null || typeof h !== 'object') throw new TypeError('the module hooks are not an object');
    for (const k of ['__describe_module__', '__get_error_constructor__', '__call_reducer__']) {
      if (typeof h[k] !== 'function') throw new TypeError('the module hooks lack ' + k);
    }
    hooks = h;
  },
};
})();
`;

/** Appended to the module source; runs only when the whole module body has run (no pending top-level await). */
export const evaluatedMarkerSource = `\n;globalThis[Symbol.for('SpacetimeDB.evaluated')] = true;\n`;

/** Names of the functions each sys version exports, in the order upstream lists them. */
export const sysFunctionNames: Record<string, string[]> = {
  '2.0': [
    'table_id_from_name', 'index_id_from_name', 'datastore_table_row_count', 'datastore_table_scan_bsatn',
    'datastore_index_scan_range_bsatn', 'row_iter_bsatn_advance', 'row_iter_bsatn_close', 'datastore_insert_bsatn',
    'datastore_update_bsatn', 'datastore_delete_by_index_scan_range_bsatn', 'datastore_delete_all_by_eq_bsatn',
    'volatile_nonatomic_schedule_immediate', 'console_log', 'console_timer_start', 'console_timer_end', 'identity',
    'get_jwt_payload', 'procedure_http_request', 'procedure_start_mut_tx', 'procedure_commit_mut_tx',
    'procedure_abort_mut_tx', 'datastore_index_scan_point_bsatn', 'datastore_delete_by_index_scan_point_bsatn',
  ],
  '2.1': ['datastore_clear'],
};

/** Source of the synthetic `spacetime:sys@<version>` module: real exported functions taken from the bootstrap. */
export function sysModuleSource(version: string): string {
  const names = sysFunctionNames[version];
  const lines = [`const s = globalThis[Symbol.for('SpacetimeDB.sys')][${JSON.stringify(version)}];`];
  for (const n of names) lines.push(`export const ${n} = s.${n};`);
  if (version === '2.0') lines.push(`export const moduleHooks = Symbol.for('SpacetimeDB.moduleHooks.v2');`);
  return lines.join('\n');
}
