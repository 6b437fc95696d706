// Batched entry through a real server (docs/engine-v2.md §6c), in both database-thread modes: several clients — raw
// protocol clients that send all their calls in one frame, official-SDK clients that fire theirs without waiting, and
// concurrent HTTP calls — pipeline calls that commit, fail with a SenderError, panic, clash on the unique index, and
// one that runs away (the server's reducer limit set low). Every reply must come in request order with its own
// changes; every subscriber must see every commit in order (the fixture numbers commits through a counter row, which
// a failed call's undone write must not leak into); autoInc ids must be dense while nothing fails; every call must run
// once and give what the same calls give one at a time on a second database, replayed in the order the first one ran
// them (its module log); and after a kill -9 in the middle of a burst, every acknowledged call is there with its id.
// The SDK clients ask for no compression: the SDK (2.10.1, WebsocketDecompressAdapter) awaits each frame's
// decompression on its own, so an uncompressed frame sent after a gzip one reaches its cache first, and with gzip its
// callbacks saw commits out of order (1 of 10 main-thread runs here, 2 of 8 at 269219c: older than batched entry).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BsatnReader } from '../../src/sats/bsatn.js';
import type { ServerMessage, TableUpdate } from '../../src/subscription/messages.js';
import { buildFixture, cleanupTempDirs, generateBindings, startTestServer, type TestServer, within } from '../harness.js';
import { RawClient, stringArgs } from './helpers.js';

const reducerTimeoutMs = 400;
const rawClients = 3, sdkClients = 2;
const rawCalls = 40, sdkCalls = 20, httpCalls = 30, killBurst = 400;

type Reducer = 'add' | 'refuse' | 'panic' | 'spin';
type Outcome = 'Ok' | 'Err' | 'InternalError';
interface Call { reducer: Reducer; name: string; expect: Outcome }
interface Item { id: bigint; name: string; n: number }

after(() => cleanupTempDirs());

function decodeItem(row: Uint8Array): Item {
  const r = new BsatnReader(row);
  const item = { id: r.readU64(), name: r.readString(), n: r.readU32() };
  assert.equal(r.offset, row.length, 'item row fully read');
  return item;
}

/** The item rows a transaction update inserted (the clients subscribe to `item` only). */
function insertedItems(querySets: { tables: unknown[] }[]): Item[] {
  const items: Item[] = [];
  for (const qs of querySets) {
    for (const t of qs.tables as TableUpdate[]) {
      assert.equal(t.tableName, 'item');
      for (const rows of t.rows) {
        assert.equal(rows.tag, 'PersistentTable');
        if (rows.tag === 'PersistentTable') {
          assert.equal(rows.deletes.length, 0);
          items.push(...rows.inserts.map(decodeItem));
        }
      }
    }
  }
  return items;
}

const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x instanceof Uint8Array ? '<bytes>' : x)).slice(0, 300);

/** Commits must be numbered 1, 2, 3, … in the order a subscriber sees them (the counter row). */
function assertInOrder(seen: Item[], firstN: number, who: string): void {
  seen.forEach((item, i) => assert.equal(item.n, firstN + i, `${who} sees commit ${firstN + i} as its ${i + 1}th, got ${show(item)}`));
}

interface Raw { c: RawClient; label: string; messages: ServerMessage[] }

async function openRaw(server: TestServer, db: string, label: string): Promise<Raw> {
  const c = await RawClient.open(`${server.url.replace('http', 'ws')}/v1/database/${db}/subscribe?compression=None`);
  assert.equal((await c.next(20_000)).tag, 'InitialConnection');
  c.send({ tag: 'Subscribe', requestId: 0, querySetId: 1, queryStrings: ['SELECT * FROM item'] });
  const applied = await c.next(20_000);
  assert.equal(applied.tag, 'SubscribeApplied', show(applied));
  return { c, label, messages: [] };
}

/** Reads `raw`'s messages until `results` ReducerResults in all came (or the socket closes, when `untilClosed`). */
async function readResults(raw: Raw, results: number, untilClosed = false): Promise<void> {
  let got = raw.messages.filter((m) => m.tag === 'ReducerResult').length;
  while (got < results) {
    let m: ServerMessage;
    try {
      m = await raw.c.next(30_000);
    } catch (err) {
      if (untilClosed) return;
      throw err;
    }
    raw.messages.push(m);
    if (m.tag === 'ReducerResult') got++;
  }
}

/**
 * Checks `raw`'s replies to `calls` (sent with request ids from `firstRequestId`): in request order, each with the
 * expected outcome and, when it committed, its own insert; returns the committed items by name.
 */
