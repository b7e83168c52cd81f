// Logs (README, Operations): text lines for people by default, JSON lines with --log-format
// json, levels (--log-level, --quiet), an access line per HTTP answer with --access-log — and
// never a token, the token secret or the publish key in any line, whichever way a client
// presents them (?token=, Authorization: Bearer, the token cookie, Socket.IO auth.token).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald, heraldBin, httpExchange } from './lib/herald.mjs';
import { request, SseClient, eventually, JSON_TYPE, stopChecked } from './lib/channels-util.mjs';

const SECRET = 'logs-test-secret-of-at-least-32-bytes-XYZ';
const PUBKEY = 'logs-test-publish-key-0123456789';
const T = { timeout: 60000 };

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function jwt(claims) {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${crypto.createHmac('sha256', SECRET).update(head).digest().toString('base64url')}`;
}
const tokenFor = (sub) => jwt({ sub, exp: Math.floor(Date.now() / 1000) + 600 });

// herald's output as lines, without the one stdout line (where it listens).
const logLines = (h) => h.output().split('\n').filter((l) => l && !/^herald \S+ listening on /.test(l));

const wsOpen = (h, p, headers = {}) => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}${p}`, { headers });
  ws.once('open', () => resolve(ws));
  ws.once('error', reject);
  ws.once('unexpected-response', (req, res) => { resolve({ status: res.statusCode }); });
});

describe('--log-format json --access-log, with tokens on every transport', () => {
  test('every line is a JSON object; each request has its access line; no secret in any line', T, async () => {
    const h = await startHerald(['--log-format', 'json', '--access-log', '--jwt-secret', SECRET,
      '--publish-key', PUBKEY, '--max-msg-rate', '0']);
    const alice = tokenFor('alice');
    const bob = tokenFor('bob');
    const forged = `${alice.slice(0, -4)}AAAA`;
    const clients = [];
    try {
      // ?token= on a poll and an SSE stream, Authorization on a long-poll, a cookie on a WebSocket
      assert.equal((await request(h.url, 'GET', `/poll/user:alice?token=${alice}&since=0`)).status, 200);
      assert.equal((await request(h.url, 'GET', `/poll/user:alice?since=0&Token=${forged}`)).status, 401);
      const sse = await SseClient.open(h.port, `/sse/user:alice?token=${alice}`);
      clients.push({ close: () => sse.sock.destroy() });
      assert.equal(sse.status, 200);
      const ws = await wsOpen(h, '/ws/user:bob', { Cookie: `theme=dark; herald_token=${bob}` });
      assert.ok(ws instanceof WebSocket, `the cookie's WebSocket opened (${JSON.stringify(ws.status)})`);
      clients.push({ close: () => ws.close() });
      const lp = request(h.url, 'GET', '/lp/user:alice?since=0&timeout=1', { headers: { Authorization: `Bearer ${alice}` } });
      // the backend publishes with the publish key, in the header and in the query
      assert.equal((await request(h.url, 'POST', '/pub/user:alice', {
        body: JSON.stringify({ unread: 1 }), headers: { ...JSON_TYPE, Authorization: `Bearer ${PUBKEY}` },
      })).status, 200);
      assert.equal((await lp).status, 200);
      await eventually(() => sse.events.length >= 1, 5000, 'the SSE reader got the publish');
      // Socket.IO with auth.token over polling then WebSocket; a refused one
      const s = io(h.url, { auth: { token: alice }, forceNew: true, reconnection: false });
      clients.push({ close: () => s.close() });
      await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
      const bad = io(h.url, { auth: { token: forged }, forceNew: true, reconnection: false });
      clients.push({ close: () => bad.close() });
      await new Promise((resolve) => bad.once('connect_error', resolve));
      // a request the parser refuses has its line too
      const raw = await httpExchange(h.port, 'GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
      assert.match(raw.raw, /^HTTP\/1\.1 400 /);

      await eventually(() => logLines(h).some((l) => l.includes('"target":"/x"')), 5000, 'the refused request logged');
      const lines = logLines(h);
      const objs = lines.map((l) => {
        try { return JSON.parse(l); } catch { assert.fail(`not a JSON line: ${l}`); }
        return null;
      });
      for (const o of objs) {
        assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, JSON.stringify(o));
        assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level), JSON.stringify(o));
        assert.ok(o.type === 'access' || typeof o.msg === 'string', JSON.stringify(o));
      }
      const access = objs.filter((o) => o.type === 'access');
      const find = (method, prefix, status) => access.find((o) => o.method === method && o.target.startsWith(prefix) && o.status === status);
      for (const [m, p, st] of [['GET', '/poll/user:alice?token=[redacted]&since=0', 200],
        ['GET', '/poll/user:alice?since=0&Token=[redacted]', 401], ['GET', '/sse/user:alice?token=[redacted]', 200],
        ['GET', '/ws/user:bob', 101], ['GET', '/lp/user:alice', 200], ['POST', '/pub/user:alice', 200],
        ['GET', '/socket.io/?EIO=4&transport=polling', 200], ['GET', '/socket.io/?EIO=4&transport=websocket&sid=', 101],
        ['GET', '/x', 400]]) {
        const o = find(m, p, st);
        assert.ok(o, `an access line for ${m} ${p} ${st} in:\n${access.map((a) => JSON.stringify(a)).join('\n')}`);
        assert.equal(o.remote, '127.0.0.1');
        assert.equal(o.http, '1.1');
        assert.equal(typeof o.ms, 'number');
      }
      assert.equal(find('GET', '/sse/', 200).length, null, 'a stream has no length');
      assert.equal(typeof find('POST', '/pub/user:alice', 200).length, 'number');
      // nothing secret anywhere, whole or in part
      const all = h.output();
      for (const secret of [SECRET, PUBKEY, alice, bob, forged, alice.split('.')[2], bob.split('.')[2], forged.split('.')[2]]) {
        assert.ok(!all.includes(secret), `a secret in the log: ${secret.slice(0, 12)}...\n${all.slice(-3000)}`);
      }
    } finally {
      for (const c of clients) c.close();
      await stopChecked(h);
    }
  });
});

