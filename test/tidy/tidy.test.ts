// tidy.test.ts — the house rules as a test (style.md "House rules as a test", after TigerBeetle's tidy.zig). Reads
// src/**/*.ts as text (test/tidy/source.ts parses it; nothing is run) and fails on: imports that break the layer table
// in ARCHITECTURE.md or make a runtime import cycle, files without an "Owns / May call" header or importing a file
// their header does not name, functions over 70 lines, `as unknown as`, exported names declared in two files, and
// exported code that only tests (or nobody) use. What exists today is listed below, each with a reason, so the lists
// only shrink: an entry that no longer matches anything fails too (delete it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadSources, repoRoot, type SourceFile } from './source.js';

const files = loadSources();
const byRel = new Map(files.map((f) => [f.rel, f]));

/** Fails listing every finding not in `allowed`, and every allow-list entry that matched nothing (stale). */
function assertOnlyAllowed(rule: string, findings: Map<string, string>, allowed: Record<string, unknown>): void {
  const unexpected = [...findings].filter(([key]) => !(key in allowed)).map(([key, detail]) => `  ${key}${detail ? ` — ${detail}` : ''}`);
  const stale = Object.keys(allowed).filter((key) => !findings.has(key)).map((key) => `  ${key}`);
  const message = [
    unexpected.length ? `${rule}: new findings (fix them, or allow-list one with a one-line reason):\n${unexpected.join('\n')}` : '',
    stale.length ? `${rule}: allow-list entries that match nothing any more (delete them):\n${stale.join('\n')}` : '',
  ].filter(Boolean).join('\n');
  assert.equal(message, '', message);
}

const layerOf = (rel: string): string => rel.split('/')[0];

// ---- 1. Layers ------------------------------------------------------------------------------------------------------
// The ARCHITECTURE.md "Layers" table, made exact: an entry is a layer (any file in it) or one file. The test checks
// that the table below names the same layers per row as ARCHITECTURE.md, in the same (downward) order. limits.ts sits
// beside the layers: every layer may import it and it imports nothing.
const mayImport: Record<string, string[]> = {
  testing: ['host', 'datastore', 'sats'],
  cli: [
    'server/main.ts', 'server/config-file.ts', 'server/routes/login.ts', // `start`: the server, its config keys, OIDC flags
    'host', 'subscription/messages.ts', 'datastore/schema.ts', 'datastore/types.ts', 'sql/execute.ts', 'sats',
  ],
  server: ['auth', 'host', 'subscription', 'sql', 'sats', 'metrics'],
  auth: ['sats'],
  host: ['subscription', 'sql', 'datastore', 'durability', 'sats', 'metrics'],
  subscription: ['sql', 'datastore', 'sats'],
  sql: ['datastore', 'sats'],
  datastore: ['durability', 'sats'],
  durability: ['sats', 'metrics'],
  sats: [],
  metrics: [],
  'limits.ts': [],
};
const everyLayerMayImport = ['limits.ts'];

/** Imports across layers that the table does not allow; each needs a design decision before it can go. */
const layerExceptions: Record<string, string> = {
  'cli/backup.ts -> durability/backup.ts': '`spacetime backup`/`restore` check the container format on the client side',
  'cli/main.ts -> durability/inspect.ts': 'offline commit log inspection reads the files directly, no server involved',
  'testing/index.ts -> cli/build.ts': 'createTestDatabase bundles the module the way `spacetime build` does',
  'host/worker/proxy.ts -> server/host-api.ts': 'WorkerDatabase implements the HostedDatabase seam, which server/ declares',
  'server/host-api.ts -> datastore/types.ts': 'the seam passes TxData/schema types through (datastore contract, types only)',
  'server/websocket/json-session.ts -> datastore/types.ts': 'reads TxData rows of a commit event (types only)',
  'server/databases.ts -> durability/backup.ts': 'backup/restore routes write and read the container; no host API for it yet',
};

