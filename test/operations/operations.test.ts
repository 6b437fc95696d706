// Running it for real (issue 15 items 1, 2, 4): GET /v1/metrics scraped with a real Prometheus text parser while a
// real server process serves reducer calls, commits and a WebSocket subscription; GET /v1/health as upstream;
// <data-dir>/config.toml written at first start, applied ([limits], [websocket], [metrics], [publish]) and refused
// with file, key and reason when bad; who may create databases (flag and file), a clear 403 for everyone else.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import {
  buildFixture, cleanupTempDirs, freePort, makeTempDir, repoRoot, runCli, tempConfigPath,
} from '../harness.js';

const spacetimeJs = path.join(repoRoot, 'bin', 'spacetime.js');

interface Server { url: string; dataDir: string; output(): string; stop(): Promise<void> }

/** `spacetime start` with extra flags on a free loopback port (or `listenHost`); resolves once /v1/ping answers. */
async function start(opts: { dataDir?: string; args?: string[]; listenHost?: string } = {}): Promise<Server> {
  const dataDir = opts.dataDir ?? makeTempDir('stdb-ops-');
  const port = await freePort();
  const host = opts.listenHost ?? '127.0.0.1';
  const child = spawn(process.execPath, [spacetimeJs, '--config-path', tempConfigPath(), 'start', '--listen-addr', `${host}:${port}`,
    '--data-dir', dataDir, ...(opts.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${log}`);
    const ok = await fetch(`${url}/v1/ping`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (i > 300) throw new Error(`server not ready:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, dataDir, output: () => log, stop: () => stop(child) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** `spacetime start` that must refuse to start; resolves with its exit code and output. */
async function startRefused(dataDir: string, args: string[] = []): Promise<{ code: number; output: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [spacetimeJs, '--config-path', tempConfigPath(), 'start', '--listen-addr', `127.0.0.1:${port}`,
    '--data-dir', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? -1)));
  clearTimeout(timer);
  return { code, output };
}

interface Sample { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }
interface Family { name: string; type: string; metrics: Sample[] }

/** The scrape parsed by the real parser (it throws on an invalid line), with the raw text beside it. */
async function scrape(url: string): Promise<Map<string, Family> & { text?: string }> {
  const res = await fetch(`${url}/v1/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = parsePrometheusTextFormat(text) as Family[];
  return Object.assign(new Map(families.map((f) => [f.name, f])), { text });
}

/**
 * One series of a labelled histogram (`_count` / `_sum` / `_bucket`). parse-prometheus-text-format merges all series of
 * a histogram into one and drops their labels, so these lines are read from the text it has already validated.
 */
function histogramSeries(m: { text?: string }, name: string, labels: Record<string, string>): { count: number; sum: number; inf: number } {
  const read = (suffix: string, extra = ''): number => {
    const line = m.text!.split('\n').find((l) => l.startsWith(`${name}${suffix}{`) &&
      Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)) && l.includes(extra));
    return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  return { count: read('_count'), sum: read('_sum'), inf: read('_bucket', 'le="+Inf"') };
}

/** The sample of `name` whose labels include `labels` (a number), or undefined. */
function sample(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample | undefined {
  return families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
}
function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const s = sample(families, name, labels);
  return s?.value === undefined ? undefined : Number(s.value);
}

async function publish(url: string, name: string, program: string, token?: string): Promise<{ status: number; text: string; identity?: string }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/v1/database/${name}`, { method: 'PUT', headers, body: program });
  const text = await res.text();
  const identity = res.status === 200 ? (JSON.parse(text) as { Success: { database_identity: string } }).Success.database_identity : undefined;
  return { status: res.status, text, identity };
}

async function mint(url: string): Promise<{ identity: string; token: string }> {
  const res = await fetch(`${url}/v1/identity`, { method: 'POST' });
  return (await res.json()) as { identity: string; token: string };
}

async function call(url: string, db: string, reducer: string, args: unknown[]): Promise<number> {
  const res = await fetch(`${url}/v1/database/${db}/call/${reducer}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args),
  });
  await res.text();
  return res.status;
}

let keynote: string;
before(async () => { keynote = (await buildFixture('keynote')).code; });
after(() => cleanupTempDirs());

describe('GET /v1/metrics and /v1/health', () => {
  let server: Server;
  before(async () => { server = await start(); });
  after(async () => { await server?.stop(); });

  test('health answers as upstream: 200 JSON with package_name, version, nodes, schedulable', async () => {
    for (const p of ['/v1/health', '/health']) {
      const res = await fetch(`${server.url}${p}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(body).sort(), ['nodes', 'package_name', 'schedulable', 'version']);
      assert.equal(body.schedulable, true);
      assert.equal(typeof body.version, 'string');
    }
  });

  test('a scrape parses, and reducer, commit, commit-log, table, heap and WebSocket numbers move after calls', async () => {
    const pub = await publish(server.url, 'bank', keynote);
    assert.equal(pub.status, 200, pub.text);
    const db = { database_identity: pub.identity! };
    const before = await scrape(server.url);
    assert.equal(value(before, 'spacetime_databases'), 1);
    assert.ok(before.has('process_resident_memory_bytes'), 'prom-client process metrics are served');
    const txBefore = value(before, 'spacetime_transactions_total', db) ?? 0;
    const bytesBefore = value(before, 'spacetime_commitlog_bytes_written_total', db) ?? 0;
    assert.equal(value(before, 'spacetime_table_rows', { ...db, table: 'accounts' }), 0);

    assert.equal(await call(server.url, 'bank', 'seed', [10, 1000]), 200);
    for (let i = 0; i < 3; i++) assert.equal(await call(server.url, 'bank', 'transfer', [1, 2, 10]), 200);
    assert.notEqual(await call(server.url, 'bank', 'transfer', [1, 2, 1_000_000]), 200); // insufficient_funds

    // A WebSocket client (`spacetime subscribe` speaks the binary protocol): messages both ways, a live query.
    const configPath = tempConfigPath();
    const sub = runCli(['subscribe', '-s', server.url, 'bank', 'SELECT * FROM accounts', '--num-updates', '1', '--timeout', '20'],
      { configPath, input: '' });
    const watcher = (async () => {
      for (let i = 0; i < 100; i++) {
        const m = await scrape(server.url);
        // Connected first, subscribed a moment later: wait for both.
        if ((value(m, 'spacetime_worker_connected_clients', db) ?? 0) >= 1 && (value(m, 'spacetime_subscription_queries', db) ?? 0) >= 1) return m;
        await new Promise((r) => setTimeout(r, 100));
      }
      return undefined;
    })();
    const during = await watcher;
    assert.ok(during !== undefined, 'a connected client shows in spacetime_worker_connected_clients, its query in spacetime_subscription_queries');
    assert.equal(await call(server.url, 'bank', 'transfer', [3, 4, 1]), 200); // the update the subscriber waits for
    const subscribed = await sub;
    assert.equal(subscribed.code, 0, subscribed.stderr);

    const m = await scrape(server.url);
    const calls = (reducer: string) => value(m, 'spacetime_reducer_calls_total', { ...db, reducer });
    assert.equal(calls('seed'), 1);
    assert.equal(calls('transfer'), 5);
    assert.equal(value(m, 'spacetime_reducer_errors_total', { ...db, reducer: 'transfer' }), 1);
    assert.equal(value(m, 'spacetime_reducer_errors_total', { ...db, reducer: 'seed' }), 0);
    assert.equal(m.get('spacetime_reducer_duration_seconds')?.type, 'HISTOGRAM');
    const duration = histogramSeries(m, 'spacetime_reducer_duration_seconds', { ...db, reducer: 'transfer' });
    assert.equal(duration.count, 5);
    assert.equal(duration.inf, 5);
    assert.ok(duration.sum > 0);
    assert.equal(histogramSeries(m, 'spacetime_reducer_duration_seconds', { ...db, reducer: 'seed' }).count, 1);
    // seed + 4 committed transfers, plus the subscriber's connect/disconnect lifecycle commits.
    assert.ok(value(m, 'spacetime_transactions_total', db)! >= txBefore + 5);
    assert.ok(value(m, 'spacetime_commitlog_bytes_written_total', db)! > bytesBefore);
    const fsync = histogramSeries(m, 'spacetime_commitlog_fsync_seconds', db);
    assert.ok(fsync.count >= 1 && fsync.inf === fsync.count, 'fsync latencies are observed (durability fsync by default)');
    assert.equal(value(m, 'spacetime_table_rows', { ...db, table: 'accounts' }), 10);
    assert.ok(value(m, 'spacetime_worker_v8_used_heap_size_bytes', db)! > 100_000);
    assert.ok(value(m, 'spacetime_websocket_messages_received_total')! >= 1);
    assert.ok(value(m, 'spacetime_websocket_messages_sent_total')! >= 3); // InitialConnection, SubscribeApplied, update
    assert.ok(value(m, 'spacetime_websocket_sent_bytes_total')! > 0);
    assert.equal(value(m, 'spacetime_worker_connected_clients', db), 0);
  });
});

