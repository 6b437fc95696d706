// limits.ts — the named limits that bound what one client, one query or one module can consume, gathered in one
// place so their relations can be asserted (TigerBeetle's constants.zig, SQLite's sqliteLimit.h).
//
// Owns: limits added by the hardening work (issue 11) and the assertions that tie them together. Older limits still
// live beside the code that enforces them (grep `MaxBytes`, `TimeoutMs`); move one here when it gains a relation to
// another. Every value has its unit in its name. docs/reliability.md lists each limit with the test that proves it.
// May call: nothing (every layer may import this file).

/** Throws when a relation between two limits does not hold: a programmer error, caught at import time. */
export function assertLimit(condition: boolean, relation: string): void {
  if (!condition) throw new Error(`limits.ts: broken relation: ${relation}`);
}

// ---- Module calls and the server's thread (issue 11 items 4–6) ------------------------------------------------------
// Every database's reducers, views, lifecycle hooks and scheduled reducers run on the server's one thread (isolated-vm
// applySync; engine v2 moves each database off it). These bound how long one call may hold that thread, how the HTTP
// server survives such a hold, and how one database shares the thread with the others.

/**
 * Reads a non-negative integer limit from the environment (server-wide overrides, e.g. `SPACETIME_REDUCER_TIMEOUT_MS`
 * in tests); `fallback` when unset. A malformed value is an operating error at start-up, named.
 */
export function limitFromEnv(name: string, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got \`${text}\``);
  return n;
}

/**
 * Time one reducer, view or lifecycle-hook call may take, in wall time from its start: time the host spends in the
 * call's syscalls counts (isolated-vm's timeout, wall time with patches/isolated-vm+5.0.4.patch, and host/syscalls.ts's
 * deadline check at every syscall). Upstream has no such budget; an endless loop must not hang us. 0 disables it.
 */
export const reducerTimeoutMsDefault = 10_000;
/** The reducer limit this server runs with: `SPACETIME_REDUCER_TIMEOUT_MS`, else the default. */
export function reducerTimeoutMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_REDUCER_TIMEOUT_MS', reducerTimeoutMsDefault, env);
}
/** Each of a module's top-level evaluation, hook lookup and describe; also paid again when a trap re-creates the isolate. */
export const moduleEvaluateTimeoutMs = 10_000;

/**
 * Longest the server's thread can be held by one module call: the call's limit, then re-creating the isolate after a
 * trap (the module is evaluated again). Infinity when the reducer limit is disabled (0).
 */
export function threadHoldMsMax(reducerTimeoutMs: number): number {
  return reducerTimeoutMs === 0 ? Infinity : reducerTimeoutMs + moduleEvaluateTimeoutMs;
}

/**
 * Idle time a keep-alive HTTP connection is kept once the thread is free (Node's default). A client may reuse the
 * connection until then; the server closes it afterwards.
 */
export const httpKeepAliveIdleMs = 5_000;
/**
 * Node closes an idle keep-alive socket from a timer, and after the thread was held, timers run before sockets are
 * read: a request a client wrote meanwhile on a connection idle for longer than this timeout would be reset
 * (ECONNRESET), never answered. So the timeout covers the longest hold plus the idle time. 0 (never close idle
 * connections) when holds are unbounded.
 */
export function httpKeepAliveTimeoutMs(reducerTimeoutMs: number): number {
  const hold = threadHoldMsMax(reducerTimeoutMs);
  return hold === Infinity ? 0 : hold + httpKeepAliveIdleMs;
}
/** Time a client has to send a request's headers; Node wants it above the keep-alive timeout. */
export function httpHeadersTimeoutMs(reducerTimeoutMs: number): number {
  return Math.max(httpHeadersTimeoutMsMin, httpKeepAliveTimeoutMs(reducerTimeoutMs) + 1_000);
}
/** Node's own default headers timeout, kept as the floor. */
export const httpHeadersTimeoutMsMin = 60_000;
assertLimit(httpKeepAliveTimeoutMs(reducerTimeoutMsDefault) > threadHoldMsMax(reducerTimeoutMsDefault),
  'an idle keep-alive connection outlives the longest hold of the server thread');
assertLimit(httpHeadersTimeoutMs(reducerTimeoutMsDefault) > httpKeepAliveTimeoutMs(reducerTimeoutMsDefault),
  'the headers timeout exceeds the keep-alive timeout');

/**
 * Time one database's call queue may keep the server's thread in one turn before it yields to the event loop
 * (setImmediate) so sockets, timers and other databases are served. A call is never cut short by it (the reducer limit
 * does that); calls waiting behind it run in the next turn, in order. Small against the 100 ms a /v1/ping must answer
 * in while a database runs calls back to back, large against one call (~10–20 µs), so yielding costs < 1 %.
 */
export const callQueueTurnBudgetMs = 5;
/**
 * Queued reducer calls of one database that enter its isolate together (docs/engine-v2.md §6c): the timed entry (~1.4
 * µs) is paid once per batch. The gain flattens past ~10 calls (§6); 32 keeps the replies of a batch's first calls
 * from waiting long behind the last ones (~0.3 ms of keynote calls).
 */
export const callBatchCallsMax = 32;
/**
 * No call of a batch starts once this much wall time has passed since the batch entered the isolate; the rest run in
 * the next batch. The entry's timeout is the reducer limit plus this (plus 1 ms of Date.now()'s resolution), so every
 * call keeps its whole limit and a runaway is stopped at most this much later than alone.
 */
export const callBatchSliceMs = 2;
assertLimit(callBatchSliceMs < callQueueTurnBudgetMs, 'a batch starts its calls within one turn of the call queue');
/**
 * Scheduled calls one database hands to its call queue at once; further due rows wait in the scheduler (they are
 * rows in their tables, nothing is lost) until one of those finished. Client calls so queue behind at most this many
 * scheduled ones, and a schedule that reschedules itself at once cannot fill the queue.
 */
export const scheduledCallsQueuedMax = 16;
/**
 * Rows one database may hold in its schedule tables together; an insert beyond it fails (errno 1, HOST_CALL_FAILURE,
 * with this name in the message) and rolls the call back. Upstream has no such bound; without it a schedule whose
 * every firing adds two rows grows without end (each row also costs a queue entry). 100k rows are ~100 MiB at most.
 */
export const scheduleRowsPerDatabaseMax = 100_000;
/** Calls queued by volatile_nonatomic_schedule_immediate and not run yet; beyond it, new ones are dropped (logged). */
export const immediateCallsQueuedMax = 10_000;
/** A limit that bites repeatedly (schedule backlog, schedule rows, immediate calls) is logged at most this often. */
export const limitLogIntervalMs = 60_000;

// ---- SQL (issue 11 item 2) ------------------------------------------------------------------------------------------
// One budget per request — an HTTP /sql request (`spacetime sql`), a WebSocket OneOffQuery, or a Subscribe message's
// initial evaluation — enforced by sql/budget.ts for owners too. Measured here (2 shared cores, other work running):
// a full scan of a 1M-row table of 2 u32 columns takes 0.5 s to evaluate, of 6 mixed columns 1.5–3 s; one row visit
// costs 0.3–3 µs, so 10M visits take seconds, and a 4-way cross join of 120-row tables (2×10^8 visits) minutes.

/**
 * Rows read from tables and indexes by one request (counted when fetched, before they are visited). 10x the 1M-row
 * full scan that must keep working; a plan whose estimate (a cross join: the product of its inputs) is above it is
 * refused before any row is visited.
 */