describe('text format and levels', () => {
  const TEXT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z herald (error|warn|info|debug|access): ./;

  test('text by default: every line stamped with its level; no access lines without --access-log', T, async () => {
    const h = await startHerald([]);
    try {
      const s = io(h.url, { forceNew: true, reconnection: false });
      await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
      s.close();
      await eventually(() => logLines(h).some((l) => / herald info: user disconnected: /.test(l)), 5000, 'the chat app logs at info');
      assert.equal((await request(h.url, 'GET', '/')).status, 200);
      for (const l of logLines(h)) assert.match(l, TEXT);
      assert.ok(!logLines(h).some((l) => / herald access: /.test(l)), 'no access lines by default');
    } finally {
      await stopChecked(h);
    }
  });

  test('--access-log in text: address, request line, status, length, time', T, async () => {
    const h = await startHerald(['--access-log']);
    try {
      assert.equal((await request(h.url, 'GET', '/nope?token=abc&x="y"')).status, 404);
      await eventually(() => logLines(h).some((l) => l.includes(' herald access: ')), 5000, 'an access line');
      const l = logLines(h).find((x) => x.includes(' herald access: '));
      assert.match(l, /^\S+Z herald access: 127\.0\.0\.1 "GET \/nope\?token=\[redacted\]&x=\\"y\\" HTTP\/1\.1" 404 \d+ \d+ ms$/);
    } finally {
      await stopChecked(h);
    }
  });

  test('--log-level warn drops info lines, keeps warnings; --quiet keeps errors only', T, async () => {
    for (const [args, infoSeen, warnSeen] of [[['--log-level', 'warn'], false, true], [['--quiet'], false, false],
      [['--log-level', 'debug'], true, true], [[], true, true]]) {
      const h = await startHerald([...args, '--public', '/nonexistent-herald-dir']);
      try {
        const s = io(h.url, { forceNew: true, reconnection: false });
        await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
        s.close();
      } finally {
        await stopChecked(h); // "stopped" is an info line
      }
      await h.closed; // every line read
      const lines = logLines(h);
      for (const l of lines) assert.match(l, TEXT);
      assert.equal(lines.some((l) => / herald info: stopped$/.test(l)), infoSeen, `${args}: info lines ${infoSeen}:\n${lines.join('\n')}`);
      assert.equal(lines.some((l) => / herald info: user connected: /.test(l)), infoSeen, `${args}: the app's info line ${infoSeen}`);
      assert.equal(lines.some((l) => / herald warn: --public /.test(l)), warnSeen, `${args}: the --public warning ${warnSeen}:\n${lines.join('\n')}`);
    }
  });

  test('bad values are refused at start with the reason', T, () => {
    for (const [flag, value, want] of [['--log-level', 'loud', '--log-level wants error, warn, info or debug'],
      ['--log-format', 'xml', '--log-format wants text or json']]) {
      const r = spawnSync(heraldBin, [flag, value, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 2, `${flag} ${value}: exit 2 (${r.status}) ${r.stderr}`);
      assert.ok(r.stderr.includes(want), `${flag} ${value}: ${r.stderr}`);
    }
  });
});
