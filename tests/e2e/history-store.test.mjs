// History lives in the store, not in memory: with the SQLite store herald keeps per-channel
// metadata and a bounded cache of recent messages (--history-cache), reads older than the cache
// from SQLite off the event loop, and loads only the metadata at start.
//
// Covered: 30 channels x 3 MB published keep herald's RSS near the cache bound (all of it was
// held in memory before); after a restart RSS is small (everything was loaded back before); a
// resume from the oldest cursor on every transport (SSE, WebSocket, long-poll, poll, Socket.IO
// auth.offset) returns every message once, in order, across the cache boundary (old messages
// from SQLite, new ones from the cache); 50,000 one-message channels cost little memory each;
// with --store memory the cache is the history and the global bound trims it (a gap, said).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startHerald, freshDataDir, rssKb, sanitizerReport } from './lib/herald.mjs';
import { startCanary } from './lib/hostile.mjs';
import {
  makeAgent, request, JSON_TYPE, publish, info, pollAll, SseClient, eventually, assertExactRun,
} from './lib/channels-util.mjs';

const MB = 1024 * 1024;
// a sanitizer build pads and quarantines allocations: its memory bounds are looser
const SAN = process.env.E2E_SANITIZE === '1' ? 3 : 1;
const CACHE = 8 * MB;

// Publish n values of about size bytes each to ch, `concurrency` in flight; returns their ids.
async function fill(base, ch, n, size, agent, tag = ch, start = 0) {
  const pad = 'x'.repeat(Math.max(0, size - 40));
  const ids = [];
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = start + next++;
      const body = JSON.stringify({ ch: tag, i, pad });
      const res = await request(base, 'POST', `/pub/${ch}`, { body, headers: JSON_TYPE, agent });
      if (res.status !== 200) throw new Error(`POST /pub/${ch}: ${res.status} ${res.text}`);
      ids.push(res.json.id);
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  return ids.sort((a, b) => a - b);
}

// Expected payload of message id of a channel filled by fill() (ids 1..n in publish order is
// not guaranteed with 8 in flight, so the test checks ids and the channel tag, and that each
// index i appears once).
function checkRun(values, ids, from, to, tag, what) {
  assertExactRun(ids, values, from, to, null, what);
  const seen = new Set();
  for (const v of values) {
    assert.equal(v.ch, tag, `${what}: a message of another channel`);
    assert.ok(!seen.has(v.i), `${what}: index ${v.i} twice`);
    seen.add(v.i);
  }
}

async function sseAll(port, ch, cursor, count, what) {
  const sse = await SseClient.open(port, `/sse/${ch}`, { headers: { 'Last-Event-ID': cursor }, keepText: false });
  try {
    await sse.until(() => sse.messages().length >= count, 30000, `${what}: ${count} SSE events`);
    assert.deepEqual(sse.events.filter((e) => e.type === 'gap'), [], `${what}: no gap`);
    const m = sse.messages();
    return { ids: m.map((e) => Number(e.id.split(':')[1])), values: m.map((e) => JSON.parse(e.data)) };
  } finally {
    sse.close();
  }
}

