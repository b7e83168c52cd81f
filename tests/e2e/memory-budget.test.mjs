// The global memory budget (--max-memory, README "Memory", src/core/budget.h) against the real
// herald binary:
//   - readers that stop reading at different points while a publisher floods one channel (raw
//     SSE and /ws/{ch} sockets, paused after their first message): herald's RSS stays under the
//     budget plus a stated baseline; the readers it cuts are those with the largest queues (the
//     ones that stopped first), each after a clean prefix; the others get every message; and
//     the hostile-neighbours canary (tests/e2e/lib/hostile.mjs) gets every message in order;
//   - publishes that the budget cannot hold (POST /pub, a /ws/{ch} publish, a Socket.IO chat
//     message) are refused - 503 + Retry-After + JSON, an {"error"} frame, a herald:error event -
//     and are not in history afterwards; once the memory is given back, publishes go through;
//   - the flag's errors.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startHerald, heraldBin, rssKb, sleep, WsClient, frame } from './lib/herald.mjs';
import { request, makeAgent, JSON_TYPE, SseClient, pollAll, assertAlive, stopChecked } from './lib/channels-util.mjs';
import { startCanary } from './lib/hostile.mjs';
import { io as ioClient } from 'socket.io-client';

const SAN = process.env.E2E_SANITIZE === '1';
const T = { timeout: SAN ? 240000 : 120000 };
const MiB = 1024 * 1024;

// ---- stalled readers ------------------------------------------------------------------------

const BUDGET = 32 * MiB;
// --max-queued far above anything a queue reaches here, so that only the budget acts.
const MAXQ = 64 * MiB;
const READERS = SAN ? 60 : 150;     // half SSE, half WebSocket, alternating
const PAD = 'x'.repeat(32 * 1024);
const STAGGER = 16;                 // one more reader stops every 16 messages (512 KiB)
const TAIL = 32;                    // messages after the last reader stopped (1 MiB)
// RSS allowed above the budget: herald's RSS before the attack (~6 MB), the channel's history
// (--history-bytes 1 MiB, kept with its SSE and WebSocket encodings: ~3 MiB), the canary's
// channel, and the allocator's slack (freed queue buffers are reused, not always returned).
// Measured: 36-39 MB peak with a 32 MiB budget (56 MB under ASan with 60 readers); with
// --max-memory 0 the same run passed 200 MB and was still growing after 50 s.
const BASELINE_MB = SAN ? 80 : 24;

// A reader that reads until its first flood message, then stops reading (its socket paused).
async function openStalled(port, kind, ch) {
  if (kind === 'sse') {
    const c = await SseClient.open(port, `/sse/${ch}`, { keepText: false });
    assert.equal(c.status, 200);
    const r = { kind, c, ids: [], closed: () => c.closed, notices: () => c.events.filter((e) => e.type !== 'message') };
    r.collect = () => { r.ids = c.messages().map((e) => Number(e.id.split(':')[1])); };
    r.stalled = c.until(() => c.messages().length > 0, 60000, 'a first message').then(() => { c.sock.pause(); r.collect(); r.stallId = r.ids[r.ids.length - 1]; });
    return r;
  }
  const c = await WsClient.open(port, { path: `/ws/${ch}` });
  const msgs = () => c.events.filter((e) => e.type === 'message');
  const r = { kind, c, ids: [], closed: () => c.tcpClosed, notices: () => c.events.filter((e) => e.type === 'close') };
  r.collect = () => { r.ids = msgs().map((e) => JSON.parse(e.data.toString()).id); };
  r.stalled = c.until(() => msgs().length > 0, 60000, 'a first message').then(() => { c.sock.pause(); r.collect(); r.stallId = r.ids[r.ids.length - 1]; });
  return r;
}

