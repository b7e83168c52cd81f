// Socket.IO end to end with the official client (socket.io-client 4.8, pinned in package.json)
// against herald's default app (--app chat, the seed tutorial's server): on connection the new
// socket alone gets the event "message" {"type":"init","message":"欢迎连接"} (socket.send), and
// every "message" event is relayed unchanged to every connected socket, sender included
// (io.emit('message', msg)).
//
// Covered: each transport set (polling only, websocket only, the default polling -> websocket
// upgrade), the welcome exactly once, fan-out across mixed transports with exact payloads and
// order, the polling POST and GET paths under load, --max-payload (HTTP 413, WebSocket close 1009),
// heartbeat (--ping-interval/--ping-timeout), reconnection, CORS (default and --cors-origin),
// Engine.IO error answers (EIO=3, unknown sid, bad transport, bad handshake method) and no loss
// or duplicate across the upgrade.
//
// With REFERENCE=1 everything runs against the official Node.js socket.io server set up the
// same way (lib/reference-server.mjs): that is the oracle wherever the protocol docs are silent.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import {
  startServer, stopServer, createWebSocket, waitFor, closeAll, sleep, httpRequest, until,
} from './lib/sio-util.mjs';

const WELCOME = { type: 'init', message: '欢迎连接' };
const isWelcome = (m) => m && typeof m === 'object' && m.type === 'init' && m.message === '欢迎连接';
// A tag unique to this run, so that echoes of one test are never confused with another's.
const RUN = `r${process.pid}-${Date.now().toString(36)}`;
let seq = 0;
const tag = (name) => `${RUN}-${name}-${++seq}`;

const clients = [];
const rawSockets = [];

// A socket.io-client socket that records every "message" event from its very first packet.
// opts go to io(); by default a fresh Manager, no reconnection, a 5 s connect timeout.
function client(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  const c = { socket, messages: [], welcomes: 0, connects: 0, disconnects: [], errors: [] };
  socket.on('message', (m) => {
    if (isWelcome(m)) c.welcomes++;
    c.messages.push(m);
  });
  socket.on('connect', () => { c.connects++; });
  socket.on('disconnect', (reason, details) => { c.disconnects.push({ reason, details }); });
  socket.on('connect_error', (e) => { c.errors.push(e.message); });
  c.name = opts.transports ? opts.transports.join('+') : 'default';
  // What the Engine.IO layer saw, with ms since creation, for failure messages.
  c.trace = [];
  const t0 = Date.now();
  const note = (what) => { if (c.trace.length < 400) c.trace.push(`${what}@${Date.now() - t0}`); };
  const watch = (engine) => {
    if (!engine || engine._traced) return;
    engine._traced = true;
    const short = (d) => (d === undefined ? '' : ':' + (typeof d === 'string' ? d : `<${d.byteLength ?? d.length} bytes>`).slice(0, 40));
    engine.on('open', () => note(`open(${engine.transport.name})`));
    engine.on('upgrading', (tr) => note(`upgrading(${tr.name})`));
    engine.on('upgrade', (tr) => note(`upgrade(${tr.name})`));
    engine.on('upgradeError', (e) => note(`upgradeError(${e.message})`));
    engine.on('packet', (pk) => note(`in(${engine.transport && engine.transport.name}) ${pk.type}${short(pk.data)}`));
    engine.on('packetCreate', (pk) => note(`out(${engine.transport && engine.transport.name}) ${pk.type}${short(pk.data)}`));
    engine.on('close', (r, d) => note(`close(${r}${d && d.description ? ', ' + (d.description.message || d.description) : ''})`));
  };
  watch(socket.io.engine);
  socket.io.on('open', () => watch(socket.io.engine));
  c.describe = () => `${c.name} client: connected=${socket.connected}, disconnects=${JSON.stringify(c.disconnects.map((d) => d.reason))}, ` +
    `connect_errors=${JSON.stringify(c.errors)}, engine trace:\n    ${c.trace.join('\n    ')}`;
  clients.push(c);
  return c;
}

