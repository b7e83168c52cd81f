// The seed tutorial's own page, exactly as written, against herald's default app: the Vue 3
// single-file component of the tutorial (fixtures/seed-vue/App.vue, verbatim) compiled with
// Vue's own SFC compiler, `import io from 'socket.io-client'` resolved to the official
// socket.io-client 4.8 browser build, default transports (polling, then the upgrade to
// WebSocket), the welcome shown with alert(), and the page served from another origin than the
// server (a separate static server; the socket.io URL is the one thing changed: the tutorial's
// LAN address becomes herald's).
//
// Two users per run in headless Chromium. Each alert is dismissed after a pause, as a person
// would (while it is open the page's script is blocked, which is what once left a poll held by
// herald mid-upgrade and the page stuck for good). Each run checks that both pages finished
// the upgrade and that a message from each user reaches both. The race was timing-dependent,
// so the file runs SEED_RUNS runs (default 10). REFERENCE=1 runs it against the Node server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startServer, stopServer, USE_REFERENCE } from './lib/sio-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const RUNS = Number(process.env.SEED_RUNS || 10);
const WAIT = 15000;
const SEED_URL = 'http://192.168.2.23:3000';

const skip = skipWithoutChromium;

// Compile the SFC into an ES module and its CSS, as a Vue build would.
function compileSeed(serverUrl) {
  const sfc = require('vue/compiler-sfc');
  const source = readFileSync(path.join(here, 'fixtures/seed-vue/App.vue'), 'utf8');
  assert.ok(source.includes(`io('${SEED_URL}')`), 'the fixture is the tutorial page as written');
  const { descriptor, errors } = sfc.parse(source, { filename: 'App.vue' });
  assert.deepEqual(errors, []);
  const id = 'seed';
  const script = sfc.compileScript(descriptor, { id, inlineTemplate: true });
  const css = descriptor.styles.map((s) => sfc.compileStyle({ source: s.content, filename: 'App.vue', id: `data-v-${id}`, scoped: s.scoped }).code).join('\n');
  const js = script.content.replace(SEED_URL, serverUrl);
  return { js, css };
}

