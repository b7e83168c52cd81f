// herald's chat page (public/index.html, chat.js, chat-transports.js) in headless Chromium
// (playwright-core) against the real binary serving the repository's public/ directory, as
// scripts/run.sh does. Everything asserted is what a user sees: rendered text, which side a
// message is on, counts, the connection state, the online count, the cost panel.
//
// - the page loads from herald alone (socket.io-client from /vendor/, nothing from elsewhere),
//   has labels, and works by keyboard (Enter sends, Tab reaches Send, arrows switch transport);
// - per transport (Socket.IO, WebSocket, SSE, long polling, short polling): two users exchange
//   messages and both see both, once, the sender's on the right, with a latency and a cost;
// - cross-transport: one user per transport, everyone sees everyone's message once, in the
//   server's order; the online count is the channel's connected readers;
// - joining shows recent history; switching transport keeps the conversation, no duplicates;
// - HTML in a message or a name is shown as text and runs nothing (no dialog, no request);
// - empty or whitespace-only input is refused with a visible hint and nothing is published;
// - the name is editable and remembered; scrolling up is not undone by new messages;
// - phone width: one column, no horizontal overflow, settings fold out;
// - herald restarts while the pages are offline: every transport shows "reconnecting…", then
//   reconnects by itself and shows the messages published meanwhile, once.
// Screenshots: <repo>/test-output/chat-*.png. CHAT_README_SHOT=1 also writes
// docs/screenshot-chat.png (a short conversation on a fresh server).
//
// Needs /usr/bin/chromium (Debian package chromium) and public/vendor/ (scripts/setup.sh build).
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { startHerald, repoRoot, freshDataDir, sanitizerReport, freePort } from './lib/herald.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const outDir = path.join(repoRoot, 'test-output');
const SLOW = process.env.E2E_SANITIZE === '1';
const WAIT = SLOW ? 30000 : 20000; // one wait for something a user would see
const T = { timeout: SLOW ? 180000 : 120000 };
const TRANSPORTS = ['socketio', 'websocket', 'sse', 'longpoll', 'poll'];
const LABEL = { socketio: 'Socket.IO', websocket: 'WebSocket', sse: 'SSE + POST', longpoll: 'Long polling + POST', poll: 'Short polling + POST' };
const RADIO = { socketio: 'Socket.IO', websocket: 'WebSocket', sse: 'SSE', longpoll: 'Long polling', poll: 'Short polling' };
const tag = Math.random().toString(36).slice(2, 7); // keeps this run's texts apart from any other