function checkReplies(raw: Raw, calls: readonly Call[], firstRequestId: number, acknowledgedOnly = false): Map<string, Item> {
  const replies = raw.messages.filter((m): m is Extract<ServerMessage, { tag: 'ReducerResult' }> =>
    m.tag === 'ReducerResult' && m.requestId >= firstRequestId && m.requestId < firstRequestId + calls.length);
  if (!acknowledgedOnly) assert.equal(replies.length, calls.length, `${raw.label}: every call answered`);
  const committed = new Map<string, Item>();
  replies.forEach((r, i) => {
    const call = calls[i];
    assert.equal(r.requestId, firstRequestId + i, `${raw.label}: replies in request order`);
    assert.equal(r.outcome.tag, call.expect, `${raw.label}: ${call.reducer} ${call.name}: ${show(r.outcome)}`);
    if (r.outcome.tag === 'Ok') {
      const own = insertedItems(r.outcome.transactionUpdate);
      assert.equal(own.length, 1, `${raw.label}: ${call.name} carries its own change`);
      assert.equal(own[0].name, call.name, `${raw.label}: the change carried is the call's own`);
      committed.set(call.name, own[0]);
    }
    if (r.outcome.tag === 'Err') assert.equal(r.outcome.message, `refused ${call.name}`);
  });
  return committed;
}

/** What a raw client saw committed, its own calls and everyone else's, in the order it saw them. */
function seenBy(raw: Raw): Item[] {
  const seen: Item[] = [];
  for (const m of raw.messages) {
    if (m.tag === 'TransactionUpdate') seen.push(...insertedItems(m.querySets));
    else if (m.tag === 'ReducerResult' && m.outcome.tag === 'Ok') seen.push(...insertedItems(m.outcome.transactionUpdate));
  }
  return seen;
}

const sendCalls = (raw: Raw, calls: readonly Call[], firstRequestId: number): void =>
  raw.c.send(...calls.map((call, i) => ({ tag: 'CallReducer' as const, requestId: firstRequestId + i, reducer: call.reducer, args: stringArgs(call.name) })));

async function metric(server: TestServer, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/v1/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))) n += Number(m[1]);
  return n;
}

