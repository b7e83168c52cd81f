// Unfinished WebSocket messages must not pin memory: every endpoint refuses a frame by the
// length its header declares (and a fragmented message by its running total) with its own
// limit, closing 1009 before any payload is sent; and a message that began must complete
// within --ws-message-timeout (close 1008), while herald's RSS stays bounded and a canary
// reader and publisher are unaffected.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, WsClient, frame } from './lib/herald.mjs';
import { startCanary } from './lib/hostile.mjs';

// A masked frame header declaring len payload bytes, with nothing after it.
function headerOnly(opcode, len, { fin = true } = {}) {
  const h = Buffer.alloc(14);
  h[0] = (fin ? 0x80 : 0) | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(len), 2);
  h.writeUInt32BE(0x11223344, 10);
  return h;
}

// Masked payload bytes for a header from headerOnly (mask 11 22 33 44).
function maskedPayload(len, fill = 0x41) {
  const m = [0x11, 0x22, 0x33, 0x44];
  const b = Buffer.alloc(len, fill);
  for (let i = 0; i < len; i++) b[i] ^= m[i & 3];
  return b;
}

async function closeEvent(c, ms, what) {
  await c.until(() => c.events.some((e) => e.type === 'close') || c.tcpClosed, ms, what);
  const ev = c.events.find((e) => e.type === 'close');
  assert.ok(ev, `${what}: TCP closed without a close frame`);
  return ev;
}

async function expect1009(c, what) {
  const ev = await closeEvent(c, 3000, what);
  assert.equal(ev.code, 1009, `${what}: close code`);
  await c.until(() => c.tcpClosed, 3000, `${what}: TCP closed`);
}

// The endpoints and their limits, on one herald started with small limits.
const LIMITS = { wsMax: 100000, maxBody: 4096, maxPayload: 5000 };
const ENDPOINTS = [
  { name: '/echo (--ws-max-message)', path: '/echo', limit: LIMITS.wsMax },
  { name: '/ws/{channel} (--max-body)', path: '/ws/limits', limit: LIMITS.maxBody },
  { name: 'Engine.IO / Socket.IO WebSocket (--max-payload)', path: '/socket.io/?EIO=4&transport=websocket', limit: LIMITS.maxPayload },
];

