// Helpers for the HTTP/static/process e2e tests (http.test.mjs, static.test.mjs,
// process.test.mjs): raw request/response exchanges, response parsing that knows which
// requests were HEAD, and the JSON error shape every error answer must have.
import assert from 'node:assert/strict';
import { STATUS_CODES } from 'node:http';
import net from 'node:net';
import { rawConnect, waitFor } from './herald.mjs';

export const isClosed = (c) => c.closed || c.ended;

// Parse complete responses from buf; methods[i] is the method of the i-th request (HEAD
// responses carry no body). Returns { responses: [{status, reason, headers, rawHead, body}], rest }.
// Duplicate header names are joined with ", " (and kept in full in rawHead).
export function parseSeq(buf, methods = []) {
  const responses = [];
  let off = 0;
  for (let i = 0; ; i++) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const rawHead = buf.subarray(off, end).toString('latin1');
    const lines = rawHead.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3}) ?(.*)$/.exec(lines[0]);
    if (!m) throw new Error('bad status line: ' + JSON.stringify(lines[0]));
    const headers = {};
    for (const line of lines.slice(1)) {
      const k = line.indexOf(':');
      if (k <= 0) throw new Error('bad header line: ' + JSON.stringify(line));
      const name = line.slice(0, k).trim().toLowerCase();
      const value = line.slice(k + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const status = Number(m[2]);
    const method = methods[i] || 'GET';
    if (status >= 100 && status < 200 && status !== 101) { off = end + 4; i--; continue; }
    const bodyless = method === 'HEAD' || status === 304 || status === 204 || status === 101;
    if (!bodyless && headers['transfer-encoding']) throw new Error('chunked responses not expected');
    const len = bodyless ? 0 : Number(headers['content-length'] ?? NaN);
    if (!bodyless && !Number.isFinite(len)) throw new Error('response without Content-Length: ' + rawHead);
    if (buf.length < end + 4 + len) break;
    responses.push({ status, reason: m[3], minor: Number(m[1]), headers, rawHead, body: buf.subarray(end + 4, end + 4 + len) });
    off = end + 4 + len;
  }
  return { responses, rest: buf.subarray(off) };
}

// Open a raw connection, write data (string/Buffer or an array of pieces written separately),
// wait for `count` responses (and, with expectClose, for the server to close). Returns
// { c, responses, rest, closed }. The caller destroys c (or uses keep: false, the default).
export async function exchange(port, data, { methods = [], count = 1, ms = 5000, expectClose = false, keep = false } = {}) {
  const c = await rawConnect(port);
  try {
    const pieces = Array.isArray(data) ? data : [data];
    for (const p of pieces) c.sock.write(p);
    await waitFor(c, (x) => parseSeq(x.data, methods).responses.length >= count || isClosed(x), ms,
      `${count} response(s)`);
    if (expectClose) await waitFor(c, isClosed, ms, 'the server to close the connection');
    const { responses, rest } = parseSeq(c.data, methods);
    return { c, responses, rest, closed: isClosed(c) };
  } finally {
    if (!keep) c.sock.destroy();
  }
}

// Send more on an open raw connection and wait for the total number of responses to reach count.
export async function more(c, data, { methods = [], count, ms = 5000 } = {}) {
  c.sock.write(data);
  await waitFor(c, (x) => parseSeq(x.data, methods).responses.length >= count || isClosed(x), ms, `${count} response(s)`);
  return parseSeq(c.data, methods).responses;
}

// The registered reason phrase of a status: node's table, with the names RFC 9110 §15 gave
// 413 and 422 (node keeps the older "Payload Too Large" and "Unprocessable Entity").
const RFC9110_RENAMED = { 413: 'Content Too Large', 422: 'Unprocessable Content' };
export const reasonPhrase = (status) => RFC9110_RENAMED[status] ?? STATUS_CODES[status];

// Every error answer: the status with its reason phrase, Content-Type application/json and a
// body {"error": "..."}.
export function assertJsonError(r, status, what = '') {
  assert.ok(r, `${what}: no response`);
  assert.equal(r.status, status, `${what}: status ${r.status}, expected ${status}; head:\n${r.rawHead}\nbody: ${r.body}`);
  assert.equal(r.reason, reasonPhrase(status), `${what}: the status line's reason phrase`);
  assert.match(r.headers['content-type'] || '', /^application\/json(\s*;.*)?$/i, `${what}: Content-Type of a ${status}`);
  let j;
  try { j = JSON.parse(r.body.toString('utf8')); } catch (e) {
    assert.fail(`${what}: ${status} body is not JSON: ${JSON.stringify(r.body.toString('latin1'))}`);
  }
  assert.equal(typeof j, 'object', `${what}: JSON body should be an object`);
  assert.ok(j && typeof j.error === 'string' && j.error.length > 0, `${what}: JSON body should be {"error": "..."}, got ${r.body}`);
  assert.equal(Number(r.headers['content-length']), r.body.length, `${what}: Content-Length`);
}

// Resolve true if a TCP connect to port succeeds, false if refused.
export function canConnect(port, host = '127.0.0.1', ms = 2000) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const t = setTimeout(() => { s.destroy(); resolve(false); }, ms);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

// Resolve to the promise's value, or to null after ms (the timer does not keep node alive).
export function within(promise, ms) {
  let t;
  const timeout = new Promise((resolve) => { t = setTimeout(() => resolve(null), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}
