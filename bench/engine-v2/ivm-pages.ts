// bench/engine-v2/ivm-pages.ts — can row-store pages live inside a module's isolate? Three questions, one line each:
//   1. do ArrayBuffers the isolate allocates count against isolated-vm's memoryLimit?
//   2. do SharedArrayBuffers the host creates and hands in (shared, not copied) count against it?
//   3. when the isolate dies by a trap (here: its memory limit), do those pages survive on the host, and can a new
//      isolate attach to them and read what the old one wrote?
//
// Run: node --import tsx bench/engine-v2/ivm-pages.ts
// Owns: nothing. May call: isolated-vm.

import ivm from 'isolated-vm';

const memoryLimitMib = 64;
const pageBytes = 1 << 20;

function allocateInside(): string {
  const isolate = new ivm.Isolate({ memoryLimit: memoryLimitMib });
  const context = isolate.createContextSync();
  try {
    const n = context.evalSync('globalThis.keep = []; for (let i = 0; i < 200; i++) keep.push(new ArrayBuffer(1 << 20)); keep.length',
      { timeout: 5_000 }) as number;
    return `allocated ${n} MiB`;
  } catch (err) {
    return `refused: ${String(err).slice(0, 60)}`;
  } finally {
    if (!isolate.isDisposed) isolate.dispose();
  }
}

function attach(context: ivm.Context): ivm.Reference<(page: unknown) => number> {
  context.evalSync('globalThis.pages = []');
  return context.evalSync('(function (p) { const u = new Uint8Array(p); pages.push(u); u[7] = pages.length; return pages.length; })',
    { reference: true }) as ivm.Reference<(page: unknown) => number>;
}

function handIn(count: number): { handedMib: number; outcome: string; pages: SharedArrayBuffer[]; isolate: ivm.Isolate; context: ivm.Context } {
  const isolate = new ivm.Isolate({ memoryLimit: memoryLimitMib });
  const context = isolate.createContextSync();
  const add = attach(context);
  const pages: SharedArrayBuffer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const sab = new SharedArrayBuffer(pageBytes);
      pages.push(sab);
      add.applySync(undefined, [new ivm.ExternalCopy(sab).copyInto()]);
    }
    return { handedMib: count, outcome: `accepted; externally_allocated_size ${isolate.getHeapStatisticsSync().externally_allocated_size / pageBytes} MiB`, pages, isolate, context };
  } catch (err) {
    return { handedMib: pages.length, outcome: `isolate killed at ${pages.length} MiB: ${String(err).slice(0, 70)}`, pages, isolate, context };
  }
}

console.log(`memoryLimit ${memoryLimitMib} MiB, pages of 1 MiB`);
console.log(`1. ArrayBuffers allocated inside the isolate, 200 MiB: ${allocateInside()}`);
const big = handIn(200);
console.log(`2. host SharedArrayBuffers handed in, 200 MiB: ${big.outcome}`);
if (!big.isolate.isDisposed) big.isolate.dispose();
const small = handIn(32);
try {
  small.context.evalSync('const a = []; for (;;) a.push({ x: a.length, y: "s" + a.length });', { timeout: 20_000 });
} catch (err) {
  console.log(`3. 32 MiB of pages handed in, then a trap: ${String(err).slice(0, 70)}`);
}
const survivor = new Uint8Array(small.pages[31])[7];
const fresh = new ivm.Isolate({ memoryLimit: memoryLimitMib });
const read = fresh.createContextSync().evalSync('(function (p) { return new Uint8Array(p)[7]; })', { reference: true }) as
  ivm.Reference<(page: unknown) => number>;
const reread = read.applySync(undefined, [new ivm.ExternalCopy(small.pages[31]).copyInto()]);
console.log(`   the host still reads what the dead isolate wrote (page 32, byte 7): ${survivor}; a new isolate attached to it reads: ${reread}`);
fresh.dispose();
