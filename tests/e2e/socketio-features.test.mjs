// Socket.IO end to end through herald's C API: examples/features.c (see its header comment for
// the events it answers) driven by the official client, socket.io-client 4.8 (pinned).
//
// Covered, over websocket-only and polling-only where the transport matters: events with every
// JSON argument type, acks both ways (and the server's ack timeout), binary attachments (echo,
// ack, nested, several), rooms (join, leave, listing, room fan-out), broadcasts with and without
// the sender across mixed transports, socket.send, namespaces (static with auth, dynamic,
// unknown, several on one Manager), middleware refusal, server-side and client-side disconnects,
// reconnection, connection state recovery (replay of exactly the missed packets; off with
// --recovery-window 0; expired after the window), --max-payload, and a 20 x 50 fan-out.
//
// The example is found in env E2E_EXAMPLES (set by ctest) or <repo>/build/examples.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { io, Manager } from 'socket.io-client';
import { startExample } from './lib/example.mjs';
import { startHerald } from './lib/herald.mjs';
import { stopServer, sleep, until } from './lib/sio-util.mjs';

const T = { timeout: 30000 };
const BOTH = [['websocket'], ['polling']];
const tname = (tr) => tr.join('+');
// A tag unique to this run and test, so that fan-out from one test is never taken for another's.
const RUN = `f${process.pid}-${Date.now().toString(36)}`;
let seq = 0;
const tag = (name) => `${RUN}-${name}-${++seq}`;

let srv;
const sockets = [];
const managers = [];

// A client socket that records every event (name and arguments, an ack callback as a trailing
// function) from its very first packet. A fresh Manager, no reconnection unless asked.
// offsets: whether the server has connection state recovery on (see strip()).
function client(url, opts = {}, { offsets = true } = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 8000, ...opts });
  return track(socket, offsets);
}

function track(socket, offsets = true) {
  socket.events = [];
  socket.errors = [];
  socket.disconnects = [];
  socket.connects = 0;
  socket.offsets = offsets;
  socket.onAny((event, ...args) => { socket.events.push({ event, args }); });
  socket.on('connect', () => { socket.connects++; });
  socket.on('connect_error', (e) => { socket.errors.push(e.message); });
  socket.on('disconnect', (reason) => { socket.disconnects.push(reason); });
  sockets.push(socket);
  return socket;
}

async function connected(s, ms = 10000) {
  await until(() => s.connected, ms, () => `socket ${s.nsp} to connect (errors: ${JSON.stringify(s.errors)})`);
  return s;
}

async function connectAll(list) { await Promise.all(list.map((s) => connected(s))); return list; }

// With connection state recovery on, every event the server emits without an ack (a broadcast
// or a plain socket.emit) carries its offset as an extra last string argument, as Socket.IO's
// own server does (socket.emit goes through adapter.broadcast to the socket's own room): check
// it is there and return the payload arguments. Events with an ack carry none. Binary events
// (BINARY_EVENT) carry one too.
function strip(s, args) {
  if (!s.offsets || typeof args.at(-1) === 'function') return args;
  assert.ok(args.length >= 1 && typeof args.at(-1) === 'string',
    `event args ${JSON.stringify(args)} lack the trailing string offset`);
  return args.slice(0, -1);
}

function hasBinary(x) {
  if (Buffer.isBuffer(x) || x instanceof ArrayBuffer) return true;
  if (Array.isArray(x)) return x.some(hasBinary);
  if (x && typeof x === 'object') return Object.values(x).some(hasBinary);
  return false;
}

// Events named name received so far, as payload argument arrays (offset stripped).
const got = (s, name) => s.events.filter((e) => e.event === name).map((e) => strip(s, e.args));

// The payload arguments of the first event name satisfying pred (waits for it).
async function waitEvent(s, name, pred = () => true, ms = 10000) {
  return until(() => got(s, name).find(pred), ms,
    () => `'${name}' on ${s.nsp}; got ${JSON.stringify(s.events.map((e) => e.event)).slice(0, 300)}`);
}

// Emit with a callback and resolve to every argument of the ack.
function ackAll(s, event, ...args) {
  return new Promise((resolve, reject) => {
    s.timeout(10000).emit(event, ...args, (err, ...reply) => (err ? reject(err) : resolve(reply)));
  });
}