async function connected(c, ms = 8000) {
  await until(() => c.socket.connected, ms, () => `the client to connect; ${c.describe()}`);
}

// Messages (not the welcome) carrying tag t, in arrival order.
const tagged = (c, t) => c.messages.filter((m) => m && typeof m === 'object' && m.tag === t);

// Wait until client c has n messages tagged t; on timeout describe what its engine saw.
const got = (c, t, n, ms, what) => until(() => tagged(c, t).length >= n, ms,
  () => `${what} (got ${tagged(c, t).length} of ${n}); ${c.describe()}`);

function disconnectAll() {
  for (const c of clients.splice(0)) {
    try { c.socket.io.opts.reconnection = false; c.socket.io.reconnection(false); c.socket.disconnect(); } catch { /* gone */ }
  }
  closeAll(rawSockets);
}

async function waitUpgraded(c, ms = 8000) {
  const engine = c.socket.io.engine;
  await until(() => engine.transport && engine.transport.name === 'websocket', ms,
    () => `the upgrade to websocket (transport: ${engine.transport && engine.transport.name})`);
}

function assertAlive(server) {
  assert.equal(server.proc.exitCode, null, `server exited:\n${server.output().slice(-2000)}`);
  assert.equal(server.proc.signalCode, null, `server was killed by ${server.proc.signalCode}:\n${server.output().slice(-2000)}`);
}

async function rawHandshake(url) {
  const r = await httpRequest(`${url}/socket.io/?EIO=4&transport=polling`);
  assert.equal(r.status, 200, `handshake: ${r.status} ${r.body}`);
  assert.ok(r.body.startsWith('0'), `handshake body: ${r.body}`);
  return JSON.parse(r.body.slice(1));
}

// Payloads that survive JSON exactly (no -0, NaN, undefined, lone surrogates).
const PAYLOADS = [
  {
    text: '你好, мир, héllo 🌍👍🏽 — ∑ ≠ ∞',
    nested: { a: [1, 2, { b: null, c: [[], {}] }], t: true, f: false, deep: { x: { y: { z: ['end'] } } } },
    n: 1.5, big: 1e21, neg: -42, small: 1e-7, tenth: 0.1, max: 9007199254740991, zero: 0, minus: -273.15,
    empty: '', escapes: 'quote" backslash\\ slash/ newline\n tab\t nul\u0000 ls\u2028 ps\u2029 del\u007f',
  },
  'a plain string with "quotes" and 中文',
  12345.678,
  [1, 'two', { three: 3 }, [4], null, true],
  { type: 'chat', message: 'hello', user: { name: 'Zoë', id: 7 } },
];

let srv;

before(async () => {
  srv = await startServer([]);
});
after(async () => {
  disconnectAll();
  await stopServer(srv);
});
afterEach(() => disconnectAll());

