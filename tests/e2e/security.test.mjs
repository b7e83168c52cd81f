// Access control against the real binary (docs/security.md): signed tokens (HS256, RS256,
// ES256) on every transport — Socket.IO auth.token, "Authorization: Bearer", ?token=, the
// token cookie — the built-in user:{sub} rule, configured channel rules, token grants, the
// publish key of backends, expiry on long-lived connections with a resume that loses nothing,
// Socket.IO's herald:refresh, and the dev-only token endpoint.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald, sleep } from './lib/herald.mjs';
import { request, SseClient, eventually, JSON_TYPE, idOf, stopChecked } from './lib/channels-util.mjs';

const SECRET = 'an-hs256-secret-of-at-least-32-bytes!';
const PUBKEY = 'the-backends-publish-key-0123';
const T = { timeout: 60000 };

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// A JWT signed as RFC 7515 says, with node's own crypto (nothing of herald's).
function jwt(claims, { alg = 'HS256', key = SECRET } = {}) {
  const head = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  let sig;
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key).update(head).digest();
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(head), key);
  else if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(head), { key, dsaEncoding: 'ieee-p1363' });
  else sig = Buffer.alloc(0);
  return `${head}.${sig.toString('base64url')}`;
}
const tokenFor = (sub, ttl = 600, extra = {}) => jwt({ sub, exp: now() + ttl, ...extra });

const bearer = (t) => ({ Authorization: `Bearer ${t}` });
const get = (h, p, headers = {}) => request(h.url, 'GET', p, { headers, timeoutMs: 5000 });
const post = (h, ch, value, headers = {}) => request(h.url, 'POST', `/pub/${ch}`, {
  body: JSON.stringify(value), headers: { ...JSON_TYPE, ...headers }, timeoutMs: 5000,
});

// A WebSocket's fate: { open: true, ws, got } or { status, body } when the handshake was
// refused. got: the frames it receives, parsed (collected from the start: a replay may come
// in the same read as the handshake's answer).
function wsOpen(h, p, headers = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}${p}`, { headers });
    const got = collect(ws);
    ws.once('open', () => resolve({ open: true, ws, got }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ open: false, status: res.statusCode, body }));
    });
    ws.once('error', (e) => resolve({ open: false, error: e }));
  });
}

// Messages of a ws channel socket, parsed.
function collect(ws) {
  const got = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString())));
  return got;
}

function sio(h, auth, opts = {}) {
  return io(h.url, { auth, forceNew: true, reconnection: false, transports: ['websocket'], ...opts });
}
function sioConnect(s) {
  return new Promise((resolve) => {
    s.once('connect', () => resolve({ ok: true }));
    s.once('connect_error', (e) => resolve({ ok: false, message: e.message }));
  });
}
// The channel messages a socket got on channel (the last argument of "message" is the cursor).
function sioMessages(s) {
  const got = [];
  s.on('message', (v, ...rest) => {
    const cur = rest[rest.length - 1];
    if (typeof cur === 'string' && cur.includes(':')) got.push({ v, cur });
  });
  return got;
}

async function assertRefused(res, status, reason, what) {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.text ?? res.body}`);
  const body = res.json ?? JSON.parse(res.body);
  assert.equal(typeof body.error, 'string', `${what}: a JSON error`);
  if (reason) assert.match(body.error, reason, what);
}