// Wait until every socket saw the 'all' event with x: everything the server did before that
// broadcast has reached them too (one sender's packets are handled and queued in order).
async function sync(sender, receivers, name = 'sync') {
  const x = tag(name);
  sender.emit('to-all', x);
  await Promise.all(receivers.map((r) => waitEvent(r, 'all', (a) => a[0] === x)));
}

function closeAll() {
  for (const s of sockets.splice(0)) {
    try { s.io.reconnection(false); s.disconnect(); } catch { /* gone */ }
  }
  for (const m of managers.splice(0)) {
    try { m._close(); } catch { /* gone */ }
  }
}

before(async () => { srv = await startExample('features'); });
after(async () => { closeAll(); await stopServer(srv); });
afterEach(() => closeAll());

const VALUES = ['plain', 'unicode: héllo 中文 🎉 \u2028 "quoted" \\ /', 0, -1.5, 1e21, 42,
  { nested: { deep: [1, 'two', { three: null }] }, empty: {}, list: [] }, [1, [2, [3]], 'x'],
  null, true, false, ''];

for (const transports of BOTH) {
  describe(`events and acks over ${tname(transports)}`, () => {
    test('echo returns every argument type deep-equal', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.emit('echo', ...VALUES);
      const args = await waitEvent(s, 'echo');
      assert.deepEqual(args, VALUES);
      s.emit('echo');
      await until(() => got(s, 'echo').length === 2, 10000, 'the empty echo');
      assert.deepEqual(got(s, 'echo')[1], []);
    });

    test('client -> server ack returns the same arguments', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      assert.deepEqual(await s.emitWithAck('echo-ack', 'first', 2), 'first');
      assert.deepEqual(await ackAll(s, 'echo-ack', ...VALUES), VALUES);
      assert.deepEqual(await ackAll(s, 'echo-ack'), []);
      // Several acks in flight come back to the right callbacks.
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => ackAll(s, 'echo-ack', i, `n${i}`)));
      replies.forEach((r, i) => assert.deepEqual(r, [i, `n${i}`]));
    });

    test('server -> client ack: the reply comes back as answer', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.on('question', (x, cb) => { cb('reply to', x, { n: 1, u: '中文' }, [true, null]); });
      s.emit('ask', 'q1');
      assert.deepEqual(await waitEvent(s, 'answer'), ['reply to', 'q1', { n: 1, u: '中文' }, [true, null]]);
      const q = got(s, 'question')[0];
      assert.equal(q[0], 'q1');
      assert.equal(typeof q.at(-1), 'function', 'question carries an ack id');
    });

    test('a client that never replies gets answer "timeout" after ~2 s', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.on('question', () => { /* never ack */ });
      const t0 = Date.now();
      s.emit('ask', 'silent');
      assert.deepEqual(await waitEvent(s, 'answer', () => true, 10000), ['timeout']);
      const dt = Date.now() - t0;
      assert.ok(dt >= 1800 && dt < 8000, `timeout answer after ${dt} ms, want ~2000`);
      assert.equal(got(s, 'answer').length, 1);
      assert.ok(s.connected);
    });

    test('socket.send reaches the client\'s message event', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      const x = { hello: 'wörld', n: [1, 2] };
      s.emit('send', x);
      assert.deepEqual(await waitEvent(s, 'message'), [x]);
      s.emit('send', 'a string');
      await until(() => got(s, 'message').length === 2, 10000, 'second message');
      assert.deepEqual(got(s, 'message')[1], ['a string']);
    });
  });

  describe(`binary over ${tname(transports)}`, () => {
    const b1 = Buffer.from([0, 1, 2, 253, 254, 255]);
    const b2 = Buffer.from('héllo binary', 'utf8');
    const big = Buffer.alloc(100000, 7);
    big[0] = 1; big[99999] = 9;
    const isBuf = (v, want) => Buffer.isBuffer(v) && v.equals(want);

    test('echo: a buffer argument, nested buffers, several buffers', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.emit('echo', b1);
      const [a] = await waitEvent(s, 'echo');
      assert.ok(isBuf(a, b1), `got ${a}`);
      s.emit('echo', 'text', { deep: { buf: b2, list: [b1, 'x'] } }, b1, big, 5);
      await until(() => got(s, 'echo').length === 2, 10000, 'second echo');
      const r = got(s, 'echo')[1];
      assert.equal(r.length, 5);
      assert.equal(r[0], 'text');
      assert.ok(isBuf(r[1].deep.buf, b2));
      assert.ok(isBuf(r[1].deep.list[0], b1));
      assert.equal(r[1].deep.list[1], 'x');
      assert.ok(isBuf(r[2], b1));
      assert.ok(isBuf(r[3], big), 'the 100 kB buffer comes back intact');
      assert.equal(r[4], 5);
    });

    test('echo-ack: binary in the server\'s ack reply', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      const r = await ackAll(s, 'echo-ack', b1, { nested: b2 }, [b2, b1]);
      assert.equal(r.length, 3);
      assert.ok(isBuf(r[0], b1));
      assert.ok(isBuf(r[1].nested, b2));
      assert.ok(isBuf(r[2][0], b2) && isBuf(r[2][1], b1));
      assert.ok(isBuf(await s.emitWithAck('echo-ack', big), big));
    });

    // Socket.IO's server (4.8, connectionStateRecovery on) sends 451-["echo",{"_placeholder":
    // true,"num":0},"<offset>"]: binary events are numbered and kept like the others.
    test('binary events carry a recovery offset too', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.emit('echo', b1);
      const e = await until(() => s.events.find((x) => x.event === 'echo'), 10000, 'echo');
      assert.equal(e.args.length, 2, `echo args ${JSON.stringify(e.args)}`);
      assert.equal(typeof e.args[1], 'string');
    });

    test('ask: a client ack reply with binary is parsed by the server', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.on('question', (x, cb) => { cb('bin', b1, { n: b2 }, x); });
      s.emit('ask', 'q-bin');
      const ans = await waitEvent(s, 'answer');
      // The server got a BINARY_ACK with 2 attachments and relayed its arguments.
      assert.equal(ans.length, 4);
      assert.equal(ans[0], 'bin');
      assert.equal(ans[3], 'q-bin');
      assert.deepEqual(await ackAll(s, 'echo-ack', 'alive'), ['alive']);
    });

    test('ask: buffers in the question and in the reply round-trip', T, async () => {
      const s = await connected(client(srv.url, { transports }));
      s.on('question', (x, cb) => { cb('bin', b1, { n: b2 }); });
      s.emit('ask', b2);
      const ans = await waitEvent(s, 'answer');
      assert.ok(isBuf(got(s, 'question')[0][0], b2), 'binary question argument');
      assert.ok(isBuf(ans[1], b1), `answer[1] = ${JSON.stringify(ans[1])}`);
      assert.ok(isBuf(ans[2].n, b2), `answer[2] = ${JSON.stringify(ans[2])}`);
    });
  });

  describe(`rooms over ${tname(transports)}`, () => {
    test('join/leave are acked, rooms lists own id first, to-room reaches exactly the members', T, async () => {
      const other = transports[0] === 'websocket' ? ['polling'] : ['websocket'];
      const [a, b, c] = await connectAll([client(srv.url, { transports }), client(srv.url, { transports: other }),
        client(srv.url, { transports })]);
      const room = tag('room');
      assert.deepEqual(await ackAll(a, 'rooms'), [[a.id]]);
      assert.deepEqual(await ackAll(a, 'join', room), [room]);
      assert.deepEqual(await ackAll(b, 'join', room), [room]);
      assert.deepEqual(await ackAll(b, 'join', room + '-2'), [room + '-2']);
      const [ra] = await ackAll(a, 'rooms');
      assert.equal(ra[0], a.id, 'own id first');
      assert.deepEqual(ra.slice(1).sort(), [room]);
      const [rb] = await ackAll(b, 'rooms');
      assert.equal(rb[0], b.id);
      assert.deepEqual(rb.slice(1).sort(), [room, room + '-2'].sort());

      a.emit('to-room', room, { m: 'one' });
      await sync(a, [a, b, c]);
      assert.deepEqual(got(a, 'room-message'), [[{ m: 'one' }]], 'sender, a member, gets it');
      assert.deepEqual(got(b, 'room-message'), [[{ m: 'one' }]]);
      assert.deepEqual(got(c, 'room-message'), [], 'a non-member gets nothing');

      // A non-member may send to a room; it does not get it itself.
      c.emit('to-room', room, 'from c');
      await sync(c, [a, b, c]);
      assert.deepEqual(got(a, 'room-message'), [[{ m: 'one' }], ['from c']]);
      assert.deepEqual(got(c, 'room-message'), []);

      assert.deepEqual(await ackAll(b, 'leave', room), [room]);
      const [rb2] = await ackAll(b, 'rooms');
      assert.deepEqual(rb2, [b.id, room + '-2']);
      a.emit('to-room', room, 'two');
      await sync(a, [a, b, c]);
      assert.equal(got(a, 'room-message').length, 3);
      assert.deepEqual(got(a, 'room-message')[2], ['two']);
      assert.equal(got(b, 'room-message').length, 2, 'after leave no more room messages');
      // Leaving a room one is not in is harmless.
      assert.deepEqual(await ackAll(c, 'leave', room), [room]);
    });
  });
}