describe('config.toml', () => {
  test('written at first start with every section; start --help lists the keys', async () => {
    const server = await start();
    try {
      const text = readFileSync(path.join(server.dataDir, 'config.toml'), 'utf8');
      for (const section of ['[certificate-authority]', '[logs]', '[module-http]', '[websocket]', '[commitlog]', '[limits]', '[publish]', '[metrics]']) {
        assert.ok(text.includes(section), section);
      }
    } finally {
      await server.stop();
    }
    const help = await runCli(['start', '--help'], { configPath: tempConfigPath() });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /config\.toml/);
    assert.match(help.stdout, /reducer-timeout-ms/);
    assert.match(help.stdout, /idle-timeout/);
    assert.match(help.stdout, /--allow-publish/);
  });

  const refusals: [string, string, RegExp][] = [
    ['unknown key', '[websocket]\nidle-timeot = "10s"\n', /\[websocket\] idle-timeot: unknown key/],
    ['unknown section', '[websockets]\n', /\[websockets\]: unknown section/],
    ['bad duration', '[websocket]\nping-interval = "soon"\n', /\[websocket\] ping-interval: must be a duration/],
    ['relation', '[websocket]\nping-interval = "40s"\n', /\[websocket\] idle-timeout: must be greater than ping-interval/],
    ['negative limit', '[limits]\nreducer-timeout-ms = -1\n', /\[limits\] reducer-timeout-ms: must be a non-negative integer/],
    ['limit relation', '[limits]\nmodule-memory-limit-mib = 4\n', /\[limits\] module-memory-limit-mib: .*at least 8/],
    ['no connections', '[limits]\nconnections-max = 0\n', /\[limits\] connections-max: .*at least 1/],
    ['unsupported security setting', '[module-http]\nenabled = false\n', /\[module-http\] enabled: false is not supported/],
    ['bad publish entry', '[publish]\nallow = ["bob"]\n', /\[publish\] allow: `bob` is not/],
    ['not TOML', 'this is = = not toml', /\(file\): not valid TOML/],
  ];
  for (const [what, body, expected] of refusals) {
    test(`a bad file is refused at start with file, key and reason: ${what}`, async () => {
      const dataDir = makeTempDir('stdb-ops-');
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(path.join(dataDir, 'config.toml'), body);
      const { code, output } = await startRefused(dataDir);
      assert.equal(code, 1, output);
      assert.ok(output.includes(path.join(dataDir, 'config.toml')), output);
      assert.match(output, expected);
      assert.doesNotMatch(output, /Starting SpacetimeDB listening/);
    });
  }

  test('[limits], [websocket] and [metrics] are applied; upstream-only keys are accepted', async () => {
    const dataDir = makeTempDir('stdb-ops-');
    writeFileSync(path.join(dataDir, 'config.toml'), [
      '[logs]', 'level = "info"', 'directives = ["spacetimedb=debug"]',
      '[commitlog]', 'max-segment-size = 1048576', 'write-buffer-size = 131072',
      '[websocket]', 'ping-interval = "1s"', 'idle-timeout = "2s"',
      '[limits]', 'tx-write-bytes-max = 200',
      '[metrics]', 'enabled = false', '',
    ].join('\n'));
    const server = await start({ dataDir });
    try {
      assert.equal((await fetch(`${server.url}/v1/metrics`)).status, 404);
      assert.equal((await fetch(`${server.url}/v1/health`)).status, 200);
      assert.equal((await publish(server.url, 'small', keynote)).status, 200);
      // 10 rows × (12 bytes + overhead) is over 200 bytes: the transaction limit from the file refuses it.
      const res = await fetch(`${server.url}/v1/database/small/call/seed`, { method: 'POST', body: '[10, 5]', headers: { 'content-type': 'application/json' } });
      const text = await res.text();
      assert.notEqual(res.status, 200);
      assert.match(text, /txWriteBytesMax|transaction/i);
      assert.equal(await call(server.url, 'small', 'seed', [1, 5]), 200);
    } finally {
      await server.stop();
    }
  });
});

