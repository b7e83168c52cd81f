// Chromium's own EventSource (headless, through playwright-core) against herald's
// GET /sse/{channel}: what a browser really does with herald's event streams.
//
//  - live messages arrive with lastEventId equal to the cursor the publisher got back, and
//    values whose JSON has line breaks (pretty-printed, CRLF, text bodies with newlines, lines
//    that look like SSE fields) arrive intact as one event each;
//  - when herald goes away (stopped, then started again on the same port with the same --data:
//    the SQLite store keeps history and ids), the EventSource reconnects by itself after herald's
//    retry: 2000, sends Last-Event-ID, and gets every message published while it was away once,
//    in order;
//  - when the messages after its Last-Event-ID were trimmed (--history 10) it first gets the
//    named event "gap" ({"reason":"trimmed","first":N}), then the kept messages; after a restart
//    of the memory store (a new epoch) the gap's reason is "epoch".
//
// The page is a blank file served by herald from a temporary --public directory, so the
// EventSource is same-origin. Needs /usr/bin/chromium; the file is skipped without it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHerald, freshDataDir, freePort } from './lib/herald.mjs';
import { stopServer } from './lib/sio-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const T = { timeout: 120000 };
const WAIT = 20000; // generous: CI also runs this under ASan
const skip = skipWithoutChromium;

// A port that was free a moment ago (herald must come back on the same one).

async function publish(url, channel, body, type = 'application/json') {
  const r = await fetch(`${url}/pub/${channel}`, { method: 'POST', headers: { 'Content-Type': type }, body });
  const text = await r.text();
  assert.equal(r.status, 200, `publish to ${channel}: ${r.status} ${text}`);
  return JSON.parse(text);
}

async function channelInfo(url, channel) {
  const r = await fetch(`${url}/pub/${channel}`);
  return r.json();
}

