// The WebSocket channel transport end to end against the real herald binary: GET /ws/{channel}
// (?since=CURSOR), read with the `ws` package. Live delivery (exact frame shape, JSON and text
// payloads), publishing over the socket (acks in order, errors that use no id), resuming 10,000
// missed messages without loss, gap frames (trimmed history, another epoch or channel, unknown
// ids), malformed names and cursors (a 400, never an upgrade), and switching between WebSocket,
// SSE and the polls with one cursor.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startHerald, httpExchange, upgradeRequest, WsClient, frame, sleep } from './lib/herald.mjs';
import {
  makeAgent, request, publish, publishMany, info, pollReq, checkPollAnswer, pollAll, assertExactRun,
  SseClient, eventually, TEXT_TYPE, assertAlive, stopChecked, idOf, PAYLOADS, expectedValue } from './lib/channels-util.mjs';

const T = { timeout: 30000 };
const MSG_ERROR = { error: 'a message must be one JSON value (text frame)' };

async function epochOf(h, ch) { return (await info(h.url, ch)).epoch; }

// ------------------------------------------------------------------------------------------------
// A /ws/{channel} client on the `ws` package. Every frame the server sends is kept in order
// (frames: { text, json, binary }) and sorted by kind as it comes: msgs (poll-entry objects),
// acks, errors, gaps, other. Counters are kept incrementally so waiting for 10,000 frames is cheap.
class WsReader {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.msgs = [];
    this.acks = [];
    this.errors = [];
    this.gaps = [];
    this.other = [];
    this.closed = null;       // { code, reason } once closed
    this._waiters = [];
    ws.on('message', (d, isBinary) => {
      const text = d.toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      const f = { text, json, binary: isBinary };
      this.frames.push(f);
      const keys = json && typeof json === 'object' && !Array.isArray(json) ? Object.keys(json) : [];
      if (isBinary || json === undefined) this.other.push(f);
      else if (keys.includes('ack')) this.acks.push({ ...json, at: this.frames.length - 1 });
      else if (keys.includes('error')) this.errors.push(json);
      else if (keys.includes('gap')) this.gaps.push({ ...json, at: this.msgs.length });
      else if (keys.includes('id') && keys.includes('cursor')) this.msgs.push({ ...json, raw: text, at: this.frames.length - 1 });
      else this.other.push(f);
      this._wake();
    });
    ws.on('close', (code, reason) => { this.closed = { code, reason: reason.toString() }; this._wake(); });
    ws.on('error', () => { this._wake(); });
  }

  // Open ws://127.0.0.1:port{pathname}; resolves once the handshake is done.
  static open(port, pathname, { timeoutMs = 5000 } = {}) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${pathname}`);
    const r = new WsReader(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`WS ${pathname}: no handshake after ${timeoutMs} ms`)); }, timeoutMs);
      ws.once('open', () => { clearTimeout(timer); resolve(r); });
      ws.once('error', (e) => { clearTimeout(timer); reject(e); });
      ws.once('unexpected-response', (req, res) => {
        clearTimeout(timer);
        reject(new Error(`WS ${pathname}: HTTP ${res.statusCode} instead of an upgrade`));
        req.destroy();
      });
    });
  }

  _wake() { for (const w of this._waiters.splice(0)) w(); }

  until(pred, ms = 5000, what = 'condition') {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`WS: timed out after ${ms} ms waiting for ${what}; ${this.describe()}`)), ms);
      const check = () => {
        let v;
        try { v = pred(); } catch (e) { clearTimeout(timer); reject(e); return; }
        if (v) { clearTimeout(timer); resolve(v); } else if (this.closed) {
          clearTimeout(timer);
          reject(new Error(`WS closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}; ${this.describe()}`));
        } else this._waiters.push(check);
      };
      check();
    });
  }

  waitMsgs(n, ms = 5000) { return this.until(() => this.msgs.length >= n, ms, `${n} messages`); }
  waitAcks(n, ms = 5000) { return this.until(() => this.acks.length >= n, ms, `${n} acks`); }
  waitErrors(n, ms = 5000) { return this.until(() => this.errors.length >= n, ms, `${n} error frames`); }

  describe() {
    return `${this.frames.length} frames (${this.msgs.length} msgs, ${this.acks.length} acks, ${this.errors.length} errors, ` +
      `${this.gaps.length} gaps, ${this.other.length} other), closed=${JSON.stringify(this.closed)}, last: ` +
      JSON.stringify(this.frames.slice(-2).map((f) => f.text.slice(0, 200)));
  }

  send(data, opts) { this.ws.send(data, opts); }
  lastCursor() { return this.msgs.at(-1)?.cursor; }

  close() {
    if (this.closed) return Promise.resolve();
    const done = new Promise((r) => this.ws.once('close', r));
    this.ws.close();
    return Promise.race([done, sleep(2000).then(() => this.ws.terminate())]);
  }
}

// A message frame is exactly {"id":N,"cursor":"<epoch>:N","time":ms,"data":<value>} in that order,
// as a text frame; dataText (optional) is the exact JSON text of the value.
function checkMsgFrame(m, epoch, what, dataText) {
  const f = m.raw;
  const keys = Object.keys(JSON.parse(f));
  assert.deepEqual(keys, ['id', 'cursor', 'time', 'data'], `${what}: keys in order: ${f.slice(0, 200)}`);
  assert.ok(Number.isSafeInteger(m.id) && m.id >= 1, `${what}: id ${m.id}`);
  assert.equal(m.cursor, `${epoch}:${m.id}`, `${what}: cursor`);
  assert.ok(Number.isSafeInteger(m.time) && Math.abs(m.time - Date.now()) < 600000, `${what}: time ${m.time}`);
  const prefix = `{"id":${m.id},"cursor":"${m.cursor}","time":${m.time},"data":`;
  assert.ok(f.startsWith(prefix) && f.endsWith('}'), `${what}: frame text ${f.slice(0, 200)}`);
  if (dataText !== undefined) assert.equal(f.slice(prefix.length, -1), dataText, `${what}: data kept as published`);
}

async function closeAll(list) { await Promise.all(list.map((c) => c?.close())); }

// the exact JSON text of the value in a frame, where it is fixed by what was published
const storedText = (p) => (p.stored !== undefined ? p.stored : p.type && /json/.test(p.type) ? p.raw : undefined);

function publishPayload(base, ch, p, agent) {
  const raw = p.raw !== undefined ? p.raw : p.text;
  const headers = p.raw !== undefined ? (p.type ? { 'Content-Type': p.type } : {}) : TEXT_TYPE;
  return publish(base, ch, null, { raw, headers, agent });
}

// ================================================================================================
describe('WebSocket channels: live, publish, resume, switch, malformed', () => {
  let h;
  let agent;
  before(async () => {
    // publishers here send hundreds of frames at once on purpose: no per-client message rate
    h = await startHerald(['--history', '20000', '--lp-timeout', '3', '--max-msg-rate', '0']);
    agent = makeAgent(8);
  });
  after(async () => { agent?.destroy(); await stopChecked(h); });

  test('live: two subscribers get each POST /pub promptly as {"id","cursor","time","data"} text frames; no history without since', T, async () => {
    const ch = 'ws.live';
    const epoch = await epochOf(h, ch);
    await publish(h.url, ch, 'old1', { agent });
    await publish(h.url, ch, 'old2', { agent });
    const a = await WsReader.open(h.port, `/ws/${ch}`);
    const b = await WsReader.open(h.port, `/ws/${ch}`);
    try {
      assert.equal((await info(h.url, ch, agent)).subscribers.websocket, 2, 'counted as websocket subscribers');
      await sleep(100);
      assert.equal(a.frames.length + b.frames.length, 0, 'no replay without since');
      for (let i = 0; i < PAYLOADS.length; i++) {
        const p = PAYLOADS[i];
        const t0 = Date.now();
        const r = await publishPayload(h.url, ch, p, agent);
        assert.equal(r.id, i + 3);
        await a.waitMsgs(i + 1, 2000);
        await b.waitMsgs(i + 1, 2000);
        const dt = Date.now() - t0;
        assert.ok(dt < 1000, `payload ${i}: delivered within ${dt} ms`);
        for (const [name, c] of [['a', a], ['b', b]]) {
          const m = c.msgs[i];
          checkMsgFrame(m, epoch, `${name} payload ${i}`, storedText(p));
          assert.equal(m.id, r.id, `${name} payload ${i}: id`);
          assert.equal(m.cursor, r.cursor, `${name} payload ${i}: the POST answer's cursor`);
          assert.deepEqual(m.data, expectedValue(p), `${name} payload ${i}: data`);
        }
      }
      for (const c of [a, b]) {
        assert.equal(c.frames.length, PAYLOADS.length, 'one frame per message, nothing else');
        assert.ok(c.frames.every((f) => !f.binary), 'text frames');
      }
      // the same value bytes on both sockets (one encoding, shared)
      assert.deepEqual(a.msgs.map((m) => m.raw), b.msgs.map((m) => m.raw));
    } finally { await closeAll([a, b]); }
    await eventually(async () => (await info(h.url, ch, agent)).subscribers.websocket === 0, 3000, 'websocket count back to 0');
  });

  test('a percent-encoded name in /ws/ is the same channel (user%3Aws is user:ws)', T, async () => {
    const ch = 'pct:ws@x';
    const epoch = await epochOf(h, ch);
    const c = await WsReader.open(h.port, '/ws/pct%3aws%40x');
    try {
      assert.equal((await info(h.url, ch, agent)).subscribers.websocket, 1);
      const r = await publish(h.url, ch, 'to the plain name', { agent });
      await c.waitMsgs(1);
      assert.deepEqual([c.msgs[0].cursor, c.msgs[0].data], [r.cursor, 'to the plain name']);
      c.send(JSON.stringify({ from: 'encoded ws' }));
      await c.waitAcks(1);
      assert.deepEqual(c.acks[0], { ack: 2, cursor: `${epoch}:2`, at: c.acks[0].at });
      const j = checkPollAnswer(await pollReq(h.url, 'poll', ch, '1', { agent }), ch, epoch, 'poll plain name');
      assert.deepEqual(j.messages.map((m) => [m.id, m.data]), [[2, { from: 'encoded ws' }]]);
    } finally { await c.close(); }
  });

  test('publish over WS: 200 frames sent at once are acked in order with contiguous ids; SSE, /poll and WS readers get them', T, async () => {
    const ch = 'ws.pub';
    const epoch = await epochOf(h, ch);
    const p0 = await publish(h.url, ch, 'before', { agent });
    const sse = await SseClient.open(h.port, `/sse/${ch}`, { keepText: false });
    const reader = await WsReader.open(h.port, `/ws/${ch}`);
    const pub = await WsReader.open(h.port, `/ws/${ch}`);
    const N = 200;
    const values = Array.from({ length: N }, (_, i) => (i % 5 === 4 ? `text ${i} ✓` : { n: i, s: 'v'.repeat(i % 13), nested: [i, { ok: i % 2 === 0 }] }));
    try {
      for (const v of values) pub.send(JSON.stringify(v));
      await pub.waitAcks(N, 10000);
      assert.equal(pub.errors.length, 0, `no errors: ${JSON.stringify(pub.errors.slice(0, 3))}`);
      pub.acks.forEach((a, i) => {
        const id = p0.id + 1 + i;
        assert.deepEqual(Object.keys(a).filter((k) => k !== 'at'), ['ack', 'cursor'], `ack ${i}: keys`);
        assert.deepEqual([a.ack, a.cursor], [id, `${epoch}:${id}`], `ack ${i}: in order, ids contiguous`);
      });
      const byId = new Map(values.map((v, i) => [p0.id + 1 + i, JSON.stringify(v)]));
      const first = p0.id + 1, last = p0.id + N;
      // the publisher is a subscriber too: its own messages come to it once, each before its ack
      await pub.waitMsgs(N);
      assertExactRun(pub.msgs.map((m) => m.id), pub.msgs.map((m) => m.data), first, last, byId, 'publisher');
      for (let i = 0; i < N; i++) assert.ok(pub.msgs[i].at < pub.acks[i].at, `message ${pub.msgs[i].id} reaches the publisher before its ack`);
      await reader.waitMsgs(N);
      assertExactRun(reader.msgs.map((m) => m.id), reader.msgs.map((m) => m.data), first, last, byId, 'WS reader');
      reader.msgs.forEach((m, i) => checkMsgFrame(m, epoch, `WS reader ${i}`, byId.get(m.id)));
      await sse.waitMessages(N);
      const sm = sse.messages();
      assertExactRun(sm.map((m) => idOf(m.id)), sm.map((m) => JSON.parse(m.data)), first, last, byId, 'SSE reader');
      const r = await pollAll(h.url, 'poll', ch, p0.cursor, { agent, epoch });
      assert.deepEqual(r.gaps, []);
      assertExactRun(r.messages.map((m) => m.id), r.messages.map((m) => m.data), first, last, byId, '/poll');
      assert.equal((await info(h.url, ch, agent)).last_id, last);
    } finally { sse.close(); await closeAll([reader, pub]); }
  });

  test('publish over WS: non-JSON text and binary frames get the error frame, use no id, and the socket stays usable', T, async () => {
    const ch = 'ws.pub.bad';
    const epoch = await epochOf(h, ch);
    assert.equal((await publish(h.url, ch, 'ok1', { agent })).id, 1);
    const reader = await WsReader.open(h.port, `/ws/${ch}`);
    const c = await WsReader.open(h.port, `/ws/${ch}`);
    try {
      const badText = ['not json', '{bad', '', '   ', '[1,]', '{"a":1} x', '{"a":1}{"b":2}', "{'a':1}", '"unterminated', '01', 'NaN', 'undefined'];
      const badBinary = [Buffer.from('{"a":1}'), Buffer.alloc(0), Buffer.from([0, 1, 2, 0xff])];
      for (const t of badText) c.send(t);
      for (const b of badBinary) c.send(b, { binary: true });
      const nBad = badText.length + badBinary.length;
      await c.waitErrors(nBad);
      await sleep(100);
      assert.deepEqual(c.errors, Array(nBad).fill(MSG_ERROR), 'one error frame per refused frame');
      assert.deepEqual([c.acks.length, c.msgs.length, reader.msgs.length], [0, 0, 0], 'nothing published');
      assert.equal(c.closed, null, 'still open');
      assert.ok(c.frames.every((f) => !f.binary), 'error frames are text frames');
      // the next publish, over this socket, takes the next id: the refused frames used none
      c.send('  {"after":"errors"}\n');
      await c.waitAcks(1);
      assert.deepEqual([c.acks[0].ack, c.acks[0].cursor], [2, `${epoch}:2`]);
      // valid and invalid frames interleaved: acks for the valid ones, in order, ids contiguous
      for (const t of ['3', 'oops', '"four"', Buffer.from('5'), '{"five":5}']) c.send(t, { binary: Buffer.isBuffer(t) });
      await c.waitAcks(4);
      await c.waitErrors(nBad + 2);
      assert.deepEqual(c.acks.map((a) => a.ack), [2, 3, 4, 5]);
      assert.equal((await publish(h.url, ch, 'ok6', { agent })).id, 6, 'POST /pub takes the id after them');
      await reader.waitMsgs(5);
      // the surrounding whitespace of a frame is not kept
      assert.ok(reader.msgs[0].raw.endsWith(',"data":{"after":"errors"}}'), reader.msgs[0].raw);
      const j = checkPollAnswer(await pollReq(h.url, 'poll', ch, '0', { agent }), ch, epoch, 'poll');
      assert.deepEqual(j.messages.map((m) => [m.id, m.data]), [[1, 'ok1'], [2, { after: 'errors' }], [3, 3], [4, 'four'], [5, { five: 5 }], [6, 'ok6']]);
      assert.deepEqual(reader.msgs.map((m) => m.id), [2, 3, 4, 5, 6]);
      assert.equal(reader.errors.length, 0, 'errors go to the sender only');
    } finally { await closeAll([reader, c]); }
  });

  test('publish over WS: a JSON value split over a fragmented text message is one publish (a ping between fragments is answered)', T, async () => {
    const ch = 'ws.pub.frag';
    const epoch = await epochOf(h, ch);
    const c = await WsClient.open(h.port, { path: `/ws/${ch}` });
    try {
      c.send(Buffer.concat([
        frame(1, '{"frag', { fin: false }), frame(9, 'p1'), frame(0, 'mented": [1,', { fin: false }), frame(0, ' "é"]}'),
      ]));
      const got = [];
      while (got.filter((e) => e.type === 'message' && JSON.parse(e.data).ack).length < 1) got.push(await c.next(5000, 'the ack'));
      assert.deepEqual(got.filter((e) => e.type === 'pong').map((e) => e.data.toString()), ['p1']);
      const texts = got.filter((e) => e.type === 'message').map((e) => JSON.parse(e.data.toString()));
      assert.deepEqual(texts.at(-1), { ack: 1, cursor: `${epoch}:1` });
      assert.deepEqual(texts.find((t) => t.id === 1)?.data, { fragmented: [1, 'é'] }, 'its own message came back whole');
      assert.deepEqual(c.violations, []);
      c.sendClose(1000);
      await c.waitTcpClose();
    } finally { c.destroy(); }
  });

  test('publish over WS: a 200 kB value, and a socket closed with publishes in flight (all stored in order, herald unharmed)', T, async () => {
    const ch = 'ws.pub.close';
    const epoch = await epochOf(h, ch);
    const c = await WsReader.open(h.port, `/ws/${ch}`);
    const big = { big: 'b'.repeat(200000) };
    c.send(JSON.stringify(big));
    await c.waitAcks(1);
    assert.equal(c.acks[0].ack, 1);
    await c.waitMsgs(1);
    assert.deepEqual(c.msgs[0].data, big);
    // 300 frames, then the TCP connection dropped at once: the acks have nowhere to go
    await new Promise((resolve) => {
      for (let i = 0; i < 300; i++) c.send(JSON.stringify({ k: i }), i === 299 ? resolve : undefined);
    });
    c.ws.terminate();
    // once herald has seen the close it reads nothing more from that socket; a publish after
    // that is committed after every append the socket made (the store commits in order)
    await eventually(async () => (await info(h.url, ch, agent)).subscribers.websocket === 0, 3000, 'unsubscribed');
    const after = await publish(h.url, ch, 'after', { agent });
    assertAlive(h);
    const r = await pollAll(h.url, 'poll', ch, '1', { agent, epoch });
    assert.deepEqual(r.gaps, []);
    assert.deepEqual(r.messages.at(-1).data, 'after');
    const got = r.messages.slice(0, -1).map((m) => m.data.k);
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i), 'a prefix of what was sent, in order');
    assert.deepEqual(r.messages.map((m) => m.id), Array.from({ length: got.length + 1 }, (_, i) => i + 2), 'ids contiguous');
    assert.equal(after.id, got.length + 2, 'no id spent without a message');
  });

  // ---- resume without loss ----

  const N = 10000;
  const batch = (tag) => Array.from({ length: N }, (_, i) => ({ tag, i, pad: 'p'.repeat(i % 37) }));

  test('resume on WS (?since=<last cursor>): exactly the 10,000 missed, in order, once, then live', T, async () => {
    const ch = 'ws.resume';
    const epoch = await epochOf(h, ch);
    const c1 = await WsReader.open(h.port, `/ws/${ch}`);
    for (const s of ['first', 'second', 'third']) await publish(h.url, ch, s, { agent });
    await c1.waitMsgs(3);
    const last = c1.lastCursor();
    assert.equal(last, `${epoch}:3`);
    await c1.close();
    const byId = await publishMany(h.url, ch, batch('ws'));
    const c2 = await WsReader.open(h.port, `/ws/${ch}?since=${last}`);
    try {
      await c2.waitMsgs(N, 20000);
      await sleep(100);
      assert.deepEqual([c2.gaps, c2.errors, c2.acks, c2.other], [[], [], [], []], 'only message frames');
      assertExactRun(c2.msgs.map((m) => m.id), c2.msgs.map((m) => m.data), 4, N + 3, byId, 'ws resume');
      assert.ok(c2.msgs.every((m) => m.cursor === `${epoch}:${m.id}`), 'cursors');
      const live = await publish(h.url, ch, 'live', { agent });
      await c2.waitMsgs(N + 1);
      assert.deepEqual([c2.msgs[N].cursor, c2.msgs[N].data], [live.cursor, 'live']);
      assert.equal(live.id, N + 4);
      await sleep(100);
      assert.equal(c2.msgs.length, N + 1, 'nothing more');
    } finally { await c2.close(); }
    // a bare id in the current epoch resumes the same way; the end of history replays nothing
    const c3 = await WsReader.open(h.port, `/ws/${ch}?since=9000`);
    const c4 = await WsReader.open(h.port, `/ws/${ch}?since=${epoch}:${N + 4}`);
    try {
      await c3.waitMsgs(N + 4 - 9000);
      await sleep(100);
      assert.deepEqual([c3.gaps.length, c3.msgs.length, c3.msgs[0].id, c3.msgs.at(-1).id], [0, N + 4 - 9000, 9001, N + 4]);
      assert.equal(c4.frames.length, 0, 'nothing after the last id');
      const live2 = await publish(h.url, ch, 'live2', { agent });
      await c4.waitMsgs(1);
      await c3.waitMsgs(N + 5 - 9000);
      assert.deepEqual(c4.frames.map((f) => f.json), [c3.msgs.at(-1)].map(({ id, cursor, time, data }) => ({ id, cursor, time, data })));
      assert.equal(c4.msgs[0].id, live2.id);
    } finally { await closeAll([c3, c4]); }
  });

  // ---- switching transports with one cursor ----

  test('switching with one cursor: WS -> SSE -> WS (publishing) -> /poll -> /lp -> WS -> /lp, no loss, no duplicate', T, async () => {
    const ch = 'ws.switch';
    const epoch = await epochOf(h, ch);
    const seen = [];
    const pub = async (from, to) => { for (let i = from; i <= to; i++) await publish(h.url, ch, `s${i}`, { agent }); };
    await pub(1, 3);
    // WS (since=0) -> its last frame's cursor as SSE Last-Event-ID
    const w1 = await WsReader.open(h.port, `/ws/${ch}?since=0`);
    await w1.waitMsgs(3);
    seen.push(...w1.msgs.map((m) => [m.id, m.data]));
    const wsCursor = w1.lastCursor();
    await w1.close();
    await pub(4, 6);
    const s = await SseClient.open(h.port, `/sse/${ch}`, { headers: { 'Last-Event-ID': wsCursor } });
    await s.waitMessages(3);
    await sleep(50);
    seen.push(...s.messages().map((m) => [idOf(m.id), JSON.parse(m.data)]));
    const sseCursor = s.lastEventId;
    s.close();
    assert.equal(sseCursor, `${epoch}:6`);
    // SSE id: -> WS since; this socket then publishes one itself and its ack cursor goes on
    await pub(7, 8);
    const w2 = await WsReader.open(h.port, `/ws/${ch}?since=${sseCursor}`);
    await w2.waitMsgs(2);
    w2.send(JSON.stringify('s9'));
    await w2.waitAcks(1);
    await w2.waitMsgs(3);
    seen.push(...w2.msgs.map((m) => [m.id, m.data]));
    const ackCursor = w2.acks[0].cursor;
    assert.equal(ackCursor, w2.lastCursor(), 'the ack cursor is the message cursor');
    await w2.close();
    // WS ack cursor -> /poll since
    await pub(10, 11);
    const pj = checkPollAnswer(await pollReq(h.url, 'poll', ch, ackCursor, { agent }), ch, epoch, 'poll from the WS ack cursor');
    assert.equal(pj.gap, null);
    seen.push(...pj.messages.map((m) => [m.id, m.data]));
    // /poll next -> /lp (held, answered by a publish)
    const held = pollReq(h.url, 'lp', ch, pj.next, { agent });
    await sleep(100);
    await pub(12, 12);
    const lj = checkPollAnswer(await held, ch, epoch, 'held lp');
    seen.push(...lj.messages.map((m) => [m.id, m.data]));
    // /lp next -> WS since, live
    const w3 = await WsReader.open(h.port, `/ws/${ch}?since=${lj.next}`);
    await sleep(100);
    assert.equal(w3.frames.length, 0, 'nothing replayed at the end');
    await pub(13, 13);
    await w3.waitMsgs(1);
    seen.push(...w3.msgs.map((m) => [m.id, m.data]));
    const w3Cursor = w3.lastCursor();
    await w3.close();
    // WS frame cursor -> /lp since
    await pub(14, 14);
    const lj2 = checkPollAnswer(await pollReq(h.url, 'lp', ch, w3Cursor, { agent }), ch, epoch, 'lp from a WS cursor');
    assert.equal(lj2.gap, null);
    seen.push(...lj2.messages.map((m) => [m.id, m.data]));
    assert.deepEqual(seen, Array.from({ length: 14 }, (_, i) => [i + 1, `s${i + 1}`]));
  });

  // ---- malformed input: a 400 with a JSON error, never an upgrade ----

  const BAD_NAMES = ['a%20b', 'a%2Fb', 'a/b', 'x'.repeat(201), '', 'caf%C3%A9', 'a+b', 'a*b', 'a%00b', 'a,b', 'pct%zz', 'pct%3', 'pct%'];
  const BAD_SINCE = ['abc', '-1', '1.5', ':', '%3A', 'x:', 'x%3A', '99999999999999999999999', '18446744073709551616',
    '1a', '0x10', '%201', '1%20', 'abc:', ':5', 'EPOCH:1.5', 'abc:-1', '1:2:3x', 'x'.repeat(1100), '9'.repeat(1100)];

  async function expect400(pathname, message) {
    const r = await httpExchange(h.port, upgradeRequest(pathname));
    const what = `upgrade ${pathname.slice(0, 60)}`;
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.raw?.slice(0, 300)}`);
    assert.equal(r.headers.upgrade, undefined, `${what}: no Upgrade header`);
    assert.equal(r.headers['sec-websocket-accept'], undefined, `${what}: no Sec-WebSocket-Accept`);
    assert.match(r.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
    assert.deepEqual(JSON.parse(r.body.toString()), { error: message }, `${what}: body`);
  }

  test('bad channel names: 400 {"error":"invalid channel name"}, no upgrade', T, async () => {
    for (const name of BAD_NAMES) {
      await expect400(`/ws/${name}`, 'invalid channel name');
      await expect400(`/ws/${name}?since=1`, 'invalid channel name');
    }
    // the ws package sees the refusal as an unexpected response with the JSON body
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/ws/a%20b`);
    ws.on('error', () => {});
    const seen = await new Promise((resolve, reject) => {
      ws.once('open', () => reject(new Error('upgraded')));
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
    });
    ws.terminate();
    assert.deepEqual(seen, { status: 400, body: '{"error":"invalid channel name"}' });
    assertAlive(h);
  });

  test('bad since: 400 {"error":"invalid cursor in since"}, no upgrade; the largest id and an encoded colon are valid', T, async () => {
    const ch = 'ws.since.bad';
    await publish(h.url, ch, 'x', { agent });
    const epoch = await epochOf(h, ch);
    for (const s of BAD_SINCE) await expect400(`/ws/${ch}?since=${s.replace('EPOCH', epoch)}`, 'invalid cursor in since');
    assert.deepEqual((await info(h.url, ch, agent)).subscribers.websocket, 0, 'no subscriber left behind');
    // refused requests create nothing
    await expect400('/ws/ws.since.never?since=abc', 'invalid cursor in since');
    const never = await info(h.url, 'ws.since.never', agent);
    assert.deepEqual([never.last_id, never.subscribers.websocket], [0, 0]);
    // without an upgrade, a valid request is told to upgrade
    const plain = await request(h.url, 'GET', `/ws/${ch}`, { agent });
    assert.equal(plain.status, 426, plain.text);
    assert.equal(typeof plain.json?.error, 'string', plain.text);
    // valid edge cases
    const max = await WsReader.open(h.port, `/ws/${ch}?since=18446744073709551615`);
    const enc = await WsReader.open(h.port, `/ws/${ch}?since=${epoch}%3A0`);
    try {
      await max.waitMsgs(1);
      assert.deepEqual(max.gaps, [{ gap: 'unknown', first: 1, at: 0 }]);
      await enc.waitMsgs(1);
      assert.deepEqual([enc.gaps, enc.msgs.map((m) => m.data)], [[], ['x']]);
    } finally { await closeAll([max, enc]); }
  });
});