// A static file server on its own port: the page's origin differs from the server's.
async function servePage(dir) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };
  const server = http.createServer((req, res) => {
    const name = path.basename(new URL(req.url, 'http://x').pathname) || 'index.html';
    const file = path.join(dir, name);
    if (!existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'Content-Type': types[path.extname(name)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

describe(`the seed's page as written, two users, ${RUNS} runs`, { skip }, () => {
  let srv, page, browser, tmp;

  before(async () => {
    srv = await startServer([]);
    tmp = mkdtempSync(path.join(os.tmpdir(), 'herald-seed-vue-'));
    const { js, css } = compileSeed(srv.url);
    writeFileSync(path.join(tmp, 'App.js'), js);
    writeFileSync(path.join(tmp, 'App.css'), css);
    copyFileSync(require.resolve('vue/dist/vue.esm-browser.prod.js'), path.join(tmp, 'vue.js'));
    copyFileSync(path.join(path.dirname(require.resolve('socket.io-client/package.json')), 'dist/socket.io.esm.min.js'), path.join(tmp, 'socket.io-client.js'));
    writeFileSync(path.join(tmp, 'index.html'), `<!doctype html>
<html><head><meta charset="utf-8"><title>seed</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="App.css">
<script type="importmap">{"imports": {"vue": "./vue.js", "socket.io-client": "./socket.io-client.js"}}</script>
</head><body><div id="app"></div>
<script type="module">import { createApp } from 'vue'; import App from './App.js'; createApp(App).mount('#app');</script>
</body></html>`);
    page = await servePage(tmp);
    assert.notEqual(new URL(page.url).origin, new URL(srv.url).origin);
    browser = await launchChromium();
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (page) await page.close();
    await stopServer(srv);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  // One user: a browser context with the page open. Records what a failure report needs: the
  // alerts, the Engine.IO requests and WebSocket frames, page errors.
  async function openUser(name, pauseMs) {
    const ctx = await browser.newContext({ viewport: { width: 900, height: 860 } });
    const p = await ctx.newPage();
    p.setDefaultTimeout(WAIT);
    const u = { name, ctx, page: p, alerts: [], trace: [], errors: [], upgraded: false };
    p.on('dialog', (d) => {
      u.alerts.push(d.message());
      u.trace.push(`alert(${d.message()})`);
      setTimeout(() => d.accept().catch(() => {}), pauseMs);
    });
    p.on('pageerror', (e) => u.errors.push(e.message));
    p.on('request', (r) => { if (r.url().includes('/socket.io/')) u.trace.push(`${r.method()} ${new URL(r.url()).search.replace(/&t=[^&]*/, '')}${r.postData() ? ' ' + r.postData().slice(0, 60) : ''}`); });
    p.on('requestfinished', async (r) => {
      if (!r.url().includes('/socket.io/') || r.method() !== 'GET') return;
      const body = await r.response().then((x) => x?.text()).catch(() => '?');
      u.trace.push(`  <- ${String(body).slice(0, 60)}`);
    });
    p.on('websocket', (ws) => {
      u.trace.push(`WS ${new URL(ws.url()).search.replace(/&t=[^&]*/, '')}`);
      ws.on('framesent', (f) => { u.trace.push(`  ws> ${String(f.payload).slice(0, 60)}`); if (f.payload === '5') u.upgraded = true; });
      ws.on('framereceived', (f) => u.trace.push(`  ws< ${String(f.payload).slice(0, 60)}`));
      ws.on('close', () => u.trace.push('  ws closed'));
    });
    await p.goto(page.url);
    return u;
  }

  const texts = (u) => u.page.$$eval('.sendMessage .item .message', (els) => els.map((e) => e.textContent.trim()));

  async function waitFor(u, what, pred, ms = WAIT) {
    const t0 = Date.now();
    while (!(await pred())) {
      if (Date.now() - t0 > ms)
        assert.fail(`${u.name}: ${what} did not happen in ${ms} ms\n${u.trace.join('\n')}\nerrors: ${u.errors.join('; ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  for (let run = 1; run <= RUNS; run++) {
    test(`run ${run}: both pages finish the upgrade and see each other's messages`, { timeout: 60000 }, async () => {
      // pauses before each alert is dismissed: from at once to a second and a half
      const pause = (k) => [0, 150, 400, 900, 1500][(run + k) % 5];
      const users = await Promise.all([openUser('A', pause(0)), openUser('B', pause(2))]);
      try {
        for (const u of users) await waitFor(u, 'the welcome alert', () => u.alerts.length > 0);
        for (const u of users) assert.deepEqual(u.alerts, ['欢迎连接'], `${u.name}: the welcome alert`);
        for (const u of users) await waitFor(u, 'the upgrade to WebSocket (packet 5)', () => u.upgraded);
        const [a, b] = users;
        for (const [from, n] of [[a, 1], [b, 2]]) {
          const text = `run ${run}: hello from ${from.name}`;
          await from.page.fill('.input', text);
          await from.page.click('.btn');
          for (const u of users)
            await waitFor(u, `message ${n} ("${text}") shown`, async () => (await texts(u)).includes(text));
        }
        for (const u of users) {
          assert.deepEqual(await texts(u), [`run ${run}: hello from A`, `run ${run}: hello from B`], `${u.name}: both messages once, in order`);
          assert.deepEqual(u.alerts, ['欢迎连接'], `${u.name}: no other alert`);
          assert.deepEqual(u.errors, [], `${u.name}: page errors`);
        }
      } finally {
        for (const u of users) await u.ctx.close().catch(() => {});
      }
    });
  }

  test('the server is still up', () => {
    assert.equal(srv.proc.exitCode, null, `${USE_REFERENCE ? 'reference' : 'herald'} exited:\n${srv.output().slice(-2000)}`);
  });
});
