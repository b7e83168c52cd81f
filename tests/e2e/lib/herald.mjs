// Start the real herald binary on an ephemeral loopback port and talk to it over raw sockets.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const heraldBin = process.env.E2E_HERALD_BIN ? path.resolve(process.env.E2E_HERALD_BIN) : path.join(repoRoot, 'build/herald');

const dataDirs = [];
process.on('exit', () => { for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true }); });

// A new empty directory for a herald's --data.
export function freshDataDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-data-'));
  dataDirs.push(d);
  return d;
}

// Start herald with extra flags; resolves once it prints its listening line.
// Returns { port, url, proc, output(), stop(signal) }.
// bin: another program that takes herald's flags (an example built with the C API).
// port: the --port flag given ('0': any free one; null: none, the environment's or the config
// file's then); env: variables added to the child's environment (HERALD_PORT, ...).
export async function startHerald(args = [], { wrapper = [], timeoutMs = 15000, bin = heraldBin, port: portFlag = '0', env } = {}) {
  const pub = args.includes('--public') ? [] : ['--public', path.join(repoRoot, 'public')];
  // every run gets its own data directory (the SQLite store), removed when the test process ends
  const data = args.includes('--data') ? [] : ['--data', freshDataDir()];
  const portArgs = portFlag === null ? [] : ['--port', String(portFlag)];
  const argv = [...wrapper, bin, '--host', '127.0.0.1', ...portArgs, ...pub, ...data, ...args];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  // after the exit, once its output pipes are drained too (a last log line may still be in them)
  const closed = new Promise((resolve) => proc.on('close', resolve));
  let scheme = 'http'; // https with --tls-cert
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /listening on (https?):\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); scheme = m[1]; resolve(Number(m[2])); }
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.on('exit', () => { clearTimeout(timer); reject(new Error(`herald exited early:\n${out}`)); });
  });
  return {
    port,
    url: `${scheme}://127.0.0.1:${port}`,
    proc,
    exited,
    closed,
    output: () => out,
    async stop(signal = 'SIGTERM', waitMs = 10000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), waitMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

// A loopback port free at the time of asking (for a herald started on a fixed port, say to be
// restarted on it).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A raw TCP client that collects everything the server sends.
export function rawConnect(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    const c = { sock, data: Buffer.alloc(0), ended: false, closed: false, waiters: [] };
    const wake = () => { for (const w of c.waiters.splice(0)) w(); };
    sock.on('data', (d) => { c.data = Buffer.concat([c.data, d]); wake(); });
    sock.on('end', () => { c.ended = true; wake(); });
    sock.on('close', () => { c.closed = true; wake(); });
    sock.on('error', () => { c.closed = true; wake(); });
    sock.once('connect', () => resolve(c));
    sock.once('error', reject);
  });
}

