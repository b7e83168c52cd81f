// Slow-consumer policies for Socket.IO rooms that are channels (--channel-policy, README
// "Backpressure and slow consumers"): each socket of a channel room reads the channel through
// its own subscriber stream, so skip and coalesce apply to Socket.IO as to SSE and WebSocket
// (slow-consumer.test.mjs), per socket. Against the default app (the seed's chat), whose
// sockets with auth {user} join the channel "user:{user}".
//
// The stalled reader is a raw Engine.IO polling client that stops polling: herald's queue for
// it passes --max-queued at once (no kernel buffers in between). A socket.io-client of the same
// room over WebSocket keeps reading. We check:
//   skip      the stalled socket gets a prefix 1..k, then (after it polls again) one
//             "herald:gap" {"channel","reason":"slow","first","missed":[k+1, last]}, then the
//             newer messages; it is not disconnected;
//   coalesce  a prefix 1..k, then only the newest, then the newer ones;
// and the other socket gets every message, with no gap.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startHerald, sleep } from './lib/herald.mjs';
import { publish, eventually, assertAlive, stopChecked } from './lib/channels-util.mjs';

const SAN = process.env.E2E_SANITIZE === '1';
const T = { timeout: SAN ? 120000 : 60000 };
const W = SAN ? 30000 : 10000;
const MAXQ = 65536;
const PAD = 'p'.repeat(2048);
const COUNT = 100; // 100 x 2 KiB: well past --max-queued

const ARGS = ['--store', 'memory', '--max-queued', String(MAXQ),
  '--channel-policy', 'user:skip*=skip', '--channel-policy', 'user:state*=coalesce'];

// ---- a raw Engine.IO polling client: it polls when told to, and only then -----------------

const EIO = '/socket.io/?EIO=4&transport=polling';

async function eioGet(base, sid) {
  const res = await fetch(`${base}${EIO}${sid ? `&sid=${sid}` : ''}`, { signal: AbortSignal.timeout(W) });
  assert.equal(res.status, 200, `GET ${EIO}: ${res.status}`);
  return (await res.text()).split('\x1e');
}

async function eioPost(base, sid, packet) {
  const res = await fetch(`${base}${EIO}&sid=${sid}`, { method: 'POST', body: packet, headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
  assert.equal(res.status, 200, `POST ${packet}: ${res.status}`);
}

// A Socket.IO socket of "/" with auth, over raw polling; records its events as [name, ...args].
async function stalledSocket(base, auth) {
  const [open] = await eioGet(base);
  assert.equal(open[0], '0', `open packet: ${open}`);
  const c = { base, sid: JSON.parse(open.slice(1)).sid, events: [] };
  await eioPost(base, c.sid, `40${JSON.stringify(auth)}`);
  let connected = false;
  while (!connected) {
    for (const rec of await eioGet(base, c.sid)) if (rec.startsWith('40')) connected = true;
  }
  return c;
}

// Poll once: the events it gets (a ping is answered, as a client does).
async function poll(c) {
  const got = [];
  for (const rec of await eioGet(c.base, c.sid)) {
    if (rec === '2') await eioPost(c.base, c.sid, '3');
    else if (rec.startsWith('42')) got.push(JSON.parse(rec.slice(2)));
    else assert.ok(rec === '6' || rec.startsWith('40'), `unexpected packet ${rec.slice(0, 80)}`);
  }
  c.events.push(...got);
  return got;
}

// ---- a socket.io-client that keeps reading ------------------------------------------------

function fastSocket(url, auth) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, transports: ['websocket'], auth });
  const c = { socket, messages: [], gaps: [], disconnects: [] };
  socket.on('message', (v) => { if (v && v.n) c.messages.push(v.n); });
  socket.on('herald:gap', (g) => c.gaps.push(g));
  socket.on('disconnect', (r) => c.disconnects.push(r));
  return c;
}

const msgs = (evs) => evs.filter((e) => e[0] === 'message' && e[1] && e[1].n).map((e) => e[1].n);

async function publishRun(base, ch, from, to) {
  for (let n = from; n <= to; n++) {
    const p = await publish(base, ch, { n, pad: PAD });
    assert.equal(p.id, n, 'ids follow n');
  }
}

