// TLS (--tls-cert, --tls-key): HTTPS and WSS on herald's one listener, with a test CA and
// server certificates made here by the openssl CLI. Every transport over TLS (static files, the
// publish API, short and long polling, SSE, /ws/{channel}, /echo, Socket.IO with polling, the
// upgrade and the Engine.IO hand-off between the two default workers, Chromium on the chat page);
// old TLS versions and plain HTTP refused with herald unharmed; the certificate reloaded on
// SIGHUP while connections go on (and kept when the new files are broken); a handshake that
// does not finish closed at the deadline without holding anyone up; the per-address limit.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald, repoRoot, sleep } from './lib/herald.mjs';
import { eventually, stopChecked, assertAlive } from './lib/channels-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-tls-'));
const f = (n) => path.join(dir, n);
const SLOW = process.env.E2E_SANITIZE === '1' || process.env.E2E_SANITIZE === 'ON';
const WAIT = SLOW ? 20000 : 8000;

function run(cmd, args, { timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function openssl(...args) {
  const r = await run('openssl', args);
  assert.equal(r.code, 0, `openssl ${args.join(' ')}:\n${r.stderr}`);
}

// A CA, and two server certificates for 127.0.0.1 / localhost that it signed (serials 1001,
// 2002); EC P-256 keys (quick to make).
async function makeCertificates() {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=herald test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  for (const [n, serial] of [[1, '0x1001'], [2, '0x2002']]) {
    await openssl('req', ...ec, '-keyout', f(`srv${n}.key`), '-out', f(`srv${n}.csr`), '-subj', `/CN=herald test server ${n}`);
    await openssl('x509', '-req', '-in', f(`srv${n}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-set_serial', serial, '-days', '2', '-extfile', f('ext.cnf'), '-out', f(`srv${n}.pem`));
  }
  // the files herald is given: server 1's, replaced by server 2's for the reload
  copyFileSync(f('srv1.pem'), f('cert.pem'));
  copyFileSync(f('srv1.key'), f('key.pem'));
}

let ca;
const TLS_ARGS = () => ['--tls-cert', f('cert.pem'), '--tls-key', f('key.pem')];

function curl(url, extra = []) {
  return run('curl', ['-sS', '--max-time', '10', '--cacert', f('ca.pem'), ...extra, url]);
}

// An HTTPS request on a TLS connection of its own (the CA trusted), read until herald closes
// it (Connection: close). The client does not half-close: to herald that means it left.
function httpsRequest(url, { method = 'GET', body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = tls.connect({ host: u.hostname, port: Number(u.port), ca, servername: 'localhost' }, () => {
      const b = body === undefined ? '' : body;
      let h = `${method} ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n`;
      for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
      if (body !== undefined) h += `Content-Length: ${Buffer.byteLength(b)}\r\n`;
      req.write(h + '\r\n' + b);
    });
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const i = text.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]), head: text.slice(0, i), body: text.slice(i + 4) });
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${url}: no answer`)));
  });
}

async function pub(base, ch, value) {
  const r = await httpsRequest(`${base}/pub/${ch}`, { method: 'POST', body: JSON.stringify(value), headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 200, `POST /pub/${ch}: ${r.head}\n${r.body}`);
  return JSON.parse(r.body);
}

// A raw TLS stream reader (SSE): everything decrypted so far, as text.
function tlsStream(port, requestText) {
  const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => s.write(requestText));
  const c = { sock: s, text: '', closed: false };
  s.setEncoding('utf8');
  s.on('data', (d) => { c.text += d; });
  s.on('close', () => { c.closed = true; });
  s.on('error', () => { c.closed = true; });
  return c;
}

// The serial number of the certificate a new TLS connection is shown.
function peerSerial(port) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
    s.setTimeout(10000, () => s.destroy(new Error('no handshake')));
  });
}

function wssOpen(url) {
  const ws = new WebSocket(url, { ca });
  const c = { ws, msgs: [], closed: null };
  ws.on('message', (d) => c.msgs.push(d));
  ws.on('close', (code) => { c.closed = code; });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(c));
    ws.once('error', reject);
  });
}

