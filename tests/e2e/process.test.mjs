// The herald process: --help/--version, bad flags (one "herald:" line on stderr, exit 2),
// clean shutdown on SIGTERM/SIGINT with open connections (WebSockets get close 1001), and a
// valgrind run that drives traffic and must end with no memory errors or leaks.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald, heraldBin, repoRoot, rawConnect, waitFor, wsConnect, waitClose, frame, sleep, sanitizerReport } from './lib/herald.mjs';
import { parseSeq, exchange, isClosed, canConnect, within, assertJsonError } from './lib/http-util.mjs';
import { publish, pollReq, checkPollAnswer } from './lib/channels-util.mjs';

const INDEX = '<!doctype html><p>process tests</p>\n';
let pub;
before(() => {
  pub = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-proc-'));
  fs.writeFileSync(path.join(pub, 'index.html'), INDEX);
  fs.writeFileSync(path.join(pub, 'app.js'), 'console.log(1);\n'.repeat(2000));
});
after(() => { if (pub) fs.rmSync(pub, { recursive: true, force: true }); });

const get = (p, extra = '') => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

function run(args) {
  return spawnSync(heraldBin, args, { encoding: 'utf8', timeout: 5000, cwd: os.tmpdir() });
}

function openWs(port, pathname = '/echo') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${pathname}`);
    ws.closed = new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function wsEcho(ws, data) {
  return new Promise((resolve, reject) => {
    ws.once('message', (d, isBinary) => resolve({ data: d, isBinary }));
    ws.once('error', reject);
    ws.send(data);
  });
}

// ---------------------------------------------------------------------------------------------
describe('command line', () => {
  test("every flag of --help has its row in README's flag table", () => {
    const flags = [...run(['--help']).stdout.matchAll(/^ {2}(?:-\w, )?(--[a-z0-9-]+)/gm)].map((m) => m[1]);
    assert.ok(flags.length > 30, `flags found in --help: ${flags}`);
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const rows = new Set([...readme.matchAll(/^\| `(--[a-z0-9-]+)/gm)].map((m) => m[1]));
    const missing = flags.filter((f) => !rows.has(f) && f !== '--help' && f !== '--version');
    assert.deepEqual(missing, [], 'flags missing from the README table');
  });

  test('every flag of --help has its entry in the man page (man/herald.1)', () => {
    const flags = [...run(['--help']).stdout.matchAll(/^ {2}(?:-\w, )?(--[a-z0-9-]+)/gm)].map((m) => m[1]);
    assert.ok(flags.length > 30, `flags found in --help: ${flags}`);
    // an option's entry: .TP, then the flag in bold (roff writes - as \-)
    const man = fs.readFileSync(path.join(repoRoot, 'man/herald.1'), 'utf8');
    const entries = new Set([...man.matchAll(/^\.TP\n\.B[IR]? (?:\\-\w ", " )?((?:\\-)+[a-z0-9\\-]+)/gm)]
      .map((m) => m[1].replaceAll('\\-', '-')));
    const missing = flags.filter((f) => !entries.has(f));
    assert.deepEqual(missing, [], 'flags missing from man/herald.1');
  });

  test('--help prints usage and exits 0', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0, `exit status; stderr: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: herald/);
    for (const flag of ['--host', '--port', '--public', '--max-head', '--max-body', '--header-timeout', '--idle-timeout', '--help', '--version'])
      assert.ok(r.stdout.includes(flag), `--help does not mention ${flag}`);
    assert.equal(r.stderr, '');
  });

  test('--version prints "herald <version>" and exits 0', () => {
    const r = run(['--version']);
    assert.equal(r.status, 0, `exit status; stderr: ${r.stderr}`);
    assert.match(r.stdout, /^herald \d+\.\d+\.\d+\S*\n$/);
    assert.equal(r.stderr, '');
  });

  const bad = [
    ['--port', 'abc'],
    ['--port', '70000'],
    ['--port', '-1'],
    ['--port', ''],
    ['--port'],
    ['--bogus'],
    ['-x'],
    ['--max-head', '1'],
    ['--max-head', 'lots'],
    ['--max-body', '-5'],
    ['--header-timeout', '0'],
    ['--idle-timeout', 'abc'],
    ['--public', '/etc/passwd'],
    ['stray-argument'],
  ];
  for (const args of bad) {
    test(`bad flag ${JSON.stringify(args.join(' '))}: one "herald:" line on stderr, exit 2`, () => {
      // --host/--port 0 first so that a flag wrongly accepted cannot grab a real port
      const argv = args[0] === '--port' ? ['--host', '127.0.0.1', ...args] : ['--host', '127.0.0.1', '--port', '0', ...args];
      const r = run(argv);
      assert.notEqual(r.error?.code, 'ETIMEDOUT', `herald kept running with ${args.join(' ')}: ${r.stdout}`);
      assert.equal(r.status, 2, `exit status for ${args.join(' ')} (stderr: ${JSON.stringify(r.stderr)})`);
      const lines = r.stderr.replace(/\n$/, '').split('\n');
      assert.equal(lines.length, 1, `stderr should be one line, got: ${JSON.stringify(r.stderr)}`);
      assert.match(lines[0], /^herald: \S/, `stderr: ${JSON.stringify(r.stderr)}`);
      assert.ok(r.stderr.endsWith('\n'), 'stderr line ends with a newline');
      assert.equal(r.stdout, '', 'nothing on stdout');
    });
  }
});

// ---------------------------------------------------------------------------------------------
// An app that needs no pages (channels, Socket.IO clients on other origins) must not need a
// public/ directory: herald warns once and serves no static files.
describe('a --public directory that does not exist', () => {
  let h, missing;
  before(async () => {
    missing = path.join(pub, 'no-such-dir');
    h = await startHerald(['--public', missing]);
  });
  after(async () => { if (h) await h.stop(); });

  test('one warning line naming the directory, and herald runs', async () => {
    // stderr and stdout are separate pipes: the warning may arrive after the listening line
    const about = () => h.output().split('\n').filter((l) => l.includes(missing));
    for (const t0 = Date.now(); about().length === 0 && Date.now() - t0 < 5000;) await sleep(20);
    const lines = about();
    assert.equal(lines.length, 1, `one line about ${missing}, got:\n${h.output()}`);
    assert.match(lines[0], /warn/i);
    assert.match(lines[0], /no such file or directory/i);
    assert.match(h.output(), /listening on .*no static files/);
    assert.equal(h.proc.exitCode, null);
  });

  test('static paths answer 404 JSON', async () => {
    for (const p of ['/', '/index.html', '/app.js', '/vendor/socket.io.min.js']) {
      const { responses } = await exchange(h.port, get(p));
      assertJsonError(responses[0], 404, p);
    }
  });

  test('the Engine.IO handshake and a Socket.IO client work', async () => {
    const res = await fetch(`${h.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.match(body, /^0\{"sid":"[^"]+"/, body);
    const socket = io(h.url, { transports: ['websocket'], reconnection: false, timeout: 5000 });
    try {
      await new Promise((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('connect_error', reject);
      });
      assert.ok(socket.connected);
    } finally { socket.close(); }
  });

  test('channels: publish, then read it back', async () => {
    const { cursor } = await publish(h.url, 'nopublic', { n: 1 });
    const j = checkPollAnswer(await pollReq(h.url, 'poll', 'nopublic', undefined), 'nopublic', null, 'poll');
    assert.deepEqual(j.messages.map((m) => m.data), [{ n: 1 }]);
    assert.equal(j.next, cursor);
  });

  test('SIGTERM stops it cleanly', async () => {
    const { code } = await h.stop();
    assert.equal(code, 0);
    assert.equal(sanitizerReport(h), null);
    h = null;
  });
});