// ================================================================================================
describe('WebSocket channels: gaps (--history 5)', () => {
  let h;
  let agent;
  before(async () => {
    h = await startHerald(['--history', '5']);
    agent = makeAgent(4);
  });
  after(async () => { agent?.destroy(); await stopChecked(h); });

  // a channel with messages g1..g10 of which 6..10 are kept
  let nth = 0;
  async function ten() {
    const ch = `gap.${++nth}`;
    const epoch = await epochOf(h, ch);
    for (let i = 1; i <= 10; i++) assert.equal((await publish(h.url, ch, `g${i}`, { agent })).id, i);
    const inf = await info(h.url, ch, agent);
    assert.deepEqual([inf.first_id, inf.last_id, inf.history], [6, 10, 5]);
    return { ch, epoch };
  }
  const kept = [6, 7, 8, 9, 10].map((i) => [i, `g${i}`]);

  // Resume with since; expect the gap frame (or none) first, exactly msgs, then a live message.
  async function resume(ch, epoch, since, gap, msgs) {
    const what = `since=${since}`;
    const c = await WsReader.open(h.port, `/ws/${ch}?since=${since}`);
    try {
      await c.waitMsgs(msgs.length);
      await sleep(50);
      if (gap) {
        assert.deepEqual(c.frames[0].json, { gap, first: 6 }, `${what}: the first frame is the gap notice`);
        assert.deepEqual(Object.keys(c.frames[0].json), ['gap', 'first'], `${what}: gap frame keys`);
        assert.equal(c.gaps.length, 1, `${what}: one gap frame`);
      } else assert.equal(c.gaps.length, 0, `${what}: no gap frame`);
      assert.deepEqual(c.msgs.map((m) => [m.id, m.data]), msgs, what);
      c.msgs.forEach((m) => checkMsgFrame(m, epoch, what, JSON.stringify(`g${m.id}`)));
      assert.equal(c.frames.length, msgs.length + (gap ? 1 : 0), `${what}: nothing else`);
      const live = await publish(h.url, ch, 'live', { agent });
      await c.waitMsgs(msgs.length + 1);
      assert.deepEqual([c.msgs.at(-1).cursor, c.msgs.at(-1).data], [live.cursor, 'live'], `${what}: then live`);
      return c.msgs;
    } finally { await c.close(); }
  }

  test('trimmed: {"gap":"trimmed","first":6} then ids 6..10 then live; the boundary is exact', T, async () => {
    for (const [since, gap, msgs] of [
      ['2', 'trimmed', kept], ['EPOCH:2', 'trimmed', kept], ['0', 'trimmed', kept], ['4', 'trimmed', kept],
      ['EPOCH:5', null, kept], ['5', null, kept], ['7', null, kept.slice(2)], ['EPOCH:10', null, []],
    ]) {
      const { ch, epoch } = await ten();
      await resume(ch, epoch, since.replace('EPOCH', epoch), gap, msgs);
    }
  });

  test('another epoch ("abc:3") -> {"gap":"epoch","first":6} and the whole kept history, then live', T, async () => {
    for (const since of ['abc:3', 'abc:0', 'abc:99', 'xyz-_1:10']) {
      const { ch, epoch } = await ten();
      await resume(ch, epoch, since, 'epoch', kept);
    }
  });

  test("another channel's cursor -> gap \"epoch\" (never read as an id of this one)", T, async () => {
    const other = await ten();
    const { ch, epoch } = await ten();
    assert.notEqual(other.epoch, epoch, 'each channel has its own epoch');
    // an id of the other channel that is also a valid, kept id here
    await resume(ch, epoch, `${other.epoch}:7`, 'epoch', kept);
    // a cursor taken from the other channel's own WS frame
    const o = await WsReader.open(h.port, `/ws/${other.ch}?since=${other.epoch}:8`);
    await o.waitMsgs(2);
    const foreign = o.lastCursor();
    await o.close();
    assert.equal(foreign, `${other.epoch}:10`);
    const again = await ten();
    await resume(again.ch, again.epoch, foreign, 'epoch', kept);
  });

  test('an id beyond the last -> {"gap":"unknown","first":6} and the whole kept history, then live', T, async () => {
    for (const since of ['11', 'EPOCH:11', 'EPOCH:99999', '18446744073709551615']) {
      const { ch, epoch } = await ten();
      await resume(ch, epoch, since.replace('EPOCH', epoch), 'unknown', kept);
    }
  });
});