describe('memory budget: readers that stop reading while a publisher floods', () => {
  test(`${READERS} stalled SSE and /ws readers: RSS under --max-memory + baseline, largest queues cut first, canary complete`, T, async () => {
    // one worker: each event loop sheds its own largest queues (its share of what must go), so
    // with several the order below holds per worker, not across them; and every worker's
    // allocator arena adds its own slack to the RSS (measured with 2: 58-59 MB peak)
    const h = await startHerald(['--store', 'memory', '--max-memory', String(BUDGET), '--max-queued', String(MAXQ),
      '--history', '100000', '--history-bytes', String(MiB), '--sse-heartbeat', '60', '--quiet', '--workers', '1']);
    const readers = [];
    const agent = makeAgent(1);
    try {
      const rss0 = rssKb(h.proc.pid);
      const limitKb = BUDGET / 1024 + BASELINE_MB * 1024;
      const canary = await startCanary(h, { rssLimitKb: limitKb, rssEveryMs: 20 });
      let published = 0;
      const pub = async () => {
        const res = await request(h.url, 'POST', '/pub/flood', { body: JSON.stringify({ n: published + 1, pad: PAD }), headers: JSON_TYPE, agent });
        assert.equal(res.status, 200, `flood publish: ${res.status} ${res.text}`);
        published = res.json.id;
      };
      for (let i = 0; i < READERS; i++) {
        readers.push(await openStalled(h.port, i % 2 ? 'ws' : 'sse', 'flood'));
        for (let k = 0; k < STAGGER; k++) await pub();
      }
      for (let k = 0; k < TAIL; k++) await pub();
      await Promise.all(readers.map((r) => r.stalled));
      assertAlive(h);

      // Read again: a cut reader's stream ends after a clean prefix; the others get everything
      // up to a last message published now.
      for (const r of readers) { r.c.sock.resume(); }
      await pub();
      const last = published;
      await Promise.all(readers.map((r) => r.c.until(() => { r.collect(); return r.closed() || r.ids.includes(last); }, 30000, `reader ${r.kind} stalled at ${r.stallId}: the end or message ${last}`)));
      const cut = [], kept = [];
      for (const r of readers) {
        r.collect();
        const first = r.ids[0];
        r.ids.forEach((id, i) => { if (id !== first + i) assert.fail(`${r.kind} reader stalled at ${r.stallId}: id ${id} at position ${i} (from ${first}): loss or duplicate`); });
        if (r.ids.includes(last)) kept.push(r);
        else cut.push(r);
      }
      const order = (a, b) => a.stallId - b.stallId;
      cut.sort(order);
      kept.sort(order);
      const cutIds = cut.map((r) => r.stallId), keptIds = kept.map((r) => r.stallId);
      console.log(`# herald RSS ${rss0} kB at start; ${cut.length} readers cut (stalled at ${cutIds[0]}..${cutIds[cutIds.length - 1]}), ${kept.length} kept (stalled at ${keptIds[0]}..${keptIds[keptIds.length - 1]}); ${published} messages of 32 KiB`);
      assert.ok(cut.length > 0, 'the budget cut no reader');
      assert.ok(kept.length > 0, 'the budget cut every reader');
      // the largest queues go first: every reader cut had stopped reading before every reader
      // kept (its queue held more of the flood)
      assert.ok(cutIds[cutIds.length - 1] < keptIds[0],
        `cut readers stalled at ${JSON.stringify(cutIds)}; kept readers at ${JSON.stringify(keptIds)}`);
      // a cut reader was told why (SSE event: close, WebSocket 1008) unless its queue had to be dropped
      for (const r of cut) for (const n of r.notices()) {
        if (r.kind === 'sse') assert.equal(n.type, 'close');
        else assert.equal(n.code, 1008);
      }
      const figures = await canary.check(`${READERS} stalled readers and a flood`);
      console.log(`# canary: ${figures.published} messages, herald's max RSS ${figures.maxRssKb} kB (bound ${limitKb} kB)`);
      assertAlive(h);
    } finally {
      for (const r of readers) r.c.sock.destroy();
      agent.destroy();
      await stopChecked(h);
    }
  });
});

// ---- publishes over the budget ----------------------------------------------------------------

// Memory that cannot be shed: WebSocket messages left unfinished on /echo (binary fragments
// without FIN), each held in its assembly buffer.
async function holdAssembly(port, bytes, parts) {
  const socks = [];
  const each = Math.ceil(bytes / parts);
  for (let i = 0; i < parts; i++) {
    const c = await WsClient.open(port, { path: '/echo' });
    await new Promise((r) => c.sock.write(frame(2, Buffer.alloc(each, 0x61), { fin: false }), r));
    socks.push(c);
  }
  return socks;
}