describe('transports', { timeout: 20000 }, () => {
  test("transports ['polling'] only: connects over polling, welcome once, round trip", async () => {
    const c = client(srv.url, { transports: ['polling'] });
    await connected(c);
    assert.equal(c.socket.io.engine.transport.name, 'polling');
    await until(() => c.welcomes >= 1, 5000, 'the welcome');
    const t = tag('poll');
    c.socket.emit('message', { tag: t, n: 1 });
    await got(c, t, 1, 5000, `the echo`);
    await sleep(300);
    assert.deepEqual(tagged(c, t), [{ tag: t, n: 1 }]);
    assert.equal(c.welcomes, 1, 'welcome exactly once');
    assert.deepEqual(c.messages[0], WELCOME, 'the welcome comes first');
    assert.equal(c.socket.io.engine.transport.name, 'polling', 'never upgraded');
  });

  test("transports ['websocket'] only: connects over websocket, welcome once, round trip", async () => {
    const c = client(srv.url, { transports: ['websocket'] });
    await connected(c);
    assert.equal(c.socket.io.engine.transport.name, 'websocket');
    await until(() => c.welcomes >= 1, 5000, 'the welcome');
    const t = tag('ws');
    c.socket.emit('message', { tag: t, n: 2 });
    await got(c, t, 1, 5000, `the echo`);
    await sleep(300);
    assert.deepEqual(tagged(c, t), [{ tag: t, n: 2 }]);
    assert.equal(c.welcomes, 1, 'welcome exactly once');
    assert.deepEqual(c.messages[0], WELCOME);
  });

  test('default transports: starts with polling, upgrades to websocket, welcome once', async () => {
    const c = client(srv.url);
    const engine = c.socket.io.engine;
    let upgradedTo = null;
    const upgraded = new Promise((resolve) => engine.once('upgrade', (transport) => { upgradedTo = transport.name; resolve(); }));
    assert.equal(engine.transport.name, 'polling', 'the first transport is polling');
    await connected(c);
    await Promise.race([upgraded, sleep(8000).then(() => { throw new Error(`no 'upgrade' event within 8 s (transport ${engine.transport.name})`); })]);
    assert.equal(upgradedTo, 'websocket');
    assert.equal(c.socket.io.engine.transport.name, 'websocket');
    assert.ok(c.socket.connected);
    const t = tag('up');
    c.socket.emit('message', { tag: t });
    await got(c, t, 1, 5000, `the echo after the upgrade`);
    await sleep(300);
    assert.equal(c.welcomes, 1, 'welcome exactly once, across the upgrade');
    assert.deepEqual(tagged(c, t), [{ tag: t }]);
  });
});

describe('fan-out between mixed transports', { timeout: 30000 }, () => {
  async function three() {
    const p = client(srv.url, { transports: ['polling'] });
    const w = client(srv.url, { transports: ['websocket'] });
    const d = client(srv.url);
    await Promise.all([connected(p), connected(w), connected(d)]);
    await waitUpgraded(d);
    await until(() => p.welcomes && w.welcomes && d.welcomes, 5000, 'the three welcomes');
    return [p, w, d];
  }

  test('a message from any client reaches all three, sender included, deep-equal', async () => {
    const all = await three();
    for (const sender of all) {
      const t = tag(`from-${sender.name}`);
      for (const [i, v] of PAYLOADS.entries()) sender.socket.emit('message', { tag: t, i, v });
      const want = PAYLOADS.map((v, i) => ({ tag: t, i, v }));
      for (const r of all) {
        await got(r, t, want.length, 5000, `${r.name} to get ${want.length} messages from ${sender.name}`);
      }
      await sleep(200);
      for (const r of all) assert.deepStrictEqual(tagged(r, t), want, `${r.name} receiving from ${sender.name}`);
    }
    // Payloads that are not objects are relayed as such too.
    const raw = ['just text', 42, 1.5, 1e21, true, null, ['x', 1], '中文 🌍'];
    const seen = all.map((r) => r.messages.length);
    for (const v of raw) all[1].socket.emit('message', v);
    for (const [k, r] of all.entries()) {
      await until(() => r.messages.length >= seen[k] + raw.length, 5000, `${r.name} to get the ${raw.length} bare values`);
    }
    await sleep(200);
    for (const [k, r] of all.entries()) assert.deepStrictEqual(r.messages.slice(seen[k]), raw, `${r.name}: bare values`);
    for (const r of all) assert.equal(r.welcomes, 1, `${r.name}: welcome exactly once`);
  });

  test('order: per sender always; across senders when sent one after another', async () => {
    const all = await three();
    // Concurrent senders: each receiver sees every sender's 20 messages, complete and in order.
    const t = tag('order');
    for (let k = 0; k < 20; k++) for (const s of all) s.socket.emit('message', { tag: t, from: s.name, k });
    for (const r of all) await got(r, t, 60, 8000, `${r.name} to get 60`);
    await sleep(200);
    for (const r of all) {
      const got = tagged(r, t);
      assert.equal(got.length, 60, `${r.name}: no duplicates`);
      for (const s of all) {
        assert.deepStrictEqual(got.filter((m) => m.from === s.name).map((m) => m.k), [...Array(20).keys()], `${r.name} from ${s.name}`);
      }
    }
    // Sequential senders: the next sender sends once the previous one got its own message back,
    // so the server has relayed it; everyone sees the same order.
    const t2 = tag('seq');
    const sent = [];
    for (let k = 0; k < 9; k++) {
      const s = all[k % 3];
      const m = { tag: t2, from: s.name, k };
      sent.push(m);
      s.socket.emit('message', m);
      await until(() => tagged(s, t2).some((x) => x.k === k), 5000, `${s.name} to get its message ${k} back`);
    }
    for (const r of all) await got(r, t2, 9, 5000, `${r.name} to get the 9 sequential messages`);
    await sleep(200);
    for (const r of all) assert.deepStrictEqual(tagged(r, t2), sent, `${r.name}: same order as sent`);
  });
});

