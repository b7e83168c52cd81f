// Slow-consumer policies per channel (--channel-policy PATTERN=POLICY, README "Backpressure and
// slow consumers", src/hub/hub.h) against the real herald binary. A stalled reader is a raw
// socket whose reading is paused (sock.pause()): the kernel's socket buffers fill (~4 MB on
// loopback) and then herald's output queue for it passes --max-queued. While ~20 MB is
// published past it we check, on SSE and WebSocket:
//   disconnect (the default)  a clean prefix 1..k, then SSE "event: close" / WS close 1008
//                             "slow consumer", then the end (or, still stalled after
//                             --close-timeout, dropped); resuming from the last cursor gets
//                             k+1.. with nothing lost;
//   skip                      a prefix 1..k, exactly one gap notice naming the missed ids
//                             [k+1, F-1] (sent when the output drains, with nothing new
//                             published), then F.. live; the connection stays open;
//   coalesce                  a prefix 1..k, then the newest message once drained (no gap
//                             notice), then live;
// herald's RSS stays bounded, fast readers of the same channel get every message with no gap
// (policies touch only slow readers), the patterns (fnmatch, first match wins, no match =
// disconnect) and the flag's errors; coalesce owes the newest even when history has dropped it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startHerald, heraldBin, repoRoot, rssKb, sleep, WsClient, upgradeRequest, parseFrames } from './lib/herald.mjs';
import { request, publishMany, info, SseClient, eventually, makeAgent, JSON_TYPE, assertAlive, stopChecked } from './lib/channels-util.mjs';

const SAN = process.env.E2E_SANITIZE === '1';
const T = { timeout: SAN ? 240000 : 90000 };
const W = SAN ? 60000 : 20000;       // bounded waits for things that must happen

// 1 MiB rather than less: the fast readers must stay under it while 20 MiB goes by (see PACE)
const MAXQ = 1048576;
const PAD = 'x'.repeat(32 * 1024);
const COUNT = 640;                   // 640 x 32 KiB = 20 MiB
// RSS growth while 20 MiB is published past a stalled reader. History is kept to 1 MiB
// (--history-bytes) so that it does not hide what an unbounded queue would hold. Measured with
// a stalled reader and two fast ones: 3.5-7 MB bounded, 18.5 MB when skip/coalesce queue
// without bound; under ASan (quarantine_size_mb=8) 13-15 MB bounded, 33 MB unbounded.
const RSS_LIMIT_MB = SAN ? 25 : 12;

// --close-timeout 30: a stalled reader that was told to go must still get its close notice
// when it reads again a few seconds later (the notice sits behind its queued output).
const BASE = ['--store', 'memory', '--max-queued', String(MAXQ), '--history', '100000', '--history-bytes', '1048576',
  '--sse-heartbeat', '60', '--close-timeout', '30',
  '--channel-policy', 'skip.*=skip', '--channel-policy', 'state.*=coalesce'];

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); })])
    .finally(() => clearTimeout(t));
}

const bigValues = (n) => Array.from({ length: n }, (_, i) => ({ n: i + 1, pad: PAD }));

// Publish values one after the other (so that value i gets id first+i-1), at most `mbps` MB of
// bodies per second when given; returns Map id -> JSON text.
// Why a pace: a reader is slow when herald's queue for it passes --max-queued, whatever the
// reason. Published back to back (~40 MB/s here) even a reader in its own thread can fall 1 MiB
// behind for a few ms on a 2-CPU machine, and a skip/coalesce policy then (rightly) applies to
// it. At 10 MB/s a fast reader would have to stop for ~100 ms; the stalled one still gets ~16 MB
// past the ~4 MB the kernel takes.
async function publishSeq(base, ch, values, { mbps = 0 } = {}) {
  const agent = makeAgent(1);
  const byId = new Map();
  const t0 = Date.now();
  let bytes = 0;
  try {
    for (const v of values) {
      const body = JSON.stringify(v);
      const res = await request(base, 'POST', `/pub/${ch}`, { body, headers: JSON_TYPE, agent });
      assert.equal(res.status, 200, `POST /pub/${ch}: ${res.status} ${res.text}`);
      byId.set(res.json.id, body);
      bytes += body.length;
      if (mbps) {
        const ahead = bytes / (mbps * 1e3) - (Date.now() - t0);
        if (ahead > 0) await sleep(ahead);
      }
    }
  } finally { agent.destroy(); }
  const ids = [...byId.keys()];
  assert.ok(ids.every((id, i) => i === 0 || id === ids[i - 1] + 1), 'publish ids are consecutive');
  return byId;
}

const PACE = { mbps: 10 };

