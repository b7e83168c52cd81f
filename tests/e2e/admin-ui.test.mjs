// The Socket.IO Admin UI (--admin-password): herald speaks the server side of
// @socket.io/admin-ui 0.5 on the namespace /admin, and serves the UI's static build at /admin/.
//
// - off by default: no /admin namespace ("Invalid namespace"), /admin/ answers 404;
// - a password under 8 characters stops herald at start; without the UI's files it says so at
//   start and serves the namespace alone;
// - a wrong user or password (or none, or an unknown session) is refused with connect_error
//   "invalid credentials", as Node's admin-ui does; the password is never printed;
// - with the official socket.io-client: "config", "all_sockets" and "server_stats" describe the
//   chat clients connected (ids, namespace, transport, address, rooms, counts, the event counts
//   of the charts), socket_connected / room_joined / event_received / socket_disconnected /
//   room_left / event_sent follow chat clients as they come and go, and the operations join, leave, emit and
//   _disconnect act on them; a login's session id logs in again;
// - admin pages that stop reading are closed as slow consumers while sockets come and go;
// - with --workers 2, each worker reports as a server of its own (two serverIds), a login lists
//   the sockets of both workers and the operations reach both, a session id logs in on both;
// - in Chromium (--allowed-origins none): the UI's page from herald refuses a wrong password
//   and, logged in through its form, lists the chat clients' sockets on its Sockets page
//   (screenshots in <repo>/test-output/admin-ui-*.png).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { io } from 'socket.io-client';
import { spawnSync } from 'node:child_process';
import { startHerald, repoRoot, heraldBin } from './lib/herald.mjs';
import { stopChecked } from './lib/channels-util.mjs';
import { launchChromium, skipWithoutChromium } from './lib/browser.mjs';

const PASSWORD = 'correct horse battery';
const UI_DIR = path.join(repoRoot, 'web/node_modules/@socket.io/admin-ui/ui/dist');
const WAIT = process.env.E2E_SANITIZE === '1' ? 20000 : 10000;
const outDir = path.join(repoRoot, 'test-output');

const sockets = [];
function client(url, opts = {}) {
  const s = io(url, { forceNew: true, reconnection: false, ...opts });
  sockets.push(s);
  return s;
}
function closeAll() {
  for (const s of sockets.splice(0)) s.close();
}

// Resolves with the first value of event (its arguments) for which pred holds.
function next(s, event, pred = () => true, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.off(event, on); reject(new Error(`no ${event} in ${ms} ms`)); }, ms);
    function on(...args) {
      if (!pred(...args)) return;
      clearTimeout(t);
      s.off(event, on);
      resolve(args);
    }
    s.on(event, on);
  });
}
// Resolves once herald's output matches re (its stderr and stdout are read apart).
function outputMatches(h, re, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { done(); reject(new Error(`output never matched ${re}:\n${h.output()}`)); }, ms);
    const check = () => { if (re.test(h.output())) { clearTimeout(t); done(); resolve(); } };
    const done = () => { h.proc.stdout.off('data', check); h.proc.stderr.off('data', check); };
    h.proc.stdout.on('data', check);
    h.proc.stderr.on('data', check);
    check();
  });
}
const connected = (s) => (s.connected ? Promise.resolve() : next(s, 'connect'));
function refused(s) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('neither connect nor connect_error')), WAIT);
    s.once('connect', () => { clearTimeout(t); reject(new Error('connected')); });
    s.once('connect_error', (e) => { clearTimeout(t); resolve(e.message); });
  });
}

// An admin socket that keeps every event it got, so a test can wait for one that came early.
function admin(url, auth = { username: 'admin', password: PASSWORD }, opts = {}) {
  const a = client(`${url}/admin`, { auth, ...opts });
  a.got = [];
  a.onAny((event, ...args) => a.got.push([event, ...args]));
  a.seen = (event, pred = () => true) => {
    const old = a.got.find(([e, ...args]) => e === event && pred(...args));
    return old ? Promise.resolve(old.slice(1)) : next(a, event, pred);
  };
  return a;
}

describe('Admin UI: off by default', () => {
  let h;
  before(async () => { h = await startHerald(['--store', 'memory']); });
  after(async () => { closeAll(); await stopChecked(h); });

  test('no /admin namespace, no page at /admin/', async () => {
    assert.equal(await refused(client(`${h.url}/admin`, { auth: { username: 'admin', password: PASSWORD } })),
      'Invalid namespace');
    for (const p of ['/admin/', '/admin', '/admin/index.html']) {
      const r = await fetch(h.url + p, { redirect: 'manual' });
      assert.equal(r.status, 404, p);
    }
  });
});