describe('long-polling paths', { timeout: 30000 }, () => {
  test('100 quick messages from a polling-only client (POST) reach it (GET) and a websocket client, in order', async () => {
    const p = client(srv.url, { transports: ['polling'] });
    const w = client(srv.url, { transports: ['websocket'] });
    await Promise.all([connected(p), connected(w)]);
    const t = tag('post');
    for (let k = 0; k < 100; k++) p.socket.emit('message', { tag: t, k, pad: 'p'.repeat(k) });
    for (const r of [p, w]) await got(r, t, 100, 10000, `${r.name} to get 100`);
    await sleep(300);
    for (const r of [p, w]) {
      assert.deepStrictEqual(tagged(r, t).map((m) => m.k), [...Array(100).keys()], `${r.name}: all 100, once, in order`);
      assert.deepStrictEqual(tagged(r, t)[99], { tag: t, k: 99, pad: 'p'.repeat(99) });
    }
    assert.equal(p.socket.io.engine.transport.name, 'polling');
  });

  test('100 quick messages to a polling-only client (GET) arrive in order', async () => {
    const p = client(srv.url, { transports: ['polling'] });
    const w = client(srv.url, { transports: ['websocket'] });
    await Promise.all([connected(p), connected(w)]);
    const t = tag('get');
    for (let k = 0; k < 100; k++) w.socket.emit('message', { tag: t, k, text: `消息 ${k}` });
    await got(p, t, 100, 10000, `the polling client to get 100`);
    await sleep(300);
    assert.deepStrictEqual(tagged(p, t), [...Array(100).keys()].map((k) => ({ tag: t, k, text: `消息 ${k}` })));
    assert.equal(p.welcomes, 1);
  });
});