describe('Chromium\'s EventSource against /sse/{channel}', { skip }, () => {
  let browser, pub;
  const servers = [];

  before(async () => {
    pub = mkdtempSync(path.join(os.tmpdir(), 'herald-sse-page-'));
    writeFileSync(path.join(pub, 'index.html'),
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">' +
      '<title>sse</title></head><body></body></html>\n');
    browser = await launchChromium();
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    for (const s of servers) await s.stop().catch(() => {});
    if (pub) rmSync(pub, { recursive: true, force: true });
  });

  async function start(args) {
    const s = await startHerald(['--public', pub, ...args]);
    servers.push(s);
    return s;
  }

  // A page on herald's origin whose EventSource on /sse/{channel} records, in order, into
  // window.sse.events: { type: 'message' | 'gap', id: lastEventId, data }. Also returns the
  // Last-Event-ID header of every request the browser made for the stream.
  async function openStream(url, channel) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    const pageErrors = [];
    const requests = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // allHeaders(): the headers as sent (headers() leaves out the ones Blink adds, as Last-Event-ID)
    page.on('request', (r) => {
      if (!r.url().includes('/sse/')) return;
      const entry = { url: r.url(), lastEventId: undefined };
      requests.push(entry);
      r.allHeaders().then((h) => { entry.lastEventId = h['last-event-id'] ?? null; }, () => { entry.lastEventId = 'unknown'; });
    });
    await page.goto(`${url}/`);
    await page.evaluate((ch) => {
      const sse = window.sse = { events: [], opens: 0, errors: [], openAt: [], errorAt: [] };
      const es = sse.es = new EventSource(`/sse/${ch}`);
      es.onopen = () => { sse.opens++; sse.openAt.push(performance.now()); };
      es.onmessage = (e) => sse.events.push({ type: 'message', id: e.lastEventId, data: e.data });
      es.addEventListener('gap', (e) => sse.events.push({ type: 'gap', id: e.lastEventId, data: e.data }));
      es.onerror = () => { sse.errors.push(es.readyState); sse.errorAt.push(performance.now()); };
    }, channel);
    await page.waitForFunction(() => window.sse.opens === 1, null, { timeout: WAIT });
    return { ctx, page, pageErrors, requests };
  }

  const events = (page) => page.evaluate(() => window.sse.events.slice());
  const waitEvents = (page, n, timeout = WAIT) =>
    page.waitForFunction((k) => window.sse.events.length >= k, n, { timeout });

  test('live messages: lastEventId is the cursor, values with line breaks arrive intact', T, async () => {
    const srv = await start([]);
    const { ctx, page, pageErrors } = await openStream(srv.url, 'room1');
    // [body, Content-Type, the value the event's data must parse to]
    const bodies = [
      ['{"unread": 3}', 'application/json'],
      ['{\n  "subject": "two\\nlines",\n  "crlf": "a\\r\\nb",\n  "empty": [\n\n  ],\n  "n": 1\n}', 'application/json'],
      ['{\r\n  "k": "v",\r\n\r\n  "x": [1,\r2]\r\n}', 'application/json'],
      ['{"t": 1}\n', 'application/json'],
      ['"data: forged\\n\\nid: 9\\nevent: gap"', 'application/json'],
      ['line one\nline two\r\nline three\rfour\n\nevent: gap\ndata: forged\n', 'text/plain'],
      ['你好 👋 \u2028 \u2029 end', 'text/plain; charset=utf-8'],
    ];
    const acks = [];
    for (const [body, type] of bodies) acks.push(await publish(srv.url, 'room1', body, type));
    await waitEvents(page, bodies.length);
    await page.waitForTimeout(300); // nothing more (a forged field must not split an event)
    const got = await events(page);
    assert.equal(got.length, bodies.length, JSON.stringify(got));
    got.forEach((e, i) => {
      const [body, type] = bodies[i];
      assert.equal(e.type, 'message', `event ${i}`);
      assert.equal(e.id, acks[i].cursor, `event ${i}: lastEventId is the publish's cursor`);
      const want = type.startsWith('text/plain') ? body : JSON.parse(body);
      assert.deepEqual(JSON.parse(e.data), want, `event ${i} value`);
    });
    // LF-only JSON keeps its exact text (EventSource joins data: lines with \n)
    assert.equal(got[1].data, bodies[1][0]);
    assert.deepEqual(pageErrors, []);
    await ctx.close();
    await stopServer(srv);
  });

  // Keep the browser away while work() runs: stop herald (the browser's EventSource starts
  // retrying), start a second herald on another port with the same --data, run work() against it,
  // stop it, and start herald again on the browser's port. The browser cannot reach herald while
  // work() publishes, however slow the build (ASan) makes it.
  async function whileAway(srv, page, port, flags, work) {
    await stopServer(srv);
    await page.waitForFunction(() => window.sse.errors.length >= 1, null, { timeout: WAIT });
    assert.equal(await page.evaluate(() => window.sse.es.readyState), 0, 'CONNECTING: the EventSource retries by itself');
    const side = await start(flags);
    const result = await work(side);
    await stopServer(side);
    const back = await start(['--port', String(port), ...flags]);
    assert.equal(back.port, port);
    return { srv: back, result };
  }

  // n publishes to channel, 25 at a time; returns the answers in id order, each with its n
  async function publishMany(url, channel, n, value) {
    const out = [];
    for (let i = 0; i < n; i += 25) {
      const batch = [];
      for (let j = i; j < Math.min(i + 25, n); j++) batch.push(publish(url, channel, JSON.stringify(value(j))).then((a) => ({ ...a, n: j })));
      out.push(...await Promise.all(batch));
    }
    return out.sort((x, y) => x.id - y.id);
  }

  function assertOnceInOrder(got, acks) {
    const ids = got.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no duplicates');
    assert.equal(got.length, acks.length, `${got.length} events for ${acks.length} messages`);
    assert.deepEqual(ids, acks.map((a) => a.cursor), 'every message once, in order');
  }

  test('herald goes away and comes back on the same port: the browser reconnects with Last-Event-ID and gets the 200 messages published meanwhile, once, in order', T, async () => {
    const port = await freePort();
    const flags = ['--data', freshDataDir()];
    let srv = await start(['--port', String(port), ...flags]);
    const { ctx, page, pageErrors, requests } = await openStream(srv.url, 'room2');
    const before = [];
    for (let i = 0; i < 3; i++) before.push(await publish(srv.url, 'room2', JSON.stringify({ n: i, phase: 'before' })));
    await waitEvents(page, 3);
    const last = before.at(-1).cursor;
    assert.equal((await events(page)).at(-1).id, last);

    let missed;
    ({ srv, result: missed } = await whileAway(srv, page, port, flags,
      (side) => publishMany(side.url, 'room2', 200, (n) => ({ n, phase: 'away' }))));
    assert.deepEqual(missed.map((a) => a.id), Array.from({ length: 200 }, (_, i) => before.at(-1).id + 1 + i),
      'ids go on across restarts (the SQLite store)');

    await waitEvents(page, 203, 30000);
    await page.waitForTimeout(500); // and nothing twice
    const got = await events(page);
    assertOnceInOrder(got, [...before, ...missed]);
    got.slice(3).forEach((e, i) => assert.deepEqual(JSON.parse(e.data), { n: missed[i].n, phase: 'away' }));
    assert.equal(await page.evaluate(() => window.sse.opens), 2, 'one reconnect');
    // the retry that got through named where it stopped (the headers of a refused attempt
    // are not reported to playwright: null there)
    assert.ok(requests.length >= 2 && requests.at(-1).lastEventId === last &&
      requests.slice(1).every((r) => r.lastEventId === last || r.lastEventId === null),
      `retries send Last-Event-ID ${last}: ${JSON.stringify(requests)}`);
    assert.equal(requests[0].lastEventId, null, 'the first request had none');

    // and it is live again
    const after = await publish(srv.url, 'room2', '{"phase": "after"}');
    await waitEvents(page, 204);
    assert.equal((await events(page)).at(-1).id, after.cursor);
    assert.deepEqual(pageErrors, []);
    await ctx.close();
    await stopServer(srv);
  });

  test('herald restarted at once amid a burst of publishes: the reconnect (after the shutdown\'s retry: of 500-1500 ms) joins history and live without loss or duplicates', T, async (t) => {
    const port = await freePort();
    const args = ['--port', String(port), '--data', freshDataDir()];
    let srv = await start(args);
    const { ctx, page, pageErrors, requests } = await openStream(srv.url, 'room5');
    const acks = [await publish(srv.url, 'room5', '{"n": -1}')];
    await waitEvents(page, 1);

    await stopServer(srv);
    await page.waitForFunction(() => window.sse.errors.length >= 1, null, { timeout: WAIT });
    srv = await start(args);
    // publish in small concurrent batches until the browser is back, then some more
    const t0 = Date.now();
    let n = 0;
    let afterBack = -1;
    while (afterBack < 5 && Date.now() - t0 < 30000) {
      acks.push(...await publishMany(srv.url, 'room5', 10, (j) => ({ n: n + j })));
      n += 10;
      if (afterBack >= 0) afterBack++;
      else if (await page.evaluate(() => window.sse.opens === 2)) afterBack = 0;
    }
    assert.ok(afterBack >= 5, 'the browser came back within 30 s');
    acks.sort((x, y) => x.id - y.id);
    await waitEvents(page, acks.length, 30000);
    await page.waitForTimeout(500);
    const got = await events(page);
    assertOnceInOrder(got, acks);
    const { errorAt, openAt } = await page.evaluate(() => ({ errorAt: window.sse.errorAt[0], openAt: window.sse.openAt[1] }));
    t.diagnostic(`${n} published after the restart; the browser reconnected ${Math.round(openAt - errorAt)} ms after ` +
      `the drop (herald's retry: at shutdown, 500-1500 ms) with Last-Event-ID ${requests.at(-1).lastEventId}`);
    // SIGTERM ends the stream after a retry: of 500-1500 ms (README "Stopping and restarting"),
    // which replaces the 2000 of the stream's start
    const waited = openAt - errorAt;
    assert.ok(waited >= 450, `the browser waited for the shutdown's retry: (${Math.round(waited)} ms)`);
    assert.equal(requests.at(-1).lastEventId, acks[0].cursor);
    assert.deepEqual(pageErrors, []);
    await ctx.close();
    await stopServer(srv);
  });

  test('resume id trimmed (--history 10): the named "gap" event (trimmed) comes before the kept messages', T, async () => {
    const port = await freePort();
    const flags = ['--data', freshDataDir(), '--history', '10'];
    let srv = await start(['--port', String(port), ...flags]);
    const { ctx, page, pageErrors, requests } = await openStream(srv.url, 'room3');
    const before = [await publish(srv.url, 'room3', '{"n": -2}'), await publish(srv.url, 'room3', '{"n": -1}')];
    await waitEvents(page, 2);

    let away;
    ({ srv, result: away } = await whileAway(srv, page, port, flags, async (side) => {
      const acks = [];
      for (let i = 0; i < 50; i++) acks.push(await publish(side.url, 'room3', JSON.stringify({ n: i })));
      return acks;
    }));
    const info = await channelInfo(srv.url, 'room3');
    assert.equal(info.first_id, away.at(-1).id - 9, 'history keeps the last 10');

    await waitEvents(page, 2 + 1 + 10, 30000);
    await page.waitForTimeout(500);
    const got = await events(page);
    assert.deepEqual(got.slice(0, 2).map((e) => e.id), before.map((a) => a.cursor));
    assert.equal(got.length, 13, JSON.stringify(got.map((e) => e.type + ' ' + e.id)));
    assert.equal(got[2].type, 'gap', 'the gap comes first');
    assert.deepEqual(JSON.parse(got[2].data), { reason: 'trimmed', first: info.first_id });
    assert.deepEqual(got.slice(3).map((e) => e.type), Array(10).fill('message'));
    assert.deepEqual(got.slice(3).map((e) => e.id), away.slice(-10).map((a) => a.cursor), 'the kept 10, in order');
    assert.deepEqual(got.slice(3).map((e) => JSON.parse(e.data).n), [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
    assert.equal(requests.at(-1).lastEventId, before[1].cursor, `resumed from ${before[1].cursor}: ${JSON.stringify(requests)}`);
    assert.deepEqual(pageErrors, []);
    await ctx.close();
    await stopServer(srv);
  });

  test('memory store restarted (a new epoch): the gap\'s reason is "epoch", then the new messages', T, async () => {
    const port = await freePort();
    const args = ['--port', String(port), '--store', 'memory'];
    let srv = await start(args);
    const { ctx, page, pageErrors } = await openStream(srv.url, 'room4');
    await publish(srv.url, 'room4', '{"old": true}');
    await waitEvents(page, 1);
    const oldEpoch = (await channelInfo(srv.url, 'room4')).epoch;

    await stopServer(srv);
    await page.waitForFunction(() => window.sse.errors.length >= 1, null, { timeout: WAIT });
    srv = await start(args);
    const fresh = [];
    for (let i = 0; i < 5; i++) fresh.push(await publish(srv.url, 'room4', JSON.stringify({ n: i })));
    assert.notEqual((await channelInfo(srv.url, 'room4')).epoch, oldEpoch, 'a new epoch');

    await waitEvents(page, 1 + 1 + 5, 30000);
    await page.waitForTimeout(500);
    const got = await events(page);
    assert.equal(got.length, 7, JSON.stringify(got.map((e) => e.type + ' ' + e.id)));
    assert.equal(got[1].type, 'gap');
    assert.equal(JSON.parse(got[1].data).reason, 'epoch');
    assert.deepEqual(got.slice(2).map((e) => e.id), fresh.map((a) => a.cursor));
    assert.deepEqual(pageErrors, []);
    await ctx.close();
    await stopServer(srv);
  });
});