describe('broadcasts across mixed transports', () => {
  test('broadcast skips the sender, to-all includes it; 4 clients', T, async () => {
    const list = await connectAll([client(srv.url, { transports: ['websocket'] }), client(srv.url, { transports: ['polling'] }),
      client(srv.url), client(srv.url, { transports: ['polling'] })]);
    const [a, b] = list;
    const x = tag('bc');
    a.emit('broadcast', x);
    b.emit('to-all', { y: x, n: [1, 2] });
    await Promise.all(list.map((s) => waitEvent(s, 'all', (args) => args[0]?.y === x)));
    await sync(a, list);
    for (const s of list) {
      assert.deepEqual(got(s, 'all').filter((args) => args[0]?.y === x), [[{ y: x, n: [1, 2] }]]);
      const bc = got(s, 'broadcast').filter((args) => args[0] === x);
      if (s === a) assert.deepEqual(bc, [], 'the sender does not get its broadcast');
      else assert.deepEqual(bc, [[x]]);
    }
  });

  test('a disconnected client is forgotten: later broadcasts still work', T, async () => {
    const [a, b, c] = await connectAll([client(srv.url, { transports: ['websocket'] }), client(srv.url, { transports: ['polling'] }),
      client(srv.url, { transports: ['websocket'] })]);
    const x = tag('gone');
    c.disconnect();
    b.disconnect();
    await sleep(200);
    a.emit('to-all', x);
    a.emit('broadcast', x);
    assert.deepEqual((await waitEvent(a, 'all', (args) => args[0] === x)), [x]);
    const d = await connected(client(srv.url, { transports: ['polling'] }));
    await sync(a, [a, d]);
    assert.deepEqual(got(b, 'all').filter((args) => args[0] === x), []);
    assert.equal(srv.proc.exitCode, null);
  });
});