for (const policy of ['skip', 'coalesce']) {
  const user = policy === 'skip' ? 'skipper' : 'statey';
  const ch = `user:${user}`;
  describe(`slow consumers: ${policy} (Socket.IO room ${ch})`, () => {
    test(`a socket that stops polling: a prefix, then ${policy === 'skip' ? 'one "herald:gap" with the missed ids' : 'only the newest'}, then live; another socket of the room gets everything`, T, async () => {
      const h = await startHerald(ARGS);
      let fast;
      try {
        const stalled = await stalledSocket(h.url, { user });
        fast = fastSocket(h.url, { user });
        await eventually(() => fast.socket.connected, W, 'the fast socket connected');
        await eventually(async () => (await (await fetch(`${h.url}/pub/${ch}`)).json()).subscribers.socketio === 2, W, 'both sockets in the room');

        await publishRun(h.url, ch, 1, COUNT);
        await eventually(() => fast.messages.length === COUNT, W, 'the fast socket got every message');

        // polling again: what was queued (a prefix), then the policy's part once it drained
        const first = await poll(stalled);
        const k = msgs(first).length;
        assert.ok(k > 0 && k < COUNT - 1, `a prefix was queued: ${k} of ${COUNT}`);
        assert.deepEqual(msgs(first), Array.from({ length: k }, (_, i) => i + 1), 'the prefix 1..k in order');
        assert.ok(first.every((e) => e[0] !== 'herald:gap'), 'no notice within the prefix');
        const second = await poll(stalled);
        if (policy === 'skip') {
          assert.equal(second.length, 1, `one notice: ${JSON.stringify(second).slice(0, 300)}`);
          assert.equal(second[0][0], 'herald:gap');
          assert.deepEqual(second[0][1], { channel: ch, reason: 'slow', first: COUNT + 1, missed: [k + 1, COUNT] });
        } else {
          assert.equal(second.length, 1, `only the newest: ${JSON.stringify(second.map((e) => [e[0], e[1].n]))}`);
          assert.equal(second[0][0], 'message');
          assert.equal(second[0][1].n, COUNT, 'the newest');
        }

        // then live, still connected
        await publishRun(h.url, ch, COUNT + 1, COUNT + 3);
        const live = [];
        await eventually(async () => { live.push(...msgs(await poll(stalled))); return live.length >= 3; }, W, 'the live messages');
        assert.deepEqual(live, [COUNT + 1, COUNT + 2, COUNT + 3]);
        assert.equal(stalled.events.filter((e) => e[0] === 'herald:gap').length, policy === 'skip' ? 1 : 0);

        // the other socket: every message, in order, no gap, never disconnected
        await eventually(() => fast.messages.length === COUNT + 3, W, 'the fast socket got the live ones');
        assert.deepEqual(fast.messages, Array.from({ length: COUNT + 3 }, (_, i) => i + 1));
        assert.deepEqual(fast.gaps, []);
        assert.deepEqual(fast.disconnects, []);
        await sleep(100);
        assert.doesNotMatch(h.output(), /slow consumer/, 'nobody was disconnected');
        assertAlive(h);
      } finally {
        fast?.socket.close();
        await stopChecked(h);
      }
    });
  });
}

// The default policy is unchanged: a Socket.IO session that stops polling is closed as a slow
// consumer once its queue passes --max-queued, and the other socket goes on.
describe('slow consumers: disconnect (Socket.IO room, the default)', () => {
  test('a socket that stops polling is closed; another socket of the room gets everything', T, async () => {
    const h = await startHerald(ARGS);
    let fast;
    try {
      const ch = 'user:plain';
      const stalled = await stalledSocket(h.url, { user: 'plain' });
      fast = fastSocket(h.url, { user: 'plain' });
      await eventually(() => fast.socket.connected, W, 'the fast socket connected');
      await publishRun(h.url, ch, 1, COUNT);
      await eventually(() => fast.messages.length === COUNT, W, 'the fast socket got every message');
      await eventually(() => /slow consumer/.test(h.output()), W, 'the stalled session closed as a slow consumer');
      const res = await fetch(`${h.url}${EIO}&sid=${stalled.sid}`);
      assert.equal(res.status, 400, 'the stalled session is gone');
      assert.deepEqual(fast.gaps, []);
      assert.deepEqual(fast.disconnects, []);
      assertAlive(h);
    } finally {
      fast?.socket.close();
      await stopChecked(h);
    }
  });
});
