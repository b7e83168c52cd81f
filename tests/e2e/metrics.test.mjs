// GET /metrics, /healthz and /readyz against the real herald binary (README "Metrics and
// health"): every scrape is checked by Prometheus's own parser and linter (`promtool check
// metrics`, Debian's prometheus package, installed by scripts/setup.sh test), then read into
// numbers; a scripted session (a WebSocket channel reader, an SSE reader, a Socket.IO client,
// N publishes, a WebSocket refused for its origin) must move the values exactly, with one
// worker and with two (the per-worker counters add up); who may scrape (--metrics-allow,
// --metrics-token); and /readyz turning unready while the store cannot write (a "full" data
// directory: herald runs under an RLIMIT_FSIZE soft limit, raised again to recover) with every
// acknowledged message still there afterwards.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import WebSocket from 'ws';
import { io } from 'socket.io-client';
import { startHerald } from './lib/herald.mjs';
import { request, publish, eventually, SseClient, stopChecked, assertAlive } from './lib/channels-util.mjs';

const T = { timeout: 120000 };
const servers = [];
const closers = [];
after(async () => {
  for (const c of closers) { try { c(); } catch { /* gone */ } }
  for (const h of servers) await stopChecked(h);
});

async function herald(args, opts) {
  const h = await startHerald(['--quiet', ...args], opts);
  servers.push(h);
  return h;
}

// promtool parses the text with Prometheus's parser and lints it (names, units, _total, HELP):
// anything it reports fails the test.
function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30000 });
  assert.ok(!r.error, `promtool could not run (scripts/setup.sh test installs it): ${r.error}`);
  assert.equal(r.status, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
  assert.equal((r.stdout + r.stderr).trim(), '', `promtool has remarks:\n${r.stdout}${r.stderr}`);
}

// The samples of a text promtool accepted: "name{labels}" -> value. Every sample line has a
// HELP and TYPE above it for its family.
function samples(text) {
  const m = new Map();
  const types = new Map();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) { types.set(t[1], t[2]); continue; }
    if (line.startsWith('#')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(s, `sample line: ${line}`);
    const fam = s[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(s[1]) || types.has(fam), `no TYPE for ${s[1]}`);
    m.set(s[1] + (s[2] || ''), Number(s[3]));
  }
  return m;
}

async function scrape(h, headers = {}) {
  const res = await request(h.url, 'GET', '/metrics', { headers });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  promtoolCheck(res.text);
  return samples(res.text);
}

const get = (m, key) => {
  assert.ok(m.has(key), `no sample ${key}`);
  return m.get(key);
};
const delta = (a, b, key) => get(b, key) - get(a, key);
const conns = (t) => `herald_connections{transport="${t}"}`;
const opened = (t) => `herald_connections_opened_total{transport="${t}"}`;

async function wsOpen(url, headers) {
  const ws = new WebSocket(url, { headers });
  closers.push(() => ws.terminate());
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, frames };
}

