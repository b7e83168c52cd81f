// The unread-mail demo page (public/mail.html) in headless Chromium against the real herald
// serving public/: an inbox badge bound to the per-user channel "user:{name}".
//
// For each of the five transports (SSE, WebSocket, long-polling, short polling, Socket.IO) the
// page opened as /mail.html?user=alice&transport=X connects, shows the curl command for its own
// origin, and when that very command is run (the real curl) with {"unread": 3} and then
// {"unread": 7} the badge shows 3, then 7, promptly; a publish to user:bob and messages that are
// not counts never show on alice's badge; a page opened afterwards shows the current value at
// once. Also: the user and transport are switched with the keyboard and remembered; pages on all
// five transports come back by themselves when herald restarts and show what was published while
// it was down; and the page fits a phone's width. Any page error, console error or HTTP error answer fails the test.
// Screenshots go to <repo>/test-output/mail-*.png.
//
// Needs the Debian package chromium (/usr/bin/chromium); the file is skipped without it. The
// Socket.IO case needs public/vendor/socket.io.min.js (scripts/setup.sh build puts it there).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startHerald, repoRoot, freshDataDir, freePort } from './lib/herald.mjs';
import { stopServer } from './lib/sio-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const outDir = path.join(repoRoot, 'test-output');
const T = { timeout: 90000 };
const WAIT = 20000;          // connecting (generous: CI also runs this under ASan)
const PUSH_MS = 5000;        // a pushed update shows within this
const POLL_MS = 2000 + 5000; // short polling asks every 2 s
const QUIET_MS = 1500;       // how long a publish that must not show is watched for (+ a poll round)

const TRANSPORTS = ['sse', 'websocket', 'longpoll', 'poll', 'socketio'];
const skip = skipWithoutChromium;

// Split a shell command made of plain words and '...' strings (what the page shows).
function shellWords(cmd) {
  const words = [];
  let cur = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i];
    if (/\s/.test(c)) { if (cur !== null) words.push(cur); cur = null; continue; }
    if (c === "'") {
      const j = cmd.indexOf("'", i + 1);
      assert.ok(j > i, `unterminated quote in ${cmd}`);
      cur = (cur || '') + cmd.slice(i + 1, j);
      i = j;
      continue;
    }
    assert.ok(!'"\\$`;&|<>()*?[]{}!#~'.includes(c), `unquoted shell character ${c} in ${cmd}`);
    cur = (cur || '') + c;
  }
  if (cur !== null) words.push(cur);
  return words;
}

// A port that was free a moment ago (herald must come back on the same one).

function run(file, args) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 15000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