async function sql(server: TestServer, token: string, db: string, query: string): Promise<unknown[][]> {
  const res = await fetch(`${server.url}/v1/database/${db}/sql`, { method: 'POST', body: query, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { rows: unknown[][] }[])[0].rows;
}

async function itemsBySql(server: TestServer, token: string, db: string): Promise<Map<string, Item>> {
  const rows = await sql(server, token, db, 'SELECT * FROM item');
  return new Map(rows.map(([id, name, n]) => [name as string, { id: BigInt(id as number), name: name as string, n: n as number }]));
}

/** The calls the database ran, in the order it ran them: the fixture logs `call <reducer> <name>` as each starts. */
async function ranInOrder(server: TestServer, token: string, db: string): Promise<{ reducer: Reducer; name: string }[]> {
  const res = await fetch(`${server.url}/v1/database/${db}/logs?num_lines=100000`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const ran: { reducer: Reducer; name: string }[] = [];
  for (const line of (await res.text()).split('\n')) {
    if (line.trim() === '') continue;
    const m = /^call (\w+) (\S+)$/.exec((JSON.parse(line) as { message: string }).message);
    if (m !== null) ran.push({ reducer: m[1] as Reducer, name: m[2] });
  }
  return ran;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Bindings = any;

interface Sdk { conn: Bindings; label: string; inserted: Item[] }

function connectSdk(bindings: Bindings, server: TestServer, db: string, label: string): Promise<Sdk> {
  return within(new Promise<Sdk>((resolve, reject) => {
    bindings.DbConnection.builder()
      .withUri(server.url)
      .withDatabaseName(db)
      .withCompression('none')
      .onConnect((conn: Bindings) => {
        const sdk: Sdk = { conn, label, inserted: [] };
        conn.db.item.onInsert((_ctx: unknown, row: Item) => sdk.inserted.push({ id: row.id, name: row.name, n: row.n }));
        conn.subscriptionBuilder()
          .onApplied(() => resolve(sdk))
          .onError((ctx: { event?: Error }) => reject(ctx.event ?? new Error('subscription error')))
          .subscribe(['SELECT * FROM item']);
      })
      .onConnectError((_ctx: unknown, err: Error) => reject(err))
      .build();
  }), `${label} connects`, 20_000);
}

/** Fires every call at once; resolves with each call's outcome ('Err' for a SenderError's rejection). */
async function sdkCallsAll(sdk: Sdk, calls: readonly Call[]): Promise<void> {
  const outcomes = await Promise.all(calls.map((call) => (sdk.conn.reducers[call.reducer]({ name: call.name }) as Promise<void>).then(
    (): Outcome => 'Ok',
    (err: Error): Outcome => (String(err?.message ?? err).includes(`refused ${call.name}`) ? 'Err' : 'InternalError'))));
  outcomes.forEach((o, i) => assert.equal(o, calls[i].expect, `${sdk.label}: ${calls[i].reducer} ${calls[i].name}: ${o}`));
}

/**
 * Makes every call at once over HTTP (POST /call: 200, or 530 with the error); checks each outcome and returns how many
 * were answered (all, unless `acknowledgedOnly`: then a call the server died under has no answer and is not checked).
 */
async function httpCallsAll(server: TestServer, calls: readonly Call[], acknowledgedOnly = false, answered = (): void => {}): Promise<Call[]> {
  const outcomes = await Promise.all(calls.map(async (call): Promise<Outcome | undefined> => {
    let res: Response;
    try {
      res = await fetch(`${server.url}/v1/database/batched/call/${call.reducer}`, {
        method: 'POST', body: JSON.stringify([call.name]), headers: { 'content-type': 'application/json' } });
    } catch (err) {
      if (acknowledgedOnly) return undefined;
      throw err;
    }
    const text = await res.text();
    answered();
    if (res.status === 200) return 'Ok';
    assert.equal(res.status, 530, text);
    return text === `refused ${call.name}` ? 'Err' : 'InternalError';
  }));
  outcomes.forEach((o, i) => { if (o !== undefined) assert.equal(o, calls[i].expect, `http: ${calls[i].reducer} ${calls[i].name}: ${o}`); });
  return calls.filter((_, i) => outcomes[i] !== undefined);
}

/** A name's calls in the order they were issued (a client runs its calls in order, so they ran in this order too). */
function byName(plans: readonly (readonly Call[])[]): Map<string, Call[]> {
  const m = new Map<string, Call[]>();
  for (const plan of plans) for (const call of plan) m.set(call.name, [...(m.get(call.name) ?? []), call]);
  return m;
}

interface Ctx {
  server: TestServer;
  token: string;
  raws: Raw[];
  /** Subscribed, calls nothing. */
  watcher: Raw;
  sdks: Sdk[];
  /** Every call acknowledged as committed: its item. */
  committed: Map<string, Item>;
}

const add = (name: string): Call => ({ reducer: 'add', name, expect: 'Ok' });

/** Sends every client's calls at once and checks the replies; returns all the calls, in per-client plans. */
async function burst(ctx: Ctx, raw: Call[][], sdk: Call[][], http: Call[], firstRequestId: number): Promise<Call[][]> {
  const before = ctx.committed.size;
  ctx.raws.forEach((r, c) => sendCalls(r, raw[c], firstRequestId));
  await Promise.all([
    ...ctx.raws.map((r) => readResults(r, firstRequestId - 1 + rawCalls)),
    ...ctx.sdks.map((s, c) => sdkCallsAll(s, sdk[c])),
    httpCallsAll(ctx.server, http),
  ]);
  ctx.raws.forEach((r, c) => {
    for (const [name, item] of checkReplies(r, raw[c], firstRequestId)) ctx.committed.set(name, item);
    assertInOrder(seenBy(r), 1, r.label);
  });
  const plans = [...raw, ...sdk, http];
  const total = before + plans.flat().filter((call) => call.expect === 'Ok').length;
  while (seenBy(ctx.watcher).length < total) ctx.watcher.messages.push(await ctx.watcher.c.next(20_000));
  const seen = seenBy(ctx.watcher);
  assertInOrder(seen, 1, 'the watcher');
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].id > seen[i - 1].id, 'ids rise in commit order');
  for (const item of seen) ctx.committed.set(item.name, item);
  assert.equal(ctx.committed.size, total);
  return plans;
}

/** Only calls that commit, from every client at once: ids dense, in commit order. */
async function denseBurst(ctx: Ctx): Promise<Call[][]> {
  const batchedBefore = await metric(ctx.server, 'spacetime_reducer_calls_batched_total');
  const plans = await burst(ctx,
    ctx.raws.map((_, c) => Array.from({ length: rawCalls }, (_, i) => add(`p1-r${c}-${i}`))),
    ctx.sdks.map((_, c) => Array.from({ length: sdkCalls }, (_, i) => add(`p1-s${c}-${i}`))),
    Array.from({ length: httpCalls }, (_, i) => add(`p1-h-${i}`)), 1);
  const seen = seenBy(ctx.watcher);
  seen.forEach((item, i) => assert.equal(item.id, seen[0].id + BigInt(i), `dense ids where nothing failed: ${show(item)} at ${i}`));
  assert.ok((await metric(ctx.server, 'spacetime_reducer_calls_batched_total')) > batchedBefore, 'the calls ran in batches');
  return plans;
}

/**
 * Calls that commit mixed with SenderErrors, panics, unique-index clashes (names taken by denseBurst) and, on one
 * client, a runaway call.
 */
function mixedBurst(ctx: Ctx): Promise<Call[][]> {
  const raw = ctx.raws.map((_, c) => Array.from({ length: rawCalls }, (_, i): Call => {
    const name = `p2-r${c}-${i}`;
    if (c === 1 && i === rawCalls / 2) return { reducer: 'spin', name, expect: 'InternalError' };
    switch ((i + c) % 8) {
      case 2: return { reducer: 'refuse', name, expect: 'Err' };
      case 4: return { reducer: 'panic', name, expect: 'InternalError' };
      case 6: return { reducer: 'add', name: `p1-r${c}-${i}`, expect: 'InternalError' };
      default: return add(name);
    }
  }));
  const sdk = ctx.sdks.map((_, c) => Array.from({ length: sdkCalls }, (_, i): Call => {
    const name = `p2-s${c}-${i}`;
    if (i % 3 === 2) return { reducer: 'refuse', name, expect: 'Err' };
    if (i % 5 === 4) return { reducer: 'panic', name, expect: 'InternalError' };
    return add(name);
  }));
  const http = Array.from({ length: httpCalls }, (_, i): Call => {
    const name = `p2-h-${i}`;
    if (i % 4 === 1) return { reducer: 'refuse', name, expect: 'Err' };
    if (i % 7 === 3) return { reducer: 'panic', name, expect: 'InternalError' };
    if (i % 9 === 5) return { reducer: 'add', name: `p1-h-${i}`, expect: 'InternalError' };
    return add(name);
  });
  return burst(ctx, raw, sdk, http, rawCalls + 1);
}

/**
 * The same calls one at a time, on a second database, in the order the first one ran them (its module log): each ran
 * once, with the same outcome and the same row (id and commit number), and the tables end the same.
 */
async function replayOneByOne(ctx: Ctx, plans: Call[][]): Promise<Raw> {
  const ran = await ranInOrder(ctx.server, ctx.token, 'batched');
  const issued = byName(plans);
  assert.equal(ran.length, plans.flat().length, 'every call ran exactly once');
  const one = await openRaw(ctx.server, 'one-by-one', 'one by one');
  for (const [i, { reducer, name }] of ran.entries()) {
    const call = issued.get(name)?.shift();
    assert.ok(call !== undefined && call.reducer === reducer, `the batched database ran ${reducer} ${name} as issued`);
    sendCalls(one, [call], i + 1);
    await readResults(one, i + 1);
    const alone = checkReplies(one, [call], i + 1).get(name);
    if (call.expect === 'Ok') assert.deepEqual(alone, ctx.committed.get(name), `${name}: the same row as one at a time`);
  }
  assert.deepEqual(await itemsBySql(ctx.server, ctx.token, 'one-by-one'), await itemsBySql(ctx.server, ctx.token, 'batched'), 'same tables');
  return one;
}

/**
 * HTTP calls first (each opens a connection), then a burst from every raw client once a few are answered; the server
 * dies (synchronously, from the socket's message event) when raw client 0 has its first reply of the burst. Returns a
 * line on how much was acknowledged.
 */
async function killMidBurst(ctx: Ctx): Promise<string> {
  for (const s of ctx.sdks) s.conn.disconnect();
  const raw = ctx.raws.map((_, c) => Array.from({ length: killBurst }, (_, i): Call =>
    (i % 10 === 9 ? { reducer: 'refuse', name: `p3-r${c}-${i}`, expect: 'Err' } : add(`p3-r${c}-${i}`))));
  const http = Array.from({ length: 100 }, (_, i) => add(`p3-h-${i}`));
  let httpDone = 0;
  const httpAnswered = httpCallsAll(ctx.server, http, true, () => httpDone++);
  for (const deadline = Date.now() + 20_000; httpDone < 5 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 1));
  const pid = ctx.server.pid()!, first = ctx.raws[0].c, firstRequestId = 2 * rawCalls + 1;
  let killed = false;
  first.ws.on('message', () => {
    if (killed || !first.frames.at(-1)!.messages.some((m) => m.tag === 'ReducerResult' && m.requestId >= firstRequestId)) return;
    killed = true;
    process.kill(pid, 'SIGKILL');
  });
  // Frames of 10 calls: replies come in many frames, so the kill falls in the middle of the bursts.
  ctx.raws.forEach((r, c) => { for (let i = 0; i < killBurst; i += 10) sendCalls(r, raw[c].slice(i, i + 10), firstRequestId + i); });
  await Promise.all(ctx.raws.map((r) => readResults(r, 2 * rawCalls + killBurst, true)));
  await ctx.server.kill('SIGKILL');
  const httpCommitted = await httpAnswered;
  ctx.raws.forEach((r, c) => { for (const [name, item] of checkReplies(r, raw[c], firstRequestId, true)) ctx.committed.set(name, item); });
  await ctx.server.restart();
  const recovered = await itemsBySql(ctx.server, ctx.token, 'batched');
  for (const call of httpCommitted) assert.ok(recovered.has(call.name), `${call.name} was acknowledged over HTTP, so it survives kill -9`);
  const acknowledged = ctx.raws.map((r) => r.messages.filter((m) => m.tag === 'ReducerResult').length - 2 * rawCalls);
  return `kill -9 with ${acknowledged.join(' / ')} of ${killBurst} raw calls per client and ${httpCommitted.length} of ${http.length} HTTP calls answered`;
}

