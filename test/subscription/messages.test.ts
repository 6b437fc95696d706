// Tests for subscription/messages.ts: exact bytes (client-protocol.md §3.5), round trips, strict decoding errors,
// and compatibility with the official SDK's own codecs (node_modules/spacetimedb client_api types).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BsatnWriter } from '../../src/sats/bsatn.js';
import {
  decodeClientFrame, decodeServerMessages, encodeClientMessage, encodeServerMessage, encodeTableUpdate,
  ProtocolError, type ClientMessage, type ServerMessage,
} from '../../src/subscription/messages.js';
import { ClientMessage as SdkClientMessage, ServerMessage as SdkServerMessage } from '../../node_modules/spacetimedb/src/sdk/client_api/types.ts';
import BinaryReader from '../../node_modules/spacetimedb/src/lib/binary_reader.ts';
import BinaryWriter from '../../node_modules/spacetimedb/src/lib/binary_writer.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/[\s|]/g, ''), 'hex'));
const str = (s: string) => {
  const w = new BsatnWriter();
  w.writeString(s);
  return hex(w.finish());
};

test('Subscribe decodes from the spec example bytes', () => {
  const bytes = fromHex(`00 00000000 00000000 01000000 ${str('SELECT * FROM person')}`);
  assert.deepEqual(decodeClientFrame(bytes, 2), [
    { tag: 'Subscribe', requestId: 0, querySetId: 0, queryStrings: ['SELECT * FROM person'] },
  ]);
});

test('CallReducer decodes from the spec example bytes', () => {
  const bytes = fromHex(`03 05000000 00 ${str('add')} 07000000 ${str('Bob')}`);
  const [m] = decodeClientFrame(bytes, 3);
  assert.equal(m.tag, 'CallReducer');
  assert.equal(m.tag === 'CallReducer' && m.reducer, 'add');
  assert.equal(m.tag === 'CallReducer' && hex(m.args), str('Bob'));
});

test('v3 frames hold several client messages; v2 rejects the extra bytes', () => {
  const w = new BsatnWriter();
  const msgs: ClientMessage[] = [
    { tag: 'Subscribe', requestId: 1, querySetId: 7, queryStrings: ['SELECT * FROM a', 'SELECT * FROM b'] },
    { tag: 'Unsubscribe', requestId: 2, querySetId: 7, sendDroppedRows: true },
    { tag: 'OneOffQuery', requestId: 3, queryString: 'SELECT * FROM a' },
    { tag: 'CallReducer', requestId: 4, reducer: 'add', args: new Uint8Array([1, 2, 3]) },
    { tag: 'CallProcedure', requestId: 5, procedure: 'p', args: new Uint8Array([]) },
  ];
  for (const m of msgs) encodeClientMessage(w, m);
  const frame = w.finish();
  assert.deepEqual(decodeClientFrame(frame, 3), msgs);
  assert.throws(() => decodeClientFrame(frame, 2), /trailing bytes after ClientMessage/);
});

test('strict client decoding: unknown tag, flags, truncation, empty frame', () => {
  assert.throws(() => decodeClientFrame(fromHex('09'), 3), (e: unknown) =>
    e instanceof ProtocolError && /unknown ClientMessage tag 9/.test(e.message));
  assert.throws(() => decodeClientFrame(fromHex(`03 00000000 01 ${str('add')} 00000000`), 3),
    /flags must be 0, got 1 at byte 5/);
  assert.throws(() => decodeClientFrame(fromHex('00 01000000 02'), 3),
    /malformed ClientMessage::Subscribe starting at byte 0: truncated input/);
  assert.throws(() => decodeClientFrame(new Uint8Array(0), 3), /empty client frame/);
  assert.throws(() => decodeClientFrame(fromHex('01 00000000 00000000 02'), 3), /UnsubscribeFlags tag 2/);
  assert.throws(() => decodeClientFrame(fromHex('00 00000000 00000000 ffffff00'), 3), /count .* exceeds/);
});

test('SubscribeApplied with two u32 rows matches the spec example bytes', () => {
  const bytes = encodeServerMessage({
    tag: 'SubscribeApplied', requestId: 1, querySetId: 2,
    rows: [{ table: 't', rows: [fromHex('01000000'), fromHex('02000000')] }],
  });
  assert.equal(hex(bytes), hex(fromHex(
    `01 01000000 02000000 01000000 ${str('t')} 01 02000000 0000000000000000 0400000000000000 08000000 01000000 02000000`)));
});