before(async () => {
  await makeCertificates();
  ca = readFileSync(f('ca.pem'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('TLS flags', () => {
  test('both or neither, a readable certificate and its own key: exit 2 with a reason otherwise', async () => {
    const bin = process.env.E2E_HERALD_BIN ? path.resolve(process.env.E2E_HERALD_BIN) : path.join(repoRoot, 'build/herald');
    const cases = [
      [['--tls-cert', f('cert.pem')], /--tls-cert needs --tls-key/],
      [['--tls-key', f('key.pem')], /--tls-key needs --tls-cert/],
      [['--tls-cert', f('missing.pem'), '--tls-key', f('key.pem')], /--tls-cert .*missing\.pem: No such file/],
      [['--tls-cert', f('srv1.pem'), '--tls-key', f('srv2.key')], /is not the key of the certificate/],
      [['--tls-cert', f('srv1.key'), '--tls-key', f('srv1.key')], /--tls-cert .*srv1\.key: /],
      [['--tls-cert', f('cert.pem'), '--tls-key', f('key.pem'), '--io-uring'], /--io-uring does not apply to TLS/],
    ];
    for (const [args, want] of cases) {
      const r = await run(bin, ['--port', '0', '--host', '127.0.0.1', '--store', 'memory', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`);
      assert.match(r.stderr, want, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
  });
});

describe('HTTPS and WSS', () => {
  let h;
  // 300 publishes in one burst over wss is the point of one test: no per-client message rate
  before(async () => { h = await startHerald([...TLS_ARGS(), '--max-msg-rate', '0']); });
  after(async () => { await stopChecked(h); });

  test('the startup line says https://', () => {
    assert.match(h.output(), /listening on https:\/\/127\.0\.0\.1:\d+/);
    assert.ok(h.url.startsWith('https://'));
  });

  test('curl: static page, publish, poll, long-poll, SSE', async () => {
    const page = await curl(`${h.url}/`, ['-w', '\n%{http_code} %{ssl_verify_result} %{http_version}']);
    assert.equal(page.code, 0, page.stderr);
    assert.match(page.stdout, /<title>herald chat<\/title>/);
    assert.match(page.stdout, /\n200 0 1\.1$/);

    const ch = `tls-curl-${process.pid}`;
    const p = await curl(`${h.url}/pub/${ch}`, ['-H', 'Content-Type: application/json', '--data-binary', '{"n":1,"text":"über TLS"}']);
    assert.equal(p.code, 0, p.stderr);
    const first = JSON.parse(p.stdout);
    assert.equal(first.id, 1);

    await eventually(async () => {
      const r = await curl(`${h.url}/poll/${ch}`);
      const j = JSON.parse(r.stdout);
      return j.messages.length === 1 && j.messages[0].data.text === 'über TLS';
    }, WAIT, 'GET /poll over TLS');

    // a long-poll waiting past the last message, answered by the next publish
    const lp = curl(`${h.url}/lp/${ch}?since=${first.cursor}`);
    await sleep(300);
    await pub(h.url, ch, { n: 2 });
    const lr = await lp;
    assert.equal(lr.code, 0, lr.stderr);
    const lj = JSON.parse(lr.stdout);
    assert.deepEqual(lj.messages.map((m) => m.data), [{ n: 2 }]);

    // SSE with curl -N: a message published after it connected
    const sse = spawn('curl', ['-sS', '-N', '--max-time', '20', '--cacert', f('ca.pem'), `${h.url}/sse/${ch}?since=${lj.next}`]);
    let out = '';
    sse.stdout.on('data', (d) => { out += d; });
    try {
      await eventually(() => out.length > 0 || sse.exitCode !== null, WAIT, 'the SSE stream to open');
      await pub(h.url, ch, { n: 3, sse: true });
      await eventually(() => /data: \{"n":3,"sse":true\}/.test(out), WAIT, 'the SSE event');
    } finally {
      sse.kill();
    }
  });

  test('TLS 1.1 and plain HTTP are refused; herald goes on', async () => {
    const old = await curl(`${h.url}/`, ['--tls-max', '1.1']);
    assert.notEqual(old.code, 0, 'a TLS 1.1 handshake fails');
    assert.doesNotMatch(old.stdout, /herald/);

    const plain = await curl(`http://127.0.0.1:${h.port}/`);
    assert.notEqual(plain.code, 0, `plain HTTP gets no HTTP answer: ${plain.stdout}`);
    // and on a raw socket: whatever comes back is not HTTP, and the socket is closed
    const raw = await new Promise((resolve) => {
      const s = net.connect(h.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = Buffer.alloc(0);
      s.on('data', (d) => { got = Buffer.concat([got, d]); });
      s.on('close', () => resolve(got));
      s.on('error', () => {});
      s.setTimeout(10000, () => s.destroy());
    });
    assert.ok(!raw.toString('latin1').startsWith('HTTP/'), `no HTTP answer: ${raw.toString('latin1').slice(0, 80)}`);

    // ALPN: http/1.1 when offered, nothing when not
    const alpn = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.port, ca, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        resolve([s.alpnProtocol, s.getProtocol()]);
        s.end();
      });
      s.on('error', reject);
    });
    assert.deepEqual(alpn, ['http/1.1', 'TLSv1.3']);
    const tls12 = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.port, ca, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
        resolve([s.alpnProtocol, s.getProtocol(), s.getCipher().name]);
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(tls12[0], false);
    assert.equal(tls12[1], 'TLSv1.2');
    assert.match(tls12[2], /^ECDHE-/, 'forward secrecy');

    // resumption by ticket, on whichever worker the next connection lands
    const session = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: h.port, ca, servername: 'localhost', maxVersion: 'TLSv1.2' });
      s.once('session', (sess) => { resolve(sess); s.end(); });
      s.on('error', reject);
    });
    for (let i = 0; i < 4; i++) {
      const reused = await new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: h.port, ca, servername: 'localhost', maxVersion: 'TLSv1.2', session }, () => {
          resolve(s.isSessionReused());
          s.end();
        });
        s.on('error', reject);
      });
      assert.equal(reused, true, `connection ${i} resumed the session`);
    }

    assertAlive(h);
    const again = await curl(`${h.url}/`, ['-o', '/dev/null', '-w', '%{http_code}']);
    assert.equal(again.stdout, '200');
  });

  test('wss: /ws/{channel} and /echo (small and large messages)', async () => {
    const ch = `tls-ws-${process.pid}`;
    const wsUrl = h.url.replace('https:', 'wss:');
    const reader = await wssOpen(`${wsUrl}/ws/${ch}`);
    await pub(h.url, ch, { over: 'wss' });
    await eventually(() => reader.msgs.some((m) => /"over\\?":\\?"wss/.test(m.toString())), WAIT, 'the /ws message');
    // many small messages at once: gathered into records, all in order
    const N = 300;
    for (let i = 0; i < N; i++) reader.ws.send(JSON.stringify({ i }));
    await eventually(() => reader.msgs.filter((m) => /"i\\?":/.test(m.toString())).length >= N, WAIT * 2, 'the published frames');
    const seen = reader.msgs.map((m) => m.toString()).filter((t) => /"i\\?":/.test(t)).map((t) => Number(/"i\\?":(\d+)/.exec(t)[1]));
    assert.deepEqual(seen, [...Array(N).keys()]);
    reader.ws.close();

    const echo = await wssOpen(`${wsUrl}/echo`);
    echo.ws.send('héllo');
    const big = Buffer.alloc(300 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    echo.ws.send(big);
    await eventually(() => echo.msgs.length >= 2, WAIT, 'the echoes');
    assert.equal(echo.msgs[0].toString(), 'héllo');
    assert.ok(Buffer.compare(echo.msgs[1], big) === 0, 'the 300 KB message comes back intact');
    echo.ws.close(1000);
    await eventually(() => echo.closed !== null, WAIT, 'the close');
    assert.equal(echo.closed, 1000);
  });

  test('socket.io-client: polling, the upgrade to WebSocket, the hand-off between workers', async () => {
    assert.match(h.output(), /2 workers/, 'two workers: Engine.IO requests are handed over');
    const clients = [];
    const mk = (opts = {}) => {
      const socket = io(h.url, { ca, forceNew: true, reconnection: false, timeout: WAIT, ...opts });
      const c = { socket, msgs: [], sids: new Set() };
      socket.on('message', (m) => c.msgs.push(m));
      socket.io.on('open', () => c.sids.add(socket.io.engine.id));
      clients.push(c);
      return c;
    };
    try {
      // the default transports (polling, then the upgrade) and polling alone, a few of each:
      // their requests come on new connections that either worker may accept
      const all = [mk(), mk(), mk({ transports: ['polling'] }), mk({ transports: ['polling'] })];
      await eventually(() => all.every((c) => c.socket.connected), WAIT, 'every client connected');
      for (const c of all) await eventually(() => c.msgs.some((m) => m?.type === 'init' && m.message === '欢迎连接'), WAIT, 'the greeting');
      await eventually(() => all.slice(0, 2).every((c) => c.socket.io.engine.transport.name === 'websocket'), WAIT, 'the upgrade');
      const workers = new Set(all.map((c) => c.socket.io.engine.id[0]));
      const tag = `tls-${process.pid}`;
      for (const [k, c] of all.entries()) for (let i = 0; i < 5; i++) c.socket.emit('message', { type: 'message', message: `${tag} ${k}.${i}`, userId: `u${k}` });
      const want = all.flatMap((_, k) => [0, 1, 2, 3, 4].map((i) => `${tag} ${k}.${i}`));
      for (const c of all) {
        await eventually(() => want.every((t) => c.msgs.some((m) => m?.message === t)), WAIT, `every broadcast (sessions on workers ${[...workers]})`);
        for (const t of want) assert.equal(c.msgs.filter((m) => m?.message === t).length, 1, `${t} once`);
      }
      assert.ok(all.every((c) => c.sids.size === 1), 'one session each: nothing reconnected');
    } finally {
      for (const c of clients) c.socket.disconnect();
    }
  });

  test('Chromium: the chat page over HTTPS, on its default Socket.IO transport', { skip: skipWithoutChromium }, async () => {
    const browser = await launchChromium();
    try {
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await ctx.newPage();
      const problems = [];
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(`${h.url}/?user=alice`);
      await page.waitForFunction(() => document.getElementById('state').textContent === 'connected', null, { timeout: WAIT * 2 });
      assert.equal(await page.evaluate(() => location.protocol), 'https:');
      assert.equal(await page.evaluate(() => document.body.dataset.transport), 'socketio');
      await page.locator('#messages .notice.welcome').waitFor({ timeout: WAIT });
      const text = `hello over TLS ${process.pid}`;
      await page.fill('#input', text);
      await page.press('#input', 'Enter');
      await page.waitForFunction((t) => [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === t), text, { timeout: WAIT });
      const out = path.join(repoRoot, 'test-output');
      mkdirSync(out, { recursive: true });
      await page.screenshot({ path: path.join(out, 'tls-chat.png') });
      assert.deepEqual(problems, []);
      await ctx.close();
    } finally {
      await browser.close();
    }
  });
});

describe('SIGHUP reload', () => {
  let h;
  before(async () => {
    copyFileSync(f('srv1.pem'), f('cert.pem'));
    copyFileSync(f('srv1.key'), f('key.pem'));
    h = await startHerald(TLS_ARGS());
  });
  after(async () => { await stopChecked(h); });

  test('a new certificate for new handshakes, old connections untouched; a broken key changes nothing', async () => {
    for (let i = 0; i < 4; i++) assert.equal(await peerSerial(h.port), '1001');
    const ch = `tls-reload-${process.pid}`;
    const ws = await wssOpen(`${h.url.replace('https:', 'wss:')}/ws/${ch}`);
    const sse = tlsStream(h.port, `GET /sse/${ch} HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n`);
    await eventually(() => /^HTTP\/1\.1 200/.test(sse.text), WAIT, 'the SSE head');
    await pub(h.url, ch, { before: 1 });
    await eventually(() => sse.text.includes('{"before":1}') && ws.msgs.length === 1, WAIT, 'the first message on both');

    copyFileSync(f('srv2.pem'), f('cert.pem'));
    copyFileSync(f('srv2.key'), f('key.pem'));
    h.proc.kill('SIGHUP');
    await eventually(() => /SIGHUP: TLS certificate reloaded from .*cert\.pem/.test(h.output()), WAIT, 'the reload line');
    // every worker's new handshakes (the kernel spreads connections over both)
    for (let i = 0; i < 8; i++) assert.equal(await peerSerial(h.port), '2002');
    await pub(h.url, ch, { after: 1 });
    await eventually(() => sse.text.includes('{"after":1}') && ws.msgs.length === 2, WAIT, 'the old connections still receive');
    assert.ok(!sse.closed && ws.closed === null);

    // a key that does not load: a warning, the certificate of the last good load stays
    writeFileSync(f('key.pem'), '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
    h.proc.kill('SIGHUP');
    await eventually(() => /warn: SIGHUP: --tls-key .*key\.pem: .*; still serving the previous certificate/.test(h.output()), WAIT, 'the warning');
    for (let i = 0; i < 4; i++) assert.equal(await peerSerial(h.port), '2002');
    await pub(h.url, ch, { broken: 1 });
    await eventually(() => sse.text.includes('{"broken":1}') && ws.msgs.length === 3, WAIT, 'still receiving');
    ws.ws.close();
    sse.sock.destroy();
    assertAlive(h);
  });

  test('SIGHUP without TLS: nothing to reload, herald goes on', async () => {
    const p = await startHerald(['--store', 'memory']);
    try {
      p.proc.kill('SIGHUP');
      await eventually(() => /SIGHUP: no TLS certificate configured, nothing to reload/.test(p.output()), WAIT, 'the line');
      assertAlive(p);
    } finally {
      await stopChecked(p);
    }
  });
});

describe('handshakes and limits', () => {
  let h;
  before(async () => {
    copyFileSync(f('srv1.pem'), f('cert.pem'));
    copyFileSync(f('srv1.key'), f('key.pem'));
    h = await startHerald([...TLS_ARGS(), '--header-timeout', '1', '--max-connections-per-ip', '6']);
  });
  after(async () => { await stopChecked(h); });

  test('a handshake that never finishes is closed at the deadline and holds up no one', async () => {
    const stalled = [];
    const t0 = Date.now();
    for (const hello of [null, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])]) {
      const s = net.connect(h.port, '127.0.0.1', () => { if (hello) s.write(hello); });
      const c = { s, closedAt: 0, got: 0 };
      s.on('data', (d) => { c.got += d.length; });
      s.on('close', () => { c.closedAt = Date.now(); });
      s.on('error', () => {});
      stalled.push(c);
    }
    // meanwhile others are served at once
    for (let i = 0; i < 3; i++) {
      const r = await httpsRequest(`${h.url}/pub/tls-hs`);
      assert.equal(r.status, 200);
    }
    assert.ok(stalled.every((c) => !c.closedAt), 'served while the stalled handshakes still wait');
    await eventually(() => stalled.every((c) => c.closedAt), 6000, 'the stalled handshakes closed');
    for (const c of stalled) {
      assert.ok(c.closedAt - t0 >= 900, `closed after the 1 s deadline, not before (${c.closedAt - t0} ms)`);
      assert.ok(c.closedAt - t0 < 4000, `closed within the deadline and a sweep (${c.closedAt - t0} ms)`);
    }
    assertAlive(h);
  });

  test('--max-connections-per-ip counts TLS connections', async () => {
    const open = [];
    for (let i = 0; i < 6; i++) open.push(tlsStream(h.port, `GET /sse/tls-limit HTTP/1.1\r\nHost: localhost\r\n\r\n`));
    await eventually(() => open.every((c) => /^HTTP\/1\.1 200/.test(c.text)), WAIT, 'six streams');
    const seventh = tlsStream(h.port, `GET /sse/tls-limit HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    await eventually(() => seventh.closed, WAIT, 'the seventh refused');
    assert.equal(seventh.text, '');
    open[0].sock.destroy();
    await sleep(200);
    const again = tlsStream(h.port, `GET /sse/tls-limit HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    await eventually(() => /^HTTP\/1\.1 200/.test(again.text), WAIT, 'a place again');
    for (const c of [...open, again]) c.sock.destroy();
    assertAlive(h);
  });
});

// Tokens and origins over TLS: herald's own pages are https:// ones, a token works on wss and
// https as on plain HTTP.
describe('access control over TLS', () => {
  const SECRET = 'a-secret-for-the-tls-test-0123456789abc';
  const token = (sub) => {
    const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const head = `${b({ alg: 'HS256', typ: 'JWT' })}.${b({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
    return `${head}.${crypto.createHmac('sha256', SECRET).update(head).digest('base64url')}`;
  };
  const wssFate = (url, headers) => new Promise((resolve) => {
    const ws = new WebSocket(url, { ca, headers });
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('unexpected-response', (req, res) => { res.resume(); resolve(res.statusCode); });
    ws.once('error', () => resolve('error'));
  });
  test("the same-origin check knows https; a token opens the user's channel over wss and https", async () => {
    copyFileSync(f('srv1.pem'), f('cert.pem'));
    copyFileSync(f('srv1.key'), f('key.pem'));
    const h = await startHerald([...TLS_ARGS(), '--jwt-secret', SECRET]);
    try {
      const wss = h.url.replace('https:', 'wss:');
      const own = h.url;                                 // https://127.0.0.1:PORT
      const plain = h.url.replace('https:', 'http:');   // same host and port, but not this scheme
      assert.equal(await wssFate(`${wss}/ws/chat`, { Origin: own }), 101, 'https page of herald itself');
      assert.equal(await wssFate(`${wss}/ws/chat`, { Origin: plain }), 403, 'an http:// page is another origin');
      assert.equal(await wssFate(`${wss}/ws/user:alice`, {}), 401, 'no token');
      assert.equal(await wssFate(`${wss}/ws/user:alice?token=${token('bob')}`, {}), 403, "bob's token");
      assert.equal(await wssFate(`${wss}/ws/user:alice?token=${token('alice')}`, {}), 101, "alice's token");
      const r = await httpsRequest(`${h.url}/poll/user:alice`, { headers: { Authorization: `Bearer ${token('alice')}` } });
      assert.equal(r.status, 200);
    } finally {
      await stopChecked(h);
    }
  });
});
