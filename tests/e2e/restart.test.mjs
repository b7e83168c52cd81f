// A restart brings every client back. herald's default app (chat) runs on a fixed port with a
// data directory; connected to it: the official socket.io-client 4.8 (Node) over WebSocket and
// over polling, and python-socketio (Debian's python3-socketio, fixtures/sio-client.py) over
// WebSocket and over polling, each with its library's default reconnection. herald gets SIGTERM
// and exits; a new herald starts on the same port and data directory. Every client must
// reconnect by itself within a bounded time and receive a message published after the restart.
//
// (On shutdown herald must not tell clients that the session ended on purpose: python-socketio
// takes an Engine.IO close packet "1" as a deliberate close and never reconnects.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { startHerald, freshDataDir, repoRoot, freePort } from './lib/herald.mjs';
import { httpRequest, until } from './lib/sio-util.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';
const PY_CLIENT = path.join(here, 'fixtures', 'sio-client.py');
const RECONNECT_MS = 20000; // python-socketio and socket.io-client retry after 1 s, then 2, 4, 5 s...

const isWelcome = (m) => m && typeof m === 'object' && m.type === 'init';


const cleanups = [];
after(async () => { for (const f of cleanups.splice(0).reverse()) await f(); });

// socket.io-client over one transport, default reconnection.
function jsClient(url, transport) {
  const socket = io(url, { transports: [transport], forceNew: true });
  const c = { name: `socket.io-client over ${transport}`, connects: 0, disconnects: [], messages: [] };
  socket.on('connect', () => { c.connects++; });
  socket.on('disconnect', (reason) => { c.disconnects.push(reason); });
  socket.on('message', (m) => { c.messages.push(m); });
  c.close = () => socket.close();
  c.describe = () => `connects ${c.connects}, disconnects ${JSON.stringify(c.disconnects)}, messages ${JSON.stringify(c.messages)}`;
  cleanups.push(async () => c.close());
  return c;
}

// python-socketio over one transport (its default reconnection), reporting on stdout.
function pyClient(url, transport) {
  const proc = spawn(PYTHON, [PY_CLIENT, url, transport], { stdio: ['pipe', 'pipe', 'pipe'] });
  const c = { name: `python-socketio over ${transport}`, connects: 0, disconnects: [], messages: [], out: '', err: '' };
  let line = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    c.out += d;
    line += d;
    let i;
    while ((i = line.indexOf('\n')) >= 0) {
      const ev = JSON.parse(line.slice(0, i));
      line = line.slice(i + 1);
      if (ev.event === 'connect') c.connects++;
      else if (ev.event === 'disconnect') c.disconnects.push('disconnect');
      else if (ev.event === 'message') c.messages.push(ev.data);
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => { c.err += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  c.signal = (sig) => proc.kill(sig);
  c.close = async () => {
    proc.stdin.end();
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  c.describe = () => `connects ${c.connects}, disconnects ${c.disconnects.length}, messages ${JSON.stringify(c.messages)}, ` +
    `exit ${JSON.stringify(proc.exitCode)}; stderr: ${c.err.slice(-1500)}`;
  cleanups.push(c.close);
  return c;
}

test('after SIGTERM and a restart on the same port, JS and Python clients (WebSocket and polling) all come back by themselves', { timeout: 90000 }, async () => {
  const port = await freePort();
  const data = freshDataDir();
  const args = ['--port', String(port), '--data', data];
  let h = await startHerald(args);
  cleanups.push(() => h.stop());
  const url = `http://127.0.0.1:${port}`;

  const clients = [
    jsClient(url, 'websocket'),
    jsClient(url, 'polling'),
    pyClient(url, 'websocket'),
    pyClient(url, 'polling'),
  ];
  const report = () => clients.map((c) => `  ${c.name}: ${c.describe()}`).join('\n');
  // connected: each has had the app's welcome
  await until(() => clients.every((c) => c.connects === 1 && c.messages.some(isWelcome)), 15000,
    () => `every client connected and welcomed:\n${report()}`);

  h.proc.kill('SIGTERM');
  const ex = await h.exited;
  assert.deepEqual(ex, { code: 0, signal: null }, `herald's exit on SIGTERM:\n${h.output().slice(-2000)}`);
  const before = h.output();
  h = await startHerald(args);

  await until(() => clients.every((c) => c.connects >= 2), RECONNECT_MS,
    () => `every client reconnected by itself within ${RECONNECT_MS} ms of the restart:\n${report()}`);

  const text = `after the restart ${process.pid}-${Date.now()}`;
  const pub = await httpRequest(`${url}/pub/chat`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: text, userId: 'ops', type: 'message' }),
  });
  assert.equal(pub.status, 200, pub.body);
  const got = (c) => c.messages.some((m) => m && m.message === text);
  await until(() => clients.every(got), 10000, () => `every client received the message published after the restart:\n${report()}`);
  for (const c of clients)
    assert.equal(c.messages.filter((m) => m && m.message === text).length, 1, `${c.name} got the message once:\n${report()}`);
  assert.doesNotMatch(before + h.output(), /ERROR: \w+Sanitizer|runtime error:/);
});

test('after a ping timeout over WebSocket, python-socketio comes back by itself (no close packet over WebSocket)', { timeout: 60000 }, async () => {
  // The reference server never sends the close packet "1" over WebSocket: python-socketio takes
  // it for a deliberate close. A client frozen past the ping deadline finds, when it wakes, the
  // WebSocket closed, and must reconnect like after any lost connection.
  const h = await startHerald(['--ping-interval', '300', '--ping-timeout', '200']);
  cleanups.push(() => h.stop());
  const c = pyClient(h.url, 'websocket');
  await until(() => c.connects === 1 && c.messages.some(isWelcome), 15000, () => `connected:\n  ${c.describe()}`);
  c.signal('SIGSTOP');
  await new Promise((r) => setTimeout(r, 1500)); // past ping interval + timeout: herald closes the session
  c.signal('SIGCONT');
  await until(() => c.connects >= 2, RECONNECT_MS, () => `reconnected after the ping timeout:\n  ${c.describe()}`);
  assert.equal(h.proc.exitCode, null);
});