describe('namespaces', () => {
  for (const transports of BOTH) {
    test(`/admin needs role admin (${tname(transports)})`, T, async () => {
      const bad = client(srv.url + '/admin', { transports, auth: { role: 'user' } });
      const none = client(srv.url + '/admin', { transports });
      const good = client(srv.url + '/admin', { transports, auth: { role: 'admin' } });
      await until(() => bad.errors.length && none.errors.length, 10000, 'connect_error for non-admins');
      assert.deepEqual(bad.errors, ['admins only']);
      assert.deepEqual(none.errors, ['admins only']);
      assert.equal(bad.connected, false);
      await connected(good);
      const [me] = await ackAll(good, 'whoami');
      assert.equal(me.nsp, '/admin');
      assert.equal(me.id, good.id);
      assert.deepEqual(me.auth, { role: 'admin' });
      // Both middlewares run on /admin: a bad token is refused first.
      const both = client(srv.url + '/admin', { transports, auth: { role: 'admin', token: 'bad' } });
      await until(() => both.errors.length, 10000, 'connect_error');
      assert.deepEqual(both.errors, ['not authorized']);
    });

    test(`dynamic /dyn-abc works, /nope is refused (${tname(transports)})`, T, async () => {
      const dyn = await connected(client(srv.url + '/dyn-abc', { transports }));
      const [me] = await ackAll(dyn, 'whoami');
      assert.equal(me.nsp, '/dyn-abc');
      assert.deepEqual(await ackAll(dyn, 'echo-ack', 'dyn', 1), ['dyn', 1]);
      const nope = client(srv.url + '/nope', { transports });
      await until(() => nope.errors.length, 10000, 'connect_error on /nope');
      assert.deepEqual(nope.errors, ['Invalid namespace']);
      assert.equal(nope.connected, false);
      const bare = client(srv.url + '/dyn-', { transports });
      await until(() => bare.errors.length, 10000, 'connect_error on /dyn-');
      assert.deepEqual(bare.errors, ['Invalid namespace']);
    });

    test(`one Manager multiplexes / and /admin; events stay in their namespace (${tname(transports)})`, T, async () => {
      const m = new Manager(srv.url, { transports, reconnection: false, timeout: 8000 });
      managers.push(m);
      const root = track(m.socket('/'));
      const admin = track(m.socket('/admin', { auth: { role: 'admin' } }));
      const dyn = track(m.socket('/dyn-mux'));
      await connectAll([root, admin, dyn]);
      assert.equal(root.io, admin.io);
      const other = await connected(client(srv.url, { transports: ['websocket'] }));
      const otherAdmin = await connected(client(srv.url + '/admin', { transports: ['websocket'], auth: { role: 'admin' } }));
      const r = tag('root'), a = tag('admin'), d = tag('dyn');
      root.emit('to-all', r);
      admin.emit('to-all', a);
      dyn.emit('to-all', d);
      admin.emit('echo', 'admin echo');
      root.emit('echo', 'root echo');
      await Promise.all([waitEvent(other, 'all', (x) => x[0] === r), waitEvent(otherAdmin, 'all', (x) => x[0] === a),
        waitEvent(root, 'all', (x) => x[0] === r), waitEvent(admin, 'all', (x) => x[0] === a),
        waitEvent(dyn, 'all', (x) => x[0] === d), waitEvent(admin, 'echo'), waitEvent(root, 'echo')]);
      await sync(root, [root, other]);
      await sync(admin, [admin, otherAdmin]);
      const mine = (s) => got(s, 'all').map((x) => x[0]).filter((x) => [r, a, d].includes(x));
      assert.deepEqual(mine(root), [r]);
      assert.deepEqual(mine(other), [r]);
      assert.deepEqual(mine(admin), [a]);
      assert.deepEqual(mine(otherAdmin), [a]);
      assert.deepEqual(mine(dyn), [d]);
      assert.deepEqual(got(root, 'echo'), [['root echo']]);
      assert.deepEqual(got(admin, 'echo'), [['admin echo']]);
      // Leaving one namespace keeps the others on the shared connection.
      admin.disconnect();
      assert.deepEqual(await ackAll(root, 'echo-ack', 'still'), ['still']);
      assert.deepEqual(await ackAll(dyn, 'echo-ack', 'still'), ['still']);
    });
  }

  test('io(url) and io(url + "/admin") share one connection by default', T, async () => {
    const root = track(io(srv.url, { reconnection: false }));
    const admin = track(io(srv.url + '/admin', { reconnection: false, auth: { role: 'admin' } }));
    await connectAll([root, admin]);
    assert.equal(root.io, admin.io, 'one Manager');
    assert.equal(root.io.engine, admin.io.engine);
    const [a, b] = await Promise.all([ackAll(root, 'whoami'), ackAll(admin, 'whoami')]);
    assert.equal(a[0].nsp, '/');
    assert.equal(b[0].nsp, '/admin');
    managers.push(root.io);
  });
});