function parseArchitectureLayers(): { layer: string; mayImport: Set<string> }[] {
  const text = readFileSync(path.join(repoRoot, 'ARCHITECTURE.md'), 'utf8');
  const section = text.split(/^## /m).find((s) => s.startsWith('Layers'));
  assert.ok(section, 'ARCHITECTURE.md has no "## Layers" section');
  const rows = section.split('\n').filter((line) => /^\| `[^`]+` \|/.test(line));
  const names = rows.map((row) => row.split('|')[1].trim().replace(/`/g, '').replace(/\/$/, ''));
  return rows.map((row, i) => {
    const cell = row.split('|')[3];
    const named = names.filter((name) => new RegExp(`(^|[^\\w.-])${name.replace('.', '\\.')}($|[^\\w-])`).test(cell));
    return { layer: names[i], mayImport: new Set(named) };
  });
}

test('layers: the table here agrees with ARCHITECTURE.md and points downward', () => {
  const documented = parseArchitectureLayers();
  assert.deepEqual(documented.map((row) => row.layer), Object.keys(mayImport), 'same layers in the same order');
  for (const row of documented) {
    const here = new Set(mayImport[row.layer].map(layerOf));
    assert.deepEqual([...here].sort(), [...row.mayImport].sort(), `layer ${row.layer}: ARCHITECTURE.md names other layers`);
    const order = Object.keys(mayImport);
    for (const below of here) {
      assert.ok(order.indexOf(below) > order.indexOf(row.layer), `${row.layer} may import ${below}, which is above it`);
    }
  }
  const srcLayers = new Set(files.map((f) => layerOf(f.rel)));
  assert.deepEqual([...srcLayers].filter((l) => !(l in mayImport)), [], 'every folder of src/ is a layer in the table');
});

test('layers: every relative import goes down or sideways as the table allows', () => {
  const findings = new Map<string, string>();
  for (const file of files) {
    const from = layerOf(file.rel);
    for (const edge of file.imports) {
      const to = layerOf(edge.target);
      if (to === from || everyLayerMayImport.includes(edge.target)) continue;
      const allowed = (mayImport[from] ?? []).some((entry) => entry === to || entry === edge.target);
      if (!allowed) findings.set(`${file.rel} -> ${edge.target}`, `line ${edge.line}`);
    }
  }
  for (const file of files) {
    const unresolved = file.imports.filter((edge) => !byRel.has(edge.target));
    assert.deepEqual(unresolved.map((e) => e.target), [], `${file.rel} imports files that do not exist`);
  }
  assertOnlyAllowed('layer table', findings, layerExceptions);
});

