// HTTP/1.1 server behaviour of the real herald binary over raw sockets: keep-alive, pipelining,
// HTTP/1.0 and Connection: close, chunked request bodies, head/body limits, malformed requests,
// 404/405 with their JSON error bodies, and the header and idle timeouts.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHerald, rawConnect, waitFor, sleep } from './lib/herald.mjs';
import { parseSeq, exchange, more, assertJsonError, isClosed } from './lib/http-util.mjs';

const INDEX = '<!doctype html><title>herald e2e</title><p>hello from the http tests</p>\n';
const MEDIUM = Buffer.alloc(300 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');

let pub;
before(() => {
  pub = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-http-'));
  fs.writeFileSync(path.join(pub, 'index.html'), INDEX);
  fs.writeFileSync(path.join(pub, 'medium.bin'), MEDIUM);
});
after(() => { if (pub) fs.rmSync(pub, { recursive: true, force: true }); });

const get = (p, extra = '') => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

function assertAlive(h) {
  assert.equal(h.proc.exitCode, null, `herald exited:\n${h.output().slice(-2000)}`);
  assert.equal(h.proc.signalCode, null, `herald was killed by ${h.proc.signalCode}:\n${h.output().slice(-2000)}`);
}

function assertIndex(r, what = 'GET /') {
  assert.equal(r.status, 200, `${what}: status\n${r.rawHead}`);
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8', `${what}: Content-Type`);
  assert.equal(r.body.toString(), INDEX, `${what}: body`);
}

function assertAllowGetHead(r, what) {
  assertJsonError(r, 405, what);
  assert.ok(r.headers.allow, `${what}: 405 without an Allow header\n${r.rawHead}`);
  const methods = r.headers.allow.split(',').map((s) => s.trim()).filter(Boolean).sort();
  assert.deepEqual(methods, ['GET', 'HEAD'], `${what}: Allow: ${r.headers.allow}`);
}

// Open a connection, send `data`, and expect exactly one error answer with `status` followed by
// the server closing the connection.
async function expectErrorThenClose(port, data, status, what) {
  const { responses, rest, closed } = await exchange(port, data, { expectClose: true });
  assert.ok(responses.length >= 1, `${what}: no response`);
  assertJsonError(responses[0], status, what);
  assert.equal(responses[0].headers.connection?.toLowerCase(), 'close', `${what}: ${status} should say Connection: close`);
  assert.equal(responses.length, 1, `${what}: more than one response`);
  assert.equal(rest.length, 0, `${what}: stray bytes after the response`);
  assert.ok(closed, `${what}: connection should be closed after ${status}`);
}

// ---------------------------------------------------------------------------------------------
describe('keep-alive, pipelining, Connection handling', () => {
  let h;
  before(async () => { h = await startHerald(['--public', pub]); });
  after(async () => { if (h) await h.stop(); });

  test('several requests on one keep-alive socket', async () => {
    const c = await rawConnect(h.port);
    try {
      for (let i = 1; i <= 5; i++) {
        const rs = await more(c, get(i % 2 ? '/' : '/index.html'), { count: i });
        assert.equal(rs.length, i, `response ${i} missing`);
        const r = rs[i - 1];
        assertIndex(r, `request ${i}`);
        assert.notEqual(r.headers.connection?.toLowerCase(), 'close', `request ${i}: keep-alive answer says Connection: close`);
        assert.equal(r.minor, 1, 'HTTP/1.1 status line');
        assert.ok(!isClosed(c), `socket closed after request ${i}`);
      }
      await sleep(100);
      assert.ok(!isClosed(c), 'socket closed after the last request');
    } finally { c.sock.destroy(); }
    assertAlive(h);
  });

  test('pipelined requests in one write are answered in order', async () => {
    const reqs = [
      ['GET', get('/index.html')],
      ['GET', get('/missing.html')],
      ['DELETE', 'DELETE /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
      ['POST', 'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc'],
      ['HEAD', 'HEAD /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
      ['GET', get('/medium.bin')],
      ['GET', get('/')],
    ];
    const methods = reqs.map((r) => r[0]);
    const { c, responses } = await exchange(h.port, reqs.map((r) => r[1]).join(''), { methods, count: reqs.length, keep: true });
    try {
      assert.deepEqual(responses.map((r) => r.status), [200, 404, 405, 405, 200, 200, 200]);
      assertIndex(responses[0], 'pipelined GET /index.html');
      assertJsonError(responses[1], 404, 'pipelined GET /missing.html');
      assertAllowGetHead(responses[2], 'pipelined DELETE /index.html');
      assertAllowGetHead(responses[3], 'pipelined POST /echo');
      assert.equal(responses[4].body.length, 0, 'HEAD has no body');
      assert.equal(Number(responses[4].headers['content-length']), Buffer.byteLength(INDEX), 'HEAD Content-Length');
      assert.ok(responses[5].body.equals(MEDIUM), 'pipelined 300 KB file intact');
      assertIndex(responses[6], 'pipelined GET /');
      assert.equal(parseSeq(c.data, methods).rest.length, 0, 'stray bytes after the pipelined answers');
      // still usable afterwards
      const rs = await more(c, get('/'), { methods, count: reqs.length + 1 });
      assertIndex(rs[reqs.length], 'request after the pipeline');
    } finally { c.sock.destroy(); }
  });

  test('100 pipelined requests in one write, all answered in order', async () => {
    const kinds = [
      ['GET', get('/index.html'), 200],
      ['GET', get('/nope'), 404],
      ['PUT', 'PUT /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nhi', 405],
      ['HEAD', 'HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 200],
    ];
    const seq = Array.from({ length: 100 }, (_, i) => kinds[i % kinds.length]);
    const methods = seq.map((k) => k[0]);
    const { responses, rest } = await exchange(h.port, seq.map((k) => k[1]).join(''), { methods, count: 100, ms: 10000 });
    assert.equal(responses.length, 100, 'responses');
    assert.deepEqual(responses.map((r) => r.status), seq.map((k) => k[2]));
    assert.equal(rest.length, 0);
  });

  test('pipelined requests split at odd byte boundaries', async () => {
    const all = get('/') + get('/missing') + get('/index.html');
    const c = await rawConnect(h.port);
    try {
      for (let i = 0; i < all.length; i += 7) {
        c.sock.write(all.slice(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 3 || isClosed(x), 5000, '3 responses');
      const { responses } = parseSeq(c.data);
      assert.deepEqual(responses.map((r) => r.status), [200, 404, 200]);
      assert.ok(!isClosed(c));
    } finally { c.sock.destroy(); }
  });

  test('HTTP/1.0 without keep-alive: Connection: close and the socket closes', async () => {
    const { responses, closed, rest } = await exchange(h.port, 'GET / HTTP/1.0\r\n\r\n', { expectClose: true });
    assert.equal(responses.length, 1);
    assertIndex(responses[0], 'HTTP/1.0 GET /');
    assert.equal(responses[0].headers.connection?.toLowerCase(), 'close', 'Connection header');
    assert.equal(rest.length, 0);
    assert.ok(closed, 'server should close an HTTP/1.0 connection');
  });

  test('HTTP/1.0 with Connection: keep-alive stays open', async () => {
    const req = 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';
    const { c, responses } = await exchange(h.port, req, { keep: true });
    try {
      assertIndex(responses[0], 'HTTP/1.0 keep-alive');
      assert.equal(responses[0].headers.connection?.toLowerCase(), 'keep-alive', 'Connection header');
      await sleep(200);
      assert.ok(!isClosed(c), 'HTTP/1.0 keep-alive socket closed');
      const rs = await more(c, req, { count: 2 });
      assertIndex(rs[1], 'second HTTP/1.0 keep-alive request');
    } finally { c.sock.destroy(); }
  });

  test('Connection: close from the client is honoured (later pipelined requests are not answered)', async () => {
    const data = get('/', 'Connection: close\r\n') + get('/index.html');
    const { c, responses, rest, closed } = await exchange(h.port, data, { expectClose: true, keep: true });
    try {
      assert.equal(responses.length, 1, 'only the request up to Connection: close is answered');
      assertIndex(responses[0], 'GET / with Connection: close');
      assert.equal(responses[0].headers.connection?.toLowerCase(), 'close');
      assert.equal(rest.length, 0);
      assert.ok(closed);
    } finally { c.sock.destroy(); }
  });

  test('Connection: close on an error answer (404) also closes', async () => {
    const { responses, closed } = await exchange(h.port, get('/nothing-here', 'Connection: close\r\n'), { expectClose: true });
    assertJsonError(responses[0], 404, 'GET /nothing-here');
    assert.equal(responses[0].headers.connection?.toLowerCase(), 'close');
    assert.ok(closed);
  });

  test('unknown path -> 404 JSON; connection stays usable', async () => {
    const { c, responses } = await exchange(h.port, get('/no/such/thing'), { keep: true });
    try {
      assertJsonError(responses[0], 404, 'GET /no/such/thing');
      assert.notEqual(responses[0].headers.connection?.toLowerCase(), 'close');
      const rs = await more(c, get('/'), { count: 2 });
      assertIndex(rs[1], 'after 404');
    } finally { c.sock.destroy(); }
  });

  test('wrong method on a known path -> 405 with Allow: GET, HEAD (POST /echo, DELETE /index.html, POST /)', async () => {
    for (const [m, p] of [['POST', '/echo'], ['DELETE', '/index.html'], ['POST', '/'], ['PUT', '/echo'], ['PATCH', '/index.html']]) {
      const { c, responses } = await exchange(h.port, `${m} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n`, { keep: true });
      try {
        assertAllowGetHead(responses[0], `${m} ${p}`);
        const rs = await more(c, get('/'), { count: 2 });
        assertIndex(rs[1], `request after ${m} ${p} -> 405`);
      } finally { c.sock.destroy(); }
    }
  });

  test('a body with Content-Length to a GET-only path is consumed: 405, then the next request works', async () => {
    const body = 'x'.repeat(5000);
    const data = `POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n${body}` + get('/');
    const { responses, closed } = await exchange(h.port, data, { count: 2 });
    assert.equal(responses.length, 2, `expected 2 responses (closed=${closed})`);
    assertAllowGetHead(responses[0], 'POST with body');
    assertIndex(responses[1], 'GET after POST with body');
  });

  test('chunked request body is parsed: POST to a GET-only path -> 405, connection stays usable', async () => {
    const data = 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5\r\nhello\r\n6\r\n world\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n' + get('/');
    const { c, responses } = await exchange(h.port, data, { count: 2, keep: true });
    try {
      assert.equal(responses.length, 2, 'two responses (the chunked body must not be taken for a request)');
      assertAllowGetHead(responses[0], 'chunked POST');
      assertIndex(responses[1], 'GET after chunked POST');
      assert.ok(!isClosed(c));
    } finally { c.sock.destroy(); }
  });

  test('chunked body sent in pieces, with chunk extensions and trailers', async () => {
    const c = await rawConnect(h.port);
    try {
      c.sock.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
      await sleep(50);
      c.sock.write('3;name=value\r\nab');
      await sleep(50);
      c.sock.write('c\r\n10\r\n0123456789abcdef\r\n');
      await sleep(50);
      assert.equal(c.data.length, 0, 'answered before the chunked body ended');
      c.sock.write('0\r\nX-Trailer: yes\r\n\r\n' + get('/'));
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 2 || isClosed(x), 5000, '2 responses');
      const { responses } = parseSeq(c.data);
      assertAllowGetHead(responses[0], 'chunked POST /echo');
      assertIndex(responses[1], 'GET after chunked POST /echo');
    } finally { c.sock.destroy(); }
  });

  test('Expect: 100-continue with a body to a GET-only path still ends with one final answer', async () => {
    const c = await rawConnect(h.port);
    try {
      c.sock.write('POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      await sleep(100);
      c.sock.write('abcd' + get('/'));
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 2 || isClosed(x), 5000, '2 final responses');
      const { responses } = parseSeq(c.data);
      assertAllowGetHead(responses[0], 'POST with Expect');
      assertIndex(responses[1], 'GET after Expect');
    } finally { c.sock.destroy(); }
  });
});

// ---------------------------------------------------------------------------------------------
describe('limits and malformed requests (default limits)', () => {
  let h;
  before(async () => { h = await startHerald(['--public', pub]); });
  after(async () => { if (h) await h.stop(); });

  test('request head over the default --max-head (16384): long URL -> 431, then close', async () => {
    await expectErrorThenClose(h.port, get('/' + 'a'.repeat(20000)), 431, 'long URL');
  });

  test('request head over the default --max-head: long headers -> 431, then close', async () => {
    let extra = '';
    for (let i = 0; i < 10; i++) extra += `X-Long-${i}: ${'v'.repeat(2000)}\r\n`;
    await expectErrorThenClose(h.port, get('/', extra), 431, 'long headers');
  });

  test('request head over the default --max-head: one huge header value -> 431', async () => {
    await expectErrorThenClose(h.port, get('/', `Cookie: ${'c'.repeat(40000)}\r\n`), 431, 'huge header value');
  });

  test('request head over --max-head sent in many small writes -> 431 (the limit is cumulative)', async () => {
    const c = await rawConnect(h.port);
    try {
      c.sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      for (let i = 0; i < 60 && !isClosed(c) && c.data.length === 0; i++) {
        c.sock.write(`X-Piece-${i}: ${'p'.repeat(400)}\r\n`);
        await sleep(5);
      }
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 1 || isClosed(x), 5000, '431');
      const { responses } = parseSeq(c.data);
      assertJsonError(responses[0], 431, 'head in pieces');
      await waitFor(c, isClosed, 5000, 'close after 431');
    } finally { c.sock.destroy(); }
  });

  test('more than 64 header fields -> 431, then close', async () => {
    let extra = '';
    for (let i = 0; i < 70; i++) extra += `X-F${i}: v\r\n`;
    await expectErrorThenClose(h.port, get('/', extra), 431, '70 header fields');
  });

  test('exactly 64 header fields is accepted', async () => {
    let extra = '';
    for (let i = 0; i < 63; i++) extra += `X-F${i}: v\r\n`; // + Host = 64
    const { responses } = await exchange(h.port, get('/', extra));
    assertIndex(responses[0], '64 header fields');
  });

  test('a 15000-byte head (under the default limit) is accepted', async () => {
    const { responses } = await exchange(h.port, get('/', `X-Pad: ${'p'.repeat(15000 - 60)}\r\n`));
    assertIndex(responses[0], '15000-byte head');
  });

  test('Content-Length over the default --max-body (1 MiB) -> 413, then close', async () => {
    await expectErrorThenClose(h.port,
      'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1048577\r\n\r\n', 413, 'Content-Length 1048577');
    await expectErrorThenClose(h.port,
      'POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999\r\n\r\n' + 'x'.repeat(1000), 413, 'Content-Length 99999999999');
  });

  test('chunked body over the default --max-body -> 413, then close', async () => {
    const chunk = Buffer.alloc(600 * 1024, 'z');
    const c = await rawConnect(h.port);
    try {
      c.sock.write('POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < 3 && !isClosed(c); i++) {
        c.sock.write(`${chunk.length.toString(16)}\r\n`);
        c.sock.write(chunk);
        c.sock.write('\r\n');
      }
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 1 || isClosed(x), 5000, '413');
      const { responses } = parseSeq(c.data);
      assertJsonError(responses[0], 413, 'chunked 1.8 MB');
      await waitFor(c, isClosed, 5000, 'close after 413');
    } finally { c.sock.destroy(); }
  });

  const malformed = [
    ['garbage request line', 'GARBAGE\r\n\r\n'],
    ['garbage bytes', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'],
    ['space in a header name', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n'],
    ['whitespace between header name and colon', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Name : x\r\n\r\n'],
    ['parentheses in a header name', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad(Name): x\r\n\r\n'],
    ['control byte in a header name', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX\x01Y: x\r\n\r\n'],
    ['empty header name', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n: x\r\n\r\n'],
    ['header line without a colon', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n'],
    ['both Content-Length and Transfer-Encoding', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding then Content-Length', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'],
    ['non-numeric Content-Length', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n'],
    ['negative Content-Length', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n'],
    ['Content-Length with a list', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5, 6\r\n\r\nhello'],
    ['two different Content-Lengths', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['Content-Length in exponent form', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1e3\r\n\r\n'],
    ['invalid chunk size', 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    // request smuggling: each of these is read otherwise by some proxy in front (strict HTTP)
    ['two other bytes instead of the CRLF after chunk data (was published as "abc")',
      'POST /pub/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"abc"XX0\r\n\r\n'],
    ['bare LF after chunk data', 'POST /pub/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"abc"\n0\r\n\r\n'],
    ['obsolete line folding', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Folded: a\r\n b\r\n\r\n'],
    ['obsolete line folding with a tab', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Folded: a\r\n\tTransfer-Encoding: chunked\r\n\r\n'],
    ['bare LF after the request line', 'GET / HTTP/1.1\nHost: 127.0.0.1\r\n\r\n'],
    ['bare LF as the final empty line', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\n'],
    ['bare LF ending a header line', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\nX: y\r\n\r\n'],
    ['Transfer-Encoding in HTTP/1.0', 'POST /pub/smuggle HTTP/1.0\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"abc"\r\n0\r\n\r\n'],
    ['Transfer-Encoding with chunked not last', 'POST /pub/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'],
    ['NUL in a header value', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a\x00b\r\n\r\n'],
    ['control byte in a header value', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a\x1bb\r\n\r\n'],
    ['chunk size with a sign', 'POST /pub/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\n"abc"\r\n0\r\n\r\n'],
    ['chunk size in 0x form', 'POST /pub/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n"abc"\r\n0\r\n\r\n'],
  ];
  for (const [name, data] of malformed) {
    test(`malformed request (${name}) -> 400 JSON, then close`, async () => {
      await expectErrorThenClose(h.port, data, 400, name);
    });
  }

  test('nothing from the smuggling cases was published', async () => {
    const r = await fetch(`${h.url}/poll/smuggle?since=0`);
    const body = await r.text();
    assert.doesNotMatch(body, /abc/, `published: ${body}`);
  });

  test('a malformed request after a good one on the same socket: 200, then 400 and close', async () => {
    const { responses, closed } = await exchange(h.port, get('/') + 'BROKEN STUFF\r\n\r\n', { count: 2, expectClose: true });
    assert.equal(responses.length, 2);
    assertIndex(responses[0], 'good request');
    assertJsonError(responses[1], 400, 'bad request after a good one');
    assert.ok(closed);
  });

  test('server is still alive and serving after all the bad input', async () => {
    const { responses } = await exchange(h.port, get('/'));
    assertIndex(responses[0]);
    assertAlive(h);
  });
});

// ---------------------------------------------------------------------------------------------
describe('small limits: --max-head 1024 --max-body 100', () => {
  let h;
  before(async () => { h = await startHerald(['--public', pub, '--max-head', '1024', '--max-body', '100']); });
  after(async () => { if (h) await h.stop(); });

  test('long URL over 1024 -> 431, then close', async () => {
    await expectErrorThenClose(h.port, get('/' + 'u'.repeat(1100)), 431, 'URL of 1100 bytes');
  });

  test('headers over 1024 -> 431, then close', async () => {
    let extra = '';
    for (let i = 0; i < 3; i++) extra += `X-H${i}: ${'h'.repeat(400)}\r\n`;
    await expectErrorThenClose(h.port, get('/', extra), 431, '3 x 400-byte headers');
  });

  test('more than 64 small header fields (under 1024 bytes) -> 431', async () => {
    let extra = '';
    for (let i = 0; i < 66; i++) extra += `X${i}: v\r\n`;
    assert.ok(Buffer.byteLength(get('/', extra)) < 1024);
    await expectErrorThenClose(h.port, get('/', extra), 431, '66 header fields');
  });

  test('a 900-byte head is accepted', async () => {
    const req = get('/', `X-Pad: ${'p'.repeat(900 - 45)}\r\n`);
    assert.ok(Buffer.byteLength(req) <= 900 && Buffer.byteLength(req) > 850, `head is ${Buffer.byteLength(req)} bytes`);
    const { responses } = await exchange(h.port, req);
    assertIndex(responses[0], '900-byte head');
  });

  test('Content-Length 101 > --max-body 100 -> 413, then close', async () => {
    await expectErrorThenClose(h.port,
      `POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 101\r\n\r\n${'b'.repeat(101)}`, 413, 'Content-Length 101');
  });

  test('Content-Length 100 == --max-body is accepted (405 for the GET-only path, socket usable)', async () => {
    const data = `POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n${'b'.repeat(100)}` + get('/');
    const { responses } = await exchange(h.port, data, { count: 2 });
    assert.equal(responses.length, 2);
    assertAllowGetHead(responses[0], 'POST with a 100-byte body');
    assertIndex(responses[1], 'GET after');
  });

  test('chunked body over --max-body 100 -> 413, then close', async () => {
    const body = '3c\r\n' + 'c'.repeat(60) + '\r\n3c\r\n' + 'd'.repeat(60) + '\r\n0\r\n\r\n';
    await expectErrorThenClose(h.port,
      'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n' + body, 413, 'chunked 120 bytes');
  });

  test('chunked body within --max-body is fine', async () => {
    const body = '32\r\n' + 'c'.repeat(50) + '\r\n32\r\n' + 'd'.repeat(50) + '\r\n0\r\n\r\n';
    const data = 'POST /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n' + body + get('/');
    const { responses } = await exchange(h.port, data, { count: 2 });
    assertAllowGetHead(responses[0], 'chunked 100 bytes');
    assertIndex(responses[1], 'GET after');
  });
});

// ---------------------------------------------------------------------------------------------
describe('header timeout (--header-timeout 0.8)', () => {
  let h;
  before(async () => { h = await startHerald(['--public', pub, '--header-timeout', '0.8', '--idle-timeout', '30']); });
  after(async () => { if (h) await h.stop(); });

  test('a partial request head that stalls gets 408 JSON and the socket closes', async () => {
    const c = await rawConnect(h.port);
    try {
      const t0 = Date.now();
      c.sock.write('GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ');
      await sleep(300);
      assert.equal(c.data.length, 0, 'answered before the header timeout');
      assert.ok(!isClosed(c), 'closed well before the header timeout');
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 1 || isClosed(x), 5000, '408');
      const { responses } = parseSeq(c.data);
      assertJsonError(responses[0], 408, 'stalled head');
      await waitFor(c, isClosed, 5000, 'close after 408');
      const dt = Date.now() - t0;
      assert.ok(dt >= 300 && dt < 5000, `closed after ${dt} ms`);
    } finally { c.sock.destroy(); }
  });

  test('slowloris: one header byte every 200 ms is still cut off after the header timeout', async () => {
    const c = await rawConnect(h.port);
    try {
      const t0 = Date.now();
      c.sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      let sent = 0;
      while (!isClosed(c) && c.data.length === 0 && Date.now() - t0 < 8000) {
        c.sock.write('a');
        sent++;
        await sleep(200);
      }
      const dt = Date.now() - t0;
      assert.ok(c.data.length > 0 || isClosed(c), `still open after ${dt} ms of trickling ${sent} bytes`);
      assert.ok(dt < 5000, `slowloris was cut off only after ${dt} ms (header timeout 0.8 s)`);
      assert.ok(dt >= 300, `cut off after ${dt} ms, before the header timeout`);
      await waitFor(c, (x) => parseSeq(x.data).responses.length >= 1 || isClosed(x), 3000, '408');
      const { responses } = parseSeq(c.data);
      assertJsonError(responses[0], 408, 'slowloris');
      await waitFor(c, isClosed, 5000, 'close after 408');
    } finally { c.sock.destroy(); }
  });

  test('a connection that sends nothing is closed after the header timeout', async () => {
    const c = await rawConnect(h.port);
    try {
      const t0 = Date.now();
      await sleep(300);
      assert.ok(!isClosed(c), 'closed before the header timeout');
      await waitFor(c, isClosed, 5000, 'close of a silent connection');
      const dt = Date.now() - t0;
      assert.ok(dt < 5000, `closed after ${dt} ms`);
    } finally { c.sock.destroy(); }
  });

  test('an idle keep-alive socket after a complete request is governed by --idle-timeout, not --header-timeout', async () => {
    const { c, responses } = await exchange(h.port, get('/'), { keep: true });
    try {
      assertIndex(responses[0]);
      await sleep(2000);
      assert.ok(!isClosed(c), 'idle keep-alive socket closed by the header timeout');
      const rs = await more(c, get('/'), { count: 2 });
      assertIndex(rs[1], 'request after 2 s idle');
    } finally { c.sock.destroy(); }
  });
});

describe('idle timeout (--idle-timeout 0.8)', () => {
  let h;
  before(async () => { h = await startHerald(['--public', pub, '--idle-timeout', '0.8', '--header-timeout', '30']); });
  after(async () => { if (h) await h.stop(); });

  test('an idle keep-alive socket is closed after ~the idle timeout', async () => {
    const { c, responses } = await exchange(h.port, get('/'), { keep: true });
    try {
      assertIndex(responses[0]);
      const t0 = Date.now();
      await sleep(300);
      assert.ok(!isClosed(c), 'closed before the idle timeout');
      await waitFor(c, isClosed, 5000, 'idle close');
      const dt = Date.now() - t0;
      assert.ok(dt < 5000, `idle socket closed after ${dt} ms`);
      // nothing but the one response was sent, and no partial garbage
      assert.equal(parseSeq(c.data).responses.length >= 1, true);
    } finally { c.sock.destroy(); }
  });

  test('a socket that keeps sending requests is not cut off by the idle timeout', async () => {
    const c = await rawConnect(h.port);
    try {
      for (let i = 1; i <= 8; i++) {
        const rs = await more(c, get('/'), { count: i });
        assertIndex(rs[i - 1], `request ${i}`);
        await sleep(300);
        assert.ok(!isClosed(c), `closed after request ${i} though it never idled 0.8 s`);
      }
    } finally { c.sock.destroy(); }
  });
});