export const sqlRowsScannedMax = 10_000_000;
/** Rows one request returns (or materializes: views' and RLS filters' rows read by the query count too). */
export const sqlRowsReturnedMax = 1_000_000;
/**
 * BSATN bytes of the rows one request returns: what a SubscribeApplied or OneOffQueryResult carries, and what the
 * decoded rows of a /sql reply grow from (measured: 1M rows of 12 u32 = 48 MB held ~570 MB of heap with their JSON).
 * 48 MiB holds a 1M-row scan of rows up to 48 bytes.
 */
export const sqlResultBytesMax = 48 * 1024 * 1024;
/**
 * Values (columns, and the elements of arrays other than bytes) of the rows one /sql request returns. Rendering the
 * JSON reply happens after evaluation, outside the time limit, and costs per value: measured here under load, 1M rows
 * took 1.8 s to render with 2 columns, 6.0 s with 12 (~1.5 µs a row + ~0.4 µs a value). 8M values keep a reply's
 * rendering near the time limit; a 1M-row scan of up to 8 columns fits. WebSocket replies carry BSATN: not counted.
 */
export const sqlResultValuesMax = 8_000_000;
/**
 * Wall time one request may evaluate. Everything runs on the server's one thread, so this is how long a query may
 * keep every other database waiting. The 1M-row scan above takes 0.5–3 s here; 5 s covers it with headroom on a loaded
 * machine, and stays well under what a reducer call may hold the thread (`reducerTimeoutMsDefault`).
 */
export const sqlQueryWallTimeMsMax = 5_000;
/** Row visits between two looks at the clock (a visit is ~1 µs; a clock read ~50 ns). */
export const sqlClockCheckRows = 1024;
/**
 * A WebSocket connection's queued query messages (Subscribe, Unsubscribe, OneOffQuery; a v3 frame may hold hundreds)
 * run back to back for at most this long; the rest wait until other clients' pending I/O is served. Otherwise one frame
 * of N queries would hold the thread for N times the query time limit.
 */
export const queryMessagesSliceMs = 50;
assertLimit(sqlRowsReturnedMax <= sqlRowsScannedMax, 'a query cannot return more rows than it may scan');
assertLimit(sqlQueryWallTimeMsMax < reducerTimeoutMsDefault,
  'a query holds the thread no longer than a reducer call (keep-alive timeouts are sized from the longest hold)');

// ---- Module log (issue 11 item 7, issue 15 item 5) ------------------------------------------------------------------
// host/module-log.ts writes `<db>/module.log` (NDJSON, appended synchronously) and rotates it; host/syscalls.ts keeps
// the per-call bound. Before these, one reducer wrote 66 GB of log in a loop, and a 1.5 GB log kept its database from
// opening (the whole file was read into one string).

/**
 * UTF-8 bytes of one record's message; a longer one is cut with a marker saying how long it was. 64 KiB holds any
 * stack trace or row dump a person would read.
 */
export const logRecordMessageBytesMax = 64 * 1024;
/** Characters of a record's other texts (filename, function, target): a module names its own files. */
export const logRecordFieldCharsMax = 1024;
/**
 * Longest NDJSON line a record of ours can take: JSON escapes a character in at most 6 bytes (`\u001f`), plus the
 * marker, the field names, the level and numbers. A longer line read from disk is not ours and is skipped unread.
 */
export const logLineBytesMax = 6 * (logRecordMessageBytesMax + 3 * logRecordFieldCharsMax) + 1024;
/**
 * Bytes of log one module call (reducer, view, procedure, HTTP handler, with the module's top-level evaluation before
 * its first call) may write. Past it, one Warn line says the rest of the call's log is dropped, and the call goes on:
 * failing a call because it logged is worse for the user than losing the tail of a flood. A call writes at most this
 * plus one record plus that line. 4 MiB is ~40k lines of 100 bytes.
 */
export const logBytesPerCallMax = 4 * 1024 * 1024;
/** Size of module.log before it is rotated to module.log.1 (… .2, .3; the oldest is dropped). */
export const logFileBytesMax = 64 * 1024 * 1024;
/** Rotated files kept: a database's log takes at most (logRotatedFilesMax + 1) × logFileBytesMax = 256 MiB on disk. */
export const logRotatedFilesMax = 3;
/** Records kept in memory per database (`tail`, tests, panic messages); older ones are only on disk. */
export const logRingRecordsMax = 10_000;
/**
 * Memory the ring may take per database (counted as its records' line lengths), and what opening a database reads of
 * its log: at most this much from the end, whatever size the files are.
 */
export const logRingBytesMax = 4 * 1024 * 1024;
/** One read of a log file (tail location backwards, records forwards). */
export const logReadChunkBytes = 64 * 1024;
/**
 * Bytes of log a `logs --follow` reader may fall behind (records waiting while its backlog streams, or unsent in its
 * socket) before the server skips records for it and then says how many it skipped; a slow reader must not make the
 * server buffer a flood.
 */
export const logFollowLagBytesMax = 4 * 1024 * 1024;
assertLimit(logRecordMessageBytesMax * 16 <= logBytesPerCallMax, 'a call may write at least 16 records of the largest size');
assertLimit(logBytesPerCallMax * 16 <= logFileBytesMax, 'one call fills at most 1/16 of a log file, so rotation keeps history');
assertLimit(logLineBytesMax * 2 <= logRingBytesMax, 'the ring and the tail read at open hold the largest records');
assertLimit(logLineBytesMax <= logFollowLagBytesMax, 'a follower can receive the largest record');

// ---- Connections (issue 12 item 2: nothing one client does stops the others) ----------------------------------------
// Every HTTP or WebSocket connection holds a file descriptor (and ~10 KiB: 12,000 idle WebSockets took 126 MiB). At
// the process's descriptor limit the server can open no file: no commit-log segment, snapshot or module log, and no
// /proc read. So connections stop short of it, with room kept for the files of every database.

/** HTTP and WebSocket connections one server holds at once; one more gets a 503 naming this limit and is closed. */
export const connectionsMaxDefault = 10_000;
/** The fewest connections a server takes, whatever its descriptor limit. */
export const connectionsMin = 64;
/**
 * Descriptors kept for files and everything else that is not an HTTP or WebSocket connection: each open database
 * holds ~3 (commit-log segment, module log, its directory during snapshots), PostgreSQL connections `pgConnectionsMax`.
 */
export const fileDescriptorsReserved = 4_096;
/** At most this share of a small descriptor limit is kept from connections (a hard limit of 4,096 keeps 1,024). */
export const fileDescriptorsReservedShareMax = 0.25;
/**
 * The bound this server runs with: `SPACETIME_CONNECTIONS_MAX`, else `connectionsMaxDefault` lowered to leave
 * `fileDescriptorsReserved` (at most `fileDescriptorsReservedShareMax` of it) of the process's descriptor limit
 * `fileDescriptorsMax` (Infinity when unknown): 10,000 at this machine's 20,000, 3,072 at 4,096, 768 at 1,024.
 */
export function connectionsMaxConfigured(fileDescriptorsMax: number, env: NodeJS.ProcessEnv = process.env): number {
  const reserved = Math.min(fileDescriptorsReserved, Math.floor(fileDescriptorsMax * fileDescriptorsReservedShareMax));
  const fitting = Math.max(connectionsMin, Math.min(connectionsMaxDefault, fileDescriptorsMax - reserved));
  const n = limitFromEnv('SPACETIME_CONNECTIONS_MAX', fitting, env);
  if (n < 1) throw new Error(`SPACETIME_CONNECTIONS_MAX must be at least 1 (the server refuses every connection at 0), got ${n}`);
  return n;
}
assertLimit(connectionsMin < connectionsMaxDefault, 'the floor is below the default');