// ================================================================================================
// A resume replays history a page at a time as the reader's output drains (so memory stays near
// --max-queued), and the replay is never mistaken for a slow consumer: a reader that reads as fast
// as it can gets all of it on one connection, whatever the channel's policy, as on SSE.
describe('WebSocket channels: a replay larger than --max-queued', () => {
  test('a fast reader resuming 16 MB of history gets all of it on one connection, as on SSE', {
    timeout: 90000,
  }, async () => {
    const h = await startHerald(['--store', 'memory', '--max-queued', '1024', '--channel-policy', 'skip.*=skip']);
    const open = [];
    try {
      const COUNT = 1000;  // x ~16 kB = the default --history-bytes (16 MiB)
      const big = 'y'.repeat(16 * 1024 - 40);
      const problems = [];
      for (const ch of ['dflt', 'skip.x']) {
        const byId = await publishMany(h.url, ch, Array.from({ length: COUNT }, (_, i) => ({ n: i, s: big })), { concurrency: 20 });
        assert.equal((await info(h.url, ch)).history, COUNT);
        const s = await SseClient.open(h.port, `/sse/${ch}`, { headers: { 'Last-Event-ID': '0' }, keepText: false });
        open.push(s);
        await s.waitMessages(COUNT, 20000);
        const w = await WsReader.open(h.port, `/ws/${ch}?since=0`);
        open.push(w);
        await w.until(() => w.msgs.length >= COUNT || w.closed, 20000, `${COUNT} messages`).catch(() => {});
        if (w.closed || w.msgs.length < COUNT) {
          problems.push(`${ch}: WS got ${w.msgs.length} of ${COUNT}, closed ${JSON.stringify(w.closed)} (SSE got ${s.messages().length})`);
        } else assertExactRun(w.msgs.map((m) => m.id), w.msgs.map((m) => m.data), 1, COUNT, byId, `${ch} WS replay`);
      }
      assert.deepEqual(problems, []);
    } finally {
      for (const c of open) await c.close();
      await stopChecked(h);
    }
  });
});