// ---------------------------------------------------------------------------------------------
// Readers.

// An SSE reader that reads its prelude and then stops reading.
async function stalledSse(h, ch) {
  const c = await SseClient.open(h.port, `/sse/${ch}`, { keepText: false });
  assert.equal(c.status, 200, `GET /sse/${ch}: ${c.status}`);
  await c.until(() => c.comments.length >= 1, W, 'the SSE prelude');
  c.sock.pause();
  return c;
}

// A WebSocket channel reader that stops reading right after the handshake.
async function stalledWs(h, ch) {
  const c = await WsClient.open(h.port, { path: `/ws/${ch}` });
  c.sock.pause();
  return c;
}

// A fast reader in a worker thread (so it keeps reading while this thread publishes): sends
// `head` (an SSE GET or a WebSocket upgrade), keeps every byte after the response head, and
// resolves once the bytes `marker` arrived (the last message published) or the server closed.
const READER_SRC = `
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { port, head, marker } = workerData;
const mk = Buffer.from(marker);
const sock = net.connect(port, '127.0.0.1');
const chunks = [];
let hbuf = Buffer.alloc(0), headDone = false, tail = Buffer.alloc(0), done = false;
function finish(closed) {
  if (done) return;
  done = true;
  parentPort.postMessage({ head: hbuf.toString('latin1'), body: Buffer.concat(chunks), closed });
}
sock.on('connect', () => sock.write(head));
sock.on('data', (d) => {
  if (!headDone) {
    hbuf = Buffer.concat([hbuf, d]);
    const i = hbuf.indexOf('\\r\\n\\r\\n');
    if (i < 0) return;
    headDone = true;
    d = hbuf.subarray(i + 4);
    hbuf = hbuf.subarray(0, i);
    parentPort.postMessage({ started: true });
  }
  chunks.push(d);
  const s = Buffer.concat([tail, d]);
  if (s.indexOf(mk) >= 0) finish(false);
  tail = Buffer.from(s.subarray(Math.max(0, s.length - mk.length + 1)));
});
sock.on('close', () => finish(true));
sock.on('error', () => finish(true));
parentPort.on('message', (m) => { if (m === 'stop') finish(false); });
`;

// The last message of a run is {..., "end": true}: these bytes end its SSE event / WS frame.
const SSE_END = '"end":true}\n\n';
const WS_END = '"end":true}}';

function fastReader(port, kind, ch) {
  const head = kind === 'sse'
    ? `GET /sse/${ch} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`
    : upgradeRequest(`/ws/${ch}`);
  const w = new Worker(READER_SRC, { eval: true, workerData: { port, head, marker: kind === 'sse' ? SSE_END : WS_END } });
  let started, failed;
  const startedP = new Promise((res, rej) => { started = res; failed = rej; });
  const result = new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m.started) started();
      else { const r = { ...m, body: Buffer.from(m.body) }; resolve(r); started(); }
    });
    w.on('error', (e) => { reject(e); failed(e); });
  });
  result.catch(() => {});
  return {
    kind,
    started: withTimeout(startedP, W, `${kind} fast reader's response head`),
    result,
    stop: () => w.postMessage('stop'),
    terminate: () => w.terminate(),
  };
}

// ---------------------------------------------------------------------------------------------
// What a reader got, in order, as items: { t: 'msg', id, epoch, data } | { t: 'gap', reason,
// first, missed, keys } | { t: 'close', ... } | { t: 'other', ... }.

function sseItem(e) {
  if (e.type === 'message') {
    const [epoch, n] = e.id.split(':');
    return { t: 'msg', id: Number(n), epoch, data: JSON.parse(e.data) };
  }
  if (e.type === 'gap') {
    const g = JSON.parse(e.data);
    return { t: 'gap', reason: g.reason, first: g.first, missed: g.missed, keys: Object.keys(g).sort().join(), raw: e.data };
  }
  if (e.type === 'close') return { t: 'close', data: e.data };
  return { t: 'other', e };
}

function wsText(text) {
  const o = JSON.parse(text);
  if ('gap' in o) return { t: 'gap', reason: o.gap, first: o.first, missed: o.missed, keys: Object.keys(o).sort().join(), raw: text };
  if ('id' in o) {
    const [epoch, n] = String(o.cursor).split(':');
    assert.equal(Number(n), o.id, `WS frame cursor names its id: ${text.slice(0, 200)}`);
    return { t: 'msg', id: o.id, epoch, data: o.data };
  }
  return { t: 'other', raw: text.slice(0, 200) };
}

const sseItems = (c) => c.events.map(sseItem);