// ---- WebSocket sessions and tokens (issue 11 items 1, 11, 12) -------------------------------------------------------
// server/websocket/session.ts writes each client's messages in bounded pieces as its socket drains, and judges a client
// slow by what it fails to read over time, not by the size of one message; auth/tokens.ts checks every token's `exp`.

/** Most queries in one Subscribe message. */
export const querySetQueriesMax = 4096;
/**
 * Queries one connection may hold subscribed, over all its query sets; a Subscribe past it gets a SubscriptionError
 * naming the limit. A distinct query costs its database's thread ~1.7 KiB (150 sets of 4,096 distinct queries from one
 * anonymous client took 1.1 GiB, with nothing to stop more); identical queries are shared, but literals make them
 * distinct. Far above what an app subscribes (a few per table), and `serverMemoryShareMax` bounds all clients together.
 */
export const clientQueriesMax = 16_384;
assertLimit(clientQueriesMax >= querySetQueriesMax, 'one full query set always fits a new connection');
/**
 * Characters of query text one connection may hold subscribed, over all its query sets (each set charged the text of its
 * Subscribe); a Subscribe past it gets a SubscriptionError naming the limit, before its queries are compiled. A query's
 * cost grows with its text, not only with its count: `WHERE id = 0 OR id = 1 OR …` within the 50,000-byte query text
 * limit is 2,500 terms, each kept compiled (~63 bytes of heap per character) and evaluated against every change of its
 * table. Session 12 probe: one anonymous connection subscribing 3 × 400 such queries held +2.5 GiB, each Subscribe took
 * its database's thread 6-11 s, and then every commit of that database took 2.8 s. 1 Mi characters: ≤ ~64 MiB of
 * compiled queries and ~70,000 terms per connection, and 4,096 queries of 256 characters.
 */
export const clientQueryTextCharsMax = 1024 * 1024;
assertLimit(clientQueryTextCharsMax >= querySetQueriesMax * 256, 'a full query set of 256-character queries fits a new connection');

/**
 * Bytes of messages queued for one client and not yet handed to its socket, beyond the largest single message among
 * them (that one is bounded by what produced it, e.g. `sqlResultBytesMax`). A client that falls this far behind is
 * closed with 1008: this bounds the server's memory for a client that reads, but slower than its updates arrive.
 */
export const outboundQueueMaxBytes = 64 * 1024 * 1024;
/**
 * Bytes handed to one client's socket and not yet taken by the kernel before we wait for it to drain. Larger messages
 * go out as WebSocket fragments of `outboundFragmentBytes`, so a 70 MiB SubscribeApplied never sits in the socket's
 * buffer at once.
 */
export const outboundSocketBufferedBytesMax = 1024 * 1024;
/** Payload bytes of one WebSocket fragment of a large message. */
export const outboundFragmentBytes = 256 * 1024;
/**
 * A client that reads none of what its socket holds for this long is closed with 1008 "client too slow" (checked while
 * the socket holds unsent bytes: the kernel must have taken some since the last check). A reader that reads at all
 * keeps its connection; one that reads slower than its updates arrive meets `outboundQueueMaxBytes` instead.
 */
export const outboundStallTimeoutMs = 15_000;
/**
 * Seconds after `exp` a token is still accepted: none. Upstream allows 60 (jsonwebtoken's default), which let a token
 * 20 s past `exp` mint a fresh websocket token; tokens are short-lived exactly so that expiry means something.
 */
export const tokenExpiryLeewaySeconds = 0;
assertLimit(outboundFragmentBytes <= outboundSocketBufferedBytesMax, 'a fragment fits the socket budget');
assertLimit(outboundSocketBufferedBytesMax < outboundQueueMaxBytes, 'the socket holds less than the queue may');
/**
 * Bytes the main thread hands to all WebSocket clients' sockets in one flush pass (one turn of its event loop); the
 * sessions it did not reach wait for the next turn, in order (server/websocket/fanout.ts). A socket whose kernel buffer
 * has room takes a write at once, so without this a commit's update to many subscribers was copied into every socket
 * in one turn: 200 subscribers of 1 MB updates held /v1/ping 520-690 ms per pass (session 12 attack probe). One
 * connection still fills its socket budget in one turn, so a lone fast reader is not slowed.
 */
export const outboundSocketWriteBytesPerTurnMax = 4 * 1024 * 1024;
assertLimit(outboundSocketBufferedBytesMax <= outboundSocketWriteBytesPerTurnMax, "one connection's socket budget fits a turn's");
assertLimit(outboundSocketWriteBytesPerTurnMax < outboundQueueMaxBytes, 'a turn writes less than one client may have queued');

// ---- Durability (issue 11 items 8–10) ---------------------------------------------------------------------------
// Every commit is one commit-log record (durability/segment.ts); a record's payload is bounded so that a damaged length
// field cannot make recovery read gigabytes. Whatever must be logged is therefore bounded BEFORE it is committed in
// memory: a transaction by the bytes it writes (checked before its commit, host/database.ts), a program by its text and
// module definition (checked when it is loaded, host/update.ts). Before these, a transaction larger than a record was
// committed in memory, acknowledged, and never written.

/** Payload bytes of one commit-log record: a larger length in a record header is corruption, a larger append refused. */
export const logRecordPayloadMaxBytes = 256 * 1024 * 1024;
/**
 * What the datastore charges a transaction per row it writes, on top of the row's bytes: the record's framing of one
 * row (a varint length, an update's diff header) is at most 15 bytes (host/persistence.ts), so the charge bounds it.
 */
export const txWriteRowOverheadBytes = 16;
/** … and per table it touches (the table's id, row width and shape varints: at most 25 bytes). */
export const txWriteTableOverheadBytes = 32;
/**
 * Bytes one transaction may write: every inserted row, both sides of an update and every deleted row, each with
 * `txWriteRowOverheadBytes`, plus `txWriteTableOverheadBytes` per table. A reducer over it fails and rolls back with an
 * error naming this limit. 128 MiB: the whole transaction is held in memory about three times over (rows, undo log,
 * the encoded record) before it is on disk. `SPACETIME_TX_WRITE_BYTES_MAX` overrides it (tests), up to the relation.
 */
export const txWriteBytesMaxDefault = 128 * 1024 * 1024;
/**
 * Room in a transaction record for what is not rows: the kind byte, table count, the sequence reservations the
 * transaction moved (name + value each) and a client change (49 bytes). A schema's sequence names stay far below it.
 */
export const txRecordOverheadMaxBytes = 1024 * 1024;
/** The transaction limit this server runs with. */
export function txWriteBytesMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  const n = limitFromEnv('SPACETIME_TX_WRITE_BYTES_MAX', txWriteBytesMaxDefault, env);
  assertLimit(n + txRecordOverheadMaxBytes <= logRecordPayloadMaxBytes, 'SPACETIME_TX_WRITE_BYTES_MAX: the largest transaction fits one log record');
  return n;
}
/**
 * Program text plus module definition of one module (its Program record in the log; a program's text is at most
 * `programBytesMax`, 16 MiB, at publish). A larger module is refused when it is loaded.
 */
export const programRecordMaxBytes = 192 * 1024 * 1024;
/** Room in a Program record for its other fields (identities, timestamp, length prefixes). */
export const programRecordOverheadMaxBytes = 1024;
assertLimit(txWriteBytesMaxDefault + txRecordOverheadMaxBytes <= logRecordPayloadMaxBytes,
  'the largest transaction fits one log record');
