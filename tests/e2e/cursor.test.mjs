// One resume cursor across every transport, Socket.IO included, against the default app (the
// seed's chat: every socket is in room "chat", which is the channel "chat").
//
// Covered: each channel has its own epoch, so a cursor names one message of one channel (one
// from another channel is a gap "epoch", never read as an id of this one); a Socket.IO
// "message" from a channel carries as its recovery offset the same cursor SSE, the polls and
// WebSocket give; a client can go Socket.IO -> SSE -> Socket.IO (auth.offset) -> poll and read
// every message exactly once; a cursor older than history gives a "herald:gap" event first;
// Socket.IO's own recovery (pid + offset) still replays exactly what was missed; GET /pub
// counts Socket.IO sockets, not rooms.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startHerald } from './lib/herald.mjs';
import { publish, pollAll, pollReq, info, SseClient, eventually } from './lib/channels-util.mjs';

const T = { timeout: 30000 };
const sockets = [];

// A socket.io-client socket recording every "message" as { value, offset }.
function client(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  const c = { socket, messages: [], gaps: [], connects: 0 };
  socket.on('message', (...args) => {
    const last = args[args.length - 1];
    const offset = args.length > 1 && typeof last === 'string' ? last : undefined;
    c.messages.push({ value: args[0], offset });
  });
  socket.on('herald:gap', (g) => c.gaps.push(g));
  socket.on('connect', () => { c.connects++; });
  sockets.push(socket);
  return c;
}
const chatOf = (c) => c.messages.filter((m) => m.value && m.value.type === 'message');
async function connected(c) {
  await eventually(() => c.socket.connected, 8000, 'socket connected');
}

