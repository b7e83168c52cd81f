// The origin allow-list (--allowed-origins) end to end against the real herald binary: every
// WebSocket route (/ws/{channel}, /echo, Socket.IO's websocket transport) refuses a handshake
// from an origin not listed (403, no upgrade: cross-site WebSocket hijacking), every Engine.IO
// request too (403 {"code":4,"message":"Forbidden"}, no session), and every channel route
// answers CORS for the listed origins only (echoed, Vary: Origin, credentials), a refused
// preflight with 403. Requests without Origin and from herald's own origin always pass. With no
// flag the demo's "*" stays; --allowed-origins none leaves only the own origin; --cors-origin is
// the old name. Chromium, on a page served from another port, sees its WebSocket and fetch work
// or fail as the list says.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import WebSocket from 'ws';
import { io as ioClient } from 'socket.io-client';
import { startHerald } from './lib/herald.mjs';
import { request, publish, stopChecked } from './lib/channels-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const GOOD = 'http://good.test';
const EVIL = 'http://evil.test';
const FORBIDDEN = { code: 4, message: 'Forbidden' };
const NOT_ALLOWED = { error: 'origin not allowed' };
const WS_ROUTES = ['/ws/x', '/echo', '/socket.io/?EIO=4&transport=websocket'];
const T = { timeout: 30000 };