assertLimit(programRecordMaxBytes + programRecordOverheadMaxBytes <= logRecordPayloadMaxBytes,
  'the largest program fits one log record');
assertLimit(64 * 1024 * 1024 < programRecordMaxBytes, 'a program as large as the HTTP body limit (64 MiB) leaves room for its definition');

// ---- Decoding and module memory (issue 11 item 3) -------------------------------------------------------------------
// What one value decoded from outside (a client's arguments or message, a module's row) and one module's heap may cost.
// A 15-byte CallReducer declaring 2^32−1 elements of a zero-size type once ran V8 out of memory, and a module filling a
// Map aborted the whole server (V8's fatal CALL_AND_RETRY_LAST) instead of stopping at its memory limit.

/**
 * Elements of one BSATN or SATS-JSON array (byte arrays are bounded by their bytes alone). Every element becomes a JS
 * value, 8 bytes of pointer at least, so a decoded array costs at most 128 MiB of pointers; 16M elements of 8 bytes
 * fill the largest transaction. Elements that take input bytes are also bounded by the bytes left.
 */
export const satsArrayElementsMax = 16 * 1024 * 1024;
/**
 * Elements of one array whose element type takes no bytes (unit-like products): they carry nothing but their count,
 * yet each one is materialised (here and in the module's decoder), so only this many, not 2^32−1 from 4 bytes.
 */
export const satsZeroSizeArrayElementsMax = 64 * 1024;
assertLimit(satsArrayElementsMax * 8 >= txWriteBytesMaxDefault, 'an array of 8-byte elements as large as the largest transaction decodes');
assertLimit(satsZeroSizeArrayElementsMax <= satsArrayElementsMax, 'zero-size elements are the tighter bound');

/**
 * Heap a module isolate may use (isolated-vm's memoryLimit: checked after every full GC and on ArrayBuffer allocation;
 * over it, the call is stopped, rolled back, and the isolate re-created). `SPACETIME_MODULE_MEMORY_LIMIT_MIB` overrides
 * it (tests use a small limit to reach it fast).
 */
export const moduleMemoryLimitMibDefault = 256;
/** isolated-vm refuses a smaller memoryLimit. */
export const moduleMemoryLimitMibMin = 8;
/** The module memory limit this server runs with. */
export function moduleMemoryLimitMibConfigured(env: NodeJS.ProcessEnv = process.env): number {
  const n = limitFromEnv('SPACETIME_MODULE_MEMORY_LIMIT_MIB', moduleMemoryLimitMibDefault, env);
  if (n < moduleMemoryLimitMibMin) throw new Error(`SPACETIME_MODULE_MEMORY_LIMIT_MIB must be at least ${moduleMemoryLimitMibMin}, got ${n}`);
  return n;
}
/**
 * V8's own heap limit of a module isolate, as a multiple of its memory limit. V8 fails a single allocation that does
 * not fit under its heap limit with a fatal, process-wide OOM, without the near-heap-limit callback through which
 * isolated-vm stops an isolate cleanly; and isolated-vm sets V8's limit to the memory limit itself. A Map, Set or
 * dictionary-mode object doubles its hash table in one allocation, with the old table still live: at 170 of 256 MiB
 * that request did not fit, and the server aborted. So the isolate gets this much more V8 heap, and an untouchable
 * ArrayBuffer of the difference (host/runtime.ts `memoryBallast`) is counted against isolated-vm's limit, which thus
 * still stops the module at its memory limit; the largest table doubling near the limit (≤ 2x the live heap, which V8
 * may overshoot between full GCs) fits in the room above it. The ballast is never written, so it takes address space,
 * not memory. Measured (test/host/memory-limit.test.ts; 10 allocation shapes at 32, 64 and 256 MiB): every shape is
 * stopped with the memory-limit error at 4x; without the room, Map, Set and object properties abort the process.
 */
export const moduleHeapHardLimitFactor = 4;
/**
 * Array elements in one call's arguments whose decoded values are heap objects in the module (inner arrays, products,
 * sums other than options of plain values, 64-bit and wider integers): more is refused as bad arguments before the
 * module sees them. The official library decodes a reducer's arguments inside the module's isolate; an anonymous client
 * sending another identity's reducer a 28 MB `Array<Array<u8>>` of 7M empty arrays made that module exceed its 256 MiB
 * memory limit, so its isolate was replaced (its globals reset) at every such call (session 11 attack probes). An
 * empty JS array costs ~40 bytes besides its slot: 2M of them ~100 MiB, within the default module memory limit.
 * Numbers, booleans, strings and bytes are not counted (their size is bounded by the message's).
 */
export const argsDecodedObjectsMax = 2 * 1024 * 1024;
assertLimit(argsDecodedObjectsMax * 64 <= moduleMemoryLimitMibDefault * 1024 * 1024 / 2, 'decoded arguments at the limit take at most half a module\'s default memory');

// ---- PostgreSQL wire (issue 15 item 6) ----------------------------------------------------------------------------
// `spacetime start --pg-port N` (server/pgwire/). A PG client holds a TCP connection and sends length-prefixed
// messages; these bound what one client can make the server hold before it has even authenticated.

/**
 * Bytes of one frontend message (startup packet, password, query text). The same bound as an HTTP /sql body
 * (server/http.ts jsonBodyMaxBytes), so a query that fits one path fits the other; a longer length in a header is
 * refused before its bytes are buffered.
 */
export const pgMessageBytesMax = 1024 * 1024;
/** Open PostgreSQL connections at once; one more is answered FATAL 53300 ("too many clients"), as PostgreSQL does. */
export const pgConnectionsMax = 256;
/**
 * Time from connect to a completed password exchange (PostgreSQL's authentication_timeout is 60 s; token checks here
 * are local and fast, and a connection that never authenticates only holds a socket). Past it: FATAL 08006, closed.
 */
export const pgStartupTimeoutMsDefault = 10_000;
/** The startup limit this server runs with: `SPACETIME_PG_STARTUP_TIMEOUT_MS` (tests), else the default. */
export function pgStartupTimeoutMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_PG_STARTUP_TIMEOUT_MS', pgStartupTimeoutMsDefault, env);
}
assertLimit(pgMessageBytesMax >= 16 * 1024 + 64, 'a password message holds the largest token (auth/tokens.ts tokenMaxBytes)');
/**
 * Bytes a PostgreSQL connection may send ahead while its message is being handled (a query running): the session
 * keeps reading until its unhandled input passes this, then pauses the socket until it is done. It keeps reading so
 * that a client's close is seen at once (its waiting query is then not run, its answer not made): with the socket
 * paused, a closed psql was noticed only when the answer's write failed (session 12 attack probe). A whole message
 * still needs `pgMessageBytesMax`, read when nothing is being handled.
 */
export const pgInputAheadBytesMax = 64 * 1024;
assertLimit(pgInputAheadBytesMax <= pgMessageBytesMax, 'what a busy connection reads ahead is at most one message');
assertLimit(pgConnectionsMax * (pgInputAheadBytesMax + 64 * 1024) <= 64 * 1024 * 1024,
  'every connection reading ahead (plus one socket chunk each) holds at most 64 MiB');

// ---- OIDC tokens from any issuer (issue 13 item 12) ----------------------------------------------------------------
// A token from an issuer we have not seen makes the server fetch that issuer's discovery document and key set
// (auth/oidc.ts). Anyone can mint such a token, so what those fetches may cost is bounded here.

