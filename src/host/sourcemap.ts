// host/sourcemap.ts — maps "spacetimedb_module:line:col" positions back to the module's sources (src/index.ts…).
//
// Owns: decoding the inline source map esbuild composed when lowering the bundle (source map v3, base64 VLQ), and
// rewriting JS stack texts: frames mapped to their original file and line, trace cut at the library's
// `__spacetimedb_end_short_backtrace` frame (as upstream does, host-abi §2.1).
// May call: nothing. Decoding is lazy: only the first error or log location of a program pays for it.

const inlineMapPrefix = '//# sourceMappingURL=data:application/json;base64,';
const moduleFrame = /spacetimedb_module:(\d+):(\d+)/g;
const base64Digits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const base64Value = new Int8Array(128).fill(-1);
for (let i = 0; i < base64Digits.length; i++) base64Value[base64Digits.charCodeAt(i)] = i;

/** Log locations remembered by mapFrame (a module has a few hundred console calls at most; past this it restarts). */
const frameCacheEntriesMax = 4096;

export interface OriginalPosition { source: string; line: number; column: number }

export class SourceMap {
  private lines: Int32Array[] | undefined;   // per generated line: [genCol, source, origLine, origCol] × n
  private sources: string[] = [];
  private readonly frames = new Map<string, OriginalPosition | undefined>();

  private constructor(private readonly json: string) {}

  /** The program's inline map, or undefined when it has none. */
  static fromCode(code: string): SourceMap | undefined {
    const at = code.lastIndexOf(inlineMapPrefix);
    if (at < 0) return undefined;
    const end = code.indexOf('\n', at);
    const b64 = code.slice(at + inlineMapPrefix.length, end < 0 ? code.length : end).trim();
    return new SourceMap(Buffer.from(b64, 'base64').toString('utf8'));
  }

  /** 1-based line and column as V8 reports them. */
  lookup(line: number, column: number): OriginalPosition | undefined {
    const lines = this.decode();
    const segs = lines[line - 1];
    if (segs === undefined || segs.length === 0) return undefined;
    const col0 = column - 1;
    let best = -1;
    for (let i = 0; i < segs.length; i += 4) {
      if (segs[i] > col0) break;
      if (segs[i + 1] >= 0) best = i;
    }
    if (best < 0) best = segs[1] >= 0 ? 0 : -1;
    if (best < 0) return undefined;
    return { source: this.sources[segs[best + 1]], line: segs[best + 2] + 1, column: segs[best + 3] + 1 };
  }

  /** `stack` with module frames mapped and everything from the library's short-backtrace marker on dropped. */
  rewriteStack(stack: string): string {
    const lines = stack.split('\n');
    const cut = lines.findIndex((l) => l.includes('__spacetimedb_end_short_backtrace'));
    const kept = cut >= 0 ? lines.slice(0, cut) : lines;
    return kept.map((l) => l.replace(moduleFrame, (whole, ln: string, col: string) => {
      const p = this.lookup(Number(ln), Number(col));
      return p === undefined ? whole : `${p.source}:${p.line}:${p.column}`;
    })).join('\n');
  }

  /**
   * "spacetimedb_module:L" or "spacetimedb_module:L:C" → original position (for log records). A module logs from a
   * few places, many times: positions are remembered per frame text (at most frameCacheEntriesMax of them).
   */
  mapFrame(frame: string): OriginalPosition | undefined {
    const known = this.frames.get(frame);
    if (known !== undefined || this.frames.has(frame)) return known;
    const m = /^spacetimedb_module:(\d+)(?::(\d+))?$/.exec(frame);
    const p = m === null ? undefined : this.lookup(Number(m[1]), Number(m[2] ?? 1));
    if (this.frames.size >= frameCacheEntriesMax) this.frames.clear();
    this.frames.set(frame, p);
    return p;
  }

  private decode(): Int32Array[] {
    if (this.lines !== undefined) return this.lines;
    let parsed: { sources?: string[]; mappings?: string };
    try { parsed = JSON.parse(this.json); } catch { parsed = {}; }
    this.sources = (parsed.sources ?? []).map((s) => s.replace(/^(\.\.\/)+/, ''));
    const mappings = parsed.mappings ?? '';
    const out: Int32Array[] = [];
    let src = 0, oLine = 0, oCol = 0;
    let seg: number[] = [];
    let genCol = 0;
    let fields: number[] = [];
    let value = 0, shift = 0;
    const flushSegment = (): void => {
      if (fields.length === 0) return;
      genCol += fields[0];
      if (fields.length >= 4) {
        src += fields[1]; oLine += fields[2]; oCol += fields[3];
        seg.push(genCol, src, oLine, oCol);
      } else {
        seg.push(genCol, -1, 0, 0);
      }
      fields = [];
    };
    for (let i = 0; i <= mappings.length; i++) {
      const ch = i < mappings.length ? mappings.charCodeAt(i) : 59; // ';' at the end flushes
      if (ch === 44 /* , */ || ch === 59 /* ; */) {
        flushSegment();
        if (ch === 59) { out.push(Int32Array.from(seg)); seg = []; genCol = 0; }
        continue;
      }
      const digit = ch < 128 ? base64Value[ch] : -1;
      if (digit < 0) continue;
      value += (digit & 31) << shift;
      if (digit & 32) { shift += 5; continue; }
      fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0; shift = 0;
    }
    this.lines = out;
    return out;
  }
}