describe('middleware', () => {
  for (const transports of BOTH) {
    test(`a bad token is refused with "not authorized", a good one connects (${tname(transports)})`, T, async () => {
      const bad = client(srv.url, { transports, auth: { token: 'bad' } });
      await until(() => bad.errors.length, 10000, 'connect_error');
      assert.deepEqual(bad.errors, ['not authorized']);
      await sleep(300);
      assert.equal(bad.connected, false);
      assert.equal(bad.connects, 0);
      const auth = { token: 'good', name: 'zoë', n: [1, { x: null }] };
      const good = await connected(client(srv.url, { transports, auth }));
      const [me] = await ackAll(good, 'whoami');
      assert.deepEqual(me, { id: good.id, nsp: '/', auth, recovered: false });
      const noauth = await connected(client(srv.url, { transports }));
      assert.deepEqual((await ackAll(noauth, 'whoami'))[0].auth, {});
    });
  }
});

describe('disconnects and reconnection', () => {
  for (const transports of BOTH) {
    test(`disconnect-me: the client sees "io server disconnect" (${tname(transports)})`, T, async () => {
      const s = await connected(client(srv.url, { transports, reconnection: true, reconnectionDelay: 100 }));
      s.emit('disconnect-me');
      await until(() => s.disconnects.length, 10000, 'disconnect');
      assert.deepEqual(s.disconnects, ['io server disconnect']);
      await sleep(500);
      assert.equal(s.connected, false, 'no automatic reconnection after a server disconnect');
      // The client may connect again by hand.
      s.connect();
      await connected(s);
      assert.deepEqual(await ackAll(s, 'echo-ack', 'back'), ['back']);
    });

    test(`dropped transport: the client reconnects by itself (${tname(transports)})`, T, async () => {
      const s = await connected(client(srv.url, { transports, reconnection: true, reconnectionDelay: 100, randomizationFactor: 0 }));
      const other = await connected(client(srv.url, { transports: ['websocket'] }));
      const id1 = s.id;
      s.io.engine.close();
      await until(() => s.disconnects.length, 10000, 'disconnect');
      await until(() => s.connects === 2 && s.connected, 15000, 'reconnect');
      assert.ok(s.id && typeof s.id === 'string');
      assert.deepEqual(await ackAll(s, 'echo-ack', 'again', id1), ['again', id1]);
      const x = tag('after-reconnect');
      other.emit('to-all', x);
      assert.deepEqual((await waitEvent(s, 'all', (a) => a[0] === x)), [x]);
    });
  }
});

