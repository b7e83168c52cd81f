// Per-client quotas against the real herald binary (docs/security.md, "Limits"), every server
// with two workers so that what is per address is seen to be the process's:
//   --max-msg-rate / --max-msg-burst: a client's messages on /ws/{channel}, /echo and a
//     Socket.IO session; over the bucket a message is dropped and the client told, and a client
//     still over it after 3 s is closed (1008 / "io server disconnect"); a reader of the same
//     channel gets exactly what was acknowledged;
//   --publish-rate / --publish-burst: one bucket per client address across POST /pub (many short
//     connections, spread by SO_REUSEPORT over both workers), /ws/{channel} and the chat app;
//   --max-lp-per-ip: long-polls held at once per address, /lp and Engine.IO polling together;
//   --max-channels: the chat app's user channel refused past the limit;
// and each kind of hit logged, at most once a second.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';

import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald, sleep, sanitizerReport } from './lib/herald.mjs';
import { request, publish, eventually, JSON_TYPE, assertAlive, stopChecked } from './lib/channels-util.mjs';

const T = { timeout: 60000 };
const servers = [];
const sockets = [];
after(async () => {
  for (const s of sockets) { try { s.close?.(); s.disconnect?.(); } catch { /* gone */ } }
  // every server stops cleanly (exit 0), and under the sanitizers without a report
  for (const h of servers) {
    if (h.proc.exitCode === null && h.proc.signalCode === null) {
      const r = await h.stop();
      assert.deepEqual(r, { code: 0, signal: null }, h.output().slice(-2000));
    }
    assert.equal(sanitizerReport(h), null, `sanitizer report:\n${sanitizerReport(h)}`);
  }
});

async function herald(args) {
  const h = await startHerald(['--workers', '2', '--store', 'memory', ...args]);
  servers.push(h);
  return h;
}

// A /ws/{channel} or /echo client that keeps every text frame (parsed) and its close.
async function wsOpen(h, pathname) {
  const ws = new WebSocket(`ws://127.0.0.1:${h.port}${pathname}`);
  sockets.push(ws);
  const c = { ws, frames: [], closed: null };
  ws.on('message', (d, isBinary) => {
    const text = d.toString();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    c.frames.push({ text, json, isBinary });
  });
  ws.on('close', (code, reason) => { c.closed = { code, reason: reason.toString() }; });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  c.of = (pred) => c.frames.filter((f) => f.json && pred(f.json));
  return c;
}

const isAck = (j) => typeof j.ack === 'number';
const isMsg = (j) => typeof j.id === 'number' && 'data' in j;
const isRate = (j) => j.error === 'rate limit exceeded';

// A socket.io-client socket of the chat app that records message events and herald:error.
async function sioClient(h, opts = {}) {
  const socket = io(h.url, { forceNew: true, reconnection: false, transports: ['websocket'], ...opts });
  sockets.push(socket);
  const c = { socket, messages: [], errors: [], disconnects: [] };
  socket.on('message', (m) => c.messages.push(m));
  socket.on('herald:error', (e) => c.errors.push(e));
  socket.on('disconnect', (reason) => c.disconnects.push(reason));
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('connect_error', reject); });
  await eventually(() => c.messages.some((m) => m && m.type === 'init'), 5000, 'welcome');
  return c;
}

const countLines = (h, re) => h.output().split('\n').filter((l) => re.test(l)).length;