function wsItems(c) {
  assert.deepEqual(c.violations, [], 'WebSocket protocol violations from herald');
  return c.events.flatMap((e) => {
    if (e.type === 'message') return [e.opcode === 1 ? wsText(e.data.toString('utf8')) : { t: 'other', binary: e.data.length }];
    if (e.type === 'close') return [{ t: 'close', code: e.code, reason: e.reason.toString('utf8') }];
    return []; // ping/pong
  });
}

// The body a fast reader collected, as items.
function fastItems(r) {
  if (r.head.startsWith('HTTP/1.1 101 ')) {
    const { frames } = parseFrames(r.body);
    return frames.flatMap((f) => {
      if (f.opcode === 1) return [wsText(f.payload.toString('utf8'))];
      if (f.opcode === 8) return [{ t: 'close', code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString() }];
      if (f.opcode === 9 || f.opcode === 10) return [];
      return [{ t: 'other', opcode: f.opcode }];
    });
  }
  assert.match(r.head, /^HTTP\/1\.1 200 /, 'SSE response head');
  const p = new SseClient({ on() {} });
  p.status = 200;
  p.keepText = false;
  p._parse(new TextDecoder().decode(r.body));
  return p.events.map(sseItem);
}

const describeItems = (items) => {
  const out = [];
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if (it.t === 'msg') {
      let j = i;
      while (j + 1 < items.length && items[j + 1].t === 'msg' && items[j + 1].id === items[j].id + 1) j++;
      out.push(j > i ? `${it.id}..${items[j].id}` : String(it.id));
      i = j;
    } else out.push(JSON.stringify(it).slice(0, 160));
  }
  return '[' + out.join(', ') + ']';
};

function checkData(it, byId, what) {
  if (!byId || !byId.has(it.id)) return;
  const want = byId.get(it.id);
  if (JSON.stringify(it.data) !== want) assert.deepEqual(it.data, JSON.parse(want), `${what}: data of id ${it.id}`);
}

// The length k of the prefix of items that are messages 1..k in order (checked against byId).
// Unless jump is set, every message before the first notice must be in that prefix.
function prefix(items, byId, what, { jump = false } = {}) {
  let i = 0;
  while (i < items.length && items[i].t === 'msg') {
    if (items[i].id !== i + 1) {
      if (jump) break;
      assert.fail(`${what}: message #${i + 1} has id ${items[i].id}, want ${i + 1}: ${describeItems(items)}`);
    }
    checkData(items[i], byId, what);
    i++;
  }
  return i;
}

// items are exactly messages from..to in order (checked against byId).
function assertRun(items, from, to, byId, what) {
  const bad = items.findIndex((it, i) => it.t !== 'msg' || it.id !== from + i);
  if (bad >= 0 || items.length !== to - from + 1)
    assert.fail(`${what}: want messages ${from}..${to} and nothing else, got ${describeItems(items)}`);
  for (const it of items) checkData(it, byId, what);
}

// What a stalled reader's items say its policy was (for the pattern test and for mistakes):
// 'disconnect' (a close notice), 'skip' (a gap notice), 'coalesce' (a prefix then a jump to the
// newest with no notice), 'not slow' (every message), or a description of anything else.
function classify(items, last) {
  if (items.some((it) => it.t === 'close')) return 'disconnect';
  if (items.some((it) => it.t === 'gap')) return 'skip';
  const ids = items.filter((it) => it.t === 'msg').map((it) => it.id);
  let k = 0;
  while (k < ids.length && ids[k] === k + 1) k++;
  if (k === last && ids.length === last) return 'not slow';
  if (ids.length === k + 1 && ids[k] === last) return 'coalesce';
  return `unexpected: ${describeItems(items)}`;
}

async function subscribers(h, ch) { return (await info(h.url, ch)).subscribers; }