async function wsAll(port, ch, cursor, count, what) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/${ch}?since=${cursor}`);
  const got = [];
  ws.on('message', (d) => got.push(JSON.parse(d.toString())));
  try {
    await eventually(() => got.length >= count, 30000, `${what}: ${count} WebSocket frames`);
    assert.deepEqual(got.filter((f) => 'gap' in f), [], `${what}: no gap`);
    return { ids: got.map((f) => f.id), values: got.map((f) => f.data) };
  } finally {
    ws.terminate();
  }
}

async function sioAll(url, cursor, count, what) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 10000, auth: { offset: cursor } });
  const got = [];
  const gaps = [];
  socket.on('message', (v, offset) => { if (v && v.ch === 'chat') got.push({ v, offset }); });
  socket.on('herald:gap', (g) => gaps.push(g));
  try {
    await eventually(() => got.length >= count, 30000, `${what}: ${count} Socket.IO messages`);
    assert.deepEqual(gaps, [], `${what}: no gap`);
    return { ids: got.map((m) => Number(m.offset.split(':')[1])), values: got.map((m) => m.v) };
  } finally {
    socket.close();
  }
}

// Every transport from the channel's oldest cursor: all of 1..last, once, in order.
async function resumeEverywhere(h, ch, epoch, last, tag, what) {
  const oldest = `${epoch}:0`;
  const sse = await sseAll(h.port, ch, oldest, last, `${what} SSE`);
  checkRun(sse.values, sse.ids, 1, last, tag, `${what} SSE`);
  const ws = await wsAll(h.port, ch, oldest, last, `${what} WebSocket`);
  checkRun(ws.values, ws.ids, 1, last, tag, `${what} WebSocket`);
  for (const route of ['lp', 'poll']) {
    const { messages, gaps } = await pollAll(h.url, route, ch, oldest);
    assert.deepEqual(gaps, [], `${what} ${route}: no gap`);
    checkRun(messages.map((m) => m.data), messages.map((m) => m.id), 1, last, tag, `${what} ${route}`);
  }
}

describe('history in the store, a bounded cache in memory', () => {
  test('30 channels x 3 MB: RSS bounded by the cache, small after a restart; every transport resumes from the oldest cursor', { timeout: 240000 }, async () => {
    const data = freshDataDir();
    const args = ['--data', data, '--history-cache', String(CACHE), '--app', 'chat'];
    let h = await startHerald(args);
    const agent = makeAgent(8);
    try {
      const rss0 = rssKb(h.proc.pid);
      // "chat" first (the Socket.IO room of the default app): 300 x 2 KB, soon out of the cache
      const chatIds = await fill(h.url, 'chat', 300, 2048, agent, 'chat');
      assert.equal(chatIds[chatIds.length - 1], 300);
      for (let c = 0; c < 30; c++) await fill(h.url, `big${c}`, 96, 32 * 1024, agent);
      const rss1 = rssKb(h.proc.pid);
      const growthMb = (rss1 - rss0) / 1024;
      console.log(`# RSS ${rss0} -> ${rss1} kB publishing 90 MB over 31 channels`);
      // 90 MB were published; the cache holds 8 MB (plus SQLite's page caches and allocator slack)
      assert.ok(growthMb < 28 * SAN, `RSS grew ${growthMb.toFixed(1)} MB publishing 90 MB with an 8 MB cache (${rss0} -> ${rss1} kB)`);
      const chatInfo = await info(h.url, 'chat');
      assert.equal(chatInfo.first_id, 1);
      assert.equal(chatInfo.last_id, 300);
      assert.equal(chatInfo.history, 300, 'the metadata counts what the store keeps, cached or not');
      // before a restart: big0 was evicted (least recently used), big29 is cached
      const e0 = (await info(h.url, 'big0')).epoch;
      await resumeEverywhere(h, 'big0', e0, 96, 'big0', 'evicted channel');
      const sio = await sioAll(h.url, `${chatInfo.epoch}:0`, 300, 'chat before restart');
      checkRun(sio.values, sio.ids, 1, 300, 'chat', 'Socket.IO auth.offset before restart');

      assert.equal((await h.stop()).code, 0);
      h = await startHerald(args);
      const rssStart = rssKb(h.proc.pid);
      console.log(`# RSS right after the restart: ${rssStart} kB`);
      // before, herald loaded all 90 MB back at start
      assert.ok(rssStart < 24 * 1024 * SAN, `RSS right after a restart: ${rssStart} kB`);
      const big7 = await info(h.url, 'big7');
      assert.deepEqual([big7.first_id, big7.last_id, big7.history], [1, 96, 96], 'metadata loaded at start');
      // a few more after the restart: those are cached, the rest is only in SQLite
      await fill(h.url, 'big3', 5, 32 * 1024, agent, 'big3', 1000);
      await fill(h.url, 'chat', 4, 2048, agent, 'chat', 1000);
      const e3 = (await info(h.url, 'big3')).epoch;
      await resumeEverywhere(h, 'big3', e3, 101, 'big3', 'after restart, across the cache boundary');
      const sio2 = await sioAll(h.url, `${chatInfo.epoch}:0`, 304, 'chat after restart');
      checkRun(sio2.values, sio2.ids, 1, 304, 'chat', 'Socket.IO auth.offset after restart');
      assert.ok(rssKb(h.proc.pid) - rssStart < 40 * 1024 * SAN, 'resumes do not load the history');
      assert.equal(sanitizerReport(h), null);
    } finally {
      agent.destroy();
      await h.stop();
    }
  });

  test('Socket.IO recovery (pid + offset) whose missed channel messages left the cache: all of them, in order', { timeout: 120000 }, async () => {
    const h = await startHerald(['--history-cache', String(2 * MB)]);
    const agent = makeAgent(8);
    const socket = io(h.url, { forceNew: true, reconnection: false, timeout: 10000, transports: ['websocket'] });
    const got = [];
    socket.on('message', (v) => { if (v && v.ch === 'chat') got.push(v.i); });
    try {
      await eventually(() => socket.connected, 8000, 'connected');
      await fill(h.url, 'chat', 1, 2048, agent, 'chat');
      await eventually(() => got.length === 1, 5000, 'live message');
      socket.io.engine.close(); // a drop, not a leave: the session is kept for recovery
      await eventually(() => !socket.connected, 5000, 'dropped');
      // missed: 200 chat messages, then 6 MB elsewhere push them out of the 2 MB cache
      for (let i = 1; i <= 200; i++) await publish(h.url, 'chat', { ch: 'chat', i, pad: 'y'.repeat(2000) }, { agent });
      for (let c = 0; c < 6; c++) await fill(h.url, `other${c}`, 32, 32 * 1024, agent);
      socket.connect();
      await eventually(() => socket.connected, 8000, 'reconnected');
      assert.equal(socket.recovered, true, 'recovered');
      await eventually(() => got.length >= 201, 20000, 'the 200 missed');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(got, Array.from({ length: 201 }, (_, i) => i), 'each once, in order');
    } finally {
      socket.close();
      agent.destroy();
      await h.stop();
    }
  });

  test('hostile: an anonymous publisher filling 60 channels with 1 MB each; the canary gets everything, RSS stays bounded, herald restarts small', { timeout: 180000 }, async () => {
    const data = freshDataDir();
    const args = ['--data', data, '--history-cache', String(CACHE)];
    let h = await startHerald(args);
    const agent = makeAgent(8);
    try {
      const canary = await startCanary(h, { rssLimitKb: 48 * 1024 * SAN });
      for (let c = 0; c < 60; c++) await fill(h.url, `junk-${c}`, 32, 32 * 1024, agent);
      const figures = await canary.check('60 MB of history published by one client');
      console.log(`# canary: ${JSON.stringify(figures)}`);
      assert.equal((await h.stop()).code, 0);
      h = await startHerald(args);
      assert.ok(rssKb(h.proc.pid) < 24 * 1024 * SAN, `RSS right after restarting over 60 MB of history: ${rssKb(h.proc.pid)} kB`);
      assert.equal((await info(h.url, 'junk-59')).history, 32);
    } finally {
      agent.destroy();
      await h.stop();
    }
  });

  test('trimming is done in the store when the oldest messages are not cached; the metadata stays right across a restart', { timeout: 60000 }, async () => {
    const data = freshDataDir();
    const args = ['--data', data, '--history', '100', '--history-cache', String(1 * MB)];
    let h = await startHerald(args);
    const agent = makeAgent(8);
    try {
      // 150 x 32 KB into a 1 MB cache: the oldest kept are never cached, so SQLite trims
      await fill(h.url, 'trim-a', 150, 32 * 1024, agent);
      await eventually(async () => (await info(h.url, 'trim-a')).history === 100, 10000, 'trimmed to 100');
      let a = await info(h.url, 'trim-a');
      assert.deepEqual([a.first_id, a.last_id, a.history], [51, 150, 100]);
      let r = await pollAll(h.url, 'poll', 'trim-a', `${a.epoch}:0`);
      assert.deepEqual(r.gaps.map((g) => g.gap), ['trimmed']);
      checkRun(r.messages.map((m) => m.data), r.messages.map((m) => m.id), 51, 150, 'trim-a', 'poll after the trim');
      assert.equal((await h.stop()).code, 0);
      // a smaller limit at start: applied to what was kept, by the store
      h = await startHerald([...args.slice(0, 2), '--history', '40', '--history-cache', String(1 * MB)]);
      await eventually(async () => (await info(h.url, 'trim-a')).history === 40, 10000, 'trimmed to 40 at start');
      a = await info(h.url, 'trim-a');
      assert.deepEqual([a.first_id, a.last_id, a.history], [111, 150, 40]);
      r = await pollAll(h.url, 'lp', 'trim-a', `${a.epoch}:60`);
      assert.deepEqual(r.gaps.map((g) => g.gap), ['trimmed']);
      checkRun(r.messages.map((m) => m.data), r.messages.map((m) => m.id), 111, 150, 'trim-a', 'long-poll after the restart');
    } finally {
      agent.destroy();
      await h.stop();
    }
  });

  test('--store memory: the cache is the history; the global bound trims it (a gap, said)', { timeout: 60000 }, async () => {
    const h = await startHerald(['--store', 'memory', '--history-cache', String(2 * MB)]);
    const agent = makeAgent(8);
    try {
      await fill(h.url, 'mem-a', 64, 16 * 1024, agent, 'mem-a');
      await fill(h.url, 'mem-b', 160, 16 * 1024, agent, 'mem-b');
      const a = await info(h.url, 'mem-a');
      const b = await info(h.url, 'mem-b');
      // 3.5 MB published into 2 MB: mem-a (least recently used) lost everything, mem-b its oldest
      assert.equal(a.history, 0, `mem-a kept ${a.history}`);
      assert.equal(a.first_id, 65);
      assert.ok(b.history > 0 && b.history < 160 && b.first_id > 1, `mem-b: ${JSON.stringify(b)}`);
      const { messages, gaps } = await pollAll(h.url, 'poll', 'mem-b', `${b.epoch}:0`);
      assert.deepEqual(gaps.map((g) => g.gap), ['trimmed']);
      assert.equal(messages[0].id, b.first_id);
      assert.equal(messages.length, b.history);
    } finally {
      agent.destroy();
      await h.stop();
    }
  });

  test('50,000 one-message channels: the memory each costs', { timeout: 180000 }, async () => {
    const h = await startHerald(['--store', 'memory']);
    const agent = makeAgent(32);
    try {
      const N = 50000;
      const rss0 = rssKb(h.proc.pid);
      let next = 0;
      async function worker() {
        while (next < N) {
          const i = next++;
          const res = await request(h.url, 'POST', `/pub/many-${i}`, { body: '1', headers: JSON_TYPE, agent });
          if (res.status !== 200) throw new Error(`POST: ${res.status} ${res.text}`);
        }
      }
      await Promise.all(Array.from({ length: 32 }, worker));
      const perChannel = ((rssKb(h.proc.pid) - rss0) * 1024) / N;
      // with --workers every worker holds its own copy of each channel (its subscribers and
      // reads are served from it): the cost is per channel and worker
      const workers = Number(/(\d+) workers/.exec(h.output())?.[1] ?? 1);
      console.log(`# RSS per one-message channel: ${perChannel.toFixed(0)} bytes (${workers} workers)`);
      // 1.2 KB each before (a 16-slot ring per channel, the name apart)
      assert.ok(perChannel / workers < 600 * SAN, `${perChannel.toFixed(0)} bytes per channel, ${workers} workers`);
      assert.equal((await info(h.url, 'many-49999')).last_id, 1);
    } finally {
      agent.destroy();
      await h.stop();
    }
  });
});