describe('--max-msg-rate: a client\'s messages', () => {
  test('/ws/{channel}: over the burst dropped with an error frame, closed 1008 when it persists; a reader gets exactly what was acknowledged', T, async () => {
    const h = await herald(['--max-msg-rate', '10', '--max-msg-burst', '5']);
    const reader = await wsOpen(h, '/ws/rate1');
    const other = await wsOpen(h, '/ws/rate1');
    const w = await wsOpen(h, '/ws/rate1');
    for (let i = 0; i < 8; i++) w.ws.send(JSON.stringify({ n: i }));
    await eventually(() => w.of(isAck).length + w.of(isRate).length === 8, 5000, '8 answers');
    // the burst (5, and maybe one more refilled meanwhile) went through, the rest was refused
    const acks = w.of(isAck).length;
    assert.ok(acks >= 5 && acks <= 6, `acks: ${acks}`);
    for (const f of w.of(isRate)) assert.deepEqual(f.json, { error: 'rate limit exceeded', limit: 10 });
    assert.equal(w.closed, null, 'a short excess does not close');
    // a second later the bucket has refilled: accepted again
    await sleep(1100);
    w.ws.send(JSON.stringify({ n: 'later' }));
    await eventually(() => w.of(isAck).length === acks + 1, 5000, 'ack after the refill');
    // 50 a second, five times the rate, for up to 6 s: closed after 3 s of refusals
    const t0 = Date.now();
    let sent = 0;
    while (w.closed === null && Date.now() - t0 < 6000) {
      if (w.ws.readyState === WebSocket.OPEN) { w.ws.send(JSON.stringify({ flood: sent++ })); }
      await sleep(20);
    }
    await eventually(() => w.closed !== null, 3000, 'close');
    const took = Date.now() - t0;
    assert.deepEqual(w.closed, { code: 1008, reason: 'rate limit exceeded' });
    assert.ok(took >= 2800 && took < 5500, `closed after ${took} ms`);
    // every acknowledged message reached the readers, once, and nothing else did
    const acked = w.of(isAck).map((f) => f.json.ack);
    await eventually(() => reader.of(isMsg).length === acked.length, 5000, 'reader has every acked message');
    await sleep(200);
    assert.deepEqual(reader.of(isMsg).map((f) => f.json.id), acked);
    assert.deepEqual(other.of(isMsg).map((f) => f.json.id), acked);
    assert.equal(reader.closed, null);
    assert.equal(other.closed, null);
    // the others may still publish
    other.ws.send(JSON.stringify('still here'));
    await eventually(() => reader.of(isMsg).some((f) => f.json.data === 'still here'), 5000, 'other publisher');
    // logged, at most a line a second
    await eventually(() => /quota: closed 1 connection still over --max-msg-rate 10\/s/.test(h.output()), 3000, 'close logged');
    const lines = countLines(h, /quota: dropped \d+ messages? over --max-msg-rate 10\/s/);
    assert.ok(lines >= 1 && lines <= 9, `drop lines: ${lines}\n${h.output()}`);
    assertAlive(h);
  });

  test('/echo: over the burst not echoed but told; the limit is per connection', T, async () => {
    const h = await herald(['--max-msg-rate', '10', '--max-msg-burst', '4']);
    const a = await wsOpen(h, '/echo');
    const b = await wsOpen(h, '/echo');
    for (let i = 0; i < 7; i++) a.ws.send(`a${i}`);
    for (let i = 0; i < 3; i++) b.ws.send(`b${i}`);
    await eventually(() => a.frames.length === 7 && b.frames.length === 3, 5000, 'answers');
    const echoed = a.frames.filter((f) => /^a\d$/.test(f.text)).length;
    assert.ok(echoed >= 4 && echoed <= 5, `echoed ${echoed}`);
    assert.equal(a.of(isRate).length, 7 - echoed);
    assert.deepEqual(a.of(isRate)[0].json, { error: 'rate limit exceeded', limit: 10 });
    assert.deepEqual(b.frames.map((f) => f.text), ['b0', 'b1', 'b2']);
    // 0: no limit
    const u = await herald(['--max-msg-rate', '0']);
    const c = await wsOpen(u, '/echo');
    for (let i = 0; i < 1000; i++) c.ws.send(`c${i}`);
    await eventually(() => c.frames.length === 1000, 10000, '1000 echoes');
    assert.equal(c.of(isRate).length, 0);
  });

  for (const transports of [['websocket'], ['polling']]) {
    test(`Socket.IO (${transports}): the ack or herald:error tells, a persisting flood gets "io server disconnect"`, T, async () => {
      const h = await herald(['--max-msg-rate', '10', '--max-msg-burst', '5']);
      const reader = await sioClient(h, { transports });
      const s = await sioClient(h, { transports });
      // 5 fit the burst; then one with an ack and one without are refused
      for (let i = 0; i < 5; i++) s.socket.emit('message', { type: 'message', message: `m${i}`, userId: 's' });
      const acked = await new Promise((resolve) => s.socket.emit('message', { type: 'message', message: 'x', userId: 's' }, resolve));
      assert.deepEqual(acked, { error: 'rate limit exceeded', limit: 10 });
      s.socket.emit('message', { type: 'message', message: 'y', userId: 's' });
      await eventually(() => s.errors.length === 1, 5000, 'herald:error');
      assert.deepEqual(s.errors[0], { error: 'rate limit exceeded', limit: 10 });
      const chat = (c) => c.messages.filter((m) => m && m.type === 'message' && m.userId === 's').map((m) => m.message);
      await eventually(() => chat(reader).length === 5, 5000, 'the 5 accepted');
      await sleep(300);
      assert.deepEqual(chat(reader), ['m0', 'm1', 'm2', 'm3', 'm4']);
      // a flood at 50/s: disconnected by the server after about 3 s
      const t0 = Date.now();
      let n = 0;
      while (s.disconnects.length === 0 && Date.now() - t0 < 7000) {
        s.socket.emit('message', { type: 'message', message: `f${n++}`, userId: 's' });
        await sleep(20);
      }
      await eventually(() => s.disconnects.length > 0, 3000, 'disconnect');
      assert.equal(s.disconnects[0], 'io server disconnect');
      const took = Date.now() - t0;
      assert.ok(took >= 2500 && took < 6500, `disconnected after ${took} ms`);
      assert.ok(reader.socket.connected, 'the other client stays');
      // the reader got what was accepted: the 5, then only flood messages, in order
      const got = chat(reader);
      assert.deepEqual(got.slice(0, 5), ['m0', 'm1', 'm2', 'm3', 'm4']);
      const flood = got.slice(5).map((m) => Number(m.slice(1)));
      assert.deepEqual(flood, [...flood].sort((x, y) => x - y));
      assert.ok(flood.length < n / 2, `accepted ${flood.length} of ${n} flooded`);
      await eventually(() => /quota: closed 1 connection still over --max-msg-rate/.test(h.output()), 3000, 'logged');
    });
  }
});