// ---------------------------------------------------------------------------------------------
describe('slow consumers: disconnect (the default)', () => {
  test('SSE: a stalled reader gets a clean prefix, then "event: close" {"reason":"slow consumer"}, then the end; fast readers get everything; RSS bounded', T, async (t) => {
    const h = await startHerald(BASE);
    const fast = [];
    let stalled;
    try {
      const ch = 'plain';
      stalled = await stalledSse(h, ch);
      fast.push(fastReader(h.port, 'sse', ch), fastReader(h.port, 'ws', ch));
      await Promise.all(fast.map((f) => f.started));
      await eventually(async () => { const s = await subscribers(h, ch); return s.sse === 2 && s.websocket === 1; }, W, 'the readers subscribed');
      await sleep(200);
      const rss0 = rssKb(h.proc.pid);
      const byId = await publishSeq(h.url, ch, bigValues(COUNT), PACE);
      const rss1 = rssKb(h.proc.pid);
      const growthMb = (rss1 - rss0) / 1024;
      t.diagnostic(`herald RSS ${rss0} -> ${rss1} kB (+${growthMb.toFixed(1)} MB; limit ${RSS_LIMIT_MB})`);
      // told to go as soon as it was over the limit: unsubscribed while it still reads nothing
      assert.deepEqual(await subscribers(h, ch), { websocket: 1, sse: 1, longpoll: 0, socketio: 0 }, 'only the stalled SSE stream is unsubscribed');
      assert.ok(growthMb < RSS_LIMIT_MB, `herald RSS grew ${growthMb.toFixed(1)} MB (${rss0} -> ${rss1} kB)`);
      assert.match(h.output(), /slow consumer/, 'herald logs the disconnect');
      assert.equal(stalled.closed, false, 'the stream is ended gracefully: kept open while its output is unread');
      const endId = (await publishSeq(h.url, ch, [{ end: true }])).keys().next().value;
      assert.equal(endId, COUNT + 1);
      for (const f of fast) {
        const r = await withTimeout(f.result, W, `${f.kind} fast reader`);
        assert.equal(r.closed, false, `the ${f.kind} fast reader was not disconnected`);
        assertRun(fastItems(r), 1, COUNT + 1, byId, `${f.kind} fast reader`);
      }
      // reading again: what was queued, then the close notice, then the end of the stream
      stalled.sock.resume();
      await stalled.until(() => stalled.closed, W, 'the stalled stream to end');
      const items = sseItems(stalled);
      const k = prefix(items, byId, 'stalled SSE');
      assert.ok(k > 0 && k < COUNT, `stalled reader got ${k} of ${COUNT} before the close`);
      assert.deepEqual(items.slice(k), [{ t: 'close', data: '{"reason":"slow consumer"}' }], `after the prefix 1..${k}: only the close notice; got ${describeItems(items.slice(k))}`);
      assertAlive(h);
    } finally {
      stalled?.close();
      await Promise.all(fast.map((f) => f.terminate()));
      await stopChecked(h);
    }
  });

  test('WebSocket: a stalled reader gets a clean prefix, then close 1008 "slow consumer"; TCP ends after its close reply; RSS bounded', T, async (t) => {
    const h = await startHerald(BASE);
    const fast = [];
    let stalled;
    try {
      const ch = 'plain-ws';
      stalled = await stalledWs(h, ch);
      fast.push(fastReader(h.port, 'ws', ch));
      await Promise.all(fast.map((f) => f.started));
      await eventually(async () => (await subscribers(h, ch)).websocket === 2, W, 'the readers subscribed');
      await sleep(200);
      const rss0 = rssKb(h.proc.pid);
      const byId = await publishSeq(h.url, ch, bigValues(COUNT), PACE);
      const rss1 = rssKb(h.proc.pid);
      const growthMb = (rss1 - rss0) / 1024;
      t.diagnostic(`herald RSS ${rss0} -> ${rss1} kB (+${growthMb.toFixed(1)} MB; limit ${RSS_LIMIT_MB})`);
      assert.equal((await subscribers(h, ch)).websocket, 1, 'the stalled WebSocket is unsubscribed, the fast one is not');
      assert.ok(growthMb < RSS_LIMIT_MB, `herald RSS grew ${growthMb.toFixed(1)} MB (${rss0} -> ${rss1} kB)`);
      await publishSeq(h.url, ch, [{ end: true }]);
      const r = await withTimeout(fast[0].result, W, 'ws fast reader');
      assert.equal(r.closed, false, 'the fast reader was not disconnected');
      assertRun(fastItems(r), 1, COUNT + 1, byId, 'ws fast reader');
      stalled.sock.resume();
      await stalled.until(() => stalled.gotClose, W, 'the close frame');
      const items = wsItems(stalled);
      const k = prefix(items, byId, 'stalled WS');
      assert.ok(k > 0 && k < COUNT, `stalled reader got ${k} of ${COUNT} before the close`);
      assert.deepEqual(items.slice(k), [{ t: 'close', code: 1008, reason: 'slow consumer' }], `after the prefix 1..${k}: only the close frame; got ${describeItems(items.slice(k))}`);
      stalled.sendClose(1008);
      await stalled.waitTcpClose(W);
      assertAlive(h);
    } finally {
      stalled?.destroy();
      await Promise.all(fast.map((f) => f.terminate()));
      await stopChecked(h);
    }
  });

  test('a reader still stalled after --close-timeout is dropped: its queued output and the notice are discarded', T, async () => {
    const h = await startHerald(['--store', 'memory', '--max-queued', String(MAXQ), '--history-bytes', '1048576',
      '--sse-heartbeat', '60', '--close-timeout', '1']);
    let s, w;
    try {
      const ch = 'dropped';
      s = await stalledSse(h, ch);
      w = await stalledWs(h, ch);
      const N = 320; // 10 MiB
      const byId = await publishMany(h.url, ch, bigValues(N), { concurrency: 20 });
      assert.deepEqual(await subscribers(h, ch), { websocket: 0, sse: 0, longpoll: 0, socketio: 0 }, 'both disconnected');
      await sleep(2500); // --close-timeout 1, then the sweep
      s.sock.resume();
      w.sock.resume();
      await s.until(() => s.closed, W, 'the SSE connection to end');
      await w.waitTcpClose(W);
      const si = sseItems(s), wi = wsItems(w);
      const ks = prefix(si, byId, 'dropped SSE'), kw = prefix(wi, byId, 'dropped WS');
      assert.ok(ks < N && kw < N, `only what the kernel held arrives (${ks}, ${kw} of ${N})`);
      assert.deepEqual(si.slice(ks), [], `SSE: nothing after the prefix 1..${ks} (the notice was queued behind the dropped output)`);
      assert.deepEqual(wi.slice(kw), [], `WS: nothing after the prefix 1..${kw}`);
      assertAlive(h);
    } finally {
      s?.close();
      w?.destroy();
      await stopChecked(h);
    }
  });

  test('resuming from the last cursor after the disconnect gets the rest (SSE Last-Event-ID, WebSocket ?since=), nothing lost', T, async () => {
    // history large enough to hold everything this time
    const h = await startHerald([...BASE, '--history-bytes', '1000000000']);
    const open = [];
    try {
      const ch = 'resume';
      const N = 320; // 10 MiB: well past the ~4 MB the kernel takes
      const s = await stalledSse(h, ch);
      const w = await stalledWs(h, ch);
      open.push(s, w);
      const byId = await publishMany(h.url, ch, bigValues(N), { concurrency: 20 });
      s.sock.resume();
      w.sock.resume();
      await s.until(() => s.closed, W, 'the SSE stream to end');
      await w.until(() => w.gotClose, W, 'the WS close frame');
      w.sendClose(1008);
      const si = sseItems(s), wi = wsItems(w);
      const ks = prefix(si, byId, 'stalled SSE'), kw = prefix(wi, byId, 'stalled WS');
      assert.equal(si[ks]?.t, 'close');
      assert.equal(wi[kw]?.code, 1008);
      assert.ok(ks < N && kw < N, `both were disconnected before the end (${ks}, ${kw} of ${N})`);
      const cursor = s.events.filter((e) => e.type === 'message').at(-1).id;
      assert.match(cursor, new RegExp(`^[0-9a-f]+:${ks}$`));
      const epoch = cursor.split(':')[0];
      // SSE: Last-Event-ID
      const s2 = await SseClient.open(h.port, `/sse/${ch}`, { headers: { 'Last-Event-ID': cursor }, keepText: false });
      open.push(s2);
      await s2.until(() => s2.messages().length >= N - ks, W, `SSE replay of ${N - ks} messages`);
      await sleep(100);
      assertRun(sseItems(s2), ks + 1, N, byId, 'SSE resumed with Last-Event-ID');
      // WebSocket: since = the last cursor it had
      const w2 = await WsClient.open(h.port, { path: `/ws/${ch}?since=${epoch}:${kw}` });
      open.push(w2);
      await w2.until(() => w2.events.filter((e) => e.type === 'message').length >= N - kw, W, `WS replay of ${N - kw} messages`);
      await sleep(100);
      assertRun(wsItems(w2), kw + 1, N, byId, 'WS resumed with since');
      assertAlive(h);
    } finally {
      for (const c of open) c.sock.destroy();
      await stopChecked(h);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// skip: a prefix 1..k, one gap notice {first F, missed [k+1, F-1]}, then F.. live, still open.
for (const kind of ['sse', 'ws']) {
  const ch = kind === 'sse' ? 'skip.a' : 'skip.b';
  describe(`slow consumers: skip (${kind === 'sse' ? 'SSE' : 'WebSocket'})`, () => {
    test(`${ch}: prefix, one gap notice when the output drains (nothing new published), then live; the connection stays open; fast readers see no gap; RSS bounded`, T, async (t) => {
      const h = await startHerald(BASE);
      const fast = [];
      let stalled;
      try {
        stalled = kind === 'sse' ? await stalledSse(h, ch) : await stalledWs(h, ch);
        const items = () => (kind === 'sse' ? sseItems(stalled) : wsItems(stalled));
        fast.push(fastReader(h.port, 'sse', ch), fastReader(h.port, 'ws', ch));
        await Promise.all(fast.map((f) => f.started));
        const want = kind === 'sse' ? { sse: 2, websocket: 1 } : { sse: 1, websocket: 2 };
        await eventually(async () => { const s = await subscribers(h, ch); return s.sse === want.sse && s.websocket === want.websocket; }, W, 'the readers subscribed');
        await sleep(200);
        const rss0 = rssKb(h.proc.pid);
        const byId = await publishSeq(h.url, ch, bigValues(COUNT), PACE);
        const rss1 = rssKb(h.proc.pid);
        const growthMb = (rss1 - rss0) / 1024;
        t.diagnostic(`herald RSS ${rss0} -> ${rss1} kB (+${growthMb.toFixed(1)} MB; limit ${RSS_LIMIT_MB})`);
        assert.ok(growthMb < RSS_LIMIT_MB, `herald RSS grew ${growthMb.toFixed(1)} MB (${rss0} -> ${rss1} kB)`);
        const s1 = await subscribers(h, ch);
        assert.ok(s1.sse === want.sse && s1.websocket === want.websocket, `the stalled reader is still subscribed: ${JSON.stringify(s1)}`);
        assert.doesNotMatch(h.output(), /slow consumer/, 'nobody was disconnected');

        // reading again with nothing new published: the notice comes when the output drains
        stalled.sock.resume();
        await stalled.until(() => items().some((it) => it.t !== 'msg'), W, 'the gap notice (the drain path)');
        await sleep(300);
        let got = items();
        const k = prefix(got, byId, `stalled ${kind}`);
        assert.ok(k > 0 && k < COUNT, `stalled reader got ${k} of ${COUNT} before the notice`);
        const g = got[k];
        assert.equal(g.t, 'gap', `after the prefix 1..${k}: a gap notice, got ${describeItems(got.slice(k))}`);
        assert.equal(g.keys, kind === 'sse' ? 'first,missed,reason' : 'first,gap,missed', `gap notice fields: ${g.raw}`);
        assert.equal(g.reason, 'slow', `gap reason: ${g.raw}`);
        assert.equal(g.first, COUNT + 1, `first: the next id it will get (nothing was published after ${COUNT}): ${g.raw}`);
        assert.deepEqual(g.missed, [k + 1, COUNT], `missed: exactly the ids not sent, after the prefix 1..${k}: ${g.raw}`);
        assert.equal(got.length, k + 1, `nothing after the notice yet: ${describeItems(got.slice(k))}`);
        assert.equal(stalled.closed ?? stalled.tcpClosed, false, 'still open');

        // then live
        const more = await publishSeq(h.url, ch, [{ after: 1 }, { after: 2 }, { after: 3, end: true }]);
        for (const [id, v] of more) byId.set(id, v);
        await stalled.until(() => items().filter((it) => it.t === 'msg').length >= k + 3, W, 'the 3 live messages');
        await sleep(200);
        got = items();
        assert.equal(got[k].t, 'gap');
        assertRun(got.slice(k + 1), COUNT + 1, COUNT + 3, byId, 'after the gap notice');
        assert.equal(got.filter((it) => it.t === 'gap').length, 1, 'exactly one gap notice');
        assert.equal(stalled.closed ?? stalled.tcpClosed, false, 'still open');
        const s2 = await subscribers(h, ch);
        assert.ok(s2.sse === want.sse && s2.websocket === want.websocket, `still subscribed: ${JSON.stringify(s2)}`);

        // policies touch only slow readers
        for (const f of fast) {
          const r = await withTimeout(f.result, W, `${f.kind} fast reader`);
          assert.equal(r.closed, false, `the ${f.kind} fast reader was not disconnected`);
          assertRun(fastItems(r), 1, COUNT + 3, byId, `${f.kind} fast reader (no gap, no loss)`);
        }
        assertAlive(h);
      } finally {
        stalled?.sock.destroy();
        await Promise.all(fast.map((f) => f.terminate()));
        await stopChecked(h);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// coalesce: a prefix 1..k, then (once drained, nothing new published) the newest, then live.
for (const kind of ['sse', 'ws']) {
  const ch = kind === 'sse' ? 'state.alice' : 'state.bob';
  describe(`slow consumers: coalesce (${kind === 'sse' ? 'SSE' : 'WebSocket'})`, () => {
    test(`${ch}: prefix, then the newest state once drained (no gap notice), then live; fast readers get every message; RSS bounded`, T, async (t) => {
      const h = await startHerald(BASE);
      const fast = [];
      let stalled;
      try {
        stalled = kind === 'sse' ? await stalledSse(h, ch) : await stalledWs(h, ch);
        const items = () => (kind === 'sse' ? sseItems(stalled) : wsItems(stalled));
        fast.push(fastReader(h.port, 'sse', ch), fastReader(h.port, 'ws', ch));
        await Promise.all(fast.map((f) => f.started));
        const want = kind === 'sse' ? { sse: 2, websocket: 1 } : { sse: 1, websocket: 2 };
        await eventually(async () => { const s = await subscribers(h, ch); return s.sse === want.sse && s.websocket === want.websocket; }, W, 'the readers subscribed');
        await sleep(200);
        const rss0 = rssKb(h.proc.pid);
        // one after the other: unread i is id i
        const byId = await publishSeq(h.url, ch, Array.from({ length: COUNT }, (_, i) => ({ unread: i + 1, pad: PAD })), PACE);
        const rss1 = rssKb(h.proc.pid);
        const growthMb = (rss1 - rss0) / 1024;
        t.diagnostic(`herald RSS ${rss0} -> ${rss1} kB (+${growthMb.toFixed(1)} MB; limit ${RSS_LIMIT_MB})`);
        assert.ok(growthMb < RSS_LIMIT_MB, `herald RSS grew ${growthMb.toFixed(1)} MB (${rss0} -> ${rss1} kB)`);
        const s1 = await subscribers(h, ch);
        assert.ok(s1.sse === want.sse && s1.websocket === want.websocket, `the stalled reader is still subscribed: ${JSON.stringify(s1)}`);

        stalled.sock.resume();
        await stalled.until(() => items().some((it) => it.t !== 'msg' || it.id === COUNT), W, `the newest message (unread ${COUNT})`);
        await sleep(300);
        let got = items();
        const k = prefix(got, byId, `stalled ${kind}`, { jump: true });
        assert.ok(k > 0 && k < COUNT - 1, `stalled reader got ${k} of ${COUNT} in a row, then the newest`);
        assert.equal(got.length, k + 1, `after the prefix 1..${k}: only the newest, got ${describeItems(got.slice(k))}`);
        assert.equal(got[k].t, 'msg', `after the prefix 1..${k}: no notice, got ${describeItems(got.slice(k))}`);
        assert.equal(got[k].id, COUNT);
        assert.equal(got[k].data.unread, COUNT);
        checkData(got[k], byId, 'the newest');
        assert.equal(stalled.closed ?? stalled.tcpClosed, false, 'still open');

        const more = await publishSeq(h.url, ch, [{ unread: COUNT + 1, end: true }]);
        for (const [id, v] of more) byId.set(id, v);
        await stalled.until(() => items().length >= k + 2, W, 'the live message');
        await sleep(200);
        got = items();
        assertRun(got.slice(k), COUNT, COUNT + 1, byId, 'the newest, then live');
        assert.equal(got[k + 1].data.unread, COUNT + 1);
        const ids = got.map((it) => it.id);
        assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'ids strictly increasing');
        assert.equal(stalled.closed ?? stalled.tcpClosed, false, 'still open');

        for (const f of fast) {
          const r = await withTimeout(f.result, W, `${f.kind} fast reader`);
          assert.equal(r.closed, false, `the ${f.kind} fast reader was not disconnected`);
          assertRun(fastItems(r), 1, COUNT + 1, byId, `${f.kind} fast reader (every state, in order)`);
        }
        assertAlive(h);
      } finally {
        stalled?.sock.destroy();
        await Promise.all(fast.map((f) => f.terminate()));
        await stopChecked(h);
      }
    });
  });
}

// The newest message is owed even when the history limits no longer keep it (here every message
// is bigger than --history-bytes, so history is empty right after each publish; --history-age
// with someone looking at the channel does the same): the reader keeps the owed message itself,
// so it never stays at an old state.
describe('slow consumers: coalesce when history does not keep the newest', () => {
  test('state.big: the newest still arrives once drained', T, async () => {
    const h = await startHerald(['--store', 'memory', '--max-queued', String(MAXQ), '--history-bytes', '1024',
      '--sse-heartbeat', '60', '--close-timeout', '30', '--channel-policy', 'state.*=coalesce']);
    let c;
    try {
      const ch = 'state.big';
      c = await stalledSse(h, ch);
      const N = 320;
      const byId = await publishSeq(h.url, ch, Array.from({ length: N }, (_, i) => ({ unread: i + 1, pad: PAD })));
      c.sock.resume();
      // wait until the stream has been quiet for 500 ms
      let n = -1;
      await eventually(async () => { const m = c.events.length; const quiet = m === n; n = m; return quiet && m > 0; }, W, 'the stream to go quiet', 500);
      const items = sseItems(c);
      const k = prefix(items, byId, 'stalled SSE', { jump: true });
      assert.ok(k < N, 'the reader was slow');
      assert.deepEqual(items.slice(k).map((it) => it.id), [N], `after the prefix 1..${k}: the newest (${N}); got ${describeItems(items.slice(k))}`);
    } finally {
      c?.close();
      await stopChecked(h);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('slow consumers: which policy a channel gets', () => {
  test('no matching rule: disconnect; two matching rules: the first given wins, whichever is more specific', T, async () => {
    // skip.x1 matches rules 1 and 2: coalesce (rule 1, the more specific one, given first);
    // skip.y2 matches rules 2 and 3: skip (rule 2, given before the more specific rule 3);
    // other and Skip.y2 (fnmatch is case-sensitive) match none: disconnect
    const h = await startHerald(['--store', 'memory', '--max-queued', String(MAXQ), '--history-bytes', '1048576',
      '--sse-heartbeat', '60', '--close-timeout', '30',
      '--channel-policy', 'skip.x*=coalesce', '--channel-policy', 'skip.*=skip', '--channel-policy', 'skip.y2=disconnect']);
    const want = { other: 'disconnect', 'Skip.y2': 'disconnect', 'skip.x1': 'coalesce', 'skip.y2': 'skip' };
    const chans = Object.keys(want);
    const readers = {};
    try {
      for (const ch of chans) readers[ch] = await stalledSse(h, ch);
      const N = 320; // 10 MiB each, well past what the kernel takes (~4 MB)
      await Promise.all(chans.map((ch) => publishMany(h.url, ch, bigValues(N), { concurrency: 5 })));
      for (const ch of chans) readers[ch].sock.resume();
      const got = {};
      for (const ch of chans) {
        const c = readers[ch];
        await c.until(() => c.closed || c.events.some((e) => e.type !== 'message' || idOfSse(e) === N), W, `${ch}: the end of the catch-up`);
        await sleep(200);
        got[ch] = classify(sseItems(c), N);
      }
      assert.deepEqual(got, want);
      assertAlive(h);
    } finally {
      for (const c of Object.values(readers)) c.close();
      await stopChecked(h);
    }
  });
});

const idOfSse = (e) => Number(e.id.split(':')[1]);

// ---------------------------------------------------------------------------------------------
describe('slow consumers: --channel-policy errors', () => {
  const bad = [
    ['--channel-policy', 'nothing'],
    ['--channel-policy', '=skip'],
    ['--channel-policy', 'a=bogus'],
    ['--channel-policy', 'a='],
    ['--channel-policy', 'a=SKIP'],
    Array.from({ length: 17 }, (_, i) => ['--channel-policy', `c${i}.*=skip`]).flat(),
  ];
  for (const args of bad) {
    const label = args.length > 2 ? `${args.length / 2} rules (16 at most)` : JSON.stringify(args[1]);
    test(`--channel-policy ${label}: exit 2 and one "herald:" line on stderr naming --channel-policy`, () => {
      // a flag wrongly accepted would start a server (on a free port) and hit the timeout
      const r = spawnSync(heraldBin, ['--host', '127.0.0.1', '--port', '0', '--store', 'memory',
        '--public', path.join(repoRoot, 'public'), ...args], { encoding: 'utf8', timeout: 5000, cwd: os.tmpdir() });
      assert.notEqual(r.error?.code, 'ETIMEDOUT', `herald kept running with ${args.join(' ')}: ${r.stdout}`);
      assert.equal(r.status, 2, `exit status (stderr: ${JSON.stringify(r.stderr)})`);
      const lines = r.stderr.replace(/\n$/, '').split('\n');
      assert.equal(lines.length, 1, `stderr should be one line, got: ${JSON.stringify(r.stderr)}`);
      assert.match(lines[0], /^herald: .*--channel-policy/, `stderr: ${JSON.stringify(r.stderr)}`);
      assert.equal(r.stdout, '', 'nothing on stdout');
    });
  }

  test('16 rules, all three policy names and glob classes are accepted', async () => {
    const args = Array.from({ length: 13 }, (_, i) => ['--channel-policy', `c${i}.*=skip`]).flat();
    args.push('--channel-policy', 'user:[a-m]?*=coalesce', '--channel-policy', 'news.eu=disconnect', '--channel-policy', '*=skip');
    const h = await startHerald(['--store', 'memory', ...args]);
    try { assertAlive(h); } finally { await stopChecked(h); }
  });
});
