// Unit tests of outbound HTTP pieces that need no server: the special-purpose address policy and the BSATN
// HttpRequest / HttpResponse wire shared with the module library.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeHttpRequest, decodeHttpResponse, encodeHttpRequest, encodeHttpResponse } from '../../src/host/http-egress.js';
import { isSpecialAddress } from '../../src/host/http-egress-worker.js';

test('private, loopback, link-local and special-purpose addresses are refused; public ones pass', () => {
  for (const a of ['127.0.0.1', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '198.18.0.1', '::1', '::', 'fe80::1', 'fd00::1', 'ff02::1', '::ffff:127.0.0.1',
    '::ffff:10.1.2.3', '64:ff9b::a00:1', '2001:db8::1', 'not-an-ip']) {
    assert.equal(isSpecialAddress(a), true, a);
  }
  for (const a of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isSpecialAddress(a), false, a);
  }
});

test('HttpRequest / HttpResponse BSATN round trips (methods incl. extensions, headers, no timeout)', () => {
  const req = decodeHttpRequest(encodeHttpRequest('POST', [['x-a', 'b'], ['content-type', 'text/plain']], 'http://h/p?q=1'));
  assert.deepEqual({ ...req, headers: req.headers.map(([n, v]) => [n, Buffer.from(v).toString()]) },
    { method: 'POST', headers: [['x-a', 'b'], ['content-type', 'text/plain']], timeoutMicros: undefined, uri: 'http://h/p?q=1' });
  assert.equal(decodeHttpRequest(encodeHttpRequest('PROPFIND', [], 'http://h/')).method, 'PROPFIND');
  const res = decodeHttpResponse(encodeHttpResponse(418, [['x-t', 'pot']]));
  assert.equal(res.status, 418);
  assert.equal(Buffer.from(res.headers[0][1]).toString(), 'pot');
  assert.throws(() => decodeHttpRequest(new Uint8Array([42])), /HttpMethod/);
});
