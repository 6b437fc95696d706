// The systems the keynote harness compares, behind one interface, each started for one workload (keynote or
// general), and `measure`, which runs one (system, workload, α) cell: re-seed, connect C clients, run the closed
// loop, sample server CPU over the window, check the invariant (balances; audit rows for the general workload).
// Owns the lifetimes of the systems it starts (call `stop`). May call: ./workload, ./rpc-http, ./procs,
// ./postgres, ./ours.
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { RpcClient } from './rpc-http.js';
import { pinPrefix, spawnServer, stopOnExit, treeCpuMicros } from './procs.js';
import { pgUser, type PgCluster } from './postgres.js';
import {
  checkOurs, connectOurs, repoRoot, seedOurs, startOursServer, type OursDatabase, type OursDatabaseThreads, type OursDurability,
} from './ours.js';
import {
  assertInvariant, runClosedLoop, type BalanceCheck, type LoadResult, type TransferClient, type WorkloadName,
} from './workload.js';

export interface SystemUnderTest {
  /** Stable id used in results, e.g. `sqlite`, `pg-function-pool8`, `ours`. */
  id: string;
  /**
   * Which family it belongs to, for ratios: ours | pg-serializable | pg-function | sqlite (durable), or
   * ours-durability-none | pg-serializable-async | sqlite-normal (relaxed).
   */
  family: string;
  /** True when it acknowledges a transfer before it is on disk: compared only with other relaxed systems. */
  relaxed: boolean;
  workload: WorkloadName;
  /** Pids whose process trees are the SUT's CPU. */
  cpuRoots: number[];
  seed(n: number, initialBalance: bigint): Promise<void>;
  check(): Promise<BalanceCheck>;
  connect(clients: number, inFlightPerClient: number): Promise<TransferClient[]>;
  stop(): Promise<void>;
}

// Resolved here, so the servers start the same way whatever the caller's working directory.
const tsxNode = [process.execPath, '--import', import.meta.resolve('tsx')];
const benchDir = path.join(repoRoot, 'bench', 'keynote');

function parseCheck(body: unknown): BalanceCheck {
  const b = body as { accounts: number; total: string; min: string; auditRows?: number };
  return { accounts: b.accounts, total: BigInt(b.total), min: BigInt(b.min), auditRows: b.auditRows };
}

/** Wraps an RPC baseline server child: seeding and checks go through a small admin pool. */
function rpcSystem(
  id: string, family: string, relaxed: boolean, workload: WorkloadName, port: number, cpuRoots: number[],
  stopAll: () => Promise<void>,
): SystemUnderTest {
  const admin = new RpcClient(port, 1);
  let pools: RpcClient[] = [];
  return {
    id, family, relaxed, workload, cpuRoots,
    seed: async (n, initialBalance) => void (await admin.must('seed', { n, initialBalance: initialBalance.toString() })),
    check: async () => parseCheck(await admin.must('check', {})),
    connect: async (clients, inFlightPerClient) => {
      await Promise.all(pools.map((p) => p.close()));
      // One pool, one keep-alive connection per client; pipelining lets a client keep K calls on its connection.
      const pool = new RpcClient(port, clients, inFlightPerClient);
      pools = [pool];
      return Array.from({ length: clients }, () => pool.transferClient());
    },
    stop: async () => {
      await Promise.all([admin.close(), ...pools.map((p) => p.close())]);
      await stopAll();
    },
  };
}

/** `synchronous=NORMAL` is the relaxed variant: in WAL mode a commit is acknowledged before the WAL is fsynced. */
export async function startSqlite(
  workload: WorkloadName, serverCpus: string | undefined, synchronous: 'FULL' | 'NORMAL' = 'FULL',
): Promise<SystemUnderTest> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keynote-sqlite-'));
  const removeDir = stopOnExit(async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const server = await spawnServer([...pinPrefix(serverCpus), ...tsxNode, path.join(benchDir, 'sqlite-server.ts'),
      '--db', path.join(dir, 'bench.db'), '--synchronous', synchronous, '--workload', workload]);
    const id = synchronous === 'FULL' ? 'sqlite' : 'sqlite-normal';
    return rpcSystem(id, id, synchronous !== 'FULL', workload, server.port, [server.child.pid!], async () => {
      await server.stop();
      await removeDir();
    });
  } catch (err) {
    await removeDir();
    throw err;
  }
}

/**
 * One Node app over a `pg` Pool of `poolSize` against the shared cluster. `synchronousCommit: 'off'` (serializable
 * only, the relaxed variant) sets it for the app's sessions: commits are acknowledged before the WAL is flushed.
 */