// A WebSocket handshake with the given Origin (undefined: none): { status: 101 } once open, or
// the refusal's { status, headers, json }.
function wsTry(h, pathname, origin) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}${pathname}`, origin ? { origin } : {});
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`${pathname}: no answer`)); }, 10000);
    ws.on('open', () => { clearTimeout(timer); ws.close(); resolve({ status: 101 }); });
    ws.on('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
        req.destroy();
      });
    });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) { clearTimeout(timer); reject(e); } });
  });
}

// The status and headers of a request (the body is not waited for: an event stream never ends).
function head(h, method, pathname, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const hdrs = { ...headers };
    if (body !== undefined) hdrs['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: '127.0.0.1', port: h.port, method, path: pathname, headers: hdrs, agent: false }, (res) => {
      resolve({ status: res.statusCode, headers: res.headers });
      req.destroy();
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${pathname}: no answer`)), 10000);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e) => { if (e.code !== 'ECONNRESET') reject(e); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const corsOf = (headers) => Object.keys(headers).filter((k) => k.startsWith('access-control-'));
const own = (h) => `http://127.0.0.1:${h.port}`;

// Every channel route a page reads or publishes with (the channel holds a message, so the
// long-poll answers at once).
const CHANNEL_ROUTES = [
  ['GET', '/sse/x'],
  ['GET', '/lp/x?since=0'],
  ['GET', '/poll/x'],
  ['GET', '/pub/x'],
  ['POST', '/pub/x', '{"n":1}'],
];

function assertEchoed(r, origin, what) {
  assert.equal(r.headers['access-control-allow-origin'], origin, `${what}: ${JSON.stringify(r.headers)}`);
  assert.equal(r.headers['access-control-allow-credentials'], 'true', what);
  assert.match(r.headers.vary || '', /\bOrigin\b/i, what);
}

function assertNoCors(r, what) {
  assert.deepEqual(corsOf(r.headers), [], `${what}: ${JSON.stringify(r.headers)}`);
}

// A socket.io-client connection from node with an Origin header: 'connect' or the connect_error.
function sioTry(h, origin, transports) {
  return new Promise((resolve) => {
    const s = ioClient(h.url, { transports, reconnection: false, timeout: 5000, extraHeaders: origin ? { Origin: origin } : {} });
    s.on('connect', () => { s.close(); resolve('connect'); });
    s.on('connect_error', (e) => { s.close(); resolve(`connect_error: ${e.message}`); });
  });
}

describe('--allowed-origins http://good.test', T, () => {
  let h;
  before(async () => {
    h = await startHerald(['--allowed-origins', GOOD, '--quiet']);
    await publish(h.url, 'x', { n: 0 });
  });
  after(async () => { await stopChecked(h); });

  for (const route of WS_ROUTES) {
    test(`WebSocket ${route}: another origin gets 403 and no upgrade`, async () => {
      const r = await wsTry(h, route, EVIL);
      assert.equal(r.status, 403, r.text);
      assert.deepEqual(r.json, route.startsWith('/socket.io/') ? FORBIDDEN : NOT_ALLOWED);
      assertNoCors(r, route);
    });
    test(`WebSocket ${route}: the listed origin, no Origin, and herald's own origin are upgraded`, async () => {
      assert.equal((await wsTry(h, route, GOOD)).status, 101);
      assert.equal((await wsTry(h, route, undefined)).status, 101);
      assert.equal((await wsTry(h, route, own(h))).status, 101);
      // the list is matched as origins, not as strings: case and the default port do not matter
      assert.equal((await wsTry(h, route, 'HTTP://Good.Test:80')).status, 101);
      // and a look-alike is not the origin
      for (const o of ['http://good.test:8080', 'https://good.test', 'http://good.test.evil.test', 'null', 'http://good.test/'])
        assert.equal((await wsTry(h, route, o)).status, 403, o);
    });
  }

  test('Engine.IO polling handshake: another origin gets 403 Forbidden and no session', async () => {
    const r = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: EVIL } });
    assert.equal(r.status, 403, r.text);
    assert.deepEqual(r.json, FORBIDDEN);
    assertNoCors(r, 'handshake');
    const pre = await request(h.url, 'OPTIONS', '/socket.io/?EIO=4&transport=polling', {
      headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 403, pre.text);
    assert.deepEqual(pre.json, FORBIDDEN);
    assertNoCors(pre, 'preflight');
  });

  test('Engine.IO polling: the listed origin gets its session, echoed; its session refuses another origin', async () => {
    const r = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: GOOD } });
    assert.equal(r.status, 200, r.text);
    assertEchoed(r, GOOD, 'handshake');
    const sid = JSON.parse(r.text.slice(1)).sid;
    const none = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', {});
    assert.equal(none.status, 200, none.text);
    assertNoCors(none, 'no Origin');
    // a page elsewhere that learnt the sid cannot read or write the session
    const get = await request(h.url, 'GET', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { headers: { Origin: EVIL } });
    assert.equal(get.status, 403, get.text);
    assert.deepEqual(get.json, FORBIDDEN);
    const post = await request(h.url, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { headers: { Origin: EVIL }, body: '40' });
    assert.equal(post.status, 403, post.text);
    // the session is untouched: its owner goes on
    const ok = await request(h.url, 'POST', `/socket.io/?EIO=4&transport=polling&sid=${sid}`, { headers: { Origin: GOOD }, body: '40' });
    assert.equal(ok.status, 200, ok.text);
    assertEchoed(ok, GOOD, 'POST');
  });

  test('socket.io-client (node) with Origin evil gets connect_error on both transports; good connects', async () => {
    for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
      assert.match(await sioTry(h, EVIL, transports), /^connect_error/, transports.join('+'));
      assert.equal(await sioTry(h, GOOD, transports), 'connect', transports.join('+'));
      assert.equal(await sioTry(h, undefined, transports), 'connect', transports.join('+'));
    }
  });

  for (const [method, route, body] of CHANNEL_ROUTES) {
    test(`${method} ${route}: answered for every origin, CORS only for the listed one`, async () => {
      const hdr = body ? { 'Content-Type': 'application/json' } : {};
      const bad = await head(h, method, route, { ...hdr, Origin: EVIL }, body);
      assert.equal(bad.status, 200);
      assertNoCors(bad, `${route} evil`);
      const good = await head(h, method, route, { ...hdr, Origin: GOOD }, body);
      assert.equal(good.status, 200);
      assertEchoed(good, GOOD, `${route} good`);
      const self = await head(h, method, route, { ...hdr, Origin: own(h) }, body);
      assertEchoed(self, own(h), `${route} own origin`);
      const none = await head(h, method, route, hdr, body);
      assert.equal(none.status, 200);
      assertNoCors(none, `${route} no Origin`);
    });
  }

  for (const route of ['/pub/x', '/sse/x', '/poll/x', '/lp/x']) {
    test(`OPTIONS ${route}: a preflight from another origin gets 403 JSON, the listed one 204`, async () => {
      const pre = { 'Access-Control-Request-Method': route === '/pub/x' ? 'POST' : 'GET' };
      const bad = await request(h.url, 'OPTIONS', route, { headers: { ...pre, Origin: EVIL } });
      assert.equal(bad.status, 403, bad.text);
      assert.deepEqual(bad.json, NOT_ALLOWED);
      assertNoCors(bad, route);
      const good = await request(h.url, 'OPTIONS', route, { headers: { ...pre, Origin: GOOD } });
      assert.equal(good.status, 204, good.text);
      assertEchoed(good, GOOD, route);
      assert.match(good.headers['access-control-allow-methods'], route === '/pub/x' ? /POST/ : /GET/);
    });
  }

  test('two Origin headers are refused', async () => {
    const r = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: [GOOD, EVIL] } });
    assert.equal(r.status, 403, r.text);
  });
});