describe('mail page: the unread badge over every transport', { skip }, () => {
  let srv, browser;
  const contexts = [];

  before(async () => {
    mkdirSync(outDir, { recursive: true });
    srv = await startHerald();
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close().catch(() => {});
    await stopServer(srv);
  });

  // A page in a new browser context (its own localStorage); errors collect into errors[].
  // window.__badges records every text the badge ever showed, from before the page's script ran.
  async function openPage(query, { errors, viewport = { width: 1100, height: 760 }, context, base = srv.url, allow = null } = {}) {
    const ctx = context || await browser.newContext({ viewport });
    if (!context) contexts.push(ctx);
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error' && !(allow && allow.test(m.text()))) errors.push(`console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`); });
    page.on('dialog', (d) => { errors.push(`unexpected dialog ${d.message()}`); d.dismiss().catch(() => {}); });
    await page.addInitScript(() => {
      window.__badges = [];
      new MutationObserver(() => {
        const b = document.getElementById('badge');
        const t = b && b.textContent;
        if (t && t !== window.__badges.at(-1)) window.__badges.push(t);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await page.goto(`${base}/mail.html${query}`);
    return page;
  }

  const connected = (page) => page.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: WAIT });
  const badgeIs = (page, text, timeout) =>
    page.waitForFunction((t) => document.getElementById('badge').textContent === t, text, { timeout });
  const badge = (page) => page.locator('#badge').textContent();
  const seen = (page) => page.evaluate(() => window.__badges.slice());

  // Run the command the page shows, with another JSON body when given.
  async function curlAsShown(page, body) {
    const words = shellWords(await page.locator('#curl').textContent());
    assert.equal(words[0], 'curl');
    const d = words.indexOf('-d');
    assert.ok(d > 0, 'the command has -d');
    if (body !== undefined) words[d + 1] = body;
    const out = JSON.parse(await run('curl', words.slice(1)));
    assert.ok(out.id > 0 && typeof out.cursor === 'string', `publish answered ${JSON.stringify(out)}`);
    return out;
  }

  async function publish(channel, body, type = 'application/json') {
    const r = await fetch(`${srv.url}/pub/${channel}`, { method: 'POST', headers: { 'Content-Type': type }, body });
    const text = await r.text();
    assert.equal(r.status, 200, `publish to ${channel}: ${r.status} ${text}`);
    return JSON.parse(text);
  }

  for (const transport of TRANSPORTS) {
    test(`${transport}: curl {"unread": 3} then 7 updates alice's badge; bob's channel and non-counts do not`, T, async (t) => {
      if (transport === 'socketio') {
        assert.ok(existsSync(path.join(repoRoot, 'public/vendor/socket.io.min.js')),
          'public/vendor/socket.io.min.js is missing: run scripts/setup.sh build');
      }
      const limit = transport === 'poll' ? POLL_MS : PUSH_MS;
      const errors = [];
      const page = await openPage(`?user=alice&transport=${transport}`, { errors });
      await connected(page);
      assert.equal(await page.evaluate(() => document.body.dataset.transport), transport);
      assert.equal(await page.locator(`#t-${transport}`).isChecked(), true, 'the selector shows the transport');
      assert.equal(await page.locator('#curl').textContent(),
        `curl -H 'Content-Type: application/json' -d '{"unread": 3}' ${srv.url}/pub/user:alice`);
      assert.equal(await page.locator('#user').inputValue(), 'alice');
      await page.waitForFunction(() => document.getElementById('badge').dataset.unread !== '', null, { timeout: WAIT });
      const before = await badge(page);
      assert.notEqual(before, '3', 'the badge does not show 3 before the publish');

      const times = [];
      for (const [body, text] of [[undefined, '3'], ['{"unread": 7}', '7']]) {
        const t0 = Date.now();
        await curlAsShown(page, body);
        const t1 = Date.now();
        await badgeIs(page, text, limit);
        times.push(`${text}: curl ${t1 - t0} ms + ${Date.now() - t1} ms`);
      }
      t.diagnostic(`${transport}: badge updated (curl run time + after curl returned) ${times.join(', ')}`);
      assert.equal(await page.locator('#summary').textContent(), 'You have 7 unread messages.');
      assert.match(await page.title(), /^\(7\) Inbox · alice/);

      // not alice's, or not a count: the badge stays at 7
      await publish('user:bob', '{"unread": 99}');
      await publish('user:alice', 'hello alice', 'text/plain');
      await publish('user:alice', '{"subject": "no count here", "unread": "many"}');
      await publish('user:alice', '[1, 2, 3]');
      await publish('chat', '{"message":"hi","userId":"ops","type":"message"}');
      // a count in another channel the Socket.IO socket is in (room "chat") is not alice's
      await publish('chat', '{"unread": 98}');
      await page.waitForTimeout(transport === 'poll' ? QUIET_MS + 2000 : QUIET_MS);
      assert.equal(await badge(page), '7');
      // then a real count still comes through
      await curlAsShown(page, '{"unread": 8}');
      await badgeIs(page, '8', limit);
      const shown = await seen(page);
      assert.ok(!shown.includes('99'), `bob's count never showed on alice's page: ${shown}`);
      assert.ok(!shown.includes('98'), `a count published to "chat" never showed on alice's page: ${shown}`);
      assert.deepEqual(shown.slice(-3), ['3', '7', '8'], `badge history ${shown}`);
      await page.locator('#log li').first().waitFor();
      assert.match(await page.locator('#log li span').first().textContent(), /^8 unread/);
      await page.screenshot({ path: path.join(outDir, `mail-${transport}.png`) });

      // a page opened now shows the current value at once, then follows too
      const late = await openPage(`?user=alice&transport=${transport}`, { errors });
      await badgeIs(late, '8', WAIT);
      assert.deepEqual(await seen(late), ['–', '8'], 'the first value the new page shows is the current one');
      await connected(late);
      await curlAsShown(late, '{"unread": 0}');
      await Promise.all([badgeIs(page, '0', limit), badgeIs(late, '0', limit)]);
      assert.equal(await late.locator('#summary').textContent(), 'No unread mail. You are all caught up.');
      assert.equal(await late.title(), 'Inbox · alice · herald mail');
      assert.deepEqual(errors, []);
      await page.close();
      await late.close();
    });
  }

  test('bob\'s page follows user:bob only; the keyboard switches user and transport, and both are remembered', T, async () => {
    const errors = [];
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    contexts.push(ctx);
    const page = await openPage('', { errors, context: ctx });
    await connected(page);
    assert.equal(await page.locator('#user').inputValue(), 'alice', 'default user');
    assert.equal(await page.evaluate(() => document.body.dataset.transport), 'sse', 'default transport');

    // to the user box by keyboard, type bob, Enter
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'user');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type('bob');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('channel').textContent === 'user:bob');
    assert.equal(await page.locator('#curl').textContent(),
      `curl -H 'Content-Type: application/json' -d '{"unread": 3}' ${srv.url}/pub/user:bob`);
    assert.match(page.url(), /[?&]user=bob(&|$)/);
    await connected(page);
    await badgeIs(page, '99', WAIT); // bob's current value from the test above
    await publish('user:alice', '{"unread": 5}');
    await publish('user:bob', '{"unread": 12}');
    await badgeIs(page, '12', PUSH_MS);
    assert.ok(!(await seen(page)).includes('5'), 'alice\'s count never showed on bob\'s page');

    // a bad name is refused with a hint, and nothing changes
    await page.locator('#user').fill('bob smith');
    await page.keyboard.press('Enter');
    await page.locator('#user-hint').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#user').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#channel').textContent(), 'user:bob');
    await page.locator('#user').fill('bob');

    // the transport radios: focus the checked one, arrow keys move the choice
    await page.locator('#t-sse').focus();
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction(() => document.body.dataset.transport === 'websocket');
    await connected(page);
    await publish('user:bob', '{"unread": 13}');
    await badgeIs(page, '13', PUSH_MS);

    // remembered: a page without parameters in the same browser opens bob over WebSocket
    const again = await openPage('', { errors, context: ctx });
    await connected(again);
    assert.equal(await again.locator('#user').inputValue(), 'bob');
    assert.equal(await again.evaluate(() => document.body.dataset.transport), 'websocket');
    await badgeIs(again, '13', WAIT);
    // quick switches through the others (each connection stopped cleanly), ending on Socket.IO
    await again.locator('#t-websocket').focus();
    for (let i = 0; i < 3; i++) await again.keyboard.press('ArrowRight');
    await again.waitForFunction(() => document.body.dataset.transport === 'socketio');
    await connected(again);
    await publish('user:bob', '{"unread": 14}');
    await Promise.all([badgeIs(again, '14', PUSH_MS), badgeIs(page, '14', PUSH_MS)]);
    // ?user= wins over what was remembered
    const alice = await openPage('?user=alice', { errors, context: ctx });
    await badgeIs(alice, '5', WAIT);
    assert.deepEqual(errors, []);
  });

  test('every transport comes back after herald restarts and shows what was published meanwhile', T, async (t) => {
    const port = await freePort();
    const flags = ['--data', freshDataDir()];
    let h = await startHerald(['--port', String(port), ...flags]);
    const base = h.url;
    const errors = [];
    // while herald is down the browser logs its failed connection attempts: those are expected
    const allow = /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING|WebSocket connection to .* failed/;
    const pages = {};
    try {
      for (const tr of TRANSPORTS) pages[tr] = await openPage(`?user=carol&transport=${tr}`, { errors, base, allow });
      await Promise.all(TRANSPORTS.map((tr) => connected(pages[tr])));
      const post = (url, body) => fetch(`${url}/pub/user:carol`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }).then((r) => r.json());
      await post(base, '{"unread": 20}');
      await Promise.all(TRANSPORTS.map((tr) => badgeIs(pages[tr], '20', POLL_MS)));

      // down; meanwhile a herald on another port (same --data) takes a publish; then back
      await stopServer(h);
      const down = Date.now();
      await Promise.all(TRANSPORTS.map((tr) => pages[tr].waitForFunction(() => document.body.dataset.state !== 'connected', null, { timeout: WAIT })));
      const side = await startHerald(flags);
      await post(side.url, '{"unread": 21}');
      await stopServer(side);
      h = await startHerald(['--port', String(port), ...flags]);
      const up = Date.now();
      const back = await Promise.all(TRANSPORTS.map((tr) => badgeIs(pages[tr], '21', 30000).then(
        () => `${tr} ${Date.now() - up} ms`,
        () => { throw new Error(`${tr}: the badge did not reach 21 within 30 s of the restart`); })));
      t.diagnostic(`down ${up - down} ms; 21 shown after herald was back: ${back.join(', ')}`);
      await Promise.all(TRANSPORTS.map((tr) => connected(pages[tr])));
      await post(base, '{"unread": 22}');
      await Promise.all(TRANSPORTS.map((tr) => badgeIs(pages[tr], '22', POLL_MS)));
      for (const tr of TRANSPORTS) assert.deepEqual((await seen(pages[tr])).slice(-3), ['20', '21', '22'], tr);
      assert.deepEqual(errors, []);
    } finally {
      for (const p of Object.values(pages)) await p.close().catch(() => {});
      await stopServer(h);
    }
  });

  test('fits a phone: no sideways scrolling, badge and command visible', T, async () => {
    const errors = [];
    await publish('user:alice', '{"unread": 42}');
    const page = await openPage('?user=alice&transport=sse', { errors, viewport: { width: 375, height: 740 } });
    await connected(page);
    await badgeIs(page, '42', WAIT);
    const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert.ok(scroll <= client, `page is ${scroll} px wide in a ${client} px viewport`);
    for (const sel of ['#badge', '#curl', '#conn', '#t-socketio + label', '#user']) {
      const box = await page.locator(sel).boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= client + 0.5, `${sel} inside the viewport: ${JSON.stringify(box)}`);
    }
    await page.screenshot({ path: path.join(outDir, 'mail-phone.png'), fullPage: true });
    assert.deepEqual(errors, []);
  });
});