/** Issuers whose discovery document and key set are cached at once; the least recently used is dropped beyond it. */
export const oidcIssuersCachedMax = 256;
/** Discovery or key-set fetches running at once; a token needing one more is refused (401, try again). */
export const oidcDiscoveriesInFlightMax = 8;
/** A discovery document or key set larger than this is refused while it is read (real ones are a few KiB). */
export const oidcDocumentMaxBytes = 256 * 1024;
/** One discovery or key-set request gives up after this long (a token check waits for it). */
export const oidcFetchTimeoutMs = 5 * 1000;
assertLimit(oidcDiscoveriesInFlightMax <= oidcIssuersCachedMax, 'every discovery in flight can be cached');

// ---- Dashboard sign-in codes (issue 16) ----------------------------------------------------------------------------
// `spacetime dashboard` trades the CLI's token for a one-time code the browser exchanges (server/routes/dashboard.ts),
// so the token never appears in a URL. Codes are held in memory until used or expired.

/** A sign-in code is refused after this long: enough to open a browser, short enough that a stray code is useless. */
export const dashboardCodeLifetimeMs = 60 * 1000;
/** Codes outstanding at once (only verified tokens can mint one); the next is refused with 429 until one expires. */
export const dashboardCodesMax = 64;

// ---- Resuming after a commit log failure (issue 11) ---------------------------------------------------------------
// A database whose log failed (disk full, EIO) is reopened from its files by server/databases.ts once the disk works
// again. Reopening replays the log (seconds for a large database), so attempts back off and a cheap probe goes first.

/** First attempt after the failure (a user who frees space expects service back within seconds). */
export const databaseResumeRetryFirstMs = 500;
/** Each later attempt waits twice as long as the previous one, up to this (a still-full disk costs a probe per 5 s). */
export const databaseResumeRetryMaxMs = 5_000;
/** Bytes the probe writes and fsyncs in the database's directory; only a passing probe leads to a reopen. */
export const databaseResumeProbeBytes = 64 * 1024;
/** A reopened database that fails again within this long keeps its backoff: a flapping disk is not reopened in a loop. */
export const databaseResumeStableMs = 60_000;
assertLimit(databaseResumeRetryFirstMs < databaseResumeRetryMaxMs, 'the backoff grows');
/**
 * A backup sent to POST /v1/database/restore is read whole and checked before anything is written, so its size is
 * bounded by memory: 1 GiB (a snapshot of a few million rows plus its log tail fits; larger ones need a streamed restore).
 */
export const restoreBackupBytesMax = 1024 * 1024 * 1024;

// ---- Materialized views (issue 13 item 5) ---------------------------------------------------------------------------
// host/views.ts keeps each view's result per (view, sender) until a commit touches a table it read. Sender views add
// one entry per identity that reads them, so the cache is bounded; the least recently used entry goes first, and a
// dropped entry only costs one more call of the view.

/** Cached view results per database (a result per anonymous view, per identity for sender views). */
export const viewResultsCachedMax = 4096;
/** Rows held by one database's cached view results altogether; one request may materialize up to sqlRowsReturnedMax. */
export const viewResultRowsCachedMax = 2_000_000;
assertLimit(viewResultRowsCachedMax >= sqlRowsReturnedMax, 'the largest result one request may build can be kept');

// ---- Databases in worker threads (issue 12, engine v2 step 3) -------------------------------------------------------
// `--database-threads worker`: a WebSocket client's reducer calls go to its database's worker without waiting for the
// previous reply (as in-thread calls pipeline), so the worker's queue, not the session's, holds them.

/** Reducer calls of one WebSocket connection sent to its database's worker and not yet run; the next waits for one. */
export const workerCallsInFlightPerConnectionMax = 256;
/**
 * Started worker threads kept idle for the next publish of a new database, once one was published: starting one (its
 * thread, the host code and isolated-vm) took 0.3-0.5 s of wall time on 2 shared cores, which that publish would
 * otherwise wait for. One: publishes come one at a time; each takes the spare and a new one starts behind it.
 */
export const workerSparesWarm = 1;
/**
 * Databases a starting server opens at once. In worker mode an open is mostly its new thread's own work (loading the
 * host, replaying the log), so opening several at once uses the cores; four keeps the memory of logs being replayed
 * at once bounded.
 */
export const databasesOpenedAtOnceMax = 4;

// ---- Database worker threads (issue 12, engine v2 step 8) -----------------------------------------------------------
// Each database worker thread costs ~16-18 MiB of RSS of its own (Node's per-thread heap and the host code loaded in
// it; 40 small databases: 36 MiB each with a thread each, 20 MiB each on 4 threads, 15 MiB each in main mode), and
// anyone who can mint an identity can publish: so the threads a server starts are bounded, and past the bound databases
// share them (host/worker/proxy.ts places each on the thread serving the fewest).

/**
 * Database worker threads one server process runs at most (`SPACETIME_WORKER_THREADS_MAX`; at least 1). Below it every
 * database has a thread of its own, so a runaway call holds only its own database; past it a runaway also holds the
 * other databases of its thread, for up to its limit. 16: eight per core of this 2-core machine, so the busy databases
 * of a small server (a game, a test suite) each keep a thread, while the threads' own memory stops at ~280 MiB
 * whatever the number of databases (databasesMaxDefault bounds those).
 */
export const workerThreadsMaxDefault = 16;
/** The bound this server runs with: `SPACETIME_WORKER_THREADS_MAX`, else the default. */
export function workerThreadsMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  const n = limitFromEnv('SPACETIME_WORKER_THREADS_MAX', workerThreadsMaxDefault, env);
  if (n === 0) throw new Error('SPACETIME_WORKER_THREADS_MAX must be at least 1, got `0`');
  return n;
}
assertLimit(workerThreadsMaxDefault > workerSparesWarm, 'a spare worker leaves room for the databases themselves');

// ---- Main thread <-> worker hop (host/worker/protocol.ts) -----------------------------------------------------------
// A WebSocket client's calls name their caller and reducer by a number defined once in the stream (not the JWT payload,
// hundreds of bytes, with every call). These bound the tables of those numbers on both sides.

/**
 * Callers (connections) with a number at once, per database. The worker keeps each one's JWT payload (~0.3-1 KiB):
 * at most ~16 MiB. A connection's number is freed when it ends; past this many open connections, numbers are reused
 * in turn and a caller whose number was taken is sent again with its next call (correct, just not interned).
 */
export const workerCallersInternedMax = 16_384;
/** Reducer names with a number, per database: a module's own reducers (made-up names are sent as text each time). */
export const workerReducerNamesInternedMax = 4096;

// ---- Row store (issue 12 item 5, engine v2 step 6) -----------------------------------------------------------------
// Rows live in ArrayBuffer pages (datastore/rowstore.ts), not as one JS object each, so GC work does not grow with the
// row count. These size the pages and bound how many one table may hold.

/**
 * Bytes of one page of variable-width rows, and the most a page of fixed-width rows may take (2^16 rows at most). A
 * few hundred page objects at 10M rows keep a full GC at ~20 ms (docs/engine-v2.md §5); larger pages would waste more
 * of the last, partly filled page per table (a database has many small tables). A power of two: a location is
 * page << log2(pageBytes / 8) | offset / 8 in a u32.
 */