const skip = skipWithoutChromium;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('the chat page in headless Chromium', { skip }, () => {
  let srv, browser, port, dataDir, base;
  const problems = []; // page errors, console errors, HTTP errors, dialogs, foreign requests
  let netErrorsAllowed = false; // while herald is down, failed connections are expected
  const contexts = new Set();

  async function start() {
    srv = await startHerald(['--port', String(port), '--data', dataDir, '--public', path.join(repoRoot, 'public')]);
    assert.equal(srv.port, port);
  }
  async function api(p, init) {
    const r = await fetch(base + p, init);
    assert.ok(r.ok, `${init?.method || 'GET'} ${p}: HTTP ${r.status}`);
    return r.json();
  }
  const publish = (value) => api('/pub/chat', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });
  const msgFrom = (user, text) => ({ type: 'message', message: text, userId: user, ts: Date.now() });

  async function newContext(viewport = { width: 1000, height: 700 }) {
    const ctx = await browser.newContext({ viewport });
    contexts.add(ctx);
    return ctx;
  }
  async function closeContext(ctx) { contexts.delete(ctx); await ctx.close().catch(() => {}); }

  function watch(page, who) {
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => problems.push(`${who}: page error ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (netErrorsAllowed && /net::ERR_|WebSocket connection to .* failed|EventSource/.test(m.text())) return;
      problems.push(`${who}: console error ${m.text()}`);
    });
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`${who}: HTTP ${r.status()} for ${r.url()}`); });
    page.on('dialog', (d) => { problems.push(`${who}: unexpected dialog "${d.message()}"`); d.dismiss().catch(() => {}); });
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(base + '/') && !u.startsWith(base.replace('http', 'ws') + '/') && !u.startsWith('data:'))
        problems.push(`${who}: request outside herald: ${u}`);
      if (/\/x$/.test(new URL(u).pathname)) problems.push(`${who}: an <img src=x> from a message was loaded`);
    });
  }

  // Open the page as user over transport (in a new browser context unless one is given).
  async function openPage(user, transport, { ctx, viewport } = {}) {
    ctx = ctx || await newContext(viewport);
    const page = await ctx.newPage();
    watch(page, `${user}/${transport}`);
    await page.goto(`${base}/?user=${encodeURIComponent(user)}&transport=${transport}`);
    await waitConnected(page, transport);
    return page;
  }

  async function waitConnected(page, transport) {
    await page.waitForFunction((t) => document.getElementById('state').textContent === 'connected' &&
      document.body.dataset.transport === t, transport, { timeout: WAIT });
  }

  // The rendered messages: [{ side, user, text, lat, cursor }].
  const items = (page) => page.$$eval('#messages .msg', (els) => els.map((e) => ({
    side: e.classList.contains('own') ? 'right' : 'left',
    user: e.querySelector('.who').textContent,
    text: e.querySelector('.text').textContent,
    lat: e.querySelector('.lat') ? e.querySelector('.lat').textContent : null,
    cursor: e.dataset.cursor || null,
  })));
  // Wait until every text is shown, then check each is shown exactly once.
  async function waitTexts(page, texts, what = 'messages') {
    try {
      await page.waitForFunction((want) => {
        const have = [...document.querySelectorAll('#messages .msg .text')].map((e) => e.textContent);
        return want.every((t) => have.includes(t));
      }, texts, { timeout: WAIT });
    } catch (e) {
      const have = (await items(page)).map((i) => i.text);
      throw new Error(`${what}: waited for ${JSON.stringify(texts)}; the page shows ${JSON.stringify(have.slice(-12))}`);
    }
    const all = await items(page);
    for (const t of texts) assert.equal(all.filter((i) => i.text === t).length, 1, `${what}: "${t}" shown once`);
    return all;
  }
  function assertNoDuplicates(list, what) {
    const cursors = list.map((i) => i.cursor).filter(Boolean);
    assert.equal(new Set(cursors).size, cursors.length, `${what}: a message is shown twice: ${cursors}`);
  }
  const stat = (page, id) => page.locator(`#stat-${id}`).textContent();
  const shot = (page, name) => page.screenshot({ path: path.join(outDir, `chat-${name}.png`) });
  async function send(page, text, how = 'enter') {
    await page.fill('#input', text);
    if (how === 'enter') await page.press('#input', 'Enter'); else await page.click('#send');
  }
  // Pick a transport the way a user does: click its name in the Transport list.
  const choose = (page, t) => page.locator(`.choice:has(input[value="${t}"]) b`).click();
  function assertClean() { assert.deepEqual(problems.splice(0), [], 'page errors, console errors, HTTP errors or dialogs'); }

  before(async () => {
    assert.ok(existsSync(path.join(repoRoot, 'public/vendor/socket.io.min.js')),
      'public/vendor/socket.io.min.js is missing: run scripts/setup.sh build (it copies socket.io-client from web/node_modules)');
    mkdirSync(outDir, { recursive: true });
    port = await freePort();
    dataDir = freshDataDir();
    base = `http://127.0.0.1:${port}`;
    await start();
    browser = await launchChromium();
  });

  afterEach(() => {
    assert.equal(srv.proc.exitCode, null, `herald exited:\n${srv.output().slice(-2000)}`);
    assert.equal(srv.proc.signalCode, null, `herald was killed by ${srv.proc.signalCode}:\n${srv.output().slice(-2000)}`);
  });

  after(async () => {
    for (const c of [...contexts]) await closeContext(c);
    if (browser) await browser.close().catch(() => {});
    if (srv) {
      await srv.stop();
      const report = sanitizerReport(srv);
      assert.equal(report, null, `sanitizer report from herald:\n${report}`);
    }
  });

  // -------------------------------------------------------------------------------------------
  describe('one user', () => {
    let kai, kaiCtx;
    before(async () => {
      kaiCtx = await newContext();
      kai = await openPage(`kai-${tag}`, 'socketio', { ctx: kaiCtx });
    });
    after(async () => { if (kaiCtx) await closeContext(kaiCtx); });

    test('/ is the chat page: served by herald alone, welcome, labels, keyboard', T, async () => {
      const page = kai;
      assert.equal(await page.title(), 'herald chat');
      assert.equal(await page.evaluate(() => typeof window.io), 'function', 'socket.io-client from /vendor/ is loaded');
      await page.locator('#messages .notice.welcome').waitFor();
      assert.equal(await page.locator('#messages .notice.welcome').textContent(), '欢迎连接');
      assert.equal(await page.locator('#state').textContent(), 'connected');
      assert.equal(await page.locator('#empty').isVisible(), true, 'an empty room says so');
      // labels: every control has an accessible name
      for (const loc of [page.getByLabel('Message', { exact: true }), page.getByRole('button', { name: 'Send' }),
        page.getByLabel('Your name'), page.getByLabel('Poll every')]) assert.equal(await loc.count(), 1);
      for (const t of TRANSPORTS) assert.equal(await page.getByRole('radio', { name: RADIO[t] }).count(), 1, `radio ${t}`);
      assert.equal(await page.getByRole('radio', { name: 'Socket.IO' }).isChecked(), true, 'Socket.IO is the default');
      assert.equal(await page.locator('#cost-name').textContent(), 'Socket.IO');

      // keyboard only: type + Enter sends; Tab from the input reaches Send; arrows switch transport
      await page.locator('#input').focus();
      await page.keyboard.type(`typed on the keyboard ${tag}`);
      await page.keyboard.press('Enter');
      await waitTexts(page, [`typed on the keyboard ${tag}`]);
      assert.equal(await page.locator('#empty').isVisible(), false);
      await page.locator('#input').focus();
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'send');
      await page.getByRole('radio', { name: 'Socket.IO' }).focus();
      await page.keyboard.press('ArrowDown');
      await waitConnected(page, 'websocket');
      assert.equal(await page.getByRole('radio', { name: 'WebSocket' }).isChecked(), true);
      assert.equal(await page.locator('#cost-name').textContent(), 'WebSocket');
      assertClean();
    });

    test('empty or whitespace-only input is refused with a visible hint, nothing is sent', T, async () => {
      const page = kai;
      const lastId = (await api('/pub/chat')).last_id;
      const n = (await items(page)).length;
      assert.equal(await page.locator('#hint').isVisible(), false);
      await page.fill('#input', '');
      await page.click('#send');
      await page.locator('#hint').waitFor({ state: 'visible' });
      assert.match(await page.locator('#hint').textContent(), /empty messages are not sent/);
      assert.equal(await page.getAttribute('#input', 'aria-invalid'), 'true');
      await page.fill('#input', '   \t  ');
      await page.press('#input', 'Enter');
      assert.equal(await page.locator('#hint').isVisible(), true);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'input', 'the input keeps the focus');
      await shot(page, 'empty-hint');
      await sleep(500);
      assert.equal((await api('/pub/chat')).last_id, lastId, 'nothing was published');
      assert.equal((await items(page)).length, n, 'nothing was shown');
      await page.fill('#input', `now with words ${tag}`);
      assert.equal(await page.locator('#hint').isVisible(), false, 'typing hides the hint');
      await page.press('#input', 'Enter');
      await waitTexts(page, [`now with words ${tag}`]);
      assertClean();
    });

    test('auto-scroll follows new messages but leaves a reader who scrolled up where they are', T, async () => {
      const page = kai;
      await page.setViewportSize({ width: 1000, height: 520 });
      const burst = [];
      for (let i = 1; i <= 15; i++) burst.push(`scroll test ${i} ${tag}`);
      for (const t of burst) await publish(msgFrom('bot', t));
      await waitTexts(page, burst);
      const pos = () => page.$eval('#messages', (e) => ({ top: e.scrollTop, gap: e.scrollHeight - e.scrollTop - e.clientHeight }));
      const atBottom = () => page.waitForFunction(() => {
        const e = document.getElementById('messages');
        return e.scrollHeight - e.scrollTop - e.clientHeight < 5;
      });
      await atBottom();
      await page.$eval('#messages', (e) => { e.scrollTop = 0; });
      await sleep(100);
      await publish(msgFrom('bot', `while reading old ones ${tag}`));
      await waitTexts(page, [`while reading old ones ${tag}`]);
      await page.locator('#jump').waitFor({ state: 'visible' });
      assert.equal((await pos()).top, 0, 'the reader was not moved');
      assert.equal(await page.locator('#jump').textContent(), '↓ 1 new message');
      await shot(page, 'scrolled-up');
      await page.click('#jump');
      assert.ok((await pos()).gap < 5, 'the button goes to the newest message');
      assert.equal(await page.locator('#jump').isVisible(), false);
      // one's own message always comes into view
      await page.$eval('#messages', (e) => { e.scrollTop = 0; });
      await send(page, `my own, seen ${tag}`);
      await waitTexts(page, [`my own, seen ${tag}`]);
      await atBottom();
      await page.setViewportSize({ width: 1000, height: 700 });
      assertClean();
    });

    test('phone width (390 px): one column, nothing overflows, settings fold out', T, async () => {
      const page = kai;
      await page.setViewportSize({ width: 390, height: 844 });
      await send(page, `from a phone ${tag}`);
      await waitTexts(page, [`from a phone ${tag}`]);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no horizontal scrolling');
      for (const sel of ['#input', '#send', '#state', '#online', '#side-toggle']) {
        const b = await page.locator(sel).boundingBox();
        assert.ok(b && b.x >= 0 && b.x + b.width <= 390 && b.y >= 0 && b.y + b.height <= 844, `${sel} is on screen: ${JSON.stringify(b)}`);
      }
      for (const right of await page.locator('#messages .msg .text').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().right)))
        assert.ok(right <= 390, 'bubbles fit the width');
      assert.equal(await page.locator('#name').isVisible(), false, 'settings are folded');
      assert.match(await page.locator('#side-toggle').textContent(), /WebSocket/);
      await shot(page, 'phone');
      await page.click('#side-toggle');
      assert.equal(await page.getAttribute('#side-toggle', 'aria-expanded'), 'true');
      await choose(page, 'sse');
      await waitConnected(page, 'sse');
      await shot(page, 'phone-settings');
      await page.click('#side-toggle');
      assert.equal(await page.locator('#name').isVisible(), false);
      await page.setViewportSize({ width: 1000, height: 700 });
      assertClean();
    });

    test('the name is editable and remembered; one\'s own messages are on the right', T, async () => {
      const page = kai;
      const mine = `typed on the keyboard ${tag}`;
      assert.equal((await items(page)).find((i) => i.text === mine).side, 'right');
      await page.fill('#name', `  kai   lee ${tag} `);
      await page.press('#name', 'Enter');
      assert.equal(await page.inputValue('#name'), `kai lee ${tag}`, 'spaces are tidied');
      assert.equal((await items(page)).find((i) => i.text === mine).side, 'left', 'the old name\'s messages are someone else\'s now');
      await page.fill('#name', '   ');
      await page.press('#name', 'Enter');
      assert.equal(await page.inputValue('#name'), `kai lee ${tag}`, 'an empty name is not taken');
      // the same browser, without ?user=: the name and the transport are remembered
      const again = await kaiCtx.newPage();
      watch(again, 'kai lee');
      await again.goto(`${base}/`);
      await waitConnected(again, 'sse');
      assert.equal(await again.inputValue('#name'), `kai lee ${tag}`);
      await send(again, `as kai lee ${tag}`);
      const list = await waitTexts(again, [`as kai lee ${tag}`]);
      assert.equal(list.find((i) => i.text === `as kai lee ${tag}`).side, 'right');
      assert.equal(list.find((i) => i.text === `as kai lee ${tag}`).user, `kai lee ${tag}`);
      assertClean();
    });
  });

  // -------------------------------------------------------------------------------------------
  // Ann and Ben go through the five transports together (Ann by clicking, Ben by keyboard).
  describe('two users, on each transport in turn', () => {
    let ann, ben;
    const ctxs = [];
    const early = `said before Ann and Ben joined ${tag}`;
    const seen = []; // every text of this conversation so far, in order
    before(async () => {
      await publish(msgFrom('someone', early));
      ctxs.push(await newContext(), await newContext());
      ann = await openPage('Ann', 'socketio', { ctx: ctxs[0] });
      ben = await openPage('Ben', 'socketio', { ctx: ctxs[1] });
    });
    after(async () => { for (const c of ctxs) await closeContext(c); });

    test('joining shows recent history (without a latency)', T, async () => {
      for (const p of [ann, ben]) {
        const list = await waitTexts(p, [early], 'history on join');
        assert.equal(list.find((i) => i.text === early).lat, null);
        assert.ok(list.length >= 10, `recent history shown (${list.length} messages)`);
        assertNoDuplicates(list, 'history');
      }
      seen.push(...(await items(ann)).map((i) => i.text));
      assertClean();
    });

    for (const transport of TRANSPORTS) {
      test(`${LABEL[transport]}: Ann and Ben exchange messages and both see them; the conversation is kept`, T, async () => {
        if (transport !== 'socketio') {
          await choose(ann, transport);
          await ben.getByRole('radio', { name: RADIO[transport] }).focus();
          await ben.keyboard.press('Space');
          for (const p of [ann, ben]) {
            await waitConnected(p, transport);
            assert.equal(await p.locator('#messages .notice.switch').last().textContent(), `Now using ${LABEL[transport]}`);
          }
        }
        for (const p of [ann, ben]) {
          assert.equal(await p.getByRole('radio', { name: RADIO[transport] }).isChecked(), true);
          assert.equal(await p.locator('#cost-name').textContent(), LABEL[transport]);
        }
        const t1 = `Hi Ben, Ann here over ${LABEL[transport]} ${tag}`;
        const t2 = `Hello Ann! 你好 (${transport}, ${tag})`;
        const t3 = `someone else, while they use ${transport} ${tag}`;
        await send(ann, t1, 'enter');
        await waitTexts(ann, [t1], `${transport}: Ann's own`);
        assert.equal(await ann.inputValue('#input'), '', 'the input is cleared after sending');
        await send(ben, t2, 'button');
        await waitTexts(ben, [t2], `${transport}: Ben's own`);
        await publish(msgFrom('someone', t3));
        seen.push(t1, t2, t3);
        for (const [p, me] of [[ann, 'Ann'], [ben, 'Ben']]) {
          const list = await waitTexts(p, [t1, t2, t3], `${transport} as ${me}`);
          assert.deepEqual(list.map((i) => i.text), seen, `${me}: the whole conversation, once, in order`);
          const m1 = list.find((i) => i.text === t1);
          const m2 = list.find((i) => i.text === t2);
          assert.equal(m1.user, 'Ann');
          assert.equal(m2.user, 'Ben');
          assert.equal(m1.side, me === 'Ann' ? 'right' : 'left', `${me}: side of Ann's message`);
          assert.equal(m2.side, me === 'Ben' ? 'right' : 'left', `${me}: side of Ben's message`);
          for (const m of [m1, m2]) assert.match(m.lat || '', /^\d+ ms$/, `${me}: a live message shows its latency`);
          assertNoDuplicates(list, `${transport} as ${me}`);
          // the cost panel counts this transport's work
          assert.ok(Number(await stat(p, 'requests')) >= 1, 'requests counted');
          assert.match(await stat(p, 'bytes'), /^(≈ )?\d+(\.\d)? (B|kB|MB)$/);
          assert.notEqual(await stat(p, 'bytes'), '0 B', 'bytes counted');
          assert.ok(Number(await stat(p, 'messages')) >= 3, 'messages counted');
          assert.match(await stat(p, 'latency'), /^\d+ msmedian \d+ ms$/);
        }
        // sides as rendered: Ann's bubble at the right of her list, Ben's at the left
        const own = await ann.locator('#messages .msg.own .text', { hasText: t1 }).boundingBox();
        const other = await ann.locator('#messages .msg.other .text', { hasText: t2 }).boundingBox();
        const box = await ann.locator('#messages').boundingBox();
        assert.ok(own.x + own.width > box.x + box.width * 0.8, 'own message at the right');
        assert.ok(other.x < box.x + box.width * 0.2, 'other message at the left');
        await shot(ann, transport);
        assertClean();
      });
    }
  });

  // -------------------------------------------------------------------------------------------
  // One user per transport, in one room.
  describe('one user per transport', () => {
    const pages = {};
    const ctxs = [];
    before(async () => {
      for (const t of TRANSPORTS) {
        const ctx = await newContext();
        ctxs.push(ctx);
        pages[t] = await openPage(`x-${t}`, t, { ctx });
      }
    });
    after(async () => { for (const c of ctxs) await closeContext(c); });

    test('cross-transport: everyone sees every transport\'s messages once, in order; online count', T, async () => {
      const texts = {};
      for (const t of TRANSPORTS) {
        texts[t] = `from ${LABEL[t]} to everyone ${tag}`;
        await send(pages[t], texts[t]);
        await waitTexts(pages[t], [texts[t]], `${t} own message`);
      }
      const order = (await api('/poll/chat?since=0')).messages.map((m) => m.data.message)
        .filter((x) => Object.values(texts).includes(x));
      assert.equal(order.length, 5, 'herald kept the five messages');
      for (const t of TRANSPORTS) {
        const list = await waitTexts(pages[t], Object.values(texts), `${t} sees all`);
        assert.deepEqual(list.filter((i) => order.includes(i.text)).map((i) => i.text), order, `${t}: the server's order`);
        for (const i of list.filter((x) => order.includes(x.text)))
          assert.equal(i.side, i.user === `x-${t}` ? 'right' : 'left', `${t}: side of ${i.user}`);
        assertNoDuplicates(list, t);
      }
      // online: the channel's connected readers as herald counts them; here Socket.IO,
      // WebSocket, SSE and long polling (short polling holds no connection)
      const deadline = Date.now() + WAIT;
      for (;;) {
        const subs = (await api('/pub/chat')).subscribers;
        const sum = Object.values(subs).reduce((x, y) => x + y, 0);
        const shown = await Promise.all(TRANSPORTS.map((t) => pages[t].locator('#online').textContent()));
        if (sum === 4 && shown.every((x) => x === '4 online')) break;
        if (Date.now() > deadline) assert.fail(`online count: pages show ${JSON.stringify(shown)}, herald counts ${JSON.stringify(subs)}; expected 4`);
        await sleep(250);
      }
      await shot(pages.sse, 'cross');
      assertClean();
    });

    test('HTML in a message or a name shows as text and runs nothing', T, async () => {
      const evil = `<img src=x onerror=alert(1)><script>window.__xss=1<\/script><img src=x onerror="window.__xss=2"> ${tag}`;
      const evilName = '<b onclick=alert(2)>mal</b>';
      const ctx = await newContext();
      const m = await openPage(evilName, 'socketio', { ctx });
      assert.equal(await m.inputValue('#name'), evilName);
      await send(m, evil);
      for (const p of [m, pages.sse, pages.websocket]) {
        const list = await waitTexts(p, [evil], 'xss');
        const it = list.find((i) => i.text === evil);
        assert.equal(it.user, evilName, 'the name shows as text');
        assert.equal(it.side, p === m ? 'right' : 'left');
      }
      const late = await openPage(`leo-${tag}`, 'poll', { ctx: await newContext() }); // from history
      await waitTexts(late, [evil], 'xss from history');
      await sleep(500);
      for (const p of [m, pages.sse, pages.websocket, late]) {
        assert.equal(await p.evaluate(() => window.__xss), undefined, 'no script from a message ran');
        assert.equal(await p.locator('#messages img, #messages script, #messages b').count(), 0, 'no element from a message');
      }
      await shot(pages.sse, 'xss');
      await closeContext(ctx);
      await closeContext(late.context());
      assertClean(); // includes: no dialog opened, no request for the <img src=x>
    });

    test('herald restarts: every transport reconnects by itself and shows what it missed, once', T, async () => {
      const warm = `before the restart ${tag}`;
      await send(pages.socketio, warm);
      for (const t of TRANSPORTS) await waitTexts(pages[t], [warm], `${t} before the restart`);

      // cut the pages off, restart herald (same port, same data), publish while they are away
      netErrorsAllowed = true;
      for (const t of TRANSPORTS) await pages[t].context().setOffline(true);
      await srv.stop();
      const report = sanitizerReport(srv);
      assert.equal(report, null, `sanitizer report from herald:\n${report}`);
      for (const t of TRANSPORTS) {
        await pages[t].waitForFunction(() => document.getElementById('state').textContent === 'reconnecting…', null, { timeout: WAIT })
          .catch(() => assert.fail(`${t}: the page does not show "reconnecting…" after the drop`));
      }
      await shot(pages.sse, 'reconnecting');
      await start();
      const missed = [1, 2, 3].map((i) => `missed ${i} while away ${tag}`);
      for (const text of missed) await publish(msgFrom('ops', text));
      for (const t of TRANSPORTS) assert.equal(await pages[t].locator('#state').textContent(), 'reconnecting…', `${t} is still away`);
      for (const t of TRANSPORTS) await pages[t].context().setOffline(false);

      for (const t of TRANSPORTS) {
        await waitConnected(pages[t], t);
        const list = await waitTexts(pages[t], missed, `${t} after the restart`);
        assert.equal(list.filter((i) => i.text === warm).length, 1, `${t}: nothing shown twice`);
        const at = list.findIndex((i) => i.text === missed[0]);
        assert.deepEqual(list.slice(at, at + 3).map((i) => i.text), missed, `${t}: in order`);
        assertNoDuplicates(list, `${t} after the restart`);
      }
      netErrorsAllowed = false;
      // and live traffic flows again, both ways
      const later = `after the restart, from SSE ${tag}`;
      await send(pages.sse, later);
      for (const t of TRANSPORTS) await waitTexts(pages[t], [later], `${t} live after the restart`);
      await shot(pages.socketio, 'restarted');
      assertClean();
    });
  });

  // -------------------------------------------------------------------------------------------
  test('README screenshot (CHAT_README_SHOT=1)', { ...T, skip: process.env.CHAT_README_SHOT !== '1' && 'set CHAT_README_SHOT=1' }, async () => {
    // a fresh server for a clean conversation
    const fresh = await startHerald(['--store', 'memory', '--public', path.join(repoRoot, 'public')]);
    const saveBase = base;
    base = fresh.url;
    try {
      const lin = await openPage('林小雨', 'socketio', { viewport: { width: 1000, height: 700 } });
      const tom = await openPage('Tom', 'sse');
      const say = async (p, text, who) => { await send(p, text); await waitTexts(lin, [text], who); await sleep(350); };
      await say(tom, 'Hi! Is the deploy done?', 'tom');
      await say(lin, '刚好完成 — all green.', 'lin');
      await say(tom, 'Great. I\'m reading this over SSE, you?', 'tom');
      await say(lin, 'Socket.IO, like the tutorial. Same room either way.', 'lin');
      await say(tom, 'Switching to long polling to compare the cost…', 'tom');
      await waitTexts(tom, ['Switching to long polling to compare the cost…']);
      await lin.locator('#input').blur();
      await sleep(4500); // the online count refreshes
      await lin.screenshot({ path: path.join(repoRoot, 'docs/screenshot-chat.png') });
      await shot(tom, 'readme-other');
    } finally {
      base = saveBase;
      await fresh.stop();
    }
    assertClean();
  });
});