describe('security: tokens and channel rules on every transport', () => {
  let h;
  before(async () => {
    h = await startHerald(['--jwt-secret', SECRET, '--publish-key', PUBKEY,
      '--channel-rule', 'news:* all none', '--channel-rule', 'team:* token token']);
  });
  after(async () => { await stopChecked(h); });

  const alice = () => tokenFor('alice');
  const bob = () => tokenFor('bob');

  test('no token: user:alice refused (401 with the reason) on /sse, /lp, /poll, /pub, /ws; chat stays open', T, async () => {
    for (const p of ['/poll/user:alice', '/lp/user:alice', '/pub/user:alice']) {
      const r = await get(h, p);
      await assertRefused(r, 401, /token is needed to read/, p);
      assert.match(r.headers['www-authenticate'] ?? '', /^Bearer/, `${p}: WWW-Authenticate`);
    }
    const sse = await SseClient.open(h.port, '/sse/user:alice');
    assert.equal(sse.status, 401, 'SSE refused before it becomes a stream');
    sse.sock.destroy();
    const w = await wsOpen(h, '/ws/user:alice');
    assert.equal(w.open, false, 'WebSocket refused at the handshake');
    assert.equal(w.status, 401);
    await assertRefused(await post(h, 'user:alice', { unread: 1 }), 401, /publish/, 'POST /pub');
    // the chat room of the tutorial needs no token
    assert.equal((await get(h, '/poll/chat')).status, 200);
    assert.equal((await post(h, 'chat', 'hi')).status, 200);
    const c = await wsOpen(h, '/ws/chat');
    assert.ok(c.open, 'ws /ws/chat without a token');
    c.ws.close();
  });

  test("Bob's token cannot read or publish Alice's channel, on any transport or way of giving it", T, async () => {
    const t = bob();
    const ways = [
      ['header', (p) => [p, bearer(t)]],
      ['query', (p) => [`${p}?token=${encodeURIComponent(t)}`, {}]],
      ['cookie', (p) => [p, { Cookie: `theme=dark; herald_token=${t}` }]],
    ];
    for (const [way, make] of ways) {
      for (const route of ['/poll/user:alice', '/lp/user:alice', '/pub/user:alice']) {
        const [p, hd] = make(route);
        await assertRefused(await get(h, p, hd), 403, /may not read/, `${route} (${way})`);
      }
      const [sp, shd] = make('/sse/user:alice');
      const sse = await SseClient.open(h.port, sp, { headers: shd });
      assert.equal(sse.status, 403, `SSE (${way})`);
      sse.sock.destroy();
      const [wp, whd] = make('/ws/user:alice');
      const w = await wsOpen(h, wp, whd);
      assert.equal(w.status, 403, `WebSocket (${way})`);
    }
    await assertRefused(await post(h, 'user:alice', { unread: 9 }, bearer(t)), 403, /may not publish/, 'POST as bob');
    // nor with his own channel: user:* is published by backends only
    await assertRefused(await post(h, 'user:bob', { unread: 9 }, bearer(t)), 403, /may not publish/, 'POST own channel');
    const w = await wsOpen(h, `/ws/user:bob?token=${t}`);
    assert.ok(w.open, 'bob reads his own channel over a WebSocket');
    const got = w.got;
    w.ws.send(JSON.stringify({ unread: 1 }));
    await eventually(() => got.some((f) => f.error), 3000, 'an error frame');
    assert.match(got.find((f) => f.error).error, /may not publish/);
    w.ws.close();
    assert.equal((await get(h, '/pub/user:alice')).status, 401, 'and nothing was published meanwhile');
    const info = await get(h, '/pub/user:alice', bearer(alice()));
    assert.equal(info.json.last_id, 0, 'no message reached user:alice');
  });

  test("Alice reads her channel on every transport; the backend's publish key reaches all of them", T, async () => {
    const t = alice();
    const sse = await SseClient.open(h.port, `/sse/user:alice?token=${t}`);
    assert.equal(sse.status, 200, 'SSE with ?token=');
    const w = await wsOpen(h, '/ws/user:alice', bearer(t));
    assert.ok(w.open, 'WebSocket with a Bearer header');
    const frames = w.got;
    const s = sio(h, { token: t }, { transports: ['polling', 'websocket'] }); // the upgrade too
    assert.deepEqual(await sioConnect(s), { ok: true });
    const sm = sioMessages(s);
    const info = await get(h, '/pub/user:alice', { Cookie: `herald_token=${t}` });
    assert.equal(info.status, 200, 'GET /pub with the cookie');
    const since = `${info.json.epoch}:${info.json.last_id}`;
    const lp = get(h, `/lp/user:alice?since=${since}`, bearer(t));
    await sleep(100);
    const r = await post(h, 'user:alice', { unread: 3 }, bearer(PUBKEY));
    assert.equal(r.status, 200, `publish key: ${r.text}`);
    const lpr = await lp;
    assert.equal(lpr.status, 200);
    assert.deepEqual(lpr.json.messages.map((m) => m.data), [{ unread: 3 }], 'long-poll');
    const poll = await get(h, `/poll/user:alice?since=${since}`, bearer(t));
    assert.deepEqual(poll.json.messages.map((m) => m.data), [{ unread: 3 }], 'short poll');
    await sse.until(() => sse.messages().length === 1, 3000, 'SSE message');
    assert.equal(sse.messages()[0].data, '{"unread":3}');
    await eventually(() => frames.length === 1 && sm.length === 1, 3000, 'ws and Socket.IO messages');
    assert.deepEqual(frames[0].data, { unread: 3 });
    assert.deepEqual(sm[0].v, { unread: 3 });
    sse.sock.destroy();
    w.ws.close();
    s.close();
  });

  test('Socket.IO: the room user:{sub} comes from the token, never from auth.user; bad tokens are refused at CONNECT', T, async () => {
    const bobS = sio(h, { token: bob(), user: 'alice' });
    assert.deepEqual(await sioConnect(bobS), { ok: true });
    const bobGot = sioMessages(bobS);
    const anon = sio(h, { user: 'alice' });
    const errors = [];
    anon.on('herald:error', (e) => errors.push(e));
    assert.deepEqual(await sioConnect(anon), { ok: true }, 'no token: connects (the chat room is open)');
    const anonGot = sioMessages(anon);
    await eventually(() => errors.length === 1, 3000, 'a herald:error for auth.user');
    assert.deepEqual(errors[0], { error: 'a token is needed to read this channel', channel: 'user:alice' });
    const aliceS = sio(h, { token: alice() });
    assert.deepEqual(await sioConnect(aliceS), { ok: true });
    const aliceGot = sioMessages(aliceS);
    await post(h, 'user:alice', { unread: 5 }, bearer(PUBKEY));
    await post(h, 'user:bob', { unread: 1 }, bearer(PUBKEY));
    await eventually(() => aliceGot.length === 1 && bobGot.length === 1, 3000, 'each user their own message');
    await sleep(200);
    assert.deepEqual(aliceGot.map((m) => m.v), [{ unread: 5 }]);
    assert.deepEqual(bobGot.map((m) => m.v), [{ unread: 1 }], "bob is not in alice's room whatever auth.user says");
    assert.deepEqual(anonGot, [], 'nor is a socket with no token');
    for (const [auth, reason] of [
      [{ token: tokenFor('alice', -5) }, 'token expired'],
      [{ token: jwt({ sub: 'alice' }, { key: 'another-secret-another-secret-another' }) }, 'invalid token'],
      [{ token: jwt({ sub: 'alice' }, { alg: 'none' }) }, /invalid token/],
      [{ token: 42 }, 'auth.token must be a string'],
    ]) {
      const s = sio(h, auth);
      const r = await sioConnect(s);
      assert.equal(r.ok, false, `refused: ${JSON.stringify(auth)}`);
      if (typeof reason === 'string') assert.equal(r.message, reason);
      else assert.match(r.message, reason);
      s.close();
    }
    // a refused socket cannot publish into a rule-protected room either
    const news = await get(h, '/pub/news:today');
    assert.equal(news.status, 200, 'news:* is public to read');
    for (const s of [bobS, anon, aliceS]) s.close();
  });

  test('channel rules: news:* read by all, published by the key or a token granting it; team:* needs any token', T, async () => {
    await assertRefused(await post(h, 'news:today', 'x'), 401, /needed to publish/, 'anonymous news');
    await assertRefused(await post(h, 'news:today', 'x', bearer(alice())), 403, /may not publish/, 'alice news');
    const editor = tokenFor('ed', 600, { publish: ['news:*'] });
    assert.equal((await post(h, 'news:today', 'x', bearer(editor))).status, 200, 'a token granting news:*');
    assert.equal((await post(h, 'news:today', 'y', bearer(PUBKEY))).status, 200, 'the publish key');
    assert.equal((await get(h, '/poll/news:today')).json.messages.length, 2, 'read by anyone');
    await assertRefused(await get(h, '/poll/team:red'), 401, /needed to read/, 'team without a token');
    assert.equal((await get(h, '/poll/team:red', bearer(bob()))).status, 200, 'team with any token');
    const auditor = tokenFor('audit', 600, { subscribe: ['user:*'] });
    assert.equal((await get(h, '/poll/user:alice', bearer(auditor))).status, 200, 'a subscribe grant');
    // the publish key reads nothing it is not allowed to
    assert.equal((await get(h, '/poll/user:alice', bearer(PUBKEY))).status, 403);
  });

  test('once access control is configured, only herald\'s own pages may connect (no --allowed-origins given)', T, async () => {
    const evil = { Origin: 'http://evil.test' };
    const w = await wsOpen(h, '/ws/chat', evil);
    assert.equal(w.status, 403, 'a WebSocket from another origin');
    const own = await wsOpen(h, '/ws/chat', { Origin: h.url });
    assert.ok(own.open, 'a WebSocket from herald\'s own origin');
    own.ws.close();
    const r = await get(h, '/poll/chat', evil);
    assert.equal(r.headers['access-control-allow-origin'], undefined, 'no CORS for another origin');
    const s = sio(h, {}, { extraHeaders: evil, transports: ['polling'] });
    assert.equal((await sioConnect(s)).ok, false, 'Socket.IO from another origin');
    s.close();
    // a refusal carries the CORS headers of an allowed page, so that page can read the reason
    const h2 = await startHerald(['--jwt-secret', SECRET, '--allowed-origins', 'http://app.test']);
    try {
      const r2 = await get(h2, '/poll/user:alice', { Origin: 'http://app.test' });
      assert.equal(r2.status, 401);
      assert.equal(r2.headers['access-control-allow-origin'], 'http://app.test');
    } finally { await stopChecked(h2); }
  });

  test('invalid tokens are refused with their reason, never taken for no token (public channels included)', T, async () => {
    const cases = [
      [tokenFor('alice', -1), /token expired/],
      [jwt({ sub: 'alice', nbf: now() + 300 }), /not valid yet/],
      [jwt({ sub: 'alice' }, { key: 'the-wrong-secret-the-wrong-secret-xx' }), /invalid token/],
      [jwt({ sub: 'alice' }, { alg: 'none' }), /invalid token/],
      ['not.a.token', /invalid token/],
      ['x'.repeat(9000), /too long/],
    ];
    for (const [t, reason] of cases) {
      await assertRefused(await get(h, '/poll/chat', bearer(t)), 401, reason, `header ${t.slice(0, 20)}`);
      await assertRefused(await get(h, `/poll/chat?token=${t}`), 401, reason, `query ${t.slice(0, 20)}`);
    }
    await assertRefused(await get(h, '/poll/chat', { Authorization: 'Basic YTpi' }), 401, /Bearer/, 'not Bearer');
  });
});