// Connection state recovery: B misses packets while its transport is down and gets exactly
// those back, in order, once, with its id and rooms.
async function recoveryScenario(url, transports) {
  const a = await connected(client(url, { transports: ['websocket'] }));
  const b = await connected(client(url, { transports, reconnection: true, reconnectionDelay: 1500, randomizationFactor: 0 }));
  const x0 = tag('x0');
  a.emit('to-all', x0);
  await waitEvent(b, 'all', (args) => args[0] === x0);
  assert.deepEqual(await ackAll(b, 'join', 'r1'), ['r1']);
  const id = b.id;
  const before = b.events.length;
  let ackedAt = 0;
  b.once('disconnect', () => {
    a.emit('to-all', 'x1');
    a.emit('to-room', 'r1', 'x2');
    a.emit('to-room', 'r2', 'x3');
    a.emit('broadcast', 'x4');
    ackAll(a, 'echo-ack').then(() => { ackedAt = Date.now(); });
  });
  b.io.engine.close();
  let reconnectedAt = 0;
  b.once('connect', () => { reconnectedAt = Date.now(); });
  await until(() => b.connected && b.connects === 2, 15000, 'B to reconnect');
  assert.ok(ackedAt && ackedAt <= reconnectedAt, 'A\'s packets were handled while B was away');
  return { a, b, id, before };
}

for (const transports of BOTH) {
  describe(`connection state recovery over ${tname(transports)}`, () => {
    test('the reconnected client gets its id, rooms and exactly the missed packets', T, async () => {
      const { a, b, id, before } = await recoveryScenario(srv.url, transports);
      assert.equal(b.recovered, true, 'recovered');
      assert.equal(b.id, id, 'same id');
      const [rooms] = await ackAll(b, 'rooms');
      assert.deepEqual(rooms, [id, 'r1']);
      const end = tag('end');
      a.emit('to-all', end);
      await waitEvent(b, 'all', (args) => args[0] === end);
      const after = b.events.slice(before).map((e) => [e.event, ...strip(b, e.args)]);
      assert.deepEqual(after, [['all', 'x1'], ['room-message', 'x2'], ['broadcast', 'x4'], ['all', end]]);
      const offsets = b.events.map((e) => e.args.at(-1));
      assert.equal(new Set(offsets).size, offsets.length, `offsets are unique: ${JSON.stringify(offsets)}`);
      const [me] = await ackAll(b, 'whoami');
      assert.equal(me.recovered, true);
      assert.equal(me.id, id);
      assert.equal(me.auth.pid, undefined, `auth without pid: ${JSON.stringify(me.auth)}`);
      assert.equal(me.auth.offset, undefined, `auth without offset: ${JSON.stringify(me.auth)}`);
      // Still in r1 for the live room traffic too.
      a.emit('to-room', 'r1', 'live');
      assert.deepEqual((await waitEvent(b, 'room-message', (args) => args[0] === 'live')), ['live']);
    });
  });
}