/** Strongly connected components of the runtime import graph (type-only imports are erased, so they do not count). */
function runtimeImportCycles(): string[][] {
  const next = new Map(files.map((f) => [f.rel, f.imports.filter((e) => !e.typeOnly).map((e) => e.target)]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop(); ; w = stack.pop()) {
      component.push(w!);
      if (w === v) break;
    }
    if (component.length > 1) cycles.push(component.sort());
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

test('layers: no runtime import cycles (within a layer, sideways imports still form a tree)', () => {
  assert.deepEqual(runtimeImportCycles(), []);
});

// ---- 2. Headers -----------------------------------------------------------------------------------------------------
/** Cross-layer imports the importing file's header does not name; those files are being edited by other work. */
const headerImportExceptions: Record<string, string> = {
  'host/database.ts -> subscription/manager.ts': 'header to be updated by the work editing host/database.ts now',
  'host/worker/protocol.ts -> datastore/migrate.ts': 'header to be updated with the worker work (helper P)',
  'host/worker/protocol.ts -> subscription/manager.ts': 'header to be updated with the worker work (helper P)',
  'host/worker/proxy.ts -> server/host-api.ts': 'header to be updated with the worker work (helper P)',
  'server/host-api.ts -> subscription/manager.ts': 'header to be updated with the worker work (helper P)',
  'server/host-api.ts -> subscription/port.ts': 'header to be updated with the worker work (helper P)',
  'server/main.ts -> subscription/manager.ts': 'header to be updated by the work editing server/main.ts now',
  'server/host-api.ts -> host/module-log.ts': 'header to be updated with the worker work (helper P)',
  'server/websocket/attach.ts -> subscription/manager.ts': 'header to be updated with the WebSocket work (helper P)',
};

/** A header names an import by its path (`sats/names`), its file name (`names`) or a folder holding it (`sats/`). */
function headerNames(file: SourceFile, target: string): boolean {
  const header = file.header.replace(file.rel, '');
  const stem = target.replace(/\.ts$/, '');
  const parts = stem.split('/');
  const folders = parts.slice(0, -1).map((_, i) => `${parts.slice(0, i + 1).join('/')}/`);
  const word = (s: string) => new RegExp(`(^|[^\\w-])${s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}($|[^\\w-])`).test(header);
  if (word(stem) || word(parts[parts.length - 1]) || folders.some(word)) return true;
  // A whole layer may be named bare in the "May call" paragraph: "May call: sats, datastore (snapshots)".
  const mayCall = /May call\b[^]*?(\n\s*\n|$)/.exec(header)?.[0] ?? '';
  return parts.length > 1 && new RegExp(`(^|[^\\w/-])${parts[0]}($|[^\\w/-])`).test(mayCall);
}

test('headers: every file opens with what it owns and may call, and names what it imports from other layers', () => {
  const missing = files.filter((f) => !/\bOwns\b/.test(f.header) || !/\bMay call\b/.test(f.header)).map((f) => f.rel);
  assert.deepEqual(missing, [], 'files whose opening comment lacks "Owns" or "May call"');
  const findings = new Map<string, string>();
  for (const file of files) {
    for (const edge of file.imports) {
      // Sideways imports within a layer are the file's own business; what it calls in other layers is the contract.
      if (layerOf(edge.target) === layerOf(file.rel)) continue;
      if (!headerNames(file, edge.target)) findings.set(`${file.rel} -> ${edge.target}`, `line ${edge.line}`);
    }
  }
  assertOnlyAllowed('imports the header does not name', findings, headerImportExceptions);
});

// ---- 3. Function length ---------------------------------------------------------------------------------------------
const functionLinesMax = 70;
/** Functions longer than that today, to be split; a new long function fails. */
const longFunctions = new Set([
  'cli/generate/typescript.ts indexFile',
  'cli/main.ts registerServerCommands',
  'cli/main.ts buildProgram',
  'cli/publish.ts publish',
  'cli/subscribe.ts runSubscribe',
  'datastore/schema.ts buildTable',
  'host/database.ts Database.create',
  'host/database.ts Database.update',
  'host/moduledef-v9.ts rawModuleDefV9Json',
  'host/persistence.ts replayFrom',
  'host/syscalls.ts SyscallHost.run',
  'server/main.ts startServer',
  'server/metrics.ts createMetricsRegistry',
  'server/routes/login.ts addLoginRoutes',
  'server/websocket/attach.ts attachWebSocket',
  'server/websocket/attach.ts attachWebSocket/accept',
  'sql/lexer.ts tokenize',
  'subscription/manager.ts SubscriptionManager.handleCommit',
]);

test(`functions: none over ${functionLinesMax} lines except those listed`, () => {
  const findings = new Map<string, string>();
  for (const file of files) {
    for (const fn of file.functions) {
      if (fn.lines > functionLinesMax) findings.set(`${file.rel} ${fn.name}`, `${fn.lines} lines at line ${fn.line}`);
    }
  }
  assertOnlyAllowed(`functions over ${functionLinesMax} lines`, findings, Object.fromEntries([...longFunctions].map((k) => [k, ''])));
});

// ---- 4. `as unknown as` ---------------------------------------------------------------------------------------------
/** Casts that skip the type checker, per file: count and why. */
const asUnknownAsAllowed: Record<string, [count: number, reason: string]> = {
  'cli/dev.ts': [1, "fetch's web ReadableStream typed as an async iterable (Node's stream is one; lib.dom types say not)"],
  'cli/main.ts': [3, 'the same stream cast; lossless JSON parsed into its record and SQL result shapes'],
  'datastore/migrate.ts': [1, 'view definitions read from a module definition section typed loosely'],
  'datastore/table.ts': [2, 'String.fromCharCode.apply over a Uint8Array (array-like, typed as number[])'],
  'host/database.ts': [1, 'a module update rewrites readonly fields in place (style.md: to become one swapped reference)'],
  'host/persistence.ts': [2, "recovery reaches the datastore's sequence state, which MutTx does not expose"],
  'sats/moduledef.ts': [1, 'decoded sections assigned by key onto the typed RawModuleDef'],
  'server/routes/login.ts': [1, "a plain object returned where the router's Response type is expected"],
  'server/websocket/json-session.ts': [1, 'commit events from the HostedDatabase seam read with the session view of them'],
  'server/websocket/session.ts': [3, "ws internals: the socket's cork/uncork and drain, not in ws's types"],
  'sql/execute.ts': [1, 'an array that gains the SqlResults extra fields after it is built'],
  'testing/index.ts': [1, "the official library's value classes, which its types do not export"],
};

test('casts: `as unknown as` only where listed, no more often than listed', () => {
  const findings = new Map<string, string>();
  for (const file of files) {
    const count = file.asUnknownAsLines.length;
    if (count === 0) continue;
    const allowedCount = asUnknownAsAllowed[file.rel]?.[0] ?? 0;
    findings.set(file.rel, count === allowedCount ? '' : `${count} (lines ${file.asUnknownAsLines.join(', ')}), ${allowedCount} allowed`);
  }
  const overCount = [...findings].filter(([rel, detail]) => detail !== '' && rel in asUnknownAsAllowed);
  assert.deepEqual(overCount, [], 'files whose count of `as unknown as` changed: update the count, or remove the cast');
  assertOnlyAllowed('`as unknown as`', findings, asUnknownAsAllowed);
});

// ---- 5. Exported names declared twice -------------------------------------------------------------------------------
/** Names exported by two or more files, not as re-exports of one declaration. */
const duplicateExportsAllowed: Record<string, string> = {
  identityToHex: 'auth/identity.ts and sats/identity.ts implement it twice (asserts vs SatsError) — to merge into sats',
  identityFromHex: 'auth/identity.ts returns undefined, sats/identity.ts throws — to merge into sats with one contract',
  connectionIdToHex: 'auth/identity.ts and sats/identity.ts — to merge into sats',
  isIdentityHex: 'auth/identity.ts, sats/identity.ts (accepts 0x) and cli/util.ts — to merge',
  identityFromClaims: 'cli/util.ts returns hex for a saved token, auth/identity.ts the bigint — cli should call auth',
  cliVersion: 'cli/main.ts is our version, cli/generate/typescript.ts the upstream version written into bindings',
  formatDuration: 'cli/repl.ts formats elapsed µs, cli/sqlformat.ts a TimeDuration value',
  formatValue: 'cli/sqlformat.ts formats SQL output, datastore/table.ts values in constraint errors',
  ProtocolError: 'pgwire and the WebSocket protocol each have their own error, used within their own layer',
  queryTextMaxBytes: 'sql/lexer.ts and subscription/manager.ts both 50 000 — manager.ts should import the lexer one',
  ServerConfig: 'cli/config.ts (a cli.toml server entry) and server/config-file.ts (config.toml)',
  SqlStatementResult: 'cli/repl.ts (HTTP JSON), sql/execute.ts (engine result), server/host-api.ts (seam copy)',
  LogRecord: 'durability/commitlog.ts (a log record) and host/module-log.ts (a module log line)',
  Caller: 'server/websocket/session.ts re-declares the host type for its own use',
  ReducerCallResult: 'server/websocket/session.ts re-declares the host type for its own use',
  ProcedureCallResult: 'server/websocket/session.ts re-declares the host type for its own use',
  UpdatePlan: 'host/update.ts (the migration plan) and server/databases.ts (the publish route view of it)',
  SubscriptionPlan: 'sql/subscription-plan.ts (a compiled query) and subscription/manager.ts (its manager entry)',
};

test('exports: no name exported by two files unless listed', () => {
  const owners = new Map<string, string[]>();
  for (const file of files) {
    for (const e of file.exports) owners.set(e.name, [...(owners.get(e.name) ?? []), file.rel]);
  }
  const findings = new Map([...owners].filter(([, where]) => where.length > 1).map(([name, where]) => [name, where.join(', ')]));
  assertOnlyAllowed('exported names declared twice', findings, duplicateExportsAllowed);
});

// ---- 6. Dead exports ------------------------------------------------------------------------------------------------
/** Files whose exports are an API for code outside src/ (package exports, worker entry points). */
const apiFiles = new Set(['testing/index.ts', 'cli/main.ts', 'host/worker/entry.ts', 'host/http-egress-worker.ts']);
/** Exported code that no src file uses, not even its own: kept for tests, with why it is worth keeping. */
const testOnlyExports: Record<string, string> = {
  'cli/generate/extract.ts describeJsFile': 'test/generate reads a bundle the way `generate` does without a server',
  'host/persistence.ts decodeTx': "test/persistence checks encodeTx's round trip; recovery decodes inline",
  'sats/identity.ts identityToHex': 'tests; servers use auth/identity.ts (duplicate, to merge)',
  'sats/identity.ts connectionIdToHex': 'tests; servers use auth/identity.ts (duplicate, to merge)',
  'sats/identity.ts isIdentityHex': 'tests; servers use auth/identity.ts (duplicate, to merge)',
  'sats/identity.ts identityToBytes': 'test/sats/order checks identity ordering by BSATN bytes',
  'sats/identity.ts identityFromBytes': 'test/sats/order checks identity ordering by BSATN bytes',
  'sats/moduledef.ts moduleDefToJson': 'tests compare module definitions as JSON',
  'sats/moduledef.ts encodeRawModuleDef': 'tests build module definitions byte for byte',
  'sats/special.ts isScheduleAt': 'test/sats/order; cli/call.ts and cli/generate keep private copies (to merge)',
  'sats/order.ts compareValues': "ARCHITECTURE.md's SATS order, the reference tests hold datastore/key.ts's compiled keys to",
  'subscription/messages.ts decodeClientFrame': 'the allocating form of decodeClientFrameInto (what sessions use), for tests',
};

test('exports: exported code is used by src/ (tests alone do not keep code alive)', () => {
  const imported = new Set(files.flatMap((f) => f.imports.flatMap((e) => e.names.map((n) => `${e.target} ${n}`))));
  const findings = new Map<string, string>();
  let exportedButLocal = 0;
  for (const file of files) {
    if (apiFiles.has(file.rel) || imported.has(`${file.rel} *`)) continue;
    for (const e of file.exports) {
      if (e.kind === 'type' || imported.has(`${file.rel} ${e.name}`)) continue;
      if ((file.identifierCounts.get(e.name) ?? 0) > 1) exportedButLocal++;
      else findings.set(`${file.rel} ${e.name}`, `line ${e.line}`);
    }
  }
  assertOnlyAllowed('exports no src file uses', findings, testOnlyExports);
  // Exported, used in their own file, imported by no other src file (many are limits and messages tests read):
  // not a failure, but the count is worth watching.
  console.log(`tidy: ${exportedButLocal} exported values are used only in their own file`);
});