// With a token key, user:alice is Alice's alone: the page finds out (a 401), gets a token from
// the development-only endpoint, and follows her channel on every transport with it; the
// command it shows publishes with the backends' key. Bob's page never sees Alice's count.
describe('mail page: with tokens (--jwt-secret, --dev-tokens, --publish-key)', { skip }, () => {
  const KEY = 'mail-page-test-publish-key';
  let srv, browser;
  before(async () => {
    srv = await startHerald(['--jwt-secret', 'a-secret-for-the-mail-page-test-0123456789',
      '--dev-tokens', '--publish-key', KEY]);
    browser = await launchChromium();
  });
  after(async () => {
    if (browser) await browser.close().catch(() => {});
    await stopServer(srv);
  });

  async function publish(channel, body, key = KEY) {
    const r = await fetch(`${srv.url}/pub/${channel}`, {
      method: 'POST', body, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    });
    return { status: r.status, text: await r.text() };
  }

  for (const transport of TRANSPORTS) {
    test(`${transport}: alice's page gets a token and follows user:alice; bob's page does not see it`, T, async () => {
      const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
      const errors = [];
      const refused = [];
      const open = async (user) => {
        const page = await ctx.newPage();
        page.setDefaultTimeout(WAIT);
        page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
        // the first read of each page is refused (401): that is how it learns it needs a token
        page.on('response', (r) => {
          if (r.status() === 401) refused.push(r.url());
          else if (r.status() >= 400) errors.push(`HTTP ${r.status()} for ${r.url()}`);
        });
        page.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(`console: ${m.text()}`); });
        await page.goto(`${srv.url}/mail.html?user=${user}&transport=${transport}`);
        await page.waitForFunction(() => document.body.dataset.state === 'connected', null, { timeout: WAIT });
        return page;
      };
      try {
        const alice = await open('alice');
        const bob = await open('bob');
        assert.ok(refused.length >= 2 && refused.every((u) => /\/pub\/user:(alice|bob)$/.test(u)), `refused: ${refused}`);
        assert.match(await alice.locator('#curl').textContent(), /-H "Authorization: Bearer \$HERALD_PUBLISH_KEY"/);
        await alice.waitForFunction(() => [...document.querySelectorAll('#log li span')].some((e) => /Signed in as alice/.test(e.textContent)));
        // without the key nobody may publish on user:alice
        assert.equal((await publish('user:alice', '{"unread": 66}', 'not-the-key-at-all')).status, 401);
        for (const n of [4, 6]) {
          assert.equal((await publish('user:alice', `{"unread": ${n}}`)).status, 200);
          await alice.waitForFunction((t) => document.getElementById('badge').textContent === t, String(n),
            { timeout: transport === 'poll' ? POLL_MS : PUSH_MS });
        }
        await bob.waitForTimeout(transport === 'poll' ? QUIET_MS + 2000 : QUIET_MS);
        const bobSaw = await bob.locator('#badge').textContent();
        assert.ok(!['4', '6', '66'].includes(bobSaw), `bob's badge shows ${bobSaw}`);
        await alice.screenshot({ path: path.join(outDir, `mail-token-${transport}.png`) });
        assert.deepEqual(errors, []);
      } finally {
        await ctx.close().catch(() => {});
      }
    });
  }
});