// ---------------------------------------------------------------------------------------------
describe('signals and shutdown', () => {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    test(`${sig} with open keep-alive and WebSocket connections: close 1001, exit 0, port closed`, async () => {
      const h = await startHerald(['--public', pub]);
      const port = h.port;
      const ka = await rawConnect(port);
      ka.sock.write(get('/'));
      await waitFor(ka, (x) => parseSeq(x.data).responses.length >= 1, 5000, 'keep-alive response');
      const ws = await openWs(port);
      const echo = await wsEcho(ws, 'before shutdown');
      assert.equal(echo.data.toString(), 'before shutdown');
      const ws2 = await openWs(port);
      const t0 = Date.now();
      h.proc.kill(sig);
      const [c1, c2] = await Promise.all([ws.closed, ws2.closed]);
      assert.equal(c1.code, 1001, `WebSocket close code on ${sig}`);
      assert.equal(c2.code, 1001, `second WebSocket close code on ${sig}`);
      await waitFor(ka, isClosed, 5000, 'keep-alive socket closed on shutdown');
      const ex = await within(h.exited, 8000);
      if (!ex) h.proc.kill('SIGKILL');
      assert.ok(ex, `herald did not exit within 8 s of ${sig}:\n${h.output().slice(-2000)}`);
      assert.deepEqual(ex, { code: 0, signal: null }, `exit on ${sig}:\n${h.output().slice(-2000)}`);
      assert.ok(Date.now() - t0 < 8000);
      assert.equal(await canConnect(port), false, 'port still accepts connections after exit');
      assert.equal(parseSeq(ka.data).responses.length, 1, 'no extra answer on the idle keep-alive socket');
      ka.sock.destroy();
    });
  }

  test('SIGTERM with no connections exits 0 promptly', async () => {
    const h = await startHerald(['--public', pub]);
    const t0 = Date.now();
    const ex = await h.stop('SIGTERM');
    assert.deepEqual(ex, { code: 0, signal: null });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  });

  test('after SIGTERM the listener is closed at once, even while a WebSocket peer lingers', async () => {
    const h = await startHerald(['--public', pub, '--close-timeout', '2']);
    const port = h.port;
    // a raw WebSocket that never answers the server's close frame
    const c = await wsConnect(port);
    const t0 = Date.now();
    h.proc.kill('SIGTERM');
    const close = await waitClose(c, 5000);
    assert.equal(close.code, 1001, 'close code');
    assert.equal(h.proc.exitCode, null, 'herald should wait for the close handshake (close-timeout 2 s)');
    assert.equal(await canConnect(port), false, 'new connections accepted after SIGTERM');
    const ex = await within(h.exited, 10000);
    if (!ex) h.proc.kill('SIGKILL');
    assert.ok(ex, 'herald did not exit although the peer never answered (close-timeout 2 s)');
    assert.deepEqual(ex, { code: 0, signal: null });
    const dt = Date.now() - t0;
    assert.ok(dt < 10000, `exit took ${dt} ms`);
    c.sock.destroy();
  });

  test('SIGTERM with a half-sent request and a connection that never spoke: exit 0', async () => {
    const h = await startHerald(['--public', pub]);
    const partial = await rawConnect(h.port);
    partial.sock.write('GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ab');
    const silent = await rawConnect(h.port);
    await sleep(100);
    const ex = await within(h.stop('SIGTERM', 15000), 8000);
    assert.ok(ex, `herald did not exit within 8 s:\n${h.output().slice(-2000)}`);
    assert.deepEqual(ex, { code: 0, signal: null });
    await waitFor(partial, isClosed, 3000, 'partial connection closed');
    await waitFor(silent, isClosed, 3000, 'silent connection closed');
    partial.sock.destroy();
    silent.sock.destroy();
  });

  test('a second SIGTERM while waiting for peers stops at once with exit 0', async () => {
    const h = await startHerald(['--public', pub, '--close-timeout', '30']);
    const c = await wsConnect(h.port);
    h.proc.kill('SIGTERM');
    assert.equal((await waitClose(c, 5000)).code, 1001);
    await sleep(200);
    assert.equal(h.proc.exitCode, null, 'still waiting for the close handshake');
    h.proc.kill('SIGTERM');
    const ex = await within(h.exited, 5000);
    if (!ex) h.proc.kill('SIGKILL');
    assert.ok(ex, 'did not exit after the second SIGTERM');
    assert.deepEqual(ex, { code: 0, signal: null });
    c.sock.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
describe('valgrind', () => {
  const valgrind = '/usr/bin/valgrind';
  test('no memory errors or leaks under traffic and shutdown', { timeout: 150000 }, async (t) => {
    if (process.env.E2E_SANITIZE === '1') {
      // AddressSanitizer and valgrind cannot watch the same process; that build has ASan's
      // own leak check, and the plain build runs this test
      t.skip('an AddressSanitizer build: its leak check replaces valgrind here');
      return;
    }
    if (!fs.existsSync(valgrind)) {
      t.skip('valgrind is not installed (/usr/bin/valgrind): memory check skipped');
      return;
    }
    const h = await startHerald(['--public', pub, '--header-timeout', '5'], {
      wrapper: [valgrind, '--leak-check=full', '--errors-for-leak-kinds=definite,indirect', '--error-exitcode=99'],
      timeoutMs: 60000,
    });
    let ex;
    try {
      const port = h.port;
      // static files, keep-alive, pipelining, conditional, HEAD, errors
      const { c: ka, responses } = await exchange(port,
        get('/') + get('/app.js') + get('/missing') + 'HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n' +
        'DELETE /index.html HTTP/1.1\r\nHost: x\r\n\r\n' + 'POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
        { count: 6, methods: ['GET', 'GET', 'GET', 'HEAD'], ms: 20000, keep: true });
      assert.deepEqual(responses.map((r) => r.status), [200, 200, 404, 200, 405, 405]);
      const etag = responses[0].headers.etag;
      const { responses: r304 } = await exchange(port, get('/', `If-None-Match: ${etag}\r\n`), { ms: 20000 });
      assert.equal(r304[0].status, 304);
      for (const p of ['/../etc/passwd', '/%00', '/nope/', '/index.html?x=1']) {
        const { responses: rs } = await exchange(port, get(p), { ms: 20000 });
        assert.ok(rs[0], `no answer to ${p}`);
      }
      // malformed, too large, too long
      for (const bad of ['GARBAGE\r\n\r\n', get('/', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'),
        get('/' + 'a'.repeat(20000)), 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n']) {
        const { responses: rs } = await exchange(port, bad, { ms: 20000, expectClose: true });
        assert.ok(rs[0] && rs[0].status >= 400, 'error answer');
      }
      // a WebSocket echo session, closed normally
      const ws = await openWs(port);
      assert.equal((await wsEcho(ws, 'hello valgrind')).data.toString(), 'hello valgrind');
      const bin = Buffer.alloc(70000, 7);
      const e2 = await wsEcho(ws, bin);
      assert.ok(e2.isBinary && Buffer.from(e2.data).equals(bin), 'binary echo');
      ws.close(1000, 'bye');
      assert.equal((await ws.closed).code, 1000);
      // a raw WebSocket that breaks the protocol (unmasked frame)
      const rawWs = await wsConnect(port);
      rawWs.sock.write(frame(1, 'unmasked', { masked: false }));
      await waitClose(rawWs, 20000);
      rawWs.sock.destroy();
      // left open at shutdown: a WebSocket, the keep-alive socket, a half-sent request
      const open = await openWs(port);
      assert.equal((await wsEcho(open, 'still here')).data.toString(), 'still here');
      const partial = await rawConnect(port);
      partial.sock.write('GET / HTTP/1.1\r\nHost: x\r\n');
      await sleep(200);
      h.proc.kill('SIGTERM');
      assert.equal((await open.closed).code, 1001, 'open WebSocket gets 1001 on SIGTERM');
      ex = await within(h.exited, 60000);
      ka.sock.destroy();
      partial.sock.destroy();
    } finally {
      if (!ex) await h.stop('SIGKILL');
    }
    const out = h.output();
    assert.ok(ex, `herald under valgrind did not exit within 60 s of SIGTERM:\n${out.slice(-3000)}`);
    assert.match(out, /Memcheck/, 'herald did not run under valgrind memcheck');
    assert.match(out, /ERROR SUMMARY: 0 errors/, `valgrind found errors:\n${out.slice(-6000)}`);
    assert.deepEqual(ex, { code: 0, signal: null }, `exit status under valgrind (99 = valgrind errors):\n${out.slice(-6000)}`);
  });
});