describe('no loss across the upgrade', { timeout: 30000 }, () => {
  // Send 200 tagged messages in batches of 2 every 5 ms (half a second or more), starting at 'connect'; count how many
  // left while the transport was still polling and how many after the upgrade.
  async function run(c, name) {
    const t = tag(name);
    let upgraded = false;
    c.socket.io.engine.once('upgrade', () => { upgraded = true; });
    const count = { polling: 0, websocket: 0 };
    let done = false;
    c.socket.once('connect', () => {
      let k = 0;
      const tick = () => {
        for (let j = 0; j < 2 && k < 200; j++, k++) {
          count[c.socket.io.engine.transport.name]++;
          c.socket.emit('message', { tag: t, k });
        }
        if (k < 200) setTimeout(tick, 5); else done = true;
      };
      tick();
    });
    await connected(c);
    await until(() => done, 10000, 'the 200 sends');
    await got(c, t, 200, 15000, `200 echoes`);
    await sleep(300);
    assert.deepStrictEqual(tagged(c, t).map((m) => m.k), [...Array(200).keys()], 'all 200 echoes, once, in order');
    await until(() => upgraded, 5000, 'the upgrade');
    assert.equal(c.socket.io.engine.transport.name, 'websocket');
    assert.equal(c.welcomes, 1);
    return count;
  }

  test('200 messages sent from connect on while the upgrade happens: all 200 echoes, once, in order', async (t) => {
    const count = await run(client(srv.url), 'upgrade');
    t.diagnostic(`sent over polling: ${count.polling}, over websocket: ${count.websocket}`);
  });

  test('the same with the probe held back 150 ms, so the sends straddle the switch', async (t) => {
    // A test device, not a protocol change: the client starts its websocket probe 150 ms after
    // the Engine.IO open instead of at once (the Node server answers the Socket.IO connect only
    // after a localhost upgrade has finished, so 'connect' would otherwise come after it).
    const c = client(srv.url);
    const engine = c.socket.io.engine;
    const probe = engine._probe.bind(engine);
    assert.equal(typeof probe, 'function', 'engine.io-client has _probe');
    engine._probe = (name) => setTimeout(() => probe(name), 150);
    const count = await run(c, 'straddle');
    t.diagnostic(`sent over polling: ${count.polling}, over websocket: ${count.websocket}`);
    assert.ok(count.polling > 0 && count.websocket > 0, `the sends straddle the upgrade (polling ${count.polling}, websocket ${count.websocket})`);
  });
});