describe('declared lengths over each endpoint\'s limit', () => {
  let h;
  before(async () => {
    h = await startHerald(['--ws-max-message', String(LIMITS.wsMax), '--max-body', String(LIMITS.maxBody),
      '--max-payload', String(LIMITS.maxPayload), '--store', 'memory']);
  });
  after(async () => { if (h) await h.stop(); });

  for (const ep of ENDPOINTS) {
    test(`${ep.name}: a frame declaring limit + 1 bytes is closed 1009 with no payload sent`, async () => {
      const c = await WsClient.open(h.port, { path: ep.path });
      try {
        c.send(headerOnly(1, ep.limit + 1));
        await expect1009(c, ep.name);
      } finally { c.destroy(); }
    });

    test(`${ep.name}: a fragmented message is refused by its running total (1009 at the header)`, async () => {
      const c = await WsClient.open(h.port, { path: ep.path });
      try {
        const first = Math.floor(ep.limit / 2);
        // the first fragment whole, then only the header of one that takes the total past the limit
        c.send(Buffer.concat([frame(1, Buffer.alloc(first, 0x41), { fin: false }), headerOnly(0, ep.limit - first + 1)]));
        await expect1009(c, ep.name);
      } finally { c.destroy(); }
    });
  }

  test('/ws/{channel}: a publish of exactly --max-body bytes is accepted', async () => {
    const c = await WsClient.open(h.port, { path: '/ws/limits-ok' });
    try {
      const body = JSON.stringify('x'.repeat(LIMITS.maxBody - 2));
      assert.equal(body.length, LIMITS.maxBody);
      c.send(frame(1, Buffer.from(body)));
      // the socket also reads the channel: its own message comes with the ack, in either order
      const isAck = (e) => e.type === 'message' && /^\{"(ack|error)"/.test(e.data.toString());
      await c.until(() => c.events.some(isAck) || c.tcpClosed, 3000, 'ack');
      const ev = c.events.find(isAck);
      assert.ok(ev, 'no ack before the socket closed');
      assert.match(ev.data.toString(), /^\{"ack":\d+/);
    } finally { c.destroy(); }
  });

  test('/echo: a message of exactly --ws-max-message bytes, declared then sent, is echoed', async () => {
    const c = await WsClient.open(h.port);
    try {
      c.send(Buffer.concat([headerOnly(2, LIMITS.wsMax), maskedPayload(LIMITS.wsMax)]));
      const ev = await c.next(5000, 'echo');
      assert.equal(ev.type, 'message');
      assert.equal(ev.data.length, LIMITS.wsMax);
      assert.ok(ev.data.equals(Buffer.alloc(LIMITS.wsMax, 0x41)));
    } finally { c.destroy(); }
  });
});

describe('--ws-message-timeout: stalled messages are closed, memory stays bounded', () => {
  const MAX = 4000000, SENT = 3900000, N = 40, TIMEOUT_S = 2;
  let h;
  before(async () => {
    h = await startHerald(['--ws-max-message', String(MAX), '--ws-message-timeout', String(TIMEOUT_S), '--store', 'memory']);
  });
  after(async () => { if (h) await h.stop(); });

  test(`${N} connections that send ${SENT} of ${MAX} declared bytes and stall are closed 1008 at the timeout`, async () => {
    // herald's own memory for N assemblies of SENT bytes is N * SENT (156 MB) plus growth slack;
    // anything near N * MAX * 2 would mean buffers sized by the declared length or doubled past it
    const canary = await startCanary(h, { rssLimitKb: Math.round((N * SENT * 1.3) / 1024) + 64 * 1024 });
    const idle = await WsClient.open(h.port);
    const conns = [];
    try {
      const payload = maskedPayload(SENT, 0x42);
      for (let i = 0; i < N; i++) conns.push(await WsClient.open(h.port));
      const t0 = Date.now();
      await Promise.all(conns.map((c) => new Promise((resolve) => c.sock.write(Buffer.concat([headerOnly(2, MAX), payload]), resolve))));
      const sentMs = Date.now() - t0;
      const codes = await Promise.all(conns.map((c) => closeEvent(c, (TIMEOUT_S + 5) * 1000, 'close of a stalled message').then((e) => e.code)));
      const closedMs = Date.now() - t0;
      assert.deepEqual(codes, new Array(N).fill(1008), 'every stalled message closed with 1008');
      assert.ok(closedMs >= TIMEOUT_S * 1000 * 0.9, `closed after ${closedMs} ms, before the ${TIMEOUT_S} s timeout`);
      assert.ok(closedMs <= sentMs + (TIMEOUT_S + 3) * 1000, `closed only after ${closedMs} ms`);
      await Promise.all(conns.map((c) => c.until(() => c.tcpClosed, 5000, 'TCP closed')));
      // an idle socket (no message begun) has no deadline and still works afterwards
      idle.send(frame(1, Buffer.from('still here')));
      const ev = await idle.next(3000, 'echo on the idle socket');
      assert.equal(ev.type, 'message');
      assert.equal(ev.data.toString(), 'still here');
      const fig = await canary.check('40 stalled WebSocket messages');
      console.log(`# stalled assemblies: ${N} x ${SENT} bytes, closed after ${closedMs} ms, max RSS ${fig.maxRssKb} kB`);
    } finally {
      for (const c of conns) c.destroy();
      idle.destroy();
    }
  });

  test('a message that keeps trickling is still closed at the timeout counted from its start', async () => {
    const c = await WsClient.open(h.port);
    let timer;
    try {
      c.send(headerOnly(1, 1000));
      const t0 = Date.now();
      let sent = 0;
      const m = maskedPayload(1000, 0x61);
      timer = setInterval(() => { if (sent < 1000 && !c.tcpClosed) c.send(m.subarray(sent, ++sent)); }, 100);
      const ev = await closeEvent(c, (TIMEOUT_S + 3) * 1000, 'close of a trickling message');
      const ms = Date.now() - t0;
      assert.equal(ev.code, 1008);
      assert.ok(ms >= TIMEOUT_S * 1000 * 0.9 && ms <= (TIMEOUT_S + 2) * 1000, `closed after ${ms} ms`);
    } finally { clearInterval(timer); c.destroy(); }
  });

  test('messages completed within the timeout, one after another, keep the socket open', async () => {
    const c = await WsClient.open(h.port);
    try {
      // five messages, each split across reads and completed well within the timeout: each
      // completion disarms the deadline, so the total time may exceed it
      for (let i = 0; i < 5; i++) {
        const p = maskedPayload(20000, 0x30 + i);
        c.send(Buffer.concat([headerOnly(2, 20000), p.subarray(0, 10000)]));
        await new Promise((r) => setTimeout(r, 500));
        c.send(p.subarray(10000));
        const ev = await c.next(3000, `echo ${i}`);
        assert.equal(ev.type, 'message');
        assert.ok(ev.data.equals(Buffer.alloc(20000, 0x30 + i)));
      }
    } finally { c.destroy(); }
  });
});
