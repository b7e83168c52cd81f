// Helpers for the Engine.IO / Socket.IO end-to-end tests: which server to start (herald, or the
// Node.js reference with REFERENCE=1), and a browser-like WebSocket as the official conformance
// suites use it.
import WebSocket from 'ws';
import assert from 'node:assert/strict';
import { startHerald, sanitizerReport } from './herald.mjs';
import { startReference } from './reference-server.mjs';

export const USE_REFERENCE = process.env.REFERENCE === '1';

// Start the server under test with herald's flags: herald itself, or with REFERENCE=1 the official
// Node.js server set up the same way (lib/reference-server.mjs).
export function startServer(args = [], opts = {}) {
  return USE_REFERENCE ? startReference(args, opts) : startHerald(args, opts);
}

// Stop a server started by startServer(): it must still be running (no crash during the tests),
// and its output must hold no sanitizer report (with an ASan/UBSan build of herald).
export async function stopServer(h) {
  if (!h) return;
  const crashed = h.proc.exitCode !== null || h.proc.signalCode !== null;
  await h.stop();
  assert.ok(!crashed, `server exited during the tests (code ${h.proc.exitCode}, signal ${h.proc.signalCode}):\n${h.output().slice(-3000)}`);
  const report = sanitizerReport(h);
  assert.equal(report, null, `sanitizer report from the server:\n${report}`);
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// A WebSocket ('ws' package, through its browser-like EventTarget API) whose open/close/message
// events are buffered until awaited, as createWebSocket() in the Engine.IO v4 test suite does.
// Buffering gives browser semantics: 'ws' dispatches several messages of one TCP read
// synchronously, and an unbuffered once-listener registered after an await would miss them.
// binaryType is 'arraybuffer'. Errors (e.g. a refused handshake) are recorded, not thrown.
export function createWebSocket(url, { binaryType = 'arraybuffer', track } = {}) {
  const socket = new WebSocket(url);
  socket.binaryType = binaryType;
  socket._eventBuffer = {};
  socket._pendingPromises = {};
  socket._errors = [];
  socket._log = [];
  socket.on('error', (e) => { socket._errors.push(e.message); });
  for (const eventType of ['open', 'close', 'message']) {
    socket._eventBuffer[eventType] = [];
    socket._pendingPromises[eventType] = [];
    socket.addEventListener(eventType, (event) => {
      socket._log.push(eventType === 'message' ? describeData(event.data) : eventType === 'close' ? `close(${event.code})` : eventType);
      if (socket._pendingPromises[eventType].length) socket._pendingPromises[eventType].shift()(event);
      else socket._eventBuffer[eventType].push(event);
    });
  }
  if (track) track.push(socket);
  return socket;
}

export function describeData(d) {
  if (typeof d === 'string') return JSON.stringify(d.length > 120 ? d.slice(0, 120) + '…' : d);
  if (d instanceof ArrayBuffer) return `ArrayBuffer[${[...new Uint8Array(d)].slice(0, 16).join(',')}]`;
  if (Buffer.isBuffer(d)) return `Buffer[${[...d].slice(0, 16).join(',')}]`;
  return String(d);
}

// The next buffered event of eventType (as waitFor() in the suite), failing after ms with what
// the socket saw so far.
export function waitFor(socket, eventType, ms = 5000) {
  if (socket._eventBuffer[eventType].length) return Promise.resolve(socket._eventBuffer[eventType].shift());
  return new Promise((resolve, reject) => {
    let timer;
    const fn = (event) => { clearTimeout(timer); resolve(event); };
    timer = setTimeout(() => {
      const i = socket._pendingPromises[eventType].indexOf(fn);
      if (i >= 0) socket._pendingPromises[eventType].splice(i, 1);
      reject(new Error(`timed out after ${ms} ms waiting for '${eventType}' on ${socket.url}; ` +
        `seen: [${socket._log.join(', ')}]; errors: ${JSON.stringify(socket._errors)}`));
    }, ms);
    socket._pendingPromises[eventType].push(fn);
  });
}

// The next count message payloads that are not a ping "2" (waitForPackets() in the Socket.IO v5
// suite).
export async function waitForPackets(socket, count, ms = 5000) {
  const packets = [];
  const deadline = Date.now() + ms;
  while (packets.length < count) {
    const { data } = await waitFor(socket, 'message', Math.max(1, deadline - Date.now()));
    if (data === '2') continue;
    packets.push(data);
  }
  return packets;
}

// Close every tracked socket (after each test).
export function closeAll(list) {
  for (const s of list.splice(0)) {
    try { s.terminate(); } catch { /* already gone */ }
  }
}

// fetch with a timeout, so that a hung long-poll fails the test with a message instead of hanging.
export async function fetchT(url, opts = {}, ms = 5000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`fetch ${opts.method || 'GET'} ${url} timed out after ${ms} ms`)), ms);
  if (opts.signal) opts.signal.addEventListener('abort', () => ctl.abort(opts.signal.reason));
  try {
    const res = await fetch(url, { ...opts, signal: ctl.signal });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text: () => Promise.resolve(text), body: text };
  } finally {
    clearTimeout(timer);
  }
}

// One plain HTTP request with node:http (so that headers like Origin go out as given).
// Resolves to { status, headers (lower-case names), body (string) }.
export async function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs = 5000 } = {}) {
  const http = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Resolve when pred() is truthy (checked every 10 ms), or fail after ms describing what.
export async function until(pred, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(10);
  }
}