export async function startPgApp(
  workload: WorkloadName, cluster: PgCluster, variant: 'serializable' | 'function', poolSize: number,
  serverCpus: string | undefined, synchronousCommit: 'on' | 'off' = 'on',
): Promise<SystemUnderTest> {
  const relaxed = synchronousCommit === 'off';
  const server = await spawnServer([...pinPrefix(serverCpus), ...tsxNode, path.join(benchDir, 'pg-server.ts'),
    '--pg-port', String(cluster.port), '--pg-user', pgUser, '--pool', String(poolSize), '--variant', variant,
    '--synchronous-commit', synchronousCommit, '--workload', workload]);
  const family = relaxed ? `pg-${variant}-async` : `pg-${variant}`;
  return rpcSystem(`${family}-pool${poolSize}`, family, relaxed, workload, server.port, [server.child.pid!, cluster.postmasterPid],
    () => server.stop());
}

/**
 * Our server with the workload's module published under the workload's name; `durability: 'none'` is the relaxed
 * variant (`spacetime start --durability none`).
 */
export async function startOursSystem(
  workload: WorkloadName, serverCpus: string | undefined, databaseThreads: OursDatabaseThreads,
  durability: OursDurability = 'fsync',
): Promise<SystemUnderTest> {
  const server = await startOursServer(pinPrefix(serverCpus), durability, databaseThreads);
  const db: OursDatabase = { server, dbName: workload, workload };
  try {
    await server.publish(db.dbName, workload, false);
  } catch (err) {
    await server.stop();
    throw err;
  }
  const id = durability === 'fsync' ? 'ours' : 'ours-durability-none';
  let open: TransferClient[] = [];
  return {
    id, family: id, relaxed: durability !== 'fsync', workload, cpuRoots: [server.pid],
    seed: (n, initialBalance) => seedOurs(db, n, initialBalance),
    check: () => checkOurs(db),
    connect: async (clients) => {
      await Promise.all(open.map((c) => c.close()));
      open = await Promise.all(Array.from({ length: clients }, () => connectOurs(db)));
      return open;
    },
    stop: async () => {
      await Promise.all(open.map((c) => c.close()));
      await server.stop();
    },
  };
}

export interface CellOptions {
  accounts: number;
  initialBalance: bigint;
  clients: number;
  inFlightPerClient: number;
  warmupSeconds: number;
  durationSeconds: number;
}

export interface CellResult extends LoadResult {
  system: string;
  family: string;
  /** Acknowledged before durable (see SystemUnderTest.relaxed): never compared with durable cells. */
  relaxed: boolean;
  workload: WorkloadName;
  alpha: number;
  clients: number;
  inFlightPerClient: number;
  /** SUT CPU time over the window per committed transfer (µs); null when /proc is unavailable. */
  serverCpuMicrosPerTx: number | null;
  /** SUT CPU use over the window, in cores. */
  serverCores: number | null;
  invariant: 'ok';
}

/** Runs one (system, α) cell. Throws when the balance invariant is broken. */
export async function measure(
  sut: SystemUnderTest, alpha: number, pairs: Uint32Array, opts: CellOptions,
): Promise<CellResult> {
  await sut.seed(opts.accounts, opts.initialBalance);
  assertInvariant(await sut.check(), opts.accounts, opts.initialBalance, sut.workload, { rowsMin: 0, rowsMax: 0 });
  const clients = await sut.connect(opts.clients, opts.inFlightPerClient);
  let cpuStart: number | undefined;
  let windowStartMs = 0;
  const load = await runClosedLoop(clients, {
    inFlightPerClient: opts.inFlightPerClient,
    warmupSeconds: opts.warmupSeconds, durationSeconds: opts.durationSeconds, pairs,
  }, () => {
    cpuStart = treeCpuMicros(sut.cpuRoots);
    windowStartMs = Date.now();
  });
  // Sampled after the drain, so the window is slightly longer than the measured one: a small overestimate.
  const cpuEnd = treeCpuMicros(sut.cpuRoots);
  const elapsedMicros = (Date.now() - windowStartMs) * 1000;
  const cpu = cpuStart === undefined || cpuEnd === undefined ? null : cpuEnd - cpuStart;
  assertInvariant(await sut.check(), opts.accounts, opts.initialBalance, sut.workload,
    { rowsMin: load.committedTotal, rowsMax: load.committedTotal + load.outcomeUnknown });
  return {
    ...load,
    system: sut.id, family: sut.family, relaxed: sut.relaxed, workload: sut.workload, alpha, clients: opts.clients, inFlightPerClient: opts.inFlightPerClient,
    serverCpuMicrosPerTx: cpu === null || load.committed === 0 ? null : cpu / load.committed,
    serverCores: cpu === null ? null : cpu / elapsedMicros,
    invariant: 'ok',
  };
}