// Many short connections (Connection: close): SO_REUSEPORT spreads them over both workers.
async function postMany(h, ch, n) {
  return Promise.all(Array.from({ length: n }, (_, i) => request(h.url, 'POST', `/pub/${ch}`, {
    body: JSON.stringify({ i }), headers: { ...JSON_TYPE, Connection: 'close' } })));
}

describe('--publish-rate: one bucket per address, every transport and worker', () => {
  test('POST /pub from 40 connections: the burst passes, the rest 429 with Retry-After; /ws and Socket.IO share it', T, async () => {
    const h = await herald(['--publish-rate', '1', '--publish-burst', '10', '--max-msg-rate', '0']);
    const t0 = Date.now();
    const res = await postMany(h, 'pubrate', 40);
    const secs = (Date.now() - t0) / 1000;
    const ok = res.filter((r) => r.status === 200);
    const refused = res.filter((r) => r.status === 429);
    assert.equal(ok.length + refused.length, 40, res.map((r) => r.status).join(','));
    // one table for both workers: 10 (+1 a second); a table per worker would let about 20 in
    assert.ok(ok.length >= 10 && ok.length <= 10 + Math.ceil(secs) + 1, `accepted ${ok.length} in ${secs} s`);
    for (const r of refused) {
      assert.deepEqual(r.json, { error: 'publish rate exceeded' });
      assert.match(r.headers['retry-after'], /^[1-9]\d*$/);
      assert.equal(r.headers['content-type'], 'application/json');
    }
    // the same address over WebSocket: refused with a frame, the socket stays
    const w = await wsOpen(h, '/ws/pubrate');
    w.ws.send('"over ws"');
    await eventually(() => w.frames.length === 1, 5000, 'ws answer');
    assert.equal(w.frames[0].json.error, 'publish rate exceeded');
    assert.equal(w.frames[0].json.limit, 1);
    assert.ok(w.frames[0].json.retry_after >= 1);
    assert.equal(w.closed, null);
    // and the chat app's Socket.IO messages
    const s = await sioClient(h);
    const answer = await new Promise((resolve) => s.socket.emit('message', { type: 'message', message: 'hi', userId: 'p' }, resolve));
    assert.equal(answer.error, 'publish rate exceeded');
    s.socket.emit('message', { type: 'message', message: 'hi', userId: 'p' });
    await eventually(() => s.errors.some((e) => e.error === 'publish rate exceeded'), 5000, 'herald:error');
    // what was refused was not stored: the channel holds exactly the accepted ones
    const info = await request(h.url, 'GET', '/pub/pubrate');
    assert.equal(info.json.last_id, ok.length);
    await eventually(() => /quota: refused \d+ publish(es)? over --publish-rate 1\/s/.test(h.output()), 3000, 'logged');
    const lines = countLines(h, /over --publish-rate/);
    assert.ok(lines <= Math.ceil((Date.now() - t0) / 1000) + 1, `publish lines: ${lines}`);
    // the bucket refills: a publish a second later passes
    await sleep(1100);
    await publish(h.url, 'pubrate', { later: true });
  });

  test('off by default (the open demo publishes fast); 0 is no limit', T, async () => {
    const h = await herald([]);
    const res = await postMany(h, 'pubfree', 200);
    assert.equal(res.filter((r) => r.status === 200).length, 200);
    assert.equal(h.output().includes('publish-rate'), false);
  });
});