// The session: readers of channel "chat" on three transports (the chat app's Socket.IO sockets
// join the room "chat"), N publishes, one refused handshake; the values must move by exactly
// what happened.
async function session(workers) {
  const GOOD = 'http://good.test';
  const h = await herald(['--workers', String(workers), '--allowed-origins', GOOD]);
  const health = await request(h.url, 'GET', '/healthz');
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { status: 'ok' });
  const ready = await request(h.url, 'GET', '/readyz');
  assert.equal(ready.status, 200, ready.text);
  assert.deepEqual(ready.json, { status: 'ready', checks: { accepting: 'ok', store: 'ok' } });

  const before = await scrape(h);
  for (const t of ['websocket', 'sse', 'longpoll', 'poll', 'socketio', 'echo']) assert.equal(get(before, conns(t)), 0, t);
  assert.equal(get(before, 'herald_messages_in_total'), 0);
  assert.equal(get(before, 'herald_workers'), workers);
  assert.ok(get(before, 'process_resident_memory_bytes') > 1e6);
  assert.ok(get(before, 'process_open_fds') > 3);
  assert.ok(get(before, 'process_max_fds') >= get(before, 'process_open_fds'));
  const start = get(before, 'process_start_time_seconds');
  assert.ok(Math.abs(start - Date.now() / 1000) < 600, `start time ${start}`);

  const ws = await wsOpen(`ws://127.0.0.1:${h.port}/ws/chat`, { Origin: GOOD });
  const sse = await SseClient.open(h.port, '/sse/chat');
  closers.push(() => sse.sock.destroy());
  const sock = io(h.url, { forceNew: true, reconnection: false, transports: ['websocket'], extraHeaders: { Origin: GOOD } });
  closers.push(() => sock.disconnect());
  const got = [];
  sock.on('message', (m) => got.push(m));
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('connect_error', reject); });
  // a WebSocket from a page of another origin: refused (403) before any handshake
  await assert.rejects(wsOpen(`ws://127.0.0.1:${h.port}/ws/chat`, { Origin: 'http://evil.test' }), /403/);

  const open = await eventually(async () => {
    const m = await scrape(h);
    return get(m, conns('websocket')) === 1 && get(m, conns('sse')) === 1 && get(m, conns('socketio')) === 1 ? m : null;
  }, 10000, 'three readers counted');

  const N = 12; // with two workers, publishes come on both (one in 2^11 runs all on one)
  for (let i = 0; i < N; i++) await publish(h.url, 'chat', { n: i });
  const ours = () => got.filter((m) => m && typeof m.n === 'number'); // not the app's greeting
  await eventually(() => ws.frames.filter((f) => f.data).length === N && sse.events.length === N && ours().length === N,
    10000, `${N} messages at every reader`).catch((e) => {
    throw new Error(`${e.message}: ws ${ws.frames.length}, sse ${sse.events.length}, Socket.IO ${ours().length}`);
  });
  const done = await scrape(h);
  assert.equal(delta(open, done, 'herald_messages_in_total'), N);
  assert.equal(delta(open, done, 'herald_messages_out_total'), 3 * N, 'one per reader');
  assert.equal(delta(open, done, 'herald_publish_latency_seconds_count'), N);
  assert.equal(delta(open, done, 'herald_publish_latency_seconds_bucket{le="+Inf"}'), N);
  assert.ok(delta(open, done, 'herald_publish_latency_seconds_sum') > 0);
  assert.ok(delta(open, done, 'herald_received_bytes_total') > N * 100, 'the publishes were read');
  assert.ok(delta(open, done, 'herald_sent_bytes_total') > 3 * N * 10, 'the messages were sent');
  assert.equal(get(done, 'herald_history_messages{store="sqlite"}'), N);
  assert.ok(get(done, 'herald_history_bytes{store="sqlite"}') >= N * 7);
  assert.equal(get(done, 'herald_store_writable{store="sqlite"}'), 1);
  // the session's handshakes and its one refusal
  assert.equal(delta(before, done, opened('websocket')), 1);
  assert.equal(delta(before, done, opened('sse')), 1);
  assert.equal(delta(before, done, opened('socketio')), 1);
  assert.equal(delta(before, done, 'herald_refusals_total{reason="forbidden"}'), 1);
  assert.equal(delta(before, done, 'herald_refusals_total{reason="connection_limit"}'), 0);

  // a short poll and a 404 count too
  const p = await request(h.url, 'GET', '/poll/chat');
  assert.equal(p.status, 200);
  assert.equal((await request(h.url, 'GET', '/no/such/thing')).status, 404);
  ws.ws.close();
  sse.sock.destroy();
  sock.disconnect();
  const after2 = await eventually(async () => {
    const m = await scrape(h);
    return ['websocket', 'sse', 'socketio'].every((t) => get(m, conns(t)) === 0) ? m : null;
  }, 10000, 'readers gone');
  assert.equal(delta(done, after2, opened('poll')), 1);
  assert.equal(delta(done, after2, 'herald_refusals_total{reason="not_found"}'), 1);
  assert.equal(delta(done, after2, 'herald_messages_out_total'), N, 'the poll answered the history');
  assertAlive(h);
}

describe('GET /metrics after a scripted session', T, () => {
  test('one worker: connections, messages, bytes, latency and refusals move exactly', T, () => session(1));
  test('two workers: the per-worker counters add up', T, () => session(2));

  test('/echo connections and the slow-consumer drops are exposed', T, async () => {
    const h = await herald(['--workers', '2']);
    const before = await scrape(h);
    const e = await wsOpen(`ws://127.0.0.1:${h.port}/echo`);
    await eventually(async () => get(await scrape(h), conns('echo')) === 1, 10000, 'echo counted');
    e.ws.close();
    const m = await eventually(async () => { const s = await scrape(h); return get(s, conns('echo')) === 0 ? s : null; }, 10000, 'echo gone');
    assert.equal(delta(before, m, opened('echo')), 1);
    for (const p of ['disconnect', 'skip', 'coalesce']) assert.equal(get(m, `herald_slow_consumer_drops_total{policy="${p}"}`), 0);
  });
});

