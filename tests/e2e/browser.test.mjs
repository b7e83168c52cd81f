// The seed tutorial's chat page in a real browser (headless Chromium through playwright-core)
// against herald's default app (the seed's chat server): fixtures/seed-chat is the page, served
// by herald from a temporary --public directory together with socket.io-client's browser build.
//
// Two users in two browser contexts, one forced to polling and one to websocket: both see the
// welcome 欢迎连接, a message sent by one (Enter or the button) shows for both (the sender's on the
// right, the other's on the left), HTML in a message is shown as text and never runs, and an
// empty or whitespace-only message is refused with a visible hint and nothing is sent.
// Screenshots go to <repo>/test-output/.
//
// Needs the Debian package chromium (/usr/bin/chromium); the file is skipped without it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, cpSync, copyFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startHerald, repoRoot } from './lib/herald.mjs';
import { stopServer, sleep } from './lib/sio-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const outDir = path.join(repoRoot, 'test-output');
const T = { timeout: 45000 };
const WAIT = 15000;

const skip = skipWithoutChromium;

describe('seed chat page in headless Chromium', { skip }, () => {
  let srv, browser, tmp;
  const contexts = [];
  const pageErrors = [];
  let alice, bob; // alice: polling only; bob: websocket only

  async function openUser(user, transport) {
    const ctx = await browser.newContext({ viewport: { width: 800, height: 640 } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => pageErrors.push(`${user}: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${user} console: ${m.text()}`); });
    page.on('response', (r) => { if (r.status() >= 400) pageErrors.push(`${user}: HTTP ${r.status()} for ${r.url()}`); });
    page.on('dialog', (d) => { pageErrors.push(`${user}: unexpected dialog ${d.message()}`); d.dismiss().catch(() => {}); });
    await page.goto(`${srv.url}/?user=${encodeURIComponent(user)}&transport=${transport}`);
    return page;
  }

  // The rendered messages of a page: [{ side, user, text }].
  const items = (page) => page.$$eval('#messages .item', (els) => els.map((e) => {
    const row = e.firstElementChild;
    return { side: row.className === 'item-right' ? 'right' : 'left', user: row.querySelector('.avatar').textContent, text: row.querySelector('.message').textContent };
  }));
  const count = (page) => page.locator('#messages .item').count();
  async function waitCount(page, n) {
    await page.waitForFunction((k) => document.querySelectorAll('#messages .item').length >= k, n, { timeout: WAIT });
  }
  const shot = (page, name) => page.screenshot({ path: path.join(outDir, `browser-${name}.png`) });

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'herald-browser-'));
    cpSync(path.join(here, 'fixtures/seed-chat'), tmp, { recursive: true });
    const clientDir = path.dirname(require.resolve('socket.io-client/package.json'));
    copyFileSync(path.join(clientDir, 'dist/socket.io.min.js'), path.join(tmp, 'socket.io.min.js'));
    mkdirSync(outDir, { recursive: true });
    srv = await startHerald(['--public', tmp]);
    browser = await launchChromium();
    alice = await openUser('alice', 'polling');
    bob = await openUser('bob', 'websocket');
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close().catch(() => {});
    await stopServer(srv);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('both users see the welcome 欢迎连接 over their forced transport', T, async () => {
    for (const [page, transport] of [[alice, 'polling'], [bob, 'websocket']]) {
      await page.locator('#welcome').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#welcome').textContent(), '欢迎连接');
      await page.waitForFunction(() => document.body.dataset.connected === 'true', null, { timeout: WAIT });
      assert.equal(await page.evaluate(() => window.chat.socket.io.engine.transport.name), transport);
      assert.equal(await count(page), 0, 'the welcome is not a list item');
    }
    await sleep(500); // a polling-only client must not have upgraded
    assert.equal(await alice.evaluate(() => window.chat.socket.io.engine.transport.name), 'polling');
    assert.deepEqual(pageErrors, []);
  });

  test('a message shows for both: right for the sender, left for the other', T, async () => {
    const n = await count(bob);
    await alice.fill('#input', '  你好 bob, from alice  ');
    await alice.press('#input', 'Enter');
    await Promise.all([waitCount(alice, n + 1), waitCount(bob, n + 1)]);
    assert.equal(await alice.inputValue('#input'), '', 'the input is cleared');
    assert.deepEqual((await items(alice)).at(-1), { side: 'right', user: 'alice', text: '你好 bob, from alice' });
    assert.deepEqual((await items(bob)).at(-1), { side: 'left', user: 'alice', text: '你好 bob, from alice' });

    await bob.fill('#input', 'hi alice 👋');
    await bob.click('#send');
    await Promise.all([waitCount(alice, n + 2), waitCount(bob, n + 2)]);
    assert.deepEqual((await items(bob)).at(-1), { side: 'right', user: 'bob', text: 'hi alice 👋' });
    assert.deepEqual((await items(alice)).at(-1), { side: 'left', user: 'bob', text: 'hi alice 👋' });
    // Layout: the sender's bubble sits to the right of the other's.
    const lx = await alice.locator('#messages .item-left').last().boundingBox();
    const rx = await alice.locator('#messages .item-right').last().boundingBox();
    assert.ok(rx.x > lx.x, `right bubble x ${rx.x} > left bubble x ${lx.x}`);
    await shot(alice, 'alice');
    await shot(bob, 'bob');
    assert.deepEqual(pageErrors, []);
  });

  test('HTML in a message is shown as text and never runs', T, async () => {
    const evil = '<img src=x onerror=window.__xss=1><script>window.__xss=2</script><b>bold</b>';
    const n = await count(alice);
    await bob.fill('#input', evil);
    await bob.press('#input', 'Enter');
    await Promise.all([waitCount(alice, n + 1), waitCount(bob, n + 1)]);
    assert.deepEqual((await items(alice)).at(-1), { side: 'left', user: 'bob', text: evil });
    assert.deepEqual((await items(bob)).at(-1), { side: 'right', user: 'bob', text: evil });
    await sleep(300);
    for (const page of [alice, bob]) {
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      assert.equal(await page.locator('#messages img, #messages script, #messages b').count(), 0);
    }
    await shot(alice, 'xss');
    assert.deepEqual(pageErrors, []);
  });

  test('an empty or whitespace-only message is refused with a hint and not sent', T, async () => {
    const nA = await count(alice), nB = await count(bob);
    await alice.fill('#input', '');
    await alice.click('#send');
    await alice.locator('#hint').waitFor({ state: 'visible' });
    assert.equal(await alice.locator('#hint').textContent(), '发送信息不能为空');
    await alice.fill('#input', ' \t  ');
    await alice.press('#input', 'Enter');
    assert.ok(await alice.locator('#hint').isVisible());
    await shot(alice, 'empty-hint');
    await bob.fill('#input', '   ');
    await bob.click('#send');
    await bob.locator('#hint').waitFor({ state: 'visible' });
    // Nothing went out: the next real message is the only new item on both pages.
    await alice.fill('#input', 'after the empty ones');
    await alice.press('#input', 'Enter');
    await Promise.all([waitCount(alice, nA + 1), waitCount(bob, nB + 1)]);
    await sleep(300);
    assert.equal(await count(alice), nA + 1);
    assert.equal(await count(bob), nB + 1);
    assert.deepEqual((await items(bob)).at(-1), { side: 'left', user: 'alice', text: 'after the empty ones' });
    assert.equal(await alice.locator('#hint').isVisible(), false, 'the hint goes away after a real send');
    assert.deepEqual(pageErrors, []);
  });
});