describe('one cursor for every transport', () => {
  let srv;
  before(async () => { srv = await startHerald(['--history', '50']); });
  after(async () => {
    for (const s of sockets) s.close();
    await srv.stop();
  });

  test('each channel has its own epoch; a cursor of one channel is a gap "epoch" on another', T, async () => {
    const a = await publish(srv.url, 'ep-a', { n: 1 });
    const b = await publish(srv.url, 'ep-b', { n: 1 });
    const ea = a.cursor.split(':')[0];
    const eb = b.cursor.split(':')[0];
    assert.notEqual(ea, eb, 'two channels, two epochs');
    assert.equal((await info(srv.url, 'ep-a')).epoch, ea, 'GET /pub gives the channel epoch');
    assert.equal((await info(srv.url, 'ep-never-used')).epoch.length, ea.length, 'an unused channel has an epoch too');
    const { messages, gaps } = await pollAll(srv.url, 'poll', 'ep-b', a.cursor);
    assert.deepEqual(gaps.map((g) => g.gap), ['epoch'], 'cursor of ep-a on ep-b');
    assert.deepEqual(messages.map((m) => m.data), [{ n: 1 }], 'then the whole kept history');
  });

  test('Socket.IO channel messages carry the channel cursor as their offset', T, async () => {
    const c = client(srv.url, { transports: ['websocket'] });
    await connected(c);
    const p = await publish(srv.url, 'chat', { type: 'message', message: 'one', userId: 'ops' });
    await eventually(() => chatOf(c).length === 1, 5000, 'the publish over Socket.IO');
    assert.equal(chatOf(c)[0].offset, p.cursor, 'offset === the cursor POST /pub answered');
    c.socket.emit('message', { type: 'message', message: 'two', userId: 'sio' });
    await eventually(() => chatOf(c).length === 2, 5000, 'own message back');
    const { messages } = await pollAll(srv.url, 'poll', 'chat', p.cursor);
    assert.deepEqual(messages.map((m) => m.data.message), ['two']);
    assert.equal(chatOf(c)[1].offset, messages[0].cursor, 'the Socket.IO offset is the poll cursor');
    c.socket.close();
  });

  test('Socket.IO -> SSE -> Socket.IO (auth.offset) -> poll: every message once, in order', T, async () => {
    const seen = [];
    const send = (i) => publish(srv.url, 'chat', { type: 'message', message: `m${i}`, userId: 'ops' });
    // 1. Socket.IO
    const a = client(srv.url);
    await connected(a);
    for (let i = 1; i <= 3; i++) await send(i);
    await eventually(() => chatOf(a).filter((m) => /^m\d+$/.test(m.value.message)).length === 3, 5000, 'three on Socket.IO');
    const onA = chatOf(a).filter((m) => /^m\d+$/.test(m.value.message));
    seen.push(...onA.map((m) => m.value.message));
    a.socket.close();
    for (let i = 4; i <= 6; i++) await send(i);
    // 2. SSE from the Socket.IO offset
    const sse = await SseClient.open(srv.port, '/sse/chat', { headers: { 'Last-Event-ID': onA[2].offset } });
    await sse.until(() => sse.events.filter((e) => e.type === 'message').length >= 3, 5000, 'SSE replay');
    await send(7);
    await sse.until(() => sse.events.filter((e) => e.type === 'message').length >= 4, 5000, 'SSE live');
    const evs = sse.events.filter((e) => e.type === 'message');
    assert.equal(sse.events.filter((e) => e.type === 'gap').length, 0, 'no gap');
    seen.push(...evs.map((e) => JSON.parse(e.data).message));
    sse.sock.destroy();
    for (let i = 8; i <= 9; i++) await send(i);
    // 3. Socket.IO again, from the SSE cursor (a new session: no pid)
    const b = client(srv.url, { auth: { offset: evs[evs.length - 1].id } });
    await connected(b);
    await eventually(() => chatOf(b).length >= 2, 5000, 'Socket.IO replay from auth.offset');
    await send(10);
    await eventually(() => chatOf(b).length >= 3, 5000, 'Socket.IO live after the replay');
    assert.deepEqual(b.gaps, [], 'no gap');
    const onB = chatOf(b);
    seen.push(...onB.map((m) => m.value.message));
    b.socket.close();
    // 4. poll from the last Socket.IO offset
    await send(11);
    const { messages, gaps } = await pollAll(srv.url, 'poll', 'chat', onB[onB.length - 1].offset);
    assert.deepEqual(gaps, []);
    seen.push(...messages.map((m) => m.data.message));
    assert.deepEqual(seen, Array.from({ length: 11 }, (_, i) => `m${i + 1}`), 'each once, in order');
  });

  test('auth.offset older than history: "herald:gap" (trimmed) first, then what is kept', T, async () => {
    const first = await publish(srv.url, 'chat', { type: 'message', message: 'old', userId: 'ops' });
    for (let i = 0; i < 60; i++) await publish(srv.url, 'chat', { type: 'message', message: `g${i}`, userId: 'ops' });
    const c = client(srv.url, { auth: { offset: first.cursor } });
    c.socket.onAny((ev) => { if (ev === 'herald:gap' && chatOf(c).length) c.gapAfterMessages = true; });
    await connected(c);
    await eventually(() => chatOf(c).length >= 50, 5000, 'the kept 50');
    assert.equal(c.gaps.length, 1, 'one gap event');
    assert.equal(c.gaps[0].channel, 'chat');
    assert.equal(c.gaps[0].reason, 'trimmed');
    assert.equal(c.gaps[0].first, first.id + 11, 'first kept id');
    assert.ok(!c.gapAfterMessages, 'the gap comes before the messages');
    assert.deepEqual(chatOf(c).map((m) => m.value.message), Array.from({ length: 50 }, (_, i) => `g${i + 10}`));
    c.socket.close();
  });

  test('a cursor of another channel in auth.offset replays nothing', T, async () => {
    const other = await publish(srv.url, 'elsewhere', { n: 1 });
    const c = client(srv.url, { auth: { offset: other.cursor } });
    await connected(c);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(chatOf(c), [], 'no chat history');
    assert.deepEqual(c.gaps, [], 'no gap either: the cursor is not this room\'s');
    c.socket.close();
  });

  test('Socket.IO recovery (pid + offset) across channel messages: exactly the missed ones', T, async () => {
    const c = client(srv.url, { transports: ['websocket'], reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300 });
    await connected(c);
    await publish(srv.url, 'chat', { type: 'message', message: 'before', userId: 'ops' });
    await eventually(() => chatOf(c).some((m) => m.value.message === 'before'), 5000, 'before');
    const n0 = chatOf(c).length;
    c.socket.io.engine.close();
    await eventually(() => !c.socket.connected, 5000, 'dropped');
    for (let i = 0; i < 5; i++) await publish(srv.url, 'chat', { type: 'message', message: `r${i}`, userId: 'ops' });
    await eventually(() => c.connects >= 2 && c.socket.connected, 8000, 'reconnected');
    assert.equal(c.socket.recovered, true, 'recovered');
    await eventually(() => chatOf(c).length >= n0 + 5, 5000, 'the missed five');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(chatOf(c).slice(n0).map((m) => m.value.message), ['r0', 'r1', 'r2', 'r3', 'r4']);
    c.socket.close();
  });

  test('cross-transport: Socket.IO <-> SSE, WebSocket, long-poll and poll on channel "chat"', T, async () => {
    const start = (await info(srv.url, 'chat'));
    const from = `${start.epoch}:${start.last_id}`;
    const c = client(srv.url);
    await connected(c);
    const sse = await SseClient.open(srv.port, '/sse/chat');
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/ws/chat`);
    const wsMsgs = [];
    ws.on('message', (d) => { const j = JSON.parse(d.toString()); if (j.data) wsMsgs.push(j.data); });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const lp = pollReq(srv.url, 'lp', 'chat', from, { timeoutMs: 10000 });
    // Socket.IO -> the four others
    const m1 = { type: 'message', message: 'from socket.io', userId: 'sio' };
    c.socket.emit('message', m1);
    await sse.until(() => sse.events.some((e) => e.type === 'message' && JSON.parse(e.data).message === m1.message), 5000, 'SSE');
    await eventually(() => wsMsgs.some((d) => d.message === m1.message), 5000, 'WebSocket');
    const lpAnswer = await lp;
    assert.deepEqual(lpAnswer.json.messages.map((m) => m.data), [m1], 'long-poll answered with the Socket.IO message');
    const polled = await pollAll(srv.url, 'poll', 'chat', from);
    assert.deepEqual(polled.messages.map((m) => m.data), [m1], 'poll');
    // each of the others -> Socket.IO
    const m2 = { type: 'message', message: 'from POST /pub', userId: 'curl' };
    await publish(srv.url, 'chat', m2);
    const m3 = { type: 'message', message: 'from /ws/chat', userId: 'ws' };
    ws.send(JSON.stringify(m3));
    await eventually(() => chatOf(c).length >= 3, 5000, 'Socket.IO got all three');
    assert.deepEqual(chatOf(c).slice(-3).map((m) => m.value), [m1, m2, m3]);
    await sse.until(() => sse.events.filter((e) => e.type === 'message').length >= 3, 5000, 'SSE got all three');
    assert.deepEqual(sse.events.filter((e) => e.type === 'message').map((e) => JSON.parse(e.data)), [m1, m2, m3]);
    ws.close();
    sse.sock.destroy();
    c.socket.close();
  });

  test('GET /pub/chat counts Socket.IO sockets, not rooms', T, async () => {
    // the earlier tests' sockets were closed without waiting: counted out first
    await eventually(async () => (await info(srv.url, 'chat')).subscribers.socketio === 0, 5000, 'the earlier sockets gone');
    const before = 0;
    const cs = [client(srv.url), client(srv.url), client(srv.url)];
    for (const c of cs) await connected(c);
    await eventually(async () => (await info(srv.url, 'chat')).subscribers.socketio === before + 3, 5000, 'three more');
    cs[0].socket.close();
    await eventually(async () => (await info(srv.url, 'chat')).subscribers.socketio === before + 2, 5000, 'one left');
    cs[1].socket.close();
    cs[2].socket.close();
    await eventually(async () => (await info(srv.url, 'chat')).subscribers.socketio === before, 5000, 'all left');
  });
});

describe('a Socket.IO replay larger than the output cap', () => {
  test('auth.offset far behind over polling: a part, then "herald:gap" (replay limit) with the missed ids, and the socket stays', { timeout: 60000 }, async () => {
    const srv = await startHerald(['--max-queued', '65536']);
    const cs = [];
    try {
      const pad = 'p'.repeat(2000);
      const first = await publish(srv.url, 'chat', { type: 'message', message: 'm0', userId: 'ops', pad });
      for (let i = 1; i < 200; i++) await publish(srv.url, 'chat', { type: 'message', message: `m${i}`, userId: 'ops', pad });
      const c = client(srv.url, { transports: ['polling'], auth: { offset: first.cursor } });
      cs.push(c);
      await connected(c);
      await eventually(() => c.gaps.length === 1, 10000, 'the gap notice');
      const got = chatOf(c).map((m) => Number(m.value.message.slice(1)));
      const g = c.gaps[0];
      assert.equal(g.channel, 'chat');
      assert.equal(g.reason, 'replay limit');
      assert.ok(got.length > 0 && got.length < 199, `a part was replayed: ${got.length}`);
      assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => i + 1), 'in order from the cursor');
      assert.deepEqual(g.missed, [first.id + got.length + 1, first.id + 199], 'the missed ids, exactly');
      assert.equal(g.first, first.id + 200, 'then live from the next message');
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(c.socket.connected, 'not disconnected as a slow consumer');
      await publish(srv.url, 'chat', { type: 'message', message: 'm200', userId: 'ops' });
      await eventually(() => chatOf(c).some((m) => m.value.message === 'm200'), 5000, 'live after the replay');
      // what was missed is in history
      const { messages } = await pollAll(srv.url, 'poll', 'chat', `${first.cursor.split(':')[0]}:${g.missed[0] - 1}`);
      assert.equal(messages[0].id, g.missed[0]);
    } finally {
      for (const c of cs) c.socket.close();
      await srv.stop();
    }
  });
});