describe('security: the publish rate is per user once tokens are given', () => {
  test("Alice over her rate is refused while Bob, from the same address, is not; the publish key is exempt", T, async () => {
    const h = await startHerald(['--jwt-secret', SECRET, '--publish-key', PUBKEY,
      '--channel-rule', 'team:* token token', '--publish-rate', '1', '--publish-burst', '2']);
    try {
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await post(h, 'team:red', { i }, bearer(tokenFor('alice')))).status);
      assert.deepEqual(codes, [200, 200, 429], 'alice: her burst, then refused');
      assert.equal((await post(h, 'team:red', { b: 1 }, bearer(tokenFor('bob')))).status, 200, 'bob has his own');
      for (let i = 0; i < 5; i++) assert.equal((await post(h, 'team:red', { k: i }, bearer(PUBKEY))).status, 200, 'the key');
      // the same bucket over a WebSocket: alice is still over it
      const w = await wsOpen(h, '/ws/team:red', bearer(tokenFor('alice')));
      w.ws.send(JSON.stringify({ x: 1 }));
      await eventually(() => w.got.some((f) => f.error), 3000, 'an error frame');
      assert.match(w.got.find((f) => f.error).error, /publish rate exceeded/);
      w.ws.close();
    } finally { await stopChecked(h); }
  });
});

