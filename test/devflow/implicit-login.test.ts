// The implicit login of a command that needs a token and finds none (src/cli/auth.ts authToken): on a terminal the
// CLI asks "You are not logged in. Would you like to log in with spacetimedb.com? [y/N]"; "y" runs the web login
// against the target server (`-s`), "n" and a non-terminal stdin (EOF) log in server-issued on it.
//
// The real CLI runs under util-linux `script` (a pseudo-terminal, so stdin is a TTY). The target is a loopback HTTP
// server speaking the web-login contract of docs/login.md (request-token → status → spacetimedb-token) and
// `POST /v1/identity`, and answering 404 to everything else (the command then fails after logging in, which is
// enough here). `xdg-open` is replaced on PATH by a script that records the URL it was asked to open.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { cleanupTempDirs, makeTempDir, repoRoot, runCli, tempConfigPath } from '../harness.js';

const scriptPath = '/usr/bin/script';
const skip = existsSync(scriptPath) ? false : 'util-linux `script` is not installed';
const runTimeoutMs = 20_000;

function fakeJwt(sub: string): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'http://auth.test', sub, iat: 0 })}.sig`;
}
const webToken = fakeJwt('web-user');
const serverIssuedToken = fakeJwt('server-issued');

let server: Server;
let url = '';
const requests: string[] = [];
let statusPolls = 0;

before(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url?.split('?')[0]}`);
    const json = (value: unknown): void => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(value)); };
    if (req.method === 'POST' && req.url === '/api/auth/cli/login/request-token') return json({ success: true, data: { token: 'req-1' } });
    if (req.method === 'GET' && req.url === '/api/auth/cli/status?token=req-1') {
      statusPolls++;
      return json({ success: true, data: statusPolls < 2 ? { approved: false } : { approved: true, sessionToken: 'session-1' } });
    }
    if (req.method === 'POST' && req.url === '/api/spacetimedb-token' && req.headers.authorization === 'Bearer session-1') {
      return json({ success: true, data: { token: webToken } });
    }
    if (req.method === 'POST' && req.url === '/v1/identity') return json({ identity: 'c200', token: serverIssuedToken });
    res.statusCode = 404;
    res.end('no such database');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server?.close();
  cleanupTempDirs();
});

/** Runs `spacetime <args>` on a pseudo-terminal; `answer` is typed once the login prompt shows. */
async function runOnTerminal(args: string[], configPath: string, answer: string): Promise<{ output: string; opened: string }> {
  const bin = makeTempDir('stdb-fakebin-');
  const openedFile = path.join(bin, 'opened.txt');
  writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\necho "$1" > '${openedFile}'\n`);
  chmodSync(path.join(bin, 'xdg-open'), 0o755);
  const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, path.join(repoRoot, 'bin', 'spacetime.js'), '--config-path', configPath, ...args].map(quote).join(' ');
  const child = spawn(scriptPath, ['-qefc', command, '/dev/null'], {
    cwd: repoRoot, env: { ...process.env, NO_COLOR: '1', PATH: `${bin}:${process.env.PATH ?? ''}` }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let answered = false;
  const onData = (d: Buffer): void => {
    output += d.toString();
    if (!answered && output.includes('[y/N]')) { answered = true; child.stdin.write(`${answer}\n`); }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs);
  await new Promise((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  child.stdin.destroy();
  return { output: output.replace(/\r\n/g, '\n'), opened: existsSync(openedFile) ? readFileSync(openedFile, 'utf8').trim() : '' };
}

function savedToken(configPath: string): unknown {
  return (parseToml(readFileSync(configPath, 'utf8')) as { spacetimedb_token?: unknown }).spacetimedb_token;
}

test('answering y runs the web login against the target server and saves its token', { skip }, async () => {
  const configPath = tempConfigPath();
  requests.length = 0;
  const { output, opened } = await runOnTerminal(['call', '-s', url, 'somedb', 'someReducer'], configPath, 'y');
  assert.match(output, /You are not logged in\. Would you like to log in with spacetimedb\.com\? \[y\/N\]/);
  assert.equal(opened, `${url}/login/cli?token=req-1`, 'the browser is sent to the target server');
  assert.match(output, new RegExp(`Opening ${url.replace(/[.]/g, '\\.')}/login/cli\\?token=req-1 in your browser\\.`));
  // stdout and stderr share the terminal, so "Saving config to …" lines may come in between.
  assert.match(output, /Waiting to hear response from the server\.\.\.\nLogin successful!\n(Saving config to .*\n)*Logged in with identity c200[0-9a-f]{60}/);
  assert.ok(requests.includes('POST /api/spacetimedb-token'));
  assert.ok(!requests.includes('POST /v1/identity'), 'no server-issued login');
  assert.equal(savedToken(configPath), webToken);
  assert.match(output, /no such database/, 'the command itself went on with the new token');
});

test('answering n, or no terminal (EOF), logs in server-issued on the target server', { skip }, async () => {
  const configPath = tempConfigPath();
  requests.length = 0;
  const { output, opened } = await runOnTerminal(['call', '-s', url, 'somedb', 'someReducer'], configPath, 'n');
  assert.match(output, /\[y\/N\]/);
  assert.match(output, /We have logged in directly to your target server\./);
  assert.equal(opened, '');
  assert.ok(!requests.includes('POST /api/auth/cli/login/request-token'));
  assert.equal(savedToken(configPath), serverIssuedToken);

  const piped = tempConfigPath();
  const r = await runCli(['call', '-s', url, 'somedb', 'someReducer'], { configPath: piped, input: 'y\n' });
  assert.doesNotMatch(r.stdout, /\[y\/N\]/, 'no prompt without a terminal');
  assert.match(r.stdout, /We have logged in directly to your target server\./);
  assert.equal(savedToken(piped), serverIssuedToken);
});