describe('no flag (no access control configured): any origin, the demo as before', T, () => {
  let h;
  before(async () => {
    h = await startHerald(['--quiet']);
    await publish(h.url, 'x', { n: 0 });
  });
  after(async () => { await stopChecked(h); });

  test('every WebSocket route takes any origin', async () => {
    for (const route of WS_ROUTES)
      for (const o of [EVIL, GOOD, 'null', undefined]) assert.equal((await wsTry(h, route, o)).status, 101, `${route} ${o}`);
  });

  test('Engine.IO answers Access-Control-Allow-Origin: *', async () => {
    const r = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: EVIL } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(await sioTry(h, EVIL, ['polling', 'websocket']), 'connect');
  });

  test('every channel route and preflight answers Access-Control-Allow-Origin: *', async () => {
    for (const [method, route, body] of CHANNEL_ROUTES) {
      const r = await head(h, method, route, { Origin: EVIL, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body);
      assert.equal(r.status, 200, route);
      assert.equal(r.headers['access-control-allow-origin'], '*', route);
    }
    const pre = await request(h.url, 'OPTIONS', '/pub/x', { headers: { Origin: EVIL, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], '*');
  });
});

describe('--allowed-origins none: herald\'s own origin and requests without Origin only', T, () => {
  let h;
  before(async () => {
    h = await startHerald(['--allowed-origins', 'none', '--quiet']);
    await publish(h.url, 'x', { n: 0 });
  });
  after(async () => { await stopChecked(h); });

  test('WebSockets', async () => {
    for (const route of WS_ROUTES) {
      assert.equal((await wsTry(h, route, GOOD)).status, 403, route);
      assert.equal((await wsTry(h, route, 'null')).status, 403, route);
      assert.equal((await wsTry(h, route, own(h))).status, 101, route);
      assert.equal((await wsTry(h, route, undefined)).status, 101, route);
    }
  });

  test('Engine.IO and CORS', async () => {
    const bad = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: GOOD } });
    assert.equal(bad.status, 403);
    assert.deepEqual(bad.json, FORBIDDEN);
    const self = await request(h.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: own(h) } });
    assert.equal(self.status, 200);
    const poll = await head(h, 'GET', '/poll/x', { Origin: GOOD });
    assert.equal(poll.status, 200);
    assertNoCors(poll, '/poll');
    const pre = await request(h.url, 'OPTIONS', '/pub/x', { headers: { Origin: GOOD, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 403);
  });
});

describe('--cors-origin, the old name', T, () => {
  test('is --allowed-origins; both at once is an error', async () => {
    const h = await startHerald(['--cors-origin', GOOD, '--quiet']);
    try {
      assert.equal((await wsTry(h, '/ws/x', EVIL)).status, 403);
      assert.equal((await wsTry(h, '/ws/x', GOOD)).status, 101);
    } finally {
      await stopChecked(h);
    }
    await assert.rejects(startHerald(['--cors-origin', GOOD, '--allowed-origins', GOOD]),
      /--cors-origin is the old name of --allowed-origins: give one/);
    await assert.rejects(startHerald(['--allowed-origins', 'good.test']), /--allowed-origins wants/);
  });
});

// A page on a second loopback port: another origin than herald's.
async function servePage() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>page</body></html>');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

describe('Chromium, a page from another origin', { skip: skipWithoutChromium, timeout: 90000 }, () => {
  let page, browser;
  before(async () => {
    page = await servePage();
    browser = await launchChromium();
  });
  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (page) await page.close();
  });

  // What the page gets from herald: its WebSocket to /ws/x opens or fails, its fetch of /poll/x
  // (with credentials) is read or blocked.
  async function fromPage(h) {
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      await p.goto(page.origin + '/');
      return await p.evaluate(async (base) => {
        const ws = await new Promise((resolve) => {
          const s = new WebSocket(base.replace('http:', 'ws:') + '/ws/x?since=0');
          s.onmessage = (e) => { resolve('message ' + e.data); s.close(); };
          s.onerror = () => resolve('error');
        });
        let poll;
        try {
          const r = await fetch(base + '/poll/x', { credentials: 'include' });
          poll = 'read ' + (await r.json()).messages.length;
        } catch (e) {
          poll = 'blocked ' + e.name;
        }
        let sse;
        try {
          sse = await new Promise((resolve) => {
            const es = new EventSource(base + '/sse/x?lastEventId=0', { withCredentials: true });
            es.onmessage = (e) => { resolve('message ' + e.data); es.close(); };
            es.onerror = () => { resolve('error'); es.close(); };
          });
        } catch (e) {
          sse = 'thrown ' + e.name;
        }
        return { ws, poll, sse };
      }, h.url);
    } finally {
      await ctx.close();
    }
  }

  test('allowed: its WebSocket, fetch and EventSource work', async () => {
    const h = await startHerald(['--allowed-origins', `${GOOD},${page.origin}`, '--quiet']);
    try {
      await publish(h.url, 'x', { n: 1 });
      const r = await fromPage(h);
      assert.match(r.ws, /^message .*"n":1/, JSON.stringify(r));
      assert.equal(r.poll, 'read 1', JSON.stringify(r));
      assert.match(r.sse, /^message .*"n":1/, JSON.stringify(r));
    } finally {
      await stopChecked(h);
    }
  });

  test('not listed: the WebSocket fails, fetch and EventSource are blocked by CORS', async () => {
    const h = await startHerald(['--allowed-origins', GOOD, '--quiet']);
    try {
      await publish(h.url, 'x', { n: 1 });
      const r = await fromPage(h);
      assert.equal(r.ws, 'error', JSON.stringify(r));
      assert.equal(r.poll, 'blocked TypeError', JSON.stringify(r));
      assert.equal(r.sse, 'error', JSON.stringify(r));
    } finally {
      await stopChecked(h);
    }
  });
});