describe('who may scrape', T, () => {
  test('default: loopback only; --metrics-allow elsewhere refuses 127.0.0.1 with 403', T, async () => {
    const h = await herald(['--metrics-allow', '10.0.0.0/8,fd00::/8']);
    const res = await request(h.url, 'GET', '/metrics');
    assert.equal(res.status, 403);
    assert.match(res.json.error, /--metrics-allow/);
    // health answers everyone
    assert.equal((await request(h.url, 'GET', '/healthz')).status, 200);
    assert.equal((await request(h.url, 'GET', '/readyz')).status, 200);
    const h2 = await herald(['--metrics-allow', 'none']);
    assert.equal((await request(h2.url, 'GET', '/metrics')).status, 403);
    const h3 = await herald(['--metrics-allow', '127.0.0.1/32']);
    await scrape(h3);
  });

  test('--metrics-token: a scrape wants Authorization: Bearer', T, async () => {
    const TOKEN = 'scrape-secret-0123456789';
    const h = await herald(['--metrics-token', TOKEN]);
    const none = await request(h.url, 'GET', '/metrics');
    assert.equal(none.status, 401);
    assert.match(none.headers['www-authenticate'], /^Bearer/);
    assert.ok(none.json.error);
    const wrong = await request(h.url, 'GET', '/metrics', { headers: { Authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    const m = await scrape(h, { Authorization: `Bearer ${TOKEN}` });
    // the refused scrapes are refusals too
    assert.equal(get(m, 'herald_refusals_total{reason="unauthorized"}'), 2);
  });

  test('bad flag values are refused at start', T, async () => {
    for (const args of [['--metrics-allow', '10.0.0.0/33'], ['--metrics-allow', 'example.com'], ['--metrics-token', 'short']]) {
      await assert.rejects(startHerald(args), /wants/, args.join(' '));
    }
  });
});

describe('GET /readyz and a store that cannot write', T, () => {
  test('a full data directory: publishes refused, unready; writable again: ready, nothing acknowledged lost', T, async () => {
    // the soft limit on file sizes stands for a full disk (root in a container cannot be kept
    // from writing by permissions); the hard limit stays, so the soft one can be raised again
    const h = await herald(['--workers', '2'], { wrapper: ['prlimit', '--fsize=262144:unlimited'] });
    const start = await scrape(h);
    const big = 'x'.repeat(20000);
    const acked = [];
    let refused = null;
    for (let i = 0; i < 40 && !refused; i++) {
      const res = await request(h.url, 'POST', '/pub/full', { body: big, headers: { 'Content-Type': 'text/plain' } });
      if (res.status === 200) acked.push(res.json.id);
      else refused = res;
    }
    assert.ok(refused, 'a publish was refused once the file could not grow');
    assert.equal(refused.status, 503, refused.text);
    assert.ok(refused.json.error, refused.text);
    assert.ok(acked.length > 0);
    // every worker tells (the store that commits is worker 0's)
    for (let i = 0; i < 4; i++) {
      const r = await request(h.url, 'GET', '/readyz');
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.status, 'unready');
      assert.equal(r.json.checks.accepting, 'ok');
      assert.match(r.json.checks.store, /^write failed: /);
    }
    const full = await scrape(h);
    assert.equal(get(full, 'herald_store_writable{store="sqlite"}'), 0);
    assert.equal(delta(start, full, 'herald_refusals_total{reason="unavailable"}'), 1, 'the refused publish');
    assert.equal(delta(start, full, 'herald_messages_in_total'), acked.length, 'only what was acknowledged');
    assert.equal(get(full, 'herald_history_messages{store="sqlite"}'), acked.length);
    assert.equal((await request(h.url, 'GET', '/healthz')).status, 200, 'alive all the same');

    const r = spawnSync('prlimit', ['--pid', String(h.proc.pid), '--fsize=unlimited:unlimited'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const last = await publish(h.url, 'full', 'again');
    acked.push(last.id);
    for (let i = 0; i < 4; i++) {
      const ok = await request(h.url, 'GET', '/readyz');
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.status, 'ready');
    }
    assert.equal(get(await scrape(h), 'herald_store_writable{store="sqlite"}'), 1);
    // every acknowledged message is in the history, none that was refused
    const ids = [];
    let since = '';
    for (;;) {
      const p = await request(h.url, 'GET', `/poll/full${since}`);
      assert.equal(p.status, 200, p.text);
      for (const m of p.json.messages) ids.push(m.id);
      if (!p.json.more) break;
      since = `?since=${p.json.next}`;
    }
    assert.deepEqual(ids, acked);
  });
});