describe('Admin UI: flags', () => {
  let h;
  after(async () => { closeAll(); await stopChecked(h); });

  test('a short password is refused at start', () => {
    const r = spawnSync(heraldBin, ['--admin-password', 'short'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--admin-password wants 8 characters or more/);
    assert.ok(!r.stderr.includes("'short'"), 'the refused password is not echoed');
  });

  test('without the UI\'s files herald says so at start and serves the namespace alone', async () => {
    h = await startHerald(['--store', 'memory', '--admin-password', PASSWORD, '--admin-ui-dir', '/nonexistent/admin-ui']);
    // stderr's warning may be read after stdout's listening line
    await outputMatches(h, /--admin-ui-dir \/nonexistent\/admin-ui: No such file or directory; the Admin UI's page is not served/);
    assert.equal((await fetch(`${h.url}/admin/`)).status, 404);
    const a = admin(h.url);
    await connected(a);
    await a.seen('config');
  });
});

describe('Admin UI protocol (socket.io-client)', () => {
  let h;
  before(async () => {
    // the password from the environment, as a deployment would keep it out of `ps`
    process.env.HERALD_ADMIN_PASSWORD = PASSWORD;
    try {
      h = await startHerald(['--store', 'memory', '--workers', '1', '--admin-ui-dir', UI_DIR]);
    } finally {
      delete process.env.HERALD_ADMIN_PASSWORD;
    }
  });
  after(async () => {
    closeAll();
    await stopChecked(h);
    assert.ok(!h.output().includes(PASSWORD), 'the password appears in the output');
  });

  test('wrong credentials are refused with "invalid credentials"', async () => {
    for (const auth of [{ username: 'admin', password: 'wrong password' }, { username: 'root', password: PASSWORD },
      { username: 'admin' }, {}, { sessionId: 'AAAAAAAAAAAAAAAAAAAA' }, { username: 'admin', password: PASSWORD + 'x' }])
      assert.equal(await refused(client(`${h.url}/admin`, { auth })), 'invalid credentials', JSON.stringify(auth));
    closeAll();
  });

  test('config, all_sockets and server_stats describe the chat clients', async () => {
    // a header of the handshake is shown, its cookie not (it may carry a token)
    const polling = client(h.url, { transports: ['polling'], query: { room: 'a b' },
      extraHeaders: { 'x-test': 'yes', cookie: 'herald_token=secret' } });
    const ws = client(h.url, { transports: ['websocket'] });
    await Promise.all([connected(polling), connected(ws)]);
    const a = admin(h.url);
    await connected(a);
    const [config] = await a.seen('config');
    for (const f of ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'AGGREGATED_EVENTS', 'ALL_EVENTS'])
      assert.ok(config.supportedFeatures.includes(f), f);
    const [session] = await a.seen('session');
    assert.match(session, /^[A-Za-z0-9_-]{20}$/);

    const [list] = await a.seen('all_sockets');
    const byId = new Map(list.map((s) => [s.id, s]));
    for (const [c, transport] of [[polling, 'polling'], [ws, 'websocket']]) {
      const s = byId.get(c.id);
      assert.ok(s, `${c.id} listed`);
      assert.equal(s.nsp, '/');
      assert.equal(s.transport, transport);
      assert.equal(s.handshake.address, '127.0.0.1');
      assert.equal(typeof s.handshake.issued, 'number');
      assert.ok(Math.abs(s.handshake.issued - Date.now()) < 60000);
      assert.equal(s.clientId, c.io.engine.id.slice(0, 12));
      assert.deepEqual(s.rooms, [c.id, 'chat']); // its own room, then the chat app's channel room
      assert.equal(s.handshake.headers.host, `127.0.0.1:${h.port}`);
      assert.equal(s.handshake.query.EIO, '4');
      assert.equal(s.handshake.query.transport, transport);
      assert.equal(s.handshake.secure, false);
      assert.equal(s.handshake.xdomain, false);
      assert.match(s.handshake.url, /^\/socket\.io\/\?.*EIO=4&/);
    }
    const ph = byId.get(polling.id).handshake;
    assert.equal(ph.headers['x-test'], 'yes');
    assert.equal(ph.headers.cookie, undefined);
    assert.equal(ph.query.room, 'a b');
    assert.ok(byId.get(a.id) && byId.get(a.id).nsp === '/admin', 'the admin socket itself is listed');

    // the clients of the tests before are gone once herald has seen them close
    const [stats] = await a.seen('server_stats', (s) => s.clientsCount === 3 && s.pollingClientsCount === 1);
    assert.equal(stats.pid, h.proc.pid);
    assert.equal(typeof stats.serverId, 'string');
    assert.equal(typeof stats.hostname, 'string');
    assert.ok(stats.uptime > 0 && stats.uptime < 600);
    const nsps = Object.fromEntries(stats.namespaces.map((n) => [n.name, n.socketsCount]));
    assert.equal(nsps['/'], 2);
    assert.equal(nsps['/admin'], 1);

    // the charts: packets and bytes both ways, the connections of the second they came in
    ws.emit('message', 'one');
    ws.emit('message', 'two');
    const events = [];
    await next(a, 'server_stats', (s) => {
      events.push(...s.aggregatedEvents);
      const types = new Set(events.map((e) => e.type));
      return ['packetsIn', 'packetsOut', 'bytesIn', 'bytesOut'].every((t) => types.has(t));
    }, 3 * WAIT);
    for (const e of events) {
      assert.ok(e.count > 0 && Number.isInteger(e.timestamp) && e.timestamp % 1000 === 0, JSON.stringify(e));
      assert.ok(Math.abs(e.timestamp - Date.now()) < 60000);
    }
    const bytesIn = events.filter((e) => e.type === 'bytesIn').reduce((n, e) => n + e.count, 0);
    // Engine.IO message payloads, as Node's admin-ui counts them (without the packet type)
    assert.ok(bytesIn >= '2["message","one"]'.length * 2, `bytesIn ${bytesIn}`);
    closeAll();
  });

  test('chat clients coming and going, their rooms and events, are told as they happen', async () => {
    const a = admin(h.url);
    await connected(a);
    await a.seen('all_sockets');
    const c = client(h.url);
    const [[sock, at]] = await Promise.all([a.seen('socket_connected', (s) => s.nsp === '/'), connected(c)]);
    assert.equal(sock.id, c.id);
    assert.ok(Math.abs(Date.parse(at) - Date.now()) < 60000, at);
    // what the chat app sends it: its welcome
    const [snsp, sid, sent] = await a.seen('event_sent', (n, i) => i === c.id);
    assert.equal(snsp, '/');
    assert.equal(sid, c.id);
    assert.equal(sent[0], 'message');
    assert.equal(sent[1].type, 'init');
    const [rnsp, room, rid] = await a.seen('room_joined', (n, r, i) => i === c.id);
    assert.deepEqual([rnsp, room, rid], ['/', 'chat', c.id]);
    c.emit('message', { text: 'hi admin' });
    const [nsp, id, args] = await a.seen('event_received', (n, i) => i === c.id);
    assert.equal(nsp, '/');
    assert.deepEqual(args, ['message', { text: 'hi admin' }]);
    const cid = c.id;
    c.close();
    const [dnsp, did, reason] = await a.seen('socket_disconnected', (n, i) => i === cid);
    assert.deepEqual([dnsp, did, reason], ['/', cid, 'client namespace disconnect']);
    await a.seen('room_left', (n, room, i) => i === cid && room === 'chat');
    // the disconnection chart: its Engine.IO session's end, with the reason
    const [stats] = await next(a, 'server_stats',
      (st) => st.aggregatedEvents.some((e) => e.type === 'rawDisconnection'), 3 * WAIT);
    const ends = stats.aggregatedEvents.filter((e) => e.type === 'rawDisconnection');
    assert.ok(ends.every((e) => typeof e.subType === 'string' && e.count >= 1), JSON.stringify(ends));
    closeAll();
  });

  test('join, leave, emit and _disconnect act on the chat clients', async () => {
    const a = admin(h.url);
    const c1 = client(h.url);
    const c2 = client(h.url);
    await Promise.all([connected(a), connected(c1), connected(c2)]);
    await a.seen('all_sockets');

    // join: c1 (by its id as the filter) joins "vip"; an emit to "vip" reaches c1 only
    a.emit('join', '/', 'vip', c1.id);
    await a.seen('room_joined', (n, room, id) => room === 'vip' && id === c1.id);
    const got = [];
    c2.on('notice', (v) => got.push(['c2', v]));
    const reached = next(c1, 'notice');
    a.emit('emit', '/', 'vip', 'notice', { from: 'admin' });
    assert.deepEqual((await reached)[0], { from: 'admin' }); // then the recovery offset
    // leave: c1 leaves "vip"; an emit to the whole namespace then reaches both
    a.emit('leave', '/', 'vip', c1.id);
    await a.seen('room_left', (n, room, id) => room === 'vip' && id === c1.id);
    const both = Promise.all([next(c1, 'notice'), next(c2, 'notice')]);
    a.emit('emit', '/', null, 'notice', 'everyone');
    assert.deepEqual((await both).map((args) => args[0]), ['everyone', 'everyone']);
    assert.deepEqual(got, [['c2', 'everyone']], 'c2 got the room emit');

    // _disconnect: c2 by its id; c1 stays
    const c2id = c2.id;
    const gone = next(c2, 'disconnect');
    a.emit('_disconnect', '/', false, c2id);
    assert.deepEqual(await gone, ['io server disconnect', undefined]);
    await a.seen('socket_disconnected', (n, i) => i === c2id);
    assert.ok(c1.connected);
    // the whole namespace (no filter)
    const c1gone = next(c1, 'disconnect');
    a.emit('_disconnect', '/', true);
    assert.equal((await c1gone)[0], 'io server disconnect');
    assert.ok(a.connected, 'the admin socket of another namespace stays');
    closeAll();
  });

  test("a login's session id logs in again without the password", async () => {
    const a = admin(h.url);
    const [session] = await a.seen('session');
    const again = admin(h.url, { sessionId: session });
    await connected(again);
    await again.seen('config');
    closeAll();
  });
});

describe('Admin UI: admin pages that stop reading', () => {
  let h;
  before(async () => {
    h = await startHerald(['--store', 'memory', '--workers', '1', '--admin-password', PASSWORD,
      '--admin-ui-dir', UI_DIR, '--max-queued', '16384']);
  });
  after(async () => { closeAll(); await stopChecked(h); });

  // Engine.IO polling sessions logged in to /admin that never poll again: the UI's events fill
  // their queues past --max-queued and they are closed as slow consumers, in the middle of the
  // other sockets coming and going, while a live admin page goes on seeing everything.
  test('are closed as slow consumers; herald and the other admin pages go on', { timeout: 60000 }, async () => {
    const stalled = [];
    for (let i = 0; i < 3; i++) {
      const open = await (await fetch(`${h.url}/socket.io/?EIO=4&transport=polling`)).text();
      const sid = JSON.parse(open.slice(1)).sid;
      const post = await fetch(`${h.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, {
        method: 'POST', body: `40/admin,${JSON.stringify({ username: 'admin', password: PASSWORD })}`,
      });
      assert.equal(post.status, 200);
      stalled.push(sid);
    }
    // over WebSocket, which the kernel takes from as it comes (a page that reads)
    const live = admin(h.url, undefined, { transports: ['websocket'] });
    await connected(live);
    await live.seen('all_sockets');
    const seen = new Set();
    live.on('socket_disconnected', (nsp, id) => seen.add(id));
    for (let round = 0; round < 10; round++) {
      const cs = [];
      for (let i = 0; i < 5; i++) cs.push(client(h.url, { transports: round % 2 ? ['websocket'] : ['polling'] }));
      await Promise.all(cs.map(connected));
      const ids = cs.map((c) => c.id);
      for (const c of cs) c.close();
      await next(live, 'socket_disconnected', () => ids.every((id) => seen.has(id)));
    }
    // the stalled sessions are gone: their next poll finds no session
    for (const sid of stalled) {
      const r = await fetch(`${h.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
      assert.equal(r.status, 400, sid);
    }
    await outputMatches(h, /slow consumer/);
    assert.ok(live.connected);
  });
});

describe('Admin UI with two workers', () => {
  let h;
  before(async () => {
    h = await startHerald(['--store', 'memory', '--workers', '2', '--admin-password', PASSWORD,
      '--admin-ui-dir', UI_DIR]);
  });
  after(async () => { closeAll(); await stopChecked(h); });

  test('each worker reports as a server: two serverIds', async () => {
    const a = admin(h.url);
    await connected(a);
    const ids = new Set();
    await next(a, 'server_stats', (s) => { ids.add(s.serverId); return ids.size === 2; }, 3 * WAIT);
    for (const id of ids) assert.match(id, new RegExp(`#${h.proc.pid}/[01]$`));
    closeAll();
  });

  test("the sockets of both workers are listed and acted on, whichever worker the UI's connection is on", async () => {
    // chat clients until both workers hold some: an Engine.IO session id's first character
    // names its worker (A: 0, B: 1)
    const chat = [];
    for (let i = 0; i < 40 && new Set(chat.map((c) => c.io.engine.id[0])).size < 2; i++) {
      const c = client(h.url, { transports: ['websocket'] });
      await connected(c);
      chat.push(c);
    }
    assert.deepEqual([...new Set(chat.map((c) => c.io.engine.id[0]))].sort(), ['A', 'B']);
    const a = admin(h.url, { username: 'admin', password: PASSWORD });
    await connected(a);
    // all_sockets has this worker's; the other worker's come as socket_connected
    const listed = new Set();
    const [list] = await a.seen('all_sockets');
    for (const s of list) listed.add(s.id);
    const want = chat.map((c) => c.id);
    const missing = () => want.filter((id) => !listed.has(id));
    for (const [e, s] of a.got) if (e === 'socket_connected') listed.add(s.id);
    if (missing().length)
      await next(a, 'socket_connected', (s) => { listed.add(s.id); return missing().length === 0; });
    assert.deepEqual(missing(), []);
    for (const [e, s] of a.got.filter(([e]) => e === 'socket_connected'))
      assert.equal(s.handshake.address, '127.0.0.1', e);

    // join by id, then an emit to that room, reach a socket on either worker
    for (const c of [chat.find((c) => c.io.engine.id[0] === 'A'), chat.find((c) => c.io.engine.id[0] === 'B')]) {
      a.emit('join', '/', 'picked', c.id);
      await a.seen('room_joined', (n, room, id) => room === 'picked' && id === c.id);
    }
    // _disconnect the whole namespace: every chat client, on both workers
    const gone = Promise.all(chat.map((c) => next(c, 'disconnect')));
    a.emit('_disconnect', '/', false);
    for (const [reason] of await gone) assert.equal(reason, 'io server disconnect');
    assert.ok(a.connected);
    closeAll();
  });

  test("a login's session id logs in on either worker", async () => {
    const a = admin(h.url, { username: 'admin', password: PASSWORD });
    const [session] = await a.seen('session');
    const workers = new Set();
    for (let i = 0; i < 40 && workers.size < 2; i++) {
      const b = client(`${h.url}/admin`, { auth: { sessionId: session }, transports: ['websocket'] });
      await connected(b);
      workers.add(b.io.engine.id[0]);
      b.close();
    }
    assert.deepEqual([...workers].sort(), ['A', 'B']);
    closeAll();
  });
});

const skipBrowser = skipWithoutChromium ||
  (!existsSync(path.join(UI_DIR, 'index.html')) && `${UI_DIR} is missing (scripts/setup.sh build installs it)`);

describe('Admin UI in Chromium', { skip: skipBrowser }, () => {
  let h, browser;
  before(async () => {
    // the page and its Socket.IO connection come from herald's own origin, which even the
    // strictest origin list lets in
    h = await startHerald(['--store', 'memory', '--workers', '1', '--admin-password', PASSWORD,
      '--admin-ui-dir', UI_DIR, '--allowed-origins', 'none']);
    browser = await launchChromium();
    mkdirSync(outDir, { recursive: true });
  });
  after(async () => {
    closeAll();
    await browser?.close();
    await stopChecked(h);
  });

  test('the page from herald logs in through its form and lists the chat sockets', { timeout: 120000 }, async () => {
    const chat = [client(h.url), client(h.url, { transports: ['polling'] })];
    await Promise.all(chat.map(connected));
    const r = await fetch(`${h.url}/admin`, { redirect: 'manual' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), '/admin/');

    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // the UI links fonts and icons from CDNs: the sandbox has no network beyond loopback
    await page.route((u) => !u.href.startsWith(h.url), (route) => route.abort());
    await page.goto(`${h.url}/admin/`);
    await page.getByLabel('Server URL').fill(h.url);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByText('Invalid credentials').waitFor({ timeout: WAIT });
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByRole('button', { name: 'Connect' }).waitFor({ state: 'hidden', timeout: WAIT });
    await page.screenshot({ path: path.join(outDir, 'admin-ui-dashboard.png'), animations: 'disabled' });

    await page.goto(`${h.url}/admin/#/sockets/`);
    for (const c of chat)
      await page.getByText(c.id).waitFor({ timeout: WAIT });
    const text = await page.locator('body').innerText();
    assert.match(text, /127\.0\.0\.1/);
    await page.screenshot({ path: path.join(outDir, 'admin-ui-sockets.png'), fullPage: true, animations: 'disabled' });
    // a socket's page: its handshake's headers and query
    await page.getByText(chat[1].id).click();
    await page.getByText('transport').first().waitFor({ timeout: WAIT });
    const details = await page.locator('body').innerText();
    assert.match(details, /EIO\s+4/);
    assert.match(details, new RegExp(`host\\s+127\\.0\\.0\\.1:${h.port}`));
    await page.screenshot({ path: path.join(outDir, 'admin-ui-socket.png'), fullPage: true, animations: 'disabled' });
    assert.deepEqual(errors, []);
  });
});