export const rowStorePageBytes = 1024 * 1024;
/** Pages of one table's variable-width rows: what a u32 location can address (32 GiB, beyond any Node heap here). */
export const rowStorePagesPerTableMax = 2 ** (32 - Math.log2(rowStorePageBytes / 8));
assertLimit(Number.isInteger(Math.log2(rowStorePageBytes)) && rowStorePageBytes >= 64 * 1024,
  'row pages are a power of two and hold many rows');
assertLimit(rowStorePagesPerTableMax * (rowStorePageBytes / 8) <= 2 ** 32, 'a row location (page, offset / 8) fits a u32');

// ---- Idle collection in database workers (issue 12 item 5: memory) ------------------------------------------------
// V8 collects a heap only when it allocates, so a database worker that ran a large transaction and then waits keeps
// that transaction's garbage in RSS (host/worker/idle-gc.ts). An idle worker whose heap grew collects.

/**
 * A worker with no request for this long (checked every period: it collects 1–2 periods after its last request) is
 * idle. Long enough that a database taking calls every few hundred ms is never paused by a collection it did not
 * need; short enough that a bulk load's garbage goes within seconds. 0 disables idle collection
 * (`SPACETIME_WORKER_IDLE_GC_AFTER_MS`, tests).
 */
export const workerIdleGcAfterMsDefault = 1_000;
/** The idle time this server runs with: `SPACETIME_WORKER_IDLE_GC_AFTER_MS`, else the default. */
export function workerIdleGcAfterMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_WORKER_IDLE_GC_AFTER_MS', workerIdleGcAfterMsDefault, env);
}
/**
 * Growth of a worker's V8 heap (committed) plus external memory since its last collection above which an idle worker
 * collects (twice: host/worker/idle-gc.ts). Measured on a worker holding 1M keynote rows: the first collection took
 * 19 ms of the worker thread's CPU (~60 ms of the process's with V8's helper threads, 73 ms wall) and gave back
 * 147 MiB; the second 9 ms. Below this growth the memory to give back is not worth the pause, and a worker whose
 * live data grows collects twice per this much growth.
 */
export const workerIdleGcHeapGrowthBytes = 32 * 1024 * 1024;
/**
 * How long the main thread waits, as the process exits, for its database workers to collect their garbage
 * (host/worker/exit-collection.ts says why). A collection of a worker holding 1M rows takes ~70 ms wall; a worker
 * busy in a call answers only after it, so the exit goes on without it at this bound.
 */
export const workerExitCollectionWaitMs = 2_000;

// ---- Databases per server ------------------------------------------------------------------------------------------
// Anyone who can mint an identity can publish, and each database holds a module isolate (~15 MiB for a small module),
// its files and, in worker mode, a share of a thread: without a bound a client could publish until the server runs out
// of memory, taking every other database with it.

/**
 * Databases one server holds (created and restored ones, broken ones included); a publish or restore that would add
 * one more is refused with 403 and a message naming this limit. 1,024 small databases take ~15 GiB here: under this
 * machine's 24 GiB, and far above what a test suite or a hosted game needs (`SPACETIME_DATABASES_MAX`).
 */
export const databasesMaxDefault = 1_024;
/** The bound this server runs with: `SPACETIME_DATABASES_MAX`, else the default. */
export function databasesMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_DATABASES_MAX', databasesMaxDefault, env);
}
/**
 * Databases one identity owns on a server; a publish or restore that would create one more for it is refused with 403
 * naming this limit. Without it one client, anonymous or not, could take every place of `databasesMaxDefault` (session
 * 10 attack probe), and the server refused everyone else's new databases. An identity costs nothing to mint, so this
 * stops one client or one runaway script, not one that mints identities: for that, restrict who publishes (config.toml
 * [publish], `--allow-publish`). `SPACETIME_DATABASES_PER_IDENTITY_MAX` sets it (tests, operators).
 */
export const databasesPerIdentityMaxDefault = 64;
/** The bound this server runs with: `SPACETIME_DATABASES_PER_IDENTITY_MAX`, else the default. */
export function databasesPerIdentityMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_DATABASES_PER_IDENTITY_MAX', databasesPerIdentityMaxDefault, env);
}
assertLimit(databasesPerIdentityMaxDefault * 4 <= databasesMaxDefault, "one identity's databases leave most of the bound to others");

// ---- Databases opening at start (issue 12: "restart waits") ---------------------------------------------------------
// A restarted server listens at once and opens its databases in the background (server/databases.ts); what is
// addressed to a database still opening waits for it, bounded so a client never hangs without an answer.

/**
 * How long a request or WebSocket connect addressed to a database still opening at start waits for it before it gets
 * 503 naming the database, that it is still opening, and this limit. Opening replays its snapshot and log: 10M rows took
 * 6.5 s alone (BENCHMARKS.md, bench:big-table), and a database someone waits for opens next but may share the cores with
 * `databasesOpenedAtOnceMax` opens under way; 60 s covers a database several times that size on this 2-core machine,
 * while a client that polls still hears something well before its own response timeout.
 */
export const databaseOpenWaitMsDefault = 60_000;
/** The wait this server runs with: `SPACETIME_DATABASE_OPEN_WAIT_MS`, else the default. */
export function databaseOpenWaitMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_DATABASE_OPEN_WAIT_MS', databaseOpenWaitMsDefault, env);
}
/** undici's (Node's fetch) default wait for a response's headers. */
const httpClientResponseTimeoutMsTypical = 300_000;
assertLimit(databaseOpenWaitMsDefault < httpClientResponseTimeoutMsTypical,
  'a request waiting for an opening database is answered before a typical HTTP client gives up on it');

// ---- Server memory (issue 12 item 5) -------------------------------------------------------------------------------
// Rows live off the JS heap (row store pages), so a server's capacity ends at the machine's memory, not at Node's heap
// limit: without a bound, one client that inserts rows (or publishes databases) long enough gets the whole process
// killed by the kernel's OOM killer, every database with it, and a restart that loads the same rows dies again. Past
// the bound, work that adds memory is refused with an error naming it, and everything else goes on (host/memory-guard.ts).

/**
 * The share of the memory this process may use (its cgroup's limit when it has one, else the machine's) that the
 * server's resident set may reach before it refuses transactions that add rows, new databases and module updates.
 * The rest is headroom for what is in flight when the bound is crossed: up to one `txWriteBytesMax` transaction per
 * database thread, sampled every `serverMemorySampleMs`, and garbage not yet collected.
 */
export const serverMemoryShareMax = 0.75;
/**
 * A module heap larger than this is given back (its isolate replaced before the next call, module globals reset)
 * while the server is at its memory bound: each admitted database's module may grow to its own memory limit, so the
 * bound on new work alone does not stop 90 databases of 250 MiB heaps. A module's heap after loading the official
 * library is ~10-20 MiB, so only modules that keep large JS state lose it.
 */
export const moduleHeapShedMinBytes = 64 * 1024 * 1024;
/** How often the main thread samples the process's resident set (one /proc read, ~10 µs). */
export const serverMemorySampleMs = 100;
/**
 * The bound this server runs with, in MiB: `SPACETIME_SERVER_MEMORY_MAX_MIB` (0: no bound), else `serverMemoryShareMax`
 * of `availableMemoryBytes`.
 */
export function serverMemoryMaxMibConfigured(availableMemoryBytes: number, env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_SERVER_MEMORY_MAX_MIB', Math.floor((availableMemoryBytes * serverMemoryShareMax) / 1048576), env);
}
assertLimit(serverMemoryShareMax > 0 && serverMemoryShareMax < 1, 'the server keeps headroom below the memory it may use');
assertLimit(serverMemorySampleMs <= 1000, 'a crossing of the bound is seen within a second');
assertLimit(fileDescriptorsReserved >= pgConnectionsMax + 3 * databasesMaxDefault,
  'the descriptors kept from connections hold every database\'s files and every PostgreSQL connection');