describe('security: RS256 and ES256 public keys', () => {
  for (const [alg, type, opts] of [['RS256', 'rsa', { modulusLength: 2048 }], ['ES256', 'ec', { namedCurve: 'P-256' }]]) {
    test(`${alg}: tokens of the key pass, of another key or HS256 "signed" with the public key do not`, T, async () => {
      const { publicKey, privateKey } = crypto.generateKeyPairSync(type, opts);
      const other = crypto.generateKeyPairSync(type, opts).privateKey;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-key-'));
      const pem = publicKey.export({ type: 'spki', format: 'pem' });
      fs.writeFileSync(path.join(dir, 'pub.pem'), pem);
      const h = await startHerald(['--jwt-public-key', path.join(dir, 'pub.pem')]);
      try {
        const good = jwt({ sub: 'alice', exp: now() + 60 }, { alg, key: privateKey });
        assert.equal((await get(h, '/poll/user:alice', bearer(good))).status, 200);
        assert.equal((await get(h, '/poll/user:bob', bearer(good))).status, 403);
        const s = sio(h, { token: good });
        assert.deepEqual(await sioConnect(s), { ok: true });
        s.close();
        const forged = jwt({ sub: 'alice' }, { alg, key: other });
        assert.equal((await get(h, '/poll/user:alice', bearer(forged))).status, 401);
        const confused = jwt({ sub: 'alice' }, { alg: 'HS256', key: pem });
        await assertRefused(await get(h, '/poll/user:alice', bearer(confused)), 401, /algorithm|invalid/, 'HS256 with the public key');
      } finally {
        await stopChecked(h);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('a bad key or secret stops herald at start with the reason', T, async () => {
    await assert.rejects(startHerald(['--jwt-secret', 'short']), /at least 32 bytes/);
    await assert.rejects(startHerald(['--jwt-public-key', '/nonexistent.pem']), /nonexistent/);
    await assert.rejects(startHerald(['--channel-rule', 'user:* owner none']), /channel-rule/);
    await assert.rejects(startHerald(['--dev-tokens']), /--dev-tokens needs --jwt-secret/);
  });
});

describe('security: a token that expires on a long-lived connection', () => {
  let h;
  before(async () => { h = await startHerald(['--jwt-secret', SECRET, '--publish-key', PUBKEY]); });
  after(async () => { await stopChecked(h); });

  // Publishes {n: from, from + 1, ...} on user:carol through the backend key every gapMs until
  // done() is true, then `after` more; resolves to the next n.
  async function feed(from, done, { gapMs = 250, after = 3 } = {}) {
    let n = from;
    for (let tail = after; tail > 0; n++) {
      assert.equal((await post(h, 'user:carol', { n }, bearer(PUBKEY))).status, 200);
      if (done()) tail--;
      await sleep(gapMs);
    }
    return n;
  }
  const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);

  test('SSE and WebSocket are closed with the reason at expiry; a fresh token resumes from the cursor, nothing lost', T, async () => {
    const short = tokenFor('carol', 2);
    const sse = await SseClient.open(h.port, `/sse/user:carol?token=${short}`);
    assert.equal(sse.status, 200);
    const w = await wsOpen(h, `/ws/user:carol?token=${short}`);
    assert.ok(w.open);
    const frames = w.got;
    let wsClosed = null;
    w.ws.once('close', (code, reason) => { wsClosed = { code, reason: reason.toString() }; });
    const end = await feed(1, () => wsClosed && sse.closed); // goes on past the expiry
    assert.deepEqual(wsClosed, { code: 1008, reason: 'token expired' }, 'WebSocket close code and reason');
    const ev = sse.events.find((e) => e.type === 'error');
    assert.ok(ev, `an "error" event before the end: ${JSON.stringify(sse.events.slice(-3))}`);
    assert.deepEqual(JSON.parse(ev.data), { error: 'token expired' });
    // the old token is refused now
    await assertRefused(await get(h, `/poll/user:carol?token=${short}`), 401, /token expired/, 'after expiry');
    // resume with a new token from the last cursor each had: exactly the rest, once
    const fresh = tokenFor('carol');
    const all = range(1, end);
    const sseSeen = sse.messages();
    const wsSeen = frames.filter((f) => f.cursor);
    assert.ok(sseSeen.length >= 1 && sseSeen.length < all.length, `SSE got ${sseSeen.length} before expiry`);
    assert.ok(wsSeen.length >= 1 && wsSeen.length < all.length, `WebSocket got ${wsSeen.length} before expiry`);
    const sse2 = await SseClient.open(h.port, `/sse/user:carol?token=${fresh}`, { headers: { 'Last-Event-ID': sseSeen.at(-1).id } });
    await sse2.until(() => sse2.messages().length === all.length - sseSeen.length, 5000, 'the SSE resume');
    const sseIds = [...sseSeen, ...sse2.messages()].map((m) => idOf(m.id));
    assert.deepEqual(sseIds, all, 'SSE: every id once, in order');
    const w2 = await wsOpen(h, `/ws/user:carol?since=${encodeURIComponent(wsSeen.at(-1).cursor)}`, bearer(fresh));
    assert.ok(w2.open, `resumed WebSocket: ${w2.status} ${w2.body}`);
    const frames2 = w2.got;
    await eventually(() => frames2.length === all.length - wsSeen.length, 5000, 'the WebSocket resume');
    assert.deepEqual([...wsSeen, ...frames2].map((f) => f.id), all);
    sse2.sock.destroy();
    w2.ws.close();
  });

  test('a long-poll is not held past its token; Socket.IO is told and disconnected, then resumes by cursor', T, async () => {
    const short = tokenFor('carol', 2);
    const info = (await get(h, '/pub/user:carol', bearer(short))).json;
    const t0 = Date.now();
    const lp = await get(h, `/lp/user:carol?since=${info.epoch}:${info.last_id}`, bearer(short));
    assert.equal(lp.status, 200);
    assert.deepEqual(lp.json.messages, []);
    assert.ok(Date.now() - t0 < 4000, `answered at the expiry, not after the 30 s timeout (${Date.now() - t0} ms)`);

    const s = sio(h, { token: tokenFor('carol', 2) });
    assert.deepEqual(await sioConnect(s), { ok: true });
    const got = sioMessages(s);
    const errs = [];
    s.on('herald:error', (e) => errs.push(e));
    let gone = null;
    s.once('disconnect', (reason) => { gone = reason; });
    const base = info.last_id;
    const end = await feed(base + 1, () => gone !== null);
    assert.equal(gone, 'io server disconnect');
    assert.deepEqual(errs, [{ error: 'token expired' }]);
    const all = range(base + 1, end);
    assert.ok(got.length >= 1 && got.length < all.length, `got ${got.length} before expiry`);
    const s2 = sio(h, { token: tokenFor('carol'), offset: got.at(-1).cur });
    const got2 = sioMessages(s2); // the replay comes with the connection
    assert.deepEqual(await sioConnect(s2), { ok: true });
    await eventually(() => got.length + got2.length >= all.length, 5000, 'the Socket.IO resume');
    await sleep(200);
    assert.deepEqual([...got, ...got2].map((m) => m.v.n), all);
    s2.close();
  });

  test('Socket.IO: herald:refresh with a new token for the same user keeps the socket; another user is refused', T, async () => {
    const s = sio(h, { token: tokenFor('carol', 2) });
    assert.deepEqual(await sioConnect(s), { ok: true });
    let disconnected = false;
    s.on('disconnect', () => { disconnected = true; });
    const r1 = await s.timeout(3000).emitWithAck('herald:refresh', tokenFor('dave'));
    assert.deepEqual(r1, { error: 'a refreshed token must name the same user' });
    const r2 = await s.timeout(3000).emitWithAck('herald:refresh', 'garbage');
    assert.deepEqual(r2, { error: 'invalid token' });
    const fresh = tokenFor('carol', 60);
    const r3 = await s.timeout(3000).emitWithAck('herald:refresh', fresh);
    assert.equal(r3.ok, true);
    assert.equal(r3.exp, JSON.parse(Buffer.from(fresh.split('.')[1], 'base64url')).exp);
    await sleep(3500);
    assert.equal(disconnected, false, 'still connected past the first token');
    const got = sioMessages(s);
    await post(h, 'user:carol', { after: 'refresh' }, bearer(PUBKEY));
    await eventually(() => got.length === 1, 3000, 'still in its room');
    s.close();
  });
});

describe('security: the dev-only token endpoint', () => {
  test('--dev-tokens: GET /dev/token?sub= gives a working one-hour token; without the flag there is no such route', T, async () => {
    const h = await startHerald(['--jwt-secret', SECRET, '--dev-tokens']);
    try {
      assert.match(h.output(), /dev-tokens.*development only/);
      const r = await get(h, '/dev/token?sub=alice');
      assert.equal(r.status, 200);
      assert.equal(r.json.sub, 'alice');
      assert.ok(Math.abs(r.json.exp - (now() + 3600)) < 5);
      assert.equal((await get(h, '/poll/user:alice', bearer(r.json.token))).status, 200);
      assert.equal((await get(h, '/dev/token?sub=a%20b')).status, 400);
      assert.equal((await get(h, '/dev/token')).status, 400);
    } finally { await stopChecked(h); }
    const h2 = await startHerald(['--jwt-secret', SECRET]);
    try {
      assert.equal((await get(h2, '/dev/token?sub=alice')).status, 404);
    } finally { await stopChecked(h2); }
  });
});