// Wait until pred(c) is true, or fail after ms.
export function waitFor(c, pred, ms = 5000, what = 'condition') {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; got ${c.data.length} bytes: ${JSON.stringify(c.data.toString('latin1').slice(0, 400))}`)), ms);
    const check = () => {
      let v;
      try { v = pred(c); } catch (e) { clearTimeout(timer); reject(e); return; }
      if (v) { clearTimeout(timer); resolve(v); } else c.waiters.push(check);
    };
    check();
  });
}

// Parse complete HTTP/1.1 responses from the start of buf. Returns [{status, headers, body}], rest.
export function parseResponses(buf, { headRequests = 0 } = {}) {
  const out = [];
  let off = 0;
  let heads = headRequests;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
    if (!m) throw new Error('bad status line: ' + head[0]);
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    let bodyLen = 0;
    const noBody = heads > 0 || status === 304 || status === 204 || status === 101;
    if (!noBody) {
      if (headers['transfer-encoding']) throw new Error('chunked responses not expected');
      bodyLen = Number(headers['content-length'] || 0);
    }
    if (heads > 0) heads--;
    if (buf.length < end + 4 + bodyLen) break;
    out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + bodyLen) });
    off = end + 4 + bodyLen;
    if (status === 101) break;
  }
  return { responses: out, rest: buf.subarray(off) };
}

// Build a masked client frame. opts: fin (default true), rsv (0-7), mask (4-byte Buffer), masked (default true)
export function frame(opcode, payload = Buffer.alloc(0), opts = {}) {
  const { fin = true, rsv = 0, masked = true } = opts;
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = opts.mask || Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const len = data.length;
  let hdr;
  if (len < 126) { hdr = Buffer.alloc(2); hdr[1] = len; }
  else if (len < 65536) { hdr = Buffer.alloc(4); hdr[1] = 126; hdr.writeUInt16BE(len, 2); }
  else { hdr = Buffer.alloc(10); hdr[1] = 127; hdr.writeBigUInt64BE(BigInt(len), 2); }
  hdr[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!masked) return Buffer.concat([hdr, data]);
  hdr[1] |= 0x80;
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([hdr, mask, body]);
}

// Parse server frames (unmasked) from buf. Returns { frames: [{fin, rsv, opcode, payload}], rest }.
export function parseFrames(buf) {
  const frames = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const b0 = buf[off], b1 = buf[off + 1];
    let len = b1 & 0x7f, hl = 2;
    if (b1 & 0x80) throw new Error('server frame is masked');
    if (len === 126) { if (buf.length - off < 4) break; len = buf.readUInt16BE(off + 2); hl = 4; }
    else if (len === 127) { if (buf.length - off < 10) break; len = Number(buf.readBigUInt64BE(off + 2)); hl = 10; }
    if (buf.length - off < hl + len) break;
    frames.push({ fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, payload: buf.subarray(off + hl, off + hl + len) });
    off += hl + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const WS_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export function upgradeRequest(pathname = '/echo', extra = '') {
  return `GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

// Open a raw WebSocket to path: resolves to a client whose c.data holds only frame bytes.
export async function wsConnect(port, pathname = '/echo') {
  const c = await rawConnect(port);
  c.sock.write(upgradeRequest(pathname));
  await waitFor(c, (x) => x.data.indexOf('\r\n\r\n') >= 0, 5000, 'handshake');
  const end = c.data.indexOf('\r\n\r\n');
  const head = c.data.subarray(0, end).toString('latin1');
  if (!/^HTTP\/1\.1 101 /.test(head)) throw new Error('handshake failed: ' + head);
  c.handshake = head;
  c.data = c.data.subarray(end + 4);
  return c;
}

// Collected frames of a raw WebSocket client so far.
export function framesOf(c) { return parseFrames(c.data).frames; }

// Wait for a close frame from the server; returns { code, reason } (code 1005 if empty).
export async function waitClose(c, ms = 5000) {
  const f = await waitFor(c, (x) => framesOf(x).find((fr) => fr.opcode === 8), ms, 'close frame');
  if (f.payload.length === 0) return { code: 1005, reason: '' };
  return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// WsClient: a raw WebSocket client for protocol tests (Autobahn-style). Unlike rawConnect it
// parses server frames incrementally (no quadratic Buffer.concat on large messages), reassembles
// fragmented messages, and records what it sees as an ordered list of events:
//   { type: 'message', opcode, data } | { type: 'ping', data } | { type: 'pong', data } |
//   { type: 'close', code (1005 when empty), reason (Buffer), payload }
// Anything a server must never send (masked frames, RSV bits, bad control frames, broken
// fragmentation, frames after its close frame) is recorded in c.violations.
export class WsClient {
  constructor(sock) {
    this.sock = sock;
    this.events = [];
    this.pos = 0;               // events consumed by next()
    this.frames = [];           // { fin, rsv, opcode, len } of every server frame
    this.violations = [];
    this.tcpClosed = false;     // peer FIN, close or error seen
    this.sockError = null;
    this.gotClose = false;
    this._hbuf = Buffer.alloc(0);
    this._cur = null;
    this._msg = null;
    this._waiters = [];
  }

  // Open a connection to path and complete the opening handshake.
  // opts: path ('/echo'), allowHalfOpen (false), extra (extra request header lines).
  static async open(port, { path: pathname = '/echo', allowHalfOpen = false, extra = '', timeoutMs = 5000 } = {}) {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
    sock.setNoDelay(true);
    await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
    const c = new WsClient(sock);
    let head = Buffer.alloc(0);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('handshake timed out: ' + head.toString('latin1'))), timeoutMs);
      const onData = (d) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        sock.off('data', onData);
        const text = head.subarray(0, end).toString('latin1');
        c.handshake = text;
        if (!/^HTTP\/1\.1 101 /.test(text)) { reject(new Error('handshake failed: ' + text)); return; }
        const m = /\r\nsec-websocket-accept:[ \t]*([^\r\n]*)/i.exec(text);
        if (!m || m[1].trim() !== WS_ACCEPT) { reject(new Error('bad Sec-WebSocket-Accept: ' + text)); return; }
        c._attach();
        const rest = head.subarray(end + 4);
        if (rest.length) c._feed(rest);
        resolve();
      };
      sock.on('data', onData);
      sock.once('error', (e) => { clearTimeout(timer); reject(e); });
      sock.once('close', () => { clearTimeout(timer); reject(new Error('closed during handshake: ' + head.toString('latin1'))); });
      sock.write(upgradeRequest(pathname, extra));
    });
    return c;
  }

  _attach() {
    const s = this.sock;
    s.removeAllListeners('error');
    s.removeAllListeners('close');
    s.on('data', (d) => this._feed(d));
    s.on('end', () => { this.tcpClosed = true; this._wake(); });
    s.on('close', () => { this.tcpClosed = true; this._wake(); });
    s.on('error', (e) => { this.sockError = e; this.tcpClosed = true; this._wake(); });
  }

  _wake() { for (const w of this._waiters.splice(0)) w(); }

  _feed(chunk) {
    let off = 0;
    while (off < chunk.length) {
      if (!this._cur) {
        const had = this._hbuf.length;
        const take = Math.min(14 - had, chunk.length - off);
        const h = had ? Buffer.concat([this._hbuf, chunk.subarray(off, off + take)]) : chunk.subarray(off, off + take);
        if (h.length < 2) { this._hbuf = Buffer.from(h); off += take; break; }
        const masked = !!(h[1] & 0x80);
        let len = h[1] & 0x7f;
        let hl = 2;
        if (len === 126) hl = 4; else if (len === 127) hl = 10;
        const full = hl + (masked ? 4 : 0);
        if (h.length < full) { this._hbuf = Buffer.from(h); off += take; break; }
        if (len === 126) len = h.readUInt16BE(2);
        else if (len === 127) len = Number(h.readBigUInt64BE(2));
        const mask = masked ? Buffer.from(h.subarray(hl, hl + 4)) : null;
        if (masked) this.violations.push('server frame is masked');
        off += full - had;
        this._hbuf = Buffer.alloc(0);
        this._cur = { fin: !!(h[0] & 0x80), rsv: (h[0] >> 4) & 7, opcode: h[0] & 0x0f, len, mask, payload: Buffer.allocUnsafe(len), got: 0 };
      }
      const f = this._cur;
      const n = Math.min(f.len - f.got, chunk.length - off);
      chunk.copy(f.payload, f.got, off, off + n);
      f.got += n;
      off += n;
      if (f.got === f.len) { this._cur = null; this._frame(f); }
    }
    this._wake();
  }

  _frame(f) {
    if (f.mask) for (let i = 0; i < f.len; i++) f.payload[i] ^= f.mask[i & 3];
    this.frames.push({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, len: f.len });
    if (this.gotClose) this.violations.push(`frame (opcode ${f.opcode}) after the server's close frame`);
    if (f.rsv) this.violations.push(`server frame has RSV bits ${f.rsv}`);
    const data = f.payload;
    if (f.opcode >= 8) {
      if (!f.fin) this.violations.push('fragmented control frame from server');
      if (f.len > 125) this.violations.push('control frame > 125 bytes from server');
      if (f.opcode === 8) {
        this.gotClose = true;
        if (data.length === 1) this.violations.push('close frame with 1-byte payload from server');
        const code = data.length >= 2 ? data.readUInt16BE(0) : 1005;
        this.events.push({ type: 'close', code, reason: data.subarray(2), payload: data });
      } else if (f.opcode === 9) this.events.push({ type: 'ping', data });
      else if (f.opcode === 10) this.events.push({ type: 'pong', data });
      else this.violations.push(`reserved control opcode ${f.opcode} from server`);
      return;
    }
    if (f.opcode === 1 || f.opcode === 2) {
      if (this._msg) this.violations.push('new data frame during a fragmented message from server');
      this._msg = { opcode: f.opcode, parts: [data] };
    } else if (f.opcode === 0) {
      if (!this._msg) { this.violations.push('continuation frame with nothing to continue from server'); return; }
      this._msg.parts.push(data);
    } else { this.violations.push(`reserved data opcode ${f.opcode} from server`); return; }
    if (f.fin) {
      const m = this._msg;
      this._msg = null;
      this.events.push({ type: 'message', opcode: m.opcode, data: m.parts.length === 1 ? m.parts[0] : Buffer.concat(m.parts) });
    }
  }

  // Resolve when pred() is true (checked after every input), or reject after ms.
  until(pred, ms = 5000, what = 'condition') {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}; ` +
        `events so far: ${describeEvents(this.events)}; tcpClosed=${this.tcpClosed}`)), ms);
      const check = () => {
        let v;
        try { v = pred(); } catch (e) { clearTimeout(timer); reject(e); return; }
        if (v) { clearTimeout(timer); resolve(v); } else this._waiters.push(check);
      };
      check();
    });
  }

  // The next unconsumed event; rejects on timeout or if TCP closes first.
  async next(ms = 5000, what = 'next event') {
    await this.until(() => this.events.length > this.pos || this.tcpClosed, ms, what);
    if (this.events.length > this.pos) return this.events[this.pos++];
    throw new Error(`TCP connection closed while waiting for ${what}; events so far: ${describeEvents(this.events)}` +
      (this.sockError ? ` (socket error ${this.sockError.code})` : ''));
  }

  waitTcpClose(ms = 5000) { return this.until(() => this.tcpClosed, ms, 'the server to close TCP'); }

  pending() { return this.events.slice(this.pos); }

  send(buf) { return this.sock.write(buf); }

  // Write bytes in chops of size octets, letting the event loop turn between chops so that each
  // chop leaves in its own segment. delayMs > 0 sleeps between chops instead.
  async sendChopped(buf, size, { delayMs = 0 } = {}) {
    for (let off = 0; off < buf.length; off += size) {
      if (this.tcpClosed) return;
      const ok = this.sock.write(buf.subarray(off, Math.min(off + size, buf.length)));
      if (delayMs > 0) await sleep(delayMs);
      else if (!ok) await new Promise((r) => this.sock.once('drain', r));
      else await new Promise((r) => setImmediate(r));
    }
  }

  // Write each frame separately and wait for it to be flushed (Autobahn's sync = True).
  async sendSync(frames, delayMs = 2) {
    for (const f of frames) {
      if (this.tcpClosed) return;
      await new Promise((r) => this.sock.write(f, r));
      await sleep(delayMs);
    }
  }

  // Send a close frame (code omitted: empty payload).
  sendClose(code, reason = '') {
    const p = code === undefined ? Buffer.alloc(0)
      : Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.isBuffer(reason) ? reason : Buffer.from(reason)]);
    return this.send(frame(8, p));
  }

  destroy() { this.sock.destroy(); }
}

export function describeEvents(events) {
  return '[' + events.map((e) => {
    if (e.type === 'close') return `close(${e.code}${e.reason.length ? ',' + JSON.stringify(e.reason.toString('latin1').slice(0, 40)) : ''})`;
    if (e.type === 'message') return `${e.opcode === 1 ? 'text' : 'binary'}(${e.data.length}B)`;
    return `${e.type}(${e.data.length}B)`;
  }).join(', ') + ']';
}

// Resident set size of a process in kB, from /proc/PID/status (VmRSS).
export function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// Send a raw HTTP request and wait for one complete response (or the connection closing).
// Returns { status, headers, body, raw, closed } (status undefined if none arrived).
export async function httpExchange(port, request, ms = 5000) {
  const c = await rawConnect(port);
  try {
    c.sock.write(request);
    await waitFor(c, (x) => x.closed || x.ended || parseResponses(x.data).responses.length > 0, ms, 'HTTP response');
    const { responses } = parseResponses(c.data);
    const r = responses[0] || {};
    return { ...r, raw: c.data.toString('latin1'), closed: c.closed || c.ended };
  } finally {
    c.sock.destroy();
  }
}

// Fail if herald's output holds an AddressSanitizer/UBSan/LeakSanitizer report (useful with
// E2E_HERALD_BIN pointing at a -DHERALD_SANITIZE=ON build; a no-op for normal builds).
export function sanitizerReport(h) {
  const out = h.output();
  const i = out.search(/ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/);
  return i < 0 ? null : out.slice(Math.max(0, i - 200), i + 3000);
}