// herald's default app (the seed's chat server) relays each "message" with its attachments to
// everyone: the one place a binary broadcast can be sent. Socket.IO's server keeps binary
// packets for recovery like any other; herald keeps only those without attachments, so the
// buffer B missed is lost (B gets 'before' and 'after' only).
describe('connection state recovery of binary broadcasts', () => {
  test('a binary broadcast missed while away is replayed', T, async () => {
    const h = await startHerald([]);
    try {
      const a = await connected(client(h.url, { transports: ['websocket'] }));
      const b = await connected(client(h.url, { transports: ['websocket'], reconnection: true, reconnectionDelay: 1000, randomizationFactor: 0 }));
      await waitEvent(b, 'message');
      const before = b.events.length;
      const buf = Buffer.from([7, 8, 9]);
      b.once('disconnect', () => { a.emit('message', 'before'); a.emit('message', buf); a.emit('message', 'after'); });
      b.io.engine.close();
      await until(() => b.connected && b.connects === 2, 15000, 'B to reconnect');
      assert.equal(b.recovered, true);
      await waitEvent(b, 'message', (x) => x[0] === 'after');
      a.emit('message', 'end');
      await waitEvent(b, 'message', (x) => x[0] === 'end');
      const relayed = b.events.slice(before).map((e) => e.args[0]).filter((x) => !(x && x.type === 'init'));
      assert.equal(relayed.length, 4, `B got ${JSON.stringify(relayed)}`);
      assert.equal(relayed[0], 'before');
      assert.ok(Buffer.isBuffer(relayed[1]) && relayed[1].equals(buf), `missed buffer replayed: ${JSON.stringify(relayed[1])}`);
      assert.deepEqual(relayed.slice(2), ['after', 'end']);
    } finally {
      closeAll();
      await stopServer(h);
    }
  });
});

// As Socket.IO's server does: the ack of 'question' ends while the socket is away, the handler's
// socket.emit('answer', 'timeout') goes to the socket's own room and is kept, and the recovered
// socket gets it.
describe('connection state recovery of emits made while away', () => {
  test('the ack timeout\'s answer emitted while away is replayed', T, async () => {
    const b = await connected(client(srv.url, { transports: ['websocket'], reconnection: true, reconnectionDelay: 3000, randomizationFactor: 0 }));
    b.emit('send', 'offset please');
    await waitEvent(b, 'message');
    b.on('question', () => { /* never ack */ });
    b.emit('ask', 'q');
    await waitEvent(b, 'question');
    b.io.engine.close();
    await until(() => b.connected && b.connects === 2, 15000, 'B to reconnect');
    assert.equal(b.recovered, true);
    assert.deepEqual(await waitEvent(b, 'answer', () => true, 3000), ['timeout']);
  });
});