describe('who may create databases', () => {
  test('--allow-publish <identity>: the listed identity creates, anyone else gets 403 and owners still update', async () => {
    const keysDir = makeTempDir('stdb-ops-');
    // Mint the allowed identity from a first run with the same data dir (same signing keys).
    const first = await start({ dataDir: keysDir });
    const allowed = await mint(first.url);
    const other = await mint(first.url);
    await first.stop();

    const server = await start({ dataDir: keysDir, args: ['--allow-publish', allowed.identity] });
    try {
      const refused = await publish(server.url, 'theirs', keynote, other.token);
      assert.equal(refused.status, 403);
      assert.match(refused.text, new RegExp(`Identity ${other.identity} may not create databases`));
      assert.match(refused.text, /--allow-publish|\[publish\] allow/);
      const anonymous = await publish(server.url, 'anon', keynote);
      assert.equal(anonymous.status, 403, 'a request without a token gets a fresh identity, which is not listed');
      const ok = await publish(server.url, 'mine', keynote, allowed.token);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(await call(server.url, 'mine', 'seed', [2, 5]), 200, 'everyone may still call reducers');
      const again = await publish(server.url, 'mine', keynote, allowed.token);
      assert.equal(again.status, 200, 'the owner updates its database');
      const takeover = await publish(server.url, 'mine', keynote, other.token);
      assert.equal(takeover.status, 401, 'an existing database is owner-checked as before');
    } finally {
      await server.stop();
    }
  });

  test('[publish] allow in config.toml; the flag replaces it', async () => {
    const dataDir = makeTempDir('stdb-ops-');
    writeFileSync(path.join(dataDir, 'config.toml'), '[publish]\nallow = ["https://issuer.invalid"]\n');
    let server = await start({ dataDir });
    try {
      assert.equal((await publish(server.url, 'x', keynote)).status, 403, 'only tokens from the listed issuer may create');
    } finally {
      await server.stop();
    }
    server = await start({ dataDir, args: ['--allow-publish', 'anyone'] });
    try {
      assert.equal((await publish(server.url, 'x', keynote)).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('default: open, as upstream; on a non-loopback address the start warns and names the setting', async () => {
    const open = await start();
    try {
      assert.equal((await publish(open.url, 'x', keynote)).status, 200);
    } finally {
      await open.stop();
    }
    const wide = await start({ listenHost: '0.0.0.0' });
    try {
      assert.match(wide.output(), /warning: anyone who can reach 0\.0\.0\.0:\d+ may create databases \(as upstream\); --allow-publish/);
      assert.equal((await publish(wide.url, 'x', keynote)).status, 200);
    } finally {
      await wide.stop();
    }
  });
});