describe('polls during the upgrade (raw Engine.IO)', { timeout: 20000 }, () => {
  // socket.io-client sends the upgrade packet "5" only once its last poll has completed. A page
  // whose script was blocked (the tutorial's alert()) can send one more poll after the probe was
  // answered; held, it would stall the upgrade for good. Every poll from 3probe on is answered
  // with a noop, as the reference server does.
  const base = () => `${srv.url}/socket.io/?EIO=4&transport=polling`;
  async function openSession() {
    const hs = await httpRequest(base());
    assert.equal(hs.status, 200);
    const sid = JSON.parse(hs.body.slice(1)).sid;
    assert.equal((await httpRequest(`${base()}&sid=${sid}`, { method: 'POST', body: '40' })).status, 200);
    const first = await httpRequest(`${base()}&sid=${sid}`);
    assert.match(first.body, /^40\{"sid":/, `CONNECT answered: ${first.body}`);
    return sid;
  }
  async function probe(sid) {
    const ws = createWebSocket(`${srv.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${sid}`, { track: rawSockets });
    await waitFor(ws, 'open');
    ws.send('2probe');
    const { data } = await waitFor(ws, 'message');
    assert.equal(data, '3probe');
    return ws;
  }

  test('a poll held when 3probe is sent is released with a noop, and so is one sent after it', async () => {
    const sid = await openSession();
    const held = httpRequest(`${base()}&sid=${sid}`);
    await sleep(100); // the poll reaches the server and is held (nothing is queued)
    const ws = await probe(sid);
    const released = await held;
    assert.equal(released.status, 200);
    assert.equal(released.body, '6', 'the held poll gets a noop');
    const t0 = Date.now();
    const late = await httpRequest(`${base()}&sid=${sid}`, { timeoutMs: 3000 });
    assert.equal(late.status, 200);
    assert.equal(late.body, '6', 'a poll sent after 3probe is answered with a noop');
    assert.ok(Date.now() - t0 < 1000, `answered in ${Date.now() - t0} ms`);
    // the upgrade completes and the session works over the WebSocket
    ws.send('5');
    const text = tag('after-upgrade');
    ws.send(`42["message",${JSON.stringify(text)}]`);
    for (;;) {
      const { data } = await waitFor(ws, 'message');
      if (data === '2') { ws.send('3'); continue; }
      assert.ok(data.startsWith('42["message",' + JSON.stringify(text)), `the broadcast over the WebSocket: ${data}`);
      break;
    }
  });

  test('a poll sent after 3probe with none held is answered with a noop', async () => {
    const sid = await openSession();
    const ws = await probe(sid);
    const late = await httpRequest(`${base()}&sid=${sid}`, { timeoutMs: 3000 });
    assert.equal(late.status, 200);
    assert.equal(late.body, '6');
    ws.send('5');
  });
});

describe('reconnect', { timeout: 30000 }, () => {
  test('after the transport drops (engine.close()), the client reconnects and messages flow', async () => {
    const c = client(srv.url, { reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
    await connected(c);
    await until(() => c.welcomes >= 1, 5000, 'the welcome');
    const firstId = c.socket.id;
    c.socket.io.engine.close();
    await until(() => c.disconnects.length >= 1, 5000, 'disconnect');
    await until(() => c.connects >= 2 && c.socket.connected, 10000, () => `the second connect (connects ${c.connects}, errors ${JSON.stringify(c.errors)})`);
    // connection state recovery is on by default: the same socket comes back
    assert.equal(c.socket.recovered, true, 'recovered');
    assert.equal(c.socket.id, firstId, 'the same socket id');
    await until(() => c.welcomes >= 2, 5000, 'the welcome of the new connection');
    const t = tag('reconnect');
    c.socket.emit('message', { tag: t, after: 'reconnect' });
    await got(c, t, 1, 5000, `the echo after reconnecting`);
    await sleep(200);
    assert.deepStrictEqual(tagged(c, t), [{ tag: t, after: 'reconnect' }]);
    assert.equal(c.welcomes, 2, 'one welcome per connection');
  });
});

describe('Engine.IO error answers', { timeout: 20000 }, () => {
  async function jsonError(pathAndQuery, init = {}) {
    const r = await httpRequest(`${srv.url}${pathAndQuery}`, init);
    let body;
    try { body = JSON.parse(r.body); } catch { assert.fail(`${init.method || 'GET'} ${pathAndQuery}: body is not JSON: ${JSON.stringify(r.body)} (status ${r.status})`); }
    return { ...r, json: body };
  }

  test('EIO=3 -> 400 {"code":5,"message":"Unsupported protocol version"}', async () => {
    const r = await jsonError('/socket.io/?EIO=3&transport=polling');
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'] || '', /application\/json/);
    assert.deepStrictEqual(r.json, { code: 5, message: 'Unsupported protocol version' });
  });

  test('unknown sid -> 400 {"code":1,"message":"Session ID unknown"}', async () => {
    const r = await jsonError('/socket.io/?EIO=4&transport=polling&sid=nope');
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'] || '', /application\/json/);
    assert.deepStrictEqual(r.json, { code: 1, message: 'Session ID unknown' });
  });

  test('bad transport -> 400 {"code":0,"message":"Transport unknown"}', async () => {
    const r = await jsonError('/socket.io/?EIO=4&transport=carrier-pigeon');
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'] || '', /application\/json/);
    assert.deepStrictEqual(r.json, { code: 0, message: 'Transport unknown' });
  });

  test('POST without sid -> 400 {"code":2,"message":"Bad handshake method"}', async () => {
    const r = await jsonError('/socket.io/?EIO=4&transport=polling', { method: 'POST', body: '40', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'] || '', /application\/json/);
    assert.deepStrictEqual(r.json, { code: 2, message: 'Bad handshake method' });
  });

  test('default handshake advertises maxPayload 1000000 and the websocket upgrade', async () => {
    const hs = await rawHandshake(srv.url);
    assert.equal(hs.maxPayload, 1000000);
    assert.deepStrictEqual(hs.upgrades, ['websocket']);
    assert.equal(typeof hs.sid, 'string');
  });
});

describe('CORS', { timeout: 20000 }, () => {
  test('default: a polling handshake with an Origin gets Access-Control-Allow-Origin (* or the origin)', async () => {
    const r = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://example.com' } });
    assert.equal(r.status, 200, r.body);
    const acao = r.headers['access-control-allow-origin'];
    assert.ok(acao === '*' || acao === 'http://example.com', `Access-Control-Allow-Origin: ${acao}`);
  });

  test('default: an OPTIONS preflight gets 204 with Access-Control-Allow-Methods containing POST', async () => {
    const r = await httpRequest(`${srv.url}/socket.io/?EIO=4&transport=polling`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    assert.equal(r.status, 204, `status ${r.status} ${r.body}`);
    const methods = (r.headers['access-control-allow-methods'] || '').split(',').map((s) => s.trim().toUpperCase());
    assert.ok(methods.includes('POST'), `Access-Control-Allow-Methods: ${r.headers['access-control-allow-methods']}`);
    const acao = r.headers['access-control-allow-origin'];
    assert.ok(acao === '*' || acao === 'http://example.com', `Access-Control-Allow-Origin: ${acao}`);
  });

  describe('--cors-origin http://good.example', () => {
    let s2;
    before(async () => { s2 = await startServer(['--cors-origin', 'http://good.example']); });
    after(async () => { await stopServer(s2); });

    test('the allowed origin is echoed, with credentials', async () => {
      const r = await httpRequest(`${s2.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://good.example' } });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['access-control-allow-origin'], 'http://good.example');
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
    });

    test('another origin gets no Access-Control-Allow-Origin', async () => {
      const r = await httpRequest(`${s2.url}/socket.io/?EIO=4&transport=polling`, { headers: { Origin: 'http://evil.example' } });
      assert.equal(r.headers['access-control-allow-origin'], undefined, `got Access-Control-Allow-Origin: ${r.headers['access-control-allow-origin']}`);
    });
  });
});

describe('--max-payload 1000', { timeout: 20000 }, () => {
  let s3;
  before(async () => { s3 = await startServer(['--max-payload', '1000']); });
  after(async () => { await stopServer(s3); });

  test('the handshake advertises maxPayload 1000', async () => {
    const hs = await rawHandshake(s3.url);
    assert.equal(hs.maxPayload, 1000);
  });

  test('a polling POST over 1000 bytes gets HTTP 413', async () => {
    const { sid } = await rawHandshake(s3.url);
    const r = await fetch(`${s3.url}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`, {
      method: 'POST', body: '4' + 'x'.repeat(2000), headers: { 'content-type': 'text/plain;charset=UTF-8' },
    });
    const body = await r.text();
    assert.equal(r.status, 413, `status ${r.status} ${body}`);
    assertAlive(s3);
  });

  test('a websocket message over 1000 bytes closes the WebSocket with 1009; the server stays up', async () => {
    const c = client(s3.url, { transports: ['websocket'] });
    await connected(c);
    const ws = c.socket.io.engine.transport.ws;
    let closeCode = null;
    ws.addEventListener('close', (e) => { closeCode = e.code; });
    // A message under the limit still goes through.
    const t = tag('small');
    c.socket.emit('message', { tag: t });
    await got(c, t, 1, 5000, `the small echo`);
    c.socket.emit('message', 'x'.repeat(2000));
    await until(() => closeCode !== null, 5000, 'the WebSocket to close');
    assert.equal(closeCode, 1009);
    await until(() => c.disconnects.length >= 1, 5000, 'disconnect');
    assert.equal(c.socket.connected, false);
    assertAlive(s3);
    // The server still serves others.
    const c2 = client(s3.url, { transports: ['websocket'] });
    await connected(c2);
    const t2 = tag('after');
    c2.socket.emit('message', { tag: t2 });
    await got(c2, t2, 1, 5000, `an echo after the 1009`);
  });
});

describe('heartbeat (--ping-interval 300 --ping-timeout 200)', { timeout: 20000 }, () => {
  let s4;
  before(async () => { s4 = await startServer(['--ping-interval', '300', '--ping-timeout', '200']); });
  after(async () => { await stopServer(s4); });

  test('the handshake advertises the intervals', async () => {
    const hs = await rawHandshake(s4.url);
    assert.equal(hs.pingInterval, 300);
    assert.equal(hs.pingTimeout, 200);
  });

  test('a raw client that never answers pings is closed after a ping, within 3 s, not before 300 ms', async () => {
    const ws = createWebSocket(`${s4.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, { track: rawSockets });
    await waitFor(ws, 'open');
    const opened = Date.now();
    const { data: open } = await waitFor(ws, 'message');
    assert.ok(typeof open === 'string' && open.startsWith('0{'), `Engine.IO open packet: ${open}`);
    ws.send('40');
    const closeEv = await waitFor(ws, 'close', 5000);
    const elapsed = Date.now() - opened;
    assert.ok(elapsed >= 300, `closed after ${elapsed} ms, before pingInterval`);
    assert.ok(elapsed <= 3000, `closed after ${elapsed} ms`);
    const got = ws._log;
    assert.ok(got.includes('"2"'), `a ping "2" came before the close; saw [${got.join(', ')}] then close(${closeEv.code})`);
  });

  test('a connected socket.io-client answers pings and stays connected for 2 s', async () => {
    const c = client(s4.url);
    await connected(c);
    const id = c.socket.id;
    let pings = 0;
    c.socket.io.engine.on('ping', () => { pings++; });
    await sleep(2000);
    assert.ok(c.socket.connected, `disconnected: ${JSON.stringify(c.disconnects.map((d) => d.reason))}`);
    assert.equal(c.socket.id, id);
    assert.deepStrictEqual(c.disconnects, []);
    assert.ok(pings >= 3, `only ${pings} pings in 2 s`);
    const t = tag('hb');
    c.socket.emit('message', { tag: t });
    await got(c, t, 1, 5000, `an echo after 2 s of heartbeats`);
  });
});

describe('connect timeout', { timeout: 20000 }, () => {
  let s5;
  before(async () => { s5 = await startServer(['--connect-timeout', '600', '--ping-interval', '1000']); });
  after(async () => { await stopServer(s5); });

  test('an Engine.IO session that joins no namespace is closed after --connect-timeout; one that does stays', async () => {
    const handshake = async () => {
      const r = await httpRequest(`${s5.url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(r.status, 200);
      return JSON.parse(r.body.slice(1)).sid;
    };
    const idle = await handshake();
    const joined = await handshake();
    const post = await httpRequest(`${s5.url}/socket.io/?EIO=4&transport=polling&sid=${joined}`, { method: 'POST', body: '40' });
    assert.equal(post.status, 200);
    const first = await httpRequest(`${s5.url}/socket.io/?EIO=4&transport=polling&sid=${joined}`);
    assert.match(first.body, /^40\{"sid":/, `CONNECT answered: ${first.body}`);
    await sleep(1500);
    // the idle session is gone: its sid is unknown now (Socket.IO's server may first answer one
    // more poll with the close packet "1")
    let gone = await httpRequest(`${s5.url}/socket.io/?EIO=4&transport=polling&sid=${idle}`);
    if (gone.status === 200) {
      assert.ok(gone.body.split('\x1e').includes('1'), `a last poll carries the close packet: ${JSON.stringify(gone.body)}`);
      gone = await httpRequest(`${s5.url}/socket.io/?EIO=4&transport=polling&sid=${idle}`);
    }
    assert.equal(gone.status, 400, `idle session after the timeout: ${gone.status} ${gone.body}`);
    assert.deepEqual(JSON.parse(gone.body), { code: 1, message: 'Session ID unknown' });
    // the joined one is still there (a poll is answered, with the heartbeat's ping or held)
    const alive = await httpRequest(`${s5.url}/socket.io/?EIO=4&transport=polling&sid=${joined}`, { timeoutMs: 5000 });
    assert.equal(alive.status, 200, `joined session after the timeout: ${alive.status} ${alive.body}`);
  });
});

test('server still up at the end', () => {
  assertAlive(srv);
});
