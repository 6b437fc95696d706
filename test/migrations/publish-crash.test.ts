// kill -9 during an updating publish (issue 11 item 9): a real server is killed at random moments while a module
// update is being published, then restarted. After every round the program the database runs, the program hash in
// control data (what `spacetime describe`/the API report) and — when the publisher got an answer — that answer must
// agree. Before the fix the database's log could hold the new program while control data still named the old one.
// Each version of the module differs only in the string its `stamp` reducer records, so "the program the database
// runs" is read back through a reducer call, independently of control data.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildFixture, cleanupTempDirs, startTestServer, type TestServer } from '../harness.js';
import { programHash } from '../../src/server/program-hash.js';

const rounds = Number(process.env.PUBLISH_CRASH_ROUNDS ?? 8);
const seed = 0x9b1d;
let server: TestServer;
let token: string;
let bundle: string;

function prng(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const version = (n: number) => `version-${String(n).padStart(4, '0')}`;
const programFor = (n: number) => bundle.replace('version-0000', version(n));
const auth = () => ({ authorization: `Bearer ${token}` });

function publish(n: number): Promise<Response> {
  return fetch(`${server.url}/v1/database/atomic`, { method: 'PUT', headers: auth(), body: programFor(n) });
}

/** The version whose `stamp` runs now: the program the database actually executes. */
async function runningVersion(n: number): Promise<string> {
  const res = await fetch(`${server.url}/v1/database/atomic/call/stamp`, {
    method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify([n]),
  });
  assert.equal(res.status, 200, `${await res.text()}\n${server.output()}`);
  const sql = await fetch(`${server.url}/v1/database/atomic/sql`, { method: 'POST', headers: auth(), body: `SELECT version FROM stamp_log WHERE n = ${n}` });
  const rows = ((await sql.json()) as { rows: string[][] }[])[0]!.rows;
  assert.equal(rows.length, 1);
  return rows[0]![0]!;
}

/** The program hash control data holds for the database (what the server and CLI report). */
function storedHash(): string {
  const control = JSON.parse(readFileSync(path.join(server.dataDir, 'control', 'databases.json'), 'utf8')) as { databases: { program_hash: string; names: string[] }[] };
  const record = control.databases.find((d) => d.names.includes('atomic'));
  assert.ok(record !== undefined);
  return record.program_hash;
}

before(async () => {
  bundle = (await buildFixture('big-tx')).code;
  assert.equal(bundle.split('version-0000').length, 2, 'the version marker occurs once in the bundle');
  server = await startTestServer();
  ({ token } = (await (await fetch(`${server.url}/v1/identity`, { method: 'POST' })).json()) as { token: string });
});
after(async () => {
  await server?.stop();
  cleanupTempDirs();
});

test('kill -9 at random moments of an updating publish: the running program, the stored hash and the answer agree', async () => {
  const first = await publish(0);
  assert.equal(first.status, 200, await first.text());
  // One update without a kill: how long a publish takes here, to spread the kills over it.
  const started = performance.now();
  const calibrate = await publish(1);
  assert.equal(calibrate.status, 200, await calibrate.text());
  const publishMs = performance.now() - started;
  let survivor = 1;
  const random = prng(seed);
  const outcomes = { told: 0, untold: 0, newSurvived: 0, oldSurvived: 0 };
  // After `rounds` rounds, more (at most `rounds` more) until both outcomes were seen, with kills moved towards the
  // missing one: a publish's length varies with the machine's load, so one calibration cannot place every kill.
  let extra = 0;
  for (let round = 2; round < rounds + 2 || (outcomes.newSurvived === 0 || outcomes.oldSurvived === 0) && extra < rounds; round++) {
    if (round >= rounds + 2) extra++;
    // Stratified over 5-120 % of a publish: one kill in each slice, so both sides of the commit point are hit wherever
    // it falls (with uniform 40-120 % every kill of a run once came after it: 8 new, 0 old).
    const delayMs = extra === 0 ? publishMs * (0.05 + (1.15 * (round - 2 + random())) / rounds)
      : outcomes.newSurvived === 0 ? publishMs * (1 + extra) : publishMs * 0.05 * random();
    let answer: number | undefined;
    const attempt = publish(round).then(async (res) => { if (res.status === 200) answer = round; await res.text(); }, () => {});
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await server.kill('SIGKILL');
    await attempt;
    await server.restart();
    const running = await runningVersion(round);
    const stored = storedHash();
    const runningIndex = running === version(round) ? round : running === version(survivor) ? survivor : -1;
    assert.ok(runningIndex >= 0, `round ${round}: runs ${running}, neither the new nor the previous program`);
    assert.equal(stored, await programHash(programFor(runningIndex)),
      `round ${round} (kill after ${delayMs.toFixed(0)} ms): the database runs ${running} but control data holds another program hash`);
    if (answer !== undefined) assert.equal(runningIndex, answer, `round ${round}: the publisher was told ${version(answer)}, ${running} survived`);
    outcomes[answer !== undefined ? 'told' : 'untold']++;
    outcomes[runningIndex === round ? 'newSurvived' : 'oldSurvived']++;
    survivor = runningIndex;
  }
  // The kills must have covered both outcomes, or the test proves little.
  assert.ok(outcomes.newSurvived > 0 && outcomes.oldSurvived > 0, JSON.stringify(outcomes));
});