test('ReducerResult Err carries a BSATN string inside Bytes; Ok with empty update', () => {
  const err = encodeServerMessage({
    tag: 'ReducerResult', requestId: 9, timestampMicros: 5n, outcome: { tag: 'Err', message: 'nope' },
  });
  assert.equal(hex(err), hex(fromHex(`06 09000000 0500000000000000 02 08000000 ${str('nope')}`)));
  const ok = encodeServerMessage({
    tag: 'ReducerResult', requestId: 9, timestampMicros: 5n,
    outcome: { tag: 'Ok', retValue: new Uint8Array(0), transactionUpdate: [] },
  });
  assert.equal(hex(ok), hex(fromHex('06 09000000 0500000000000000 00 00000000 00000000')));
});

const everyServerMessage: ServerMessage[] = [
  { tag: 'InitialConnection', identity: (1n << 255n) + 3n, connectionId: (1n << 127n) + 1n, token: 'tok' },
  { tag: 'SubscribeApplied', requestId: 1, querySetId: 2, rows: [{ table: 'person', rows: [fromHex('0300000041424')] }] },
  { tag: 'UnsubscribeApplied', requestId: 1, querySetId: 2, rows: undefined },
  { tag: 'UnsubscribeApplied', requestId: 1, querySetId: 2, rows: [{ table: 'x', rows: [] }] },
  { tag: 'SubscriptionError', requestId: undefined, querySetId: 3, error: 'boom' },
  { tag: 'SubscriptionError', requestId: 4, querySetId: 3, error: 'boom' },
  {
    tag: 'TransactionUpdate', querySets: [{
      querySetId: 1, tables: [
        { tableName: 'a', rows: [{ tag: 'PersistentTable', inserts: [fromHex('01'), fromHex('0203')], deletes: [] }] },
        { tableName: 'e', rows: [{ tag: 'EventTable', events: [fromHex('09')] }] },
      ],
    }],
  },
  { tag: 'OneOffQueryResult', requestId: 5, result: { ok: false, error: 'bad sql' } },
  { tag: 'OneOffQueryResult', requestId: 5, result: { ok: true, rows: [{ table: 'a', rows: [fromHex('07')] }] } },
  { tag: 'ReducerResult', requestId: 6, timestampMicros: -1n, outcome: { tag: 'OkEmpty' } },
  { tag: 'ReducerResult', requestId: 6, timestampMicros: 1n, outcome: { tag: 'InternalError', message: 'no such reducer' } },
  { tag: 'ProcedureResult', status: { tag: 'Returned', value: fromHex('0102') }, timestampMicros: 3n, durationMicros: 4n, requestId: 7 },
  { tag: 'ProcedureResult', status: { tag: 'InternalError', message: 'x' }, timestampMicros: 0n, durationMicros: 0n, requestId: 7 },
];

test('every server message round-trips and the official SDK decodes it', () => {
  for (const m of everyServerMessage) {
    const bytes = encodeServerMessage(m);
    assert.deepEqual(decodeServerMessages(bytes), [m], m.tag);
    const reader = new BinaryReader(bytes);
    const sdk = SdkServerMessage.deserialize(reader) as { tag: string };
    assert.equal(sdk.tag, m.tag);
    assert.equal(reader.remaining, 0, `${m.tag}: the SDK consumed every byte`);
  }
});

test('pre-encoded table updates splice into a message', () => {
  const enc = encodeTableUpdate('a', { tag: 'PersistentTable', inserts: [fromHex('aa')], deletes: [fromHex('bb')] });
  const bytes = encodeServerMessage({ tag: 'TransactionUpdate', querySets: [{ querySetId: 4, tables: [enc, enc] }] });
  const [m] = decodeServerMessages(bytes);
  assert.deepEqual(m, {
    tag: 'TransactionUpdate', querySets: [{
      querySetId: 4, tables: [
        { tableName: 'a', rows: [{ tag: 'PersistentTable', inserts: [fromHex('aa')], deletes: [fromHex('bb')] }] },
        { tableName: 'a', rows: [{ tag: 'PersistentTable', inserts: [fromHex('aa')], deletes: [fromHex('bb')] }] },
      ],
    }],
  });
});

test('what the official SDK encodes, we decode', () => {
  const w = new BinaryWriter(64);
  SdkClientMessage.serialize(w, SdkClientMessage.Subscribe({ requestId: 3, querySetId: { id: 4 }, queryStrings: ['SELECT * FROM t'] }));
  SdkClientMessage.serialize(w, SdkClientMessage.Unsubscribe({ requestId: 5, querySetId: { id: 4 }, flags: { tag: 'SendDroppedRows' } }));
  assert.deepEqual(decodeClientFrame(w.getBuffer(), 3), [
    { tag: 'Subscribe', requestId: 3, querySetId: 4, queryStrings: ['SELECT * FROM t'] },
    { tag: 'Unsubscribe', requestId: 5, querySetId: 4, sendDroppedRows: true },
  ]);
});