assertLimit(moduleHeapShedMinBytes < moduleMemoryLimitMibDefault * 1048576, 'a module at its default memory limit is shed');

// ---- Bytes received and not yet handled (session 9 attack probes) --------------------------------------------------
// Each connection's input is bounded on its own (an HTTP body by its route's limit, up to 64 MiB for a program; a
// WebSocket message by ws's maxPayload, 32 MiB), but 20 connections each sending most of a 60 MiB publish body or a
// 30 MiB WebSocket frame and never finishing grew the server by 600 MiB, and the connections bound admits 10,000.
// server/inbound-budget.ts holds the sum.

/**
 * Bytes of request bodies being read or handled, WebSocket messages received in part, and WebSocket messages queued
 * or in a database's queue, over every connection. Past it the connections holding the most are closed (HTTP 503,
 * WebSocket 1013) until the rest fits. 512 MiB: four 64 MiB publishes and eight 32 MiB messages at once, and far
 * below the headroom `serverMemoryShareMax` leaves on a machine of a few GiB.
 */
export const inboundBytesHeldMaxDefault = 512 * 1024 * 1024;
/** The bound this server runs with: `SPACETIME_INBOUND_BYTES_HELD_MAX` (tests), else the default. */
export function inboundBytesHeldMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_INBOUND_BYTES_HELD_MAX', inboundBytesHeldMaxDefault, env);
}
/**
 * Bytes of one WebSocket connection's messages decoded and not yet handled (queued, or calls sent to its database's
 * worker and not yet run) above which its socket is not read until they are handled: backpressure, not an error, so a
 * client pipelining calls is slowed to the pace of its database (it is read again at half this). A larger single
 * message is still handled; the socket is read again once it was.
 */
export const inboundQueueBytesPerConnectionMax = 4 * 1024 * 1024;
/**
 * The same, counted in messages: a client sending small queries in a burst is slowed, not closed at
 * `inboundQueueMaxMessages` (16,384, server/websocket/session.ts), which then only one v3 frame of that many can reach.
 */
export const inboundQueueMessagesPerConnectionMax = 1024;
/**
 * Subscribe, Unsubscribe and OneOffQuery messages of one connection handed to its database (in a worker: posted to
 * its thread) and not yet answered; the next waits for an answer, and messages behind it meet the queue bounds above.
 * Without it a client sending one-off queries in a loop piled them up in the worker's queue (160,000 in 4 s: +700 MiB,
 * none answered meanwhile). 64 keeps a client's pipelined queries overlapping the hop to the worker (~50 µs each).
 */
export const queriesInFlightPerConnectionMax = 64;
/**
 * Subscription requests (Subscribe, Unsubscribe, OneOffQuery) the WebSocket connections of one remote address have
 * handed to one database and not yet had answered; the next waits on the main thread, in arrival order among that
 * address's connections, for an answer (server/websocket/query-gate.ts; the database owner's connections are not
 * counted). A database's worker takes held-back requests one connection at a time, so 200 anonymous connections of one
 * host each with a slow one-off query held 200 turns ahead of every other client's request (session 12 attack probe).
 */
export const queriesInFlightPerAddressMax = 8;
assertLimit(queriesInFlightPerAddressMax <= queriesInFlightPerConnectionMax, "an address's share is at most one connection's");
/**
 * Bytes of subscription answers (Subscribe, Unsubscribe, OneOffQuery) a database's worker makes in one turn before it
 * sends them and lets the main thread's messages in; it stops sooner once those requests ran `queryMessagesSliceMs`.
 * The requests behind wait in arrival order, and a connection's that closed meanwhile are dropped unrun (its
 * subRemove comes in between). Without it one turn ran every query the worker had read: a connection that pipelined
 * 60 one-off queries of a 40 MB answer and never read had all 60 run and ~2.4 GiB sent to the main thread after
 * `outboundQueueMaxBytes` had closed it.
 */
export const workerQueryAnswerBytesPerTurnMax = 8 * 1024 * 1024;
/**
 * How long a connection whose request took a worker's turn (`queryMessagesSliceMs` or more) waits before its next runs,
 * at most (as long as the request ran, up to this), while other connections' requests run (host/worker/backlog.ts).
 * Long enough for another client's next hop to cross (a reply to the main thread and the next request back); short
 * enough that a lone connection's slow queries keep most of the thread (1.5 s queries: 97 %).
 */
export const backlogLaneRestMsMax = 50;
assertLimit(backlogLaneRestMsMax <= queryMessagesSliceMs, 'a lone connection\'s slow requests keep at least half the thread');
assertLimit(workerQueryAnswerBytesPerTurnMax < outboundQueueMaxBytes,
  'a worker sends a turn of answers well before they alone could pass a connection\'s queue bound, so its close is seen');
/**
 * Time a new HTTP connection may stay open without sending a byte; then it is closed. Node's headers timeout starts
 * only at a connection's first byte, so 50 raw sockets that never sent were still open after 100 s, and 10,000 of them
 * (the connections bound) would have refused every other client for as long as the attacker liked. 10 s, as
 * `pgStartupTimeoutMsDefault`: a client connects to send at once (a browser's preconnected socket is reopened).
 */
export const connectionSilentTimeoutMsDefault = 10_000;
/** The limit this server runs with: `SPACETIME_CONNECTION_SILENT_TIMEOUT_MS` (tests), else the default. */
export function connectionSilentTimeoutMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_CONNECTION_SILENT_TIMEOUT_MS', connectionSilentTimeoutMsDefault, env);
}

/**
 * Characters of one name in a module's definition (tables, columns, indexes, constraints, sequences, reducers,
 * procedures, views, their parameters, types), checked when a new module is loaded; RLS SQL and HTTP route paths are
 * not names. The server converts names' case (upstream's convert_case) on its main thread at ~0.2 µs a character: a
 * module with 4 MB names held that thread 8 s at publish (a ping timed out) and grew the server by 800 MiB. PostgreSQL
 * allows 63 bytes; 1,024 is far above any identifier a person writes.
 */
export const moduleNameCharsMax = 1024;
assertLimit(inboundBytesHeldMaxDefault >= 4 * 64 * 1024 * 1024, 'four programs as large as the HTTP body limit (64 MiB) upload at once');
assertLimit(inboundQueueBytesPerConnectionMax * 64 <= inboundBytesHeldMaxDefault, 'dozens of busy connections fit the budget');
assertLimit(connectionSilentTimeoutMsDefault <= httpHeadersTimeoutMsMin, 'a connection that sends nothing goes no later than one that sends headers too slowly');

// ---- Half-open connections (session 10 attack probes) ---------------------------------------------------------------
// A connection that has not finished its handshake (HTTP: no complete request yet, or idle between requests; pgwire:
// not authenticated) costs its sender one socket and the server one place of its connection bound. 10,000 slowloris
// connections (headers one byte a second) from one address held all `connectionsMaxDefault` places and refused everyone
// until Node's headers timeout (60 s); 256 idle pgwire sockets refused every PostgreSQL client for
// `pgStartupTimeoutMsDefault`, again and again. server/half-open.ts counts them per remote address: when a bound is
// full, a newcomer takes the place of the oldest half-open connection of the address holding the most, if it holds
// more than its share below. Nothing is refused for being half-open, so a burst from one address is never hurt.