describe('memory budget: publishes it cannot hold are refused', () => {
  test('POST /pub, /ws/{ch} and Socket.IO publishes over the budget: refused with the reason, not stored; accepted again once memory is back', T, async () => {
    const budget = 16 * MiB;
    const h = await startHerald(['--store', 'memory', '--max-memory', String(budget), '--quiet']);
    let held = [];
    let ws, sio;
    try {
      const body = JSON.stringify({ big: 'y'.repeat(512 * 1024) });
      // under the budget: accepted
      let res = await request(h.url, 'POST', '/pub/full', { body, headers: JSON_TYPE });
      assert.equal(res.status, 200, res.text);
      const firstId = res.json.id;
      ws = await WsClient.open(h.port, { path: '/ws/full' });
      sio = ioClient(h.url, { transports: ['websocket'], reconnection: false });
      await new Promise((resolve, reject) => { sio.once('connect', resolve); sio.once('connect_error', reject); });

      // 18 MiB of unfinished messages: nothing more fits
      held = await holdAssembly(h.port, 18 * MiB, 6);
      await sleep(200);
      res = await request(h.url, 'POST', '/pub/full', { body, headers: JSON_TYPE });
      assert.equal(res.status, 503, `POST over the budget: ${res.status} ${res.text}`);
      assert.equal(res.headers['retry-after'], '1');
      assert.match(res.headers['content-type'], /^application\/json/);
      assert.deepEqual(res.json, { error: 'over the memory budget: try again later' });

      ws.send(frame(1, Buffer.from(body)));
      const reply = await ws.next(10000, 'the answer to a publish');
      assert.equal(reply.type, 'message');
      assert.deepEqual(JSON.parse(reply.data.toString()), { error: 'over the memory budget: try again later', retry_after: 1 });

      const sioErr = new Promise((r) => sio.once('herald:error', r));
      const acked = await sio.timeout(10000).emitWithAck('message', { type: 'message', message: 'z'.repeat(1000), userId: 'u' });
      assert.deepEqual(acked, { error: 'over the memory budget: try again later', retry_after: 1 });
      assert.deepEqual(await sioErr, { error: 'over the memory budget: try again later', retry_after: 1 });

      // nothing of it was stored: the histories hold only what was accepted
      let all = await pollAll(h.url, 'poll', 'full', '0');
      assert.deepEqual(all.messages.map((m) => m.id), [firstId]);
      all = await pollAll(h.url, 'poll', 'chat', '0');
      assert.deepEqual(all.messages, []);
      assertAlive(h);

      // the memory goes back (the unfinished messages' sockets close): publishes go through again
      for (const c of held) c.destroy();
      held = [];
      let ok;
      for (let i = 0; i < 100 && !ok; i++) {
        res = await request(h.url, 'POST', '/pub/full', { body, headers: JSON_TYPE });
        if (res.status === 200) ok = res;
        else await sleep(50);
      }
      assert.ok(ok, `POST after the memory was given back: ${res.status} ${res.text}`);
      ws.send(frame(1, Buffer.from('{"small":1}')));
      // the socket also reads the channel: find the answer among the messages
      const isAck = (e) => e.type === 'message' && e.data.subarray(0, 7).toString() === '{"ack":';
      await ws.until(() => ws.events.some(isAck), 10000, 'the ack of a publish');
      all = await pollAll(h.url, 'poll', 'full', '0');
      assert.equal(all.messages.length, 3);
    } finally {
      for (const c of held) c.destroy();
      if (ws) ws.destroy();
      if (sio) sio.close();
      await stopChecked(h);
    }
  });
});

describe('memory budget: the history cache', () => {
  test('history beyond half the budget leaves the cache, so publishes keep being accepted', T, async () => {
    // the cache is counted in the budget and never shed: left at --history-cache (64 MiB) it
    // would fill an 8 MiB budget and every publish after it would be refused
    const h = await startHerald(['--max-memory', String(8 * MiB), '--quiet']);
    try {
      const agent = makeAgent(4);
      const body = JSON.stringify('y'.repeat(256 * 1024));
      for (let i = 0; i < 60; i++) { // 15 MiB of history over 6 channels
        const r = await request(h.url, 'POST', `/pub/cache${i % 6}`, { body, headers: JSON_TYPE, agent });
        assert.equal(r.status, 200, `publish ${i}: ${r.status} ${r.text}`);
      }
      // every message is still readable: the store has what the cache let go
      const all = await pollAll(h.url, 'poll', 'cache0', undefined, { agent });
      assert.equal(all.messages.length, 10);
      agent.destroy();
      assertAlive(h);
    } finally {
      await stopChecked(h);
    }
  });
});

describe('memory budget: --max-memory', () => {
  for (const bad of ['-1', 'lots', '1000', '1.5']) {
    test(`--max-memory ${bad}: exit 2 and one line naming the flag`, () => {
      const r = spawnSync(heraldBin, ['--port', '0', '--max-memory', bad], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--max-memory/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    });
  }
  test('--help names --max-memory and its default on this machine', () => {
    const r = spawnSync(heraldBin, ['--help'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--max-memory N[\s\S]*half of RAM[\s\S]*here \d+/);
  });
});
