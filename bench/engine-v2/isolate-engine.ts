// bench/engine-v2/isolate-engine.ts — the "datastore inside the isolate" stand-in: the prototype row store
// (rowstore.ts) plus two transfer reducers written as plain JS against it, bundled by in-isolate.ts into one script
// that runs INSIDE an isolated-vm isolate (or in Node, for comparison). Not the official library: it shows what the
// datastore side of a call costs when no syscall crosses the isolate boundary.
//   keynote   accounts(id u32 pk, balance i64): 2 finds + 2 updates
//   general   accounts(id u32 pk, owner string, balance i64, updated timestamp) + audit(id u64 autoInc pk, from u32,
//             to u32, amount i64, at timestamp): 2 finds + 2 updates of variable-width rows + 1 insert whose id comes
//             from a sequence range reserved in blocks (upstream allocates sequence values in ranges too)
// A batch of queued calls arrives in one request buffer (per call: u32 from, u32 to, i64 amount) and is run in one
// entry; each call is its own transaction (undo on failure); per-call status goes to a reply buffer, and the TxData of
// every call is appended to one arena the host reads after the batch (commit log, subscriptions).
// Owns: nothing outside itself. May call: bench/engine-v2/rowstore.ts (bundled in).

import { copyBytes, FixedRowStore, RowTx, U32UniqueIndex, VarRowStore } from './rowstore.js';

const sequenceBlock = 4096;
const callBytes = 16;
const statusCommitted = 0, statusFailed = 1;

export interface Engine {
  seed(accounts: number): void;
  /** Runs `count` calls from `requests`; statuses into `replies` (u8 each); returns TxData bytes written. */
  runKeynote(requests: Uint8Array, replies: Uint8Array, count: number): number;
  runGeneral(requests: Uint8Array, replies: Uint8Array, count: number): number;
}

/** A raw isolate has no TextEncoder; the seeded owner names are ASCII. */
function writeAscii(text: string, dst: Uint8Array, at: number): number {
  for (let i = 0; i < text.length; i++) dst[at + i] = text.charCodeAt(i);
  return text.length;
}

export function createEngine(): Engine {
  // keynote table
  const fixed = new FixedRowStore(12);
  const fixedPk = new U32UniqueIndex(fixed, 0);
  const keynoteTx = new RowTx(fixed, fixedPk, 0);
  // general tables
  const accounts = new VarRowStore();
  const accountsPk = new U32UniqueIndex(accounts, 0);
  const audit = new FixedRowStore(32);
  const auditPk = new U32UniqueIndex(audit, 0);         // on the low 32 bits of the u64 id (enough for the prototype)
  let sequenceNext = 1, sequenceEnd = 1;                // the reserved range [next, end)
  const txData = new Uint8Array(1 << 20);
  const txView = new DataView(txData.buffer);
  let txLength = 0;
  const row = new Uint8Array(256);
  const rv = new DataView(row.buffer);
  const undo = new Uint8Array(256);

  function appendTx(src: Uint8Array, offset: number, length: number, opTag: number): void {
    if (txLength + 5 + length > txData.length) txLength = 0;   // the host drains it per batch; wrap for the benchmark
    txData[txLength] = opTag;
    txView.setUint32(txLength + 1, length, true);
    copyBytes(txData, txLength + 5, src, offset, length);
    txLength += 5 + length;
  }

  function keynoteCall(rq: DataView, at: number): number {
    const from = rq.getUint32(at, true), to = rq.getUint32(at + 4, true), amount = rq.getBigInt64(at + 8, true);
    if (from === to || amount <= 0n) return statusFailed;
    const a = fixedPk.find(from), b = fixedPk.find(to);
    if (a < 0 || b < 0) return statusFailed;
    fixed.read(a, row, 0); fixed.read(b, row, 16);
    const balA = rv.getBigInt64(4, true), balB = rv.getBigInt64(20, true);
    if (balA < amount) return statusFailed;
    rv.setBigInt64(4, balA - amount, true); rv.setBigInt64(20, balB + amount, true);
    keynoteTx.update(row, 0); keynoteTx.update(row, 16);
    const n = keynoteTx.commit();
    appendTx(keynoteTx.txData.bytes, 0, n, 1);
    return statusCommitted;
  }

  function generalCall(rq: DataView, at: number, now: bigint): number {
    const from = rq.getUint32(at, true), to = rq.getUint32(at + 4, true), amount = rq.getBigInt64(at + 8, true);
    if (from === to || amount <= 0n) return statusFailed;
    const a = accountsPk.find(from), b = accountsPk.find(to);
    if (a < 0 || b < 0) return statusFailed;
    const la = accounts.read(a, row, 0), lb = accounts.read(b, row, 64);
    const balA = rv.getBigInt64(la - 16, true), balB = rv.getBigInt64(64 + lb - 16, true);
    if (balA < amount) return statusFailed;
    copyBytes(undo, 0, row, 0, la); copyBytes(undo, 64, row, 64, lb);
    rv.setBigInt64(la - 16, balA - amount, true); rv.setBigInt64(la - 8, now, true);
    rv.setBigInt64(64 + lb - 16, balB + amount, true); rv.setBigInt64(64 + lb - 8, now, true);
    accounts.replace(a, row, 0, la); accounts.replace(b, row, 64, lb);
    appendTx(undo, 0, la, 3); appendTx(row, 0, la, 2); appendTx(undo, 64, lb, 3); appendTx(row, 64, lb, 2);
    // audit insert with autoInc: the next value of the reserved range (a new range every sequenceBlock inserts)
    if (sequenceNext === sequenceEnd) sequenceEnd = sequenceNext + sequenceBlock;
    const id = sequenceNext++;
    rv.setBigUint64(128, BigInt(id), true); rv.setUint32(136, from, true); rv.setUint32(140, to, true);
    rv.setBigInt64(144, amount, true); rv.setBigInt64(152, now, true);
    const slot = audit.allocate();
    audit.write(slot, row, 128);
    if (!auditPk.insert(slot)) {
      // Undo: the accounts' old bytes back, the slot released.
      audit.release(slot);
      accounts.replace(a, undo, 0, la); accounts.replace(b, undo, 64, lb);
      return statusFailed;
    }
    appendTx(row, 128, 32, 2);
    return statusCommitted;
  }

  return {
    seed(n) {
      for (let id = 0; id < n; id++) {
        rv.setUint32(0, id, true); rv.setBigInt64(4, 1_000_000_000n, true);
        const s = fixed.allocate(); fixed.write(s, row, 0); fixedPk.insert(s);
        rv.setUint32(0, id, true);
        const owner = writeAscii(`owner-${id}`, row, 8);
        rv.setUint32(4, owner, true);
        rv.setBigInt64(8 + owner, 1_000_000_000n, true); rv.setBigInt64(16 + owner, 0n, true);
        accountsPk.insert(accounts.insert(row, 0, 24 + owner));
      }
    },
    runKeynote(requests, replies, count) {
      const rq = new DataView(requests.buffer, requests.byteOffset, requests.byteLength);
      txLength = 0;
      for (let i = 0; i < count; i++) replies[i] = keynoteCall(rq, i * callBytes);
      return txLength;
    },
    runGeneral(requests, replies, count) {
      const rq = new DataView(requests.buffer, requests.byteOffset, requests.byteLength);
      txLength = 0;
      const now = BigInt(Date.now()) * 1000n;
      for (let i = 0; i < count; i++) replies[i] = generalCall(rq, i * callBytes, now);
      return txLength;
    },
  };
}
