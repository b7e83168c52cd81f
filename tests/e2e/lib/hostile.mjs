// The "hostile neighbours" harness: while an attack runs against herald, a canary SSE reader
// and a publisher (one message every 100 ms) use the server as an ordinary user would, and
// herald's RSS is sampled. At the end the canary must have received every acknowledged message
// exactly once, in order, on one unbroken stream, and RSS must have stayed under a bound.
//
// The canary runs in a worker thread with its own event loop, so an attack that keeps the
// test's main thread busy (thousands of sockets, big buffers) cannot make the canary look slow.
//
//   const canary = await startCanary(h, { rssLimitKb: 200 * 1024 });
//   ... the attack ...
//   await canary.check();   // asserts, and returns the figures
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';

const WORKER_SRC = `
const net = require('node:net');
const http = require('node:http');
const fs = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const { port, channel, intervalMs, pid, rssEveryMs } = workerData;

const received = [];     // { id, data }
const events = [];       // non-message events (gap, close, ...)
const published = [];    // { id, data } acknowledged
const pubErrors = [];    // { seq, status, text }
let pubTimer = null, status = 0, closed = false, closeWhy = '', maxRssKb = 0, stopping = false, inflight = 0, seq = 0;

function rss() {
  try {
    const m = /VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'));
    if (m) maxRssKb = Math.max(maxRssKb, Number(m[1]));
  } catch {}
}
const rssTimer = setInterval(rss, rssEveryMs);
rss();

// the SSE reader: one plain socket, parsed by hand (id / event / data fields, blank-line dispatch)
const sock = net.connect(port, '127.0.0.1');
let head = Buffer.alloc(0), inBody = false, pending = '', id = '', type = '', data = [];
const dec = new TextDecoder();
sock.on('connect', () => sock.write('GET /sse/' + channel + ' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nAccept: text/event-stream\\r\\n\\r\\n'));
sock.on('data', (d) => {
  if (!inBody) {
    head = Buffer.concat([head, d]);
    const i = head.indexOf('\\r\\n\\r\\n');
    if (i < 0) return;
    status = Number(/^HTTP\\/1\\.1 (\\d+)/.exec(head.toString('latin1'))?.[1] || 0);
    inBody = true;
    parentPort.postMessage({ started: status });
    // publish only once the stream is open: an SSE stream without Last-Event-ID starts live
    if (status === 200) pubTimer = setInterval(publishOne, intervalMs);
    d = head.subarray(i + 4);
  }
  pending += dec.decode(d, { stream: true });
  let nl;
  while ((nl = pending.indexOf('\\n')) >= 0) {
    const line = pending.slice(0, nl).replace(/\\r$/, '');
    pending = pending.slice(nl + 1);
    if (line === '') {
      if (data.length) {
        if (type === '' || type === 'message') received.push({ id, data: data.join('\\n') });
        else events.push({ type, data: data.join('\\n') });
      }
      type = ''; data = [];
    } else if (line.startsWith('id:')) id = line.slice(3).trim();
    else if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
});
const onEnd = (why) => () => { if (!closed) { closed = true; closeWhy = why; } };
sock.on('end', onEnd('end'));
sock.on('close', onEnd('close'));
sock.on('error', (e) => { if (!closed) { closed = true; closeWhy = e.message; } });

// the publisher: one small JSON message every intervalMs over a keep-alive connection
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function publishOne() {
  if (stopping) return;
  const n = ++seq;
  const body = JSON.stringify({ canary: n });
  inflight++;
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/pub/' + channel, agent,
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
    let text = '';
    res.on('data', (c) => { text += c; });
    res.on('end', () => {
      inflight--;
      if (res.statusCode === 200) {
        try { published.push({ id: JSON.parse(text).cursor, data: body }); }
        catch { pubErrors.push({ seq: n, status: res.statusCode, text }); }
      } else pubErrors.push({ seq: n, status: res.statusCode, text });
    });
  });
  req.setTimeout(10000, () => req.destroy(new Error('no answer in 10 s')));
  req.on('error', (e) => { inflight--; pubErrors.push({ seq: n, status: 0, text: e.message }); });
  req.end(body);
}

parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  stopping = true;
  clearInterval(pubTimer);
  // wait for the last publishes to be answered and their messages to arrive (bounded)
  const t0 = Date.now();
  const done = () => {
    const got = new Set(received.map((r) => r.id));
    const waiting = inflight > 0 || (!closed && published.some((p) => !got.has(p.id)));
    if (waiting && Date.now() - t0 < 5000) { setTimeout(done, 20); return; }
    rss();
    clearInterval(rssTimer);
    sock.destroy();
    agent.destroy();
    parentPort.postMessage({ status, closed, closeWhy, received, events, published, pubErrors, maxRssKb });
  };
  done();
});
`;

// Start the canary against a running herald (h from startHerald). Options:
//   channel      the channel it reads and publishes on ('canary')
//   intervalMs   publish period (100)
//   rssLimitKb   bound for herald's RSS over the whole run (checked by check(); optional)
//   minMessages  at least this many must have been published by check() (default 5)
export async function startCanary(h, { channel = 'canary', intervalMs = 100, rssLimitKb, minMessages = 5, rssEveryMs = 50 } = {}) {
  const w = new Worker(WORKER_SRC, { eval: true, workerData: { port: h.port, channel, intervalMs, pid: h.proc.pid, rssEveryMs } });
  let resolveStart;
  const started = new Promise((r) => { resolveStart = r; });
  let resolveEnd;
  const ended = new Promise((r) => { resolveEnd = r; });
  w.on('message', (m) => { if ('started' in m) resolveStart(m.started); else resolveEnd(m); });
  w.on('error', (e) => { resolveStart(0); resolveEnd({ error: e.message }); });
  const st = await Promise.race([started, new Promise((r) => setTimeout(() => r(-1), 5000))]);
  assert.equal(st, 200, `canary: GET /sse/${channel} answered ${st}`);

  return {
    // Stop publishing, collect, assert; returns the figures.
    async check(what = 'the attack') {
      w.postMessage('stop');
      const r = await Promise.race([ended, new Promise((res) => setTimeout(() => res({ error: 'canary did not report in 15 s' }), 15000))]);
      await w.terminate();
      assert.ok(!r.error, `canary: ${r.error}`);
      const summary = `published ${r.published.length}, received ${r.received.length}, max RSS ${r.maxRssKb} kB`;
      assert.deepEqual(r.pubErrors, [], `canary publishes failed during ${what} (${summary})`);
      assert.ok(r.published.length >= minMessages, `canary published only ${r.published.length} messages during ${what}`);
      assert.equal(r.closed, false, `canary's event stream was closed during ${what} (${r.closeWhy}; ${summary}; events ${JSON.stringify(r.events).slice(0, 300)})`);
      assert.deepEqual(r.events, [], `canary got notices during ${what}`);
      assert.deepEqual(r.received, r.published, `canary: every acknowledged message once, in order, during ${what} (${summary})`);
      if (rssLimitKb !== undefined)
        assert.ok(r.maxRssKb <= rssLimitKb, `herald's RSS reached ${r.maxRssKb} kB during ${what}, over the bound ${rssLimitKb} kB`);
      return { published: r.published.length, received: r.received.length, maxRssKb: r.maxRssKb };
    },
    async abort() { await w.terminate(); },
  };
}