/**
 * HTTP connections of one remote address that have not sent a complete request (or wait idle for their next one) beyond
 * which, when `connectionsMax` is full, its oldest is closed to make room (503 naming this limit). A browser keeps ~6
 * per origin and a proxy a pool of tens; 256 leaves ~97 % of the default bound to everyone else.
 */
export const connectionsHalfOpenPerAddressMaxDefault = 256;
/** The share this server runs with: `SPACETIME_CONNECTIONS_HALF_OPEN_PER_ADDRESS_MAX` (tests), else the default. */
export function connectionsHalfOpenPerAddressMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_CONNECTIONS_HALF_OPEN_PER_ADDRESS_MAX', connectionsHalfOpenPerAddressMaxDefault, env);
}
/** PostgreSQL connections of one remote address not yet authenticated, beyond which the same happens at `pgConnectionsMax`. */
export const pgConnectionsUnauthenticatedPerAddressMax = 64;
/**
 * A half-open connection younger than this is never closed to make room: a client's handshake takes milliseconds (a
 * burst of hundreds of WebSockets from one address handshakes within ~0.1 s here), a slow sender's lasts seconds.
 */
export const connectionHalfOpenEvictableAfterMs = 2_000;
assertLimit(connectionsHalfOpenPerAddressMaxDefault * 4 <= connectionsMaxDefault, 'one address\'s half-open connections leave most of the bound to others');
assertLimit(pgConnectionsUnauthenticatedPerAddressMax * 4 <= pgConnectionsMax, 'one address\'s unauthenticated connections leave most of the bound to others');
assertLimit(connectionHalfOpenEvictableAfterMs < connectionSilentTimeoutMsDefault && connectionHalfOpenEvictableAfterMs < pgStartupTimeoutMsDefault,
  'a half-open connection may be displaced before its own timeout would have ended it');

// ---- Program size (session 10 attack probes) ------------------------------------------------------------------------
/**
 * Bytes of a module's program (its bundled JavaScript) at publish, update, pre-publish and reset: a larger body is
 * refused with 413 naming its size and this limit, before anything is stored. A program costs the server 9-17 times
 * its size while it runs (copies on the main thread, in its worker, its isolate's source and compiled code, the log
 * record): measured with a comment appended to a 1.1 MB bundle, 8 MB +142 MiB RSS, 16 MB +216 MiB, 32 MB +277 MiB,
 * 60 MB +605 MiB (and 9.9 s to publish). Real bundles, inline source map included, are 1.1-2.1 MB (our fixtures and
 * templates, 2026-12); 16 MiB leaves them ~8 times the room.
 */
export const programBytesMax = 16 * 1024 * 1024;
assertLimit(programBytesMax * 4 <= programRecordMaxBytes, 'a program at the limit leaves its Program record room for a large definition');
assertLimit(programBytesMax * 4 <= inboundBytesHeldMaxDefault, 'several publishes at the limit upload at once within the inbound bound');
/**
 * A request body declared larger than its route's limit (a program over `programBytesMax`, SQL over 1 MiB) but not
 * larger than this is read and dropped before the 413 is sent: the client is still sending, and a connection cut under
 * it made `fetch` (and so `spacetime publish`) fail with no message. Dropped bytes are not held; a larger declared
 * body is answered and cut at once. 64 MiB: what the server took as a program before `programBytesMax`.
 */
export const requestBodyDrainBytesMax = 64 * 1024 * 1024;
assertLimit(programBytesMax < requestBodyDrainBytesMax, 'a program somewhat over its limit gets the 413, not a reset');

// ---- Bytes answered and not yet read (session 11 attack probes) ----------------------------------------------------
// Each answer is bounded on its own (a query's rows by `sqlResultBytesMax`, a WebSocket client's queue by
// `outboundQueueMaxBytes`), but not the sum over connections: 40 HTTP clients asking `SELECT *` of a 40 MB table and
// never reading held +1.7 GiB for as long as they stayed connected (Node keeps what the kernel has not taken), 20
// pgwire clients +740 MiB, 20 v1.json clients +2.2 GiB; a few hundred such sockets hold the server at its memory bound,
// where every database refuses new rows. server/outbound-budget.ts holds the sum.

/**
 * Bytes of HTTP responses, PostgreSQL answers and WebSocket messages written or queued for clients and not yet taken by
 * their sockets, over every connection. Past it the connections holding the most are closed (HTTP and pgwire: the
 * connection is cut, as nothing more can be said on it; WebSocket: 1013 naming this limit) until the rest fits. 512 MiB:
 * ten answers at `sqlResultBytesMax` rendered as JSON, or eight WebSocket clients at `outboundQueueMaxBytes`.
 */
export const outboundBytesHeldMaxDefault = 512 * 1024 * 1024;
/** The bound this server runs with: `SPACETIME_OUTBOUND_BYTES_HELD_MAX` (tests), else the default. */
export function outboundBytesHeldMaxConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_OUTBOUND_BYTES_HELD_MAX', outboundBytesHeldMaxDefault, env);
}
/**
 * The stall rule of `outboundStallTimeoutMs`, applied by the outbound bound to every connection holding unsent bytes
 * (HTTP, pgwire, both WebSocket protocols): `SPACETIME_OUTBOUND_STALL_TIMEOUT_MS` (tests), else that limit.
 */
export function outboundStallTimeoutMsConfigured(env: NodeJS.ProcessEnv = process.env): number {
  return limitFromEnv('SPACETIME_OUTBOUND_STALL_TIMEOUT_MS', outboundStallTimeoutMs, env);
}
/**
 * What waits for a WebSocket client below this is not charged to the bound until it grows past it: a message handed to
 * its socket at once (the fanout's common case, per message and subscriber) then costs one comparison. At most
 * `connectionsMaxDefault` × this (320 MiB, asserted below the bound itself) goes uncounted, and each client's own rules
 * (`outboundQueueMaxBytes`, its stall check) still hold it.
 */
export const outboundBudgetChargeMinBytes = 32 * 1024;
assertLimit(connectionsMaxDefault * outboundBudgetChargeMinBytes <= outboundBytesHeldMaxDefault,
  'what every connection may hold uncharged stays below the outbound bound');
/** How often the bound looks again at the connections holding unsent bytes (the kernel takes bytes silently). */
export const outboundBudgetSweepMs = 1_000;
assertLimit(outboundBytesHeldMaxDefault >= 8 * outboundQueueMaxBytes, 'several slow WebSocket clients at their own limit fit the bound');
assertLimit(outboundBytesHeldMaxDefault >= 8 * sqlResultBytesMax, 'several large query answers are read at once within the bound');
assertLimit(outboundBudgetSweepMs * 5 <= outboundStallTimeoutMs, 'a stall is seen within a fraction of its timeout');

/**
 * POST /sql and pgwire queries of one database handed to it and not yet answered; more wait on the main thread in
 * arrival order, and one whose client is gone when its turn comes is not run (server/routes/database.ts). Session 12
 * probe: 200 HTTP connections each asking `SELECT *` of a 40 MB table and never reading: all 200 reached the database's
 * worker before the first answer; their results held at once exhausted its heap (the worker died), and once answers were
 * sent in turns the main thread peaked at 8 GiB of answers for clients the outbound bound had cut.
 */
export const sqlRequestsInFlightPerDatabaseMax = 4;
assertLimit(sqlRequestsInFlightPerDatabaseMax * sqlResultBytesMax <= outboundBytesHeldMaxDefault,
  'the answers one database may be making at once fit the server\'s bound on answers not yet read');