// A GET held open on its own connection; resolves with { status, json, headers } when answered.
function held(h, pathname) {
  return request(h.url, 'GET', pathname, { headers: { Connection: 'close' }, timeoutMs: 30000 });
}

// An Engine.IO polling session's id (Socket.IO: the server sends nothing until CONNECT, so the
// next GET is held).
async function eioSid(h) {
  const r = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Connection: 'close' } });
  assert.equal(r.status, 200);
  return JSON.parse(r.text.slice(1)).sid;
}

describe('--max-lp-per-ip: long-polls held at once per address', () => {
  test('/lp: 12 at once over both workers with a limit of 3: 9 refused with 429, the 3 held are answered', T, async () => {
    const h = await herald(['--max-lp-per-ip', '3', '--lp-timeout', '20']);
    const polls = Array.from({ length: 12 }, () => held(h, '/lp/lpq'));
    const settled = polls.map((p) => p.then((r) => { settled.done++; return r; }));
    settled.done = 0;
    await eventually(() => settled.done === 9, 10000, '9 refusals');
    await sleep(300);
    assert.equal(settled.done, 9, 'the other 3 are held');
    await publish(h.url, 'lpq', { wake: 1 });
    const res = await Promise.all(settled);
    const refused = res.filter((r) => r.status === 429);
    const answered = res.filter((r) => r.status === 200);
    assert.equal(refused.length, 9);
    assert.equal(answered.length, 3);
    for (const r of refused) {
      assert.deepEqual(r.json, { error: 'too many pending long-polls' });
      assert.equal(r.headers['retry-after'], '1');
    }
    for (const r of answered) assert.deepEqual(r.json.messages.map((m) => m.data), [{ wake: 1 }]);
    // answered: the address may hold 3 again
    const again = Array.from({ length: 3 }, () => held(h, '/lp/lpq'));
    await sleep(300);
    await publish(h.url, 'lpq', { wake: 2 });
    for (const r of await Promise.all(again)) assert.equal(r.status, 200);
    await eventually(() => /quota: refused \d+ long-polls? over --max-lp-per-ip 3/.test(h.output()), 3000, 'logged');
  });

  test('Engine.IO polling GETs count with /lp: over it 429 in the reference\'s error shape, the session ends', T, async () => {
    const h = await herald(['--max-lp-per-ip', '2', '--lp-timeout', '20']);
    const sids = [await eioSid(h), await eioSid(h), await eioSid(h)];
    const lp = held(h, '/lp/eioq');
    await sleep(200);
    const g1 = held(h, `/socket.io/?EIO=4&transport=polling&sid=${sids[0]}`);
    await sleep(200);
    const g2 = await held(h, `/socket.io/?EIO=4&transport=polling&sid=${sids[1]}`);
    assert.equal(g2.status, 429);
    assert.deepEqual(g2.json, { code: 3, message: 'too many pending long-polls' });
    assert.equal(g2.headers['retry-after'], '1');
    // that session is over; the held ones are untouched
    const gone = await request(h.url, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${sids[1]}`, { headers: { Connection: 'close' } });
    assert.equal(gone.status, 400);
    await publish(h.url, 'eioq', 1);
    assert.equal((await lp).status, 200);
    // the /lp slot is free: the third session's poll is held now (a close of it answers)
    const g3 = held(h, `/socket.io/?EIO=4&transport=polling&sid=${sids[2]}`);
    await sleep(200);
    const post = await request(h.url, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${sids[2]}`, { body: '1', headers: { Connection: 'close' } });
    assert.equal(post.status, 200);
    assert.equal((await g3).status, 200);
    const p0 = await request(h.url, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${sids[0]}`, { body: '1', headers: { Connection: 'close' } });
    assert.equal(p0.status, 200);
    assert.equal((await g1).status, 200);
  });

  test('a socket.io-client over polling still works at the default limit', T, async () => {
    const h = await herald([]);
    const a = await sioClient(h, { transports: ['polling'] });
    const b = await sioClient(h, { transports: ['polling'] });
    a.socket.emit('message', { type: 'message', message: 'hello', userId: 'a' });
    await eventually(() => b.messages.some((m) => m && m.message === 'hello'), 5000, 'delivered');
  });
});

describe('--max-channels: channel rooms per Socket.IO socket', () => {
  test('the chat app\'s user channel is refused past the limit and the client told; chat goes on', T, async () => {
    const h = await herald(['--max-channels', '1']);
    const s = await sioClient(h, { auth: { user: 'alice' } });
    await eventually(() => s.errors.length === 1, 5000, 'herald:error');
    assert.deepEqual(s.errors[0], { error: 'too many channels', channel: 'user:alice' });
    await publish(h.url, 'user:alice', { unread: 1 });
    await publish(h.url, 'chat', { type: 'message', message: 'in chat', userId: 'ops' });
    await eventually(() => s.messages.some((m) => m && m.message === 'in chat'), 5000, 'chat message');
    await sleep(200);
    assert.equal(s.messages.some((m) => m && m.unread === 1), false, 'not a reader of user:alice');
    await eventually(() => /quota: refused 1 join over --max-channels 1/.test(h.output()), 3000, 'logged');
    // at the default both channels are read
    const d = await herald([]);
    const t = await sioClient(d, { auth: { user: 'bob' } });
    await publish(d.url, 'user:bob', { unread: 2 });
    await eventually(() => t.messages.some((m) => m && m.unread === 2), 5000, 'user channel');
    assert.equal(t.errors.length, 0);
    await stopChecked(d);
  });
});

test('bad values are refused with one line', T, async () => {
  const { spawnSync } = await import('node:child_process');
  const { heraldBin } = await import('./lib/herald.mjs');
  for (const [flag, v, want] of [
    ['--max-msg-burst', '0', /--max-msg-burst wants a number from 1 to 1000000, not '0'/],
    ['--publish-rate', '-1', /--publish-rate wants publishes a second up to 1000000/],
    ['--max-lp-per-ip', 'x', /--max-lp-per-ip wants a number up to 10000000/],
    ['--max-channels', '2000000', /--max-channels wants a number up to 1000000/],
  ]) {
    const r = spawnSync(heraldBin, [flag, v], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, `${flag} ${v}`);
    assert.match(r.stderr, want);
  }
  const help = spawnSync(heraldBin, ['--help'], { encoding: 'utf8', timeout: 5000 }).stdout;
  for (const f of ['--max-msg-rate N', '--max-msg-burst N', '--publish-rate N', '--publish-burst N', '--max-channels N', '--max-lp-per-ip N'])
    assert.ok(help.includes(f), f);
});