describe('connection state recovery off or expired', () => {
  test('--recovery-window 0: no recovery, a new id, no replay', T, async () => {
    const h = await startExample('features', ['--recovery-window', '0']);
    try {
      const a = await connected(client(h.url, { transports: ['websocket'] }, { offsets: false }));
      const b = await connected(client(h.url, { transports: ['websocket'], reconnection: true, reconnectionDelay: 1000, randomizationFactor: 0 }, { offsets: false }));
      a.emit('to-all', 'x0');
      const args = await waitEvent(b, 'all');
      assert.deepEqual(args, ['x0'], 'no offset argument without recovery');
      const id = b.id;
      const before = b.events.length;
      b.once('disconnect', () => { a.emit('to-all', 'missed'); });
      b.io.engine.close();
      await until(() => b.connected && b.connects === 2, 15000, 'B to reconnect');
      assert.notEqual(b.recovered, true);
      assert.notEqual(b.id, id);
      assert.deepEqual((await ackAll(b, 'rooms'))[0], [b.id]);
      a.emit('to-all', 'end');
      await waitEvent(b, 'all', (x) => x[0] === 'end');
      assert.deepEqual(b.events.slice(before).map((e) => [e.event, ...e.args]), [['all', 'end']]);
    } finally {
      closeAll();
      await stopServer(h);
    }
  });

  test('away longer than --recovery-window 500: no recovery', T, async () => {
    const h = await startExample('features', ['--recovery-window', '500']);
    try {
      const a = await connected(client(h.url, { transports: ['websocket'] }));
      const b = await connected(client(h.url, { transports: ['websocket'], reconnection: true, reconnectionDelay: 1500, randomizationFactor: 0 }));
      a.emit('to-all', 'x0');
      await waitEvent(b, 'all');
      assert.deepEqual(await ackAll(b, 'join', 'r1'), ['r1']);
      const id = b.id;
      const before = b.events.length;
      b.once('disconnect', () => { a.emit('to-all', 'missed'); });
      b.io.engine.close();
      await until(() => b.connected && b.connects === 2, 15000, 'B to reconnect');
      assert.notEqual(b.recovered, true);
      assert.notEqual(b.id, id);
      assert.deepEqual((await ackAll(b, 'rooms'))[0], [b.id], 'rooms are gone');
      const [me] = await ackAll(b, 'whoami');
      assert.equal(me.recovered, false);
      a.emit('to-all', 'end');
      await waitEvent(b, 'all', (x) => x[0] === 'end');
      assert.deepEqual(b.events.slice(before).map((e) => [e.event, e.args[0]]), [['all', 'end']]);
    } finally {
      closeAll();
      await stopServer(h);
    }
  });
});

describe('limits', () => {
  test('--max-payload 2000: a 5000-char message drops that websocket client only', T, async () => {
    const h = await startExample('features', ['--max-payload', '2000']);
    try {
      const big = await connected(client(h.url, { transports: ['websocket'] }));
      const ok = await connected(client(h.url, { transports: ['websocket'] }));
      const poll = await connected(client(h.url, { transports: ['polling'] }));
      assert.deepEqual(await ackAll(big, 'echo-ack', 'x'.repeat(1500)), ['x'.repeat(1500)]);
      big.emit('echo', 'y'.repeat(5000));
      await until(() => big.disconnects.length, 10000, 'the oversized client to be disconnected');
      assert.ok(['transport close', 'transport error'].includes(big.disconnects[0]), `reason ${big.disconnects[0]}`);
      assert.deepEqual(got(big, 'echo'), []);
      assert.deepEqual(await ackAll(ok, 'echo-ack', 'fine'), ['fine']);
      assert.deepEqual(await ackAll(poll, 'echo-ack', 'fine'), ['fine']);
      const fresh = await connected(client(h.url, { transports: ['websocket'] }));
      assert.deepEqual(await ackAll(fresh, 'echo-ack', 1), [1]);
    } finally {
      closeAll();
      await stopServer(h);
    }
  });
});

describe('load', () => {
  test('20 clients x 50 to-all: every client gets all 1000 exactly once, per-sender order kept', { timeout: 60000 }, async () => {
    const N = 20, M = 50;
    const list = await connectAll(Array.from({ length: N }, (_, i) => client(srv.url, { transports: [i % 2 ? 'polling' : 'websocket'] })));
    const t = tag('load');
    for (let n = 0; n < M; n++) {
      list.forEach((s, i) => s.emit('to-all', { t, from: i, n }));
    }
    const mine = (s) => got(s, 'all').filter((args) => args[0]?.t === t);
    await until(() => list.every((s) => mine(s).length >= N * M), 45000,
      () => `all deliveries; counts ${list.map((s) => mine(s).length).join(',')}`);
    await sleep(200);
    for (const s of list) {
      const msgs = mine(s).map((args) => args[0]);
      assert.equal(msgs.length, N * M);
      for (let i = 0; i < N; i++) {
        const ns = msgs.filter((m) => m.from === i).map((m) => m.n);
        assert.deepEqual(ns, Array.from({ length: M }, (_, k) => k), `from ${i}`);
      }
    }
  });
});
