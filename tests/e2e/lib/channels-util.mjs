// Helpers for the push-channel e2e tests (channels.test.mjs): a small HTTP client on keep-alive
// agents (publish, poll, long-poll, channel info), batched publishing, a raw Server-Sent Events
// client that parses the stream itself, and a gating TCP proxy that lets a test cut an
// EventSource's connection and decide when its reconnect may reach herald.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { sanitizerReport } from './herald.mjs';

// One keep-alive agent per herald instance and purpose.
export function makeAgent(maxSockets = 50) {
  return new http.Agent({ keepAlive: true, maxSockets });
}

// One HTTP request; resolves to { status, headers, text, json (or undefined), ms }.
// body: string | Buffer | undefined. Rejects on socket errors or after timeoutMs.
export function request(base, method, pathname, { body, headers = {}, agent, timeoutMs = 20000 } = {}) {
  const u = new URL(base);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const hdrs = { ...headers };
    if (body !== undefined) hdrs['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: u.hostname, port: u.port, method, path: pathname, headers: hdrs, agent: agent || false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, buf, text, json, ms: Date.now() - t0 });
      });
      res.on('error', (e) => { clearTimeout(timer); reject(e); });
    });
    const timer = setTimeout(() => { req.destroy(new Error(`${method} ${pathname}: no answer after ${timeoutMs} ms`)); }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export const JSON_TYPE = { 'Content-Type': 'application/json' };
export const TEXT_TYPE = { 'Content-Type': 'text/plain; charset=utf-8' };

// POST /pub/{ch}. value: a JS value sent as JSON (json: true, the default for non-strings) or a
// string sent as text. Asserts the 200 answer's shape; returns { id, cursor, res }.
export async function publish(base, ch, value, { json = typeof value !== 'string', raw, agent, headers } = {}) {
  const body = raw !== undefined ? raw : json ? JSON.stringify(value) : value;
  const res = await request(base, 'POST', `/pub/${ch}`, { body, headers: headers || (json ? JSON_TYPE : TEXT_TYPE), agent });
  assert.equal(res.status, 200, `POST /pub/${ch}: ${res.status} ${res.text}`);
  assert.equal(res.json?.channel, ch, `POST /pub/${ch} answer: ${res.text}`);
  assert.ok(Number.isSafeInteger(res.json.id) && res.json.id >= 1, `POST answer id: ${res.text}`);
  assert.match(res.json.cursor, /^[^:]+:\d+$/, `POST answer cursor: ${res.text}`);
  assert.equal(res.json.cursor.split(':')[1], String(res.json.id), `cursor names the id: ${res.text}`);
  return { id: res.json.id, cursor: res.json.cursor, res };
}

// Publish many values (each sent as JSON) with `concurrency` requests in flight over a keep-alive
// agent. Returns a Map id -> the JSON text published, after checking the ids are exactly
// first..first+n-1 (each assigned once).
export async function publishMany(base, ch, values, { concurrency = 50 } = {}) {
  const agent = makeAgent(concurrency);
  const byId = new Map();
  let next = 0;
  async function worker() {
    while (next < values.length) {
      const v = values[next++];
      const body = JSON.stringify(v);
      const res = await request(base, 'POST', `/pub/${ch}`, { body, headers: JSON_TYPE, agent });
      if (res.status !== 200) throw new Error(`POST /pub/${ch}: ${res.status} ${res.text}`);
      const id = res.json.id;
      if (byId.has(id)) throw new Error(`id ${id} given to two publishes`);
      byId.set(id, body);
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  const ids = [...byId.keys()].sort((a, b) => a - b);
  assert.equal(ids.length, values.length);
  assert.equal(ids[ids.length - 1] - ids[0] + 1, values.length, 'publish ids are contiguous');
  return byId;
}

// GET /pub/{ch} (channel info), asserting 200.
export async function info(base, ch, agent) {
  const res = await request(base, 'GET', `/pub/${ch}`, { agent });
  assert.equal(res.status, 200, `GET /pub/${ch}: ${res.status} ${res.text}`);
  assert.ok(res.json, `GET /pub/${ch} is JSON: ${res.text}`);
  return res.json;
}

// GET /poll or /lp; since undefined means no since parameter (given as-is, already encoded).
export function pollReq(base, route, ch, since, { agent, timeoutMs } = {}) {
  const q = since === undefined ? '' : `?since=${since}`;
  return request(base, 'GET', `/${route}/${ch}${q}`, { agent, timeoutMs });
}

// Assert the shape of a poll/long-poll answer and return its JSON.
export function checkPollAnswer(res, ch, epoch, what) {
  assert.equal(res.status, 200, `${what}: ${res.status} ${res.text}`);
  assert.match(res.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
  const j = res.json;
  assert.ok(j, `${what}: answer is not JSON: ${res.text.slice(0, 300)}`);
  assert.deepEqual(Object.keys(j).sort(), ['channel', 'epoch', 'gap', 'messages', 'more', 'next'], `${what}: keys`);
  assert.equal(j.channel, ch, `${what}: channel`);
  if (epoch) assert.equal(j.epoch, epoch, `${what}: epoch`);
  assert.ok(Array.isArray(j.messages), `${what}: messages`);
  assert.equal(typeof j.more, 'boolean', `${what}: more`);
  assert.match(j.next, new RegExp(`^${escapeRe(j.epoch)}:\\d+$`), `${what}: next`);
  for (const m of j.messages) {
    assert.deepEqual(Object.keys(m).sort(), ['cursor', 'data', 'id', 'time'], `${what}: message keys`);
    assert.equal(m.cursor, `${j.epoch}:${m.id}`, `${what}: message cursor`);
    assert.ok(Number.isSafeInteger(m.time) && Math.abs(m.time - Date.now()) < 600000, `${what}: message time ${m.time}`);
  }
  if (j.messages.length) assert.equal(j.next, j.messages[j.messages.length - 1].cursor, `${what}: next is the last message's cursor`);
  return j;
}

// Follow a poll/long-poll chain from since until more=false. Returns { messages, gaps, next, answers }.
export async function pollAll(base, route, ch, since, { agent, epoch } = {}) {
  const messages = [];
  const gaps = [];
  let cur = since;
  let answers = 0;
  for (;;) {
    const res = await pollReq(base, route, ch, cur, { agent });
    const j = checkPollAnswer(res, ch, epoch, `${route} since=${cur}`);
    answers++;
    assert.ok(j.messages.length <= 1000, `at most 1000 messages per answer, got ${j.messages.length}`);
    // more=true on a full answer, or on one read from the store that stopped at its page's
    // bytes (never on an empty one: the chain always moves on)
    if (j.more) assert.ok(j.messages.length > 0, 'more=true only on an answer with messages');
    if (j.gap !== null) gaps.push({ gap: j.gap, at: answers });
    messages.push(...j.messages);
    cur = j.next;
    if (!j.more) return { messages, gaps, next: j.next, answers };
    assert.ok(answers < 1000, 'poll chain does not end');
  }
}

export function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

// Check that msgs (poll messages {id, data} or SSE events {id: cursor, data: text}) are exactly
// ids from..to in order with the payloads published (byId: id -> JSON text).
export function assertExactRun(ids, datas, from, to, byId, what) {
  assert.equal(ids.length, to - from + 1, `${what}: count (first ids ${ids.slice(0, 5)}, last ${ids.slice(-5)})`);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== from + i) assert.fail(`${what}: position ${i} has id ${ids[i]}, want ${from + i} (duplicate or loss)`);
    if (byId) {
      const want = JSON.parse(byId.get(ids[i]));
      const got = datas[i];
      if (JSON.stringify(got) !== JSON.stringify(want)) assert.deepEqual(got, want, `${what}: data of id ${ids[i]}`);
    }
  }
}

// ------------------------------------------------------------------------------------------
// A raw SSE client: GET path over a plain socket, the response head parsed by hand and the body
// parsed as text/event-stream (HTML §9.2.6: lines end in LF, CRLF or CR; comments; id/event/
// data/retry fields; dispatch on a blank line). Records:
//   status, head (raw), headers; events [{ type, data, id (last event id at dispatch) }];
//   comments [text]; retry (last value); text (the whole body, when keepText); closed.
export class SseClient {
  constructor(sock, { keepText = true } = {}) {
    this.sock = sock;
    this.keepText = keepText;
    this.headBuf = Buffer.alloc(0);
    this.status = undefined;
    this.headers = {};
    this.head = '';
    this.body = Buffer.alloc(0);    // for non-200 answers
    this.text = '';
    this.events = [];
    this.comments = [];
    this.retry = undefined;
    this.lastEventId = '';
    this.closed = false;
    this.bytes = 0;
    this._decoder = new TextDecoder('utf-8');
    this._pending = '';
    this._data = [];
    this._hasData = false;
    this._type = '';
    this._cr = false;
    this._waiters = [];
    sock.on('data', (d) => this._onData(d));
    const end = () => { this.closed = true; this._wake(); };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
  }

  // Connect, send GET path (with extra header lines), wait for the response head.
  static async open(port, pathname, { headers = {}, keepText = true, timeoutMs = 5000 } = {}) {
    const sock = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const c = new SseClient(sock, { keepText });
    let extra = '';
    for (const [k, v] of Object.entries(headers)) extra += `${k}: ${v}\r\n`;
    sock.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n${extra}\r\n`);
    await c.until(() => c.status !== undefined || c.closed, timeoutMs, 'the response head');
    if (c.status === undefined) throw new Error(`SSE ${pathname}: closed before a response head`);
    return c;
  }

  _wake() { for (const w of this._waiters.splice(0)) w(); }

  _onData(d) {
    this.bytes += d.length;
    if (this.status === undefined) {
      this.headBuf = Buffer.concat([this.headBuf, d]);
      const end = this.headBuf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.head = this.headBuf.subarray(0, end).toString('latin1');
      const lines = this.head.split('\r\n');
      this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]);
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        this.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      d = this.headBuf.subarray(end + 4);
      this.headBuf = null;
    }
    if (this.status !== 200) {
      this.body = Buffer.concat([this.body, d]);
      this._wake();
      return;
    }
    const s = this._decoder.decode(d, { stream: true });
    if (this.keepText) this.text += s;
    this._parse(s);
    this._wake();
  }

  _parse(s) {
    let buf = this._pending + s;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const ch = buf.charCodeAt(i);
      if (ch === 10 && this._cr) { this._cr = false; start = i + 1; continue; }
      this._cr = false;
      if (ch === 10 || ch === 13) {
        if (ch === 13) this._cr = true;
        this._line(buf.slice(start, i));
        start = i + 1;
      }
    }
    this._pending = buf.slice(start);
  }

  _line(line) {
    if (line === '') {
      if (this._hasData) {
        this.events.push({ type: this._type || 'message', data: this._data.join('\n'), id: this.lastEventId });
      }
      this._data = [];
      this._hasData = false;
      this._type = '';
      return;
    }
    if (line[0] === ':') { this.comments.push(line.slice(1).replace(/^ /, '')); return; }
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') { this._data.push(value); this._hasData = true; }
    else if (field === 'event') this._type = value;
    else if (field === 'id') { if (!value.includes('\0')) this.lastEventId = value; }
    else if (field === 'retry') { if (/^\d+$/.test(value)) this.retry = Number(value); }
  }

  // message events only
  messages() { return this.events.filter((e) => e.type === 'message'); }

  until(pred, ms = 5000, what = 'condition') {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`SSE: timed out after ${ms} ms waiting for ${what}; ` +
        `status ${this.status}, ${this.events.length} events, closed=${this.closed}, last: ${JSON.stringify(this.events.slice(-2)).slice(0, 300)}`)), ms);
      const check = () => {
        let v;
        try { v = pred(); } catch (e) { clearTimeout(timer); reject(e); return; }
        if (v) { clearTimeout(timer); resolve(v); } else this._waiters.push(check);
      };
      check();
    });
  }

  waitMessages(n, ms = 5000) { return this.until(() => this.messages().length >= n, ms, `${n} messages`); }

  close() { this.sock.destroy(); }
}

// ------------------------------------------------------------------------------------------
// A TCP proxy in front of herald for EventSource reconnect tests. While closed (gate.open =
// false), new client connections are accepted but held: nothing reaches herald until open().
// cut() destroys every current connection (both sides). heads[] records each request head the
// proxy forwarded (to see the Last-Event-ID a reconnect carries).
export async function startGateProxy(targetPort) {
  const conns = new Set();
  const held = [];
  const heads = [];
  let isOpen = true;
  const server = net.createServer((client) => {
    conns.add(client);
    client.on('close', () => conns.delete(client));
    client.on('error', () => {});
    let head = '';
    let recorded = false;
    let up = null;
    const early = [];
    client.on('data', (d) => {
      if (!recorded) {
        head += d.toString('latin1');
        const i = head.indexOf('\r\n\r\n');
        if (i >= 0) { heads.push(head.slice(0, i)); recorded = true; }
      }
      if (up) up.write(d); else early.push(d);
    });
    const go = () => {
      if (client.destroyed) return;
      up = net.connect(targetPort, '127.0.0.1');
      conns.add(up);
      up.on('error', () => client.destroy());
      up.on('close', () => { conns.delete(up); client.destroy(); });
      client.on('close', () => up.destroy());
      up.on('data', (d) => client.write(d));
      for (const d of early.splice(0)) up.write(d);
    };
    if (isOpen) go(); else held.push(go);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    heads,
    heldCount: () => held.length,
    close() { isOpen = false; },
    open() { isOpen = true; for (const g of held.splice(0)) g(); },
    cut() { for (const s of conns) s.destroy(); },
    async stop() { for (const s of conns) s.destroy(); await new Promise((r) => server.close(r)); },
  };
}

// Poll fn() until it returns truthy (checked every stepMs) or fail after ms.
export async function eventually(fn, ms = 5000, what = 'condition', stepMs = 25) {
  const t0 = Date.now();
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

// ------------------------------------------------------------------------------------------
// Read an event stream in a worker thread, so that a reader is fast even while the test's own
// thread is busy publishing. result resolves with { head, body (Buffer), closed } once the body
// holds `blocks` blank-line-terminated blocks (the prelude counts as one) or the server closed
// it; the connection stays open until terminate().
const WORKER_SRC = `
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { port, path, blocks } = workerData;
const sock = net.connect(port, '127.0.0.1');
const chunks = [];
let seen = 0, prev = 0, headDone = false, head = Buffer.alloc(0), done = false;
function finish(closed) {
  if (done) return;
  done = true;
  parentPort.postMessage({ head: head.toString('latin1'), body: Buffer.concat(chunks), closed });
}
sock.on('connect', () => sock.write('GET ' + path + ' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nAccept: text/event-stream\\r\\n\\r\\n'));
sock.on('data', (d) => {
  if (!headDone) {
    head = Buffer.concat([head, d]);
    const i = head.indexOf('\\r\\n\\r\\n');
    if (i < 0) return;
    headDone = true;
    d = head.subarray(i + 4);
    head = head.subarray(0, i);
    parentPort.postMessage({ started: true });
  }
  chunks.push(d);
  for (let i = 0; i < d.length; i++) {
    if (d[i] === 10 && prev === 10) seen++;
    prev = d[i];
  }
  if (seen >= blocks) finish(false);
});
sock.on('close', () => finish(true));
sock.on('error', () => finish(true));
`;

export async function sseReadInWorker(port, pathname, blocks) {
  const { Worker } = await import('node:worker_threads');
  const w = new Worker(WORKER_SRC, { eval: true, workerData: { port, path: pathname, blocks } });
  let started;
  const startedP = new Promise((r) => { started = r; });
  const result = new Promise((resolve, reject) => {
    w.on('message', (m) => { if (m.started) started(); else resolve({ ...m, body: Buffer.from(m.body) }); });
    w.on('error', reject);
  });
  return { started: startedP, result, terminate: () => w.terminate() };
}

// ------------------------------------------------------------------------------------------
// Shared by the channel test files: herald still running, stopped without a crash or a
// sanitizer report; the id in a cursor; the payloads every transport must carry exactly.
export function assertAlive(h) {
  assert.equal(h.proc.exitCode, null, `herald exited:\n${h.output().slice(-2000)}`);
  assert.equal(h.proc.signalCode, null, `herald was killed by ${h.proc.signalCode}:\n${h.output().slice(-2000)}`);
}

export async function stopChecked(h) {
  if (!h) return;
  const crashed = h.proc.exitCode !== null || h.proc.signalCode !== null;
  await h.stop();
  assert.ok(!crashed, `herald exited during the tests:\n${h.output().slice(-3000)}`);
  assert.equal(sanitizerReport(h), null, `sanitizer report:\n${sanitizerReport(h)}`);
}

export const idOf = (cursor) => Number(cursor.split(':')[1]);

// What each payload is published as, and the JSON value every reader must get back.
export const PAYLOADS = [
  { text: 'hello' },
  { text: 'héllo wörld — 日本語 🌍 ✓' },
  { text: 'line1\nline2\r\nline3\rline4\n\n' },
  { text: 'tab\t "quote" back\\slash \u0001\u001f del\u007f sep\u2028\u2029 /' },
  { text: 'nul\u0000byte' },
  { text: '' },
  { text: '{"looks":"like json"}' },
  { raw: '{"a":[1,2,{"b":null,"c":"é\\n","d":{"e":[[]]}}],"f":true,"g":-1.5e3}', type: 'application/json', value: { a: [1, 2, { b: null, c: 'é\n', d: { e: [[]] } }], f: true, g: -1500 } },
  { raw: '  \r\n{\n  "x": [1,\n 2],\r\n  "y": "z"\n}\n\t ', type: 'application/json', value: { x: [1, 2], y: 'z' }, stored: '{\n  "x": [1,\n 2],\r\n  "y": "z"\n}' },
  { raw: '42', type: 'application/json', value: 42 },
  { raw: '"a string"', type: 'application/json; charset=utf-8', value: 'a string' },
  { raw: 'null', type: 'application/json', value: null },
  { raw: '[true,false]', type: 'application/vnd.api+json', value: [true, false] },
  { raw: '{"k":"v"}', type: 'text/plain', value: '{"k":"v"}' },
  { raw: 'no content type', type: null, value: 'no content type' },
];

async function publishPayloads(base, ch) {
  const ids = [];
  for (const p of PAYLOADS) {
    const raw = p.raw !== undefined ? p.raw : p.text;
    const headers = p.raw !== undefined ? (p.type ? { 'Content-Type': p.type } : {}) : TEXT_TYPE;
    const r = await publish(base, ch, null, { raw, headers });
    ids.push(r.id);
  }
  return ids;
}
export const expectedValue = (p) => ('value' in p ? p.value : p.text);