/** After the restart: every acknowledged call is there with its row, the counter agrees, and ids go on above. */
async function checkRecovered(ctx: Ctx): Promise<Raw> {
  const recovered = await itemsBySql(ctx.server, ctx.token, 'batched');
  for (const [name, item] of ctx.committed) assert.deepEqual(recovered.get(name), item, `${name} was acknowledged, so it survives kill -9`);
  const [[count]] = await sql(ctx.server, ctx.token, 'batched', 'SELECT n FROM counter');
  assert.equal(recovered.size, count, 'the counter counts the items');
  assert.deepEqual([...recovered.values()].map((i) => i.n).sort((a, b) => a - b), Array.from({ length: recovered.size }, (_, i) => i + 1));
  const maxId = [...recovered.values()].reduce((m, i) => (i.id > m ? i.id : m), 0n);
  const after = await openRaw(ctx.server, 'batched', 'after restart');
  sendCalls(after, [add('after-restart')], 1);
  await readResults(after, 1);
  const fresh = checkReplies(after, [add('after-restart')], 1).get('after-restart')!;
  assert.ok(fresh.id > maxId && fresh.n === recovered.size + 1, `a call after the restart: ${show(fresh)}, max id ${maxId}`);
  return after;
}

async function scenario(mode: 'worker' | 'main', diagnostic: (message: string) => void): Promise<void> {
  const server = await startTestServer({ env: { SPACETIME_DATABASE_THREADS: mode, SPACETIME_REDUCER_TIMEOUT_MS: String(reducerTimeoutMs) } });
  try {
    const { token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string };
    const program = (await buildFixture('batched-clients')).code;
    for (const db of ['batched', 'one-by-one']) {
      const res = await fetch(`${server.url}/v1/database/${db}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: program });
      assert.equal(res.status, 200, await res.text());
    }
    const bindings = await (await generateBindings('batched-clients')).load();
    const ctx: Ctx = {
      server, token, committed: new Map(),
      raws: await Promise.all(Array.from({ length: rawClients }, (_, c) => openRaw(server, 'batched', `raw ${c}`))),
      watcher: await openRaw(server, 'batched', 'watcher'),
      sdks: await Promise.all(Array.from({ length: sdkClients }, (_, c) => connectSdk(bindings, server, 'batched', `sdk ${c}`))),
    };
    const plans = [...await denseBurst(ctx), ...await mixedBurst(ctx)];
    for (const s of ctx.sdks) assertInOrder(s.inserted, 1, s.label);
    const one = await replayOneByOne(ctx, plans);
    diagnostic(await killMidBurst(ctx));
    const after = await checkRecovered(ctx);
    for (const r of [...ctx.raws, ctx.watcher, one, after]) r.c.ws.close();
  } finally {
    await server.stop();
  }
}

test('worker threads: pipelining clients through batched entry keep order, outcomes, ids and durability', { timeout: 60_000 }, (t) => scenario('worker', (m) => t.diagnostic(m)));
test('main thread: pipelining clients through batched entry keep order, outcomes, ids and durability', { timeout: 60_000 }, (t) => scenario('main', (m) => t.diagnostic(m)));
